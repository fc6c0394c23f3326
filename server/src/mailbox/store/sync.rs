//! Indexing what is on disk but not in the index: files another program dropped into
//! a mailbox's `new/`, and files written before a crash whose row was never committed.

use std::collections::HashSet;
use std::time::UNIX_EPOCH;

use super::maildir::{self, Maildir};
use super::{MessageInfo, Result, Store, StoreError, blocking, names, now};

/// How old the modification time of `new/` must be for an unchanged one to mean that
/// nothing was added since it was last looked at (file systems with one-second times).
const NEW_SETTLED: std::time::Duration = std::time::Duration::from_secs(2);

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
            let new = blocking(move || scan.list("new")).await?;
            let mut added = 0;
            for file in new {
                let Some(file) = self.adopt(&dir, file).await? else {
                    continue;
                };
                self.index_file(username, &name, &dir, &file, false).await?;
                added += 1;
            }
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
        let (cur, new) = blocking(move || Ok((scan.list("cur")?, scan.list("new")?))).await?;
        let mut added = 0;
        let mut found: Vec<(String, bool)> = cur
            .into_iter()
            .filter(|f| !known.contains(maildir::base(f)))
            .map(|f| (f, false))
            .collect();
        found.extend(new.into_iter().map(|f| (f, true)));
        // Oldest first, so UIDs follow arrival order.
        found.sort_by(|a, b| maildir::base(&a.0).cmp(maildir::base(&b.0)));
        for (file, in_new) in found {
            let file = if in_new {
                match self.adopt(&dir, file).await? {
                    Some(file) => file,
                    None => continue,
                }
            } else {
                file
            };
            self.index_file(username, &name, &dir, &file, !in_new)
                .await?;
            added += 1;
        }
        self.scanned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key);
        if added > 0 {
            self.changed(username);
        }
        Ok(added)
    }

    /// Moves a file from `new/` to `cur/`; `None` if another session took it first.
    async fn adopt(&self, dir: &Maildir, file: String) -> Result<Option<String>> {
        let d = dir.clone();
        match blocking(move || d.adopt(&file)).await {
            Ok(file) => Ok(Some(file)),
            Err(StoreError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Adds an index row for a file in `cur/`, under the UID its name carries if that
    /// UID is free and below UIDNEXT, else under a new UID. A file this store wrote
    /// itself (`ours`: found in `cur/`) keeps its UID even at or above UIDNEXT, which
    /// then moves past it: after a power loss the index may be older than the files.
    async fn index_file(
        &self,
        username: &str,
        name: &str,
        dir: &Maildir,
        file: &str,
        ours: bool,
    ) -> Result<()> {
        let path = dir.path.join("cur").join(file);
        let meta = blocking(move || std::fs::metadata(path)).await?;
        let internal_date = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or_else(now, |d| d.as_secs() as i64);
        let info = self.mailbox(username, name).await?;
        let claimed = maildir::uid_of(file)
            .filter(|&u| u > 0 && (u < info.uidnext || ours && u < u32::MAX - 1));
        if let Some(uid) = claimed.filter(|&u| u >= info.uidnext) {
            let _turn = self.write_turn().await;
            sqlx::query(
                "UPDATE mailboxes SET uidnext = $1 WHERE username = $2 AND name = $3 AND uidnext <= $4",
            )
            .bind(i64::from(uid) + 1)
            .bind(username)
            .bind(name)
            .bind(i64::from(uid))
            .execute(&self.pool)
            .await?;
        }
        let taken = match claimed {
            Some(uid) => sqlx::query(
                "SELECT 1 FROM messages WHERE username = $1 AND mailbox = $2 AND uid = $3",
            )
            .bind(username)
            .bind(name)
            .bind(i64::from(uid))
            .fetch_optional(&self.pool)
            .await?
            .is_some(),
            None => true,
        };
        let uid = match claimed {
            Some(uid) if !taken => uid,
            _ => self.reserve(username, name).await?.1,
        };
        let message = MessageInfo {
            uid,
            modseq: 0, // taken by insert
            flags: maildir::flags_of(file),
            internal_date,
            size: meta.len(),
            file: maildir::base(file).to_string(),
        };
        self.insert(username, name, &message).await
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{msg, store};
    use super::super::maildir;

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
