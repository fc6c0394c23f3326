//! Changes an operator confirms: a letter move, an account disabled, enabled and
//! given a new password, and the drain of the last mailbox server up.

use super::*;

#[test]
fn a_letter_moves_once_confirmed() {
    let site = site();
    let op = Client::new(&site, "op");
    assert_eq!(op.sign_in(OPERATOR, OPERATOR_PASSWORD, &[]).status, 303);
    assert_eq!(resolve(&site, "mailq"), [site.addr(12)]);

    // The confirmation page says what will happen, and changes nothing yet.
    let confirm = op.get("/console/letter?letter=q&server=mailbox1");
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("<h1>Move letter q to mailbox1?</h1>"));
    assert!(
        confirm
            .body
            .contains("q (<code>mailq.example.test</code>): mailbox2 → mailbox1"),
        "{}",
        confirm.body
    );
    assert_eq!(resolve(&site, "mailq"), [site.addr(12)]);
    let bad = op.get("/console/letter?letter=qq&server=mailbox1");
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("is not a letter"));

    // Confirmed: the letter's alias leads to mailbox1, and autoconfig stays the same.
    let r = op.post(
        "/console/letter",
        &[
            ("csrf", &confirm.field("csrf")),
            ("letter", &confirm.field("letter")),
            ("server", &confirm.field("server")),
            ("confirm", &confirm.field("confirm")),
        ],
        &[],
    );
    assert_eq!((r.status, r.location()), (303, "/console".to_string()));
    let moved = site.within(Duration::from_secs(5), || {
        resolve(&site, "mailq") == [site.addr(11)]
    });
    assert!(
        moved.is_some(),
        "mailq resolves to {:?}",
        resolve(&site, "mailq")
    );
    let map = op.get("/console");
    assert!(
        map.body
            .contains("Letter q now belongs to mailbox1 (letter q: mailbox2 → mailbox1)."),
        "{}",
        map.body
    );
    assert!(
        site.ok(&["letter", "list"], None)
            .lines()
            .any(|l| l.starts_with("q ") && l.contains("mailbox1"))
    );
    let lookup = op.get("/console/user?q=quinn");
    assert!(
        lookup.body.contains("<span id=\"server\">mailbox1</span>"),
        "{}",
        lookup.body
    );
    assert!(lookup.body.contains("<code>mailq.example.test</code>"));
}

/// Signs `user` in over IMAP with Python's imaplib at `host` ("ok", or the error).
pub(super) fn imap_login(host: &str, user: &str, password: &str) -> String {
    python(
        r#"
import imaplib, sys
host, user, password = sys.argv[1:4]
try:
    m = imaplib.IMAP4(host, 10143, timeout=10)
    m.login(user, password)
    m.logout()
    print("ok")
except Exception as e:
    print("error", e)
"#,
        &[host, user, password],
    )
    .trim()
    .to_string()
}

/// What an MX (Python's smtplib at a sorter's port 10025) answers to mail for `rcpt`.
fn mx_rcpt(host: &str, rcpt: &str) -> String {
    python(
        r#"
import smtplib, sys
host, rcpt = sys.argv[1:3]
with smtplib.SMTP(host, 10025, timeout=10) as s:
    s.ehlo("client.example.org")
    s.mail("someone@example.org")
    code, text = s.rcpt(rcpt)
    print(code, text.decode())
"#,
        &[host, rcpt],
    )
    .trim()
    .to_string()
}

/// From a user's page an operator disables the account (IMAP refuses it, the MX
/// refuses its mail), enables it again, and resets its password to one shown once
/// (the old one stops working, the new one works, and neither is logged). Operators'
/// accounts are not changed from the console.
#[test]
fn an_account_is_disabled_enabled_and_given_a_new_password_from_its_page() {
    let site = site();
    site.add_user("dora", "dora-password", &[]);
    let mailbox1 = site.addr(11);
    let op = Client::new(&site, "op");
    assert_eq!(op.sign_in(OPERATOR, OPERATOR_PASSWORD, &[]).status, 303);
    assert_eq!(imap_login(&mailbox1, "dora", "dora-password"), "ok");

    let page = op.get("/console/user?q=dora");
    for button in ["id=\"account-password\"", "id=\"account-disable\""] {
        assert!(page.body.contains(button), "{button}:\n{}", page.body);
    }
    let operator = op.get("/console/user?q=opal");
    assert!(
        operator.body.contains("is an operator"),
        "{}",
        operator.body
    );
    assert!(!operator.body.contains("id=\"account-disable\""));
    let refused = op.get("/console/account?user=opal&action=disable");
    assert_eq!(refused.status, 400);
    assert!(
        refused.body.contains("operators' accounts"),
        "{}",
        refused.body
    );
    let nonsense = op.get("/console/account?user=dora&action=delete");
    assert_eq!(nonsense.status, 400);

    // Disabling: what will happen first, then only a confirmed form changes it.
    let confirm = op.get("/console/account?user=dora&action=disable");
    assert_eq!(confirm.status, 200);
    assert!(
        confirm.body.contains("<h1>Disable dora?</h1>"),
        "{}",
        confirm.body
    );
    assert!(confirm.body.contains("550 5.2.1"), "{}", confirm.body);
    let form = |page: &Answer, confirmed: &str| {
        op.post(
            "/console/account",
            &[
                ("csrf", &page.field("csrf")),
                ("user", &page.field("user")),
                ("action", &page.field("action")),
                ("confirm", confirmed),
            ],
            &[],
        )
    };
    assert_eq!(form(&confirm, "no").status, 400);
    assert_eq!(imap_login(&mailbox1, "dora", "dora-password"), "ok");
    let done = form(&confirm, &confirm.field("confirm"));
    assert_eq!(
        (done.status, done.location()),
        (303, "/console/user?q=dora".to_string())
    );
    let page = op.get("/console/user?q=dora");
    assert!(
        page.body.contains("dora's account is now disabled."),
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"account-enable\""), "{}", page.body);
    let login = imap_login(&mailbox1, "dora", "dora-password");
    assert!(
        login.starts_with("error"),
        "a disabled account signed in: {login}"
    );
    let rcpt = mx_rcpt(&site.addr(21), "dora@example.test");
    assert!(rcpt.starts_with("550 5.2.1"), "{rcpt}");

    // Enabled again: signs in, and mail is taken.
    let confirm = op.get("/console/account?user=dora&action=enable");
    assert!(
        confirm.body.contains("<h1>Enable dora?</h1>"),
        "{}",
        confirm.body
    );
    assert_eq!(form(&confirm, "yes").status, 303);
    assert_eq!(imap_login(&mailbox1, "dora", "dora-password"), "ok");
    assert!(mx_rcpt(&site.addr(21), "dora@example.test").starts_with("250"));
    assert_eq!(
        op.get("/console/account?user=dora&action=enable").status,
        400
    );

    // A new password, shown once: the old one stops working, the new one works.
    let confirm = op.get("/console/account?user=dora&action=password");
    assert!(
        confirm.body.contains("shown to you once"),
        "{}",
        confirm.body
    );
    let shown = form(&confirm, "yes");
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert!(shown.header("cache-control").concat().contains("no-store"));
    let start = shown
        .body
        .find("<code id=\"password\">")
        .expect("the new password")
        + 20;
    let password = &shown.body[start..start + 19];
    assert_eq!(password.len(), 19);
    assert!(
        password
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-'),
        "{password}"
    );
    let login = imap_login(&mailbox1, "dora", "dora-password");
    assert!(
        login.starts_with("error"),
        "the old password still works: {login}"
    );
    assert_eq!(imap_login(&mailbox1, "dora", password), "ok");
    assert!(
        !site.log().contains(password),
        "the new password is in the log"
    );
    let log = site.log();
    for line in [
        "console: account disabled",
        "console: account enabled",
        "console: password reset",
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains(line) && l.contains(OPERATOR) && l.contains("dora")),
            "no audit line {line:?} naming the operator and the user in:\n{log}"
        );
    }
}

/// Draining the last mailbox server that is up: the confirmation page says what users
/// would see, and only a confirmation of that warning drains it (a form from before
/// the warning applied is refused and changes nothing).
#[test]
fn draining_the_last_mailbox_server_warns_first() {
    let site = site();
    let op = Client::new(&site, "op");
    assert_eq!(op.sign_in(OPERATOR, OPERATOR_PASSWORD, &[]).status, 303);
    let first = op.get("/console/server?name=mailbox2&state=maintenance");
    assert_eq!(first.status, 200);
    assert!(
        first.body.contains("<h1>Drain mailbox2?</h1>"),
        "{}",
        first.body
    );
    assert!(
        !first.body.contains("last mailbox server up"),
        "{}",
        first.body
    );
    assert_eq!(first.field("force"), "no");

    site.ok(&["server", "maintenance", "mailbox1"], None);
    let in_maintenance = site.within(Duration::from_secs(5), || {
        op.get("/console/server?name=mailbox2&state=maintenance")
            .body
            .contains("the last one up?")
    });
    assert!(
        in_maintenance.is_some(),
        "the console did not follow the drain"
    );
    let warned = op.get("/console/server?name=mailbox2&state=maintenance");
    for says in [
        "<h1>Drain mailbox2, the last one up?</h1>",
        "mailbox2 is the last mailbox server up",
        "without their mail",
        "Drain mailbox2 anyway",
    ] {
        assert!(
            warned.body.contains(says),
            "{says:?} missing:\n{}",
            warned.body
        );
    }
    assert_eq!(warned.field("force"), "yes");

    // The form from before the warning: refused, with the warning, and nothing changes.
    let post = |page: &Answer| {
        op.post(
            "/console/server",
            &[
                ("csrf", &page.field("csrf")),
                ("name", &page.field("name")),
                ("state", &page.field("state")),
                ("force", &page.field("force")),
                ("confirm", &page.field("confirm")),
            ],
            &[],
        )
    };
    let stale = post(&first);
    assert_ne!(stale.status, 303, "{}", stale.body);
    assert!(
        stale.body.contains("last mailbox server up"),
        "{}",
        stale.body
    );
    let list = site.ok(&["server", "list"], None);
    assert!(
        list.lines()
            .any(|l| l.starts_with("mailbox2") && l.contains(" up ")),
        "{list}"
    );
    // The warned confirmation drains it.
    let done = post(&warned);
    assert_eq!(done.status, 303, "{}", done.body);
    let list = site.ok(&["server", "list"], None);
    assert!(
        list.lines()
            .any(|l| l.starts_with("mailbox2") && l.contains("maintenance")),
        "{list}"
    );
}

#[test]
fn a_users_quota_is_shown_and_changed_once_confirmed() {
    let site = site();
    site.add_user("dora", "dora-password", &[]);
    let op = Client::new(&site, "op");
    assert_eq!(op.sign_in(OPERATOR, OPERATOR_PASSWORD, &[]).status, 303);

    let page = op.get("/console/user?q=dora");
    assert!(
        page.body
            .contains("dora's mailboxes hold 0 B (no limit), 0 messages (no limit)."),
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"quota-change\""), "{}", page.body);
    let nonsense = op.get("/console/quota?user=dora&storage=lots&messages=");
    assert_eq!(nonsense.status, 400);
    assert!(nonsense.body.contains("500M"), "{}", nonsense.body);

    // What it means first; only a confirmed form changes it.
    let confirm = op.get("/console/quota?user=dora&storage=2G&messages=50000");
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(
        confirm.body.contains("<h1>Change dora&#39;s quota?</h1>")
            || confirm.body.contains("<h1>Change dora's quota?</h1>"),
        "{}",
        confirm.body
    );
    assert!(
        confirm.body.contains("2.0 GiB, 50000 messages"),
        "{}",
        confirm.body
    );
    let form = |page: &Answer, confirmed: &str| {
        op.post(
            "/console/quota",
            &[
                ("csrf", &page.field("csrf")),
                ("user", &page.field("user")),
                ("storage", &page.field("storage")),
                ("messages", &page.field("messages")),
                ("confirm", confirmed),
            ],
            &[],
        )
    };
    assert_eq!(form(&confirm, "no").status, 400);
    assert!(
        site.ok(&["user", "quota", "dora"], None)
            .contains("(no limit)")
    );
    let done = form(&confirm, &confirm.field("confirm"));
    assert_eq!(
        (done.status, done.location()),
        (303, "/console/user?q=dora".to_string())
    );
    let page = op.get("/console/user?q=dora");
    assert!(
        page.body
            .contains("dora's quota is now 2.0 GiB, 50000 messages"),
        "{}",
        page.body
    );
    let cli = site.ok(&["user", "quota", "dora"], None);
    assert!(
        cli.contains("of 2.0 GiB") && cli.contains("0 of 50000 messages"),
        "{cli}"
    );
    // The form shows the limits as they can be typed again.
    assert!(page.body.contains("value=\"2048M\""), "{}", page.body);
}

/// The helpdesk reads a user's filters on the user page (read only): none, then the
/// active script's name and text once the user keeps one.
#[test]
fn a_users_filters_are_shown_on_the_user_page() {
    let site = site();
    site.add_user("dora", "dora-password", &[]);
    let op = Client::new(&site, "op");
    assert_eq!(op.sign_in(OPERATOR, OPERATOR_PASSWORD, &[]).status, 303);
    let page = op.get("/console/user?q=dora");
    assert!(
        page.body
            .contains("dora has no filters: all mail goes to INBOX."),
        "{}",
        page.body
    );
    let script = site.dir.join("away.sieve");
    std::fs::write(
        &script,
        "require \"vacation\";\nvacation \"Back on <Monday> & later\";\n",
    )
    .expect("write the script file");
    site.ok(
        &[
            "sieve",
            "put",
            "dora",
            "away",
            &script.to_string_lossy(),
            "--activate",
        ],
        None,
    );
    let page = op.get("/console/user?q=dora");
    assert!(
        page.body
            .contains("The filter script <code>away</code> runs when mail arrives"),
        "{}",
        page.body
    );
    // The script's text is shown as text, never as markup.
    assert!(
        page.body.contains("Back on &lt;Monday&gt; &amp; later"),
        "{}",
        page.body
    );
}
