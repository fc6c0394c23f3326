//! The dns role: an authoritative server for the site's domains over UDP and TCP,
//! answering from a [`Zone`] that is rebuilt whenever the site changes, so a
//! `letter move` or a drained server shows in answers within one poll interval.
//!
//! Names outside the site's domains are REFUSED (this is not a resolver); unknown
//! names inside them get NXDOMAIN with the SOA. Record sets with several members
//! (notably `outbox`) are rotated on every answer: round-robin DNS.

pub mod zone;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use hickory_proto::op::{Edns, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::Record;
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

use crate::metrics::METRICS;
use crate::state::Site;
pub use zone::Zone;
use zone::Lookup;

/// How long a TCP client may stay silent before it is dropped.
const TCP_TIMEOUT: Duration = Duration::from_secs(5);

/// Answers queries from the current zone.
pub struct Handler {
    zone: Arc<ArcSwap<Zone>>,
    turn: AtomicUsize,
}

fn rcode_index(code: ResponseCode) -> usize {
    match code {
        ResponseCode::NoError => 0,
        ResponseCode::NXDomain => 1,
        ResponseCode::Refused => 2,
        ResponseCode::FormErr => 3,
        ResponseCode::NotImp => 4,
        _ => 5,
    }
}

impl Handler {
    pub fn new(zone: Arc<ArcSwap<Zone>>) -> Handler {
        Handler {
            zone,
            turn: AtomicUsize::new(0),
        }
    }

    async fn error<R: ResponseHandler>(
        &self,
        request: &Request,
        edns: Option<&Edns>,
        code: ResponseCode,
        mut response_handle: R,
    ) -> ResponseInfo {
        METRICS.dns(rcode_index(code));
        let response = MessageResponseBuilder::new(&request.queries, edns)
            .error_msg(&request.metadata, code);
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(error) => {
                tracing::debug!(%error, "cannot send DNS error response");
                failed(request)
            }
        }
    }
}

fn failed(request: &Request) -> ResponseInfo {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.response_code = ResponseCode::ServFail;
    ResponseInfo::from(hickory_proto::op::Header {
        metadata,
        counts: Default::default(),
    })
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let response_edns = request.edns.as_ref().map(|req| {
            let mut edns = Edns::new();
            edns.set_max_payload(req.max_payload().max(512));
            edns.set_version(0);
            edns
        });
        let edns = response_edns.as_ref();
        if request.metadata.message_type != MessageType::Query {
            return self.error(request, edns, ResponseCode::FormErr, response_handle).await;
        }
        if request.metadata.op_code != OpCode::Query {
            return self.error(request, edns, ResponseCode::NotImp, response_handle).await;
        }
        if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            return self.error(request, edns, ResponseCode::BADVERS, response_handle).await;
        }
        let Ok(info) = request.request_info() else {
            return self.error(request, edns, ResponseCode::FormErr, response_handle).await;
        };
        let zone = self.zone.load();
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        let builder = MessageResponseBuilder::new(&request.queries, edns);
        let none: &[Record] = &[];
        let (answers, rest, soa, additionals): (&[Record], &[Record], &[Record], &[Record]) =
            match zone.lookup(info.query.name(), info.query.query_type()) {
                Lookup::Refused => {
                    return self.error(request, edns, ResponseCode::Refused, response_handle).await;
                }
                Lookup::Found(set) => {
                    let n = set.records.len();
                    let k = if n > 1 {
                        self.turn.fetch_add(1, Ordering::Relaxed) % n
                    } else {
                        0
                    };
                    (&set.records[k..], &set.records[..k], none, &set.additionals)
                }
                Lookup::Any(records) => (records, none, none, none),
                Lookup::NoData(soa) => (none, none, std::slice::from_ref(soa), none),
                Lookup::NxDomain(soa) => {
                    metadata.response_code = ResponseCode::NXDomain;
                    (none, none, std::slice::from_ref(soa), none)
                }
            };
        METRICS.dns(rcode_index(metadata.response_code));
        let response = builder.build(
            metadata,
            answers.iter().chain(rest.iter()),
            none.iter(),
            soa.iter(),
            additionals.iter(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(error) => {
                tracing::debug!(%error, "cannot send DNS response");
                failed(request)
            }
        }
    }
}

/// A UDP socket with SO_REUSEPORT, so that several receive loops share the port.
fn udp_socket(addr: SocketAddr) -> std::io::Result<tokio::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    #[cfg(unix)]
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    tokio::net::UdpSocket::from_std(socket.into())
}

/// A running DNS role.
pub struct Dns {
    pub server: Server<Handler>,
    pub zone: Arc<ArcSwap<Zone>>,
}

/// Binds the DNS role on the configured address and keeps its zone current.
pub async fn start(site: &Arc<Site>) -> anyhow::Result<Dns> {
    let snapshot = site.snapshot();
    let addr = snapshot.config().dns_listen;
    let zone = Arc::new(ArcSwap::from_pointee(Zone::build(&snapshot.map)));
    let mut server = Server::new(Handler::new(zone.clone()));
    // One receive loop per core: the kernel spreads clients across the sockets.
    let loops = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
    for _ in 0..loops {
        let socket = udp_socket(addr)
            .map_err(|e| anyhow::anyhow!("cannot listen for DNS on udp {addr}: {e}"))?;
        server.register_socket(socket);
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for DNS on tcp {addr}: {e}"))?;
    server.register_listener(listener, TCP_TIMEOUT, 64);

    let mut changes = site.subscribe();
    let site = site.clone();
    let live = zone.clone();
    tokio::spawn(async move {
        while changes.changed().await.is_ok() {
            let snapshot = site.snapshot();
            live.store(Arc::new(Zone::build(&snapshot.map)));
        }
    });
    Ok(Dns { server, zone })
}
