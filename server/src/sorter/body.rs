//! A queued message's text as a delivery attempt reads it: a small message fresh from
//! acceptance is still in memory; any other is read from its spool file in chunks, so
//! that delivering large messages (16 at a time) never holds them whole in memory.
//! [`Stuffer`] dot-stuffs the text for DATA (RFC 5321 4.5.2) chunk by chunk.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::incoming::MAX_HEADER;

/// How much of a spool file is read at once.
pub const CHUNK: usize = 64 * 1024;

/// The text of a queued message.
#[derive(Debug, Clone)]
pub enum Body {
    Memory(Arc<Vec<u8>>),
    /// The spool file and its size.
    File {
        path: PathBuf,
        size: u64,
    },
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Body {
        Body::Memory(Arc::new(bytes))
    }
}

/// Shared bytes that a cursor can read.
struct Shared(Arc<Vec<u8>>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Body {
    /// Its size in octets.
    pub fn len(&self) -> u64 {
        match self {
            Body::Memory(bytes) => bytes.len() as u64,
            Body::File { size, .. } => *size,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A reader of the whole text, from its start.
    pub async fn reader(&self) -> io::Result<Box<dyn AsyncRead + Unpin + Send>> {
        Ok(match self {
            Body::Memory(bytes) => Box::new(io::Cursor::new(Shared(bytes.clone()))),
            Body::File { path, .. } => Box::new(tokio::fs::File::open(path).await?),
        })
    }

    /// The start of the text, at most [`MAX_HEADER`] octets: its header section, for
    /// a bounce.
    pub async fn head(&self) -> io::Result<Vec<u8>> {
        let mut head = Vec::new();
        self.reader()
            .await?
            .take(MAX_HEADER as u64)
            .read_to_end(&mut head)
            .await?;
        Ok(head)
    }

    /// Whether any octet is 8-bit (then sent as BODY=8BITMIME).
    pub async fn eight_bit(&self) -> io::Result<bool> {
        if let Body::Memory(bytes) = self {
            return Ok(!bytes.is_ascii());
        }
        let mut reader = self.reader().await?;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = reader.read(&mut buf).await?;
            if n == 0 {
                return Ok(false);
            }
            if !buf[..n].is_ascii() {
                return Ok(true);
            }
        }
    }
}

/// Dot-stuffing (RFC 5321 4.5.2) over chunks: a dot that starts a line is doubled,
/// a bare LF is sent as CRLF, and [`Stuffer::finish`] ends the last line and adds the
/// final `.` line.
#[derive(Debug)]
pub struct Stuffer {
    line_start: bool,
    last_cr: bool,
}

impl Default for Stuffer {
    fn default() -> Self {
        Stuffer {
            line_start: true,
            last_cr: false,
        }
    }
}

impl Stuffer {
    /// Appends `chunk`, stuffed, to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        out.reserve(chunk.len() + 16);
        for &b in chunk {
            if self.line_start && b == b'.' {
                out.push(b'.');
            }
            if b == b'\n' && !self.last_cr {
                out.push(b'\r');
            }
            out.push(b);
            self.line_start = b == b'\n';
            self.last_cr = b == b'\r';
        }
    }

    /// Ends the text: CRLF if its last line lacks one, then `.` CRLF.
    pub fn finish(self, out: &mut Vec<u8>) {
        if !self.line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_spooled_body_reads_like_one_in_memory() {
        let dir = std::env::temp_dir().join(format!("mailsite-body-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.msg");
        let text: Vec<u8> = (0..200_000u32)
            .map(|i| b"ab.\r\n"[i as usize % 5])
            .collect();
        std::fs::write(&path, &text).unwrap();
        let file = Body::File {
            path,
            size: text.len() as u64,
        };
        let memory = Body::from(text.clone());
        assert_eq!(file.head().await.unwrap(), text[..MAX_HEADER]);
        assert_eq!(memory.head().await.unwrap(), text[..MAX_HEADER]);
        assert!(!file.eight_bit().await.unwrap());
        assert!(
            Body::from(b"caf\xc3\xa9".to_vec())
                .eight_bit()
                .await
                .unwrap()
        );
        let mut whole = Vec::new();
        file.reader()
            .await
            .unwrap()
            .read_to_end(&mut whole)
            .await
            .unwrap();
        assert_eq!(whole, text);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn stuffing_over_chunks_matches_stuffing_at_once() {
        let text = b"a\r\n.b\r\n..c\n.\r\nd";
        let mut whole = Vec::new();
        let mut s = Stuffer::default();
        s.push(text, &mut whole);
        s.finish(&mut whole);
        assert_eq!(whole, b"a\r\n..b\r\n...c\r\n..\r\nd\r\n.\r\n");
        for split in 0..text.len() {
            let mut out = Vec::new();
            let mut s = Stuffer::default();
            s.push(&text[..split], &mut out);
            s.push(&text[split..], &mut out);
            s.finish(&mut out);
            assert_eq!(out, whole, "split at {split}");
        }
    }
}
