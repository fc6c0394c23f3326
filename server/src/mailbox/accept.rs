//! What every mailbox protocol's connections share: the accept loop with its
//! connection limits (new connections past them get the protocol's "busy" line and are
//! closed) and a stop signal, the TLS handshake, and the rule for when passwords may be
//! sent.
//!
//! Two limits hold on each listener (the site's `[limits]`): the connections open in
//! all, and the connections from one source (an IPv4 address, an IPv6 /64) that have
//! not logged in yet, so that one host cannot take every slot with connections that
//! never log in, while an office behind one address keeps its logged-in sessions. On
//! listeners without login (SMTP on port 25) every connection counts for its source,
//! as Postfix's `smtpd_client_connection_count_limit` does.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

/// The connection limits of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once.
    pub total: usize,
    /// Connections from one source that have not logged in.
    pub per_source: usize,
}

/// What a listener answers to a connection over its limits, before closing it.
#[derive(Debug, Clone, Copy)]
pub struct Busy {
    /// All of the listener's connections are taken.
    pub full: &'static [u8],
    /// The source has too many connections that have not logged in.
    pub source: &'static [u8],
}

/// The source a connection counts for: an IPv4 address (IPv4-mapped IPv6 included),
/// or an IPv6 /64 (one customer network, usually).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    V4(u32),
    V6(u64),
}

impl Source {
    pub fn of(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(v4) => Source::V4(v4.to_bits()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source::V4(v4.to_bits()),
                None => Source::V6((v6.to_bits() >> 64) as u64),
            },
        }
    }
}

/// The connections open per source on one listener.
type Counts = Arc<Mutex<HashMap<Source, usize>>>;

/// One connection's places in its listener's limits: the listener slot is held until
/// the connection ends, the source's slot until it logs in.
#[derive(Debug)]
pub struct Admission {
    _permit: OwnedSemaphorePermit,
    source: Option<(Source, Counts)>,
}

impl Admission {
    /// The client has logged in: it no longer counts against its source.
    pub fn logged_in(&mut self) {
        if let Some((source, counts)) = self.source.take() {
            let mut counts = counts.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = counts.get_mut(&source) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(&source);
                }
            }
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.logged_in();
    }
}

/// Accepts connections until `stop` turns true, serving each with `handle` on its own
/// task within `limits`; every connection counts against its source until it ends.
pub async fn run<F, Fut>(
    listener: TcpListener,
    limits: Limits,
    busy: Busy,
    stop: watch::Receiver<bool>,
    handle: F,
) -> anyhow::Result<()>
where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = std::io::Result<()>> + Send + 'static,
{
    run_admitting(
        listener,
        limits,
        busy,
        stop,
        move |stream, peer, admission| {
            let connection = handle(stream, peer);
            async move {
                let result = connection.await;
                drop(admission);
                result
            }
        },
    )
    .await
}

/// Like [`run`], for protocols with login: `handle` gets the connection's
/// [`Admission`] and calls [`Admission::logged_in`] once the client has logged in.
pub async fn run_admitting<F, Fut>(
    listener: TcpListener,
    limits: Limits,
    busy: Busy,
    mut stop: watch::Receiver<bool>,
    handle: F,
) -> anyhow::Result<()>
where
    F: Fn(TcpStream, SocketAddr, Admission) -> Fut,
    Fut: Future<Output = std::io::Result<()>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(limits.total));
    let counts: Counts = Arc::default();
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(r) => r,
                Err(error) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return Ok(()),
        };
        // The busy lines go into the new socket's empty send buffer without waiting
        // (and are lost, harmlessly, if they do not fit): the loop never blocks on them.
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            let _ = stream.try_write(busy.full);
            continue;
        };
        let source = Source::of(peer.ip());
        let admitted = {
            let mut counts = counts.lock().unwrap_or_else(|e| e.into_inner());
            let n = counts.entry(source).or_insert(0);
            if *n < limits.per_source {
                *n += 1;
                true
            } else {
                false
            }
        };
        if !admitted {
            tracing::debug!(%peer, "too many connections from one source");
            let _ = stream.try_write(busy.source);
            continue;
        }
        let admission = Admission {
            _permit: permit,
            source: Some((source, counts.clone())),
        };
        // Replies are written whole; waiting to coalesce them (Nagle) only meets the
        // client's delayed ACK and adds 40 ms to every reply of more than one write.
        let _ = stream.set_nodelay(true);
        let connection = handle(stream, peer, admission);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection ended");
            }
        });
    }
}

/// Whether a connection may carry passwords, and whether TLS can still start on it:
/// passwords only over TLS or from a client on this host (loopback), STARTTLS/STLS
/// only where it is offered and only once.
#[derive(Debug, Clone, Copy)]
pub struct Encryption {
    loopback: bool,
    offered: bool,
    active: bool,
}

/// Why TLS cannot start on a connection now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoStartTls {
    AlreadyOn,
    NotOffered,
}

impl Encryption {
    /// A new, unencrypted connection from `peer`.
    pub fn for_peer(peer: SocketAddr) -> Encryption {
        Encryption {
            loopback: peer.ip().is_loopback(),
            offered: false,
            active: false,
        }
    }

    /// STARTTLS/STLS is offered on this connection.
    pub fn offer(&mut self) {
        self.offered = true;
    }

    /// The connection is now encrypted.
    pub fn started(&mut self) {
        self.active = true;
    }

    pub fn passwords_allowed(&self) -> bool {
        self.active || self.loopback
    }

    /// Whether to advertise STARTTLS/STLS now.
    pub fn can_start(&self) -> bool {
        self.offered && !self.active
    }

    /// Whether a STARTTLS/STLS command may start TLS now.
    pub fn start(&self) -> Result<(), NoStartTls> {
        if self.active {
            Err(NoStartTls::AlreadyOn)
        } else if !self.offered {
            Err(NoStartTls::NotOffered)
        } else {
            Ok(())
        }
    }
}

/// A TLS handshake (an implicit-TLS port, 993 or 995, or after STLS), bounded in time
/// so that a silent peer cannot hold a connection slot.
pub async fn tls_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    acceptor: &tokio_rustls::TlsAcceptor,
    stream: S,
) -> std::io::Result<tokio_rustls::server::TlsStream<S>> {
    tokio::time::timeout(Duration::from_secs(30), acceptor.accept(stream))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_addresses_and_ipv6_networks() {
        let a = |s: &str| Source::of(s.parse().unwrap());
        assert_eq!(a("192.0.2.7"), a("::ffff:192.0.2.7"));
        assert_ne!(a("192.0.2.7"), a("192.0.2.8"));
        assert_eq!(a("2001:db8:1:2::1"), a("2001:db8:1:2:ffff::9"));
        assert_ne!(a("2001:db8:1:2::1"), a("2001:db8:1:3::1"));
    }

    #[tokio::test]
    async fn the_source_limit_counts_until_login() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop_tx, stop) = watch::channel(false);
        let (logged_tx, logged) = watch::channel(0usize);
        let limits = Limits {
            total: 10,
            per_source: 2,
        };
        let busy = Busy {
            full: b"full\r\n",
            source: b"source\r\n",
        };
        let accepting = tokio::spawn(run_admitting(
            listener,
            limits,
            busy,
            stop,
            move |stream, _, mut admission| {
                let mut logged = logged.clone();
                async move {
                    // The n-th connection logs in once `logged` reaches n; all stay open.
                    let _ = logged.wait_for(|&n| n > 0).await;
                    admission.logged_in();
                    let _ = stop_ready(stream).await;
                    Ok(())
                }
            },
        ));
        use tokio::io::AsyncReadExt;
        let first = TcpStream::connect(address).await.unwrap();
        let second = TcpStream::connect(address).await.unwrap();
        let mut third = TcpStream::connect(address).await.unwrap();
        let mut line = [0u8; 8];
        let n = third.read(&mut line).await.unwrap();
        assert_eq!(&line[..n], b"source\r\n");
        logged_tx.send(1).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Both logged in: the source may open two more.
        let fourth = TcpStream::connect(address).await.unwrap();
        let mut probe = [0u8; 8];
        let quiet = tokio::time::timeout(Duration::from_millis(200), {
            let mut s = fourth;
            async move { s.read(&mut probe).await }
        })
        .await;
        assert!(quiet.is_err(), "the fourth connection was refused");
        drop((first, second));
        stop_tx.send(true).unwrap();
        accepting.await.unwrap().unwrap();
    }

    /// Holds a connection until its client closes it.
    async fn stop_ready(mut stream: TcpStream) -> std::io::Result<()> {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 16];
        while stream.read(&mut buf).await? > 0 {}
        Ok(())
    }

    #[test]
    fn passwords_need_tls_except_from_loopback() {
        let mut remote = Encryption::for_peer("192.0.2.7:40000".parse().unwrap());
        assert!(!remote.passwords_allowed() && !remote.can_start());
        assert_eq!(remote.start(), Err(NoStartTls::NotOffered));
        remote.offer();
        assert!(remote.can_start() && !remote.passwords_allowed());
        assert_eq!(remote.start(), Ok(()));
        remote.started();
        assert!(remote.passwords_allowed() && !remote.can_start());
        assert_eq!(remote.start(), Err(NoStartTls::AlreadyOn));

        let local = Encryption::for_peer("127.0.0.1:40000".parse().unwrap());
        assert!(local.passwords_allowed());
    }
}
