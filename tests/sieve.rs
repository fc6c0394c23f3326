//! Sieve filters as users keep them: uploaded over ManageSieve (RFC 5804) with
//! Python's `managesieve` client and with `sieve-connect`, run when mail arrives
//! through the sorters (fileinto, imap4flags, discard, reject, vacation), read back
//! with imaplib, and following their user's letter to another mailbox server.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Site, python};

/// What a user's filter does: lists into "Lists" (made when missing), "urgent" mail
/// flagged and kept, "junk" dropped, "spam" refused, and a vacation reply to the rest
/// (once a day per sender, per RFC 5230's rules).
const SCRIPT: &str = r#"require ["fileinto", "imap4flags", "vacation", "mailbox", "reject", "variables", "relational", "body", "envelope", "copy"];
# Mail from a list goes to its folder.
if header :contains "List-Id" "news.example.test" {
    fileinto :create "Lists";
    stop;
}
if header :contains "Subject" "urgent" {
    addflag "\\Flagged";
    # A copy for the Urgent folder; the message stays in INBOX too.
    fileinto :copy :create "Urgent";
}
if header :contains "Subject" "junk" {
    discard;
    stop;
}
if body :contains "buy now" {
    reject "No advertising, thank you.";
    stop;
}
# Mail from inside the site, by its envelope sender, is marked.
if envelope :domain :is "from" "example.test" {
    addflag "$internal";
}
# Low priority (X-Priority 4 or 5) is marked too.
if header :value "ge" :comparator "i;ascii-numeric" "X-Priority" "4" {
    addflag "$low";
}
# (sieve-rs scopes a variable first set inside a block to that block: set it first.)
set "subject" "";
if header :matches "Subject" "*" {
    set "subject" "${1}";
}
vacation :days 1 :subject "Away: ${subject}" "I am away until Monday and will answer then.";
"#;

/// Talks to ManageSieve with the `managesieve` package (STARTTLS, the site CA
/// verified; the certificate names the mail<letter> aliases, not loopback addresses)
/// and prints what each step answered as JSON.
const CLIENT: &str = r#"
import json, ssl, sys, managesieve
host, port, ca, user, password, script = sys.argv[1:7]
_default = ssl.create_default_context
def verified(*args, **kwargs):
    ctx = _default(cafile=ca)
    ctx.check_hostname = False
    return ctx
ssl.create_default_context = verified
out = {}
s = managesieve.MANAGESIEVE(host, int(port), use_tls=True, timeout=10)
out["tls"] = isinstance(s.sock, managesieve.SSLFakeSocket)
out["capabilities"] = list(s.capabilities)
out["wrong"] = s.login("", user, password + "x")
out["login"] = s.login("", user, password)
out["bad"] = s.putscript("broken", 'require "fileinto";\nfileinto "x"\nkeep;\n')
out["bad_text"] = s.response_text.decode() if isinstance(s.response_text, bytes) else str(s.response_text)
out["notify"] = s.putscript("notify", 'require "enotify";\nkeep;\n')
out["havespace"] = s.havespace("main", len(script))
out["toolarge"] = s.havespace("main", 10**7)
out["put"] = s.putscript("main", script)
out["put2"] = s.putscript("spare", "keep;\n")
out["active"] = s.setactive("main")
typ, scripts = s.listscripts()
out["list"] = [typ, scripts]
typ, text = s.getscript("main")
out["get_same"] = (typ, text == script)
out["delete_active"] = s.deletescript("main")
out["delete_active_code"] = str(s.response_code)
out["delete_spare"] = s.deletescript("spare")
out["get_missing"] = s.getscript("spare")[0]
out["logout"] = s.logout()
print(json.dumps(out))
"#;

/// Sends one message through the sorter's MX port.
const SEND: &str = r#"
import smtplib, sys
host, sender, rcpt, subject, body = sys.argv[1:6]
extra = sys.argv[6] if len(sys.argv) > 6 else ""
msg = (f"From: {sender}\r\nTo: {rcpt}\r\nSubject: {subject}\r\n"
       f"Message-ID: <{abs(hash(subject))}@example.test>\r\n{extra}\r\n{body}\r\n")
with smtplib.SMTP(host, 10025, timeout=10) as s:
    print(s.sendmail(sender, [rcpt], msg.encode()))
"#;

/// Lists a user's mailbox as `UID FLAGS SUBJECT` lines.
const READ: &str = r#"
import imaplib, re, sys
host, user, password, mailbox = sys.argv[1:5]
m = imaplib.IMAP4(host, 10143, timeout=10)
m.login(user, password)
typ, _ = m.select(f'"{mailbox}"')
if typ != "OK":
    print("no such mailbox")
    sys.exit(0)
typ, data = m.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT AUTO-SUBMITTED IN-REPLY-TO DKIM-SIGNATURE)])")
for part in data:
    if isinstance(part, tuple):
        uid = re.search(rb"UID (\d+)", part[0]).group(1).decode()
        flags = re.search(rb"FLAGS \(([^)]*)\)", part[0]).group(1).decode()
        headers = " | ".join(l.strip() for l in part[1].decode().splitlines() if l.strip())
        print(f"{uid} [{flags}] {headers}")
m.logout()
"#;

fn read(site: &Site, host: u8, user: &str, password: &str, mailbox: &str) -> String {
    python(READ, &[&site.addr(host), user, password, mailbox])
}

fn send(site: &Site, sender: &str, rcpt: &str, subject: &str, body: &str, extra: &str) {
    let out = python(SEND, &[&site.addr(21), sender, rcpt, subject, body, extra]);
    assert_eq!(out.trim(), "{}", "{subject}: {out}");
}

/// Waits (bounded) until `check` holds for what `read` returns.
fn wait_for(
    site: &Site,
    what: &str,
    mut probe: impl FnMut() -> String,
    check: impl Fn(&str) -> bool,
) -> String {
    let mut last = String::new();
    let found = site.within(Duration::from_secs(20), || {
        last = probe();
        check(&last)
    });
    assert!(found.is_some(), "{what}: {last}");
    last
}

#[test]
fn a_script_uploaded_over_managesieve_files_flags_refuses_and_answers_while_away() {
    let site = Site::isolated();
    site.add_user("alice", "alice-password", &[]);
    site.add_user("bob", "bob-password", &[]);
    let ca = site.dir.join("data/tls/ca.pem");
    let out = python(
        CLIENT,
        &[
            &site.addr(11),
            "10190",
            &ca.to_string_lossy(),
            "alice",
            "alice-password",
            SCRIPT,
        ],
    );
    let out: serde_json::Value = serde_json::from_str(out.trim()).expect(&out);
    assert_eq!(out["tls"], true, "{out}");
    let extensions = out["capabilities"]
        .as_array()
        .expect("the client reports the capabilities as a list");
    for wanted in [
        "fileinto",
        "vacation",
        "imap4flags",
        "body",
        "variables",
        "relational",
        "envelope",
    ] {
        assert!(extensions.iter().any(|e| e == wanted), "{wanted}: {out}");
    }
    assert_eq!(out["wrong"], "NO", "{out}");
    assert_eq!(out["login"], "OK", "{out}");
    assert_eq!(out["bad"], "NO", "{out}");
    assert!(
        out["bad_text"]
            .as_str()
            .expect("the refusal's text")
            .contains("line 3"),
        "the refusal names the line: {out}"
    );
    assert_eq!(out["notify"], "NO", "{out}");
    assert_eq!(out["havespace"], "OK", "{out}");
    assert_eq!(out["toolarge"], "NO", "{out}");
    assert_eq!(out["put"], "OK", "{out}");
    assert_eq!(out["active"], "OK", "{out}");
    assert_eq!(
        out["list"],
        serde_json::json!(["OK", [["main", true], ["spare", false]]]),
        "{out}"
    );
    assert_eq!(out["get_same"], serde_json::json!(["OK", true]), "{out}");
    assert_eq!(out["delete_active"], "NO", "{out}");
    assert!(
        out["delete_active_code"]
            .as_str()
            .expect("the refusal's response code")
            .contains("ACTIVE"),
        "{out}"
    );
    assert_eq!(out["delete_spare"], "OK", "{out}");
    assert_eq!(out["get_missing"], "NO", "{out}");
    // The operator sees the same scripts.
    let list = site.ok(&["sieve", "list", "alice"], None);
    assert!(list.contains("main") && list.contains("yes"), "{list}");

    // Mail arrives through the sorter, from bob (a local sender, so the vacation
    // reply can be read in his INBOX).
    send(
        &site,
        "bob@example.test",
        "alice@example.test",
        "weekly digest",
        "news",
        "List-Id: <news.example.test>\r\n",
    );
    send(
        &site,
        "bob@example.test",
        "alice@example.test",
        "urgent: the report",
        "please",
        "",
    );
    send(
        &site,
        "bob@example.test",
        "alice@example.test",
        "junk offer",
        "nothing",
        "",
    );
    send(
        &site,
        "bob@example.test",
        "alice@example.test",
        "an offer",
        "buy now!",
        "",
    );
    send(
        &site,
        "bob@example.test",
        "alice@example.test",
        "second note",
        "again",
        "",
    );
    send(
        &site,
        "bob@example.test",
        "alice@example.test",
        "bulk note",
        "many",
        "Precedence: bulk\r\n",
    );
    // No vacation reply to machines, to lists, or to the user's own address.
    send(
        &site,
        "news@example.org",
        "alice@example.test",
        "low priority note",
        "automatic",
        "X-Priority: 5\r\nAuto-Submitted: auto-generated\r\n",
    );
    send(
        &site,
        "bob@example.test",
        "alice@example.test",
        "other list",
        "list mail",
        "List-Id: <other.example.test>\r\n",
    );
    send(
        &site,
        "alice@example.test",
        "alice@example.test",
        "note to self",
        "remember",
        "",
    );

    let lists = wait_for(
        &site,
        "the list message in Lists",
        || read(&site, 11, "alice", "alice-password", "Lists"),
        |l| l.contains("weekly digest"),
    );
    assert_eq!(lists.lines().count(), 1, "{lists}");
    let inbox = wait_for(
        &site,
        "alice's INBOX",
        || read(&site, 11, "alice", "alice-password", "INBOX"),
        |l| l.contains("note to self"),
    );
    let lines: Vec<&str> = inbox.lines().collect();
    assert_eq!(
        lines.len(),
        6,
        "all but the list's, the junk and the offer: {inbox}"
    );
    let line = |subject: &str| {
        lines
            .iter()
            .find(|l| l.contains(subject))
            .copied()
            .unwrap_or("")
    };
    assert!(line("second note").contains("$internal"), "{inbox}");
    assert!(!line("second note").contains("$low"), "{inbox}");
    assert!(line("low priority note").contains("$low"), "{inbox}");
    assert!(!line("low priority note").contains("$internal"), "{inbox}");
    assert!(
        !inbox.contains("Away:"),
        "no reply to alice's own address: {inbox}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("urgent") && l.contains("\\Flagged")),
        "{inbox}"
    );
    assert!(
        !inbox.contains("junk") && !inbox.contains("an offer"),
        "{inbox}"
    );
    let urgent = read(&site, 11, "alice", "alice-password", "Urgent");
    assert_eq!(urgent.lines().count(), 1, "{urgent}");
    assert!(
        urgent.contains("urgent: the report") && urgent.contains("\\Flagged"),
        "{urgent}"
    );

    // Bob gets one vacation reply (not one per message, none for bulk mail), and the
    // bounce of the refused offer.
    let bob = wait_for(
        &site,
        "bob's vacation reply and bounce",
        || read(&site, 11, "bob", "bob-password", "INBOX"),
        |l| l.contains("Away:") && l.to_lowercase().contains("undeliver"),
    );
    let replies: Vec<&str> = bob.lines().filter(|l| l.contains("Away:")).collect();
    assert_eq!(replies.len(), 1, "{bob}");
    assert!(replies[0].contains("Away: urgent: the report"), "{bob}");
    assert!(replies[0].contains("Auto-Submitted: auto-replied"), "{bob}");
    assert!(replies[0].contains("In-Reply-To:"), "{bob}");
    // The mailbox server's reply left through a sorter, which signed it for the
    // user's domain (tests/dkim.rs verifies such signatures with dkimpy).
    for tag in ["a=ed25519-sha256", "a=rsa-sha256", "d=example.test"] {
        assert!(replies[0].contains(tag), "{tag}: {bob}");
    }
    std::thread::sleep(Duration::from_secs(2));
    let again = read(&site, 11, "bob", "bob-password", "INBOX");
    assert_eq!(
        again.lines().filter(|l| l.contains("Away:")).count(),
        1,
        "{again}"
    );
    let bounce = site
        .inbox("bob")
        .into_iter()
        .find(|m| m.contains("No advertising, thank you."))
        .unwrap_or_default();
    assert!(
        bounce.contains("refused by the recipient's filter"),
        "{bounce}"
    );

    // The node counts what scripts did.
    let metrics = site.get("/metrics").body;
    for line in [
        "mailsite_sieve_total{result=\"filed\"} 7",
        "mailsite_sieve_total{result=\"discarded\"} 1",
        "mailsite_sieve_total{result=\"rejected\"} 1",
        "mailsite_sieve_total{result=\"sent\"} 1",
    ] {
        let sent: Vec<String> = site
            .log()
            .lines()
            .filter(|l| l.contains("Sieve message"))
            .map(str::to_string)
            .collect();
        assert!(
            metrics.lines().any(|l| l == line),
            "{line}: {metrics}\nsent: {sent:#?}"
        );
    }
}

#[test]
fn sieve_connect_uploads_and_activates_with_an_app_password() {
    let site = Site::isolated();
    site.add_user("nora", "nora-password", &[]);
    let added = site.ok(
        &[
            "user",
            "app-password",
            "add",
            "nora",
            "--label",
            "filters",
            "--json",
        ],
        None,
    );
    let added: serde_json::Value = serde_json::from_str(&added).expect(&added);
    let app_password = added["password"].as_str().expect("a password").to_string();
    let script = site.dir.join("filters.sieve");
    std::fs::write(
        &script,
        "require [\"fileinto\", \"mailbox\"];\nif header :contains \"Subject\" \"receipt\" { fileinto :create \"Receipts\"; }\n",
    )
    .expect("write the script file");
    let sieve_connect = |args: &[&str]| {
        let mut child = Command::new("sieve-connect")
            .args([
                "--server",
                &site.addr(12),
                "--port",
                "10190",
                "--user",
                "nora",
            ])
            .args(["--passwordfd", "0", "--nosslverify", "--notlsverify"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sieve-connect (Debian: sieve-connect)");
        child
            .stdin
            .take()
            .expect("sieve-connect's standard input")
            .write_all(format!("{app_password}\n").as_bytes())
            .expect("send the app password to sieve-connect");
        let out = child.wait_with_output().expect("sieve-connect's output");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, out) = sieve_connect(&[
        "--upload",
        "--localsieve",
        &script.to_string_lossy(),
        "--remotesieve",
        "filters",
    ]);
    assert!(ok, "{out}");
    let (ok, out) = sieve_connect(&["--activate", "--remotesieve", "filters"]);
    assert!(ok, "{out}");
    let (ok, out) = sieve_connect(&["--list"]);
    assert!(ok && out.contains("filters"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("filters") && l.contains("ACTIVE")),
        "{out}"
    );
    send(
        &site,
        "shop@example.test",
        "nora@example.test",
        "your receipt",
        "thanks",
        "",
    );
    wait_for(
        &site,
        "the receipt in Receipts",
        || read(&site, 12, "nora", "nora-password", "Receipts"),
        |l| l.contains("your receipt"),
    );
    // The app password shows its last use.
    let list = site.ok(&["user", "app-password", "list", "nora", "--json"], None);
    let list: serde_json::Value = serde_json::from_str(&list).expect(&list);
    assert!(list[0]["last_used_at"].is_i64(), "{list}");
}

/// Scripts live in the site database: when a letter moves to a server with storage of
/// its own (`letter move --migrate`), its users' filters run there at once, and that
/// server's ManageSieve lists them.
#[test]
fn scripts_follow_their_letter_to_another_server() {
    let site = Site::isolated_with(|text| {
        text.replace(
            "name = \"mailbox2\"\n",
            "name = \"mailbox2\"\nstorage = \"mail2\"\n",
        )
        .replace("retry_first = 5", "retry_first = 1")
        .replace("retry_max = 600", "retry_max = 2")
    });
    site.add_user("alice", "alice-password", &[]);
    let script = site.dir.join("receipts.sieve");
    std::fs::write(
        &script,
        "require [\"fileinto\", \"mailbox\"];\nif header :contains \"Subject\" \"receipt\" { fileinto :create \"Receipts\"; }\n",
    )
    .expect("write the script file");
    let out = site.ok(
        &[
            "sieve",
            "put",
            "alice",
            "receipts",
            &script.to_string_lossy(),
            "--activate",
        ],
        None,
    );
    assert!(out.contains("active now"), "{out}");
    send(
        &site,
        "shop@example.test",
        "alice@example.test",
        "receipt one",
        "1",
        "",
    );
    wait_for(
        &site,
        "the first receipt on mailbox1",
        || read(&site, 11, "alice", "alice-password", "Receipts"),
        |l| l.contains("receipt one"),
    );

    let out = site.ok(&["letter", "move", "a", "mailbox2", "--migrate"], None);
    assert!(out.contains("now belongs to mailbox2"), "{out}");
    send(
        &site,
        "shop@example.test",
        "alice@example.test",
        "receipt two",
        "2",
        "",
    );
    let receipts = wait_for(
        &site,
        "both receipts on mailbox2",
        || read(&site, 12, "alice", "alice-password", "Receipts"),
        |l| l.contains("receipt two"),
    );
    assert!(receipts.contains("receipt one"), "{receipts}");
    assert!(site.dir.join("data/mail2/alice/.Receipts/cur").is_dir());

    let listed = python(
        r#"
import sys, managesieve
s = managesieve.MANAGESIEVE(sys.argv[1], 10190, timeout=10)
assert s.login("", "alice", "alice-password") == "OK"
print(s.listscripts())
"#,
        &[&site.addr(12)],
    );
    assert_eq!(listed.trim(), "('OK', [('receipts', True)])");
}
