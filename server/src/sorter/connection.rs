//! The SMTP connection loop: frames command lines (at most 1000 octets, RFC 5321
//! 4.5.3.1.6), reads message data (DATA up to CRLF "." CRLF with smtp-proto's data
//! receiver, BDAT chunks by count) straight into the message file in the spool
//! ([`Incoming`]: never the whole message in memory), starts TLS, and enforces the time
//! limits. It only moves bytes; [`Session`] decides. Generic over the stream, so that tests and fuzz
//! targets can drive it from bytes.
//!
//! Pipelined commands (RFC 2920) are answered in order and their replies sent
//! together, before the loop waits for more input. A command line must arrive whole
//! within the `[timeouts] smtp` seconds (a client that trickles bytes is closed like a
//! silent one); within a message, each read must.

use std::time::Duration;

use smtp_proto::request::receiver::DataReceiver;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use super::incoming::Incoming;
use super::session::{Next, Session};

/// The longest command line, its CRLF included.
pub const MAX_LINE: usize = 1000;
/// How much is read from the client at once.
const READ_SIZE: usize = 16 * 1024;
/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection, plain or TLS.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Bytes received and not yet used.
#[derive(Default)]
struct Input {
    buf: Vec<u8>,
    pos: usize,
    /// In the middle of an over-long line: drop bytes up to its end.
    skipping: bool,
}

/// A line taken from the input.
enum Line {
    Complete(Vec<u8>),
    TooLong,
}

impl Input {
    fn available(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.pos = 0;
        self.skipping = false;
    }

    /// The next whole line without its line end (CRLF, or a bare LF), if one is here.
    fn line(&mut self) -> Option<Line> {
        let available = self.available();
        match available.iter().position(|&b| b == b'\n') {
            Some(end) => {
                let too_long = self.skipping || end + 1 > MAX_LINE;
                let line = available[..end]
                    .strip_suffix(b"\r")
                    .unwrap_or(&available[..end]);
                let line = line.to_vec();
                self.consume(end + 1);
                self.skipping = false;
                Some(if too_long {
                    Line::TooLong
                } else {
                    Line::Complete(line)
                })
            }
            None => {
                if self.skipping || available.len() >= MAX_LINE {
                    // Keep nothing of a line that is already too long.
                    self.skipping = true;
                    self.pos = self.buf.len();
                }
                None
            }
        }
    }

    /// Reads more input; `Ok(false)` at the end of the stream.
    async fn fill(&mut self, stream: &mut Box<dyn Stream>) -> std::io::Result<bool> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        if self.buf.is_empty() && self.buf.capacity() > 2 * READ_SIZE {
            // Give back what a burst of pipelined input or message data needed.
            self.buf = Vec::new();
        }
        // Straight into the buffer: no copy, and no array kept in every connection.
        self.buf.reserve(READ_SIZE);
        let n = stream.read_buf(&mut self.buf).await?;
        Ok(n > 0)
    }
}

fn timed_out() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "client too slow")
}

async fn send(stream: &mut Box<dyn Stream>, bytes: &[u8], limit: Duration) -> std::io::Result<()> {
    tokio::time::timeout(limit, async {
        stream.write_all(bytes).await?;
        stream.flush().await
    })
    .await
    .map_err(|_| timed_out())?
}

/// Reads more input within `limit`; `Ok(false)` at the end of the stream.
async fn fill_within(
    input: &mut Input,
    stream: &mut Box<dyn Stream>,
    deadline: Instant,
) -> std::io::Result<bool> {
    tokio::time::timeout_at(deadline, input.fill(stream))
        .await
        .map_err(|_| timed_out())?
}

/// Serves one connection until QUIT, a limit, a timeout or the peer leaves.
pub async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    mut session: Session,
    tls: Option<TlsAcceptor>,
) -> std::io::Result<()> {
    let mut stream: Box<dyn Stream> = Box::new(stream);
    let timeout = session.timeout();
    send(&mut stream, session.greeting().as_bytes(), timeout).await?;
    let mut input = Input::default();
    let mut out: Vec<u8> = Vec::new();
    let mut line_deadline: Option<Instant> = None;
    loop {
        let next = match input.line() {
            Some(Line::Complete(line)) => {
                line_deadline = None;
                session.line(&line).await
            }
            Some(Line::TooLong) => {
                line_deadline = None;
                session.line_too_long()
            }
            None => {
                // Answer everything pipelined so far before waiting (RFC 2920 3.1).
                if !out.is_empty() {
                    send(&mut stream, &out, timeout).await?;
                    out.clear();
                }
                let deadline = *line_deadline.get_or_insert_with(|| Instant::now() + timeout);
                match fill_within(&mut input, &mut stream, deadline).await {
                    Ok(true) => continue,
                    Ok(false) => return Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                        let _ = send(&mut stream, session.timed_out().as_bytes(), timeout).await;
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        match next {
            Next::Reply(text) => out.extend_from_slice(text.as_bytes()),
            Next::Close(text) => {
                out.extend_from_slice(text.as_bytes());
                return send(&mut stream, &out, timeout).await;
            }
            Next::StartTls(text) => {
                out.extend_from_slice(text.as_bytes());
                send(&mut stream, &out, timeout).await?;
                out.clear();
                let Some(acceptor) = tls.clone() else {
                    return Ok(());
                };
                // Commands sent before the handshake were not protected: dropped
                // (the STARTTLS command injection attack, RFC 3207 5).
                input.clear();
                let plain = stream;
                let encrypted = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(plain))
                    .await
                    .map_err(|_| timed_out())??;
                stream = Box::new(encrypted);
                session.tls_started();
            }
            Next::Data(text) => {
                out.extend_from_slice(text.as_bytes());
                send(&mut stream, &out, timeout).await?;
                out.clear();
                let Some(mut incoming) = session.take_incoming() else {
                    return Ok(());
                };
                let next = match read_data(&mut input, &mut stream, &mut incoming, timeout).await {
                    Ok(()) => session.message(incoming).await,
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                        let _ = send(&mut stream, session.timed_out().as_bytes(), timeout).await;
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                };
                if answer(&mut out, next) {
                    return send(&mut stream, &out, timeout).await;
                }
            }
            Next::Bdat { size, keep } => {
                let mut incoming = if keep { session.take_incoming() } else { None };
                match read_chunk(&mut input, &mut stream, size, incoming.as_mut(), timeout).await {
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                        let _ = send(&mut stream, session.timed_out().as_bytes(), timeout).await;
                        return Ok(());
                    }
                    result => result?,
                };
                if answer(&mut out, session.chunk(incoming, size).await) {
                    return send(&mut stream, &out, timeout).await;
                }
            }
        }
    }
}

/// Adds the reply after message data to `out`; whether the connection is to close.
fn answer(out: &mut Vec<u8>, next: Next) -> bool {
    match next {
        Next::Reply(text) => {
            out.extend_from_slice(text.as_bytes());
            false
        }
        Next::Close(text) => {
            out.extend_from_slice(text.as_bytes());
            true
        }
        // Only commands lead to TLS, DATA or BDAT.
        _ => true,
    }
}

/// Reads message data up to CRLF "." CRLF, undoing dot-stuffing, into the message
/// file as it arrives (past the size limit the file keeps nothing more).
async fn read_data(
    input: &mut Input,
    stream: &mut Box<dyn Stream>,
    incoming: &mut Incoming,
    timeout: Duration,
) -> std::io::Result<()> {
    let mut receiver = DataReceiver::new();
    let mut data = Vec::new();
    // The CRLF that ended the DATA line also begins the first line of data (RFC 5321
    // 4.1.1.4): a first line starting with a dot is unstuffed, and "." right away
    // ends an empty message.
    receiver.ingest(&mut b"\r\n".iter(), &mut data);
    data.clear();
    loop {
        let available = input.available();
        let mut bytes = available.iter();
        let done = receiver.ingest(&mut bytes, &mut data);
        let used = available.len() - bytes.as_slice().len();
        input.consume(used);
        // A CR at the end may be the one of the final "." CRLF, which the receiver
        // takes back when the LF comes: it waits for the next round.
        let keep = usize::from(!done && data.last() == Some(&b'\r'));
        incoming.write(&data[..data.len() - keep]).await;
        data.drain(..data.len() - keep);
        if done {
            return Ok(());
        }
        if !fill_within(input, stream, Instant::now() + timeout).await? {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// Reads `size` octets of a BDAT chunk into the message file (or drops them).
async fn read_chunk(
    input: &mut Input,
    stream: &mut Box<dyn Stream>,
    size: usize,
    mut incoming: Option<&mut Incoming>,
    timeout: Duration,
) -> std::io::Result<()> {
    let mut left = size;
    loop {
        let available = input.available();
        let take = left.min(available.len());
        if let Some(incoming) = incoming.as_deref_mut() {
            incoming.write(&available[..take]).await;
        }
        input.consume(take);
        left -= take;
        if left == 0 {
            return Ok(());
        }
        if !fill_within(input, stream, Instant::now() + timeout).await? {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sorter::Port;
    use crate::sorter::session::tests::scratch_sorter;

    /// Everything the server answers to a client that sends `input`, then closes.
    async fn converse(input: Vec<u8>) -> String {
        let (sorter, dir) = scratch_sorter().await;
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let session = Session::new(sorter, Port::Mx, "127.0.0.1:40000".parse().unwrap());
        let serving = tokio::spawn(serve_connection(server, session, None));
        client.write_all(&input).await.unwrap();
        client.shutdown().await.unwrap();
        let mut out = Vec::new();
        let read = client.read_to_end(&mut out);
        tokio::time::timeout(Duration::from_secs(20), read)
            .await
            .expect("the session ended")
            .unwrap();
        let _ = serving.await.unwrap();
        std::fs::remove_dir_all(dir).ok();
        String::from_utf8(out).unwrap()
    }

    #[tokio::test]
    async fn a_pipelined_session_gets_every_reply_in_order() {
        let out = converse(
            b"EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<nobody@example.test>\r\n\
              RCPT TO:<x@example.org>\r\nDATA\r\nNOOP\nQUIT\r\n"
                .to_vec(),
        )
        .await;
        let codes: Vec<&str> = out
            .lines()
            .filter(|l| l.as_bytes().get(3) == Some(&b' '))
            .map(|l| &l[..3])
            .collect();
        assert_eq!(
            codes,
            ["220", "250", "250", "550", "554", "554", "250", "221"],
            "{out}"
        );
    }

    #[tokio::test]
    async fn garbage_never_panics_and_every_reply_is_a_reply() {
        // A deterministic jumble of protocol fragments, control bytes and binary.
        let pieces: [&[u8]; 12] = [
            b"EHLO \xff\xfe\r\n",
            b"MAIL FROM:<\0>\r\n",
            b"RCPT TO:<@@@>\r\n",
            b"BDAT 5\r\nabc",
            b"\r\n\r\n.\r\n",
            b"AUTH PLAIN\r\n",
            b"=\r\n",
            b"AUTH LOGIN ////\r\n",
            b"\n\n\r\r\n",
            b"DATA\r\n",
            b"BDAT 99999999999999999999999\r\n",
            b"\x16\x03\x01\x02\x00\x01",
        ];
        let mut seed = 0x2545_f491_u64;
        for _ in 0..20 {
            let mut input = Vec::new();
            for _ in 0..30 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                input.extend_from_slice(pieces[(seed % pieces.len() as u64) as usize]);
            }
            let out = converse(input).await;
            for line in out.lines() {
                let code = line.get(..3).and_then(|c| c.parse::<u16>().ok());
                assert!(
                    code.is_some_and(|c| (200..600).contains(&c))
                        && matches!(line.as_bytes().get(3), Some(b' ' | b'-') | None),
                    "not a reply line: {line:?} in {out}"
                );
            }
        }
    }
}
