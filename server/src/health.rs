//! Health checks: every mailbox server and sorter is tested at protocol level on an
//! interval, and one that keeps failing is marked down so that the site stops sending
//! clients and mail to it (its letters are served by the others, `outbox` leaves it
//! out); when it passes again it is marked up and its letters return.
//!
//! Who checks: the nodes that run the dns role, because what a check changes is what
//! the alias DNS answers (and a site has at least one such node). Several such nodes
//! each check and write only changes, so they agree whenever they see the same thing.
//!
//! What is written: the findings go to the directory's `server_health` table, apart
//! from the operator's `server_states`, and [`ServerState::effective`] combines them:
//! an operator's maintenance pins a server (health never overrides it), and health
//! only turns an operator's "up" into "down". Every node sees a change within one poll
//! of the directory (`state::POLL_INTERVAL`); the checking node at once.
//!
//! A check: for a mailbox server, the IMAP greeting and a CAPABILITY, then the LMTP
//! greeting and LHLO; for a sorter, the SMTP greeting and EHLO; on every address of the
//! server, each exchange within `[health] timeout_ms`.
//!
//! [`ServerState::effective`]: mailsite_shared::ServerState::effective

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use mailsite_shared::config::{HealthSettings, Server};
use mailsite_shared::smtp_reply::{ReplyLimits, read_reply};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::state::Site;

/// The longest reply line a check reads.
const MAX_LINE: u64 = 4096;
/// The most lines of one reply (an IMAP CAPABILITY or a multi-line EHLO).
const MAX_LINES: usize = 100;

/// What kind of server a check talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Mailbox,
    Sorter,
}

/// The ports a check uses and the name it introduces itself with.
#[derive(Debug, Clone)]
pub struct Probe {
    pub imap: u16,
    pub lmtp: u16,
    pub smtp: u16,
    /// The LHLO/EHLO argument.
    pub hello: String,
    pub timeout: Duration,
}

impl Probe {
    pub fn for_site(site: &Site) -> Probe {
        let view = site.view();
        let config = view.config();
        Probe {
            imap: config.ports.imap,
            lmtp: config.ports.lmtp,
            smtp: config.ports.smtp,
            hello: format!("health.{}", config.domain),
            timeout: Duration::from_millis(config.health.timeout_ms),
        }
    }

    /// Checks a server on every address; the error says what failed, where.
    pub async fn check(&self, kind: Kind, addresses: &[IpAddr]) -> Result<(), String> {
        for ip in addresses {
            match kind {
                Kind::Mailbox => {
                    self.bounded("IMAP", SocketAddr::new(*ip, self.imap), imap)
                        .await?;
                    self.bounded("LMTP", SocketAddr::new(*ip, self.lmtp), |s| {
                        hello(s, "LHLO", &self.hello)
                    })
                    .await?;
                }
                Kind::Sorter => {
                    self.bounded("SMTP", SocketAddr::new(*ip, self.smtp), |s| {
                        hello(s, "EHLO", &self.hello)
                    })
                    .await?;
                }
            }
        }
        Ok(())
    }

    /// Connects and runs one exchange, all within the timeout.
    async fn bounded<F, Fut>(
        &self,
        protocol: &str,
        addr: SocketAddr,
        exchange: F,
    ) -> Result<(), String>
    where
        F: FnOnce(TcpStream) -> Fut,
        Fut: Future<Output = Result<(), String>>,
    {
        let run = async {
            let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
            let _ = stream.set_nodelay(true);
            exchange(stream).await
        };
        match tokio::time::timeout(self.timeout, run).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("{protocol} {addr}: {e}")),
            Err(_) => Err(format!(
                "{protocol} {addr}: no answer within {} ms",
                self.timeout.as_millis()
            )),
        }
    }
}

/// One line, without its line end; an error at the end of the stream.
async fn line<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) -> Result<String, String> {
    let mut buf = Vec::new();
    let n = (&mut *reader)
        .take(MAX_LINE)
        .read_until(b'\n', &mut buf)
        .await
        .map_err(|e| e.to_string())?;
    if n == 0 {
        return Err("connection closed".into());
    }
    Ok(String::from_utf8_lossy(&buf)
        .trim_end_matches(['\r', '\n'])
        .to_string())
}

/// An SMTP/LMTP reply (continuation lines included), which must carry `code`.
async fn reply<R: AsyncRead + Unpin>(reader: &mut BufReader<R>, code: u16) -> Result<(), String> {
    let limits = ReplyLimits {
        max_line: MAX_LINE as usize,
        max_lines: MAX_LINES,
    };
    let reply = read_reply(reader, limits)
        .await
        .map_err(|e| e.to_string())?;
    if reply.code != code {
        return Err(format!("expected {code}, got {:?}", reply.last_line()));
    }
    Ok(())
}

/// The SMTP or LMTP exchange: greeting, LHLO/EHLO, QUIT.
async fn hello(stream: TcpStream, verb: &str, name: &str) -> Result<(), String> {
    let mut reader = BufReader::new(stream);
    reply(&mut reader, 220).await?;
    let command = format!("{verb} {name}\r\n");
    reader
        .get_mut()
        .write_all(command.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    reply(&mut reader, 250).await?;
    let _ = reader.get_mut().write_all(b"QUIT\r\n").await;
    Ok(())
}

/// The IMAP exchange: greeting, CAPABILITY, LOGOUT.
async fn imap(stream: TcpStream) -> Result<(), String> {
    let mut reader = BufReader::new(stream);
    let greeting = line(&mut reader).await?;
    if !greeting.starts_with("* OK") {
        return Err(format!("greeting {greeting:?}"));
    }
    reader
        .get_mut()
        .write_all(b"h CAPABILITY\r\n")
        .await
        .map_err(|e| e.to_string())?;
    for _ in 0..MAX_LINES {
        let text = line(&mut reader).await?;
        if let Some(status) = text.strip_prefix("h ") {
            if !status.starts_with("OK") {
                return Err(format!("CAPABILITY answered {text:?}"));
            }
            let _ = reader.get_mut().write_all(b"l LOGOUT\r\n").await;
            return Ok(());
        }
    }
    Err("CAPABILITY answer too long".into())
}

/// Consecutive results of one server's checks, and when they change its health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    pub failing: bool,
    passes: u32,
    failures: u32,
}

impl Tally {
    /// Starts from what the directory says (`failing`).
    pub fn new(failing: bool) -> Tally {
        Tally {
            failing,
            passes: 0,
            failures: 0,
        }
    }

    /// Counts a check; returns the new health when this check changes it.
    pub fn record(&mut self, passed: bool, settings: &HealthSettings) -> Option<bool> {
        if passed {
            self.failures = 0;
            self.passes = self.passes.saturating_add(1);
            if self.failing && self.passes >= settings.up_after {
                self.failing = false;
                return Some(false);
            }
        } else {
            self.passes = 0;
            self.failures = self.failures.saturating_add(1);
            if !self.failing && self.failures >= settings.down_after {
                self.failing = true;
                return Some(true);
            }
        }
        None
    }
}

/// Checks one server until `stop`, writing each change of its health.
async fn watch_server(
    site: Arc<Site>,
    kind: Kind,
    server: Server,
    failing: bool,
    mut stop: watch::Receiver<bool>,
) {
    let settings = site.view().config().health;
    let probe = Probe::for_site(&site);
    let mut tally = Tally::new(failing);
    let mut tick = tokio::time::interval(Duration::from_millis(settings.interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let role = match kind {
        Kind::Mailbox => "mailbox",
        Kind::Sorter => "sorter",
    };
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let result = probe.check(kind, &server.addresses).await;
        site.metrics.health_check(&server.name, result.is_ok());
        if let Err(error) = &result
            && !tally.failing
        {
            tracing::debug!(server = %server.name, %error, "health check failed");
        }
        let Some(now_failing) = tally.record(result.is_ok(), &settings) else {
            continue;
        };
        let detail = result.err().unwrap_or_default();
        match site
            .directory
            .set_server_health(&server.name, now_failing, &detail)
            .await
        {
            Ok(changed) => {
                if now_failing {
                    tracing::warn!(server = %server.name, role, error = %detail,
                        checks = settings.down_after, "health checks failing: marked down");
                } else {
                    tracing::info!(server = %server.name, role,
                        checks = settings.up_after, "health checks passing again: marked up");
                }
                if changed {
                    site.metrics.health_change(&server.name, now_failing);
                }
                if let Err(error) = site.refresh().await {
                    tracing::warn!(%error, "cannot read the directory after a health change");
                }
            }
            Err(error) => {
                // Try again at the next check: the tally forgets this change.
                tally = Tally::new(!now_failing);
                tracing::warn!(server = %server.name, %error, "cannot record a health change");
            }
        }
    }
}

/// For a site whose checks are off (`[health] enabled = false`): forgets earlier
/// findings, which nothing would ever correct.
pub async fn forget(site: Arc<Site>) {
    match site.directory.clear_server_health().await {
        Ok(true) => tracing::info!("health checks are off: earlier findings forgotten"),
        Ok(false) => {}
        Err(error) => tracing::warn!(%error, "cannot forget earlier health findings"),
    }
}

/// Runs the health checks of every mailbox server and sorter until `stop`.
pub async fn run(site: Arc<Site>, stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    let known = site
        .directory
        .server_health()
        .await
        .unwrap_or_else(|error| {
            tracing::warn!(%error, "cannot read earlier health findings; starting afresh");
            Default::default()
        });
    let failing = |name: &str| known.get(name).is_some_and(|h| h.failing);
    let mut tasks = tokio::task::JoinSet::new();
    let mut watched = std::collections::HashSet::new();
    let mut changes = site.subscribe();
    let mut stopping = stop.clone();
    loop {
        // Every server of the site as it is now: those added with `server add` while
        // this node runs are checked from the next change on.
        let config = site.snapshot().map.config.clone();
        let servers = config
            .mailboxes
            .iter()
            .map(|s| (Kind::Mailbox, s))
            .chain(config.sorters.iter().map(|s| (Kind::Sorter, s)));
        let before = watched.len();
        for (kind, server) in servers {
            if watched.insert(server.name.clone()) {
                tasks.spawn(watch_server(
                    site.clone(),
                    kind,
                    server.clone(),
                    failing(&server.name),
                    stop.clone(),
                ));
            }
        }
        if watched.len() != before {
            tracing::info!(
                servers = watched.len(),
                interval_ms = config.health.interval_ms,
                down_after = config.health.down_after,
                "health checks started"
            );
        }
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { break },
            _ = stopping.wait_for(|s| *s) => break,
        }
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_results_change_health() {
        let settings = HealthSettings::default();
        let mut t = Tally::new(false);
        assert_eq!(t.record(false, &settings), None);
        assert_eq!(t.record(false, &settings), None);
        assert_eq!(
            t.record(true, &settings),
            None,
            "a pass starts the count again"
        );
        assert_eq!(t.record(false, &settings), None);
        assert_eq!(t.record(false, &settings), None);
        assert_eq!(t.record(false, &settings), Some(true));
        assert_eq!(t.record(false, &settings), None);
        assert_eq!(t.record(true, &settings), None);
        assert_eq!(t.record(true, &settings), Some(false));
        assert_eq!(t.record(true, &settings), None);
    }

    #[tokio::test]
    async fn a_closed_port_and_a_silent_server_fail_with_a_reason() {
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = silent.local_addr().unwrap().port();
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let probe = |imap, lmtp| Probe {
            imap,
            lmtp,
            smtp: closed,
            hello: "health.example.test".into(),
            timeout: Duration::from_millis(300),
        };
        let local = [IpAddr::from([127, 0, 0, 1])];
        let e = probe(closed, closed)
            .check(Kind::Sorter, &local)
            .await
            .unwrap_err();
        assert!(e.starts_with("SMTP 127.0.0.1:"), "{e}");
        let e = probe(port, closed)
            .check(Kind::Mailbox, &local)
            .await
            .unwrap_err();
        assert!(e.contains("no answer within 300 ms"), "{e}");
        drop(silent);
    }
}
