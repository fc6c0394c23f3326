//! A buffered TCP connection with just what a benchmark client needs: lines, IMAP
//! responses up to their tagged status (literals skipped and counted) and POP3
//! single- and multi-line replies.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// `f`, or a TimedOut error after `limit`.
pub async fn timed<T>(
    limit: std::time::Duration,
    f: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    match tokio::time::timeout(limit, f).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "operation timed out",
        )),
    }
}

pub struct Conn {
    inner: BufReader<TcpStream>,
    line: Vec<u8>,
}

/// How an IMAP command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the server closed the connection",
    )
}

fn trim_crlf(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The size of the literal a line announces at its end (`{123}` or `{123+}`).
fn literal_len(line: &[u8]) -> Option<u64> {
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    let digits = &body[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

impl Conn {
    pub async fn connect(addr: SocketAddr, buffer: usize) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            inner: BufReader::with_capacity(buffer, stream),
            line: Vec::with_capacity(256),
        })
    }

    /// The socket, for holding an idle connection without its buffers.
    pub fn into_stream(self) -> TcpStream {
        self.inner.into_inner()
    }

    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.get_mut().write_all(bytes).await
    }

    /// Reads one line (CRLF stripped).
    pub async fn read_line(&mut self) -> io::Result<&[u8]> {
        self.line.clear();
        if self.inner.read_until(b'\n', &mut self.line).await? == 0 {
            return Err(closed());
        }
        Ok(trim_crlf(&self.line))
    }

    /// Reads and drops `n` bytes.
    async fn skip(&mut self, n: u64) -> io::Result<()> {
        let copied =
            tokio::io::copy(&mut (&mut self.inner).take(n), &mut tokio::io::sink()).await?;
        if copied < n {
            return Err(closed());
        }
        Ok(())
    }

    /// Reads one IMAP response line with its literals: returns the text without the
    /// literal bytes, and how many literal bytes there were.
    async fn imap_response(&mut self, text: &mut Vec<u8>) -> io::Result<u64> {
        text.clear();
        let mut literal = 0;
        loop {
            let line = self.read_line().await?;
            text.extend_from_slice(line);
            match literal_len(line) {
                Some(n) => {
                    literal += n;
                    self.skip(n).await?;
                }
                None => return Ok(literal),
            }
        }
    }

    /// Reads responses until the one tagged `tag`; every other response line (literals
    /// left out) goes to `on_line`. Returns the status and the literal bytes received.
    pub async fn imap_wait(
        &mut self,
        tag: &[u8],
        mut on_line: impl FnMut(&[u8]),
    ) -> io::Result<(Status, u64)> {
        let mut text = Vec::with_capacity(256);
        let mut literals = 0;
        loop {
            literals += self.imap_response(&mut text).await?;
            if text.len() > tag.len() && text.starts_with(tag) && text[tag.len()] == b' ' {
                let rest = &text[tag.len() + 1..];
                let status = if rest.starts_with(b"OK") {
                    Status::Ok
                } else if rest.starts_with(b"NO") {
                    Status::No
                } else {
                    Status::Bad
                };
                return Ok((status, literals));
            }
            on_line(&text);
        }
    }

    /// Sends `tag command` and waits for its tagged status.
    pub async fn imap(
        &mut self,
        tag: &[u8],
        command: &[u8],
        on_line: impl FnMut(&[u8]),
    ) -> io::Result<(Status, u64)> {
        let mut out = Vec::with_capacity(tag.len() + command.len() + 3);
        out.extend_from_slice(tag);
        out.push(b' ');
        out.extend_from_slice(command);
        out.extend_from_slice(b"\r\n");
        self.send(&out).await?;
        self.imap_wait(tag, on_line).await
    }

    /// `tag APPEND mailbox (flags) {n}` with a synchronizing literal.
    pub async fn imap_append(
        &mut self,
        tag: &[u8],
        mailbox: &str,
        flags: &str,
        message: &[u8],
    ) -> io::Result<Status> {
        let head = format!(
            "{} APPEND \"{mailbox}\" ({flags}) {{{}}}\r\n",
            String::from_utf8_lossy(tag),
            message.len()
        );
        self.send(head.as_bytes()).await?;
        let mut text = Vec::new();
        self.imap_response(&mut text).await?;
        if !text.starts_with(b"+") {
            return Ok(Status::No);
        }
        let mut body = Vec::with_capacity(message.len() + 2);
        body.extend_from_slice(message);
        body.extend_from_slice(b"\r\n");
        self.send(&body).await?;
        Ok(self.imap_wait(tag, |_| {}).await?.0)
    }

    /// Sends a POP3 command and reads its status line: `Ok(true)` for +OK.
    pub async fn pop3(&mut self, command: &[u8]) -> io::Result<bool> {
        let mut out = Vec::with_capacity(command.len() + 2);
        out.extend_from_slice(command);
        out.extend_from_slice(b"\r\n");
        self.send(&out).await?;
        Ok(self.read_line().await?.starts_with(b"+OK"))
    }

    /// The status line just read, as text (for STAT and error messages).
    pub fn last_line(&self) -> String {
        String::from_utf8_lossy(trim_crlf(&self.line)).into_owned()
    }

    /// Sends a POP3 command with a multi-line answer; reads it up to the lone dot.
    /// Returns the bytes of the body (dot-stuffed, CRLF line ends), or `None` for -ERR.
    pub async fn pop3_multi(&mut self, command: &[u8]) -> io::Result<Option<u64>> {
        if !self.pop3(command).await? {
            return Ok(None);
        }
        let mut bytes = 0;
        loop {
            self.line.clear();
            let n = self.inner.read_until(b'\n', &mut self.line).await?;
            if n == 0 {
                return Err(closed());
            }
            if self.line == b".\r\n" || self.line == b".\n" {
                return Ok(Some(bytes));
            }
            bytes += n as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::literal_len;

    #[test]
    fn literals_are_found_at_line_ends_only() {
        assert_eq!(literal_len(b"* 1 FETCH (BODY[] {1234}"), Some(1234));
        assert_eq!(literal_len(b"* 1 FETCH (BODY[] {12+}"), Some(12));
        assert_eq!(literal_len(b"* 1 FETCH (FLAGS (\\Seen))"), None);
        assert_eq!(literal_len(b"* OK {x}"), None);
        assert_eq!(literal_len(b"{}"), None);
    }
}
