//! Entry points for the fuzz targets in `server/fuzz/` (and for the tests that run
//! them over the seeds in `server/fuzz/seeds/` on every `cargo test`). Each takes the
//! bytes a client sends, serves them with the mailbox server's real connection loop
//! over loopback TCP (a site database, a store and TLS in a scratch directory, a user
//! who can log in and has mail: `harness`), and checks what the server did.
//!
//! Beyond never panicking, every input must end the connection within a bound (no
//! hang), leave nothing outside the storage root, and get replies a client can parse
//! (`replies`). Fuzzing builds (`--cfg fuzzing`, set by cargo-fuzz) hash passwords
//! cheaply and answer failed logins at once, so that an iteration takes milliseconds.

mod harness;
mod replies;

use std::sync::OnceLock;

use harness::{Eof, Harness};

use crate::mailbox::{imap, lmtp, pop3};

pub use harness::{DISABLED, ELSEWHERE, PASSWORD, USER};
pub use replies::Transcript;

fn imap_harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| Harness::new("imap", Eof::WhenIdle))
}

fn pop3_harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| Harness::new("pop3", Eof::AfterInput))
}

fn lmtp_harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| Harness::new("lmtp", Eof::AfterInput))
}

/// What an IMAP client that sent `data` saw (STARTTLS offered).
pub fn imap_session(data: &[u8]) -> Transcript {
    imap_harness().converse(data, |stream, peer, server| {
        let session = imap::Session::new(
            &server.name,
            &server.hostname,
            server.site.clone(),
            server.store.clone(),
            peer,
        );
        let stream = imap_next::stream::Stream::insecure(stream);
        imap::serve_connection(stream, session.offer_tls(), server.tls.clone())
    })
}

/// What a POP3 client that sent `data` saw (STLS offered).
pub fn pop3_session(data: &[u8]) -> Transcript {
    pop3_harness().converse(data, |stream, peer, server| {
        let session = pop3::Session::new(
            &server.name,
            &server.hostname,
            server.site.clone(),
            server.store.clone(),
            peer,
        );
        pop3::serve_connection(Box::new(stream), session.offer_tls(), server.tls.clone())
    })
}

/// What an LMTP client (a sorter) that sent `data` saw.
pub fn lmtp_session(data: &[u8]) -> Transcript {
    lmtp_harness().converse(data, |stream, _peer, server| {
        let session = lmtp::Session::new(
            &server.name,
            &server.hostname,
            server.site.clone(),
            server.store.clone(),
        );
        lmtp::serve_connection(stream, session)
    })
}

/// Any IMAP client input: the session ends, stays in the store, and every response
/// parses with imap-codec and carries a tag the client sent.
pub fn imap(data: &[u8]) {
    replies::imap(data, &imap_session(data));
}

/// Any POP3 client input: the session ends, stays in the store, and answers each
/// command line with one well-framed reply.
pub fn pop3(data: &[u8]) {
    replies::pop3(data, &pop3_session(data));
}

/// Any LMTP client input: the session ends, stays in the store, and writes only
/// well-formed reply lines.
pub fn lmtp(data: &[u8]) {
    replies::lmtp(&lmtp_session(data));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seeds of a fuzz target, `server/fuzz/seeds/<target>/*`, by name.
    fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/seeds")
            .join(target);
        let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| {
                let path = entry.expect("a seed").path();
                let name = path.display().to_string();
                (name, std::fs::read(&path).expect("a readable seed"))
            })
            .collect();
        seeds.sort();
        assert!(seeds.len() >= 5, "too few seeds in {}", dir.display());
        seeds
    }

    /// Runs an entry point over every seed of its target, and over each seed cut short
    /// in the middle (the end of input arriving at any point must be fine too).
    fn hold_on_seeds(target: &str, entry: fn(&[u8])) {
        for (name, seed) in seeds(target) {
            println!("seed {name}");
            entry(&seed);
            entry(&seed[..seed.len() / 2]);
        }
    }

    #[test]
    fn imap_holds_on_seeds() {
        hold_on_seeds("imap_commands", imap);
    }

    #[test]
    fn pop3_holds_on_seeds() {
        hold_on_seeds("pop3_commands", pop3);
    }

    #[test]
    fn lmtp_holds_on_seeds() {
        hold_on_seeds("lmtp_commands", lmtp);
    }

    fn text(transcript: Transcript) -> String {
        String::from_utf8_lossy(&transcript.output).into_owned()
    }

    /// The fixture is what the seeds assume: the user logs in and finds the three
    /// messages, whatever the input before changed.
    #[test]
    fn sessions_reach_the_mail() {
        let login = format!("a LOGIN {USER} {PASSWORD}\r\n");
        imap(format!("{login}b CREATE Kept\r\nc APPEND INBOX {{2}}\r\nhi\r\n").as_bytes());
        let out = text(imap_session(
            format!("{login}b SELECT INBOX\r\nc FETCH 2 (BODY[HEADER.FIELDS (SUBJECT)])\r\nd LIST \"\" Kept\r\ne LOGOUT\r\n").as_bytes(),
        ));
        assert!(
            out.contains("* 3 EXISTS") && out.contains("b OK [READ-WRITE]"),
            "{out}"
        );
        assert!(out.contains("Subject: =?UTF-8?B?UmFwcG9ydA==?="), "{out}");
        assert!(out.contains("d OK") && !out.contains("Kept"), "{out}");
        assert!(out.ends_with("e OK LOGOUT completed\r\n"), "{out}");

        let out = text(pop3_session(
            format!("USER {USER}\r\nPASS {PASSWORD}\r\nSTAT\r\nRETR 1\r\nQUIT\r\n").as_bytes(),
        ));
        assert!(out.contains("+OK Logged in, 3 messages"), "{out}");
        assert!(
            out.contains("\r\n..\r\n...dots\r\nbare LF line\r\n.\r\n"),
            "{out}"
        );

        let out = text(lmtp_session(
            format!("LHLO sorter\r\nMAIL FROM:<b@example.org>\r\nRCPT TO:<{USER}@example.test>\r\nRCPT TO:<{DISABLED}@example.test>\r\nRCPT TO:<{ELSEWHERE}@example.test>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n").as_bytes(),
        ));
        assert!(
            out.contains("250 2.1.5") && out.contains("550 5.2.1"),
            "{out}"
        );
        assert!(
            out.contains("451 4.3.0") && out.contains("(UID 4)"),
            "{out}"
        );
    }

    /// The CRLF that ends the DATA line also begins the message's first line: a message
    /// may start with a (stuffed) dot, or be empty, and the commands after it are
    /// still commands.
    #[test]
    fn lmtp_messages_may_start_with_a_dot() {
        let mail = format!("MAIL FROM:<b@example.org>\r\nRCPT TO:<{USER}@example.test>\r\n");
        let input = format!("LHLO s\r\n{mail}DATA\r\n..dot\r\n.\r\n{mail}DATA\r\n.\r\nQUIT\r\n");
        let out = text(lmtp_session(input.as_bytes()));
        assert!(out.contains("(UID 4)") && out.contains("(UID 5)"), "{out}");
        assert!(out.ends_with("closing\r\n"), "{out}");
        let first = String::from_utf8_lossy(&lmtp_harness().stored(4)).into_owned();
        assert!(first.ends_with("\r\n.dot\r\n"), "{first:?}");
        let empty = String::from_utf8_lossy(&lmtp_harness().stored(5)).into_owned();
        assert!(
            empty.ends_with(" for <alice@example.test>\r\n"),
            "{empty:?}"
        );
    }
}
