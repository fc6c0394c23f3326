//! A queued message's text as a delivery attempt reads it: a small message fresh from
//! acceptance is still in memory; any other is read from its spool file in chunks, so
//! that delivering large messages (16 at a time) never holds them whole in memory. It is
//! dot-stuffed for DATA by [`mailsite_shared::smtp_data::Stuffer`], chunk by chunk.

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
}
