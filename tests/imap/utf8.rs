//! UTF8=ACCEPT (RFC 6855) as a client uses it, sent by Python's imaplib: after ENABLE
//! UTF8=ACCEPT, mailbox names are UTF-8 both ways (CREATE, LIST, SELECT, STATUS) and
//! APPEND takes `UTF8 (~{n}...)`, a message with a UTF-8 header, stored as sent. A
//! session that did not enable it keeps modified UTF-7 for the same mailboxes, and is
//! refused UTF-8 names and APPEND UTF8.

use crate::{alice_site, as_alice};

const PROGRAM: &str = r#"
out = {}
a, b = connect(), connect()
message = "From: jörg@example.test\r\nSubject: Grüße aus Köln\r\n\r\nHallo!\r\n".encode()
def append_utf8(m, mailbox):
    tag = m._new_tag().decode()
    m.send(f"{tag} APPEND {mailbox} UTF8 (~{{{len(message)}+}}\r\n".encode() + message + b")\r\n")
    lines = []
    while True:
        line = m.readline().decode("utf-8").rstrip("\r\n")
        lines.append(line)
        if line.startswith(tag + " "):
            return lines
out["capability"] = raw(a, "CAPABILITY")
# Before ENABLE: modified UTF-7 only.
out["create_utf8_early"] = raw(a, 'CREATE "Entwürfe"')
out["create_utf7"] = raw(a, 'CREATE "Entw&APw-rfe"')
out["append_early"] = append_utf8(a, "INBOX")
out["enable"] = raw(a, "ENABLE UTF8=ACCEPT")
out["list"] = raw(a, 'LIST "" "*"')
out["create"] = raw(a, 'CREATE "日本語/Über"')
out["create_amp"] = raw(a, 'CREATE "R&D"')
out["list_pattern"] = raw(a, 'LIST "" "日本語/*"')
out["status"] = raw(a, 'STATUS "Entwürfe" (MESSAGES)')
out["append"] = append_utf8(a, '"Entwürfe"')
out["select"] = raw(a, 'SELECT "Entwürfe"')
out["fetch"] = raw(a, "FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
out["search"] = raw(a, 'SEARCH SUBJECT "Grüße"')
# The other session did not enable it: the same mailboxes in modified UTF-7.
out["b_list"] = raw(b, 'LIST "" "*"')
out["b_status"] = raw(b, 'STATUS "Entw&APw-rfe" (MESSAGES)')
for m in (a, b):
    m.logout()
print(json.dumps(out))
"#;

#[test]
fn utf8_accept_takes_and_gives_utf8_names_and_messages() {
    let site = alice_site();
    let out = as_alice(&site, PROGRAM);
    let tagged = |key: &str| out.lines(key).last().unwrap().clone();
    let ok = |key: &str| assert!(tagged(key).contains(" OK "), "{key}: {:?}", out.lines(key));
    assert!(
        out.text("capability").contains(" UTF8=ACCEPT"),
        "{}",
        out.text("capability")
    );
    assert!(
        tagged("create_utf8_early").contains(" NO "),
        "{}",
        out.text("create_utf8_early")
    );
    ok("create_utf7");
    assert!(
        tagged("append_early").contains(" BAD "),
        "{}",
        out.text("append_early")
    );
    out.has("enable", "* ENABLED UTF8=ACCEPT");

    let list = out.text("list");
    assert!(
        list.contains("* LIST (\\HasNoChildren) \"/\" \"Entwürfe\""),
        "a quoted UTF-8 string: {list}"
    );
    assert!(
        !list.contains("&APw-"),
        "no modified UTF-7 once enabled: {list}"
    );
    ok("create");
    ok("create_amp");
    let pattern = out.text("list_pattern");
    assert!(pattern.contains("Über"), "{pattern}");
    assert!(!pattern.contains("Entwürfe"), "{pattern}");
    out.has("status", "* STATUS \"Entwürfe\" (MESSAGES 0)");
    assert!(
        tagged("append").contains(" OK [APPENDUID "),
        "{}",
        out.text("append")
    );
    ok("select");
    let fetch = out.text("fetch");
    assert!(
        fetch.contains("Subject: Grüße aus Köln"),
        "stored as sent: {fetch}"
    );
    out.has("search", "* SEARCH 1");

    // Without ENABLE, the same names in modified UTF-7: & is written &-.
    let b_list = out.text("b_list");
    for name in ["Entw&APw-rfe", "&ZeVnLIqe-/&ANw-ber", "R&-D"] {
        assert!(b_list.contains(name), "{name} in {b_list}");
    }
    assert!(!b_list.contains("Entwürfe"), "{b_list}");
    out.has("b_status", "* STATUS Entw&APw-rfe (MESSAGES 1)");
}
