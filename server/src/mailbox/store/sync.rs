//! Indexing what is on disk but not in the index: files another program dropped into
//! a mailbox's `new/`, and files written before a crash whose row was never committed.

use std::collections::HashSet;
use std::time::UNIX_EPOCH;

use super::index::INSERT_MESSAGE;
use super::local::Param;
use super::maildir::{self, Maildir};
use super::{Result, Store, StoreError, blocking, names, now};

/// How old the modification time of `new/` must be for an unchanged one to mean that
/// nothing was added since it was last looked at (file systems with one-second times).
const NEW_SETTLED: std::time::Duration = std::time::Duration::from_secs(2);

/// How many files one transaction of [`Store::index_files`] indexes: on SQLite its
/// statements run on the calling thread, a few milliseconds for this many, and each
/// commit is a sync of the database.
const INDEX_BATCH: usize = 1000;

impl Store {
    /// Indexes what is on disk but not in the index: files another program dropped into
    /// `new/`, and files written before a crash whose row was never committed. Returns
    /// how many messages were added.
    /// The first sync of a mailbox in this process also finishes interrupted expunges
    /// and scans `cur/`; later ones only look at `new/`.
    pub async fn sync(&self, username: &str, name: &str) -> Result<usize> {
        let name = names::canonical(name)?;
        let dir = self.maildir(username, &name)?;
        let key = (username.to_string(), name.clone());
        let first = !self
            .scanned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&key);
        if !dir.exists() {
            // No folder: say whether the mailbox is unknown or its folder went missing.
            self.mailbox(username, &name).await?;
        }
        if !first {
            // Only another program drops mail into `new/` (deliveries write to `cur/`),
            // so its modification time says whether there is anything to look at: a
            // stat, where listing it took a trip to the blocking pool on every STATUS
            // and NOOP. A time under NEW_SETTLED old is looked at anyway, for file
            // systems whose times are coarse.
            let stamp = std::fs::metadata(dir.path.join("new"))
                .and_then(|m| m.modified())
                .ok()
                .filter(|t| t.elapsed().is_ok_and(|age| age >= NEW_SETTLED));
            let seen = |stamp: &std::time::SystemTime| {
                self.new_seen
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&key)
                    == Some(stamp)
            };
            if stamp.as_ref().is_some_and(seen) {
                return Ok(0);
            }
            let scan = dir.clone();
            let new = blocking(move || scan.adopt_all(scan.list("new")?)).await?;
            let found = new.into_iter().map(|file| (file, false)).collect();
            let added = match self.index_files(username, &name, &dir, found).await {
                Ok(added) => added,
                Err(e) => {
                    // The files moved to `cur/` may lack their rows: the next sync
                    // scans `cur/` as a first one does, and indexes them.
                    self.scanned
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&key);
                    return Err(e);
                }
            };
            if added > 0 {
                self.changed(username);
            } else if let Some(stamp) = stamp {
                // Nothing came since that time: until it changes, nothing has.
                self.new_seen
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, stamp);
            }
            return Ok(added);
        }
        // One full scan at a time, so that no file is indexed twice.
        let _scan = self.scan_lock.lock().await;
        if self
            .scanned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&key)
        {
            return Ok(0);
        }
        // Finish expunges a crash interrupted before anything else.
        self.finish_expunges(username, &name).await?;
        let known: HashSet<String> = self
            .messages(username, &name)
            .await?
            .into_iter()
            .map(|m| m.file)
            .collect();
        let scan = dir.clone();
        // What another program dropped into `new/` moves to `cur/` first (the files
        // another session took meanwhile left out); in `cur/`, what the index lacks is
        // this store's own writing (a row never committed) and keeps the UID it names.
        let (cur, new) =
            blocking(move || Ok((scan.list("cur")?, scan.adopt_all(scan.list("new")?)?))).await?;
        let mut found: Vec<(String, bool)> = cur
            .into_iter()
            .filter(|f| !known.contains(maildir::base(f)))
            .map(|f| (f, true))
            .collect();
        found.extend(new.into_iter().map(|f| (f, false)));
        // Oldest first, so UIDs follow arrival order.
        found.sort_by(|a, b| maildir::base(&a.0).cmp(maildir::base(&b.0)));
        let added = self.index_files(username, &name, &dir, found).await?;
        self.scanned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key);
        if added > 0 {
            self.changed(username);
        }
        Ok(added)
    }

    /// Adds index rows for files in `cur/`, in the order given, [`INDEX_BATCH`] to a
    /// transaction; returns how many. A file keeps the UID its name carries if that UID
    /// is free and below UIDNEXT; a file this store wrote itself (`ours`) keeps it even
    /// at or above UIDNEXT, which then moves past it (after a power loss the index may
    /// be older than the files); any other gets a new UID. A file gone before it was
    /// looked at (another session's expunge) is left out.
    async fn index_files(
        &self,
        username: &str,
        name: &str,
        dir: &Maildir,
        files: Vec<(String, bool)>,
    ) -> Result<usize> {
        if files.is_empty() {
            return Ok(0);
        }
        let cur = dir.path.join("cur");
        let found = blocking(move || {
            let mut found = Vec::with_capacity(files.len());
            for (file, ours) in files {
                let meta = match std::fs::metadata(cur.join(&file)) {
                    Ok(meta) => meta,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                let internal_date = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or_else(now, |d| d.as_secs() as i64);
                found.push(Found {
                    file,
                    ours,
                    size: meta.len(),
                    internal_date,
                });
            }
            Ok(found)
        })
        .await?;
        let mut added = 0;
        for batch in found.chunks(INDEX_BATCH) {
            added += self.index_batch(username, name, batch).await?;
        }
        Ok(added)
    }

    /// One transaction of [`Store::index_files`]: the mailbox row read and locked once,
    /// the UIDs and MODSEQs given in order as [`Store::reserve`] and
    /// [`Store::insert`] would give them one at a time, and the row written once.
    async fn index_batch(&self, username: &str, name: &str, files: &[Found]) -> Result<usize> {
        let mut tx = self.write_tx().await?;
        self.lock_mailbox(&mut tx, username, name).await?;
        let (mut uidnext, mut modseq) = tx
            .fetch(
                "SELECT uidnext, highestmodseq FROM mailboxes WHERE username = $1 AND name = $2",
                &[Param::Text(username), Param::Text(name)],
                |row| Ok((row.int("uidnext")?, row.int("highestmodseq")?)),
            )
            .await?
            .pop()
            .ok_or_else(|| StoreError::NoMailbox(name.to_string()))?;
        for f in files {
            let claimed = maildir::uid_of(&f.file)
                .filter(|&u| u > 0 && (i64::from(u) < uidnext || f.ours && u < u32::MAX - 1));
            // Every row's UID is below UIDNEXT (UIDs are reserved by moving it), so a
            // UID at or above it is free; one below it is looked up, in the transaction,
            // where a row it added counts too.
            let above = claimed.filter(|&u| i64::from(u) >= uidnext);
            if let Some(uid) = above {
                uidnext = i64::from(uid) + 1;
            }
            let free = match claimed {
                Some(_) if above.is_some() => true,
                Some(uid) => tx
                    .fetch(
                        "SELECT 1 AS taken FROM messages WHERE username = $1 AND mailbox = $2 AND uid = $3",
                        &[
                            Param::Text(username),
                            Param::Text(name),
                            Param::Int(i64::from(uid)),
                        ],
                        |_| Ok(()),
                    )
                    .await?
                    .is_empty(),
                None => false,
            };
            let uid = match claimed {
                Some(uid) if free => uid,
                _ => {
                    uidnext += 1;
                    (uidnext - 1) as u32
                }
            };
            modseq += 1;
            let flags = maildir::flags_of(&f.file).join(" ");
            tx.execute(
                INSERT_MESSAGE,
                &[
                    Param::Text(username),
                    Param::Text(name),
                    Param::Int(i64::from(uid)),
                    Param::Int(modseq),
                    Param::Text(&flags),
                    Param::Int(f.internal_date),
                    Param::Int(f.size as i64),
                    Param::Text(maildir::base(&f.file)),
                ],
            )
            .await?;
        }
        tx.execute(
            "UPDATE mailboxes SET uidnext = $1, highestmodseq = $2 WHERE username = $3 AND name = $4",
            &[
                Param::Int(uidnext),
                Param::Int(modseq),
                Param::Text(username),
                Param::Text(name),
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(files.len())
    }
}

/// A file in `cur/` to index, as [`Store::index_files`] found it.
struct Found {
    file: String,
    /// Written by this store (found in `cur/`), not dropped into `new/` by another
    /// program.
    ours: bool,
    size: u64,
    internal_date: i64,
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{msg, store};
    use super::super::maildir;
    use super::INDEX_BATCH;

    #[tokio::test]
    async fn files_dropped_into_new_are_picked_up() {
        let (s, dir) = store().await;
        s.ensure_user("nora").await.unwrap();
        s.append("nora", "INBOX", msg(1), &[], None).await.unwrap();
        std::fs::write(dir.join("mail/nora/new/1700000000.external.host"), msg(9)).unwrap();
        assert_eq!(s.sync("nora", "INBOX").await.unwrap(), 1);
        assert_eq!(s.sync("nora", "INBOX").await.unwrap(), 0);
        let list = s.messages("nora", "INBOX").await.unwrap();
        assert_eq!(list.iter().map(|m| m.uid).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(s.read("nora", "INBOX", 2).await.unwrap(), msg(9));
        assert!(!dir.join("mail/nora/new/1700000000.external.host").exists());
        std::fs::remove_dir_all(dir).ok();
    }

    /// Sets the modification time of a folder.
    fn touch(folder: &std::path::Path, at: std::time::SystemTime) {
        std::fs::File::open(folder)
            .and_then(|f| f.set_modified(at))
            .expect("a folder's time can be set");
    }

    #[tokio::test]
    async fn an_unchanged_new_folder_is_not_listed_and_a_changed_one_is() {
        let (s, dir) = store().await;
        s.ensure_user("nora").await.unwrap();
        s.append("nora", "INBOX", msg(1), &[], None).await.unwrap();
        assert_eq!(s.sync("nora", "INBOX").await.unwrap(), 0);
        let new = dir.join("mail/nora/new");
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        touch(&new, old);
        // Listed once more, found empty: its time is kept.
        assert_eq!(s.sync("nora", "INBOX").await.unwrap(), 0);
        // A file whose arrival left the folder's time as it was is not looked for:
        // the stat stands in for the listing.
        std::fs::write(new.join("1700000000.hidden.host"), msg(8)).unwrap();
        touch(&new, old);
        assert_eq!(s.sync("nora", "INBOX").await.unwrap(), 0);
        // A file dropped as other programs do changes the time: it is found (with the
        // one before it).
        std::fs::write(new.join("1700000001.external.host"), msg(9)).unwrap();
        assert_eq!(s.sync("nora", "INBOX").await.unwrap(), 2);
        // A time under NEW_SETTLED old (here: ahead of the clock, so that a slow
        // machine cannot age it) is looked at every time: a file system with
        // one-second times may show a file arriving within it as no change.
        let recent = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
        touch(&new, recent);
        assert_eq!(s.sync("nora", "INBOX").await.unwrap(), 0);
        std::fs::write(new.join("1700000002.external.host"), msg(10)).unwrap();
        touch(&new, recent);
        assert_eq!(s.sync("nora", "INBOX").await.unwrap(), 1);
        let uids = s.uids("nora", "INBOX").await.unwrap();
        assert_eq!(uids, [1, 2, 3, 4]);
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn a_file_newer_than_the_index_keeps_its_uid_and_moves_uidnext() {
        let (s, dir) = store().await;
        s.ensure_user("dora").await.unwrap();
        s.append("dora", "INBOX", msg(1), &[], None).await.unwrap();
        // The index lost the reservation of UID 7 (a power loss), but the file is there.
        let md = s.maildir("dora", "INBOX").unwrap();
        md.write(&maildir::unique_name(10, 7), &[], &msg(2))
            .unwrap();
        assert_eq!(s.sync("dora", "INBOX").await.unwrap(), 1);
        let uids = s.uids("dora", "INBOX").await.unwrap();
        assert_eq!(uids, [1, 7]);
        assert_eq!(s.mailbox("dora", "INBOX").await.unwrap().uidnext, 8);
        let (_, next) = s.append("dora", "INBOX", msg(3), &[], None).await.unwrap();
        assert_eq!(next, 8);
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn many_dropped_files_are_indexed_in_order_across_transactions() {
        let (s, dir) = store().await;
        s.ensure_user("nora").await.unwrap();
        s.append("nora", "INBOX", msg(1), &[], None).await.unwrap();
        let before = s.mailbox("nora", "INBOX").await.unwrap();
        // More than two transactions' worth, some with flags in their names.
        let drop = |from: usize, count: usize| {
            for n in from..from + count {
                let flags = if n % 3 == 0 { ":2,S" } else { "" };
                let file = format!("mail/nora/new/1700000000.M{n:06}.external.host{flags}");
                std::fs::write(dir.join(file), msg(n as u32 + 2)).unwrap();
            }
        };
        let first = 2 * INDEX_BATCH + 7;
        drop(0, first);
        assert_eq!(s.sync("nora", "INBOX").await.unwrap(), first);
        // Then the later kind of sync, which looks at `new/` only.
        drop(first, INDEX_BATCH + 1);
        assert_eq!(s.sync("nora", "INBOX").await.unwrap(), INDEX_BATCH + 1);
        let total = first + INDEX_BATCH + 1;
        let list = s.messages("nora", "INBOX").await.unwrap();
        let uids: Vec<u32> = list.iter().map(|m| m.uid).collect();
        assert_eq!(uids, (1..=total as u32 + 1).collect::<Vec<_>>());
        // Each row its own MODSEQ, rising with the UID, the mailbox's the last of them.
        assert!(list.windows(2).all(|w| w[0].modseq < w[1].modseq));
        let after = s.mailbox("nora", "INBOX").await.unwrap();
        assert_eq!(after.highestmodseq, before.highestmodseq + total as u64);
        assert_eq!(list.last().unwrap().modseq, after.highestmodseq);
        assert_eq!(after.uidnext, total as u32 + 2);
        // Files in arrival order: UID n + 2 holds message n + 2, with its flags.
        for uid in [2, 3, INDEX_BATCH as u32 + 2, total as u32 + 1] {
            assert_eq!(s.read("nora", "INBOX", uid).await.unwrap(), msg(uid));
            let seen = list[uid as usize - 1].flags == ["\\Seen"];
            assert_eq!(seen, (uid - 2) % 3 == 0, "UID {uid}");
        }
        assert_eq!(
            std::fs::read_dir(dir.join("mail/nora/new"))
                .unwrap()
                .count(),
            0
        );
        let (_, next) = s.append("nora", "INBOX", msg(0), &[], None).await.unwrap();
        assert_eq!(next, total as u32 + 2);
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn files_moved_to_cur_before_a_failed_index_are_indexed_by_the_next_sync() {
        let (s, dir) = store().await;
        s.ensure_user("nora").await.unwrap();
        s.append("nora", "INBOX", msg(1), &[], None).await.unwrap();
        assert_eq!(s.sync("nora", "INBOX").await.unwrap(), 0);
        std::fs::write(dir.join("mail/nora/new/1700000000.external.host"), msg(9)).unwrap();
        // The index cannot take rows for a moment.
        let rename = |from: &str, to: &str| {
            let sql = format!("ALTER TABLE {from} RENAME TO {to}");
            let pool = s.pool.clone();
            async move { sqlx::query(&sql).execute(&pool).await.unwrap() }
        };
        rename("messages", "messages_away").await;
        assert!(s.sync("nora", "INBOX").await.is_err());
        rename("messages_away", "messages").await;
        // The file left `new/` for `cur/` without a row; the next sync finds it there.
        assert_eq!(
            std::fs::read_dir(dir.join("mail/nora/new"))
                .unwrap()
                .count(),
            0
        );
        assert_eq!(s.sync("nora", "INBOX").await.unwrap(), 1);
        assert_eq!(s.uids("nora", "INBOX").await.unwrap(), [1, 2]);
        assert_eq!(s.read("nora", "INBOX", 2).await.unwrap(), msg(9));
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn two_files_that_name_one_uid_get_two() {
        let (s, dir) = store().await;
        s.ensure_user("dora").await.unwrap();
        s.append("dora", "INBOX", msg(1), &[], None).await.unwrap();
        let md = s.maildir("dora", "INBOX").unwrap();
        md.write(&maildir::unique_name(10, 5), &[], &msg(2))
            .unwrap();
        md.write(&maildir::unique_name(10, 5), &[], &msg(3))
            .unwrap();
        assert_eq!(s.sync("dora", "INBOX").await.unwrap(), 2);
        assert_eq!(s.uids("dora", "INBOX").await.unwrap(), [1, 5, 6]);
        assert_eq!(s.read("dora", "INBOX", 5).await.unwrap(), msg(2));
        assert_eq!(s.read("dora", "INBOX", 6).await.unwrap(), msg(3));
        assert_eq!(s.mailbox("dora", "INBOX").await.unwrap().uidnext, 7);
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn a_file_whose_row_was_never_committed_keeps_its_uid() {
        let (s, dir) = store().await;
        s.ensure_user("carol").await.unwrap();
        s.append("carol", "INBOX", msg(1), &[], None).await.unwrap();
        // A crash after the file was written but before its row: reserve, write, no row.
        let (_, uid) = s.reserve("carol", "INBOX").await.unwrap();
        let md = s.maildir("carol", "INBOX").unwrap();
        md.write(&maildir::unique_name(10, uid), &[], &msg(2))
            .unwrap();
        assert_eq!(s.sync("carol", "INBOX").await.unwrap(), 1);
        let uids: Vec<u32> = s
            .messages("carol", "INBOX")
            .await
            .unwrap()
            .iter()
            .map(|m| m.uid)
            .collect();
        assert_eq!(uids, [1, uid]);
        std::fs::remove_dir_all(dir).ok();
    }
}
