//! App passwords from a user's console page: added (shown once, works over IMAP, not
//! logged), listed with their last use, refused when badly labelled or expiring in the
//! past, removed after a confirmation page; an operator's are left to the command line,
//! and the console never signs anyone in with one.

use super::changes::imap_login;
use super::*;

/// The password shown on an "added" page.
fn shown_password(page: &Answer) -> String {
    let start = page
        .body
        .find("<code id=\"password\">")
        .unwrap_or_else(|| panic!("no password shown in:\n{}", page.body))
        + 20;
    page.body[start..start + 19].to_string()
}

#[test]
fn app_passwords_are_added_listed_and_removed_from_a_users_page() {
    let site = site();
    site.add_user("dora", "dora-password", &[]);
    let mailbox1 = site.addr(11);
    let op = Client::new(&site, "op");
    assert_eq!(op.sign_in(OPERATOR, OPERATOR_PASSWORD, &[]).status, 303);

    let page = op.get("/console/user?q=dora");
    assert!(
        page.body.contains("dora has no app passwords."),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("id=\"app-password-add\""),
        "{}",
        page.body
    );
    let csrf = page.field("csrf");
    let add = |label: &str, expires: &str, csrf: &str| {
        op.post(
            "/console/app-password",
            &[
                ("csrf", csrf),
                ("user", "dora"),
                ("action", "add"),
                ("label", label),
                ("expires", expires),
                ("confirm", "yes"),
            ],
            &[],
        )
    };

    // Refused: a forged form, a hostile label, an expiry in the past.
    assert_eq!(add("phone", "", "not-the-token").status, 403);
    let hostile = add("<script>alert(1)</script>", "", &csrf);
    assert_eq!(hostile.status, 400);
    assert!(
        hostile.body.contains("not a usable label") && !hostile.body.contains("<script>"),
        "{}",
        hostile.body
    );
    let past = add("phone", "2020-01-01", &csrf);
    assert_eq!(past.status, 400);
    assert!(past.body.contains("has already passed"), "{}", past.body);
    assert!(
        op.get("/console/user?q=dora")
            .body
            .contains("dora has no app passwords.")
    );

    // Added: shown once, not cached, works over IMAP; the user's password still works.
    let shown = add("phone", "", &csrf);
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert!(shown.header("cache-control").concat().contains("no-store"));
    let phone = shown_password(&shown);
    assert_eq!(imap_login(&mailbox1, "dora", &phone), "ok");
    assert_eq!(imap_login(&mailbox1, "dora", "dora-password"), "ok");
    let expiring = add("laptop 2026", "2099-01-01", &csrf);
    assert_eq!(expiring.status, 200, "{}", expiring.body);
    assert!(
        expiring
            .body
            .contains("It stops working at 2099-01-01 00:00:00 UTC."),
        "{}",
        expiring.body
    );
    assert_eq!(add("phone", "", &csrf).status, 400, "labels are unique");

    // Listed with when and from where each was last used.
    let page = op.get("/console/user?q=dora");
    let table = page
        .body
        .split("<table id=\"app-passwords\">")
        .nth(1)
        .unwrap_or_else(|| panic!("no app password table in:\n{}", page.body));
    let phone_row = table
        .split("</tr>")
        .find(|r| r.contains(">phone<"))
        .unwrap();
    assert!(phone_row.contains("<td>127.0.0.1</td>"), "{phone_row}");
    let laptop_row = table
        .split("</tr>")
        .find(|r| r.contains(">laptop 2026<"))
        .unwrap();
    assert!(
        laptop_row.contains("2099-01-01") && laptop_row.contains("<td>never</td>"),
        "{laptop_row}"
    );

    // Removed after a confirmation page that says what it cuts off.
    let confirm = op.get("/console/app-password?user=dora&label=phone");
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(
        confirm.body.contains("can no longer log in") && confirm.body.contains("127.0.0.1"),
        "{}",
        confirm.body
    );
    assert_eq!(
        op.get("/console/app-password?user=dora&label=tablet")
            .status,
        404
    );
    let remove = |confirmed: &str| {
        op.post(
            "/console/app-password",
            &[
                ("csrf", &confirm.field("csrf")),
                ("user", &confirm.field("user")),
                ("action", &confirm.field("action")),
                ("label", &confirm.field("label")),
                ("confirm", confirmed),
            ],
            &[],
        )
    };
    assert_eq!(remove("no").status, 400);
    assert_eq!(imap_login(&mailbox1, "dora", &phone), "ok");
    let done = remove("yes");
    assert_eq!(
        (done.status, done.location()),
        (303, "/console/user?q=dora".to_string())
    );
    let page = op.get("/console/user?q=dora");
    // Said once, above the page's heading.
    assert_eq!(
        page.body
            .matches("dora's app password &quot;phone&quot; is removed.")
            .count(),
        1,
        "{}",
        page.body
    );
    assert!(!page.body.contains(">phone<"), "{}", page.body);
    assert!(imap_login(&mailbox1, "dora", &phone).starts_with("error"));

    // An operator's app passwords are the command line's; and the console's own
    // sign-in never takes an app password, an operator's least of all.
    let operator = op.get("/console/user?q=opal");
    assert!(!operator.body.contains("id=\"app-password-add\""));
    assert_eq!(
        op.get(&format!("/console/app-password?user={OPERATOR}&label=x"))
            .status,
        400
    );
    let cli = site.ok(
        &[
            "user",
            "app-password",
            "add",
            OPERATOR,
            "--label",
            "mail program",
            "--json",
        ],
        None,
    );
    let cli: serde_json::Value = serde_json::from_str(&cli).unwrap();
    let operator_app = cli["password"].as_str().unwrap().to_string();
    // (Letter o is served by mailbox2.)
    assert_eq!(imap_login(&site.addr(12), OPERATOR, &operator_app), "ok");
    let stranger = Client::new(&site, "app-password");
    assert_eq!(
        stranger.sign_in(OPERATOR, &operator_app, &[]).status,
        401,
        "the console took an app password"
    );
    assert!(stranger.session().is_none());

    let log = site.log();
    for secret in [&phone, &operator_app] {
        assert!(
            !log.contains(secret.as_str()),
            "an app password is in the log"
        );
    }
    for line in [
        "console: app password added",
        "console: app password removed",
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains(line) && l.contains(OPERATOR) && l.contains("dora")),
            "no audit line {line:?} naming the operator and the user in:\n{log}"
        );
    }
}
