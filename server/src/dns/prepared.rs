//! Answers put on the wire when the zone is built, not when a query comes: the UDP
//! fast path. For every name of the zone, each of its record sets is encoded once per
//! rotation of its members, and once as the NODATA answer (the SOA in the authority
//! section); a query for one of those names then costs a parse of its question, a
//! hash lookup and a copy with the query's ID, flags and question written over.
//!
//! The answers are the ones the hickory path gives ([`super::Handler`]), byte for
//! byte: they are encoded by the same builder, the question as it was sent is copied
//! in as hickory copies it, and name compression points at the question's offset,
//! which is the same for every query of a name. The tests compare both paths for every
//! name, type, flag and EDNS combination.
//!
//! In a signed zone each answer is prepared a second time for queries with DO (RFC
//! 3225), as the hickory path gives them: the set's RRSIG records after its members,
//! and for NODATA the SOA's signatures and the name's NSEC record with its own; the
//! OPT record says DO back. Resolvers that validate set DO on every query, so this is
//! the answer most of the internet gets.
//!
//! What is not plain is left to the hickory path: unknown names (NXDOMAIN, REFUSED),
//! ANY and zone transfer types, other classes and opcodes, several questions,
//! compressed question names, EDNS options or versions, and answers too large for the
//! client's buffer (which hickory truncates).

use hickory_proto::op::{Header, Metadata};
use hickory_proto::rr::{LowerName, Name, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncoder};
use hickory_server::zone_handler::{MessageResponseBuilder, Queries};

use super::zone::{Lookup, Node, Zone};

/// The largest answer sent over UDP (as [`super::UDP_BUFFER`]).
const MAX_UDP: usize = 4096;

/// The prepared answers of one name, to queries with or without DO.
#[derive(Debug, Default)]
struct Answers {
    plain: Variant,
    /// With the signatures and denial records, in a signed zone.
    signed: Option<Variant>,
}

#[derive(Debug, Default)]
struct Variant {
    /// (type, the answer for each rotation of the set's members).
    sets: Vec<(u16, Vec<Box<[u8]>>)>,
    /// The answer for a type the name has no records of.
    nodata: Box<[u8]>,
}

/// Every name's prepared answers, keyed by the name in wire format, lower case.
#[derive(Debug, Default)]
pub struct Prepared {
    names: foldhash::HashMap<Box<[u8]>, Answers>,
}

/// A name in wire format, lower case: the key of [`Prepared`].
fn wire(name: &Name) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 1);
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
    out
}

/// The response the hickory path gives to a query of `qname` (wire format) and
/// `qtype` with ID 0 and no flags, from these sections.
fn encode(
    qname: &[u8],
    qtype: RecordType,
    answers: &[&Record],
    authority: &[&Record],
    additionals: &[Record],
) -> Option<Box<[u8]>> {
    let mut question = qname.to_vec();
    question.extend_from_slice(&u16::from(qtype).to_be_bytes());
    question.extend_from_slice(&1u16.to_be_bytes());
    let queries = Queries::read(&mut BinDecoder::new(&question), 1).ok()?;
    let header = Header::read(&mut BinDecoder::new(&[0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0])).ok()?;
    let mut metadata = Metadata::response_from_request(&header.metadata);
    metadata.authoritative = true;
    let none: &[Record] = &[];
    let response = MessageResponseBuilder::new(&queries, None).build(
        metadata,
        answers.iter().copied(),
        none.iter(),
        authority.iter().copied(),
        additionals.iter(),
    );
    let mut bytes = Vec::new();
    let mut encoder = BinEncoder::new(&mut bytes);
    response.destructive_emit(&mut encoder).ok()?;
    Some(bytes.into_boxed_slice())
}

/// Query types the fast path leaves to hickory: ANY, the zone transfers and the
/// obsolete mail queries, OPT.
fn special(qtype: u16) -> bool {
    matches!(qtype, 0 | 41 | 251..=255)
}

impl Variant {
    /// Encodes the answers of `owner` as the hickory path gives them to queries
    /// without DO, or (`signed`) with it.
    fn build(
        zone: &Zone,
        owner: &LowerName,
        node: &Node,
        qname: &[u8],
        signed: bool,
    ) -> Option<Variant> {
        // NULL is a type the zone never has: its lookup is the name's NODATA.
        let Lookup::NoData(soa) = zone.lookup(owner, RecordType::NULL) else {
            return None;
        };
        let (soa_signatures, denial) = if signed {
            (zone.soa_signatures(soa), zone.denial(owner, true))
        } else {
            (&[][..], Vec::new())
        };
        let authority: Vec<&Record> = std::iter::once(soa)
            .chain(soa_signatures)
            .chain(&denial)
            .collect();
        let nodata = encode(qname, RecordType::NULL, &[], &authority, &[])?;
        let mut variant = Variant {
            sets: Vec::new(),
            nodata,
        };
        for set in &node.sets {
            let Some(rtype) = set.rtype else { continue };
            let n = set.records.len();
            let signatures: &[Record] = if signed { &set.signatures } else { &[] };
            let rotations: Option<Vec<Box<[u8]>>> = (0..n.max(1))
                .map(|k| {
                    let answers: Vec<&Record> = set.records[k..]
                        .iter()
                        .chain(&set.records[..k])
                        .chain(signatures)
                        .collect();
                    encode(qname, rtype, &answers, &[], &set.additionals)
                })
                .collect();
            if let Some(rotations) = rotations {
                variant.sets.push((u16::from(rtype), rotations));
            }
        }
        Some(variant)
    }
}

impl Prepared {
    /// Encodes the answers of every name of `zone`.
    pub fn build(zone: &Zone) -> Prepared {
        let mut names = foldhash::HashMap::default();
        for (owner, node) in zone.nodes() {
            let qname = wire(&Name::from(owner));
            let Some(plain) = Variant::build(zone, owner, node, &qname, false) else {
                continue;
            };
            let signed = if zone.signed() {
                Variant::build(zone, owner, node, &qname, true)
            } else {
                None
            };
            names.insert(qname.into_boxed_slice(), Answers { plain, signed });
        }
        Prepared { names }
    }

    /// Answers `query` into `out` when it is a plain query for a name of the zone
    /// (`false`: leave it to the hickory path). `turn` picks the rotation of a record
    /// set with several members and moves on when one is used.
    pub fn answer(&self, query: &[u8], turn: &mut usize, out: &mut Vec<u8>) -> bool {
        let mut name = [0u8; 256];
        let Some(plain) = parse(query, &mut name) else {
            return false;
        };
        let Some(answers) = self.names.get(plain.qname) else {
            return false;
        };
        let variant = match (&answers.signed, plain.dnssec_ok) {
            (Some(signed), true) => signed,
            _ => &answers.plain,
        };
        let prepared = match variant.sets.iter().find(|(t, _)| *t == plain.qtype) {
            Some((_, rotations)) if rotations.len() > 1 => {
                let k = *turn % rotations.len();
                *turn = turn.wrapping_add(1);
                &rotations[k]
            }
            Some((_, rotations)) => &rotations[0],
            None => &variant.nodata,
        };
        let limit = match plain.payload {
            Some(payload) => usize::from(payload.max(512)).min(MAX_UDP),
            None => 512,
        };
        let opt = if plain.payload.is_some() { 11 } else { 0 };
        if prepared.len() + opt > limit {
            return false;
        }
        out.clear();
        out.extend_from_slice(prepared);
        // ID; RD and CD as the query had them (Metadata::response_from_request).
        out[0] = query[0];
        out[1] = query[1];
        out[2] |= query[2] & 0x01;
        out[3] |= query[3] & 0x10;
        // The question as it was sent (its case), as hickory echoes it.
        out[12..plain.end].copy_from_slice(&query[12..plain.end]);
        if let Some(payload) = plain.payload {
            let additionals = u16::from_be_bytes([out[10], out[11]]) + 1;
            out[10..12].copy_from_slice(&additionals.to_be_bytes());
            // OPT: root owner, type 41, the payload size as class, extended RCODE 0,
            // version 0, DO as the query had it, no options.
            out.extend_from_slice(&[0, 0, 41]);
            out.extend_from_slice(&payload.max(512).to_be_bytes());
            let dnssec_ok = if plain.dnssec_ok { 0x80 } else { 0 };
            out.extend_from_slice(&[0, 0, dnssec_ok, 0, 0, 0]);
        }
        true
    }
}

/// A plain query: one question of class IN, at most an OPT record with no options.
struct Plain<'q> {
    /// The question's name in wire format, lower case.
    qname: &'q [u8],
    qtype: u16,
    /// Where the question ends.
    end: usize,
    /// The client's UDP payload size, when it sent EDNS.
    payload: Option<u16>,
    /// DO: the client wants the signatures.
    dnssec_ok: bool,
}

/// Reads a plain query, its name lower-cased into `name`; `None` for anything else.
fn parse<'n>(query: &[u8], name: &'n mut [u8; 256]) -> Option<Plain<'n>> {
    let header = query.get(..12)?;
    // QR, opcode and TC must be 0; the Z bit and RCODE too.
    if header[2] & 0xFA != 0 || header[3] & 0x4F != 0 {
        return None;
    }
    let count = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]);
    let additionals = count(10);
    if count(4) != 1 || count(6) != 0 || count(8) != 0 || additionals > 1 {
        return None;
    }
    let mut at = 12;
    let mut length = 0;
    loop {
        let label = usize::from(*query.get(at)?);
        // Compression pointers and extended label types are not plain.
        if label > 63 || length + label + 1 > 255 {
            return None;
        }
        name[length] = label as u8;
        length += 1;
        at += 1;
        if label == 0 {
            break;
        }
        let bytes = query.get(at..at + label)?;
        for (to, from) in name[length..length + label].iter_mut().zip(bytes) {
            *to = from.to_ascii_lowercase();
        }
        length += label;
        at += label;
    }
    let fixed = query.get(at..at + 4)?;
    let qtype = u16::from_be_bytes([fixed[0], fixed[1]]);
    if special(qtype) || u16::from_be_bytes([fixed[2], fixed[3]]) != 1 {
        return None;
    }
    let end = at + 4;
    let payload = if additionals == 1 {
        // OPT with the root as owner, extended RCODE 0, version 0 and no options.
        let opt = query.get(end..)?;
        if opt.len() != 11 || opt[0] != 0 || opt[1..3] != [0, 41] || opt[5..7] != [0, 0] {
            return None;
        }
        // No options, and no flag but DO.
        if opt[9..11] != [0, 0] || opt[7] & 0x7F != 0 || opt[8] != 0 {
            return None;
        }
        Some(u16::from_be_bytes([opt[3], opt[4]]))
    } else {
        if query.len() != end {
            return None;
        }
        None
    };
    let dnssec_ok = payload.is_some() && query[end + 7] & 0x80 != 0;
    Some(Plain {
        qname: &name[..length],
        qtype,
        end,
        payload,
        dnssec_ok,
    })
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use arc_swap::ArcSwap;
    use mailsite_shared::{SiteConfig, SiteMap};

    use super::*;
    use crate::dns::{Handler, answer_udp};

    struct Query<'a> {
        id: u16,
        name: &'a str,
        qtype: u16,
        flags: [u8; 2],
        payload: Option<u16>,
    }

    fn bytes(q: &Query<'_>) -> Vec<u8> {
        let mut out = q.id.to_be_bytes().to_vec();
        out.extend_from_slice(&q.flags);
        let additionals = u16::from(q.payload.is_some());
        out.extend_from_slice(&[0, 1, 0, 0, 0, 0]);
        out.extend_from_slice(&additionals.to_be_bytes());
        for label in q.name.trim_end_matches('.').split('.') {
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
        out.extend_from_slice(&q.qtype.to_be_bytes());
        out.extend_from_slice(&[0, 1]);
        if let Some(payload) = q.payload {
            out.extend_from_slice(&[0, 0, 41]);
            out.extend_from_slice(&payload.to_be_bytes());
            out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        }
        out
    }

    fn zone() -> Arc<ArcSwap<Zone>> {
        let site = SiteMap::initial(Arc::new(SiteConfig::embedded()));
        Arc::new(ArcSwap::from_pointee(Zone::build(&site)))
    }

    /// The embedded default's zone signed with a new key.
    fn signed_zone() -> Arc<ArcSwap<Zone>> {
        use crate::directory::dnssec::StoredZoneKey;
        use crate::dns::dnssec::{Keys, ZoneKey};
        let site = SiteMap::initial(Arc::new(SiteConfig::embedded()));
        let keys = Keys::from_stored(&[StoredZoneKey {
            domain: "example.test".to_string(),
            algorithm: 13,
            private_key: ZoneKey::generate().expect("a zone key"),
        }]);
        assert!(!keys.is_empty());
        Arc::new(ArcSwap::from_pointee(Zone::build_signed(
            &site, None, &keys,
        )))
    }

    /// `query` (with EDNS) with DO set.
    fn with_do(mut query: Vec<u8>) -> Vec<u8> {
        let at = query.len() - 4;
        query[at] |= 0x80;
        query
    }

    /// Whether `answer` carries RRSIG records.
    fn has_signatures(answer: &[u8]) -> bool {
        let message = hickory_proto::op::Message::from_vec(answer).expect("an answer");
        message
            .answers
            .iter()
            .chain(&message.authorities)
            .any(|r| r.record_type() == RecordType::RRSIG)
    }

    fn src() -> SocketAddr {
        "127.0.0.9:5353".parse().unwrap()
    }

    /// What the hickory path answers, from a handler whose rotation is at its start.
    async fn hickory(zone: &Arc<ArcSwap<Zone>>, query: &[u8], nth: usize) -> Option<Vec<u8>> {
        let handler = Handler::new(zone.clone(), Default::default());
        let mut answer = None;
        for _ in 0..=nth {
            answer = answer_udp(&handler, query, src()).await.0;
        }
        answer
    }

    fn mixed_case(name: &str) -> String {
        name.chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect()
    }

    /// An answer too large for a client without EDNS (a DKIM RSA key's TXT record)
    /// comes back truncated: the header and question only, so that it asks again
    /// over TCP.
    #[tokio::test]
    async fn an_answer_too_large_for_512_octets_is_the_question_with_tc() {
        let mut site = SiteMap::initial(Arc::new(SiteConfig::embedded()));
        site.dkim = vec![mailsite_shared::DkimKey {
            domain: "example.test".into(),
            selector: "big".into(),
            algorithm: "rsa".into(),
            public_key: "A".repeat(600),
            sign_from: 0,
            withdraw_at: None,
        }]
        .into();
        let zone = Arc::new(ArcSwap::from_pointee(Zone::build(&site)));
        let handler = Handler::new(zone, Default::default());
        for payload in [None, Some(512)] {
            let query = bytes(&Query {
                id: 7,
                name: "big._domainkey.example.test",
                qtype: 16,
                flags: [1, 0],
                payload,
            });
            let (answer, _) = answer_udp(&handler, &query, src()).await;
            let answer = answer.expect("an answer");
            assert_eq!(answer[2] & 0x02, 0x02, "TC is set: {answer:?}");
            let message = hickory_proto::op::Message::from_bytes(&answer).expect("it parses");
            assert!(message.answers.is_empty());
            // Nothing after the question (and the OPT record when the query had one).
            let question_end = 12 + "big._domainkey.example.test".len() + 2 + 4;
            assert_eq!(answer.len(), question_end, "{payload:?}: {answer:?}");
        }
        let large = bytes(&Query {
            id: 8,
            name: "big._domainkey.example.test",
            qtype: 16,
            flags: [1, 0],
            payload: Some(4096),
        });
        let (answer, _) = answer_udp(&handler, &large, src()).await;
        let message =
            hickory_proto::op::Message::from_bytes(&answer.expect("an answer")).expect("it parses");
        assert_eq!(message.answers.len(), 1);
    }

    #[tokio::test]
    async fn prepared_answers_are_the_hickory_answers_byte_for_byte() {
        let zone = zone();
        let names: Vec<String> = zone.load().nodes().map(|(n, _)| n.to_string()).collect();
        assert!(names.len() > 30, "{names:?}");
        let mut compared = 0;
        for name in &names {
            for name in [name.clone(), mixed_case(name)] {
                // A, NS, CNAME, SOA, MX, TXT, AAAA, SRV
                for qtype in [1, 2, 5, 6, 15, 16, 28, 33] {
                    // RD, CD, AD, RD+CD+AD
                    for flags in [[0, 0], [1, 0], [0, 0x10], [0, 0x20], [1, 0x30]] {
                        for payload in [None, Some(512), Some(1232), Some(4096), Some(100)] {
                            let query = Query {
                                id: 0xBEEF,
                                name: &name,
                                qtype,
                                flags,
                                payload,
                            };
                            let raw = bytes(&query);
                            let mut fast = Vec::new();
                            assert!(
                                zone.load().prepared().answer(&raw, &mut 0, &mut fast),
                                "{name} {qtype} {flags:?} {payload:?} not prepared"
                            );
                            let slow = hickory(&zone, &raw, 0).await.expect("an answer");
                            assert_eq!(fast, slow, "{name} {qtype} {flags:?} {payload:?}");
                            compared += 1;
                        }
                    }
                }
            }
        }
        assert!(compared > 1000);
    }

    /// In a signed zone, queries with DO get the signatures (and for NODATA the
    /// NSEC proof) from the prepared answers too, as hickory gives them; without DO,
    /// or in an unsigned zone, none.
    #[tokio::test]
    async fn do_queries_get_hickorys_signed_answers_byte_for_byte() {
        for (zone, signed) in [(signed_zone(), true), (zone(), false)] {
            let names: Vec<String> = zone.load().nodes().map(|(n, _)| n.to_string()).collect();
            let (mut compared, mut with_signatures) = (0, 0);
            for name in &names {
                // A, NS, SOA, MX, TXT, AAAA, SRV, RRSIG, NSEC, DNSKEY
                for qtype in [1, 2, 6, 15, 16, 28, 33, 46, 47, 48] {
                    for flags in [[0, 0], [1, 0x10]] {
                        for payload in [512, 1232, 4096] {
                            for dnssec_ok in [false, true] {
                                let query = Query {
                                    id: 0x5EC,
                                    name,
                                    qtype,
                                    flags,
                                    payload: Some(payload),
                                };
                                let raw = match dnssec_ok {
                                    true => with_do(bytes(&query)),
                                    false => bytes(&query),
                                };
                                let slow = hickory(&zone, &raw, 0).await.expect("an answer");
                                let mut fast = Vec::new();
                                let what =
                                    format!("{name} {qtype} {flags:?} {payload} DO {dnssec_ok}");
                                if !zone.load().prepared().answer(&raw, &mut 0, &mut fast) {
                                    // Only an answer too large for the client's buffer
                                    // is left to hickory, which truncates it.
                                    assert_eq!(slow[2] & 0x02, 0x02, "{what} not prepared");
                                    continue;
                                }
                                assert_eq!(fast, slow, "{what}");
                                assert_eq!(has_signatures(&fast), signed && dnssec_ok, "{what}");
                                compared += 1;
                                with_signatures += usize::from(has_signatures(&fast));
                            }
                        }
                    }
                }
            }
            assert!(compared > 1000, "{compared}");
            assert_eq!(with_signatures > 500, signed, "{with_signatures}");
        }
    }

    #[tokio::test]
    async fn sets_of_several_records_rotate_as_hickory_rotates_them() {
        let zone = zone();
        let query = bytes(&Query {
            id: 7,
            name: "outbox.example.test.",
            qtype: 1,
            flags: [1, 0],
            payload: None,
        });
        let mut turn = 0;
        let mut answers = Vec::new();
        for nth in 0..4 {
            let mut fast = Vec::new();
            assert!(zone.load().prepared().answer(&query, &mut turn, &mut fast));
            assert_eq!(
                Some(fast.clone()),
                hickory(&zone, &query, nth).await,
                "answer {nth}"
            );
            answers.push(fast);
        }
        assert_ne!(answers[0], answers[1], "two sorters: the order alternates");
        assert_eq!(answers[0], answers[2]);
    }

    #[tokio::test]
    async fn anything_but_a_plain_query_for_a_known_name_goes_to_hickory() {
        let zone = zone();
        let plain = Query {
            id: 1,
            name: "maila.example.test.",
            qtype: 1,
            flags: [0, 0],
            payload: None,
        };
        let mut out = Vec::new();
        let mut fast = |raw: &[u8]| zone.load().prepared().answer(raw, &mut 0, &mut out);
        assert!(fast(&bytes(&plain)));
        // Unknown names (NXDOMAIN), foreign zones (REFUSED), ANY, AXFR.
        for (name, qtype) in [
            ("nope.example.test.", 1),
            ("example.org.", 1),
            ("maila.example.test.", 255),
            ("example.test.", 252),
        ] {
            assert!(
                !fast(&bytes(&Query {
                    name,
                    qtype,
                    ..plain
                })),
                "{name} {qtype}"
            );
        }
        let raw = bytes(&plain);
        // A response, an opcode other than QUERY, TC set.
        for (byte, bit) in [(2, 0x80), (2, 0x08), (2, 0x02), (3, 0x40)] {
            let mut other = raw.clone();
            other[byte] |= bit;
            assert!(!fast(&other), "flag {byte}/{bit:#x}");
        }
        // Two questions; trailing bytes; a question cut short; a compressed name.
        let mut two = raw.clone();
        two[5] = 2;
        assert!(!fast(&two));
        let mut trailing = raw.clone();
        trailing.push(0);
        assert!(!fast(&trailing));
        assert!(!fast(&raw[..raw.len() - 3]));
        let mut pointer = raw[..12].to_vec();
        pointer.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
        assert!(!fast(&pointer));
        // EDNS version 1 (BADVERS) and EDNS with an option.
        let edns = bytes(&Query {
            payload: Some(1232),
            ..plain
        });
        let mut version = edns.clone();
        let at = version.len() - 5;
        version[at] = 1;
        assert!(!fast(&version));
        let mut option = edns.clone();
        let at = option.len() - 1;
        option[at] = 4;
        option.extend_from_slice(&[0, 10, 0, 0]);
        assert!(!fast(&option));
    }

    #[test]
    fn a_moved_letter_is_in_the_next_zone_answers() {
        use mailsite_shared::ServerState;
        use std::collections::HashMap;
        let config = Arc::new(SiteConfig::embedded());
        let query = bytes(&Query {
            id: 1,
            name: "mailz.example.test.",
            qtype: 1,
            flags: [0, 0],
            payload: None,
        });
        let address = |zone: &Zone| {
            let mut out = Vec::new();
            assert!(zone.prepared().answer(&query, &mut 0, &mut out));
            out[out.len() - 4..].to_vec()
        };
        let before = Zone::build(&SiteMap::initial(config.clone()));
        assert_eq!(address(&before), [127, 0, 0, 12]);
        let mut states = HashMap::new();
        states.insert("mailbox2".to_string(), ServerState::Maintenance);
        let after = Zone::build(&SiteMap::new(config, &[], &states, 2));
        assert_eq!(address(&after), [127, 0, 0, 11]);
    }
}
