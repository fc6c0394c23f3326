//! IMAP as a mail client sees it: Python's imaplib (and curl) against a running
//! `mailsite serve`, after mail arrived over LMTP. One module per part of a client's
//! life.

mod binary;
#[path = "../common/mod.rs"]
mod common;
mod condstore;
mod curl;
mod durability;
mod esearch;
mod idle;
mod imaptest;
mod listext;
mod listing;
mod login;
mod multiappend;
mod qresync;
mod quota;
mod recent;
mod rev2;
mod searchres;
mod session;
mod sorting;
mod utf8;

/// Delivers `count` messages to `rcpt` over LMTP from the site's first sorter address.
pub const DELIVER: &str = r#"
import smtplib, sys
host, rcpt, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
with smtplib.LMTP(host, 10024, source_address=(host.rsplit(".", 1)[0] + ".21", 0)) as s:
    for n in range(1, count + 1):
        s.sendmail("sender@example.org", [rcpt], f"Subject: message {n}\r\n\r\nbody of {n}\r\n".encode())
"#;

/// The start of a Python program that reads answers line by line: `connect()` logs
/// `user` in at `host` (its arguments), `raw(m, command)` sends one command and returns
/// every line up to its tagged answer.
pub const RAW_SESSION: &str = r#"
import imaplib, sys, json
host, user, password = sys.argv[1:4]
def connect():
    m = imaplib.IMAP4(host, 10143, timeout=10)
    m.login(user, password)
    return m
def raw(m, command):
    tag = m._new_tag().decode()
    m.send(f"{tag} {command}\r\n".encode())
    lines = []
    while True:
        line = m.readline().decode().rstrip("\r\n")
        lines.append(line)
        if line.startswith(tag + " "):
            return lines
"#;

/// A site with one user, alice (password `alice-password`), on mailbox1.
pub fn alice_site() -> common::Site {
    let site = common::Site::isolated();
    site.add_user("alice", "alice-password", &[]);
    site
}

/// Runs `program` after [`RAW_SESSION`] as alice against the site's mailbox1, and
/// reads what it printed.
pub fn as_alice(site: &common::Site, program: &str) -> Answers {
    let program = format!("{RAW_SESSION}{program}");
    let printed = common::python(&program, &[&site.addr(11), "alice", "alice-password"]);
    Answers::parse(&printed)
}

/// What a [`RAW_SESSION`] program printed: a JSON object of the lines each command got.
pub struct Answers(pub serde_json::Value);

impl Answers {
    pub fn parse(printed: &str) -> Answers {
        Answers(serde_json::from_str(printed).unwrap_or_else(|e| panic!("{e}: {printed}")))
    }

    /// The lines one command got.
    pub fn lines(&self, key: &str) -> Vec<String> {
        serde_json::from_value(self.0[key].clone()).unwrap_or_else(|_| panic!("{key}: {}", self.0))
    }

    /// The lines one command got, as one text.
    pub fn text(&self, key: &str) -> String {
        self.lines(key).join("\n")
    }

    /// Asserts that one command got exactly this line.
    pub fn has(&self, key: &str, line: &str) {
        let got = self.lines(key);
        assert!(
            got.iter().any(|l| l == line),
            "{key}: no {line:?} in {got:?}"
        );
    }
}
