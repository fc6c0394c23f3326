//! The network the helper sees: which DNS server it asks, which certificates it
//! trusts, and a small HTTP client for the discovery documents. One [`Net`] per check,
//! built from the [`SiteOverride`] so that the embedded default site (its own DNS on
//! a high port, its own CA) can be checked on one machine exactly as a real site is.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use mailsite_shared::resolver::{self, Patience};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    self, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use crate::HelperError;

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
    /// PEM of the extra CA, for lettre's own TLS setup.
    pub ca_pem: Option<Vec<u8>>,
    /// The longest any single step may take.
    pub step_timeout: Duration,
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
        let mut ca_pem = None;
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
            ca_pem = Some(pem);
        }
        Ok(Net {
            resolver,
            roots: Arc::new(roots),
            ca_pem,
            step_timeout,
        })
    }

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    /// A connector that refuses any certificate the user's client would refuse: the
    /// one every login goes through, so a password never crosses an unverified link.
    pub fn strict(&self) -> TlsConnector {
        let config = ClientConfig::builder_with_provider(Net::provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default versions")
            .with_root_certificates(self.roots.clone())
            .with_no_client_auth();
        TlsConnector::from(Arc::new(config))
    }

    /// A connector that completes the handshake whatever the certificate, and keeps
    /// what strict verification said, so the TLS step can show the certificate of a
    /// server it does not trust.
    pub fn inspecting(&self) -> (TlsConnector, Arc<Mutex<Option<rustls::Error>>>) {
        let verdict = Arc::new(Mutex::new(None));
        let inner =
            WebPkiServerVerifier::builder_with_provider(self.roots.clone(), Net::provider())
                .build()
                .expect("the root store is not empty");
        let verifier = Arc::new(Inspecting {
            inner,
            verdict: verdict.clone(),
        });
        let config = ClientConfig::builder_with_provider(Net::provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default versions")
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        (TlsConnector::from(Arc::new(config)), verdict)
    }

    /// The addresses of a host (or the address it is).
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let fqdn = format!("{}.", host.trim_end_matches('.'));
        match self.resolver.lookup_ip(fqdn.as_str()).await {
            Ok(ips) => Ok(ips.iter().collect()),
            Err(e) if e.is_nx_domain() => Err(format!("{host}: no such name")),
            Err(e) if e.is_no_records_found() => Err(format!("{host}: no address")),
            Err(e) => Err(format!("{host}: lookup failed: {e}")),
        }
    }

    /// Opens a TCP connection to the first address of `host` that answers.
    pub async fn connect(&self, host: &str, port: u16) -> Result<TcpStream, String> {
        let mut last = format!("{host}: no address");
        for ip in self.addresses(host).await? {
            let addr = SocketAddr::new(ip, port);
            match tokio::time::timeout(self.step_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => return Ok(stream),
                Ok(Err(e)) => last = format!("{addr}: {e}"),
                Err(_) => last = format!("{addr}: no answer within {:?}", self.step_timeout),
            }
        }
        Err(last)
    }
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

/// A URL as the helper uses them: scheme, host, port, path with query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub https: bool,
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl Url {
    pub fn parse(text: &str) -> Result<Url, String> {
        let (https, rest) = if let Some(rest) = text.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(format!("{text:?} is not an http:// or https:// URL"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (
                h,
                p.parse()
                    .map_err(|_| format!("{text:?}: {p:?} is not a port"))?,
            ),
            _ => (authority, if https { 443 } else { 80 }),
        };
        if host.is_empty() {
            return Err(format!("{text:?} names no host"));
        }
        Ok(Url {
            https,
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            path: path.to_string(),
        })
    }

    /// The same origin with another scheme and path.
    pub fn with(&self, https: bool, path: &str) -> Url {
        Url {
            https,
            host: self.host.clone(),
            port: self.port,
            path: path.to_string(),
        }
    }

    fn default_port(&self) -> bool {
        self.port == if self.https { 443 } else { 80 }
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        if self.default_port() {
            write!(f, "{scheme}://{}{}", self.host, self.path)
        } else {
            write!(f, "{scheme}://{}:{}{}", self.host, self.port, self.path)
        }
    }
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
}

/// Largest discovery document read.
const MAX_HTTP_BODY: usize = 256 * 1024;

impl Net {
    /// One HTTP/1.1 request (GET, or POST with a body), `Connection: close`, over TLS
    /// verified strictly for https. Redirects are not followed (answers are recorded).
    pub async fn http(
        &self,
        url: &Url,
        post: Option<(&str, &[u8])>,
        headers: &[(&str, String)],
    ) -> Result<HttpResponse, String> {
        let work = async {
            let tcp = self.connect(&url.host, url.port).await?;
            let host_header = if url.default_port() {
                url.host.clone()
            } else {
                format!("{}:{}", url.host, url.port)
            };
            let mut request = format!(
                "{} {} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: mailsite-helper/{}\r\nConnection: close\r\n",
                if post.is_some() { "POST" } else { "GET" },
                url.path,
                env!("CARGO_PKG_VERSION")
            );
            for (name, value) in headers {
                request.push_str(&format!("{name}: {value}\r\n"));
            }
            let mut bytes = Vec::new();
            if let Some((content_type, body)) = post {
                request.push_str(&format!(
                    "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                ));
                bytes.extend_from_slice(request.as_bytes());
                bytes.extend_from_slice(body);
            } else {
                request.push_str("\r\n");
                bytes.extend_from_slice(request.as_bytes());
            }
            let raw = if url.https {
                let name = ServerName::try_from(url.host.clone())
                    .map_err(|e| format!("{}: {e}", url.host))?;
                let mut tls = self
                    .strict()
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS: {e}"))?;
                exchange(&mut tls, &bytes).await?
            } else {
                let mut tcp = tcp;
                exchange(&mut tcp, &bytes).await?
            };
            parse_http(&raw)
        };
        tokio::time::timeout(self.step_timeout, work)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {:?}", self.step_timeout)))
    }
}

async fn exchange<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
    request: &[u8],
) -> Result<Vec<u8>, String> {
    stream
        .write_all(request)
        .await
        .map_err(|e| format!("sending: {e}"))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                if raw.len() > MAX_HTTP_BODY {
                    return Err("the answer is too large".to_string());
                }
            }
            // A server closing TLS without close_notify after a complete answer.
            Err(_) if !raw.is_empty() => break,
            Err(e) => return Err(format!("reading: {e}")),
        }
    }
    Ok(raw)
}

fn parse_http(raw: &[u8]) -> Result<HttpResponse, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the answer is not HTTP")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or("the answer is not HTTP")?;
    let chunked = lines.any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    let mut body = raw[end + 4..].to_vec();
    if chunked {
        body = dechunk(&body);
    }
    Ok(HttpResponse {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or(0);
        data = &data[line_end + 2..];
        if size == 0 || size > data.len() {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_print() {
        let u = Url::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            (u.https, u.host.as_str(), u.port, u.path.as_str()),
            (false, "127.0.0.1", 8080, "/")
        );
        assert_eq!(
            u.with(true, "/x?y=1").to_string(),
            "https://127.0.0.1:8080/x?y=1"
        );
        let u = Url::parse("https://autoconfig.example.test/mail/config-v1.1.xml").unwrap();
        assert_eq!(u.port, 443);
        assert_eq!(
            u.to_string(),
            "https://autoconfig.example.test/mail/config-v1.1.xml"
        );
        assert!(Url::parse("ftp://x").is_err());
    }

    #[test]
    fn chunked_bodies_are_joined() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let r = parse_http(raw).unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "abcde"));
    }
}
