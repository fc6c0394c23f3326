//! A user's quota: the limits on what their mailboxes hold (RFC 9208's STORAGE and
//! MESSAGE), set by operators and shown with what the user holds now.

use super::{Admin, Result, refused};
use crate::directory::quota::{Quota, Usage, size};

/// A user's limits and what they hold now.
#[derive(Debug, Clone, Copy)]
pub struct QuotaView {
    pub quota: Quota,
    pub usage: Usage,
}

impl QuotaView {
    /// What the user holds against each limit, in words: `3.2 MiB of 1.0 GiB, 120
    /// messages (no limit)`.
    pub fn describe(&self) -> String {
        let Self { quota, usage } = self;
        let storage = if quota.storage > 0 {
            format!(
                "{} of {} ({}%)",
                size(usage.storage),
                size(quota.storage),
                percent(usage.storage, quota.storage)
            )
        } else {
            format!("{} (no limit)", size(usage.storage))
        };
        let messages = if quota.messages > 0 {
            format!(
                "{} of {} messages ({}%)",
                usage.messages,
                quota.messages,
                percent(usage.messages, quota.messages)
            )
        } else {
            format!("{} messages (no limit)", usage.messages)
        };
        format!("{storage}, {messages}")
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "storage_limit": self.quota.storage,
            "storage_used": self.usage.storage,
            "messages_limit": self.quota.messages,
            "messages_used": self.usage.messages,
        })
    }
}

fn percent(used: u64, limit: u64) -> u64 {
    used.saturating_mul(100) / limit.max(1)
}

impl Admin {
    /// A user's limits and what their mailboxes hold now.
    pub async fn quota(&self, username: &str) -> Result<QuotaView> {
        let quota = self.directory.quota(username).await?;
        let usage = self.store_of(username).await?.usage(username).await?;
        Ok(QuotaView { quota, usage })
    }

    /// Sets a user's limits (0: no limit); returns them with what the user holds.
    /// A limit below what the user holds already is allowed: nothing is deleted, new
    /// mail is refused until they make room.
    pub async fn set_quota(&self, username: &str, quota: Quota) -> Result<QuotaView> {
        quota.check().map_err(refused)?;
        self.directory.set_quota(username, quota).await?;
        tracing::info!(user = %username, limits = %quota.describe(), "quota set");
        self.quota(username).await
    }
}
