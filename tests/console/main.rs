//! The helpdesk console (`/console`) against a real `mailsite serve`: in a real browser
//! (headless Chromium driven by Selenium, `tests/console/console_browser.py`) an operator signs
//! in, looks up a user, drains a mailbox server (and `dig` sees the alias move) and
//! uploads a helper report; with curl, the refusals: no session, a wrong or missing
//! CSRF token, an unconfirmed change, a form from another site, a non-operator (told
//! the same as a wrong password), a wrong password, too many failures, and hostile
//! input (a display name, a report, a query parameter, a form field) shown as text on
//! every page that shows it.

mod app_passwords;
mod browser;
mod changes;
#[path = "../common/mod.rs"]
mod common;
mod refusals;
mod reports;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{Site, python, run_command};
use mailsite_shared::report::{Discovery, Finding, Outcome, Problem, Report, Setting, Step};

const OPERATOR: &str = "opal";
const OPERATOR_PASSWORD: &str = "opal-password";

/// The A records of `label.example.test` from the site's DNS, sorted.
fn resolve(site: &Site, label: &str) -> Vec<String> {
    common::resolve(site.dns, &format!("{label}.example.test"))
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
