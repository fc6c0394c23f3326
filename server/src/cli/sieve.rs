//! `mailsite sieve`: users' Sieve filter scripts, through the admin core (users manage
//! their own with a ManageSieve client). Only parsing and printing here.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use crate::admin::{Admin, utc};

#[derive(Subcommand, Debug)]
pub enum SieveCommand {
    /// List a user's scripts: name, size, last change, and which one is active (runs
    /// when mail arrives).
    List {
        username: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print one script.
    Show { username: String, name: String },
    /// Store a script from a file (`-` reads standard input), replacing one of the
    /// same name. It is checked first: a script with an error is refused with its line.
    #[command(
        after_help = "Examples:\n  mailsite sieve put alice vacation vacation.sieve --activate\n  mailsite sieve put alice lists - < lists.sieve"
    )]
    Put {
        username: String,
        name: String,
        file: PathBuf,
        /// Make it the active script.
        #[arg(long)]
        activate: bool,
    },
    /// Make a script the active one, or with --none stop filtering (mail goes to INBOX).
    Activate {
        username: String,
        #[arg(required_unless_present = "none")]
        name: Option<String>,
        #[arg(long, conflicts_with = "name")]
        none: bool,
    },
    /// Remove a script (not the active one: activate another, or none, first).
    Remove { username: String, name: String },
}

pub async fn sieve(admin: &Admin, cmd: SieveCommand) -> anyhow::Result<()> {
    match cmd {
        SieveCommand::List { username, json } => {
            let scripts = admin.sieve_scripts(&username).await?;
            if json {
                let rows: Vec<serde_json::Value> = scripts
                    .iter()
                    .map(|s| {
                        serde_json::json!({
                            "name": s.name,
                            "active": s.active,
                            "size": s.size,
                            "updated_at": s.updated_at,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if scripts.is_empty() {
                println!("{username} has no Sieve scripts: all mail goes to INBOX");
            } else {
                println!("{:<32} {:>8}  {:<23}  ACTIVE", "NAME", "OCTETS", "CHANGED");
                for s in &scripts {
                    println!(
                        "{:<32} {:>8}  {:<23}  {}",
                        s.name,
                        s.size,
                        utc(s.updated_at.max(0) as u64),
                        if s.active { "yes" } else { "" }
                    );
                }
            }
        }
        SieveCommand::Show { username, name } => {
            print!("{}", admin.sieve_script(&username, &name).await?);
        }
        SieveCommand::Put {
            username,
            name,
            file,
            activate,
        } => {
            let text = if file.as_os_str() == "-" {
                let mut text = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut text)?;
                text
            } else {
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?
            };
            let stored = admin.put_sieve(&username, &name, &text, activate).await?;
            let verb = if stored.replaced {
                "replaced"
            } else {
                "stored"
            };
            match stored.activated {
                true => println!("{verb} {username}'s script {name:?}; it is active now"),
                false => println!(
                    "{verb} {username}'s script {name:?} (not active: `mailsite sieve activate {username} {name}` makes it run)"
                ),
            }
        }
        SieveCommand::Activate {
            username,
            name,
            none: _,
        } => {
            admin.activate_sieve(&username, name.as_deref()).await?;
            match name {
                Some(name) => println!("{username}'s script {name:?} is active now"),
                None => println!("{username} has no active script now: all mail goes to INBOX"),
            }
        }
        SieveCommand::Remove { username, name } => {
            admin.remove_sieve(&username, &name).await?;
            println!("removed {username}'s script {name:?}");
        }
    }
    Ok(())
}
