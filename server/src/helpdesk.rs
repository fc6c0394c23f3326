//! Reading a desktop helper report against the site's truth: which server should serve
//! the user, its state, the addresses the names should have, the site's certificate,
//! and from those the likely cause of what failed ([`analyse`]).
//!
//! Two faces over it: `mailsite helpdesk explain REPORT.json` (on the site database
//! directly, like the other administrative commands) and the helpdesk console's report
//! page (`autoconfig::console`), which renders the same analysis next to the report.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use mailsite_shared::report::{Outcome, Report, SCHEMA_VERSION};
use mailsite_shared::route::Route;
use mailsite_shared::{SiteConfig, SiteMap};
use sha2::Digest;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;

use crate::directory::{Directory, User};
use crate::dns::Zone;

/// The SHA-256 fingerprint of the site's server certificate, as the helper prints it.
fn site_fingerprint(config: &SiteConfig) -> Option<String> {
    let file = match &config.tls {
        Some(files) => files.cert.clone(),
        None => crate::tls::tls_dir(config).join("cert.pem"),
    };
    let cert = CertificateDer::pem_file_iter(&file).ok()?.next()?.ok()?;
    Some(
        sha2::Sha256::digest(cert.as_ref())
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":"),
    )
}

/// Which server of the site owns an address.
fn server_at(config: &SiteConfig, ip: &str) -> Option<String> {
    let ip: IpAddr = ip.parse().ok()?;
    config
        .mailboxes
        .iter()
        .chain(&config.sorters)
        .find(|s| s.addresses.contains(&ip))
        .map(|s| s.name.clone())
}

/// One site name the helper looked up: what it saw, and what the site has now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameCheck {
    pub host: String,
    /// The addresses the user's computer had.
    pub seen: Vec<String>,
    /// The addresses the site's DNS gives.
    pub want: Vec<String>,
}

impl NameCheck {
    /// Whether the user's computer had the site's addresses.
    pub fn agrees(&self) -> bool {
        let mut seen = self.seen.clone();
        let mut want = self.want.clone();
        seen.sort();
        want.sort();
        seen == want
    }
}

/// What the site says about a report: where the user should be served, what the
/// user's computer saw of the site's names, and the likely causes of its failures.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// Where the site routes the report's address now.
    pub route: Route,
    /// The user as the directory has them (`None`: no such user).
    pub user: Option<User>,
    /// Every DNS answer in the report for one of the site's names.
    pub names: Vec<NameCheck>,
    /// The SHA-256 fingerprint of the site's certificate, as the helper prints it.
    pub fingerprint: Option<String>,
    /// The likely causes, most specific first; empty when everything matches.
    pub causes: Vec<String>,
}

/// Reads a helper report (JSON).
pub fn parse_report(text: &str) -> Result<Report, serde_json::Error> {
    serde_json::from_str(text)
}

/// A note when a report was written with another schema than this mailsite reads.
pub fn schema_note(report: &Report) -> Option<String> {
    (report.schema_version != SCHEMA_VERSION).then(|| {
        format!(
            "report schema {} (this mailsite reads {SCHEMA_VERSION}); some fields may be missing",
            report.schema_version
        )
    })
}

/// Compares a report with the site as it was when the report was made (the site as
/// `map` has it now, with the later changes the directory's history holds undone), and
/// says what changed since.
pub async fn analyse(
    report: &Report,
    now: &SiteMap,
    directory: &Directory,
) -> anyhow::Result<Analysis> {
    let made = chrono::DateTime::parse_from_rfc3339(&report.started_at)
        .ok()
        .map(|t| t.timestamp());
    let then = match made {
        Some(at) => directory
            .site_map_at(now.config.clone(), at)
            .await
            .unwrap_or_else(|_| now.clone()),
        None => now.clone(),
    };
    let map = &then;
    let config = &map.config;
    let route = map
        .route(&report.email)
        .map_err(|e| anyhow::anyhow!("{}: {e}", report.email))?;
    let user = directory.user(&route.username).await.ok();

    let mut causes = Vec::new();
    // What the site's DNS answered then, from the same zone the DNS role serves.
    let zone = Zone::build(map);
    let mut names = Vec::new();
    for step in report.steps.iter().filter(|s| s.kind == "dns") {
        let (Some(host), Some(seen)) = (step.detail("host"), step.detail("maps_to")) else {
            continue;
        };
        if let Some(want) = zone.addresses(host) {
            let seen: Vec<&str> = seen
                .split(" -> ")
                .nth(1)
                .unwrap_or("")
                .split(", ")
                .filter(|s| !s.is_empty())
                .collect();
            names.push(NameCheck {
                host: host.to_string(),
                seen: seen.iter().map(|s| s.to_string()).collect(),
                want: want.iter().map(|a| a.to_string()).collect(),
            });
            let missing: Vec<String> = want
                .iter()
                .map(|a| a.to_string())
                .filter(|a| !seen.contains(&a.as_str()))
                .collect();
            let extra: Vec<&&str> = seen
                .iter()
                .filter(|s| !want.iter().any(|a| a.to_string() == **s))
                .collect();
            if !extra.is_empty()
                || (!missing.is_empty() && !seen.is_empty() && extra.is_empty() && want.len() == 1)
            {
                causes.push(format!(
                    "DNS: the user's computer had {host} at {} but the site has it at {}: a stale cache or another DNS server (outside the site's TTL?)",
                    seen.join(", "),
                    want.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    let fingerprint = site_fingerprint(config);
    for step in report.steps.iter().filter(|s| s.outcome == Outcome::Fail) {
        let Some(problem) = &step.problem else {
            continue;
        };
        let host = step.detail("host").unwrap_or("?");
        match problem.code.as_str() {
            "auth_refused" => causes.push(match &user {
                None => format!("login refused: there is no user {} (a typo in the address?)", route.username),
                Some(u) if !u.enabled => format!("login refused: the account {} is disabled (`mailsite user enable {}`)", u.username, u.username),
                Some(u) => format!("login refused: {} exists and is enabled, so the password was wrong; reset it with `mailsite user passwd {}`", u.username, u.username),
            }),
            "source_blocked" => causes.push(format!(
                "login refused before any password check: the user's computer's address is blocked after too many failed logins{} (a device with an old password, say); lift it with `mailsite block remove {}` or the console's Blocks page, and have the user correct the password on the device that kept failing",
                step.detail("blocked_until").filter(|u| *u != "unknown").map(|u| format!(" (until {u})")).unwrap_or_default(),
                route.username
            )),
            "app_password_expired" => causes.push(format!(
                "login refused: the device used {}'s app password{}, which has expired (the password itself was right); make a new one with `mailsite user app-password add {} --label LABEL` or the console's user page, and remove the old one",
                route.username,
                step.detail("app_password").map(|l| format!(" \"{l}\"")).unwrap_or_default(),
                route.username
            )),
            "referral" => causes.push(format!(
                "the client uses {host}, which does not serve letter {} now; it is served by {} as {}{}: set the incoming server to {}",
                route.letter,
                route.server,
                route.alias,
                if route.redirected() { format!(" ({} is {})", route.home, route.home_state) } else { String::new() },
                route.alias
            )),
            "connection_refused" | "connection_timeout" => {
                let address = step.detail("address").unwrap_or("?");
                let port = step.detail("port").unwrap_or("?");
                match server_at(config, address) {
                    Some(name) => {
                        let state = map
                            .mailbox_state(&name)
                            .or_else(|| {
                                config.sorters.iter().position(|s| s.name == name).map(|i| map.sorter_states[i])
                            })
                            .map(|s| s.to_string())
                            .unwrap_or_default();
                        let listens = [config.ports.imap, config.ports.imaps, config.ports.pop3, config.ports.pop3s, config.ports.submission, config.ports.submissions]
                            .iter()
                            .any(|p| p.to_string() == port);
                        causes.push(if listens {
                            format!("{name} ({address}) refused port {port}, which it should serve; the site says it is {state}: check that its service is running")
                        } else {
                            format!("port {port} on {name} ({address}) is not a port the site serves: the client's port setting is wrong")
                        });
                    }
                    None => causes.push(format!("{address} port {port} refused: that address is no server of this site (wrong DNS or settings)")),
                }
            }
            code @ ("tls_wrong_name" | "tls_expired" | "tls_untrusted" | "tls_bad_certificate") => {
                let seen = step.detail("sha256").unwrap_or("");
                let ours = fingerprint.as_deref().unwrap_or("");
                causes.push(if !seen.is_empty() && !ours.is_empty() && seen != ours {
                    format!("TLS on {host}: the certificate the user saw ({seen}) is not the site's ({ours}): something between them answers (interception, or a server with the wrong certificate files)")
                } else if code == "tls_untrusted" {
                    format!("TLS on {host}: the certificate is the site's own and valid, but the user's computer does not trust the authority that issued it: give the user the site's CA certificate ({}) to install, or to pass to the helper with --ca; the server's [tls] files need no change", config.data_dir.join("tls/ca.pem").display())
                } else if code == "tls_bad_certificate" {
                    format!("TLS on {host}: the certificate is the site's own but issued by no authority (self-signed) or badly signed: put a certificate issued by the site's CA or a public one in the [tls] files; a CA file on the user's computer cannot fix this")
                } else if code == "tls_wrong_name" {
                    format!("TLS on {host}: the site's certificate does not name {host}: if the client's server name is a typo, the right one is {}; otherwise add the name to the certificate in the site's [tls] files", route.alias)
                } else {
                    format!("TLS on {host}: {} (the site's own certificate): renew its [tls] files", problem.explanation)
                });
            }
            "idle_connection_dropped" => causes.push(format!(
                "push mail stops on the user's network after {} of silence (a NAT router or firewall drops idle connections; {} still worked): the site's IMAP keep-alive ([timeouts] idle_keepalive) is every {} s; set it below what worked, or have the user's client check for mail more often",
                step.detail("push_stopped_after").unwrap_or("?"),
                step.detail("keepalive_that_works").unwrap_or("none"),
                config.timeouts.idle_keepalive
            )),
            "mechanism_not_offered" => causes.push(format!(
                "{host} port {} offers no password login (a port for servers, such as 25): the user's client must send through {} on port 465 or 587, as autoconfig says",
                step.detail("port").unwrap_or("?"),
                route.outbox
            )),
            "dns_no_such_name" => causes.push(format!("{host} does not exist: the client has a misspelt server name; the right one is {}", route.alias)),
            _ => causes.push(format!("{}: {}", step.title, problem.explanation)),
        }
    }
    for finding in &report.findings {
        causes.push(finding.explanation.clone());
    }
    // Last: what changed since, which the user's next check will meet.
    let since = now
        .route(&report.email)
        .map_err(|e| anyhow::anyhow!("{}: {e}", report.email))?;
    if since.server != route.server {
        causes.push(format!(
            "since the report, letter {} moved from {} to {}: the user's client follows {} within its TTL, or a new check shows it",
            since.letter, route.server, since.server, since.alias
        ));
    }
    causes.dedup();
    Ok(Analysis {
        route,
        user,
        names,
        fingerprint,
        causes,
    })
}

/// Reads a report and prints what the site says about it; returns the likely causes.
pub async fn explain(config: SiteConfig, path: &Path) -> anyhow::Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let report = parse_report(&text)
        .with_context(|| format!("{} is not a mailsite-helper report", path.display()))?;
    if let Some(note) = schema_note(&report) {
        println!("note: {note}");
    }
    let config = Arc::new(config);
    let dir = Directory::open(&config).await?;
    let map = dir.site_map(config.clone()).await?;
    let Analysis {
        route,
        user,
        causes,
        ..
    } = analyse(&report, &map, &dir).await?;
    println!(
        "report    {} ({}), {}",
        report.email, report.protocol, report.started_at
    );
    println!("helper    {}", report.summary);
    println!("{}", user_line(user.as_ref(), &route.username));
    let addrs: Vec<String> = route
        .server_addresses
        .iter()
        .map(|a| a.to_string())
        .collect();
    println!(
        "site      {} -> {} ({})",
        route.alias,
        route.server,
        addrs.join(", ")
    );
    if route.redirected() {
        println!(
            "          home {} is {}: the letter is served by {} until it is back",
            route.home, route.home_state, route.server
        );
    }
    if causes.is_empty() {
        println!("likely cause: none found; every step passed and matches the site");
    }
    for cause in &causes {
        println!("likely cause: {cause}");
    }
    Ok(causes)
}

/// The `user` line of `route` and `helpdesk explain`: the directory's entry, or that
/// there is none.
pub(crate) fn user_line(user: Option<&crate::directory::User>, username: &str) -> String {
    match user {
        Some(u) => format!(
            "user      {} ({}, prefers {})",
            u.username,
            if u.enabled { "enabled" } else { "disabled" },
            u.preference
        ),
        None => format!("user      {username} (not in the directory)"),
    }
}
