//! CONDSTORE (RFC 7162) as a syncing client uses it, with Python's imaplib in two
//! sessions: HIGHESTMODSEQ at SELECT and in STATUS, FETCH MODSEQ and
//! (CHANGEDSINCE n) after another session's changes, STORE (UNCHANGEDSINCE n) refusing
//! what changed meanwhile (MODIFIED), SEARCH MODSEQ, ENABLE, and the MODSEQ that
//! unsolicited flag updates carry once it is on.

use crate::common::{Site, python};
use crate::{Answers, DELIVER, RAW_SESSION};

#[test]
fn condstore_resyncs_after_changes_by_another_session() {
    let site = Site::isolated();
    site.add_user("alice", "alice-password", &[]);
    let host = site.addr(11);
    python(DELIVER, &[&host, "alice@example.test", "4"]);
    let program = format!(
        "{RAW_SESSION}{}",
        r#"
import re
out = {}
a, b = connect(), connect()
out["capability"] = raw(a, "CAPABILITY")
out["a_select"] = raw(a, "SELECT INBOX (CONDSTORE)")
highest = int(re.search(r"HIGHESTMODSEQ (\d+)", " ".join(out["a_select"])).group(1))
out["highest"] = highest
out["a_modseq"] = raw(a, "FETCH 1:* (MODSEQ)")
# The other session changes two messages (and is told their MODSEQ once it enabled).
out["b_enable"] = raw(b, "ENABLE CONDSTORE")
out["b_select"] = raw(b, "SELECT INBOX")
out["b_store"] = raw(b, "STORE 2,4 +FLAGS.SILENT (\\Flagged)")
# The first finds exactly those, and the tell-tale MODSEQ.
out["a_changed"] = raw(a, f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {highest})")
out["a_search"] = raw(a, f"SEARCH MODSEQ {highest + 1}")
out["a_status"] = raw(b, "STATUS INBOX (HIGHESTMODSEQ MESSAGES)")
# A conditional STORE with the old MODSEQ changes 1 and 3, refuses 2 and 4.
out["a_conditional"] = raw(a, f"STORE 1:4 (UNCHANGEDSINCE {highest}) +FLAGS (\\Seen)")
out["a_uid_conditional"] = raw(a, "UID STORE 1:4 (UNCHANGEDSINCE 0) -FLAGS (\\Seen)")
# The other session hears of the first's change with its MODSEQ.
out["b_noop"] = raw(b, "NOOP")
out["b_examine"] = raw(b, "EXAMINE INBOX")
out["vanished"] = raw(a, "FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
out["qresync_select"] = raw(b, "SELECT INBOX (QRESYNC (1 1))")
for m in (a, b):
    m.logout()
print(json.dumps(out))
"#
    );
    let out = python(&program, &[&host, "alice", "alice-password"]);
    let out = Answers::parse(&out);
    let (has, text) = (
        |key: &str, line: &str| out.has(key, line),
        |key: &str| out.text(key),
    );
    assert!(
        text("capability").contains(" CONDSTORE"),
        "{}",
        text("capability")
    );
    let h = out.0["highest"].as_u64().unwrap();
    assert!(h > 0);
    assert_eq!(
        text("a_modseq").matches("MODSEQ (").count(),
        4,
        "{}",
        text("a_modseq")
    );
    has("b_enable", "* ENABLED CONDSTORE");
    // .SILENT with CONDSTORE on still tells the UID and the new MODSEQ.
    let store = text("b_store");
    assert!(
        store.contains("* 2 FETCH (UID 2 MODSEQ (") && store.contains("* 4 FETCH (UID 4 MODSEQ ("),
        "{store}"
    );
    assert!(!store.contains("FLAGS"), "{store}");
    // Only 2 and 4 changed since; each answer carries its MODSEQ.
    let changed = text("a_changed");
    let fetched: Vec<&str> = changed.lines().filter(|l| l.starts_with("* ")).collect();
    assert_eq!(fetched.len(), 2, "{changed}");
    assert!(
        fetched
            .iter()
            .all(|l| l.contains("MODSEQ (") && l.contains("\\Flagged")),
        "{changed}"
    );
    assert!(
        fetched[0].starts_with("* 2 FETCH") && fetched[1].starts_with("* 4 FETCH"),
        "{changed}"
    );
    let search = text("a_search");
    assert!(
        search.contains(&format!("* SEARCH 2 4 (MODSEQ {})", h + 2)),
        "{search}"
    );
    assert!(
        text("a_status").contains(&format!("HIGHESTMODSEQ {}", h + 2)),
        "{}",
        text("a_status")
    );
    let conditional = text("a_conditional");
    assert!(conditional.contains("OK [MODIFIED 2,4]"), "{conditional}");
    assert!(
        // (\Recent: the first session was the first to see the new mail.)
        conditional.contains("* 1 FETCH (FLAGS (\\Seen \\Recent) UID 1 MODSEQ (")
            && conditional.contains("* 3 FETCH (FLAGS (\\Seen \\Recent) UID 3 MODSEQ ("),
        "{conditional}"
    );
    // UNCHANGEDSINCE 0 fails for every message.
    assert!(
        text("a_uid_conditional").contains("OK [MODIFIED 1:4]"),
        "{}",
        text("a_uid_conditional")
    );
    let noop = text("b_noop");
    assert!(
        noop.contains("* 1 FETCH (FLAGS (\\Seen) UID 1 MODSEQ (")
            && noop.contains("* 3 FETCH (FLAGS (\\Seen) UID 3 MODSEQ ("),
        "{noop}"
    );
    assert!(
        text("b_examine").contains(&format!("OK [HIGHESTMODSEQ {}]", h + 4)),
        "{}",
        text("b_examine")
    );
    // QRESYNC is not offered: its modifiers are refused, not half done.
    assert!(text("vanished").contains(" BAD "), "{}", text("vanished"));
    assert!(
        text("qresync_select").contains(" BAD "),
        "{}",
        text("qresync_select")
    );
}
