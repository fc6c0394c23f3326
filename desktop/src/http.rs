//! The helper's HTTP: the discovery documents (autoconfig, Autodiscover) and the
//! preference endpoint, over reqwest. It sees the network the check sees (the check's
//! resolver and trust, see [`crate::net`]), follows redirects as Thunderbird does
//! (with Firefox's network stack: at most [`MAX_REDIRECTS`], a POST turned into a GET
//! by 301, 302 and 303) and says which it followed, so that the report shows where a
//! document really came from. Each exchange, redirects included, takes at most the
//! step timeout.

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_resolver::TokioResolver;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use reqwest::redirect::Policy;
use tokio_rustls::rustls::ClientConfig;

pub use reqwest::Url;

use crate::net::{Net, lookup};

/// The most redirects one request follows (Firefox's `network.http.redirection-limit`).
pub const MAX_REDIRECTS: usize = 20;
/// Largest discovery document read.
const MAX_HTTP_BODY: usize = 256 * 1024;

/// Whether a request follows redirects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirects {
    /// As a mail client fetching its configuration does.
    Follow,
    /// For a request carrying the user's password: a redirect is an answer to show,
    /// not a place to send the password to.
    Refuse,
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
    /// The redirects followed to get it, each as `HTTP 301 -> <url>`.
    pub redirects: Vec<String>,
}

impl HttpResponse {
    /// What happened, for a report: the redirects followed, then `last`.
    pub fn story(&self, last: &str) -> String {
        let mut parts = self.redirects.clone();
        parts.push(last.to_string());
        parts.join("; ")
    }
}

/// The client of one check: its resolver, its trust (`tls`, the strict verification
/// every login also uses), no proxy (as the probes use none), and redirects left to
/// [`Net::http`] so that each is recorded.
pub fn client(resolver: TokioResolver, tls: ClientConfig) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .user_agent(concat!("mailsite-helper/", env!("CARGO_PKG_VERSION")))
        .tls_backend_preconfigured(tls)
        .dns_resolver(Arc::new(CheckResolver(resolver)))
        .redirect(Policy::none())
        .no_proxy()
        .build()
        .map_err(|e| chain(&e))
}

/// Host names as the check's resolver answers them (the site's own DNS under test, or
/// the system's), not as the operating system would.
struct CheckResolver(TokioResolver);

impl reqwest::dns::Resolve for CheckResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolver = self.0.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let ips = lookup(&resolver, &host).await?;
            // hyper puts the URL's port in.
            let addrs: reqwest::dns::Addrs =
                Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

impl Net {
    /// One GET, or a POST of `post` (content type and body), with `headers`.
    pub async fn http(
        &self,
        url: &Url,
        post: Option<(&str, &[u8])>,
        headers: &[(&str, String)],
        redirects: Redirects,
    ) -> Result<HttpResponse, String> {
        let work = async {
            let mut url = url.clone();
            let mut post = post;
            let mut headers = headers;
            let mut followed = Vec::new();
            loop {
                let mut request = match post {
                    Some((content_type, body)) => self
                        .http
                        .post(url.clone())
                        .header(CONTENT_TYPE, content_type)
                        .body(body.to_vec()),
                    None => self.http.get(url.clone()),
                };
                for (name, value) in headers {
                    request = request.header(*name, value);
                }
                let response = request.send().await.map_err(|e| chain(&e))?;
                let status = response.status();
                let location = response.headers().get(LOCATION);
                if redirects == Redirects::Follow
                    && status.is_redirection()
                    && let Some(location) = location
                {
                    if followed.len() == MAX_REDIRECTS {
                        return Err(format!("more than {MAX_REDIRECTS} redirects"));
                    }
                    let next = location
                        .to_str()
                        .ok()
                        .and_then(|l| url.join(l).ok())
                        .ok_or_else(|| {
                            format!("HTTP {}: a redirect to {location:?}", status.as_u16())
                        })?;
                    if matches!(status.as_u16(), 301..=303) {
                        post = None;
                    }
                    if next.origin() != url.origin() {
                        headers = &[];
                    }
                    followed.push(format!("HTTP {} -> {next}", status.as_u16()));
                    url = next;
                    continue;
                }
                return Ok(HttpResponse {
                    status: status.as_u16(),
                    body: read_body(response).await?,
                    redirects: followed,
                });
            }
        };
        tokio::time::timeout(self.step_timeout, work)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {:?}", self.step_timeout)))
    }
}

/// The body as text, at most [`MAX_HTTP_BODY`] bytes of it.
async fn read_body(mut response: reqwest::Response) -> Result<String, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| chain(&e))? {
        if body.len() + chunk.len() > MAX_HTTP_BODY {
            return Err("the answer is too large".to_string());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// An error with its causes (reqwest's own message names the URL, which the report
/// already shows; the causes say what went wrong).
fn chain(error: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        parts.push(cause.to_string());
        source = cause.source();
    }
    let technical = if parts.is_empty() {
        error.to_string()
    } else {
        parts.join(": ")
    };
    crate::net::in_plain_words(&technical)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::net::SiteOverride;

    /// A server answering each path with a canned response; it keeps the request
    /// lines it saw. With `tls`, it speaks HTTPS.
    async fn canned(
        answers: &'static [(&'static str, &'static str)],
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> (u16, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let log = log.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                serve(stream, answers, log).await;
                            }
                        }
                        None => serve(tcp, answers, log).await,
                    }
                });
            }
        });
        (port, seen)
    }

    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
        mut stream: S,
        answers: &[(&str, &str)],
        seen: Arc<Mutex<Vec<String>>>,
    ) {
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        let head = String::from_utf8_lossy(&request).into_owned();
        let line = head.lines().next().unwrap_or("").to_string();
        let path = line.split(' ').nth(1).unwrap_or("").to_string();
        seen.lock().unwrap().push(line);
        let answer = answers.iter().find(|(p, _)| *p == path).map_or(
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
            |(_, a)| a,
        );
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
    }

    fn net(ca: Option<std::path::PathBuf>, timeout: Duration) -> Net {
        let site = SiteOverride {
            // No name is looked up: the URLs name addresses.
            dns: Some("127.0.0.1:9".parse().unwrap()),
            ca,
            ..SiteOverride::default()
        };
        Net::new(&site, timeout).unwrap()
    }

    const REDIRECTING: &[(&str, &str)] = &[
        (
            "/start",
            "HTTP/1.1 302 Found\r\nLocation: /middle?x=1\r\nContent-Length: 0\r\n\r\n",
        ),
        (
            "/middle?x=1",
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: /final\r\nContent-Length: 0\r\n\r\n",
        ),
        (
            "/final",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        ),
        (
            "/loop",
            "HTTP/1.1 301 Moved Permanently\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n",
        ),
    ];

    #[tokio::test]
    async fn redirects_are_followed_as_a_browser_does_and_recorded() {
        let (port, seen) = canned(REDIRECTING, None).await;
        let net = net(None, Duration::from_secs(5));
        let url = Url::parse(&format!("http://127.0.0.1:{port}/start")).unwrap();
        let answer = net
            .http(&url, Some(("text/xml", b"<x/>")), &[], Redirects::Follow)
            .await
            .unwrap();
        assert_eq!((answer.status, answer.body.as_str()), (200, "abcde"));
        assert_eq!(
            answer.redirects,
            [
                format!("HTTP 302 -> http://127.0.0.1:{port}/middle?x=1"),
                format!("HTTP 307 -> http://127.0.0.1:{port}/final"),
            ]
        );
        assert_eq!(
            answer.story("200 OK"),
            format!("{}; {}; 200 OK", answer.redirects[0], answer.redirects[1])
        );
        // 302 turns the POST into a GET; 307 keeps the method.
        assert_eq!(
            *seen.lock().unwrap(),
            [
                "POST /start HTTP/1.1",
                "GET /middle?x=1 HTTP/1.1",
                "GET /final HTTP/1.1"
            ]
        );
    }

    #[tokio::test]
    async fn redirects_are_bounded_or_refused() {
        let (port, _) = canned(REDIRECTING, None).await;
        let net = net(None, Duration::from_secs(5));
        let url = Url::parse(&format!("http://127.0.0.1:{port}/loop")).unwrap();
        let error = net
            .http(&url, None, &[], Redirects::Follow)
            .await
            .unwrap_err();
        assert_eq!(error, format!("more than {MAX_REDIRECTS} redirects"));
        let url = Url::parse(&format!("http://127.0.0.1:{port}/start")).unwrap();
        let answer = net.http(&url, None, &[], Redirects::Refuse).await.unwrap();
        assert_eq!(answer.status, 302);
        assert!(answer.redirects.is_empty());
    }

    #[tokio::test]
    async fn a_silent_server_times_out_within_the_step_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let net = net(None, Duration::from_millis(300));
        let url = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        let error = net
            .http(&url, None, &[], Redirects::Follow)
            .await
            .unwrap_err();
        assert!(error.starts_with("no answer within"), "{error}");
        drop(listener);
    }

    #[tokio::test]
    async fn https_trusts_the_site_ca_the_user_names_and_nothing_else() {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        let cert = leaf.signed_by(&key, &issuer).unwrap();
        let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(
            tokio_rustls::rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let (port, _) = canned(REDIRECTING, Some(acceptor)).await;
        let url = Url::parse(&format!("https://127.0.0.1:{port}/final")).unwrap();

        let ca_file = std::env::temp_dir().join(format!("helper-ca-{}.pem", rand::random::<u64>()));
        std::fs::write(&ca_file, ca_cert.pem()).unwrap();
        let trusting = net(Some(ca_file.clone()), Duration::from_secs(5));
        let answer = trusting.http(&url, None, &[], Redirects::Follow).await;
        std::fs::remove_file(ca_file).ok();
        assert_eq!(answer.unwrap().body, "abcde");

        let public_roots_only = net(None, Duration::from_secs(5));
        let error = public_roots_only
            .http(&url, None, &[], Redirects::Follow)
            .await
            .unwrap_err();
        assert!(error.contains("UnknownIssuer"), "{error}");
    }
}
