//! The `mailsite` binary: see `mailsite --help`.

use clap::Parser;
use mailsite::cli::{Cli, LogFormat};
use tracing_subscriber::EnvFilter;

fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,sqlx=warn,hickory_server=warn,hickory_net=warn,hickory_proto=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
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
