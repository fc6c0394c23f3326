//! Discovery: the settings for an address, found the way mail clients find them,
//! each request recorded with its URL or query, status and time.
//!
//! In order, stopping at the first answer (as Thunderbird does): autoconfig
//! (`https://autoconfig.<domain>/mail/config-v1.1.xml?emailaddress=`, then
//! `https://<domain>/.well-known/autoconfig/...`, then both over plain HTTP), Outlook
//! Autodiscover POX, RFC 6186/8314 SRV records, and finally the site convention
//! `mail<letter>.<domain>` / `outbox.<domain>`.

use std::time::Instant;

use hickory_resolver::proto::rr::{RData, RecordType};
use mailsite_shared::autoconfig::{
    ClientConfig, LOCALPART_PLACEHOLDER, Protocol, Security, ServerSetting, autodiscover,
    thunderbird,
};
use mailsite_shared::report::{Attempt, Discovery, Setting};
use mailsite_shared::route::{Address, alias_host, bucket_of, outbox_host};

use crate::http::{Redirects, Url};
use crate::net::{Net, SiteOverride};

/// A way of finding settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Autoconfig,
    Autodiscover,
    Srv,
    Convention,
}

impl Method {
    pub const ALL: [Method; 4] = [
        Method::Autoconfig,
        Method::Autodiscover,
        Method::Srv,
        Method::Convention,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::Autoconfig => "autoconfig",
            Method::Autodiscover => "autodiscover",
            Method::Srv => "srv",
            Method::Convention => "convention",
        }
    }

    pub fn parse(s: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.name() == s.trim())
    }
}

/// What discovery found: the record for the report and the settings to test.
pub struct Found {
    pub discovery: Discovery,
    pub config: Option<ClientConfig>,
}

/// Runs the methods in order until one yields settings.
pub async fn discover(
    net: &Net,
    site: &SiteOverride,
    address: &Address,
    methods: &[Method],
) -> Found {
    let email = address.to_string();
    let mut attempts = Vec::new();
    for method in methods {
        let config = match method {
            Method::Autoconfig => autoconfig(net, site, address, &mut attempts).await,
            Method::Autodiscover => autodiscover_pox(net, site, address, &mut attempts).await,
            Method::Srv => srv(net, address, &mut attempts).await,
            Method::Convention => convention(net, address, &mut attempts).await,
        };
        if let Some(mut config) = config {
            fill_placeholders(&mut config, address);
            config.email = Some(email);
            return Found {
                discovery: Discovery {
                    method: Some(method.name().to_string()),
                    attempts,
                    settings: config
                        .incoming
                        .iter()
                        .chain(&config.outgoing)
                        .map(setting)
                        .collect(),
                },
                config: Some(config),
            };
        }
    }
    Found {
        discovery: Discovery {
            method: None,
            attempts,
            settings: Vec::new(),
        },
        config: None,
    }
}

/// A setting as the report shows it.
pub fn setting(s: &ServerSetting) -> Setting {
    Setting {
        protocol: s.protocol.thunderbird_name().to_string(),
        host: s.hostname.clone(),
        port: s.port,
        security: s.security.thunderbird_name().to_string(),
        username: s.username.clone(),
    }
}

fn fill_placeholders(config: &mut ClientConfig, address: &Address) {
    let email = address.to_string();
    for s in config.incoming.iter_mut().chain(config.outgoing.iter_mut()) {
        s.username = s
            .username
            .replace(LOCALPART_PLACEHOLDER, &address.local)
            .replace("%EMAILADDRESS%", &email)
            .replace("%EMAILDOMAIN%", &address.domain);
        if s.username.is_empty() {
            s.username = address.local.clone();
        }
        s.hostname = s.hostname.replace("%EMAILDOMAIN%", &address.domain);
    }
}

fn elapsed(start: Instant) -> u64 {
    start.elapsed().as_millis() as u64
}

/// The override's origin (`--site-url`), which discovery asks instead of the names
/// clients use: `None` without an override, `Some(None)` (nothing to ask) when the
/// override is not an http:// or https:// URL.
fn site_origin(site: &SiteOverride) -> Option<Option<Url>> {
    site.site_url.as_deref().map(|text| {
        Url::parse(text)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https"))
    })
}

/// `path_and_query` at `origin`'s host and port, over https or http: a site given as
/// `http://127.0.0.1:8080` is asked `https://127.0.0.1:8080/...` first, as a client
/// asks a domain over https first.
fn at(origin: &Url, https: bool, path_and_query: &str) -> Option<Url> {
    let port = origin.port_or_known_default();
    let mut url = origin.join(path_and_query).ok()?;
    url.set_scheme(if https { "https" } else { "http" }).ok()?;
    url.set_port(port).ok()?;
    Some(url)
}

/// `path_and_query` on the default port of `host`.
fn on_host(host: &str, https: bool, path_and_query: &str) -> Option<Url> {
    let scheme = if https { "https" } else { "http" };
    Url::parse(&format!("{scheme}://{host}{path_and_query}")).ok()
}

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

async fn autoconfig(
    net: &Net,
    site: &SiteOverride,
    address: &Address,
    attempts: &mut Vec<Attempt>,
) -> Option<ClientConfig> {
    let query = format!("?emailaddress={}", encode(&address.to_string()));
    let d = &address.domain;
    let main = format!("/mail/config-v1.1.xml{query}");
    let well_known = format!("/.well-known/autoconfig/mail/config-v1.1.xml{query}");
    let mut urls = Vec::new();
    for https in [true, false] {
        match site_origin(site) {
            Some(Some(origin)) => {
                urls.push(at(&origin, https, &main));
                urls.push(at(&origin, https, &well_known));
            }
            // An override that is not a URL: nothing to ask.
            Some(None) => {}
            None => {
                urls.push(on_host(&format!("autoconfig.{d}"), https, &main));
                urls.push(on_host(d, https, &well_known));
            }
        }
    }
    for url in urls.into_iter().flatten() {
        let start = Instant::now();
        let result = net.http(&url, None, &[], Redirects::Follow).await;
        let (status, config) = match result {
            Ok(r) if r.status == 200 => match thunderbird::parse(&r.body) {
                Ok(config) => (r.story("200 OK, a valid clientConfig"), Some(config)),
                Err(e) => (r.story(&format!("200 OK, but not usable: {e}")), None),
            },
            Ok(r) => (
                r.story(&format!("HTTP {}: {}", r.status, first_line(&r.body))),
                None,
            ),
            Err(e) => (e, None),
        };
        tracing::debug!(%url, %status, "autoconfig");
        attempts.push(Attempt {
            method: "autoconfig".to_string(),
            target: url.to_string(),
            status,
            ok: config.is_some(),
            millis: elapsed(start),
        });
        if config.is_some() {
            return config;
        }
    }
    None
}

fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(160)
        .collect()
}

async fn autodiscover_pox(
    net: &Net,
    site: &SiteOverride,
    address: &Address,
    attempts: &mut Vec<Attempt>,
) -> Option<ClientConfig> {
    let d = &address.domain;
    let path = "/autodiscover/autodiscover.xml";
    let urls = match site_origin(site) {
        Some(origin) => origin
            .iter()
            .flat_map(|o| [at(o, true, path), at(o, false, path)])
            .collect(),
        None => vec![
            on_host(d, true, path),
            on_host(&format!("autodiscover.{d}"), true, path),
            on_host(&format!("autodiscover.{d}"), false, path),
        ],
    };
    let body = autodiscover::render_request(&address.to_string());
    for url in urls.into_iter().flatten() {
        let start = Instant::now();
        let post = Some(("text/xml; charset=utf-8", body.as_bytes()));
        let result = net.http(&url, post, &[], Redirects::Follow).await;
        let (status, config) = match result {
            Ok(r) if r.status == 200 => match autodiscover::parse_response(&r.body) {
                Ok(c) if !c.incoming.is_empty() && !c.outgoing.is_empty() => {
                    (r.story("200 OK, an Autodiscover answer"), Some(c))
                }
                Ok(_) => (r.story("200 OK, but no IMAP/POP3 and SMTP servers"), None),
                Err(e) => (r.story(&format!("200 OK, but not usable: {e}")), None),
            },
            Ok(r) => (
                r.story(&format!("HTTP {}: {}", r.status, first_line(&r.body))),
                None,
            ),
            Err(e) => (e, None),
        };
        attempts.push(Attempt {
            method: "autodiscover".to_string(),
            target: format!("POST {url}"),
            status,
            ok: config.is_some(),
            millis: elapsed(start),
        });
        if config.is_some() {
            return config;
        }
    }
    None
}

/// The SRV services of RFC 6186 and 8314, best first within each protocol.
const SERVICES: [(&str, Protocol, Security); 6] = [
    ("_imaps._tcp", Protocol::Imap, Security::Tls),
    ("_imap._tcp", Protocol::Imap, Security::StartTls),
    ("_pop3s._tcp", Protocol::Pop3, Security::Tls),
    ("_pop3._tcp", Protocol::Pop3, Security::StartTls),
    ("_submissions._tcp", Protocol::Smtp, Security::Tls),
    ("_submission._tcp", Protocol::Smtp, Security::StartTls),
];

/// Asks every SRV service; returns what answered as (service index, target, port).
async fn srv_records(
    net: &Net,
    domain: &str,
    attempts: &mut Vec<Attempt>,
    method: &str,
) -> Vec<(usize, String, u16)> {
    let mut found = Vec::new();
    for (i, (service, _, _)) in SERVICES.iter().enumerate() {
        let name = format!("{service}.{domain}.");
        let start = Instant::now();
        let (status, mut records) = match net.resolver.lookup(name.as_str(), RecordType::SRV).await
        {
            Ok(lookup) => {
                let mut records: Vec<(u16, u16, String, u16)> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::SRV(srv) => Some((
                            srv.priority,
                            u16::MAX - srv.weight,
                            srv.target.to_ascii().trim_end_matches('.').to_string(),
                            srv.port,
                        )),
                        _ => None,
                    })
                    .collect();
                records.sort();
                let text: Vec<String> = records
                    .iter()
                    .map(|(p, w, t, port)| format!("{p} {} {port} {t}", u16::MAX - w))
                    .collect();
                (format!("SRV {}", text.join(", ")), records)
            }
            Err(e) if e.is_nx_domain() => ("no such name".to_string(), Vec::new()),
            Err(e) if e.is_no_records_found() => ("no SRV records".to_string(), Vec::new()),
            Err(e) => (format!("lookup failed: {e}"), Vec::new()),
        };
        // RFC 6186: a target of "." means the service is not offered.
        records.retain(|(_, _, t, _)| !t.is_empty());
        attempts.push(Attempt {
            method: method.to_string(),
            target: format!("{name} SRV"),
            status,
            ok: !records.is_empty(),
            millis: elapsed(start),
        });
        if let Some((_, _, target, port)) = records.into_iter().next() {
            found.push((i, target, port));
        }
    }
    found
}

async fn srv(net: &Net, address: &Address, attempts: &mut Vec<Attempt>) -> Option<ClientConfig> {
    let found = srv_records(net, &address.domain, attempts, "srv").await;
    let mut config = empty_config(address);
    for (i, target, port) in found {
        let (_, protocol, security) = SERVICES[i];
        push(
            &mut config,
            protocol,
            security,
            &target,
            port,
            &address.local,
        );
    }
    complete(config)
}

/// The site convention: the user's letter names their mailbox server, `outbox` the
/// sorters. Ports come from the SRV records when the site publishes them, otherwise
/// the IANA ones (993, 143, 995, 110, 465, 587).
async fn convention(
    net: &Net,
    address: &Address,
    attempts: &mut Vec<Attempt>,
) -> Option<ClientConfig> {
    let d = &address.domain;
    let alias = alias_host(bucket_of(&address.local), d);
    let outbox = outbox_host(d);
    for host in [&alias, &outbox] {
        let start = Instant::now();
        let (status, ok) = match net.addresses(host).await {
            Ok(ips) => (
                format!(
                    "A/AAAA {}",
                    ips.iter()
                        .map(|i| i.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                true,
            ),
            Err(e) => (e, false),
        };
        attempts.push(Attempt {
            method: "convention".to_string(),
            target: format!("{host} A/AAAA"),
            status,
            ok,
            millis: elapsed(start),
        });
        if !ok {
            return None;
        }
    }
    let published = srv_records(net, d, attempts, "convention").await;
    let iana = [993, 143, 995, 110, 465, 587];
    let mut config = empty_config(address);
    for (i, (_, protocol, security)) in SERVICES.iter().enumerate() {
        let port = published
            .iter()
            .find(|(j, _, _)| *j == i)
            .map_or(iana[i], |(_, _, port)| *port);
        let host = if *protocol == Protocol::Smtp {
            &outbox
        } else {
            &alias
        };
        push(
            &mut config,
            *protocol,
            *security,
            host,
            port,
            &address.local,
        );
    }
    complete(config)
}

fn empty_config(address: &Address) -> ClientConfig {
    ClientConfig {
        domain: address.domain.clone(),
        email: None,
        display_name: String::new(),
        short_name: String::new(),
        incoming: Vec::new(),
        outgoing: Vec::new(),
        sieve: None,
    }
}

fn push(
    config: &mut ClientConfig,
    protocol: Protocol,
    security: Security,
    host: &str,
    port: u16,
    username: &str,
) {
    let s = ServerSetting {
        protocol,
        hostname: host.to_string(),
        port,
        security,
        username: username.to_string(),
    };
    if protocol == Protocol::Smtp {
        config.outgoing.push(s);
    } else {
        config.incoming.push(s);
    }
}

fn complete(config: ClientConfig) -> Option<ClientConfig> {
    (!config.incoming.is_empty() && !config.outgoing.is_empty()).then_some(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_urls_keep_the_site_port_and_switch_the_scheme() {
        let site = |url: &str| SiteOverride {
            site_url: Some(url.to_string()),
            ..SiteOverride::default()
        };
        let origin = site_origin(&site("http://127.0.0.1:8080"))
            .unwrap()
            .unwrap();
        assert_eq!(
            at(&origin, true, "/x?y=1").unwrap().as_str(),
            "https://127.0.0.1:8080/x?y=1"
        );
        assert_eq!(
            at(&origin, false, "/x").unwrap().as_str(),
            "http://127.0.0.1:8080/x"
        );
        let origin = site_origin(&site("http://autoconfig.example.test"))
            .unwrap()
            .unwrap();
        assert_eq!(
            at(&origin, true, "/x").unwrap().as_str(),
            "https://autoconfig.example.test:80/x"
        );
        assert_eq!(
            on_host("autoconfig.example.test", true, "/mail/config-v1.1.xml")
                .unwrap()
                .as_str(),
            "https://autoconfig.example.test/mail/config-v1.1.xml"
        );
        assert_eq!(site_origin(&site("ftp://x")), Some(None));
        assert_eq!(site_origin(&SiteOverride::default()), None);
    }
}
