//! Each user's mailbox names, kept in memory for LIST and LSUB: a client lists its tree
//! on every connection and often between commands, and reading the rows through the
//! database's worker thread cost more than the rest of the LIST.
//!
//! This process's CREATE, DELETE, RENAME, SUBSCRIBE and reindex drop the user's entry
//! once they have committed. What another process changes (the CLI, another node on
//! PostgreSQL) shows within [`FRESH_FOR`], when an entry is read again.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{Result, Store};

/// How long a user's names are answered from memory before they are read again.
pub(super) const FRESH_FOR: Duration = Duration::from_secs(1);

/// A mailbox, or a subscription to a name that is no mailbox, as LIST and LSUB show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    /// Its special uses, space-separated (`\Sent \Archive`), or empty.
    pub special_use: String,
    pub subscribed: bool,
    /// Whether a mailbox has the name (a subscription outlives its mailbox).
    pub exists: bool,
}

/// A user's names and when they were read.
type Entry = (Instant, Arc<Vec<Listed>>);

/// The names read per user, and a count of the changes made in this process: a read
/// that began before a change is not kept (it may have missed the change).
#[derive(Default)]
pub(super) struct Listings {
    users: std::sync::Mutex<HashMap<String, Entry>>,
    changes: AtomicU64,
}

impl Store {
    /// The user's mailboxes in name order, as LIST shows them: from memory when read
    /// less than [`FRESH_FOR`] ago and not changed here since.
    pub async fn listing(&self, username: &str) -> Result<Arc<Vec<Listed>>> {
        let listings = &self.listings;
        {
            let users = listings.users.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((read, names)) = users.get(username)
                && read.elapsed() < FRESH_FOR
            {
                return Ok(names.clone());
            }
        }
        let before = listings.changes.load(Ordering::Acquire);
        let read = Instant::now();
        let mut subscribed: std::collections::BTreeSet<String> =
            self.subscriptions(username).await?.into_iter().collect();
        let mut names: Vec<Listed> = self
            .mailboxes(username)
            .await?
            .into_iter()
            .map(|m| Listed {
                subscribed: subscribed.remove(&m.name),
                name: m.name,
                special_use: m.special_use,
                exists: true,
            })
            .collect();
        names.extend(subscribed.into_iter().map(|name| Listed {
            name,
            special_use: String::new(),
            subscribed: true,
            exists: false,
        }));
        names.sort_by(|a, b| a.name.cmp(&b.name));
        let names = Arc::new(names);
        let mut users = listings.users.lock().unwrap_or_else(|e| e.into_inner());
        if listings.changes.load(Ordering::Acquire) == before {
            users.insert(username.to_string(), (read, names.clone()));
        }
        Ok(names)
    }

    /// Drops what is kept of the user's names: call once a change to their mailboxes
    /// (a name, a special use, a subscription) has committed.
    pub(super) fn names_changed(&self, username: &str) {
        self.database.rows.changed(username);
        let listings = &self.listings;
        let mut users = listings.users.lock().unwrap_or_else(|e| e.into_inner());
        listings.changes.fetch_add(1, Ordering::AcqRel);
        users.remove(username);
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::store;

    /// CREATE, RENAME, SUBSCRIBE and DELETE show in the next listing at once; a change
    /// made behind the store's back (another process) shows once the entry is stale.
    #[tokio::test]
    async fn listings_follow_changes_here_at_once_and_elsewhere_within_a_second() {
        let (s, dir) = store().await;
        s.ensure_user("amy").await.unwrap();
        let names = |l: &[super::Listed]| l.iter().map(|m| m.name.clone()).collect::<Vec<_>>();
        let before = s.listing("amy").await.unwrap();
        assert!(names(&before).contains(&"INBOX".to_string()));
        s.create_mailbox("amy", "Projects", "\\Archive")
            .await
            .unwrap();
        let after = s.listing("amy").await.unwrap();
        let projects = after
            .iter()
            .find(|m| m.name == "Projects")
            .expect("created");
        assert_eq!(projects.special_use, "\\Archive");
        assert!(projects.subscribed);
        s.subscribe("amy", "Projects", false).await.unwrap();
        let listed = s.listing("amy").await.unwrap();
        assert!(
            !listed
                .iter()
                .find(|m| m.name == "Projects")
                .unwrap()
                .subscribed
        );
        s.rename_mailbox("amy", "Projects", "Done").await.unwrap();
        let renamed = names(&s.listing("amy").await.unwrap());
        assert!(
            renamed.contains(&"Done".to_string()) && !renamed.contains(&"Projects".to_string())
        );
        s.subscribe("amy", "Done", true).await.unwrap();
        s.delete_mailbox("amy", "Done").await.unwrap();
        let done = s.listing("amy").await.unwrap();
        let done = done
            .iter()
            .find(|m| m.name == "Done")
            .expect("still subscribed");
        assert!(done.subscribed && !done.exists, "{done:?}");
        s.subscribe("amy", "Done", false).await.unwrap();
        assert!(!names(&s.listing("amy").await.unwrap()).contains(&"Done".to_string()));

        // Another process renames a mailbox: the same answer until the entry is stale.
        let kept = s.listing("amy").await.unwrap();
        sqlx::query(
            "UPDATE mailboxes SET name = 'Elsewhere' WHERE username = 'amy' AND name = 'Sent'",
        )
        .execute(&s.pool)
        .await
        .unwrap();
        assert_eq!(s.listing("amy").await.unwrap(), kept);
        tokio::time::sleep(super::FRESH_FOR).await;
        let fresh = names(&s.listing("amy").await.unwrap());
        assert!(fresh.contains(&"Elsewhere".to_string()), "{fresh:?}");
        std::fs::remove_dir_all(dir).ok();
    }
}
