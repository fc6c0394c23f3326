//! `mailsite block`: the login throttle's blocks, listed and lifted through the admin
//! core. Only parsing and printing here.

use clap::Subcommand;

use crate::admin::blocks::Target;
use crate::admin::{Admin, utc};

#[derive(Subcommand, Debug)]
pub enum BlockCommand {
    /// List the sources refused after too many failed logins (IMAP, POP3, SMTP AUTH,
    /// console): source, the account their last failure named, reason, failures, since
    /// and until (UTC).
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Lift blocks: those of one source (an address; an IPv6 address stands for its
    /// /64), or, given a username, every block whose failures named that account (a
    /// user whose phone kept an old password). Running servers let them in again
    /// within a second.
    #[command(
        after_help = "Examples:\n  mailsite block remove 192.0.2.7\n  mailsite block remove 2001:db8:1:2::/64\n  mailsite block remove alice"
    )]
    Remove {
        /// An address, an IPv6 /64, or a username (with or without @domain).
        #[arg(value_name = "IP-OR-USERNAME")]
        target: String,
    },
}

pub async fn block(admin: &Admin, cmd: BlockCommand) -> anyhow::Result<()> {
    match cmd {
        BlockCommand::List { json } => {
            let blocks = admin.blocks().await?;
            if json {
                let rows: Vec<serde_json::Value> = blocks
                    .iter()
                    .map(|b| {
                        serde_json::json!({
                            "source": b.source,
                            "account": b.account,
                            "reason": b.reason,
                            "failures": b.failures,
                            "since": b.since,
                            "until": b.until,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(());
            }
            if blocks.is_empty() {
                println!("no blocks: every source may log in");
                return Ok(());
            }
            println!(
                "{:<28} {:<20} {:>8}  {:<23}  {:<23}  reason",
                "source", "account", "failures", "since", "until"
            );
            for b in &blocks {
                println!(
                    "{:<28} {:<20} {:>8}  {:<23}  {:<23}  {}",
                    b.source,
                    b.account,
                    b.failures,
                    utc(b.since.max(0) as u64),
                    utc(b.until.max(0) as u64),
                    b.reason
                );
            }
            println!("{} blocked", blocks.len());
            Ok(())
        }
        BlockCommand::Remove { target } => {
            let target = admin.block_target(&target)?;
            let lifted = admin.remove_blocks(&target).await?;
            let what = match &target {
                Target::Source(source) => format!("source {source}"),
                Target::Account(account) => format!("account {account}"),
            };
            if lifted.is_empty() {
                println!("no block for {what}: `mailsite block list` shows the blocks");
                return Ok(());
            }
            for b in &lifted {
                println!(
                    "lifted the block of {} (account {}, {} failures)",
                    b.source, b.account, b.failures
                );
            }
            println!(
                "{} block(s) for {what} lifted; running servers let them in within a second",
                lifted.len()
            );
            Ok(())
        }
    }
}
