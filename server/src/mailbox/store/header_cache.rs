//! Message headers read from the files and kept in memory for header searches and
//! ENVELOPE, as Dovecot keeps them in its cache file.

use std::collections::HashMap;
use std::sync::Arc;

use super::{MessageInfo, Result, Store, blocking, names};

impl Store {
    /// The header of a message whose index row the caller has: the bytes up to and
    /// including the blank line that ends it (at most 256 KiB), for header searches.
    pub async fn read_header(
        &self,
        username: &str,
        name: &str,
        message: &MessageInfo,
    ) -> Result<Vec<u8>> {
        let mut found = self.headers(username, name, &[message]).await?;
        match found.pop().flatten() {
            Some(bytes) => Ok(bytes.to_vec()),
            None => self.read(username, name, message.uid).await,
        }
    }

    /// How many header bytes this store keeps in memory.
    #[cfg(test)]
    fn cache_bytes(&self) -> usize {
        self.headers.lock().unwrap_or_else(|e| e.into_inner()).bytes
    }

    /// The headers of messages whose index rows the caller has (see [`Self::read_header`]),
    /// `None` for a message whose file is gone. Headers are read once per store and
    /// kept (in the store's `HeaderCache`); the rest are read in one blocking task.
    pub async fn headers(
        &self,
        username: &str,
        name: &str,
        messages: &[&MessageInfo],
    ) -> Result<Vec<Option<Arc<[u8]>>>> {
        let name = names::canonical(name)?;
        let uidvalidity = self.mailbox(username, &name).await?.uidvalidity;
        let key = (username.to_string(), name.clone());
        let mut out: Vec<Option<Arc<[u8]>>> = vec![None; messages.len()];
        let mut missing = Vec::new();
        {
            let cache = self.headers.lock().unwrap_or_else(|e| e.into_inner());
            let kept = cache
                .mailboxes
                .get(&key)
                .filter(|m| m.uidvalidity == uidvalidity);
            for (i, message) in messages.iter().enumerate() {
                match kept.and_then(|m| m.headers.get(&message.uid)) {
                    Some(header) => out[i] = Some(header.clone()),
                    None => {
                        missing.push((i, message.uid, message.file.clone(), message.flags.clone()))
                    }
                }
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let dir = self.maildir(username, &name)?;
        let read = blocking(move || {
            let mut read = Vec::with_capacity(missing.len());
            for (i, uid, file, flags) in missing {
                let header = match dir.locate(&file, &flags)? {
                    Some(path) => header_of(&path)?,
                    None => None,
                };
                read.push((i, uid, header));
            }
            Ok(read)
        })
        .await?;
        let mut cache = self.headers.lock().unwrap_or_else(|e| e.into_inner());
        for (i, uid, header) in read {
            let Some(header) = header else {
                continue;
            };
            let header: Arc<[u8]> = header.into();
            cache.keep(&key, uidvalidity, uid, header.clone());
            out[i] = Some(header);
        }
        Ok(out)
    }
}

/// Message headers kept in memory for header searches and ENVELOPE, as Dovecot keeps
/// them in its cache file: a message never changes within a UIDVALIDITY, so a header
/// once read stays true. At most [`HEADER_CACHE_BYTES`] in all; past that, other
/// mailboxes' headers make room (the mailbox being read keeps what it has).
#[derive(Default)]
pub(super) struct HeaderCache {
    mailboxes: HashMap<(String, String), KeptHeaders>,
    bytes: usize,
}

struct KeptHeaders {
    uidvalidity: u32,
    headers: HashMap<u32, Arc<[u8]>>,
    bytes: usize,
}

/// The most header bytes kept in memory by one store.
const HEADER_CACHE_BYTES: usize = 64 << 20;

impl HeaderCache {
    fn keep(&mut self, key: &(String, String), uidvalidity: u32, uid: u32, header: Arc<[u8]>) {
        let size = header.len() + 48;
        while self.bytes + size > HEADER_CACHE_BYTES {
            let Some(other) = self.mailboxes.keys().find(|k| *k != key).cloned() else {
                return;
            };
            if let Some(gone) = self.mailboxes.remove(&other) {
                self.bytes -= gone.bytes;
            }
        }
        let kept = self
            .mailboxes
            .entry(key.clone())
            .or_insert_with(|| KeptHeaders {
                uidvalidity,
                headers: HashMap::new(),
                bytes: 0,
            });
        if kept.uidvalidity != uidvalidity {
            self.bytes -= kept.bytes;
            *kept = KeptHeaders {
                uidvalidity,
                headers: HashMap::new(),
                bytes: 0,
            };
        }
        if kept.headers.insert(uid, header).is_none() {
            kept.bytes += size;
            self.bytes += size;
        }
    }

    /// Forgets the headers of the mailboxes `gone` picks (deleted or renamed away).
    pub(super) fn forget(&mut self, gone: impl Fn(&(String, String)) -> bool) {
        let forgotten: Vec<_> = self
            .mailboxes
            .keys()
            .filter(|key| gone(key))
            .cloned()
            .collect();
        for key in forgotten {
            if let Some(kept) = self.mailboxes.remove(&key) {
                self.bytes -= kept.bytes;
            }
        }
    }
}

/// The header of the message file at `path` (see [`Store::read_header`]); `None` if
/// the file is gone.
fn header_of(path: &std::path::Path) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    const MAX_HEADER: u64 = 256 * 1024;
    let mut reader = match std::fs::File::open(path) {
        Ok(f) => f.take(MAX_HEADER),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = reader.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        let from = out.len().saturating_sub(3);
        out.extend_from_slice(&chunk[..n]);
        let tail = &out[from..];
        if let Some(end) = tail
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| from + i + 4)
            .or_else(|| {
                tail.windows(2)
                    .position(|w| w == b"\n\n")
                    .map(|i| from + i + 2)
            })
        {
            out.truncate(end);
            break;
        }
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::super::MessageInfo;
    use super::super::Store;
    use super::super::fixture::{msg, store};

    /// Headers are read once and kept; a mailbox deleted and made again (same name,
    /// possibly the same UIDVALIDITY within a second) or renamed never shows old
    /// headers; a header cut short at 256 KiB is not taken for the whole.
    #[tokio::test]
    async fn kept_headers_follow_the_mailbox() {
        let (s, dir) = store().await;
        s.ensure_user("alice").await.unwrap();
        s.create_mailbox("alice", "Kept", "").await.unwrap();
        for n in 1..=3 {
            s.append("alice", "Kept", msg(n), &[], None).await.unwrap();
        }
        let subjects = |s: Store, name: &'static str| async move {
            let messages = s.messages("alice", name).await.unwrap();
            let infos: Vec<&MessageInfo> = messages.iter().collect();
            let headers = s.headers("alice", name, &infos).await.unwrap();
            headers
                .into_iter()
                .map(|h| {
                    let h = String::from_utf8(
                        h.unwrap_or_else(|| panic!("a header in {name}")).to_vec(),
                    )
                    .unwrap();
                    assert!(h.ends_with("\r\n\r\n"), "{h:?}");
                    h.lines().nth(1).unwrap_or_default().to_string()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            subjects(s.clone(), "Kept").await,
            ["Subject: 1", "Subject: 2", "Subject: 3"]
        );
        // Kept: the files can go and the headers are still there (until the mailbox goes).
        let kept = s.cache_bytes();
        assert!(kept > 0);
        let first = s.mailbox("alice", "Kept").await.unwrap().uidvalidity;
        s.delete_mailbox("alice", "Kept").await.unwrap();
        assert_eq!(s.cache_bytes(), 0);
        let again = s
            .create_mailbox("alice", "Kept", "")
            .await
            .unwrap()
            .uidvalidity;
        assert!(again > first, "UIDVALIDITY {again} after {first}");
        s.append("alice", "Kept", msg(7), &[], None).await.unwrap();
        assert_eq!(subjects(s.clone(), "Kept").await, ["Subject: 7"]);
        s.rename_mailbox("alice", "Kept", "Other").await.unwrap();
        let third = s
            .create_mailbox("alice", "Kept", "")
            .await
            .unwrap()
            .uidvalidity;
        assert!(third > again, "UIDVALIDITY {third} after {again}");
        s.append("alice", "Kept", msg(8), &[], None).await.unwrap();
        assert_eq!(subjects(s.clone(), "Kept").await, ["Subject: 8"]);
        assert_eq!(subjects(s.clone(), "Other").await, ["Subject: 7"]);

        let mut huge = b"Subject: huge\r\nX-Big: ".to_vec();
        huge.extend(std::iter::repeat_n(b'x', 300 * 1024));
        huge.extend_from_slice(b"\r\n\r\nbody\r\n");
        let (_, uid) = s
            .append("alice", "INBOX", huge.clone(), &[], None)
            .await
            .unwrap();
        let messages = s.messages("alice", "INBOX").await.unwrap();
        let info = messages.iter().find(|m| m.uid == uid).unwrap();
        let header = s
            .headers("alice", "INBOX", &[info])
            .await
            .unwrap()
            .remove(0)
            .unwrap();
        assert_eq!(header.len(), 256 * 1024, "cut at 256 KiB");
        assert!(!header.ends_with(b"\r\n\r\n"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
