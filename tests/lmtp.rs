//! LMTP intake as sorters use it: Python's smtplib.LMTP and raw pipelined sessions
//! against the mailbox servers of a running `mailsite serve`.

mod common;

use common::{Site, python};

/// LMTP replies are framed as SMTP's.
type Lmtp = common::Replies;

const SMTPLIB_DELIVER: &str = r#"
import smtplib, sys
host, port, rcpt = sys.argv[1], int(sys.argv[2]), sys.argv[3]
# From sorter1's address: LMTP is for the sorters only.
with smtplib.LMTP(host, port, source_address=(host.rsplit(".", 1)[0] + ".21", 0)) as s:
    refused = s.sendmail("sender@example.org", [rcpt], b"Subject: hello\r\n\r\nfrom smtplib\r\n")
    print("refused", refused)
"#;

#[test]
fn smtplib_delivers_to_the_owning_mailbox_server() {
    let site = Site::isolated();
    site.add_user("alice", "alice-password", &[]);
    site.add_user("nora", "nora-password", &[]);
    let out = python(
        SMTPLIB_DELIVER,
        &[&site.addr(11), "10024", "alice@example.test"],
    );
    assert_eq!(out.trim(), "refused {}");
    let out = python(
        SMTPLIB_DELIVER,
        &[&site.addr(12), "10024", "nora@example.test"],
    );
    assert_eq!(out.trim(), "refused {}");

    let alice = site.inbox("alice");
    assert_eq!(alice.len(), 1);
    assert!(
        alice[0].starts_with(
            "Return-Path: <sender@example.org>\r\nDelivered-To: alice@example.test\r\n"
        ),
        "{}",
        alice[0]
    );
    assert!(
        alice[0].ends_with("Subject: hello\r\n\r\nfrom smtplib\r\n"),
        "{}",
        alice[0]
    );
    assert_eq!(site.inbox("nora").len(), 1);
    let list = site.ok(&["mailbox", "list", "alice"], None);
    assert!(
        list.lines()
            .any(|l| l.starts_with("INBOX") && l.split_whitespace().nth(1) == Some("1")),
        "{list}"
    );
}

#[test]
fn one_reply_per_recipient_with_pipelining() {
    let site = Site::isolated();
    for user in ["alice", "amy", "nora"] {
        site.add_user(user, "a-password", &[]);
    }
    let mut lmtp = Lmtp::connect_from(&format!("{}:10024", site.addr(11)), &site.addr(21));
    // Everything up to DATA in one write, as PIPELINING allows.
    lmtp.send(
        "LHLO sorter1.example.test\r\nMAIL FROM:<s@example.org>\r\nRCPT TO:<alice@example.test>\r\n\
         RCPT TO:<ghost@example.test>\r\nRCPT TO:<nora@example.test>\r\nRCPT TO:<Amy@Example.Test>\r\n\
         RCPT TO:<x@example.org>\r\nDATA\r\n",
    );
    let lhlo = lmtp.reply();
    assert!(
        lhlo.contains("PIPELINING") && lhlo.contains("ENHANCEDSTATUSCODES"),
        "{lhlo}"
    );
    assert!(lmtp.reply().starts_with("250 2.1.0"));
    assert!(lmtp.reply().starts_with("250 2.1.5"));
    assert!(lmtp.reply().starts_with("550 5.1.1 <ghost@example.test>"));
    let nora = lmtp.reply();
    assert!(
        nora.starts_with("451 4.3.0") && nora.contains("served by mailbox2"),
        "{nora}"
    );
    assert!(lmtp.reply().starts_with("250 2.1.5"));
    let foreign = lmtp.reply();
    assert!(
        foreign.starts_with("550 5.1.1") && foreign.contains("not a mail domain"),
        "{foreign}"
    );
    assert!(lmtp.reply().starts_with("354"));
    lmtp.send("Subject: two\r\n\r\n..a dot-stuffed line\r\n.\r\n");
    let first = lmtp.reply();
    let second = lmtp.reply();
    assert!(
        first.starts_with("250 2.0.0 <alice@example.test> delivered"),
        "{first}"
    );
    assert!(
        second.starts_with("250 2.0.0 <amy@example.test> delivered"),
        "{second}"
    );
    lmtp.send("QUIT\r\n");
    assert!(lmtp.reply().starts_with("221"));
    let amy = site.inbox("amy");
    assert!(
        amy[0].ends_with("Subject: two\r\n\r\n.a dot-stuffed line\r\n"),
        "{}",
        amy[0]
    );
    assert!(site.inbox("nora").is_empty());
}

#[test]
fn bad_sequences_and_oversized_input_get_protocol_errors() {
    let site = Site::isolated();
    site.add_user("alice", "a-password", &[]);
    let mut lmtp = Lmtp::connect_from(&format!("{}:10024", site.addr(11)), &site.addr(21));
    for (command, expect) in [
        ("EHLO x\r\n", "500 5.5.1"),
        ("MAIL FROM:<a@example.org>\r\n", "503 5.5.1"),
        ("LHLO x\r\n", "250-"),
        ("RCPT TO:<alice@example.test>\r\n", "503 5.5.1"),
        ("DATA\r\n", "503 5.5.1"),
        (
            "MAIL FROM:<a@example.org> SIZE=999999999999\r\n",
            "552 5.3.4",
        ),
        ("MAIL FROM:<a@example.org>\r\n", "250 2.1.0"),
        ("DATA\r\n", "503 5.5.1 No valid recipients"),
        ("FROB\r\n", "500 5.5.1"),
        ("RSET\r\n", "250 2.0.0"),
        ("NOOP\r\n", "250 2.0.0"),
    ] {
        lmtp.send(command);
        let reply = lmtp.reply();
        assert!(reply.starts_with(expect), "{command:?} -> {reply}");
    }
    // A 10,000-byte line is refused, and the session goes on.
    lmtp.send(&format!("NOOP {}\r\n", "x".repeat(10_000)));
    assert!(lmtp.reply().starts_with("500 5.5.6"));
    lmtp.send("NOOP\r\n");
    let mut reply = lmtp.reply();
    while !reply.starts_with("250") {
        reply = lmtp.reply();
    }

    // A message over the size limit is refused for each recipient; nothing is stored.
    lmtp.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n");
    assert!(lmtp.reply().starts_with("250"));
    assert!(lmtp.reply().starts_with("250"));
    assert!(lmtp.reply().starts_with("354"));
    let chunk = format!("{}\r\n", "y".repeat(1022));
    for _ in 0..(51 * 1024) {
        lmtp.send(&chunk);
    }
    lmtp.send(".\r\n");
    let reply = lmtp.reply();
    assert!(
        reply.starts_with("552 5.3.4 <alice@example.test>"),
        "{reply}"
    );
    lmtp.send("NOOP\r\n");
    assert!(lmtp.reply().starts_with("250"));
    assert!(site.inbox("alice").is_empty());
    assert!(!site.log().contains("panicked"));
}

const STREAM: &str = r#"
import smtplib, sys, time
host, first, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
end = time.time() + seconds
n = first
try:
    s = smtplib.LMTP(host, 10024, timeout=5, source_address=(host.rsplit(".", 1)[0] + ".21", 0))
    while time.time() < end:
        s.sendmail("sender@example.org", ["alice@example.test"], f"Subject: durable {n}\r\n\r\nbody {n}\r\n".encode())
        print(n, flush=True)
        n += 1
except Exception:
    pass
"#;

#[test]
fn every_acknowledged_delivery_survives_sigkill() {
    let mut site = Site::isolated();
    site.add_user("alice", "a-password", &[]);
    let mut acked: Vec<u32> = Vec::new();
    for round in 0..3u32 {
        // Deliver in a stream from another process, and kill the server under it.
        let child = common::Lines::spawn(std::process::Command::new("python3").args([
            "-c",
            STREAM,
            &site.addr(11),
            &(round * 100_000).to_string(),
            "4",
        ]));
        // Kill while the stream is well under way.
        common::wait_until(|| child.count(|_| true) >= 5);
        site.kill_hard();
        let numbers: Vec<u32> = child
            .finish()
            .iter()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        assert!(
            !numbers.is_empty(),
            "round {round}: nothing was delivered before the kill"
        );
        acked.extend(numbers);
        site.start_again();
    }
    // Index what the crashes left unindexed, then look at every stored message.
    site.ok(&["mailbox", "list", "alice"], None);
    let stored = site.inbox("alice");
    for n in &acked {
        let subject = format!("Subject: durable {n}\r\n");
        assert!(
            stored.iter().any(|m| m.contains(&subject)),
            "acknowledged message {n} is missing"
        );
    }
    let list = site.ok(&["mailbox", "list", "alice"], None);
    let inbox = list.lines().find(|l| l.starts_with("INBOX")).unwrap();
    let count: usize = inbox.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_eq!(
        count,
        stored.len(),
        "the index and the Maildir disagree: {inbox}"
    );
    assert!(count >= acked.len());
}

const STRANGER: &str = r#"
import smtplib, sys
host, source = sys.argv[1], sys.argv[2]
with smtplib.LMTP(host, 10024, source_address=(source, 0)) as s:
    try:
        s.sendmail("sender@example.org", ["alice@example.test"], b"Subject: sneaked in\r\n\r\nx\r\n")
        print("accepted")
    except smtplib.SMTPSenderRefused as e:
        print("refused", e.smtp_code, e.smtp_error.decode())
    except smtplib.SMTPServerDisconnected:
        print("disconnected")
"#;

#[test]
fn only_the_sorters_may_deliver() {
    let site = Site::isolated();
    site.add_user("alice", "a-password", &[]);
    // From an address of the site's network that is not a sorter's: refused at MAIL.
    let out = python(STRANGER, &[&site.addr(11), &site.addr(99)]);
    assert!(
        out.trim().starts_with("refused 550 5.7.1"),
        "a stranger got: {out}"
    );
    // From 127.0.0.1, the default source of loopback clients, too; then the
    // connection is closed.
    let mut lmtp = Lmtp::connect(&format!("{}:10024", site.addr(11)));
    assert!(lmtp.ask("LHLO stranger\r\n").starts_with("250"));
    let mail = lmtp.ask("MAIL FROM:<s@example.org>\r\n");
    assert!(mail.starts_with("550 5.7.1"), "{mail}");
    assert_eq!(lmtp.reply(), "", "the connection is closed");
    assert!(site.inbox("alice").is_empty(), "nothing was delivered");

    // Both sorters may, from their own addresses.
    let out = python(
        SMTPLIB_DELIVER,
        &[&site.addr(11), "10024", "alice@example.test"],
    );
    assert_eq!(out.trim(), "refused {}");
    for sorter in [21, 22] {
        let mut lmtp = Lmtp::connect_from(&format!("{}:10024", site.addr(11)), &site.addr(sorter));
        assert!(lmtp.ask("LHLO sorter\r\n").starts_with("250"));
        let mail = lmtp.ask("MAIL FROM:<s@example.org>\r\n");
        assert!(mail.starts_with("250 2.1.0"), "sorter .{sorter}: {mail}");
    }
    assert_eq!(site.inbox("alice").len(), 1);
}
