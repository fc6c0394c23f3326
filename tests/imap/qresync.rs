//! QRESYNC (RFC 7162 3.2) as a syncing client uses it, with Python's imaplib: a client
//! that enabled it hears of expunges as VANISHED with UIDs; one that comes back with
//! the UIDVALIDITY and HIGHESTMODSEQ it last saw learns in its SELECT what vanished and
//! what changed (all of it, or within the UIDs it still knows), and UID FETCH
//! (CHANGEDSINCE n VANISHED) tells the same for a range. Without ENABLE QRESYNC, its
//! parameters are refused and expunges stay EXPUNGE.

use crate::common::{Site, python};
use crate::{Answers, DELIVER, RAW_SESSION};

#[test]
fn qresync_tells_a_returning_client_what_vanished_and_changed() {
    let site = Site::isolated();
    site.add_user("alice", "alice-password", &[]);
    let host = site.addr(11);
    python(DELIVER, &[&host, "alice@example.test", "5"]);
    let program = format!(
        "{RAW_SESSION}{}",
        r#"
import re
out = {}
a, b, c, d = connect(), connect(), connect(), connect()
out["capability"] = raw(a, "CAPABILITY")
out["a_enable"] = raw(a, "ENABLE QRESYNC")
out["a_select"] = raw(a, "SELECT INBOX")
text = " ".join(out["a_select"])
validity = int(re.search(r"UIDVALIDITY (\d+)", text).group(1))
highest = int(re.search(r"HIGHESTMODSEQ (\d+)", text).group(1))
out["validity"], out["highest"] = validity, highest
# Another client, without QRESYNC: flags one message, expunges two.
out["b_select"] = raw(b, "SELECT INBOX")
out["b_flag"] = raw(b, "STORE 2 +FLAGS.SILENT (\\Flagged)")
out["b_delete"] = raw(b, "STORE 3:4 +FLAGS.SILENT (\\Deleted)")
out["b_expunge"] = raw(b, "EXPUNGE")
# The first hears of the expunges as VANISHED.
out["a_noop"] = raw(a, "NOOP")
# A client that comes back: everything since, then within the UIDs it knows.
out["c_enable"] = raw(c, "ENABLE QRESYNC")
out["c_resync"] = raw(c, f"SELECT INBOX (QRESYNC ({validity} {highest}))")
out["c_known"] = raw(c, f"SELECT INBOX (QRESYNC ({validity} {highest} 1:2))")
out["c_fetch"] = raw(c, f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {highest} VANISHED)")
out["c_other"] = raw(c, f"EXAMINE INBOX (QRESYNC ({validity + 1} {highest}))")
out["c_select"] = raw(c, "SELECT INBOX")
out["c_delete"] = raw(c, "STORE 1 +FLAGS.SILENT (\\Deleted)")
out["c_expunge"] = raw(c, "EXPUNGE")
# Without ENABLE QRESYNC its parameters are refused.
out["d_select"] = raw(d, f"SELECT INBOX (QRESYNC ({validity} {highest}))")
out["d_plain"] = raw(d, "SELECT INBOX")
out["d_fetch"] = raw(d, f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {highest} VANISHED)")
for m in (a, b, c, d):
    m.logout()
print(json.dumps(out))
"#
    );
    let out = Answers::parse(&python(&program, &[&host, "alice", "alice-password"]));
    let text = |key: &str| out.text(key);
    let starred = |key: &str| -> Vec<String> {
        out.lines(key)
            .into_iter()
            .filter(|l| l.starts_with("* ") && !l.starts_with("* OK") && !l.starts_with("* FLAGS"))
            .collect()
    };
    assert!(
        text("capability").contains(" QRESYNC"),
        "{}",
        text("capability")
    );
    out.has("a_enable", "* ENABLED QRESYNC");
    // The client without QRESYNC gets EXPUNGE; the one with it, VANISHED and the flag.
    out.has("b_expunge", "* 4 EXPUNGE");
    out.has("b_expunge", "* 3 EXPUNGE");
    let noop = text("a_noop");
    assert!(noop.contains("* VANISHED 3:4"), "{noop}");
    assert!(!noop.contains("EXPUNGE"), "{noop}");
    let flagged = noop
        .lines()
        .find(|l| l.starts_with("* 2 FETCH ("))
        .unwrap_or_else(|| panic!("{noop}"));
    assert!(
        flagged.contains("\\Flagged") && flagged.contains("UID 2") && flagged.contains("MODSEQ ("),
        "{noop}"
    );

    // Coming back: 3 and 4 vanished, 2 changed; 1 and 5 are as the client knew them.
    let resync = starred("c_resync");
    assert!(
        resync.contains(&"* VANISHED (EARLIER) 3:4".to_string()),
        "{resync:?}"
    );
    let fetched: Vec<&String> = resync.iter().filter(|l| l.contains(" FETCH ")).collect();
    assert_eq!(fetched.len(), 1, "{resync:?}");
    assert!(
        fetched[0].starts_with("* 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ ("),
        "{resync:?}"
    );
    // Selecting again closes the mailbox it had (CLOSED); with known UIDs 1:2, 3:4
    // are none of its business.
    let known = text("c_known");
    assert!(known.contains("* OK [CLOSED]"), "{known}");
    assert!(!known.contains("VANISHED"), "{known}");
    assert!(known.contains("* 2 FETCH (UID 2 "), "{known}");
    let fetch = starred("c_fetch");
    assert_eq!(fetch[0], "* VANISHED (EARLIER) 3:4", "{fetch:?}");
    assert_eq!(fetch.len(), 2, "{fetch:?}");
    // Another UIDVALIDITY: the client's state is of no use, nothing is told.
    let other = text("c_other");
    assert!(
        !other.contains("VANISHED") && !other.contains(" FETCH "),
        "{other}"
    );
    assert!(other.contains(" OK [READ-ONLY]"), "{other}");
    let expunge = text("c_expunge");
    assert!(expunge.contains("* VANISHED 1"), "{expunge}");
    assert!(!expunge.contains("EXPUNGE\n"), "{expunge}");

    assert!(text("d_select").contains(" BAD "), "{}", text("d_select"));
    assert!(text("d_fetch").contains(" BAD "), "{}", text("d_fetch"));
}
