//! IMAP workloads: `imap-mix` (clients repeating a realistic session) and `idle`
//! (connections that log in, select, and stay).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::conn::{Conn, Status, timed};
use crate::message;
use crate::stats::Recorder;

pub const LOGIN: usize = 0;
pub const SELECT: usize = 1;
pub const FETCH_FLAGS: usize = 2;
pub const FETCH_ENVELOPES: usize = 3;
pub const FETCH_BODY: usize = 4;
pub const STORE: usize = 5;
pub const SEARCH: usize = 6;
pub const APPEND: usize = 7;
pub const LOGOUT: usize = 8;
pub const OPS: &[&str] = &[
    "login",
    "select",
    "fetch-flags",
    "fetch-envelopes",
    "fetch-body",
    "store",
    "search",
    "append",
    "logout",
];

/// What one session of the mix does, besides LOGIN, SELECT and LOGOUT.
#[derive(Clone, Debug)]
pub struct Mix {
    pub mailbox: String,
    /// `UID FETCH 1:* (FLAGS)`: a client resynchronising every message's flags.
    pub flag_sync: bool,
    /// Messages per `UID FETCH a:b (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)`.
    pub envelope_window: u32,
    pub envelope_fetches: u32,
    pub body_fetches: u32,
    pub stores: u32,
    pub searches: u32,
    /// SEARCH keys, one picked at random per search.
    pub search_keys: Vec<String>,
    pub appends: u32,
}

#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub users: Arc<Vec<String>>,
    pub password: String,
    pub timeout: Duration,
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A number after `key` in `line` (`UID 123`, `* 42 EXISTS` is handled by the caller).
fn number_after(line: &[u8], key: &[u8]) -> Option<u32> {
    let at = line.windows(key.len()).position(|w| w == key)? + key.len();
    let digits: &[u8] = &line[at..];
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

fn exists(line: &[u8]) -> Option<u32> {
    let rest = line.strip_prefix(b"* ")?;
    let rest = rest.strip_suffix(b" EXISTS")?;
    std::str::from_utf8(rest).ok()?.parse().ok()
}

struct Session {
    conn: Conn,
    tags: u32,
}

impl Session {
    fn tag(&mut self) -> Vec<u8> {
        self.tags += 1;
        format!("a{}", self.tags).into_bytes()
    }

    async fn command(
        &mut self,
        command: &str,
        on_line: impl FnMut(&[u8]),
    ) -> io::Result<(Status, u64)> {
        let tag = self.tag();
        self.conn.imap(&tag, command.as_bytes(), on_line).await
    }
}

/// Connects, reads the greeting and logs in: the `login` operation.
async fn login(target: &Target, user: &str, buffer: usize) -> io::Result<Result<Session, String>> {
    let mut conn = Conn::connect(target.addr, buffer).await?;
    let greeting = conn.read_line().await?;
    if !greeting.starts_with(b"* OK") {
        return Ok(Err(format!(
            "greeting: {}",
            String::from_utf8_lossy(greeting)
        )));
    }
    let mut s = Session { conn, tags: 0 };
    let cmd = format!("LOGIN {} {}", quote(user), quote(&target.password));
    let mut last = Vec::new();
    let (status, _) = s.command(&cmd, |l| last = l.to_vec()).await?;
    if status != Status::Ok {
        return Ok(Err(format!(
            "LOGIN refused ({status:?}) {}",
            String::from_utf8_lossy(&last)
        )));
    }
    Ok(Ok(s))
}

/// Shared state of a mix run.
pub struct Run {
    pub target: Target,
    pub mix: Mix,
    pub recorder: Recorder,
    pub stop_at: Option<Instant>,
    /// Sessions left to start (`u64::MAX` for a timed run).
    pub sessions_left: AtomicU64,
    pub sessions_done: AtomicU64,
    pub failures_shown: AtomicU64,
}

impl Run {
    fn running(&self) -> bool {
        self.stop_at.is_none_or(|t| Instant::now() < t)
    }

    fn complain(&self, what: &str) {
        if self.failures_shown.fetch_add(1, Ordering::Relaxed) < 10 {
            eprintln!("loadgen: {what}");
        }
    }
}

/// One client: sessions back to back until the run ends.
pub async fn client(run: Arc<Run>, index: usize, seed: u64) {
    let mut rng =
        fastrand::Rng::with_seed(seed ^ (index as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
    let user = run.target.users[index % run.target.users.len()].clone();
    let mut appended = 0u64;
    while run.running() {
        if run
            .sessions_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_err()
        {
            break;
        }
        match session(&run, &user, &mut rng, index, &mut appended).await {
            Ok(()) => {
                run.sessions_done.fetch_add(1, Ordering::Relaxed);
            }
            Err((op, error)) => {
                run.recorder.error(op);
                if run.running() {
                    run.complain(&format!(
                        "client {index} ({user}): {} failed: {error}",
                        OPS[op]
                    ));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

type OpError = (usize, String);

fn io_err(op: usize) -> impl Fn(io::Error) -> OpError {
    move |e| (op, e.to_string())
}

/// Counts a tagged NO/BAD as an error of `op` (the session goes on).
fn check(run: &Run, op: usize, started: Instant, status: Status, what: &str) {
    if status == Status::Ok {
        run.recorder.ok(op, started);
    } else {
        run.recorder.error(op);
        run.complain(&format!("{} answered {status:?}: {what}", OPS[op]));
    }
}

async fn session(
    run: &Run,
    user: &str,
    rng: &mut fastrand::Rng,
    index: usize,
    appended: &mut u64,
) -> Result<(), OpError> {
    let limit = run.target.timeout;
    let mix = &run.mix;

    let t = Instant::now();
    let mut s = match timed(limit, login(&run.target, user, 64 * 1024))
        .await
        .map_err(io_err(LOGIN))?
    {
        Ok(s) => s,
        Err(why) => return Err((LOGIN, why)),
    };
    run.recorder.ok(LOGIN, t);

    let t = Instant::now();
    let mut count = 0;
    let cmd = format!("SELECT {}", quote(&mix.mailbox));
    let (status, _) = timed(
        limit,
        s.command(&cmd, |l| {
            if let Some(n) = exists(l) {
                count = n;
            }
        }),
    )
    .await
    .map_err(io_err(SELECT))?;
    if status != Status::Ok {
        return Err((
            SELECT,
            format!("SELECT {} answered {status:?}", mix.mailbox),
        ));
    }
    run.recorder.ok(SELECT, t);

    // The UIDs of every message: from the flag resynchronisation, as a real client gets them.
    let mut uids: Vec<u32> = Vec::with_capacity(count as usize + 16);
    if mix.flag_sync && run.running() {
        let t = Instant::now();
        let (status, _) = timed(
            limit,
            s.command("UID FETCH 1:* (FLAGS)", |l| {
                if let Some(uid) = number_after(l, b"UID ") {
                    uids.push(uid);
                }
            }),
        )
        .await
        .map_err(io_err(FETCH_FLAGS))?;
        check(run, FETCH_FLAGS, t, status, "UID FETCH 1:* (FLAGS)");
        if status == Status::Ok && uids.len() != count as usize {
            run.complain(&format!(
                "{user}: SELECT said {count} EXISTS, FETCH 1:* gave {} UIDs",
                uids.len()
            ));
        }
    }
    if uids.is_empty() && count > 0 {
        // Without a flag sync: the UIDs from a search (not timed).
        let (status, _) = timed(
            limit,
            s.command("UID SEARCH ALL", |l| {
                if let Some(rest) = l.strip_prefix(b"* SEARCH") {
                    uids.extend(
                        rest.split(|&b| b == b' ')
                            .filter_map(|n| std::str::from_utf8(n).ok()?.parse::<u32>().ok()),
                    );
                }
            }),
        )
        .await
        .map_err(io_err(SEARCH))?;
        if status != Status::Ok {
            return Err((SEARCH, "UID SEARCH ALL refused".into()));
        }
    }
    uids.sort_unstable();
    if uids.is_empty() {
        return Err((SELECT, format!("{} has no messages", mix.mailbox)));
    }
    let pick = |rng: &mut fastrand::Rng| uids[rng.usize(..uids.len())];

    for _ in 0..mix.envelope_fetches {
        if !run.running() {
            return Ok(());
        }
        let window = (mix.envelope_window as usize).clamp(1, uids.len());
        // Mostly the newest messages (opening the folder), sometimes a scroll back.
        let start = if rng.u8(..2) == 0 {
            uids.len() - window
        } else {
            rng.usize(..=uids.len() - window)
        };
        let cmd = format!(
            "UID FETCH {}:{} (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)",
            uids[start],
            uids[start + window - 1]
        );
        let t = Instant::now();
        let mut got = 0;
        let (status, _) = timed(
            limit,
            s.command(&cmd, |l| {
                if l.starts_with(b"* ") && l.windows(8).any(|w| w == b"ENVELOPE") {
                    got += 1;
                }
            }),
        )
        .await
        .map_err(io_err(FETCH_ENVELOPES))?;
        check(run, FETCH_ENVELOPES, t, status, &cmd);
        if status == Status::Ok && got != window {
            run.complain(&format!("{cmd}: {got} envelopes for {window} messages"));
        }
    }

    for _ in 0..mix.body_fetches {
        if !run.running() {
            return Ok(());
        }
        let uid = pick(rng);
        let cmd = format!("UID FETCH {uid} (UID RFC822.SIZE BODY.PEEK[])");
        let t = Instant::now();
        let (status, bytes) = timed(limit, s.command(&cmd, |_| {}))
            .await
            .map_err(io_err(FETCH_BODY))?;
        if status == Status::Ok && bytes == 0 {
            run.recorder.error(FETCH_BODY);
            run.complain(&format!("{cmd}: no body came back"));
        } else {
            check(run, FETCH_BODY, t, status, &cmd);
        }
    }

    for _ in 0..mix.stores {
        if !run.running() {
            return Ok(());
        }
        let uid = pick(rng);
        let (sign, flag) = (
            ["+", "-"][rng.usize(..2)],
            ["\\Seen", "\\Flagged"][rng.usize(..2)],
        );
        let cmd = format!("UID STORE {uid} {sign}FLAGS.SILENT ({flag})");
        let t = Instant::now();
        let (status, _) = timed(limit, s.command(&cmd, |_| {}))
            .await
            .map_err(io_err(STORE))?;
        check(run, STORE, t, status, &cmd);
    }

    for _ in 0..mix.searches {
        if !run.running() || mix.search_keys.is_empty() {
            break;
        }
        let key = &mix.search_keys[rng.usize(..mix.search_keys.len())];
        let key = expand_key(key, rng);
        let cmd = format!("UID SEARCH {key}");
        let t = Instant::now();
        let (status, _) = timed(limit, s.command(&cmd, |_| {}))
            .await
            .map_err(io_err(SEARCH))?;
        check(run, SEARCH, t, status, &cmd);
    }

    for _ in 0..mix.appends {
        if !run.running() {
            return Ok(());
        }
        *appended += 1;
        let n = 1_000_000 + (index as u64) * 100_000 + *appended;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(message::FIRST_DATE, |d| d.as_secs() as i64);
        let bytes = message::message(77, n, &format!("{user}@example.test"), now);
        let tag = s.tag();
        let t = Instant::now();
        let status = timed(
            limit,
            s.conn.imap_append(&tag, &mix.mailbox, "\\Seen", &bytes),
        )
        .await
        .map_err(io_err(APPEND))?;
        check(run, APPEND, t, status, "APPEND");
    }

    if !run.running() {
        return Ok(());
    }
    let t = Instant::now();
    let (status, _) = timed(limit, s.command("LOGOUT", |_| {}))
        .await
        .map_err(io_err(LOGOUT))?;
    check(run, LOGOUT, t, status, "LOGOUT");
    Ok(())
}

/// `FROM *` and `SUBJECT *` stand for a random sender surname / subject word from the
/// seeded messages; `SINCE *` for a date within the last tenth of a 10,000-message INBOX.
fn expand_key(key: &str, rng: &mut fastrand::Rng) -> String {
    match key {
        "FROM *" => format!(
            "FROM \"{}\"",
            message::SURNAMES[rng.usize(..message::SURNAMES.len())]
        ),
        "SUBJECT *" => format!(
            "SUBJECT \"{}\"",
            message::SUBJECT_WORDS[rng.usize(..message::SUBJECT_WORDS.len())]
        ),
        "SINCE *" => format!(
            "SINCE {}",
            message::imap_date(message::FIRST_DATE + 9_000 * 1200 + rng.i64(0..1000) * 1200)
        ),
        other => other.to_string(),
    }
}

/// Opens `connections` connections, each logged in with `users[i % users.len()]` and
/// with `mailbox` selected, at most `parallel` being set up at once. Returns the open
/// sockets and the failures.
pub async fn open_idle(
    target: &Target,
    mailbox: &str,
    connections: usize,
    parallel: usize,
) -> (Vec<TcpStream>, Vec<String>) {
    let gate = Arc::new(Semaphore::new(parallel.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();
    for i in 0..connections {
        let target = target.clone();
        let gate = gate.clone();
        let mailbox = mailbox.to_string();
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let user = target.users[i % target.users.len()].clone();
            let opened = timed(target.timeout, async {
                let mut s = match login(&target, &user, 4096).await? {
                    Ok(s) => s,
                    Err(why) => return Ok(Err(why)),
                };
                let cmd = format!("SELECT {}", quote(&mailbox));
                let (status, _) = s.command(&cmd, |_| {}).await?;
                Ok(match status {
                    Status::Ok => Ok(s.conn.into_stream()),
                    _ => Err(format!("SELECT answered {status:?}")),
                })
            })
            .await;
            match opened {
                Ok(Ok(stream)) => Ok(stream),
                Ok(Err(why)) => Err(format!("connection {i} ({user}): {why}")),
                Err(e) => Err(format!("connection {i} ({user}): {e}")),
            }
        });
    }
    let mut open = Vec::with_capacity(connections);
    let mut failed = Vec::new();
    let mut last_note = Instant::now();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Ok(stream)) => open.push(stream),
            Ok(Err(why)) => failed.push(why),
            Err(e) => failed.push(format!("task failed: {e}")),
        }
        if last_note.elapsed() >= Duration::from_secs(5) {
            last_note = Instant::now();
            eprintln!(
                "loadgen idle: {} open, {} failed, {:.0} s",
                open.len(),
                failed.len(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    (open, failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_bits_it_needs() {
        assert_eq!(exists(b"* 10000 EXISTS"), Some(10000));
        assert_eq!(exists(b"* 0 RECENT"), None);
        assert_eq!(
            number_after(b"* 3 FETCH (UID 77 FLAGS (\\Seen))", b"UID "),
            Some(77)
        );
        assert_eq!(
            number_after(b"* 3 FETCH (FLAGS (\\Seen) UID 8)", b"UID "),
            Some(8)
        );
        assert_eq!(quote("a\"b"), "\"a\\\"b\"");
    }
}
