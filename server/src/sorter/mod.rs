//! The sorter role: what `outbox.<domain>` and the MX records point at. SMTP on three
//! ports ([`Port`]): MX for the site's domains (never an open relay), and submission
//! with STARTTLS and with implicit TLS for the site's users; every accepted message is
//! durable in the sorter's [`queue`] before its 250, and the [`delivery`] loop hands it
//! to the mailbox server that owns each recipient's letter over LMTP.
//!
//! - [`session`]: the SMTP state machine (policy and replies; AUTH with [`crate::sasl`]);
//! - [`connection`]: line framing, message data, TLS and time limits;
//! - [`incoming`]: a message being received, streamed to the spool as it arrives;
//! - [`message`]: what is checked in and added to a message; [`dsn`]: bounces;
//! - [`queue`]: the spool; [`delivery`], [`client`] (LMTP and SMTP; [`body`]: the
//!   message read in chunks), [`relay`] (MX lookup) and [`outbound`] with
//!   [`tls_policy`] (DANE, MTA-STS and TLS reports for other domains): the way out.

pub mod body;
pub mod client;
pub mod connection;
pub mod delivery;
pub mod dsn;
pub mod incoming;
pub mod message;
pub mod outbound;
pub mod queue;
pub mod relay;
pub mod session;
pub mod tls_policy;
pub mod verdict;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use mailsite_shared::SiteConfig;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::state::Site;

/// The three SMTP services of a sorter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// Port 25: mail from the world for the site's users; AUTH is possible (after TLS)
    /// and is what allows relaying.
    Mx,
    /// Port 587 (RFC 6409): authenticated submission, STARTTLS.
    Submission,
    /// Port 465 (RFC 8314): authenticated submission over implicit TLS.
    Submissions,
}

impl Port {
    /// Whether MAIL needs an authenticated client.
    pub fn requires_auth(self) -> bool {
        self != Port::Mx
    }
}

/// One sorter as this process runs it: what its sessions and delivery loop share.
#[derive(Clone)]
pub struct Sorter {
    /// Its name in the site configuration (`sorter1`).
    pub name: String,
    /// The name it greets with (`sorter1.example.test`).
    pub hostname: String,
    pub site: Arc<Site>,
    pub queue: Arc<queue::Queue>,
    /// TLS for STARTTLS and the submissions port.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// How mail for other domains leaves.
    pub relay: Arc<relay::Relay>,
    /// DKIM signatures for what the site sends.
    pub dkim: Arc<crate::dkim::Signer>,
    /// SPF, DKIM and DMARC verdicts on mail from other domains (`None`: not checked).
    pub verifier: Option<Arc<verdict::Verifier>>,
}

/// Accepts SMTP connections of one kind on a bound listener until `stop`.
pub async fn run(
    listener: tokio::net::TcpListener,
    sorter: Sorter,
    port: Port,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let limits = sorter.site.view().config().limits;
    crate::mailbox::accept::run(
        listener,
        crate::mailbox::accept::Limits {
            total: limits.smtp,
            per_source: limits.per_source,
        },
        crate::mailbox::accept::Busy {
            full: b"421 4.3.2 Too many connections, try again later\r\n",
            source: b"421 4.7.0 Too many connections from your address, try again later\r\n",
        },
        stop,
        move |stream, peer| {
            let _ = stream.set_nodelay(true);
            let session = session::Session::new(sorter.clone(), port, peer);
            let tls = sorter.tls.clone();
            async move {
                match (port, tls) {
                    (Port::Submissions, Some(acceptor)) => {
                        let encrypted =
                            crate::mailbox::accept::tls_handshake(&acceptor, stream).await?;
                        let mut session = session;
                        session.tls_started();
                        connection::serve_connection(encrypted, session, None).await
                    }
                    (Port::Submissions, None) => Ok(()),
                    (_, Some(acceptor)) => {
                        connection::serve_connection(stream, session.offer_tls(), Some(acceptor))
                            .await
                    }
                    (_, None) => connection::serve_connection(stream, session, None).await,
                }
            }
        },
    )
    .await
}

/// Starts every sorter of the site on its addresses, with its queue and delivery
/// loop; returns a line per sorter for the start report.
pub async fn start(
    config: &SiteConfig,
    site: &Arc<Site>,
    tls: tokio_rustls::TlsAcceptor,
    tasks: &mut JoinSet<anyhow::Result<()>>,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<Vec<String>> {
    let mut report = Vec::new();
    let relay = Arc::new(
        relay::Relay::with_store(
            &config.relay,
            Some(site.directory.clone()),
            Some(site.metrics.clone()),
        )
        .context("cannot set up the outbound relay")?,
    );
    // A site's first start makes its DKIM keys; mail goes out unsigned (and the
    // error is logged) rather than not at all if that fails.
    match crate::dkim::ensure_keys(&site.directory, config).await {
        Ok(made) if !made.is_empty() => {
            if let Err(error) = site.refresh().await {
                tracing::warn!(%error, "cannot read the site after publishing DKIM keys");
            }
        }
        Ok(_) => {}
        Err(error) => {
            tracing::error!(
                error = format!("{error:#}"),
                "cannot make DKIM keys: mail leaves unsigned"
            );
        }
    }
    let dkim = Arc::new(crate::dkim::Signer::new(config));
    let verifier = config.mail_auth.verify.then(|| {
        Arc::new(verdict::Verifier::new(
            config.relay.resolver,
            &config.domain,
            config.mail_auth.reject_to_junk,
        ))
    });
    for server in &config.sorters {
        let dir = queue::spool_dir(&config.data_dir, &server.name);
        let queue = queue::Queue::open(dir.clone(), site.metrics.queue_gauge())
            .with_context(|| format!("cannot open the queue of {}", server.name))?;
        let waiting = queue.len();
        let sorter = Sorter {
            name: server.name.clone(),
            hostname: format!("{}.{}", server.name, config.domain),
            site: site.clone(),
            queue: Arc::new(queue),
            tls: Some(tls.clone()),
            relay: relay.clone(),
            dkim: dkim.clone(),
            verifier: verifier.clone(),
        };
        let p = config.ports;
        for ip in &server.addresses {
            for (port, number, what) in [
                (Port::Mx, p.smtp, "SMTP"),
                (Port::Submission, p.submission, "submission"),
                (Port::Submissions, p.submissions, "submissions"),
            ] {
                let addr = SocketAddr::new(*ip, number);
                let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
                    format!("cannot listen for {what} on {addr} ({})", server.name)
                })?;
                tasks.spawn(run(listener, sorter.clone(), port, stop.clone()));
            }
            report.push(format!(
                "{} {ip}: SMTP {} (MX), submission {} (STARTTLS) / {} (TLS)",
                server.name, p.smtp, p.submission, p.submissions
            ));
        }
        report.push(format!("  queue {} ({waiting} waiting)", dir.display()));
        tasks.spawn(tls_policy::report::run(sorter.clone(), stop.clone()));
        tasks.spawn(delivery::run(sorter, stop.clone()));
    }
    if !config.sorters.is_empty() && site.view().users.get(&config.postmaster).is_none() {
        tracing::warn!(
            user = %config.postmaster,
            "[site] postmaster names no user yet: mail for postmaster is deferred (451) until that user exists"
        );
    }
    Ok(report)
}
