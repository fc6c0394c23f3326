//! LIST-EXTENDED (RFC 5258) and LIST-STATUS (RFC 5819) as a client uses them, sent by
//! Python's imaplib: selection options (SUBSCRIBED, SPECIAL-USE, RECURSIVEMATCH with
//! CHILDINFO), several patterns, return options (SUBSCRIBED, CHILDREN, STATUS), and
//! subscriptions that outlive their mailbox (`\NonExistent`, RFC 3501 6.3.6).

use crate::{DELIVER, alice_site, as_alice};

const PROGRAM: &str = r#"
out = {}
a = connect()
out["capability"] = raw(a, "CAPABILITY")
for name in ["Lists/rust", "Lists/python", "Old", "Projects"]:
    raw(a, f"CREATE {name}")
for name in ["Lists/rust", "Old"]:
    raw(a, f"SUBSCRIBE {name}")
out["delete_old"] = raw(a, "DELETE Old")
out["subscribed"] = raw(a, 'LIST (SUBSCRIBED) "" "*"')
out["lsub"] = raw(a, 'LSUB "" "*"')
out["patterns"] = raw(a, 'LIST "" ("INBOX" "Lists/%")')
out["special_use"] = raw(a, 'LIST (SPECIAL-USE) "" "*"')
out["recursive"] = raw(a, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)')
out["return_subscribed"] = raw(a, 'LIST "" "%" RETURN (SUBSCRIBED)')
out["status"] = raw(a, 'LIST "" "*" RETURN (STATUS (MESSAGES UNSEEN))')
out["recursive_alone"] = raw(a, 'LIST (RECURSIVEMATCH) "" "*"')
out["unknown_return"] = raw(a, 'LIST "" "*" RETURN (FOO)')
out["unsubscribe_old"] = raw(a, "UNSUBSCRIBE Old")
out["after"] = raw(a, 'LIST (SUBSCRIBED) "" "*"')
a.logout()
print(json.dumps(out))
"#;

#[test]
fn list_extended_selects_and_returns_what_was_asked() {
    let site = alice_site();
    crate::common::python(DELIVER, &[&site.addr(11), "alice@example.test", "3"]);
    let out = as_alice(&site, PROGRAM);
    let body = |key: &str| -> Vec<String> {
        let lines = out.lines(key);
        assert!(lines.last().unwrap().contains(" OK "), "{key}: {lines:?}");
        lines[..lines.len() - 1].to_vec()
    };
    let capability = out.text("capability");
    assert!(
        capability.contains(" LIST-EXTENDED") && capability.contains(" LIST-STATUS"),
        "{capability}"
    );

    // The default mailboxes are subscribed when made; CREATE subscribes nothing.
    let subscribed = body("subscribed");
    assert!(
        subscribed
            .contains(&"* LIST (\\NonExistent \\Subscribed \\HasNoChildren) \"/\" Old".into()),
        "a deleted mailbox stays subscribed: {subscribed:?}"
    );
    assert!(
        subscribed.contains(&"* LIST (\\Subscribed \\HasNoChildren) \"/\" Lists/rust".into()),
        "{subscribed:?}"
    );
    assert!(
        subscribed.iter().all(|l| l.contains("\\Subscribed")),
        "{subscribed:?}"
    );
    assert!(
        !subscribed
            .iter()
            .any(|l| l.ends_with(" Projects") || l.ends_with(" Lists/python")),
        "{subscribed:?}"
    );
    assert!(
        body("lsub").contains(&"* LSUB (\\Noselect \\HasNoChildren) \"/\" Old".into()),
        "{:?}",
        body("lsub")
    );

    assert_eq!(
        body("patterns"),
        [
            "* LIST (\\HasNoChildren) \"/\" INBOX",
            "* LIST (\\HasNoChildren) \"/\" Lists/python",
            "* LIST (\\HasNoChildren) \"/\" Lists/rust",
        ]
    );
    let special = body("special_use");
    assert_eq!(
        special.len(),
        5,
        "Archive, Drafts, Junk, Sent, Trash: {special:?}"
    );
    assert!(
        special.contains(&"* LIST (\\HasNoChildren \\Sent) \"/\" Sent".into()),
        "{special:?}"
    );

    // Lists is no mailbox and not subscribed, but Lists/rust is, and % stops above it.
    let recursive = body("recursive");
    assert!(
        recursive.contains(
            &"* LIST (\\Noselect \\HasChildren) \"/\" Lists (CHILDINFO (\"SUBSCRIBED\"))".into()
        ),
        "{recursive:?}"
    );
    assert!(
        !recursive.iter().any(|l| l.ends_with(" Projects")),
        "{recursive:?}"
    );

    let plain = body("return_subscribed");
    assert!(
        plain.contains(&"* LIST (\\HasNoChildren) \"/\" Projects".into())
            && plain.contains(&"* LIST (\\Subscribed \\HasNoChildren) \"/\" INBOX".into()),
        "{plain:?}"
    );
    assert!(!plain.iter().any(|l| l.ends_with(" Old")), "{plain:?}");

    // LIST-STATUS: the STATUS right after each selectable mailbox, none for Lists.
    let status = body("status");
    let at = status
        .iter()
        .position(|l| l == "* LIST (\\HasNoChildren) \"/\" INBOX")
        .unwrap_or_else(|| panic!("{status:?}"));
    assert_eq!(status[at + 1], "* STATUS INBOX (MESSAGES 3 UNSEEN 3)");
    let lists = status
        .iter()
        .position(|l| l.ends_with(" Lists"))
        .unwrap_or_else(|| panic!("{status:?}"));
    assert!(status[lists + 1].starts_with("* LIST "), "{status:?}");
    let statuses = status.iter().filter(|l| l.starts_with("* STATUS ")).count();
    let selectable = status
        .iter()
        .filter(|l| l.starts_with("* LIST ") && !l.contains("\\Noselect"))
        .count();
    assert_eq!(statuses, selectable, "{status:?}");

    for key in ["recursive_alone", "unknown_return"] {
        let lines = out.lines(key);
        assert_eq!(lines.len(), 1, "{key}: {lines:?}");
        assert!(lines[0].contains(" BAD "), "{key}: {lines:?}");
    }
    assert!(
        out.lines("unsubscribe_old")
            .last()
            .unwrap()
            .contains(" OK "),
        "{}",
        out.text("unsubscribe_old")
    );
    assert!(
        !body("after").iter().any(|l| l.ends_with(" Old")),
        "{:?}",
        body("after")
    );
}
