//! Before login: what a stranger can make the mailbox servers hold. IMAP literals and
//! command lines and POP3 lines are bounded (the server's resident memory is read
//! from /proc while the attack connections stay open), connections from one source
//! that have not logged in are capped, and idle, slow or never-logging-in connections
//! are closed; an honest client logs in throughout.

use crate::common::{Site, python};

/// Python helpers shared by the scripts: connections from a chosen 127.x source, the
/// server's VmRSS, and an honest IMAP and POP3 login.
const HELPERS: &str = r#"
import imaplib, poplib, socket, sys, json, time

def connect(host, port, source, timeout=20):
    return socket.create_connection((host, port), timeout, source_address=(source, 0))

def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

def line_of(sock):
    data = b""
    while not data.endswith(b"\n"):
        try:
            chunk = sock.recv(1)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace")

def closed(sock, within=20):
    sock.settimeout(within)
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return True
    except ConnectionResetError:
        return True
    except OSError:
        return False

class SourcedIMAP(imaplib.IMAP4):
    def __init__(self, host, source):
        self.source = source
        super().__init__(host, 10143, timeout=20)
    def _create_socket(self, timeout):
        return connect(self.host, self.port, self.source, timeout)

class SourcedPOP3(poplib.POP3):
    def __init__(self, host, source):
        self.source = source
        super().__init__(host, 10110, timeout=20)
    def _create_socket(self, timeout):
        return connect(self.host, self.port, self.source, timeout)

def honest_imap(host, source):
    start = time.monotonic()
    m = SourcedIMAP(host, source)
    typ, _ = m.login("alice", "alice-password")
    m.select("INBOX")
    m.logout()
    return typ, time.monotonic() - start
"#;

fn script(body: &str) -> String {
    format!("{HELPERS}\n{body}")
}

fn site_with(edit: impl FnOnce(String) -> String) -> Site {
    let site = Site::isolated_with(edit);
    site.add_user("alice", "alice-password", &[]);
    site
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

const LITERALS: &str = r#"
host, net, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
out = {"before": rss_kib(pid), "sync": [], "nonsync": [], "long": []}
held = []
# Synchronising literals of 40 MB: answered BAD, never "+"; the connection lives.
for n in range(32):
    s = connect(host, 10143, f"127.{net}.1.{10 + n % 4}")
    line_of(s)
    s.sendall(b"a LOGIN {40000000}\r\n")
    first = line_of(s)
    s.sendall(b"b NOOP\r\n")
    out["sync"].append([first, line_of(s)])
    held.append(s)
# Non-synchronising literals (LITERAL+): the client sends anyway; BAD and closed.
sent = 0
for n in range(32):
    s = connect(host, 10143, f"127.{net}.2.{10 + n % 4}")
    line_of(s)
    s.sendall(b"a LOGIN {40000000+}\r\n")
    chunk = b"x" * 65536
    try:
        for _ in range(32):
            s.sendall(chunk)
            sent += len(chunk)
    except OSError:
        pass
    out["nonsync"].append([line_of(s), closed(s)])
# Command lines of 4 MiB before login: BAD, skipped, the connection lives.
for n in range(16):
    s = connect(host, 10143, f"127.{net}.3.{10 + n % 4}")
    line_of(s)
    s.sendall(b"a LOGIN ")
    for _ in range(64):
        s.sendall(b"y" * 65536)
    s.sendall(b"\r\nb NOOP\r\n")
    out["long"].append([line_of(s), line_of(s)])
    held.append(s)
time.sleep(0.5)
out["during"] = rss_kib(pid)
out["sent_nonsync"] = sent
out["honest"] = honest_imap(host, f"127.{net}.9.9")[0]
print(json.dumps(out))
"#;

#[test]
fn imap_literals_and_long_lines_before_login_are_refused_without_being_held() {
    let site = site_with(|t| t);
    let out = json(&python(
        &script(LITERALS),
        &[
            &site.addr(11),
            &site.net.to_string(),
            &site.pid().to_string(),
        ],
    ));
    for pair in out["sync"].as_array().unwrap() {
        let first = pair[0].as_str().unwrap();
        assert!(
            first.starts_with("a BAD"),
            "a synchronising literal got {first:?}"
        );
        assert!(pair[1].as_str().unwrap().starts_with("b OK"), "{pair}");
    }
    for pair in out["nonsync"].as_array().unwrap() {
        let first = pair[0].as_str().unwrap();
        assert!(
            first.starts_with("a BAD") || first.is_empty(),
            "a non-synchronising literal got {first:?}"
        );
        assert_eq!(pair[1], true, "the connection stayed open: {pair}");
    }
    for pair in out["long"].as_array().unwrap() {
        let first = pair[0].as_str().unwrap();
        assert!(first.starts_with("a BAD"), "a 4 MiB line got {first:?}");
        assert!(first.contains("too long"), "{first}");
        assert!(pair[1].as_str().unwrap().starts_with("b OK"), "{pair}");
    }
    assert_eq!(out["honest"], "OK", "{out}");
    // 64 MiB of non-synchronising literal and 64 MiB of long lines were sent (and
    // 1.28 GB of literals announced): the server holds a small part of it.
    let grown = out["during"].as_i64().unwrap() - out["before"].as_i64().unwrap();
    assert!(out["sent_nonsync"].as_i64().unwrap() > 0, "{out}");
    assert!(grown < 24 * 1024, "the server grew by {grown} KiB: {out}");
    assert!(site.rss_kib() < 200 * 1024, "{} KiB", site.rss_kib());
}

const POP3_LINES: &str = r#"
host, net, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
out = {"before": rss_kib(pid)}
s = connect(host, 10110, f"127.{net}.1.1")
line_of(s)
# 300 octets: over RFC 2449's 255; then 4 MiB; each refused, the connection lives.
s.sendall(b"USER " + b"u" * 300 + b"\r\nCAPA\r\n")
out["short"] = line_of(s)
out["capa"] = line_of(s)
while line_of(s).strip() != ".":
    pass
s.sendall(b"USER ")
for _ in range(64):
    s.sendall(b"v" * 65536)
s.sendall(b"\r\nCAPA\r\n")
out["long"] = line_of(s)
out["after"] = line_of(s)
out["during"] = rss_kib(pid)
p = SourcedPOP3(host, f"127.{net}.9.9")
p.user("alice")
out["honest"] = p.pass_("alice-password").decode()
p.quit()
print(json.dumps(out))
"#;

#[test]
fn pop3_over_long_lines_are_refused_and_skipped() {
    let site = site_with(|t| t);
    let (host, net, pid) = (site.addr(11), site.net.to_string(), site.pid().to_string());
    let out = json(&python(&script(POP3_LINES), &[&host, &net, &pid]));
    assert!(
        out["short"]
            .as_str()
            .unwrap()
            .starts_with("-ERR Line too long"),
        "{out}"
    );
    assert!(out["capa"].as_str().unwrap().starts_with("+OK"), "{out}");
    assert!(
        out["long"]
            .as_str()
            .unwrap()
            .starts_with("-ERR Line too long"),
        "{out}"
    );
    // The end of the 4 MiB line is not taken for a command: CAPA gets its answer.
    assert!(
        out["after"].as_str().unwrap().starts_with("+OK Capa"),
        "{out}"
    );
    assert!(out["honest"].as_str().unwrap().starts_with("+OK"), "{out}");
    let grown = out["during"].as_i64().unwrap() - out["before"].as_i64().unwrap();
    assert!(grown < 8 * 1024, "the server grew by {grown} KiB: {out}");
}

const PER_SOURCE: &str = r#"
host, net, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
crowded = f"127.{net}.5.5"
out = {}
held = []
for n in range(5):
    s = connect(host, port, crowded)
    held.append((s, line_of(s)))
out["held"] = [g for _, g in held]
extra = connect(host, port, crowded)
out["sixth"] = line_of(extra)
out["sixth_closed"] = closed(extra)
# Another source is not affected.
if port == 10143:
    out["other"] = honest_imap(host, f"127.{net}.6.6")[0]
else:
    p = SourcedPOP3(host, f"127.{net}.6.6")
    p.user("alice")
    out["other"] = p.pass_("alice-password").decode()
    p.quit()
# Connections that log in stop counting against their source.
for s, _ in held:
    s.close()
time.sleep(0.3)
sessions = []
for n in range(5):
    if port == 10143:
        m = SourcedIMAP(host, crowded)
        m.login(f"alice{n}", "alice-password")
    else:
        # One POP3 session per maildrop: five users.
        m = SourcedPOP3(host, crowded)
        m.user(f"alice{n}")
        m.pass_("alice-password")
    sessions.append(m)
s = connect(host, port, crowded)
out["after_login"] = line_of(s)
print(json.dumps(out))
"#;

#[test]
fn connections_before_login_are_capped_per_source() {
    let site = site_with(|t| t.replace("per_source = 50", "per_source = 5"));
    for n in 0..5 {
        site.add_user(&format!("alice{n}"), "alice-password", &[]);
    }
    for (port, busy, ready) in [
        (
            "10143",
            "* BYE [UNAVAILABLE] Too many connections from your address",
            "* OK",
        ),
        (
            "10110",
            "-ERR [SYS/TEMP] Too many connections from your address",
            "+OK",
        ),
    ] {
        let out = json(&python(
            &script(PER_SOURCE),
            &[&site.addr(11), &site.net.to_string(), port],
        ));
        for greeting in out["held"].as_array().unwrap() {
            assert!(greeting.as_str().unwrap().starts_with(ready), "{out}");
        }
        assert!(out["sixth"].as_str().unwrap().starts_with(busy), "{out}");
        assert_eq!(out["sixth_closed"], true, "{out}");
        let other = out["other"].as_str().unwrap();
        assert!(other.starts_with("OK") || other.starts_with("+OK"), "{out}");
        assert!(
            out["after_login"].as_str().unwrap().starts_with(ready),
            "{out}"
        );
    }
}

const SLOW: &str = r#"
host, net, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
out = {}
start = time.monotonic()
# Silent after the greeting: closed by the idle bound (2 s).
idle = connect(host, port, f"127.{net}.7.1")
line_of(idle)
# One byte a second, never a whole line: closed by the same bound.
slow = connect(host, port, f"127.{net}.7.2")
line_of(slow)
# A whole command a second, never logging in: closed by the login bound (5 s).
busy = connect(host, port, f"127.{net}.7.3")
line_of(busy)
noop = b"a NOOP\r\n" if port == 10143 else b"CAPA\r\n"
import select
socks = {"idle": idle, "slow": slow, "busy": busy}
due = {"slow": 0.0, "busy": 0.0}
ends = {}
while time.monotonic() - start < 10 and len(ends) < 3:
    now = time.monotonic() - start
    for name, every in (("slow", 0.5), ("busy", 1.0)):
        if name in ends or now < due[name]:
            continue
        due[name] = now + every
        try:
            socks[name].sendall(b"a" if name == "slow" else noop)
        except OSError:
            ends[name] = [now, "reset"]
    live = [s for n, s in socks.items() if n not in ends]
    readable, _, _ = select.select(live, [], [], 0.1)
    for name, s in socks.items():
        if name in ends or s not in readable:
            continue
        try:
            data = s.recv(65536)
        except OSError:
            data = b""
        if not data:
            ends[name] = [time.monotonic() - start, "closed"]
        else:
            for line in data.decode(errors="replace").splitlines():
                if "BYE" in line or line.startswith("-ERR"):
                    out[name + "_bye"] = line
out["ends"] = ends
print(json.dumps(out))
"#;

#[test]
fn idle_slow_and_never_logging_in_connections_are_closed() {
    let site = site_with(|t| {
        t.replace("login = 60 ", "login = 2 ")
            .replace("login_total = 180", "login_total = 5")
    });
    for port in ["10143", "10110"] {
        let out = json(&python(
            &script(SLOW),
            &[&site.addr(11), &site.net.to_string(), port],
        ));
        let ends = &out["ends"];
        for (name, earliest, latest) in [("idle", 1.5, 4.5), ("slow", 1.5, 4.5), ("busy", 4.5, 8.0)]
        {
            let at = ends[name][0]
                .as_f64()
                .unwrap_or_else(|| panic!("{name} was not closed on port {port}: {out}"));
            assert!(
                (earliest..latest).contains(&at),
                "{name} closed after {at} s on port {port}: {out}"
            );
        }
        let said = out["busy_bye"].as_str().unwrap_or_default();
        assert!(said.contains("without logging in"), "port {port}: {out}");
    }
    // A client that logged in is held to the (long) session bound, not these.
    let held = python(
        &script(
            r#"
host, net = sys.argv[1], sys.argv[2]
m = SourcedIMAP(host, f"127.{net}.8.8")
m.login("alice", "alice-password")
time.sleep(6)
print(m.noop()[0])
"#,
        ),
        &[&site.addr(11), &site.net.to_string()],
    );
    assert_eq!(held.trim(), "OK");
}
