//! Outbound TLS policy: what TLS the sorters insist on with another domain's mail
//! servers, and the record of what happened for TLS reports.
//!
//! - [`dane`] (RFC 7672): when the domain's MX records are DNSSEC-secure and an MX
//!   host has usable TLSA records, TLS is required and the certificate must match them;
//! - [`mta_sts`] (RFC 8461): the domain's published policy, fetched over HTTPS and
//!   kept in the site database; in enforce mode only its MX hosts are used, over TLS
//!   with a certificate valid for the host;
//! - [`verify`]: the certificate check of one handshake;
//! - [`Recorder`]: each session's result under a policy, per day, for `mailsite
//!   tls-report`; [`report`]: the daily reports to each domain (RFC 8460).
//!
//! DANE takes precedence over MTA-STS (RFC 8461 2); without either, STARTTLS stays
//! opportunistic (see [`super::relay`]).

pub mod dane;
pub mod mta_sts;
pub mod report;
pub mod verify;

use std::net::IpAddr;
use std::sync::Arc;

use mail_auth::report::tlsrpt::ResultType;

use crate::directory::Directory;
use crate::directory::tls_reports::SessionResult;
use crate::metrics::Metrics;

/// Why a session failed its policy, as a TLS report names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: ResultType,
    /// Words for the log, the queue and the report.
    pub detail: String,
}

impl Failure {
    pub fn new(kind: ResultType, detail: impl Into<String>) -> Failure {
        Failure {
            kind,
            detail: detail.into(),
        }
    }

    /// The RFC 8460 name of the result type.
    pub fn kind_name(&self) -> String {
        result_name(self.kind)
    }
}

/// The RFC 8460 name of a result type (`certificate-not-trusted`).
pub fn result_name(kind: ResultType) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "validation-failure".into())
}

/// What TLS one connection to one MX host must have.
#[derive(Clone, Debug)]
pub enum Requirement {
    /// STARTTLS when offered, any certificate; nothing recorded.
    Opportunistic,
    /// TLS is required (DANE, or an enforced MTA-STS policy) or only reported
    /// (`enforce` false: an MTA-STS policy in testing mode), with this check.
    Policy {
        check: verify::Check,
        enforce: bool,
        policy: Arc<ReportedPolicy>,
    },
}

/// The policy a session's result is reported under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedPolicy {
    pub domain: String,
    /// `sts` or `tlsa`.
    pub kind: &'static str,
    /// The policy's lines: the MTA-STS file, or the TLSA records.
    pub text: String,
    /// The MTA-STS policy's `mx` patterns, one a line.
    pub mx: String,
}

/// Counts sessions' results in the site database and the node's metrics.
pub struct Recorder {
    directory: Option<Directory>,
    metrics: Option<Arc<Metrics>>,
}

/// One session to report.
pub struct Session<'a> {
    pub policy: &'a ReportedPolicy,
    pub result: Result<(), Failure>,
    pub mx_host: &'a str,
    pub receiving_ip: Option<IpAddr>,
    pub sending_ip: Option<IpAddr>,
}

impl Recorder {
    pub fn new(directory: Option<Directory>, metrics: Option<Arc<Metrics>>) -> Recorder {
        Recorder { directory, metrics }
    }

    /// Counts one session (a failure is also logged).
    pub async fn record(&self, session: Session<'_>) {
        let policy = session.policy;
        let (result_type, information) = match &session.result {
            Ok(()) => (String::new(), String::new()),
            Err(f) => {
                tracing::warn!(domain = %policy.domain, policy = policy.kind, mx = %session.mx_host, result = %f.kind_name(), detail = %f.detail, "outbound TLS policy failure");
                (f.kind_name(), f.detail.chars().take(300).collect())
            }
        };
        if let Some(metrics) = &self.metrics {
            let shown = if result_type.is_empty() {
                "success"
            } else {
                &result_type
            };
            metrics.tls_policy(policy.kind, shown);
        }
        let Some(directory) = &self.directory else {
            return;
        };
        let row = SessionResult {
            day: today(),
            policy_domain: policy.domain.clone(),
            policy_type: policy.kind.to_string(),
            policy_string: policy.text.clone(),
            mx_host: policy.mx.clone(),
            result_type,
            sending_ip: session
                .sending_ip
                .map(|i| i.to_string())
                .unwrap_or_default(),
            receiving_mx: session.mx_host.to_string(),
            receiving_ip: session
                .receiving_ip
                .map(|i| i.to_string())
                .unwrap_or_default(),
            information,
            sessions: 1,
        };
        if let Err(error) = directory.record_tls_result(&row).await {
            tracing::error!(%error, domain = %policy.domain, "cannot record a TLS session result");
        }
    }
}

/// A TXT record's strings as one (how its tag=value text is read); `None` for
/// another type.
pub fn txt_bytes(record: &hickory_resolver::proto::rr::Record) -> Option<Vec<u8>> {
    match &record.data {
        hickory_resolver::proto::rr::RData::TXT(txt) => Some(
            txt.txt_data
                .iter()
                .flat_map(|s| s.iter().copied())
                .collect(),
        ),
        _ => None,
    }
}

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The UTC day of `seconds`, `YYYY-MM-DD`.
pub fn day_of(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "1970-01-01".into())
}

/// Today (UTC), `YYYY-MM-DD`.
pub fn today() -> String {
    day_of(now())
}
