//! Expunges, journaled: the messages' rows go and their files are recorded, in one
//! transaction; then the files are unlinked and the record forgotten. An expunge a
//! crash interrupted is finished by the mailbox's first [`Store::sync`] after the
//! next start, so that an expunged message never comes back.

use sqlx::Row;

use super::index::{UIDS_PER_STATEMENT, split_flags, uid_params, uid_placeholders};
use super::local::Param;
use super::{Result, Store, StoreError, blocking, maildir, names};

impl Store {
    /// Removes messages atomically: their rows go, and their files are recorded for
    /// unlinking, in one transaction; then the files are unlinked. Returns how many
    /// messages were removed (UIDs not in the mailbox are ignored).
    pub async fn expunge(&self, username: &str, name: &str, uids: &[u32]) -> Result<usize> {
        let name = names::canonical(name)?;
        if uids.is_empty() {
            return Ok(0);
        }
        let mut tx = self.write_tx().await?;
        self.lock_mailbox(&mut tx, username, &name).await?;
        // A few hundred per statement: a POP3 QUIT of thousands stays a few statements.
        // Each deleted row says which file to unlink, and with which flags it is found
        // at once.
        let mut files: Vec<(String, Vec<String>)> = Vec::new();
        let mut gone: Vec<String> = Vec::new();
        for chunk in uids.chunks(UIDS_PER_STATEMENT) {
            let sql = format!(
                "DELETE FROM messages WHERE username = $1 AND mailbox = $2 AND uid IN ({}) RETURNING file, flags, uid",
                uid_placeholders(chunk)
            );
            let rows = tx
                .fetch(&sql, &uid_params(username, &name, chunk), |row| {
                    Ok((row.text("file")?, row.text("flags")?, row.int("uid")?))
                })
                .await?;
            for (file, flags, uid) in rows {
                files.push((file, split_flags(&flags)));
                gone.push(uid.to_string());
            }
        }
        if files.is_empty() {
            tx.rollback().await?;
            return Ok(0);
        }
        let modseq = tx
            .fetch(
                "UPDATE mailboxes SET highestmodseq = highestmodseq + 1, expungedmodseq = highestmodseq + 1 \
                 WHERE username = $1 AND name = $2 RETURNING highestmodseq",
                &[Param::Text(username), Param::Text(&name)],
                |row| row.int("highestmodseq"),
            )
            .await?
            .pop()
            .ok_or_else(|| StoreError::NoMailbox(name.clone()))?;
        // The journal: one row, the file names joined by '/' (which no file name holds).
        let journal: Vec<&str> = files.iter().map(|(file, _)| file.as_str()).collect();
        let (journal, gone) = (journal.join("/"), gone.join(","));
        tx.execute(
            "INSERT INTO expunge_batches (username, mailbox, modseq, files) VALUES ($1, $2, $3, $4)",
            &[
                Param::Text(username),
                Param::Text(&name),
                Param::Int(modseq),
                Param::Text(&journal),
            ],
        )
        .await?;
        // What vanished, for QRESYNC clients that come back later.
        tx.execute(
            "INSERT INTO vanished (username, mailbox, modseq, uids) VALUES ($1, $2, $3, $4)",
            &[
                Param::Text(username),
                Param::Text(&name),
                Param::Int(modseq),
                Param::Text(&gone),
            ],
        )
        .await?;
        tx.commit().await?;
        self.changed(username);
        self.unlink(username, &name, &files).await?;
        // Forgetting the unlinked files is another write: done after the answer, so
        // that a POP3 QUIT or an EXPUNGE does not wait for the write lock twice. A
        // record left by a crash is harmless: the next start unlinks nothing and
        // forgets it.
        let (store, user) = (self.clone(), username.to_string());
        tokio::spawn(async move {
            let done = Journal {
                batches: vec![modseq],
                ..Journal::default()
            };
            if let Err(error) = store.forget_expunged(&user, &name, &done).await {
                tracing::debug!(%error, "expunged files stay recorded until the next start");
            }
        });
        Ok(files.len())
    }

    /// The UIDs expunged from a mailbox after MODSEQ `since` (QRESYNC), ascending. For
    /// a MODSEQ older than the record (expunges before it began were not kept), every
    /// UID below UIDNEXT that the mailbox no longer holds: a client ignores UIDs it
    /// never had, and misses none it had.
    pub async fn vanished_since(&self, username: &str, name: &str, since: u64) -> Result<Vec<u32>> {
        let name = names::canonical(name)?;
        let (from, uidnext) = self
            .select(
                "SELECT vanished_from, uidnext FROM mailboxes WHERE username = $1 AND name = $2",
                &[Param::Text(username), Param::Text(&name)],
                |row| {
                    Ok((
                        row.int("vanished_from")?.max(0) as u64,
                        row.int("uidnext")?.max(1) as u32,
                    ))
                },
            )
            .await?
            .pop()
            .ok_or_else(|| StoreError::NoMailbox(name.clone()))?;
        if since < from {
            let present = self.uids(username, &name).await?;
            let mut present = present.into_iter().peekable();
            let mut gone = Vec::new();
            for uid in 1..uidnext {
                if present.peek() == Some(&uid) {
                    present.next();
                } else {
                    gone.push(uid);
                }
            }
            return Ok(gone);
        }
        let lists = self
            .select(
                "SELECT uids FROM vanished WHERE username = $1 AND mailbox = $2 AND modseq > $3",
                &[
                    Param::Text(username),
                    Param::Text(&name),
                    Param::Int(since.min(i64::MAX as u64) as i64),
                ],
                |row| row.text("uids"),
            )
            .await?;
        let mut uids = Vec::new();
        for list in lists {
            uids.extend(list.split(',').filter_map(|u| u.parse::<u32>().ok()));
        }
        uids.sort_unstable();
        uids.dedup();
        Ok(uids)
    }

    /// The expunges of a mailbox whose files may not all be unlinked yet.
    async fn pending_expunges(&self, username: &str, name: &str) -> Result<Journal> {
        let mut journal = Journal::default();
        let batches = sqlx::query(
            "SELECT modseq, files FROM expunge_batches WHERE username = $1 AND mailbox = $2",
        )
        .bind(username)
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        for row in batches {
            journal.batches.push(row.try_get(0)?);
            let files: String = row.try_get(1)?;
            journal.files.extend(
                files
                    .split('/')
                    .filter(|f| !f.is_empty())
                    .map(|f| (f.to_string(), Vec::new())),
            );
        }
        // Rows of the per-message journal that versions before 0007 wrote.
        let legacy = sqlx::query("SELECT file FROM expunges WHERE username = $1 AND mailbox = $2")
            .bind(username)
            .bind(name)
            .fetch_all(&self.pool)
            .await?;
        journal.legacy = !legacy.is_empty();
        for row in legacy {
            journal.files.push((row.try_get(0)?, Vec::new()));
        }
        Ok(journal)
    }

    /// Unlinks the files of expunged messages (each with the flags the index had for
    /// it, so it is found at once), durably.
    async fn unlink(
        &self,
        username: &str,
        name: &str,
        files: &[(String, Vec<String>)],
    ) -> Result<()> {
        let dir = self.maildir(username, name)?;
        let gone = files.to_vec();
        blocking(move || {
            for (file, flags) in &gone {
                dir.remove(file, flags)?;
            }
            maildir::sync_dir(&dir.path.join("cur"))
        })
        .await
    }

    /// Finishes the expunges a crash interrupted: unlinks their files, then forgets them.
    pub(super) async fn finish_expunges(&self, username: &str, name: &str) -> Result<()> {
        let journal = self.pending_expunges(username, name).await?;
        if journal.files.is_empty() {
            return Ok(());
        }
        self.unlink(username, name, &journal.files).await?;
        self.forget_expunged(username, name, &journal).await
    }

    /// Removes the journal entries of expunges whose files are unlinked.
    async fn forget_expunged(&self, username: &str, name: &str, journal: &Journal) -> Result<()> {
        let mut tx = self.write_tx().await?;
        for &modseq in &journal.batches {
            tx.execute(
                "DELETE FROM expunge_batches WHERE username = $1 AND mailbox = $2 AND modseq = $3",
                &[Param::Text(username), Param::Text(name), Param::Int(modseq)],
            )
            .await?;
        }
        if journal.legacy {
            tx.execute(
                "DELETE FROM expunges WHERE username = $1 AND mailbox = $2",
                &[Param::Text(username), Param::Text(name)],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Expunges whose files may not all be unlinked: the journal rows (by their MODSEQ),
/// whether rows of the older per-message journal are among them, and the files.
#[derive(Debug, Default)]
struct Journal {
    batches: Vec<i64>,
    legacy: bool,
    files: Vec<(String, Vec<String>)>,
}

#[cfg(test)]
mod tests {
    use sqlx::Row;

    use super::super::fixture::{msg, store};
    use super::super::{Store, maildir};

    /// How many rows of an expunge journal name dora's mail.
    async fn journal_rows(s: &Store, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE username = 'dora'");
        sqlx::query(&sql)
            .fetch_one(&s.pool)
            .await
            .unwrap()
            .try_get(0)
            .unwrap()
    }

    #[tokio::test]
    async fn what_vanished_since_a_modseq_is_remembered_and_renamed_along() {
        let (s, _dir) = store().await;
        s.ensure_user("dora").await.unwrap();
        for n in 1..=6 {
            s.append("dora", "INBOX", msg(n), &[], None).await.unwrap();
        }
        let before = s.mailbox("dora", "INBOX").await.unwrap().highestmodseq;
        s.expunge("dora", "INBOX", &[2, 3]).await.unwrap();
        let middle = s.mailbox("dora", "INBOX").await.unwrap().highestmodseq;
        s.expunge("dora", "INBOX", &[5]).await.unwrap();
        assert_eq!(
            s.vanished_since("dora", "INBOX", before).await.unwrap(),
            [2, 3, 5]
        );
        assert_eq!(
            s.vanished_since("dora", "INBOX", middle).await.unwrap(),
            [5]
        );
        let now = s.mailbox("dora", "INBOX").await.unwrap().highestmodseq;
        assert!(
            s.vanished_since("dora", "INBOX", now)
                .await
                .unwrap()
                .is_empty()
        );
        s.create_mailbox("dora", "Old", "").await.unwrap();
        s.append("dora", "Old", msg(7), &[], None).await.unwrap();
        s.append("dora", "Old", msg(8), &[], None).await.unwrap();
        s.expunge("dora", "Old", &[1]).await.unwrap();
        s.rename_mailbox("dora", "Old", "Older").await.unwrap();
        assert_eq!(s.vanished_since("dora", "Older", 0).await.unwrap(), [1]);
        // A MODSEQ from before the record began: every UID that is gone.
        sqlx::query(
            "UPDATE mailboxes SET vanished_from = 1000 WHERE username = 'dora' AND name = 'INBOX'",
        )
        .execute(&s.pool)
        .await
        .unwrap();
        assert_eq!(
            s.vanished_since("dora", "INBOX", middle).await.unwrap(),
            [2, 3, 5]
        );
    }

    #[tokio::test]
    async fn expunged_messages_never_come_back() {
        let (s, dir) = store().await;
        s.ensure_user("dora").await.unwrap();
        for n in 1..=3 {
            s.append("dora", "INBOX", msg(n), &[], None).await.unwrap();
        }
        assert_eq!(s.expunge("dora", "INBOX", &[1, 3, 99]).await.unwrap(), 2);
        let uids: Vec<u32> = s
            .messages("dora", "INBOX")
            .await
            .unwrap()
            .iter()
            .map(|m| m.uid)
            .collect();
        assert_eq!(uids, [2]);
        assert_eq!(
            std::fs::read_dir(dir.join("mail/dora/cur"))
                .unwrap()
                .count(),
            1
        );
        // A crash between the commit and the unlink: the row is gone, the file is not.
        let (_, uid) = s.reserve("dora", "INBOX").await.unwrap();
        let base = maildir::unique_name(10, uid);
        s.maildir("dora", "INBOX")
            .unwrap()
            .write(&base, &[], &msg(4))
            .unwrap();
        sqlx::query("INSERT INTO expunges (username, mailbox, file) VALUES ('dora', 'INBOX', $1)")
            .bind(&base)
            .execute(&s.pool)
            .await
            .unwrap();
        assert_eq!(s.sync("dora", "INBOX").await.unwrap(), 0);
        assert_eq!(s.messages("dora", "INBOX").await.unwrap().len(), 1);
        assert_eq!(
            std::fs::read_dir(dir.join("mail/dora/cur"))
                .unwrap()
                .count(),
            1
        );
        assert_eq!(
            journal_rows(&s, "expunges").await,
            0,
            "finished, then forgotten"
        );
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn an_expunge_a_crash_interrupted_is_finished_at_the_next_start() {
        let (s, dir) = store().await;
        s.ensure_user("dora").await.unwrap();
        for i in 1..=4 {
            s.append("dora", "INBOX", msg(i), &[], None).await.unwrap();
        }
        let cur = dir.join("mail/dora/cur");
        let files = || {
            let mut names: Vec<String> = std::fs::read_dir(&cur)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort_by_key(|f| maildir::uid_of(f));
            names
        };
        let before = files();
        // A 1,000-message QUIT writes one journal row, forgotten once the files are gone.
        assert_eq!(s.expunge("dora", "INBOX", &[1, 2]).await.unwrap(), 2);
        assert_eq!(files(), before[2..]);
        for _ in 0..100 {
            if journal_rows(&s, "expunge_batches").await == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(
            journal_rows(&s, "expunge_batches").await,
            0,
            "the journal row is forgotten"
        );
        // A crash between the commit and the unlink: the rows of UIDs 3 and 4 are gone
        // and the journal names their files, which are still there.
        let left: Vec<String> = before[2..]
            .iter()
            .map(|f| maildir::base(f).to_string())
            .collect();
        let mut tx = s.pool.begin().await.unwrap();
        sqlx::query(
            "DELETE FROM messages WHERE username = 'dora' AND mailbox = 'INBOX' AND uid IN (3, 4)",
        )
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query("INSERT INTO expunge_batches (username, mailbox, modseq, files) VALUES ('dora', 'INBOX', 99, $1)")
            .bind(left.join("/"))
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        // The next start (a new store on the same data): nothing comes back.
        let again = Store::new(dir.join("mail"), s.pool.clone());
        assert_eq!(again.sync("dora", "INBOX").await.unwrap(), 0);
        assert!(again.messages("dora", "INBOX").await.unwrap().is_empty());
        assert_eq!(files(), Vec::<String>::new());
        assert_eq!(journal_rows(&s, "expunge_batches").await, 0);
        std::fs::remove_dir_all(dir).ok();
    }
}
