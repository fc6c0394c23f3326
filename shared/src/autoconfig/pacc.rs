//! PACC (`draft-ietf-mailmaint-pacc-03`): one JSON document per mail domain, served
//! at `https://ua-auto-config.<domain>/.well-known/user-agent-configuration.json`,
//! whose bytes are pinned by the TXT record `_ua-auto-config.<domain>`
//! (`v=UAAC1; a=sha256; d=<base64 of the SHA-256 of the document>`).
//!
//! A client fetches it without naming the user, and PACC names a protocol by host only,
//! on its default TLS port (IMAP 993, POP3 995, submission 465). So the document
//! names the hosts that do not depend on the user, the same as the placeholder
//! autoconfig answer: `mail0.<domain>` for IMAP and POP3 (a login whose letter another
//! mailbox server serves is referred there, RFC 2221) and `outbox.<domain>` for
//! submission. A letter move changes neither the document nor its digest; a protocol
//! the site offers on another port is left out, and a site with none on its default
//! port publishes no document and no record.
//!
//! The zone and the HTTP answer both call [`Document::for_domain`], so the digest in
//! the zone is always that of the bytes served.

use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::SiteConfig;
use crate::route::{self, OTHER_BUCKET};

/// The host name the document is served at, before the domain.
pub const HOST_LABEL: &str = "ua-auto-config";
/// The owner of the digest record, before the domain.
pub const RECORD_LABEL: &str = "_ua-auto-config";
/// The path the document is served at.
pub const PATH: &str = "/.well-known/user-agent-configuration.json";
/// The media type of the document.
pub const CONTENT_TYPE: &str = "application/json";

/// The default TLS ports, the only ones PACC can name.
const IMAPS: u16 = 993;
const POP3S: u16 = 995;
const SUBMISSIONS: u16 = 465;
/// The longest provider name and short name PACC allows.
const NAME_MAX: usize = 60;
const SHORT_NAME_MAX: usize = 20;

// Fields in alphabetical order: serialised as they are declared, the bytes are the
// same at every node for the same configuration.
#[derive(Serialize)]
struct Json {
    authentication: Authentication,
    info: Info,
    protocols: Protocols,
}

#[derive(Serialize)]
struct Authentication {
    password: bool,
}

#[derive(Serialize)]
struct Info {
    provider: Provider,
}

#[derive(Serialize)]
struct Provider {
    name: String,
    #[serde(rename = "shortName", skip_serializing_if = "Option::is_none")]
    short_name: Option<String>,
}

#[derive(Serialize)]
struct Protocols {
    #[serde(skip_serializing_if = "Option::is_none")]
    imap: Option<Host>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pop3: Option<Host>,
    #[serde(skip_serializing_if = "Option::is_none")]
    submit: Option<Host>,
}

#[derive(Serialize)]
struct Host {
    host: String,
}

/// A domain's PACC document: its exact bytes and the record that pins them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub bytes: Vec<u8>,
}

impl Document {
    /// The document of `domain`, or why the site publishes none.
    pub fn for_domain(config: &SiteConfig, domain: &str) -> Result<Document, String> {
        let p = config.ports;
        let alias = route::alias_host(OTHER_BUCKET, domain);
        let outbox = route::outbox_host(domain);
        let on_default = |port: u16, default: u16, host: &str| {
            (port == default).then(|| Host {
                host: host.to_string(),
            })
        };
        let (imap, pop3, submit) = (
            on_default(p.imaps, IMAPS, &alias),
            on_default(p.pop3s, POP3S, &alias),
            on_default(p.submissions, SUBMISSIONS, &outbox),
        );
        if imap.is_none() && pop3.is_none() && submit.is_none() {
            return Err(format!(
                "PACC names servers on their default TLS ports only (IMAP {IMAPS}, POP3 \
                 {POP3S}, submission {SUBMISSIONS}); this site uses {}, {} and {}, so it \
                 publishes no PACC document",
                p.imaps, p.pop3s, p.submissions
            ));
        }
        let json = Json {
            authentication: Authentication { password: true },
            info: Info {
                provider: Provider {
                    name: fitted(&config.name, NAME_MAX).unwrap_or_else(|| domain.to_string()),
                    short_name: fitted(&config.short_name, SHORT_NAME_MAX),
                },
            },
            protocols: Protocols { imap, pop3, submit },
        };
        let bytes = serde_json::to_vec(&json).map_err(|e| e.to_string())?;
        Ok(Document { bytes })
    }

    /// The TXT record's text at `_ua-auto-config.<domain>`.
    pub fn record(&self) -> String {
        digest_record(&self.bytes)
    }
}

/// The UAAC1 record pinning `bytes`.
pub fn digest_record(bytes: &[u8]) -> String {
    let digest = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes));
    format!("v=UAAC1; a=sha256; d={digest}")
}

/// A provider name as PACC allows it: printable, single spaces, at most `max`
/// characters (cut at a word where it can be); `None` when nothing printable is left.
fn fitted(name: &str, max: usize) -> Option<String> {
    let words: Vec<&str> = name
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect();
    let mut out = String::new();
    for word in words {
        let extra = usize::from(!out.is_empty()) + word.chars().count();
        if out.chars().count() + extra > max {
            if out.is_empty() {
                out = word.chars().take(max).collect();
            }
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standard() -> SiteConfig {
        let mut config = SiteConfig::embedded();
        config.ports.imaps = 993;
        config.ports.pop3s = 995;
        config.ports.submissions = 465;
        config
    }

    #[test]
    fn the_document_names_the_user_independent_hosts_in_fixed_bytes() {
        let doc = Document::for_domain(&standard(), "example.test").unwrap();
        assert_eq!(
            String::from_utf8(doc.bytes.clone()).unwrap(),
            r#"{"authentication":{"password":true},"info":{"provider":{"name":"Example Test Mail","shortName":"Example"}},"protocols":{"imap":{"host":"mail0.example.test"},"pop3":{"host":"mail0.example.test"},"submit":{"host":"outbox.example.test"}}}"#
        );
        assert!(doc.record().starts_with("v=UAAC1; a=sha256; d="));
        // 32 bytes in padded base64.
        assert_eq!(doc.record().len(), "v=UAAC1; a=sha256; d=".len() + 44);
    }

    #[test]
    fn protocols_off_their_default_port_are_left_out() {
        let mut config = standard();
        config.ports.pop3s = 10995;
        let doc = Document::for_domain(&config, "example.test").unwrap();
        let text = String::from_utf8(doc.bytes).unwrap();
        assert!(!text.contains("pop3"), "{text}");
        assert!(text.contains("\"imap\""), "{text}");
        let embedded = Document::for_domain(&SiteConfig::embedded(), "example.test");
        assert!(embedded.unwrap_err().contains("10993"));
    }

    #[test]
    fn provider_names_fit_the_limits() {
        assert_eq!(fitted("  A\tB\u{7}C  ", 60).as_deref(), Some("A B C"));
        assert_eq!(
            fitted("University of Somewhere Mail", 20).as_deref(),
            Some("University of")
        );
        assert_eq!(fitted(&"x".repeat(30), 20).unwrap().len(), 20);
        assert_eq!(fitted(" \t", 20), None);
        let mut config = standard();
        config.name = "\"quoted\" <name> & more".into();
        let doc = Document::for_domain(&config, "example.test").unwrap();
        let value: serde_json::Value = serde_json::from_slice(&doc.bytes).unwrap();
        assert_eq!(
            value["info"]["provider"]["name"],
            "\"quoted\" <name> & more"
        );
    }
}
