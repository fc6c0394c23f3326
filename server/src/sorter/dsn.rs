//! Bounces: delivery status notifications (RFC 3464) in a multipart/report (RFC 6522)
//! built with mail-builder, sent from the null sender so that they are never bounced.

use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::MimePart;

use super::message::header_section;
use super::queue::Envelope;

/// A recipient that could not be delivered, and why.
pub struct Failure<'a> {
    pub recipient: &'a str,
    /// The reply of the server that refused it, or why the queue gave up.
    pub diagnostic: &'a str,
    /// The enhanced status code (RFC 3463), e.g. `5.1.1`.
    pub status: String,
    /// The server that refused it (its name), if one did.
    pub remote_mta: Option<&'a str>,
}

/// The enhanced status code in a reply like `550 5.1.1 <x>: no such user`, or the
/// generic one of its class.
pub fn status_of(reply: &str) -> String {
    let mut words = reply.split_whitespace();
    let code = words.next().unwrap_or("");
    let candidate = words.next().unwrap_or("");
    let parts: Vec<&str> = candidate.split('.').collect();
    let valid = parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && parts[1..]
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    if valid {
        candidate.to_string()
    } else if code.starts_with('4') {
        "4.0.0".into()
    } else {
        "5.0.0".into()
    }
}

/// Keeps a value to printable ASCII on one line, as a DSN field must be.
fn field(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(900)
        .collect()
}

/// The bounce for `failures` of a queued message, addressed to its sender.
pub fn bounce(
    envelope: &Envelope,
    message: &[u8],
    failures: &[Failure<'_>],
    reporting_mta: &str,
    postmaster: &str,
    now: u64,
) -> Vec<u8> {
    let mut text = format!(
        "This is the mail system at {reporting_mta}.\r\n\r\n\
         Your message could not be delivered to {} of its recipients.\r\n\
         It has been returned to you with the reasons below.\r\n\r\n",
        if failures.len() == 1 { "one" } else { "some" }
    );
    for f in failures {
        text.push_str(&format!(
            "<{}>: {}\r\n",
            field(f.recipient),
            field(f.diagnostic)
        ));
    }

    let mut status = format!(
        "Reporting-MTA: dns; {reporting_mta}\r\nX-Mailsite-Queue-ID: {}\r\nArrival-Date: {}\r\n",
        envelope.id,
        Date::new(envelope.received as i64).to_rfc822()
    );
    for f in failures {
        status.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {}\r\nAction: failed\r\nStatus: {}\r\n",
            field(f.recipient),
            f.status
        ));
        if let Some(mta) = f.remote_mta {
            status.push_str(&format!("Remote-MTA: dns; {}\r\n", field(mta)));
        }
        status.push_str(&format!(
            "Diagnostic-Code: smtp; {}\r\n",
            field(f.diagnostic)
        ));
    }

    let headers = header_section(message).to_vec();
    let encoding = if headers.is_ascii() { "7bit" } else { "8bit" };
    let report = MimePart::new(
        ContentType::new("multipart/report").attribute("report-type", "delivery-status"),
        vec![
            MimePart::new("text/plain", text),
            MimePart::new("message/delivery-status", status.into_bytes()).transfer_encoding("7bit"),
            MimePart::new("text/rfc822-headers", headers).transfer_encoding(encoding),
        ],
    );
    MessageBuilder::new()
        .from(("Mail Delivery System", postmaster))
        .to(envelope.sender.as_str())
        .subject("Undelivered Mail Returned to Sender")
        .date(Date::new(now as i64))
        .header("Auto-Submitted", Raw::new("auto-replied"))
        .body(report)
        .write_to_vec()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sorter::queue::{Recipient, State};

    #[test]
    fn status_codes_come_from_the_reply() {
        assert_eq!(status_of("550 5.1.1 <x@y>: no such user"), "5.1.1");
        assert_eq!(status_of("554 relay denied"), "5.0.0");
        assert_eq!(status_of("451 4.3.0 later"), "4.3.0");
        assert_eq!(status_of(""), "5.0.0");
    }

    #[test]
    fn a_bounce_is_a_delivery_status_report() {
        let envelope = Envelope {
            id: "ID1".into(),
            sender: "alice@example.test".into(),
            received: 0,
            authenticated: Some("alice".into()),
            client: String::new(),
            size: 10,
            recipients: vec![Recipient {
                state: State::Failed,
                ..Recipient::new("nora@example.test".into(), false, 0)
            }],
        };
        let message = b"From: alice@example.test\r\nSubject: hello\r\n\r\nsecret body\r\n";
        let dsn = bounce(
            &envelope,
            message,
            &[Failure {
                recipient: "nora@example.test",
                diagnostic: "550 5.1.1 <nora@example.test>: no such user here",
                status: "5.1.1".into(),
                remote_mta: Some("mailbox2.example.test"),
            }],
            "sorter1.example.test",
            "mailer-daemon@example.test",
            0,
        );
        let text = String::from_utf8(dsn).unwrap();
        let parsed = mail_parser::MessageParser::new()
            .parse(text.as_bytes())
            .unwrap();
        assert_eq!(
            parsed.subject(),
            Some("Undelivered Mail Returned to Sender")
        );
        assert!(text.contains("multipart/report"), "{text}");
        assert!(
            text.contains("report-type=\"delivery-status\"")
                || text.contains("report-type=delivery-status"),
            "{text}"
        );
        assert!(
            text.contains("Content-Type: message/delivery-status"),
            "{text}"
        );
        assert!(
            text.contains(
                "Final-Recipient: rfc822; nora@example.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"
            ),
            "{text}"
        );
        assert!(text.contains("Subject: hello"), "{text}");
        assert!(
            !text.contains("secret body"),
            "only the headers are returned: {text}"
        );
        assert!(text.contains("Auto-Submitted: auto-replied"), "{text}");
    }
}
