//! The console in headless Chromium: an operator signs in, looks up a user, drains a
//! mailbox server and reads a report.

use super::*;
use crate::reports::stale_report;

/// Submits a message from alice to another domain through sorter1: the unreachable
/// relay keeps it queued.
fn queue_remote_mail(site: &Site) {
    let out = python(
        r#"
import smtplib, sys
host, password = sys.argv[1:3]
message = b"From: alice@example.test\r\nTo: carol@elsewhere.example\r\nSubject: hi\r\n\r\nhello\r\n"
with smtplib.SMTP(host, 10587, timeout=10) as s:
    s.login("alice", password)
    s.sendmail("alice@example.test", ["carol@elsewhere.example"], message)
print("sent")
"#,
        &[&site.addr(21), "alice-password"],
    );
    assert_eq!(out.trim(), "sent");
}

#[test]
fn an_operator_signs_in_looks_up_drains_and_reads_a_report_in_a_browser() {
    let site = site();
    site.add_user("alice", "alice-password", &[]);
    queue_remote_mail(&site);
    assert_eq!(resolve(&site, "maila"), [site.addr(11)]);
    let report = site.dir.join("alice-report.json");
    std::fs::write(
        &report,
        serde_json::to_string_pretty(&stale_report(&site)).unwrap(),
    )
    .unwrap();

    let base = format!("http://{}", site.http);
    let out = python(
        include_str!("console_browser.py"),
        &[
            &base,
            OPERATOR,
            OPERATOR_PASSWORD,
            "alice",
            "mailbox1",
            report.to_str().unwrap(),
        ],
    );
    let seen: serde_json::Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("the browser script's output is not JSON ({e}):\n{out}"));
    let s = |key: &str| seen[key].as_str().unwrap_or_default().to_string();

    // Signing in, after a wrong password, leads back to the page first asked for.
    assert!(s("login_url").contains("/console/login?next="), "{seen}");
    assert!(
        s("wrong_password").contains("Wrong operator name or password"),
        "{seen}"
    );
    assert!(
        s("after_login_url").ends_with("/console/user?q=alice"),
        "{seen}"
    );
    assert_eq!(s("operator"), OPERATOR);

    // The lookup: letter, alias, server, the settings autoconfig gives, queued mail.
    let lookup = &seen["lookup"];
    let l = |key: &str| lookup[key].as_str().unwrap_or_default().to_string();
    assert_eq!(l("subject"), "alice@example.test");
    assert!(l("user").starts_with("alice"), "{lookup}");
    assert_eq!(l("letter"), "a");
    assert_eq!(l("alias"), "maila.example.test");
    assert_eq!(l("server"), "mailbox1");
    for expected in [
        "IMAP maila.example.test 10993 SSL alice",
        "SMTP outbox.example.test 10465 SSL alice",
    ] {
        assert!(l("settings").contains(expected), "{expected}: {lookup}");
    }
    assert!(
        l("queue").contains("carol@elsewhere.example") && l("queue").contains("pending (remote)"),
        "the queued message is not shown: {lookup}"
    );

    // Draining mailbox1: confirmed on its own page, then the site map and DNS follow.
    assert_eq!(s("confirm_heading"), "Drain mailbox1?");
    assert!(
        s("confirm_text").contains("a (maila.example.test): mailbox1 → mailbox2"),
        "{seen}"
    );
    assert_eq!(s("letter_owner_before"), "mailbox1");
    assert!(
        s("flash").starts_with("mailbox1 is now maintenance"),
        "{seen}"
    );
    assert_eq!(s("server_state_after"), "maintenance");
    assert_eq!(s("letter_owner_after"), "mailbox2");
    let moved = site.within(Duration::from_secs(5), || {
        resolve(&site, "maila") == [site.addr(12)]
    });
    assert!(
        moved.is_some(),
        "maila still resolves to {:?}",
        resolve(&site, "maila")
    );
    assert!(
        site.ok(&["server", "list"], None)
            .lines()
            .any(|l| l.starts_with("mailbox1") && l.contains("maintenance"))
    );

    // The report, next to the site's truth, with the likely causes.
    assert_eq!(s("report_heading"), "Helper report for alice@example.test");
    let causes = s("causes");
    assert!(
        causes.contains(&format!(
            "the user's computer had maila.example.test at {} but the site has it at {}",
            site.addr(11),
            site.addr(12)
        )),
        "{causes}"
    );
    assert!(
        causes.contains("served by mailbox2 as maila.example.test (mailbox1 is maintenance)"),
        "{causes}"
    );
    assert!(s("names").contains("differs"), "{seen}");
    assert!(
        s("report_text").contains("C: a1 LOGIN alice <redacted>"),
        "the transcript is not shown as text"
    );
    assert_eq!(seen["report_html_has_script"], false);

    // Signing out ends the session.
    assert_eq!(s("signed_out"), "You are signed out.");
    assert_eq!(s("after_signout"), "Sign in");

    // Who did what is in the log; no password is.
    let log = site.log();
    let action = log
        .lines()
        .find(|l| l.contains("console: server state set"))
        .unwrap_or_else(|| panic!("the drain is not logged:\n{log}"));
    assert!(
        action.contains("opal") && action.contains("mailbox1") && action.contains("maintenance"),
        "{action}"
    );
    assert!(!log.contains(OPERATOR_PASSWORD) && !log.contains("not the password"));
}
