//! SEARCHRES (RFC 5182) as a client uses it, sent by Python's imaplib: `SEARCH RETURN
//! (SAVE)` keeps what it found, and `$` then names those messages in FETCH, UID FETCH,
//! STORE, COPY and SEARCH. SAVE alone answers nothing but OK; with MIN or MAX alone only
//! those are kept; an expunged message drops out; a SEARCH with SAVE that fails, and a
//! new SELECT, leave `$` empty; `$` is a whole set, never an element of one.

use crate::{DELIVER, alice_site, as_alice};

const PROGRAM: &str = r#"
out = {}
a = connect()
out["capability"] = raw(a, "CAPABILITY")
out["select"] = raw(a, "SELECT INBOX")
out["seen"] = raw(a, "STORE 2,4 +FLAGS.SILENT (\\Seen)")
out["save_seen"] = raw(a, "SEARCH RETURN (SAVE) SEEN")
out["fetch_saved"] = raw(a, "FETCH $ (FLAGS)")
out["uid_fetch_saved"] = raw(a, "UID FETCH $ (FLAGS)")
out["flag_saved"] = raw(a, "STORE $ +FLAGS.SILENT (\\Flagged)")
out["flagged_and_saved"] = raw(a, "SEARCH $ FLAGGED")
out["uid_saved"] = raw(a, "UID SEARCH UID $")
out["create"] = raw(a, "CREATE Kept")
out["copy_saved"] = raw(a, "COPY $ Kept")
out["kept"] = raw(a, "STATUS Kept (MESSAGES)")
# SAVE with MIN and MAX alone keeps only those two.
out["save_ends"] = raw(a, "SEARCH RETURN (SAVE MIN MAX) ALL")
out["ends"] = raw(a, "UID SEARCH UID $")
# With ALL as well, every match is kept; the search uses the `$` of before.
out["save_unseen"] = raw(a, "SEARCH RETURN (SAVE MIN ALL) UNSEEN")
out["unseen"] = raw(a, "UID SEARCH UID $")
# An expunged message drops out of `$`; the others keep their UIDs, at new numbers.
out["delete_3"] = raw(a, "STORE 3 +FLAGS.SILENT (\\Deleted)")
out["expunge"] = raw(a, "EXPUNGE")
out["after_expunge"] = raw(a, "FETCH $ (UID)")
# `$` is a whole set: not in a list, not in a range.
out["in_list"] = raw(a, "FETCH 1,$ (UID)")
out["in_range"] = raw(a, "FETCH $:2 (UID)")
# A SEARCH with SAVE that fails leaves `$` empty.
out["failed_save"] = raw(a, "SEARCH RETURN (SAVE) CHARSET KOI8-R ALL")
out["after_failure"] = raw(a, "FETCH $ (UID)")
# A new SELECT starts with `$` empty.
out["save_again"] = raw(a, "SEARCH RETURN (SAVE) ALL")
out["reselect"] = raw(a, "SELECT INBOX")
out["after_select"] = raw(a, "UID FETCH $ (UID)")
out["search_after_select"] = raw(a, "SEARCH $")
a.logout()
print(json.dumps(out))
"#;

#[test]
fn saved_search_results_name_their_messages_until_reset() {
    let site = alice_site();
    crate::common::python(DELIVER, &[&site.addr(11), "alice@example.test", "6"]);
    let out = as_alice(&site, PROGRAM);
    let only_ok = |key: &str| {
        let lines = out.lines(key);
        assert_eq!(lines.len(), 1, "{key}: {lines:?}");
        assert!(lines[0].contains(" OK "), "{key}: {lines:?}");
    };
    let untagged = |key: &str| -> Vec<String> {
        let lines = out.lines(key);
        assert!(lines.last().unwrap().contains(" OK "), "{key}: {lines:?}");
        lines[..lines.len() - 1].to_vec()
    };
    assert!(
        out.text("capability").contains(" SEARCHRES"),
        "{}",
        out.text("capability")
    );
    only_ok("save_seen");
    assert_eq!(
        untagged("fetch_saved"),
        [
            "* 2 FETCH (FLAGS (\\Seen \\Recent))",
            "* 4 FETCH (FLAGS (\\Seen \\Recent))"
        ]
    );
    assert_eq!(
        untagged("uid_fetch_saved"),
        [
            "* 2 FETCH (UID 2 FLAGS (\\Seen \\Recent))",
            "* 4 FETCH (UID 4 FLAGS (\\Seen \\Recent))"
        ]
    );
    only_ok("flag_saved");
    out.has("flagged_and_saved", "* SEARCH 2 4");
    out.has("uid_saved", "* SEARCH 2 4");
    assert!(
        out.lines("copy_saved").last().unwrap().contains(" OK "),
        "{}",
        out.text("copy_saved")
    );
    out.has("kept", "* STATUS Kept (MESSAGES 2)");

    let esearch = |key: &str| -> String {
        let lines = out.lines(key);
        let tag = lines.last().unwrap().split(' ').next().unwrap().to_string();
        assert_eq!(lines.len(), 2, "{key}: {lines:?}");
        lines[0]
            .strip_prefix(&format!("* ESEARCH (TAG \"{tag}\")"))
            .unwrap_or_else(|| panic!("{key}: {lines:?}"))
            .to_string()
    };
    assert_eq!(esearch("save_ends"), " MIN 1 MAX 6");
    out.has("ends", "* SEARCH 1 6");
    assert_eq!(esearch("save_unseen"), " MIN 1 ALL 1,3,5:6");
    out.has("unseen", "* SEARCH 1 3 5 6");

    assert!(
        out.text("expunge").contains("* 3 EXPUNGE"),
        "{}",
        out.text("expunge")
    );
    assert_eq!(
        untagged("after_expunge"),
        [
            "* 1 FETCH (UID 1)",
            "* 4 FETCH (UID 5)",
            "* 5 FETCH (UID 6)"
        ]
    );
    for key in ["in_list", "in_range"] {
        let lines = out.lines(key);
        assert_eq!(lines.len(), 1, "{key}: {lines:?}");
        assert!(lines[0].contains(" BAD "), "{key}: {lines:?}");
    }
    assert!(
        out.text("failed_save").contains(" NO [BADCHARSET"),
        "{}",
        out.text("failed_save")
    );
    only_ok("after_failure");
    only_ok("save_again");
    only_ok("after_select");
    out.has("search_after_select", "* SEARCH");
}
