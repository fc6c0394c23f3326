//! Maildir files: durable writes (tmp/, fsync, rename into cur/, fsync the directory),
//! unique names that carry the size and UID, and flags in the standard `:2,` suffix.
//!
//! Blocking file-system calls; the store runs them on the blocking pool.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Maildir flag letters for the IMAP system flags they stand for, in suffix order.
pub const FLAG_LETTERS: [(char, &str); 5] = [
    ('D', "\\Draft"),
    ('F', "\\Flagged"),
    ('R', "\\Answered"),
    ('S', "\\Seen"),
    ('T', "\\Deleted"),
];

/// The `:2,` suffix for a set of IMAP flags (keywords stay in the index).
pub fn suffix(flags: &[String]) -> String {
    let mut out = String::from(":2,");
    for (letter, flag) in FLAG_LETTERS {
        if flags.iter().any(|f| f.eq_ignore_ascii_case(flag)) {
            out.push(letter);
        }
    }
    out
}

/// The IMAP flags a file name's `:2,` suffix sets.
pub fn flags_of(file_name: &str) -> Vec<String> {
    let Some((_, info)) = file_name.rsplit_once(":2,") else {
        return Vec::new();
    };
    FLAG_LETTERS
        .iter()
        .filter(|(letter, _)| info.contains(*letter))
        .map(|(_, flag)| flag.to_string())
        .collect()
}

/// The base of a file name: everything before the `:2,` info.
pub fn base(file_name: &str) -> &str {
    file_name.split_once(':').map_or(file_name, |(b, _)| b)
}

/// The UID a file name carries (`,U=123`), if any.
pub fn uid_of(file_name: &str) -> Option<u32> {
    base(file_name)
        .split(',')
        .find_map(|field| field.strip_prefix("U=")?.parse().ok())
}

/// A new unique base name: `<secs>.M<micros>P<pid>Q<n>.<host>,S=<size>,U=<uid>`.
pub fn unique_name(size: u64, uid: u32) -> String {
    // Process-wide on purpose: a name is unique because `P` names the process and `Q`
    // counts within it (the Maildir convention), whichever store of the process writes.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let host = hostname().replace(['/', ':', ','], "_");
    format!(
        "{}.M{}P{}Q{}.{host},S={size},U={uid}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Flushes a directory's entries to disk, so a rename in it survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// One Maildir folder: `cur/`, `new/`, `tmp/` under `path`.
#[derive(Debug, Clone)]
pub struct Maildir {
    pub path: PathBuf,
}

impl Maildir {
    pub fn new(path: PathBuf) -> Maildir {
        Maildir { path }
    }

    /// Creates the folder and its three directories, durably.
    pub fn create(&self) -> io::Result<()> {
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir_all(self.path.join(sub))?;
        }
        sync_dir(&self.path)?;
        if let Some(parent) = self.path.parent() {
            sync_dir(parent)?;
        }
        Ok(())
    }

    pub fn exists(&self) -> bool {
        self.path.join("cur").is_dir()
    }

    /// Writes a message durably into `cur/` as `base` + flag suffix; returns its path.
    pub fn write(&self, base: &str, flags: &[String], bytes: &[u8]) -> io::Result<PathBuf> {
        let tmp = self.path.join("tmp").join(base);
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        let dest = self
            .path
            .join("cur")
            .join(format!("{base}{}", suffix(flags)));
        fs::rename(&tmp, &dest)?;
        sync_dir(&self.path.join("cur"))?;
        Ok(dest)
    }

    /// The path of a message whose flags the index knows: its expected name in `cur/`
    /// first (one `stat`), else a scan of the folder (the file was renamed by another
    /// Maildir program, or a crash came between the index and the rename).
    pub fn locate(&self, base_name: &str, flags: &[String]) -> io::Result<Option<PathBuf>> {
        let expected = self.expected(base_name, flags);
        if expected.is_file() {
            return Ok(Some(expected));
        }
        self.find(base_name)
    }

    /// Where a message with these flags is, if nobody renamed it behind the index.
    fn expected(&self, base_name: &str, flags: &[String]) -> PathBuf {
        self.path
            .join("cur")
            .join(format!("{base_name}{}", suffix(flags)))
    }

    /// `op` on a message's file where its flags put it (one system call, not a stat
    /// first), else where it is found; `None` if it is gone.
    fn at<T>(
        &self,
        base_name: &str,
        flags: &[String],
        op: impl Fn(&Path) -> io::Result<T>,
    ) -> io::Result<Option<T>> {
        match op(&self.expected(base_name, flags)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            done => return done.map(Some),
        }
        match self.find(base_name)? {
            Some(path) => match op(&path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                done => done.map(Some),
            },
            None => Ok(None),
        }
    }

    /// The bytes of a message, `None` if it is gone.
    pub fn read(&self, base_name: &str, flags: &[String]) -> io::Result<Option<Vec<u8>>> {
        self.at(base_name, flags, |path| fs::read(path))
    }

    /// Unlinks a message wherever it is; nothing if it is gone.
    pub fn remove(&self, base_name: &str, flags: &[String]) -> io::Result<()> {
        self.at(base_name, flags, |path| fs::remove_file(path))
            .map(|_| ())
    }

    /// The current path of the message whose base name is `base` (in `cur/` or `new/`).
    pub fn find(&self, base_name: &str) -> io::Result<Option<PathBuf>> {
        for sub in ["cur", "new"] {
            for entry in fs::read_dir(self.path.join(sub))? {
                let entry = entry?;
                let name = entry.file_name();
                if base(&name.to_string_lossy()) == base_name {
                    return Ok(Some(entry.path()));
                }
            }
        }
        Ok(None)
    }

    /// File names in `cur/` or `new/`, skipping dot files.
    pub fn list(&self, sub: &str) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(self.path.join(sub))? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Moves files another program dropped into `new/` to `cur/` (keeping their names),
    /// then syncs `cur/` once; returns their names in `cur/`. A file another session
    /// moved first is left out.
    pub fn adopt_all(&self, names: Vec<String>) -> io::Result<Vec<String>> {
        if names.is_empty() {
            return Ok(names);
        }
        let (new, cur) = (self.path.join("new"), self.path.join("cur"));
        let mut adopted = Vec::with_capacity(names.len());
        let mut failed = None;
        for name in names {
            let target = if name.contains(":2,") {
                name.clone()
            } else {
                format!("{name}:2,")
            };
            match fs::rename(new.join(&name), cur.join(&target)) {
                Ok(()) => adopted.push(target),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        // The moves made are made durable even when one failed: the next scan of
        // `cur/` indexes them.
        sync_dir(&cur)?;
        match failed {
            Some(e) => Err(e),
            None => Ok(adopted),
        }
    }

    /// Reads, or writes once, the folder's UIDVALIDITY (kept beside the messages so
    /// that a rebuilt index keeps it, and clients keep their caches).
    pub fn uidvalidity(&self, proposed: u32) -> io::Result<u32> {
        let file = self.path.join("mailsite-uidvalidity");
        if let Some(v) = fs::read_to_string(&file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            return Ok(v);
        }
        // Written under a name of its own, then linked into place: the link fails if
        // another session got there first, and then both use the value written first.
        let tmp = self
            .path
            .join("tmp")
            .join(format!("mailsite-uidvalidity.{}", unique_name(0, 0)));
        let mut f = File::create(&tmp)?;
        writeln!(f, "{proposed}")?;
        f.sync_all()?;
        drop(f);
        let linked = fs::hard_link(&tmp, &file);
        fs::remove_file(&tmp)?;
        match linked {
            Ok(()) => {
                sync_dir(&self.path)?;
                Ok(proposed)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => fs::read_to_string(&file)?
                .trim()
                .parse()
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad UIDVALIDITY file")),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_size_uid_and_flags() {
        let name = unique_name(1234, 42);
        assert!(name.contains(",S=1234,U=42"), "{name}");
        assert_eq!(uid_of(&name), Some(42));
        let flags = vec![
            "\\Seen".to_string(),
            "\\Answered".to_string(),
            "$Label1".to_string(),
        ];
        let full = format!("{name}{}", suffix(&flags));
        assert!(full.ends_with(":2,RS"), "{full}");
        assert_eq!(base(&full), name);
        assert_eq!(flags_of(&full), ["\\Answered", "\\Seen"]);
        assert_eq!(uid_of("1700000000.M1P2.host"), None);
    }

    #[test]
    fn read_and_remove_find_a_file_whose_flags_changed_behind_the_index() {
        let dir = Maildir::new(
            std::env::temp_dir().join(format!("mailsite-maildir-{}", rand::random::<u64>())),
        );
        dir.create().unwrap();
        let seen = vec!["\\Seen".to_string()];
        let name = unique_name(5, 7);
        // Where the index expects it.
        fs::write(dir.path.join("cur").join(format!("{name}:2,S")), b"hello").unwrap();
        assert_eq!(
            dir.read(&name, &seen).unwrap().as_deref(),
            Some(&b"hello"[..])
        );
        // Another program renamed it (\Flagged added): found all the same.
        fs::rename(
            dir.path.join("cur").join(format!("{name}:2,S")),
            dir.path.join("cur").join(format!("{name}:2,FS")),
        )
        .unwrap();
        assert_eq!(
            dir.read(&name, &seen).unwrap().as_deref(),
            Some(&b"hello"[..])
        );
        dir.remove(&name, &seen).unwrap();
        assert_eq!(dir.list("cur").unwrap(), Vec::<String>::new());
        // Gone: nothing to read, and removing again is no error.
        assert_eq!(dir.read(&name, &seen).unwrap(), None);
        dir.remove(&name, &seen).unwrap();
        fs::remove_dir_all(&dir.path).unwrap();
    }
}
