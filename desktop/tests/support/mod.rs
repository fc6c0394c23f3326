//! Test support: a real `mailsite serve` per test, on its own loopback /16
//! (127.N.0.0), with its own data directory, and the helper's overrides pointing at it.

#![allow(dead_code)]

#[path = "../../../tests/common/process.rs"]
mod process;
use process::raw_get;
pub use process::run_command as run;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use mailsite_helper::SiteOverride;

/// The `mailsite` binary beside this test's profile directory
/// (`target/<profile>/deps/NAME` -> `target/<profile>/mailsite`), built if missing.
pub fn mailsite_bin() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("the test executable");
            let profile = exe
                .parent()
                .and_then(Path::parent)
                .expect("target/<profile>");
            let bin = profile.join("mailsite");
            if !bin.exists() {
                let target = profile.parent().expect("the target directory");
                let status = Command::new(env!("CARGO"))
                    .args(["build", "-p", "mailsite"])
                    .env("CARGO_TARGET_DIR", target)
                    .status()
                    .expect("run cargo build -p mailsite");
                assert!(status.success(), "cargo build -p mailsite failed");
            }
            bin
        })
        .clone()
}

/// The `mailsite-helper` binary of this build.
pub const HELPER: &str = env!("CARGO_BIN_EXE_mailsite-helper");

static NEXT: AtomicU8 = AtomicU8::new(0);

/// A loopback /16 away from the server's own test suites (which count up from 20).
fn next_net() -> u8 {
    let base = (std::process::id() % 17) as u8 * 3;
    250 - (base + NEXT.fetch_add(1, Ordering::Relaxed)) % 60
}

fn temp_dir() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "mailsite-helper-test-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running site (one or more `mailsite serve` processes), stopped when dropped.
pub struct Site {
    pub children: Vec<Child>,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub net: u8,
}

impl Site {
    /// The embedded default on 127.N.0.x, every role in one process.
    pub fn start() -> Site {
        Site::start_with(|t| t)
    }

    /// Like [`Site::start`], with the configuration text edited first.
    pub fn start_with(edit: impl FnOnce(String) -> String) -> Site {
        let net = next_net();
        let dir = temp_dir();
        let config = dir.join("site.toml");
        std::fs::write(&config, edit(site_toml(net, &dir))).unwrap();
        let mut site = Site {
            children: Vec::new(),
            dir,
            config,
            net,
        };
        let child = site.spawn(&site.config.clone(), "serve.log");
        site.children.push(child);
        site.wait_http();
        site
    }

    /// Starts another process of the same site (same data) with its own configuration.
    pub fn spawn(&self, config: &Path, log: &str) -> Child {
        let log = std::fs::File::create(self.dir.join(log)).unwrap();
        Command::new(mailsite_bin())
            .arg("--config")
            .arg(config)
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start mailsite serve")
    }

    fn wait_http(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.children[0].try_wait() {
                panic!("mailsite serve exited with {status}: {}", self.log());
            }
            if raw_get(self.http(), "/readyz").is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("mailsite serve did not become ready: {}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("serve.log")).unwrap_or_default()
    }

    pub fn http(&self) -> SocketAddr {
        format!("127.{}.0.1:8080", self.net).parse().unwrap()
    }

    pub fn addr(&self, host: u8) -> String {
        format!("127.{}.0.{host}", self.net)
    }

    pub fn overrides(&self) -> SiteOverride {
        SiteOverride {
            site_url: Some(format!("http://{}", self.http())),
            dns: Some(format!("127.{}.0.1:10053", self.net).parse().unwrap()),
            ca: Some(self.ca()),
        }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("data/tls/ca.pem")
    }

    /// The helper's site arguments for this site.
    pub fn helper_args(&self) -> Vec<String> {
        let o = self.overrides();
        vec![
            "--site-url".into(),
            o.site_url.unwrap(),
            "--dns".into(),
            o.dns.unwrap().to_string(),
            "--ca".into(),
            o.ca.unwrap().display().to_string(),
        ]
    }

    /// Runs `mailsite` on this site's configuration and data.
    pub fn mailsite(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(mailsite_bin());
        cmd.arg("--config")
            .arg(&self.config)
            .arg("--data-dir")
            .arg(self.dir.join("data"));
        run(cmd.args(args), stdin)
    }

    pub fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.mailsite(args, stdin);
        assert!(
            out.status.success(),
            "mailsite {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn add_user(&self, name: &str, password: &str) {
        self.ok(&["user", "add", name], Some(&format!("{password}\n")));
    }

    /// Waits (at most 10 s) until the running site serves `letter` from `server`: an
    /// operator's change reaches the running process within its refresh interval, and
    /// a session opened before that is ended by the drain, not referred.
    pub fn wait_served(&self, letter: &str, server: &str) {
        let line = format!("mailsite_letter_owner{{letter=\"{letter}\",server=\"{server}\"}} 1");
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_secs(10) {
            if self.get("/metrics").contains(&line) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("letter {letter} is still not served by {server} after 10 s");
    }

    /// GET a path of the site's HTTP service; the whole answer.
    pub fn get(&self, path: &str) -> String {
        raw_get(self.http(), path).unwrap_or_default()
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- serve.log ---\n{}", self.log());
        }
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The embedded default moved to 127.N.0.x with its data in `dir`.
pub fn site_toml(net: u8, dir: &Path) -> String {
    mailsite_shared::config::DEFAULT_SITE_TOML
        .replace("127.0.0.", &format!("127.{net}.0."))
        .replace(
            "data_dir = \"mailsite-data\"",
            &format!("data_dir = {:?}", dir.join("data")),
        )
}

/// Waits (at most 20 s) until a TCP port accepts connections.
pub fn wait_port(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_millis(200)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{addr} never accepted a connection");
}

/// Every form the password could leak in: plain, and base64 as in SASL PLAIN (with
/// each login name) and AUTH LOGIN.
pub fn assert_no_secret(text: &str, password: &str, logins: &[&str]) {
    use base64::Engine;
    let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
    let mut forms = vec![password.to_string(), b64(password.to_string())];
    for login in logins {
        forms.push(b64(format!("\0{login}\0{password}")));
        forms.push(b64(format!("{login}\0{login}\0{password}")));
    }
    for form in forms {
        assert!(
            !text.contains(&form),
            "the report contains a form of the password ({form})"
        );
    }
}
