//! The `mailsite` command line as an operator uses it, and `mailsite serve` on the
//! genuine embedded default.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{BIN, Site, python, run_command};

fn text(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_teaches_the_first_steps() {
    let out = run_command(Command::new(BIN).arg("--help"), None);
    let (stdout, _) = text(&out);
    assert!(out.status.success());
    for needle in [
        "Getting started",
        "mailsite serve",
        "user add",
        "server maintenance",
        "zone export",
    ] {
        assert!(
            stdout.contains(needle),
            "--help lacks {needle:?}:\n{stdout}"
        );
    }
    let out = run_command(Command::new(BIN).args(["user", "add", "--help"]), None);
    let (stdout, _) = text(&out);
    assert!(stdout.contains("never from the command line"), "{stdout}");
}

#[test]
fn users_are_added_listed_changed_and_removed() {
    let site = Site::isolated();
    let out = site.ok(
        &["user", "add", "alice", "--name", "Alice Liddell"],
        Some("wonderland-1\n"),
    );
    assert!(
        out.contains("letter a, served by mailbox1 as maila.example.test"),
        "{out}"
    );
    site.add_user("nora", "nora-password", &["--prefer", "pop3"]);

    let list = site.ok(&["user", "list"], None);
    assert!(
        list.contains("alice") && list.contains("Alice Liddell") && list.contains("2 users"),
        "{list}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&site.ok(&["user", "list", "--json"], None)).unwrap();
    assert_eq!(json[1]["username"], "nora");
    assert_eq!(json[1]["preference"], "pop3");
    assert_eq!(json[1]["server"], "mailbox2");

    let show: serde_json::Value =
        serde_json::from_str(&site.ok(&["user", "show", "alice", "--json"], None)).unwrap();
    assert_eq!(show["alias"], "maila.example.test");
    assert_eq!(show["enabled"], true);

    // Mistakes get clear errors and change nothing.
    for (args, stdin, says) in [
        (
            vec!["user", "add", "alice"],
            "another-pass\n",
            "already exists",
        ),
        (
            vec!["user", "add", "../etc"],
            "another-pass\n",
            "not a valid username",
        ),
        (vec!["user", "add", "bob"], "short\n", "too short"),
        (
            vec!["user", "add", "bob", "secret-password"],
            "",
            "unexpected argument",
        ),
        (vec!["user", "remove", "nobody"], "", "no user \"nobody\""),
        (
            vec!["user", "prefer", "alice", "smtp"],
            "",
            "not a protocol",
        ),
    ] {
        let out = site.run(&args, Some(stdin));
        let (stdout, stderr) = text(&out);
        assert!(!out.status.success(), "{args:?} succeeded: {stdout}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    site.ok(&["user", "passwd", "alice"], Some("new-password-2\n"));
    site.ok(&["user", "remove", "alice"], None);
    let list = site.ok(&["user", "list"], None);
    assert!(
        !list.contains("alice") && list.contains("1 users"),
        "{list}"
    );
}

/// `user import`: a file with a bad row imports nothing and names the line and the fix;
/// CSV (plain passwords) and JSON lines (an argon2 hash, on standard input) then go in,
/// users already there are skipped and named, or updated with --update, and the running
/// server serves the imported users' preferences.
#[test]
fn users_are_imported_from_csv_and_json_lines() {
    let site = Site::isolated();
    let csv = site.dir.join("users.csv");
    let path = csv.to_str().unwrap();
    let header = "username,name,prefer,password\n";
    let ada = "ada,\"Lovelace, Ada\",pop3,analytical-1\n";
    std::fs::write(&csv, format!("{header}{ada}Bad Name,,,analytical-2\n")).unwrap();
    let out = site.run(&["user", "import", path], None);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("users.csv: line 3: \"bad name\" is not a valid username")
            && stderr.contains("nothing was imported"),
        "{stderr}"
    );
    assert!(site.ok(&["user", "list"], None).contains("0 users"));

    std::fs::write(&csv, format!("{header}{ada}brian,,,analytical-2\n")).unwrap();
    let out = site.ok(&["user", "import", path], None);
    assert!(
        out.contains("2 user(s) read: 2 added, 0 updated, 0 skipped"),
        "{out}"
    );

    let hash = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(mailsite::directory::password::hash("difference-engine"))
        .unwrap();
    let lines = format!(
        "{{\"username\": \"ada\", \"password\": \"another-one\", \"prefer\": \"imap\"}}\n\
         {{\"username\": \"carl\", \"prefer\": \"pop3\", \"password_hash\": \"{hash}\"}}\n"
    );
    let out = site.ok(&["user", "import", "-", "--format", "jsonl"], Some(&lines));
    assert!(
        out.contains("2 user(s) read: 1 added, 0 updated, 1 skipped") && out.contains(": ada"),
        "{out}"
    );
    let user = |name: &str| -> serde_json::Value {
        serde_json::from_str(&site.ok(&["user", "show", name, "--json"], None)).unwrap()
    };
    assert_eq!(user("ada")["preference"], "pop3", "skipped: left as it was");
    assert_eq!(user("ada")["display_name"], "Lovelace, Ada");
    assert_eq!(user("carl")["preference"], "pop3");
    let out = site.ok(
        &["user", "import", "-", "--format", "jsonl", "--update"],
        Some(&lines),
    );
    assert!(out.contains("0 added, 2 updated, 0 skipped"), "{out}");
    assert_eq!(user("ada")["preference"], "imap");

    // The running server follows: carl's autoconfig answer offers POP3 first.
    let pop3_first = || {
        let body = site
            .get("/mail/config-v1.1.xml?emailaddress=carl@example.test")
            .body;
        let (pop3, imap) = (body.find("type=\"pop3\""), body.find("type=\"imap\""));
        matches!((pop3, imap), (Some(pop3), Some(imap)) if pop3 < imap)
    };
    assert!(
        site.within(std::time::Duration::from_secs(2), pop3_first)
            .is_some()
    );
}

#[test]
fn passwords_never_reach_the_database_in_clear() {
    let site = Site::isolated();
    site.add_user("dora", "plain-text-secret", &[]);
    let files = site.database_files();
    assert!(!files.is_empty());
    for file in files {
        let bytes = std::fs::read(&file).unwrap_or_default();
        let haystack = String::from_utf8_lossy(&bytes);
        assert!(
            !haystack.contains("plain-text-secret"),
            "{}",
            file.display()
        );
    }
    let hash = site.sql("select password_hash from users where username='dora'");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!site.log().contains("plain-text-secret"));
}

#[test]
fn route_explains_where_an_address_lives() {
    let site = Site::isolated();
    site.add_user("nora", "nora-password", &["--prefer", "pop3"]);
    let out = site.ok(&["route", "Nora@example.test"], None);
    for needle in [
        "letter    n",
        "alias     mailn.example.test",
        &format!("server    mailbox2 ({})", site.addr(12)),
        "prefers pop3",
        "POP3  mailn.example.test:10995 SSL/TLS, username nora",
        "SMTP  outbox.example.test:10465 SSL/TLS",
    ] {
        assert!(out.contains(needle), "route lacks {needle:?}:\n{out}");
    }
    site.ok(&["server", "maintenance", "mailbox2"], None);
    let v: serde_json::Value =
        serde_json::from_str(&site.ok(&["route", "nora@example.test", "--json"], None)).unwrap();
    assert_eq!(v["server"], "mailbox1");
    assert_eq!(v["home"], "mailbox2");
    assert_eq!(v["home_state"], "maintenance");
    assert_eq!(v["redirected"], true);
    assert_eq!(v["alias"], "mailn.example.test");

    let out = site.run(&["route", "not-an-address"], None);
    assert!(!out.status.success());
    assert!(text(&out).1.contains("no @domain"));
}

#[test]
fn letters_and_servers_are_moved_with_clear_reports() {
    let site = Site::isolated();
    let out = site.ok(&["letter", "move", "q", "mailbox1"], None);
    assert!(
        out.contains("q (mailq.example.test): mailbox2 -> mailbox1"),
        "{out}"
    );
    let out = site.ok(&["server", "maintenance", "mailbox1"], None);
    assert!(out.contains("mailbox1 is now maintenance"), "{out}");
    assert!(
        out.contains("a (maila.example.test): mailbox1 -> mailbox2"),
        "{out}"
    );
    assert!(
        out.contains("q (mailq.example.test): mailbox1 -> mailbox2"),
        "{out}"
    );
    let list = site.ok(&["letter", "list"], None);
    assert!(list.contains("mailbox1 (maintenance)"), "{list}");
    let servers = site.ok(&["server", "list"], None);
    assert!(servers.contains("maintenance"), "{servers}");
    let out = site.ok(&["server", "up", "mailbox1"], None);
    assert!(
        out.contains("a (maila.example.test): mailbox2 -> mailbox1"),
        "{out}"
    );

    for (args, says) in [
        (vec!["letter", "move", "7x", "mailbox1"], "not a letter"),
        (
            vec!["letter", "move", "a", "mailbox9"],
            "no mailbox server named \"mailbox9\"",
        ),
        (
            vec!["server", "maintenance", "nosuch"],
            "no mailbox server named \"nosuch\"",
        ),
    ] {
        let out = site.run(&args, None);
        assert!(!out.status.success());
        assert!(text(&out).1.contains(says), "{args:?}: {}", text(&out).1);
    }
}

/// Draining the last mailbox server or the last sorter that is up is refused with what
/// users would see, unless --force; nothing changes until then.
#[test]
fn draining_the_last_server_of_a_kind_needs_force() {
    let site = Site::isolated();
    site.ok(&["server", "maintenance", "mailbox1"], None);
    let out = site.run(&["server", "maintenance", "mailbox2"], None);
    let (_, stderr) = text(&out);
    assert!(!out.status.success(), "the last mailbox server was drained");
    for says in [
        "mailbox2 is the last mailbox server up",
        "without their mail",
        "--force",
    ] {
        assert!(stderr.contains(says), "{says:?} missing: {stderr}");
    }
    let servers = site.ok(&["server", "list"], None);
    assert!(
        servers
            .lines()
            .any(|l| l.starts_with("mailbox2") && l.contains(" up ")),
        "{servers}"
    );
    let out = site.ok(&["server", "maintenance", "mailbox2", "--force"], None);
    assert!(out.contains("mailbox2 is now maintenance"), "{out}");
    assert!(
        out.contains("warning: mailbox2 is the last mailbox server up"),
        "{out}"
    );

    site.ok(&["server", "maintenance", "sorter1"], None);
    let out = site.run(&["server", "maintenance", "sorter2"], None);
    assert!(!out.status.success(), "the last sorter was drained");
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("sorter2 is the last sorter up") && stderr.contains("unable to send"),
        "{stderr}"
    );
    site.ok(&["server", "maintenance", "sorter2", "--force"], None);
    // Bringing servers back never needs force.
    site.ok(&["server", "up", "mailbox1"], None);
    site.ok(&["server", "up", "sorter1"], None);
}

/// What an operator new to the command line runs into: a directory with no site, user
/// names typed as addresses, dates, the operator flag, and an empty password.
#[test]
fn the_command_line_says_what_it_found_and_takes_addresses() {
    // No site where the command looks: said, with where it looked and how to point at
    // one; nothing is created.
    let empty = std::env::temp_dir().join(format!("mailsite-no-site-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    for args in [
        vec!["user", "list"],
        vec!["user", "show", "alice"],
        vec!["route", "alice@example.test"],
        vec!["letter", "list"],
    ] {
        let out = run_command(
            Command::new(BIN).arg("--data-dir").arg(&empty).args(&args),
            None,
        );
        let (_, stderr) = text(&out);
        assert!(!out.status.success(), "{args:?} succeeded with no site");
        assert!(
            stderr.contains("no site found in")
                && stderr.contains(&empty.display().to_string())
                && stderr.contains("--data-dir"),
            "{args:?}: {stderr}"
        );
    }
    assert!(
        !empty.join("site.db").exists(),
        "a read-only command created a site"
    );
    // Adding the first user starts one, and says so.
    let out = run_command(
        Command::new(BIN)
            .arg("--data-dir")
            .arg(&empty)
            .args(["user", "add", "first"]),
        Some("first-password\n"),
    );
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(text(&out).1.contains("creating one"), "{:?}", text(&out));
    std::fs::remove_dir_all(&empty).ok();

    let site = Site::isolated();
    site.add_user("alice", "alice-password", &["--operator"]);
    site.add_user("bob", "bob-password", &[]);
    // Every user argument takes the address as well as the name.
    let show = site.ok(&["user", "show", "Alice@Example.test"], None);
    assert!(show.contains("username      alice"), "{show}");
    // Dates are dates.
    let created = show
        .lines()
        .find(|l| l.starts_with("created_at"))
        .expect("created_at");
    assert!(
        created.ends_with("UTC") && created.contains('-'),
        "{created}"
    );
    site.ok(&["user", "disable", "bob@example.test"], None);
    site.ok(&["user", "enable", "bob@example.test"], None);
    site.ok(
        &["user", "passwd", "bob@example.test"],
        Some("bob-password-2\n"),
    );
    let mailboxes = site.ok(&["mailbox", "list", "bob@example.test"], None);
    assert!(mailboxes.contains("INBOX"), "{mailboxes}");
    let other = site.run(&["user", "show", "alice@elsewhere.org"], None);
    assert!(!other.status.success());
    assert!(
        text(&other).1.contains("not a user of this site"),
        "{}",
        text(&other).1
    );
    // The list shows who may use the console.
    let list = site.ok(&["user", "list"], None);
    assert!(list.lines().next().unwrap().contains("OPERATOR"), "{list}");
    let alice = list.lines().find(|l| l.starts_with("alice")).unwrap();
    let bob = list.lines().find(|l| l.starts_with("bob")).unwrap();
    assert!(alice.contains(" yes "), "{list}");
    assert!(!bob.contains(" yes "), "{list}");
    // No password on standard input is said as that, not as a short password.
    let out = site.run(&["user", "add", "carol"], Some(""));
    assert!(!out.status.success());
    assert!(
        text(&out).1.contains("no password was given"),
        "{}",
        text(&out).1
    );
}

#[test]
fn zone_export_writes_the_live_zone() {
    let site = Site::isolated();
    site.ok(&["letter", "move", "b", "mailbox2"], None);
    let zone = site.ok(&["zone", "export"], None);
    assert!(zone.starts_with("; zone example.test"), "{zone}");
    assert!(zone.contains("$ORIGIN example.test."));
    assert!(zone.contains("example.test. 300 IN SOA ns.example.test. hostmaster.example.test."));
    assert!(
        zone.contains(&format!("mailb.example.test. 5 IN A {}", site.addr(12))),
        "{zone}"
    );
    assert!(zone.contains(&format!("outbox.example.test. 5 IN A {}", site.addr(21))));
    assert!(zone.contains("example.test. 300 IN MX 10 sorter1.example.test."));
    let file = site.dir.join("example.test.zone");
    site.ok(&["zone", "export", "--out", file.to_str().unwrap()], None);
    // The same zone; its signatures (DNSSEC) are made anew for each export.
    let unsigned = |zone: &str| -> Vec<String> {
        zone.lines()
            .filter(|line| !line.contains(" IN RRSIG "))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        unsigned(&std::fs::read_to_string(&file).unwrap()),
        unsigned(&zone)
    );
    assert!(
        zone.contains("example.test. 300 IN DNSKEY 257 3 13 "),
        "{zone}"
    );
    assert!(
        zone.contains("maila.example.test. 5 IN RRSIG A 13 3 5 "),
        "{zone}"
    );
    // The signatures as exported verify (dnspython) against the exported key, their
    // times written as YYYYMMDDHHmmSS (RFC 4034 3.2), the only form NSD reads.
    let checked = python(
        r#"
import sys, re, dns.zone, dns.dnssec, dns.rdatatype, dns.name
text = open(sys.argv[1]).read()
times = [l.split()[8:10] for l in text.splitlines() if " IN RRSIG " in l]
assert times and all(re.fullmatch(r"\d{14}", t) for pair in times for t in pair), times[:3]
zone = dns.zone.from_text(text, origin="example.test.", relativize=False, check_origin=True)
origin = dns.name.from_text("example.test.")
keys = {origin: zone.find_rdataset(origin, dns.rdatatype.DNSKEY)}
n = 0
for name, node in zone.nodes.items():
    for rdataset in node.rdatasets:
        if rdataset.rdtype == dns.rdatatype.RRSIG:
            continue
        sigs = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, rdataset.rdtype)
        assert sigs is not None, (name, rdataset.rdtype)
        dns.dnssec.validate((name, rdataset), (name, sigs), keys)
        n += 1
print(n)
"#,
        &[file.to_str().unwrap()],
    );
    assert!(checked.trim().parse::<u32>().unwrap() > 40, "{checked}");
    assert!(zone.contains("maila.example.test. 5 IN NSEC mailb.example.test. A RRSIG NSEC"));
    let out = site.run(&["zone", "export", "--domain", "example.org"], None);
    assert!(text(&out).1.contains("not a domain of this site"));
}

#[test]
fn check_config_names_the_line_and_the_fix() {
    let site = Site::isolated();
    let out = site.ok(&["check-config"], None);
    assert!(
        out.contains(": ok") && out.contains("mailbox    mailbox1"),
        "{out}"
    );

    let default = run_command(
        Command::new(BIN).args(["check-config", "--print-default"]),
        None,
    );
    assert!(text(&default).0.contains("[[mailbox]]"));

    let broken = site.dir.join("broken.toml");
    let original = std::fs::read_to_string(site.config.as_ref().unwrap()).unwrap();
    std::fs::write(
        &broken,
        original.replace("\"n-z\" = \"mailbox2\"", "\"n-z\" = \"mailbox3\""),
    )
    .unwrap();
    let line = original
        .lines()
        .position(|l| l.contains("\"n-z\""))
        .unwrap()
        + 1;
    let out = run_command(
        Command::new(BIN)
            .arg("--config")
            .arg(&broken)
            .arg("check-config"),
        None,
    );
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains(&format!("broken.toml:{line}:")), "{stderr}");
    assert!(
        stderr.contains("no mailbox server is named \"mailbox3\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("fix: use one of mailbox1, mailbox2"),
        "{stderr}"
    );

    let out = run_command(
        Command::new(BIN).args(["--config", "/nonexistent/site.toml", "check-config"]),
        None,
    );
    assert!(text(&out).1.contains("cannot read the file"));
}

#[test]
fn serve_runs_the_embedded_default_and_prints_what_it_started() {
    let site = Site::embedded();
    let out = site.stdout();
    for needle in [
        "serving example.test",
        "autoconfig  http://127.0.0.1:8080/",
        "dns         127.0.0.1:10053",
        "mailbox1 127.0.0.11: IMAP 10143/10993 (TLS), POP3 10110/10995 (TLS), LMTP 10024",
        "mailbox2 127.0.0.12: IMAP 10143/10993 (TLS)",
        "sorter1 127.0.0.21: SMTP 10025 (MX), submission 10587 (STARTTLS) / 10465 (TLS)",
        "sorter2 127.0.0.22: SMTP 10025 (MX)",
        "demo user   demo@example.test password ",
    ] {
        assert!(
            out.contains(needle),
            "serve output lacks {needle:?}:\n{out}"
        );
    }
    let r = site.get("/mail/config-v1.1.xml?emailaddress=demo@example.test");
    assert_eq!(r.status, 200);
    assert!(r.body.contains("<hostname>maild.example.test</hostname>"));
    let users = site.ok(&["user", "list"], None);
    assert!(users.contains("demo"), "{users}");
    let password = out
        .split("password ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap();
    assert_eq!(password.len(), 16);
    assert!(
        !site.log().contains(password),
        "the demo password reached the log"
    );

    // Printed once, when it was made: a later start says where it is kept instead.
    let mut site = site;
    site.kill_hard();
    site.start_again();
    let again = site.within(Duration::from_secs(10), || {
        site.stdout().contains("readable by its owner only")
    });
    let out = site.stdout();
    assert!(again.is_some(), "{out}");
    assert_eq!(out.matches(password).count(), 1, "{out}");
    assert!(out.contains("demo-password"), "{out}");
}

#[test]
fn data_is_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    // The usual shell umask, under which files would otherwise be world-readable.
    // SAFETY: umask only sets this process's file-creation mask (the server inherits it).
    unsafe {
        libc::umask(0o022);
    }
    let mut site = Site::isolated();
    site.add_user("alice", "alice-password", &[]);
    let sent = python(
        r#"
import smtplib, sys
with smtplib.SMTP(sys.argv[1], 10025, timeout=10) as s:
    s.sendmail("bob@example.test", ["alice@example.test"], "Subject: private\r\n\r\nhi\r\n")
print("sent")
"#,
        &[&site.addr(21)],
    );
    assert_eq!(sent.trim(), "sent");
    let data = site.dir.join("data");
    let inbox = data.join("mail/alice");
    let delivered = site.within(Duration::from_secs(10), || {
        ["new", "cur"]
            .iter()
            .any(|d| std::fs::read_dir(inbox.join(d)).is_ok_and(|mut e| e.next().is_some()))
    });
    assert!(delivered.is_some(), "nothing delivered to alice");
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let message = ["new", "cur"]
        .iter()
        .flat_map(|d| std::fs::read_dir(inbox.join(d)).into_iter().flatten())
        .flatten()
        .next()
        .unwrap()
        .path();
    let mut checked = vec![
        (data.clone(), 0o700),
        (inbox.clone(), 0o700),
        (message, 0o600),
    ];
    if site.database.is_none() {
        checked.push((data.join("site.db"), 0o600));
    }
    for (path, wanted) in checked {
        assert_eq!(mode(&path), wanted, "{}", path.display());
    }

    // Data loosened by hand is named at the next start, with the command that fixes it.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    site.kill_hard();
    site.start_again();
    let log = site.log();
    assert!(
        log.contains(&format!("chmod -R go-rwx {}", data.display())),
        "{log}"
    );
}

#[test]
fn mail_dropped_into_a_maildir_is_picked_up_and_a_lost_index_rebuilt() {
    let site = Site::isolated();
    site.add_user("alice", "alice-password", &[]);
    let list = site.ok(&["mailbox", "list", "alice"], None);
    for name in ["INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"] {
        assert!(list.contains(name), "{list}");
    }
    assert!(list.contains("\\Sent"), "{list}");

    // Another program delivers two messages the Maildir way.
    let new = site.dir.join("data/mail/alice/new");
    for n in 1..=2 {
        std::fs::write(
            new.join(format!("170000000{n}.M1P1.other")),
            format!("Subject: {n}\r\n\r\nhi\r\n"),
        )
        .unwrap();
    }
    let list = site.ok(&["mailbox", "list", "alice"], None);
    let inbox = list
        .lines()
        .find(|l| l.starts_with("INBOX"))
        .unwrap()
        .to_string();
    let fields: Vec<&str> = inbox.split_whitespace().collect();
    assert_eq!(fields[1], "2", "{inbox}");
    assert_eq!(fields[3], "3", "{inbox}");
    assert_eq!(std::fs::read_dir(&new).unwrap().count(), 0);

    // The index is lost; reindex brings back the same UIDVALIDITY and UIDs.
    site.sql("delete from messages");
    site.sql("delete from mailboxes");
    let out = site.ok(&["mailbox", "reindex", "alice"], None);
    assert!(out.contains("2 messages in 6 mailboxes"), "{out}");
    let again = site.ok(&["mailbox", "list", "alice"], None);
    let inbox_again = again.lines().find(|l| l.starts_with("INBOX")).unwrap();
    assert_eq!(inbox_again, inbox);
    let out = site.run(&["mailbox", "reindex", "nobody"], None);
    assert!(!out.status.success());
}
