//! Protocol transcripts, redacted as they are recorded: every line passes through
//! [`Transcript::push`], which replaces credentials before the line is stored, so no
//! report, log or screen can ever show one. [`Recorder`] wraps a stream and feeds
//! every complete line it carries, in both directions, into a transcript.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What replaces a secret.
pub const REDACTED: &str = "<redacted>";

/// Lines kept per transcript; a long listing or message body is cut.
const MAX_LINES: usize = 120;
/// Characters kept per line.
const MAX_LINE: usize = 300;

/// Every form a password takes on the wire: as typed, quoted for IMAP, base64 for
/// AUTH LOGIN, and inside SASL PLAIN with each login name.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    forms: Vec<String>,
}

impl Secrets {
    pub fn new(password: &str, logins: &[&str]) -> Secrets {
        let mut forms = Vec::new();
        if password.is_empty() {
            return Secrets { forms };
        }
        forms.push(password.to_string());
        forms.push(password.replace('\\', "\\\\").replace('"', "\\\""));
        forms.push(BASE64.encode(password));
        for login in logins {
            forms.push(BASE64.encode(format!("\0{login}\0{password}")));
            forms.push(BASE64.encode(format!("{login}\0{login}\0{password}")));
        }
        // Longest first, so a form containing another is replaced whole.
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        forms.dedup();
        Secrets { forms }
    }

    /// The text with every form of the secret replaced.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for form in &self.forms {
            if out.contains(form.as_str()) {
                out = out.replace(form.as_str(), REDACTED);
            }
        }
        out
    }
}

/// Hides the arguments of commands that carry credentials, whatever they are:
/// IMAP `LOGIN` and `AUTHENTICATE`, POP3 `PASS` and `AUTH`, SMTP `AUTH`.
fn redact_command(line: &str) -> String {
    let words: Vec<&str> = line.split(' ').collect();
    let upper: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
    let keep = match upper.as_slice() {
        [cmd, ..] if cmd == "PASS" => 1,
        [cmd, _mech, ..] if cmd == "AUTH" => 2,
        [_tag, cmd, _user, ..] if cmd == "LOGIN" => 3,
        [_tag, cmd, _mech, ..] if cmd == "AUTHENTICATE" => 3,
        _ => return line.to_string(),
    };
    if words.len() <= keep {
        return line.to_string();
    }
    format!("{} {REDACTED}", words[..keep].join(" "))
}

/// The lines of one conversation, secrets replaced.
#[derive(Debug, Default)]
pub struct Transcript {
    secrets: Secrets,
    lines: Vec<String>,
    dropped: usize,
    /// The client sent an AUTH/AUTHENTICATE/AUTH LOGIN: its next lines are answers
    /// to challenges (base64 credentials), hidden until the server's final reply.
    in_sasl: bool,
}

/// A transcript several tasks write to.
pub type Shared = Arc<Mutex<Transcript>>;

impl Transcript {
    pub fn new(secrets: Secrets) -> Transcript {
        Transcript {
            secrets,
            ..Transcript::default()
        }
    }

    pub fn shared(secrets: Secrets) -> Shared {
        Arc::new(Mutex::new(Transcript::new(secrets)))
    }

    /// Records a line the client sent (`C: `) or received (`S: `), redacted first.
    pub fn push(&mut self, from_client: bool, line: &str) {
        let line = line.trim_end_matches(['\r', '\n']);
        let text = if from_client {
            let upper = line.to_ascii_uppercase();
            let sasl_start =
                upper.starts_with("AUTH ") || upper.split(' ').nth(1) == Some("AUTHENTICATE");
            let text = if self.in_sasl && !sasl_start {
                REDACTED.to_string()
            } else {
                redact_command(line)
            };
            if sasl_start {
                self.in_sasl = true;
            }
            text
        } else {
            // A continuation ("+ ", "334 ") keeps the exchange open; anything else ends it.
            if !(line.starts_with('+') || line.starts_with("334")) {
                self.in_sasl = false;
            }
            line.to_string()
        };
        let mut text = self.secrets.scrub(&text);
        if text.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push_str(" ...");
        }
        if self.lines.len() >= MAX_LINES {
            self.dropped += 1;
            return;
        }
        self.lines
            .push(format!("{} {text}", if from_client { "C:" } else { "S:" }));
    }

    /// A note that is not on the wire (`*  STARTTLS: now encrypted`).
    pub fn note(&mut self, text: &str) {
        let text = self.secrets.scrub(text);
        if self.lines.len() < MAX_LINES {
            self.lines.push(format!("*  {text}"));
        }
    }

    pub fn lines(&self) -> Vec<String> {
        let mut out = self.lines.clone();
        if self.dropped > 0 {
            out.push(format!("*  ({} more lines not kept)", self.dropped));
        }
        out
    }
}

/// A stream that records every complete line it carries into a transcript.
#[derive(Debug)]
pub struct Recorder<S> {
    inner: S,
    transcript: Shared,
    sent: Vec<u8>,
    received: Vec<u8>,
    peer: Option<std::net::SocketAddr>,
}

impl<S> Recorder<S> {
    pub fn new(inner: S, transcript: Shared, peer: Option<std::net::SocketAddr>) -> Recorder<S> {
        Recorder {
            inner,
            transcript,
            sent: Vec::new(),
            received: Vec::new(),
            peer,
        }
    }

    /// The stream underneath, once the conversation on it is over (e.g. for STARTTLS).
    pub fn into_inner(mut self) -> S {
        self.flush_lines(true);
        self.inner
    }

    pub fn peer(&self) -> Option<std::net::SocketAddr> {
        self.peer
    }

    fn flush_lines(&mut self, all: bool) {
        let mut t = self.transcript.lock().unwrap_or_else(|p| p.into_inner());
        for (buffer, from_client) in [(&mut self.sent, true), (&mut self.received, false)] {
            while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=end).collect();
                t.push(from_client, &String::from_utf8_lossy(&line));
            }
            if all && !buffer.is_empty() {
                let rest = std::mem::take(buffer);
                t.push(from_client, &String::from_utf8_lossy(&rest));
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Recorder<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &result {
            let new = buf.filled()[before..].to_vec();
            self.received.extend_from_slice(&new);
            self.flush_lines(false);
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Recorder<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = &result {
            let n = *n;
            self.sent.extend_from_slice(&data[..n]);
            self.flush_lines(false);
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_reach_the_transcript() {
        let secrets = Secrets::new("s3cret pass", &["alice", "alice@example.test"]);
        let mut t = Transcript::new(secrets);
        t.push(true, "a1 LOGIN alice \"s3cret pass\"\r\n");
        t.push(true, "PASS s3cret pass\r\n");
        t.push(
            true,
            &format!("AUTH PLAIN {}\r\n", BASE64.encode("\0alice\0s3cret pass")),
        );
        t.push(true, "AUTH LOGIN\r\n");
        t.push(false, "334 VXNlcm5hbWU6\r\n");
        t.push(true, &format!("{}\r\n", BASE64.encode("alice")));
        t.push(false, "334 UGFzc3dvcmQ6\r\n");
        t.push(true, &format!("{}\r\n", BASE64.encode("s3cret pass")));
        t.push(false, "235 2.7.0 ok\r\n");
        t.push(true, "QUIT\r\n");
        t.push(false, "-ERR you said s3cret pass\r\n");
        let text = t.lines().join("\n");
        assert!(!text.contains("s3cret"), "{text}");
        assert!(!text.contains(&BASE64.encode("s3cret pass")), "{text}");
        assert!(text.contains("C: a1 LOGIN alice <redacted>"), "{text}");
        assert!(text.contains("C: PASS <redacted>"), "{text}");
        assert!(text.contains("C: QUIT"), "{text}");
    }
}
