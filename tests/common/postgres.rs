//! A real PostgreSQL for the tests: the Debian package's server (`initdb`, `pg_ctl` from
//! `/usr/lib/postgresql/*/bin`) in a temporary directory on 127.0.0.1 and a free port,
//! with trust authentication for the superuser `postgres`. One cluster per test process,
//! started on first use; every site gets a database of its own on it.
//!
//! PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user
//! (`runuser`). A test process never gets to drop its statics, so a small watcher process
//! (in a process group of its own, to outlive a Ctrl-C of the tests) waits for the test
//! process to end, then stops the cluster (`pg_ctl stop -m immediate`) and removes its
//! directory.
//!
//! Standard library only: the server's unit tests include this file by path
//! (`server/src/lib.rs`), as the end-to-end tests do through `tests/common`.

#![allow(dead_code)]

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The variable that makes the suites run on PostgreSQL instead of SQLite.
pub const SWITCH: &str = "MAILSITE_TEST_POSTGRES";

/// Whether the suites run on PostgreSQL (`MAILSITE_TEST_POSTGRES=1`).
pub fn wanted() -> bool {
    std::env::var(SWITCH).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// A fresh database on this process's cluster when the suites run on PostgreSQL; `None`
/// (SQLite in the data directory) otherwise.
pub fn database_for_test() -> Option<String> {
    wanted().then(|| Postgres::shared().create_database())
}

/// The longest a watcher waits for its test process (then it stops the cluster anyway).
const WATCH_LIMIT_SECONDS: u32 = 4 * 3600;

/// A running PostgreSQL cluster.
pub struct Postgres {
    pub host: String,
    pub port: u16,
    bin: PathBuf,
    dir: PathBuf,
    /// `runuser -u postgres --` when this process is root.
    as_postgres: Vec<String>,
}

impl Postgres {
    /// The cluster of this test process, started on first use.
    pub fn shared() -> &'static Postgres {
        static SHARED: OnceLock<Postgres> = OnceLock::new();
        SHARED.get_or_init(Postgres::start)
    }

    /// Starts a new cluster, stopped by its watcher when this process ends.
    pub fn start() -> Postgres {
        let bin = server_bin();
        let root = is_root();
        let as_postgres: Vec<String> = match root {
            true => ["runuser", "-u", "postgres", "--"]
                .map(String::from)
                .to_vec(),
            false => Vec::new(),
        };
        let dir = std::env::temp_dir().join(format!(
            "mailsite-postgres-{}-{}",
            std::process::id(),
            unique()
        ));
        std::fs::create_dir_all(&dir).expect("create the PostgreSQL directory");
        if root {
            // The server's own files belong to the postgres user.
            let out = run(Command::new("chown").arg("postgres:").arg(&dir));
            assert!(
                out.status.success(),
                "chown postgres {}: {}",
                dir.display(),
                text(&out)
            );
        }
        let mut pg = Postgres {
            host: "127.0.0.1".to_string(),
            port: 0,
            bin,
            dir,
            as_postgres,
        };
        pg.watch();
        let out = run(pg
            .command("initdb")
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "-N",
                "-D",
            ])
            .arg(pg.data()));
        assert!(out.status.success(), "initdb failed: {}", text(&out));
        // A free port now may be taken before the server binds it: try a few.
        let mut last = String::new();
        for _ in 0..5 {
            pg.port = free_port(&pg.host);
            // No durability needed for tests (the cluster is thrown away), and room for
            // every node and CLI of the sites that run at once.
            let options = format!(
                "-c listen_addresses={} -p {} -c unix_socket_directories= -c max_connections=400 \
                 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                pg.host, pg.port
            );
            let out = run(pg
                .command("pg_ctl")
                .arg("-D")
                .arg(pg.data())
                .arg("-l")
                .arg(pg.dir.join("postgres.log"))
                .args(["-o", &options, "-w", "-t", "60", "start"]));
            if out.status.success() {
                return pg;
            }
            last = format!(
                "{}\n{}",
                text(&out),
                std::fs::read_to_string(pg.dir.join("postgres.log")).unwrap_or_default()
            );
        }
        panic!("PostgreSQL did not start: {last}");
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A command of the PostgreSQL server package, as the postgres user when root.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut cmd = match self.as_postgres.split_first() {
            Some((runner, args)) => {
                let mut cmd = Command::new(runner);
                cmd.args(args).arg(path);
                cmd
            }
            None => Command::new(path),
        };
        cmd.current_dir(&self.dir);
        cmd
    }

    /// Starts the watcher: once this process is gone, stop the cluster and remove it.
    fn watch(&self) {
        let stop = self.command("pg_ctl").get_args().fold(
            shell_quote(self.command("pg_ctl").get_program()),
            |line, arg| format!("{line} {}", shell_quote(arg)),
        );
        // In the background of a shell that exits at once: the watcher is nobody's child
        // here (no zombie, nothing to wait for) and outlives this process.
        let script = format!(
            "(n=0; while kill -0 {pid} 2>/dev/null && [ $n -lt {limit} ]; do sleep 1; n=$((n+1)); done; \
             {stop} -D {data} stop -m immediate -w -t 30; rm -rf {dir}) &",
            pid = std::process::id(),
            limit = WATCH_LIMIT_SECONDS,
            data = shell_quote(self.data().as_os_str()),
            dir = shell_quote(self.dir.as_os_str()),
        );
        Command::new("sh")
            .args(["-c", &script])
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .status()
            .expect("start the PostgreSQL watcher");
    }

    /// The URL of a database on this cluster.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@{}:{}/{database}", self.host, self.port)
    }

    /// Creates a new, empty database; returns its URL.
    pub fn create_database(&self) -> String {
        let name = format!("mailsite_{}_{}", std::process::id(), unique());
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    /// Drops the database a URL of this cluster names (connections to it are ended).
    /// Never panics: it runs when sites are dropped, possibly during a panic.
    pub fn drop_database(&self, url: &str) {
        if let Some(name) = url.rsplit('/').next() {
            let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            let _ = run(&mut self.psql_command("postgres", &sql));
        }
    }

    /// Runs SQL on a database (a name or a URL of this cluster) with psql; returns what
    /// it printed (unaligned, no headers).
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let out = run(&mut self.psql_command(database, sql));
        assert!(out.status.success(), "psql {sql:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn psql_command(&self, database: &str, sql: &str) -> Command {
        let database = database.rsplit('/').next().unwrap_or(database);
        let mut cmd = Command::new(self.bin.join("psql"));
        cmd.args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            &self.host,
        ])
        .args([
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
            "-d",
            database,
            "-c",
            sql,
        ]);
        cmd
    }

    /// The files that hold a database's data and the cluster's write-ahead log, after a
    /// checkpoint (so that everything committed is in them).
    pub fn files_of(&self, url: &str) -> Vec<PathBuf> {
        let name = url.rsplit('/').next().unwrap_or_default();
        self.psql("postgres", "CHECKPOINT");
        let oid = self.psql(
            "postgres",
            &format!("SELECT oid FROM pg_database WHERE datname = '{name}'"),
        );
        let mut files = Vec::new();
        for dir in [
            self.data().join("base").join(oid.trim()),
            self.data().join("pg_wal"),
        ] {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if entry.path().is_file() {
                    files.push(entry.path());
                }
            }
        }
        files
    }
}

/// Where the Debian package keeps the server programs: the newest
/// `/usr/lib/postgresql/VERSION/bin`, else the folder of an `initdb` on the PATH.
fn server_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
        .unwrap_or_else(|| {
            panic!("no PostgreSQL server found: install the Debian package postgresql (apt-get install postgresql)")
        })
}

fn is_root() -> bool {
    run(Command::new("id").arg("-u")).stdout.starts_with(b"0\n")
}

fn free_port(host: &str) -> u16 {
    TcpListener::bind((host, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on loopback")
}

fn unique() -> u32 {
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Runs a command to its end (at most a few minutes: every program here is bounded).
fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", cmd.get_program()))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn shell_quote(s: &std::ffi::OsStr) -> String {
    format!("'{}'", s.to_string_lossy().replace('\'', r"'\''"))
}
