//! What every mailbox protocol's connections share: the accept loop with a connection
//! limit (new connections past it get the protocol's "busy" line and are closed) and a
//! stop signal, the TLS handshake, and the rule for when passwords may be sent.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

/// Accepts connections until `stop` turns true, serving each with `handle` on its own
/// task while fewer than `limit` are open.
pub async fn run<F, Fut>(
    listener: TcpListener,
    limit: usize,
    busy: &'static [u8],
    mut stop: watch::Receiver<bool>,
    handle: F,
) -> anyhow::Result<()>
where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = std::io::Result<()>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(limit));
    loop {
        let (mut stream, peer) = tokio::select! {
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
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            let _ = stream.write_all(busy).await;
            continue;
        };
        // Replies are written whole; waiting to coalesce them (Nagle) only meets the
        // client's delayed ACK and adds 40 ms to every reply of more than one write.
        let _ = stream.set_nodelay(true);
        let connection = handle(stream, peer);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection ended");
            }
            drop(permit);
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
