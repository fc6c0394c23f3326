//! The outbound relay's way to other domains: where mail for a domain goes (its MX
//! records by preference, RFC 5321 5.1; the domain's own addresses when it has none; a
//! null MX refuses mail, RFC 7505; or one configured smarthost), and TLS for the
//! SMTP client.
//!
//! STARTTLS to other domains' servers is opportunistic (RFC 3207, as most MTAs do it):
//! used whenever offered, without certificate checks, because a server's certificate
//! rarely names the MX host and refusing would only push the message back to
//! plaintext; it protects against passive eavesdropping.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::RData;
use mailsite_shared::RelaySettings;
use mailsite_shared::resolver::{self, Patience};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{
    CryptoProvider, verify_tls12_signature, verify_tls13_signature,
};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

/// Why no server could be found for a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoRoute {
    /// Try again later (a DNS server failing or silent).
    Temporary(String),
    /// The domain does not exist or takes no mail.
    Permanent(String),
}

/// Finds the servers that take mail for a domain.
pub struct Relay {
    /// The resolver, or why there is none (no readable /etc/resolv.conf): then every
    /// lookup fails temporarily, and the rest of the sorter works.
    resolver: Result<TokioResolver, String>,
    settings: RelaySettings,
    tls: TlsConnector,
}

impl Relay {
    pub fn new(settings: &RelaySettings) -> anyhow::Result<Relay> {
        let patience = Patience {
            timeout: Duration::from_secs(5),
            attempts: 2,
            cache: true,
        };
        let resolver = resolver::build(settings.resolver, patience).map_err(|e| {
                tracing::warn!(error = %e, "no DNS resolver for the outbound relay; set [relay] resolver");
                format!("451 4.4.3 no DNS resolver: {e}; set [relay] resolver")
            });
        Ok(Relay {
            resolver,
            settings: settings.clone(),
            tls: opportunistic_tls()?,
        })
    }

    /// The TLS connector for STARTTLS.
    pub fn tls(&self) -> TlsConnector {
        self.tls.clone()
    }

    /// Every address to try for `domain`, best first, each with its host name.
    pub async fn targets(&self, domain: &str) -> Result<Vec<(String, SocketAddr)>, NoRoute> {
        if let Some(smarthost) = &self.settings.smarthost {
            let (host, port) = smarthost.rsplit_once(':').unwrap_or((smarthost, "25"));
            let port = port.parse().unwrap_or(25);
            let host = host.trim_start_matches('[').trim_end_matches(']');
            return self.addresses(host, port).await;
        }
        let resolver = self
            .resolver
            .as_ref()
            .map_err(|e| NoRoute::Temporary(e.clone()))?;
        let fqdn = format!("{}.", domain.trim_end_matches('.'));
        let mut exchanges: Vec<(u16, String)> = match resolver.mx_lookup(fqdn.as_str()).await {
            Ok(lookup) => lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::MX(mx) => Some((mx.preference, mx.exchange.to_ascii())),
                    _ => None,
                })
                .collect(),
            Err(e) if e.is_nx_domain() => {
                return Err(NoRoute::Permanent(format!(
                    "550 5.1.2 {domain}: no such domain"
                )));
            }
            Err(e) if e.is_no_records_found() => Vec::new(),
            Err(e) => {
                return Err(NoRoute::Temporary(format!(
                    "451 4.4.3 {domain}: MX lookup failed: {e}"
                )));
            }
        };
        if exchanges.len() == 1 && exchanges[0].1.trim_end_matches('.').is_empty() {
            return Err(NoRoute::Permanent(format!(
                "556 5.1.10 {domain} accepts no mail (null MX)"
            )));
        }
        if exchanges.is_empty() {
            // No MX: the domain itself (RFC 5321 5.1).
            exchanges.push((0, fqdn));
        }
        exchanges.sort_by_key(|(preference, _)| *preference);
        let mut targets = Vec::new();
        let mut last = NoRoute::Temporary(format!(
            "451 4.4.3 {domain}: no address for its mail servers"
        ));
        for (_, host) in exchanges {
            match self.addresses(&host, self.settings.port).await {
                Ok(found) => targets.extend(found),
                Err(e) => last = e,
            }
        }
        if targets.is_empty() {
            Err(last)
        } else {
            Ok(targets)
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

/// TLS for STARTTLS to other domains: any certificate (see the module comment).
fn opportunistic_tls() -> anyhow::Result<TlsConnector> {
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
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
