//! The delivery loop of one sorter: takes queued messages as they arrive and as their
//! retries fall due, routes each local recipient to the mailbox server that owns its
//! letter *at that moment* (so a letter moved for maintenance is followed) and hands
//! the message over LMTP, one transaction per server; remote recipients go over SMTP
//! to their domain's mail servers ([`super::relay`]), one transaction per domain. Each
//! recipient's fate is recorded: delivered; deferred with exponential backoff (4xx, a
//! server down or silent, DNS failing); or failed (5xx, no such domain, or the queue
//! lifetime ran out), which returns a bounce to the sender.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mailsite_shared::QueueSettings;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use super::Sorter;
use super::body::Body;
use super::client::{self, Dialect, Handoff, Outcome};
use super::dsn::{self, Action, Entry, Returned};
use super::outbound;
use super::queue::{self, Envelope, Recipient, State};
use super::relay::NoRoute;
use crate::metrics::Delivery;

/// Messages delivered at once by one sorter.
pub const PARALLEL: usize = 16;
/// How long one LMTP or SMTP transaction may take.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(300);
/// How often the queue is looked through for retries that fell due (and flushes).
const SCAN_INTERVAL: Duration = Duration::from_secs(1);

/// The wait before retry number `attempts` + 1: `retry_first`, doubling, at most
/// `retry_max`.
pub fn backoff(settings: &QueueSettings, attempts: u32) -> u64 {
    let doublings = attempts.saturating_sub(1).min(40);
    settings
        .retry_first
        .saturating_mul(1u64 << doublings)
        .min(settings.retry_max)
}

/// A duration in words, for bounces.
fn in_words(seconds: u64) -> String {
    match seconds {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{} days", s / 86_400),
        s if s >= 3600 && s % 3600 == 0 => format!("{} hours", s / 3600),
        s => format!("{s} seconds"),
    }
}

/// A recipient that failed in this attempt (or, with [`Reported`], was delivered or
/// delayed and its sender asked to be told).
struct Failed {
    index: usize,
    /// The reply or reason, as the bounce quotes it.
    diagnostic: String,
    /// The enhanced status code.
    status: String,
    /// The server that refused it (its host name), if one did.
    server: Option<String>,
}

impl Failed {
    /// Marks recipient `index` (`r`) failed for `diagnostic`.
    fn record(
        r: &mut Recipient,
        index: usize,
        status: String,
        diagnostic: String,
        server: Option<String>,
    ) -> Failed {
        r.state = State::Failed;
        r.last_error = Some(match &server {
            Some(s) => format!("{s}: {diagnostic}"),
            None => diagnostic.clone(),
        });
        Failed {
            index,
            diagnostic,
            status,
            server,
        }
    }
}

/// A recipient the sender is told about, besides failures: delivered, relayed or
/// delayed (RFC 3461 NOTIFY=SUCCESS, DELAY).
struct Reported {
    index: usize,
    action: Action,
    diagnostic: String,
    status: String,
    server: Option<String>,
}

/// Runs until `stop`.
pub async fn run(sorter: Sorter, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    let permits = Arc::new(Semaphore::new(PARALLEL));
    let mut next_scan = tokio::time::Instant::now();
    loop {
        let scan = tokio::time::Instant::now() >= next_scan;
        if scan {
            if sorter.queue.flush_if_requested() {
                tracing::info!(sorter = %sorter.name, "queue flush requested: retrying every pending recipient");
            }
            next_scan = tokio::time::Instant::now() + SCAN_INTERVAL;
        }
        let lifetime = sorter.site.view().config().queue.lifetime;
        let (due, _) = sorter.queue.take_due(queue::now(), scan, lifetime);
        for id in due {
            let permit = tokio::select! {
                p = permits.clone().acquire_owned() => p?,
                _ = stop.wait_for(|s| *s) => return Ok(()),
            };
            tokio::spawn(attempt(sorter.clone(), id, permit));
        }
        tokio::select! {
            _ = sorter.queue.notified() => {}
            _ = tokio::time::sleep_until(next_scan) => {}
            _ = stop.wait_for(|s| *s) => return Ok(()),
        }
    }
}

/// One delivery attempt of one queued message.
async fn attempt(sorter: Sorter, id: String, _permit: OwnedSemaphorePermit) {
    let Some((mut envelope, message)) = sorter.queue.checkout(&id).await else {
        return;
    };
    let now = queue::now();
    let (settings, lmtp_port) = {
        let view = sorter.site.view();
        (view.config().queue, view.config().ports.lmtp)
    };
    let mut failed: Vec<Failed> = Vec::new();
    let mut reported: Vec<Reported> = Vec::new();
    // Recipients still waiting this long are reported to senders who asked.
    let delay_due = now >= envelope.received.saturating_add(settings.delay_warning);

    if now >= envelope.received.saturating_add(settings.lifetime) {
        for (i, r) in envelope.recipients.iter_mut().enumerate() {
            if r.state == State::Pending {
                let why = format!(
                    "could not be delivered within {}{}",
                    in_words(settings.lifetime),
                    r.last_error
                        .as_deref()
                        .map(|e| format!(" (last error: {e})"))
                        .unwrap_or_default()
                );
                failed.push(Failed::record(r, i, "4.4.7".into(), why, None));
            }
        }
    }

    // Recipients due now: local ones by the mailbox server that serves their letter
    // now (over LMTP), remote ones by domain (over SMTP).
    let mut jobs: BTreeMap<(bool, String), Vec<usize>> = BTreeMap::new();
    let mut targets: BTreeMap<String, Vec<(String, SocketAddr)>> = BTreeMap::new();
    {
        let view = sorter.site.view();
        for (i, r) in envelope.recipients.iter_mut().enumerate() {
            if !r.due(now) {
                continue;
            }
            if r.remote {
                let domain = r.address.rsplit_once('@').map_or("", |(_, d)| d);
                jobs.entry((true, domain.to_ascii_lowercase()))
                    .or_default()
                    .push(i);
                continue;
            }
            match view.map.route(&r.address) {
                Ok(route) => {
                    let host = format!("{}.{}", route.server, view.config().domain);
                    let addrs = route
                        .server_addresses
                        .iter()
                        .map(|ip| (host.clone(), SocketAddr::new(*ip, lmtp_port)))
                        .collect();
                    targets.insert(route.server.clone(), addrs);
                    jobs.entry((false, route.server)).or_default().push(i);
                }
                Err(e) => {
                    let why = format!("550 5.1.2 <{}>: {e}", r.address);
                    failed.push(Failed::record(r, i, "5.1.2".into(), why, None));
                }
            }
        }
    }

    if jobs.is_empty() && failed.is_empty() {
        // Nothing due now (the entry was only looked at on arrival): nothing to write.
        sorter.queue.release(&id);
        return;
    }
    for ((remote, label), indices) in jobs {
        let recipients: Vec<String> = indices
            .iter()
            .map(|&i| envelope.recipients[i].address.clone())
            .collect();
        // What the sender asked of reports, for another domain's server that offers
        // DSN (copied: the recipients are updated below).
        let envid = envelope.envid.clone();
        let asked: Vec<(u8, Option<String>)> = indices
            .iter()
            .map(|&i| {
                let r = &envelope.recipients[i];
                (r.notify, r.orcpt.clone())
            })
            .collect();
        let dsn = client::Dsn {
            ret_full: envelope.ret_full,
            envid: envid.as_deref(),
            recipients: asked.iter().map(|(n, o)| (*n, o.as_deref())).collect(),
            passed: Default::default(),
        };
        let handoff = Handoff {
            hostname: &sorter.hostname,
            sender: &envelope.sender,
            recipients: &recipients,
            message: &message,
            timeout: TRANSACTION_TIMEOUT,
            source: None,
            dsn: Some(&dsn),
        };
        let (outcomes, host) = if remote {
            match sorter.relay.route(&label).await {
                Ok(found) => outbound::deliver(&sorter.relay, &found, &handoff).await,
                Err(NoRoute::Temporary(why)) => {
                    (vec![Outcome::Temporary(why); indices.len()], None)
                }
                Err(NoRoute::Permanent(why)) => {
                    (vec![Outcome::Permanent(why); indices.len()], None)
                }
            }
        } else {
            let found = targets.remove(&label).unwrap_or_default();
            // From the sorter's own address: the mailbox servers take LMTP from the
            // sorters only.
            let handoff = Handoff {
                source: own_address(&sorter, found.first().map(|(_, a)| a.is_ipv4())),
                dsn: None,
                ..handoff
            };
            client::deliver(&found, &Dialect::Lmtp, &handoff).await
        };
        // The remote server took the DSN parameters: it reports from now on.
        let passed_on = dsn.passed.load(std::sync::atomic::Ordering::Relaxed);
        for (&i, outcome) in indices.iter().zip(outcomes) {
            let r: &mut Recipient = &mut envelope.recipients[i];
            r.attempts += 1;
            let via = host.as_deref().unwrap_or(&label);
            match outcome {
                Outcome::Delivered(answer) => {
                    r.state = State::Delivered;
                    r.last_error = None;
                    sorter.site.metrics.delivery(Delivery::Delivered);
                    tracing::info!(sorter = %sorter.name, %id, to = %r.address, %via, "delivered");
                    if r.wants_success() && !(remote && passed_on) {
                        // Another domain's server without DSN does not report back:
                        // what we can say is that it took the message (RFC 3461
                        // 6.2.4). One with DSN got NOTIFY and reports itself.
                        let (action, diagnostic) = match remote {
                            true => (Action::Relayed, answer),
                            false => (Action::Delivered, String::new()),
                        };
                        reported.push(Reported {
                            index: i,
                            action,
                            diagnostic,
                            status: "2.0.0".into(),
                            server: host.clone(),
                        });
                    }
                }
                Outcome::Temporary(why) => {
                    let wait = backoff(&settings, r.attempts);
                    r.next_attempt = now + wait;
                    sorter.site.metrics.delivery(Delivery::Deferred);
                    tracing::info!(sorter = %sorter.name, %id, to = %r.address, %via, error = %why, retry_in = wait, "deferred");
                    if delay_due && r.wants_delay() && !r.delay_reported {
                        r.delay_reported = true;
                        reported.push(Reported {
                            index: i,
                            action: Action::Delayed,
                            status: match dsn::status_of(&why) {
                                code if code.starts_with('4') => code,
                                _ => "4.0.0".into(),
                            },
                            diagnostic: why.clone(),
                            server: host.clone(),
                        });
                    }
                    r.last_error = Some(format!("{label}: {why}"));
                }
                Outcome::Permanent(why) => {
                    tracing::info!(sorter = %sorter.name, %id, to = %r.address, %via, error = %why, "refused; bouncing");
                    let status = dsn::status_of(&why);
                    failed.push(Failed::record(r, i, status, why, host.clone()));
                }
            }
        }
    }

    if !reported.is_empty() {
        // A report of success or delay is a courtesy: if it cannot be queued, the
        // deliveries stand and it is logged.
        let entries: Vec<Reported> = std::mem::take(&mut reported);
        if !send_report(&sorter, &envelope, &message, &entries, now).await {
            tracing::warn!(sorter = %sorter.name, %id, "a delivery report could not be queued");
        }
    }
    if !failed.is_empty() {
        if bounce(&sorter, &envelope, &message, &failed, now).await {
            for _ in &failed {
                sorter.site.metrics.delivery(Delivery::Failed);
            }
        } else {
            // The bounce is not durable: keep the recipients to bounce them later.
            for f in &failed {
                let r = &mut envelope.recipients[f.index];
                r.state = State::Pending;
                r.next_attempt = now + settings.retry_first;
            }
        }
    }
    if let Err(error) = sorter.queue.finish(envelope).await {
        tracing::error!(sorter = %sorter.name, %id, %error, "cannot record a delivery attempt");
    }
}

/// The sorter's configured address of the family of its targets (IPv4 or not).
fn own_address(sorter: &Sorter, ipv4: Option<bool>) -> Option<std::net::IpAddr> {
    let view = sorter.site.view();
    let server = view
        .config()
        .sorters
        .iter()
        .find(|s| s.name == sorter.name)?;
    let ipv4 = ipv4?;
    server
        .addresses
        .iter()
        .find(|a| a.is_ipv4() == ipv4)
        .copied()
}

/// Queues the bounce of `failed` recipients to the sender: those whose sender did not
/// turn failure reports off (NOTIFY=NEVER, or a NOTIFY without FAILURE); none for the
/// null sender (a bounce is never bounced). Returns false if it could not be queued.
async fn bounce(
    sorter: &Sorter,
    envelope: &Envelope,
    message: &Body,
    failed: &[Failed],
    now: u64,
) -> bool {
    if envelope.sender.is_empty() {
        for f in failed {
            tracing::warn!(sorter = %sorter.name, id = %envelope.id, to = %envelope.recipients[f.index].address, error = %f.diagnostic, "a bounce could not be delivered; dropped");
        }
        return true;
    }
    let entries: Vec<Reported> = failed
        .iter()
        .filter(|f| {
            let wanted = envelope.recipients[f.index].wants_failure();
            if !wanted {
                tracing::info!(sorter = %sorter.name, id = %envelope.id, to = %envelope.recipients[f.index].address, "failed; the sender asked for no report (NOTIFY)");
            }
            wanted
        })
        .map(|f| Reported {
            index: f.index,
            action: Action::Failed,
            diagnostic: f.diagnostic.clone(),
            status: f.status.clone(),
            server: f.server.clone(),
        })
        .collect();
    if entries.is_empty() {
        return true;
    }
    send_report(sorter, envelope, message, &entries, now).await
}

/// Queues a delivery status notification about `entries` to the sender (signed like
/// what users send). Returns false if it could not be queued.
async fn send_report(
    sorter: &Sorter,
    envelope: &Envelope,
    message: &Body,
    entries: &[Reported],
    now: u64,
) -> bool {
    if envelope.sender.is_empty() {
        return true;
    }
    // RET=FULL returns the whole message (up to 1 MiB; beyond, the header section).
    let full = envelope.ret_full && message.len() <= RETURN_FULL_MAX;
    let read = match full {
        true => read_all(message).await,
        false => message.head().await,
    };
    let returned_bytes = match read {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::error!(sorter = %sorter.name, id = %envelope.id, %error, "cannot read a message to report on it");
            return false;
        }
    };
    let returned = match full {
        true => Returned::Full(&returned_bytes),
        false => Returned::Headers(&returned_bytes),
    };
    let (domain, lifetime) = {
        let view = sorter.site.view();
        (view.config().domain.clone(), view.config().queue.lifetime)
    };
    let items: Vec<Entry<'_>> = entries
        .iter()
        .map(|e| {
            let r = &envelope.recipients[e.index];
            Entry {
                recipient: &r.address,
                original: r.orcpt.as_deref(),
                action: e.action,
                diagnostic: &e.diagnostic,
                status: e.status.clone(),
                remote_mta: e.server.as_deref(),
            }
        })
        .collect();
    let mut report = dsn::report(
        envelope,
        returned,
        &items,
        &sorter.hostname,
        &format!("MAILER-DAEMON@{domain}"),
        now,
        envelope.received.saturating_add(lifetime),
    );
    // Reports are the site's own mail: signed like what users send.
    let signatures = sorter
        .dkim
        .sign(&sorter.site.snapshot().map, &domain, &[&report], now as i64);
    report.splice(0..0, signatures.into_bytes());
    let remote = sorter.site.view().map.route(&envelope.sender).is_err();
    let notice = Envelope {
        id: sorter.queue.new_id(),
        sender: String::new(),
        received: now,
        authenticated: None,
        client: format!("report on {}", envelope.id),
        size: report.len() as u64,
        ret_full: false,
        envid: None,
        recipients: vec![Recipient::new(envelope.sender.clone(), remote, now)],
    };
    let notice_id = notice.id.clone();
    let failed = entries.iter().any(|e| e.action == Action::Failed);
    match sorter.queue.accept(notice, report).await {
        Ok(()) => {
            if failed {
                sorter.site.metrics.bounce();
            }
            tracing::info!(sorter = %sorter.name, id = %envelope.id, report = %notice_id, to = %envelope.sender, bounce = failed, "delivery status notification queued");
            true
        }
        Err(error) => {
            tracing::error!(sorter = %sorter.name, id = %envelope.id, %error, "cannot queue a delivery status notification");
            false
        }
    }
}

/// The largest message a report returns whole (RET=FULL).
const RETURN_FULL_MAX: u64 = 1 << 20;

async fn read_all(message: &Body) -> std::io::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut bytes = Vec::with_capacity(message.len() as usize);
    message.reader().await?.read_to_end(&mut bytes).await?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let s = QueueSettings {
            retry_first: 5,
            retry_max: 60,
            lifetime: 100,
            delay_warning: 50,
        };
        let waits: Vec<u64> = (1..=6).map(|a| backoff(&s, a)).collect();
        assert_eq!(waits, [5, 10, 20, 40, 60, 60]);
        assert_eq!(backoff(&s, u32::MAX), 60);
        assert_eq!(in_words(432_000), "5 days");
        assert_eq!(in_words(7200), "2 hours");
        assert_eq!(in_words(90), "90 seconds");
    }
}
