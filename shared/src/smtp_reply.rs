//! Reading SMTP and LMTP replies as a client: the sorters handing mail on, the health
//! checks, and the desktop helper's probes all read a server's replies here.
//!
//! smtp-proto's response parser does the parsing (code, enhanced status code, the
//! text of every line); this module feeds it one line at a time, so that a hostile or
//! broken server meets limits (the length of a line, the number of lines) and gets an
//! error instead of an ever-growing buffer. It keeps the bytes as they were sent, for
//! the helper's transcripts. How long a reply may take is the caller's timeout.

use std::borrow::Cow;

use smtp_proto::response::parser::{MAX_RESPONSE_LENGTH, ResponseReceiver};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// How much of a reply is read before giving up on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyLimits {
    /// The longest line, line end included (RFC 5321 4.5.3.1.5 says 512; servers send
    /// longer EHLO and error lines, so the default allows more).
    pub max_line: usize,
    /// The most lines of one reply (a multi-line EHLO has a dozen or two).
    pub max_lines: usize,
}

impl Default for ReplyLimits {
    fn default() -> ReplyLimits {
        ReplyLimits {
            max_line: 4096,
            max_lines: 100,
        }
    }
}

/// Why no reply could be read.
#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    #[error("reading the reply: {0}")]
    Io(#[from] std::io::Error),
    #[error("the server closed the connection")]
    Closed,
    #[error("the server closed the connection in the middle of a reply")]
    Truncated,
    #[error("a reply line longer than {0} bytes")]
    LineTooLong(usize),
    #[error("a reply of more than {0} lines")]
    TooManyLines(usize),
    #[error("a reply longer than {MAX_RESPONSE_LENGTH} bytes")]
    TooLong,
    #[error("not an SMTP reply: {0:?}")]
    Malformed(String),
}

impl From<ReplyError> for std::io::Error {
    /// For callers whose conversation fails with I/O errors: a broken reply is bad
    /// data, a missing one the end of the stream.
    fn from(error: ReplyError) -> std::io::Error {
        let kind = match &error {
            ReplyError::Io(e) => e.kind(),
            ReplyError::Closed | ReplyError::Truncated => std::io::ErrorKind::UnexpectedEof,
            _ => std::io::ErrorKind::InvalidData,
        };
        match error {
            ReplyError::Io(e) => e,
            other => std::io::Error::new(kind, other.to_string()),
        }
    }
}

/// One reply, complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code (200 to 599).
    pub code: u16,
    /// The enhanced status code (RFC 3463), when the server sent one.
    pub enhanced: Option<[u8; 3]>,
    /// The text of every line without its code, separator and enhanced code, the lines
    /// joined with `\n`.
    pub message: String,
    /// The reply exactly as the server sent it, line ends included.
    pub raw: Vec<u8>,
}

impl Reply {
    /// Each line as sent, without its line end.
    pub fn lines(&self) -> impl Iterator<Item = Cow<'_, str>> {
        self.raw
            .split_inclusive(|&b| b == b'\n')
            .map(|line| String::from_utf8_lossy(line.trim_ascii_end()))
    }

    /// The last line as sent, without its line end: the one a log or a bounce quotes.
    pub fn last_line(&self) -> Cow<'_, str> {
        self.lines().last().unwrap_or_default()
    }

    /// Whether an EHLO or LHLO reply offers an extension (a keyword of a line after
    /// the first, RFC 5321 4.1.1.1).
    pub fn offers(&self, keyword: &str) -> bool {
        self.message.lines().skip(1).any(|line| {
            line.split_whitespace()
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case(keyword))
        })
    }
}

/// Reads one reply, all its lines, within `limits`.
pub async fn read_reply<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    limits: ReplyLimits,
) -> Result<Reply, ReplyError> {
    let mut receiver = ResponseReceiver::default();
    let mut raw = Vec::new();
    let mut line = Vec::new();
    for _ in 0..limits.max_lines {
        line.clear();
        let n = (&mut *reader)
            .take(limits.max_line as u64)
            .read_until(b'\n', &mut line)
            .await?;
        if !line.ends_with(b"\n") {
            return Err(if n == limits.max_line {
                ReplyError::LineTooLong(limits.max_line)
            } else if raw.is_empty() && n == 0 {
                ReplyError::Closed
            } else {
                ReplyError::Truncated
            });
        }
        // Every line of a reply carries the same code (RFC 5321 4.2.1); the parser
        // takes the first line's.
        if raw.len() >= 3 && line.get(..3) != raw.get(..3) {
            return Err(malformed(&line));
        }
        raw.extend_from_slice(&line);
        match receiver.parse(&mut line.iter()) {
            Ok(response) if (200..600).contains(&response.code) => {
                return Ok(Reply {
                    code: response.code,
                    enhanced: (response.esc[0] != 0).then_some(response.esc),
                    message: response.message,
                    raw,
                });
            }
            Ok(_) => return Err(malformed(&raw)),
            Err(smtp_proto::Error::NeedsMoreData { .. }) => {}
            Err(smtp_proto::Error::ResponseTooLong) => return Err(ReplyError::TooLong),
            Err(_) => return Err(malformed(&line)),
        }
    }
    Err(ReplyError::TooManyLines(limits.max_lines))
}

/// The start of what came instead of a reply, printable.
fn malformed(bytes: &[u8]) -> ReplyError {
    let text: String = String::from_utf8_lossy(bytes)
        .trim_end()
        .chars()
        .filter(|c| !c.is_control())
        .take(80)
        .collect();
    ReplyError::Malformed(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(bytes: &[u8], limits: ReplyLimits) -> Result<Reply, ReplyError> {
        let mut reader = tokio::io::BufReader::new(bytes);
        read_reply(&mut reader, limits).await
    }

    #[tokio::test]
    async fn a_multi_line_reply_keeps_its_lines_and_extensions() {
        let sent = b"250-mx.example.test greets you\r\n250-8BITMIME\r\n250-SIZE 1000\r\n250 PIPELINING\r\n";
        let reply = read(sent, ReplyLimits::default()).await.unwrap();
        assert_eq!(reply.code, 250);
        assert_eq!(reply.enhanced, None);
        assert_eq!(reply.raw, sent);
        assert_eq!(reply.last_line(), "250 PIPELINING");
        assert_eq!(reply.lines().count(), 4);
        assert!(reply.offers("8bitmime") && reply.offers("SIZE") && reply.offers("PIPELINING"));
        assert!(!reply.offers("STARTTLS") && !reply.offers("mx.example.test"));
    }

    #[tokio::test]
    async fn one_reply_is_read_and_the_next_left_for_later() {
        let mut reader = tokio::io::BufReader::new(&b"550 5.1.1 no such user\r\n220 next\r\n"[..]);
        let reply = read_reply(&mut reader, ReplyLimits::default())
            .await
            .unwrap();
        assert_eq!(
            (reply.code, reply.enhanced, reply.message.as_str()),
            (550, Some([5, 1, 1]), "no such user")
        );
        let next = read_reply(&mut reader, ReplyLimits::default())
            .await
            .unwrap();
        assert_eq!(next.code, 220);
        assert!(matches!(
            read_reply(&mut reader, ReplyLimits::default()).await,
            Err(ReplyError::Closed)
        ));
    }

    #[tokio::test]
    async fn malformed_replies_are_refused() {
        for sent in [
            &b"hello\r\n"[..],
            b"25x ok\r\n",
            b"250-first\r\n354 another code\r\n",
            b"099 not a code\r\n",
            b"\r\n",
        ] {
            let result = read(sent, ReplyLimits::default()).await;
            assert!(
                matches!(result, Err(ReplyError::Malformed(_))),
                "{sent:?}: {result:?}"
            );
        }
    }

    #[tokio::test]
    async fn an_over_long_line_is_an_error() {
        let limits = ReplyLimits {
            max_line: 64,
            max_lines: 10,
        };
        let mut sent = b"250 ".to_vec();
        sent.extend(std::iter::repeat_n(b'x', 1000));
        sent.extend_from_slice(b"\r\n");
        assert!(matches!(
            read(&sent, limits).await,
            Err(ReplyError::LineTooLong(64))
        ));
        // A line of exactly the limit is fine.
        let mut sent = b"250 ".to_vec();
        sent.extend(std::iter::repeat_n(b'x', 58));
        sent.extend_from_slice(b"\r\n");
        assert_eq!(read(&sent, limits).await.unwrap().code, 250);
    }

    #[tokio::test]
    async fn too_many_lines_are_an_error() {
        let limits = ReplyLimits {
            max_line: 64,
            max_lines: 5,
        };
        let sent = b"250-a\r\n".repeat(100);
        assert!(matches!(
            read(&sent, limits).await,
            Err(ReplyError::TooManyLines(5))
        ));
        // Many short lines still meet the parser's own bound on the whole reply.
        let sent = b"250-abcdefghijklmnopqrstuvwxyz\r\n".repeat(1000);
        let limits = ReplyLimits {
            max_line: 64,
            max_lines: 1000,
        };
        assert!(matches!(
            read(&sent, limits).await,
            Err(ReplyError::TooLong)
        ));
    }

    #[tokio::test]
    async fn the_end_of_the_stream_in_a_reply_is_an_error() {
        for sent in [
            &b"250-first\r\n250-second\r\n"[..],
            b"250 no line end",
            b"25",
        ] {
            let result = read(sent, ReplyLimits::default()).await;
            assert!(
                matches!(result, Err(ReplyError::Truncated)),
                "{sent:?}: {result:?}"
            );
        }
        let result = read(b"", ReplyLimits::default()).await;
        assert!(matches!(result, Err(ReplyError::Closed)));
        let error: std::io::Error = result.unwrap_err().into();
        assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn a_hostile_server_that_never_ends_a_line_gets_an_error_not_a_hang() {
        let (mut server, client) = tokio::io::duplex(1024);
        let flood = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let chunk = [b'2'; 512];
            // Writes until the reader gives up and drops its end.
            while server.write_all(&chunk).await.is_ok() {}
        });
        let mut reader = tokio::io::BufReader::new(client);
        let result = read_reply(&mut reader, ReplyLimits::default()).await;
        assert!(
            matches!(result, Err(ReplyError::LineTooLong(4096))),
            "{result:?}"
        );
        drop(reader);
        flood.await.unwrap();
    }
}
