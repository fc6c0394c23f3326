//! Outbound TLS policy against other domains run by the test: a DNS server with a
//! DNSSEC-signed parent zone (`example.`, dnspython-signed, the relay anchored to its
//! key by `[relay] trust_anchor`), signed and unsigned child zones, TLSA records; an
//! HTTPS server for MTA-STS policies (its certificate from a test CA the relay trusts
//! by `[relay] tls_trust`); and SMTP sinks with STARTTLS whose certificates are made
//! with openssl. What reaches which sink, what stays queued, and `mailsite tls-report`.

use std::path::{Path, PathBuf};

use super::relay::{Helper, SINK, helper, sunk};
use super::*;

/// The DNS server: `signed_dns.py`, given its zones as JSON.
const SIGNED_DNS: &str = include_str!("signed_dns.py");

/// An HTTPS server on port 443 serving `/.well-known/mta-sts.txt` by Host header,
/// from `host=policy` arguments; 404 for anything else.
const POLICY_SERVER: &str = r#"
import http.server, ssl, sys
ip, cert, key = sys.argv[1:4]
policies = dict(a.split("=", 1) for a in sys.argv[4:])
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        body = policies.get(host)
        if self.path != "/.well-known/mta-sts.txt" or body is None:
            self.send_response(404)
            self.end_headers()
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer((ip, 443), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
print("ready", flush=True)
server.serve_forever()
"#;

/// Runs openssl in `dir`.
fn openssl(dir: &Path, args: &[&str]) {
    let out = run_command(Command::new("openssl").args(args).current_dir(dir), None);
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A key and certificate for `names` (P-256), in `dir` as `<file>.pem` and
/// `<file>.key`: self-signed, a CA, or issued by the CA `ca.pem`.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Issuer {
    SelfSigned,
    Authority,
    TestCa,
}

pub(super) fn certificate(
    dir: &Path,
    file: &str,
    names: &[&str],
    issuer: Issuer,
) -> (PathBuf, PathBuf) {
    let (pem, key) = (format!("{file}.pem"), format!("{file}.key"));
    let subject = format!("/CN={}", names[0]);
    let san = format!(
        "subjectAltName={}",
        names
            .iter()
            .map(|n| format!("DNS:{n}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let new_key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    match issuer {
        Issuer::SelfSigned | Issuer::Authority => {
            let mut args = vec!["req", "-x509", "-days", "2", "-subj", &subject];
            args.extend(new_key);
            args.extend(["-keyout", &key, "-out", &pem, "-addext", &san]);
            if issuer == Issuer::Authority {
                args.extend([
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ]);
            } else {
                // A server's own certificate, not a CA's (openssl's default).
                args.extend(["-addext", "basicConstraints=critical,CA:FALSE"]);
            }
            openssl(dir, &args);
        }
        Issuer::TestCa => {
            let csr = format!("{file}.csr");
            let ext = format!("{file}.ext");
            let mut args = vec!["req", "-subj", &subject, "-keyout", &key, "-out", &csr];
            args.extend(new_key);
            openssl(dir, &args);
            std::fs::write(
                dir.join(&ext),
                format!("{san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"),
            )
            .unwrap();
            #[rustfmt::skip]
            openssl(dir, &[
                "x509", "-req", "-in", &csr, "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-out", &pem, "-extfile", &ext,
            ]);
        }
    }
    (dir.join(pem), dir.join(key))
}

/// The SHA-256 of a certificate's public key, in hex: the data of a `3 1 1` TLSA record.
pub(super) fn spki_sha256(cert: &Path) -> String {
    let script = format!(
        "openssl x509 -in '{}' -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r",
        cert.display()
    );
    let out = run_command(Command::new("sh").arg("-c").arg(&script), None);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let hex = text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        hex.len(),
        64,
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    hex
}

/// One remote domain's mail server: a sink on `127.N.0.<host>:10026`.
pub(super) struct Mx {
    pub(super) folder: PathBuf,
    _sink: Helper,
}

/// A site whose relay resolves with the test's DNS server, anchored to its signed
/// `example.` zone and trusting the test CA; the helpers run until it is dropped.
pub(super) struct World {
    pub(super) site: Site,
    _helpers: Vec<Helper>,
    pub(super) sinks: Vec<Mx>,
    /// The MTA-STS policy server, when there is one (dropped to take it away).
    pub(super) policy_server: Option<Helper>,
}

/// Starts the DNS server (zones as JSON, built by `zones` from the site's address
/// prefix `127.N.0.`), the sinks (`(host, certificate file, key file)`) and, if
/// `policies` are given, the MTA-STS server on `127.N.0.97:443`, then the site.
pub(super) fn world(
    dir: &Path,
    zones: impl FnOnce(&str) -> serde_json::Value,
    sinks: &[(u8, PathBuf, PathBuf)],
    policies: &[(&str, &str)],
    policy_cert: Option<(PathBuf, PathBuf)>,
) -> World {
    let anchor = dir.join("anchor.txt");
    let ca = dir.join("ca.pem");
    let mut helpers = Vec::new();
    let mut mxs = Vec::new();
    let mut policy_server = None;
    let site = Site::isolated_with(|t| {
        let net = net_of(&t);
        let spec = zones(&net).to_string();
        helpers.push(helper(
            SIGNED_DNS,
            &[
                &format!("{net}53"),
                "10054",
                anchor.to_str().unwrap(),
                &spec,
            ],
        ));
        for (host, cert, key) in sinks {
            let folder = dir.join(format!("sink{host}"));
            std::fs::create_dir_all(&folder).unwrap();
            let sink = helper(
                SINK,
                &[
                    &format!("{net}{host}"),
                    "10026",
                    folder.to_str().unwrap(),
                    cert.to_str().unwrap(),
                    key.to_str().unwrap(),
                ],
            );
            mxs.push(Mx {
                folder,
                _sink: sink,
            });
        }
        if let Some((cert, key)) = &policy_cert {
            let mut args = vec![
                format!("{net}97"),
                cert.display().to_string(),
                key.display().to_string(),
            ];
            args.extend(policies.iter().map(|(h, p)| format!("{h}={p}")));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            policy_server = Some(helper(POLICY_SERVER, &args));
        }
        quick(t)
            .replace(
                "resolver = \"system\"",
                &format!("resolver = \"{net}53:10054\""),
            )
            .replace("port = 25", "port = 10026")
            .replace(
                "# tls_trust = \"/etc/mailsite/private-ca.pem\"",
                &format!("tls_trust = \"{}\"", ca.display()),
            )
            .replace(
                "# trust_anchor = \"/etc/mailsite/trust-anchors.txt\"",
                &format!("trust_anchor = \"{}\"", anchor.display()),
            )
    });
    site.add_user("alice", "alice-password", &[]);
    World {
        site,
        _helpers: helpers,
        sinks: mxs,
        policy_server,
    }
}

impl World {
    /// Waits until sink `i` has `count` messages; returns them.
    pub(super) fn wait_sunk(&self, i: usize, count: usize) -> Vec<String> {
        let start = Instant::now();
        loop {
            let got = sunk(&self.sinks[i].folder);
            if got.len() >= count {
                return got;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "sink {i} has {} messages, not {count}\n--- queue ---\n{}\n--- log ---\n{}",
                got.len(),
                self.site.ok(&["queue", "list"], None),
                self.site.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Today's TLS reports as `mailsite tls-report --json` prints them, by domain.
    pub(super) fn reports(&self) -> BTreeMap<String, serde_json::Value> {
        let out = self.site.ok(&["tls-report", "--json"], None);
        let list: Vec<serde_json::Value> =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
        list.into_iter()
            .map(|r| {
                let domain = r["policies"][0]["policy"]["policy-domain"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                (domain, r)
            })
            .collect()
    }

    /// Waits (bounded) until the relay has tried `rcpt` at least `attempts` times.
    pub(super) fn tried(&self, rcpt: &str, attempts: u32) -> String {
        let needle = format!("{attempts} attempts");
        let mut last = String::new();
        let found = self.site.within(Duration::from_secs(30), || {
            last = self.site.ok(&["queue", "list"], None);
            last.lines()
                .any(|l| l.contains(rcpt) && (l.contains(&needle) || attempts_over(l, attempts)))
        });
        assert!(
            found.is_some(),
            "{rcpt} not tried {attempts} times:\n{last}"
        );
        last
    }
}

/// Whether a queue line shows more than `attempts` attempts.
fn attempts_over(line: &str, attempts: u32) -> bool {
    line.split(", ")
        .filter_map(|part| part.strip_suffix(" attempts"))
        .filter_map(|n| n.trim().parse::<u32>().ok())
        .any(|n| n >= attempts)
}

use std::collections::BTreeMap;

#[test]
fn dane_requires_a_matching_certificate_when_the_mx_zone_is_signed() {
    let dir = common::temp_dir("dane");
    certificate(&dir, "ca", &["Test CA"], Issuer::Authority);
    let good = certificate(&dir, "good", &["mx.dane-ok.example"], Issuer::SelfSigned);
    let bad = certificate(&dir, "bad", &["mx.dane-bad.example"], Issuer::SelfSigned);
    let plain = certificate(&dir, "plain", &["mx.plain.example"], Issuer::SelfSigned);
    let good_hash = spki_sha256(&good.0);
    // The TLSA record names another key than the one the server presents.
    let other = certificate(&dir, "other", &["elsewhere"], Issuer::SelfSigned);
    let other_hash = spki_sha256(&other.0);
    let mut w = world(
        &dir,
        |net| {
            serde_json::json!({"zones": [
                {"origin": "example.", "signed": true, "records": []},
                {"origin": "dane-ok.example.", "signed": true, "records": [
                    "@ 300 MX 10 mx.dane-ok.example.",
                    format!("mx 300 A {net}91"),
                    format!("_10026._tcp.mx 300 TLSA 3 1 1 {good_hash}"),
                    "_smtp._tls 300 TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@dane-ok.example\"".to_string(),
                ]},
                {"origin": "dane-bad.example.", "signed": true, "records": [
                    "@ 300 MX 10 mx.dane-bad.example.",
                    format!("mx 300 A {net}92"),
                    format!("_10026._tcp.mx 300 TLSA 3 1 1 {other_hash}"),
                ]},
                // Signed, without TLSA records: STARTTLS as usual.
                {"origin": "no-tlsa.example.", "signed": true, "records": [
                    "@ 300 MX 10 mx.no-tlsa.example.",
                    format!("mx 300 A {net}94"),
                ]},
                // Not signed: its (mismatching) TLSA record means nothing.
                {"origin": "plain.example.", "signed": false, "records": [
                    "@ 300 MX 10 mx.plain.example.",
                    format!("mx 300 A {net}93"),
                    format!("_10026._tcp.mx 300 TLSA 3 1 1 {other_hash}"),
                ]},
            ]})
        },
        &[
            (91, good.0, good.1),
            (92, bad.0, bad.1),
            (93, plain.0, plain.1),
            (94, other.0, other.1),
        ],
        &[],
        None,
    );
    let site = &w.site;
    for (rcpt, subject) in [
        ("bob@dane-ok.example", "dane ok"),
        ("carol@dane-bad.example", "dane bad"),
        ("dave@plain.example", "unsigned"),
        ("nick@no-tlsa.example", "no TLSA"),
    ] {
        assert_eq!(send(site, "alice", rcpt, subject), "refused {}");
    }

    let ok = w.wait_sunk(0, 1);
    assert!(ok[0].starts_with("X-Sink-TLS: True\r\n"), "{}", ok[0]);
    assert!(ok[0].contains("Subject: dane ok"), "{}", ok[0]);
    let unsigned = w.wait_sunk(2, 1);
    assert!(unsigned[0].contains("Subject: unsigned"), "{}", unsigned[0]);
    let no_tlsa = w.wait_sunk(3, 1);
    assert!(no_tlsa[0].contains("Subject: no TLSA"), "{}", no_tlsa[0]);
    // The mismatching server is tried again and again, and never given the message.
    let queue = w.tried("carol@dane-bad.example", 2);
    assert!(sunk(&w.sinks[1].folder).is_empty(), "{}", site.log());
    assert!(queue.contains("1 messages queued"), "{queue}");
    assert!(
        queue.contains("no TLSA record matches the certificate")
            && queue.contains("validation-failure")
            && queue.contains("DANE"),
        "the queue does not say why: {queue}"
    );

    let reports = w.reports();
    let ok = &reports["dane-ok.example"];
    assert_eq!(ok["policies"][0]["policy"]["policy-type"], "tlsa", "{ok}");
    assert!(
        ok["policies"][0]["policy"]["policy-string"][0]
            .as_str()
            .is_some_and(|s| s.to_ascii_lowercase().contains(&good_hash)),
        "{ok}"
    );
    assert_eq!(
        ok["policies"][0]["summary"]["total-successful-session-count"],
        1
    );
    assert_eq!(
        ok["policies"][0]["summary"]["total-failure-session-count"],
        0
    );
    let bad = &reports["dane-bad.example"];
    let summary = &bad["policies"][0]["summary"];
    assert_eq!(summary["total-successful-session-count"], 0, "{bad}");
    assert!(
        summary["total-failure-session-count"].as_u64() >= Some(2),
        "{bad}"
    );
    let failure = &bad["policies"][0]["failure-details"][0];
    assert_eq!(failure["result-type"], "validation-failure", "{bad}");
    assert_eq!(failure["receiving-mx-hostname"], "mx.dane-bad.example");
    assert_eq!(failure["receiving-ip"], site.addr(92));
    assert!(
        !reports.contains_key("plain.example") && !reports.contains_key("no-tlsa.example"),
        "no TLSA records, no DANE policy: {reports:?}"
    );

    // Once the day is over (made yesterday's here, then a restart, which looks at
    // once), the domain's report goes to the rua address of its _smtp._tls record.
    let yesterday = yesterday();
    site.sql(&format!(
        "INSERT INTO tls_results SELECT '{yesterday}', policy_domain, policy_type, \
         policy_string, mx_host, result_type, sending_ip, receiving_mx, receiving_ip, \
         information, sessions FROM tls_results WHERE policy_domain = 'dane-ok.example'"
    ));
    w.site.kill_hard();
    w.site.start_again();
    let sunk = w.wait_sunk(0, 2);
    let report = sunk
        .iter()
        .find(|m| m.contains("TLS-Report-Domain: dane-ok.example\r\n"))
        .unwrap_or_else(|| panic!("no TLS report: {sunk:?}"));
    assert!(
        report.contains("X-Sink-Rcpt: <tlsrpt@dane-ok.example>"),
        "{report}"
    );
    assert!(report.contains("X-Sink-Mail: MAIL FROM:<>"), "{report}");
    assert!(report.contains("DKIM-Signature:"), "{report}");
    let read: serde_json::Value = serde_json::from_str(&python(ATTACHED_REPORT, &[report]))
        .expect("the attachment is gzipped JSON");
    let subject = read["subject"].as_str().unwrap_or_default();
    assert!(
        subject.starts_with("Report Domain: dane-ok.example Submitter: sorter")
            && subject.contains(" Report-ID: <"),
        "{subject}"
    );
    let json = &read["report"];
    assert_eq!(
        json["policies"][0]["policy"]["policy-domain"],
        "dane-ok.example"
    );
    assert_eq!(
        json["policies"][0]["summary"]["total-successful-session-count"], 1,
        "{json}"
    );
    assert!(
        json["date-range"]["start-datetime"]
            .as_str()
            .is_some_and(|d| d.starts_with(&yesterday)),
        "{json}"
    );
}

/// Prints the subject (decoded) and the JSON of the `application/tlsrpt+gzip`
/// attachment of the message given.
const ATTACHED_REPORT: &str = r#"
import email, email.header, gzip, json, sys
message = email.message_from_string(sys.argv[1])
subject = str(email.header.make_header(email.header.decode_header(message["Subject"])))
for part in message.walk():
    if part.get_content_type() == "application/tlsrpt+gzip":
        report = json.loads(gzip.decompress(part.get_payload(decode=True)))
        print(json.dumps({"subject": subject, "report": report}))
"#;

/// Yesterday's UTC day, `YYYY-MM-DD`.
fn yesterday() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs() as i64;
    chrono::DateTime::from_timestamp(now - 86_400, 0)
        .expect("a representable time")
        .format("%Y-%m-%d")
        .to_string()
}

#[test]
fn mta_sts_policies_choose_the_mx_hosts_and_check_their_certificates() {
    let dir = common::temp_dir("mta-sts");
    certificate(&dir, "ca", &["Test CA"], Issuer::Authority);
    let policy_cert = certificate(
        &dir,
        "policies",
        &[
            "mta-sts.enforce.example",
            "mta-sts.testing.example",
            "mta-sts.choosy.example",
        ],
        Issuer::TestCa,
    );
    let untrusted = certificate(
        &dir,
        "untrusted",
        &["mx.enforce.example"],
        Issuer::SelfSigned,
    );
    let untrusted_too = certificate(
        &dir,
        "untrusted2",
        &["mx.testing.example"],
        Issuer::SelfSigned,
    );
    let listed = certificate(&dir, "listed", &["mx1.choosy.example"], Issuer::TestCa);
    let unlisted = certificate(&dir, "unlisted", &["mx0.choosy.example"], Issuer::TestCa);
    let policy =
        |mode: &str, mx: &str| format!("version: STSv1\nmode: {mode}\nmx: {mx}\nmax_age: 86400\n");
    let (enforce, testing, choosy) = (
        policy("enforce", "mx.enforce.example"),
        policy("testing", "mx.testing.example"),
        policy("enforce", "mx1.choosy.example"),
    );
    let w = world(
        &dir,
        |net| {
            let unsigned = |name: &str, hosts: &[(&str, u8, u8)]| {
                let mut records = vec![
                    format!("_mta-sts 300 TXT \"v=STSv1; id=20261206\""),
                    format!("mta-sts 300 A {net}97"),
                ];
                for (host, preference, last) in hosts {
                    records.push(format!("@ 300 MX {preference} {host}.{name}"));
                    records.push(format!("{host} 300 A {net}{last}"));
                }
                serde_json::json!({"origin": name, "signed": false, "records": records})
            };
            serde_json::json!({"zones": [
                {"origin": "example.", "signed": true, "records": []},
                unsigned("enforce.example.", &[("mx", 10, 94)]),
                unsigned("testing.example.", &[("mx", 10, 95)]),
                // The preferred MX is not in the policy.
                unsigned("choosy.example.", &[("mx0", 10, 96), ("mx1", 20, 90)]),
            ]})
        },
        &[
            (94, untrusted.0, untrusted.1),
            (95, untrusted_too.0, untrusted_too.1),
            (96, unlisted.0, unlisted.1),
            (90, listed.0, listed.1),
        ],
        &[
            ("mta-sts.enforce.example", &enforce),
            ("mta-sts.testing.example", &testing),
            ("mta-sts.choosy.example", &choosy),
        ],
        Some(policy_cert),
    );
    let site = &w.site;
    for (rcpt, subject) in [
        ("erin@enforce.example", "enforced"),
        ("tess@testing.example", "testing"),
        ("cleo@choosy.example", "choosy"),
    ] {
        assert_eq!(send(site, "alice", rcpt, subject), "refused {}");
    }

    // Testing mode: delivered despite the certificate, the failure reported.
    let testing = w.wait_sunk(1, 1);
    assert!(
        testing[0].starts_with("X-Sink-TLS: True\r\n"),
        "{}",
        testing[0]
    );
    // Only the policy's MX host is used, over PKIX-checked TLS.
    let choosy = w.wait_sunk(3, 1);
    assert!(choosy[0].contains("Subject: choosy"), "{}", choosy[0]);
    assert!(
        sunk(&w.sinks[2].folder).is_empty(),
        "an MX outside the policy was used"
    );
    // Enforce mode with an untrusted certificate: never handed over, still queued.
    let queue = w.tried("erin@enforce.example", 2);
    assert!(sunk(&w.sinks[0].folder).is_empty(), "{}", site.log());
    assert!(
        queue.contains("certificate-not-trusted") && queue.contains("MTA-STS"),
        "the queue does not say why: {queue}"
    );
    // The policies are kept in the site database (a restart uses them).
    let kept = site.sql("SELECT domain FROM mta_sts_policies ORDER BY domain");
    assert_eq!(
        kept.lines().collect::<Vec<_>>(),
        ["choosy.example", "enforce.example", "testing.example"]
    );

    let reports = w.reports();
    let failure_of = |domain: &str| -> (serde_json::Value, serde_json::Value) {
        let policy = reports
            .get(domain)
            .unwrap_or_else(|| panic!("no report for {domain}: {reports:?}"))["policies"][0]
            .clone();
        (
            policy["summary"].clone(),
            policy["failure-details"][0].clone(),
        )
    };
    let (summary, failure) = failure_of("enforce.example");
    assert_eq!(
        reports["enforce.example"]["policies"][0]["policy"]["policy-type"],
        "sts"
    );
    assert_eq!(
        reports["enforce.example"]["policies"][0]["policy"]["mx-host"][0],
        "mx.enforce.example"
    );
    assert_eq!(summary["total-successful-session-count"], 0);
    assert_eq!(
        failure["result-type"], "certificate-not-trusted",
        "{failure}"
    );
    assert_eq!(failure["receiving-mx-hostname"], "mx.enforce.example");
    let (summary, failure) = failure_of("testing.example");
    assert_eq!(summary["total-failure-session-count"], 1, "{summary}");
    assert_eq!(
        failure["result-type"], "certificate-not-trusted",
        "{failure}"
    );
    let choosy = &reports["choosy.example"]["policies"][0];
    assert_eq!(
        choosy["summary"]["total-successful-session-count"], 1,
        "{choosy}"
    );
    assert!(
        choosy["failure-details"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|f| f["receiving-mx-hostname"] == "mx0.choosy.example"),
        "{choosy}"
    );
}
