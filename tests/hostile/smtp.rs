//! Message data from strangers on a sorter's MX port: many unfinished multi-megabyte
//! DATA commands cost disk in the spool, not the server's memory; a message that goes
//! over the size limit mid-stream gets 552 and the session goes on; a client that
//! vanishes mid-message (or a crash) leaves no file behind; honest mail keeps flowing
//! and is read back over IMAP. Also RFC 5321 4.5.1: mail for Postmaster is taken.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::common::{self, Site, python};

type Smtp = common::Replies;

const MIB: usize = 1024 * 1024;

/// The resident memory of a process, in bytes.
fn rss(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("a VmRSS line");
    let kib: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmRSS in kB");
    kib * 1024
}

/// The temporary folder of sorter1's spool, where messages are written as they arrive.
fn spool_tmp(site: &Site) -> PathBuf {
    site.dir.join("data/queue/sorter1/tmp")
}

/// The files in sorter1's spool `tmp/` and their total size.
fn in_flight(site: &Site) -> (usize, u64) {
    let mut count = 0;
    let mut bytes = 0;
    if let Ok(listing) = std::fs::read_dir(spool_tmp(site)) {
        for entry in listing.flatten() {
            count += 1;
            bytes += entry.metadata().map_or(0, |m| m.len());
        }
    }
    (count, bytes)
}

/// Waits at most `limit` for `ready`; whether it came.
fn within(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ready() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    ready()
}

const SEND: &str = r#"
import smtplib, sys
host, rcpt, subject = sys.argv[1:4]
message = f"From: friend@example.org\r\nTo: {rcpt}\r\nSubject: {subject}\r\n\r\nan honest message\r\n".encode()
try:
    with smtplib.SMTP(host, 10025, timeout=30) as s:
        print("refused", s.sendmail("friend@example.org", [rcpt], message))
except smtplib.SMTPException as e:
    print("error", e)
"#;

/// Sends a small message to the MX port of sorter1 with smtplib, unauthenticated.
fn send(site: &Site, rcpt: &str, subject: &str) -> String {
    python(SEND, &[&site.addr(21), rcpt, subject])
        .trim()
        .to_string()
}

const IMAP_SUBJECTS: &str = r#"
import imaplib, sys
host, user, password = sys.argv[1:4]
m = imaplib.IMAP4(host, 10143, timeout=20)
m.login(user, password)
m.select("INBOX", readonly=True)
typ, data = m.search(None, "ALL")
for n in data[0].split():
    typ, parts = m.fetch(n, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    print(parts[0][1].decode().strip())
m.logout()
"#;

/// The Subject lines in a user's INBOX, read over IMAP from mailbox1.
fn subjects(site: &Site, user: &str, password: &str) -> Vec<String> {
    python(IMAP_SUBJECTS, &[&site.addr(11), user, password])
        .lines()
        .map(str::to_string)
        .collect()
}

/// Waits (at most 30 s) until a message with `subject` is in the user's INBOX over IMAP.
fn arrives(site: &Site, user: &str, password: &str, subject: &str) -> bool {
    let wanted = format!("Subject: {subject}");
    within(Duration::from_secs(30), || {
        subjects(site, user, password).contains(&wanted)
    })
}

/// A client of sorter1's MX port that has named alice as the recipient.
fn to_alice(site: &Site) -> Smtp {
    to_alice_from(site, 0)
}

/// [`to_alice`] from the `n`th client: 40 to a source address, under the sorter's
/// connection cap per source (50).
fn to_alice_from(site: &Site, n: usize) -> Smtp {
    let source = format!("127.{}.7.{}", site.net, 1 + n / 40);
    let mut smtp = Smtp::connect_from(&format!("{}:10025", site.addr(21)), &source);
    assert!(
        smtp.ask("EHLO stranger.example.org\r\n")
            .contains("CHUNKING")
    );
    assert!(smtp.ask("MAIL FROM:<x@example.org>\r\n").starts_with("250"));
    let rcpt = smtp.ask("RCPT TO:<alice@example.test>\r\n");
    assert!(rcpt.starts_with("250"), "{rcpt}");
    smtp
}

/// A client that started a message to alice and is in the middle of its data.
fn start_data(site: &Site, n: usize) -> Smtp {
    let mut smtp = to_alice_from(site, n);
    let go = smtp.ask("DATA\r\n");
    assert!(go.starts_with("354"), "{go}");
    smtp.send("Subject: flood\r\n\r\n");
    smtp
}

/// Sends `bytes` of message text (lines of 78 characters).
fn send_text(smtp: &mut Smtp, bytes: usize) {
    let line = format!("{}\r\n", "x".repeat(78));
    let block = line.repeat(64 * 1024 / line.len());
    let mut sent = 0;
    while sent < bytes {
        smtp.send(&block);
        sent += block.len();
    }
}

#[test]
fn unfinished_data_goes_to_the_spool_not_to_memory() {
    let site = Site::isolated();
    site.add_user("alice", "alice-password", &[]);
    // Everything warmed up by one message first.
    assert_eq!(send(&site, "alice@example.test", "warm-up"), "refused {}");
    assert!(arrives(&site, "alice", "alice-password", "warm-up"));
    let before = rss(site.pid());

    const CONNECTIONS: usize = 40;
    const EACH: usize = 3 * MIB;
    let mut flood: Vec<Smtp> = (0..CONNECTIONS).map(|n| start_data(&site, n)).collect();
    for smtp in &mut flood {
        send_text(smtp, EACH);
    }
    let sent = (CONNECTIONS * EACH) as u64;
    // The server has read nearly all of it: it is in the spool, one file per message.
    assert!(
        within(Duration::from_secs(60), || {
            let (files, bytes) = in_flight(&site);
            files == CONNECTIONS && bytes >= sent * 9 / 10
        }),
        "the unfinished messages are not in the spool: {:?} of {sent} bytes",
        in_flight(&site)
    );
    let grown = rss(site.pid()).saturating_sub(before);
    eprintln!(
        "{CONNECTIONS} unfinished messages of {} KiB: RSS grew by {} KiB",
        EACH / 1024,
        grown / 1024
    );
    assert!(
        grown < sent as usize / 5,
        "memory grew by {} KiB while strangers sent {} KiB of unfinished messages",
        grown / 1024,
        sent / 1024
    );

    // Honest mail is delivered meanwhile.
    assert_eq!(send(&site, "alice@example.test", "honest"), "refused {}");
    assert!(arrives(&site, "alice", "alice-password", "honest"));

    // The strangers go away: nothing of their messages remains, nothing was delivered.
    drop(flood);
    assert!(
        within(Duration::from_secs(30), || in_flight(&site).0 == 0),
        "files of abandoned messages remain: {:?}",
        in_flight(&site)
    );
    let subjects = subjects(&site, "alice", "alice-password");
    assert_eq!(subjects, ["Subject: warm-up", "Subject: honest"]);
    assert!(!site.log().contains("panicked"));
}

#[test]
fn hundreds_of_unfinished_messages_cost_kib_not_mib_each() {
    let site = Site::isolated();
    site.add_user("alice", "alice-password", &[]);
    assert_eq!(send(&site, "alice@example.test", "warm-up"), "refused {}");
    assert!(arrives(&site, "alice", "alice-password", "warm-up"));
    let before = rss(site.pid());
    // Each holds 64 KiB of message sent and unfinished; the memory that costs must be
    // a connection's own buffers, not its data. The target of 64 KiB a connection is
    // the release build's (bench/hostile.sh); this debug build, beside other tests in
    // parallel, measured 45-72 KiB, so the bound here is 128 KiB: streaming to the
    // spool, not buffering, is what it shows (a buffered message alone is 64 KiB, and
    // before streaming an unfinished 26 MB message cost 26 MB).
    const CONNECTIONS: usize = 400;
    let mut flood: Vec<Smtp> = (0..CONNECTIONS).map(|n| start_data(&site, n)).collect();
    for smtp in &mut flood {
        send_text(smtp, 64 * 1024);
    }
    assert!(
        within(Duration::from_secs(60), || {
            let (files, bytes) = in_flight(&site);
            files == CONNECTIONS && bytes >= (CONNECTIONS * 60 * 1024) as u64
        }),
        "{:?}",
        in_flight(&site)
    );
    let grown = rss(site.pid()).saturating_sub(before);
    eprintln!(
        "{CONNECTIONS} unfinished messages: RSS grew by {} KiB",
        grown / 1024
    );
    assert!(
        grown < CONNECTIONS * 128 * 1024,
        "{} KiB per connection",
        grown / 1024 / CONNECTIONS
    );
    drop(flood);
    assert!(within(Duration::from_secs(30), || in_flight(&site).0 == 0));
}

#[test]
fn a_message_over_the_limit_mid_stream_gets_552_and_the_session_goes_on() {
    let site = Site::isolated_with(|text| {
        text.replace("max_message_size = 26214400", "max_message_size = 1048576")
    });
    site.add_user("alice", "alice-password", &[]);
    let mut smtp = start_data(&site, 0);
    send_text(&mut smtp, 3 * MIB);
    // Past the limit nothing more is kept on disk either.
    assert!(
        in_flight(&site).1 <= MIB as u64 + 4096,
        "{:?}",
        in_flight(&site)
    );
    let reply = smtp.ask(".\r\n");
    assert!(reply.starts_with("552 5.3.4"), "{reply}");
    assert!(within(Duration::from_secs(10), || in_flight(&site).0 == 0));

    // The same connection goes on with a message that fits.
    assert!(smtp.ask("MAIL FROM:<x@example.org>\r\n").starts_with("250"));
    assert!(
        smtp.ask("RCPT TO:<alice@example.test>\r\n")
            .starts_with("250")
    );
    assert!(smtp.ask("DATA\r\n").starts_with("354"));
    smtp.send("Subject: fits\r\n\r\n");
    send_text(&mut smtp, MIB / 2);
    let queued = smtp.ask(".\r\n");
    assert!(queued.starts_with("250 2.0.0"), "{queued}");
    assert!(smtp.ask("QUIT\r\n").starts_with("221"));
    assert!(arrives(&site, "alice", "alice-password", "fits"));
    assert_eq!(
        subjects(&site, "alice", "alice-password"),
        ["Subject: fits"]
    );
    let stored = site.inbox("alice");
    assert!(
        stored[0].len() > MIB / 2 && stored[0].len() < MIB,
        "{} bytes stored",
        stored[0].len()
    );
}

#[test]
fn a_crash_mid_message_leaves_no_file_after_the_restart() {
    let mut site = Site::isolated();
    site.add_user("alice", "alice-password", &[]);
    let mut smtp = start_data(&site, 0);
    send_text(&mut smtp, MIB);
    assert!(within(Duration::from_secs(30), || in_flight(&site).1
        >= MIB as u64 / 2));
    site.kill_hard();
    drop(smtp);
    assert_eq!(in_flight(&site).0, 1, "the crash left the partial message");
    site.start_again();
    assert!(
        within(Duration::from_secs(10), || in_flight(&site).0 == 0),
        "the restarted sorter kept {:?}",
        in_flight(&site)
    );
    // Nothing of it was delivered; the sorter works.
    assert_eq!(send(&site, "alice@example.test", "after"), "refused {}");
    assert!(arrives(&site, "alice", "alice-password", "after"));
    assert_eq!(
        subjects(&site, "alice", "alice-password"),
        ["Subject: after"]
    );
}

#[test]
fn mail_for_postmaster_reaches_the_configured_mailbox() {
    let site = Site::isolated_with(|text| {
        text.replace(r#"postmaster = "demo""#, r#"postmaster = "alice""#)
    });
    site.add_user("alice", "alice-password", &[]);
    // <Postmaster> without a domain, in any case, and postmaster@ the site's domain.
    for (rcpt, subject) in [
        ("Postmaster", "bare"),
        ("POSTMASTER", "shouting"),
        ("postmaster@example.test", "with domain"),
        ("PostMaster@Example.Test", "mixed case"),
    ] {
        assert_eq!(send(&site, rcpt, subject), "refused {}", "{rcpt}");
    }
    for subject in ["bare", "shouting", "with domain", "mixed case"] {
        assert!(
            arrives(&site, "alice", "alice-password", subject),
            "{subject}: {:?}",
            subjects(&site, "alice", "alice-password")
        );
    }
    // Another domain's postmaster is still not ours to take.
    let mut smtp = Smtp::connect(&format!("{}:10025", site.addr(21)));
    assert!(smtp.ask("EHLO x\r\n").starts_with("250"));
    assert!(smtp.ask("MAIL FROM:<x@example.org>\r\n").starts_with("250"));
    let relay = smtp.ask("RCPT TO:<postmaster@example.org>\r\n");
    assert!(relay.starts_with("554 5.7.1"), "{relay}");
    let empty = smtp.ask("RCPT TO:<>\r\n");
    assert!(empty.starts_with("501"), "{empty}");
}

#[test]
fn postmaster_without_a_mailbox_is_deferred_not_refused() {
    let site = Site::isolated();
    // The configured postmaster (demo) does not exist on this site: senders retry.
    let mut smtp = Smtp::connect(&format!("{}:10025", site.addr(21)));
    assert!(smtp.ask("EHLO x\r\n").starts_with("250"));
    assert!(smtp.ask("MAIL FROM:<x@example.org>\r\n").starts_with("250"));
    let reply = smtp.ask("RCPT TO:<postmaster>\r\n");
    assert!(reply.starts_with("451 4.3.0"), "{reply}");
    assert!(
        site.log().contains("[site] postmaster names no user"),
        "the operator is told at the start"
    );
}

#[test]
fn bdat_chunks_go_to_one_spool_file_as_they_come() {
    let site = Site::isolated();
    site.add_user("alice", "alice-password", &[]);
    let mut smtp = to_alice(&site);
    let head = "Subject: chunked\r\n\r\n";
    let body = format!("{}\r\n", "y".repeat(78)).repeat(4000);
    let first = smtp.ask(&format!("BDAT {}\r\n{head}", head.len()));
    assert!(first.starts_with("250"), "{first}");
    let second = smtp.ask(&format!("BDAT {}\r\n{body}", body.len()));
    assert!(second.starts_with("250"), "{second}");
    // Both chunks are in one file in the spool before the message is complete.
    let both = (head.len() + body.len()) as u64;
    assert!(
        within(Duration::from_secs(10), || {
            let (files, bytes) = in_flight(&site);
            files == 1 && bytes >= both
        }),
        "{:?}",
        in_flight(&site)
    );
    let queued = smtp.ask("BDAT 0 LAST\r\n");
    assert!(queued.starts_with("250 2.0.0"), "{queued}");
    assert!(arrives(&site, "alice", "alice-password", "chunked"));
    let stored = site.inbox("alice");
    assert!(
        stored[0].ends_with(&format!("{head}{body}")),
        "the message is whole"
    );
    assert_eq!(in_flight(&site).0, 0);
}
