//! The `[limits]` section: how many connections each listener of the mailbox servers
//! and sorters takes, in all and from one source, so that a host on the internet
//! cannot hold every slot (or the server's memory) with connections that never log in.

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, Source};

/// Connection limits per listener (each address and port of each server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections open at once on one IMAP listener (ports imap and imaps).
    pub imap: usize,
    /// On one POP3 listener (ports pop3 and pop3s).
    pub pop3: usize,
    /// On one SMTP listener of a sorter (ports smtp, submission and submissions).
    pub smtp: usize,
    /// Connections from one source (an IPv4 address, an IPv6 /64) on one listener
    /// that have not logged in; on SMTP, all of that source's connections.
    pub per_source: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        // Dovecot's login processes take a few thousand clients; Postfix allows 50
        // connections from one client (smtpd_client_connection_count_limit).
        ConnectionLimits {
            imap: 4000,
            pop3: 1000,
            smtp: 2000,
            per_source: 50,
        }
    }
}

/// The most connections one listener may be given: the server's open files are
/// limited (often to 20,000 per process) and every listener shares them.
const MOST: u64 = 20_000;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    imap_connections: Option<Spanned<u64>>,
    pop3_connections: Option<Spanned<u64>>,
    smtp_connections: Option<Spanned<u64>>,
    per_source: Option<Spanned<u64>>,
}

pub(super) fn limits(src: &Source<'_>, raw: &RawLimits) -> Result<ConnectionLimits, ConfigError> {
    let defaults = ConnectionLimits::default();
    let connections = |key: &str, value: &Option<Spanned<u64>>, default: usize| {
        src.number(key, value, default as u64, 1, MOST, "connections")
            .map(|n| n as usize)
    };
    Ok(ConnectionLimits {
        imap: connections(
            "limits.imap_connections",
            &raw.imap_connections,
            defaults.imap,
        )?,
        pop3: connections(
            "limits.pop3_connections",
            &raw.pop3_connections,
            defaults.pop3,
        )?,
        smtp: connections(
            "limits.smtp_connections",
            &raw.smtp_connections,
            defaults.smtp,
        )?,
        per_source: connections("limits.per_source", &raw.per_source, defaults.per_source)?,
    })
}
