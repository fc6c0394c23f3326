//! Copying a user's mail between mailbox servers that do not share storage, for
//! `mailsite letter move L SERVER --migrate`.
//!
//! The index (UIDVALIDITY, UIDs, flags, MODSEQs, file names) lives in the site
//! database, which every server shares; only the Maildir files live in each server's
//! storage. Moving a user's mail is therefore making the target's Maildirs hold the
//! files the index names, under the same names: UIDs and UIDVALIDITY survive as they
//! are, and clients keep their caches.
//!
//! A move makes two kinds of pass. Before the letter's alias flips, the target does not
//! serve the user, so a *mirror* pass also removes what the target holds that the index
//! no longer names (copies left by an earlier stay, expunged since). After the flip the
//! target serves the user and delivers into the same folders, so *catch-up* passes only
//! add the files the source received meanwhile and never remove anything.

use std::collections::HashSet;
use std::path::Path;

use super::maildir::{self, Maildir};
use super::{Result, Store, blocking, names};

/// What one pass copied.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub mailboxes: usize,
    /// Messages whose file the target lacked and now holds.
    pub messages: usize,
    pub bytes: u64,
    /// Indexed messages whose file the source did not have either (expunged while the
    /// pass ran, or lost): nothing to copy.
    pub missing: usize,
    /// Files and folders a mirror pass removed from the target.
    pub removed: usize,
}

impl std::ops::AddAssign for Copied {
    fn add_assign(&mut self, other: Copied) {
        self.mailboxes += other.mailboxes;
        self.messages += other.messages;
        self.bytes += other.bytes;
        self.missing += other.missing;
        self.removed += other.removed;
    }
}

/// Whether a pass may remove from the target what the index does not name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Before the flip: the target does not serve the user yet.
    Mirror,
    /// After the flip: only add.
    CatchUp,
}

impl Store {
    /// The root of this store's Maildirs.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Makes `target` hold this user's mail as the index describes it: every indexed
    /// message's file that `target` lacks is copied from this store under the same
    /// name, and made durable (one `syncfs` per pass, then every directory) before
    /// this returns. A [`Pass::Mirror`] also removes target files and folders the index
    /// does not name.
    pub async fn copy_user_to(&self, target: &Store, username: &str, pass: Pass) -> Result<Copied> {
        let source_dir = self.user_dir(username)?;
        let target_dir = target.user_dir(username)?;
        let mut copied = Copied::default();
        let mut folders = HashSet::new();
        let mut touched = Vec::new();
        for info in self.mailboxes(username).await? {
            let folder = names::folder(&info.name);
            folders.insert(folder.clone());
            let messages = self.messages_where(username, &info.name, "", &[]).await?;
            let from = Maildir::new(source_dir.join(&folder));
            let to = Maildir::new(target_dir.join(&folder));
            let uidvalidity = info.uidvalidity;
            let wanted: Vec<(String, Vec<String>)> =
                messages.into_iter().map(|m| (m.file, m.flags)).collect();
            let one = blocking(move || copy_folder(&from, &to, uidvalidity, &wanted, pass)).await?;
            copied += one;
            copied.mailboxes += 1;
            touched.push(target_dir.join(&folder));
        }
        if pass == Pass::Mirror {
            let dir = target_dir.clone();
            copied.removed += blocking(move || remove_unknown_folders(&dir, &folders)).await?;
        }
        blocking(move || {
            flush(&target_dir)?;
            for folder in touched {
                maildir::sync_dir(&folder.join("cur"))?;
                maildir::sync_dir(&folder)?;
            }
            maildir::sync_dir(&target_dir)?;
            if let Some(parent) = target_dir.parent() {
                maildir::sync_dir(parent)?;
            }
            Ok(())
        })
        .await?;
        Ok(copied)
    }
}

/// One folder: create it with the index's UIDVALIDITY, copy what is missing, and in a
/// mirror pass remove what the index does not name.
fn copy_folder(
    from: &Maildir,
    to: &Maildir,
    uidvalidity: u32,
    wanted: &[(String, Vec<String>)],
    pass: Pass,
) -> std::io::Result<Copied> {
    let mut copied = Copied::default();
    to.create()?;
    let marker = to.path.join("mailsite-uidvalidity");
    if pass == Pass::Mirror || !marker.exists() {
        // Written whole under another name, then renamed over any stale one.
        let tmp = to.path.join("tmp").join("mailsite-uidvalidity.migrate");
        std::fs::write(&tmp, format!("{uidvalidity}\n"))?;
        std::fs::rename(&tmp, &marker)?;
    }
    let mut present: HashSet<String> = HashSet::new();
    for sub in ["cur", "new"] {
        for name in to.list(sub)? {
            present.insert(maildir::base(&name).to_string());
        }
    }
    let indexed: HashSet<&str> = wanted.iter().map(|(file, _)| file.as_str()).collect();
    if pass == Pass::Mirror {
        for sub in ["cur", "new"] {
            for name in to.list(sub)? {
                if !indexed.contains(maildir::base(&name)) {
                    std::fs::remove_file(to.path.join(sub).join(&name))?;
                    present.remove(maildir::base(&name));
                    copied.removed += 1;
                }
            }
        }
    }
    for (file, flags) in wanted {
        if present.contains(file) {
            continue;
        }
        let Some(source) = from.locate(file, flags)? else {
            copied.missing += 1;
            continue;
        };
        let name = source
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("{file}{}", maildir::suffix(flags)));
        // Into tmp/ first, then renamed: a reader never sees half a message.
        let tmp = to.path.join("tmp").join(file);
        match std::fs::copy(&source, &tmp) {
            Ok(bytes) => copied.bytes += bytes,
            // Expunged (or renamed by a flag change) on the source meanwhile.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                copied.missing += 1;
                continue;
            }
            Err(e) => return Err(e),
        }
        std::fs::rename(&tmp, to.path.join("cur").join(name))?;
        copied.messages += 1;
    }
    Ok(copied)
}

/// Removes the target's folders of mailboxes the index does not have (deleted or
/// renamed since an earlier stay), so that a mailbox made later under such a name does
/// not find old messages or an old UIDVALIDITY.
fn remove_unknown_folders(user_dir: &Path, known: &HashSet<String>) -> std::io::Result<usize> {
    let mut removed = 0;
    let Ok(entries) = std::fs::read_dir(user_dir) else {
        return Ok(0);
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_dir()
            && name.starts_with('.')
            && names::from_folder(&name).is_some()
            && !known.contains(&name)
        {
            std::fs::remove_dir_all(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Makes every file written under `dir` durable with one `syncfs` of its file system
/// (instead of an fsync per message: 10,000 of them took most of a migration's time).
fn flush(dir: &Path) -> std::io::Result<()> {
    let handle = std::fs::File::open(dir)?;
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: syncfs only reads the descriptor, which `handle` keeps open.
        if unsafe { libc::syncfs(handle.as_raw_fd()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    handle.sync_all()?;
    Ok(())
}

/// The users whose mail a letter move concerns: every directory user in the bucket.
pub fn users_of_bucket(usernames: impl IntoIterator<Item = String>, bucket: usize) -> Vec<String> {
    usernames
        .into_iter()
        .filter(|u| mailsite_shared::route::bucket_of(u) == bucket)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::Store;
    use super::super::fixture::{msg, store};

    #[tokio::test]
    async fn mail_copied_to_other_storage_keeps_names_and_drops_stale_copies() {
        use super::Pass;
        let (s, dir) = store().await;
        let other = Store::new(dir.join("mail2"), s.pool.clone());
        s.ensure_user("fay").await.unwrap();
        for n in 1..=5 {
            s.append("fay", "INBOX", msg(n), &["\\Seen".into()], None)
                .await
                .unwrap();
        }
        s.create_mailbox("fay", "Old", "").await.unwrap();
        // A stale copy on the target from an earlier stay: a file since expunged and a
        // folder since deleted.
        let copied = s.copy_user_to(&other, "fay", Pass::Mirror).await.unwrap();
        assert_eq!(copied.messages, 5);
        s.expunge("fay", "INBOX", &[2]).await.unwrap();
        s.delete_mailbox("fay", "Old").await.unwrap();
        s.append("fay", "INBOX", msg(6), &[], None).await.unwrap();
        // A catch-up pass only adds.
        let more = s.copy_user_to(&other, "fay", Pass::CatchUp).await.unwrap();
        assert_eq!((more.messages, more.removed), (1, 0));
        assert_eq!(
            other
                .maildir("fay", "INBOX")
                .unwrap()
                .list("cur")
                .unwrap()
                .len(),
            6
        );
        assert!(dir.join("mail2/fay/.Old").is_dir());
        // A mirror pass removes what the index no longer names.
        let again = s.copy_user_to(&other, "fay", Pass::Mirror).await.unwrap();
        assert_eq!((again.messages, again.removed), (0, 2));
        assert!(!dir.join("mail2/fay/.Old").exists());
        let ours = s.maildir("fay", "INBOX").unwrap().list("cur").unwrap();
        let theirs = other.maildir("fay", "INBOX").unwrap().list("cur").unwrap();
        assert_eq!(ours, theirs);
        // The target reads the same index: same UIDVALIDITY, UIDs and flags.
        assert_eq!(
            other.mailbox("fay", "INBOX").await.unwrap(),
            s.mailbox("fay", "INBOX").await.unwrap()
        );
        assert_eq!(other.sync("fay", "INBOX").await.unwrap(), 0);
        let uids: Vec<u32> = other
            .messages("fay", "INBOX")
            .await
            .unwrap()
            .iter()
            .map(|m| m.uid)
            .collect();
        assert_eq!(uids, [1, 3, 4, 5, 6]);
        assert_eq!(other.read("fay", "INBOX", 6).await.unwrap(), msg(6));
        assert_eq!(
            std::fs::read_to_string(dir.join("mail2/fay/mailsite-uidvalidity"))
                .unwrap()
                .trim(),
            s.mailbox("fay", "INBOX")
                .await
                .unwrap()
                .uidvalidity
                .to_string()
        );
    }
}
