//! The site configuration: one TOML file describes a whole site (domains, servers,
//! the letter map, ports, TLS, database) and which roles this node runs.
//!
//! Parsing is two steps: serde reads the file with spans kept on the values that
//! validation may reject, then [`SiteConfig::from_toml`] checks what serde cannot
//! (every letter mapped once, servers named in the letter map exist, addresses unique)
//! so that each error names the file, the line, the key and the fix.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::route::{OTHER_BUCKET, bucket_name, is_alias_label, letter_bucket};

/// The embedded default site, as TOML text (also what `check-config --print-default` shows).
pub const DEFAULT_SITE_TOML: &str = include_str!("../default-site.toml");

/// Number of routing buckets: `a`..`z` plus one for every other first character.
pub const BUCKETS: usize = 27;

/// A role a node can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Autoconfig,
    Dns,
    Mailbox,
    Sorter,
}

/// Ports clients and sorters use. One set per site: every mailbox server listens on the
/// same client ports so that a moved letter needs no client change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ports {
    pub imap: u16,
    pub imaps: u16,
    pub pop3: u16,
    pub pop3s: u16,
    pub smtp: u16,
    pub submission: u16,
    pub submissions: u16,
    pub lmtp: u16,
    /// ManageSieve (RFC 5804) on the mailbox servers; 4190 when not configured.
    #[serde(default = "managesieve_port")]
    pub managesieve: u16,
}

fn managesieve_port() -> u16 {
    4190
}

/// How long a client may stay silent, in seconds, before the server closes the
/// connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Before logging in (IMAP, POP3).
    pub login: u64,
    /// An IMAP client after logging in, IDLE included (RFC 3501: at least 30 minutes).
    pub imap: u64,
    /// A POP3 client after logging in (RFC 1939: at least 10 minutes).
    pub pop3: u64,
    /// An SMTP client of a sorter: to finish a command line, and between the reads of
    /// a message (RFC 5321 4.5.3.2: 5 minutes).
    pub smtp: u64,
    /// From connecting to logging in, however busy the client keeps (IMAP, POP3;
    /// Dovecot's 3 minutes).
    pub login_total: u64,
    /// Between the untagged `* OK Still here` an IMAP session sends while its client
    /// IDLEs (0: none), so that NAT and firewall state along the way sees traffic and
    /// keeps the connection (home routers and mobile networks drop idle TCP after a few
    /// minutes; Dovecot's imap_idle_notify_interval is 2 minutes).
    pub idle_keepalive: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            login: 60,
            imap: 30 * 60,
            pop3: 10 * 60,
            smtp: 5 * 60,
            login_total: 3 * 60,
            idle_keepalive: 2 * 60,
        }
    }
}

/// The largest `[smtp] max_message_size` accepted: what a mailbox server's LMTP takes
/// (50 MiB), less room for the headers the sorter and the mailbox server add.
pub const MAX_MESSAGE_SIZE_LIMIT: u64 = 49 * 1024 * 1024;

/// What the sorters' SMTP servers accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmtpLimits {
    /// The largest message, in bytes: announced as SIZE, larger ones get 552.
    pub max_message_size: u64,
    /// The most recipients of one message.
    pub max_recipients: usize,
}

impl Default for SmtpLimits {
    fn default() -> Self {
        SmtpLimits {
            max_message_size: 25 * 1024 * 1024,
            max_recipients: 100,
        }
    }
}

/// Where the sorters send mail for other domains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelaySettings {
    /// The DNS server MX records are looked up at; `None`: the system's resolvers.
    pub resolver: Option<SocketAddr>,
    /// The port of remote mail servers (25).
    pub port: u16,
    /// Send every remote message to this `host:port` instead of looking up MX records.
    pub smarthost: Option<String>,
    /// CA certificates (PEM) trusted besides the web's roots when checking MTA-STS
    /// policy servers and the mail servers of domains that enforce a policy: a private
    /// site's own CA, or a test's.
    pub tls_trust: Option<PathBuf>,
    /// DNSSEC trust anchors (DNSKEY records in zone-file form) besides the root's, for
    /// DANE: a private signed zone, or a test's.
    pub trust_anchor: Option<PathBuf>,
}

impl Default for RelaySettings {
    fn default() -> Self {
        RelaySettings {
            resolver: None,
            port: 25,
            smarthost: None,
            tls_trust: None,
            trust_anchor: None,
        }
    }
}

/// How the health checker tests every mailbox server and sorter (see the server's
/// `health` module). With the defaults a server that stops answering is out of the
/// site's DNS answers within about 3 s (6 s if it hangs rather than refuses), and back
/// about 2 s after it answers again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthSettings {
    /// Whether the nodes running the dns role check the servers at all.
    pub enabled: bool,
    /// Milliseconds from the start of one check of a server to the next.
    pub interval_ms: u64,
    /// Milliseconds one check (connect, greeting, one command) may take.
    pub timeout_ms: u64,
    /// Consecutive failed checks after which a server is marked down.
    pub down_after: u32,
    /// Consecutive passed checks after which a server marked down is up again.
    pub up_after: u32,
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings {
            enabled: true,
            interval_ms: 1000,
            timeout_ms: 2000,
            down_after: 3,
            up_after: 2,
        }
    }
}

impl Default for Ports {
    fn default() -> Self {
        Ports {
            imap: 143,
            imaps: 993,
            pop3: 110,
            pop3s: 995,
            smtp: 25,
            submission: 587,
            submissions: 465,
            lmtp: 24,
            managesieve: managesieve_port(),
        }
    }
}

/// A mailbox server or sorter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub name: String,
    pub addresses: Vec<IpAddr>,
    /// A mailbox server's own mail storage (Maildirs), when it does not share the
    /// site's `<data_dir>/mail`: separate storage, where moving a letter to it copies
    /// the letter's mail (`mailsite letter move L SERVER --migrate`). Relative paths
    /// are taken from the data directory.
    pub storage: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A validated site configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteConfig {
    /// The primary mail domain (lower case).
    pub domain: String,
    /// Further mail domains served by the same users (lower case).
    pub other_domains: Vec<String>,
    pub name: String,
    pub short_name: String,
    pub data_dir: PathBuf,
    /// Database URL; `None` means SQLite in the data directory.
    pub database: Option<String>,
    pub roles: Vec<Role>,
    /// The mailbox servers and sorters this node runs (for its mailbox and sorter
    /// roles); `None`: all of them. Several nodes on one storage root and database
    /// (shared storage) each run some.
    pub node_servers: Option<Vec<String>>,
    pub http_listen: SocketAddr,
    pub http_addresses: Vec<IpAddr>,
    pub dns_listen: SocketAddr,
    pub dns_addresses: Vec<IpAddr>,
    pub ttl: u32,
    pub alias_ttl: u32,
    pub outbox_ttl: u32,
    /// UDP responses per second to one source network (/24, /56); 0: no limit.
    pub dns_rate_limit: u32,
    /// Every this many responses over the limit one goes out truncated (TC=1), so that
    /// a real resolver behind a busy network retries over TCP; 0: none.
    pub dns_rate_limit_slip: u32,
    /// Whether the zone is signed (DNSSEC, RFC 4033): a key per domain in the site
    /// database, RRSIG and NSEC records in answers to queries with the DO bit.
    pub dnssec: bool,
    pub ports: Ports,
    pub timeouts: Timeouts,
    pub limits: ConnectionLimits,
    pub smtp: SmtpLimits,
    pub queue: QueueSettings,
    pub relay: RelaySettings,
    pub health: HealthSettings,
    pub throttle: ThrottleSettings,
    /// What the zone publishes about the site's mail (DMARC, MTA-STS).
    pub mail_auth: MailAuthSettings,
    pub tls: Option<TlsFiles>,
    pub mailboxes: Vec<Server>,
    pub sorters: Vec<Server>,
    /// Networks besides the sorters' own addresses that may deliver over LMTP
    /// (`[lmtp] allow`).
    pub lmtp_allow: Vec<Network>,
    /// The user whose mailbox gets mail for postmaster (RFC 5321 4.5.1).
    pub postmaster: String,
    /// For each bucket (`a`..`z`, then other), the index into `mailboxes` of its home server.
    pub letters: [usize; BUCKETS],
}

/// A configuration error that names where it is and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file, or `None` for the embedded default.
    pub file: Option<PathBuf>,
    pub line: Option<usize>,
    /// The key at fault, e.g. `letters."n-z"`.
    pub key: String,
    pub message: String,
    pub fix: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self
            .file
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "embedded default".to_string());
        match self.line {
            Some(line) => write!(f, "{file}:{line}: ")?,
            None => write!(f, "{file}: ")?,
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        write!(f, "{}", self.message)?;
        if !self.fix.is_empty() {
            write!(f, "\n  fix: {}", self.fix)?;
        }
        Ok(())
    }
}

mod limits;
mod network;
mod raw;
pub use limits::ConnectionLimits;
mod mail_auth;
mod queue;
#[cfg(test)]
mod tests;
mod throttle;

pub use mail_auth::{DmarcPolicy, MailAuthSettings, MtaStsMode};
pub use queue::QueueSettings;
pub use throttle::ThrottleSettings;

pub use network::Network;
use raw::*;

// ---- validation -------------------------------------------------------------------

struct Source<'a> {
    file: Option<&'a Path>,
    text: &'a str,
}

impl Source<'_> {
    fn line_of(&self, offset: usize) -> Option<usize> {
        if offset == 0 && self.text.is_empty() {
            return None;
        }
        let offset = offset.min(self.text.len());
        Some(self.text[..offset].bytes().filter(|&b| b == b'\n').count() + 1)
    }

    /// A number from the file, or `default` when it is absent; one outside
    /// `least..=most` is an error that names its line.
    fn number(
        &self,
        key: &str,
        value: &Option<Spanned<u64>>,
        default: u64,
        least: u64,
        most: u64,
        unit: &str,
    ) -> Result<u64, ConfigError> {
        let Some(value) = value else {
            return Ok(default);
        };
        let n = *value.get_ref();
        if n < least || n > most {
            let range = if most == u64::MAX {
                format!("at least {least}")
            } else {
                format!("from {least} to {most}")
            };
            return Err(self.error(
                Some(value.span()),
                key,
                format!("{n} is out of range"),
                format!("give {range} {unit}, or leave the key out for the default"),
            ));
        }
        Ok(n)
    }

    fn error(
        &self,
        span: Option<std::ops::Range<usize>>,
        key: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            file: self.file.map(Path::to_path_buf),
            line: span.and_then(|s| self.line_of(s.start)),
            key: key.into(),
            message: message.into(),
            fix: fix.into(),
        }
    }
}

/// Checks a domain name: lower-case ASCII labels of letters, digits and hyphens.
pub fn valid_domain(domain: &str) -> bool {
    !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Parses a key of the letter map: `"a"`, `"a-m"` or `"other"`, into bucket indices.
fn letter_key(key: &str) -> Option<Vec<usize>> {
    let key = key.trim().to_ascii_lowercase();
    if key == "other" {
        return Some(vec![OTHER_BUCKET]);
    }
    let bytes = key.as_bytes();
    let (first, last) = match bytes {
        [c] => (*c, *c),
        [a, b'-', b] => (*a, *b),
        _ => return None,
    };
    if !first.is_ascii_lowercase() || !last.is_ascii_lowercase() || first > last {
        return None;
    }
    (first..=last).map(letter_bucket).collect()
}

fn servers(
    src: &Source<'_>,
    kind: &str,
    raw: Vec<RawServer>,
    seen_names: &mut BTreeMap<String, String>,
) -> Result<Vec<Server>, ConfigError> {
    let mut out = Vec::with_capacity(raw.len());
    for server in raw {
        let span = server.name.span();
        let name = server.name.into_inner().to_ascii_lowercase();
        let key = format!("[[{kind}]] name");
        if !valid_domain(&name) || name.contains('.') {
            return Err(src.error(
                Some(span),
                key,
                format!("{name:?} is not a usable server name"),
                "use a single DNS label of letters, digits and hyphens, e.g. \"mailbox3\"",
            ));
        }
        if is_alias_label(&name) {
            return Err(src.error(
                Some(span),
                key,
                format!("{name:?} collides with a site alias name"),
                "choose a name that is not mail<letter>, mail0 or outbox",
            ));
        }
        if let Some(other) = seen_names.insert(name.clone(), kind.to_string()) {
            return Err(src.error(
                Some(span),
                key,
                format!("a {other} server is already named {name:?}"),
                "give every mailbox server and sorter its own name",
            ));
        }
        if server.addresses.get_ref().is_empty() {
            return Err(src.error(
                Some(server.addresses.span()),
                format!("{kind} {name}: addresses"),
                "no address given",
                "list at least one IP address, e.g. addresses = [\"192.0.2.10\"]",
            ));
        }
        if let Some(storage) = &server.storage
            && (kind != "mailbox" || storage.get_ref().as_os_str().is_empty())
        {
            return Err(src.error(
                Some(storage.span()),
                format!("{kind} {name}: storage"),
                match kind {
                    "mailbox" => "an empty storage path",
                    _ => "only mailbox servers store mail",
                },
                match kind {
                    "mailbox" => "give the directory of this server's Maildirs, or leave storage out to share <data_dir>/mail",
                    _ => "remove storage from this [[sorter]]",
                },
            ));
        }
        out.push(Server {
            name,
            addresses: server.addresses.into_inner(),
            storage: server.storage.map(Spanned::into_inner),
        });
    }
    Ok(out)
}

impl SiteConfig {
    /// The embedded default site.
    pub fn embedded() -> SiteConfig {
        SiteConfig::from_toml(DEFAULT_SITE_TOML, None).expect("the embedded default site is valid")
    }

    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<SiteConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: Some(path.to_path_buf()),
            line: None,
            key: String::new(),
            message: format!("cannot read the file: {e}"),
            fix: "check the path given with --config".into(),
        })?;
        SiteConfig::from_toml(&text, Some(path))
    }

    /// Parses and validates configuration text; `file` names it in errors.
    pub fn from_toml(text: &str, file: Option<&Path>) -> Result<SiteConfig, ConfigError> {
        let src = Source { file, text };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let fix = if e.message().contains("unknown field") {
                "remove or correct the key; `mailsite check-config --print-default` shows every key"
            } else if e.message().contains("missing field") {
                "add the key; `mailsite check-config --print-default` shows a complete file"
            } else {
                "correct the value at that line"
            };
            src.error(e.span(), "", e.message().trim().to_string(), fix)
        })?;

        let domain_span = raw.site.domain.span();
        let domain = raw.site.domain.into_inner().to_ascii_lowercase();
        if !valid_domain(&domain) {
            return Err(src.error(
                Some(domain_span),
                "site.domain",
                format!("{domain:?} is not a domain name"),
                "use the mail domain, e.g. domain = \"example.org\"",
            ));
        }
        let mut other_domains = Vec::new();
        for d in raw.site.other_domains {
            let span = d.span();
            let d = d.into_inner().to_ascii_lowercase();
            if !valid_domain(&d) || d == domain || other_domains.contains(&d) {
                return Err(src.error(
                    Some(span),
                    "site.other_domains",
                    format!("{d:?} is not a further, distinct domain name"),
                    "list each extra mail domain once, not the primary domain",
                ));
            }
            other_domains.push(d);
        }
        let postmaster = match raw.site.postmaster {
            None => "postmaster".to_string(),
            Some(name) => {
                let span = name.span();
                let name = name.into_inner().to_ascii_lowercase();
                if !crate::route::valid_username(&name) {
                    return Err(src.error(
                        Some(span),
                        "site.postmaster",
                        format!("{name:?} is not a username"),
                        "name the user whose mailbox gets mail for postmaster, e.g. postmaster = \"alice\"",
                    ));
                }
                name
            }
        };
        let mut lmtp_allow = Vec::new();
        for text in raw.lmtp.allow {
            let span = text.span();
            match Network::parse(text.get_ref()) {
                Some(network) => lmtp_allow.push(network),
                None => {
                    return Err(src.error(
                        Some(span),
                        "lmtp.allow",
                        format!("{:?} is not a network", text.get_ref()),
                        "write an address or address/prefix, e.g. \"10.0.0.0/8\"",
                    ));
                }
            }
        }

        let roles = raw.node.roles.get_ref().clone();
        if roles.is_empty() {
            return Err(src.error(
                Some(raw.node.roles.span()),
                "node.roles",
                "no role given",
                "list what this node runs, e.g. roles = [\"autoconfig\", \"dns\"]",
            ));
        }
        for (key, addrs) in [
            ("http.addresses", &raw.http.addresses),
            ("dns.addresses", &raw.dns.addresses),
        ] {
            if addrs.get_ref().is_empty() {
                return Err(src.error(
                    Some(addrs.span()),
                    key,
                    "no address given",
                    "list the public addresses of this service",
                ));
            }
        }

        let defaults = Timeouts::default();
        let seconds = |key: &str, value: &Option<Spanned<u64>>, default: u64| {
            src.number(key, value, default, 1, u64::MAX, "seconds")
        };
        let timeouts = Timeouts {
            login: seconds("timeouts.login", &raw.timeouts.login, defaults.login)?,
            imap: seconds("timeouts.imap", &raw.timeouts.imap, defaults.imap)?,
            pop3: seconds("timeouts.pop3", &raw.timeouts.pop3, defaults.pop3)?,
            smtp: seconds("timeouts.smtp", &raw.timeouts.smtp, defaults.smtp)?,
            login_total: seconds(
                "timeouts.login_total",
                &raw.timeouts.login_total,
                defaults.login_total,
            )?,
            idle_keepalive: src.number(
                "timeouts.idle_keepalive",
                &raw.timeouts.idle_keepalive,
                defaults.idle_keepalive,
                0,
                29 * 60,
                "seconds",
            )?,
        };
        let limits = limits::limits(&src, &raw.limits)?;
        let defaults = SmtpLimits::default();
        let smtp = SmtpLimits {
            max_message_size: src.number(
                "smtp.max_message_size",
                &raw.smtp.max_message_size,
                defaults.max_message_size,
                1024,
                MAX_MESSAGE_SIZE_LIMIT,
                "bytes",
            )?,
            max_recipients: src.number(
                "smtp.max_recipients",
                &raw.smtp.max_recipients,
                defaults.max_recipients as u64,
                1,
                10_000,
                "recipients",
            )? as usize,
        };
        let defaults = QueueSettings::default();
        let retry_first = seconds(
            "queue.retry_first",
            &raw.queue.retry_first,
            defaults.retry_first,
        )?;
        let queue = QueueSettings {
            retry_first,
            retry_max: src.number(
                "queue.retry_max",
                &raw.queue.retry_max,
                defaults.retry_max.max(retry_first),
                retry_first,
                u64::MAX,
                "seconds (retry_max is at least retry_first)",
            )?,
            lifetime: seconds("queue.lifetime", &raw.queue.lifetime, defaults.lifetime)?,
            delay_warning: seconds(
                "queue.delay_warning",
                &raw.queue.delay_warning,
                defaults.delay_warning,
            )?,
        };
        let resolver = match raw.relay.resolver {
            None => None,
            Some(r) if r.get_ref() == "system" => None,
            Some(r) => Some(r.get_ref().parse::<SocketAddr>().map_err(|_| {
                src.error(
                    Some(r.span()),
                    "relay.resolver",
                    format!("{:?} is not \"system\" or an address and port", r.get_ref()),
                    "write resolver = \"system\" or e.g. resolver = \"127.0.0.1:53\"",
                )
            })?),
        };
        let smarthost = match raw.relay.smarthost {
            None => None,
            Some(h) => {
                let valid = h.get_ref().rsplit_once(':').is_some_and(|(host, port)| {
                    !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
                });
                if !valid {
                    return Err(src.error(
                        Some(h.span()),
                        "relay.smarthost",
                        format!("{:?} is not a host and port", h.get_ref()),
                        "write smarthost = \"host:port\", e.g. \"smtp.provider.example:25\"",
                    ));
                }
                Some(h.into_inner())
            }
        };
        let relay = RelaySettings {
            resolver,
            port: src.number("relay.port", &raw.relay.port, 25, 1, 65535, "(a TCP port)")? as u16,
            smarthost,
            tls_trust: raw.relay.tls_trust,
            trust_anchor: raw.relay.trust_anchor,
        };

        let defaults = HealthSettings::default();
        let health = HealthSettings {
            enabled: raw.health.enabled.unwrap_or(defaults.enabled),
            interval_ms: src.number(
                "health.interval_ms",
                &raw.health.interval_ms,
                defaults.interval_ms,
                100,
                3_600_000,
                "milliseconds",
            )?,
            timeout_ms: src.number(
                "health.timeout_ms",
                &raw.health.timeout_ms,
                defaults.timeout_ms,
                100,
                60_000,
                "milliseconds",
            )?,
            down_after: src.number(
                "health.down_after",
                &raw.health.down_after,
                defaults.down_after.into(),
                1,
                100,
                "consecutive failed checks",
            )? as u32,
            up_after: src.number(
                "health.up_after",
                &raw.health.up_after,
                defaults.up_after.into(),
                1,
                100,
                "consecutive passed checks",
            )? as u32,
        };

        let mut names = BTreeMap::new();
        let mailboxes = servers(&src, "mailbox", raw.mailbox, &mut names)?;
        let sorters = servers(&src, "sorter", raw.sorter, &mut names)?;
        let node_servers = match raw.node.servers {
            None => None,
            Some(list) => {
                let span = list.span();
                let mut out: Vec<String> = Vec::new();
                for name in list.into_inner() {
                    let name_span = name.span();
                    let name = name.into_inner().to_ascii_lowercase();
                    if !names.contains_key(&name) {
                        let known: Vec<&str> = names.keys().map(String::as_str).collect();
                        return Err(src.error(
                            Some(name_span),
                            "node.servers",
                            format!("no mailbox server or sorter is named {name:?}"),
                            format!(
                                "use some of {}, or leave the key out to run them all",
                                known.join(", ")
                            ),
                        ));
                    }
                    if !out.contains(&name) {
                        out.push(name);
                    }
                }
                if out.is_empty() {
                    return Err(src.error(
                        Some(span),
                        "node.servers",
                        "no server given",
                        "name the servers this node runs, or leave the key out to run them all",
                    ));
                }
                Some(out)
            }
        };
        if mailboxes.is_empty() {
            return Err(src.error(
                None,
                "[[mailbox]]",
                "the site has no mailbox server",
                "add a [[mailbox]] table with a name and addresses",
            ));
        }
        if sorters.is_empty() {
            return Err(src.error(
                None,
                "[[sorter]]",
                "the site has no sorter",
                "add a [[sorter]] table with a name and addresses",
            ));
        }

        let mut letters: [Option<usize>; BUCKETS] = [None; BUCKETS];
        let letters_span = raw.letters.span();
        for (key, value) in raw.letters.into_inner() {
            let key_span = key.span();
            let key = key.into_inner();
            let Some(buckets) = letter_key(&key) else {
                return Err(src.error(
                    Some(key_span),
                    format!("letters.{key:?}"),
                    "not a letter, a range of letters or \"other\"",
                    "use keys like \"a\", \"a-m\" or other",
                ));
            };
            let server_name = value.get_ref().to_ascii_lowercase();
            let Some(index) = mailboxes.iter().position(|m| m.name == server_name) else {
                let known: Vec<&str> = mailboxes.iter().map(|m| m.name.as_str()).collect();
                return Err(src.error(
                    Some(value.span()),
                    format!("letters.{key:?}"),
                    format!("no mailbox server is named {server_name:?}"),
                    format!(
                        "use one of {} or add a [[mailbox]] named {server_name:?}",
                        known.join(", ")
                    ),
                ));
            };
            for b in buckets {
                if letters[b].is_some() {
                    return Err(src.error(
                        Some(key_span.clone()),
                        format!("letters.{key:?}"),
                        format!("letter {} is mapped twice", bucket_name(b)),
                        "map every letter exactly once",
                    ));
                }
                letters[b] = Some(index);
            }
        }
        let missing: Vec<String> = (0..BUCKETS)
            .filter(|&b| letters[b].is_none())
            .map(bucket_name)
            .collect();
        if !missing.is_empty() {
            return Err(src.error(
                Some(letters_span),
                "letters",
                format!("not mapped to a mailbox server: {}", missing.join(", ")),
                "add them to a range (e.g. \"a-m\" = \"mailbox1\") or, for digits and other first characters, other = \"mailbox1\"",
            ));
        }

        let data_dir = raw
            .site
            .data_dir
            .unwrap_or_else(|| PathBuf::from("mailsite-data"));
        Ok(SiteConfig {
            name: raw.site.name.unwrap_or_else(|| format!("{domain} mail")),
            short_name: raw.site.short_name.unwrap_or_else(|| domain.clone()),
            domain,
            other_domains,
            data_dir,
            database: raw.site.database,
            roles,
            node_servers,
            http_listen: raw.http.listen,
            http_addresses: raw.http.addresses.into_inner(),
            dns_listen: raw.dns.listen,
            dns_addresses: raw.dns.addresses.into_inner(),
            ttl: raw.dns.ttl,
            alias_ttl: raw.dns.alias_ttl,
            outbox_ttl: raw.dns.outbox_ttl,
            dns_rate_limit: raw.dns.rate_limit,
            dns_rate_limit_slip: raw.dns.rate_limit_slip,
            dnssec: raw.dns.dnssec,
            ports: raw.ports,
            timeouts,
            limits,
            smtp,
            queue,
            relay,
            health,
            throttle: ThrottleSettings::from_raw(&src, &raw.throttle)?,
            mail_auth: MailAuthSettings::from_raw(&src, &raw.mail_auth)?,
            tls: raw.tls.map(|t| TlsFiles {
                cert: t.cert,
                key: t.key,
            }),
            mailboxes,
            sorters,
            lmtp_allow,
            postmaster,
            letters: letters.map(|l| l.unwrap_or(0)),
        })
    }

    /// All mail domains of the site, primary first.
    pub fn domains(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.domain.as_str()).chain(self.other_domains.iter().map(String::as_str))
    }

    /// Whether `domain` (lower case) is one of the site's mail domains.
    /// Whether a client at `ip` may deliver over LMTP: a sorter's address, or in one
    /// of the `[lmtp] allow` networks.
    pub fn lmtp_allowed(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.sorters.iter().any(|s| s.addresses.contains(&ip))
            || self.lmtp_allow.iter().any(|n| n.contains(ip))
    }

    /// Whether `ip` is an address of one of the site's mailbox servers.
    pub fn is_mailbox_server(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.mailboxes.iter().any(|s| s.addresses.contains(&ip))
    }

    pub fn serves_domain(&self, domain: &str) -> bool {
        self.domains().any(|d| d == domain)
    }

    pub fn runs(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether this node runs the mailbox server or sorter `name` (when it runs that
    /// server's role): `[node] servers` lists it, or is absent.
    pub fn runs_server(&self, name: &str) -> bool {
        self.node_servers
            .as_ref()
            .is_none_or(|list| list.iter().any(|n| n == name))
    }

    pub fn mailbox_index(&self, name: &str) -> Option<usize> {
        self.mailboxes.iter().position(|m| m.name == name)
    }

    /// This configuration with servers added to the running site (`mailsite server
    /// add`, kept in the directory): each one whose name the files do not already use
    /// joins the mailbox servers or the sorters.
    pub fn with_added(&self, added: &[(bool, Server)]) -> SiteConfig {
        let mut out = self.clone();
        for (mailbox, server) in added {
            let known = out
                .mailboxes
                .iter()
                .chain(&out.sorters)
                .any(|s| s.name == server.name);
            if known {
                continue;
            }
            match mailbox {
                true => out.mailboxes.push(server.clone()),
                false => out.sorters.push(server.clone()),
            }
        }
        out
    }

    /// Checks a server about to be added to the running site: a usable name no server
    /// uses, and addresses no server has; the message says what to change.
    pub fn check_new_server(&self, name: &str, addresses: &[IpAddr]) -> Result<(), String> {
        if !valid_domain(name) || name.contains('.') {
            return Err(format!(
                "{name:?} is not a usable server name: use a single DNS label of letters, digits and hyphens, e.g. \"mailbox3\""
            ));
        }
        if is_alias_label(name) {
            return Err(format!(
                "{name:?} collides with a site alias name: choose a name that is not mail<letter>, mail0 or outbox"
            ));
        }
        if addresses.is_empty() {
            return Err("give at least one IP address".into());
        }
        for server in self.mailboxes.iter().chain(&self.sorters) {
            if server.name == name {
                return Err(format!("a server is already named {name:?}"));
            }
            if let Some(ip) = addresses.iter().find(|ip| server.addresses.contains(ip)) {
                return Err(format!("{ip} is already {}'s address", server.name));
            }
        }
        Ok(())
    }

    /// Where the mailbox server `name` keeps its Maildirs: its own `storage`, or the
    /// site's shared `<data_dir>/mail`.
    pub fn mail_root(&self, name: &str) -> PathBuf {
        let own = self
            .mailboxes
            .iter()
            .find(|m| m.name == name)
            .and_then(|m| m.storage.as_ref());
        match own {
            Some(path) => self.data_dir.join(path),
            None => self.data_dir.join("mail"),
        }
    }

    /// The database URL in use: the configured one, or SQLite in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("site.db").display()
            ),
        }
    }
}
