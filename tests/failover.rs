//! Failover on one machine with shared storage: the site's nodes are separate
//! `mailsite serve` processes on one data directory and database (autoconfig+dns, each
//! mailbox server, each sorter). A mailbox server or sorter killed with SIGKILL is
//! found by the health checks, and within the alias TTL and a few checks DNS and
//! autoconfig send its users to the survivor, where all their mail is; when it comes
//! back, its letters return. An operator's maintenance tells open sessions to leave.
//!
//! Clients are real: Python's imaplib and smtplib, dig for the site's DNS, raw sockets
//! where the exact words on the wire matter.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Lines, Node, Site, python, wait_until};

const ALL_ROLES: &str = r#"roles = ["autoconfig", "dns", "mailbox", "sorter"]"#;

/// How soon a killed server's share must reach clients: the issue's target, which the
/// defaults meet with room (3 checks of 1 s, then the 5 s alias TTL).
const FAILOVER: Duration = Duration::from_secs(10);

/// The site without the roles that the test runs as separate nodes; quick retries so
/// that mail deferred while a server was down is delivered soon after.
fn site_without(roles: &str) -> Site {
    let roles = roles.to_string();
    Site::isolated_with(move |text| {
        assert!(text.contains(ALL_ROLES));
        text.replace(ALL_ROLES, &roles)
            .replace("retry_first = 5", "retry_first = 1")
            .replace("retry_max = 600", "retry_max = 2")
    })
}

fn mailbox_node(site: &Site, name: &str, host: u8) -> Node {
    let ready = format!("{}:10143", site.addr(host));
    Node::start(site, name, &["mailbox"], &[name], &ready)
}

fn sorter_node(site: &Site, name: &str, host: u8) -> Node {
    let ready = format!("{}:10587", site.addr(host));
    Node::start(site, name, &["sorter"], &[name], &ready)
}

/// The A records of `label.example.test` from the site's DNS, sorted.
fn resolve(site: &Site, label: &str) -> Vec<String> {
    common::resolve(site.dns, &format!("{label}.example.test"))
}

/// Waits until every mailbox server and sorter is up in the site's view.
fn wait_all_up(site: &Site) {
    let up = site.within(Duration::from_secs(30), || {
        let metrics = site.get("/metrics").body;
        ["mailbox1", "mailbox2", "sorter1", "sorter2"]
            .iter()
            .all(|s| {
                let role = if s.starts_with("mailbox") {
                    "mailbox"
                } else {
                    "sorter"
                };
                metrics.contains(&format!(
                    "mailsite_server_state{{role=\"{role}\",server=\"{s}\",state=\"up\"}} 1"
                ))
            })
    });
    assert!(
        up.is_some(),
        "not every server is up:\n{}",
        site.ok(&["server", "list"], None)
    );
}

const SUBMIT: &str = r#"
import smtplib, sys
hosts, user, password, rcpt, subject = sys.argv[1:6]
sender = f"{user}@example.test"
message = f"From: {sender}\r\nTo: {rcpt}\r\nSubject: {subject}\r\n\r\nsent through outbox\r\n".encode()
# As mail clients do: the addresses of the name in turn, until one takes the message.
for host in hosts.split(","):
    try:
        with smtplib.SMTP(host, 10587, timeout=10) as s:
            s.login(user, password)
            s.sendmail(sender, [rcpt], message)
            print("sent", host)
            break
    except OSError as e:
        print("tried", host, type(e).__name__)
else:
    print("failed")
"#;

/// Submits a message from `user` through `outbox`, resolved at the site's DNS now;
/// returns the address of the sorter that acknowledged it.
fn submit(site: &Site, user: &str, rcpt: &str, subject: &str) -> String {
    let hosts = resolve(site, "outbox").join(",");
    let out = python(
        SUBMIT,
        &[
            &hosts,
            user,
            &format!("{user}-password"),
            &format!("{rcpt}@example.test"),
            subject,
        ],
    );
    let sent = out.lines().find_map(|l| l.strip_prefix("sent "));
    sent.unwrap_or_else(|| panic!("{subject:?} was not acknowledged through {hosts}:\n{out}"))
        .to_string()
}

const LOGIN: &str = r#"
import imaplib, sys
host, user, password = sys.argv[1:4]
try:
    m = imaplib.IMAP4(host, 10143, timeout=5)
    m.login(user, password)
    m.select("INBOX", readonly=True)
    typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    subjects = sorted(
        part[1].decode().strip().removeprefix("Subject: ")
        for part in data if isinstance(part, tuple)
    )
    print("ok", "|".join(subjects))
    m.logout()
except Exception as e:
    print("error", type(e).__name__, e)
"#;

/// Logs `user` in over IMAP at `host`; `Ok` with the INBOX's subjects, sorted.
fn login(host: &str, user: &str) -> Result<Vec<String>, String> {
    let out = python(LOGIN, &[host, user, &format!("{user}-password")]);
    match out.trim().strip_prefix("ok") {
        Some(subjects) => Ok(subjects
            .trim()
            .split('|')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()),
        None => Err(out),
    }
}

/// Resolves the user's alias at the site's DNS and logs in there, again and again,
/// until a login succeeds; returns the address and the INBOX's subjects.
fn login_at_alias(site: &Site, user: &str, limit: Duration) -> (String, Vec<String>) {
    let label = format!("mail{}", &user[..1]);
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < limit {
        if let Some(host) = resolve(site, &label).first() {
            match login(host, user) {
                Ok(subjects) => return (host.clone(), subjects),
                Err(e) => last = e,
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{user} could not log in at {label} within {limit:?}: {last}");
}

/// The subjects of `user`'s stored messages (shared storage: the Maildir), sorted.
fn stored_subjects(site: &Site, user: &str) -> Vec<String> {
    let mut subjects: Vec<String> = site
        .inbox(user)
        .iter()
        .filter_map(|m| m.lines().find_map(|l| l.strip_prefix("Subject: ")))
        .map(str::to_string)
        .collect();
    subjects.sort();
    subjects
}

/// Each subject once: a sorter killed between a delivery and the update of its queue
/// delivers that message again when it restarts (at worst twice, never not at all).
fn distinct(subjects: &[String]) -> Vec<String> {
    let mut out = subjects.to_vec();
    out.sort();
    out.dedup();
    for s in &out {
        let copies = subjects.iter().filter(|x| *x == s).count();
        assert!(copies <= 2, "{s:?} was delivered {copies} times");
    }
    out
}

/// Waits until `user` has every message of `subjects` (shared storage: the Maildir).
fn wait_for_messages(site: &Site, user: &str, subjects: &[String]) {
    let expected = distinct(subjects);
    let arrived = site.within(Duration::from_secs(30), || {
        distinct(&stored_subjects(site, user)) == expected
    });
    assert!(
        arrived.is_some(),
        "{user} has {:?}, not {expected:?}:\n{}",
        stored_subjects(site, user),
        site.ok(&["queue", "list"], None)
    );
}

/// IMAP sessions kept open with a NOOP every 100 ms until one is lost, then five more
/// rounds; prints `ready HOST COUNT`, `lost HOST ERROR` and, at the end, `alive HOST`.
const HOLD: &str = r#"
import imaplib, sys, time
limit = float(sys.argv[1])
args = sys.argv[2:]
sessions = {}
for i in range(0, len(args), 3):
    host, user, password = args[i:i + 3]
    m = imaplib.IMAP4(host, 10143, timeout=10)
    m.login(user, password)
    typ, data = m.select("INBOX")
    sessions[host] = m
    print("ready", host, int(data[0]), flush=True)
start, lost, rounds = time.time(), None, 0
while sessions and time.time() - start < limit:
    for host, m in list(sessions.items()):
        try:
            m.noop()
        except Exception as e:
            print("lost", host, type(e).__name__, flush=True)
            del sessions[host]
            lost = rounds
    rounds += 1
    if lost is not None and rounds - lost > 5:
        break
    time.sleep(0.1)
for host, m in sessions.items():
    m.noop()
    print("alive", host, flush=True)
"#;

#[test]
fn a_killed_mailbox_server_s_users_find_all_their_mail_on_the_survivor_and_come_back() {
    let site = site_without(r#"roles = ["autoconfig", "dns"]"#);
    site.add_user("alice", "alice-password", &[]);
    site.add_user("nora", "nora-password", &[]);
    let mut mailbox1 = mailbox_node(&site, "mailbox1", 11);
    let _mailbox2 = mailbox_node(&site, "mailbox2", 12);
    let _sorter1 = sorter_node(&site, "sorter1", 21);
    let _sorter2 = sorter_node(&site, "sorter2", 22);
    wait_all_up(&site);
    assert_eq!(resolve(&site, "maila"), [site.addr(11)]);

    let mut subjects = Vec::new();
    let mut for_nora = Vec::new();
    for i in 0..3 {
        subjects.push(format!("before {i}"));
        submit(&site, "nora", "alice", &format!("before {i}"));
        for_nora.push(format!("for nora {i}"));
        submit(&site, "alice", "nora", &format!("for nora {i}"));
    }
    wait_for_messages(&site, "alice", &subjects);
    wait_for_messages(&site, "nora", &for_nora);

    // IMAP clients on both servers, then mailbox1 dies.
    let (m1, m2) = (site.addr(11), site.addr(12));
    let hold = Lines::spawn(Command::new("python3").args([
        "-c",
        HOLD,
        "60",
        &m1,
        "alice",
        "alice-password",
        &m2,
        "nora",
        "nora-password",
    ]));
    wait_until(|| hold.count(|l| l.starts_with("ready ")) == 2);
    assert_eq!(
        hold.count(|l| l.starts_with("ready ")),
        2,
        "both sessions open"
    );
    let killed = Instant::now();
    mailbox1.kill_hard();

    // Mail for alice submitted during the outage, before anything noticed it.
    for i in 0..2 {
        subjects.push(format!("during {i}"));
        submit(&site, "nora", "alice", &format!("during {i}"));
    }

    let (host, _) = login_at_alias(&site, "alice", Duration::from_secs(30));
    let took = killed.elapsed();
    assert_eq!(host, m2, "maila leads to the survivor");
    assert!(
        took < FAILOVER,
        "alice could log in at maila only after {took:?}"
    );
    eprintln!("alice logged in at maila on the survivor {took:?} after the kill");

    // Autoconfig names the alias, and the alias names the survivor.
    let xml = site
        .get("/mail/config-v1.1.xml?emailaddress=alice@example.test")
        .body;
    assert!(
        xml.contains("<hostname>maila.example.test</hostname>"),
        "{xml}"
    );
    assert_eq!(resolve(&site, "maila"), [m2.as_str()]);
    assert_eq!(resolve(&site, "mailn"), [m2.as_str()]);
    let servers = site.ok(&["server", "list"], None);
    let line = servers
        .lines()
        .find(|l| l.starts_with("mailbox1 "))
        .unwrap();
    assert!(line.contains(" down "), "{servers}");
    assert!(
        line.contains("failing since") && line.contains("IMAP"),
        "{servers}"
    );
    let metrics = site.get("/metrics").body;
    assert!(
        metrics.contains("mailsite_health_changes_total{server=\"mailbox1\",to=\"down\"} 1"),
        "{metrics}"
    );

    // Every acknowledged message is there, the ones sent during the outage included.
    wait_for_messages(&site, "alice", &subjects);
    let (_, found) = login_at_alias(&site, "alice", Duration::from_secs(5));
    assert_eq!(distinct(&found), distinct(&subjects));

    // nora's session on the survivor never noticed.
    let lines = hold.finish();
    assert!(
        lines.iter().any(|l| l.starts_with(&format!("lost {m1} "))),
        "{lines:?}"
    );
    assert!(lines.contains(&format!("alive {m2}")), "{lines:?}");
    let (host, found) = login_at_alias(&site, "nora", Duration::from_secs(5));
    assert_eq!(host, m2);
    assert_eq!(distinct(&found), distinct(&for_nora));

    // mailbox1 comes back: its letters return, with all their mail.
    let restarted = Instant::now();
    mailbox1.start_again();
    let back = site.within(FAILOVER, || resolve(&site, "maila") == [m1.clone()]);
    assert!(back.is_some(), "maila did not return to mailbox1");
    eprintln!("maila returned {:?} after the restart", restarted.elapsed());
    // mailbox1's own view of the site follows within its refresh interval: until then
    // it still refers alice elsewhere, so the login is retried.
    let (host, found) = login_at_alias(&site, "alice", Duration::from_secs(5));
    assert_eq!(host, m1);
    assert_eq!(distinct(&found), distinct(&subjects));
    subjects.push("after".into());
    submit(&site, "nora", "alice", "after");
    wait_for_messages(&site, "alice", &subjects);
    // mailbox1's own view of the site follows within its refresh interval: until then
    // it still refers alice elsewhere, so the login is retried.
    let (host, found) = login_at_alias(&site, "alice", Duration::from_secs(5));
    assert_eq!(host, m1);
    assert_eq!(distinct(&found), distinct(&subjects));
    let metrics = site.get("/metrics").body;
    assert!(metrics.contains("mailsite_health_changes_total{server=\"mailbox1\",to=\"up\"} 1"));
}

#[test]
fn with_a_sorter_killed_submissions_through_outbox_keep_succeeding() {
    let site = site_without(r#"roles = ["autoconfig", "dns", "mailbox"]"#);
    site.add_user("alice", "alice-password", &[]);
    site.add_user("nora", "nora-password", &[]);
    let mut sorter1 = sorter_node(&site, "sorter1", 21);
    let _sorter2 = sorter_node(&site, "sorter2", 22);
    wait_all_up(&site);
    let (s1, s2) = (site.addr(21), site.addr(22));
    assert_eq!(resolve(&site, "outbox"), [s1.clone(), s2.clone()]);

    let mut sent = Vec::new();
    for i in 0..2 {
        sent.push(format!("before {i}"));
        submit(&site, "alice", "nora", &sent[i]);
    }
    let killed = Instant::now();
    sorter1.kill_hard();
    // Submissions go on all along: first past the dead address, then to the survivor
    // alone once outbox leaves sorter1 out.
    let mut dropped = None;
    while killed.elapsed() < Duration::from_secs(15) {
        sent.push(format!("during {}", sent.len()));
        let via = submit(&site, "alice", "nora", sent.last().unwrap());
        assert_eq!(via, s2, "only sorter2 can take mail now");
        if dropped.is_none() && resolve(&site, "outbox") == [s2.clone()] {
            dropped = Some(killed.elapsed());
        }
        if dropped.is_some() && sent.len() >= 8 {
            break;
        }
    }
    let dropped = dropped.expect("outbox still lists the dead sorter after 15 s");
    assert!(
        dropped < FAILOVER,
        "outbox left sorter1 out only after {dropped:?}"
    );
    eprintln!("outbox left the killed sorter out {dropped:?} after the kill");

    sorter1.start_again();
    let back = site.within(FAILOVER, || resolve(&site, "outbox").len() == 2);
    assert!(back.is_some(), "outbox did not list sorter1 again");
    for _ in 0..2 {
        sent.push(format!("after {}", sent.len()));
        submit(&site, "alice", "nora", sent.last().unwrap());
    }
    // Nothing acknowledged is lost, whichever sorter took it.
    wait_for_messages(&site, "nora", &sent);
}

/// How many health checks of `server` the site's checker passed so far.
fn health_passes(site: &Site, server: &str) -> u64 {
    let key = format!("mailsite_health_checks_total{{server=\"{server}\",result=\"pass\"}} ");
    site.get("/metrics")
        .body
        .lines()
        .find_map(|l| l.strip_prefix(&key)?.parse().ok())
        .unwrap_or(0)
}

/// A raw line-based client, for the exact words on the wire.
struct Raw {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Raw {
    fn connect(addr: &str) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut raw = Raw {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        };
        raw.line();
        raw
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        let _ = self.reader.read_line(&mut line);
        line
    }

    /// Sends a command and reads up to the line starting with `until`.
    fn ask(&mut self, command: &str, until: &str) -> String {
        self.writer.write_all(command.as_bytes()).unwrap();
        let mut out = String::new();
        loop {
            let line = self.line();
            out.push_str(&line);
            if line.is_empty() || line.starts_with(until) {
                return out;
            }
        }
    }
}

#[test]
fn maintenance_tells_open_sessions_to_reconnect_and_new_logins_get_referrals() {
    let site = Site::isolated();
    for user in ["alice", "adam", "nora"] {
        site.add_user(user, &format!("{user}-password"), &[]);
    }
    let imap1 = format!("{}:10143", site.addr(11));
    let mut selected = Raw::connect(&imap1);
    assert!(
        selected
            .ask("a LOGIN alice alice-password\r\n", "a ")
            .starts_with("a OK")
    );
    assert!(selected.ask("b SELECT INBOX\r\n", "b ").contains("b OK"));
    let mut idling = Raw::connect(&imap1);
    assert!(
        idling
            .ask("a LOGIN alice alice-password\r\n", "a ")
            .starts_with("a OK")
    );
    idling.ask("b SELECT INBOX\r\n", "b ");
    assert!(idling.ask("c IDLE\r\n", "+").starts_with("+"));
    let mut pop = Raw::connect(&format!("{}:10110", site.addr(11)));
    assert!(pop.ask("USER adam\r\n", "").starts_with("+OK"));
    assert!(pop.ask("PASS adam-password\r\n", "").starts_with("+OK"));
    let mut other = Raw::connect(&format!("{}:10143", site.addr(12)));
    assert!(
        other
            .ask("a LOGIN nora nora-password\r\n", "a ")
            .starts_with("a OK")
    );

    let start = Instant::now();
    site.ok(&["server", "maintenance", "mailbox1"], None);
    let bye = selected.line();
    assert!(bye.starts_with("* BYE [UNAVAILABLE] "), "{bye:?}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(selected.line(), "", "the connection is closed after BYE");
    let bye = idling.line();
    assert!(bye.starts_with("* BYE [UNAVAILABLE] "), "{bye:?}");
    let err = pop.line();
    assert!(err.starts_with("-ERR [SYS/TEMP] "), "{err:?}");
    assert_eq!(pop.line(), "");

    // Sessions of the other server go on; new logins here are referred to the alias.
    assert!(other.ask("b NOOP\r\n", "b ").contains("b OK"));
    let mut again = Raw::connect(&imap1);
    let refused = again.ask("a LOGIN alice alice-password\r\n", "a ");
    assert!(
        refused.starts_with("a NO [REFERRAL imap://alice@maila.example.test/]"),
        "{refused}"
    );
    // Health never ends a maintenance, however well the server answers its checks.
    let passes = health_passes(&site, "mailbox1");
    wait_until(|| health_passes(&site, "mailbox1") >= passes + 3);
    assert!(health_passes(&site, "mailbox1") >= passes + 3);
    let servers = site.ok(&["server", "list"], None);
    assert!(
        servers
            .lines()
            .any(|l| l.starts_with("mailbox1 ") && l.contains(" maintenance ")),
        "{servers}"
    );
    site.ok(&["server", "up", "mailbox1"], None);
    let mut back = Raw::connect(&imap1);
    let took = site.within(Duration::from_secs(3), || {
        back.ask("a LOGIN alice alice-password\r\n", "a ")
            .starts_with("a OK")
    });
    assert!(took.is_some(), "alice cannot log in at mailbox1 again");
}
