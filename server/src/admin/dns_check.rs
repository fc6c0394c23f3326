//! `mailsite dns check`: what the site's DNS server answers, held against what the
//! servers present. For each domain: the SPF record lists every sorter; each DKIM key
//! that signs has its record published and its private half on this node, the two
//! halves matching; the MTA-STS id is that of the policy the HTTP service serves; and
//! each TLSA record names the key of the certificate the sorter presents (SMTP after
//! STARTTLS, submission over TLS); and with DNSSEC on, the DNSKEY the zone serves is
//! the zone signing key the site database holds (the key the DS at the parent names).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::{RData, RecordType};
use mailsite_shared::resolver::{self, Patience};
use mailsite_shared::{DkimKey, SiteConfig, mta_sts};
use sha2::Digest;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::{Admin, Result, refused};

/// How long one lookup or connection may take.
const PATIENCE: Duration = Duration::from_secs(5);

/// One thing checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub ok: bool,
    /// What was checked, e.g. `TLSA _25._tcp.sorter1.example.test`.
    pub what: String,
    /// What was found.
    pub detail: String,
}

fn finding(ok: bool, what: impl Into<String>, detail: impl Into<String>) -> Finding {
    Finding {
        ok,
        what: what.into(),
        detail: detail.into(),
    }
}

/// Where this node reaches a server listening on `addr` (an unspecified address is
/// reached on loopback).
fn reachable(addr: SocketAddr, preferred: &[IpAddr]) -> SocketAddr {
    match addr.ip().is_unspecified() {
        true => SocketAddr::new(
            preferred
                .first()
                .copied()
                .unwrap_or(IpAddr::from([127, 0, 0, 1])),
            addr.port(),
        ),
        false => addr,
    }
}

impl Admin {
    /// Checks every domain of the site (see the module's description).
    pub async fn dns_check(&self) -> Result<Vec<Finding>> {
        let config = self.config.clone();
        let map = self.site_map().await?;
        let dns = reachable(config.dns_listen, &config.dns_addresses);
        let patience = Patience {
            timeout: PATIENCE,
            attempts: 1,
            cache: false,
        };
        let lookup = resolver::build(Some(dns), patience)
            .map_err(|e| refused(format!("cannot ask the site's DNS server at {dns}: {e}")))?;
        let mut out = Vec::new();
        let domains: Vec<String> = config.domains().map(str::to_string).collect();
        let keys = match config.dnssec {
            true => Some(
                crate::dns::dnssec::Keys::load(&self.directory, &domains, true)
                    .await
                    .map_err(|e| refused(format!("{e:#}")))?,
            ),
            false => None,
        };
        for domain in config.domains() {
            if let Some(keys) = &keys {
                out.push(dnskey(&lookup, &config, keys, domain).await);
            }
            out.push(spf(&lookup, &config, domain).await);
            for key in map
                .dkim_signing(domain, crate::dkim::now())
                .into_iter()
                .cloned()
                .collect::<Vec<_>>()
            {
                out.push(dkim(&lookup, &config, &key).await);
            }
            out.push(mta_sts_id(&lookup, &config, domain).await);
            out.extend(tlsa(&lookup, &config, domain).await);
        }
        Ok(out)
    }
}

/// The text of the TXT records at `name`, each joined from its strings.
async fn txt(lookup: &TokioResolver, name: &str) -> std::result::Result<Vec<String>, String> {
    let found = lookup
        .lookup(format!("{name}."), RecordType::TXT)
        .await
        .map_err(|e| e.to_string())?;
    Ok(found
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(t) => Some(
                t.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<String>(),
            ),
            _ => None,
        })
        .collect())
}

async fn dnskey(
    lookup: &TokioResolver,
    config: &SiteConfig,
    keys: &crate::dns::dnssec::Keys,
    domain: &str,
) -> Finding {
    let what = format!("DNSKEY {domain}");
    let apex = format!("{domain}.");
    let Some(key) = keys.iter().find(|k| k.apex().to_ascii() == apex) else {
        return finding(false, what, "no zone signing key in the site database");
    };
    let stored = key.dnskey_record(config.ttl).data;
    let served = match lookup.lookup(apex, RecordType::DNSKEY).await {
        Ok(found) => found
            .answers()
            .iter()
            .map(|r| r.data.clone())
            .collect::<Vec<_>>(),
        Err(e) => return finding(false, what, format!("not served: {e}")),
    };
    match served.contains(&stored) {
        true => finding(
            true,
            what,
            format!(
                "the zone serves the stored key (tag {}): the DS from `mailsite dns ds` matches",
                key.tag()
            ),
        ),
        false => finding(
            false,
            what,
            format!(
                "the zone does not serve the stored key (tag {}): restart the dns role, then check the DS at the parent",
                key.tag()
            ),
        ),
    }
}

async fn spf(lookup: &TokioResolver, config: &SiteConfig, domain: &str) -> Finding {
    let what = format!("SPF {domain}");
    let records = match txt(lookup, domain).await {
        Ok(records) => records,
        Err(e) => return finding(false, what, format!("no answer: {e}")),
    };
    let Some(spf) = records.iter().find(|t| t.starts_with("v=spf1")) else {
        return finding(false, what, "no v=spf1 record");
    };
    let missing: Vec<String> = config
        .sorters
        .iter()
        .flat_map(|s| &s.addresses)
        .filter(|ip| {
            let mechanism = match ip {
                IpAddr::V4(v4) => format!("ip4:{v4}"),
                IpAddr::V6(v6) => format!("ip6:{v6}"),
            };
            !spf.split_whitespace().any(|m| m == mechanism)
        })
        .map(|ip| ip.to_string())
        .collect();
    match missing.is_empty() && spf.ends_with("-all") {
        true => finding(true, what, format!("\"{spf}\" names every sorter")),
        false => finding(
            false,
            what,
            format!("\"{spf}\" lacks {} (or -all)", missing.join(", ")),
        ),
    }
}

async fn dkim(lookup: &TokioResolver, config: &SiteConfig, key: &DkimKey) -> Finding {
    let what = format!("DKIM {}", key.record_name());
    let published = match txt(lookup, &key.record_name()).await {
        Ok(records) => records,
        Err(e) => return finding(false, what, format!("not published: {e}")),
    };
    if !published.contains(&key.record()) {
        return finding(false, what, "the zone's record is not the key's");
    }
    match crate::dkim::private_matches(config, key) {
        Ok(()) => finding(
            true,
            what,
            "published, and its private half on this node matches",
        ),
        Err(why) => finding(false, what, why),
    }
}

async fn mta_sts_id(lookup: &TokioResolver, config: &SiteConfig, domain: &str) -> Finding {
    let what = format!("MTA-STS {domain}");
    let records = match txt(lookup, &format!("{}.{domain}", mta_sts::RECORD_LABEL)).await {
        Ok(records) => records,
        Err(e) => return finding(false, what, format!("no _mta-sts record: {e}")),
    };
    let http = reachable(config.http_listen, &config.http_addresses);
    let served = match fetch_policy(http, domain).await {
        Ok(policy) => policy,
        Err(e) => {
            return finding(
                false,
                what,
                format!("cannot fetch the policy from {http}: {e}"),
            );
        }
    };
    let expected = mta_sts::record(&served);
    match records.contains(&expected) {
        true => finding(true, what, format!("\"{expected}\" is the served policy's")),
        false => finding(
            false,
            what,
            format!(
                "the zone says {records:?}, the served policy is \"{expected}\": senders keep a stale policy"
            ),
        ),
    }
}

/// The policy the HTTP service serves for `domain`.
async fn fetch_policy(http: SocketAddr, domain: &str) -> std::io::Result<String> {
    let mut stream = tokio::time::timeout(PATIENCE, TcpStream::connect(http)).await??;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}.{domain}\r\nConnection: close\r\n\r\n",
        mta_sts::PATH,
        mta_sts::HOST_LABEL
    );
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, stream.take(1 << 16).read_to_end(&mut answer)).await??;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("not an HTTP answer"))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(std::io::Error::other(
            head.lines().next().unwrap_or_default().to_string(),
        ));
    }
    Ok(body.to_string())
}

async fn tlsa(lookup: &TokioResolver, config: &SiteConfig, domain: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let p = config.ports;
    let mut targets: Vec<(String, SocketAddr, bool)> = Vec::new();
    for sorter in &config.sorters {
        if let Some(ip) = sorter.addresses.first() {
            targets.push((
                format!("_{}._tcp.{}.{domain}", p.smtp, sorter.name),
                SocketAddr::new(*ip, p.smtp),
                true,
            ));
        }
    }
    if let Some(ip) = config.sorters.first().and_then(|s| s.addresses.first()) {
        targets.push((
            format!("_{}._tcp.outbox.{domain}", p.submissions),
            SocketAddr::new(*ip, p.submissions),
            false,
        ));
    }
    for (name, addr, starttls) in targets {
        let what = format!("TLSA {name}");
        let records = match lookup.lookup(format!("{name}."), RecordType::TLSA).await {
            Ok(found) => found
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::TLSA(t) => Some(t.cert_data.clone()),
                    _ => None,
                })
                .collect::<Vec<_>>(),
            Err(e) => {
                out.push(finding(false, what, format!("not published: {e}")));
                continue;
            }
        };
        match presented_digest(addr, starttls).await {
            Ok(digest) if records.iter().any(|r| r[..] == digest[..]) => out.push(finding(
                true,
                what,
                format!("names the key of the certificate {addr} presents"),
            )),
            Ok(_) => out.push(finding(
                false,
                what,
                format!("{addr} presents another key: DANE senders will refuse it"),
            )),
            Err(e) => out.push(finding(
                false,
                what,
                format!("cannot get the certificate of {addr}: {e}"),
            )),
        }
    }
    out
}

/// The SHA-256 of the public key of the certificate a sorter presents: after EHLO and
/// STARTTLS, or at once on the submissions port.
async fn presented_digest(addr: SocketAddr, starttls: bool) -> anyhow::Result<[u8; 32]> {
    let stream = tokio::time::timeout(PATIENCE, TcpStream::connect(addr)).await??;
    let mut stream = BufReader::new(stream);
    if starttls {
        let mut line = String::new();
        let mut read_reply = async |stream: &mut BufReader<TcpStream>| -> anyhow::Result<()> {
            loop {
                line.clear();
                tokio::time::timeout(PATIENCE, stream.read_line(&mut line)).await??;
                if line.len() < 4 || line.as_bytes()[3] != b'-' {
                    anyhow::ensure!(line.starts_with('2'), "the server said {line:?}");
                    return Ok(());
                }
            }
        };
        read_reply(&mut stream).await?;
        stream.write_all(b"EHLO dns-check\r\n").await?;
        read_reply(&mut stream).await?;
        stream.write_all(b"STARTTLS\r\n").await?;
        read_reply(&mut stream).await?;
    }
    let relay = crate::sorter::relay::Relay::new(&Default::default())?;
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from("dns-check.invalid")?;
    let tls =
        tokio::time::timeout(PATIENCE, relay.tls().connect(name, stream.into_inner())).await??;
    let certificate = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| anyhow::anyhow!("no certificate"))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate.as_ref())
        .map_err(|e| anyhow::anyhow!("not a certificate: {e}"))?;
    Ok(sha2::Sha256::digest(parsed.public_key().raw).into())
}
