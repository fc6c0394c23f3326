//! IMAP as a mail client sees it: Python's imaplib against a running `mailsite serve`,
//! after mail arrived over LMTP.

mod common;

use common::{Site, python};

const DELIVER: &str = r#"
import smtplib, sys
host, rcpt, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
with smtplib.LMTP(host, 10024, source_address=(host.rsplit(".", 1)[0] + ".21", 0)) as s:
    for n in range(1, count + 1):
        s.sendmail("sender@example.org", [rcpt], f"Subject: message {n}\r\n\r\nbody of {n}\r\n".encode())
"#;

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
        fetch[0].starts_with("1 (FLAGS () UID 1 RFC822.SIZE "),
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
    assert_eq!(out["flags_after_peek"], "2 (FLAGS ())");
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

const REFUSALS: &str = r#"
import imaplib, sys, json, socket, time
host, user, password, other, other_password = sys.argv[1:6]
out = {}
m = imaplib.IMAP4(host, 10143, timeout=10)
try:
    m.login(user, "wrong-password")
    out["wrong"] = "OK"
except m.error as e:
    out["wrong"] = str(e)
m.logout()
m = imaplib.IMAP4(host, 10143, timeout=10)
try:
    m.login(other, other_password)
    out["referral"] = "OK"
except m.error as e:
    out["referral"] = str(e)
out["after_referral"] = m.state
m.logout()

# A garbage line gets BAD and the connection keeps working.
s = socket.create_connection((host, 10143), timeout=10)
f = s.makefile("rb")
f.readline()
s.sendall(b"a1 FROBNICATE now\r\n")
out["garbage"] = f.readline().decode().strip()
s.sendall(b"\x01\x02 nonsense\r\n")
out["garbage_untagged"] = f.readline().decode().strip()
# A literal over the limit is refused before it is sent.
s.sendall(b"a5 APPEND INBOX {999999999}\r\n")
out["too_long"] = f.readline().decode().strip()
s.sendall(b"a2 NOOP\r\n")
out["after_garbage"] = f.readline().decode().strip()
s.sendall(b"a3 SELECT INBOX\r\n")
out["select_before_login"] = f.readline().decode().strip()
s.sendall(b"a4 LOGOUT\r\n")
out["logout"] = [f.readline().decode().strip(), f.readline().decode().strip()]
s.close()
print(json.dumps(out))
"#;

#[test]
fn wrong_passwords_other_servers_and_garbage_are_refused() {
    let site = Site::isolated();
    site.add_user("alice", "alice-password", &[]);
    site.add_user("nora", "nora-password", &[]);
    let out = python(
        REFUSALS,
        &[
            &site.addr(11),
            "alice",
            "alice-password",
            "nora",
            "nora-password",
        ],
    );
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    let text = out.to_string();
    assert!(
        out["wrong"]
            .as_str()
            .unwrap()
            .contains("[AUTHENTICATIONFAILED]"),
        "{text}"
    );
    let referral = out["referral"].as_str().unwrap();
    assert!(
        referral.contains("[REFERRAL imap://nora@mailn.example.test/]"),
        "{text}"
    );
    assert_eq!(out["after_referral"], "NONAUTH");
    assert!(
        out["garbage"].as_str().unwrap().starts_with("a1 BAD"),
        "{text}"
    );
    assert!(
        out["too_long"].as_str().unwrap().starts_with("a5 BAD"),
        "{text}"
    );
    assert!(
        out["garbage_untagged"]
            .as_str()
            .unwrap()
            .starts_with("* BAD"),
        "{text}"
    );
    assert!(
        out["after_garbage"].as_str().unwrap().starts_with("a2 OK"),
        "{text}"
    );
    assert!(
        out["select_before_login"]
            .as_str()
            .unwrap()
            .starts_with("a3 BAD"),
        "{text}"
    );
    assert!(
        out["logout"][0].as_str().unwrap().starts_with("* BYE"),
        "{text}"
    );
    assert!(
        out["logout"][1].as_str().unwrap().starts_with("a4 OK"),
        "{text}"
    );
}

const TLS: &str = r#"
import imaplib, ssl, sys, json, base64
host, ca, user, password = sys.argv[1:5]
ctx = ssl.create_default_context(cafile=ca)
# The certificate names the mail<letter> aliases, not loopback addresses; the chain is
# still verified.
ctx.check_hostname = False
out = {}
m = imaplib.IMAP4_SSL(host, 10993, ssl_context=ctx, timeout=10)
out["implicit_caps"] = list(m.capabilities)
out["implicit_login"] = m.login(user, password)[0]
typ, data = m.select("INBOX")
out["implicit_exists"] = int(data[0])
m.logout()

m = imaplib.IMAP4(host, 10143, timeout=10)
out["starttls"] = m.starttls(ssl_context=ctx)[0]
out["starttls_caps"] = list(m.capabilities)
# AUTHENTICATE PLAIN, answering the continuation request.
out["authenticate"] = m.authenticate("PLAIN", lambda _: f"\0{user}\0{password}".encode())[0]
m.logout()

# SASL-IR: the initial response on the command line.
m = imaplib.IMAP4(host, 10143, timeout=10)
ir = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
out["sasl_ir"] = m._simple_command("AUTHENTICATE", "PLAIN", ir)[0]
m.logout()
print(json.dumps(out))
"#;

#[test]
fn imaps_starttls_and_authenticate_plain() {
    let site = Site::isolated();
    site.add_user("bob", "bob-password", &[]);
    python(DELIVER, &[&site.addr(11), "bob@example.test", "1"]);
    let ca = site.dir.join("data/tls/ca.pem");
    let out = python(
        TLS,
        &[&site.addr(11), ca.to_str().unwrap(), "bob", "bob-password"],
    );
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    let text = out.to_string();
    let implicit: Vec<String> = serde_json::from_value(out["implicit_caps"].clone()).unwrap();
    assert!(implicit.contains(&"AUTH=PLAIN".to_string()), "{text}");
    assert!(!implicit.contains(&"STARTTLS".to_string()), "{text}");
    assert_eq!(out["implicit_login"], "OK");
    assert_eq!(out["implicit_exists"], 1);
    assert_eq!(out["starttls"], "OK");
    let after: Vec<String> = serde_json::from_value(out["starttls_caps"].clone()).unwrap();
    assert!(!after.contains(&"STARTTLS".to_string()), "{text}");
    assert_eq!(out["authenticate"], "OK", "{text}");
    assert_eq!(out["sasl_ir"], "OK", "{text}");
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

const TWO_SESSIONS: &str = r#"
import imaplib, smtplib, sys, json, time
host, user, password = sys.argv[1:4]
out = {}
def connect():
    m = imaplib.IMAP4(host, 10143, timeout=10)
    m.login(user, password)
    m.select("INBOX")
    return m
a, b = connect(), connect()
# A flag set in one session shows in the other at its next NOOP.
b.store("1", "+FLAGS", "\\Flagged")
a.noop()
out["a_sees_flag"] = [d.decode() for d in a.untagged_responses.pop("FETCH", [])]
# An expunge in one session shows as EXPUNGE in the other.
a.store("2", "+FLAGS", "\\Deleted")
a.expunge()
b.noop()
out["b_sees_expunge"] = [d.decode() for d in b.untagged_responses.pop("EXPUNGE", [])]
out["b_exists"] = [d.decode() for d in b.untagged_responses.pop("EXISTS", [])]

# IDLE: a delivery, a flag change and an APPEND by the other session arrive unasked.
b.send(b"i1 IDLE\r\n")
out["idle_start"] = b.readline().decode().strip()
def until(word):
    lines = []
    while True:
        line = b.readline().decode().strip()
        lines.append(line)
        if word in line:
            return lines
start = time.monotonic()
with smtplib.LMTP(host, 10024, source_address=(host.rsplit(".", 1)[0] + ".21", 0)) as s:
    s.sendmail("sender@example.org", [user + "@example.test"], b"Subject: pushed\r\n\r\nnow\r\n")
out["idle_delivery"] = until("EXISTS")
out["idle_delay"] = time.monotonic() - start
a.store("1", "+FLAGS", "\\Seen")
out["idle_flags"] = until("FETCH")
a.append("INBOX", None, None, b"Subject: appended\r\n\r\nby a\r\n")
out["idle_append"] = until("EXISTS")
a.uid("STORE", "1", "+FLAGS", "\\Deleted")
a.expunge()
out["idle_expunge"] = until("EXPUNGE")
b.send(b"DONE\r\n")
out["idle_done"] = until("i1 ")
typ, data = b.fetch("1:*", "(UID FLAGS)")
out["b_after"] = [d.decode() for d in data]
typ, data = a.fetch("1:*", "(UID FLAGS)")
out["a_after"] = [d.decode() for d in data]
a.logout()
b.logout()
print(json.dumps(out))
"#;

#[test]
fn two_sessions_and_idle_see_each_others_changes() {
    let site = Site::isolated();
    site.add_user("carol", "carol-password", &[]);
    python(DELIVER, &[&site.addr(11), "carol@example.test", "3"]);
    let out = python(TWO_SESSIONS, &[&site.addr(11), "carol", "carol-password"]);
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    let text = out.to_string();
    let joined = |key: &str| out[key].to_string();
    assert!(joined("a_sees_flag").contains("\\\\Flagged"), "{text}");
    assert!(joined("a_sees_flag").contains("UID 1"), "{text}");
    assert_eq!(out["b_sees_expunge"], serde_json::json!(["2"]), "{text}");
    assert!(
        out["idle_start"].as_str().unwrap().starts_with('+'),
        "{text}"
    );
    // The delivery is pushed within a second: it is the only EXISTS, now 3 messages.
    assert!(joined("idle_delivery").contains("* 3 EXISTS"), "{text}");
    assert!(out["idle_delay"].as_f64().unwrap() < 1.0, "{text}");
    assert!(joined("idle_flags").contains("\\\\Seen"), "{text}");
    assert!(joined("idle_append").contains("* 4 EXISTS"), "{text}");
    assert!(joined("idle_expunge").contains("* 1 EXPUNGE"), "{text}");
    assert!(joined("idle_done").contains("i1 OK"), "{text}");
    // Both sessions end with the same view: UIDs 3 (delivered earlier), 4, 5.
    assert_eq!(out["a_after"], out["b_after"], "{text}");
    assert!(joined("b_after").contains("UID 3 "), "{text}");
    assert!(joined("b_after").contains("UID 5 "), "{text}");
    assert!(!joined("b_after").contains("UID 1 "), "{text}");
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

const SILENCE: &str = r#"
import socket, sys, json, time, threading
host, user, password = sys.argv[1:4]
out = {}
def silent(name, port, lines):
    s = socket.create_connection((host, port), timeout=20)
    f = s.makefile("rb")
    f.readline()
    for line in lines:
        s.sendall(line)
        while True:
            reply = f.readline()
            if not reply.startswith(b"*") or b"IDLE" in line:
                break
        out.setdefault(name + "_replies", []).append(reply.decode().strip())
    start = time.monotonic()
    last = f.readline().decode().strip()
    out[name] = [last, round(time.monotonic() - start, 1), f.readline() == b""]
login = f"a LOGIN {user} {password}\r\n".encode()
threads = [
    threading.Thread(target=silent, args=("imap_before_login", 10143, [])),
    threading.Thread(target=silent, args=("imap_selected", 10143, [login, b"b SELECT INBOX\r\n"])),
    threading.Thread(target=silent, args=("imap_idle", 10143, [login, b"b SELECT INBOX\r\n", b"c IDLE\r\n"])),
    threading.Thread(target=silent, args=("pop3_before_login", 10110, [])),
    threading.Thread(target=silent, args=("pop3_after_login", 10110, [f"USER {user}\r\n".encode(), f"PASS {password}\r\n".encode()])),
]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(out))
"#;

#[test]
fn silent_clients_are_disconnected_after_the_configured_timeouts() {
    let site = Site::isolated_with(|text| {
        text.replacen("login = 60 ", "login = 2 ", 1)
            .replacen("imap = 1800", "imap = 4", 1)
            .replacen("pop3 = 600", "pop3 = 4", 1)
    });
    site.add_user("erin", "erin-password", &[]);
    let out = python(SILENCE, &[&site.addr(11), "erin", "erin-password"]);
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    let text = out.to_string();
    for (name, farewell, seconds) in [
        ("imap_before_login", "* BYE", 2.0),
        ("imap_selected", "* BYE", 4.0),
        ("imap_idle", "* BYE", 4.0),
        ("pop3_before_login", "-ERR", 2.0),
        ("pop3_after_login", "-ERR", 4.0),
    ] {
        let [last, elapsed, closed] = &out[name].as_array().unwrap()[..] else {
            panic!("{text}");
        };
        assert!(
            last.as_str().unwrap().starts_with(farewell),
            "{name}: {text}"
        );
        let elapsed = elapsed.as_f64().unwrap();
        assert!(
            elapsed >= seconds - 0.5 && elapsed < seconds + 3.0,
            "{name}: {text}"
        );
        assert_eq!(closed, true, "{name} is closed: {text}");
    }
}

const KEEPALIVE: &str = r#"
import imaplib, sys, json, time
host, user, password = sys.argv[1:4]
m = imaplib.IMAP4(host, 10143, timeout=10)
m.login(user, password)
m.select("INBOX")
m.send(b"i1 IDLE\r\n")
out = {"start": m.readline().decode().strip(), "lines": []}
start = time.monotonic()
while time.monotonic() - start < 3.5:
    line = m.readline().decode().strip()
    out["lines"].append([line, round(time.monotonic() - start, 2)])
    if len(out["lines"]) >= 3:
        break
m.send(b"DONE\r\n")
out["done"] = m.readline().decode().strip()
m.logout()
print(json.dumps(out))
"#;

/// A client that IDLEs is sent `* OK Still here` every `timeouts.idle_keepalive`
/// seconds, so that NATs and firewalls on the way see traffic; DONE ends the IDLE
/// as before.
#[test]
fn an_idle_client_gets_keepalives_at_the_configured_interval() {
    let site =
        Site::isolated_with(|text| text.replacen("idle_keepalive = 120", "idle_keepalive = 1", 1));
    site.add_user("erin", "erin-password", &[]);
    let out = python(KEEPALIVE, &[&site.addr(11), "erin", "erin-password"]);
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    let text = out.to_string();
    assert!(out["start"].as_str().unwrap().starts_with('+'), "{text}");
    let lines = out["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 3, "{text}");
    for (n, line) in lines.iter().enumerate() {
        assert_eq!(line[0], "* OK Still here", "{text}");
        let at = line[1].as_f64().unwrap();
        let want = (n + 1) as f64;
        assert!(
            at > want - 0.5 && at < want + 0.5,
            "keepalive {n} at {at} s: {text}"
        );
    }
    assert!(out["done"].as_str().unwrap().starts_with("i1 OK"), "{text}");
}

/// APPENDs in a stream, printing "N UID" for each one acknowledged, and LMTP
/// deliveries beside it, printing "lmtp N"; both stop when the server vanishes.
const APPEND_STREAM: &str = r#"
import imaplib, smtplib, sys, time, threading, re
host, user, password, first, seconds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
end = time.time() + seconds
lock = threading.Lock()
def say(line):
    # One whole line at a time: print() writes its pieces separately, and the two
    # threads' pieces could interleave into a line that reads as a different pair.
    with lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
def lmtp():
    n = first
    try:
        s = smtplib.LMTP(host, 10024, timeout=5, source_address=(host.rsplit(".", 1)[0] + ".21", 0))
        while time.time() < end:
            s.sendmail("sender@example.org", [user + "@example.test"], f"Subject: delivered {n}\r\n\r\nbody {n}\r\n".encode())
            say(f"lmtp {n}")
            n += 1
    except Exception:
        pass
threading.Thread(target=lmtp).start()
n = first
try:
    m = imaplib.IMAP4(host, 10143, timeout=5)
    m.login(user, password)
    while time.time() < end:
        typ, data = m.append("INBOX", "(\\Flagged)", None, f"Subject: appended {n}\r\n\r\nbody {n}\r\n".encode())
        uid = re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1).decode()
        say(f"{n} {uid}")
        n += 1
except Exception:
    pass
"#;

const EVERY_SUBJECT: &str = r#"
import imaplib, sys, json, re
host, user, password = sys.argv[1:4]
m = imaplib.IMAP4(host, 10143, timeout=20)
m.login(user, password)
m.select("INBOX")
typ, data = m.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
out = {}
for item in data:
    if isinstance(item, tuple):
        uid = re.search(rb"UID (\d+)", item[0]).group(1).decode()
        flags = re.search(rb"FLAGS \(([^)]*)\)", item[0]).group(1).decode()
        out[uid] = [item[1].decode().strip(), flags]
print(json.dumps(out))
"#;

#[test]
fn every_acknowledged_append_and_delivery_survives_sigkill() {
    let mut site = Site::isolated();
    site.add_user("frank", "frank-password", &[]);
    let mut appended: Vec<(String, String)> = Vec::new();
    let mut delivered: Vec<String> = Vec::new();
    for round in 0..3u32 {
        let child = common::Lines::spawn(std::process::Command::new("python3").args([
            "-c",
            APPEND_STREAM,
            &site.addr(11),
            "frank",
            "frank-password",
            &(round * 100_000).to_string(),
            "4",
        ]));
        // Kill while both streams are well under way.
        common::wait_until(|| {
            child.count(|l| l.starts_with("lmtp")) >= 3
                && child.count(|l| !l.starts_with("lmtp")) >= 3
        });
        site.kill_hard();
        let lines = child.finish();
        let text = lines.join("\n");
        let before = (appended.len(), delivered.len());
        for line in &lines {
            match line.split_whitespace().collect::<Vec<_>>()[..] {
                ["lmtp", n] => delivered.push(n.to_string()),
                [n, uid] => appended.push((n.to_string(), uid.to_string())),
                _ => {}
            }
        }
        assert!(
            appended.len() > before.0 && delivered.len() > before.1,
            "round {round}: nothing was acknowledged before the kill:\n{text}"
        );
        site.start_again();
    }
    let out = python(EVERY_SUBJECT, &[&site.addr(11), "frank", "frank-password"]);
    let stored: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&out).unwrap();
    // Every acknowledged APPEND is there under the UID it was given, with its flag.
    for (n, uid) in &appended {
        let entry = stored
            .get(uid)
            .unwrap_or_else(|| panic!("acknowledged APPEND {n} (UID {uid}) is missing"));
        assert_eq!(entry[0], format!("Subject: appended {n}"), "UID {uid}");
        assert!(
            entry[1].as_str().unwrap().contains("\\Flagged"),
            "UID {uid}"
        );
    }
    let subjects: std::collections::HashSet<&str> =
        stored.values().filter_map(|v| v[0].as_str()).collect();
    for n in &delivered {
        assert!(
            subjects.contains(format!("Subject: delivered {n}").as_str()),
            "acknowledged delivery {n} is missing"
        );
    }
    // No message is there twice.
    assert_eq!(subjects.len(), stored.len());
}

const BIG_FETCH: &str = r#"
import imaplib, socket, sys, json
host, user, password = sys.argv[1:4]
out = {}
m = imaplib.IMAP4(host, 10143, timeout=20)
m.login(user, password)
bodies = [(f"Subject: big {n}\r\n\r\n".encode() + bytes([65 + n]) * 700_000 + b"\r\n") for n in range(3)]
for b in bodies:
    m.append("INBOX", None, None, b)
m.select("INBOX")
typ, data = m.fetch("1:*", "(BODY.PEEK[])")
got = [d[1] for d in data if isinstance(d, tuple)]
out["bodies_equal"] = got == bodies
m.logout()
# Pipelined: the FETCH answer comes in parts, and the NOOP behind it is answered after.
s = socket.create_connection((host, 10143), timeout=20)
s.sendall(f"l LOGIN {user} {password}\r\ns SELECT INBOX\r\na FETCH 1:* (RFC822.SIZE BODY.PEEK[])\r\nb NOOP\r\nc LOGOUT\r\n".encode())
buf = b""
while True:
    chunk = s.recv(1 << 16)
    if not chunk:
        break
    buf += chunk
out["fetch_ok_at"] = buf.find(b"\r\na OK")
out["noop_ok_at"] = buf.find(b"\r\nb OK")
out["logout_ok"] = b"\r\nc OK" in buf
out["literals"] = buf.count(b"{700020}")
out["size"] = len(buf)
print(json.dumps(out))
"#;

#[test]
fn large_fetches_are_answered_in_parts_and_pipelining_holds() {
    let site = Site::isolated();
    site.add_user("gina", "gina-password", &[]);
    let out = python(BIG_FETCH, &[&site.addr(11), "gina", "gina-password"]);
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    let text = format!("{out}");
    assert_eq!(out["bodies_equal"], true, "{text}");
    assert_eq!(out["literals"], 3, "{text}");
    let (fetch, noop) = (
        out["fetch_ok_at"].as_i64().unwrap(),
        out["noop_ok_at"].as_i64().unwrap(),
    );
    assert!(fetch > 2_100_000 && noop > fetch, "{text}");
    assert_eq!(out["logout_ok"], true, "{text}");
}

/// Runs curl for a mail URL; returns what it printed, or its error.
fn mail_curl(args: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("run curl");
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

#[test]
fn curl_reads_searches_flags_moves_and_expunges_over_imap() {
    let site = Site::isolated();
    site.add_user("hal", "hal-password", &[]);
    python(DELIVER, &[&site.addr(11), "hal@example.test", "3"]);
    let base = format!("imap://{}:10143", site.addr(11));
    let user = ["-u", "hal:hal-password"];
    let curl = |url: &str, extra: &[&str]| {
        let mut args: Vec<&str> = user.to_vec();
        args.extend(extra);
        args.push(url);
        mail_curl(&args)
    };
    let list = curl(&format!("{base}/"), &[]).unwrap();
    assert!(list.contains("\\Sent") && list.contains("INBOX"), "{list}");
    let body = curl(&format!("{base}/INBOX;UID=2"), &[]).unwrap();
    assert!(
        body.contains("Subject: message 2") && body.contains("body of 2"),
        "{body}"
    );
    let search = curl(
        &format!("{base}/INBOX"),
        &["-X", "UID SEARCH SUBJECT \"message 3\""],
    );
    assert!(search.unwrap().contains("* SEARCH 3"));
    let store = curl(
        &format!("{base}/INBOX"),
        &["-X", "UID STORE 1 +FLAGS (\\Flagged)"],
    );
    assert!(store.unwrap().contains("\\Flagged"));
    let flagged = curl(&format!("{base}/INBOX"), &["-X", "SEARCH FLAGGED"]).unwrap();
    assert!(flagged.contains("* SEARCH 1"), "{flagged}");
    curl(&format!("{base}/INBOX"), &["-X", "UID MOVE 2 Archive"]).unwrap();
    let moved = curl(&format!("{base}/Archive;UID=1"), &[]).unwrap();
    assert!(moved.contains("Subject: message 2"), "{moved}");
    curl(
        &format!("{base}/INBOX"),
        &["-X", "UID STORE 3 +FLAGS (\\Deleted)"],
    )
    .unwrap();
    curl(&format!("{base}/INBOX"), &["-X", "EXPUNGE"]).unwrap();
    let left = curl(&format!("{base}/INBOX"), &["-X", "UID SEARCH ALL"]).unwrap();
    assert!(left.trim_end().ends_with("* SEARCH 1"), "{left}");
    // A wrong password is an error curl reports, and gets nothing.
    let wrong = mail_curl(&["-u", "hal:nope", &format!("{base}/INBOX;UID=1")]);
    assert!(wrong.unwrap_err().contains("Login denied"));
    // So is a message that is not there, or a mailbox name that tries to leave.
    let missing = curl(&format!("{base}/INBOX;UID=99"), &[]);
    assert!(
        missing.as_deref().unwrap_or_default().is_empty(),
        "{missing:?}"
    );
    assert!(curl(&format!("{base}/..%2F..%2Fetc;UID=1"), &[]).is_err());
}

#[test]
fn curl_downloads_and_deletes_over_pop3() {
    let site = Site::isolated();
    site.add_user("ivy", "ivy-password", &[]);
    python(DELIVER, &[&site.addr(11), "ivy@example.test", "2"]);
    let base = format!("pop3://{}:10110", site.addr(11));
    let user = ["-u", "ivy:ivy-password"];
    let run = |path: &str, extra: &[&str]| {
        let mut args: Vec<&str> = user.to_vec();
        args.extend(extra);
        let url = format!("{base}{path}");
        args.push(&url);
        mail_curl(&args)
    };
    let list = run("/", &[]).unwrap();
    assert_eq!(list.lines().count(), 2, "{list}");
    let first = run("/1", &[]).unwrap();
    assert!(first.contains("Subject: message 1"), "{first}");
    let uidl = run("/", &["-X", "UIDL"]).unwrap();
    assert_eq!(uidl.lines().count(), 2, "{uidl}");
    run("/", &["-X", "DELE 1", "-I"]).unwrap();
    let after = run("/", &[]).unwrap();
    assert_eq!(after.lines().count(), 1, "{after}");
    let wrong = mail_curl(&["-u", "ivy:nope", &format!("{base}/1")]);
    assert!(wrong.is_err());
}
