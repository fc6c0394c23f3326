//! The tests a check runs, one [`Step`] each, one file per protocol: [`dns`] (addresses
//! and TTLs), [`tcp`] per address and port, [`tls`] (version, cipher, certificate,
//! trust, name), [`imap`] (async-imap), [`pop3`] (a small client), [`smtp`] (a small client on the shared reply reader)
//! and the [`roundtrip`]. This module holds what they share: a step being run
//! ([`Running`]), the step timeout every one of them is bounded by, and the login they
//! use; [`wire`] opens their recorded connections. Each step explains its own failure
//! (see [`crate::explain`]).

use std::net::IpAddr;
use std::time::Instant;

use mailsite_shared::autoconfig::{Security, ServerSetting};
use mailsite_shared::report::{Outcome, Problem, Step};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

use crate::explain;
use crate::net::Net;
use crate::record::{Secrets, Shared, Transcript};

mod dns;
pub mod idle;
mod imap;
mod pop3;
mod roundtrip;
mod smtp;
mod tcp;
mod tls;
mod wire;

pub use dns::dns;
pub use idle::idle_survival;
pub use imap::imap;
pub use pop3::{Pop3, pop3};
pub use roundtrip::{ROUND_TRIP_WAIT, round_trip};
pub use smtp::smtp;
pub use tcp::tcp;
pub use tls::{describe_certificate, tls};
pub use wire::Wire;

/// The longest line read from a line-based server (POP3, and IMAP before STARTTLS).
const MAX_LINE: u64 = 8192;

/// A step being run.
pub struct Running {
    step: Step,
    start: Instant,
    transcript: Option<Shared>,
}

impl Running {
    pub fn new(id: String, kind: &str, title: String) -> Running {
        Running {
            step: Step {
                id,
                kind: kind.to_string(),
                title,
                outcome: Outcome::Pass,
                millis: 0,
                details: Vec::new(),
                transcript: Vec::new(),
                problem: None,
            },
            start: Instant::now(),
            transcript: None,
        }
    }

    pub fn detail(&mut self, key: &str, value: impl ToString) {
        self.step.details.push((key.to_string(), value.to_string()));
    }

    pub fn record(&mut self, secrets: &Secrets) -> Shared {
        let t = Transcript::shared(secrets.clone());
        self.transcript = Some(t.clone());
        t
    }

    fn end(mut self, outcome: Outcome, problem: Option<Problem>) -> Step {
        self.step.outcome = outcome;
        self.step.problem = problem;
        self.step.millis = self.start.elapsed().as_millis() as u64;
        if let Some(t) = self.transcript {
            self.step.transcript = t.lock().unwrap_or_else(|p| p.into_inner()).lines();
        }
        self.step
    }

    pub fn pass(self) -> Step {
        self.end(Outcome::Pass, None)
    }

    pub fn fail(self, problem: Problem) -> Step {
        self.end(Outcome::Fail, Some(problem))
    }

    pub fn skip(mut self, because: &str) -> Step {
        self.detail("skipped", because);
        self.end(Outcome::Skipped, None)
    }
}

/// Runs `work` within the step timeout; a timeout fails the step.
async fn bounded<T>(
    net: &Net,
    what: &str,
    work: impl std::future::Future<Output = Result<T, Problem>>,
) -> Result<T, Problem> {
    match tokio::time::timeout(net.step_timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(explain::timeout(what, net.step_timeout.as_secs_f64())),
    }
}

pub fn security_name(s: Security) -> &'static str {
    match s {
        Security::Tls => "SSL/TLS",
        Security::StartTls => "STARTTLS",
        Security::Plain => "no encryption",
    }
}

fn endpoint(s: &ServerSetting) -> String {
    format!("{}:{}", s.hostname, s.port)
}

/// The login credentials of a check.
#[derive(Clone)]
pub struct Login {
    pub username: String,
    pub password: String,
    pub secrets: Secrets,
}

/// A login step on one server address: `work` runs within the step timeout with the
/// step's transcript and the step itself (for details it finds on the way); the
/// details it returns are added when it passes.
async fn login_probe(
    net: &Net,
    (kind, upper): (&str, &str),
    s: &ServerSetting,
    ip: IpAddr,
    login: &Login,
    work: impl AsyncFnOnce(&Shared, &mut Running) -> Result<Vec<(&'static str, String)>, Problem>,
) -> Step {
    let mut run = login_step(kind, upper, s, ip);
    let t = run.record(&login.secrets);
    match bounded(net, upper, work(&t, &mut run)).await {
        Ok(details) => {
            for (key, value) in details {
                run.detail(key, value);
            }
            run.pass()
        }
        Err(p) => run.fail(p),
    }
}

/// The step of a login on one server address (`kind` names it, `upper` says it).
fn login_step(kind: &str, upper: &str, s: &ServerSetting, ip: IpAddr) -> Running {
    let mut run = Running::new(
        format!("{kind}:{}", endpoint(s)),
        kind,
        format!(
            "{upper} login on {} ({})",
            endpoint(s),
            security_name(s.security)
        ),
    );
    run.detail("host", &s.hostname);
    run.detail("address", ip);
    run.detail("port", s.port);
    run
}

/// Reads one line (CRLF) of a plain-text protocol. A line longer than [`MAX_LINE`] is
/// an error, so that a server that never ends one cannot fill the helper's memory.
async fn read_line<S: AsyncRead + Unpin>(r: &mut BufReader<S>) -> Result<String, String> {
    let mut line = Vec::new();
    match (&mut *r).take(MAX_LINE).read_until(b'\n', &mut line).await {
        Ok(0) => Err("the server closed the connection".to_string()),
        Ok(n) if n as u64 == MAX_LINE && !line.ends_with(b"\n") => {
            Err(format!("a line longer than {MAX_LINE} bytes"))
        }
        Ok(_) => Ok(String::from_utf8_lossy(&line).into_owned()),
        Err(e) => Err(e.to_string()),
    }
}

/// Sends a command line over a buffered connection.
async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    r: &mut BufReader<S>,
    line: &[u8],
) -> Result<(), String> {
    r.get_mut().write_all(line).await.map_err(|e| e.to_string())
}

/// A STARTTLS answer that must start with `ok`.
fn expect(reply: &str, ok: &str) -> Result<(), String> {
    if reply.starts_with(ok) {
        Ok(())
    } else {
        Err(format!("unexpected answer: {}", reply.trim_end()))
    }
}
