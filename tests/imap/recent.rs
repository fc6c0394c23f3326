//! \Recent as RFC 3501 2.3.2 has it, with Python's imaplib in three sessions: new mail
//! is recent in exactly one session (the first to select the mailbox read-write, or to
//! notice the mail while it has it selected), STATUS and EXAMINE count what nobody has
//! claimed without claiming it, and FETCH FLAGS, SEARCH RECENT/NEW/OLD and NOOP's
//! `* n RECENT` (after mail arrives or a COPY into the selected mailbox) follow.

use crate::common::{Site, python};
use crate::{Answers, DELIVER, RAW_SESSION};

#[test]
fn new_mail_is_recent_in_exactly_one_session() {
    let site = Site::isolated();
    site.add_user("alice", "alice-password", &[]);
    let host = site.addr(11);
    python(DELIVER, &[&host, "alice@example.test", "2"]);
    let program = format!(
        "{RAW_SESSION}{}",
        r#"
import smtplib
def deliver(subject):
    with smtplib.LMTP(host, 10024, source_address=(host.rsplit(".", 1)[0] + ".21", 0)) as s:
        s.sendmail("sender@example.org", ["alice@example.test"], f"Subject: {subject}\r\n\r\nbody\r\n".encode())
out = {}
a, b, c = connect(), connect(), connect()
out["status_before"] = raw(c, "STATUS INBOX (RECENT MESSAGES)")
out["a_select"] = raw(a, "SELECT INBOX")
out["a_fetch"] = raw(a, "FETCH 1:* (FLAGS)")
out["a_search_recent"] = raw(a, "SEARCH RECENT")
out["a_search_new"] = raw(a, "SEARCH NEW")
out["a_search_old"] = raw(a, "SEARCH OLD")
out["b_select"] = raw(b, "SELECT INBOX")
out["b_fetch"] = raw(b, "FETCH 1:* (FLAGS)")
out["b_search_old"] = raw(b, "SEARCH OLD")
deliver("third")
out["c_examine"] = raw(c, "EXAMINE INBOX")
out["status_unclaimed"] = raw(b, "STATUS INBOX (RECENT)")
out["a_noop"] = raw(a, "NOOP")
out["b_noop"] = raw(b, "NOOP")
out["status_after"] = raw(c, "STATUS INBOX (RECENT)")
out["a_copy"] = raw(a, "COPY 1 INBOX")
out["a_fetch_after"] = raw(a, "FETCH 1:* (FLAGS)")
for m in (a, b, c):
    m.logout()
print(json.dumps(out))
"#
    );
    let out = python(&program, &[&host, "alice", "alice-password"]);
    let out = Answers::parse(&out);
    let (lines, has) = (
        |key: &str| out.lines(key),
        |key: &str, line: &str| out.has(key, line),
    );
    has("status_before", "* STATUS INBOX (RECENT 2 MESSAGES 2)");
    has("a_select", "* 2 RECENT");
    let fetched = lines("a_fetch");
    assert!(
        fetched.iter().filter(|l| l.contains("\\Recent")).count() == 2,
        "{fetched:?}"
    );
    has("a_search_recent", "* SEARCH 1 2");
    has("a_search_new", "* SEARCH 1 2");
    has("a_search_old", "* SEARCH");
    // The second session gets none of them.
    has("b_select", "* 0 RECENT");
    assert!(
        !lines("b_fetch").iter().any(|l| l.contains("\\Recent")),
        "{:?}",
        lines("b_fetch")
    );
    has("b_search_old", "* SEARCH 1 2");
    // Unclaimed mail: counted by EXAMINE and STATUS, claimed by neither.
    has("c_examine", "* 1 RECENT");
    has("status_unclaimed", "* STATUS INBOX (RECENT 1)");
    // The first read-write session to notice it claims it.
    has("a_noop", "* 3 EXISTS");
    has("a_noop", "* 3 RECENT");
    has("b_noop", "* 3 EXISTS");
    has("b_noop", "* 0 RECENT");
    has("status_after", "* STATUS INBOX (RECENT 0)");
    // A copy into the selected mailbox is news to this session, and recent in it.
    has("a_copy", "* 4 EXISTS");
    has("a_copy", "* 4 RECENT");
    let after = lines("a_fetch_after");
    assert!(
        after
            .iter()
            .any(|l| l.starts_with("* 4 FETCH") && l.contains("\\Recent")),
        "{after:?}"
    );
}
