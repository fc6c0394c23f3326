//! Delivery status notifications (RFC 3464) in a multipart/report (RFC 6522) built
//! with mail-builder, sent from the null sender so that they are never bounced: the
//! bounce of recipients that failed, and, where the sender asked for them with the DSN
//! extension (RFC 3461: NOTIFY=SUCCESS,DELAY), reports of delivery and of delay. The
//! sender's RET=FULL returns the whole message, RET=HDRS (and no RET) its header
//! section; ENVID and each recipient's ORCPT are given back.

use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::MimePart;

use super::message::header_section;
use super::queue::Envelope;

/// What became of a recipient (RFC 3464 2.3.3 Action).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Failed,
    Delayed,
    /// Delivered to the recipient's mailbox.
    Delivered,
    /// Handed to another domain's server, which does not report back.
    Relayed,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Delivered => "delivered",
            Action::Relayed => "relayed",
        }
    }
}

/// One recipient in a report.
pub struct Entry<'a> {
    pub recipient: &'a str,
    /// The address as the sender gave it (ORCPT, `rfc822;addr`), if it did.
    pub original: Option<&'a str>,
    pub action: Action,
    /// The reply of the server that refused, deferred or took it, or why the queue
    /// gave up; none for a local delivery.
    pub diagnostic: &'a str,
    /// The enhanced status code (RFC 3463), e.g. `5.1.1`.
    pub status: String,
    /// The server that answered (its name), if one did.
    pub remote_mta: Option<&'a str>,
}

/// What of the message a report returns.
pub enum Returned<'a> {
    /// The header section (RET=HDRS, or no RET).
    Headers(&'a [u8]),
    /// The whole message (RET=FULL).
    Full(&'a [u8]),
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

/// The report on `entries` of a queued message, addressed to its sender; `retry_until`
/// (Unix seconds) says until when delayed recipients are tried.
pub fn report(
    envelope: &Envelope,
    returned: Returned<'_>,
    entries: &[Entry<'_>],
    reporting_mta: &str,
    postmaster: &str,
    now: u64,
    retry_until: u64,
) -> Vec<u8> {
    let failed = entries.iter().any(|e| e.action == Action::Failed);
    let delayed = entries.iter().any(|e| e.action == Action::Delayed);
    let some = if entries.len() == 1 { "one" } else { "some" };
    let (subject, intro) = if failed {
        (
            "Undelivered Mail Returned to Sender",
            format!(
                "Your message could not be delivered to {some} of its recipients.\r\n\
                 It has been returned to you with the reasons below."
            ),
        )
    } else if delayed {
        (
            "Delayed Mail (still being retried)",
            format!(
                "Your message has not been delivered to {some} of its recipients yet.\r\n\
                 It is tried again until {}; you need not send it again.",
                Date::new(retry_until as i64).to_rfc822()
            ),
        )
    } else {
        (
            "Successful Mail Delivery Report",
            format!(
                "Your message was delivered to {some} of its recipients, as you asked to be told."
            ),
        )
    };
    let mut text = format!("This is the mail system at {reporting_mta}.\r\n\r\n{intro}\r\n\r\n");
    for e in entries {
        let what = match e.action {
            Action::Failed | Action::Delayed => field(e.diagnostic),
            Action::Delivered => "delivered to the mailbox".into(),
            Action::Relayed => format!("handed over: {}", field(e.diagnostic)),
        };
        text.push_str(&format!("<{}>: {what}\r\n", field(e.recipient)));
    }

    let mut status = format!("Reporting-MTA: dns; {reporting_mta}\r\n");
    if let Some(envid) = &envelope.envid {
        status.push_str(&format!("Original-Envelope-Id: {}\r\n", field(envid)));
    }
    status.push_str(&format!(
        "X-Mailsite-Queue-ID: {}\r\nArrival-Date: {}\r\n",
        envelope.id,
        Date::new(envelope.received as i64).to_rfc822()
    ));
    for e in entries {
        status.push_str("\r\n");
        if let Some(original) = e.original {
            // smtp-proto gives the address without its type, which it only takes as
            // `rfc822` (the address itself may hold a `;`).
            status.push_str(&format!(
                "Original-Recipient: rfc822;{}\r\n",
                field(original)
            ));
        }
        status.push_str(&format!(
            "Final-Recipient: rfc822; {}\r\nAction: {}\r\nStatus: {}\r\n",
            field(e.recipient),
            e.action.as_str(),
            e.status
        ));
        if let Some(mta) = e.remote_mta {
            status.push_str(&format!("Remote-MTA: dns; {}\r\n", field(mta)));
        }
        if !e.diagnostic.is_empty() {
            status.push_str(&format!(
                "Diagnostic-Code: smtp; {}\r\n",
                field(e.diagnostic)
            ));
        }
        if e.action == Action::Delayed {
            status.push_str(&format!(
                "Will-Retry-Until: {}\r\n",
                Date::new(retry_until as i64).to_rfc822()
            ));
        }
    }

    let returned = match returned {
        Returned::Headers(message) => {
            let headers = header_section(message).to_vec();
            let encoding = if headers.is_ascii() { "7bit" } else { "8bit" };
            MimePart::new("text/rfc822-headers", headers).transfer_encoding(encoding)
        }
        Returned::Full(message) => {
            let encoding = if message.is_ascii() { "7bit" } else { "8bit" };
            MimePart::new("message/rfc822", message.to_vec()).transfer_encoding(encoding)
        }
    };
    let report = MimePart::new(
        ContentType::new("multipart/report").attribute("report-type", "delivery-status"),
        vec![
            MimePart::new("text/plain", text),
            MimePart::new("message/delivery-status", status.into_bytes()).transfer_encoding("7bit"),
            returned,
        ],
    );
    MessageBuilder::new()
        .from(("Mail Delivery System", postmaster))
        .to(envelope.sender.as_str())
        .subject(subject)
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
            ret_full: false,
            envid: None,
            recipients: vec![Recipient {
                state: State::Failed,
                ..Recipient::new("nora@example.test".into(), false, 0)
            }],
        };
        let message = b"From: alice@example.test\r\nSubject: hello\r\n\r\nsecret body\r\n";
        let dsn = report(
            &envelope,
            Returned::Headers(message),
            &[Entry {
                recipient: "nora@example.test",
                // As smtp-proto gives ORCPT=rfc822;"n;o"@Example.Test: without its type.
                original: Some("\"n;o\"@Example.Test"),
                action: Action::Failed,
                diagnostic: "550 5.1.1 <nora@example.test>: no such user here",
                status: "5.1.1".into(),
                remote_mta: Some("mailbox2.example.test"),
            }],
            "sorter1.example.test",
            "mailer-daemon@example.test",
            0,
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
        assert!(
            text.contains("Original-Recipient: rfc822;\"n;o\"@Example.Test\r\n"),
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
