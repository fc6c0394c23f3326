//! The mail sorters as clients and the world use them: submission with Python's
//! smtplib and swaks, MX delivery, the relay and sender rules, the durable queue
//! (a mailbox server down, a letter moved, a bounce, SIGKILL), `mailsite queue`, and
//! hostile input (long lines, oversized messages, bare LF, pipelining, crowds, slow
//! clients), against a running `mailsite serve`. Mail is read back over IMAP from
//! the mailbox server that owns the recipient's letter.

mod common;

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

#[test]
fn smtplib_and_swaks_submit_from_alice_to_nora_who_reads_it_over_imap() {
    let site = Site::isolated();
    site.add_user("alice", "alice-password", &[]);
    site.add_user("nora", "nora-password", &[]);

    let out = send(&site, "alice", "nora@example.test", "via smtplib");
    assert_eq!(out, "refused {}");

    // swaks with AUTH LOGIN after STARTTLS on 587, and AUTH PLAIN over implicit TLS on 465.
    let server587 = format!("{}:10587", site.addr(21));
    let transcript = swaks(&server587, "--tls", "LOGIN", "alice", "via swaks starttls");
    assert!(
        transcript.contains("250-STARTTLS") || transcript.contains("250 STARTTLS"),
        "{transcript}"
    );
    assert!(transcript.contains("235 2.7.0"), "{transcript}");
    let server465 = format!("{}:10465", site.addr(22));
    let transcript = swaks(
        &server465,
        "--tlsc",
        "PLAIN",
        "alice@example.test",
        "via swaks on 465",
    );
    assert!(transcript.contains("queued as"), "{transcript}");

    let all_three = |m: &[String]| m.len() >= 3;
    wait_for_mail(&site, "nora", Duration::from_secs(20), all_three);
    let messages = imap_messages(&site.addr(12), "nora", "nora-password");
    assert_eq!(messages.len(), 3, "{messages:?}");
    for subject in ["via smtplib", "via swaks starttls", "via swaks on 465"] {
        let m = messages
            .iter()
            .find(|m| m.contains(&format!("Subject: {subject}")))
            .unwrap_or_else(|| panic!("no message {subject:?} in {messages:?}"));
        assert!(m.contains("Delivered-To: nora@example.test"), "{m}");
        assert!(m.contains("Return-Path: <alice@example.test>"), "{m}");
        assert!(m.contains("(mailsite) with ESMTP"), "{m}");
    }
    let tls = messages
        .iter()
        .find(|m| m.contains("via swaks on 465"))
        .unwrap();
    assert!(tls.contains("with ESMTPSA"), "{tls}");
    assert!(tls.contains("by sorter2.example.test"), "{tls}");

    // Delivered messages leave the queue; the metrics count them.
    let drained = site.within(Duration::from_secs(10), || {
        site.ok(&["queue", "list"], None)
            .contains("0 messages queued")
    });
    assert!(drained.is_some(), "{}", site.ok(&["queue", "list"], None));
    let metrics = site.get("/metrics").body;
    assert!(
        metrics.contains("mailsite_sorter_accepted_total 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mailsite_sorter_deliveries_total{result=\"delivered\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mailsite_sorter_queue_messages 0"),
        "{metrics}"
    );
}

#[test]
fn mx_takes_mail_for_local_users_only_and_is_never_an_open_relay() {
    let site = Site::isolated();
    site.add_user("nora", "nora-password", &[]);
    site.add_user("alice", "alice-password", &[]);
    site.ok(&["user", "disable", "alice"], None);
    std::thread::sleep(Duration::from_millis(500));

    let mut mx = Smtp::connect(&format!("{}:10025", site.addr(21)));
    let ehlo = mx.ask("EHLO client.example.org\r\n");
    for extension in [
        "PIPELINING",
        "SIZE 26214400",
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
        "SMTPUTF8",
        "CHUNKING",
        "STARTTLS",
        "AUTH PLAIN LOGIN",
    ] {
        assert!(ehlo.contains(extension), "{extension}: {ehlo}");
    }
    assert!(
        mx.ask("MAIL FROM:<someone@example.org>\r\n")
            .starts_with("250 2.1.0")
    );
    let relay = mx.ask("RCPT TO:<friend@example.org>\r\n");
    assert!(relay.starts_with("554 5.7.1"), "{relay}");
    let unknown = mx.ask("RCPT TO:<ghost@example.test>\r\n");
    assert!(unknown.starts_with("550 5.1.1"), "{unknown}");
    let disabled = mx.ask("RCPT TO:<alice@example.test>\r\n");
    assert!(disabled.starts_with("550 5.2.1"), "{disabled}");
    assert!(
        mx.ask("RCPT TO:<Nora@Example.Test>\r\n")
            .starts_with("250 2.1.5")
    );
    assert!(mx.ask("DATA\r\n").starts_with("354"));
    let queued = mx.ask("From: someone@example.org\r\nSubject: from the world\r\n\r\nhi\r\n.\r\n");
    assert!(queued.starts_with("250 2.0.0 Ok: queued as "), "{queued}");
    // Only relaying to the site's own domains, whatever the order of commands.
    assert!(mx.ask("MAIL FROM:<>\r\n").starts_with("250"));
    assert!(
        mx.ask("RCPT TO:<x@elsewhere.example>\r\n")
            .starts_with("554 5.7.1")
    );
    assert!(mx.ask("DATA\r\n").starts_with("554 5.5.1"));
    assert!(mx.ask("QUIT\r\n").starts_with("221"));

    // Submission ports take nothing from clients that did not authenticate.
    let mut submission = Smtp::connect(&format!("{}:10587", site.addr(21)));
    submission.ask("EHLO client\r\n");
    let refused = submission.ask("MAIL FROM:<nora@example.test>\r\n");
    assert!(refused.starts_with("530 5.7.0"), "{refused}");

    let messages = wait_for_mail(&site, "nora", Duration::from_secs(20), |m| !m.is_empty());
    assert!(
        messages[0].contains("Subject: from the world"),
        "{}",
        messages[0]
    );
    assert!(
        messages[0].contains("Received: from client.example.org ("),
        "{}",
        messages[0]
    );
    assert!(messages[0].contains("with ESMTP id"), "{}", messages[0]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(site.inbox("nora").len(), 1);
}

#[test]
fn senders_must_be_the_authenticated_user() {
    let site = Site::isolated_with(|t| {
        let dead = format!("resolver = \"{}9:10054\"", net_of(&t));
        t.replace("resolver = \"system\"", &dead)
    });
    site.add_user("alice", "alice-password", &[]);
    site.add_user("nora", "nora-password", &[]);

    // Envelope sender of another user: refused at MAIL.
    let out = submit(
        &site,
        "alice",
        "alice-password",
        "nora@example.test",
        "nora@example.test",
        "forged envelope",
    );
    assert!(out.starts_with("error 553 5.7.1"), "{out}");
    // The right envelope but another From: refused after DATA.
    let forged_header = r#"
import smtplib, sys
with smtplib.SMTP(sys.argv[1], 10587, timeout=20) as s:
    s.login("alice", "alice-password")
    try:
        s.sendmail("alice@example.test", ["nora@example.test"], b"From: The Boss <boss@example.test>\r\nSubject: forged from\r\n\r\npay\r\n")
        print("accepted")
    except smtplib.SMTPDataError as e:
        print(e.smtp_code, e.smtp_error.decode())
"#;
    let out = python(forged_header, &[&site.addr(21)]);
    assert!(out.starts_with("550 5.7.1"), "{out}");
    assert!(out.contains("boss@example.test"), "{out}");
    // A wrong password.
    let out = submit(
        &site,
        "alice",
        "wrong-password",
        "alice@example.test",
        "nora@example.test",
        "x",
    );
    assert!(out.starts_with("error 535 5.7.8"), "{out}");
    // With AUTH, relaying is allowed: the remote recipient is queued for the relay
    // (whose DNS server does not answer here).
    let out = send(&site, "alice", "friend@example.org", "to a friend");
    assert_eq!(out, "refused {}");
    let list = site.ok(&["queue", "list"], None);
    assert!(list.contains("friend@example.org"), "{list}");
    assert!(list.contains("pending (remote)"), "{list}");

    std::thread::sleep(Duration::from_millis(500));
    assert!(
        site.inbox("nora").is_empty(),
        "a forged message was delivered"
    );
}

/// The sorters in their own process, on the site's data (stopped when dropped), with
/// the site's configuration edited by `edit`.
fn sorter_process(site: &Site, edit: impl FnOnce(String) -> String) -> Node {
    let ready = format!("{}:10025", site.addr(21));
    Node::start_with(site, "sorter", &["sorter"], &[], &ready, edit)
}

/// The queue id in a `queue list` line that mentions `needle`'s message.
fn queue_id(list: &str, subject_owner: &str) -> String {
    let mut id = None;
    for line in list.lines() {
        if !line.starts_with(' ') {
            id = line.split_whitespace().next();
        } else if line.contains(subject_owner) {
            return id.unwrap().to_string();
        }
    }
    panic!("{subject_owner} is not in the queue:\n{list}")
}

#[test]
fn mail_waits_while_the_mailbox_servers_are_down_and_arrives_when_they_are_back() {
    // Retries far apart: only `queue flush` makes the sorter try again soon.
    let mut site = Site::isolated_with(|t| {
        without_sorters(t)
            .replace("retry_max = 2", "retry_max = 3600")
            .replace("retry_first = 1", "retry_first = 3600")
    });
    site.add_user("alice", "alice-password", &[]);
    site.add_user("nora", "nora-password", &[]);
    site.add_user("nick", "nick-password", &[]);
    let _sorter = sorter_process(&site, |t| t);

    site.kill_hard();
    let out = send(&site, "alice", "nora@example.test", "while down");
    assert_eq!(out, "refused {}");
    let out = send(&site, "alice", "nick@example.test", "to be removed");
    assert_eq!(out, "refused {}");
    let deferred = site.within(Duration::from_secs(10), || {
        let list = site.ok(&["queue", "list"], None);
        list.matches("1 attempts").count() == 2
    });
    let list = site.ok(&["queue", "list"], None);
    assert!(deferred.is_some(), "{list}");
    let nora = list
        .lines()
        .find(|l| l.contains("nora@example.test"))
        .unwrap();
    assert!(nora.contains("pending, 1 attempts, next in"), "{list}");
    assert!(
        list.contains("last error: mailbox2: cannot connect"),
        "{list}"
    );
    assert!(
        list.contains("2 messages queued, 2 recipients waiting"),
        "{list}"
    );

    // An operator removes one; the other arrives once the servers are back and the
    // queue is flushed.
    let id = queue_id(&list, "nick@example.test");
    let removed = site.ok(&["queue", "remove", &id], None);
    assert!(removed.contains(&format!("removed {id}")), "{removed}");
    let again = site.run(&["queue", "remove", &id], None);
    assert!(!again.status.success());
    site.start_again();
    std::thread::sleep(Duration::from_secs(1));
    assert!(site.inbox("nora").is_empty(), "retried before its time");
    let flushed = site.ok(&["queue", "flush"], None);
    assert!(flushed.contains("sorter1: flush requested"), "{flushed}");
    let messages = wait_for_mail(&site, "nora", Duration::from_secs(15), |m| !m.is_empty());
    assert!(
        messages[0].contains("Subject: while down"),
        "{}",
        messages[0]
    );
    let read = imap_messages(&site.addr(12), "nora", "nora-password");
    assert_eq!(read.len(), 1);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        site.inbox("nick").is_empty(),
        "a removed message was delivered"
    );
    let list = site.ok(&["queue", "list"], None);
    assert!(list.contains("0 messages queued"), "{list}");
}

#[test]
fn queued_mail_follows_a_moved_letter_and_a_vanished_user_bounces() {
    let site = Site::isolated_with(without_sorters);
    for user in ["alice", "nora", "nick"] {
        site.add_user(user, &format!("{user}-password"), &[]);
    }
    // This sorter knows mailbox2 at an address where nothing listens: mailbox2 is
    // unreachable for it, as if that server had failed.
    let down = site.addr(13);
    let twelve = site.addr(12);
    let _sorter = sorter_process(&site, move |t| {
        t.replace(
            &format!("addresses = [\"{twelve}\"]"),
            &format!("addresses = [\"{down}\"]"),
        )
    });
    assert_eq!(
        send(&site, "alice", "nick@example.test", "for nick"),
        "refused {}"
    );
    assert_eq!(
        send(&site, "alice", "nora@example.test", "for nora"),
        "refused {}"
    );
    let waiting = site.within(Duration::from_secs(10), || {
        site.ok(&["queue", "list"], None)
            .matches("cannot connect")
            .count()
            == 2
    });
    assert!(waiting.is_some(), "{}", site.ok(&["queue", "list"], None));
    assert!(site.inbox("nick").is_empty());

    // nora leaves; then letter n moves to mailbox1 for maintenance of mailbox2.
    site.ok(&["user", "remove", "nora"], None);
    site.ok(&["server", "maintenance", "mailbox2"], None);

    // nick's message follows the letter to mailbox1.
    let messages = wait_for_mail(&site, "nick", Duration::from_secs(20), |m| !m.is_empty());
    assert!(messages[0].contains("Subject: for nick"), "{}", messages[0]);
    let read = imap_messages(&site.addr(11), "nick", "nick-password");
    assert_eq!(read.len(), 1, "{read:?}");

    // nora's is refused for good by mailbox1 (no such user): alice gets a bounce.
    let inbox = wait_for_mail(&site, "alice", Duration::from_secs(20), |m| !m.is_empty());
    let bounce = &inbox[0];
    assert!(
        bounce.contains("Subject: Undelivered Mail Returned to Sender"),
        "{bounce}"
    );
    assert!(bounce.contains("Return-Path: <>"), "{bounce}");
    assert!(bounce.contains("multipart/report"), "{bounce}");
    assert!(
        bounce.contains("Final-Recipient: rfc822; nora@example.test"),
        "{bounce}"
    );
    assert!(bounce.contains("Status: 5.1.1"), "{bounce}");
    assert!(
        bounce.contains("Subject: for nora"),
        "the original headers: {bounce}"
    );
    let read = imap_messages(&site.addr(11), "alice", "alice-password");
    assert_eq!(read.len(), 1);
    let list = site.ok(&["queue", "list"], None);
    assert!(list.contains("0 messages queued"), "{list}");
}

const STREAM: &str = r#"
import smtplib, sys, time
host, client, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
end = time.time() + seconds
n = 0
try:
    s = smtplib.SMTP(host, 10587, timeout=5)
    s.login("alice", "alice-password")
    while time.time() < end:
        subject = f"durable {client}-{n}"
        s.sendmail("alice@example.test", ["nora@example.test"], f"From: alice@example.test\r\nSubject: {subject}\r\n\r\nbody\r\n".encode())
        print(subject, flush=True)
        n += 1
except Exception:
    pass
"#;

#[test]
fn every_acknowledged_message_survives_sigkill_and_is_delivered() {
    let mut site = Site::isolated_with(quick);
    site.add_user("alice", "alice-password", &[]);
    site.add_user("nora", "nora-password", &[]);
    let mut acked: Vec<String> = Vec::new();
    for round in 0..3 {
        let clients: Vec<common::Lines> = (0..3)
            .map(|c| {
                common::Lines::spawn(Command::new("python3").args([
                    "-c",
                    STREAM,
                    &site.addr(21),
                    &format!("{round}.{c}"),
                    "4",
                ]))
            })
            .collect();
        // Kill while every client is well under way.
        common::wait_until(|| clients.iter().all(|c| c.count(|_| true) >= 3));
        site.kill_hard();
        for client in clients {
            acked.extend(client.finish().iter().map(|l| l.trim().to_string()));
        }
        site.start_again();
    }
    assert!(acked.len() >= 9, "too few messages acknowledged: {acked:?}");
    let messages = wait_for_mail(&site, "nora", Duration::from_secs(60), |m| {
        acked
            .iter()
            .all(|s| m.iter().any(|m| m.contains(&format!("Subject: {s}\r\n"))))
    });
    let duplicates = messages.len() - acked.len();
    eprintln!(
        "{} messages acknowledged, {} stored ({duplicates} duplicates)",
        acked.len(),
        messages.len()
    );
    let drained = site.within(Duration::from_secs(20), || {
        site.ok(&["queue", "list"], None)
            .contains("0 messages queued")
    });
    assert!(drained.is_some(), "{}", site.ok(&["queue", "list"], None));
}

#[test]
fn long_lines_oversized_messages_and_bare_line_feeds() {
    let site = Site::isolated_with(|t| {
        t.replace("max_message_size = 26214400", "max_message_size = 3000000")
    });
    site.add_user("nora", "nora-password", &[]);
    let mut mx = Smtp::connect(&format!("{}:10025", site.addr(21)));
    assert!(mx.ask("EHLO client\r\n").contains("SIZE 3000000"));

    // A 1 MB command line is refused, and the session goes on.
    let reply = mx.ask(&format!("NOOP {}\r\n", "x".repeat(1 << 20)));
    assert!(reply.starts_with("500 5.5.2"), "{reply}");
    assert!(mx.ask("NOOP\r\n").starts_with("250"));
    // A line of 1001 octets is too long; one of 1000 is fine.
    let reply = mx.ask(&format!("NOOP {}\r\n", "y".repeat(1001 - 7)));
    assert!(reply.starts_with("500 5.5.2"), "{reply}");
    assert!(
        mx.ask(&format!("NOOP {}\r\n", "y".repeat(1000 - 7)))
            .starts_with("250")
    );

    // A message with a 1 MB line is taken whole.
    let long_line = "z".repeat(1 << 20);
    assert!(mx.ask("MAIL FROM:<a@example.org>\r\n").starts_with("250"));
    assert!(mx.ask("RCPT TO:<nora@example.test>\r\n").starts_with("250"));
    assert!(mx.ask("DATA\r\n").starts_with("354"));
    let reply = mx.ask(&format!("Subject: long line\r\n\r\n{long_line}\r\n.\r\n"));
    assert!(reply.starts_with("250 2.0.0"), "{reply}");

    // Oversized: announced with SIZE, sent with DATA, or with BDAT.
    let reply = mx.ask("MAIL FROM:<a@example.org> SIZE=3000001\r\n");
    assert!(reply.starts_with("552 5.3.4"), "{reply}");
    assert!(mx.ask("MAIL FROM:<a@example.org>\r\n").starts_with("250"));
    assert!(mx.ask("RCPT TO:<nora@example.test>\r\n").starts_with("250"));
    assert!(mx.ask("DATA\r\n").starts_with("354"));
    let chunk = format!("{}\r\n", "w".repeat(998));
    for _ in 0..3100 {
        mx.send(&chunk);
    }
    let reply = mx.ask(".\r\n");
    assert!(reply.starts_with("552 5.3.4"), "{reply}");
    assert!(mx.ask("NOOP\r\n").starts_with("250"), "the session goes on");

    // Bare LF: normalised to CRLF, and "\n.\n" does not end the message, so the
    // commands after it are message text, not a second (smuggled) message.
    assert!(mx.ask("MAIL FROM:<a@example.org>\r\n").starts_with("250"));
    assert!(mx.ask("RCPT TO:<nora@example.test>\r\n").starts_with("250"));
    assert!(mx.ask("DATA\r\n").starts_with("354"));
    mx.send("Subject: bare\nX-Test: lf\n\nfirst\n.\nMAIL FROM:<evil@example.org>\nRCPT TO:<nora@example.test>\nDATA\nSubject: smuggled\n\n");
    let reply = mx.ask("last\r\n.\r\n");
    assert!(reply.starts_with("250 2.0.0"), "{reply}");

    // BDAT: chunks, and one over the limit closes the connection.
    assert!(mx.ask("MAIL FROM:<a@example.org>\r\n").starts_with("250"));
    assert!(mx.ask("RCPT TO:<nora@example.test>\r\n").starts_with("250"));
    let first = "Subject: chunked\r\n\r\n";
    assert!(
        mx.ask(&format!("BDAT {}\r\n{first}", first.len()))
            .starts_with("250 2.0.0")
    );
    let last = "in chunks\r\n";
    let reply = mx.ask(&format!("BDAT {} LAST\r\n{last}", last.len()));
    assert!(reply.starts_with("250 2.0.0 Ok: queued"), "{reply}");
    assert!(mx.ask("MAIL FROM:<a@example.org>\r\n").starts_with("250"));
    assert!(mx.ask("RCPT TO:<nora@example.test>\r\n").starts_with("250"));
    let reply = mx.ask("BDAT 3000001 LAST\r\n");
    assert!(reply.starts_with("552 5.3.4"), "{reply}");
    assert!(mx.closed());

    let messages = wait_for_mail(&site, "nora", Duration::from_secs(20), |m| m.len() >= 3);
    std::thread::sleep(Duration::from_millis(500));
    let messages = if messages.len() == 3 {
        messages
    } else {
        site.inbox("nora")
    };
    assert_eq!(messages.len(), 3, "{messages:?}");
    let long = messages
        .iter()
        .find(|m| m.contains("Subject: long line"))
        .unwrap();
    assert!(long.contains(&format!("\r\n{long_line}\r\n")));
    let bare = messages
        .iter()
        .find(|m| m.contains("Subject: bare"))
        .unwrap();
    assert!(
        bare.ends_with("Subject: bare\r\nX-Test: lf\r\n\r\nfirst\r\n.\r\nMAIL FROM:<evil@example.org>\r\nRCPT TO:<nora@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nlast\r\n"),
        "{bare:?}"
    );
    assert!(
        !bare.contains("\r\r") && !bare.replace("\r\n", "").contains('\n'),
        "{bare:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.ends_with("Subject: chunked\r\n\r\nin chunks\r\n"))
    );
    assert!(!site.log().contains("panicked"));
}

const STARTTLS_INJECTION: &str = r#"
import socket, ssl, sys
host, cafile = sys.argv[1], sys.argv[2]
s = socket.create_connection((host, 10587), timeout=10)
f = s.makefile("rb")
def reply():
    out = b""
    while True:
        line = f.readline()
        out += line
        if len(line) < 4 or line[3:4] != b"-":
            return out.decode()
reply()
s.sendall(b"EHLO x\r\n"); reply()
# A command injected after STARTTLS, in the same packet: it must be dropped.
s.sendall(b"STARTTLS\r\nMAIL FROM:<alice@example.test>\r\n")
print(reply().split()[0])
ctx = ssl.create_default_context(cafile=cafile)
t = ctx.wrap_socket(s, server_hostname="outbox.example.test")
f = t.makefile("rb")
t.sendall(b"RCPT TO:<nora@example.test>\r\n")
print(reply().strip())
t.sendall(b"EHLO x\r\n")
print("STARTTLS" in reply())
"#;

#[test]
fn pipelining_abuse_command_injection_and_error_limits() {
    let site = Site::isolated_with(|t| t.replace("max_recipients = 100", "max_recipients = 3"));
    let users = ["nora", "nick", "nina", "nell"];
    for user in users {
        site.add_user(user, "a-password", &[]);
    }
    let addr = format!("{}:10025", site.addr(21));

    // A whole session in one write: 150 recipients naming 4 users (3 allowed), data,
    // then more.
    let mut mx = Smtp::connect(&addr);
    let mut batch = String::from("EHLO client\r\nMAIL FROM:<a@example.org>\r\n");
    for i in 0..150 {
        batch.push_str(&format!("RCPT TO:<{}@example.test>\r\n", users[i % 4]));
    }
    batch.push_str("DATA\r\n");
    mx.send(&batch);
    assert!(mx.reply().starts_with("250-"));
    assert!(mx.reply().starts_with("250 2.1.0"));
    let mut accepted = 0;
    let mut too_many = 0;
    for _ in 0..150 {
        let reply = mx.reply();
        if reply.starts_with("250 2.1.5") {
            accepted += 1;
        } else if reply.starts_with("452 4.5.3") {
            too_many += 1;
        }
    }
    // A user named again is the same recipient; the fourth is one too many.
    assert_eq!((accepted, too_many), (113, 37));
    assert!(mx.reply().starts_with("354"));
    mx.send("Subject: pipelined\r\n\r\nbody\r\n.\r\nRSET\r\nNOOP\r\n");
    assert!(mx.reply().starts_with("250 2.0.0 Ok: queued"));
    assert!(mx.reply().starts_with("250 2.0.0 Reset"));
    assert!(mx.reply().starts_with("250 2.0.0 Ok"));

    // Commands that never lead to a message: cut off.
    let mut noise = String::new();
    for _ in 0..600 {
        noise.push_str("NOOP\r\n");
    }
    mx.send(&noise);
    let mut last = String::new();
    for _ in 0..600 {
        let reply = mx.reply();
        if reply.is_empty() {
            break;
        }
        last = reply;
    }
    assert!(last.starts_with("421 4.7.0"), "{last}");
    assert!(mx.closed());

    // Bad commands and bad sequences: 500/501/503, then cut off after 20.
    let mut bad = Smtp::connect(&addr);
    for (command, expect) in [
        ("MAIL FROM:<a@example.org>\r\n", "503 5.5.1"),
        ("EHLO\r\n", "501 5.5.4"),
        ("HELO client\r\n", "250 "),
        ("RCPT TO:<nora@example.test>\r\n", "503 5.5.1"),
        ("DATA\r\n", "503 5.5.1"),
        ("MAIL FROM:<not an address\r\n", "501"),
        ("FROB\r\n", "500 5.5.1"),
        ("AUTH CRAM-MD5\r\n", "504 5.5.4"),
        ("STARTTLS\r\n", "220"),
    ] {
        let reply = bad.ask(command);
        assert!(reply.starts_with(expect), "{command:?} -> {reply}");
        if command.starts_with("STARTTLS") {
            break;
        }
    }
    let mut errors = Smtp::connect(&addr);
    let mut last = String::new();
    for _ in 0..25 {
        last = errors.ask("FROB\r\n");
        if last.contains("421") {
            break;
        }
    }
    assert!(last.contains("421 4.7.0 Too many errors"), "{last}");

    // STARTTLS command injection.
    let ca = site.dir.join("data/tls/ca.pem");
    let out = python(STARTTLS_INJECTION, &[&site.addr(21), ca.to_str().unwrap()]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "220");
    assert!(
        lines[1].starts_with("503 5.5.1"),
        "the injected MAIL was taken: {out}"
    );
    assert_eq!(
        lines[2], "False",
        "STARTTLS offered again inside TLS: {out}"
    );

    for user in ["nora", "nick", "nina"] {
        let messages = wait_for_mail(&site, user, Duration::from_secs(20), |m| !m.is_empty());
        assert!(messages[0].contains("Subject: pipelined"));
    }
    assert!(site.inbox("nell").is_empty());
    assert!(!site.log().contains("panicked"));
}

const CROWD: &str = r#"
import socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
# 20 connections from each of 50 sources: one source may open only [limits] per_source.
net = host.split(".")[1]
conns = [socket.create_connection((host, port), timeout=30, source_address=(f"127.{net}.{100 + i // 20}.{1 + i % 20}", 0)) for i in range(n)]
greeted = sum(1 for c in conns if c.recv(512).startswith(b"220 "))
for c in conns:
    c.sendall(b"EHLO crowd\r\nQUIT\r\n")
answered = 0
for c in conns:
    data = b""
    while b"221 " not in data:
        more = c.recv(4096)
        if not more:
            break
        data += more
    answered += b"250 " in data and b"221 " in data
    c.close()
print(greeted, answered)
"#;

#[test]
fn a_thousand_concurrent_connections_are_served() {
    let site = Site::isolated();
    for port in ["10025", "10587"] {
        let out = python(CROWD, &[&site.addr(21), port, "1000"]);
        assert_eq!(out.trim(), "1000 1000", "port {port}");
    }
    let out = python(CROWD, &[&site.addr(21), "10025", "1"]);
    assert_eq!(out.trim(), "1 1");
}

const SLOW: &str = r#"
import socket, sys, time
host, mode = sys.argv[1], sys.argv[2]
s = socket.create_connection((host, 10025), timeout=30)
start = time.time()
data = s.recv(512)
if mode == "trickle":
    # One byte every half second, never finishing a line.
    try:
        while True:
            s.sendall(b"N")
            time.sleep(0.5)
            if time.time() - start > 20:
                break
    except OSError:
        pass
elif mode == "data":
    s.sendall(b"EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<nora@example.test>\r\nDATA\r\n")
    s.sendall(b"Subject: slow\r\n\r\nand then nothing")
rest = b""
try:
    while True:
        more = s.recv(4096)
        if not more:
            break
        rest += more
except OSError:
    pass
print(round(time.time() - start), b"421 4.4.2" in rest)
"#;

#[test]
fn slow_and_silent_clients_are_disconnected() {
    let site = Site::isolated_with(|t| t.replace("smtp = 300", "smtp = 2"));
    site.add_user("nora", "nora-password", &[]);
    for mode in ["silent", "trickle", "data"] {
        let out = python(SLOW, &[&site.addr(21), mode]);
        let mut words = out.split_whitespace();
        let seconds: u64 = words.next().unwrap().parse().unwrap();
        let told = words.next().unwrap();
        assert!(
            (2..=6).contains(&seconds),
            "{mode}: closed after {seconds} s"
        );
        if mode != "trickle" {
            assert_eq!(told, "True", "{mode}: {out}");
        }
    }
    // Nothing half-received was delivered.
    std::thread::sleep(Duration::from_millis(500));
    assert!(site.inbox("nora").is_empty());
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

/// A child process stopped when dropped.
struct Helper(Child);

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a Python helper and waits for its "ready" line.
fn helper(program: &str, args: &[&str]) -> Helper {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(program)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready", "a helper did not start: {args:?}");
    Helper(child)
}

/// An authoritative DNS server for made-up remote domains: answers A and MX queries
/// for the names given as "name TYPE value" arguments, NXDOMAIN for other names.
const DNS: &str = r#"
import socket, struct, sys
ip, port = sys.argv[1], int(sys.argv[2])
zone = {}
for entry in sys.argv[3:]:
    name, rtype, value = entry.split(" ", 2)
    zone.setdefault(name.lower(), []).append((rtype, value))
def encode(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((ip, port))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(4096)
    try:
        qid, flags = struct.unpack(">HH", data[:4])
        i, labels = 12, []
        while data[i] != 0:
            n = data[i]
            labels.append(data[i + 1:i + 1 + n].decode().lower())
            i += n + 1
        qtype = struct.unpack(">H", data[i + 1:i + 3])[0]
        question = data[12:i + 5]
        name = ".".join(labels)
        answers = []
        for rtype, value in zone.get(name, []):
            if rtype == "A" and qtype == 1:
                answers.append(struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton(value))
            elif rtype == "MX" and qtype == 15:
                preference, host = value.split()
                rdata = struct.pack(">H", int(preference)) + encode(host)
                answers.append(struct.pack(">HHIH", 15, 1, 60, len(rdata)) + rdata)
        rcode = 0 if name in zone else 3
        header = struct.pack(">HHHHHH", qid, 0x8480 | (flags & 0x0100) | rcode, 1, len(answers), 0, 0)
        s.sendto(header + question + b"".join(b"\xc0\x0c" + a for a in answers), peer)
    except Exception:
        pass
"#;

/// A remote domain's mail server: SMTP without PIPELINING, with STARTTLS; refuses
/// nobody@..., saves each message in a folder with how it came.
const SINK: &str = r#"
import os, socket, ssl, sys, threading
ip, port, out, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((ip, port))
srv.listen(50)
lock, count = threading.Lock(), [0]
def serve(conn):
    tls, sender, rcpts = False, "", []
    f = conn.makefile("rb")
    def say(text):
        conn.sendall(text.encode())
    say("220 sink ESMTP\r\n")
    while True:
        line = f.readline()
        if not line:
            return
        command = line.decode("utf-8", "replace").strip()
        verb = command[:4].upper()
        if verb == "EHLO":
            say("250-sink\r\n" + ("" if tls else "250-STARTTLS\r\n") + "250-8BITMIME\r\n250 SIZE 10000000\r\n")
        elif command.upper() == "STARTTLS":
            say("220 go ahead\r\n")
            conn = ctx.wrap_socket(conn, server_side=True)
            f, tls = conn.makefile("rb"), True
        elif verb == "MAIL":
            sender, rcpts = command, []
            say("250 ok\r\n")
        elif verb == "RCPT":
            if "nobody@" in command.lower():
                say("550 5.1.1 <nobody>: no such user here\r\n")
            else:
                rcpts.append(command[8:])
                say("250 ok\r\n")
        elif verb == "DATA":
            say("354 go ahead\r\n")
            body = b""
            while True:
                l = f.readline()
                if l in (b".\r\n", b""):
                    break
                body += l[1:] if l.startswith(b"..") else l
            with lock:
                count[0] += 1
                name = os.path.join(out, str(count[0]))
            with open(name + ".tmp", "wb") as o:
                o.write(f"X-Sink-TLS: {tls}\r\nX-Sink-Mail: {sender}\r\nX-Sink-Rcpt: {' '.join(rcpts)}\r\n".encode() + body)
            os.rename(name + ".tmp", name + ".eml")
            say("250 2.0.0 saved\r\n")
        elif verb == "QUIT":
            say("221 bye\r\n")
            conn.close()
            return
        else:
            say("250 ok\r\n" if verb in ("RSET", "NOOP") else "500 5.5.1 what\r\n")
print("ready", flush=True)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// Starts the sink on `127.N.0.99:10026`; returns it and its folder.
fn sink(site: &Site) -> (Helper, PathBuf) {
    let folder = site.dir.join("sink");
    std::fs::create_dir_all(&folder).unwrap();
    let tls = site.dir.join("data/tls");
    let sink = helper(
        SINK,
        &[
            &site.addr(99),
            "10026",
            folder.to_str().unwrap(),
            tls.join("server.pem").to_str().unwrap(),
            tls.join("server-key.pem").to_str().unwrap(),
        ],
    );
    (sink, folder)
}

/// The messages the sink saved.
fn sunk(folder: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(folder)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn remote_mail_goes_to_the_domains_mx_over_starttls_and_failures_bounce() {
    let site = Site::isolated_with(|t| {
        let resolver = format!("resolver = \"{}53:10054\"", net_of(&t));
        quick(t)
            .replace("resolver = \"system\"", &resolver)
            .replace("port = 25", "port = 10026")
            .replace("lifetime = 432000", "lifetime = 6")
    });
    site.add_user("alice", "alice-password", &[]);
    site.add_user("nora", "nora-password", &[]);
    let (mx, a_only, dead) = (site.addr(99), site.addr(99), site.addr(98));
    let _dns = helper(
        DNS,
        &[
            &site.addr(53),
            "10054",
            "remote.example MX 10 mx.remote.example",
            &format!("mx.remote.example A {mx}"),
            &format!("a-only.example A {a_only}"),
            "nullmx.example MX 0 .",
            "dead.example MX 10 mx.dead.example",
            &format!("mx.dead.example A {dead}"),
        ],
    );
    let (_sink, folder) = sink(&site);

    // One message to a local and a remote user; then to a domain without MX records.
    assert_eq!(
        send(
            &site,
            "alice",
            "nora@example.test,bob@remote.example",
            "local and remote"
        ),
        "refused {}"
    );
    assert_eq!(
        send(&site, "alice", "carol@a-only.example", "by A record"),
        "refused {}"
    );
    // Failures: refused by the remote server, no such domain, a null MX, and a server
    // that never answers (until the queue lifetime, 6 s here, runs out).
    for rcpt in [
        "nobody@remote.example",
        "x@nxdomain.example",
        "y@nullmx.example",
        "z@dead.example",
    ] {
        assert_eq!(
            send(&site, "alice", rcpt, &format!("to {rcpt}")),
            "refused {}"
        );
    }

    let start = Instant::now();
    while sunk(&folder).len() < 2 && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let remote = sunk(&folder);
    assert_eq!(remote.len(), 2, "{remote:?}\n{}", site.log());
    let bob = remote
        .iter()
        .find(|m| m.contains("Subject: local and remote"))
        .unwrap();
    assert!(
        bob.starts_with("X-Sink-TLS: True\r\n"),
        "STARTTLS was not used: {bob}"
    );
    assert!(
        bob.contains("X-Sink-Rcpt: <bob@remote.example>\r\n"),
        "{bob}"
    );
    assert!(
        bob.contains("X-Sink-Mail: MAIL FROM:<alice@example.test>"),
        "{bob}"
    );
    assert!(bob.contains("with ESMTPA id"), "{bob}");
    let carol = remote
        .iter()
        .find(|m| m.contains("Subject: by A record"))
        .unwrap();
    assert!(
        carol.contains("X-Sink-Rcpt: <carol@a-only.example>"),
        "{carol}"
    );
    let nora = imap_messages(&site.addr(12), "nora", "nora-password");
    assert!(
        nora.iter().any(|m| m.contains("Subject: local and remote")),
        "{nora:?}"
    );

    let bounces = wait_for_mail(&site, "alice", Duration::from_secs(30), |m| m.len() >= 4);
    let find = |rcpt: &str| {
        bounces
            .iter()
            .find(|b| b.contains(&format!("Final-Recipient: rfc822; {rcpt}")))
            .unwrap_or_else(|| panic!("no bounce for {rcpt}: {bounces:?}"))
    };
    let refused = find("nobody@remote.example");
    assert!(refused.contains("Status: 5.1.1"), "{refused}");
    assert!(
        refused.contains("Remote-MTA: dns; mx.remote.example"),
        "{refused}"
    );
    assert!(
        refused.contains("Diagnostic-Code: smtp; 550 5.1.1 <nobody>"),
        "{refused}"
    );
    assert!(find("x@nxdomain.example").contains("Status: 5.1.2"));
    assert!(find("y@nullmx.example").contains("Status: 5.1.10"));
    let expired = find("z@dead.example");
    assert!(expired.contains("Status: 4.4.7"), "{expired}");
    assert!(expired.contains("within 6 seconds"), "{expired}");
    assert!(
        expired.contains("cannot connect to mx.dead.example"),
        "{expired}"
    );
    let drained = site.within(Duration::from_secs(10), || {
        site.ok(&["queue", "list"], None)
            .contains("0 messages queued")
    });
    assert!(drained.is_some(), "{}", site.ok(&["queue", "list"], None));
}

#[test]
fn a_smarthost_takes_all_remote_mail() {
    let site = Site::isolated_with(|t| {
        let net = net_of(&t);
        quick(t)
            .replace(
                "resolver = \"system\"",
                &format!("resolver = \"{net}9:10054\""),
            )
            .replace(
                "# smarthost = ",
                &format!("smarthost = \"{net}99:10026\" # "),
            )
    });
    site.add_user("alice", "alice-password", &[]);
    let (_sink, folder) = sink(&site);
    assert_eq!(
        send(&site, "alice", "dave@anywhere.example", "via the smarthost"),
        "refused {}"
    );
    let start = Instant::now();
    while sunk(&folder).is_empty() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let messages = sunk(&folder);
    assert_eq!(messages.len(), 1, "{}", site.log());
    assert!(
        messages[0].contains("X-Sink-Rcpt: <dave@anywhere.example>"),
        "{}",
        messages[0]
    );
}
