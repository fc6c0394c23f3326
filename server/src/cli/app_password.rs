//! `mailsite user app-password`: a user's app passwords, added, listed and removed
//! through the admin core. Only parsing and printing here.

use clap::Subcommand;

use crate::admin::app_passwords::parse_expiry;
use crate::admin::{Admin, utc};
use crate::directory::app_passwords::AppPassword;

#[derive(Subcommand, Debug)]
pub enum AppPasswordCommand {
    /// Give a user a new app password for one device: 16 generated characters, shown
    /// once. IMAP, POP3 and SMTP accept it in place of the user's password; the
    /// helpdesk console does not.
    #[command(
        after_help = "Examples:\n  mailsite user app-password add alice --label phone\n  mailsite user app-password add alice --label \"laptop 2026\" --expires 2027-06-30\n  mailsite user app-password add alice --label conference --expires 7d"
    )]
    Add {
        username: String,
        /// What the password is for, so that the user knows which to remove later.
        #[arg(long)]
        label: String,
        /// When it stops working: a date (2027-06-30, the start of that day UTC), a
        /// time (2027-06-30T17:00:00Z) or a number of days (90d). Without it, never.
        #[arg(long, value_name = "DATE")]
        expires: Option<String>,
        /// Print JSON (with the password) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List a user's app passwords: label, created, expiry, and when and from which
    /// address each last logged in. The passwords themselves are not kept.
    List {
        username: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove an app password: the devices using it can no longer log in.
    Remove {
        username: String,
        #[arg(long)]
        label: String,
    },
}

fn to_json(a: &AppPassword) -> serde_json::Value {
    serde_json::json!({
        "username": a.username,
        "label": a.label,
        "created_at": a.created_at,
        "expires_at": a.expires_at,
        "last_used_at": a.last_used.as_ref().map(|(at, _)| at),
        "last_source": a.last_used.as_ref().map(|(_, source)| source),
    })
}

fn expiry(a: &AppPassword) -> String {
    a.expires_at
        .map_or("never".into(), |at| utc(at.max(0) as u64))
}

pub async fn app_password(admin: &Admin, cmd: AppPasswordCommand) -> anyhow::Result<()> {
    match cmd {
        AppPasswordCommand::Add {
            username,
            label,
            expires,
            json,
        } => {
            let username = admin.username(&username)?;
            let now = crate::throttle::unix_now();
            let expires_at = expires.map(|e| parse_expiry(&e, now)).transpose()?;
            let (added, password) = admin
                .add_app_password(&username, &label, expires_at)
                .await?;
            if json {
                let mut value = to_json(&added);
                value["password"] = password.into();
                println!("{}", serde_json::to_string_pretty(&value)?);
                return Ok(());
            }
            let until = match added.expires_at {
                Some(_) => format!("expires {}", expiry(&added)),
                None => "never expires".into(),
            };
            println!("app password {label:?} for {username} ({until}):\n\n    {password}\n");
            println!(
                "Type it in the device's mail settings in place of {username}'s password. It is shown only this once; `mailsite user app-password remove {username} --label {label:?}` cuts the device off."
            );
        }
        AppPasswordCommand::List { username, json } => {
            let username = admin.username(&username)?;
            let list = admin.app_passwords(&username).await?;
            if json {
                let rows: Vec<_> = list.iter().map(to_json).collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(());
            }
            if list.is_empty() {
                println!(
                    "{username} has no app passwords: `mailsite user app-password add {username} --label phone` makes one"
                );
                return Ok(());
            }
            let now = crate::throttle::unix_now();
            println!(
                "{:<24} {:<23}  {:<23}  {:<23}  FROM",
                "LABEL", "CREATED", "EXPIRES", "LAST USED"
            );
            for a in &list {
                let expires = if a.expired(now) {
                    format!("{} (expired)", expiry(a))
                } else {
                    expiry(a)
                };
                let (used, source) = a
                    .last_used
                    .as_ref()
                    .map_or(("never".to_string(), "-".to_string()), |(at, source)| {
                        (utc((*at).max(0) as u64), source.clone())
                    });
                println!(
                    "{:<24} {:<23}  {:<23}  {:<23}  {}",
                    a.label,
                    utc(a.created_at.max(0) as u64),
                    expires,
                    used,
                    source
                );
            }
            println!("{} app password(s)", list.len());
        }
        AppPasswordCommand::Remove { username, label } => {
            let username = admin.username(&username)?;
            admin.remove_app_password(&username, &label).await?;
            println!(
                "removed app password {label:?} of {username}: devices using it can no longer log in"
            );
        }
    }
    Ok(())
}
