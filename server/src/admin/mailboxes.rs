//! A user's stored mail as an operator inspects and repairs it: the mailboxes with their
//! counts, and a reindex that rebuilds the index from the Maildir files. Both work on
//! the storage of the mailbox server that serves the user now.

use super::{Admin, Result};
use crate::mailbox::store::Store;
use crate::mailbox::store::reindex::ReindexReport;

/// One mailbox of a user, as `mailbox list` shows it.
#[derive(Debug, Clone)]
pub struct MailboxRow {
    pub name: String,
    pub messages: usize,
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub special_use: String,
}

impl Admin {
    /// The store holding `username`'s mail: the storage of the server serving them now.
    pub(super) async fn store_of(&self, username: &str) -> Result<Store> {
        self.directory.user(username).await?;
        let map = self.site_map().await?;
        let server = &map.owner(mailsite_shared::route::bucket_of(username)).name;
        Ok(Store::new(
            map.config.mail_root(server),
            self.directory.pool().clone(),
        ))
    }

    /// A user's mailboxes with their message counts, UIDVALIDITY and UIDNEXT; mail
    /// another program dropped into a Maildir `new/` is taken in first.
    pub async fn mailboxes_of(&self, username: &str) -> Result<Vec<MailboxRow>> {
        let store = self.store_of(username).await?;
        store.ensure_user(username).await?;
        let mut rows = Vec::new();
        for m in store.mailboxes(username).await? {
            store.sync(username, &m.name).await?;
            let info = store.mailbox(username, &m.name).await?;
            rows.push(MailboxRow {
                messages: store.messages(username, &m.name).await?.len(),
                name: info.name,
                uidvalidity: info.uidvalidity,
                uidnext: info.uidnext,
                special_use: info.special_use,
            });
        }
        Ok(rows)
    }

    /// Rebuilds a user's mail index from the Maildir files, keeping UIDVALIDITY and UIDs.
    pub async fn reindex(&self, username: &str) -> Result<ReindexReport> {
        let store = self.store_of(username).await?;
        let report = store.reindex(username).await?;
        tracing::info!(user = %username, mailboxes = report.mailboxes, messages = report.messages, "mail index rebuilt");
        Ok(report)
    }
}
