//! The HTTP front door of a node: the listeners and the threads that serve them. The
//! routes come from the roles that answer over HTTP (`autoconfig`, and the helpdesk
//! `console` beside it); `serve` composes them.

pub mod h1;

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::extract::Request;
use axum::response::Response;
use tower::Service;

/// Binds the HTTP listeners: one socket per core on the same address (SO_REUSEPORT),
/// so that accepting is spread over the cores as nginx's workers spread it.
pub fn bind(
    addr: std::net::SocketAddr,
    threads: usize,
) -> std::io::Result<Vec<std::net::TcpListener>> {
    use socket2::{Domain, Protocol, Socket, Type};
    (0..threads.max(1))
        .map(|_| {
            let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
            socket.set_reuse_address(true)?;
            #[cfg(unix)]
            socket.set_reuse_port(true)?;
            socket.set_nonblocking(true)?;
            socket.bind(&addr.into())?;
            socket.listen(1024)?;
            Ok(socket.into())
        })
        .collect()
}

/// Serves `service` (the routes, wrapped once: see `autoconfig::counted`) on the
/// listeners from [`bind`] until `stop` turns true; the requests `prepared` answers
/// take the prepared path ([`h1`]). Each request the router answers carries its peer's
/// address as `ConnectInfo`, as axum's own make-service gives it.
///
/// The connections run on a work-stealing runtime of their own, one worker per
/// listener: when the kernel takes a core from one worker, another picks up its
/// ready connections. One single-threaded runtime per core measured the same
/// requests per second with a longer latency tail (p99 5.8 to 7.6 ms against 4.1 to
/// 5.5 ms, BENCHMARKS.md). The handle finishes when every connection has ended.
pub fn serve<P, S>(
    listeners: Vec<std::net::TcpListener>,
    prepared: P,
    service: S,
    stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<std::thread::JoinHandle<std::io::Result<()>>>
where
    P: h1::Prepared,
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let workers = listeners.len().max(1);
    std::thread::Builder::new()
        .name("http".to_string())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .thread_name("http")
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let mut accepting = tokio::task::JoinSet::new();
                for listener in listeners {
                    let (prepared, service, stop) =
                        (prepared.clone(), service.clone(), stop.clone());
                    accepting.spawn(accept(listener, prepared, service, stop));
                }
                let mut result = Ok(());
                while let Some(ended) = accepting.join_next().await {
                    match ended {
                        Ok(Err(e)) => result = Err(e),
                        Err(e) => result = Err(std::io::Error::other(e)),
                        Ok(Ok(())) => {}
                    }
                }
                result
            })
        })
}

/// Accepts connections on one listener until `stop`, then waits for them to end.
async fn accept<P, S>(
    listener: std::net::TcpListener,
    prepared: P,
    service: S,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()>
where
    P: h1::Prepared,
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let listener = tokio::net::TcpListener::from_std(listener)?;
    // Every connection holds a receiver; when all are dropped, all have ended.
    let (open, _) = tokio::sync::watch::channel(());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => break,
        };
        let (stream, peer): (_, SocketAddr) = match accepted {
            Ok(accepted) => accepted,
            // The peer gave up before the accept: nothing to serve.
            Err(e) if is_connection_error(&e) => continue,
            // Out of file descriptors or memory: wait, as axum's serve does.
            Err(e) => {
                tracing::warn!(error = %e, "cannot accept HTTP connections");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (prepared, service, stop, held) = (
            prepared.clone(),
            service.clone(),
            stop.clone(),
            open.subscribe(),
        );
        tokio::spawn(async move {
            h1::connection(stream, peer, prepared, service, stop).await;
            drop(held);
        });
    }
    drop(listener);
    open.closed().await;
    Ok(())
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}
