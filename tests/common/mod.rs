//! Test support: start `mailsite serve` as a real process and talk to it with real
//! clients (curl, dig, Python, hickory-resolver).
//!
//! Each [`Site`] gets its own loopback /16 (127.N.0.0) by rewriting the embedded
//! default configuration, so tests run in parallel without sharing ports or state.
//! [`Site::embedded`] runs the genuine embedded default (fixed addresses), one at a time.
//!
//! With `MAILSITE_TEST_POSTGRES=1` every isolated site (and the [`Node`]s that share its
//! configuration) keeps its directory and mail index in a database of its own on a real
//! PostgreSQL ([`postgres`]) instead of SQLite, so that the same suites run on both.

#![allow(dead_code)]

pub mod postgres;
mod process;
pub use process::{raw_get, run_command};

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_mailsite");

/// A running `mailsite serve`, stopped when dropped.
pub struct Site {
    child: Child,
    pub dir: PathBuf,
    pub config: Option<PathBuf>,
    pub http: SocketAddr,
    pub dns: SocketAddr,
    /// The second octet of this site's loopback addresses.
    pub net: u8,
    /// The site's PostgreSQL database (`None`: SQLite in the data directory).
    pub database: Option<String>,
    stdout: Arc<Mutex<String>>,
    _exclusive: Option<MutexGuard<'static, ()>>,
}

static NEXT_NET: AtomicU8 = AtomicU8::new(0);
static EMBEDDED: Mutex<()> = Mutex::new(());

pub fn temp_dir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "mailsite-test-{tag}-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        rand_u32()
    ));
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    dir
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish() as u32
}

/// A loopback /16 for one site: spread by process id so that test binaries running at
/// once (nextest) rarely meet, and by a counter within one binary.
pub fn next_net() -> u8 {
    let base = (std::process::id() % 23) as u8 * 10;
    20 + (base + NEXT_NET.fetch_add(1, Ordering::Relaxed)) % 230
}

impl Site {
    /// A site from the embedded default, moved onto its own loopback addresses.
    pub fn isolated() -> Site {
        Site::isolated_with(|text| text)
    }

    /// Like [`Site::isolated`], with the configuration text edited first.
    pub fn isolated_with(edit: impl FnOnce(String) -> String) -> Site {
        let net = next_net();
        let dir = temp_dir("site");
        let database = postgres::database_for_test();
        let mut site_keys = format!("data_dir = {:?}", dir.join("data"));
        if let Some(url) = &database {
            site_keys.push_str(&format!("\ndatabase = {url:?}"));
        }
        let text = mailsite_shared::config::DEFAULT_SITE_TOML
            .replace("127.0.0.", &format!("127.{net}.0."))
            .replace("data_dir = \"mailsite-data\"", &site_keys);
        let config = dir.join("site.toml");
        std::fs::write(&config, edit(text)).expect("write the site configuration");
        let http: SocketAddr = format!("127.{net}.0.1:8080").parse().unwrap();
        let dns: SocketAddr = format!("127.{net}.0.1:10053").parse().unwrap();
        Site::start(dir, Some(config), database, http, dns, net, None)
    }

    /// The genuine embedded default on its fixed addresses (one at a time).
    pub fn embedded() -> Site {
        let guard = EMBEDDED.lock().unwrap_or_else(|e| e.into_inner());
        let dir = temp_dir("embedded");
        Site::start(
            dir,
            None,
            None,
            "127.0.0.1:8080".parse().unwrap(),
            "127.0.0.1:10053".parse().unwrap(),
            0,
            Some(guard),
        )
    }

    fn start(
        dir: PathBuf,
        config: Option<PathBuf>,
        database: Option<String>,
        http: SocketAddr,
        dns: SocketAddr,
        net: u8,
        exclusive: Option<MutexGuard<'static, ()>>,
    ) -> Site {
        let stdout = Arc::new(Mutex::new(String::new()));
        let child = spawn_serve(&dir, config.as_deref(), &stdout);
        let mut site = Site {
            child,
            dir,
            config,
            database,
            http,
            dns,
            net,
            stdout,
            _exclusive: exclusive,
        };
        site.wait_ready();
        site
    }

    /// Kills the server outright (SIGKILL): no shutdown, no flushing.
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same configuration and data.
    pub fn start_again(&mut self) {
        self.child = spawn_serve(&self.dir, self.config.as_deref(), &self.stdout);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("mailsite serve exited with {status}:\n{}", self.log());
            }
            if raw_get(self.http, "/readyz").is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "mailsite serve did not become ready within 30 s:\n{}",
            self.log()
        );
    }

    /// What the server wrote to standard error so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("serve.log")).unwrap_or_default()
    }

    /// The process id of the running `mailsite serve`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The resident memory of the running `mailsite serve`, in KiB (VmRSS).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the server's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc status")
    }

    /// What the server printed on standard output so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn domain(&self) -> &'static str {
        "example.test"
    }

    /// A loopback address of this site: `host` is the last octet (11 = mailbox1, ...).
    pub fn addr(&self, host: u8) -> String {
        format!("127.{}.0.{host}", self.net)
    }

    /// `mailsite` with this site's configuration and data directory.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        if let Some(config) = &self.config {
            cmd.arg("--config").arg(config);
        }
        cmd.arg("--data-dir").arg(self.dir.join("data"));
        cmd
    }

    /// Runs a CLI command with optional standard input.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        run_command(self.command().args(args), stdin)
    }

    /// Runs a CLI command that must succeed; returns its standard output.
    pub fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "mailsite {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Adds a user and waits until the running server has picked the change up (it
    /// polls the directory), so the next request sees the user.
    pub fn add_user(&self, username: &str, password: &str, extra: &[&str]) {
        let mut args = vec!["user", "add", username];
        args.extend_from_slice(extra);
        self.ok(&args, Some(&format!("{password}\n")));
        let count: serde_json::Value =
            serde_json::from_str(&self.ok(&["user", "list", "--json"], None)).unwrap();
        let line = format!("mailsite_users {}\n", count.as_array().map_or(0, Vec::len));
        let seen = self.within(Duration::from_secs(5), || {
            self.get("/metrics").body.contains(&line)
        });
        assert!(seen.is_some(), "the server did not pick up user {username}");
    }

    /// A URL on this site's HTTP service.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// GET with curl.
    pub fn get(&self, path: &str) -> Http {
        curl(&[&self.url(path)])
    }

    /// POST a body with curl.
    pub fn post(&self, path: &str, content_type: &str, body: &[u8]) -> Http {
        let file = self.dir.join(format!("body-{}", rand_u32()));
        std::fs::write(&file, body).unwrap();
        let data = format!("@{}", file.display());
        curl(&[
            "-X",
            "POST",
            "-H",
            &format!("Content-Type: {content_type}"),
            "--data-binary",
            &data,
            &self.url(path),
        ])
    }

    /// Polls `check` every 50 ms for up to `limit`; returns how long it took.
    pub fn within(&self, limit: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if check() {
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

/// Starts `mailsite serve` for a site directory; its stdout is collected in `stdout`
/// and its stderr appended to `serve.log`.
fn spawn_serve(dir: &Path, config: Option<&Path>, stdout: &Arc<Mutex<String>>) -> Child {
    let mut cmd = Command::new(BIN);
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("serve.log"))
        .expect("open the log file");
    let mut child = cmd
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("serve")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("start mailsite serve");
    let mut pipe = child.stdout.take().unwrap();
    let sink = stdout.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    child
}

impl Drop for Site {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // A failed test shows what the server logged: its errors and warnings
            // (the cause is often long before the end), then the last lines.
            let log = self.log();
            let alarms: Vec<&str> = log
                .lines()
                .filter(|l| l.contains(" ERROR ") || l.contains(" WARN "))
                .take(40)
                .collect();
            if !alarms.is_empty() {
                eprintln!("--- serve.log (errors and warnings) ---");
                for line in alarms {
                    eprintln!("{line}");
                }
            }
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- serve.log (last lines) ---");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = std::fs::remove_dir_all(&self.dir);
                if let Some(url) = &self.database {
                    postgres::Postgres::shared().drop_database(url);
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response as curl saw it.
#[derive(Debug)]
pub struct Http {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

/// Runs curl with the given arguments; the body and status come back separately.
pub fn curl(args: &[&str]) -> Http {
    let out = run_command(
        Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "10",
                "-o",
                "-",
                "-w",
                "\n%{http_code}\n%{content_type}",
            ])
            .args(args),
        None,
    );
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut parts = text.rsplitn(3, '\n');
    let content_type = parts.next().unwrap_or_default().to_string();
    let status = parts.next().unwrap_or_default().parse().unwrap_or(0);
    let body = parts.next().unwrap_or_default().to_string();
    Http {
        status,
        content_type,
        body,
    }
}

/// Runs a Python 3 program with arguments; returns its standard output.
pub fn python(program: &str, args: &[&str]) -> String {
    let out = run_command(
        Command::new("python3").arg("-c").arg(program).args(args),
        None,
    );
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs dig; returns its standard output.
pub fn dig(args: &[&str]) -> String {
    let out = run_command(Command::new("dig").args(args), None);
    assert!(
        out.status.success(),
        "dig {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The A records of `name` at the DNS server `dns` (dig, one try of at most 2 s), sorted.
pub fn resolve(dns: SocketAddr, name: &str) -> Vec<String> {
    records(dns, name, "A")
}

/// The records of one type at `name` (dig +short, one try of at most 2 s), sorted.
pub fn records(dns: SocketAddr, name: &str, rtype: &str) -> Vec<String> {
    let out = dig(&[
        &format!("@{}", dns.ip()),
        "-p",
        &dns.port().to_string(),
        "+short",
        "+tries=1",
        "+time=2",
        name,
        rtype,
    ]);
    let mut answers: Vec<String> = out.lines().map(|l| l.trim().to_string()).collect();
    answers.sort();
    answers
}

pub fn exists(path: &Path) -> bool {
    path.exists()
}

/// A child process whose standard output lines are collected as they come, so that a
/// test can act (e.g. kill a server) once enough has happened rather than after a
/// fixed sleep that a busy machine may not honour.
pub struct Lines {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Lines {
    pub fn spawn(cmd: &mut Command) -> Lines {
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the client");
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        Lines {
            child,
            lines,
            reader: Some(reader),
        }
    }

    /// How many lines so far satisfy `counted`.
    pub fn count(&self, counted: impl Fn(&str) -> bool) -> usize {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().filter(|l| counted(l)).count()
    }

    /// Waits for the child to end (it must, by itself) and returns all its lines.
    pub fn finish(mut self) -> Vec<String> {
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        std::mem::take(&mut *self.lines.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Waits (at most 30 s) until `ready` holds, checking every 20 ms.
pub fn wait_until(mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A TCP connection to `addr` from the local address `source` (port chosen by the
/// system), e.g. from a sorter's address.
pub fn connect_from(addr: &str, source: &str) -> TcpStream {
    let addr: SocketAddr = addr.parse().expect("an address and port");
    let source: std::net::IpAddr = source.parse().expect("an address");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("a runtime");
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket
            .bind(SocketAddr::new(source, 0))
            .expect("bind the source");
        socket.connect(addr).await.expect("connect")
    });
    let stream = stream.into_std().expect("a std stream");
    stream.set_nonblocking(false).expect("blocking mode");
    stream
}

/// A raw SMTP or LMTP connection that reads whole replies, continuation lines included.
pub struct Replies {
    reader: std::io::BufReader<TcpStream>,
    writer: TcpStream,
}

impl Replies {
    /// Connects and checks the 220 greeting.
    pub fn connect(addr: &str) -> Replies {
        Replies::over(TcpStream::connect(addr).expect("connect"))
    }

    /// Connects from the local address `source` and checks the 220 greeting.
    pub fn connect_from(addr: &str, source: &str) -> Replies {
        Replies::over(connect_from(addr, source))
    }

    fn over(stream: TcpStream) -> Replies {
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("a read timeout");
        let mut client = Replies {
            reader: std::io::BufReader::new(stream.try_clone().expect("a second handle")),
            writer: stream,
        };
        let greeting = client.reply();
        assert!(greeting.starts_with("220 "), "{greeting}");
        client
    }

    pub fn send(&mut self, text: &str) {
        self.writer.write_all(text.as_bytes()).expect("send");
    }

    /// One whole reply (all its lines), as text; empty if the connection closed.
    pub fn reply(&mut self) -> String {
        use std::io::BufRead;
        let mut out = String::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).unwrap_or(0) == 0 {
                return out;
            }
            out.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return out;
            }
        }
    }

    /// Sends a command and returns its reply.
    pub fn ask(&mut self, command: &str) -> String {
        self.send(command);
        self.reply()
    }

    /// Whether the server closed the connection (reads to the end).
    pub fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        self.reader.read_to_end(&mut rest).is_ok()
    }
}

impl Site {
    /// Runs one SQL statement on the site's database (SQLite through Python's sqlite3, or
    /// PostgreSQL through psql); returns the rows it printed, one per line, columns
    /// separated by `|`.
    pub fn sql(&self, statement: &str) -> String {
        match &self.database {
            Some(url) => postgres::Postgres::shared().psql(url, statement),
            None => python(
                "import sqlite3, sys\n\
                 c = sqlite3.connect(sys.argv[1])\n\
                 for row in c.execute(sys.argv[2]): print('|'.join(map(str, row)))\n\
                 c.commit()",
                &[&self.dir.join("data/site.db").to_string_lossy(), statement],
            ),
        }
    }

    /// The files in which the site's database keeps what it committed.
    pub fn database_files(&self) -> Vec<PathBuf> {
        match &self.database {
            Some(url) => postgres::Postgres::shared().files_of(url),
            None => ["site.db", "site.db-wal"]
                .iter()
                .map(|f| self.dir.join("data").join(f))
                .filter(|p| p.exists())
                .collect(),
        }
    }

    /// Every message in a user's Maildir INBOX (cur/ and new/), as text, sorted.
    pub fn inbox(&self, user: &str) -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["cur", "new"] {
            let dir = self.dir.join(format!("data/mail/{user}/{sub}"));
            if let Ok(listing) = std::fs::read_dir(dir) {
                for entry in listing.flatten() {
                    if let Ok(bytes) = std::fs::read(entry.path()) {
                        out.push(String::from_utf8_lossy(&bytes).into_owned());
                    }
                }
            }
        }
        out.sort();
        out
    }
}

/// Another `mailsite serve` on a site's configuration and data directory that runs only
/// some roles and servers (`[node] roles` and `servers`): a node of a shared-storage
/// site (one data directory and database). Stopped when dropped.
pub struct Node {
    child: Option<Child>,
    config: PathBuf,
    data: PathBuf,
    log: PathBuf,
    /// Where the node listens once it is ready (e.g. its IMAP or SMTP port).
    ready: SocketAddr,
}

impl Node {
    /// Starts a node named `name` (for its files) running `roles` for `servers` only
    /// (all of the site's when empty), and waits until `ready` accepts connections.
    pub fn start(site: &Site, name: &str, roles: &[&str], servers: &[&str], ready: &str) -> Node {
        Node::start_with(site, name, roles, servers, ready, |text| text)
    }

    /// Like [`Node::start`], with the node's configuration text edited first.
    pub fn start_with(
        site: &Site,
        name: &str,
        roles: &[&str],
        servers: &[&str],
        ready: &str,
        edit: impl FnOnce(String) -> String,
    ) -> Node {
        let text = std::fs::read_to_string(site.config.as_ref().expect("an isolated site"))
            .expect("read the site configuration");
        let quoted = |list: &[&str]| {
            let items: Vec<String> = list.iter().map(|s| format!("{s:?}")).collect();
            format!("[{}]", items.join(", "))
        };
        let mut node = format!("roles = {}", quoted(roles));
        if !servers.is_empty() {
            node.push_str(&format!("\nservers = {}", quoted(servers)));
        }
        let text: Vec<String> = text
            .lines()
            .map(|l| match l.starts_with("roles = ") {
                true => node.clone(),
                false => l.to_string(),
            })
            .collect();
        let config = site.dir.join(format!("{name}.toml"));
        std::fs::write(&config, edit(text.join("\n"))).expect("write the node configuration");
        Node::start_own(
            config,
            site.dir.join("data"),
            site.dir.join(format!("{name}.log")),
            ready,
        )
    }

    /// Starts a node as a machine of its own runs it: its own configuration file, data
    /// directory and log; waits until `ready` accepts connections.
    pub fn start_own(config: PathBuf, data: PathBuf, log: PathBuf, ready: &str) -> Node {
        let mut node = Node {
            child: None,
            config,
            data,
            log,
            ready: ready.parse().expect("a socket address"),
        };
        node.start_again();
        node
    }

    /// Starts the node again (after [`Node::kill_hard`]) and waits until it is ready.
    pub fn start_again(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the node log");
        let child = Command::new(BIN)
            .arg("--config")
            .arg(&self.config)
            .arg("--data-dir")
            .arg(&self.data)
            .arg("serve")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start a mailsite node");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&self.ready, Duration::from_millis(200)).is_err() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("the node exited with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "the node did not listen on {} within 30 s:\n{}",
                self.ready,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the node outright (SIGKILL), as a crash or a power cut would.
    pub fn kill_hard(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!("--- {} (last lines) ---", self.log.display());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
        self.kill_hard();
    }
}
