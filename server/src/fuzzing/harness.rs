//! The fixture the protocol entry points share: a site database, a store and TLS in a
//! scratch directory, users who can log in, mail in the INBOX, and a loopback
//! connection that feeds the fuzzer's bytes to a real `serve_connection` and returns
//! what the server wrote.
//!
//! Each protocol gets its own fixture (its own runtime, database and store), built
//! once per process; the store is reset before every input so that an input means the
//! same thing whenever it runs.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use mailsite_shared::SiteConfig;
use mailsite_shared::autoconfig::Preference;
use mailsite_shared::route::valid_username;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

use super::replies::Transcript;
use crate::directory::Directory;
use crate::mailbox::MailboxServer;
use crate::mailbox::store::Store;
use crate::state::Site;

/// The user the seeds log in as, served by this mailbox server.
pub const USER: &str = "alice";
/// A user of the same site served by the other mailbox server (login referrals).
pub const ELSEWHERE: &str = "nora";
/// A user of this server whose account is disabled.
pub const DISABLED: &str = "dave";
/// Every user's password.
pub const PASSWORD: &str = "fuzz-password";

/// Longest one input may keep a connection open. Far above what any input needs
/// (fuzzing builds hash cheaply and skip login delays), so reaching it means a hang.
const BOUND: Duration = Duration::from_secs(20);
/// How long the server must stay parked, with nothing in flight, before it is taken
/// to be waiting for input (without /proc: covers a blocking task whose thread has not
/// started yet).
const SETTLE: Duration = Duration::from_micros(500);
/// The pause between two looks at the server.
const LOOK: Duration = Duration::from_micros(100);

/// The messages in the INBOX when each input starts: plain text with a dot line and
/// bare LFs, a multipart with an attachment and a forwarded message, and one with 8-bit
/// headers and a NUL byte, already seen and flagged.
const MESSAGES: [(&[u8], &[&str]); 3] = [
    (
        b"From: Bob <bob@example.org>\r\nTo: alice@example.test\r\nSubject: Lunch\r\nDate: Mon, 1 Jan 2024 12:00:00 +0000\r\nMessage-ID: <1@example.org>\r\n\r\nShall we?\r\n.\r\n..dots\nbare LF line\n",
        &[],
    ),
    (
        b"From: carol@example.org\r\nTo: alice@example.test, \"Team\" <team@example.test>\r\nCc: <x@example.org>\r\nSubject: =?UTF-8?B?UmFwcG9ydA==?=\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nSee the report =E2=80=94 attached.\r\n--b1\r\nContent-Type: application/pdf; name=\"r.pdf\"\r\nContent-Disposition: attachment; filename=\"r.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b1\r\nContent-Type: message/rfc822\r\n\r\nFrom: dan@example.org\r\nSubject: inner\r\n\r\ninner body\r\n--b1--\r\nepilogue\r\n",
        &[],
    ),
    (
        b"From: \xc3\xa9mile@example.org\r\nSubject: caf\xc3\xa9 \x00 nul\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n folded\r\n\r\nbody\x00with NUL\r\n",
        &["\\Seen", "\\Flagged", "$Label1"],
    ),
];

/// When the end of the client's input reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eof {
    /// Right after the input: for servers that answer every line before reading on
    /// (POP3, LMTP), so that the end of input can only be seen after the last answer.
    AfterInput,
    /// Once the server waits for input it will never get (IMAP): imap-next reads while
    /// it writes, and a server that sees the end of input while answering stops there,
    /// at random, leaving the rest of the input unread.
    WhenIdle,
}

pub struct Harness {
    runtime: Runtime,
    server: MailboxServer,
    scratch: PathBuf,
    root: PathBuf,
    listener: TcpListener,
    blocking: Arc<BlockingThreads>,
    eof: Eof,
    /// One input at a time: they share the store.
    turn: Mutex<()>,
}

impl Harness {
    /// Builds the fixture for one protocol (`name` keeps the scratch directories and
    /// thread names apart), whose server sees the end of input as `eof` says.
    pub fn new(name: &str, eof: Eof) -> Harness {
        let blocking = Arc::new(BlockingThreads::new(name));
        let (started, stopped) = (blocking.clone(), blocking.clone());
        // Watching for the server to wait needs blocking threads that end with their
        // task; otherwise they are kept, as in production (thread starts are slow).
        let keep_alive = match eof {
            Eof::WhenIdle => Duration::ZERO,
            Eof::AfterInput => Duration::from_secs(10),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_keep_alive(keep_alive)
            .thread_name(&blocking.pool_name)
            .on_thread_start(move || {
                started.started.fetch_add(1, Ordering::SeqCst);
            })
            .on_thread_stop(move || {
                stopped.stopped.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .expect("a tokio runtime for fuzzing");
        let scratch = scratch_dir(name);
        let root = scratch.join("jail").join("cell").join("mail");
        let server = runtime.block_on(site(&scratch, root.clone()));
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("a loopback listener for fuzzing");
        Harness {
            runtime,
            server,
            scratch,
            root,
            listener,
            blocking,
            eof,
            turn: Mutex::new(()),
        }
    }

    /// Resets the store, connects, serves the connection with `serve` while sending it
    /// `input` (then the end of input), and returns what the client saw.
    /// Panics if the connection outlives [`BOUND`], if the server panicked, or
    /// if a file appeared outside the storage root.
    pub fn converse<F, Fut>(&self, input: &[u8], serve: F) -> Transcript
    where
        F: FnOnce(TcpStream, SocketAddr, &MailboxServer) -> Fut,
        Fut: Future<Output = std::io::Result<()>> + Send + 'static,
    {
        let turn = self.turn.lock().unwrap_or_else(|e| e.into_inner());
        self.converse_in_turn(&turn, input, serve)
    }

    /// [`Harness::converse`], then the user's INBOX messages `uids` as the store has
    /// them afterwards, in the same turn: no other test's input resets the store
    /// between the two.
    #[cfg(test)]
    pub fn converse_and_read<F, Fut>(
        &self,
        input: &[u8],
        serve: F,
        uids: &[u32],
    ) -> (Transcript, Vec<Vec<u8>>)
    where
        F: FnOnce(TcpStream, SocketAddr, &MailboxServer) -> Fut,
        Fut: Future<Output = std::io::Result<()>> + Send + 'static,
    {
        let turn = self.turn.lock().unwrap_or_else(|e| e.into_inner());
        let transcript = self.converse_in_turn(&turn, input, serve);
        let messages = uids
            .iter()
            .map(|&uid| {
                self.runtime
                    .block_on(self.server.store.read(USER, "INBOX", uid))
                    .expect("a stored message")
            })
            .collect();
        (transcript, messages)
    }

    fn converse_in_turn<F, Fut>(
        &self,
        _turn: &std::sync::MutexGuard<'_, ()>,
        input: &[u8],
        serve: F,
    ) -> Transcript
    where
        F: FnOnce(TcpStream, SocketAddr, &MailboxServer) -> Fut,
        Fut: Future<Output = std::io::Result<()>> + Send + 'static,
    {
        let _named = ThreadName::set(&self.blocking.runtime_name);
        let transcript = self.runtime.block_on(async {
            let server = self.reset().await;
            tokio::time::timeout(BOUND, self.connection(&server, input, serve))
                .await
                .unwrap_or_else(|_| panic!("the connection was still open after {BOUND:?}"))
        });
        self.assert_nothing_outside_root();
        transcript
    }

    async fn connection<F, Fut>(&self, server: &MailboxServer, input: &[u8], serve: F) -> Transcript
    where
        F: FnOnce(TcpStream, SocketAddr, &MailboxServer) -> Fut,
        Fut: Future<Output = std::io::Result<()>> + Send + 'static,
    {
        let address = self.listener.local_addr().expect("the listener's address");
        let (client, accepted) = tokio::join!(TcpStream::connect(address), self.listener.accept());
        let client = client.expect("a loopback connection");
        let (stream, peer) = accepted.expect("a loopback connection");
        // A second handle on the server's socket, to see whether it has read everything.
        let stream = stream.into_std().expect("a std socket");
        let probe = stream.try_clone().expect("a second handle on the socket");
        let stream = TcpStream::from_std(stream).expect("a tokio socket");
        let _ = socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO));

        let watch = Arc::new(Watch::default());
        let mut task = tokio::spawn(Watched {
            future: Box::pin(serve(stream, peer, server)),
            watch: watch.clone(),
        });
        let (mut from_server, mut to_server) = client.into_split();
        let reader = tokio::spawn(async move {
            let mut output = Vec::new();
            let _ = from_server.read_to_end(&mut output).await;
            output
        });
        let ended = tokio::select! {
            _ = to_server.write_all(input) => None,
            ended = &mut task => Some(ended),
        };
        if ended.is_none() && self.eof == Eof::WhenIdle {
            while !task.is_finished() && !self.waiting_for_input(&watch, &probe).await {}
        }
        let _ = to_server.shutdown().await;
        let ended = match ended {
            Some(ended) => ended,
            None => task.await,
        };
        let ended = match ended {
            Ok(ended) => ended,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(error) => Err(std::io::Error::other(error)),
        };
        // The socket closes with the probe: input the server left unread is read
        // first, so that it closes with a FIN that lets the client read every answer
        // (unread input would make it a reset, which may discard them).
        let mut sink = [0u8; 4096];
        while matches!(std::io::Read::read(&mut &probe, &mut sink), Ok(n) if n > 0) {}
        drop(probe);
        Transcript {
            output: reader.await.unwrap_or_default(),
            ended,
        }
    }

    /// Whether the server has taken every byte sent and waits for more: for all of
    /// [`SETTLE`] its task stays parked, nothing wakes or polls it, and nothing is in
    /// flight that could (no database connection in use, no blocking task started or
    /// running, no unread input). The counters catch what comes and goes between looks.
    async fn waiting_for_input(&self, watch: &Watch, probe: &std::net::TcpStream) -> bool {
        let since = Instant::now();
        let moves = || {
            (
                watch.polls.load(Ordering::SeqCst),
                self.blocking.started.load(Ordering::SeqCst),
            )
        };
        let before = moves();
        loop {
            // Whatever can run runs first; then a pause that leaves the CPU to the
            // threads doing the server's work (this one would otherwise spin).
            tokio::task::yield_now().await;
            let pool = self.server.site.directory.pool();
            let unread = !matches!(
                probe.peek(&mut [0u8]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
            );
            let parked = watch.parked.load(Ordering::SeqCst) && !watch.woken.load(Ordering::SeqCst);
            let quiet = parked
                && !unread
                && pool.num_idle() == pool.size() as usize
                && !self.blocking.busy()
                && moves() == before;
            if quiet && since.elapsed() >= SETTLE {
                return true;
            }
            std::thread::sleep(LOOK);
            if !quiet {
                return false;
            }
        }
    }

    /// The fixture's scratch directory (the site database, TLS files, the storage root
    /// three levels down, and room for a sorter's `spool`).
    pub fn scratch(&self) -> &Path {
        &self.scratch
    }

    /// Puts the store back as it was before the first input: the user's default
    /// mailboxes with [`MESSAGES`] in the INBOX. The first time, it builds that state
    /// with the store and keeps a copy (index rows in `pristine_*` tables, files under
    /// `pristine/`); later, it restores the copy, which takes a fraction of the time.
    /// Returns the server to serve the input with: a fresh [`Store`], so that nothing
    /// the last input left in memory carries over.
    async fn reset(&self) -> MailboxServer {
        let pool = self.server.site.directory.pool();
        let pristine = self.scratch.join("pristine");
        let _ = std::fs::remove_dir_all(&self.root);
        if pristine.is_dir() {
            sqlx::raw_sql(
                "DELETE FROM messages; DELETE FROM mailboxes; DELETE FROM sieve_scripts; DELETE FROM expunges; DELETE FROM expunge_batches; \
                 INSERT INTO mailboxes SELECT * FROM pristine_mailboxes; \
                 INSERT INTO messages SELECT * FROM pristine_messages;",
            )
            .execute(pool)
            .await
            .expect("the fuzzing store's index restores");
            copy_tree(&pristine, &self.root).expect("the fuzzing store's files restore");
        } else {
            std::fs::create_dir_all(&self.root).expect("the fuzzing storage root");
            let store = &self.server.store;
            store.ensure_user(USER).await.expect("the user's mailboxes");
            for (i, (message, flags)) in MESSAGES.iter().enumerate() {
                let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
                let date = 1_700_000_000 + 86_400 * i as i64;
                store
                    .append(USER, "INBOX", message.to_vec(), &flags, Some(date))
                    .await
                    .expect("the user's INBOX");
            }
            sqlx::raw_sql(
                "CREATE TABLE pristine_mailboxes AS SELECT * FROM mailboxes; \
                 CREATE TABLE pristine_messages AS SELECT * FROM messages;",
            )
            .execute(pool)
            .await
            .expect("a copy of the fuzzing store's index");
            copy_tree(&self.root, &pristine).expect("a copy of the fuzzing store's files");
        }
        MailboxServer {
            store: Store::new(self.root.clone(), pool.clone()),
            ..self.server.clone()
        }
    }

    /// Checks that the server wrote nothing outside the storage root. The root is three
    /// directories deep in the scratch directory and each of those holds only the next,
    /// so a path that climbed out with `..` would show up beside them.
    fn assert_nothing_outside_root(&self) {
        let jail = self.scratch.join("jail");
        let expected: [(&Path, &[&str]); 3] = [
            (
                &self.scratch,
                &[
                    "site.db",
                    "site.db-shm",
                    "site.db-wal",
                    "tls",
                    "jail",
                    "pristine",
                    "spool",
                ],
            ),
            (&jail, &["cell"]),
            (&jail.join("cell"), &["mail"]),
        ];
        for (dir, allowed) in expected {
            for name in entries(dir) {
                assert!(
                    allowed.contains(&name.as_str()),
                    "the server wrote {} outside the storage root",
                    dir.join(&name).display()
                );
            }
        }
        for name in entries(&self.root) {
            assert!(
                valid_username(&name) && self.root.join(&name).is_dir(),
                "the storage root holds {name:?}, which is not a user's directory"
            );
        }
    }
}

/// Copies a directory tree of plain files.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The site: the embedded default configuration on a scratch directory, with
/// [`USER`] and [`DISABLED`] served by the returned mailbox server and [`ELSEWHERE`] by
/// the other one.
async fn site(scratch: &Path, root: PathBuf) -> MailboxServer {
    let mut config = SiteConfig::embedded();
    config.data_dir = scratch.to_path_buf();
    let directory = Directory::open(&config)
        .await
        .expect("the fuzzing site database");
    for user in [USER, ELSEWHERE, DISABLED] {
        directory
            .add_user(user, PASSWORD, user, Preference::Imap)
            .await
            .expect("a fuzzing user");
    }
    directory
        .set_enabled(DISABLED, false)
        .await
        .expect("a disabled fuzzing user");
    let tls = crate::tls::acceptor(&config).expect("TLS for fuzzing");
    let store = Store::new(root, directory.pool().clone());
    let site = Site::load(Arc::new(config), directory)
        .await
        .expect("the fuzzing site");
    let snapshot = site.snapshot();
    let route = |user| {
        snapshot
            .map
            .route_user(user, &snapshot.config().domain)
            .server
    };
    let name = route(USER);
    assert_eq!(
        route(DISABLED),
        name,
        "{DISABLED} must be served with {USER}"
    );
    assert_ne!(
        route(ELSEWHERE),
        name,
        "{ELSEWHERE} must be served elsewhere"
    );
    let hostname = format!("{name}.{}", snapshot.config().domain);
    drop(snapshot);
    MailboxServer {
        name,
        hostname,
        site,
        store,
        tls: Some(tls),
        sieve: Default::default(),
    }
}

/// A fresh scratch directory for this process, on tmpfs where there is one (the store
/// fsyncs every message). Directories left by processes that are gone are removed.
pub(super) fn scratch_dir(name: &str) -> PathBuf {
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    if Path::new("/proc/self").exists() {
        for entry in entries(&base) {
            let pid = entry
                .strip_prefix("mailsite-fuzz-")
                .and_then(|rest| rest.split('-').next());
            if let Some(pid) = pid
                && !Path::new("/proc").join(pid).exists()
            {
                let _ = std::fs::remove_dir_all(base.join(&entry));
            }
        }
    }
    let dir = base.join(format!("mailsite-fuzz-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory for fuzzing");
    dir
}

/// The runtime's blocking pool (store file I/O, password hashing) seen from outside:
/// whether a blocking task is queued or running. With no keep-alive ([`Eof::WhenIdle`])
/// its threads exit as soon as their task is done, so a pool thread that exists is a
/// busy one.
///
/// On Linux they are counted in /proc by name, which misses no moment: a new thread
/// has its creator's name (the thread driving the runtime, named `runtime_name` while
/// it does) from the moment it exists, and `pool_name` once it runs. Elsewhere the
/// start and stop hooks count them, and [`SETTLE`] covers a thread not started yet.
struct BlockingThreads {
    started: AtomicU64,
    stopped: AtomicU64,
    runtime_name: String,
    pool_name: String,
}

impl BlockingThreads {
    fn new(protocol: &str) -> BlockingThreads {
        BlockingThreads {
            started: AtomicU64::new(0),
            stopped: AtomicU64::new(0),
            // At most 15 bytes: Linux cuts thread names there.
            runtime_name: format!("fuzz-{protocol}-rt"),
            pool_name: format!("fuzz-{protocol}-bk"),
        }
    }

    fn busy(&self) -> bool {
        match self.named_threads() {
            Some(named) => named > 1,
            None => self.stopped.load(Ordering::SeqCst) != self.started.load(Ordering::SeqCst),
        }
    }

    /// Threads with either name, the runtime's own included; `None` without /proc or
    /// when this thread does not carry the runtime's name.
    fn named_threads(&self) -> Option<usize> {
        let comm = |path: &Path| std::fs::read_to_string(path.join("comm")).ok();
        let own = comm(Path::new("/proc/thread-self"))?;
        if own.trim_end() != self.runtime_name {
            return None;
        }
        let tasks = std::fs::read_dir("/proc/self/task").ok()?;
        let named = tasks
            .filter_map(|task| comm(&task.ok()?.path()))
            .filter(|name| {
                let name = name.trim_end();
                name == self.runtime_name || name == self.pool_name
            })
            .count();
        Some(named)
    }
}

/// Names the calling thread (Linux, through /proc) until dropped, then gives it its
/// name back.
struct ThreadName(Option<String>);

impl ThreadName {
    fn set(name: &str) -> ThreadName {
        let path = "/proc/thread-self/comm";
        let old = std::fs::read_to_string(path).ok();
        let renamed = old.is_some() && std::fs::write(path, name).is_ok();
        ThreadName(old.filter(|_| renamed))
    }
}

impl Drop for ThreadName {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            let _ = std::fs::write("/proc/thread-self/comm", old.trim_end());
        }
    }
}

/// How often the watched task was polled, whether it is parked, and whether something
/// woke it since its last poll.
#[derive(Default)]
struct Watch {
    polls: AtomicU64,
    parked: AtomicBool,
    woken: AtomicBool,
}

/// A future that records in its [`Watch`] how its last poll ended.
struct Watched<F> {
    future: Pin<Box<F>>,
    watch: Arc<Watch>,
}

struct WatchedWaker {
    inner: Waker,
    watch: Arc<Watch>,
}

impl Wake for WatchedWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.watch.woken.store(true, Ordering::SeqCst);
        self.inner.wake_by_ref();
    }
}

impl<F: Future> Future for Watched<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.watch.polls.fetch_add(1, Ordering::SeqCst);
        self.watch.woken.store(false, Ordering::SeqCst);
        let waker = Waker::from(Arc::new(WatchedWaker {
            inner: cx.waker().clone(),
            watch: self.watch.clone(),
        }));
        let poll = self.future.as_mut().poll(&mut Context::from_waker(&waker));
        self.watch.parked.store(poll.is_pending(), Ordering::SeqCst);
        poll
    }
}
