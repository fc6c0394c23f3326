//! Nothing acknowledged is lost when the server is killed, and large fetches come in
//! parts with pipelining intact.

use crate::common::python;
use crate::common::{self, Site};

/// APPENDs in a stream, printing "N UID" for each one acknowledged, and LMTP
/// deliveries beside it, printing "lmtp N"; both stop when the server vanishes.
const APPEND_STREAM: &str = r#"
import imaplib, smtplib, sys, time, threading, re
host, user, password, first, seconds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
end = time.time() + seconds
lock = threading.Lock()
def say(line):
    # One whole line at a time: print() writes its pieces separately, and the two
    # threads' pieces could interleave into a line that reads as a different pair.
    with lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
def lmtp():
    n = first
    try:
        s = smtplib.LMTP(host, 10024, timeout=5, source_address=(host.rsplit(".", 1)[0] + ".21", 0))
        while time.time() < end:
            s.sendmail("sender@example.org", [user + "@example.test"], f"Subject: delivered {n}\r\n\r\nbody {n}\r\n".encode())
            say(f"lmtp {n}")
            n += 1
    except Exception:
        pass
threading.Thread(target=lmtp).start()
n = first
try:
    m = imaplib.IMAP4(host, 10143, timeout=5)
    m.login(user, password)
    while time.time() < end:
        typ, data = m.append("INBOX", "(\\Flagged)", None, f"Subject: appended {n}\r\n\r\nbody {n}\r\n".encode())
        uid = re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1).decode()
        say(f"{n} {uid}")
        n += 1
except Exception:
    pass
"#;

const EVERY_SUBJECT: &str = r#"
import imaplib, sys, json, re
host, user, password = sys.argv[1:4]
m = imaplib.IMAP4(host, 10143, timeout=20)
m.login(user, password)
m.select("INBOX")
typ, data = m.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
out = {}
for item in data:
    if isinstance(item, tuple):
        uid = re.search(rb"UID (\d+)", item[0]).group(1).decode()
        flags = re.search(rb"FLAGS \(([^)]*)\)", item[0]).group(1).decode()
        out[uid] = [item[1].decode().strip(), flags]
print(json.dumps(out))
"#;

#[test]
fn every_acknowledged_append_and_delivery_survives_sigkill() {
    let mut site = Site::isolated();
    site.add_user("frank", "frank-password", &[]);
    let mut appended: Vec<(String, String)> = Vec::new();
    let mut delivered: Vec<String> = Vec::new();
    for round in 0..3u32 {
        let child = common::Lines::spawn(std::process::Command::new("python3").args([
            "-c",
            APPEND_STREAM,
            &site.addr(11),
            "frank",
            "frank-password",
            &(round * 100_000).to_string(),
            "4",
        ]));
        // Kill while both streams are well under way.
        common::wait_until(|| {
            child.count(|l| l.starts_with("lmtp")) >= 3
                && child.count(|l| !l.starts_with("lmtp")) >= 3
        });
        site.kill_hard();
        let lines = child.finish();
        let text = lines.join("\n");
        let before = (appended.len(), delivered.len());
        for line in &lines {
            match line.split_whitespace().collect::<Vec<_>>()[..] {
                ["lmtp", n] => delivered.push(n.to_string()),
                [n, uid] => appended.push((n.to_string(), uid.to_string())),
                _ => {}
            }
        }
        assert!(
            appended.len() > before.0 && delivered.len() > before.1,
            "round {round}: nothing was acknowledged before the kill:\n{text}"
        );
        site.start_again();
    }
    let out = python(EVERY_SUBJECT, &[&site.addr(11), "frank", "frank-password"]);
    let stored: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&out).unwrap();
    // Every acknowledged APPEND is there under the UID it was given, with its flag.
    for (n, uid) in &appended {
        let entry = stored
            .get(uid)
            .unwrap_or_else(|| panic!("acknowledged APPEND {n} (UID {uid}) is missing"));
        assert_eq!(entry[0], format!("Subject: appended {n}"), "UID {uid}");
        assert!(
            entry[1].as_str().unwrap().contains("\\Flagged"),
            "UID {uid}"
        );
    }
    let subjects: std::collections::HashSet<&str> =
        stored.values().filter_map(|v| v[0].as_str()).collect();
    for n in &delivered {
        assert!(
            subjects.contains(format!("Subject: delivered {n}").as_str()),
            "acknowledged delivery {n} is missing"
        );
    }
    // No message is there twice.
    assert_eq!(subjects.len(), stored.len());
}

const BIG_FETCH: &str = r#"
import imaplib, socket, sys, json
host, user, password = sys.argv[1:4]
out = {}
m = imaplib.IMAP4(host, 10143, timeout=20)
m.login(user, password)
bodies = [(f"Subject: big {n}\r\n\r\n".encode() + bytes([65 + n]) * 700_000 + b"\r\n") for n in range(3)]
for b in bodies:
    m.append("INBOX", None, None, b)
m.select("INBOX")
typ, data = m.fetch("1:*", "(BODY.PEEK[])")
got = [d[1] for d in data if isinstance(d, tuple)]
out["bodies_equal"] = got == bodies
m.logout()
# Pipelined: the FETCH answer comes in parts, and the NOOP behind it is answered after.
s = socket.create_connection((host, 10143), timeout=20)
s.sendall(f"l LOGIN {user} {password}\r\ns SELECT INBOX\r\na FETCH 1:* (RFC822.SIZE BODY.PEEK[])\r\nb NOOP\r\nc LOGOUT\r\n".encode())
buf = b""
while True:
    chunk = s.recv(1 << 16)
    if not chunk:
        break
    buf += chunk
out["fetch_ok_at"] = buf.find(b"\r\na OK")
out["noop_ok_at"] = buf.find(b"\r\nb OK")
out["logout_ok"] = b"\r\nc OK" in buf
out["literals"] = buf.count(b"{700020}")
out["size"] = len(buf)
print(json.dumps(out))
"#;

#[test]
fn large_fetches_are_answered_in_parts_and_pipelining_holds() {
    let site = Site::isolated();
    site.add_user("gina", "gina-password", &[]);
    let out = python(BIG_FETCH, &[&site.addr(11), "gina", "gina-password"]);
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    let text = format!("{out}");
    assert_eq!(out["bodies_equal"], true, "{text}");
    assert_eq!(out["literals"], 3, "{text}");
    let (fetch, noop) = (
        out["fetch_ok_at"].as_i64().unwrap(),
        out["noop_ok_at"].as_i64().unwrap(),
    );
    assert!(fetch > 2_100_000 && noop > fetch, "{text}");
    assert_eq!(out["logout_ok"], true, "{text}");
}
