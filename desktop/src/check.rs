//! One whole check: discovery, then every probe at once (each bounded by the step
//! timeout), then the round trip, then the report. [`check_with_progress`] also tells
//! a face each step as it finishes, so that a window can show the check as it runs.

use std::net::IpAddr;
use std::time::Duration;

use futures::future::join_all;
use mailsite_shared::autoconfig::{Preference, Protocol, Security, ServerSetting};
use mailsite_shared::report::{Discovery, Outcome, Report, SCHEMA_VERSION, Step};
use mailsite_shared::route::Address;

use crate::discover::{self, Method};
use crate::net::{Net, SiteOverride};
use crate::probe::{self, Login, Running};
use crate::record::Secrets;
use crate::{HelperError, explain, render};

/// What to check and how. Its `Debug` form leaves the password out.
#[derive(Clone)]
pub struct CheckOptions {
    pub email: String,
    pub password: String,
    /// The incoming protocol to test; `None`: the one the site lists first.
    pub protocol: Option<Preference>,
    pub site: SiteOverride,
    /// Discovery methods, in order (default: all).
    pub methods: Vec<Method>,
    /// The incoming server name the user's mail client has, to test instead of the
    /// discovered one (e.g. a server's own name instead of its alias).
    pub incoming_host: Option<String>,
    pub step_timeout: Duration,
    /// Send a test message to the user and wait for it.
    pub round_trip: bool,
    /// The long check: the silences to wait in IMAP IDLE, each followed by a test
    /// message whose notice must come within `push_wait` ([`probe::idle`]); empty: no
    /// long check.
    pub idle_schedule: Vec<Duration>,
    pub push_wait: Duration,
}

impl std::fmt::Debug for CheckOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckOptions")
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .field("protocol", &self.protocol)
            .field("site", &self.site)
            .field("methods", &self.methods)
            .field("incoming_host", &self.incoming_host)
            .field("step_timeout", &self.step_timeout)
            .field("round_trip", &self.round_trip)
            .field("idle_schedule", &self.idle_schedule)
            .field("push_wait", &self.push_wait)
            .finish()
    }
}

impl CheckOptions {
    pub fn new(email: &str, password: &str) -> CheckOptions {
        CheckOptions {
            email: email.to_string(),
            password: password.to_string(),
            protocol: None,
            site: SiteOverride::default(),
            methods: Method::ALL.to_vec(),
            incoming_host: None,
            step_timeout: Duration::from_secs(10),
            round_trip: true,
            idle_schedule: Vec::new(),
            push_wait: probe::idle::PUSH_WAIT,
        }
    }
}

/// What a running check has just done, in the order things finish (the report keeps
/// its own, stable order).
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// Discovery is over: how the settings were found (or that nothing answered).
    Discovered(Discovery),
    /// A step finished.
    Step(Step),
    /// A long step's news on the way (the long check's rounds).
    Note(String),
}

/// Where progress goes: any function; [`check`] passes one that drops it.
pub type OnProgress<'a> = &'a (dyn Fn(Progress) + Send + Sync);

/// Records a finished step: tells the face, then keeps it for the report.
fn finished(steps: &mut Vec<Step>, step: Step, progress: OnProgress<'_>) {
    progress(Progress::Step(step.clone()));
    steps.push(step);
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The steps of one server setting: TCP to each address, TLS, then the login.
async fn endpoint(
    net: &Net,
    s: &ServerSetting,
    ips: &[IpAddr],
    login: &Login,
    progress: OnProgress<'_>,
) -> (Vec<Step>, Option<IpAddr>) {
    let mut steps = Vec::new();
    let mut connected = None;
    for &ip in ips {
        let (step, stream) = probe::tcp(net, s, ip).await;
        finished(&mut steps, step, progress);
        if connected.is_none() {
            connected = stream.map(|st| (ip, st));
        }
    }
    let what = s.protocol.thunderbird_name();
    let title = format!("{} login on {}:{}", what.to_uppercase(), s.hostname, s.port);
    let id = format!("{what}:{}:{}", s.hostname, s.port);
    let Some((ip, stream)) = connected else {
        let step = Running::new(id, what, title).skip("no connection");
        finished(&mut steps, step, progress);
        return (steps, None);
    };
    if s.security != Security::Plain {
        let step = probe::tls(net, s, stream).await;
        let ok = step.outcome == Outcome::Pass;
        finished(&mut steps, step, progress);
        if !ok {
            let step =
                Running::new(id, what, title).skip("TLS failed: no password is sent over it");
            finished(&mut steps, step, progress);
            return (steps, None);
        }
    }
    let step = match s.protocol {
        Protocol::Imap => probe::imap(net, s, ip, login).await,
        Protocol::Pop3 => probe::pop3(net, s, ip, login).await,
        Protocol::Smtp => probe::smtp(net, s, ip, login).await,
    };
    let ok = step.outcome == Outcome::Pass;
    finished(&mut steps, step, progress);
    (steps, ok.then_some(ip))
}

/// Runs a check and returns its report; an error only for input that cannot be
/// checked at all (not an address, an unreadable CA file).
pub async fn check(opts: &CheckOptions) -> Result<Report, HelperError> {
    check_with_progress(opts, &|_| {}).await
}

/// [`check`], telling `progress` about discovery and each step as it finishes.
pub async fn check_with_progress(
    opts: &CheckOptions,
    progress: OnProgress<'_>,
) -> Result<Report, HelperError> {
    let started_at = now();
    let address = Address::parse(&opts.email)
        .map_err(|e| HelperError::BadAddress(opts.email.clone(), e.to_string()))?;
    let email = address.to_string();
    let net = Net::new(&opts.site, opts.step_timeout)?;
    tracing::info!(%email, "check started");
    let found = discover::discover(&net, &opts.site, &address, &opts.methods).await;
    progress(Progress::Discovered(found.discovery.clone()));
    let mut steps = Vec::new();
    let mut protocol = opts.protocol.unwrap_or_default();
    if let Some(config) = &found.config {
        protocol = opts
            .protocol
            .unwrap_or(match config.incoming.first().map(|s| s.protocol) {
                Some(Protocol::Pop3) => Preference::Pop3,
                _ => Preference::Imap,
            });
        let wanted = match protocol {
            Preference::Imap => Protocol::Imap,
            Preference::Pop3 => Protocol::Pop3,
        };
        let mut incoming: Vec<ServerSetting> = config
            .incoming
            .iter()
            .filter(|s| s.protocol == wanted)
            .cloned()
            .collect();
        if let Some(host) = &opts.incoming_host {
            for s in &mut incoming {
                s.hostname = host.clone();
            }
        }
        let settings: Vec<ServerSetting> =
            incoming.iter().chain(&config.outgoing).cloned().collect();
        let mut hosts: Vec<String> = settings.iter().map(|s| s.hostname.clone()).collect();
        hosts.sort();
        hosts.dedup();
        let looked_up = join_all(hosts.iter().map(|h| async {
            let (step, ips) = probe::dns(&net, h).await;
            progress(Progress::Step(step.clone()));
            (step, ips)
        }))
        .await;
        let addresses = |host: &str| {
            hosts
                .iter()
                .position(|h| h == host)
                .map(|i| looked_up[i].1.clone())
                .unwrap_or_default()
        };
        let mut logins: Vec<String> = settings.iter().map(|s| s.username.clone()).collect();
        logins.push(email.clone());
        logins.push(address.local.clone());
        let secrets = Secrets::new(
            &opts.password,
            &logins.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let login_for = |s: &ServerSetting| Login {
            username: s.username.clone(),
            password: opts.password.clone(),
            secrets: secrets.clone(),
        };
        // Everything at once, except POP3: a maildrop takes one session at a time,
        // so its settings are tried one after the other.
        let run = |s: &ServerSetting| {
            let ips = addresses(&s.hostname);
            let login = login_for(s);
            let net = &net;
            let s = s.clone();
            async move { endpoint(net, &s, &ips, &login, progress).await }
        };
        let (pop3, others): (Vec<usize>, Vec<usize>) =
            (0..settings.len()).partition(|&i| settings[i].protocol == Protocol::Pop3);
        let (mut other_results, pop3_results) =
            futures::join!(join_all(others.iter().map(|&i| run(&settings[i]))), async {
                let mut out = Vec::new();
                for &i in &pop3 {
                    out.push(run(&settings[i]).await);
                }
                out
            });
        let mut results = Vec::with_capacity(settings.len());
        let (mut o, mut p) = (other_results.drain(..), pop3_results.into_iter());
        for s in &settings {
            let next = if s.protocol == Protocol::Pop3 {
                p.next()
            } else {
                o.next()
            };
            results.extend(next);
        }
        steps.extend(looked_up.into_iter().map(|(step, _)| step));
        let mut working_in = None;
        let mut working_out = None;
        for (s, (endpoint_steps, ok)) in settings.iter().zip(results) {
            steps.extend(endpoint_steps);
            if let Some(ip) = ok {
                if s.protocol == Protocol::Smtp {
                    working_out = working_out.or(Some((s, ip)));
                } else {
                    working_in = working_in.or(Some((s, ip)));
                }
            }
        }
        if opts.round_trip {
            let step = match (working_out, working_in) {
                (Some(out), Some(inc)) => {
                    probe::round_trip(&net, &email, out, inc, &login_for(inc.0)).await
                }
                _ => Running::new(
                    "roundtrip".into(),
                    "roundtrip",
                    "Round trip: a test message to yourself".into(),
                )
                .skip("no working incoming and outgoing server"),
            };
            finished(&mut steps, step, progress);
        }
        if !opts.idle_schedule.is_empty() {
            let note = |text: String| progress(Progress::Note(text));
            let step = match (working_out, working_in) {
                (Some(out), Some(inc)) if inc.0.protocol == Protocol::Imap => {
                    probe::idle_survival(
                        &net,
                        &email,
                        out,
                        inc,
                        &login_for(inc.0),
                        (&opts.idle_schedule, opts.push_wait),
                        &note,
                    )
                    .await
                }
                _ => Running::new(
                    "idle".into(),
                    "idle",
                    "Push mail (IMAP IDLE) through silence".into(),
                )
                .skip("no working IMAP and outgoing server (push is an IMAP feature)"),
            };
            finished(&mut steps, step, progress);
        }
    } else {
        let run = Running::new(
            "discovery".into(),
            "discovery",
            format!("Find the settings for {email}"),
        );
        finished(
            &mut steps,
            run.fail(explain::discovery_failed(&address.domain)),
            progress,
        );
    }
    let mut findings = explain::findings(&steps);
    if let Some(disabled) = explain::account_disabled(&found.discovery, &email) {
        findings.insert(0, disabled);
    }
    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        helper_version: env!("CARGO_PKG_VERSION").to_string(),
        os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        started_at,
        finished_at: now(),
        email,
        protocol: protocol.as_str().to_string(),
        overrides: opts.site.describe(),
        discovery: found.discovery,
        passed: !steps.iter().any(|s| s.outcome == Outcome::Fail),
        steps,
        findings,
        summary: String::new(),
    };
    report.summary = render::summary(&report);
    tracing::info!(summary = %report.summary, "check finished");
    Ok(report)
}
