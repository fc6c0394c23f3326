//! The dns role: an authoritative server for the site's domains over UDP and TCP,
//! answering from a [`Zone`] that is rebuilt whenever the site changes, so a
//! `letter move` or a drained server shows in answers within one poll interval.
//!
//! Names outside the site's domains are REFUSED (this is not a resolver); unknown
//! names inside them get NXDOMAIN with the SOA. Record sets with several members
//! (notably `outbox`) are rotated on every answer: round-robin DNS.
//!
//! Facing the internet: ANY gets the minimal answer of RFC 8482 (one HINFO record,
//! "RFC8482"), so the server cannot be used to amplify traffic with it, and answers
//! over UDP are rate-limited per source network ([`rate_limit`]); whatever does not
//! fit a client's UDP buffer, or is limited with a slip, goes out truncated (TC=1) for
//! the client to ask again over TCP.

#[cfg(target_os = "linux")]
mod batch;
pub mod dnssec;
mod prepared;
pub mod rate_limit;
pub mod zone;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use hickory_proto::op::{Edns, Header, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::HINFO;
use hickory_proto::rr::{RData, Record};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};
use hickory_server::Server;
use hickory_server::net::NetError;
use hickory_server::net::runtime::{Time, TokioTime};
use hickory_server::net::xfer::Protocol as Transport;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponse, MessageResponseBuilder};
use mailsite_shared::config::Role;
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::state::Site;
use rate_limit::{RateLimit, Verdict};
use zone::Lookup;
pub use zone::Zone;

/// TTL of the minimal ANY answer: it says nothing that changes (RFC 8482 4.2).
const ANY_TTL: u32 = 3600;

/// The largest UDP query read and the largest UDP answer sent.
const UDP_BUFFER: usize = 4096;

/// How long a TCP client may stay silent before it is dropped.
const TCP_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the certificate file is read again for the TLSA records.
const CERTIFICATE_CHECK: Duration = Duration::from_secs(60);

/// Answers queries from the current zone; clones share the zone and the rotation.
#[derive(Clone)]
pub struct Handler {
    zone: Arc<ArcSwap<Zone>>,
    turn: Arc<AtomicUsize>,
    /// The node's counters (its [`crate::state::Site`]'s).
    metrics: Arc<Metrics>,
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
    pub fn new(zone: Arc<ArcSwap<Zone>>, metrics: Arc<Metrics>) -> Handler {
        Handler {
            zone,
            turn: Arc::new(AtomicUsize::new(0)),
            metrics,
        }
    }

    async fn error<R: ResponseHandler>(
        &self,
        request: &Request,
        edns: Option<&Edns>,
        code: ResponseCode,
        mut response_handle: R,
    ) -> ResponseInfo {
        self.metrics.dns(rcode_index(code));
        let response =
            MessageResponseBuilder::new(&request.queries, edns).error_msg(&request.metadata, code);
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
        // DO (RFC 3225): the client wants the signatures, and says so back.
        let dnssec_ok = request.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
        let response_edns = request.edns.as_ref().map(|req| {
            let mut edns = Edns::new();
            edns.set_max_payload(req.max_payload().max(512));
            edns.set_version(0);
            edns.set_dnssec_ok(dnssec_ok);
            edns
        });
        let edns = response_edns.as_ref();
        if request.metadata.message_type != MessageType::Query {
            return self
                .error(request, edns, ResponseCode::FormErr, response_handle)
                .await;
        }
        if request.metadata.op_code != OpCode::Query {
            return self
                .error(request, edns, ResponseCode::NotImp, response_handle)
                .await;
        }
        if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            return self
                .error(request, edns, ResponseCode::BADVERS, response_handle)
                .await;
        }
        let Ok(info) = request.request_info() else {
            return self
                .error(request, edns, ResponseCode::FormErr, response_handle)
                .await;
        };
        let zone = self.zone.load();
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        let builder = MessageResponseBuilder::new(&request.queries, edns);
        let signed = dnssec_ok && zone.signed();
        let qname = info.query.name();
        let minimal_any: Record;
        let denial: Vec<Record>;
        let mut answers: Vec<&Record> = Vec::new();
        let mut authority: Vec<&Record> = Vec::new();
        let mut additionals: &[Record] = &[];
        let lookup = zone.lookup(qname, info.query.query_type());
        let exists = matches!(lookup, Lookup::NoData(_));
        match lookup {
            Lookup::Refused => {
                return self
                    .error(request, edns, ResponseCode::Refused, response_handle)
                    .await;
            }
            Lookup::Found(set) => {
                let n = set.records.len();
                let k = if n > 1 {
                    self.turn.fetch_add(1, Ordering::Relaxed) % n
                } else {
                    0
                };
                answers.extend(set.records[k..].iter().chain(&set.records[..k]));
                if signed {
                    answers.extend(&set.signatures);
                }
                additionals = &set.additionals;
            }
            // RFC 8482: a signed zone gives one of the name's record sets with its
            // signature (4.1); otherwise one synthesised HINFO instead of every record.
            Lookup::Any(node) if signed && !node.sets.is_empty() => {
                let set = &node.sets[0];
                answers.extend(set.records.iter().chain(&set.signatures));
            }
            Lookup::Any(_) => {
                minimal_any = Record::from_rdata(
                    qname.into(),
                    ANY_TTL,
                    RData::HINFO(HINFO::new("RFC8482".to_string(), String::new())),
                );
                answers.push(&minimal_any);
            }
            Lookup::NoData(soa) | Lookup::NxDomain(soa) => {
                if !exists {
                    metadata.response_code = ResponseCode::NXDomain;
                }
                authority.push(soa);
                if signed {
                    authority.extend(zone.soa_signatures(soa));
                    denial = zone.denial(qname, exists);
                    authority.extend(&denial);
                }
            }
        }
        self.metrics.dns(rcode_index(metadata.response_code));
        let response = builder.build(
            metadata,
            answers,
            std::iter::empty(),
            authority,
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
    // Room for bursts: a full queue drops queries silently.
    let _ = socket.set_recv_buffer_size(4 << 20);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    tokio::net::UdpSocket::from_std(socket.into())
}

/// Collects the encoded response of one UDP query, for the receive loop to send.
#[derive(Clone, Default)]
struct Reply {
    bytes: Arc<Mutex<Vec<u8>>>,
    max_size: u16,
}

#[async_trait::async_trait]
impl ResponseHandler for Reply {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let max = response
            .edns()
            .map_or(512, |e| e.max_payload().max(512))
            .min(self.max_size);
        let metadata = *response.metadata();
        let mut bytes = self.bytes.lock().unwrap_or_else(|e| e.into_inner());
        bytes.clear();
        let mut encoder = BinEncoder::new(&mut bytes);
        encoder.set_max_size(max);
        match response.destructive_emit(&mut encoder) {
            Ok(info) => {
                // hickory marks an answer that did not fit as truncated, with no
                // records counted, but leaves the records it began writing after the
                // question: cut them off, or strict clients (dnspython) reject the
                // datagram as having junk at its end instead of retrying over TCP.
                if metadata_truncated(&bytes) {
                    cut_after_question(&mut bytes);
                }
                Ok(info)
            }
            Err(_) => {
                // Too large for the client's buffer: the header alone, truncated, so
                // that it retries over TCP.
                bytes.clear();
                let mut metadata = metadata;
                metadata.truncation = true;
                let header = Header {
                    metadata,
                    counts: Default::default(),
                };
                header.emit(&mut BinEncoder::new(&mut bytes))?;
                Ok(ResponseInfo::from(header))
            }
        }
    }
}

/// Whether an encoded response has its TC bit set.
fn metadata_truncated(bytes: &[u8]) -> bool {
    bytes.get(2).is_some_and(|flags| flags & 0x02 != 0)
}

/// Cuts an encoded response after its question section (the header's counts of the
/// other sections must already be 0).
fn cut_after_question(bytes: &mut Vec<u8>) {
    let questions = bytes
        .get(4..6)
        .map_or(0, |c| u16::from_be_bytes([c[0], c[1]]));
    let Some(section) = bytes.get(12..) else {
        return;
    };
    let mut decoder = BinDecoder::new(section);
    for _ in 0..questions {
        if hickory_proto::op::Query::read(&mut decoder).is_err() {
            return;
        }
    }
    let end = 12 + decoder.index();
    bytes.truncate(end);
    // The header's answer, authority and additional counts: nothing follows.
    for count in bytes.get_mut(6..12).into_iter().flatten() {
        *count = 0;
    }
}

/// Answers one UDP socket's queries, a batch at a time: up to [`batch::BATCH`]
/// datagrams are read with one system call, each is answered from the zone's prepared
/// answers when it is a plain query ([`prepared`]) or through hickory otherwise, and
/// the answers go back with one system call.
#[cfg(target_os = "linux")]
async fn udp_loop(
    socket: tokio::net::UdpSocket,
    handler: Handler,
    limit: Option<Arc<RateLimit>>,
    mut stop: watch::Receiver<bool>,
) {
    use std::os::fd::AsRawFd;
    use tokio::io::Interest;

    let fd = socket.as_raw_fd();
    let mut batch = batch::Batch::new(UDP_BUFFER);
    let mut answers: Vec<Vec<u8>> = (0..batch::BATCH).map(|_| Vec::with_capacity(512)).collect();
    let mut replies: Vec<usize> = Vec::with_capacity(batch::BATCH);
    let reply = Reply {
        bytes: Arc::default(),
        max_size: UDP_BUFFER as u16,
    };
    // Rotation of record sets with several members, per loop: round robin still.
    let mut turn = 0usize;
    loop {
        tokio::select! {
            ready = socket.readable() => if let Err(error) = ready {
                tracing::debug!(%error, "DNS socket not readable");
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            },
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
        }
        loop {
            let read = match socket.try_io(Interest::READABLE, || batch.receive(fd)) {
                Ok(read) => read,
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(error) => {
                    // Transient (an ICMP error for an earlier reply); pause so that a
                    // persistent one cannot spin a core.
                    tracing::debug!(%error, "DNS receive failed");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    break;
                }
            };
            let zone = handler.zone.load_full();
            let prepared = zone.prepared();
            let now = std::time::Instant::now();
            let mut answered = 0;
            replies.clear();
            for (i, answer) in answers.iter_mut().enumerate().take(read) {
                let (raw, src) = batch.datagram(i);
                let Some(src) = src.filter(|src| src.port() != 0 && !raw.is_empty()) else {
                    continue;
                };
                // Over its network's rate a query is not even parsed: dropped, or
                // answered with its own header truncated so that a real client
                // retries over TCP.
                let verdict = limit
                    .as_ref()
                    .map_or(Verdict::Send, |l| l.check(src.ip(), now));
                if verdict != Verdict::Send {
                    handler.metrics.dns(rcode_index(ResponseCode::Refused));
                    if verdict == Verdict::Truncate
                        && let Some(out) = truncated(raw)
                    {
                        *answer = out;
                        replies.push(i);
                    }
                    continue;
                }
                if prepared.answer(raw, &mut turn, answer) {
                    answered += 1;
                    replies.push(i);
                } else if let Some(out) = answer_datagram(&handler, &reply, raw, src).await {
                    *answer = out;
                    replies.push(i);
                }
            }
            handler
                .metrics
                .dns_by(rcode_index(ResponseCode::NoError), answered);
            // Runs of answers to one sender, of one length, go out with one header.
            batch.order(&mut replies, &answers);
            let mut sent = 0;
            while sent < replies.len() {
                match socket.try_io(Interest::WRITABLE, || {
                    batch.send(fd, &replies[sent..], &answers)
                }) {
                    Ok(n) => sent += n.max(1),
                    Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                        if socket.writable().await.is_err() {
                            break;
                        }
                    }
                    Err(error) => {
                        // This answer cannot go (its sender is unreachable): the next.
                        tracing::debug!(%error, "DNS send failed");
                        sent += 1;
                    }
                }
            }
        }
    }
}

/// Answers one UDP socket's queries in turn, without a task or channel per query:
/// a query is parsed, answered from the zone and sent back in place.
#[cfg(not(target_os = "linux"))]
async fn udp_loop(
    socket: tokio::net::UdpSocket,
    handler: Handler,
    limit: Option<Arc<RateLimit>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; UDP_BUFFER];
    let reply = Reply {
        bytes: Arc::default(),
        max_size: UDP_BUFFER as u16,
    };
    loop {
        let (n, src) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(error) => {
                    // Transient (an ICMP error for an earlier reply); pause so that a
                    // persistent one cannot spin a core.
                    tracing::debug!(%error, "DNS receive failed");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
            },
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
        };
        if src.port() == 0 {
            continue;
        }
        let raw = &buf[..n];
        // Over its network's rate a query is not even parsed: dropped, or answered
        // with its own header truncated so that a real client retries over TCP.
        let verdict = limit.as_ref().map_or(Verdict::Send, |l| {
            l.check(src.ip(), std::time::Instant::now())
        });
        if verdict != Verdict::Send {
            handler.metrics.dns(rcode_index(ResponseCode::Refused));
            if verdict == Verdict::Truncate
                && let Some(out) = truncated(raw)
            {
                let _ = socket.send_to(&out, src).await;
            }
            continue;
        }
        let Some(out) = answer_datagram(&handler, &reply, raw, src).await else {
            continue;
        };
        if let Err(error) = socket.send_to(&out, src).await {
            tracing::debug!(%error, "DNS send failed");
        }
    }
}

/// The answer to one UDP datagram from `src` (`None`: nothing is sent back), put
/// together in `reply`.
async fn answer_datagram(
    handler: &Handler,
    reply: &Reply,
    raw: &[u8],
    src: SocketAddr,
) -> Option<Vec<u8>> {
    let request = match Request::from_bytes(raw.to_vec(), src, Transport::Udp) {
        Ok(request) => request,
        Err(_) => {
            // A readable header gets FORMERR; anything shorter is not DNS at all.
            let header = Header::read(&mut BinDecoder::new(raw)).ok()?;
            if header.metadata.message_type == MessageType::Response {
                return None;
            }
            handler.metrics.dns(rcode_index(ResponseCode::FormErr));
            let mut metadata = Metadata::response_from_request(&header.metadata);
            metadata.response_code = ResponseCode::FormErr;
            let mut out = Vec::with_capacity(12);
            let header = Header {
                metadata,
                counts: Default::default(),
            };
            header.emit(&mut BinEncoder::new(&mut out)).ok()?;
            return Some(out);
        }
    };
    // Never answer a response: that would let anyone bounce traffic off us.
    if request.metadata.message_type == MessageType::Response {
        return None;
    }
    handler
        .handle_request::<_, TokioTime>(&request, reply.clone())
        .await;
    let out = std::mem::take(&mut *reply.bytes.lock().unwrap_or_else(|e| e.into_inner()));
    (!out.is_empty()).then_some(out)
}

/// What the UDP receive loop sends back for one datagram (`None`: nothing), and what
/// it sends a network over its rate limit with a slip: for the fuzz targets.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) async fn answer_udp(
    handler: &Handler,
    raw: &[u8],
    src: SocketAddr,
) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let reply = Reply {
        bytes: Arc::default(),
        max_size: UDP_BUFFER as u16,
    };
    (
        answer_datagram(handler, &reply, raw, src).await,
        truncated(raw),
    )
}

/// The empty, truncated answer to a query (its header and question), which tells a
/// client to ask again over TCP; `None` for what is not a query.
fn truncated(raw: &[u8]) -> Option<Vec<u8>> {
    let message = hickory_proto::op::Message::from_bytes(raw).ok()?;
    if message.metadata.message_type != MessageType::Query {
        return None;
    }
    let mut reply = message.truncate();
    reply.metadata = Metadata::response_from_request(&message.metadata);
    reply.metadata.truncation = true;
    reply.metadata.authoritative = true;
    reply.to_bytes().ok()
}

/// A running DNS role: TCP through hickory's server, UDP through [`udp_loop`]s.
pub struct Dns {
    pub tcp: Server<Handler>,
    pub udp: tokio::task::JoinSet<()>,
    pub zone: Arc<ArcSwap<Zone>>,
}

/// Binds the DNS role on the configured address and keeps its zone current.
pub async fn start(site: &Arc<Site>, stop: watch::Receiver<bool>) -> anyhow::Result<Dns> {
    let snapshot = site.snapshot();
    let addr = snapshot.config().dns_listen;
    // TLSA records name the certificate the sorters present: made here first when
    // this node's sorters will make it (one data directory), read from `[tls]` or
    // that directory, and read again every minute (a renewed certificate).
    let node = snapshot.config().clone();
    if node.tls.is_none() && node.runs(Role::Sorter) {
        crate::tls::ensure(&node).context("cannot make the site certificate")?;
    }
    let certificate = move || match crate::tls::public_key_digest(&node) {
        Ok(digest) => digest,
        Err(error) => {
            tracing::warn!(
                error = format!("{error:#}"),
                "cannot read the site certificate: no TLSA records"
            );
            None
        }
    };
    let mut digest = certificate();
    let domains: Vec<String> = snapshot.config().domains().map(str::to_string).collect();
    let keys = dnssec::Keys::load(&site.directory, &domains, snapshot.config().dnssec)
        .await
        .context("cannot read or make the zone signing keys (DNSSEC)")?;
    let zone = Arc::new(ArcSwap::from_pointee(Zone::build_signed(
        &snapshot.map,
        digest,
        &keys,
    )));
    let handler = Handler::new(zone.clone(), site.metrics.clone());
    // One receive loop per core: the kernel spreads clients across the sockets.
    let loops = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8);
    let config = snapshot.config();
    let limit = RateLimit::new(config.dns_rate_limit, config.dns_rate_limit_slip).map(Arc::new);
    let mut udp = tokio::task::JoinSet::new();
    for _ in 0..loops {
        let socket = udp_socket(addr)
            .map_err(|e| anyhow::anyhow!("cannot listen for DNS on udp {addr}: {e}"))?;
        udp.spawn(udp_loop(
            socket,
            handler.clone(),
            limit.clone(),
            stop.clone(),
        ));
    }
    let mut tcp = Server::new(handler);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for DNS on tcp {addr}: {e}"))?;
    tcp.register_listener(listener, TCP_TIMEOUT, 64);

    let mut changes = site.subscribe();
    let site = site.clone();
    let live = zone.clone();
    tokio::spawn(async move {
        let mut check = tokio::time::interval(CERTIFICATE_CHECK);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        check.tick().await;
        // Signatures are made again well before they run out, changes or not.
        let mut resign = tokio::time::interval(dnssec::RESIGN);
        resign.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        resign.tick().await;
        loop {
            // DKIM keys leave the zone at a time of their own, not at a change.
            let now = crate::dkim::now();
            let next = site.snapshot().map.dkim_next_change(now);
            let due = async {
                match next {
                    Some(at) => tokio::time::sleep(Duration::from_secs((at - now) as u64)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { break },
                () = due => {}
                _ = resign.tick(), if !keys.is_empty() => {}
                _ = check.tick() => {
                    let now_digest = certificate();
                    if now_digest == digest {
                        continue;
                    }
                    tracing::info!("the site certificate's key changed: TLSA records follow");
                    digest = now_digest;
                }
            }
            let snapshot = site.snapshot();
            live.store(Arc::new(Zone::build_signed(&snapshot.map, digest, &keys)));
        }
    });
    Ok(Dns { tcp, udp, zone })
}
