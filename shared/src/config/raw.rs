//! The configuration file as serde reads it: every section and key, with spans kept on
//! the values that validation may reject. [`super::SiteConfig::from_toml`] checks and
//! turns it into the site.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::{Ports, Role};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    pub(super) site: RawSite,
    #[serde(default)]
    pub(super) node: RawNode,
    pub(super) http: RawHttp,
    pub(super) dns: RawDns,
    #[serde(default)]
    pub(super) ports: Ports,
    #[serde(default)]
    pub(super) timeouts: RawTimeouts,
    #[serde(default)]
    pub(super) limits: super::limits::RawLimits,
    #[serde(default)]
    pub(super) smtp: RawSmtp,
    #[serde(default)]
    pub(super) queue: RawQueue,
    #[serde(default)]
    pub(super) relay: RawRelay,
    #[serde(default)]
    pub(super) health: RawHealth,
    #[serde(default)]
    pub(super) lmtp: RawLmtp,
    #[serde(default)]
    pub(super) throttle: super::throttle::RawThrottle,
    #[serde(default)]
    pub(super) mail_auth: super::mail_auth::RawMailAuth,
    pub(super) tls: Option<RawTls>,
    #[serde(default)]
    pub(super) mailbox: Vec<RawServer>,
    #[serde(default)]
    pub(super) sorter: Vec<RawServer>,
    pub(super) letters: Spanned<BTreeMap<Spanned<String>, Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSite {
    pub(super) domain: Spanned<String>,
    #[serde(default)]
    pub(super) other_domains: Vec<Spanned<String>>,
    pub(super) name: Option<String>,
    pub(super) short_name: Option<String>,
    pub(super) data_dir: Option<PathBuf>,
    pub(super) database: Option<String>,
    pub(super) postmaster: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNode {
    pub(super) roles: Spanned<Vec<Role>>,
    #[serde(default)]
    pub(super) servers: Option<Spanned<Vec<Spanned<String>>>>,
}

impl Default for RawNode {
    fn default() -> Self {
        RawNode {
            roles: Spanned::new(
                0..0,
                vec![Role::Autoconfig, Role::Dns, Role::Mailbox, Role::Sorter],
            ),
            servers: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    pub(super) listen: SocketAddr,
    pub(super) addresses: Spanned<Vec<IpAddr>>,
}

pub(super) fn default_ttl() -> u32 {
    300
}
pub(super) fn default_alias_ttl() -> u32 {
    5
}
pub(super) fn default_outbox_ttl() -> u32 {
    5
}
pub(super) fn default_dns_rate_limit() -> u32 {
    200
}
pub(super) fn default_dns_rate_limit_slip() -> u32 {
    2
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDns {
    pub(super) listen: SocketAddr,
    pub(super) addresses: Spanned<Vec<IpAddr>>,
    #[serde(default = "default_ttl")]
    pub(super) ttl: u32,
    #[serde(default = "default_alias_ttl")]
    pub(super) alias_ttl: u32,
    #[serde(default = "default_outbox_ttl")]
    pub(super) outbox_ttl: u32,
    #[serde(default = "default_dns_rate_limit")]
    pub(super) rate_limit: u32,
    #[serde(default = "default_dns_rate_limit_slip")]
    pub(super) rate_limit_slip: u32,
    #[serde(default = "default_dnssec")]
    pub(super) dnssec: bool,
}

pub(super) fn default_dnssec() -> bool {
    true
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTimeouts {
    pub(super) login: Option<Spanned<u64>>,
    pub(super) imap: Option<Spanned<u64>>,
    pub(super) pop3: Option<Spanned<u64>>,
    pub(super) smtp: Option<Spanned<u64>>,
    pub(super) login_total: Option<Spanned<u64>>,
    pub(super) idle_keepalive: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSmtp {
    pub(super) max_message_size: Option<Spanned<u64>>,
    pub(super) max_recipients: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRelay {
    pub(super) resolver: Option<Spanned<String>>,
    pub(super) port: Option<Spanned<u64>>,
    pub(super) smarthost: Option<Spanned<String>>,
    pub(super) tls_trust: Option<PathBuf>,
    pub(super) trust_anchor: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawQueue {
    pub(super) retry_first: Option<Spanned<u64>>,
    pub(super) retry_max: Option<Spanned<u64>>,
    pub(super) lifetime: Option<Spanned<u64>>,
    pub(super) delay_warning: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHealth {
    pub(super) enabled: Option<bool>,
    pub(super) interval_ms: Option<Spanned<u64>>,
    pub(super) timeout_ms: Option<Spanned<u64>>,
    pub(super) down_after: Option<Spanned<u64>>,
    pub(super) up_after: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLmtp {
    #[serde(default)]
    pub(super) allow: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    pub(super) cert: PathBuf,
    pub(super) key: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub(super) name: Spanned<String>,
    pub(super) addresses: Spanned<Vec<IpAddr>>,
    pub(super) storage: Option<Spanned<PathBuf>>,
}
