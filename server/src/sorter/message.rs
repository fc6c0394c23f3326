//! What a sorter does to and checks in a received message before queueing it: line
//! ends made CRLF (as it is written, [`super::incoming`]), the Received trace header, the From header of submissions, mail
//! loops.
//!
//! Bare LF (a line feed without its carriage return) is normalised to CRLF rather
//! than refused: RFC 5321 2.3.8 forbids clients to send it, but legacy scripts do,
//! and the end of data is only ever recognised as CRLF "." CRLF (smtp-proto's data
//! receiver), so "\n.\n" or "\n.\r\n" in a message cannot end it early (SMTP
//! smuggling); once normalised, such a line is dot-stuffed like any other when the
//! message is passed on.

use mail_parser::{HeaderName, HeaderValue, MessageParser};

/// The most Received headers a message may carry before it is taken for a loop
/// (RFC 5321 6.3 suggests at least 100 as a loop; 50 is what Postfix uses).
pub const MAX_HOPS: usize = 50;

pub use mailsite_shared::smtp_data::header_section;

/// How many Received headers the message has.
pub fn hops(message: &[u8]) -> usize {
    header_section(message)
        .split(|&b| b == b'\n')
        .filter(|line| line.len() >= 9 && line[..9].eq_ignore_ascii_case(b"received:"))
        .count()
}

/// Keeps text that is echoed into a header or reply on one printable line.
pub fn printable(text: &str, limit: usize) -> String {
    text.chars()
        .map(|c| if c.is_control() || c == ' ' { '_' } else { c })
        .take(limit)
        .collect()
}

/// What the Received header says about the client and the session.
pub struct Trace<'a> {
    pub helo: &'a str,
    pub ip: std::net::IpAddr,
    pub hostname: &'a str,
    /// RFC 3848: ESMTP, ESMTPS (TLS), ESMTPA (authenticated), ESMTPSA, or SMTP.
    pub protocol: &'a str,
    pub id: &'a str,
    /// The recipient, named only when there is one.
    pub recipient: Option<&'a str>,
    pub time: u64,
}

/// The Received header (RFC 5321 4.4), folded, with CRLF.
pub fn received(trace: &Trace<'_>) -> String {
    let ip = match trace.ip {
        std::net::IpAddr::V4(ip) => ip.to_string(),
        std::net::IpAddr::V6(ip) => format!("IPv6:{ip}"),
    };
    let mut header = format!(
        "Received: from {} ([{ip}])\r\n\tby {} (mailsite) with {} id {}",
        printable(trace.helo, 255),
        trace.hostname,
        trace.protocol,
        trace.id
    );
    if let Some(r) = trace.recipient {
        header.push_str(&format!("\r\n\tfor <{}>", printable(r, 256)));
    }
    let date = mail_builder::headers::date::Date::new(trace.time as i64).to_rfc822();
    header.push_str(&format!("; {date}\r\n"));
    header
}

/// Why a submitted message's headers are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromProblem {
    Missing,
    Several,
    NotYours(String),
}

/// Checks that the From header names addresses of the user only (`owns` decides).
pub fn check_from(message: &[u8], owns: impl Fn(&str) -> bool) -> Result<(), FromProblem> {
    let Some(parsed) = MessageParser::new().parse_headers(header_section(message)) else {
        return Err(FromProblem::Missing);
    };
    let mut from_headers = parsed
        .headers()
        .iter()
        .filter(|h| matches!(h.name, HeaderName::From));
    let Some(from) = from_headers.next() else {
        return Err(FromProblem::Missing);
    };
    if from_headers.next().is_some() {
        return Err(FromProblem::Several);
    }
    let HeaderValue::Address(list) = &from.value else {
        return Err(FromProblem::Missing);
    };
    let mut any = false;
    for addr in list.iter() {
        let address = addr.address().unwrap_or("");
        if !owns(address) {
            return Err(FromProblem::NotYours(printable(address, 256)));
        }
        any = true;
    }
    if any {
        Ok(())
    } else {
        Err(FromProblem::Missing)
    }
}

/// The domain of the message's one From: address (lower case), if it has exactly
/// one: whose DKIM signature the message gets.
pub fn from_domain(message: &[u8]) -> Option<String> {
    let parsed = MessageParser::new().parse_headers(header_section(message))?;
    let mut from_headers = parsed
        .headers()
        .iter()
        .filter(|h| matches!(h.name, HeaderName::From));
    let from = from_headers.next()?;
    if from_headers.next().is_some() {
        return None;
    }
    let HeaderValue::Address(list) = &from.value else {
        return None;
    };
    let mut addresses = list.iter();
    let address = addresses.next()?.address()?;
    if addresses.next().is_some() {
        return None;
    }
    let (_, domain) = address.rsplit_once('@')?;
    Some(domain.to_ascii_lowercase())
}

/// Headers a submission lacks that the sorter adds (RFC 6409 8.2, 8.3): Date and
/// Message-ID.
pub fn missing_headers(message: &[u8], hostname: &str, id: &str, time: u64) -> String {
    let parsed = MessageParser::new().parse_headers(header_section(message));
    let has = |name: HeaderName<'_>| {
        parsed
            .as_ref()
            .is_some_and(|m| m.headers().iter().any(|h| h.name == name))
    };
    let mut out = String::new();
    if !has(HeaderName::Date) {
        let date = mail_builder::headers::date::Date::new(time as i64).to_rfc822();
        out.push_str(&format!("Date: {date}\r\n"));
    }
    if !has(HeaderName::MessageId) {
        out.push_str(&format!("Message-ID: <{id}@{hostname}>\r\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_must_name_the_user_only() {
        let owns = |a: &str| a.eq_ignore_ascii_case("alice@example.test");
        assert_eq!(
            check_from(
                b"From: Alice <alice@example.test>\r\nSubject: x\r\n\r\nbody",
                owns
            ),
            Ok(())
        );
        assert_eq!(
            check_from(b"From: Boss <boss@example.test>\r\n\r\n", owns),
            Err(FromProblem::NotYours("boss@example.test".into()))
        );
        assert_eq!(
            check_from(b"From: alice@example.test, boss@example.test\r\n\r\n", owns),
            Err(FromProblem::NotYours("boss@example.test".into()))
        );
        assert_eq!(
            check_from(
                b"From: alice@example.test\r\nFrom: boss@example.test\r\n\r\n",
                owns
            ),
            Err(FromProblem::Several)
        );
        assert_eq!(
            check_from(b"Subject: x\r\n\r\n", owns),
            Err(FromProblem::Missing)
        );
        // A From line in the body is not a header.
        assert_eq!(
            check_from(b"Subject: x\r\n\r\nFrom: alice@example.test\r\n", owns),
            Err(FromProblem::Missing)
        );
    }

    #[test]
    fn received_header_and_hops() {
        let header = received(&Trace {
            helo: "client host\r\nX: y",
            ip: "127.0.0.1".parse().unwrap(),
            hostname: "sorter1.example.test",
            protocol: "ESMTPA",
            id: "ABC",
            recipient: Some("nora@example.test"),
            time: 0,
        });
        assert!(
            header.starts_with("Received: from client_host__X:_y ([127.0.0.1])\r\n\tby sorter1.example.test (mailsite) with ESMTPA id ABC\r\n\tfor <nora@example.test>; Thu, 1 Jan 1970 00:00:00 +0000\r\n"),
            "{header}"
        );
        let message = format!("{header}{header}Subject: x\r\n\r\nReceived: in body\r\n");
        assert_eq!(hops(message.as_bytes()), 2);
        let added = missing_headers(b"Subject: x\r\n\r\n", "sorter1.example.test", "ABC", 0);
        assert!(
            added.contains("Message-ID: <ABC@sorter1.example.test>\r\n"),
            "{added}"
        );
        assert!(added.starts_with("Date: Thu, 1 Jan 1970"), "{added}");
        assert_eq!(
            missing_headers(b"Date: x\r\nMessage-ID: <a@b>\r\n\r\n", "h", "I", 0),
            ""
        );
    }
}
