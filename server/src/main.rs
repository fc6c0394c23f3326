//! The `mailsite` binary: see `mailsite --help`.

use clap::Parser;
use mailsite::cli::{Cli, LogFormat};
use tracing_subscriber::EnvFilter;

fn init_logs(format: LogFormat) {
    // imap-next opens an INFO span for every response fragment it writes: at the
    // default level that was a quarter of the CPU of a large FETCH (bench/imap-scale.sh),
    // for nothing a log reader needs.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(
            "info,sqlx=warn,hickory_server=warn,hickory_net=warn,hickory_proto=warn,imap_next=warn",
        )
    });
    // Colours only on a terminal: a log file or journald gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// mimalloc instead of glibc's malloc: under the IMAP benchmark's load, glibc's arena
/// locks (contended between the runtime threads, the blocking pool and SQLite's worker
/// threads) and its allocation paths took a tenth of the server's time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // What mailsite writes (the database with its password hashes, mail, the queue,
    // keys) is for this user alone, whatever umask the shell or unit gave it: folders
    // 0700, files 0600.
    #[cfg(unix)]
    // SAFETY: umask only sets the process's file-creation mask; no thread runs yet.
    unsafe {
        libc::umask(0o077);
    }
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .thread_keep_alive(BLOCKING_KEEP_ALIVE)
        .build()
    {
        Ok(runtime) => runtime.block_on(run()),
        Err(error) => {
            eprintln!("mailsite: cannot start the runtime: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Threads for file I/O, fsync, SQLite and password hashing. tokio's default of 512
/// lets a crowd of slow clients (hundreds of unfinished DATA streams, each write a
/// blocking file operation) start a hundred threads and more, each with its own
/// allocator heap and stack. The work they do is bound by the disk and the cores, not
/// by their number.
const BLOCKING_THREADS: usize = 32;

/// How long an idle blocking thread waits for work before it ends (tokio: 10 s). Work
/// spread over many idle threads touches memory in each of their allocator heaps:
/// bench/hostile.sh saw 27 MiB more held for as long as the threads of a burst lived.
const BLOCKING_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(1);

async fn run() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    // A command's output piped into `head` ends quietly when the reader goes, as other
    // Unix tools do, rather than with a panic about a broken pipe. `serve` keeps
    // SIGPIPE ignored: a client that hangs up is an error to handle, not the end.
    #[cfg(unix)]
    if !matches!(cli.command, mailsite::cli::Command::Serve) {
        // SAFETY: restores the default disposition of one signal; nothing else here
        // has installed a handler for it.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match mailsite::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mailsite: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
