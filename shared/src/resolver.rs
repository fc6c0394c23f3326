//! The DNS resolver of every part of mailsite that looks names up as a client (the
//! sorters' outbound relay, the desktop helper's probes): the system's resolvers, or
//! one name server given by address and port, so that a site tested on one machine
//! (its own DNS on a high port) is looked up exactly as a real one is.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::dnssec::TrustAnchors;
use hickory_resolver::{ResolverBuilder, TokioResolver};

/// How patient a resolver is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patience {
    /// How long one query to one name server may take.
    pub timeout: Duration,
    /// How many times a query is sent before the lookup fails.
    pub attempts: usize,
    /// Whether answers are cached for their TTL. A diagnostic tool turns this off, so
    /// that every lookup shows what the name server says now.
    pub cache: bool,
}

/// A resolver asking `name_server` (UDP, then TCP for truncated answers) or, without
/// one, the servers of the system's configuration (`/etc/resolv.conf`).
pub fn build(
    name_server: Option<SocketAddr>,
    patience: Patience,
) -> Result<TokioResolver, NetError> {
    builder(name_server, patience)?.build()
}

/// A resolver like [`build`]'s that validates answers with DNSSEC from `anchors`
/// (each record then carries its proof: secure, insecure or bogus), for DANE.
pub fn build_validating(
    name_server: Option<SocketAddr>,
    patience: Patience,
    anchors: TrustAnchors,
) -> Result<TokioResolver, NetError> {
    builder(name_server, patience)?
        .with_trust_anchor(Arc::new(anchors))
        .build()
}

fn builder(
    name_server: Option<SocketAddr>,
    patience: Patience,
) -> Result<ResolverBuilder<TokioRuntimeProvider>, NetError> {
    let mut options = ResolverOpts::default();
    options.timeout = patience.timeout;
    options.attempts = patience.attempts;
    if !patience.cache {
        options.cache_size = 0;
    }
    let builder = match name_server {
        Some(addr) => {
            let mut udp = ConnectionConfig::udp();
            udp.port = addr.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = addr.port();
            let server = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
            TokioResolver::builder_with_config(
                ResolverConfig::from_parts(None, vec![], vec![server]),
                TokioRuntimeProvider::default(),
            )
        }
        None => TokioResolver::builder_tokio()?,
    };
    Ok(builder.with_options(options))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_given_name_server_is_asked_on_its_port() {
        // A name server that never answers: the lookup fails within the timeout,
        // which shows the resolver asked that address and nothing else.
        let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        let resolver = build(
            Some(addr),
            Patience {
                timeout: Duration::from_millis(200),
                attempts: 1,
                cache: false,
            },
        )
        .unwrap();
        let lookup = resolver.lookup_ip("example.test.");
        let (result, received) = tokio::join!(lookup, async {
            let mut buf = [0u8; 512];
            tokio::time::timeout(Duration::from_secs(2), silent.recv_from(&mut buf)).await
        });
        assert!(result.is_err());
        assert!(received.is_ok(), "the query went elsewhere");
    }
}
