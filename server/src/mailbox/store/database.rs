//! What every [`Store`] on one site database shares within this process: the queue of
//! SQLite writers and the wake-ups of IDLE sessions.
//!
//! Several stores use one database at once: the server makes one per mail root (each
//! mailbox server with storage of its own), the CLI's letter move makes one for each
//! side, and the tests make stores on databases of their own side by side. SQLite's
//! writers must queue across all the stores on its file, and a change written through
//! one store must wake the sessions of another (after a letter move, a session still
//! open on the old server watches mail the new one delivers), while stores on two
//! databases have nothing to share. So the state belongs to one [`Database`] value per
//! database, which its stores hold: [`Store::new`] makes a new one, and
//! [`Store::beside`] makes the store of another storage root on the same database,
//! sharing it. No process-wide state: whoever opens a database owns what goes with it.

use std::sync::Arc;

use tokio::sync::OwnedMutexGuard;

#[cfg(doc)]
use super::Store;
use super::changes::Changes;
use super::local::Reader;
use super::rows::Rows;

/// The state the stores on one site database share.
#[derive(Default)]
pub(super) struct Database {
    /// SQLite lets one connection write at a time, and one that finds the database
    /// locked sleeps in SQLite's busy handler (1, 2, 5, 10 ... 25, 50, 100 ms) before it
    /// looks again: under contention the lock sat free while its waiters slept, and the
    /// last of 8 POP3 QUITs arriving together waited 100 ms for 7 transactions of 5 ms.
    /// This process's writers queue here instead, and each starts the moment the one
    /// before it ends. The store's write transactions queue, and so do its writes of
    /// one statement (the UID reservation of each APPEND and delivery, the \Recent
    /// claim): outside the queue, one of them waited over a second in the busy handler
    /// under imaptest's ten clients. The directory's writes and other processes on the
    /// same file, such as the CLI, still meet the busy handler.
    writers: Arc<tokio::sync::Mutex<()>>,
    /// Wakes the sessions of a user when their mail changes.
    pub(super) changes: Changes,
    /// The POP3 maildrops open in a session (RFC 1939's exclusive lock), for every
    /// mailbox server on this database: after a letter move, a session on the old
    /// server still holds its user's maildrop.
    pub(super) maildrops: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// The mailbox rows read in the last moment (see `rows.rs`).
    pub(super) rows: Rows,
    /// Reads of a SQLite file on the calling thread (see `local.rs`); none on
    /// PostgreSQL.
    pub(super) reader: Option<Reader>,
}

impl Database {
    /// The state of a database whose reads outside transactions go to `reader`, if any.
    pub(super) fn new(reader: Option<Reader>) -> Database {
        Database {
            reader,
            ..Database::default()
        }
    }

    /// Waits for this process's turn to write on SQLite; the turn lasts as long as
    /// the guard.
    pub(super) async fn turn_to_write(&self) -> OwnedMutexGuard<()> {
        self.writers.clone().lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::fixture::{msg, store};

    /// A delivery through one store wakes a session watching through another store on
    /// the same database (another mailbox server's storage), and no session watching
    /// a store on another database.
    #[tokio::test]
    async fn stores_share_their_database_and_nothing_else() {
        let (s, dir) = store().await;
        let (elsewhere, other_dir) = store().await;
        let beside = s.beside(dir.join("mail2"));
        assert!(Arc::ptr_eq(&s.database, &beside.database));
        assert!(!Arc::ptr_eq(&s.database, &elsewhere.database));
        s.ensure_user("amy").await.unwrap();
        let (here, there) = (beside.watch("amy"), elsewhere.watch("amy"));
        s.append("amy", "INBOX", msg(1), &[], None).await.unwrap();
        assert!(here.has_changed().unwrap(), "woken through the other store");
        assert!(
            !there.has_changed().unwrap(),
            "another database, no wake-up"
        );
        std::fs::remove_dir_all(dir).ok();
        std::fs::remove_dir_all(other_dir).ok();
    }

    /// A POP3 maildrop open through one mailbox server's store is locked for the
    /// others on the same database until the session lets go, and not elsewhere.
    #[tokio::test]
    async fn maildrop_locks_hold_across_the_stores_of_one_database() {
        let (s, dir) = store().await;
        let (elsewhere, other_dir) = store().await;
        let beside = s.beside(dir.join("mail2"));
        let held = s.lock_maildrop("amy").expect("the first session locks");
        assert!(
            beside.lock_maildrop("amy").is_none(),
            "locked for the other server"
        );
        assert!(s.lock_maildrop("bob").is_some(), "another user is free");
        let other = elsewhere.lock_maildrop("amy");
        assert!(other.is_some(), "another database is not locked");
        drop(held);
        assert!(
            beside.lock_maildrop("amy").is_some(),
            "free once the session ends"
        );
        std::fs::remove_dir_all(dir).ok();
        std::fs::remove_dir_all(other_dir).ok();
    }
}
