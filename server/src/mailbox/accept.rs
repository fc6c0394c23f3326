//! The accept loop every mailbox protocol shares: a connection limit (new connections
//! past it get the protocol's "busy" line and are closed) and a stop signal.

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
