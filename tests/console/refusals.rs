//! Refusals at the HTTP level, and hostile input shown as text on every page.

use super::*;
use crate::reports::stale_report;

#[test]
fn refusals_at_the_http_level() {
    let site = site();
    site.add_user("bob", "bob-password", &[]);

    // No session: every page, and every change, leads to the sign-in form.
    let anon = Client::new(&site, "anon");
    let r = anon.get("/console");
    assert_eq!(
        (r.status, r.location()),
        (303, "/console/login".to_string())
    );
    let r = anon.get("/console/user?q=alice");
    assert_eq!(r.status, 303);
    assert!(
        r.location().starts_with("/console/login?next="),
        "{}",
        r.location()
    );
    let r = anon.post(
        "/console/server",
        &[
            ("name", "mailbox1"),
            ("state", "maintenance"),
            ("confirm", "yes"),
        ],
        &[],
    );
    assert_eq!(r.status, 303);
    assert!(r.location().starts_with("/console/login"));

    // A sign-in form posted without its pairing cookie (from another site) is refused.
    let r = anon.post(
        "/console/login",
        &[
            ("username", OPERATOR),
            ("password", OPERATOR_PASSWORD),
            ("login", "forged"),
        ],
        &[],
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("expired or came from another page"));

    // A user who is not an operator gets the answer of a wrong password (nothing
    // tells a guesser the password was right), and no session.
    let bob = Client::new(&site, "bob");
    let r = bob.sign_in("bob", "bob-password", &[]);
    assert_eq!(r.status, 401);
    assert!(
        r.body.contains("Wrong operator name or password."),
        "{}",
        r.body
    );
    assert!(!r.body.contains("not an operator"), "{}", r.body);
    assert_eq!(bob.session(), None);
    assert_eq!(bob.get("/console").status, 303);

    // A wrong password is refused without a hint of which part was wrong.
    let r = bob.sign_in(OPERATOR, "not-opals-password", &[]);
    assert_eq!(r.status, 401);
    assert!(r.body.contains("Wrong operator name or password."));
    assert!(!r.body.contains("not-opals-password"));
    assert_eq!(bob.session(), None);

    // Repeated failures for one name lock it out for a while.
    let mallory = Client::new(&site, "mallory");
    for _ in 0..4 {
        assert_eq!(mallory.sign_in("mallory", "guess", &[]).status, 401);
    }
    let r = mallory.sign_in("mallory", "guess", &[]);
    assert_eq!(r.status, 429);
    assert!(r.body.contains("Too many failed sign-ins"), "{}", r.body);

    // The operator signs in: an HttpOnly, SameSite=Strict cookie (Secure behind HTTPS).
    let op = Client::new(&site, "op");
    let r = op.sign_in(OPERATOR, OPERATOR_PASSWORD, &[]);
    assert_eq!(
        (r.status, r.location()),
        (303, "/console".to_string()),
        "{}",
        r.body
    );
    let cookie = r
        .header("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("mailsite_console="))
        .expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "{cookie}");
    let behind_proxy = Client::new(&site, "proxied");
    let r = behind_proxy.sign_in(
        OPERATOR,
        OPERATOR_PASSWORD,
        &["-H", "X-Forwarded-Proto: https"],
    );
    assert!(
        r.header("set-cookie")
            .iter()
            .any(|c| c.starts_with("mailsite_console=") && c.contains("; Secure")),
        "{:?}",
        r.header("set-cookie")
    );
    let map = op.get("/console");
    assert_eq!(map.status, 200);
    assert!(map.body.contains("<h1>Site map</h1>"));
    let csrf = map.field("csrf");

    // Changes need the session's CSRF token, a confirmation, and no foreign origin.
    let drain = |csrf: &str, confirm: &str, extra: &[&str]| {
        op.post(
            "/console/server",
            &[
                ("csrf", csrf),
                ("name", "mailbox1"),
                ("state", "maintenance"),
                ("confirm", confirm),
            ],
            extra,
        )
    };
    let r = drain("not-the-token", "yes", &[]);
    assert_eq!(r.status, 403);
    assert!(r.body.contains("does not belong to your session"));
    let other = Client::new(&site, "other");
    assert_eq!(other.sign_in(OPERATOR, OPERATOR_PASSWORD, &[]).status, 303);
    let other_session = other.get("/console").field("csrf");
    assert_eq!(drain(&other_session, "yes", &[]).status, 403);
    assert_eq!(drain(&csrf, "no", &[]).status, 400);
    let r = drain(&csrf, "yes", &["-H", "Origin: http://evil.example"]);
    assert_eq!(r.status, 403);
    assert!(r.body.contains("sent from another site"));
    assert!(
        in_service(&site, "mailbox1"),
        "a refused change changed the site"
    );
    assert_eq!(resolve(&site, "maila"), [site.addr(11)]);

    // The same with everything right: mailbox1 drains.
    let r = drain(&csrf, "yes", &[]);
    assert_eq!((r.status, r.location()), (303, "/console".to_string()));
    assert!(!in_service(&site, "mailbox1"));
    let after = op.get("/console");
    assert!(
        after.body.contains("mailbox1 is now maintenance"),
        "{}",
        after.body
    );
    let r = op.post(
        "/console/server",
        &[
            ("csrf", &csrf),
            ("name", "mailbox1"),
            ("state", "up"),
            ("confirm", "yes"),
        ],
        &[],
    );
    assert_eq!(r.status, 303);
    assert!(in_service(&site, "mailbox1"));

    // Hostile input shows as text.
    let r = op.get("/console/user?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E%40example.test");
    assert_eq!(r.status, 200);
    assert!(
        r.body
            .contains("&lt;script&gt;alert(1)&lt;/script&gt;@example.test"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("<script>"));
    assert!(
        r.header("content-security-policy")
            .concat()
            .contains("default-src 'none'")
    );

    // Signing out ends the session on the server: the old cookie no longer works.
    let token = op.session().expect("the operator's session cookie");
    let r = op.post("/console/logout", &[("csrf", &csrf)], &[]);
    assert_eq!(r.status, 303);
    let replay = Client::new(&site, "replay");
    let r = replay.request(
        &["-H", &format!("Cookie: mailsite_console={token}")],
        "/console",
    );
    assert_eq!(r.status, 303);

    // Neither passwords nor guesses reach the log; who signed in and who was refused do.
    let log = site.log();
    for secret in [OPERATOR_PASSWORD, "bob-password", "not-opals-password"] {
        assert!(!log.contains(secret), "{secret} is in the log");
    }
    assert!(log.contains("console: signed in") && log.contains("console: sign-in refused"));
}

/// Markup and quotes where a page shows text from users, the directory, a report or the
/// request.
const HOSTILE: &str = "<script>\"x\"&'y'</script>";
/// [`HOSTILE`] as a page must show it. The console quotes every attribute with `"`, so
/// a `'` cannot end one; inside `value="…"` this is HOSTILE exactly.
const HOSTILE_SHOWN: &str = "&lt;script&gt;&quot;x&quot;&amp;'y'&lt;/script&gt;";

/// Asserts that a page shows [`HOSTILE`] (or its Rust-quoted form, in a refusal that
/// quotes what was asked for) only as text: no markup of it is left, its `"` and `&`
/// are escaped.
fn shows_as_text(page: &Answer, what: &str) {
    let body = &page.body;
    assert!(
        !body.to_ascii_lowercase().contains("<script"),
        "{what}: markup from the input is in the page:\n{body}"
    );
    assert!(
        body.contains("&lt;script&gt;") && body.contains("&quot;x") && body.contains("&amp;'y'"),
        "{what}: the input is not shown escaped:\n{body}"
    );
    // (`"x"`, not `"x`: a random CSRF token in `value="…"` may begin with an x.)
    assert!(
        !body.contains("\"x\"") && !body.contains("&'y'"),
        "{what}: a quote or an ampersand of the input is not escaped:\n{body}"
    );
    assert!(
        page.header("content-security-policy")
            .concat()
            .contains("default-src 'none'"),
        "{what}: no content security policy"
    );
}

#[test]
fn hostile_input_shows_as_text_on_every_page() {
    let site = site();
    site.add_user("alice", "alice-password", &["--name", HOSTILE]);
    let op = Client::new(&site, "op");
    assert_eq!(op.sign_in(OPERATOR, OPERATOR_PASSWORD, &[]).status, 303);
    let q = "%3Cscript%3E%22x%22%26%27y%27%3C%2Fscript%3E";

    // A display name from the directory, on the lookup.
    let r = op.get("/console/user?q=alice");
    assert_eq!(r.status, 200);
    shows_as_text(&r, "a display name");
    assert!(r.body.contains(&format!("({HOSTILE_SHOWN})")), "{}", r.body);

    // Query parameters: the lookup's address (in its field and its heading), and
    // the refusals of a move or a state change that quote what was asked for.
    let r = op.get(&format!("/console/user?q={q}"));
    assert_eq!(r.status, 200);
    shows_as_text(&r, "a looked-up address");
    assert!(
        r.body
            .contains(&format!("name=\"q\" id=\"q\" value=\"{HOSTILE_SHOWN}\"")),
        "{}",
        r.body
    );
    assert!(
        r.body.contains(&format!(
            "<h2 id=\"subject\">{HOSTILE_SHOWN}@example.test</h2>"
        )),
        "{}",
        r.body
    );
    for (path, what) in [
        (
            format!("/console/letter?letter={q}&server=mailbox1"),
            "a letter",
        ),
        (
            format!("/console/letter?letter=a&server={q}"),
            "a move's server",
        ),
        (format!("/console/server?name={q}&state=up"), "a server"),
        (
            format!("/console/server?name=mailbox1&state={q}"),
            "a state",
        ),
    ] {
        let r = op.get(&path);
        assert_eq!(r.status, 400, "{what}: {}", r.body);
        shows_as_text(&r, what);
    }

    // The sign-in form: where to go next (a query parameter) and the name typed.
    let anon = Client::new(&site, "anon");
    let r = anon.get(&format!("/console/login?next=/console/user?q={q}"));
    assert_eq!(r.status, 200);
    shows_as_text(&r, "the page after signing in");
    assert_eq!(r.field("next"), format!("/console/user?q={HOSTILE_SHOWN}"));
    let r = anon.sign_in(HOSTILE, "guess", &[]);
    assert_eq!(r.status, 401);
    shows_as_text(&r, "a name typed to sign in");
    assert!(
        r.body.contains(&format!(
            "name=\"username\" id=\"username\" autocomplete=\"username\" value=\"{HOSTILE_SHOWN}\""
        )),
        "{}",
        r.body
    );

    // A helper report: every field it shows, the address in the page's title too.
    let mut report = stale_report(&site);
    report.helper_version = HOSTILE.to_string();
    report.os = HOSTILE.to_string();
    report.summary = HOSTILE.to_string();
    report.overrides = vec![HOSTILE.to_string()];
    report.discovery.method = Some(HOSTILE.to_string());
    report.discovery.settings[0].username = HOSTILE.to_string();
    for step in &mut report.steps {
        step.title = HOSTILE.to_string();
        step.details
            .push((HOSTILE.to_string(), HOSTILE.to_string()));
        step.transcript.push(HOSTILE.to_string());
    }
    report.steps[1].problem = Some(Problem {
        code: "referral".to_string(),
        explanation: HOSTILE.to_string(),
        suggestion: HOSTILE.to_string(),
    });
    report.findings = vec![Finding {
        code: "hostile".to_string(),
        explanation: HOSTILE.to_string(),
        suggestion: HOSTILE.to_string(),
    }];
    let csrf = op.get("/console/report").field("csrf");
    for email in [
        "alice@example.test".to_string(),
        format!("{HOSTILE}@example.test"),
    ] {
        report.email = email;
        let file = site.dir.join("hostile-report.json");
        std::fs::write(&file, serde_json::to_string(&report).unwrap()).unwrap();
        let r = op.request(
            &[
                "--form-string",
                &format!("csrf={csrf}"),
                "-F",
                &format!("report=@{}", file.display()),
            ],
            "/console/report",
        );
        assert_eq!(r.status, 200, "{}", r.body);
        shows_as_text(&r, "a helper report");
        // The version, the OS, the summary, the overrides, the discovery method, a
        // setting's username, each of the two steps' title, detail (key and value) and
        // transcript, the problem and the finding (explanation and suggestion each).
        let shown = r.body.matches(HOSTILE_SHOWN).count();
        assert!(shown >= 19, "{shown} escaped copies:\n{}", r.body);
        if report.email.starts_with('<') {
            assert!(
                r.body.contains(&format!(
                    "<h1>Helper report for {HOSTILE_SHOWN}@example.test</h1>"
                )),
                "{}",
                r.body
            );
        }
    }
}
