//! Other domains' MTA-STS policies (RFC 8461): the `_mta-sts.<domain>` TXT record
//! names the current policy's id; the policy itself is fetched from
//! `https://mta-sts.<domain>/.well-known/mta-sts.txt` (a certificate valid for that
//! name, no redirects, at most 64 KiB within 20 s) and kept in the site database until
//! its max_age runs out. It is fetched again when the id changes or it expires; while a
//! fetch fails, the kept policy still applies (RFC 8461 5.1).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::mta_sts::MtaSts as StsRecord;
use mail_auth::report::tlsrpt::ResultType;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;

use super::verify::{self, Check};
use super::{Failure, now, txt_bytes};
use crate::directory::Directory;
use crate::directory::tls_reports::CachedPolicy;

/// The largest policy file taken.
const MAX_POLICY: usize = 64 * 1024;
/// How long a fetch may take, connection included.
const FETCH_TIMEOUT: Duration = Duration::from_secs(20);
/// The longest max_age honoured (RFC 8461 3.2: one year).
const MAX_AGE_LIMIT: u64 = 31_557_600;

/// A policy's mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    Testing,
    None,
}

/// A parsed policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub mode: Mode,
    /// The MX host patterns (`mx.example.com`, `*.example.net`).
    pub mx: Vec<String>,
    pub max_age: u64,
    /// The policy file as served, for reports.
    pub text: String,
}

impl Policy {
    /// Reads a policy file (RFC 8461 3.2).
    pub fn parse(text: &str) -> Result<Policy, String> {
        let (mut version, mut mode, mut max_age, mut mx) = (None, None, None, Vec::new());
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() {
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                return Err(format!("not a key: value line: {line:?}"));
            };
            let value = value.trim();
            match key.trim() {
                "version" => version = Some(value.to_string()),
                "mode" => {
                    mode = Some(match value {
                        "enforce" => Mode::Enforce,
                        "testing" => Mode::Testing,
                        "none" => Mode::None,
                        other => return Err(format!("unknown mode {other:?}")),
                    })
                }
                "max_age" => {
                    let seconds: u64 = value
                        .parse()
                        .map_err(|_| format!("max_age {value:?} is not a number"))?;
                    max_age = Some(seconds.min(MAX_AGE_LIMIT));
                }
                "mx" => mx.push(value.trim_end_matches('.').to_ascii_lowercase()),
                _ => {}
            }
        }
        if version.as_deref() != Some("STSv1") {
            return Err("no \"version: STSv1\"".into());
        }
        let mode = mode.ok_or("no mode")?;
        let max_age = max_age.ok_or("no max_age")?;
        if mode != Mode::None && mx.is_empty() {
            return Err("no mx".into());
        }
        Ok(Policy {
            mode,
            mx,
            max_age,
            text: text.replace("\r\n", "\n"),
        })
    }

    /// Whether `host` is one of the policy's MX hosts (a `*.` pattern matches one
    /// label more, RFC 8461 4.1).
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.mx
            .iter()
            .any(|pattern| match pattern.strip_prefix("*.") {
                Some(parent) => host
                    .split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
                None => *pattern == host,
            })
    }
}

/// What was found for a domain: the policy that applies, if any, and a failure to
/// report (a fetch that failed, with or without a kept policy to fall back on).
#[derive(Debug, Default)]
pub struct Found {
    pub policy: Option<Policy>,
    pub failure: Option<Failure>,
}

/// Fetches and keeps policies.
pub struct MtaSts {
    directory: Option<Directory>,
    provider: Arc<tokio_rustls::rustls::crypto::CryptoProvider>,
    /// The roots policy servers' certificates are checked with.
    pkix: Option<Arc<tokio_rustls::rustls::client::WebPkiServerVerifier>>,
}

impl MtaSts {
    pub fn new(
        directory: Option<Directory>,
        provider: Arc<tokio_rustls::rustls::crypto::CryptoProvider>,
        pkix: Option<Arc<tokio_rustls::rustls::client::WebPkiServerVerifier>>,
    ) -> MtaSts {
        MtaSts {
            directory,
            provider,
            pkix,
        }
    }

    /// The policy of `domain`, looked up with `resolver`.
    pub async fn policy(&self, resolver: &TokioResolver, domain: &str) -> Found {
        let Some(directory) = &self.directory else {
            // Nowhere to keep a policy (a tool, not a sorter): MTA-STS is not used.
            return Found::default();
        };
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let now = now();
        let kept = match directory.mta_sts_policy(&domain).await {
            Ok(kept) => kept.filter(|k| k.expires_at > now),
            Err(error) => {
                tracing::error!(%error, %domain, "cannot read the kept MTA-STS policy");
                None
            }
        };
        let kept_policy = kept.as_ref().and_then(|k| Policy::parse(&k.policy).ok());
        let Some(id) = record_id(resolver, &domain).await else {
            // No (valid) record: a kept policy still applies until it expires.
            return Found {
                policy: kept_policy,
                failure: None,
            };
        };
        if let (Some(k), Some(p)) = (&kept, &kept_policy)
            && k.id == id
        {
            return Found {
                policy: Some(p.clone()),
                failure: None,
            };
        }
        let fetched = self.fetch(resolver, &domain).await.and_then(|text| {
            Policy::parse(&text).map_err(|e| {
                Failure::new(
                    ResultType::StsPolicyInvalid,
                    format!("the MTA-STS policy of {domain} is not valid: {e}"),
                )
            })
        });
        match fetched {
            Ok(policy) => {
                let cached = CachedPolicy {
                    id,
                    policy: policy.text.clone(),
                    fetched_at: now,
                    expires_at: now.saturating_add(policy.max_age as i64),
                };
                if let Err(error) = directory.put_mta_sts_policy(&domain, &cached).await {
                    tracing::error!(%error, %domain, "cannot keep an MTA-STS policy");
                }
                tracing::info!(%domain, mode = ?policy.mode, "MTA-STS policy fetched");
                Found {
                    policy: Some(policy),
                    failure: None,
                }
            }
            Err(failure) => {
                tracing::warn!(%domain, error = %failure.detail, kept = kept_policy.is_some(), "cannot fetch an MTA-STS policy");
                Found {
                    policy: kept_policy,
                    failure: Some(failure),
                }
            }
        }
    }

    /// The policy file's text.
    async fn fetch(&self, resolver: &TokioResolver, domain: &str) -> Result<String, Failure> {
        let host = format!("mta-sts.{domain}");
        let fetch_error = |e: String| {
            Failure::new(
                ResultType::StsPolicyFetchError,
                format!("https://{host}/: {e}"),
            )
        };
        let Some(pkix) = &self.pkix else {
            return Err(fetch_error("no certificate roots".into()));
        };
        let (connector, verdict) =
            verify::connector(&self.provider, Check::Pkix(pkix.clone()), true)
                .map_err(|e| fetch_error(e.to_string()))?;
        let work = async {
            let ips = resolver
                .lookup_ip(format!("{host}.").as_str())
                .await
                .map_err(|e| fetch_error(format!("no address: {e}")))?;
            let ip = ips
                .iter()
                .next()
                .ok_or_else(|| fetch_error("no address".into()))?;
            let tcp = tokio::net::TcpStream::connect(SocketAddr::new(ip, 443))
                .await
                .map_err(|e| fetch_error(format!("cannot connect to {ip}: {e}")))?;
            let name =
                ServerName::try_from(host.clone()).map_err(|e| fetch_error(e.to_string()))?;
            let tls =
                TlsConnector::connect(&connector, name, tcp)
                    .await
                    .map_err(|e| match verdict.lock().ok().and_then(|v| v.clone()) {
                        Some(Err(f)) => Failure::new(
                            ResultType::StsWebpkiInvalid,
                            format!("https://{host}/: {}", f.detail),
                        ),
                        _ => fetch_error(format!("TLS: {e}")),
                    })?;
            get(tls, &host).await.map_err(fetch_error)
        };
        tokio::time::timeout(FETCH_TIMEOUT, work)
            .await
            .unwrap_or_else(|_| Err(fetch_error("timed out".into())))
    }
}

/// GET /.well-known/mta-sts.txt over `tls`: a 200 with text/plain, read up to the limit.
async fn get(
    tls: tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    host: &str,
) -> Result<String, String> {
    let io = hyper_util::rt::TokioIo::new(tls);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(connection);
    let request = hyper::Request::get("/.well-known/mta-sts.txt")
        .header(hyper::header::HOST, host)
        .header(hyper::header::USER_AGENT, "mailsite")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        // No redirects (RFC 8461 3.3).
        if response.status() != hyper::StatusCode::OK {
            return Err(format!("answered {}", response.status()));
        }
        let text_plain = response
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("text/plain"));
        if !text_plain {
            return Err("the policy is not text/plain".into());
        }
        let body = Limited::new(response.into_body(), MAX_POLICY)
            .collect()
            .await
            .map_err(|e| format!("reading the policy: {e}"))?
            .to_bytes();
        String::from_utf8(body.to_vec()).map_err(|_| "the policy is not UTF-8".to_string())
    }
    .await;
    driver.abort();
    result
}

/// The id of `domain`'s `_mta-sts` TXT record; `None` without exactly one valid one.
async fn record_id(resolver: &TokioResolver, domain: &str) -> Option<String> {
    let name = format!("_mta-sts.{domain}.");
    let lookup = resolver.txt_lookup(name.as_str()).await.ok()?;
    let ids: Vec<String> = lookup
        .answers()
        .iter()
        .filter_map(|r| StsRecord::parse(&txt_bytes(r)?).ok().map(|r| r.id))
        .collect();
    match ids.as_slice() {
        [id] => Some(id.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_are_read_and_match_their_mx_hosts() {
        let p = Policy::parse(
            "version: STSv1\r\nmode: enforce\r\nmx: mx1.remote.example\r\nmx: *.backup.example\r\nmax_age: 86400\r\n",
        )
        .unwrap();
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.max_age, 86400);
        assert!(p.allows("mx1.remote.example."));
        assert!(p.allows("MX1.Remote.Example"));
        assert!(p.allows("a.backup.example"));
        assert!(!p.allows("a.b.backup.example"));
        assert!(!p.allows("backup.example"));
        assert!(!p.allows("mx2.remote.example"));
        let testing =
            Policy::parse("version: STSv1\nmode: testing\nmx: m\nmax_age: 99999999999\n").unwrap();
        assert_eq!(testing.mode, Mode::Testing);
        assert_eq!(testing.max_age, MAX_AGE_LIMIT);
        for bad in [
            "mode: enforce\nmx: m\nmax_age: 1\n",
            "version: STSv1\nmode: sometimes\nmx: m\nmax_age: 1\n",
            "version: STSv1\nmode: enforce\nmax_age: 1\n",
            "version: STSv1\nmode: enforce\nmx: m\n",
            "<html>not a policy</html>",
        ] {
            assert!(Policy::parse(bad).is_err(), "{bad}");
        }
        assert!(Policy::parse("version: STSv1\nmode: none\nmax_age: 1\n").is_ok());
    }
}
