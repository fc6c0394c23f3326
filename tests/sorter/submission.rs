//! Submission with smtplib and swaks read back over IMAP, the MX port for local users
//! only (never an open relay), and senders held to the authenticated user.

use super::*;

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
