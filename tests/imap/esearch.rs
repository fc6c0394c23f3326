//! ESEARCH (RFC 4731) as a client uses it, sent by Python's imaplib: `SEARCH RETURN
//! (...)` and `UID SEARCH RETURN (...)` answer with one `ESEARCH` line of what was
//! asked (MIN, MAX, ALL, COUNT), with CONDSTORE's MODSEQ of what is returned (RFC 7162
//! 3.1.5), and the plain SEARCH answer is unchanged. A command that turns CONDSTORE on
//! with a mailbox open tells its HIGHESTMODSEQ first (RFC 7162 3.1).

use crate::common::python;
use crate::{DELIVER, alice_site, as_alice};

const PROGRAM: &str = r#"
import re
out = {}
a, b = connect(), connect()
out["capability"] = raw(a, "CAPABILITY")
out["select"] = raw(a, "SELECT INBOX")
out["store"] = raw(a, "STORE 2,4 +FLAGS.SILENT (\\Seen)")
out["min_max_count"] = raw(a, "SEARCH RETURN (MIN MAX COUNT) SEEN")
out["uid_all"] = raw(a, "UID SEARCH RETURN () ALL")
out["all_unseen"] = raw(a, "SEARCH RETURN (ALL) UNSEEN")
out["none"] = raw(a, "SEARCH RETURN (MIN MAX ALL COUNT) DELETED")
out["charset"] = raw(a, "SEARCH RETURN (COUNT) CHARSET UTF-8 SUBJECT \"message\"")
out["plain"] = raw(a, "SEARCH SEEN")
out["save"] = raw(a, "SEARCH RETURN (SAVE) ALL")
out["partial"] = raw(a, "SEARCH RETURN (PARTIAL 1:2) ALL")
# CONDSTORE comes on with this FETCH: HIGHESTMODSEQ is told first, and only once.
out["fetch_modseq"] = raw(a, "FETCH 1:* (MODSEQ)")
out["fetch_again"] = raw(a, "FETCH 1 (MODSEQ)")
out["modseqs"] = {
    int(m.group(1)): int(m.group(2))
    for m in re.finditer(r"\* (\d+) FETCH \(MODSEQ \((\d+)\)\)", "\n".join(out["fetch_modseq"]))
}
# Another session changes message 5; a finds it by MODSEQ, with its MODSEQ.
b.select("INBOX")
out["b_store"] = raw(b, "STORE 5 +FLAGS.SILENT (\\Flagged)")
highest = max(out["modseqs"].values())
out["modseq_count"] = raw(a, f"UID SEARCH RETURN (COUNT) MODSEQ {highest + 1}")
out["modseq_min_max"] = raw(a, "SEARCH RETURN (MIN MAX) MODSEQ 1")
out["modseq_5"] = raw(a, "FETCH 5 (MODSEQ)")
for m in (a, b):
    m.logout()
print(json.dumps(out))
"#;

#[test]
fn esearch_returns_what_was_asked_with_its_modseq() {
    let site = alice_site();
    python(DELIVER, &[&site.addr(11), "alice@example.test", "6"]);
    let out = as_alice(&site, PROGRAM);
    // Each command's tag, as the ESEARCH correlator must name it.
    let tag = |key: &str| -> String {
        let lines = out.lines(key);
        let last = lines.last().expect("a tagged answer").clone();
        last.split(' ').next().unwrap().to_string()
    };
    let esearch = |key: &str, rest: &str| {
        let line = format!("* ESEARCH (TAG \"{}\"){rest}", tag(key));
        out.has(key, &line);
        assert!(out.lines(key).last().unwrap().contains(" OK "), "{key}");
    };
    assert!(
        out.text("capability").contains(" ESEARCH"),
        "{}",
        out.text("capability")
    );
    esearch("min_max_count", " MIN 2 MAX 4 COUNT 2");
    esearch("uid_all", " UID ALL 1:6");
    esearch("all_unseen", " ALL 1,3,5:6");
    esearch("none", " COUNT 0");
    esearch("charset", " COUNT 6");
    // The plain SEARCH answer stays as it was.
    out.has("plain", "* SEARCH 2 4");
    assert!(
        !out.text("plain").contains("ESEARCH"),
        "{}",
        out.text("plain")
    );
    // SAVE alone answers OK and nothing else (SEARCHRES, tests/imap/searchres.rs).
    let save = out.lines("save");
    assert_eq!(save.len(), 1, "{save:?}");
    assert!(save[0].contains(" OK "), "{save:?}");
    // CONTEXT's PARTIAL is not offered: refused, not half done.
    let partial = out.lines("partial");
    assert_eq!(partial.len(), 1, "{partial:?}");
    assert!(partial[0].contains(" BAD "), "{partial:?}");

    let modseqs: std::collections::BTreeMap<u32, u64> =
        serde_json::from_value(out.0["modseqs"].clone()).unwrap();
    assert_eq!(modseqs.len(), 6, "{}", out.text("fetch_modseq"));
    let highest = *modseqs.values().max().unwrap();
    let fetch = out.lines("fetch_modseq");
    assert_eq!(
        fetch[0],
        format!("* OK [HIGHESTMODSEQ {highest}] Highest MODSEQ"),
        "{fetch:?}"
    );
    assert!(
        !out.text("fetch_again").contains("HIGHESTMODSEQ"),
        "{}",
        out.text("fetch_again")
    );
    // Message 5 (UID 5) is the one changed since; COUNT's MODSEQ is its new one.
    let new_5 = out
        .text("modseq_5")
        .split("MODSEQ (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .and_then(|s| s.parse::<u64>().ok())
        .expect("message 5's MODSEQ");
    assert!(new_5 > highest);
    esearch("modseq_count", &format!(" UID COUNT 1 MODSEQ {new_5}"));
    // MIN and MAX: the higher MODSEQ of those two messages only, not message 5's.
    let min_max = modseqs[&1].max(modseqs[&6]);
    assert!(min_max < new_5);
    esearch("modseq_min_max", &format!(" MIN 1 MAX 6 MODSEQ {min_max}"));
    assert!(!site.log().contains("panicked"));
}
