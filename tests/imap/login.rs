//! Logging in: wrong passwords, other servers' users and garbage refused; IMAPS,
//! STARTTLS and AUTHENTICATE PLAIN.

use crate::DELIVER;
use crate::common::{Site, python};

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
