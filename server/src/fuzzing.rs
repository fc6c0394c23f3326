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

mod codec;
mod dns;
mod harness;
mod headers;
mod html;
mod relay;
mod replies;
mod report;
mod web;
mod wire;

use std::sync::OnceLock;

use harness::{Eof, Harness};

use crate::mailbox::{MailboxServer, imap, lmtp, managesieve, pop3};
use crate::sorter::{self, Port, Sorter, queue::Queue, relay::Relay};

pub use harness::{DISABLED, ELSEWHERE, PASSWORD, USER};
pub use replies::Transcript;
pub use web::OPERATOR;

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

fn managesieve_harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| Harness::new("managesieve", Eof::AfterInput))
}

fn smtp_harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| Harness::new("smtp", Eof::AfterInput))
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
        let stream = imap::Stream::insecure(stream);
        imap::serve_connection(
            stream,
            session.offer_tls(),
            server.tls.clone(),
            server.drain(),
        )
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
        pop3::serve_connection(
            Box::new(stream),
            session.offer_tls(),
            server.tls.clone(),
            server.drain(),
        )
    })
}

/// What a ManageSieve client that sent `data` saw (STARTTLS offered).
pub fn managesieve_session(data: &[u8]) -> Transcript {
    managesieve_harness().converse(data, |stream, peer, server| {
        let session = managesieve::Session::new(server, peer).offer_tls();
        managesieve::serve_connection(Box::new(stream), session, server.tls.clone())
    })
}

/// What an LMTP client (a sorter) that sent `data` saw.
pub fn lmtp_session(data: &[u8]) -> Transcript {
    lmtp_harness().converse(data, serve_lmtp)
}

fn serve_lmtp(
    stream: tokio::net::TcpStream,
    _peer: std::net::SocketAddr,
    server: &MailboxServer,
) -> impl Future<Output = std::io::Result<()>> + Send + use<> {
    lmtp::serve_connection(stream, lmtp::Session::new(server))
}

/// What an SMTP client that sent `data` saw, and the queue ids of the messages the
/// sorter's spool holds afterwards. An input that starts with `S` is served as
/// submission (port 587, from loopback: AUTH before STARTTLS is allowed) without that
/// first byte; any other input as MX (port 25). STARTTLS is offered; the spool starts
/// empty; nothing delivers from it.
pub fn smtp_session(data: &[u8]) -> (Transcript, Vec<String>) {
    // The spool is read after the connection: no other input may run in between.
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let harness = smtp_harness();
    let spool = harness.scratch().join("spool");
    let (port, input) = match data.split_first() {
        Some((b'S', rest)) => (Port::Submission, rest),
        _ => (Port::Mx, data),
    };
    let transcript = harness.converse(input, |stream, peer, server| {
        let _ = std::fs::remove_dir_all(&spool);
        let queue = Queue::open(spool.clone(), Default::default()).expect("the fuzzing spool");
        let relay = Relay::new(&mailsite_shared::RelaySettings {
            // Nothing listens there; nothing is relayed while the input is served.
            resolver: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 9))),
            ..Default::default()
        })
        .expect("the fuzzing relay");
        let sorter = Sorter {
            name: "sorter1".into(),
            hostname: "sorter1.example.test".into(),
            site: server.site.clone(),
            queue: std::sync::Arc::new(queue),
            tls: server.tls.clone(),
            relay: std::sync::Arc::new(relay),
            dkim: std::sync::Arc::new(crate::dkim::Signer::new(server.site.view().config())),
            // No DNS while fuzzing: inbound mail is not checked.
            verifier: None,
        };
        let tls = sorter.tls.clone();
        let session = sorter::session::Session::new(sorter, port, peer).offer_tls();
        sorter::connection::serve_connection(stream, session, tls)
    });
    let queued = sorter::queue::read_spool(&spool)
        .expect("a readable fuzzing spool")
        .into_iter()
        .map(|envelope| envelope.id)
        .collect();
    (transcript, queued)
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

/// Any ManageSieve client input: the session ends, stays in the store, and writes
/// only well-formed responses.
pub fn managesieve(data: &[u8]) {
    replies::managesieve(&managesieve_session(data));
}

/// Any SMTP client input: the session ends, stays in the store, writes only
/// well-formed reply lines, and the spool holds exactly the messages acknowledged with
/// "queued as", each with its message file.
pub fn smtp(data: &[u8]) {
    let (transcript, queued) = smtp_session(data);
    replies::smtp(&transcript, &queued);
}

/// Any bytes as an IMAP command and as a response to imap-codec: what parses encodes
/// to bytes that parse back the same (`codec`).
pub fn imap_codec(data: &[u8]) {
    codec::round_trips(data);
}

/// Any bytes as a query to the alias DNS server, over UDP and over TCP: no answer or
/// a well-formed one of bounded size, to a query that was sent (`dns`).
pub fn dns_requests(data: &[u8]) {
    dns::requests(data);
}

/// Any bytes as a request to an autoconfig endpoint or a console page (query string,
/// path or form body): no server error, and XML, JSON and HTML answers that parse
/// back and escape what they carry (`web`).
pub fn http_requests(data: &[u8]) {
    web::http_requests(data);
}

/// Any bytes as one HTTP connection to the front door: the prepared HTTP/1.1 path
/// writes what hyper alone would, byte for byte, `date` headers aside (`wire`).
pub fn http_wire(data: &[u8]) {
    wire::http_wire(data);
}

/// Any bytes as a helper report uploaded to the console: a clear error or the
/// explanation, in HTML that escapes everything from the report (`report`).
pub fn console_reports(data: &[u8]) {
    report::console_reports(data);
}

/// Any bytes as the replies of a remote mail server to the sorter's client: bounded
/// replies or an error, one printable outcome per recipient, and nothing delivered
/// that was not sent (`relay`).
pub fn smtp_replies(data: &[u8]) {
    relay::smtp_replies(data);
}

/// Any bytes as a message from another domain, as the verdicts read its headers:
/// forged Authentication-Results of the site removed and nothing else, the Junk
/// decision and the From: domain found without a panic (`headers`).
pub fn message_headers(data: &[u8]) {
    headers::message_headers(data);
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
    fn imap_codec_holds_on_seeds() {
        hold_on_seeds("imap_codec", imap_codec);
    }

    #[test]
    fn pop3_holds_on_seeds() {
        hold_on_seeds("pop3_commands", pop3);
    }

    #[test]
    fn lmtp_holds_on_seeds() {
        hold_on_seeds("lmtp_commands", lmtp);
    }

    #[test]
    fn managesieve_holds_on_seeds() {
        hold_on_seeds("managesieve_commands", managesieve);
    }

    #[test]
    fn smtp_holds_on_seeds() {
        hold_on_seeds("smtp_commands", smtp);
    }

    #[test]
    fn dns_holds_on_seeds() {
        hold_on_seeds("dns_requests", dns_requests);
    }

    #[test]
    fn http_holds_on_seeds() {
        hold_on_seeds("http_requests", http_requests);
    }

    #[test]
    fn http_wire_holds_on_seeds() {
        hold_on_seeds("http_wire", http_wire);
    }

    #[test]
    fn console_reports_hold_on_seeds() {
        hold_on_seeds("console_reports", console_reports);
    }

    #[test]
    fn smtp_replies_hold_on_seeds() {
        hold_on_seeds("smtp_replies", smtp_replies);
    }

    #[test]
    fn message_headers_hold_on_seeds() {
        hold_on_seeds("message_headers", message_headers);
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

    /// The SMTP fixture serves both ports and queues what it acknowledges: a message
    /// from outside to a user, one submitted after AUTH to a remote address, a forged
    /// From refused, and BDAT chunks joined into one message (and an empty one).
    #[test]
    fn smtp_sessions_queue_what_they_acknowledge() {
        let seed = |name: &str| {
            std::fs::read(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("fuzz/seeds/smtp_commands")
                    .join(name),
            )
            .expect("a seed")
        };
        let (out, queued) = smtp_session(&seed("mx-deliver.smtp"));
        let out = text(out);
        assert!(
            out.contains("550 5.1.1") && out.contains("554 5.7.1"),
            "{out}"
        );
        assert_eq!(queued.len(), 1, "{out}");
        assert!(out.contains(&format!("queued as {}", queued[0])), "{out}");

        let (out, queued) = smtp_session(&seed("submission-auth-relay.smtp"));
        let out = text(out);
        assert!(out.contains("235 2.7.0") && queued.len() == 1, "{out}");
        assert!(
            out.contains("553 5.7.1") || out.contains("550 5.7.1"),
            "{out}"
        );

        let (out, queued) = smtp_session(&seed("submission-auth-login.smtp"));
        let out = text(out);
        assert!(
            out.contains("535 5.7.8") && out.contains("235 2.7.0"),
            "{out}"
        );
        assert!(queued.is_empty() && out.contains("5.7.1"), "{out}");

        let (out, queued) = smtp_session(&seed("bdat.smtp"));
        let out = text(out);
        assert_eq!(queued.len(), 2, "{out}");
        assert!(out.contains("250 2.0.0 14 octets received"), "{out}");
        // A BDAT outside a transaction is refused, its chunk skipped, QUIT still read.
        assert!(
            out.ends_with(
                "503 5.5.1 Send MAIL first\r\n221 2.0.0 sorter1.example.test closing\r\n"
            ),
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
        // Read in the same turn: another test's input would reset the store.
        let (transcript, stored) =
            lmtp_harness().converse_and_read(input.as_bytes(), serve_lmtp, &[4, 5]);
        let out = text(transcript);
        assert!(out.contains("(UID 4)") && out.contains("(UID 5)"), "{out}");
        assert!(out.ends_with("closing\r\n"), "{out}");
        let first = String::from_utf8_lossy(&stored[0]).into_owned();
        assert!(first.ends_with("\r\n.dot\r\n"), "{first:?}");
        let empty = String::from_utf8_lossy(&stored[1]).into_owned();
        assert!(
            empty.ends_with(" for <alice@example.test>\r\n"),
            "{empty:?}"
        );
    }
}
