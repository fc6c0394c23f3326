//! The outbound relay's way to other domains: where mail for a domain goes (its MX
//! records by preference, RFC 5321 5.1; the domain's own addresses when it has none; a
//! null MX refuses mail, RFC 7505; or one configured smarthost), and what TLS each of
//! those servers must offer.
//!
//! TLS follows the domain's policy ([`super::tls_policy`]): DANE (RFC 7672) when its
//! MX records are DNSSEC-secure and the host has TLSA records, else its MTA-STS policy
//! (RFC 8461) when it publishes one; each requires TLS with a certificate checked
//! against the policy, and a server that fails it is skipped (the mail waits if none
//! passes). Without a policy (and through a smarthost), STARTTLS is opportunistic
//! (RFC 3207, as most MTAs do it): used whenever offered, without certificate checks,
//! because a server's certificate rarely names the MX host and refusing would only
//! push the message back to plaintext; it protects against passive eavesdropping.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::proto::rr::rdata::TLSA;
use mail_auth::report::tlsrpt::ResultType;
use mailsite_shared::RelaySettings;
use mailsite_shared::resolver::{self, Patience};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{
    CryptoProvider, verify_tls12_signature, verify_tls13_signature,
};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

use super::tls_policy::dane::{self, Dane};
use super::tls_policy::mta_sts::{self, MtaSts};
use super::tls_policy::verify::{self, Check};
use super::tls_policy::{Failure, Recorder, ReportedPolicy, Requirement, Session};
use crate::directory::Directory;
use crate::metrics::Metrics;

/// Why no server could be found for a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoRoute {
    /// Try again later (a DNS server failing or silent).
    Temporary(String),
    /// The domain does not exist or takes no mail.
    Permanent(String),
}

/// One server to try, with the TLS it must have.
#[derive(Clone, Debug)]
pub struct Target {
    pub host: String,
    pub addr: SocketAddr,
    pub tls: Requirement,
}

/// Finds the servers that take mail for a domain.
pub struct Relay {
    /// The resolver, or why there is none (no readable /etc/resolv.conf): then every
    /// lookup fails temporarily, and the rest of the sorter works.
    resolver: Result<TokioResolver, String>,
    settings: RelaySettings,
    tls: TlsConnector,
    provider: Arc<CryptoProvider>,
    /// PKIX for MTA-STS: the web's roots and `[relay] tls_trust`.
    pkix: Option<Arc<WebPkiServerVerifier>>,
    dane: Dane,
    mta_sts: MtaSts,
    recorder: Recorder,
}

impl Relay {
    /// A relay that keeps nothing (MTA-STS needs the site database: see [`Relay::with_store`]).
    pub fn new(settings: &RelaySettings) -> anyhow::Result<Relay> {
        Relay::with_store(settings, None, None)
    }

    /// A relay that keeps MTA-STS policies and TLS results in `directory`.
    pub fn with_store(
        settings: &RelaySettings,
        directory: Option<Directory>,
        metrics: Option<Arc<Metrics>>,
    ) -> anyhow::Result<Relay> {
        let patience = Patience {
            timeout: Duration::from_secs(5),
            attempts: 2,
            cache: true,
        };
        let resolver = resolver::build(settings.resolver, patience).map_err(|e| {
                tracing::warn!(error = %e, "no DNS resolver for the outbound relay; set [relay] resolver");
                format!("451 4.4.3 no DNS resolver: {e}; set [relay] resolver")
            });
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let extra = match &settings.tls_trust {
            Some(path) => CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .with_context(|| {
                    format!(
                        "[relay] tls_trust: cannot read the certificates of {}",
                        path.display()
                    )
                })?,
            None => Vec::new(),
        };
        let pkix = match verify::pkix(&provider, &extra) {
            Ok(pkix) => Some(pkix),
            Err(error) => {
                tracing::error!(%error, "no PKIX roots: MTA-STS policies cannot be fetched");
                None
            }
        };
        Ok(Relay {
            resolver,
            settings: settings.clone(),
            tls: opportunistic_tls(&provider)?,
            dane: Dane::new(settings).map_err(anyhow::Error::msg)?,
            mta_sts: MtaSts::new(directory.clone(), provider.clone(), pkix.clone()),
            recorder: Recorder::new(directory, metrics),
            provider,
            pkix,
        })
    }

    /// The TLS connector for opportunistic STARTTLS.
    pub fn tls(&self) -> TlsConnector {
        self.tls.clone()
    }

    /// The resolver other domains' names are looked up with, if there is one.
    pub fn resolver(&self) -> Option<&TokioResolver> {
        self.resolver.as_ref().ok()
    }

    /// The crypto of TLS connections.
    pub fn provider(&self) -> &Arc<CryptoProvider> {
        &self.provider
    }

    /// Where sessions' results under a policy are counted.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// Every server to try for `domain`, best first, each with its TLS requirement.
    pub async fn route(&self, domain: &str) -> Result<Vec<Target>, NoRoute> {
        if let Some(smarthost) = &self.settings.smarthost {
            let (host, port) = smarthost.rsplit_once(':').unwrap_or((smarthost, "25"));
            let port = port.parse().unwrap_or(25);
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let found = self.addresses(host, port).await?;
            return Ok(opportunistic(found));
        }
        let resolver = self
            .resolver
            .as_ref()
            .map_err(|e| NoRoute::Temporary(e.clone()))?;
        let (exchanges, secure) = match self.dane.mx(domain).await {
            dane::Mx::Secure(exchanges) => (exchanges, true),
            dane::Mx::Insecure => (self.exchanges(domain).await?, false),
            dane::Mx::Bogus(failure) => {
                let policy = tlsa_policy(domain, &[]);
                self.record(&policy, Err(failure.clone()), "", None).await;
                return Err(NoRoute::Temporary(format!("451 4.7.5 {}", failure.detail)));
            }
        };
        let exchanges = sorted(domain, exchanges)?;
        let mut sts: Option<mta_sts::Found> = None;
        let mut targets = Vec::new();
        let mut last = NoRoute::Temporary(format!(
            "451 4.4.3 {domain}: no address for its mail servers"
        ));
        for host in exchanges {
            let host = host.trim_end_matches('.').to_string();
            let port = self.settings.port;
            let tlsa = match secure {
                true => self.dane.tlsa(&host, port).await,
                false => dane::Tlsa::None,
            };
            let tls = match tlsa {
                dane::Tlsa::Usable(records) => Requirement::Policy {
                    check: Check::Dane(records.clone().into()),
                    enforce: true,
                    policy: Arc::new(tlsa_policy(domain, &records)),
                },
                dane::Tlsa::Unusable(records) => Requirement::Policy {
                    check: Check::Any,
                    enforce: true,
                    policy: Arc::new(tlsa_policy(domain, &records)),
                },
                dane::Tlsa::Bogus(failure) => {
                    let policy = tlsa_policy(domain, &[]);
                    self.record(&policy, Err(failure.clone()), &host, None)
                        .await;
                    last = NoRoute::Temporary(format!("451 4.7.5 {}", failure.detail));
                    continue;
                }
                dane::Tlsa::None => {
                    if sts.is_none() {
                        let found = self.mta_sts.policy(resolver, domain).await;
                        if let Some(failure) = &found.failure {
                            let policy = sts_policy(domain, found.policy.as_ref());
                            self.record(&policy, Err(failure.clone()), "", None).await;
                        }
                        sts = Some(found);
                    }
                    match sts.as_ref().and_then(|f| f.policy.as_ref()) {
                        Some(p) => match self.sts_requirement(domain, p, &host).await {
                            Ok(tls) => tls,
                            Err(why) => {
                                last = NoRoute::Temporary(why);
                                continue;
                            }
                        },
                        None => Requirement::Opportunistic,
                    }
                }
            };
            match self.addresses(&host, port).await {
                Ok(found) => targets.extend(found.into_iter().map(|(host, addr)| Target {
                    host,
                    addr,
                    tls: tls.clone(),
                })),
                Err(e) => last = e,
            }
        }
        if targets.is_empty() {
            Err(last)
        } else {
            Ok(targets)
        }
    }

    /// What an MTA-STS policy asks of MX `host`; `Err` with the reason when it may not
    /// be used at all (enforce mode, not one of the policy's MX hosts).
    async fn sts_requirement(
        &self,
        domain: &str,
        policy: &mta_sts::Policy,
        host: &str,
    ) -> Result<Requirement, String> {
        let enforce = match policy.mode {
            mta_sts::Mode::None => return Ok(Requirement::Opportunistic),
            mta_sts::Mode::Enforce => true,
            mta_sts::Mode::Testing => false,
        };
        let reported = Arc::new(sts_policy(domain, Some(policy)));
        if !policy.allows(host) {
            let why = format!(
                "{host} is not an MX host of {domain}'s MTA-STS policy (mx: {})",
                policy.mx.join(", ")
            );
            let failure = Failure::new(ResultType::ValidationFailure, why.clone());
            self.record(&reported, Err(failure), host, None).await;
            if enforce {
                return Err(format!("451 4.7.5 {why}"));
            }
        }
        let Some(pkix) = &self.pkix else {
            return Err(format!(
                "451 4.7.5 {domain}: no certificate roots to check its MX hosts with"
            ));
        };
        Ok(Requirement::Policy {
            check: Check::Pkix(pkix.clone()),
            enforce,
            policy: reported,
        })
    }

    async fn record(
        &self,
        policy: &ReportedPolicy,
        result: Result<(), Failure>,
        mx_host: &str,
        receiving_ip: Option<IpAddr>,
    ) {
        self.recorder
            .record(Session {
                policy,
                result,
                mx_host,
                receiving_ip,
                sending_ip: None,
            })
            .await;
    }

    /// `domain`'s MX records (preference, host), as the resolver answers.
    async fn exchanges(&self, domain: &str) -> Result<Vec<(u16, String)>, NoRoute> {
        let resolver = self
            .resolver
            .as_ref()
            .map_err(|e| NoRoute::Temporary(e.clone()))?;
        let fqdn = format!("{}.", domain.trim_end_matches('.'));
        match resolver.mx_lookup(fqdn.as_str()).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::MX(mx) => Some((mx.preference, mx.exchange.to_ascii())),
                    _ => None,
                })
                .collect()),
            Err(e) if e.is_nx_domain() => Err(NoRoute::Permanent(format!(
                "550 5.1.2 {domain}: no such domain"
            ))),
            Err(e) if e.is_no_records_found() => Ok(Vec::new()),
            Err(e) => Err(NoRoute::Temporary(format!(
                "451 4.4.3 {domain}: MX lookup failed: {e}"
            ))),
        }
    }

    /// The addresses of a host (or the address it is).
    async fn addresses(&self, host: &str, port: u16) -> Result<Vec<(String, SocketAddr)>, NoRoute> {
        let name = host.trim_end_matches('.').to_string();
        if let Ok(ip) = name.parse::<std::net::IpAddr>() {
            return Ok(vec![(name, SocketAddr::new(ip, port))]);
        }
        let resolver = self
            .resolver
            .as_ref()
            .map_err(|e| NoRoute::Temporary(e.clone()))?;
        let fqdn = format!("{name}.");
        match resolver.lookup_ip(fqdn.as_str()).await {
            Ok(ips) => Ok(ips
                .iter()
                .map(|ip| (name.clone(), SocketAddr::new(ip, port)))
                .collect()),
            Err(e) if e.is_nx_domain() || e.is_no_records_found() => Err(NoRoute::Permanent(
                format!("550 5.4.4 {name}: the mail server's name has no address"),
            )),
            Err(e) => Err(NoRoute::Temporary(format!(
                "451 4.4.3 {name}: address lookup failed: {e}"
            ))),
        }
    }
}

/// The MX hosts of `exchanges` by preference; the domain itself without any
/// (RFC 5321 5.1); none for a null MX (RFC 7505).
fn sorted(domain: &str, mut exchanges: Vec<(u16, String)>) -> Result<Vec<String>, NoRoute> {
    if exchanges.len() == 1 && exchanges[0].1.trim_end_matches('.').is_empty() {
        return Err(NoRoute::Permanent(format!(
            "556 5.1.10 {domain} accepts no mail (null MX)"
        )));
    }
    if exchanges.is_empty() {
        exchanges.push((0, format!("{}.", domain.trim_end_matches('.'))));
    }
    exchanges.sort_by_key(|(preference, _)| *preference);
    Ok(exchanges.into_iter().map(|(_, host)| host).collect())
}

fn opportunistic(found: Vec<(String, SocketAddr)>) -> Vec<Target> {
    found
        .into_iter()
        .map(|(host, addr)| Target {
            host,
            addr,
            tls: Requirement::Opportunistic,
        })
        .collect()
}

/// A DANE policy as reported: the TLSA records in presentation form.
fn tlsa_policy(domain: &str, records: &[TLSA]) -> ReportedPolicy {
    ReportedPolicy {
        domain: domain.to_ascii_lowercase(),
        kind: "tlsa",
        text: records
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
        mx: String::new(),
    }
}

/// An MTA-STS policy as reported.
fn sts_policy(domain: &str, policy: Option<&mta_sts::Policy>) -> ReportedPolicy {
    ReportedPolicy {
        domain: domain.to_ascii_lowercase(),
        kind: "sts",
        text: policy.map(|p| p.text.clone()).unwrap_or_default(),
        mx: policy.map(|p| p.mx.join("\n")).unwrap_or_default(),
    }
}

/// TLS for STARTTLS to other domains: any certificate (see the module comment).
fn opportunistic_tls(provider: &Arc<CryptoProvider>) -> anyhow::Result<TlsConnector> {
    let provider = provider.clone();
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Accepts any server certificate, but checks the handshake signatures with it.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, tokio_rustls::rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
