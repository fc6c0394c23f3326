//! Sessions that stay: two sessions and IDLE seeing each other's changes, silent
//! clients disconnected after the configured timeouts, keep-alives during IDLE.

use crate::common::{Site, python};
use crate::{DELIVER, RAW_SESSION};

const TWO_SESSIONS: &str = r#"
import imaplib, smtplib, sys, json, time
host, user, password = sys.argv[1:4]
out = {}
def connect():
    m = imaplib.IMAP4(host, 10143, timeout=10)
    m.login(user, password)
    m.select("INBOX")
    return m
a, b = connect(), connect()
# A flag set in one session shows in the other at its next NOOP.
b.store("1", "+FLAGS", "\\Flagged")
a.noop()
out["a_sees_flag"] = [d.decode() for d in a.untagged_responses.pop("FETCH", [])]
# An expunge in one session shows as EXPUNGE in the other.
a.store("2", "+FLAGS", "\\Deleted")
a.expunge()
b.noop()
out["b_sees_expunge"] = [d.decode() for d in b.untagged_responses.pop("EXPUNGE", [])]
out["b_exists"] = [d.decode() for d in b.untagged_responses.pop("EXISTS", [])]

# IDLE: a delivery, a flag change and an APPEND by the other session arrive unasked.
b.send(b"i1 IDLE\r\n")
out["idle_start"] = b.readline().decode().strip()
def until(word):
    lines = []
    while True:
        line = b.readline().decode().strip()
        lines.append(line)
        if word in line:
            return lines
start = time.monotonic()
with smtplib.LMTP(host, 10024, source_address=(host.rsplit(".", 1)[0] + ".21", 0)) as s:
    s.sendmail("sender@example.org", [user + "@example.test"], b"Subject: pushed\r\n\r\nnow\r\n")
out["idle_delivery"] = until("EXISTS")
out["idle_delay"] = time.monotonic() - start
a.store("1", "+FLAGS", "\\Seen")
out["idle_flags"] = until("FETCH")
a.append("INBOX", None, None, b"Subject: appended\r\n\r\nby a\r\n")
out["idle_append"] = until("EXISTS")
a.uid("STORE", "1", "+FLAGS", "\\Deleted")
a.expunge()
out["idle_expunge"] = until("EXPUNGE")
b.send(b"DONE\r\n")
out["idle_done"] = until("i1 ")
typ, data = b.fetch("1:*", "(UID FLAGS)")
out["b_after"] = [d.decode() for d in data]
typ, data = a.fetch("1:*", "(UID FLAGS)")
out["a_after"] = [d.decode() for d in data]
a.logout()
b.logout()
print(json.dumps(out))
"#;

#[test]
fn two_sessions_and_idle_see_each_others_changes() {
    let site = Site::isolated();
    site.add_user("carol", "carol-password", &[]);
    python(DELIVER, &[&site.addr(11), "carol@example.test", "3"]);
    let out = python(TWO_SESSIONS, &[&site.addr(11), "carol", "carol-password"]);
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    let text = out.to_string();
    let joined = |key: &str| out[key].to_string();
    assert!(joined("a_sees_flag").contains("\\\\Flagged"), "{text}");
    assert!(joined("a_sees_flag").contains("UID 1"), "{text}");
    assert_eq!(out["b_sees_expunge"], serde_json::json!(["2"]), "{text}");
    assert!(
        out["idle_start"].as_str().unwrap().starts_with('+'),
        "{text}"
    );
    // The delivery is pushed within a second: it is the only EXISTS, now 3 messages.
    assert!(joined("idle_delivery").contains("* 3 EXISTS"), "{text}");
    assert!(out["idle_delay"].as_f64().unwrap() < 1.0, "{text}");
    assert!(joined("idle_flags").contains("\\\\Seen"), "{text}");
    assert!(joined("idle_append").contains("* 4 EXISTS"), "{text}");
    assert!(joined("idle_expunge").contains("* 1 EXPUNGE"), "{text}");
    assert!(joined("idle_done").contains("i1 OK"), "{text}");
    // Both sessions end with the same view: UIDs 3 (delivered earlier), 4, 5; each
    // message \Recent in exactly one session (3 in a, which selected first; 4 and 5 in
    // whichever noticed them first).
    let strip = |key: &str| {
        joined(key)
            .replace(" \\\\Recent", "")
            .replace("\\\\Recent", "")
    };
    assert_eq!(strip("a_after"), strip("b_after"), "{text}");
    let recent_in = |key: &str, i: usize| out[key][i].as_str().unwrap().contains("\\Recent");
    assert!(
        recent_in("a_after", 0) && !recent_in("b_after", 0),
        "{text}"
    );
    for i in 1..3 {
        assert!(recent_in("a_after", i) != recent_in("b_after", i), "{text}");
    }
    assert!(joined("b_after").contains("UID 3 "), "{text}");
    assert!(joined("b_after").contains("UID 5 "), "{text}");
    assert!(!joined("b_after").contains("UID 1 "), "{text}");
}

const SILENCE: &str = r#"
import socket, sys, json, time, threading
host, user, password = sys.argv[1:4]
out = {}
def silent(name, port, lines):
    s = socket.create_connection((host, port), timeout=20)
    f = s.makefile("rb")
    f.readline()
    for line in lines:
        s.sendall(line)
        while True:
            reply = f.readline()
            if not reply.startswith(b"*") or b"IDLE" in line:
                break
        out.setdefault(name + "_replies", []).append(reply.decode().strip())
    start = time.monotonic()
    last = f.readline().decode().strip()
    out[name] = [last, round(time.monotonic() - start, 1), f.readline() == b""]
login = f"a LOGIN {user} {password}\r\n".encode()
threads = [
    threading.Thread(target=silent, args=("imap_before_login", 10143, [])),
    threading.Thread(target=silent, args=("imap_selected", 10143, [login, b"b SELECT INBOX\r\n"])),
    threading.Thread(target=silent, args=("imap_idle", 10143, [login, b"b SELECT INBOX\r\n", b"c IDLE\r\n"])),
    threading.Thread(target=silent, args=("pop3_before_login", 10110, [])),
    threading.Thread(target=silent, args=("pop3_after_login", 10110, [f"USER {user}\r\n".encode(), f"PASS {password}\r\n".encode()])),
]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(out))
"#;

#[test]
fn silent_clients_are_disconnected_after_the_configured_timeouts() {
    let site = Site::isolated_with(|text| {
        text.replacen("login = 60 ", "login = 2 ", 1)
            .replacen("imap = 1800", "imap = 4", 1)
            .replacen("pop3 = 600", "pop3 = 4", 1)
    });
    site.add_user("erin", "erin-password", &[]);
    let out = python(SILENCE, &[&site.addr(11), "erin", "erin-password"]);
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    let text = out.to_string();
    for (name, farewell, seconds) in [
        ("imap_before_login", "* BYE", 2.0),
        ("imap_selected", "* BYE", 4.0),
        ("imap_idle", "* BYE", 4.0),
        ("pop3_before_login", "-ERR", 2.0),
        ("pop3_after_login", "-ERR", 4.0),
    ] {
        let [last, elapsed, closed] = &out[name].as_array().unwrap()[..] else {
            panic!("{text}");
        };
        assert!(
            last.as_str().unwrap().starts_with(farewell),
            "{name}: {text}"
        );
        let elapsed = elapsed.as_f64().unwrap();
        assert!(
            elapsed >= seconds - 0.5 && elapsed < seconds + 3.0,
            "{name}: {text}"
        );
        assert_eq!(closed, true, "{name} is closed: {text}");
    }
}

const KEEPALIVE: &str = r#"
import imaplib, sys, json, time
host, user, password = sys.argv[1:4]
m = imaplib.IMAP4(host, 10143, timeout=10)
m.login(user, password)
m.select("INBOX")
m.send(b"i1 IDLE\r\n")
out = {"start": m.readline().decode().strip(), "lines": []}
start = time.monotonic()
while time.monotonic() - start < 3.5:
    line = m.readline().decode().strip()
    out["lines"].append([line, round(time.monotonic() - start, 2)])
    if len(out["lines"]) >= 3:
        break
m.send(b"DONE\r\n")
out["done"] = m.readline().decode().strip()
m.logout()
print(json.dumps(out))
"#;

/// A client that IDLEs is sent `* OK Still here` every `timeouts.idle_keepalive`
/// seconds, so that NATs and firewalls on the way see traffic; DONE ends the IDLE
/// as before.
#[test]
fn an_idle_client_gets_keepalives_at_the_configured_interval() {
    let site =
        Site::isolated_with(|text| text.replacen("idle_keepalive = 120", "idle_keepalive = 1", 1));
    site.add_user("erin", "erin-password", &[]);
    let out = python(KEEPALIVE, &[&site.addr(11), "erin", "erin-password"]);
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    let text = out.to_string();
    assert!(out["start"].as_str().unwrap().starts_with('+'), "{text}");
    let lines = out["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 3, "{text}");
    for (n, line) in lines.iter().enumerate() {
        assert_eq!(line[0], "* OK Still here", "{text}");
        let at = line[1].as_f64().unwrap();
        let want = (n + 1) as f64;
        assert!(
            at > want - 0.5 && at < want + 0.5,
            "keepalive {n} at {at} s: {text}"
        );
    }
    assert!(out["done"].as_str().unwrap().starts_with("i1 OK"), "{text}");
}

/// Two sessions expunge the same message, then one moves and copies a message into
/// the mailbox it has selected; every answer read line by line.
const SAME_MAILBOX: &str = r#"
a, b = connect(), connect()
raw(a, "SELECT INBOX")
raw(b, "SELECT INBOX")
raw(a, "STORE 1 +FLAGS (\\Deleted)")
raw(b, "STORE 1 +FLAGS (\\Deleted)")
out = {"expunge_a": raw(a, "EXPUNGE"), "expunge_b": raw(b, "EXPUNGE")}
out["move"] = raw(a, "MOVE 1 INBOX")
out["copy"] = raw(a, "COPY 1 INBOX")
out["fetch"] = raw(a, "FETCH 1:* (UID)")
print(json.dumps(out))
"#;

/// Both sessions that expunge the same message are told it is gone (the second by the
/// other's expunge), and a MOVE or COPY into the selected mailbox itself reports the
/// new copy's EXISTS before its tagged OK.
#[test]
fn expunges_reach_every_session_and_copies_into_the_selected_mailbox_exist_at_once() {
    let site = Site::isolated();
    site.add_user("fay", "fay-password", &[]);
    python(DELIVER, &[&site.addr(11), "fay@example.test", "3"]);
    let out = python(
        &format!("{RAW_SESSION}{SAME_MAILBOX}"),
        &[&site.addr(11), "fay", "fay-password"],
    );
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    let text = out.to_string();
    let lines = |key: &str| out[key].to_string();
    assert!(lines("expunge_a").contains("\"* 1 EXPUNGE\""), "{text}");
    assert!(lines("expunge_b").contains("\"* 1 EXPUNGE\""), "{text}");
    // Two messages left; MOVE 1 takes one out (EXPUNGE) and puts it back (EXISTS 2).
    let moved = lines("move");
    assert!(moved.contains("\"* 1 EXPUNGE\""), "{text}");
    assert!(moved.contains("\"* 2 EXISTS\""), "{text}");
    assert!(
        moved.find("* 2 EXISTS").unwrap() < moved.find(" OK MOVE completed").unwrap(),
        "{text}"
    );
    assert!(lines("copy").contains("\"* 3 EXISTS\""), "{text}");
    assert_eq!(
        out["fetch"].as_array().unwrap().len(),
        4,
        "three messages and the tagged OK: {text}"
    );
}
