//! Moving a letter to a mailbox server with storage of its own
//! (`mailsite letter move L SERVER --migrate`), under a live IMAP session and a stream
//! of deliveries: afterwards the new server has every message with the same UIDVALIDITY,
//! UIDs and flags, the open session on the old server was told to reconnect, and mail
//! acknowledged during the move arrived.
//!
//! Clients are real: Python's imaplib and smtplib, dig for the site's DNS.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Lines, Site, python, resolve};

/// The embedded site, with mailbox2 keeping its mail in `<data>/mail2` (separate
/// storage) and quick retries for mail deferred during the move.
fn site() -> Site {
    Site::isolated_with(|text| {
        assert!(text.contains("name = \"mailbox2\"\n"));
        text.replace(
            "name = \"mailbox2\"\n",
            "name = \"mailbox2\"\nstorage = \"mail2\"\n",
        )
        .replace("retry_first = 5", "retry_first = 1")
        .replace("retry_max = 600", "retry_max = 2")
    })
}

/// Seeds alice's mail on HOST: INBOX and Projects/2026 with flags, and a few expunges
/// so that UIDs have gaps.
const SEED: &str = r#"
import imaplib, sys
host = sys.argv[1]
m = imaplib.IMAP4(host, 10143)
m.login("alice", "alice-pass")
m.create("Projects/2026")
for box, count in (("INBOX", 120), ("Projects/2026", 20)):
    for i in range(count):
        flags = "(\\Seen)" if i % 2 else "()"
        msg = (f"From: bob@example.test\r\nTo: alice@example.test\r\n"
               f"Subject: seed {box} {i}\r\nMessage-ID: <seed-{i}@example.test>\r\n\r\n"
               + f"body {i}\r\n" * (1 + i % 40)).encode()
        typ, _ = m.append(box, flags, None, msg)
        assert typ == "OK", typ
    m.select(box)
    m.uid("STORE", "1:*", "+FLAGS", "(custom-keyword)")
    m.store("3:9", "+FLAGS", "(\\Flagged)")
    m.store("10:14", "+FLAGS", "(\\Deleted)")
    m.expunge()
m.logout()
print("seeded")
"#;

/// Prints every mailbox of alice on HOST as `MAILBOX UIDVALIDITY UID FLAGS...` lines.
const STATE: &str = r#"
import imaplib, re, sys
host = sys.argv[1]
m = imaplib.IMAP4(host, 10143)
m.login("alice", "alice-pass")
for box in ("INBOX", "Projects/2026"):
    typ, data = m.select(box, readonly=True)
    assert typ == "OK", (box, typ, data)
    uidvalidity = m.response("UIDVALIDITY")[1][0].decode()
    typ, data = m.uid("FETCH", "1:*", "(UID FLAGS)")
    for item in data:
        if not item:
            continue
        line = item.decode() if isinstance(item, bytes) else item[0].decode()
        uid = re.search(r"UID (\d+)", line).group(1)
        flags = sorted(re.search(r"FLAGS \(([^)]*)\)", line).group(1).split())
        print(box, uidvalidity, uid, " ".join(flags))
m.logout()
"#;

/// A live session on mailbox1 (NOOP every 100 ms until told to reconnect) and, at the
/// same time, 40 messages to alice through sorter1, one every 100 ms; prints `sent N`
/// per acknowledged message and `bye TEXT` when the session is ended.
const LIVE: &str = r#"
import imaplib, smtplib, sys, threading, time
old, sorter = sys.argv[1], sys.argv[2]
lock = threading.Lock()
def say(line):
    with lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
def stream():
    for n in range(40):
        for attempt in range(50):
            try:
                with smtplib.SMTP(sorter, 10025, timeout=10) as s:
                    s.sendmail("bob@example.test", ["alice@example.test"],
                               f"From: bob@example.test\r\nTo: alice@example.test\r\nSubject: stream {n}\r\n\r\nduring the move\r\n")
                break
            except (OSError, smtplib.SMTPException) as e:
                time.sleep(0.2)
        else:
            say(f"unsent {n}")
            continue
        say(f"sent {n}")
        time.sleep(0.1)
t = threading.Thread(target=stream)
t.start()
m = imaplib.IMAP4(old, 10143)
m.login("alice", "alice-pass")
m.select("INBOX")
deadline = time.time() + 60
try:
    while time.time() < deadline:
        m.noop()
        time.sleep(0.1)
    say("no bye")
except imaplib.IMAP4.abort as e:
    say(f"bye {e}")
t.join()
say("done")
"#;

fn state(site: &Site, host: u8) -> Vec<String> {
    python(STATE, &[&site.addr(host)])
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_letter_moves_to_separate_storage_under_load_and_keeps_uids_and_flags() {
    let site = site();
    site.add_user("alice", "alice-pass", &[]);
    let (old, new) = (site.addr(11), site.addr(12));
    assert_eq!(resolve(site.dns, "maila.example.test"), vec![old.clone()]);
    assert_eq!(python(SEED, &[&old]).trim(), "seeded");
    let before = state(&site, 11);
    assert_eq!(before.len(), 120 - 5 + 20 - 5, "{before:?}");
    assert!(before.iter().any(|l| l.contains("\\Flagged")), "{before:?}");

    // Without --migrate the move is refused: mailbox2's storage is its own.
    let refused = site.run(&["letter", "move", "a", "mailbox2"], None);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--migrate"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let live = Lines::spawn(
        Command::new("python3")
            .arg("-c")
            .arg(LIVE)
            .arg(&old)
            .arg(site.addr(21)),
    );
    let started = site.within(Duration::from_secs(30), || {
        live.count(|l| l.starts_with("sent ")) >= 10
    });
    assert!(started.is_some(), "the delivery stream did not start");
    let out = site.ok(&["letter", "move", "a", "mailbox2", "--migrate"], None);
    assert!(out.contains("now belongs to mailbox2"), "{out}");
    let finished = site.within(Duration::from_secs(90), || live.count(|l| l == "done") == 1);
    let lines = live.finish();
    assert!(
        finished.is_some(),
        "the live client did not finish: {lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("bye ")),
        "the session on mailbox1 was not told to reconnect: {lines:?}"
    );
    let sent = lines.iter().filter(|l| l.starts_with("sent ")).count();
    assert_eq!(sent, 40, "{lines:?}");

    // DNS sends the letter to mailbox2, whose own storage now holds alice's mail.
    assert_eq!(resolve(site.dns, "maila.example.test"), vec![new.clone()]);
    assert!(site.dir.join("data/mail2/alice/cur").is_dir());

    // Every seeded message is there with its UID and flags, under the same
    // UIDVALIDITY; every message acknowledged during the move arrived.
    let mut after = Vec::new();
    let complete = site.within(Duration::from_secs(60), || {
        after = state(&site, 12);
        after.len() == before.len() + 40
    });
    assert!(
        complete.is_some(),
        "{} messages on mailbox2, expected {}",
        after.len(),
        before.len() + 40
    );
    for line in &before {
        assert!(after.contains(line), "{line} is not on mailbox2: {after:?}");
    }
    let subjects = python(
        r#"
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], 10143)
m.login("alice", "alice-pass")
m.select("INBOX", readonly=True)
typ, data = m.uid("SEARCH", "SUBJECT", "stream")
print(len(data[0].split()))
"#,
        &[&new],
    );
    assert_eq!(subjects.trim(), "40");

    // alice logging in on mailbox1 is sent to mailbox2.
    let referral = python(
        r#"
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], 10143)
try:
    m.login("alice", "alice-pass")
    print("logged in")
except imaplib.IMAP4.error as e:
    print(e)
"#,
        &[&old],
    );
    assert!(referral.contains("REFERRAL"), "{referral}");
}
