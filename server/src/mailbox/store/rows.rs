//! The mailbox rows read in the last moment, kept so that one IMAP command reads its
//! mailbox's row once: a FETCH read it for the index and again for the refresh that
//! ends every command (with the batched STORE, imaptest's mix went from 3.77 to 3.03
//! statements per command).
//!
//! A change this process commits drops the user's rows before the session that made
//! it answers (see [`Store::changed`]), so every session of this process sees it in its
//! next command. What another process changes (the CLI, another node on PostgreSQL)
//! shows once a kept row is [`FRESH_FOR`] old.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::MailboxInfo;
#[cfg(doc)]
use super::Store;

/// How long a kept row stands for the database's.
pub(super) const FRESH_FOR: Duration = Duration::from_millis(100);

/// Past this many users with kept rows, those with none fresh are dropped when a row
/// is added.
const PRUNE_AT: usize = 1024;

/// Per user, per mailbox name: the row and when it was read.
type Kept = HashMap<String, HashMap<String, (MailboxInfo, Instant)>>;

#[derive(Default)]
pub(super) struct Rows {
    rows: Mutex<Kept>,
    /// Moves on every change: a row read while a change committed is not kept.
    changes: AtomicU64,
}

impl Rows {
    /// What [`Rows::keep`] is given back: take it before reading the row.
    pub(super) fn before_read(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// The row of `name` if one was read less than [`FRESH_FOR`] ago and no change of
    /// this process came since.
    pub(super) fn get(&self, username: &str, name: &str) -> Option<MailboxInfo> {
        let rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        let (info, at) = rows.get(username)?.get(name)?;
        (at.elapsed() < FRESH_FOR).then(|| info.clone())
    }

    /// Keeps a row read at `at`, unless a change committed since `before` (which
    /// [`Rows::before_read`] gave before the read).
    pub(super) fn keep(&self, username: &str, info: &MailboxInfo, before: u64, at: Instant) {
        let mut rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        if self.changes.load(Ordering::Acquire) != before {
            return;
        }
        if rows.len() >= PRUNE_AT && !rows.contains_key(username) {
            rows.retain(|_, kept| kept.values().any(|(_, at)| at.elapsed() < FRESH_FOR));
        }
        rows.entry(username.to_string())
            .or_default()
            .insert(info.name.clone(), (info.clone(), at));
    }

    /// Forgets the user's rows: call once a change to their mail or mailboxes has
    /// committed, before the session that made it answers.
    pub(super) fn changed(&self, username: &str) {
        let mut rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        self.changes.fetch_add(1, Ordering::AcqRel);
        rows.remove(username);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::super::FlagOp;
    use super::super::fixture::{msg, store};

    /// An APPEND, a STORE, an EXPUNGE and a RENAME through the store show in the next
    /// kept row at once; a change behind the store's back (another process) shows once
    /// the row is stale.
    #[tokio::test]
    async fn kept_rows_follow_changes_here_at_once_and_elsewhere_within_a_moment() {
        let (s, dir) = store().await;
        s.ensure_user("amy").await.unwrap();
        let first = s.mailbox_kept("amy", "INBOX").await.unwrap();
        assert_eq!(first, s.mailbox("amy", "INBOX").await.unwrap());
        let uid = s.append("amy", "INBOX", msg(1), &[], None).await.unwrap().1;
        let appended = s.mailbox_kept("amy", "INBOX").await.unwrap();
        assert_eq!(appended.uidnext, first.uidnext + 1);
        assert!(appended.highestmodseq > first.highestmodseq);
        s.store_flags("amy", "INBOX", &[uid], FlagOp::Add, &["\\Seen".to_string()])
            .await
            .unwrap();
        let stored = s.mailbox_kept("amy", "INBOX").await.unwrap();
        assert!(stored.highestmodseq > appended.highestmodseq);
        s.expunge("amy", "INBOX", &[uid]).await.unwrap();
        let expunged = s.mailbox_kept("amy", "INBOX").await.unwrap();
        assert_eq!(expunged.expungedmodseq, expunged.highestmodseq);
        assert!(expunged.highestmodseq > stored.highestmodseq);
        s.create_mailbox("amy", "Projects", "").await.unwrap();
        s.mailbox_kept("amy", "Projects").await.unwrap();
        s.rename_mailbox("amy", "Projects", "Done").await.unwrap();
        assert!(s.mailbox_kept("amy", "Projects").await.is_err());
        assert_eq!(s.mailbox_kept("amy", "Done").await.unwrap().name, "Done");

        // Another process moves UIDNEXT: the kept row until it is stale, then the new.
        let kept = s.mailbox_kept("amy", "INBOX").await.unwrap();
        let behind = Instant::now();
        sqlx::query("UPDATE mailboxes SET uidnext = 999 WHERE username = 'amy' AND name = 'INBOX'")
            .execute(&s.pool)
            .await
            .unwrap();
        let seen = s.mailbox_kept("amy", "INBOX").await.unwrap();
        if behind.elapsed() < super::FRESH_FOR {
            assert_eq!(seen, kept, "kept for a moment");
        }
        tokio::time::sleep(super::FRESH_FOR).await;
        assert_eq!(s.mailbox_kept("amy", "INBOX").await.unwrap().uidnext, 999);
        std::fs::remove_dir_all(dir).ok();
    }
}
