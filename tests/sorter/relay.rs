//! Mail for other domains: to the domain's MX over STARTTLS (a DNS server and a sink
//! run by the test), bounces when it fails, and a smarthost that takes everything.

use super::*;

/// A child process stopped when dropped.
pub struct Helper(Child);

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a Python helper and waits for its "ready" line.
pub fn helper(program: &str, args: &[&str]) -> Helper {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(program)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready", "a helper did not start: {args:?}");
    Helper(child)
}

/// An authoritative DNS server for made-up remote domains: answers A and MX queries
/// for the names given as "name TYPE value" arguments, NXDOMAIN for other names.
const DNS: &str = r#"
import socket, struct, sys
ip, port = sys.argv[1], int(sys.argv[2])
zone = {}
for entry in sys.argv[3:]:
    name, rtype, value = entry.split(" ", 2)
    zone.setdefault(name.lower(), []).append((rtype, value))
def encode(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((ip, port))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(4096)
    try:
        qid, flags = struct.unpack(">HH", data[:4])
        i, labels = 12, []
        while data[i] != 0:
            n = data[i]
            labels.append(data[i + 1:i + 1 + n].decode().lower())
            i += n + 1
        qtype = struct.unpack(">H", data[i + 1:i + 3])[0]
        question = data[12:i + 5]
        name = ".".join(labels)
        answers = []
        for rtype, value in zone.get(name, []):
            if rtype == "A" and qtype == 1:
                answers.append(struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton(value))
            elif rtype == "MX" and qtype == 15:
                preference, host = value.split()
                rdata = struct.pack(">H", int(preference)) + encode(host)
                answers.append(struct.pack(">HHIH", 15, 1, 60, len(rdata)) + rdata)
        rcode = 0 if name in zone else 3
        header = struct.pack(">HHHHHH", qid, 0x8480 | (flags & 0x0100) | rcode, 1, len(answers), 0, 0)
        s.sendto(header + question + b"".join(b"\xc0\x0c" + a for a in answers), peer)
    except Exception:
        pass
"#;

/// A remote domain's mail server: SMTP without PIPELINING, with STARTTLS (none when
/// the certificate given is `none`) and DSN when a sixth argument says `dsn`; refuses
/// nobody@..., saves each message in a folder with how it came (the MAIL command and
/// the RCPT arguments as given).
pub const SINK: &str = r#"
import os, socket, ssl, sys, threading
ip, port, out, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
dsn = "250-DSN\r\n" if sys.argv[6:] == ["dsn"] else ""
ctx = None
if cert != "none":
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((ip, port))
srv.listen(50)
lock, count = threading.Lock(), [0]
def serve(conn):
    tls, sender, rcpts = False, "", []
    f = conn.makefile("rb")
    def say(text):
        conn.sendall(text.encode())
    say("220 sink ESMTP\r\n")
    while True:
        line = f.readline()
        if not line:
            return
        command = line.decode("utf-8", "replace").strip()
        verb = command[:4].upper()
        if verb == "EHLO":
            say("250-sink\r\n" + ("" if tls or ctx is None else "250-STARTTLS\r\n") + dsn + "250-8BITMIME\r\n250 SIZE 10000000\r\n")
        elif command.upper() == "STARTTLS" and ctx is not None:
            say("220 go ahead\r\n")
            conn = ctx.wrap_socket(conn, server_side=True)
            f, tls = conn.makefile("rb"), True
        elif verb == "MAIL":
            sender, rcpts = command, []
            say("250 ok\r\n")
        elif verb == "RCPT":
            if "nobody@" in command.lower():
                say("550 5.1.1 <nobody>: no such user here\r\n")
            else:
                rcpts.append(command[8:])
                say("250 ok\r\n")
        elif verb == "DATA":
            say("354 go ahead\r\n")
            body = b""
            while True:
                l = f.readline()
                if l in (b".\r\n", b""):
                    break
                body += l[1:] if l.startswith(b"..") else l
            with lock:
                count[0] += 1
                name = os.path.join(out, str(count[0]))
            with open(name + ".tmp", "wb") as o:
                o.write(f"X-Sink-TLS: {tls}\r\nX-Sink-Mail: {sender}\r\nX-Sink-Rcpt: {' '.join(rcpts)}\r\n".encode() + body)
            os.rename(name + ".tmp", name + ".eml")
            say("250 2.0.0 saved\r\n")
        elif verb == "QUIT":
            say("221 bye\r\n")
            conn.close()
            return
        else:
            say("250 ok\r\n" if verb in ("RSET", "NOOP") else "500 5.5.1 what\r\n")
def guarded(conn):
    try:
        serve(conn)
    except (OSError, ssl.SSLError):
        pass  # a client that refused the certificate, or went away
print("ready", flush=True)
while True:
    c, _ = srv.accept()
    threading.Thread(target=guarded, args=(c,), daemon=True).start()
"#;

/// Starts the sink on `127.N.0.99:10026`; returns it and its folder.
fn sink(site: &Site) -> (Helper, PathBuf) {
    sink_at(site, 99, "sink", &[])
}

/// Starts a sink on `127.N.0.<host>:10026` with the site's certificate, saving into
/// `<folder>` of the site's directory (`extra`: `dsn`); returns it and its folder.
fn sink_at(site: &Site, host: u8, folder: &str, extra: &[&str]) -> (Helper, PathBuf) {
    let folder = site.dir.join(folder);
    std::fs::create_dir_all(&folder).unwrap();
    let tls = site.dir.join("data/tls");
    let mut args = vec![
        site.addr(host),
        "10026".to_string(),
        folder.display().to_string(),
        tls.join("server.pem").display().to_string(),
        tls.join("server-key.pem").display().to_string(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    (helper(SINK, &args), folder)
}

/// The messages the sink saved.
pub fn sunk(folder: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(folder)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn remote_mail_goes_to_the_domains_mx_over_starttls_and_failures_bounce() {
    let site = Site::isolated_with(|t| {
        let resolver = format!("resolver = \"{}53:10054\"", net_of(&t));
        quick(t)
            .replace("resolver = \"system\"", &resolver)
            .replace("port = 25", "port = 10026")
            .replace("lifetime = 432000", "lifetime = 6")
    });
    site.add_user("alice", "alice-password", &[]);
    site.add_user("nora", "nora-password", &[]);
    let (mx, a_only, dead) = (site.addr(99), site.addr(99), site.addr(98));
    let _dns = helper(
        DNS,
        &[
            &site.addr(53),
            "10054",
            "remote.example MX 10 mx.remote.example",
            &format!("mx.remote.example A {mx}"),
            &format!("a-only.example A {a_only}"),
            "nullmx.example MX 0 .",
            "dead.example MX 10 mx.dead.example",
            &format!("mx.dead.example A {dead}"),
        ],
    );
    let (_sink, folder) = sink(&site);

    // One message to a local and a remote user; then to a domain without MX records.
    assert_eq!(
        send(
            &site,
            "alice",
            "nora@example.test,bob@remote.example",
            "local and remote"
        ),
        "refused {}"
    );
    assert_eq!(
        send(&site, "alice", "carol@a-only.example", "by A record"),
        "refused {}"
    );
    // Failures: refused by the remote server, no such domain, a null MX, and a server
    // that never answers (until the queue lifetime, 6 s here, runs out).
    for rcpt in [
        "nobody@remote.example",
        "x@nxdomain.example",
        "y@nullmx.example",
        "z@dead.example",
    ] {
        assert_eq!(
            send(&site, "alice", rcpt, &format!("to {rcpt}")),
            "refused {}"
        );
    }

    let start = Instant::now();
    while sunk(&folder).len() < 2 && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let remote = sunk(&folder);
    assert_eq!(remote.len(), 2, "{remote:?}\n{}", site.log());
    let bob = remote
        .iter()
        .find(|m| m.contains("Subject: local and remote"))
        .unwrap();
    assert!(
        bob.starts_with("X-Sink-TLS: True\r\n"),
        "STARTTLS was not used: {bob}"
    );
    assert!(
        bob.contains("X-Sink-Rcpt: <bob@remote.example>\r\n"),
        "{bob}"
    );
    assert!(
        bob.contains("X-Sink-Mail: MAIL FROM:<alice@example.test>"),
        "{bob}"
    );
    assert!(bob.contains("with ESMTPA id"), "{bob}");
    let carol = remote
        .iter()
        .find(|m| m.contains("Subject: by A record"))
        .unwrap();
    assert!(
        carol.contains("X-Sink-Rcpt: <carol@a-only.example>"),
        "{carol}"
    );
    let nora = imap_messages(&site.addr(12), "nora", "nora-password");
    assert!(
        nora.iter().any(|m| m.contains("Subject: local and remote")),
        "{nora:?}"
    );

    let bounces = wait_for_mail(&site, "alice", Duration::from_secs(30), |m| m.len() >= 4);
    let find = |rcpt: &str| {
        bounces
            .iter()
            .find(|b| b.contains(&format!("Final-Recipient: rfc822; {rcpt}")))
            .unwrap_or_else(|| panic!("no bounce for {rcpt}: {bounces:?}"))
    };
    let refused = find("nobody@remote.example");
    assert!(refused.contains("Status: 5.1.1"), "{refused}");
    assert!(
        refused.contains("Remote-MTA: dns; mx.remote.example"),
        "{refused}"
    );
    assert!(
        refused.contains("Diagnostic-Code: smtp; 550 5.1.1 <nobody>"),
        "{refused}"
    );
    assert!(find("x@nxdomain.example").contains("Status: 5.1.2"));
    assert!(find("y@nullmx.example").contains("Status: 5.1.10"));
    let expired = find("z@dead.example");
    assert!(expired.contains("Status: 4.4.7"), "{expired}");
    assert!(expired.contains("within 6 seconds"), "{expired}");
    assert!(
        expired.contains("cannot connect to mx.dead.example"),
        "{expired}"
    );
    let drained = site.within(Duration::from_secs(10), || {
        site.ok(&["queue", "list"], None)
            .contains("0 messages queued")
    });
    assert!(drained.is_some(), "{}", site.ok(&["queue", "list"], None));
}

#[test]
fn a_smarthost_takes_all_remote_mail() {
    let site = Site::isolated_with(|t| {
        let net = net_of(&t);
        quick(t)
            .replace(
                "resolver = \"system\"",
                &format!("resolver = \"{net}9:10054\""),
            )
            .replace(
                "# smarthost = ",
                &format!("smarthost = \"{net}99:10026\" # "),
            )
    });
    site.add_user("alice", "alice-password", &[]);
    let (_sink, folder) = sink(&site);
    assert_eq!(
        send(&site, "alice", "dave@anywhere.example", "via the smarthost"),
        "refused {}"
    );
    let start = Instant::now();
    while sunk(&folder).is_empty() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let messages = sunk(&folder);
    assert_eq!(messages.len(), 1, "{}", site.log());
    assert!(
        messages[0].contains("X-Sink-Rcpt: <dave@anywhere.example>"),
        "{}",
        messages[0]
    );
}

/// Submits one message as alice with DSN parameters (RFC 3461) given per recipient
/// as `address|NOTIFY=...|ORCPT=...`; prints the EHLO keywords and what each step
/// answered.
const SEND_DSN: &str = r#"
import json, smtplib, sys
host, mail_options, subject = sys.argv[1], sys.argv[2].split(), sys.argv[3]
recipients = [r.split("|") for r in sys.argv[4:]]
msg = (f"From: alice@example.test\r\nTo: several\r\nSubject: {subject}\r\n\r\n"
       "The order is confirmed.\r\n").encode()
out = {}
with smtplib.SMTP(host, 10587, timeout=10) as s:
    s.ehlo("client.example.org")
    out["dsn"] = s.has_extn("dsn")
    s.login("alice", "alice-password")
    out["mail"] = s.mail("alice@example.test", mail_options)[0]
    out["rcpt"] = [s.rcpt(r[0], r[1:])[0] for r in recipients]
    out["data"] = s.data(msg)[0]
    out["never_and_more"] = s.rcpt("x@remote.example", ["NOTIFY=NEVER,SUCCESS"])[0]
print(json.dumps(out))
"#;

#[test]
fn dsn_parameters_choose_what_the_sender_is_told_and_what_comes_back() {
    let site = Site::isolated_with(|t| {
        let resolver = format!("resolver = \"{}53:10054\"", net_of(&t));
        quick(t)
            .replace("resolver = \"system\"", &resolver)
            .replace("port = 25", "port = 10026")
            .replace("lifetime = 432000", "lifetime = 8")
            .replace("delay_warning = 14400", "delay_warning = 1")
    });
    site.add_user("alice", "alice-password", &[]);
    site.add_user("nora", "nora-password", &[]);
    let (mx, dead) = (site.addr(99), site.addr(98));
    let _dns = helper(
        DNS,
        &[
            &site.addr(53),
            "10054",
            "remote.example MX 10 mx.remote.example",
            &format!("mx.remote.example A {mx}"),
            "dead.example MX 10 mx.dead.example",
            &format!("mx.dead.example A {dead}"),
        ],
    );
    let (_sink, folder) = sink(&site);

    // RET=FULL with an ENVID; each recipient asks for something else.
    let out = python(
        SEND_DSN,
        &[
            &site.addr(21),
            "RET=FULL ENVID=order-42",
            "with reports",
            "bob@remote.example|NOTIFY=SUCCESS",
            "nora@example.test|NOTIFY=SUCCESS,FAILURE|ORCPT=rfc822;Nora@Example.Test",
            "nobody@remote.example|NOTIFY=NEVER",
            "z@dead.example|NOTIFY=DELAY,FAILURE",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("the sender prints JSON");
    assert_eq!(v["dsn"], true, "EHLO offers DSN: {v}");
    assert_eq!(v["mail"], 250, "{v}");
    assert_eq!(v["rcpt"], serde_json::json!([250, 250, 250, 250]), "{v}");
    assert_eq!(v["data"], 250, "{v}");
    assert_eq!(v["never_and_more"], 501, "NEVER stands alone: {v}");
    // Without RET, a refused recipient that asked for failures gets the headers only.
    let out = python(
        SEND_DSN,
        &[
            &site.addr(21),
            "",
            "headers only",
            "nobody@remote.example|NOTIFY=FAILURE",
        ],
    );
    assert!(out.contains("\"data\": 250"), "{out}");

    // alice is told: relayed to bob, delivered to nora, delayed then failed for z;
    // nothing about nobody (NEVER); the second message bounces with its headers.
    // (Reports of one delivery attempt come together: bob's and nora's may share one.)
    let reports = wait_for_mail(&site, "alice", Duration::from_secs(40), |m| {
        let count = |needle: &str| m.iter().filter(|r| r.contains(needle)).count();
        count("Action: relayed") == 1
            && count("Action: delivered") == 1
            && count("Action: delayed") == 1
            && count("Action: failed") == 2
    });
    let with =
        |needle: &str| -> Vec<&String> { reports.iter().filter(|r| r.contains(needle)).collect() };
    let relayed = with("Action: relayed");
    assert_eq!(relayed.len(), 1, "{reports:?}");
    let relayed = relayed[0];
    assert!(
        relayed.contains("Final-Recipient: rfc822; bob@remote.example"),
        "{relayed}"
    );
    assert!(
        relayed.contains("Original-Envelope-Id: order-42"),
        "{relayed}"
    );
    assert!(relayed.contains("Status: 2.0.0"), "{relayed}");
    assert!(
        relayed.contains("Subject: Successful Mail Delivery Report"),
        "{relayed}"
    );
    assert!(relayed.contains("message/rfc822"), "RET=FULL: {relayed}");
    assert!(
        relayed.contains("The order is confirmed."),
        "RET=FULL: {relayed}"
    );
    let delivered = with("Action: delivered");
    assert_eq!(delivered.len(), 1, "{reports:?}");
    assert!(
        delivered[0].contains("Original-Recipient: rfc822;Nora@Example.Test"),
        "{}",
        delivered[0]
    );
    let delayed = with("Action: delayed");
    assert_eq!(delayed.len(), 1, "one delay report: {reports:?}");
    assert!(
        delayed[0].contains("Final-Recipient: rfc822; z@dead.example"),
        "{}",
        delayed[0]
    );
    assert!(delayed[0].contains("Will-Retry-Until:"), "{}", delayed[0]);
    assert!(delayed[0].contains("Status: 4."), "{}", delayed[0]);
    let failed = with("Action: failed");
    assert_eq!(failed.len(), 2, "{reports:?}");
    assert!(
        failed
            .iter()
            .all(|f| !f.contains("nobody@remote.example") || f.contains("Subject: headers only")),
        "NOTIFY=NEVER got a bounce: {failed:?}"
    );
    let headers_only = failed
        .iter()
        .find(|f| f.contains("Final-Recipient: rfc822; nobody@remote.example"))
        .expect("the bounce of the second message");
    assert!(
        headers_only.contains("text/rfc822-headers"),
        "{headers_only}"
    );
    assert!(
        !headers_only.contains("The order is confirmed."),
        "{headers_only}"
    );
    let expired = failed
        .iter()
        .find(|f| f.contains("Final-Recipient: rfc822; z@dead.example"))
        .expect("z's bounce");
    assert!(
        expired.contains("Original-Envelope-Id: order-42"),
        "{expired}"
    );
    // bob's copy went to the remote server.
    assert!(
        sunk(&folder)
            .iter()
            .any(|m| m.contains("Subject: with reports")),
        "{}",
        site.log()
    );
}

#[test]
fn dsn_parameters_go_on_to_servers_that_offer_dsn() {
    let site = Site::isolated_with(|t| {
        let resolver = format!("resolver = \"{}53:10054\"", net_of(&t));
        quick(t)
            .replace("resolver = \"system\"", &resolver)
            .replace("port = 25", "port = 10026")
    });
    site.add_user("alice", "alice-password", &[]);
    let (plain, with_dsn) = (site.addr(99), site.addr(97));
    let _dns = helper(
        DNS,
        &[
            &site.addr(53),
            "10054",
            "remote.example MX 10 mx.remote.example",
            &format!("mx.remote.example A {plain}"),
            "dsn.example MX 10 mx.dsn.example",
            &format!("mx.dsn.example A {with_dsn}"),
        ],
    );
    let (_sink, folder) = sink(&site);
    let (_dsn_sink, dsn_folder) = sink_at(&site, 97, "dsn-sink", &["dsn"]);

    let out = python(
        SEND_DSN,
        &[
            &site.addr(21),
            "RET=HDRS ENVID=ticket+2B7",
            "passed on",
            "bob@remote.example|NOTIFY=SUCCESS",
            "dee@dsn.example|NOTIFY=SUCCESS,FAILURE|ORCPT=rfc822;Dee@DSN.Example",
            "don@dsn.example",
        ],
    );
    assert!(out.contains("\"data\": 250"), "{out}");

    // The server with DSN gets the parameters (xtext again), the one without none.
    let taken = |folder: &std::path::Path| {
        site.within(Duration::from_secs(30), || !sunk(folder).is_empty())
            .unwrap_or_else(|| panic!("nothing reached {}: {}", folder.display(), site.log()));
        sunk(folder).remove(0)
    };
    let passed = taken(&dsn_folder);
    let line = |m: &str, field: &str| {
        m.lines()
            .find_map(|l| l.strip_prefix(field).map(str::to_string))
            .unwrap_or_default()
    };
    let mail = line(&passed, "X-Sink-Mail: ");
    assert!(
        mail.starts_with("MAIL FROM:<alice@example.test> ")
            && mail.ends_with(" RET=HDRS ENVID=ticket+2B7"),
        "{passed}"
    );
    assert_eq!(
        line(&passed, "X-Sink-Rcpt: "),
        "<dee@dsn.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Dee@DSN.Example <don@dsn.example>",
        "{passed}"
    );
    let plain = taken(&folder);
    let mail = line(&plain, "X-Sink-Mail: ");
    assert!(
        !mail.contains("RET=") && !mail.contains("ENVID="),
        "{plain}"
    );
    assert_eq!(line(&plain, "X-Sink-Rcpt: "), "<bob@remote.example>");

    // alice hears from us that bob's copy was relayed; dee's is for the server
    // with DSN to report.
    let reports = wait_for_mail(&site, "alice", Duration::from_secs(30), |m| {
        m.iter().any(|r| r.contains("Action: relayed"))
    });
    let relayed: Vec<&String> = reports
        .iter()
        .filter(|r| r.contains("Action: relayed"))
        .collect();
    assert_eq!(relayed.len(), 1, "{reports:?}");
    assert!(
        relayed[0].contains("Final-Recipient: rfc822; bob@remote.example")
            && relayed[0].contains("Original-Envelope-Id: ticket+7"),
        "{}",
        relayed[0]
    );
    assert!(
        !reports.iter().any(|r| r.contains("dee@dsn.example")),
        "a report for a recipient whose server has DSN: {reports:?}"
    );
}
