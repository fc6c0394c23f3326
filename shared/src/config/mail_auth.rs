//! The `[mail_auth]` section: what the zone tells other mail systems about the site's
//! mail (DMARC policy, MTA-STS mode). SPF, DKIM, TLS-RPT and TLSA records follow from
//! the servers and certificate themselves and need no setting.

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, Source};

/// What receivers are asked to do with mail that claims a site domain in From: but
/// passes neither SPF nor DKIM for it (RFC 7489 6.3 `p=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DmarcPolicy {
    None,
    #[default]
    Quarantine,
    Reject,
}

impl DmarcPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            DmarcPolicy::None => "none",
            DmarcPolicy::Quarantine => "quarantine",
            DmarcPolicy::Reject => "reject",
        }
    }
}

/// The MTA-STS policy mode (RFC 8461 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MtaStsMode {
    /// Senders refuse to deliver without a valid certificate.
    Enforce,
    /// Senders deliver anyway and report failures (TLS-RPT).
    Testing,
    /// No policy in force.
    None,
}

impl MtaStsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            MtaStsMode::Enforce => "enforce",
            MtaStsMode::Testing => "testing",
            MtaStsMode::None => "none",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailAuthSettings {
    pub dmarc_policy: DmarcPolicy,
    /// `None`: derived from the certificate: enforce with `[tls]` files (a CA others
    /// trust), testing with the site's own CA (which no other MTA can verify).
    pub mta_sts: Option<MtaStsMode>,
    /// Check SPF, DKIM and DMARC of mail from other domains (the MX port).
    pub verify: bool,
    /// Deliver mail that fails a `p=reject` domain's DMARC to Junk instead of
    /// refusing it.
    pub reject_to_junk: bool,
}

impl Default for MailAuthSettings {
    fn default() -> Self {
        MailAuthSettings {
            dmarc_policy: DmarcPolicy::default(),
            mta_sts: None,
            verify: true,
            reject_to_junk: false,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMailAuth {
    dmarc_policy: Option<Spanned<String>>,
    mta_sts: Option<Spanned<String>>,
    verify: Option<bool>,
    dmarc_reject: Option<Spanned<String>>,
}

impl MailAuthSettings {
    pub(super) fn from_raw(src: &Source, raw: &RawMailAuth) -> Result<Self, ConfigError> {
        let dmarc_policy = match &raw.dmarc_policy {
            None => DmarcPolicy::default(),
            Some(p) => match p.get_ref().as_str() {
                "none" => DmarcPolicy::None,
                "quarantine" => DmarcPolicy::Quarantine,
                "reject" => DmarcPolicy::Reject,
                other => {
                    return Err(src.error(
                        Some(p.span()),
                        "mail_auth.dmarc_policy",
                        format!("{other:?} is not a DMARC policy"),
                        "write dmarc_policy = \"none\", \"quarantine\" or \"reject\"",
                    ));
                }
            },
        };
        let mta_sts = match &raw.mta_sts {
            None => None,
            Some(m) => Some(match m.get_ref().as_str() {
                "enforce" => MtaStsMode::Enforce,
                "testing" => MtaStsMode::Testing,
                "none" => MtaStsMode::None,
                other => {
                    return Err(src.error(
                        Some(m.span()),
                        "mail_auth.mta_sts",
                        format!("{other:?} is not an MTA-STS mode"),
                        "write mta_sts = \"enforce\", \"testing\" or \"none\" (or leave it out: enforce with [tls], testing without)",
                    ));
                }
            }),
        };
        let reject_to_junk = match &raw.dmarc_reject {
            None => false,
            Some(r) => match r.get_ref().as_str() {
                "reject" => false,
                "junk" => true,
                other => {
                    return Err(src.error(
                        Some(r.span()),
                        "mail_auth.dmarc_reject",
                        format!("{other:?} is not what to do with such mail"),
                        "write dmarc_reject = \"reject\" (refuse it) or \"junk\" (deliver it to the Junk folder)",
                    ));
                }
            },
        };
        Ok(MailAuthSettings {
            dmarc_policy,
            mta_sts,
            verify: raw.verify.unwrap_or(true),
            reject_to_junk,
        })
    }
}

impl super::SiteConfig {
    /// The MTA-STS mode in force: the configured one, or enforce with `[tls]` files
    /// and testing with the site's own CA.
    pub fn mta_sts_mode(&self) -> MtaStsMode {
        self.mail_auth.mta_sts.unwrap_or(match self.tls {
            Some(_) => MtaStsMode::Enforce,
            None => MtaStsMode::Testing,
        })
    }
}
