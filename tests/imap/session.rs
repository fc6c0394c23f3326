//! A mail client's everyday session with Python's imaplib: reading, flags, expunges,
//! appends and copies; structure and searches; renaming, NAMESPACE, ENABLE and LITERAL+.

use crate::common::{Site, python};
use crate::{DELIVER, RAW_SESSION};

const SESSION: &str = r#"
import imaplib, sys, json, re
host, user, password = sys.argv[1], sys.argv[2], sys.argv[3]
out = {}
m = imaplib.IMAP4(host, 10143, timeout=10)
out["greeting"] = m.welcome.decode()
out["capabilities_before"] = list(m.capabilities)
out["login"] = m.login(user, password)[0]
typ, caps = m.capability()
out["capabilities"] = caps[0].decode().split()
typ, lines = m.list()
out["list"] = [l.decode() for l in lines]
typ, data = m.select("INBOX")
out["exists"] = int(data[0])
out["uidvalidity"] = m.untagged_responses.get("UIDVALIDITY", [b"0"])[0].decode()
typ, data = m.fetch("1:*", "(FLAGS UID RFC822.SIZE)")
out["fetch"] = [d.decode() for d in data]
typ, data = m.fetch("2", "(BODY.PEEK[])")
out["body2"] = data[0][1].decode()
typ, data = m.fetch("2", "(FLAGS)")
out["flags_after_peek"] = data[0].decode()
typ, data = m.fetch("3", "(BODY.PEEK[HEADER])")
out["header3"] = data[0][1].decode()
typ, data = m.fetch("3", "(BODY[])")
out["seen_after_body"] = " ".join(x.decode() if isinstance(x, bytes) else x[0].decode() for x in data)
out["store"] = m.store("1", "+FLAGS", "\\Deleted")[1][0].decode()
typ, data = m.expunge()
out["expunge"] = [d.decode() for d in data if d]
typ, data = m.select("INBOX")
out["exists_after"] = int(data[0])
typ, data = m.uid("FETCH", "1:*", "(UID)")
out["uids_after"] = [d.decode() for d in data]
import smtplib
with smtplib.LMTP(host, 10024, source_address=(host.rsplit(".", 1)[0] + ".21", 0)) as s:
    s.sendmail("sender@example.org", [user + "@example.test"], b"Subject: new\r\n\r\nnew\r\n")
m.noop()
out["exists_on_noop"] = [d.decode() for d in m.untagged_responses.pop("EXISTS", [])][-1:]
imaplib.Commands["ID"] = ("NONAUTH", "AUTH", "SELECTED")
typ, data = m._simple_command("ID", "NIL")
out["id"] = [d.decode() for d in m.untagged_responses.pop("ID", [])]
typ, data = m.append("Drafts", "(\\Draft)", None, b"Subject: draft\r\n\r\nnot yet\r\n")
out["append"] = [typ, data[0].decode()]
typ, data = m.copy("1", "Archive")
out["copy"] = [typ, data[0].decode()]
typ, data = m.status("Archive", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)")
out["status"] = data[0].decode()
out["create_evil"] = m.create("../etc")[0]
out["create"] = m.create("Lists/rust")[0]
typ, lines = m.list('""', "Lists/%")
out["list_children"] = [l.decode() for l in lines]
typ, lines = m.list('""', "%")
out["list_top"] = [l.decode() for l in lines]
out["subscribe"] = m.subscribe("Lists/rust")[0]
typ, lines = m.lsub('""', "*")
out["lsub"] = [l.decode() for l in lines if l]
typ, data = m.uid("MOVE", "1:*", "Trash")
out["move"] = typ
typ, data = m.select("INBOX")
out["exists_after_move"] = int(data[0])
typ, data = m.select("Trash", readonly=True)
out["trash"] = int(data[0])
typ, data = m.store("1", "+FLAGS", "\\Seen")
out["store_readonly"] = [typ, data[0].decode()]
out["delete"] = m.delete("Lists/rust")[0]
out["logout"] = m.logout()[0]
print(json.dumps(out))
"#;

fn session(site: &Site, user: &str, password: &str) -> serde_json::Value {
    let out = python(SESSION, &[&site.addr(11), user, password]);
    serde_json::from_str(&out).unwrap()
}

#[test]
fn imaplib_reads_flags_expunges_appends_and_copies() {
    let site = Site::isolated();
    site.add_user("alice", "alice-password", &[]);
    python(DELIVER, &[&site.addr(11), "alice@example.test", "3"]);

    let out = session(&site, "alice", "alice-password");
    let text = out.to_string();
    assert!(
        out["greeting"]
            .as_str()
            .unwrap()
            .contains("mailbox1.example.test"),
        "{text}"
    );
    // From loopback, passwords are allowed without TLS; STARTTLS is offered.
    let before: Vec<String> = serde_json::from_value(out["capabilities_before"].clone()).unwrap();
    for cap in ["IMAP4REV1", "STARTTLS", "AUTH=PLAIN", "SASL-IR"] {
        assert!(before.contains(&cap.to_string()), "{cap} in {before:?}");
    }
    assert!(!before.contains(&"LOGINDISABLED".to_string()));
    assert_eq!(out["login"], "OK");
    let caps: Vec<String> = serde_json::from_value(out["capabilities"].clone()).unwrap();
    for cap in ["UIDPLUS", "MOVE", "SPECIAL-USE", "UNSELECT", "ID"] {
        assert!(caps.contains(&cap.to_string()), "{cap} in {caps:?}");
    }
    assert!(
        !caps
            .iter()
            .any(|c| c == "STARTTLS" || c.starts_with("AUTH="))
    );

    let list: Vec<String> = serde_json::from_value(out["list"].clone()).unwrap();
    assert_eq!(list.len(), 6, "{list:?}");
    for (name, special) in [
        ("INBOX", ""),
        ("Sent", "\\Sent"),
        ("Drafts", "\\Drafts"),
        ("Trash", "\\Trash"),
        ("Junk", "\\Junk"),
        ("Archive", "\\Archive"),
    ] {
        assert!(
            list.iter().any(|l| l.ends_with(&format!("\"/\" {name}"))
                && l.contains(special)
                && l.contains("\\HasNoChildren")),
            "{name} {special} in {list:?}"
        );
    }

    assert_eq!(out["exists"], 3, "{text}");
    assert_ne!(out["uidvalidity"], "0");
    let fetch: Vec<String> = serde_json::from_value(out["fetch"].clone()).unwrap();
    assert_eq!(fetch.len(), 3, "{fetch:?}");
    assert!(
        // New mail is \Recent in the session that selected the mailbox first.
        fetch[0].starts_with("1 (FLAGS (\\Recent) UID 1 RFC822.SIZE "),
        "{fetch:?}"
    );
    let body = out["body2"].as_str().unwrap();
    assert!(
        body.starts_with(
            "Return-Path: <sender@example.org>\r\nDelivered-To: alice@example.test\r\n"
        ),
        "{body}"
    );
    assert!(
        body.ends_with("Subject: message 2\r\n\r\nbody of 2\r\n"),
        "{body}"
    );
    assert_eq!(out["flags_after_peek"], "2 (FLAGS (\\Recent))");
    let header = out["header3"].as_str().unwrap();
    assert!(
        header.ends_with("Subject: message 3\r\n\r\n") && !header.contains("body of"),
        "{header}"
    );
    // BODY[] without PEEK marks the message seen and says so.
    assert!(
        out["seen_after_body"].as_str().unwrap().contains("\\Seen"),
        "{text}"
    );
    assert!(
        out["store"].as_str().unwrap().contains("\\Deleted"),
        "{text}"
    );
    assert_eq!(out["expunge"], serde_json::json!(["1"]));
    assert_eq!(out["exists_after"], 2);
    assert_eq!(
        out["uids_after"],
        serde_json::json!(["1 (UID 2)", "2 (UID 3)"])
    );

    let append = out["append"].as_array().unwrap();
    assert_eq!(append[0], "OK");
    assert!(
        append[1].as_str().unwrap().starts_with("[APPENDUID "),
        "{append:?}"
    );
    let copy = out["copy"].as_array().unwrap();
    assert_eq!(copy[0], "OK");
    assert!(
        copy[1].as_str().unwrap().starts_with("[COPYUID ")
            && copy[1].as_str().unwrap().contains(" 2 1]"),
        "{copy:?}"
    );
    let status = out["status"].as_str().unwrap();
    assert!(
        status.contains("MESSAGES 1")
            && status.contains("UIDNEXT 2")
            && status.contains("UNSEEN 1"),
        "{status}"
    );

    assert_eq!(out["create_evil"], "NO", "{text}");
    assert_eq!(out["create"], "OK");
    let children: Vec<String> = serde_json::from_value(out["list_children"].clone()).unwrap();
    assert_eq!(children.len(), 1, "{children:?}");
    assert!(children[0].contains("Lists/rust"), "{children:?}");
    let top: Vec<String> = serde_json::from_value(out["list_top"].clone()).unwrap();
    assert!(
        top.iter()
            .any(|l| l.contains("\\Noselect \\HasChildren") && l.ends_with(" Lists")),
        "{top:?}"
    );
    let lsub: Vec<String> = serde_json::from_value(out["lsub"].clone()).unwrap();
    assert!(lsub.iter().any(|l| l.contains("Lists/rust")), "{lsub:?}");
    assert_eq!(out["move"], "OK");
    assert_eq!(out["exists_after_move"], 0);
    assert_eq!(out["trash"], 3);
    assert_eq!(out["exists_on_noop"], serde_json::json!(["3"]));
    assert!(
        out["id"][0]
            .as_str()
            .unwrap()
            .contains("\"name\" \"mailsite\""),
        "{text}"
    );
    assert_eq!(out["store_readonly"][0], "NO", "{text}");
    assert!(
        out["store_readonly"][1]
            .as_str()
            .unwrap()
            .contains("read-only"),
        "{text}"
    );
    assert_eq!(out["delete"], "OK");
    assert_eq!(out["logout"], "BYE");
}

const STRUCTURE_DELIVER: &str = r#"
import smtplib, sys
host, rcpt = sys.argv[1], sys.argv[2]
attachment = "JVBERi0xLjQK" * 200
messages = [
    "Subject: throwaway\r\n\r\ngone soon\r\n",
    "From: \"Ann Example\" <ann@example.org>\r\nTo: Bob <bob@example.test>\r\nCc: carl@example.test\r\n"
    "Subject: Quarterly report\r\nDate: Tue, 3 Mar 2026 10:00:00 +0000\r\nMessage-ID: <q1@example.org>\r\n"
    "\r\nNumbers are up.\r\n",
    "From: zed@example.net\r\nTo: bob@example.test\r\nSubject: Alternative\r\nMIME-Version: 1.0\r\n"
    "Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n"
    "--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello plain\r\n"
    "--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Hello html</p>\r\n--alt--\r\n",
    "From: Ann <ann@example.org>\r\nTo: bob@example.test\r\nSubject: With attachment\r\nMIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n"
    "--mix\r\nContent-Type: text/plain\r\n\r\nSee the file.\r\n"
    "--mix\r\nContent-Type: application/pdf; name=\"r.pdf\"\r\nContent-Transfer-Encoding: base64\r\n"
    "Content-Disposition: attachment; filename=\"r.pdf\"\r\n\r\n" + attachment + "\r\n--mix--\r\n",
    "From: other@example.com\r\nTo: bob@example.test\r\nSubject: Other\r\n\r\nnothing\r\n",
]
with smtplib.LMTP(host, 10024, source_address=(host.rsplit(".", 1)[0] + ".21", 0)) as s:
    for m in messages:
        s.sendmail("sender@example.org", [rcpt], m.encode())
"#;

const STRUCTURE_SESSION: &str = r#"
import imaplib, sys, json
host, user, password = sys.argv[1], sys.argv[2], sys.argv[3]
out = {}
def flat(data):
    parts = []
    for d in data:
        if isinstance(d, tuple):
            parts.extend(x.decode(errors="replace") for x in d)
        elif d is not None:
            parts.append(d.decode(errors="replace"))
    return " ".join(parts)
m = imaplib.IMAP4(host, 10143, timeout=10)
m.login(user, password)
m.select("INBOX")
m.store("1", "+FLAGS", "\\Deleted")
m.expunge()
out["envelope"] = flat(m.fetch("1", "(ENVELOPE)")[1])
out["bs_alt"] = flat(m.fetch("2", "(BODYSTRUCTURE)")[1])
out["bs_mixed"] = flat(m.fetch("3", "(BODYSTRUCTURE)")[1])
out["body_simple"] = flat(m.fetch("1", "(BODY)")[1])
typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
out["subject_only"] = data[0][1].decode()
typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT)])")
out["not_subject"] = data[0][1].decode()
typ, data = m.fetch("2", "(BODY.PEEK[2])")
out["part2"] = data[0][1].decode()
typ, data = m.fetch("2", "(BODY.PEEK[1.MIME])")
out["mime1"] = data[0][1].decode()
out["full"] = flat(m.fetch("1", "FULL")[1])
out["flags_after_peek"] = flat(m.fetch("1:4", "(FLAGS)")[1])
m.store("1", "+FLAGS", "\\Seen")
def search(*criteria, charset=None):
    typ, data = m.search(charset, *criteria)
    return [typ, data[0].decode()]
out["from"] = search("FROM", "ann")
out["subject"] = search("SUBJECT", "REPORT")
out["seen"] = search("SEEN")
out["unseen"] = search("UNSEEN")
out["larger"] = search("LARGER", "2000")
out["since"] = search("SINCE", "1-Jan-2000")
out["since_future"] = search("SINCE", "1-Jan-2100")
out["senton"] = search("SENTON", "3-Mar-2026")
out["or"] = search("OR", "SEEN", "FROM", "zed")
out["not"] = search("NOT", "FROM", "ann")
out["uid"] = search("UID", "3:4")
out["group"] = search("(FROM ann SUBJECT attachment)", "2:4")
out["body"] = search("BODY", '"hello html"')
out["utf8"] = search("SUBJECT", "other", charset="UTF-8")
typ, data = m.uid("SEARCH", "FROM", "ann")
out["uid_search"] = [typ, data[0].decode()]
typ, data = m.search("KOI8-R", "ALL")
out["badcharset"] = [typ, data[0].decode()]
m.logout()
print(json.dumps(out))
"#;

#[test]
fn imaplib_fetches_structure_and_searches() {
    let site = Site::isolated();
    site.add_user("dora", "dora-password", &[]);
    python(STRUCTURE_DELIVER, &[&site.addr(11), "dora@example.test"]);
    let out = python(
        STRUCTURE_SESSION,
        &[&site.addr(11), "dora", "dora-password"],
    );
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    let text = out.to_string();
    let get = |key: &str| out[key].as_str().unwrap_or_default().to_string();

    let envelope = get("envelope");
    assert!(
        envelope.starts_with("1 (ENVELOPE (\"Tue, 3 Mar 2026 10:00:00 +0000\" \"Quarterly report\" ((\"Ann Example\" NIL \"ann\" \"example.org\"))"),
        "{envelope}"
    );
    assert!(
        envelope.contains("((\"Bob\" NIL \"bob\" \"example.test\")) ((NIL NIL \"carl\" \"example.test\")) NIL NIL \"<q1@example.org>\"))"),
        "{envelope}"
    );
    let alt = get("bs_alt").to_lowercase();
    assert!(
        alt.contains("(\"text\" \"plain\" (\"charset\" \"utf-8\")")
            && alt.contains("(\"text\" \"html\" (\"charset\" \"utf-8\")")
            && alt.contains("\"alternative\""),
        "{alt}"
    );
    let mixed = get("bs_mixed").to_lowercase();
    assert!(
        mixed.contains("(\"text\" \"plain\"")
            && mixed
                .contains("\"application\" \"pdf\" (\"name\" \"r.pdf\") nil nil \"base64\" 2400")
            && mixed.contains("(\"attachment\" (\"filename\" \"r.pdf\"))")
            && mixed.contains("\"mixed\""),
        "{mixed}"
    );
    let simple = get("body_simple").to_lowercase();
    assert!(
        simple.contains(
            "(body (\"text\" \"plain\" (\"charset\" \"us-ascii\") nil nil \"7bit\" 17 1))"
        ),
        "{simple}"
    );
    assert_eq!(get("subject_only"), "Subject: Quarterly report\r\n\r\n");
    let not_subject = get("not_subject");
    assert!(
        !not_subject.contains("Subject:") && not_subject.contains("Message-ID: <q1@example.org>"),
        "{not_subject}"
    );
    assert_eq!(get("part2"), "<p>Hello html</p>");
    assert_eq!(
        get("mime1"),
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    );
    let full = get("full");
    for item in ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY ("] {
        assert!(full.contains(item), "{item} in {full}");
    }
    assert!(!get("flags_after_peek").contains("\\Seen"), "{text}");

    let search = |key: &str, expected: &str| {
        assert_eq!(
            out[key],
            serde_json::json!(["OK", expected]),
            "{key}: {text}"
        );
    };
    search("from", "1 3");
    search("subject", "1");
    search("seen", "1");
    search("unseen", "2 3 4");
    search("larger", "3");
    search("since", "1 2 3 4");
    search("since_future", "");
    search("senton", "1");
    search("or", "1 2");
    search("not", "2 4");
    search("uid", "2 3");
    search("group", "3");
    search("body", "2");
    search("utf8", "4");
    // UIDs are one more than sequence numbers: UID 1 was expunged.
    search("uid_search", "2 4");
    assert_eq!(out["badcharset"][0], "NO", "{text}");
    assert!(
        out["badcharset"][1]
            .as_str()
            .unwrap()
            .contains("[BADCHARSET (UTF-8 US-ASCII)]"),
        "{text}"
    );
}

const MAILBOX_COMMANDS: &str = r#"
import imaplib, sys, json, socket
host, user, password = sys.argv[1:4]
out = {}
m = imaplib.IMAP4(host, 10143, timeout=10)
m.login(user, password)
caps = m.capability()[1][0].decode().split()
out["caps"] = caps
imaplib.Commands["NAMESPACE"] = ("AUTH", "SELECTED")
imaplib.Commands["ENABLE"] = ("AUTH", "SELECTED")
typ, data = m._simple_command("NAMESPACE")
out["namespace"] = [d.decode() for d in m.untagged_responses.pop("NAMESPACE", [])]
typ, data = m._simple_command("ENABLE", "CONDSTORE")
out["enable"] = typ
out["create"] = m.create("Projects/2026")[0]
m.append("Projects/2026", None, None, b"Subject: plan\r\n\r\nplan\r\n")
m.select("Projects")
out["rename"] = m.rename("Projects", "Work")[0]
typ, lines = m.list('""', "*")
out["list"] = [l.decode() for l in lines]
typ, data = m.select("Work/2026")
out["renamed_child"] = int(data[0])
out["rename_to_existing"] = m.rename("Work", "Sent")[0]
out["rename_missing"] = m.rename("Nothing", "Other")[0]
out["rename_evil"] = m.rename("Work", "../../etc")[0]
out["rename_into_itself"] = m.rename("Work", "Work/inner")[0]
# Renaming INBOX moves its messages into the new mailbox and leaves INBOX empty.
out["rename_inbox"] = m.rename("INBOX", "Old")[0]
typ, data = m.select("INBOX")
out["inbox_after"] = int(data[0])
typ, data = m.select("Old")
out["old_after"] = int(data[0])
m.logout()

# LITERAL+: a non-synchronizing literal needs no continuation.
s = socket.create_connection((host, 10143), timeout=10)
f = s.makefile("rb")
f.readline()
s.sendall(f"a1 LOGIN {user} {password}\r\n".encode())
f.readline()
body = b"Subject: plus\r\n\r\nliteral plus\r\n"
s.sendall(b"a2 APPEND INBOX {%d+}\r\n%s\r\n" % (len(body), body))
out["literal_plus"] = f.readline().decode().strip()
# A line of a megabyte without an end, then its end: BAD, and the session goes on.
s.sendall(b"a3 NOOP " + b"x" * 1_000_000)
s.sendall(b"\r\n")
out["long_line"] = f.readline().decode().strip()
s.sendall(b"a4 NOOP\r\n")
out["after_long_line"] = f.readline().decode().strip()
s.sendall(b"a5 LOGOUT\r\n")
s.close()
print(json.dumps(out))
"#;

#[test]
fn rename_namespace_enable_and_literal_plus() {
    let site = Site::isolated();
    site.add_user("dave", "dave-password", &[]);
    python(DELIVER, &[&site.addr(11), "dave@example.test", "2"]);
    let out = python(MAILBOX_COMMANDS, &[&site.addr(11), "dave", "dave-password"]);
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    let text = out.to_string();
    let caps = out["caps"].to_string();
    for cap in ["IDLE", "NAMESPACE", "ENABLE", "LITERAL+", "MOVE", "UIDPLUS"] {
        assert!(caps.contains(&format!("\"{cap}\"")), "{cap}: {text}");
    }
    assert_eq!(
        out["namespace"],
        serde_json::json!(["((\"\" \"/\")) NIL NIL"]),
        "{text}"
    );
    assert_eq!(out["enable"], "OK", "{text}");
    assert_eq!(out["rename"], "OK", "{text}");
    let list = out["list"].to_string();
    assert!(list.contains("\\\"/\\\" Work/2026"), "{text}");
    assert!(!list.contains("Projects"), "{text}");
    assert_eq!(out["renamed_child"], 1, "{text}");
    for refused in [
        "rename_to_existing",
        "rename_missing",
        "rename_evil",
        "rename_into_itself",
    ] {
        assert_eq!(out[refused], "NO", "{refused}: {text}");
    }
    assert_eq!(out["rename_inbox"], "OK", "{text}");
    assert_eq!(out["inbox_after"], 0, "{text}");
    assert_eq!(out["old_after"], 2, "{text}");
    assert!(
        out["literal_plus"]
            .as_str()
            .unwrap()
            .starts_with("a2 OK [APPENDUID"),
        "{text}"
    );
    assert!(
        out["long_line"].as_str().unwrap().starts_with("a3 BAD"),
        "{text}"
    );
    assert!(
        out["after_long_line"]
            .as_str()
            .unwrap()
            .starts_with("a4 OK"),
        "{text}"
    );
    // Nothing was written outside the user's directory.
    assert!(!site.dir.join("data/etc").exists());
    assert!(!site.dir.join("etc").exists());
}

/// Two sessions on one INBOX, read line by line: a keyword one of them sets is
/// announced in FLAGS and PERMANENTFLAGS to each before the FETCH that shows it, and
/// a later SELECT lists it.
const KEYWORDS: &str = r#"
a, b = connect(), connect()
out = {"select_a": raw(a, "SELECT INBOX"), "select_b": raw(b, "SELECT INBOX")}
out["store"] = raw(a, "STORE 1 +FLAGS ($Label1)")
out["store_again"] = raw(a, "STORE 2 +FLAGS ($Label1)")
out["noop_b"] = raw(b, "NOOP")
out["examine"] = raw(connect(), "EXAMINE INBOX")
print(json.dumps(out))
"#;

#[test]
fn a_new_keyword_is_announced_in_flags_before_it_is_used() {
    let site = Site::isolated();
    site.add_user("kim", "kim-password", &[]);
    python(DELIVER, &[&site.addr(11), "kim@example.test", "2"]);
    let out = python(
        &format!("{RAW_SESSION}{KEYWORDS}"),
        &[&site.addr(11), "kim", "kim-password"],
    );
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    let text = out.to_string();
    let lines = |key: &str| -> Vec<String> {
        out[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect()
    };
    let position = |lines: &[String], what: &str| lines.iter().position(|l| l.contains(what));
    // Before: only the system flags.
    assert!(
        lines("select_a").iter().all(|l| !l.contains("$Label1")),
        "{text}"
    );
    for (key, fetch) in [("store", "* 1 FETCH"), ("noop_b", "* 1 FETCH")] {
        let got = lines(key);
        let flags = position(&got, "* FLAGS (").unwrap_or_else(|| panic!("{key}: {text}"));
        let permanent =
            position(&got, "[PERMANENTFLAGS (").unwrap_or_else(|| panic!("{key}: {text}"));
        let fetch = position(&got, fetch).unwrap_or_else(|| panic!("{key}: {text}"));
        assert!(got[flags].contains("$Label1"), "{key}: {text}");
        assert!(
            got[permanent].contains("$Label1") && got[permanent].contains("\\*"),
            "{key}: {text}"
        );
        assert!(flags < fetch && permanent < fetch, "{key}: {text}");
        assert!(got[fetch].contains("$Label1"), "{key}: {text}");
    }
    // Announced once: the next use of the same keyword needs no new FLAGS.
    assert!(
        position(&lines("store_again"), "* FLAGS (").is_none(),
        "{text}"
    );
    let examine = lines("examine");
    let flags = position(&examine, "* FLAGS (").unwrap();
    assert!(examine[flags].contains("$Label1"), "{text}");
    // Read-only: no flag can be changed for good.
    assert!(
        examine.iter().any(|l| l.contains("[PERMANENTFLAGS ()]")),
        "{text}"
    );
}
