//! DANE for SMTP (RFC 7672): lookups with DNSSEC validation (the root's trust anchors,
//! plus `[relay] trust_anchor`), of a domain's MX records and then of each MX host's
//! `_<port>._tcp` TLSA records.
//!
//! Secure MX records with usable TLSA records make TLS with a matching certificate
//! required; insecure ones leave the domain to MTA-STS or opportunistic TLS; bogus
//! ones (signed, but failing validation) defer the mail. A resolver path that cannot
//! validate at all (one that drops DNSSEC records: no trust anchor's keys validate)
//! makes every answer look bogus; it is taken as no DANE, with a warning, rather than
//! holding all outbound mail.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hickory_resolver::TokioResolver;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::dnssec::{Proof, PublicKeyBuf, TrustAnchors};
use hickory_resolver::proto::rr::rdata::TLSA;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::proto::serialize::txt::trust_anchor::{Entry, Parser};
use mail_auth::report::tlsrpt::ResultType;
use mailsite_shared::RelaySettings;
use mailsite_shared::resolver::{self, Patience};

use super::Failure;
use super::verify;

/// How long the finding that the resolver path validates (or not) is kept.
const CAPABLE_FOR: Duration = Duration::from_secs(600);

/// What DNSSEC says of a domain's MX records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mx {
    /// Secure: these exchanges (preference, host), which DANE then applies to.
    Secure(Vec<(u16, String)>),
    /// Not signed (or no validation possible): no DANE.
    Insecure,
    /// Signed but not valid: the domain's mail waits.
    Bogus(Failure),
}

/// What DNSSEC says of an MX host's TLSA records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tlsa {
    /// Secure and usable: TLS required, the certificate must match one.
    Usable(Vec<TLSA>),
    /// Secure, but none usable for SMTP: TLS required, without authentication
    /// (RFC 7672 2.2).
    Unusable(Vec<TLSA>),
    /// None (or not secure): no DANE for this host.
    None,
    /// Failing validation, or not answered in a secure zone: this host is not used.
    Bogus(Failure),
}

/// The validating resolver.
pub struct Dane {
    resolver: Result<TokioResolver, String>,
    /// The names whose keys are trust anchors (the root, and the configured ones).
    anchors: Vec<Name>,
    capable: Mutex<Option<(Instant, bool)>>,
}

impl Dane {
    /// A resolver trusting the root's keys and those of `[relay] trust_anchor`
    /// (an error if that file cannot be read).
    pub fn new(settings: &RelaySettings) -> Result<Dane, String> {
        let mut anchors = TrustAnchors::default();
        let mut names = vec![Name::root()];
        if let Some(path) = &settings.trust_anchor {
            let entries = read_anchors(path).map_err(|e| {
                format!(
                    "[relay] trust_anchor: cannot read DNSKEY records from {}: {e}",
                    path.display()
                )
            })?;
            for (name, key) in entries {
                anchors.insert_with_name(&key, (&name).into());
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        let patience = Patience {
            timeout: Duration::from_secs(5),
            attempts: 2,
            cache: true,
        };
        let resolver = resolver::build_validating(settings.resolver, patience, anchors)
            .map_err(|e| e.to_string());
        Ok(Dane {
            resolver,
            anchors: names,
            capable: Mutex::new(None),
        })
    }

    /// The DNSSEC status of `domain`'s MX records.
    pub async fn mx(&self, domain: &str) -> Mx {
        let Ok(resolver) = &self.resolver else {
            return Mx::Insecure;
        };
        let fqdn = format!("{}.", domain.trim_end_matches('.'));
        match resolver.lookup(fqdn.as_str(), RecordType::MX).await {
            Ok(lookup) => {
                let records: Vec<_> = lookup
                    .answers()
                    .iter()
                    .filter(|r| r.record_type() == RecordType::MX)
                    .collect();
                if records.is_empty() || !records.iter().all(|r| r.proof == Proof::Secure) {
                    return Mx::Insecure;
                }
                Mx::Secure(
                    records
                        .iter()
                        .filter_map(|r| match &r.data {
                            RData::MX(mx) => Some((mx.preference, mx.exchange.to_ascii())),
                            _ => None,
                        })
                        .collect(),
                )
            }
            Err(e) if bogus(&e) => {
                if self.capable().await {
                    Mx::Bogus(Failure::new(
                        ResultType::DnssecInvalid,
                        format!("the MX records of {domain} fail DNSSEC validation: {e}"),
                    ))
                } else {
                    Mx::Insecure
                }
            }
            Err(_) => Mx::Insecure,
        }
    }

    /// The TLSA records of `host` for `port`, in a zone whose MX records were secure.
    pub async fn tlsa(&self, host: &str, port: u16) -> Tlsa {
        let Ok(resolver) = &self.resolver else {
            return Tlsa::None;
        };
        let name = format!("_{port}._tcp.{}.", host.trim_end_matches('.'));
        match resolver.lookup(name.as_str(), RecordType::TLSA).await {
            Ok(lookup) => {
                let records: Vec<_> = lookup
                    .answers()
                    .iter()
                    .filter(|r| r.record_type() == RecordType::TLSA)
                    .collect();
                if records.is_empty() || !records.iter().all(|r| r.proof == Proof::Secure) {
                    return Tlsa::None;
                }
                let tlsa: Vec<TLSA> = records
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::TLSA(t) => Some(t.clone()),
                        _ => None,
                    })
                    .collect();
                let usable: Vec<TLSA> =
                    tlsa.iter().filter(|t| verify::usable(t)).cloned().collect();
                if usable.is_empty() {
                    Tlsa::Unusable(tlsa)
                } else {
                    Tlsa::Usable(usable)
                }
            }
            // None, proven (or in an unsigned zone).
            Err(e) if e.is_no_records_found() || none_proven(&e) => Tlsa::None,
            Err(e) if bogus(&e) => Tlsa::Bogus(Failure::new(
                ResultType::DnssecInvalid,
                format!("the TLSA records {name} fail DNSSEC validation: {e}"),
            )),
            // Not answered in a secure zone: an attacker may be hiding them.
            Err(e) => Tlsa::Bogus(Failure::new(
                ResultType::TlsaInvalid,
                format!("the TLSA records {name} cannot be looked up: {e}"),
            )),
        }
    }

    /// Whether this resolver path validates at all: some trust anchor's keys do.
    async fn capable(&self) -> bool {
        if let Ok(slot) = self.capable.lock()
            && let Some((at, capable)) = *slot
            && at.elapsed() < CAPABLE_FOR
        {
            return capable;
        }
        let Ok(resolver) = &self.resolver else {
            return false;
        };
        let mut capable = false;
        for name in &self.anchors {
            if let Ok(lookup) = resolver.lookup(name.clone(), RecordType::DNSKEY).await
                && lookup
                    .answers()
                    .iter()
                    .any(|r| r.record_type() == RecordType::DNSKEY && r.proof == Proof::Secure)
            {
                capable = true;
                break;
            }
        }
        if !capable {
            tracing::warn!(
                "no DNSSEC trust anchor's keys validate through the relay's resolver: DANE is not used (is the resolver dropping DNSSEC records?)"
            );
        }
        if let Ok(mut slot) = self.capable.lock() {
            *slot = Some((Instant::now(), capable));
        }
        capable
    }
}

/// Whether a lookup failed DNSSEC validation.
fn bogus(error: &NetError) -> bool {
    match error {
        NetError::Dns(DnsError::DnssecBogus) => true,
        NetError::Dns(DnsError::Nsec { proof, .. }) => *proof == Proof::Bogus,
        _ => false,
    }
}

/// Whether a lookup found that no records exist, securely or in an unsigned zone.
fn none_proven(error: &NetError) -> bool {
    matches!(
        error,
        NetError::Dns(DnsError::Nsec {
            proof: Proof::Secure | Proof::Insecure,
            ..
        })
    )
}

/// The DNSKEY records of a trust anchor file, by owner name.
fn read_anchors(path: &Path) -> Result<Vec<(Name, PublicKeyBuf)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let entries = Parser::new(text).parse().map_err(|e| e.to_string())?;
    Ok(entries
        .into_iter()
        .filter_map(|entry| match entry {
            Entry::DNSKEY(record) => {
                Some((record.name().clone(), record.data().public_key().clone()))
            }
            _ => None,
        })
        .collect())
}
