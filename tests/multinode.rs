//! A multi-node site on one machine, laid out as `deploy/` lays it out on several: five
//! separate `mailsite serve` processes (autoconfig+dns, mailbox1, mailbox2, sorter1,
//! sorter2), each with its own configuration file and data directory, on their own
//! loopback addresses, against one real PostgreSQL (always, whatever the suites run on).
//! The two mailbox servers share their mail storage (one folder, as an NFS mount at
//! `<data_dir>/mail` would be), and every node serves one site certificate (`[tls]`).
//!
//! Clients are real: Python's smtplib and imaplib, dig, curl, and the `mailsite` command
//! line, whose changes (a letter move, a maintenance) every node picks up from the
//! database's generation.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::postgres::Postgres;
use common::{Node, curl, dig, next_net, python, run_command, temp_dir};

const ALL_ROLES: &str = r#"roles = ["autoconfig", "dns", "mailbox", "sorter"]"#;

/// The site: its folder, loopback network, the CA of its certificate, and its nodes.
struct MultiSite {
    dir: PathBuf,
    net: u8,
    ca: PathBuf,
    /// Stopped in reverse order of start when the site is dropped.
    nodes: Vec<Node>,
}

impl MultiSite {
    /// Writes the five nodes' configuration files and starts them.
    fn start() -> MultiSite {
        let dir = temp_dir("multinode");
        let net = next_net();
        let database = Postgres::shared().create_database();
        // The site's certificate, made once and copied to every node (as a real site
        // installs its CA-signed certificate on each machine): mailsite's own generator.
        let mut certificate_site = mailsite_shared::SiteConfig::from_toml(&site_text(net), None)
            .expect("the site configuration is valid");
        certificate_site.data_dir = dir.join("certificate");
        mailsite::tls::acceptor(&certificate_site).expect("a site certificate");
        let tls = dir.join("certificate/tls");
        std::fs::create_dir_all(dir.join("mail")).expect("the shared mail storage");

        let mut site = MultiSite {
            ca: tls.join("ca.pem"),
            dir,
            net,
            nodes: Vec::new(),
        };
        let nodes: [(&str, &str, &str, String); 5] = [
            (
                "dns-autoconfig",
                r#"["autoconfig", "dns"]"#,
                "",
                site.addr(1, 8080),
            ),
            (
                "mailbox1",
                r#"["mailbox"]"#,
                "mailbox1",
                site.addr(11, 10143),
            ),
            (
                "mailbox2",
                r#"["mailbox"]"#,
                "mailbox2",
                site.addr(12, 10143),
            ),
            ("sorter1", r#"["sorter"]"#, "sorter1", site.addr(21, 10587)),
            ("sorter2", r#"["sorter"]"#, "sorter2", site.addr(22, 10587)),
        ];
        for (name, roles, server, ready) in nodes {
            let home = site.dir.join(name);
            let data = home.join("data");
            std::fs::create_dir_all(&data).expect("a node's data directory");
            if name.starts_with("mailbox") {
                // Shared storage: both mailbox servers see the same mail folder.
                std::os::unix::fs::symlink(site.dir.join("mail"), data.join("mail"))
                    .expect("link the shared mail storage");
            }
            let mut node_keys = format!("roles = {roles}");
            if !server.is_empty() {
                node_keys.push_str(&format!("\nservers = [{server:?}]"));
            }
            let text = site_text(net)
                .replace(
                    "data_dir = \"mailsite-data\"",
                    &format!("data_dir = {data:?}\ndatabase = {database:?}"),
                )
                .replace(ALL_ROLES, &node_keys)
                + &format!(
                    "\n[tls]\ncert = {:?}\nkey = {:?}\n",
                    tls.join("server.pem"),
                    tls.join("server-key.pem")
                );
            let config = home.join("site.toml");
            std::fs::write(&config, text).expect("write a node's configuration");
            site.nodes.push(Node::start_own(
                config,
                data,
                home.join("serve.log"),
                &ready,
            ));
        }
        site
    }

    /// `127.<net>.0.<host>:<port>`.
    fn addr(&self, host: u8, port: u16) -> String {
        format!("{}:{port}", self.ip(host))
    }

    fn ip(&self, host: u8) -> String {
        format!("127.{}.0.{host}", self.net)
    }

    /// The `mailsite` command line, as an operator runs it on any node (here the
    /// autoconfig+dns node's configuration): it changes the shared database.
    fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let config = self.dir.join("dns-autoconfig/site.toml");
        run_command(
            std::process::Command::new(common::BIN)
                .arg("--config")
                .arg(config)
                .args(args),
            stdin,
        )
    }

    fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.cli(args, stdin);
        assert!(
            out.status.success(),
            "mailsite {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The A records of `label.example.test` at the site's DNS, sorted.
    fn resolve(&self, label: &str) -> Vec<String> {
        let dns = self.addr(1, 10053).parse().expect("an address");
        common::resolve(dns, &format!("{label}.example.test"))
    }

    /// Waits (at most `limit`) until `label` resolves to exactly `hosts`.
    fn wait_resolves(&self, label: &str, hosts: &[u8], limit: Duration) {
        let want: Vec<String> = hosts.iter().map(|&h| self.ip(h)).collect();
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.resolve(label) == want {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "{label} resolves to {:?}, not {want:?}\n{}",
            self.resolve(label),
            self.ok(&["server", "list"], None)
        );
    }

    fn metrics(&self) -> String {
        curl(&[&format!("http://{}/metrics", self.addr(1, 8080))]).body
    }
}

impl Drop for MultiSite {
    fn drop(&mut self) {
        while let Some(node) = self.nodes.pop() {
            drop(node);
        }
        // The nodes printed their logs' last lines if the test failed.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The embedded default moved onto the loopback network `127.<net>.0.0/16`, with quick
/// retries so that mail deferred during a change is delivered soon after.
fn site_text(net: u8) -> String {
    mailsite_shared::config::DEFAULT_SITE_TOML
        .replace("127.0.0.", &format!("127.{net}.0."))
        .replace("retry_first = 5", "retry_first = 1")
        .replace("retry_max = 600", "retry_max = 2")
}

const SEND: &str = r#"
import smtplib, sys
host, user, rcpt, subject = sys.argv[1:5]
sender = f"{user}@example.test"
message = f"From: {sender}\r\nTo: {rcpt}@example.test\r\nSubject: {subject}\r\n\r\nhello\r\n"
with smtplib.SMTP(host, 10587, timeout=10) as s:
    s.login(user, f"{user}-password")
    s.sendmail(sender, [f"{rcpt}@example.test"], message.encode())
print("sent")
"#;

/// Submits a message from `user` to `rcpt` through the sorter at `host`.
fn send(host: &str, user: &str, rcpt: &str, subject: &str) {
    let out = python(SEND, &[host, user, rcpt, subject]);
    assert_eq!(out.trim(), "sent", "{subject}");
}

const INBOX: &str = r#"
import imaplib, ssl, sys
host, port, user, ca = sys.argv[1:5]
try:
    if ca:
        m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ssl.create_default_context(cafile=ca), timeout=5)
    else:
        m = imaplib.IMAP4(host, int(port), timeout=5)
    m.login(user, f"{user}-password")
    m.select("INBOX", readonly=True)
    typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    subjects = sorted(
        part[1].decode().strip().removeprefix("Subject: ")
        for part in data if isinstance(part, tuple)
    )
    print("ok", "|".join(subjects))
    m.logout()
except Exception as e:
    print("error", e)
"#;

/// Logs `user` in over IMAP at `host` (over TLS, trusting `ca`, when given); the INBOX's
/// subjects, sorted, or what went wrong.
fn inbox(host: &str, user: &str, ca: Option<&Path>) -> Result<Vec<String>, String> {
    let ca = ca.map(|p| p.to_string_lossy().into_owned());
    let port = if ca.is_some() { "10993" } else { "10143" };
    let out = python(INBOX, &[host, port, user, ca.as_deref().unwrap_or("")]);
    match out.trim().strip_prefix("ok") {
        Some(subjects) => Ok(subjects
            .split('|')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()),
        None => Err(out),
    }
}

/// Waits (at most 30 s) until `user` can log in at `host` and has exactly `subjects`.
fn wait_inbox(host: &str, user: &str, subjects: &[&str]) {
    let mut want: Vec<String> = subjects.iter().map(|s| s.to_string()).collect();
    want.sort();
    let start = Instant::now();
    let mut last = Err(String::new());
    while start.elapsed() < Duration::from_secs(30) {
        last = inbox(host, user, None);
        if last.as_ref() == Ok(&want) {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{user} at {host}: {last:?}, not {want:?}");
}

/// Waits (at most 10 s) until a login of `user` at `host` is referred elsewhere.
fn wait_referred(host: &str, user: &str) {
    let start = Instant::now();
    let mut last = Ok(Vec::new());
    while start.elapsed() < Duration::from_secs(10) {
        last = inbox(host, user, None);
        if last.as_ref().is_err_and(|e| e.contains("REFERRAL")) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{user} at {host} was not referred: {last:?}");
}

const SMTP_TLS: &str = r#"
import smtplib, ssl, sys
host, ca = sys.argv[1:3]
with smtplib.SMTP_SSL(host, 10465, context=ssl.create_default_context(cafile=ca), timeout=10) as s:
    print(s.ehlo()[0])
"#;

#[test]
fn five_nodes_on_one_postgresql_serve_one_site() {
    let site = MultiSite::start();
    for user in ["alice", "nora"] {
        site.ok(&["user", "add", user], Some(&format!("{user}-password\n")));
    }
    let up = |m: &str, s: &str| {
        let role = if s.starts_with("mailbox") {
            "mailbox"
        } else {
            "sorter"
        };
        m.contains(&format!(
            "mailsite_server_state{{role=\"{role}\",server=\"{s}\",state=\"up\"}} 1"
        ))
    };
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        let m = site.metrics();
        if ["mailbox1", "mailbox2", "sorter1", "sorter2"]
            .iter()
            .all(|s| up(&m, s))
            && m.contains("mailsite_users 2\n")
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{}",
        site.metrics()
    );

    // DNS and autoconfig, from the autoconfig+dns node: each letter's server, both sorters.
    assert_eq!(site.resolve("maila"), [site.ip(11)]);
    assert_eq!(site.resolve("mailn"), [site.ip(12)]);
    assert_eq!(site.resolve("outbox"), [site.ip(21), site.ip(22)]);
    let mx = dig(&[
        &format!("@{}", site.ip(1)),
        "-p",
        "10053",
        "+short",
        "example.test",
        "MX",
    ]);
    assert!(
        mx.contains(" sorter1.example.test.") && mx.contains(" sorter2.example.test."),
        "{mx}"
    );
    let xml = curl(&[&format!(
        "http://{}/mail/config-v1.1.xml?emailaddress=nora@example.test",
        site.addr(1, 8080)
    )]);
    assert_eq!(xml.status, 200);
    assert!(
        xml.body.contains("<hostname>mailn.example.test</hostname>"),
        "{}",
        xml.body
    );
    assert!(
        xml.body
            .contains("<hostname>outbox.example.test</hostname>"),
        "{}",
        xml.body
    );

    // Mail through either sorter reaches the mailbox server that owns the letter.
    let (m1, m2, s1, s2) = (site.ip(11), site.ip(12), site.ip(21), site.ip(22));
    send(&s1, "alice", "nora", "to nora via sorter1");
    send(&s2, "alice", "nora", "to nora via sorter2");
    send(&s1, "nora", "alice", "to alice via sorter1");
    wait_inbox(&m2, "nora", &["to nora via sorter1", "to nora via sorter2"]);
    wait_inbox(&m1, "alice", &["to alice via sorter1"]);
    wait_referred(&m2, "alice");
    wait_referred(&m1, "nora");

    // Every node serves the one site certificate.
    let secure = inbox(&m2, "nora", Some(&site.ca)).expect("IMAP over TLS on mailbox2");
    assert_eq!(secure.len(), 2);
    let ehlo = python(SMTP_TLS, &[&s2, &site.ca.to_string_lossy()]);
    assert_eq!(ehlo.trim(), "250");

    // An operator moves letter a: DNS, both mailbox servers and the sorters follow, and
    // alice's mail is all there on mailbox2 (shared storage, one index).
    site.ok(&["letter", "move", "a", "mailbox2"], None);
    site.wait_resolves("maila", &[12], Duration::from_secs(5));
    wait_inbox(&m2, "alice", &["to alice via sorter1"]);
    wait_referred(&m1, "alice");
    send(&s2, "nora", "alice", "to alice after the move");
    wait_inbox(
        &m2,
        "alice",
        &["to alice via sorter1", "to alice after the move"],
    );
    site.ok(&["letter", "move", "a", "mailbox1"], None);
    site.wait_resolves("maila", &[11], Duration::from_secs(5));
    wait_inbox(
        &m1,
        "alice",
        &["to alice via sorter1", "to alice after the move"],
    );

    // Maintenance of mailbox2, from the command line: its open session is told to
    // reconnect, its letters go to mailbox1, where nora finds all her mail.
    let stream = TcpStream::connect(site.addr(12, 10143)).expect("connect to mailbox2");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut session = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut line = String::new();
    session.read_line(&mut line).unwrap();
    writer
        .write_all(b"a LOGIN nora nora-password\r\nb SELECT INBOX\r\n")
        .unwrap();
    let mut seen = String::new();
    while !seen.contains("b OK") {
        line.clear();
        assert!(session.read_line(&mut line).unwrap() > 0, "{seen}");
        seen.push_str(&line);
    }
    site.ok(&["server", "maintenance", "mailbox2"], None);
    line.clear();
    session.read_line(&mut line).unwrap();
    assert!(line.starts_with("* BYE [UNAVAILABLE]"), "{line:?}");
    site.wait_resolves("mailn", &[11], Duration::from_secs(5));
    wait_inbox(&m1, "nora", &["to nora via sorter1", "to nora via sorter2"]);
    let servers = site.ok(&["server", "list"], None);
    assert!(
        servers
            .lines()
            .any(|l| l.starts_with("mailbox2 ") && l.contains(" maintenance ")),
        "{servers}"
    );
    site.ok(&["server", "up", "mailbox2"], None);
    site.wait_resolves("mailn", &[12], Duration::from_secs(5));
    wait_inbox(&m2, "nora", &["to nora via sorter1", "to nora via sorter2"]);

    // A sorter in maintenance leaves outbox; back up, it returns.
    site.ok(&["server", "maintenance", "sorter1"], None);
    site.wait_resolves("outbox", &[22], Duration::from_secs(5));
    site.ok(&["server", "up", "sorter1"], None);
    site.wait_resolves("outbox", &[21, 22], Duration::from_secs(5));
}
