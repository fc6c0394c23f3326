//! The alias DNS as resolvers see it: answers through hickory-resolver and dig, outbox
//! rotation, and answers that follow a letter move or a drained server live.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Site, dig};
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};

fn resolver(site: &Site) -> TokioResolver {
    let mut udp = ConnectionConfig::udp();
    udp.port = site.dns.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = site.dns.port();
    let server = NameServerConfig::new(site.dns.ip(), true, vec![udp, tcp]);
    let config = ResolverConfig::from_parts(None, vec![], vec![server]);
    let mut opts = ResolverOpts::default();
    opts.cache_size = 0;
    opts.attempts = 1;
    opts.timeout = Duration::from_secs(2);
    Resolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(opts)
        .build()
        .expect("build a resolver")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The A records of a name, in the order the server gave them.
async fn a(resolver: &TokioResolver, name: &str) -> Vec<String> {
    resolver
        .lookup(name, RecordType::A)
        .await
        .map(|l| l.answers().iter().map(|r| r.data.to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn aliases_outbox_mx_and_srv_records() {
    let site = Site::isolated();
    let rt = runtime();
    let r = resolver(&site);
    rt.block_on(async {
        assert_eq!(a(&r, "maila.example.test.").await, [site.addr(11)]);
        assert_eq!(a(&r, "mailm.example.test.").await, [site.addr(11)]);
        assert_eq!(a(&r, "mailn.example.test.").await, [site.addr(12)]);
        assert_eq!(a(&r, "MAILZ.example.test.").await, [site.addr(12)]);
        assert_eq!(a(&r, "mail0.example.test.").await, [site.addr(11)]);
        let outbox: BTreeSet<String> = a(&r, "outbox.example.test.").await.into_iter().collect();
        assert_eq!(outbox, [site.addr(21), site.addr(22)].into_iter().collect());
        assert_eq!(a(&r, "autoconfig.example.test.").await, [site.addr(1)]);
        assert_eq!(a(&r, "autodiscover.example.test.").await, [site.addr(1)]);
        assert_eq!(a(&r, "mailbox2.example.test.").await, [site.addr(12)]);

        // TTLs: aliases and outbox short, so that a failed server's share moves fast.
        let l = r
            .lookup("maila.example.test.", RecordType::A)
            .await
            .unwrap();
        assert_eq!(l.answers()[0].ttl, 5);
        let l = r
            .lookup("outbox.example.test.", RecordType::A)
            .await
            .unwrap();
        assert_eq!(l.answers()[0].ttl, 5);

        let mx = r.lookup("example.test.", RecordType::MX).await.unwrap();
        let mut exchanges: Vec<String> = mx
            .answers()
            .iter()
            .filter_map(|rec| match &rec.data {
                RData::MX(mx) => Some(format!("{} {}", mx.preference, mx.exchange)),
                _ => None,
            })
            .collect();
        exchanges.sort();
        assert_eq!(
            exchanges,
            ["10 sorter1.example.test.", "10 sorter2.example.test."]
        );

        for (service, port, targets) in [
            (
                "_imaps._tcp",
                10993,
                vec!["mailbox1.example.test.", "mailbox2.example.test."],
            ),
            (
                "_imap._tcp",
                10143,
                vec!["mailbox1.example.test.", "mailbox2.example.test."],
            ),
            (
                "_pop3s._tcp",
                10995,
                vec!["mailbox1.example.test.", "mailbox2.example.test."],
            ),
            (
                "_pop3._tcp",
                10110,
                vec!["mailbox1.example.test.", "mailbox2.example.test."],
            ),
            (
                "_sieve._tcp",
                10190,
                vec!["mailbox1.example.test.", "mailbox2.example.test."],
            ),
            ("_submissions._tcp", 10465, vec!["outbox.example.test."]),
            ("_submission._tcp", 10587, vec!["outbox.example.test."]),
            (
                "_autodiscover._tcp",
                8080,
                vec!["autodiscover.example.test."],
            ),
        ] {
            let l = r
                .lookup(format!("{service}.example.test."), RecordType::SRV)
                .await
                .unwrap_or_else(|e| panic!("{service}: {e}"));
            let mut got: Vec<String> = l
                .answers()
                .iter()
                .filter_map(|rec| match &rec.data {
                    RData::SRV(srv) => {
                        assert_eq!(srv.port, port, "{service}");
                        Some(srv.target.to_string())
                    }
                    _ => None,
                })
                .collect();
            got.sort();
            assert_eq!(got, targets, "{service}");
        }
        let soa = r.lookup("example.test.", RecordType::SOA).await.unwrap();
        assert!(matches!(soa.answers()[0].data, RData::SOA(_)));
    });
}

#[test]
fn outbox_answers_rotate() {
    let site = Site::isolated();
    let rt = runtime();
    let r = resolver(&site);
    let firsts: BTreeSet<String> = rt.block_on(async {
        let mut firsts = BTreeSet::new();
        for _ in 0..6 {
            firsts.insert(a(&r, "outbox.example.test.").await[0].clone());
        }
        firsts
    });
    assert_eq!(firsts, [site.addr(21), site.addr(22)].into_iter().collect());
}

#[test]
fn unknown_names_and_other_zones() {
    let site = Site::isolated();
    let server = format!("@{}", site.dns.ip());
    let port = site.dns.port().to_string();
    let nx = dig(&[&server, "-p", &port, "nothing.example.test", "A"]);
    assert!(nx.contains("status: NXDOMAIN"), "{nx}");
    assert!(nx.contains("flags: qr aa"), "{nx}");
    assert!(
        nx.contains("IN\tSOA\tns.example.test. hostmaster.example.test."),
        "{nx}"
    );
    let refused = dig(&[&server, "-p", &port, "www.example.org", "A"]);
    assert!(refused.contains("status: REFUSED"), "{refused}");
    let nodata = dig(&[&server, "-p", &port, "maila.example.test", "MX"]);
    assert!(
        nodata.contains("status: NOERROR") && nodata.contains("ANSWER: 0"),
        "{nodata}"
    );
    let tcp = dig(&[
        &server,
        "-p",
        &port,
        "+tcp",
        "+short",
        "mailq.example.test",
        "A",
    ]);
    assert_eq!(tcp.trim(), site.addr(12));

    // Garbage on the wire does not stop the server.
    let socket = std::net::UdpSocket::bind(format!("{}:0", site.dns.ip())).unwrap();
    for junk in [&b""[..], b"\x00", &[0xffu8; 12], &[0u8; 600]] {
        socket.send_to(junk, site.dns).unwrap();
    }
    let after = dig(&[&server, "-p", &port, "+short", "maila.example.test", "A"]);
    assert_eq!(after.trim(), site.addr(11));
}

#[test]
fn letter_moves_and_maintenance_change_answers_live() {
    let site = Site::isolated();
    let rt = runtime();
    let r = resolver(&site);
    let answer = |name: &str| rt.block_on(a(&r, name));
    assert_eq!(answer("maila.example.test."), [site.addr(11)]);

    site.ok(&["letter", "move", "a", "mailbox2"], None);
    let took = site.within(Duration::from_secs(1), || {
        answer("maila.example.test.") == [site.addr(12)]
    });
    assert!(took.is_some(), "maila did not move within 1 s");
    assert_eq!(answer("mailb.example.test."), [site.addr(11)]);

    site.ok(&["server", "maintenance", "mailbox1"], None);
    let took = site.within(Duration::from_secs(1), || {
        answer("mailm.example.test.") == [site.addr(12)]
    });
    assert!(
        took.is_some(),
        "maintenance did not drain mailbox1 within 1 s"
    );
    assert_eq!(answer("mail0.example.test."), [site.addr(12)]);

    site.ok(&["server", "up", "mailbox1"], None);
    let took = site.within(Duration::from_secs(1), || {
        answer("mailm.example.test.") == [site.addr(11)]
    });
    assert!(
        took.is_some(),
        "mailbox1's letters did not return within 1 s"
    );
    // The operator's move of letter a outlives the maintenance.
    assert_eq!(answer("maila.example.test."), [site.addr(12)]);

    site.ok(&["server", "maintenance", "sorter1"], None);
    let took = site.within(Duration::from_secs(1), || {
        answer("outbox.example.test.") == [site.addr(22)]
    });
    assert!(took.is_some(), "outbox still lists a drained sorter");
    let metrics = site.get("/metrics").body;
    assert!(metrics.contains("mailsite_letter_owner{letter=\"a\",server=\"mailbox2\"} 1"));
}

/// Sends `count` queries for maila A over UDP from `source` as fast as it can, then
/// listens a moment; prints how many answers came back full and how many truncated.
const FLOOD: &str = r#"
import socket, struct, sys, time
server, port, source, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((source, 0))
s.setblocking(False)
name = b"".join(bytes([len(p)]) + p for p in b"maila.example.test".split(b".")) + b"\0"
full = truncated = 0
def take():
    global full, truncated
    while True:
        try:
            data = s.recv(4096)
        except BlockingIOError:
            return
        flags, ancount = struct.unpack(">H", data[2:4])[0], struct.unpack(">H", data[6:8])[0]
        if flags & 0x0200:
            truncated += 1
        elif ancount > 0:
            full += 1
for i in range(count):
    s.sendto(struct.pack(">HHHHHH", i, 0x0100, 1, 0, 0, 0) + name + struct.pack(">HH", 1, 1), (server, port))
    take()
deadline = time.time() + 1
while time.time() < deadline:
    take()
    time.sleep(0.01)
print(full, truncated)
"#;

#[test]
fn any_is_answered_minimally_and_floods_are_rate_limited() {
    let site = Site::isolated_with(|text| {
        assert!(text.contains("\nrate_limit = 200\n"));
        text.replace("\nrate_limit = 200\n", "\nrate_limit = 20\n")
    });
    let server = format!("@{}", site.dns.ip());
    let port = site.dns.port().to_string();

    // RFC 8482: one HINFO record, not every record of the name.
    let any = dig(&[&server, "-p", &port, "example.test", "ANY"]);
    assert!(any.contains("ANSWER: 1,"), "{any}");
    assert!(any.contains("HINFO\t\"RFC8482\" \"\""), "{any}");
    assert!(!any.contains("\tMX\t") && !any.contains("\tSOA\t"), "{any}");

    // 200 queries at once from one network: about 20 answered in full (the rate, plus
    // what refills while they arrive), every second one of the rest truncated.
    let flood = common::python(
        FLOOD,
        &[&site.dns.ip().to_string(), &port, &site.addr(99), "200"],
    );
    let counts: Vec<u32> = flood
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    let (full, truncated) = (counts[0], counts[1]);
    assert!((20..=45).contains(&full), "{flood}");
    let over = 200 - full;
    assert!(truncated.abs_diff(over / 2) <= 2, "{flood}");

    // A resolver in that network still gets its answer: the truncated reply sends it
    // to TCP. Another network was never limited.
    let limited = dig(&[
        &server,
        "-p",
        &port,
        "-b",
        &site.addr(99),
        "+tries=4",
        "+time=1",
        "maila.example.test",
        "A",
    ]);
    assert!(limited.contains(&site.addr(11)), "{limited}");
    let other = format!("127.{}.1.99", site.net);
    let fine = dig(&[
        &server,
        "-p",
        &port,
        "-b",
        &other,
        "+short",
        "maila.example.test",
        "A",
    ]);
    assert_eq!(fine.trim(), site.addr(11));
}

/// Runs delv (BIND's validating lookup tool) at the site's DNS server, anchored at the
/// DS records in `anchors`; returns what it printed.
fn delv(site: &Site, anchors: &std::path::Path, name: &str, rtype: &str) -> String {
    let out = std::process::Command::new("delv")
        .arg(format!("@{}", site.dns.ip()))
        .args(["-p", &site.dns.port().to_string()])
        .arg("-a")
        .arg(anchors)
        .args(["+root=example.test", "+nocomments", name, rtype])
        .output()
        .expect("delv runs (Debian's bind9-dnsutils)");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// DNSSEC: the zone is signed with the key whose DS `mailsite dns ds` prints, and delv,
/// anchored at that DS alone, validates answers, a name that does not exist and a type
/// a name lacks (NSEC), and the answers after a live change (the zone signed again).
#[test]
fn the_zone_is_signed_and_delv_validates_it_from_the_ds() {
    let site = Site::isolated();
    let printed = site.ok(&["dns", "ds", "--json"], None);
    let rows: serde_json::Value = serde_json::from_str(&printed).expect("JSON");
    let row = rows
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["domain"] == "example.test"))
        .unwrap_or_else(|| panic!("no DS for example.test: {printed}"));
    // example.test. 3600 IN DS <tag> 13 2 <digest>
    let ds: Vec<&str> = row["ds"]
        .as_str()
        .expect("a DS")
        .split_whitespace()
        .collect();
    assert_eq!(&ds[..4], ["example.test.", "3600", "IN", "DS"], "{ds:?}");
    assert_eq!((ds[5], ds[6]), ("13", "2"), "ECDSA P-256, SHA-256: {ds:?}");
    let anchors = site.dir.join("anchors.conf");
    std::fs::write(
        &anchors,
        format!(
            "trust-anchors {{ example.test. static-ds {} {} {} \"{}\"; }};\n",
            ds[4], ds[5], ds[6], ds[7]
        ),
    )
    .expect("the anchors file");

    let answer = delv(&site, &anchors, "maila.example.test", "A");
    assert!(answer.contains("; fully validated"), "{answer}");
    assert!(answer.contains(&site.addr(11)), "{answer}");
    let mx = delv(&site, &anchors, "example.test", "MX");
    assert!(mx.contains("; fully validated"), "{mx}");
    let nxdomain = delv(&site, &anchors, "nothing.example.test", "A");
    assert!(
        nxdomain.contains("; negative response, fully validated") && nxdomain.contains("NXDOMAIN"),
        "{nxdomain}"
    );
    let nodata = delv(&site, &anchors, "maila.example.test", "MX");
    assert!(
        nodata.contains("; negative response, fully validated"),
        "{nodata}"
    );
    // An empty non-terminal exists (NODATA, not NXDOMAIN), proven by its own NSEC.
    let between = delv(&site, &anchors, "_tcp.example.test", "TXT");
    assert!(
        between.contains("; negative response, fully validated"),
        "{between}"
    );
    assert!(!between.contains("NXDOMAIN"), "{between}");

    // Signatures come only to clients that ask for them (DO).
    let server = format!("@{}", site.dns.ip());
    let port = site.dns.port().to_string();
    let signed = dig(&[&server, "-p", &port, "+dnssec", "maila.example.test", "A"]);
    assert!(signed.contains("RRSIG\tA 13 3 5"), "{signed}");
    assert!(signed.contains("flags: do;"), "{signed}");
    let plain = dig(&[&server, "-p", &port, "maila.example.test", "A"]);
    assert!(!plain.contains("RRSIG"), "{plain}");
    // A wrong anchor fails validation: the answers are checked, not just passed on.
    let wrong = site.dir.join("wrong.conf");
    let mut digest = ds[7].to_string();
    let last = if digest.ends_with('0') { "1" } else { "0" };
    digest.replace_range(digest.len() - 1.., last);
    std::fs::write(
        &wrong,
        format!(
            "trust-anchors {{ example.test. static-ds {} {} {} \"{digest}\"; }};\n",
            ds[4], ds[5], ds[6]
        ),
    )
    .expect("the anchors file");
    let refused = delv(&site, &wrong, "maila.example.test", "A");
    assert!(!refused.contains("fully validated"), "{refused}");

    // A live change is signed too.
    site.ok(&["letter", "move", "a", "mailbox2"], None);
    let moved = site.within(Duration::from_secs(2), || {
        let answer = delv(&site, &anchors, "maila.example.test", "A");
        answer.contains("; fully validated") && answer.contains(&site.addr(12))
    });
    assert!(
        moved.is_some(),
        "the moved letter's answer did not validate"
    );
}
