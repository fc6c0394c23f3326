//! App passwords as an operator and a user's devices meet them: `mailsite user
//! app-password add|list|remove`, then Python's imaplib, poplib and smtplib and curl
//! logging in with them; an expired one refused with words that say so (IMAP's
//! `[EXPIRED]`), a removed one refused as a wrong password, the last use and its source
//! listed, and the passwords never in the log.

mod common;

use common::{Site, curl, python};

/// One login per argument (`protocol user password`), each on a new connection; prints
/// one line per login: `ok` or the server's refusal.
const LOGINS: &str = r#"
import imaplib, poplib, smtplib, sys
net = sys.argv[1]
for line in sys.argv[2:]:
    protocol, user, password = line.split(" ", 2)
    try:
        if protocol == "imap":
            m = imaplib.IMAP4(f"127.{net}.0.11", 10143, timeout=10)
            try:
                m.login(user, password)
                m.select("INBOX")
                answer = "ok"
            except imaplib.IMAP4.error as e:
                answer = str(e)
            m.logout()
        elif protocol == "pop3":
            p = poplib.POP3(f"127.{net}.0.11", 10110, timeout=10)
            try:
                p.user(user)
                p.pass_(password)
                p.stat()
                answer = "ok"
            except poplib.error_proto as e:
                answer = str(e)
            p.quit()
        else:
            with smtplib.SMTP(f"127.{net}.0.21", 10587, timeout=10) as s:
                s.ehlo("laptop.example")
                try:
                    s.user, s.password = user, password
                    code, text = s.auth("PLAIN", s.auth_plain)
                    answer = "ok" if code == 235 else f"{code} {text.decode()}"
                except smtplib.SMTPAuthenticationError as e:
                    answer = f"{e.smtp_code} {e.smtp_error.decode()}"
    except Exception as e:
        answer = f"error {e!r}"
    print(answer, flush=True)
"#;

fn logins(site: &Site, attempts: &[String]) -> Vec<String> {
    let mut args = vec![site.net.to_string()];
    args.extend(attempts.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    python(LOGINS, &args).lines().map(str::to_string).collect()
}

fn each_protocol(user: &str, password: &str) -> Vec<String> {
    ["imap", "pop3", "smtp"]
        .iter()
        .map(|p| format!("{p} {user} {password}"))
        .collect()
}

/// Each protocol's refusal of a wrong password (IMAP, POP3, SMTP, in that order).
fn wrong_password(answers: &[String]) {
    assert!(
        answers[0].contains("AUTHENTICATIONFAILED")
            && answers[1].contains("[AUTH]")
            && answers[2].starts_with("535 5.7.8 Authentication credentials invalid"),
        "{answers:?}"
    );
}

/// The generated password in `add`'s text output: the indented line.
fn password_in(out: &str) -> String {
    let line = out
        .lines()
        .find(|l| l.starts_with("    "))
        .unwrap_or_else(|| panic!("no password shown in:\n{out}"));
    let password = line.trim().to_string();
    assert_eq!(password.len(), 19, "{password}");
    password
}

#[test]
fn app_passwords_log_in_everywhere_expire_with_a_reason_and_go_when_removed() {
    let site = Site::isolated();
    site.add_user("alice", "alice-password", &[]);
    site.add_user("bob", "bob-password", &[]);

    let help = site.ok(&["user", "app-password", "add", "--help"], None);
    assert!(help.contains("--expires") && help.contains("90d"), "{help}");
    let none = site.ok(&["user", "app-password", "list", "alice"], None);
    assert!(none.contains("alice has no app passwords"), "{none}");

    let added = site.ok(
        &["user", "app-password", "add", "alice", "--label", "phone"],
        None,
    );
    assert!(added.contains("never expires"), "{added}");
    let phone = password_in(&added);
    let json = site.ok(
        &[
            "user",
            "app-password",
            "add",
            "alice@example.test",
            "--label",
            "old laptop",
            "--expires",
            "30d",
            "--json",
        ],
        None,
    );
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let laptop = json["password"].as_str().unwrap().to_string();
    assert_ne!(laptop, phone);
    assert!(json["expires_at"].as_i64().is_some(), "{json}");

    // Refusals that change nothing.
    for (args, says) in [
        (
            vec!["alice", "--label", "phone"],
            "already has an app password labelled \"phone\"",
        ),
        (vec!["alice", "--label", "<b>x</b>"], "not a usable label"),
        (
            vec!["alice", "--label", "tablet", "--expires", "2020-01-01"],
            "has already passed",
        ),
        (
            vec!["alice", "--label", "tablet", "--expires", "soon"],
            "not an expiry",
        ),
        (vec!["nobody", "--label", "phone"], "no user"),
    ] {
        let mut full = vec!["user", "app-password", "add"];
        full.extend(args);
        let out = site.run(&full, None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(says),
            "{full:?}: {stderr}"
        );
    }

    // Both app passwords and the user's own log in everywhere; bob's do not take alice's.
    let mut attempts = each_protocol("alice", &phone);
    attempts.extend(each_protocol("alice@example.test", &laptop));
    attempts.extend(each_protocol("alice", "alice-password"));
    let answers = logins(&site, &attempts);
    assert_eq!(answers, vec!["ok"; 9], "{attempts:?}");
    wrong_password(&logins(&site, &each_protocol("bob", &phone)));
    // curl speaks IMAP too: the inbox's folder list with the app password.
    let listed = curl(&[
        "--user",
        &format!("alice:{phone}"),
        &format!("imap://{}:10143/", site.addr(11)),
    ]);
    assert!(listed.body.contains("INBOX"), "{}", listed.body);

    // The list says when and from where each was last used.
    let list = site.ok(&["user", "app-password", "list", "alice"], None);
    // Columns: label, created, expires, last used, from.
    let row = |label: &str| -> Vec<String> {
        list.lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no {label} in:\n{list}"))
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect()
    };
    // Python connects from the loopback's own address, 127.0.0.1.
    let phone_row = row("phone");
    assert_eq!(phone_row[2], "never", "{list}");
    assert!(phone_row[3].ends_with(" UTC"), "{list}");
    assert_eq!(phone_row[4], "127.0.0.1", "{list}");
    assert!(list.contains("2 app password(s)"), "{list}");

    // Expired: refused, with which one and since when, by each protocol.
    site.sql("UPDATE app_passwords SET expires_at = 1700000000 WHERE label = 'old laptop'");
    let answers = logins(&site, &each_protocol("alice", &laptop));
    let expired = "The app password \"old laptop\" expired at 2023-11-14T22:13:20Z";
    assert!(
        answers[0].contains("[EXPIRED]") && answers[0].contains(expired),
        "{answers:?}"
    );
    assert!(
        answers[1].contains("[AUTH]") && answers[1].contains(expired),
        "{answers:?}"
    );
    assert!(
        answers[2].starts_with("535 5.7.8") && answers[2].contains(expired),
        "{answers:?}"
    );
    let list = site.ok(&["user", "app-password", "list", "alice"], None);
    assert!(list.contains("(expired)"), "{list}");

    // Removed: refused as a wrong password; the others keep working.
    let remove = [
        "user",
        "app-password",
        "remove",
        "alice",
        "--label",
        "phone",
    ];
    let removed = site.ok(&remove, None);
    assert!(removed.contains("can no longer log in"), "{removed}");
    wrong_password(&logins(&site, &each_protocol("alice", &phone)));
    assert_eq!(
        logins(&site, &each_protocol("alice", "alice-password")),
        vec!["ok"; 3]
    );
    let json: serde_json::Value =
        serde_json::from_str(&site.ok(&["user", "app-password", "list", "alice", "--json"], None))
            .unwrap();
    let labels: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["label"].as_str())
        .collect();
    assert_eq!(labels, ["old laptop"]);
    let out = site.run(&remove, None);
    assert!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("no app password labelled"),
        "{out:?}"
    );

    let log = site.log();
    for secret in [&phone, &laptop] {
        assert!(
            !log.contains(secret.as_str()),
            "an app password is in the log"
        );
    }
    assert!(log.contains("app password expired"), "{log}");
}
