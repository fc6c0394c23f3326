//! IMAP as a mail client sees it: Python's imaplib (and curl) against a running
//! `mailsite serve`, after mail arrived over LMTP. One module per part of a client's
//! life.

#[path = "../common/mod.rs"]
mod common;
mod curl;
mod durability;
mod idle;
mod login;
mod session;

/// Delivers `count` messages to `rcpt` over LMTP from the site's first sorter address.
pub const DELIVER: &str = r#"
import smtplib, sys
host, rcpt, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
with smtplib.LMTP(host, 10024, source_address=(host.rsplit(".", 1)[0] + ".21", 0)) as s:
    for n in range(1, count + 1):
        s.sendmail("sender@example.org", [rcpt], f"Subject: message {n}\r\n\r\nbody of {n}\r\n".encode())
"#;
