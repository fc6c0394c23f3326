//! mailsite-loadgen: the load generator of bench/mailbox.sh. Raw IMAP and POP3 over
//! TCP (plain text, for loopback benchmarks), written to cost the client as little
//! CPU and memory as possible, so the server under test gets the machine.

mod conn;
mod imap;
mod message;
mod pop3;
mod stats;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use tokio::io::AsyncReadExt;

const ABOUT: &str = "Load generator for mailbox servers (IMAP, POP3): drives mailsite and \
Dovecot the same way in bench/mailbox.sh.";

const AFTER: &str = "\
Modes:
  imap-mix   N clients each repeat a session: LOGIN, SELECT, UID FETCH 1:* (FLAGS), a window
             of envelopes, a few bodies, flag changes, a search, an APPEND, LOGOUT. Prints
             ops/s and latency percentiles per operation and overall.
  pop3       one client per user: USER/PASS, STAT, UIDL, then RETR and DELE every message,
             QUIT (which commits the deletions). Prints ops/s, messages/s and latencies.
  idle       opens K connections, logs each in and SELECTs a mailbox, prints a line
             starting with 'ready' when all are set up, then holds them until SIGINT/SIGTERM,
             end of standard input (--stdin) or --hold seconds.
  seed       writes a Maildir folder of deterministic realistic messages (plain, HTML
             alternative, attachments; 1-80 KB) named like mailsite names its files.

Output: a table for people, then 'stat op=NAME count= errors= ops_s= mean_ms= p50_ms= p90_ms=
p99_ms= max_ms=' lines for scripts ('stat op=all ...' is the total, with elapsed_s).

Examples:
  mailsite-loadgen seed --dir /tmp/m/bench --count 10000
  mailsite-loadgen imap-mix --addr 127.0.0.31:10143 --users bench1,bench2 --password pw \\
      --clients 16 --duration 30
  mailsite-loadgen pop3 --addr 127.0.0.31:10110 --users pop01,pop02 --password pw
  mailsite-loadgen idle --addr 127.0.0.31:10143 --users bench1 --password pw --connections 10000";

#[derive(Parser)]
#[command(name = "mailsite-loadgen", version, about = ABOUT, after_help = AFTER)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Args, Clone)]
struct Server {
    /// Server address (host:port), e.g. 127.0.0.31:10143.
    #[arg(long)]
    addr: String,
    /// Users to log in as, comma-separated; clients/connections take them in turn.
    #[arg(long, value_delimiter = ',', required = true)]
    users: Vec<String>,
    /// Their password (the same for all); or set LOADGEN_PASSWORD.
    #[arg(long, env = "LOADGEN_PASSWORD", hide_env_values = true)]
    password: String,
    /// Give up on one operation (or one connection set-up) after this many seconds.
    #[arg(long, default_value_t = 120.0)]
    timeout: f64,
    /// A name for the report's title (e.g. mailsite, dovecot).
    #[arg(long, default_value = "server")]
    label: String,
}

#[derive(Subcommand)]
enum Mode {
    /// N concurrent IMAP clients running a realistic session mix.
    ImapMix {
        #[command(flatten)]
        server: Server,
        /// Concurrent clients (one connection each).
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// Measure for this many seconds (operations completing later are not counted).
        #[arg(long, default_value_t = 30.0)]
        duration: f64,
        /// Instead of a duration: run exactly this many sessions in total.
        #[arg(long)]
        sessions: Option<u64>,
        /// Mailbox to SELECT and APPEND to.
        #[arg(long, default_value = "INBOX")]
        mailbox: String,
        /// Messages per envelope fetch.
        #[arg(long, default_value_t = 50)]
        envelope_window: u32,
        /// Envelope fetches per session.
        #[arg(long, default_value_t = 1)]
        envelope_fetches: u32,
        /// Body fetches (UID FETCH n BODY.PEEK[]) per session.
        #[arg(long, default_value_t = 3)]
        body_fetches: u32,
        /// Flag changes (UID STORE n +/-FLAGS.SILENT) per session.
        #[arg(long, default_value_t = 2)]
        stores: u32,
        /// Searches per session.
        #[arg(long, default_value_t = 1)]
        searches: u32,
        /// SEARCH keys, ';'-separated, one picked at random per search. 'FROM *' and
        /// 'SUBJECT *' take a random seeded sender surname / subject word, 'SINCE *' a
        /// date among the newest tenth of the seeded messages.
        #[arg(long, default_value = "UNSEEN;FLAGGED;SINCE *;FROM *;SUBJECT *")]
        search_keys: String,
        /// APPENDs (1-80 KB messages) per session.
        #[arg(long, default_value_t = 1)]
        appends: u32,
        /// Skip the UID FETCH 1:* (FLAGS) resynchronisation (UIDs then come from an
        /// untimed UID SEARCH ALL).
        #[arg(long)]
        no_flag_sync: bool,
        /// Random seed (message choice, flag changes, search keys).
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// POP3 clients that download and delete every message of their maildrop.
    Pop3 {
        #[command(flatten)]
        server: Server,
        /// Download at most this many messages per maildrop.
        #[arg(long, default_value_t = u64::MAX)]
        max_messages: u64,
        /// Retrieve only, do not DELE.
        #[arg(long)]
        keep: bool,
    },
    /// Open K logged-in connections with a mailbox selected, and hold them.
    Idle {
        #[command(flatten)]
        server: Server,
        /// Connections to open.
        #[arg(long, default_value_t = 1000)]
        connections: usize,
        /// Connections being set up at the same time.
        #[arg(long, default_value_t = 64)]
        parallel: usize,
        /// Mailbox to SELECT.
        #[arg(long, default_value = "INBOX")]
        mailbox: String,
        /// Exit after holding the connections this many seconds (default: until
        /// SIGINT/SIGTERM, or end of standard input with --stdin).
        #[arg(long)]
        hold: Option<f64>,
        /// Also exit at the end of standard input.
        #[arg(long)]
        stdin: bool,
    },
    /// Write a Maildir folder of deterministic messages.
    Seed {
        /// The Maildir folder to create (cur/, new/, tmp/ are made in it).
        #[arg(long)]
        dir: PathBuf,
        /// Messages to write (UIDs 1..=count).
        #[arg(long, default_value_t = 10_000)]
        count: u64,
        /// Random seed of the message stream.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The To: address.
        #[arg(long, default_value = "bench@example.test")]
        to: String,
    },
}

fn resolve(addr: &str) -> anyhow::Result<SocketAddr> {
    addr.to_socket_addrs()
        .with_context(|| format!("cannot resolve {addr}"))?
        .next()
        .with_context(|| format!("{addr} resolves to nothing"))
}

fn target(server: &Server) -> anyhow::Result<imap::Target> {
    if server.users.iter().any(String::is_empty) {
        bail!("--users has an empty name");
    }
    Ok(imap::Target {
        addr: resolve(&server.addr)?,
        users: Arc::new(server.users.clone()),
        password: server.password.clone(),
        timeout: Duration::from_secs_f64(server.timeout),
    })
}

async fn wait_for_exit(hold: Option<f64>, stdin: bool) {
    let hold = async {
        match hold {
            Some(s) => tokio::time::sleep(Duration::from_secs_f64(s)).await,
            None => std::future::pending().await,
        }
    };
    let eof = async {
        if stdin {
            let mut input = tokio::io::stdin();
            let mut buf = [0u8; 256];
            while matches!(input.read(&mut buf).await, Ok(n) if n > 0) {}
        } else {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = hold => {}
        _ = eof => {}
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.mode {
        Mode::ImapMix {
            server,
            clients,
            duration,
            sessions,
            mailbox,
            envelope_window,
            envelope_fetches,
            body_fetches,
            stores,
            searches,
            search_keys,
            appends,
            no_flag_sync,
            seed,
        } => {
            let target = target(&server)?;
            let mix = imap::Mix {
                mailbox,
                flag_sync: !no_flag_sync,
                envelope_window,
                envelope_fetches,
                body_fetches,
                stores,
                searches,
                search_keys: search_keys
                    .split(';')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(str::to_string)
                    .collect(),
                appends,
            };
            let started = Instant::now();
            let stop_at = match sessions {
                Some(_) => None,
                None => Some(started + Duration::from_secs_f64(duration)),
            };
            let run = Arc::new(imap::Run {
                target,
                mix,
                recorder: stats::Recorder::new(imap::OPS, stop_at),
                stop_at,
                sessions_left: AtomicU64::new(sessions.unwrap_or(u64::MAX)),
                sessions_done: AtomicU64::new(0),
                failures_shown: AtomicU64::new(0),
            });
            let mut tasks = tokio::task::JoinSet::new();
            for i in 0..clients.max(1) {
                tasks.spawn(imap::client(run.clone(), i, seed));
            }
            let elapsed = match stop_at {
                Some(t) => {
                    // Operations still running at the end are abandoned, not waited for.
                    tokio::time::sleep_until(t.into()).await;
                    tasks.abort_all();
                    while tasks.join_next().await.is_some() {}
                    Duration::from_secs_f64(duration)
                }
                None => {
                    while tasks.join_next().await.is_some() {}
                    started.elapsed()
                }
            };
            let done = run.sessions_done.load(Ordering::Relaxed);
            run.recorder.report(
                &format!(
                    "imap-mix {}: {} at {}, {clients} clients, {} users, {:.1} s, {done} complete sessions",
                    server.label,
                    run.mix.mailbox,
                    server.addr,
                    run.target.users.len(),
                    elapsed.as_secs_f64()
                ),
                elapsed,
                &format!(" sessions={done} clients={clients}"),
            );
        }
        Mode::Pop3 {
            server,
            max_messages,
            keep,
        } => {
            let target = target(&server)?;
            let recorder = stats::Recorder::new(pop3::OPS, None);
            let totals = Arc::new(pop3::Totals::default());
            let started = Instant::now();
            let mut tasks = tokio::task::JoinSet::new();
            for user in target.users.iter() {
                tasks.spawn(pop3::client(
                    target.clone(),
                    user.clone(),
                    keep,
                    max_messages,
                    recorder.clone(),
                    totals.clone(),
                ));
            }
            let mut failed = 0;
            while let Some(r) = tasks.join_next().await {
                match r {
                    Ok(Ok(())) => {}
                    Ok(Err(why)) => {
                        failed += 1;
                        eprintln!("loadgen pop3: {why}");
                    }
                    Err(e) => {
                        failed += 1;
                        eprintln!("loadgen pop3: client task failed: {e}");
                    }
                }
            }
            let elapsed = started.elapsed();
            let messages = totals.messages.load(Ordering::Relaxed);
            let bytes = totals.bytes.load(Ordering::Relaxed);
            recorder.report(
                &format!(
                    "pop3 {}: {} at {}, {} clients, {messages} messages ({:.1} MB) {}, {:.2} s, {failed} clients failed",
                    server.label,
                    "INBOX",
                    server.addr,
                    target.users.len(),
                    bytes as f64 / 1e6,
                    if keep { "retrieved" } else { "retrieved and deleted" },
                    elapsed.as_secs_f64()
                ),
                elapsed,
                &format!(
                    " messages={messages} messages_s={:.2} bytes={bytes} failed_clients={failed}",
                    messages as f64 / elapsed.as_secs_f64().max(1e-9)
                ),
            );
            if failed > 0 {
                bail!("{failed} POP3 clients failed");
            }
        }
        Mode::Idle {
            server,
            connections,
            parallel,
            mailbox,
            hold,
            stdin,
        } => {
            let target = target(&server)?;
            let started = Instant::now();
            let (open, failed) = imap::open_idle(&target, &mailbox, connections, parallel).await;
            for why in failed.iter().take(5) {
                eprintln!("loadgen idle: {why}");
            }
            println!(
                "ready connections={} failed={} elapsed_s={:.1} label={}",
                open.len(),
                failed.len(),
                started.elapsed().as_secs_f64(),
                server.label
            );
            wait_for_exit(hold, stdin).await;
            drop(open);
        }
        Mode::Seed {
            dir,
            count,
            seed,
            to,
        } => {
            let started = Instant::now();
            let bytes = message::seed(&dir, count, seed, &to)
                .with_context(|| format!("cannot write {}", dir.display()))?;
            println!(
                "seeded {} with {count} messages, {:.1} MB, in {:.1} s",
                dir.display(),
                bytes as f64 / 1e6,
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Two worker threads: enough to keep up with one server on a small machine without
    // taking more of its cores than the client's share.
    let workers = std::env::var("LOADGEN_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?
        .block_on(run(cli))
}
