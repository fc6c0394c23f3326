//! QUOTA (RFC 9208) as a user meets it: an operator sets limits with `mailsite user
//! quota`, imaplib reads them (GETQUOTAROOT, GETQUOTA), APPEND and COPY past them get
//! `NO [OVERQUOTA]`, STATUS tells what an EXPUNGE would free, and after one the mail
//! fits again, and STATUS SIZE tells what a mailbox holds; LMTP refuses a full mailbox with 452 4.2.2, and a message larger than the
//! whole quota with 552 5.2.2. Nothing stored before is lost on the way.

use crate::common::{Site, python};
use crate::{Answers, DELIVER, RAW_SESSION};

/// One LMTP delivery of `size` body octets from the first sorter's address; prints the
/// reply code the recipient got (250 when delivered).
const LMTP_ONE: &str = r#"
import smtplib, sys
host, rcpt, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
body = b"Subject: big\r\n\r\n" + b"x" * size + b"\r\n"
with smtplib.LMTP(host, 10024, source_address=(host.rsplit(".", 1)[0] + ".21", 0)) as s:
    try:
        s.sendmail("sender@example.org", [rcpt], body)
        print(250)
    except smtplib.SMTPDataError as e:
        print(e.smtp_code, e.smtp_error.decode())
"#;

#[test]
fn quota_set_by_an_operator_is_read_and_enforced_over_imap_and_lmtp() {
    let site = Site::isolated();
    site.add_user("alice", "alice-password", &[]);
    let host = site.addr(11);
    python(DELIVER, &[&host, "alice@example.test", "2"]);

    // The operator's view before and after setting limits.
    let before = site.ok(&["user", "quota", "alice"], None);
    assert!(
        before.contains("(no limit)") && before.contains("2 messages (no limit)"),
        "{before}"
    );
    let bad = site.run(&["user", "quota", "alice", "--storage", "lots"], None);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("500M"),
        "{bad:?}"
    );
    let set = site.ok(
        &[
            "user",
            "quota",
            "alice",
            "--storage",
            "4K",
            "--messages",
            "3",
        ],
        None,
    );
    assert!(
        set.contains("of 4.0 KiB") && set.contains("2 of 3 messages"),
        "{set}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&site.ok(&["user", "quota", "alice", "--json"], None)).unwrap();
    assert_eq!(json["storage_limit"], 4096);
    assert_eq!(json["messages_limit"], 3);
    assert_eq!(json["messages_used"], 2);

    let program = format!(
        "{RAW_SESSION}{}",
        r#"
out = {}
m = connect()
def append(name, body):
    # LITERAL+: the message follows its size on the same command.
    return raw(m, f"APPEND {name} {{{len(body)}+}}\r\n{body}")
out["capability"] = raw(m, "CAPABILITY")
out["root"] = raw(m, "GETQUOTAROOT INBOX")
out["quota"] = raw(m, 'GETQUOTA ""')
out["other_root"] = raw(m, 'GETQUOTA "elsewhere"')
out["setquota"] = raw(m, 'SETQUOTA "" (STORAGE 100000)')
out["third"] = append("Drafts", "Subject: third\r\n\r\nfits\r\n")
out["fourth"] = append("Drafts", "Subject: fourth\r\n\r\nover the message limit\r\n")
out["select"] = raw(m, "SELECT INBOX")
out["copy"] = raw(m, "COPY 1 Archive")
out["move"] = raw(m, "MOVE 2 Archive")
out["delete"] = raw(m, "STORE 1 +FLAGS.SILENT (\\Deleted)")
out["status"] = raw(m, "STATUS INBOX (MESSAGES DELETED DELETED-STORAGE)")
out["expunge"] = raw(m, "EXPUNGE")
out["after"] = append("Drafts", "Subject: after\r\n\r\nfits again\r\n")
out["size"] = raw(m, "STATUS Drafts (MESSAGES SIZE)")
out["drafts_octets"] = len("Subject: third\r\n\r\nfits\r\n") + len("Subject: after\r\n\r\nfits again\r\n")
m.logout()
print(json.dumps(out))
"#
    );
    let out = Answers::parse(&python(&program, &[&host, "alice", "alice-password"]));
    let text = |key: &str| out.text(key);
    let capability = text("capability");
    for cap in [" QUOTA", " QUOTA=RES-STORAGE", " QUOTA=RES-MESSAGE"] {
        assert!(capability.contains(cap), "{cap}: {capability}");
    }
    assert!(!capability.contains("QUOTASET"), "{capability}");
    out.has("root", "* QUOTAROOT INBOX \"\"");
    let quota_line = |key: &str| {
        out.lines(key)
            .into_iter()
            .find(|l| l.starts_with("* QUOTA \"\" ("))
            .unwrap_or_else(|| panic!("{key}: {}", text(key)))
    };
    // Two small messages: under 1 KiB, so 0 units of 1024 octets; 2 of 3 messages.
    assert_eq!(quota_line("root"), "* QUOTA \"\" (STORAGE 0 4 MESSAGE 2 3)");
    assert_eq!(
        quota_line("quota"),
        "* QUOTA \"\" (STORAGE 0 4 MESSAGE 2 3)"
    );
    assert!(
        text("other_root").contains(" NO "),
        "{}",
        text("other_root")
    );
    assert!(text("setquota").contains(" NO "), "{}", text("setquota"));
    assert!(
        text("third").contains(" OK [APPENDUID "),
        "{}",
        text("third")
    );
    let fourth = text("fourth");
    assert!(
        fourth.contains(" NO [OVERQUOTA] message quota exceeded"),
        "{fourth}"
    );
    assert!(
        text("copy").contains(" NO [OVERQUOTA] "),
        "{}",
        text("copy")
    );
    // A move within the user's mailboxes takes no more room.
    assert!(text("move").contains(" OK "), "{}", text("move"));
    let status = text("status");
    assert!(
        status.contains("MESSAGES 1 DELETED 1 DELETED-STORAGE "),
        "{status}"
    );
    assert!(
        text("after").contains(" OK [APPENDUID "),
        "{}",
        text("after")
    );
    // STATUS=SIZE (RFC 8438): the octets a mailbox holds.
    assert!(capability.contains(" STATUS=SIZE"), "{capability}");
    let octets = out.0["drafts_octets"].as_u64().unwrap();
    out.has(
        "size",
        &format!("* STATUS Drafts (MESSAGES 2 SIZE {octets})"),
    );

    // LMTP: three messages of three; the sorter is told to try later (452), and a
    // message larger than the whole 4 KiB is refused for good (552).
    let full = python(LMTP_ONE, &[&host, "alice@example.test", "10"]);
    assert!(full.starts_with("452 4.2.2"), "{full}");
    site.ok(&["user", "quota", "alice", "--messages", "none"], None);
    let huge = python(LMTP_ONE, &[&host, "alice@example.test", "5000"]);
    assert!(huge.starts_with("552 5.2.2"), "{huge}");
    let fits = python(LMTP_ONE, &[&host, "alice@example.test", "10"]);
    assert_eq!(fits.trim(), "250");

    // Everything acknowledged is there: Archive (moved), Drafts (two appends), INBOX
    // (the last delivery).
    let list = site.ok(&["mailbox", "list", "alice"], None);
    let count = |name: &str| {
        list.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
            .unwrap_or_else(|| panic!("{name}: {list}"))
    };
    assert_eq!(count("INBOX"), "1", "{list}");
    assert_eq!(count("Drafts"), "2", "{list}");
    assert_eq!(count("Archive"), "1", "{list}");
    let after = site.ok(&["user", "quota", "alice"], None);
    assert!(after.contains("4 messages (no limit)"), "{after}");
}
