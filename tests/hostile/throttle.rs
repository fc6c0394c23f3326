//! Password guessing across connections and protocols, with Python's imaplib, poplib
//! and smtplib from one 127.x source: after 10 failures the source is refused at once
//! (no password checked, so even the right one is refused), an honest user on another
//! 127.x source logs in meanwhile, `mailsite block list` shows the block and
//! `mailsite block remove` lifts it. And the console: its blocks page, and its sign-in
//! fixes (parallel guesses, a stranger cannot lock the operator out, a disabled
//! operator's session ends, a non-operator hears what a wrong password hears).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::common::{Site, python, run_command};

/// Short waits so that ten failures take well under a second; the rules are the same.
fn site() -> Site {
    let site = Site::isolated_with(|text| {
        text.replace("first_delay_ms = 250", "first_delay_ms = 20")
            .replace("max_delay_ms = 4000", "max_delay_ms = 100")
    });
    site.add_user("alice", "alice-password", &[]);
    site
}

/// One login attempt per line of `attempts` (`protocol source user password`), each on
/// a new connection from `source`; prints one line per attempt: the answer and the
/// seconds it took.
const ATTEMPTS: &str = r#"
import imaplib, poplib, smtplib, socket, sys, time
net = sys.argv[1]
def connect(host, port, source):
    return socket.create_connection((host, port), 10, source_address=(source, 0))
class Imap(imaplib.IMAP4):
    def __init__(self, host, port, source):
        self.source = source
        super().__init__(host, port)
    def _create_socket(self, timeout=None):
        return connect(self.host, self.port, self.source)
class Pop(poplib.POP3):
    def __init__(self, host, port, source):
        self.source = source
        super().__init__(host, port)
    def _create_socket(self, timeout):
        return connect(self.host, self.port, self.source)
for line in sys.argv[2:]:
    protocol, source, user, password = line.split()
    start = time.monotonic()
    try:
        if protocol == "imap":
            m = Imap(f"127.{net}.0.11", 10143, source)
            try:
                typ, data = m.login(user, password)
                answer = "OK " + data[0].decode()
            except imaplib.IMAP4.error as e:
                answer = "NO " + str(e)
            try:
                m.logout()
            except Exception:
                pass
        elif protocol == "pop3":
            p = Pop(f"127.{net}.0.11", 10110, source)
            try:
                p.user(user)
                answer = p.pass_(password).decode()
            except poplib.error_proto as e:
                answer = str(e)
            try:
                p.quit()
            except Exception:
                pass
        else:
            s = smtplib.SMTP(f"127.{net}.0.21", 10587, source_address=(source, 0), timeout=10)
            s.ehlo("guesser.example")
            try:
                # One PLAIN exchange: login() would go on to LOGIN after a refusal.
                s.user, s.password = user, password
                code, text = s.auth("PLAIN", s.auth_plain)
                answer = f"{code} {text.decode()}"
            except smtplib.SMTPAuthenticationError as e:
                answer = f"{e.smtp_code} {e.smtp_error.decode()}"
            except smtplib.SMTPServerDisconnected as e:
                answer = f"closed {e}"
            except smtplib.SMTPResponseException as e:
                answer = f"{e.smtp_code} {e.smtp_error.decode()}"
            try:
                s.quit()
            except Exception:
                answer += " (then closed)"
    except Exception as e:
        answer = f"error {type(e).__name__} {e}"
    print(f"{time.monotonic() - start:.3f} {answer}".replace("\n", " "), flush=True)
"#;

/// Runs login attempts; returns (seconds, answer) of each.
fn attempt(site: &Site, attempts: &[(&str, &str, &str, &str)]) -> Vec<(f64, String)> {
    let lines: Vec<String> = attempts
        .iter()
        .map(|(protocol, source, user, password)| format!("{protocol} {source} {user} {password}"))
        .collect();
    let mut args = vec![site.net.to_string()];
    args.extend(lines);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    python(ATTEMPTS, &args)
        .lines()
        .map(|line| {
            let (secs, answer) = line.split_once(' ').unwrap_or((line, ""));
            (secs.parse().unwrap_or(f64::MAX), answer.to_string())
        })
        .collect()
}

fn metric(site: &Site, line_start: &str) -> u64 {
    let text = site.get("/metrics").body;
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {line_start} in\n{text}"))
}

#[test]
fn guesses_over_imap_pop3_and_smtp_block_their_source_until_lifted() {
    let site = site();
    let guesser = site.addr(66);
    let honest = site.addr(5);

    // Ten wrong passwords from one source, over three protocols.
    let mut guesses = Vec::new();
    for n in 0..10 {
        let protocol = ["imap", "pop3", "smtp"][n % 3];
        guesses.push((protocol, guesser.as_str(), "alice", "guess"));
    }
    let answers = attempt(&site, &guesses);
    assert_eq!(answers.len(), 10, "{answers:?}");
    for (n, (_, answer)) in answers.iter().enumerate() {
        let refused = answer.contains("AUTHENTICATIONFAILED")
            || answer.contains("[AUTH]")
            || answer.starts_with("535");
        assert!(refused, "guess {n}: {answer}");
    }

    // Now even the right password is refused from there, at once and without a check;
    // an honest login from another host works meanwhile.
    let answers = attempt(
        &site,
        &[
            ("imap", &guesser, "alice", "alice-password"),
            ("pop3", &guesser, "alice", "alice-password"),
            ("smtp", &guesser, "alice", "alice-password"),
            ("imap", &honest, "alice", "alice-password"),
            ("smtp", &honest, "alice", "alice-password"),
        ],
    );
    assert!(answers[0].1.contains("[UNAVAILABLE]"), "{answers:?}");
    assert!(answers[1].1.contains("[SYS/TEMP]"), "{answers:?}");
    assert!(answers[2].1.starts_with("421 4.7.0"), "{answers:?}");
    assert!(answers[2].1.contains("closed"), "{answers:?}");
    for (secs, answer) in &answers[..3] {
        assert!(answer.contains("Too many failed logins"), "{answer}");
        assert!(
            *secs < 0.2,
            "a blocked source is answered at once: {secs} s"
        );
    }
    assert!(answers[3].1.starts_with("OK"), "{answers:?}");
    assert!(answers[4].1.starts_with("235"), "{answers:?}");

    // The counters saw it.
    assert_eq!(metric(&site, "mailsite_login_blocks_started_total"), 1);
    assert!(metric(&site, "mailsite_login_failures_total{protocol=\"imap\"}") >= 4);
    assert!(metric(&site, "mailsite_login_failures_total{protocol=\"pop3\"}") >= 3);
    assert!(metric(&site, "mailsite_login_failures_total{protocol=\"smtp\"}") >= 3);
    assert!(metric(&site, "mailsite_login_blocked_total{protocol=\"imap\"}") >= 1);

    // The helpdesk sees the block and lifts it by the user's name.
    let list = site.ok(&["block", "list"], None);
    let row = list
        .lines()
        .find(|l| l.starts_with(&guesser))
        .unwrap_or_else(|| panic!("{guesser} in\n{list}"));
    assert!(
        row.contains("alice") && row.contains("too many failed logins"),
        "{row}"
    );
    let removed = site.ok(&["block", "remove", "alice"], None);
    assert!(removed.contains(&guesser), "{removed}");
    assert!(site.ok(&["block", "list"], None).contains("no blocks"));
    let lifted = site.within(Duration::from_secs(5), || {
        attempt(&site, &[("imap", &guesser, "alice", "alice-password")])[0]
            .1
            .starts_with("OK")
    });
    assert!(
        lifted.is_some(),
        "the running server let the source in again"
    );
}

/// curl with its own cookie jar and source address: one browser on one host.
struct Browser {
    base: String,
    source: String,
    dir: PathBuf,
}

struct Answer {
    status: u16,
    body: String,
}

impl Browser {
    fn new(site: &Site, name: &str, source: &str) -> Browser {
        let dir = site.dir.join(format!("browser-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        Browser {
            base: format!("http://{}", site.http),
            source: source.to_string(),
            dir,
        }
    }

    fn request(&self, args: &[String], path: &str) -> Answer {
        let jar = self.dir.join("cookies");
        let out = run_command(
            Command::new("curl")
                .args(["-sS", "--max-time", "20", "-w", "\n%{http_code}"])
                .args(["--interface", &self.source])
                .arg("-b")
                .arg(&jar)
                .arg("-c")
                .arg(&jar)
                .args(args)
                .arg(format!("{}{path}", self.base)),
            None,
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
        Answer {
            status: status.trim().parse().unwrap_or(0),
            body: body.to_string(),
        }
    }

    fn get(&self, path: &str) -> Answer {
        self.request(&[], path)
    }

    fn post(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let mut args = Vec::new();
        for (k, v) in fields {
            args.push("--data-urlencode".to_string());
            args.push(format!("{k}={v}"));
        }
        self.request(&args, path)
    }

    fn field(body: &str, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = body
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} field in:\n{body}"))
            + marker.len();
        let end = body[start..].find('"').unwrap() + start;
        body[start..end].to_string()
    }

    fn sign_in(&self, name: &str, password: &str) -> Answer {
        let form = self.get("/console/login");
        assert_eq!(form.status, 200, "{}", form.body);
        let login = Browser::field(&form.body, "login");
        self.post(
            "/console/login",
            &[
                ("username", name),
                ("password", password),
                ("login", &login),
            ],
        )
    }
}

#[test]
fn console_sign_in_and_blocks_page() {
    let site = site();
    site.add_user("opal", "opal-password", &["--operator"]);
    site.add_user("olga", "olga-password", &["--operator"]);
    site.add_user("bob", "bob-password", &[]);
    let stranger = site.addr(77);
    let desk = site.addr(1);

    // A non-operator with the right password hears what a wrong password hears.
    let bob = Browser::new(&site, "bob", &site.addr(8));
    let right = bob.sign_in("bob", "bob-password");
    let wrong = bob.sign_in("bob", "not-bobs");
    assert_eq!((right.status, wrong.status), (401, 401));
    let alert = |body: &str| {
        body.split("role=\"alert\">")
            .nth(1)
            .and_then(|rest| rest.split('<').next())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(alert(&right.body), "Wrong operator name or password.");
    assert_eq!(alert(&right.body), alert(&wrong.body));

    // 40 parallel wrong guesses from a stranger: only a few are checked (401), the
    // rest are refused unchecked (429).
    let form = Browser::new(&site, "stranger", &stranger);
    let page = form.get("/console/login");
    let login = Browser::field(&page.body, "login");
    let jar = form.dir.join("cookies");
    let children: Vec<_> = (0..40)
        .map(|_| {
            Command::new("curl")
                .args([
                    "-sS",
                    "--max-time",
                    "30",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                ])
                .args(["--interface", &stranger, "-b"])
                .arg(&jar)
                .args(["--data-urlencode", "username=opal"])
                .args(["--data-urlencode", "password=guess"])
                .args(["--data-urlencode", &format!("login={login}")])
                .arg(format!("{}/console/login", form.base))
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("curl")
        })
        .collect();
    let statuses: Vec<String> = children
        .into_iter()
        .map(|c| String::from_utf8_lossy(&c.wait_with_output().unwrap().stdout).into_owned())
        .collect();
    let checked = statuses.iter().filter(|s| *s == "401").count();
    let refused = statuses.iter().filter(|s| *s == "429").count();
    assert_eq!(checked + refused, 40, "{statuses:?}");
    assert!(
        checked <= 4,
        "{checked} of 40 parallel guesses were checked"
    );

    // The stranger's failures do not lock the operator out at their own desk.
    let opal = Browser::new(&site, "opal", &desk);
    assert_eq!(opal.sign_in("opal", "opal-password").status, 303);
    let map = opal.get("/console");
    assert_eq!(map.status, 200);

    // A source blocked by mail guesses shows on the blocks page and is lifted there.
    let guesser = site.addr(66);
    let guesses: Vec<_> = (0..10)
        .map(|_| ("imap", guesser.as_str(), "alice", "guess"))
        .collect();
    attempt(&site, &guesses);
    let blocks = opal.get("/console/blocks");
    assert_eq!(blocks.status, 200);
    assert!(
        blocks
            .body
            .contains(&format!("<td class=\"source\">{guesser}</td>")),
        "{}",
        blocks.body
    );
    let csrf = Browser::field(&blocks.body, "csrf");
    // Without the session's CSRF token nothing is lifted.
    let forged = opal.post(
        "/console/blocks",
        &[("csrf", "forged"), ("target", &guesser)],
    );
    assert_eq!(forged.status, 403);
    assert!(site.ok(&["block", "list"], None).contains(&guesser));
    let lifted = opal.post("/console/blocks", &[("csrf", &csrf), ("target", &guesser)]);
    assert_eq!(lifted.status, 303, "{}", lifted.body);
    let after = opal.get("/console/blocks");
    assert!(after.body.contains("Lifted 1 block"), "{}", after.body);
    assert!(
        after.body.contains("No source is blocked."),
        "{}",
        after.body
    );
    assert!(!site.ok(&["block", "list"], None).contains(&guesser));
    assert!(
        attempt(&site, &[("imap", &guesser, "alice", "alice-password")])[0]
            .1
            .starts_with("OK")
    );
    assert!(site.log().contains("console: login blocks lifted"));

    // An operator who is disabled, or demoted, loses their session at once.
    let olga = Browser::new(&site, "olga", &desk);
    assert_eq!(olga.sign_in("olga", "olga-password").status, 303);
    assert_eq!(olga.get("/console").status, 200);
    site.ok(&["user", "disable", "olga"], None);
    assert_eq!(
        olga.get("/console").status,
        303,
        "a disabled operator's session ends"
    );
    site.ok(&["user", "enable", "olga"], None);
    assert_eq!(olga.get("/console").status, 303, "and stays ended");
    assert_eq!(olga.sign_in("olga", "olga-password").status, 303);
    assert_eq!(olga.get("/console").status, 200);
    // No command demotes an operator yet: the directory is changed as one would.
    site.sql("UPDATE users SET operator = 0 WHERE username = 'olga'");
    assert_eq!(
        olga.get("/console").status,
        303,
        "a demoted operator's session ends"
    );
    // The other operator's session is untouched.
    assert_eq!(opal.get("/console").status, 200);
}

/// `COUNT` IMAP logins at once from one source, each on its own connection, all started
/// together; prints one answer per line.
const AT_ONCE: &str = r#"
import imaplib, socket, sys, threading
net, source, user, password, count = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
class Imap(imaplib.IMAP4):
    def _create_socket(self, timeout=None):
        return socket.create_connection((self.host, self.port), 30, source_address=(source, 0))
connections = [Imap(f"127.{net}.0.11", 10143) for _ in range(count)]
start = threading.Barrier(count)
answers = [None] * count
def login(i):
    start.wait()
    try:
        typ, data = connections[i].login(user, password)
        answers[i] = "OK " + data[0].decode()
    except imaplib.IMAP4.error as e:
        answers[i] = "NO " + str(e)
    except Exception as e:
        answers[i] = f"error {type(e).__name__} {e}"
threads = [threading.Thread(target=login, args=(i,)) for i in range(count)]
for t in threads: t.start()
for t in threads: t.join(60)
for answer in answers: print(answer)
"#;

#[test]
fn many_logins_at_once_from_one_address_are_not_taken_for_guessing() {
    // An office behind one NAT address at nine in the morning: 30 mail clients log in
    // at the same moment. Their checks take turns; none is refused.
    let site = site();
    let net = site.net.to_string();
    let source = format!("127.{}.7.7", site.net);
    let out = python(AT_ONCE, &[&net, &source, "alice", "alice-password", "30"]);
    let answers: Vec<&str> = out.lines().collect();
    assert_eq!(answers.len(), 30, "{out}");
    assert!(answers.iter().all(|a| a.starts_with("OK ")), "{out}");
    let metrics = site.get("/metrics").body;
    assert!(
        metrics
            .lines()
            .filter(|l| l.starts_with("mailsite_login_blocked_total"))
            .all(|l| l.ends_with(" 0")),
        "{metrics}"
    );
}
