//! The durable queue: mail waits while the mailbox servers are down, follows a moved
//! letter, bounces for a vanished user, and survives SIGKILL once acknowledged.

use super::*;

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
fn mail_to_a_full_mailbox_waits_in_the_queue_and_arrives_once_there_is_room() {
    // Retries far apart: only `queue flush` makes the sorter try again soon.
    let site = Site::isolated_with(|t| {
        t.replace("retry_max = 2", "retry_max = 3600")
            .replace("retry_first = 1", "retry_first = 3600")
    });
    site.add_user("alice", "alice-password", &[]);
    site.add_user("nora", "nora-password", &[]);
    site.ok(&["user", "quota", "nora", "--messages", "1"], None);
    assert_eq!(
        send(&site, "alice", "nora@example.test", "first"),
        "refused {}"
    );
    wait_for_mail(&site, "nora", Duration::from_secs(15), |m| m.len() == 1);

    // The second is accepted (250) and waits: the mailbox server said 452 4.2.2.
    assert_eq!(
        send(&site, "alice", "nora@example.test", "second"),
        "refused {}"
    );
    let waiting = site.within(Duration::from_secs(10), || {
        site.ok(&["queue", "list"], None).contains("4.2.2")
    });
    let list = site.ok(&["queue", "list"], None);
    assert!(waiting.is_some(), "{list}");
    assert!(
        list.contains("mailbox full (message quota exceeded"),
        "{list}"
    );
    assert_eq!(site.inbox("nora").len(), 1);

    // Room is made; the flushed queue delivers it.
    site.ok(&["user", "quota", "nora", "--messages", "none"], None);
    site.ok(&["queue", "flush"], None);
    let messages = wait_for_mail(&site, "nora", Duration::from_secs(15), |m| m.len() == 2);
    assert!(
        messages.iter().any(|m| m.contains("Subject: second")),
        "{}",
        messages.join("\n-----\n")
    );
    let list = site.ok(&["queue", "list"], None);
    assert!(list.contains("0 messages queued"), "{list}");
}
