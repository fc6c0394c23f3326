//! The diagnostics report the desktop helper writes and the helpdesk reads
//! (`mailsite helpdesk explain`): one JSON document per check, versioned by
//! [`SCHEMA_VERSION`]. Secrets never enter it: the helper redacts protocol transcripts
//! as they are recorded, so nothing here needs scrubbing afterwards.

use serde::{Deserialize, Serialize};

/// Bumped whenever a field changes meaning or disappears (adding fields does not).
pub const SCHEMA_VERSION: u32 = 1;

/// One whole check: discovery, every test step, what went wrong and what to try.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub helper_version: String,
    /// Operating system and architecture, e.g. `linux x86_64`.
    pub os: String,
    /// UTC, RFC 3339.
    pub started_at: String,
    pub finished_at: String,
    pub email: String,
    /// The incoming protocol tested: `imap` or `pop3`.
    pub protocol: String,
    /// Overrides in effect (`--site-url`, `--dns`, `--ca`), so the helpdesk knows
    /// which servers were really asked.
    #[serde(default)]
    pub overrides: Vec<String>,
    pub discovery: Discovery,
    pub steps: Vec<Step>,
    /// Conclusions drawn from several steps (e.g. "587 blocked, 465 works").
    #[serde(default)]
    pub findings: Vec<Finding>,
    /// One line: how many steps passed, and the most important problem.
    pub summary: String,
    pub passed: bool,
}

/// How the settings were found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Discovery {
    /// The method whose answer was used (`autoconfig`, `autodiscover`, `srv`,
    /// `convention`), or `None` when nothing answered.
    pub method: Option<String>,
    pub attempts: Vec<Attempt>,
    /// The settings found, preferred first.
    pub settings: Vec<Setting>,
}

/// One discovery request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub method: String,
    /// The URL requested or the DNS query asked.
    pub target: String,
    /// HTTP status, DNS answer summary, or the error.
    pub status: String,
    pub ok: bool,
    pub millis: u64,
}

/// One server a mail client would use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    /// `imap`, `pop3` or `smtp`.
    pub protocol: String,
    pub host: String,
    pub port: u16,
    /// `SSL` (implicit TLS), `STARTTLS` or `plain`, as Thunderbird names them.
    pub security: String,
    pub username: String,
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    /// Not run because a step it needs failed.
    Skipped,
}

/// One test: a DNS lookup, a connection, a TLS handshake, a login, the round trip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Stable identifier, e.g. `tls:maila.example.test:993`.
    pub id: String,
    /// `dns`, `tcp`, `tls`, `imap`, `pop3`, `smtp` or `roundtrip`.
    pub kind: String,
    /// What a person reads, e.g. "IMAP login on maila.example.test:993 (SSL/TLS)".
    pub title: String,
    pub outcome: Outcome,
    pub millis: u64,
    /// Facts observed, in order: ("address", "127.0.0.11"), ("tls_version", "TLSv1.3").
    pub details: Vec<(String, String)>,
    /// The protocol exchange, secrets already replaced by `<redacted>`.
    #[serde(default)]
    pub transcript: Vec<String>,
    pub problem: Option<Problem>,
}

impl Step {
    /// The first detail with this key.
    pub fn detail(&self, key: &str) -> Option<&str> {
        self.details
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a step failed, in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Machine-readable cause, e.g. `auth_refused`, `referral`, `connection_refused`,
    /// `tls_wrong_name`, `tls_expired`, `tls_untrusted`, `dns_no_such_name`.
    pub code: String,
    pub explanation: String,
    pub suggestion: String,
}

/// A conclusion from several steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub code: String,
    pub explanation: String,
    pub suggestion: String,
}

impl Report {
    pub fn count(&self, outcome: Outcome) -> usize {
        self.steps.iter().filter(|s| s.outcome == outcome).count()
    }
}
