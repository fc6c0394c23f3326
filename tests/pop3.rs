//! POP3 as a download-everything user sees it: Python's poplib against a running
//! `mailsite serve`, after mail arrived over LMTP.

mod common;

use common::{Site, python};

const DELIVER: &str = r#"
import smtplib, sys
host, rcpt, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
with smtplib.LMTP(host, 10024, source_address=(host.rsplit(".", 1)[0] + ".21", 0)) as s:
    for n in range(1, count + 1):
        s.sendmail("sender@example.org", [rcpt], f"Subject: message {n}\r\n\r\n.line one of {n}\r\nline two\r\n".encode())
"#;

const SESSION: &str = r#"
import poplib, sys, json
host, user, password, delete = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "yes"
p = poplib.POP3(host, 10110, timeout=10)
out = {"capa": sorted(p.capa().keys())}
p.user(user)
p.pass_(password)
out["stat"] = list(p.stat())
out["list"] = [l.decode() for l in p.list()[1]]
out["uidl"] = [l.decode() for l in p.uidl()[1]]
out["retr1"] = [l.decode() for l in p.retr(1)[1]]
out["top1"] = [l.decode() for l in p.top(1, 0)[1]]
if delete:
    p.dele(1)
    out["stat_after_dele"] = list(p.stat())
    try:
        p.retr(1)
        out["retr_deleted"] = "ok"
    except poplib.error_proto as e:
        out["retr_deleted"] = str(e)
out["quit"] = p.quit().decode()
print(json.dumps(out))
"#;

fn session(site: &Site, host: u8, user: &str, password: &str, delete: bool) -> serde_json::Value {
    let out = python(
        SESSION,
        &[
            &site.addr(host),
            user,
            password,
            if delete { "yes" } else { "no" },
        ],
    );
    serde_json::from_str(&out).unwrap()
}

#[test]
fn poplib_downloads_and_deletes_with_stable_uidls() {
    let site = Site::isolated();
    site.add_user("nora", "nora-password", &["--prefer", "pop3"]);
    python(DELIVER, &[&site.addr(12), "nora@example.test", "3"]);

    let first = session(&site, 12, "nora", "nora-password", true);
    assert_eq!(
        first["capa"],
        serde_json::json!([
            "AUTH-RESP-CODE",
            "IMPLEMENTATION",
            "PIPELINING",
            "RESP-CODES",
            "SASL",
            "STLS",
            "TOP",
            "UIDL",
            "USER"
        ])
    );
    assert_eq!(first["stat"][0], 3);
    assert_eq!(first["list"].as_array().unwrap().len(), 3);
    let retr: Vec<String> = serde_json::from_value(first["retr1"].clone()).unwrap();
    assert!(retr.contains(&"Subject: message 1".to_string()), "{retr:?}");
    // poplib removes the dot-stuffing the server added.
    assert!(retr.contains(&".line one of 1".to_string()), "{retr:?}");
    assert!(
        retr.iter()
            .any(|l| l.starts_with("Delivered-To: nora@example.test"))
    );
    let top: Vec<String> = serde_json::from_value(first["top1"].clone()).unwrap();
    assert_eq!(top.last().map(String::as_str), Some(""), "{top:?}");
    assert!(!top.iter().any(|l| l.contains("line one")));
    assert_eq!(first["stat_after_dele"][0], 2);
    assert!(first["retr_deleted"].as_str().unwrap().contains("-ERR"));
    assert!(
        first["quit"]
            .as_str()
            .unwrap()
            .contains("1 messages deleted")
    );

    // The next session sees two messages, under the same UIDLs as before.
    let second = session(&site, 12, "nora", "nora-password", false);
    assert_eq!(second["stat"][0], 2);
    let uidl = |v: &serde_json::Value, i: usize| {
        v["uidl"][i]
            .as_str()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .to_string()
    };
    assert_eq!(uidl(&second, 0), uidl(&first, 1));
    assert_eq!(uidl(&second, 1), uidl(&first, 2));
    let files = std::fs::read_dir(site.dir.join("data/mail/nora/cur"))
        .unwrap()
        .count();
    assert_eq!(files, 2);
}

const LOCKING: &str = r#"
import poplib, sys
host = sys.argv[1]
a = poplib.POP3(host, 10110, timeout=10)
a.user("nora"); a.pass_("nora-password")
b = poplib.POP3(host, 10110, timeout=10)
b.user("nora")
try:
    b.pass_("nora-password")
    print("second login accepted")
except poplib.error_proto as e:
    print(e.args[0].decode())
a.dele(1)
a.file.close(); a.sock.close()   # vanishes without QUIT: nothing may be deleted
c = poplib.POP3(host, 10110, timeout=10)
c.user("nora")
for attempt in range(50):
    try:
        c.pass_("nora-password"); break
    except poplib.error_proto:
        import time; time.sleep(0.1); c = poplib.POP3(host, 10110, timeout=10); c.user("nora")
print(c.stat()[0])
c.quit()
"#;

#[test]
fn one_session_per_maildrop_and_no_deletion_without_quit() {
    let site = Site::isolated();
    site.add_user("nora", "nora-password", &[]);
    python(DELIVER, &[&site.addr(12), "nora@example.test", "2"]);
    let out = python(LOCKING, &[&site.addr(12)]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("-ERR [IN-USE]"), "{out}");
    assert_eq!(lines[1], "2", "{out}");
}

const REFUSALS: &str = r#"
import poplib, sys, socket, base64
host = sys.argv[1]
def attempt(user, password):
    p = poplib.POP3(host, 10110, timeout=10)
    p.user(user)
    try:
        p.pass_(password)
        return "accepted"
    except poplib.error_proto as e:
        return e.args[0].decode()
print(attempt("nora", "wrong-password"))
print(attempt("alice", "alice-password"))
print(attempt("nobody", "whatever-pass"))
s = socket.create_connection((host, 10110), timeout=10)
f = s.makefile("rb")
f.readline()
def say(line):
    s.sendall(line.encode() + b"\r\n")
    return f.readline().decode().strip()
print(say("STAT"))
print(say("NOOP " + "x" * 5000))
print(say("AUTH PLAIN " + base64.b64encode(b"\0nora\0nora-password").decode()))
print(say("STAT"))
print(say("QUIT"))
"#;

#[test]
fn wrong_passwords_other_servers_users_and_bad_lines() {
    let site = Site::isolated();
    site.add_user("nora", "nora-password", &[]);
    site.add_user("alice", "alice-password", &[]);
    python(DELIVER, &[&site.addr(12), "nora@example.test", "1"]);
    let out = python(REFUSALS, &[&site.addr(12)]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("-ERR [AUTH]"), "{out}");
    assert!(
        lines[1].starts_with("-ERR [SYS/TEMP] alice is served by maila.example.test"),
        "{out}"
    );
    assert!(lines[2].starts_with("-ERR [AUTH]"), "{out}");
    assert!(lines[3].starts_with("-ERR"), "{out}");
    assert!(lines[4].starts_with("-ERR Line too long"), "{out}");
    assert!(lines[5].starts_with("+OK Logged in, 1 messages"), "{out}");
    assert!(lines[6].starts_with("+OK 1 "), "{out}");
    assert!(lines[7].starts_with("+OK"), "{out}");
    assert!(!site.log().contains("nora-password"));
}

const TLS: &str = r#"
import poplib, ssl, sys, socket
host, ca = sys.argv[1], sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
p = poplib.POP3_SSL(host, 10995, context=ctx, timeout=10)
p.user("nora"); p.pass_("nora-password"); print(p.stat()[0]); p.quit()
q = poplib.POP3(host, 10110, timeout=10)
print("STLS" in q.capa())
q.stls(context=ctx)
q.user("nora"); q.pass_("nora-password"); print(q.stat()[0]); q.quit()
s = ctx.wrap_socket(socket.create_connection((host, 10995), timeout=10), server_hostname="mailn.example.test")
print(s.version()); s.close()
try:
    ctx.wrap_socket(socket.create_connection((host, 10995), timeout=10), server_hostname="mail.example.org")
    print("wrong name accepted")
except ssl.SSLCertVerificationError:
    print("wrong name refused")
"#;

#[test]
fn tls_on_995_and_stls_with_the_site_ca() {
    let site = Site::isolated();
    site.add_user("nora", "nora-password", &[]);
    python(DELIVER, &[&site.addr(12), "nora@example.test", "1"]);
    let ca = site.dir.join("data/tls/ca.pem");
    assert!(site.stdout().contains("site CA"), "{}", site.stdout());
    let out = python(TLS, &[&site.addr(12), ca.to_str().unwrap()]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        ["1", "True", "1", "TLSv1.3", "wrong name refused"],
        "{out}"
    );
}

const CROWD: &str = r#"
import socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
# 20 connections from each of 50 sources: one source may open only [limits] per_source.
net = host.split(".")[1]
conns = [socket.create_connection((host, port), timeout=20, source_address=(f"127.{net}.{100 + i // 20}.{1 + i % 20}", 0)) for i in range(n)]
greeted = sum(1 for c in conns if c.recv(512).startswith((b"+OK", b"220", b"* OK")))
for c in conns:
    c.close()
print(greeted)
"#;

#[test]
fn a_thousand_concurrent_connections_are_served() {
    let site = Site::isolated();
    for port in ["10110", "10024", "10143"] {
        let out = python(CROWD, &[&site.addr(11), port, "1000"]);
        assert_eq!(out.trim(), "1000", "port {port}");
    }
    // And the server still answers afterwards.
    let out = python(CROWD, &[&site.addr(11), "10110", "1"]);
    assert_eq!(out.trim(), "1");
}
