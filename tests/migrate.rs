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

/// A mailbox server added to the running site (`server add`), then an even share of
/// the load moved to it (`letter rebalance`, planned first): DNS, health checks and routing know it
/// without a restart of the other nodes, and users of the moved letters find their
/// mail there (shared storage).
#[test]
fn a_server_added_live_takes_an_even_share_of_the_load() {
    let site = Site::isolated();
    let users = ["alice", "kim", "mia", "nina", "zoe"];
    for user in users {
        site.add_user(user, &format!("{user}-pass"), &[]);
    }
    // Everyone gets a message on their current server before the change.
    let old_server = |user: &str| if user < "n" { 11 } else { 12 };
    for user in users {
        python(
            r#"
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], 10143)
m.login(sys.argv[2], sys.argv[2] + "-pass")
m.append("INBOX", "(\\Seen)", None, f"Subject: before the new server, {sys.argv[2]}\r\n\r\nhi\r\n".encode())
m.logout()
"#,
            &[&site.addr(old_server(user)), user],
        );
    }
    let new = site.addr(13);
    let block = format!("\n[[mailbox]]\nname = \"mailbox3\"\naddresses = [\"{new}\"]\n");
    let _node = common::Node::start_with(
        &site,
        "mailbox3",
        &["mailbox"],
        &["mailbox3"],
        &format!("{new}:10143"),
        |text| text.replacen("\n[[sorter]]", &format!("{block}\n[[sorter]]"), 1),
    );
    assert!(resolve(site.dns, "mailbox3.example.test").is_empty());

    // A bad addition is refused with the reason, and nothing changes.
    let taken = site.run(&["server", "add", "mailbox4", &site.addr(11)], None);
    assert!(!taken.status.success());
    assert!(String::from_utf8_lossy(&taken.stderr).contains("already mailbox1's address"));

    let out = site.ok(&["server", "add", "mailbox3", &new], None);
    assert!(out.contains("added mailbox server mailbox3"), "{out}");
    let known = site.within(Duration::from_secs(10), || {
        resolve(site.dns, "mailbox3.example.test") == vec![new.clone()]
    });
    assert!(
        known.is_some(),
        "mailbox3.example.test does not resolve to {new}"
    );
    // The running node's health checks found it and passed it.
    let checked = site.within(Duration::from_secs(20), || {
        site.get("/metrics")
            .body
            .contains("mailsite_server_state{role=\"mailbox\",server=\"mailbox3\",state=\"up\"} 1")
            && site.ok(&["server", "list"], None).contains("mailbox3")
    });
    assert!(checked.is_some(), "{}", site.ok(&["server", "list"], None));

    // The plan first, with each server's share of the load before and after; a dry
    // run stops there.
    let dry = site.ok(&["letter", "rebalance", "--dry-run"], None);
    assert!(dry.contains("nothing moved (--dry-run)"), "{dry}");
    assert!(
        site.ok(&["letter", "list"], None)
            .lines()
            .all(|l| !l.contains("mailbox3")),
        "a dry run moved letters"
    );
    let out = site.ok(&["letter", "rebalance"], None);
    let planned = out.find("plan:").expect("the plan is printed");
    let first_move = out.find("letter ").expect("moves are printed");
    assert!(
        planned < first_move,
        "the plan comes before the moves: {out}"
    );
    assert!(out.contains("-> mailbox3"), "{out}");
    // Shares after: "mailbox1   60.2% ->  33.4%  letters ...". Five users with a
    // message each over three servers: no server is left with more than half the
    // load, mailbox3 takes a fair part of it, and users, not letters, decide.
    let after: Vec<(String, f64)> = out
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let server = words.next()?.to_string();
            let _before = words.next()?.strip_suffix('%')?;
            (words.next()? == "->").then_some(())?;
            let after: f64 = words.next()?.strip_suffix('%')?.parse().ok()?;
            Some((server, after))
        })
        .collect();
    assert_eq!(after.len(), 3, "{out}");
    assert!(after.iter().all(|(_, p)| *p < 50.0), "{out}");
    assert!(
        after.iter().any(|(s, p)| s == "mailbox3" && *p > 20.0),
        "{out}"
    );
    // Balanced already: a second rebalance moves nothing.
    assert!(
        site.ok(&["letter", "rebalance"], None).contains("already"),
        "rebalance is not idempotent"
    );

    let mut moved = 0;
    for user in users {
        let route: serde_json::Value = serde_json::from_str(
            &site.ok(&["route", &format!("{user}@example.test"), "--json"], None),
        )
        .unwrap();
        if route["server"] != "mailbox3" {
            continue;
        }
        moved += 1;
        let alias = route["alias"].as_str().unwrap().to_string();
        let reached = site.within(Duration::from_secs(10), || {
            resolve(site.dns, &alias) == vec![new.clone()]
        });
        assert!(reached.is_some(), "{alias} does not lead to mailbox3");
        let found = python(
            r#"
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], 10143)
m.login(sys.argv[2], sys.argv[2] + "-pass")
m.select("INBOX", readonly=True)
print(len(m.uid("SEARCH", "SUBJECT", "\"before the new server\"")[1][0].split()))
"#,
            &[&new, user],
        );
        assert_eq!(found.trim(), "1", "{user} on mailbox3");
    }
    assert!(moved >= 1, "no test user's letter moved to mailbox3: {out}");
}

/// An operator's browser for the helpdesk console: signs in, opens the confirmation
/// page of a letter move, confirms it, and prints the page the console then shows.
const CONSOLE_MOVE: &str = r#"
import http.cookiejar, re, sys, urllib.parse, urllib.request
base, user, password, letter, server = sys.argv[1:6]
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args):
        return None
jar = http.cookiejar.CookieJar()
browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
plain = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
def field(page, name):
    return re.search(r'name="%s" value="([^"]*)"' % name, page).group(1)
def post(path, fields):
    data = urllib.parse.urlencode(fields).encode()
    try:
        plain.open(base + path, data, timeout=120)
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Location")
    raise SystemExit("no redirect after " + path)
form = browser.open(base + "/console/login", timeout=10).read().decode()
print("signed in", post("/console/login", {"username": user, "password": password, "login": field(form, "login")}))
query = urllib.parse.urlencode({"letter": letter, "server": server})
confirm = browser.open(base + "/console/letter?" + query, timeout=10).read().decode()
print("confirm", re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", confirm)))
print("moved", post("/console/letter", {"csrf": field(confirm, "csrf"), "letter": letter, "server": server, "confirm": "yes"}))
page = browser.open(base + "/console", timeout=10).read().decode()
print("after", re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))
"#;

#[test]
fn a_console_letter_move_to_separate_storage_migrates_the_mail() {
    let site = site();
    site.add_user("alice", "alice-pass", &[]);
    site.add_user("opal", "opal-password", &["--operator"]);
    let new = site.addr(12);
    assert_eq!(python(SEED, &[&site.addr(11)]).trim(), "seeded");
    let before = state(&site, 11);
    assert_eq!(before.len(), 120 - 5 + 20 - 5, "{before:?}");

    let out = python(
        CONSOLE_MOVE,
        &[
            &format!("http://{}", site.http),
            "opal",
            "opal-password",
            "a",
            "mailbox2",
        ],
    );
    // The confirmation says the mail is copied, the move is done, and the console
    // says what it copied.
    assert!(out.contains("signed in (303, '/console')"), "{out}");
    assert!(out.contains("copied to mailbox2's own storage"), "{out}");
    assert!(out.contains("moved (303, '/console')"), "{out}");
    assert!(out.contains("Letter a now belongs to mailbox2"), "{out}");
    assert!(out.contains("messages copied"), "{out}");

    // mailbox2 serves alice from its own storage, every message with its UID and flags.
    let reached = site.within(Duration::from_secs(10), || {
        resolve(site.dns, "maila.example.test") == vec![new.clone()]
    });
    assert!(reached.is_some(), "maila does not lead to mailbox2");
    assert!(site.dir.join("data/mail2/alice/cur").is_dir());
    assert_eq!(state(&site, 12), before);
}
