//! MULTIAPPEND (RFC 3502) as a client sends it, from Python: one APPEND with several
//! messages, each with its own flags and date, by LITERAL+ and by synchronising
//! literals (a `+` for each); APPENDUID names every new UID; and all or none: a
//! MULTIAPPEND past the quota or into a missing mailbox stores nothing.

use crate::{alice_site, as_alice};

const PROGRAM: &str = r#"
out = {}
m = connect()
one = "From: a@example.org\r\nSubject: mail1\r\n\r\nbody1\r\n"
two = "From: a@example.org\r\nSubject: mail2\r\n\r\nbody2\r\n"
three = "From: a@example.org\r\nSubject: mail3\r\n\r\nbody3\r\n"
out["capability"] = raw(m, "CAPABILITY")
# LITERAL+: every message follows its size on the one command.
out["plus"] = raw(m, f'APPEND Drafts (\\Seen) {{{len(one)}+}}\r\n{one} (\\Flagged) "24-Mar-2007 23:00:00 +0200" {{{len(two)}+}}\r\n{two}')
# Synchronising literals: the server says "+" before each message.
tag = m._new_tag().decode()
m.send(f"{tag} APPEND Drafts {{{len(three)}}}\r\n".encode())
out["sync"] = [m.readline().decode().rstrip("\r\n")]
m.send(f"{three} (\\Answered) {{{len(one)}}}\r\n".encode())
out["sync"].append(m.readline().decode().rstrip("\r\n"))
m.send(f"{one}\r\n".encode())
while not out["sync"][-1].startswith(tag + " "):
    out["sync"].append(m.readline().decode().rstrip("\r\n"))
out["missing"] = raw(m, f"APPEND Nowhere {{{len(one)}+}}\r\n{one} {{{len(two)}+}}\r\n{two}")
out["examine"] = raw(m, "EXAMINE Drafts")
out["fetch"] = raw(m, "FETCH 1:* (UID FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
m.logout()
print(json.dumps(out))
"#;

const OVER_QUOTA: &str = r#"
out = {}
m = connect()
small = "Subject: small\r\n\r\nfits\r\n"
out["over"] = raw(m, f"APPEND INBOX {{{len(small)}+}}\r\n{small} {{{len(small)}+}}\r\n{small} {{{len(small)}+}}\r\n{small}")
out["fits"] = raw(m, f"APPEND INBOX {{{len(small)}+}}\r\n{small} {{{len(small)}+}}\r\n{small}")
out["status"] = raw(m, "STATUS INBOX (MESSAGES)")
m.logout()
print(json.dumps(out))
"#;

#[test]
fn multiappend_stores_every_message_with_its_flags_and_date() {
    let site = alice_site();
    let out = as_alice(&site, PROGRAM);
    assert!(
        out.text("capability").contains(" MULTIAPPEND"),
        "{}",
        out.text("capability")
    );
    let plus = out.text("plus");
    let validity = plus
        .split("[APPENDUID ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .unwrap_or_else(|| panic!("no APPENDUID in {plus}"));
    assert!(
        plus.contains(&format!("OK [APPENDUID {validity} 1:2]")),
        "{plus}"
    );
    let sync = out.lines("sync");
    assert!(
        sync[0].starts_with("+ ") && sync[1].starts_with("+ "),
        "{sync:?}"
    );
    assert!(
        sync.last()
            .unwrap()
            .contains(&format!("OK [APPENDUID {validity} 3:4]")),
        "{sync:?}"
    );
    // A missing mailbox: nothing stored, and the client is told to create it.
    let missing = out.text("missing");
    assert!(missing.contains(" NO [TRYCREATE]"), "{missing}");
    out.has("examine", "* 4 EXISTS");
    let fetch = out.text("fetch");
    let messages: Vec<&str> = fetch.split("* ").filter(|s| s.contains("FETCH")).collect();
    assert_eq!(messages.len(), 4, "{fetch}");
    // (\Recent: this is the first session to see them.)
    let expect = [
        ("UID 1 ", "(\\Seen \\Recent)", "mail1"),
        ("UID 2 ", "(\\Flagged \\Recent)", "mail2"),
        ("UID 3 ", "(\\Recent)", "mail3"),
        ("UID 4 ", "(\\Answered \\Recent)", "mail1"),
    ];
    for (message, (uid, flags, subject)) in messages.iter().zip(expect) {
        assert!(
            message.contains(uid)
                && message.contains(&format!("FLAGS {flags}"))
                && message.contains(&format!("Subject: {subject}")),
            "{uid}{flags}{subject} in {message}"
        );
    }
    // The second message's own date (the same instant, told in UTC).
    assert!(
        messages[1].contains("INTERNALDATE \"24-Mar-2007 21:00:00 +0000\""),
        "{}",
        messages[1]
    );
    assert!(!site.log().contains("panicked"));
}

#[test]
fn multiappend_past_the_quota_stores_nothing() {
    let site = alice_site();
    site.ok(&["user", "quota", "alice", "--messages", "2"], None);
    let out = as_alice(&site, OVER_QUOTA);
    let over = out.text("over");
    assert!(over.contains(" NO [OVERQUOTA]"), "{over}");
    assert!(
        out.text("fits").contains(" OK [APPENDUID "),
        "{}",
        out.text("fits")
    );
    // Two, from the second APPEND: none of the three refused together.
    out.has("status", "* STATUS INBOX (MESSAGES 2)");
}
