//! The POP3 step: greeting, CAPA, STLS, USER/PASS and STAT over a small client
//! written here (no kept POP3 client library does STLS on tokio), with a recorded
//! transcript; and the POP3 half of the round trip.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use mailsite_shared::autoconfig::ServerSetting;
use mailsite_shared::report::{Problem, Step};
use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tokio::net::TcpStream;

use super::wire::{TlsWire, Wire, open, upgrade};
use super::{Login, Running, bounded, expect, login_probe, read_line, send};
use crate::explain;
use crate::net::Net;
use crate::record::{Recorder, Shared};

/// The most lines of a multi-line answer read (CAPA, or the headers TOP lists).
const MAX_LISTING: usize = 10_000;

/// The plain-text part of STLS for the TLS step: greeting, `STLS`, its `+OK`.
pub(super) async fn stls(stream: TcpStream) -> Result<TcpStream, String> {
    let mut r = BufReader::new(stream);
    expect(&read_line(&mut r).await?, "+OK")?;
    send(&mut r, b"STLS\r\n").await?;
    expect(&read_line(&mut r).await?, "+OK")?;
    Ok(r.into_inner())
}

/// A small POP3 client: enough for CAPA, STLS, USER/PASS, STAT, TOP, DELE.
pub struct Pop3<S> {
    r: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Pop3<S> {
    async fn command(&mut self, line: &str) -> Result<String, String> {
        send(&mut self.r, format!("{line}\r\n").as_bytes()).await?;
        read_line(&mut self.r).await
    }

    async fn multiline(&mut self) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        loop {
            if out.len() == MAX_LISTING {
                return Err(format!("a listing longer than {MAX_LISTING} lines"));
            }
            let line = read_line(&mut self.r).await?;
            let line = line.trim_end_matches(['\r', '\n']);
            if line == "." {
                return Ok(out);
            }
            out.push(line.strip_prefix('.').unwrap_or(line).to_string());
        }
    }
}

/// Why a POP3 `-ERR` happened, from its response code (RFC 2449/3206).
fn problem(s: &ServerSetting, login: &Login, reply: &str) -> Problem {
    let text = reply.trim_end();
    if text.contains("[SYS/TEMP]") && text.contains(" is served by ") {
        let target = text
            .split(" is served by ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or("another server");
        return explain::referral(&s.hostname, target);
    }
    if let Some(until) = explain::blocked(text) {
        return explain::source_blocked("POP3", &login.username, until.as_deref());
    }
    if let Some((label, at)) = explain::app_password_expired_in(text) {
        return explain::app_password_expired("POP3", &login.username, &label, &at);
    }
    if text.contains("[SYS/TEMP]") || text.contains("[IN-USE]") {
        return explain::server_temporary("POP3", text);
    }
    if text.starts_with("-ERR") {
        return explain::auth_refused("POP3", &login.username);
    }
    explain::protocol_error("POP3", text)
}

/// Connects and logs in as the user's client would, after STLS for STARTTLS settings.
async fn session(
    net: &Net,
    s: &ServerSetting,
    ip: IpAddr,
    login: &Login,
    t: &Shared,
    run: &mut Running,
) -> Result<Pop3<TlsWire>, Problem> {
    let perr = |e: String| explain::protocol_error("POP3", &e);
    let wire = open(net, s, ip, t).await.map_err(perr)?;
    let tls = match wire {
        Wire::Tls(stream) => *stream,
        Wire::Plain(stream) => {
            let mut p = Pop3 {
                r: BufReader::new(stream),
            };
            let greeting = read_line(&mut p.r).await.map_err(perr)?;
            if !greeting.starts_with("+OK") {
                return Err(problem(s, login, &greeting));
            }
            let capa = p.command("CAPA").await.map_err(perr)?;
            if capa.starts_with("+OK") {
                let caps = p.multiline().await.map_err(perr)?;
                run.detail("capabilities_before_tls", caps.join(" "));
            }
            let stls = p.command("STLS").await.map_err(perr)?;
            if !stls.starts_with("+OK") {
                return Err(explain::tls_failed(&s.hostname, stls.trim_end()));
            }
            let tcp = p.r.into_inner().into_inner();
            t.lock()
                .unwrap_or_else(|p| p.into_inner())
                .note("STLS: the connection is encrypted from here");
            let addr = tcp.peer_addr().ok();
            let tls = upgrade(net, s, tcp)
                .await
                .map_err(|e| explain::tls_failed(&s.hostname, &e))?;
            let mut p = Pop3 {
                r: BufReader::new(Recorder::new(tls, t.clone(), addr)),
            };
            return log_in(&mut p, s, login, run).await.map(|_| p);
        }
    };
    let mut p = Pop3 {
        r: BufReader::new(tls),
    };
    let greeting = read_line(&mut p.r).await.map_err(perr)?;
    if !greeting.starts_with("+OK") {
        return Err(problem(s, login, &greeting));
    }
    log_in(&mut p, s, login, run).await.map(|_| p)
}

/// CAPA (kept as a detail), USER and PASS.
async fn log_in<S: AsyncRead + AsyncWrite + Unpin>(
    p: &mut Pop3<S>,
    s: &ServerSetting,
    login: &Login,
    run: &mut Running,
) -> Result<(), Problem> {
    let perr = |e: String| explain::protocol_error("POP3", &e);
    let capa = p.command("CAPA").await.map_err(perr)?;
    if capa.starts_with("+OK") {
        let caps = p.multiline().await.map_err(perr)?;
        run.detail("capabilities", caps.join(" "));
    }
    let user = p
        .command(&format!("USER {}", login.username))
        .await
        .map_err(perr)?;
    if !user.starts_with("+OK") {
        return Err(problem(s, login, &user));
    }
    let pass = p
        .command(&format!("PASS {}", login.password))
        .await
        .map_err(perr)?;
    if !pass.starts_with("+OK") {
        return Err(problem(s, login, &pass));
    }
    run.detail("login", "accepted");
    Ok(())
}

/// POP3: greeting, CAPA, STLS, USER/PASS, STAT.
pub async fn pop3(net: &Net, s: &ServerSetting, ip: IpAddr, login: &Login) -> Step {
    login_probe(net, ("pop3", "POP3"), s, ip, login, async |t, run| {
        let mut p = session(net, s, ip, login, t, run).await?;
        let stat = p
            .command("STAT")
            .await
            .map_err(|e| explain::protocol_error("POP3", &e))?;
        let _ = p.command("QUIT").await;
        let count = stat.split_whitespace().nth(1).unwrap_or("?").to_string();
        Ok(vec![("maildrop_messages", count)])
    })
    .await
}

/// The POP3 half of the round trip: looks through the newest messages until
/// `deadline` for the one whose headers carry `token`, and deletes it; whether it came.
pub(super) async fn wait_for(
    net: &Net,
    incoming: (&ServerSetting, IpAddr),
    login: &Login,
    token: &str,
    deadline: Instant,
    t: &Shared,
) -> Result<bool, Problem> {
    let perr = |e: String| explain::protocol_error("POP3", &e);
    while Instant::now() < deadline {
        let mut scratch = Running::new(String::new(), "pop3", String::new());
        let mut p = bounded(
            net,
            "POP3",
            session(net, incoming.0, incoming.1, login, t, &mut scratch),
        )
        .await?;
        let stat = p.command("STAT").await.map_err(perr)?;
        let count: usize = stat
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        // The newest messages are last.
        for n in (1..=count).rev().take(20) {
            if !p
                .command(&format!("TOP {n} 0"))
                .await
                .map_err(perr)?
                .starts_with("+OK")
            {
                continue;
            }
            let headers = p.multiline().await.map_err(perr)?;
            if headers.iter().any(|h| h.contains(token)) {
                p.command(&format!("DELE {n}")).await.map_err(perr)?;
                p.command("QUIT").await.map_err(perr)?;
                return Ok(true);
            }
        }
        let _ = p.command("QUIT").await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    Ok(false)
}
