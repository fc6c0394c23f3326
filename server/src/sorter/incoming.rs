//! A message while it is being received: written to a file in the spool's `tmp/` from
//! its first byte, so that what a client sends never piles up in memory (an unfinished
//! multi-megabyte DATA costs a file, not the server's memory). The sorter's Received
//! header goes first; message data follows as it arrives, with bare line feeds made
//! CRLF (see [`super::message`]); BDAT chunks are appended to the same file.
//!
//! The size limit is enforced while writing: past it nothing more is kept (the file is
//! emptied) and the session answers 552 once the client reaches the end. A write error
//! (a full disk) is remembered and answered 451 at the end. The checks that need the
//! message read its header section back from the file, bounded by [`MAX_HEADER`].
//!
//! Dropping an [`Incoming`] that was not queued removes its file: a client that goes
//! away or times out mid-message leaves nothing behind. The queue removes whatever a
//! crash left in `tmp/` when it opens ([`super::queue::Queue::open`]).

use std::io;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// The most of a message's start read back for the header checks (Postfix's
/// `header_size_limit` is 100 KiB).
pub const MAX_HEADER: usize = 64 * 1024;

/// The most bytes the file keeps buffered in memory between writes.
const WRITE_BUFFER: usize = 16 * 1024;

/// One message being received.
pub struct Incoming {
    /// `tmp/<id>.msg` in the spool.
    path: PathBuf,
    file: Option<tokio::fs::File>,
    /// Octets of the sorter's own headers at the start of the file.
    prefix: u64,
    /// Octets of message data received (as the client sent them, unstuffed).
    received: u64,
    /// Octets of message data written (line ends normalised).
    written: u64,
    limit: u64,
    /// The last octet written was a CR (a LF after it is not bare).
    last_cr: bool,
    too_large: bool,
    failed: Option<io::Error>,
    /// Handed to the queue: the file is no longer ours to remove.
    kept: bool,
}

impl Incoming {
    /// Starts `tmp/<id>.msg` in the spool `dir` with `prefix` (the Received header);
    /// at most `limit` octets of message data will be kept.
    pub async fn create(dir: &Path, id: &str, prefix: &[u8], limit: u64) -> io::Result<Incoming> {
        let path = dir.join("tmp").join(format!("{id}.msg"));
        // Readable by mailsite only, whatever the umask: mail is private.
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .await?;
        file.set_max_buf_size(WRITE_BUFFER);
        let mut incoming = Incoming {
            path,
            file: None,
            prefix: prefix.len() as u64,
            received: 0,
            written: 0,
            limit,
            last_cr: false,
            too_large: false,
            failed: None,
            kept: false,
        };
        file.write_all(prefix).await?;
        incoming.file = Some(file);
        Ok(incoming)
    }

    /// Appends message data as it arrives (CRLF made of bare line feeds).
    pub async fn write(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.received += data.len() as u64;
        if self.too_large || self.failed.is_some() {
            return;
        }
        if self.received > self.limit {
            self.too_large = true;
            // Nothing more of it is kept: give the disk space back now.
            if let Some(file) = &mut self.file {
                let _ = file.set_len(0).await;
            }
            return;
        }
        let normalised = normalize_chunk(data, &mut self.last_cr);
        let Some(file) = &mut self.file else {
            return;
        };
        match file.write_all(&normalised).await {
            Ok(()) => self.written += normalised.len() as u64,
            Err(error) => self.failed = Some(error),
        }
    }

    /// Octets of message data received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Whether the message went over the size limit.
    pub fn too_large(&self) -> bool {
        self.too_large
    }

    /// Takes the write error, if writing failed.
    pub fn take_failure(&mut self) -> Option<io::Error> {
        self.failed.take()
    }

    /// The size of the whole file: the sorter's headers and the message.
    pub fn size(&self) -> u64 {
        self.prefix + self.written
    }

    /// The start of the message (after the sorter's headers), at most [`MAX_HEADER`]
    /// octets: enough for its header section.
    pub async fn head(&mut self) -> io::Result<Vec<u8>> {
        let file = self.file.as_mut().ok_or_else(closed)?;
        file.flush().await?;
        let mut reader = tokio::fs::File::open(&self.path).await?;
        reader.seek(io::SeekFrom::Start(self.prefix)).await?;
        let mut head = Vec::with_capacity(MAX_HEADER.min(self.written as usize));
        reader
            .take(MAX_HEADER as u64)
            .read_to_end(&mut head)
            .await?;
        Ok(head)
    }

    /// The whole file (the sorter's headers, then the message) and where the message
    /// starts in it, to check the message and queue it rewritten.
    pub async fn contents(&mut self) -> io::Result<(Vec<u8>, usize)> {
        let file = self.file.as_mut().ok_or_else(closed)?;
        file.flush().await?;
        let bytes = tokio::fs::read(&self.path).await?;
        Ok((bytes, self.prefix as usize))
    }

    /// The whole message (after the sorter's headers), to sign it.
    pub async fn message(&mut self) -> io::Result<Vec<u8>> {
        let file = self.file.as_mut().ok_or_else(closed)?;
        file.flush().await?;
        let mut reader = tokio::fs::File::open(&self.path).await?;
        reader.seek(io::SeekFrom::Start(self.prefix)).await?;
        let mut message = Vec::with_capacity(self.written as usize);
        reader.read_to_end(&mut message).await?;
        Ok(message)
    }

    /// Flushes the file to disk and gives it to the queue: where it is, its size, and
    /// the open file. From here the queue owns the file.
    pub async fn finish(mut self) -> io::Result<(PathBuf, u64, std::fs::File)> {
        let mut file = self.file.take().ok_or_else(closed)?;
        file.flush().await?;
        let file = file.into_std().await;
        self.kept = true;
        Ok((self.path.clone(), self.prefix, file))
    }
}

fn closed() -> io::Error {
    io::Error::other("the message file is closed")
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if !self.kept {
            // Never acknowledged: nothing of it is to remain.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// `data` with every LF that does not follow a CR made CRLF; `last_cr` carries whether
/// the previous chunk ended with a CR.
fn normalize_chunk<'a>(data: &'a [u8], last_cr: &mut bool) -> std::borrow::Cow<'a, [u8]> {
    let mut previous_cr = *last_cr;
    let bare = data.iter().any(|&b| {
        let bare = b == b'\n' && !previous_cr;
        previous_cr = b == b'\r';
        bare
    });
    let mut previous_cr = *last_cr;
    *last_cr = data.last() == Some(&b'\r');
    if !bare {
        return std::borrow::Cow::Borrowed(data);
    }
    let mut out = Vec::with_capacity(data.len() + data.len() / 32);
    for &b in data {
        if b == b'\n' && !previous_cr {
            out.push(b'\r');
        }
        out.push(b);
        previous_cr = b == b'\r';
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mailsite-incoming-{}", rand::random::<u64>()));
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        dir
    }

    #[test]
    fn line_ends_are_normalised_across_chunks() {
        let mut cr = false;
        let mut out = Vec::new();
        for chunk in [&b"a\nb\r"[..], b"\nc\n", b"\r", b"\r\n", b"\n"] {
            out.extend_from_slice(&normalize_chunk(chunk, &mut cr));
        }
        assert_eq!(out, b"a\r\nb\r\nc\r\n\r\r\n\r\n");
        // A bare "\n.\n" inside a message becomes an ordinary line (no smuggling).
        let mut cr = false;
        assert_eq!(&normalize_chunk(b"\n.\n", &mut cr)[..], b"\r\n.\r\n");
    }

    #[tokio::test]
    async fn a_message_is_written_as_it_comes_and_removed_unless_kept() {
        let dir = scratch();
        let mut incoming = Incoming::create(&dir, "A1", b"Received: x\r\n", 100)
            .await
            .unwrap();
        incoming.write(b"Subject: hi\n\nbody\n").await;
        assert_eq!(
            incoming.head().await.unwrap(),
            b"Subject: hi\r\n\r\nbody\r\n"
        );
        assert_eq!(incoming.size(), 13 + 21);
        let path = dir.join("tmp/A1.msg");
        assert!(path.exists());
        drop(incoming);
        assert!(!path.exists(), "an unfinished message leaves no file");

        let mut incoming = Incoming::create(&dir, "A2", b"", 10).await.unwrap();
        incoming.write(b"0123456789").await;
        assert!(!incoming.too_large());
        incoming.write(b"x").await;
        assert!(incoming.too_large());
        assert_eq!(incoming.received(), 11);
        let (path, prefix, _file) = incoming.finish().await.unwrap();
        assert_eq!(prefix, 0);
        assert!(path.exists(), "a finished message is the queue's to keep");
        std::fs::remove_dir_all(dir).ok();
    }
}
