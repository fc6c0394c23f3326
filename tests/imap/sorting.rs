//! SORT and THREAD (RFC 5256) as Python's imaplib asks them (`IMAP4.sort`,
//! `IMAP4.thread`, and `uid("SORT", ...)`), on mail that arrived over LMTP: base
//! subjects, sent dates, first addresses, searches narrowing the set, threads by
//! References and by subject, and the refusals of what is not offered.

use crate::common::{Site, python};

const PROGRAM: &str = r#"
import imaplib, json, smtplib, sys
host = sys.argv[1]
mail = [
    # (from, subject, date, message id, references)
    ("carol@example.org", "Re: lunch", "Tue, 03 Feb 2026 12:00:00 +0000", "<2@x>", "<1@x>"),
    ("alice@example.org", "lunch", "Mon, 02 Feb 2026 12:00:00 +0000", "<1@x>", ""),
    ("bob@example.org", "[team] Fwd: agenda (fwd)", "Sun, 01 Feb 2026 09:00:00 -0300", "<3@x>", ""),
    ("dave@example.org", "Re: Re: lunch", "Wed, 04 Feb 2026 12:00:00 +0000", "<4@x>", "<1@x> <2@x>"),
    ("erin@example.org", "agenda", "Thu, 05 Feb 2026 12:00:00 +0000", "<5@x>", ""),
]
with smtplib.LMTP(host, 10024, source_address=(host.rsplit(".", 1)[0] + ".21", 0)) as s:
    for sender, subject, date, mid, refs in mail:
        head = f"From: {sender}\r\nTo: alice@example.test\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: {mid}\r\n"
        if refs:
            head += f"References: {refs}\r\n"
        s.sendmail(sender, ["alice@example.test"], (head + "\r\nbody\r\n").encode())
m = imaplib.IMAP4(host, 10143, timeout=10)
m.login("alice", "alice-password")
out = {"capabilities": [c.decode() for c in m.capabilities] if isinstance(m.capabilities[0], bytes) else list(m.capabilities)}
m.select("INBOX")
def answer(result):
    typ, data = result
    return [typ, [d.decode() if isinstance(d, bytes) else str(d) for d in data]]
out["subject"] = answer(m.sort("(SUBJECT)", "UTF-8", "ALL"))
out["date"] = answer(m.sort("(DATE)", "UTF-8", "ALL"))
out["reverse_from"] = answer(m.sort("(REVERSE FROM)", "US-ASCII", "ALL"))
out["subject_narrowed"] = answer(m.sort("(SUBJECT DATE)", "UTF-8", "FROM", "example.org", "NOT", "FROM", "dave"))
out["uid_arrival"] = answer(m.uid("SORT", "(REVERSE ARRIVAL)", "UTF-8", "ALL"))
# What REVERSE ARRIVAL must give: newest internal date first, equal ones in mailbox
# order (the deliveries may or may not fall within one second).
import email.utils, re as _re
typ, data = m.uid("FETCH", "1:*", "(INTERNALDATE)")
arrived = {}
for d in data:
    text = d.decode()
    uid = int(_re.search(r"UID (\d+)", text).group(1))
    stamp = _re.search(r'INTERNALDATE "([^"]+)"', text).group(1)
    arrived[uid] = imaplib.Internaldate2tuple(f'INTERNALDATE "{stamp}"'.encode())
order = sorted(arrived, key=lambda u: (-__import__("time").mktime(arrived[u]), u))
out["uid_arrival_expected"] = ["OK", [" ".join(str(u) for u in order)]]
out["uid_reverse_date"] = answer(m.uid("SORT", "(REVERSE DATE)", "UTF-8", "ALL"))
out["references"] = answer(m.thread("REFERENCES", "UTF-8", "ALL"))
out["orderedsubject"] = answer(m.thread("ORDEREDSUBJECT", "UTF-8", "ALL"))
out["uid_references"] = answer(m.uid("THREAD", "REFERENCES", "UTF-8", "ALL"))
for name, args in [
    ("unknown_algorithm", ("THREAD", "NOSUCH", "UTF-8", "ALL")),
    ("display_key", ("SORT", "(DISPLAYFROM)", "UTF-8", "ALL")),
    ("bad_charset", ("SORT", "(SUBJECT)", "KOI8-R", "ALL")),
]:
    try:
        out[name] = answer(m._simple_command(*args))
    except imaplib.IMAP4.error as e:
        out[name] = ["error", [str(e)]]
m.logout()
print(json.dumps(out))
"#;

#[test]
fn sort_and_thread_order_what_the_search_finds() {
    let site = Site::isolated();
    site.add_user("alice", "alice-password", &[]);
    let host = site.addr(11);
    let out = python(PROGRAM, &[&host]);
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    let caps = out["capabilities"].to_string();
    for cap in ["SORT", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES"] {
        assert!(caps.contains(&format!("\"{cap}\"")), "{cap} not in {caps}");
    }
    let ok = |key: &str, expected: &str| {
        assert_eq!(
            out[key],
            serde_json::json!(["OK", [expected]]),
            "{key}: {out}"
        );
    };
    // Base subjects: "agenda" (3 without its list tag and forward markers, then 5),
    // then "lunch" (1, 2, 4 tie and keep the mailbox order).
    ok("subject", "3 5 1 2 4");
    // Sent dates in UTC: 3 is 12:00 UTC on 1 February.
    ok("date", "3 2 1 4 5");
    ok("reverse_from", "5 4 1 3 2");
    // Dave's message is not searched; subject ties broken by date.
    ok("subject_narrowed", "3 5 2 1");
    // Newest arrival first; equal keys (deliveries within one second) keep the
    // mailbox order, reversed or not.
    assert_eq!(
        out["uid_arrival"], out["uid_arrival_expected"],
        "uid_arrival: {out}"
    );
    ok("uid_reverse_date", "5 4 1 2 3");
    // Seq 1 (id 2) replies to seq 2 (id 1), seq 4 to seq 1; the forwarded agenda (3)
    // gathers under the one that is no reply or forward (5); the threads in the order
    // of their first message's date.
    ok("references", "(2 1 4)(5 3)");
    ok("uid_references", "(2 1 4)(5 3)");
    // By subject only: the earliest of each subject, the others its children.
    ok("orderedsubject", "(3 5)(2 (1)(4))");
    for key in ["unknown_algorithm", "display_key"] {
        let text = out[key].to_string();
        assert!(text.contains("BAD"), "{key}: {text}");
    }
    let text = out["bad_charset"].to_string();
    assert!(text.contains("BADCHARSET"), "bad_charset: {text}");
}
