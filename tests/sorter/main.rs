//! The mail sorters as clients and the world use them: submission with Python's
//! smtplib and swaks, MX delivery, the relay and sender rules, the durable queue
//! (a mailbox server down, a letter moved, a bounce, SIGKILL), `mailsite queue`, TLS
//! policies for other domains (DANE, MTA-STS, `mailsite tls-report`), and
//! hostile input (long lines, oversized messages, bare LF, pipelining, crowds, slow
//! clients), against a running `mailsite serve`. Mail is read back over IMAP from
//! the mailbox server that owns the recipient's letter.

#[path = "../common/mod.rs"]
mod common;
mod hostile;
mod queue;
mod relay;
mod submission;
mod tls_policy;
mod tls_policy_failures;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Node, Site, python, run_command};

/// Fast retries and short timeouts, so that the tests take seconds.
fn quick(text: String) -> String {
    text.replace("retry_first = 5", "retry_first = 1")
        .replace("retry_max = 600", "retry_max = 2")
}

/// Every role but the sorters: the tests then run a sorter in its own process.
fn without_sorters(text: String) -> String {
    quick(text).replace(
        r#"roles = ["autoconfig", "dns", "mailbox", "sorter"]"#,
        r#"roles = ["autoconfig", "dns", "mailbox"]"#,
    )
}

type Smtp = common::Replies;

/// Waits until `check` holds on a user's stored messages.
fn wait_for_mail(
    site: &Site,
    user: &str,
    limit: Duration,
    check: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let start = Instant::now();
    loop {
        let messages = site.inbox(user);
        if check(&messages) {
            return messages;
        }
        if start.elapsed() > limit {
            panic!(
                "{user}'s mail did not arrive in {limit:?}; they have {} messages:\n{}\n--- log ---\n{}",
                messages.len(),
                messages.join("\n-----\n"),
                site.log()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

const SUBMIT: &str = r#"
import smtplib, sys
host, port, user, password, sender, rcpt, subject = sys.argv[1:8]
message = f"From: {sender}\r\nTo: {rcpt}\r\nSubject: {subject}\r\n\r\nsent with smtplib\r\n".encode()
try:
    with smtplib.SMTP(host, int(port), timeout=20) as s:
        s.login(user, password)
        print("refused", s.sendmail(sender, rcpt.split(","), message))
except smtplib.SMTPResponseException as e:
    print("error", e.smtp_code, e.smtp_error.decode())
except smtplib.SMTPRecipientsRefused as e:
    print("recipients refused", {k: (v[0], v[1].decode()) for k, v in e.recipients.items()})
"#;

/// Submits a message with smtplib (AUTH PLAIN over loopback); returns what it printed.
fn submit(
    site: &Site,
    user: &str,
    password: &str,
    sender: &str,
    rcpt: &str,
    subject: &str,
) -> String {
    python(
        SUBMIT,
        &[
            &site.addr(21),
            "10587",
            user,
            password,
            sender,
            rcpt,
            subject,
        ],
    )
    .trim()
    .to_string()
}

/// Submits a message from `user` (password `<user>-password`, sender and From
/// `<user>@example.test`).
fn send(site: &Site, user: &str, rcpt: &str, subject: &str) -> String {
    let sender = format!("{user}@example.test");
    submit(
        site,
        user,
        &format!("{user}-password"),
        &sender,
        rcpt,
        subject,
    )
}

const IMAP_READ: &str = r#"
import imaplib, sys, json
host, user, password = sys.argv[1:4]
m = imaplib.IMAP4(host, 10143)
m.login(user, password)
m.select("INBOX")
typ, data = m.search(None, "ALL")
out = []
for n in data[0].split():
    typ, parts = m.fetch(n, "(RFC822)")
    out.append(parts[0][1].decode("utf-8", "replace"))
m.logout()
print(json.dumps(out))
"#;

/// Every message in a user's INBOX, read over IMAP from the server at `host`.
fn imap_messages(host: &str, user: &str, password: &str) -> Vec<String> {
    serde_json::from_str(&python(IMAP_READ, &[host, user, password])).unwrap()
}

/// Sends alice's message to nora with swaks: `tls` is `--tls` (STARTTLS) or `--tlsc`
/// (implicit TLS), `login` the name alice logs in with. Returns the transcript.
fn swaks(server: &str, tls: &str, mechanism: &str, login: &str, subject: &str) -> String {
    let header = format!("Subject: {subject}");
    #[rustfmt::skip]
    let args = [
        "--server", server, tls, "--auth", mechanism, "--auth-user", login,
        "--auth-password", "alice-password", "--from", "alice@example.test",
        "--to", "nora@example.test", "--header", &header, "--body", "sent with swaks",
    ];
    let out = run_command(Command::new("swaks").args(args), None);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "swaks {args:?} failed:\n{text}");
    text
}

/// The `127.N.0.` prefix of an isolated site's configuration text.
fn net_of(text: &str) -> String {
    let start = text
        .find("listen = \"127.")
        .expect("an HTTP listen address")
        + 10;
    let address = &text[start..];
    let end = address.find(".0.").expect("a 127.N.0.x address") + 3;
    address[..end].to_string()
}
