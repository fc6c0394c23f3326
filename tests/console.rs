//! The helpdesk console (`/console`) against a real `mailsite serve`: in a real browser
//! (headless Chromium driven by Selenium, `tests/console_browser.py`) an operator signs
//! in, looks up a user, drains a mailbox server (and `dig` sees the alias move) and
//! uploads a helper report; with curl, the refusals: no session, a wrong or missing
//! CSRF token, an unconfirmed change, a form from another site, a non-operator (told
//! the same as a wrong password), a wrong password, too many failures, and hostile
//! input (a display name, a report, a query parameter, a form field) shown as text on
//! every page that shows it.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{Site, dig, python, run_command};
use mailsite_shared::report::{Discovery, Finding, Outcome, Problem, Report, Setting, Step};

const OPERATOR: &str = "opal";
const OPERATOR_PASSWORD: &str = "opal-password";

/// The A records of `label.example.test` from the site's DNS, sorted.
fn resolve(site: &Site, label: &str) -> Vec<String> {
    let out = dig(&[
        &format!("@{}", site.dns.ip()),
        "-p",
        &site.dns.port().to_string(),
        "+short",
        "+tries=1",
        "+time=2",
        &format!("{label}.example.test"),
        "A",
    ]);
    let mut addresses: Vec<String> = out.lines().map(|l| l.trim().to_string()).collect();
    addresses.sort();
    addresses
}

/// A site whose sorters relay remote mail to a closed loopback port, so that a message
/// to another domain stays in the queue, retried.
fn site() -> Site {
    let site = Site::isolated_with(|text| {
        let net = text
            .split("listen = \"127.")
            .nth(1)
            .and_then(|rest| rest.split('.').next())
            .expect("the site's loopback network")
            .to_string();
        text.replace(
            "# smarthost = ",
            &format!("smarthost = \"127.{net}.0.1:9\" # "),
        )
    });
    site.add_user(OPERATOR, OPERATOR_PASSWORD, &["--operator"]);
    site
}

/// An RFC 3339 time `secs` from now.
fn later(secs: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    chrono::DateTime::from_timestamp(now + secs, 0)
        .expect("a representable time")
        .to_rfc3339()
}

/// A helper report of alice, written after her letter moved: her computer still had
/// `maila` at mailbox1's address, and mailbox1 answered her login with a referral.
fn stale_report(site: &Site) -> Report {
    let old = site.addr(11);
    let step = |kind: &str, title: &str, outcome, details: &[(&str, &str)]| Step {
        id: format!("{kind}:maila.example.test"),
        kind: kind.to_string(),
        title: title.to_string(),
        outcome,
        millis: 3,
        details: details
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        transcript: Vec::new(),
        problem: None,
    };
    let maps_to = format!("maila.example.test -> {old}");
    let ttl = format!("{old} (ttl 5 s)");
    let mut login = step(
        "imap",
        "IMAP login on maila.example.test:10993 (SSL/TLS)",
        Outcome::Fail,
        &[
            ("host", "maila.example.test"),
            ("address", &old),
            ("port", "10993"),
        ],
    );
    login.transcript = vec![
        "C: a1 LOGIN alice <redacted>".to_string(),
        "S: a1 NO [REFERRAL imap://alice@mailbox2.example.test/] not here".to_string(),
    ];
    login.problem = Some(Problem {
        code: "referral".to_string(),
        explanation: "the server says this account is served elsewhere".to_string(),
        suggestion: "use the server the site names".to_string(),
    });
    Report {
        schema_version: 1,
        helper_version: "0.1.0".to_string(),
        os: "linux x86_64".to_string(),
        // Written after the letter moved (the drain comes later in the tests that
        // upload it): the site judges a report against the site as it was then.
        started_at: later(3600),
        finished_at: later(3602),
        email: "alice@example.test".to_string(),
        protocol: "imap".to_string(),
        overrides: Vec::new(),
        discovery: Discovery {
            method: Some("autoconfig".to_string()),
            attempts: Vec::new(),
            settings: vec![Setting {
                protocol: "imap".to_string(),
                host: "maila.example.test".to_string(),
                port: 10993,
                security: "SSL".to_string(),
                username: "alice".to_string(),
            }],
        },
        steps: vec![
            step(
                "dns",
                "DNS lookup of maila.example.test",
                Outcome::Pass,
                &[
                    ("host", "maila.example.test"),
                    ("a", &ttl),
                    ("maps_to", &maps_to),
                ],
            ),
            login,
        ],
        findings: Vec::new(),
        summary: "1 of 2 steps passed; the IMAP login was referred elsewhere".to_string(),
        passed: false,
    }
}

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

/// A response as curl saw it, headers included.
struct Answer {
    status: u16,
    headers: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Vec<String> {
        self.headers
            .lines()
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }

    fn location(&self) -> String {
        self.header("location").concat()
    }

    /// The value of a hidden form field.
    fn field(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} field in:\n{}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_string()
    }
}

/// curl with its own cookie jar: one browser, as far as the server can tell.
struct Client {
    base: String,
    dir: PathBuf,
}

impl Client {
    fn new(site: &Site, name: &str) -> Client {
        let dir = site.dir.join(format!("client-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        Client {
            base: format!("http://{}", site.http),
            dir,
        }
    }

    fn jar(&self) -> PathBuf {
        self.dir.join("cookies")
    }

    fn request(&self, args: &[&str], path: &str) -> Answer {
        let headers = self.dir.join("headers");
        let body = self.dir.join("body");
        let jar = self.jar();
        let out = run_command(
            Command::new("curl")
                .args(["-sS", "--max-time", "10", "-w", "%{http_code}"])
                .arg("-b")
                .arg(&jar)
                .arg("-c")
                .arg(&jar)
                .arg("-D")
                .arg(&headers)
                .arg("-o")
                .arg(&body)
                .args(args)
                .arg(format!("{}{path}", self.base)),
            None,
        );
        assert!(
            out.status.success(),
            "curl {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Answer {
            status: String::from_utf8_lossy(&out.stdout).trim().parse().unwrap(),
            headers: std::fs::read_to_string(headers).unwrap_or_default(),
            body: std::fs::read_to_string(body).unwrap_or_default(),
        }
    }

    fn get(&self, path: &str) -> Answer {
        self.request(&[], path)
    }

    /// A form POST (fields URL-encoded), with extra curl arguments (headers).
    fn post(&self, path: &str, fields: &[(&str, &str)], extra: &[&str]) -> Answer {
        let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        if fields.is_empty() {
            args.extend(["-X".to_string(), "POST".to_string()]);
        }
        for (k, v) in fields {
            args.push("--data-urlencode".to_string());
            args.push(format!("{k}={v}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.request(&args, path)
    }

    /// Fetches the sign-in form and sends it.
    fn sign_in(&self, name: &str, password: &str, extra: &[&str]) -> Answer {
        let form = self.get("/console/login");
        assert_eq!(form.status, 200, "{}", form.body);
        let login = form.field("login");
        self.post(
            "/console/login",
            &[
                ("username", name),
                ("password", password),
                ("login", &login),
            ],
            extra,
        )
    }

    /// The session cookie in the jar, if any.
    fn session(&self) -> Option<String> {
        let jar = std::fs::read_to_string(self.jar()).ok()?;
        jar.lines()
            .filter(|l| l.contains("\tmailsite_console\t"))
            .filter_map(|l| l.rsplit('\t').next())
            .find(|v| !v.is_empty())
            .map(str::to_string)
    }
}

fn in_service(site: &Site, name: &str) -> bool {
    site.ok(&["server", "list"], None)
        .lines()
        .any(|l| l.starts_with(name) && l.contains(" up "))
}

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
fn imap_login(host: &str, user: &str, password: &str) -> String {
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

/// A report made before a drain is judged against the site as it was then: its DNS
/// answers, right at the time, are not called stale, and the move since is said last.
#[test]
fn a_report_is_judged_against_the_site_when_it_was_made() {
    let site = site();
    let mut report = stale_report(&site);
    report.started_at = later(-5);
    report.finished_at = later(-3);
    // And a computer without the site's CA: the certificate is fine, the computer
    // lacks the authority.
    report.steps.push(Step {
        id: "tls:outbox.example.test:10465".to_string(),
        kind: "tls".to_string(),
        title: "TLS on outbox.example.test:10465".to_string(),
        outcome: Outcome::Fail,
        millis: 4,
        details: vec![("host".to_string(), "outbox.example.test".to_string())],
        transcript: Vec::new(),
        problem: Some(Problem {
            code: "tls_untrusted".to_string(),
            explanation: "The certificate of outbox.example.test was issued by mailsite example.test CA, which this computer does not trust.".to_string(),
            suggestion: "install the site's CA certificate".to_string(),
        }),
    });
    let file = site.dir.join("before-the-drain.json");
    std::fs::write(&file, serde_json::to_string(&report).unwrap()).unwrap();
    // The site's history starts a second later than the report.
    std::thread::sleep(Duration::from_millis(1100));
    site.ok(&["server", "maintenance", "mailbox1"], None);
    let out = site.ok(&["helpdesk", "explain", file.to_str().unwrap()], None);
    assert!(!out.contains("stale"), "{out}");
    assert!(
        !out.contains("the user's computer had maila.example.test at"),
        "{out}"
    );
    assert!(
        out.contains("since the report, letter a moved from mailbox1 to mailbox2"),
        "{out}"
    );
    assert!(
        out.contains("does not trust the authority that issued it")
            && out.contains("ca.pem")
            && out.contains("need no change"),
        "{out}"
    );
    assert!(!out.contains("renew"), "{out}");
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
    assert!(
        !body.contains("\"x") && !body.contains("&'y'"),
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
