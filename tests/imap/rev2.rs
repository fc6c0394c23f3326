//! IMAP4rev2 (RFC 9051) beside IMAP4rev1, as a client uses it, sent by Python's
//! imaplib: after ENABLE IMAP4rev2 there is no \Recent (no RECENT response, no flag),
//! SEARCH answers with ESEARCH, SELECT tells the mailbox's LIST and `[CLOSED]` for the
//! mailbox it closes, and mailbox names are UTF-8. A session that did not enable it
//! keeps IMAP4rev1, \Recent included.

use crate::{DELIVER, alice_site, as_alice};

const PROGRAM: &str = r#"
out = {}
a, b = connect(), connect()
out["capability"] = raw(a, "CAPABILITY")
out["enable"] = raw(a, "ENABLE IMAP4rev2")
out["select_sent"] = raw(a, "SELECT Sent")
out["select"] = raw(a, "SELECT INBOX")
out["flags"] = raw(a, "FETCH 1:* (FLAGS)")
out["search"] = raw(a, "SEARCH ALL")
out["search_none"] = raw(a, "SEARCH DELETED")
out["uid_search"] = raw(a, "UID SEARCH UNSEEN")
out["create"] = raw(a, 'CREATE "Entwürfe"')
out["list"] = raw(a, 'LIST "" "Entw*"')
# The IMAP4rev1 session: \Recent as before, and the messages are still recent.
out["b_select"] = raw(b, "SELECT INBOX")
out["b_search"] = raw(b, "SEARCH ALL")
out["b_list"] = raw(b, 'LIST "" "Entw*"')
for m in (a, b):
    m.logout()
print(json.dumps(out))
"#;

#[test]
fn imap4rev2_once_enabled_and_imap4rev1_beside_it() {
    let site = alice_site();
    crate::common::python(DELIVER, &[&site.addr(11), "alice@example.test", "3"]);
    let out = as_alice(&site, PROGRAM);
    let tag = |key: &str| -> String {
        let lines = out.lines(key);
        let last = lines.last().unwrap().clone();
        assert!(last.contains(" OK "), "{key}: {lines:?}");
        last.split(' ').next().unwrap().to_string()
    };
    // Capability names are case-insensitive (imap-codec writes IMAP4REV1).
    let capability = out.text("capability").to_ascii_uppercase();
    assert!(
        capability.contains(" IMAP4REV1") && capability.contains(" IMAP4REV2"),
        "{capability}"
    );
    out.has("enable", "* ENABLED IMAP4rev2");

    let select = out.lines("select");
    assert!(
        select[0].starts_with("* OK [CLOSED]"),
        "the mailbox SELECT closed first: {select:?}"
    );
    assert!(select.contains(&"* 3 EXISTS".to_string()), "{select:?}");
    assert!(
        select.contains(&"* LIST (\\HasNoChildren) \"/\" INBOX".to_string()),
        "{select:?}"
    );
    assert!(!out.text("select").contains("RECENT"), "{select:?}");
    assert!(!out.text("select_sent").contains("RECENT"));
    out.has("select_sent", "* LIST (\\HasNoChildren \\Sent) \"/\" Sent");
    assert!(
        !out.text("flags").contains("\\Recent"),
        "{}",
        out.text("flags")
    );

    out.has(
        "search",
        &format!("* ESEARCH (TAG \"{}\") ALL 1:3", tag("search")),
    );
    out.has(
        "search_none",
        &format!("* ESEARCH (TAG \"{}\")", tag("search_none")),
    );
    out.has(
        "uid_search",
        &format!("* ESEARCH (TAG \"{}\") UID ALL 1:3", tag("uid_search")),
    );
    tag("create");
    out.has("list", "* LIST (\\HasNoChildren) \"/\" \"Entwürfe\"");

    // IMAP4rev1 beside it: RECENT, a plain SEARCH, modified UTF-7.
    out.has("b_select", "* 3 RECENT");
    out.has("b_search", "* SEARCH 1 2 3");
    out.has("b_list", "* LIST (\\HasNoChildren) \"/\" Entw&APw-rfe");
}
