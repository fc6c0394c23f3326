//! Verdicts on mail from other domains (the MX port): SPF of the envelope sender
//! (RFC 7208), every DKIM signature (RFC 6376), and DMARC (RFC 7489) of the From:
//! domain, and the ARC chain where there is one (RFC 8617), checked with Stalwart's
//! mail-auth through hickory (timeouts and hickory's
//! cache of answers for their TTL). The result goes in an `Authentication-Results:`
//! header (RFC 8601) with the site's domain as its authserv-id; such headers that came
//! with the message are removed first, so that the mailbox servers (and Sieve scripts,
//! and clients) can trust the one they find.
//!
//! A From: domain whose DMARC policy is `reject` and that fails is refused (550), or
//! delivered to the recipient's Junk folder (`[mail_auth] dmarc_reject = "junk"`);
//! `quarantine` goes to Junk. A DNS failure never refuses mail: when DMARC cannot be
//! decided for it, the sender is told to try again later (451).

use std::net::IpAddr;
use std::time::Duration;

use mail_auth::common::headers::HeaderWriter;
use mail_auth::dmarc::Policy;
use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DmarcResult, MessageAuthenticator,
    dmarc::verify::DmarcParameters, spf::verify::SpfParameters,
};
use mailsite_shared::resolver::{self, Patience};

/// What the sorter does with a message after the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Accept,
    /// Deliver, to the recipients' Junk folders.
    Junk,
    /// Refuse with this SMTP reply.
    Refuse(String),
}

impl Action {
    /// Its name in `mailsite_inbound_verdicts_total{result}`.
    pub fn label(&self) -> &'static str {
        match self {
            Action::Accept => "accepted",
            Action::Junk => "junk",
            Action::Refuse(text) if text.starts_with('4') => "deferred",
            Action::Refuse(_) => "refused",
        }
    }
}

/// The checks' outcome: the header to add and what to do.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// `Authentication-Results: ...\r\n`.
    pub header: String,
    pub action: Action,
}

/// The header field name the mailbox servers look for before filing into Junk.
pub const HEADER: &str = "Authentication-Results";

/// Checks inbound mail.
pub struct Verifier {
    authenticator: Result<MessageAuthenticator, String>,
    /// The authserv-id: the site's domain.
    authserv_id: String,
    /// `true`: a failing `p=reject` domain goes to Junk rather than being refused.
    reject_to_junk: bool,
}

/// The envelope of the message checked.
pub struct Envelope<'a> {
    pub ip: IpAddr,
    pub helo: &'a str,
    /// The MAIL FROM address (empty: the null sender).
    pub sender: &'a str,
}

impl Verifier {
    pub fn new(
        name_server: Option<std::net::SocketAddr>,
        authserv_id: &str,
        reject_to_junk: bool,
    ) -> Verifier {
        let patience = Patience {
            timeout: Duration::from_secs(5),
            attempts: 2,
            cache: true,
        };
        let authenticator = resolver::build(name_server, patience)
            .map(MessageAuthenticator)
            .map_err(|e| e.to_string());
        if let Err(error) = &authenticator {
            tracing::warn!(%error, "no DNS resolver for checking inbound mail: DMARC is answered 451; set [relay] resolver");
        }
        Verifier {
            authenticator,
            authserv_id: authserv_id.to_string(),
            reject_to_junk,
        }
    }

    /// The site's authserv-id.
    pub fn authserv_id(&self) -> &str {
        &self.authserv_id
    }

    /// Checks `message` (without the sorter's own headers) as it came in `envelope`.
    pub async fn check(&self, envelope: &Envelope<'_>, message: &[u8]) -> Verdict {
        let Ok(authenticator) = &self.authenticator else {
            return Verdict {
                header: format!("{HEADER}: {}; none\r\n", self.authserv_id),
                action: Action::Refuse(
                    "451 4.4.3 No DNS resolver to check the sender's domain; try again later\r\n"
                        .into(),
                ),
            };
        };
        let Some(parsed) = AuthenticatedMessage::parse(message) else {
            return Verdict {
                header: format!("{HEADER}: {}; none\r\n", self.authserv_id),
                action: Action::Accept,
            };
        };
        let helo = if envelope.helo.is_empty() {
            "unknown"
        } else {
            envelope.helo
        };
        let dkim = authenticator.verify_dkim(&parsed).await;
        // ARC (RFC 8617): what the forwarders on the way vouched for, recorded.
        let arc = authenticator.verify_arc(&parsed).await;
        let spf = if envelope.sender.is_empty() {
            authenticator
                .verify_spf(SpfParameters::verify_ehlo(
                    envelope.ip,
                    helo,
                    &self.authserv_id,
                ))
                .await
        } else {
            authenticator
                .verify_spf(SpfParameters::verify_mail_from(
                    envelope.ip,
                    helo,
                    &self.authserv_id,
                    envelope.sender,
                ))
                .await
        };
        let mail_from_domain = envelope
            .sender
            .rsplit_once('@')
            .map_or(helo, |(_, domain)| domain);
        let dmarc = authenticator
            .verify_dmarc(DmarcParameters::new(&parsed, &dkim, mail_from_domain, &spf))
            .await;
        let from = parsed.from.first().map_or("", String::as_str);
        let mut results =
            AuthenticationResults::new(&self.authserv_id).with_dkim_results(&dkim, from);
        results = if envelope.sender.is_empty() {
            results.with_spf_ehlo_result(&spf, envelope.ip, helo)
        } else {
            results.with_spf_mailfrom_result(&spf, envelope.ip, envelope.sender, helo)
        };
        if !parsed.as_headers.is_empty() || !parsed.ams_headers.is_empty() {
            results = results.with_arc_result(&arc, envelope.ip);
        }
        results = results.with_dmarc_result(&dmarc);
        let header = results.to_header();
        let action = match dmarc.result() {
            DmarcResult::Pass | DmarcResult::None | DmarcResult::PermError(_) => Action::Accept,
            DmarcResult::TempError(_) => Action::Refuse(format!(
                "451 4.4.3 The DMARC policy of {} could not be looked up; try again later\r\n",
                dmarc.domain()
            )),
            DmarcResult::Fail(_) => match dmarc.policy() {
                Policy::Reject if !self.reject_to_junk => Action::Refuse(format!(
                    "550 5.7.1 Rejected by the DMARC policy of {}: the message fails SPF and DKIM for it\r\n",
                    dmarc.domain()
                )),
                Policy::Reject | Policy::Quarantine => Action::Junk,
                Policy::None | Policy::Unspecified => Action::Accept,
            },
        };
        Verdict { header, action }
    }
}

/// The message without the `Authentication-Results:` fields whose authserv-id is
/// `authserv_id` (RFC 8601 5: forged ones, since only this site adds them); `None`
/// when it has none.
pub fn without_forged_results(message: &[u8], authserv_id: &str) -> Option<Vec<u8>> {
    let header_end = crate::sorter::message::header_section(message).len();
    let (header, body) = message.split_at(header_end);
    let mut fields: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    // Split the header section into fields (a line that begins with a space or tab
    // continues the field before it).
    let mut i = 0;
    while i < header.len() {
        let end = header[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(header.len(), |p| i + p + 1);
        let next_continues = header.get(end).is_some_and(|&b| b == b' ' || b == b'\t');
        if !next_continues {
            fields.push(&header[start..end]);
            start = end;
        }
        i = end;
    }
    let forged = |field: &[u8]| {
        let Some(colon) = field.iter().position(|&b| b == b':') else {
            return false;
        };
        let name = String::from_utf8_lossy(&field[..colon]);
        if !name.trim().eq_ignore_ascii_case(HEADER) {
            return false;
        }
        let value = String::from_utf8_lossy(&field[colon + 1..]);
        let id = value
            .trim_start()
            .split(|c: char| c == ';' || c.is_whitespace())
            .next()
            .unwrap_or("");
        id.eq_ignore_ascii_case(authserv_id)
    };
    if !fields.iter().any(|f| forged(f)) {
        return None;
    }
    let mut out = Vec::with_capacity(message.len());
    for field in fields.into_iter().filter(|f| !forged(f)) {
        out.extend_from_slice(field);
    }
    out.extend_from_slice(body);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_results_of_our_authserv_id_are_removed_and_others_kept() {
        let message = b"Received: from x\r\nAuthentication-Results: example.test;\r\n\tdkim=pass header.d=example.test\r\nAuthentication-Results: other.example; spf=pass\r\nSubject: hi\r\n\r\nAuthentication-Results: example.test; in the body\r\n";
        let cleaned = without_forged_results(message, "Example.Test").expect("one removed");
        assert_eq!(
            String::from_utf8_lossy(&cleaned),
            "Received: from x\r\nAuthentication-Results: other.example; spf=pass\r\nSubject: hi\r\n\r\nAuthentication-Results: example.test; in the body\r\n"
        );
        assert!(without_forged_results(b"Subject: x\r\n\r\nbody", "example.test").is_none());
    }
}
