//! The client configuration a user is told to use, as one model, and its renderings
//! for each client family: Thunderbird clientConfig v1.1 ([`thunderbird`]), Outlook
//! Autodiscover POX and JSON v2 ([`autodiscover`]), and Apple configuration profiles
//! ([`apple`]). The server renders them; the desktop helper parses them back.

pub mod apple;
pub mod autodiscover;
pub mod pacc;
pub mod thunderbird;

use std::fmt;

use crate::config::SiteConfig;
use crate::route::{self, Route};

/// A mail protocol a client is configured for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Imap,
    Pop3,
    Smtp,
}

impl Protocol {
    /// The name Thunderbird uses in `type="..."`.
    pub fn thunderbird_name(self) -> &'static str {
        match self {
            Protocol::Imap => "imap",
            Protocol::Pop3 => "pop3",
            Protocol::Smtp => "smtp",
        }
    }
}

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Security {
    /// Implicit TLS from the first byte (Thunderbird `SSL`).
    Tls,
    /// Plain connection upgraded with STARTTLS / STLS.
    StartTls,
    /// No encryption (never offered by mailsite, but parsed).
    Plain,
}

impl Security {
    pub fn thunderbird_name(self) -> &'static str {
        match self {
            Security::Tls => "SSL",
            Security::StartTls => "STARTTLS",
            Security::Plain => "plain",
        }
    }
}

/// The protocol a user prefers for incoming mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Preference {
    /// Mail stays on the server, for every device (the site's recommendation).
    #[default]
    Imap,
    /// Mail is downloaded to one computer.
    Pop3,
}

impl Preference {
    pub fn as_str(self) -> &'static str {
        match self {
            Preference::Imap => "imap",
            Preference::Pop3 => "pop3",
        }
    }

    pub fn parse(s: &str) -> Option<Preference> {
        match s.trim().to_ascii_lowercase().as_str() {
            "imap" => Some(Preference::Imap),
            "pop" | "pop3" => Some(Preference::Pop3),
            _ => None,
        }
    }
}

impl fmt::Display for Preference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One server a client connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSetting {
    pub protocol: Protocol,
    pub hostname: String,
    pub port: u16,
    pub security: Security,
    /// The login name, or a Thunderbird placeholder such as `%EMAILLOCALPART%`.
    pub username: String,
}

/// Where a user manages their Sieve filters: ManageSieve (RFC 5804) with STARTTLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SieveServer {
    pub hostname: String,
    pub port: u16,
    pub username: String,
}

/// The whole configuration for one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// The mail domain (Thunderbird `<domain>`, also the provider id).
    pub domain: String,
    /// The address configured, or `None` for a placeholder document.
    pub email: Option<String>,
    pub display_name: String,
    pub short_name: String,
    /// Incoming servers, the preferred protocol first, implicit TLS before STARTTLS.
    pub incoming: Vec<ServerSetting>,
    /// Outgoing (submission) servers, implicit TLS first.
    pub outgoing: Vec<ServerSetting>,
    /// The filter server (autoconfig v1.2's `setupServer type="managesieve"`).
    pub sieve: Option<SieveServer>,
}

/// Thunderbird's placeholder for the local part of the address being set up.
pub const LOCALPART_PLACEHOLDER: &str = "%EMAILLOCALPART%";

impl ClientConfig {
    /// The configuration for a routed user with their preference.
    pub fn for_route(config: &SiteConfig, route: &Route, preference: Preference) -> ClientConfig {
        ClientConfig::build(
            config,
            &route.domain,
            Some(route.address.clone()),
            &route.alias,
            &route.outbox,
            &route.username,
            preference,
        )
    }

    /// A configuration with placeholders, for requests that name no address: the
    /// hosts are those of the bucket for digits and other first characters.
    pub fn placeholder(config: &SiteConfig, domain: &str) -> ClientConfig {
        ClientConfig::build(
            config,
            domain,
            None,
            &route::alias_host(route::OTHER_BUCKET, domain),
            &route::outbox_host(domain),
            LOCALPART_PLACEHOLDER,
            Preference::Imap,
        )
    }

    fn build(
        config: &SiteConfig,
        domain: &str,
        email: Option<String>,
        alias: &str,
        outbox: &str,
        username: &str,
        preference: Preference,
    ) -> ClientConfig {
        let p = config.ports;
        let server = |protocol, port, security, host: &str| ServerSetting {
            protocol,
            hostname: host.to_string(),
            port,
            security,
            username: username.to_string(),
        };
        let imap = [
            server(Protocol::Imap, p.imaps, Security::Tls, alias),
            server(Protocol::Imap, p.imap, Security::StartTls, alias),
        ];
        let pop3 = [
            server(Protocol::Pop3, p.pop3s, Security::Tls, alias),
            server(Protocol::Pop3, p.pop3, Security::StartTls, alias),
        ];
        let incoming = match preference {
            Preference::Imap => imap.into_iter().chain(pop3).collect(),
            Preference::Pop3 => pop3.into_iter().chain(imap).collect(),
        };
        ClientConfig {
            domain: domain.to_string(),
            email,
            display_name: config.name.clone(),
            short_name: config.short_name.clone(),
            incoming,
            outgoing: vec![
                server(Protocol::Smtp, p.submissions, Security::Tls, outbox),
                server(Protocol::Smtp, p.submission, Security::StartTls, outbox),
            ],
            sieve: Some(SieveServer {
                hostname: alias.to_string(),
                port: p.managesieve,
                username: username.to_string(),
            }),
        }
    }

    /// The first incoming server of a protocol.
    pub fn first_incoming(&self, protocol: Protocol) -> Option<&ServerSetting> {
        self.incoming.iter().find(|s| s.protocol == protocol)
    }
}

/// Errors reading a configuration document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("{0}")]
    Xml(#[from] crate::xml::XmlError),
    #[error("the document is missing {0}")]
    Missing(&'static str),
    #[error("the document has a bad value for {0}: {1:?}")]
    BadValue(&'static str, String),
}
