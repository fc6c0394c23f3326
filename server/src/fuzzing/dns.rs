//! The `dns_requests` target: the fuzzer's bytes as a query to the alias DNS server
//! (the embedded default site's zones, signed), over UDP through the receive loop's own
//! answering (`dns::answer_udp`) and over TCP through the server hickory runs on a
//! loopback listener, sent as one framed request followed by the same bytes as a raw
//! stream (whatever frames they make).
//!
//! A UDP query the prepared answers take (`Prepared::answer`, the receive loop's fast
//! path) must get the answer the hickory path gives, but for the order of a record
//! set's members, which both rotate.
//!
//! Every answer must parse back with hickory-proto as a response to a query that was
//! sent (its ID), fit its transport (a UDP answer the client's buffer: 512 bytes
//! without EDNS; a TCP answer its frame), and answer ANY minimally (RFC 8482: one
//! record set, with its signatures when DO asks for them); a
//! response gets no answer at all, and no input may hang a TCP connection.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_proto::serialize::binary::BinDecodable;
use mailsite_shared::{SiteConfig, SiteMap};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

use crate::directory::dnssec::StoredZoneKey;
use crate::dns::{self, Handler, Zone};

/// Longest a TCP connection may stay open once the client has sent everything.
const BOUND: Duration = Duration::from_secs(10);

/// The address UDP queries come from.
const CLIENT: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1)),
    53535,
);

struct Fixture {
    runtime: Runtime,
    zone: Arc<ArcSwap<Zone>>,
    handler: Handler,
    tcp: SocketAddr,
    /// Keeps the TCP server's tasks.
    _server: hickory_server::Server<Handler>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime for fuzzing");
        let map = SiteMap::initial(Arc::new(SiteConfig::embedded()));
        // Signed, as `serve` signs it by default: queries with DO get signatures.
        let keys = crate::dns::dnssec::Keys::from_stored(&[StoredZoneKey {
            domain: "example.test".to_string(),
            algorithm: 13,
            private_key: crate::dns::dnssec::ZoneKey::generate().expect("a zone signing key"),
        }]);
        let zone = Arc::new(ArcSwap::from_pointee(Zone::build_signed(&map, None, &keys)));
        let handler = Handler::new(zone.clone(), Default::default());
        let (server, tcp) = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("a loopback listener for fuzzing");
            let tcp = listener.local_addr().expect("the listener's address");
            let mut server = hickory_server::Server::new(handler.clone());
            server.register_listener(listener, Duration::from_secs(2), 64);
            (server, tcp)
        });
        Fixture {
            runtime,
            zone,
            handler,
            tcp,
            _server: server,
        }
    })
}

/// The big-endian number some bytes start with (a DNS message's ID, a TCP frame's
/// length), if there are two.
fn be16(message: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*message.first()?, *message.get(1)?]))
}

/// Checks one answer to `request` (when it parses as a query, `query`).
fn check_answer(answer: &[u8], ids: &[u16], query: Option<&Message>) -> Message {
    let message = Message::from_bytes(answer)
        .unwrap_or_else(|e| panic!("an answer that does not parse ({e}): {answer:?}"));
    assert_eq!(message.metadata.message_type, MessageType::Response);
    assert!(
        ids.contains(&message.metadata.id),
        "an answer to a query that was not sent: {message:?}"
    );
    if let Some(query) = query
        && query.metadata.id == message.metadata.id
        && query.queries.len() == 1
        && query.queries[0].query_type() == RecordType::ANY
        && message.metadata.response_code == ResponseCode::NoError
    {
        // One record set (RFC 8482 4.1: with its signatures when DO asks for them).
        let mut types: Vec<RecordType> = message
            .answers
            .iter()
            .map(|r| r.record_type())
            .filter(|t| *t != RecordType::RRSIG)
            .collect();
        types.dedup();
        assert!(
            types.len() <= 1 && message.additionals.len() <= 1,
            "ANY answered in full: {message:?}"
        );
    }
    message
}

/// A message as text, its sections' records sorted: equal for two answers that differ
/// only in the rotation of a set's members.
fn comparable(message: &Message) -> String {
    let sorted = |records: &[hickory_proto::rr::Record]| {
        let mut text: Vec<String> = records.iter().map(ToString::to_string).collect();
        text.sort();
        text
    };
    format!(
        "{:?} {:?} {:?} {:?} {:?} {:?}",
        message.metadata,
        message.queries,
        sorted(&message.answers),
        sorted(&message.authorities),
        sorted(&message.additionals),
        message.edns,
    )
}

/// Any bytes as a UDP query: see the module's documentation.
pub fn udp(data: &[u8]) {
    let fixture = fixture();
    let (answer, slipped) =
        fixture
            .runtime
            .block_on(dns::answer_udp(&fixture.handler, data, CLIENT));
    let query = Message::from_bytes(data).ok();
    let is_response = data.get(2).is_some_and(|b| b & 0x80 != 0);
    let ids: Vec<u16> = be16(data).into_iter().collect();
    if let Some(answer) = answer {
        assert!(!is_response, "a response was answered: {data:?}");
        // The client's buffer: 512 bytes, or what its EDNS says (up to ours).
        let room = match &query {
            Some(q) if q.edns.is_some() => usize::from(q.max_payload()).clamp(512, 4096),
            _ => 512,
        };
        assert!(
            answer.len() <= room,
            "{} bytes of answer for a client with room for {room}",
            answer.len()
        );
        let hickory = check_answer(&answer, &ids, query.as_ref());
        let mut prepared = Vec::new();
        if fixture
            .zone
            .load()
            .prepared()
            .answer(data, &mut 0, &mut prepared)
        {
            let fast = check_answer(&prepared, &ids, query.as_ref());
            assert_eq!(comparable(&fast), comparable(&hickory), "{data:?}");
        }
    } else {
        let mut prepared = Vec::new();
        assert!(
            !fixture
                .zone
                .load()
                .prepared()
                .answer(data, &mut 0, &mut prepared),
            "the prepared answers took a query hickory leaves unanswered: {data:?}"
        );
    }
    if let Some(slip) = slipped {
        assert!(!is_response, "a response was answered: {data:?}");
        assert!(
            slip.len() <= data.len().max(512),
            "a slip larger than its query"
        );
        let message = check_answer(&slip, &ids, query.as_ref());
        assert!(message.metadata.truncation && message.answers.is_empty());
    }
}

/// Any bytes as a TCP stream: see the module's documentation.
pub fn tcp(data: &[u8]) {
    let fixture = fixture();
    // One framed request (cut at the frame's limit), then the bytes as they are.
    let framed = &data[..data.len().min(usize::from(u16::MAX))];
    let mut stream = (framed.len() as u16).to_be_bytes().to_vec();
    stream.extend_from_slice(framed);
    stream.extend_from_slice(data);
    let mut frames = Vec::new();
    let mut rest = &stream[..];
    while let Some(len) = be16(rest).map(usize::from) {
        let Some(frame) = rest.get(2..2 + len) else {
            break;
        };
        frames.push(frame);
        rest = &rest[2 + len..];
    }
    let ids: Vec<u16> = frames.iter().filter_map(|f| be16(f)).collect();
    let output = fixture.runtime.block_on(async {
        let mut client = TcpStream::connect(fixture.tcp)
            .await
            .expect("a loopback connection");
        let (mut from_server, mut to_server) = client.split();
        let read = async {
            let mut output = Vec::new();
            let _ = from_server.read_to_end(&mut output).await;
            output
        };
        let write = async {
            let _ = to_server.write_all(&stream).await;
            let _ = to_server.shutdown().await;
        };
        let (output, ()) = tokio::time::timeout(BOUND, async { tokio::join!(read, write) })
            .await
            .unwrap_or_else(|_| panic!("the TCP connection was still open after {BOUND:?}"));
        output
    });
    let mut rest = &output[..];
    let mut answers = 0;
    while !rest.is_empty() {
        let len = be16(rest).map(usize::from).expect("a whole frame length");
        let answer = rest.get(2..2 + len).expect("a whole answer frame");
        let query = frames
            .iter()
            .find(|f| be16(f) == be16(answer))
            .and_then(|f| Message::from_bytes(f).ok());
        check_answer(answer, &ids, query.as_ref());
        rest = &rest[2 + len..];
        answers += 1;
    }
    assert!(
        answers <= frames.len(),
        "{answers} answers to {} queries",
        frames.len()
    );
}

/// Any bytes, over both transports.
pub fn requests(data: &[u8]) {
    udp(data);
    tcp(data);
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::{Edns, Query};
    use hickory_proto::rr::Name;
    use hickory_proto::serialize::binary::BinEncodable;

    use super::*;

    fn query(name: &str, rtype: RecordType, edns: bool) -> Vec<u8> {
        let mut message = Message::query();
        message.metadata.id = 0x1234;
        message.metadata.recursion_desired = true;
        message.add_query(Query::query(Name::from_ascii(name).expect("a name"), rtype));
        if edns {
            let mut e = Edns::new();
            e.set_max_payload(1232);
            message.set_edns(e);
        }
        message.to_bytes().expect("an encodable query")
    }

    /// The fixture answers from the site's zone, over both transports, and ANY with
    /// the single HINFO of RFC 8482.
    #[test]
    fn queries_are_answered_from_the_zone() {
        let fixture = fixture();
        let raw = query("outbox.example.test.", RecordType::A, false);
        let (answer, _) = fixture
            .runtime
            .block_on(dns::answer_udp(&fixture.handler, &raw, CLIENT));
        let answer = Message::from_bytes(&answer.expect("an answer")).expect("a message");
        assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
        assert!(!answer.answers.is_empty(), "{answer:?}");

        let raw = query("example.test.", RecordType::ANY, true);
        let (answer, _) = fixture
            .runtime
            .block_on(dns::answer_udp(&fixture.handler, &raw, CLIENT));
        let answer = Message::from_bytes(&answer.expect("an answer")).expect("a message");
        assert_eq!(answer.answers.len(), 1);
        assert_eq!(answer.answers[0].record_type(), RecordType::HINFO);
        requests(&raw);
    }
}
