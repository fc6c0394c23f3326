//! The network the helper sees: which DNS server it asks, which certificates it
//! trusts, and the HTTP client ([`crate::http`]) built on both. One [`Net`] per check,
//! built from the [`SiteOverride`] so that the embedded default site (its own DNS on
//! a high port, its own CA) can be checked on one machine exactly as a real site is.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use mailsite_shared::resolver::{self, Patience};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    self, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use crate::{HelperError, http};

/// What replaces the public Internet's view of a site, for testing one on one machine.
#[derive(Debug, Clone, Default)]
pub struct SiteOverride {
    /// The origin of the autoconfig service (`http://127.0.0.1:8080`), asked instead
    /// of `autoconfig.<domain>` and `<domain>`.
    pub site_url: Option<String>,
    /// The DNS server to ask instead of the system's resolvers.
    pub dns: Option<SocketAddr>,
    /// A CA certificate (PEM) to trust besides the public roots.
    pub ca: Option<PathBuf>,
}

impl SiteOverride {
    /// The overrides as the report lists them.
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(url) = &self.site_url {
            out.push(format!("site-url {url}"));
        }
        if let Some(dns) = &self.dns {
            out.push(format!("dns {dns}"));
        }
        if let Some(ca) = &self.ca {
            out.push(format!("ca {}", ca.display()));
        }
        out
    }
}

/// Resolver, trust and timeouts for one check.
#[derive(Clone)]
pub struct Net {
    pub resolver: TokioResolver,
    pub roots: Arc<RootCertStore>,
    /// The longest any single step may take.
    pub step_timeout: Duration,
    /// The name server asked, as a user reads it: the site's, or this computer's.
    pub dns_server: String,
    /// The client for discovery documents and the preference endpoint.
    pub(crate) http: reqwest::Client,
}

impl Net {
    pub fn new(site: &SiteOverride, step_timeout: Duration) -> Result<Net, HelperError> {
        // One try, no cache: the report shows what the name server says now.
        let patience = Patience {
            timeout: step_timeout.min(Duration::from_secs(3)),
            attempts: 1,
            cache: false,
        };
        let resolver = resolver::build(site.dns, patience)
            .map_err(|e| HelperError::Setup(format!("no DNS resolver: {e}")))?;
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = &site.ca {
            let pem = std::fs::read(path).map_err(|e| {
                HelperError::Setup(format!("cannot read the CA file {}: {e}", path.display()))
            })?;
            let certs = rustls::pki_types::pem::PemObject::pem_slice_iter(&pem)
                .collect::<Result<Vec<CertificateDer<'static>>, _>>()
                .map_err(|e| {
                    HelperError::Setup(format!("{} is not a PEM certificate: {e}", path.display()))
                })?;
            if certs.is_empty() {
                return Err(HelperError::Setup(format!(
                    "{} holds no certificate",
                    path.display()
                )));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| HelperError::Setup(format!("{}: {e}", path.display())))?;
            }
        }
        let roots = Arc::new(roots);
        let http = http::client(resolver.clone(), strict_config(roots.clone()))
            .map_err(|e| HelperError::Setup(format!("no HTTP client: {e}")))?;
        Ok(Net {
            resolver,
            roots,
            step_timeout,
            dns_server: site
                .dns
                .map_or_else(|| "this computer uses".to_string(), |addr| addr.to_string()),
            http,
        })
    }

    /// A connector that refuses any certificate the user's client would refuse: the
    /// one every login goes through, so a password never crosses an unverified link.
    pub fn strict(&self) -> TlsConnector {
        TlsConnector::from(Arc::new(strict_config(self.roots.clone())))
    }

    /// A connector that completes the handshake whatever the certificate, and keeps
    /// what strict verification said, so the TLS step can show the certificate of a
    /// server it does not trust.
    pub fn inspecting(&self) -> (TlsConnector, Arc<Mutex<Option<rustls::Error>>>) {
        let verdict = Arc::new(Mutex::new(None));
        let inner = WebPkiServerVerifier::builder_with_provider(self.roots.clone(), provider())
            .build()
            .expect("the root store is not empty");
        let verifier = Arc::new(Inspecting {
            inner,
            verdict: verdict.clone(),
        });
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default versions")
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        (TlsConnector::from(Arc::new(config)), verdict)
    }

    /// The addresses of a host (or the address it is).
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        lookup(&self.resolver, host).await
    }
}

/// The addresses of a host (or the address it is), as `resolver` answers.
pub(crate) async fn lookup(resolver: &TokioResolver, host: &str) -> Result<Vec<IpAddr>, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let fqdn = format!("{}.", host.trim_end_matches('.'));
    match resolver.lookup_ip(fqdn.as_str()).await {
        Ok(ips) => Ok(ips.iter().collect()),
        Err(e) if e.is_nx_domain() => Err(format!("{host}: no such name")),
        Err(e) if e.is_no_records_found() => Err(format!("{host}: no address")),
        Err(e) => Err(format!(
            "{host}: {}",
            in_plain_words(&format!("lookup failed: {e}"))
        )),
    }
}

/// What the libraries' errors mean, in the words a user and the helpdesk read
/// first; the library's own text follows in parentheses for whoever debugs it.
const PLAIN_WORDS: &[(&str, &str)] = &[
    (
        "InvalidContentType",
        "the server does not speak TLS (HTTPS) on this port",
    ),
    (
        "corrupt message",
        "the server's answer is not TLS: it does not speak HTTPS on this port",
    ),
    (
        "UnknownIssuer",
        "the server's certificate is not from an authority this computer trusts",
    ),
    (
        "NotValidForName",
        "the server's certificate is for another name",
    ),
    ("Expired", "the server's certificate has expired"),
    (
        "no connections available",
        "no DNS server answered the query",
    ),
    ("Connection refused", "nothing accepts connections there"),
    (
        "No route to host",
        "the server cannot be reached from this network",
    ),
    (
        "Network is unreachable",
        "this computer has no route to that network",
    ),
    ("timed out", "no answer in time"),
    ("deadline has elapsed", "no answer in time"),
    (
        "connection closed before message completed",
        "the server closed the connection without answering",
    ),
];

/// A library error as a user reads it: the plain meaning first, when known, then the
/// library's text in parentheses.
pub fn in_plain_words(technical: &str) -> String {
    match PLAIN_WORDS.iter().find(|(key, _)| technical.contains(key)) {
        Some((_, plain)) => format!("{plain} ({technical})"),
        None => technical.to_string(),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// TLS that refuses any certificate the user's client would refuse.
fn strict_config(roots: Arc<RootCertStore>) -> ClientConfig {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

#[derive(Debug)]
struct Inspecting {
    inner: Arc<WebPkiServerVerifier>,
    verdict: Arc<Mutex<Option<rustls::Error>>>,
}

impl ServerCertVerifier for Inspecting {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Err(e) =
            self.inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            *self.verdict.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::in_plain_words;

    #[test]
    fn library_errors_are_said_in_plain_words_first() {
        let tls = in_plain_words(
            "error sending request: received corrupt message of type InvalidContentType",
        );
        assert!(
            tls.starts_with("the server does not speak TLS (HTTPS) on this port ("),
            "{tls}"
        );
        assert!(tls.ends_with("InvalidContentType)"), "{tls}");
        let dns = in_plain_words("lookup failed: no connections available");
        assert!(dns.starts_with("no DNS server answered"), "{dns}");
        assert_eq!(in_plain_words("HTTP 404"), "HTTP 404");
    }
}
