//! The `mailsite` binary: see `mailsite --help`.

use clap::Parser;
use mailsite::cli::{Cli, LogFormat};
use tracing_subscriber::EnvFilter;

fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,sqlx=warn,hickory_server=warn,hickory_net=warn,hickory_proto=warn")
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
        .build()
    {
        Ok(runtime) => runtime.block_on(run()),
        Err(error) => {
            eprintln!("mailsite: cannot start the runtime: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    match mailsite::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mailsite: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
