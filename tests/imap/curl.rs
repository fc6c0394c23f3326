//! curl as the mail client, over IMAP and POP3.

use crate::DELIVER;
use crate::common::{Site, python};

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
