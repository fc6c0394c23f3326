//! Quotas at the door: every way mail comes into a user's mailboxes (IMAP APPEND and
//! COPY, LMTP delivery) asks [`room`] first. The limits are the directory's
//! ([`crate::directory::quota`]); the usage is the index's, so it counts every
//! mailbox server's mail of the user alike.

use crate::directory::Directory;
use crate::directory::quota::{Exceeded, Quota, Usage};
use crate::mailbox::store::{Store, StoreError};

/// A user's limits and what they hold now.
#[derive(Debug, Clone, Copy)]
pub struct Standing {
    pub quota: Quota,
    pub usage: Usage,
}

/// The user's limits and usage; the usage is only counted when there is a limit.
pub async fn standing(
    directory: &Directory,
    store: &Store,
    username: &str,
) -> Result<Standing, StoreError> {
    let quota = directory
        .quota(username)
        .await
        .map_err(|e| StoreError::Refused(e.to_string()))?;
    let usage = if quota.is_limited() {
        store.usage(username).await?
    } else {
        Usage::default()
    };
    Ok(Standing { quota, usage })
}

/// Whether `messages` more messages of `storage` octets fit in the user's quota: the
/// outer error is a failure to find out (the caller answers with a temporary error),
/// the inner one the quota's refusal.
pub async fn room(
    directory: &Directory,
    store: &Store,
    username: &str,
    storage: u64,
    messages: u64,
) -> Result<Result<(), Exceeded>, StoreError> {
    let Standing { quota, usage } = standing(directory, store, username).await?;
    Ok(quota.admits(usage, storage, messages))
}
