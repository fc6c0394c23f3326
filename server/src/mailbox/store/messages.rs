//! Messages: APPEND, reading a message or its file, STORE (flags), COPY and MOVE.
//! The index decides what a mailbox holds; the files follow it.

use std::collections::{HashMap, HashSet};

use sqlx::Row;

use super::index::{UIDS_PER_STATEMENT, split_flags, uid_params, uid_placeholders};
use super::local::Param;
use super::{FlagOp, MessageInfo, Result, Store, StoreError, blocking, maildir, names, now};

/// Messages up to this size are read on the calling thread (see [`Store::read_message`]).
const INLINE_READ: u64 = 128 * 1024;

/// How often [`Store::read`] asks the index again for a file renamed meanwhile.
const READ_TRIES: usize = 4;

/// A message to append: its bytes, flags and internal date (`None`: now).
#[derive(Debug)]
pub struct NewMessage {
    pub bytes: Vec<u8>,
    pub flags: Vec<String>,
    pub internal_date: Option<i64>,
}

/// Removes the files of messages that were written but will not be indexed.
async fn discard(dir: &maildir::Maildir, written: &[MessageInfo]) {
    let dir = dir.clone();
    let files: Vec<(String, Vec<String>)> = written
        .iter()
        .map(|m| (m.file.clone(), m.flags.clone()))
        .collect();
    let removed = blocking(move || {
        for (file, flags) in &files {
            dir.remove(file, flags)?;
        }
        Ok(())
    })
    .await;
    if let Err(e) = removed {
        tracing::warn!(error = %e, "could not remove the files of an append that failed");
    }
}

/// What a conditional STORE did.
#[derive(Debug, Default)]
pub struct Stored {
    /// The messages changed: UID, new flags, new MODSEQ.
    pub changed: Vec<(u32, Vec<String>, u64)>,
    /// The UIDs left alone because they changed after the client's MODSEQ.
    pub modified: Vec<u32>,
}

impl Store {
    /// Stores a message durably; returns (UIDVALIDITY, UID) once it is on disk and indexed.
    pub async fn append(
        &self,
        username: &str,
        name: &str,
        bytes: Vec<u8>,
        flags: &[String],
        internal_date: Option<i64>,
    ) -> Result<(u32, u32)> {
        let message = NewMessage {
            bytes,
            flags: flags.to_vec(),
            internal_date,
        };
        let (uidvalidity, uids) = self.append_all(username, name, vec![message]).await?;
        Ok((uidvalidity, uids[0]))
    }

    /// Stores messages durably, all or none (MULTIAPPEND, RFC 3502): each file is
    /// written and synced, then all are indexed in one transaction. If a step fails,
    /// the files already written are removed and nothing is indexed. Returns
    /// UIDVALIDITY and the UIDs, in the order given.
    pub async fn append_all(
        &self,
        username: &str,
        name: &str,
        messages: Vec<NewMessage>,
    ) -> Result<(u32, Vec<u32>)> {
        let name = names::canonical(name)?;
        let dir = self.maildir(username, &name)?;
        let mut uidvalidity = 0;
        let mut written: Vec<MessageInfo> = Vec::with_capacity(messages.len());
        for message in messages {
            match self.write_new(username, &name, &dir, message).await {
                Ok((validity, info)) => {
                    uidvalidity = validity;
                    written.push(info);
                }
                Err(e) => {
                    discard(&dir, &written).await;
                    return Err(e);
                }
            }
        }
        if let Err(e) = self.insert_all(username, &name, &written).await {
            discard(&dir, &written).await;
            return Err(e);
        }
        self.changed(username);
        Ok((uidvalidity, written.iter().map(|m| m.uid).collect()))
    }

    /// Takes a UID for a message and writes its file (not yet indexed).
    async fn write_new(
        &self,
        username: &str,
        name: &str,
        dir: &maildir::Maildir,
        message: NewMessage,
    ) -> Result<(u32, MessageInfo)> {
        let (uidvalidity, uid) = self.reserve(username, name).await?;
        let size = message.bytes.len() as u64;
        let file = maildir::unique_name(size, uid);
        let (dir, base, flags) = (dir.clone(), file.clone(), message.flags.clone());
        blocking(move || dir.write(&base, &flags, &message.bytes)).await?;
        let info = MessageInfo {
            uid,
            modseq: 0, // taken by insert_all
            flags: message.flags,
            internal_date: message.internal_date.unwrap_or_else(now),
            size,
            file,
        };
        Ok((uidvalidity, info))
    }

    /// The bytes of a message whose index row the caller has.
    pub async fn read_message(
        &self,
        username: &str,
        name: &str,
        message: &MessageInfo,
    ) -> Result<Vec<u8>> {
        let dir = self.maildir(username, &names::canonical(name)?)?;
        let (file, flags, uid) = (message.file.clone(), message.flags.clone(), message.uid);
        let read = move || dir.read(&file, &flags);
        // A small file is read in place, as Dovecot reads: handing it to a blocking
        // thread and back costs more than the read (POP3 RETR 0.23 ms against 0.08).
        let found = if message.size <= INLINE_READ {
            read().map_err(StoreError::Io)?
        } else {
            blocking(read).await?
        };
        match found {
            Some(bytes) => Ok(bytes),
            // Renamed (flags) or expunged meanwhile: ask the index.
            None => self.read(username, name, uid).await,
        }
    }

    /// A message's bytes.
    pub async fn read(&self, username: &str, name: &str, uid: u32) -> Result<Vec<u8>> {
        let name = names::canonical(name)?;
        let dir = self.maildir(username, &name)?;
        // Another session's STORE renames the file (its flags) after its commit, so the
        // name the index gives can be gone for a moment: the index is asked again. A
        // file missing under the same name and flags twice is missing.
        let mut last: Option<(String, Vec<String>)> = None;
        for _ in 0..READ_TRIES {
            let row = sqlx::query(
                "SELECT file, flags FROM messages WHERE username = $1 AND mailbox = $2 AND uid = $3",
            )
            .bind(username)
            .bind(&name)
            .bind(i64::from(uid))
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NoMessage(uid))?;
            let file: String = row.try_get(0)?;
            let flags = split_flags(&row.try_get::<String, _>(1)?);
            let seen = (file.clone(), flags.clone());
            if last.as_ref() == Some(&seen) {
                break;
            }
            let dir = dir.clone();
            if let Some(bytes) = blocking(move || dir.read(&file, &flags)).await? {
                return Ok(bytes);
            }
            last = Some(seen);
        }
        let file = last.map(|(file, _)| file).unwrap_or_default();
        Err(StoreError::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("message file {file} is missing"),
        )))
    }

    /// Changes flags (STORE): replaces, adds or removes them on each UID that exists.
    /// Each changed message gets a new MODSEQ; its file's `:2,` suffix follows.
    /// Returns the new flags and MODSEQ of every message touched.
    pub async fn store_flags(
        &self,
        username: &str,
        name: &str,
        uids: &[u32],
        op: FlagOp,
        flags: &[String],
    ) -> Result<Vec<(u32, Vec<String>, u64)>> {
        Ok(self
            .store_flags_unless_changed(username, name, uids, op, flags, None)
            .await?
            .changed)
    }

    /// STORE with RFC 7162's UNCHANGEDSINCE: a message whose MODSEQ is above
    /// `unchanged_since` is left as it is and listed in [`Stored::modified`] (checked
    /// in the same transaction as the change, so no other change slips between).
    pub async fn store_flags_unless_changed(
        &self,
        username: &str,
        name: &str,
        uids: &[u32],
        op: FlagOp,
        flags: &[String],
        unchanged_since: Option<u64>,
    ) -> Result<Stored> {
        let name = names::canonical(name)?;
        let mut tx = self.write_tx().await?;
        self.lock_mailbox(&mut tx, username, &name).await?;
        // The rows in a few statements, however many messages: a STORE of n messages
        // was 3n statements inside the write lock.
        let mut rows: HashMap<u32, (String, String, u64)> = HashMap::with_capacity(uids.len());
        for chunk in uids.chunks(UIDS_PER_STATEMENT) {
            let sql = format!(
                "SELECT uid, flags, file, modseq FROM messages WHERE username = $1 AND mailbox = $2 AND uid IN ({})",
                uid_placeholders(chunk)
            );
            let found = tx
                .fetch(&sql, &uid_params(username, &name, chunk), |row| {
                    let uid = u32::try_from(row.int("uid")?).unwrap_or(0);
                    let modseq = row.int("modseq")?.max(0) as u64;
                    Ok((uid, (row.text("flags")?, row.text("file")?, modseq)))
                })
                .await?;
            rows.extend(found);
        }
        let mut changed = Vec::new();
        let mut modified = Vec::new();
        // In the caller's order; a UID named twice is changed once.
        for &uid in uids {
            let Some((stored, file, modseq)) = rows.remove(&uid) else {
                continue;
            };
            if unchanged_since.is_some_and(|since| modseq > since) {
                modified.push(uid);
                continue;
            }
            let old = split_flags(&stored);
            let new = op.apply(&old, flags);
            if new != old {
                changed.push((uid, new, 0u64, file, old));
            }
        }
        if !changed.is_empty() {
            // One MODSEQ each, in the order changed, taken together.
            let highest = tx
                .fetch(
                    "UPDATE mailboxes SET highestmodseq = highestmodseq + $1 WHERE username = $2 AND name = $3 RETURNING highestmodseq",
                    &[
                        Param::Int(changed.len() as i64),
                        Param::Text(username),
                        Param::Text(&name),
                    ],
                    |row| row.int("highestmodseq"),
                )
                .await?
                .pop()
                .ok_or_else(|| StoreError::NoMailbox(name.clone()))?;
            let first = highest.max(0) as u64 + 1 - changed.len() as u64;
            for (i, (uid, new, modseq, _, _)) in changed.iter_mut().enumerate() {
                *modseq = first + i as u64;
                let flags = new.join(" ");
                tx.execute(
                    "UPDATE messages SET flags = $1, modseq = $2 WHERE username = $3 AND mailbox = $4 AND uid = $5",
                    &[
                        Param::Text(&flags),
                        Param::Int(*modseq as i64),
                        Param::Text(username),
                        Param::Text(&name),
                        Param::Int(i64::from(*uid)),
                    ],
                )
                .await?;
            }
        }
        tx.commit().await?;
        if changed.is_empty() {
            return Ok(Stored {
                changed: Vec::new(),
                modified,
            });
        }
        self.changed(username);
        // The index decides; file names follow for the benefit of other Maildir readers.
        let dir = self.maildir(username, &name)?;
        let renames: Vec<(String, Vec<String>, Vec<String>)> = changed
            .iter()
            .map(|(_, f, _, file, old)| (file.clone(), f.clone(), old.clone()))
            .collect();
        blocking(move || {
            for (file, flags, old) in renames {
                let target = dir
                    .path
                    .join("cur")
                    .join(format!("{file}{}", maildir::suffix(&flags)));
                // Another session may rename (a STORE of its own) or remove (an
                // EXPUNGE) the file between finding it and renaming it: look again, and
                // a file that is gone needs no new name.
                for _ in 0..3 {
                    let Some(path) = dir.locate(&file, &old)? else {
                        break;
                    };
                    match std::fs::rename(&path, &target) {
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        done => {
                            done?;
                            break;
                        }
                    }
                }
            }
            maildir::sync_dir(&dir.path.join("cur"))
        })
        .await?;
        Ok(Stored {
            changed: changed
                .into_iter()
                .map(|(uid, flags, modseq, _, _)| (uid, flags, modseq))
                .collect(),
            modified,
        })
    }

    /// Copies messages to another mailbox (a hard link to the same file where possible),
    /// keeping flags and internal dates. Returns (source UID, new UID) pairs and the
    /// target's UIDVALIDITY, for COPYUID.
    pub async fn copy(
        &self,
        username: &str,
        from: &str,
        uids: &[u32],
        to: &str,
    ) -> Result<(u32, Vec<(u32, u32)>)> {
        let (from, to) = (names::canonical(from)?, names::canonical(to)?);
        let target = self.mailbox(username, &to).await?;
        let (source_dir, target_dir) =
            (self.maildir(username, &from)?, self.maildir(username, &to)?);
        let wanted: HashSet<u32> = uids.iter().copied().collect();
        let mut pairs = Vec::new();
        for m in self.messages(username, &from).await? {
            if !wanted.contains(&m.uid) {
                continue;
            }
            let (_, uid) = self.reserve(username, &to).await?;
            let base = maildir::unique_name(m.size, uid);
            let (src, dst, file, flags, new_base) = (
                source_dir.clone(),
                target_dir.clone(),
                m.file.clone(),
                m.flags.clone(),
                base.clone(),
            );
            blocking(move || {
                let path = src.locate(&file, &flags)?.ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("message file {file} is missing"),
                    )
                })?;
                let dest = dst
                    .path
                    .join("cur")
                    .join(format!("{new_base}{}", maildir::suffix(&flags)));
                if std::fs::hard_link(&path, &dest).is_err() {
                    let bytes = std::fs::read(&path)?;
                    dst.write(&new_base, &flags, &bytes)?;
                }
                maildir::sync_dir(&dst.path.join("cur"))
            })
            .await?;
            self.insert(
                username,
                &to,
                &MessageInfo {
                    uid,
                    modseq: 0, // taken by insert
                    flags: m.flags.clone(),
                    internal_date: m.internal_date,
                    size: m.size,
                    file: base,
                },
            )
            .await?;
            pairs.push((m.uid, uid));
        }
        if !pairs.is_empty() {
            self.changed(username);
        }
        Ok((target.uidvalidity, pairs))
    }

    /// Moves messages: a copy, then an expunge from the source.
    pub async fn move_messages(
        &self,
        username: &str,
        from: &str,
        uids: &[u32],
        to: &str,
    ) -> Result<(u32, Vec<(u32, u32)>)> {
        let (uidvalidity, pairs) = self.copy(username, from, uids, to).await?;
        let moved: Vec<u32> = pairs.iter().map(|(old, _)| *old).collect();
        self.expunge(username, from, &moved).await?;
        Ok((uidvalidity, pairs))
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{msg, store};
    use super::super::{FlagOp, StoreError};

    /// Two sessions changing one message's flags at once, and an expunge racing them:
    /// no storage failure (imaptest's stress mix met one: the file was renamed by the
    /// other STORE between being found and being renamed).
    #[tokio::test]
    async fn concurrent_stores_and_expunges_never_fail() {
        let (s, dir) = store().await;
        s.ensure_user("amy").await.unwrap();
        for round in 0..20 {
            let (_, uid) = s
                .append("amy", "INBOX", msg(round), &[], None)
                .await
                .unwrap();
            let (seen, flagged) = (vec!["\\Seen".to_string()], vec!["\\Flagged".to_string()]);
            let uids = [uid];
            let (a, b, c) = tokio::join!(
                s.store_flags("amy", "INBOX", &uids, FlagOp::Add, &seen),
                s.store_flags("amy", "INBOX", &uids, FlagOp::Add, &flagged),
                async {
                    if round % 2 == 0 {
                        s.expunge("amy", "INBOX", &uids).await.map(|_| Vec::new())
                    } else {
                        s.store_flags("amy", "INBOX", &uids, FlagOp::Remove, &seen)
                            .await
                    }
                }
            );
            for r in [a, b, c] {
                assert!(r.is_ok(), "round {round}: {r:?}");
            }
        }
        std::fs::remove_dir_all(dir).ok();
    }

    /// MULTIAPPEND's store side: every message on disk and indexed, UIDs and MODSEQs
    /// in the order given, each with its own flags and date; into a missing mailbox,
    /// nothing at all (and no file left behind).
    #[tokio::test]
    async fn messages_appended_together_are_stored_in_order() {
        let (s, dir) = store().await;
        s.ensure_user("alice").await.unwrap();
        let new = |n: u32, flag: &str, date: Option<i64>| super::NewMessage {
            bytes: msg(n),
            flags: vec![flag.to_string()],
            internal_date: date,
        };
        let batch = vec![
            new(1, "\\Seen", Some(1_700_000_000)),
            new(2, "\\Flagged", None),
            new(3, "$Work", Some(1_600_000_000)),
        ];
        let (validity, uids) = s.append_all("alice", "INBOX", batch).await.unwrap();
        assert!(validity > 0);
        assert_eq!(uids, [1, 2, 3]);
        let list = s.messages("alice", "INBOX").await.unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].flags, ["\\Seen"]);
        assert_eq!(list[2].flags, ["$Work"]);
        assert_eq!(list[2].internal_date, 1_600_000_000);
        assert!(list[0].modseq < list[1].modseq && list[1].modseq < list[2].modseq);
        for (n, uid) in (1..=3).zip(uids) {
            assert_eq!(s.read("alice", "INBOX", uid).await.unwrap(), msg(n));
        }
        let refused = s
            .append_all("alice", "Nowhere", vec![new(4, "\\Seen", None)])
            .await;
        assert!(
            matches!(refused, Err(StoreError::NoMailbox(_))),
            "{refused:?}"
        );
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn appended_messages_are_on_disk_with_rising_uids() {
        let (s, dir) = store().await;
        s.ensure_user("alice").await.unwrap();
        let (v1, u1) = s
            .append(
                "alice",
                "inbox",
                msg(1),
                &["\\Seen".into()],
                Some(1_700_000_000),
            )
            .await
            .unwrap();
        let (v2, u2) = s.append("alice", "INBOX", msg(2), &[], None).await.unwrap();
        assert_eq!(v1, v2);
        assert_eq!((u1, u2), (1, 2));
        assert_eq!(s.read("alice", "INBOX", 2).await.unwrap(), msg(2));
        let list = s.messages("alice", "INBOX").await.unwrap();
        assert_eq!(list[0].flags, ["\\Seen"]);
        assert_eq!(list[0].internal_date, 1_700_000_000);
        assert_eq!(list[1].size, msg(2).len() as u64);
        let cur = std::fs::read_dir(dir.join("mail/alice/cur"))
            .unwrap()
            .count();
        assert_eq!(cur, 2);
        assert!(matches!(
            s.append("alice", "Nope", msg(3), &[], None).await,
            Err(StoreError::NoMailbox(_))
        ));
        assert!(matches!(
            s.append("alice", "../x", msg(3), &[], None).await,
            Err(StoreError::Name(_))
        ));
        std::fs::remove_dir_all(dir).ok();
    }

    /// A STORE of many messages reads and writes them in a few statements: each UID
    /// the caller names (once, in its order) gets the next MODSEQ, messages already so
    /// and UIDs not there get none, and UNCHANGEDSINCE leaves those changed since.
    #[tokio::test]
    async fn a_store_of_many_messages_gives_each_change_the_next_modseq() {
        let (s, dir) = store().await;
        s.ensure_user("erin").await.unwrap();
        for n in 1..=5 {
            s.append("erin", "INBOX", msg(n), &[], None).await.unwrap();
        }
        let seen = vec!["\\Seen".to_string()];
        s.store_flags("erin", "INBOX", &[4], FlagOp::Add, &seen)
            .await
            .unwrap();
        let before = s.mailbox("erin", "INBOX").await.unwrap().highestmodseq;
        let changed = s
            .store_flags("erin", "INBOX", &[3, 1, 4, 3, 9, 2], FlagOp::Add, &seen)
            .await
            .unwrap();
        let uids: Vec<u32> = changed.iter().map(|c| c.0).collect();
        assert_eq!(
            uids,
            [3, 1, 2],
            "in the caller's order, once, none for 4 or 9"
        );
        let modseqs: Vec<u64> = changed.iter().map(|c| c.2).collect();
        assert_eq!(modseqs, [before + 1, before + 2, before + 3]);
        assert_eq!(
            s.mailbox("erin", "INBOX").await.unwrap().highestmodseq,
            before + 3
        );
        for m in s.messages("erin", "INBOX").await.unwrap() {
            let want: &[String] = if m.uid == 5 { &[] } else { &seen };
            assert_eq!(m.flags, want, "UID {}", m.uid);
            if let Some(c) = changed.iter().find(|c| c.0 == m.uid) {
                assert_eq!(m.modseq, c.2);
            }
        }
        // UNCHANGEDSINCE: UID 5 is older than the client's MODSEQ, UID 1 is not.
        let flagged = vec!["\\Flagged".to_string()];
        let stored = s
            .store_flags_unless_changed(
                "erin",
                "INBOX",
                &[1, 5],
                FlagOp::Add,
                &flagged,
                Some(before),
            )
            .await
            .unwrap();
        assert_eq!(stored.modified, [1]);
        assert_eq!(stored.changed.len(), 1);
        assert_eq!(stored.changed[0].0, 5);
        assert_eq!(stored.changed[0].2, before + 4);
        let names: Vec<String> = std::fs::read_dir(dir.join("mail/erin/cur"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names.iter().filter(|n| n.ends_with(":2,S")).count(),
            4,
            "{names:?}"
        );
        assert_eq!(
            names.iter().filter(|n| n.ends_with(":2,F")).count(),
            1,
            "{names:?}"
        );
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn flags_copy_move_delete_and_subscriptions() {
        let (s, dir) = store().await;
        s.ensure_user("erin").await.unwrap();
        for n in 1..=3 {
            s.append(
                "erin",
                "INBOX",
                msg(n),
                &[],
                Some(1_700_000_000 + i64::from(n)),
            )
            .await
            .unwrap();
        }
        let seen = vec!["\\Seen".to_string()];
        let changed = s
            .store_flags("erin", "INBOX", &[1, 2, 9], FlagOp::Add, &seen)
            .await
            .unwrap();
        assert_eq!(changed.len(), 2);
        assert!(
            changed[1].2 > changed[0].2,
            "each change gets a higher MODSEQ"
        );
        let again = s
            .store_flags("erin", "INBOX", &[1], FlagOp::Add, &seen)
            .await
            .unwrap();
        assert!(again.is_empty(), "no change, no new MODSEQ");
        s.store_flags(
            "erin",
            "INBOX",
            &[1],
            FlagOp::Add,
            &["$Work".to_string(), "\\Flagged".to_string()],
        )
        .await
        .unwrap();
        s.store_flags(
            "erin",
            "INBOX",
            &[2],
            FlagOp::Remove,
            &["\\SEEN".to_string()],
        )
        .await
        .unwrap();
        let list = s.messages("erin", "INBOX").await.unwrap();
        assert_eq!(list[0].flags, ["\\Seen", "$Work", "\\Flagged"]);
        assert!(list[1].flags.is_empty());
        let names: Vec<String> = std::fs::read_dir(dir.join("mail/erin/cur"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().any(|n| n.ends_with(":2,FS")), "{names:?}");

        let (validity, pairs) = s.copy("erin", "INBOX", &[1, 3], "Archive").await.unwrap();
        assert_eq!(
            validity,
            s.mailbox("erin", "Archive").await.unwrap().uidvalidity
        );
        assert_eq!(pairs, [(1, 1), (3, 2)]);
        let archived = s.messages("erin", "Archive").await.unwrap();
        assert_eq!(archived[0].flags, list[0].flags);
        assert_eq!(archived[1].internal_date, 1_700_000_003);
        assert_eq!(s.read("erin", "Archive", 2).await.unwrap(), msg(3));

        let (_, moved) = s
            .move_messages("erin", "INBOX", &[2], "Trash")
            .await
            .unwrap();
        assert_eq!(moved, [(2, 1)]);
        let inbox: Vec<u32> = s
            .messages("erin", "INBOX")
            .await
            .unwrap()
            .iter()
            .map(|m| m.uid)
            .collect();
        assert_eq!(inbox, [1, 3]);
        assert_eq!(s.read("erin", "Trash", 1).await.unwrap(), msg(2));

        s.create_mailbox("erin", "Projects", "").await.unwrap();
        s.create_mailbox("erin", "Projects/2026", "").await.unwrap();
        assert!(matches!(
            s.delete_mailbox("erin", "Projects").await,
            Err(StoreError::Refused(_))
        ));
        assert!(matches!(
            s.delete_mailbox("erin", "inbox").await,
            Err(StoreError::Refused(_))
        ));
        s.delete_mailbox("erin", "Projects/2026").await.unwrap();
        s.delete_mailbox("erin", "Projects").await.unwrap();
        assert!(!dir.join("mail/erin/.Projects").exists());
        s.subscribe("erin", "Junk", false).await.unwrap();
        assert!(
            !s.subscriptions("erin")
                .await
                .unwrap()
                .contains(&"Junk".to_string())
        );
        assert!(matches!(
            s.subscribe("erin", "Nope", true).await,
            Err(StoreError::NoMailbox(_))
        ));
        std::fs::remove_dir_all(dir).ok();
    }
}
