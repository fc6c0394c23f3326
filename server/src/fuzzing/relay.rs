//! The `smtp_replies` target: the fuzzer's bytes are what a remote mail server sends
//! the sorter's client (`sorter::client`, which hands mail on to other domains and to
//! the mailbox servers, over `mailsite_shared::smtp_reply`).
//!
//! The bytes are read twice: as a stream of replies, each of which must be complete,
//! within the reader's limits and exactly the bytes it came from; and as the whole
//! answer of a server to one hand-off (LMTP, SMTP, or SMTP with STARTTLS offered, as
//! the first byte says), which must give every recipient one printable outcome, never
//! call a message delivered that was not sent, and end within the hand-off's timeout.

use std::sync::OnceLock;
use std::time::Duration;

use mailsite_shared::smtp_reply::{ReplyLimits, read_reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;

use crate::sorter::client::{Dialect, Handoff, Outcome, transaction};
use crate::sorter::relay::Relay;

/// How long one hand-off may take; the script is all there at once, so reaching it
/// means the client waits for a reply that can never come.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The message handed on: its dot line is stuffed on the wire, which shows whether
/// the message was sent.
const MESSAGE: &[u8] = b"Subject: fuzz\r\n\r\n.dot\r\nbody\r\n";
const STUFFED: &[u8] = b"\r\n..dot\r\nbody\r\n.\r\n";

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime for fuzzing")
    })
}

/// The sorter's own TLS client (opportunistic STARTTLS), as relaying uses it.
fn relay() -> &'static Relay {
    static RELAY: OnceLock<Relay> = OnceLock::new();
    RELAY.get_or_init(|| {
        Relay::new(&mailsite_shared::RelaySettings {
            // Nothing is resolved: the client is given its connection.
            resolver: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 9))),
            ..Default::default()
        })
        .expect("the fuzzing relay")
    })
}

/// Reads replies from `data` until one cannot be read, checking each.
async fn replies(data: &[u8], limits: ReplyLimits) -> usize {
    let mut reader = tokio::io::BufReader::new(data);
    let mut rest = data;
    let mut count = 0;
    while let Ok(reply) = read_reply(&mut reader, limits).await {
        assert!((200..600).contains(&reply.code), "{reply:?}");
        assert!(
            rest.starts_with(&reply.raw),
            "a reply is not the bytes it was read from: {reply:?}"
        );
        rest = &rest[reply.raw.len()..];
        assert!(reply.raw.ends_with(b"\n"), "{reply:?}");
        let lines = reply.lines().count();
        assert!(lines >= 1 && lines <= limits.max_lines, "{reply:?}");
        assert!(
            reply.raw.len() <= limits.max_line * limits.max_lines,
            "a reply beyond the limits: {} bytes",
            reply.raw.len()
        );
        assert!(reply.message.len() <= 3 * reply.raw.len(), "{reply:?}");
        let _ = (reply.offers("PIPELINING"), reply.last_line());
        count += 1;
    }
    count
}

/// What a client that handed on a message to a server answering `script` ended with,
/// and what it sent.
async fn hand_off(
    dialect: &Dialect,
    recipients: &[String],
    script: &[u8],
) -> (Vec<Outcome>, Vec<u8>) {
    let (client, mut server) = tokio::io::duplex(1 << 16);
    let script = script.to_vec();
    let serve = tokio::spawn(async move {
        let _ = server.write_all(&script).await;
        let _ = server.shutdown().await;
        let mut seen = Vec::new();
        let _ = server.read_to_end(&mut seen).await;
        seen
    });
    let message = crate::sorter::body::Body::from(MESSAGE.to_vec());
    let handoff = Handoff {
        hostname: "sorter1.example.test",
        sender: "a@example.test",
        recipients,
        message: &message,
        timeout: TIMEOUT,
        source: None,
        dsn: None,
    };
    let outcomes = transaction(Box::new(client), "mx.example.org", dialect, &handoff).await;
    let seen = serve.await.expect("the scripted server");
    (outcomes, seen)
}

/// Any bytes from a remote server: see the module's documentation.
pub fn smtp_replies(data: &[u8]) {
    let runtime = runtime();
    runtime.block_on(async {
        replies(data, ReplyLimits::default()).await;
        replies(
            data,
            ReplyLimits {
                max_line: 64,
                max_lines: 4,
            },
        )
        .await;
    });

    let mut recipients: Vec<String> = ["n@example.org", "x@example.org", "m@example.org"]
        .map(String::from)
        .to_vec();
    let (dialect, script) = match data.split_first() {
        Some((b'L', rest)) => (Dialect::Lmtp, rest),
        Some((b'T', rest)) => (
            Dialect::Smtp {
                tls: Some(relay().tls().into()),
            },
            rest,
        ),
        Some((b'U', rest)) => {
            recipients[1] = "\u{e9}mile@example.org".into();
            (Dialect::Smtp { tls: None }, rest)
        }
        _ => (Dialect::Smtp { tls: None }, data),
    };
    let (outcomes, seen) = runtime.block_on(async {
        tokio::time::timeout(2 * TIMEOUT, hand_off(&dialect, &recipients, script))
            .await
            .unwrap_or_else(|_| panic!("the hand-off outlived its timeout"))
    });
    assert_eq!(outcomes.len(), recipients.len(), "{outcomes:?}");
    let sent = seen.windows(STUFFED.len()).any(|w| w == STUFFED);
    for outcome in &outcomes {
        let text = outcome.text();
        assert!(
            text.len() <= 1024 && !text.chars().any(char::is_control),
            "an outcome a log cannot quote: {outcome:?}"
        );
        if matches!(outcome, Outcome::Delivered(_)) {
            assert!(sent, "delivered without sending the message: {outcome:?}");
        }
    }
    if sent {
        assert!(
            script.windows(3).any(|w| w == b"354"),
            "the message was sent without a 354"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real exchange: the replies read back as sent, and the outcomes follow them.
    #[test]
    fn replies_are_read_and_followed() {
        let script = b"220 mx ready\r\n250-mx\r\n250 PIPELINING\r\n250 ok\r\n250 ok\r\n550 5.1.1 no\r\n250 ok\r\n354 go\r\n250 2.0.0 queued\r\n221 bye\r\n";
        let count = runtime().block_on(replies(script, ReplyLimits::default()));
        assert_eq!(count, 9);
        let recipients = [
            "a@example.org".to_string(),
            "b@example.org".into(),
            "c@example.org".into(),
        ];
        let (outcomes, seen) =
            runtime().block_on(hand_off(&Dialect::Smtp { tls: None }, &recipients, script));
        assert_eq!(
            outcomes,
            vec![
                Outcome::Delivered("250 2.0.0 queued".into()),
                Outcome::Permanent("550 5.1.1 no".into()),
                Outcome::Delivered("250 2.0.0 queued".into()),
            ]
        );
        assert!(seen.windows(STUFFED.len()).any(|w| w == STUFFED));
        smtp_replies(script);
    }

    /// Found by this target: a server that answered DATA with 250 instead of 354 had
    /// every accepted recipient's message counted as delivered, though it was never
    /// sent (the queue would have dropped it). Now it is tried again later.
    #[test]
    fn a_2xx_to_data_is_not_a_delivery() {
        let recipients = ["a@example.org".to_string(), "b@example.org".into()];
        for dialect in [Dialect::Smtp { tls: None }, Dialect::Lmtp] {
            let (outcomes, seen) = runtime().block_on(hand_off(
                &dialect,
                &recipients,
                b"220 mx\r\n250-mx\r\n250 PIPELINING\r\n250 ok\r\n250 ok\r\n550 no\r\n250 2.0.0 ok without a 354\r\n",
            ));
            assert!(!seen.windows(STUFFED.len()).any(|w| w == STUFFED));
            assert_eq!(outcomes[1], Outcome::Permanent("550 no".into()));
            assert!(
                matches!(&outcomes[0], Outcome::Temporary(t) if t.contains("without a 354")),
                "{outcomes:?}"
            );
        }
    }
}
