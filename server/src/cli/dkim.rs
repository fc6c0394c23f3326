//! `mailsite dkim`: the site's DKIM signing keys, through the admin core. Only
//! parsing and printing here.

use clap::Subcommand;

use crate::admin::{Admin, utc};

#[derive(Subcommand, Debug)]
pub enum DkimCommand {
    /// List the site's DKIM keys: selector, algorithm, state (waiting, signing,
    /// retiring, withdrawn), when each starts signing and leaves the zone, and the TXT
    /// record the zone publishes for it.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Make a new Ed25519 and RSA-2048 key pair and publish it now; the sorters sign
    /// with it once --sign-after has passed, and the old keys leave the zone
    /// --withdraw-after later. Run it on a sorter's node: the private keys are
    /// written to this node's data directory (dkim/, mode 0600).
    #[command(
        after_help = "Durations are a number with s, m, h or d (seconds, minutes, hours, days).\n\nExamples:\n  mailsite dkim rotate                      # sign with the new keys in 2 days\n  mailsite dkim rotate --domain example.test --sign-after 1h --withdraw-after 3d"
    )]
    Rotate {
        /// Only this site domain (every domain when not given).
        #[arg(long)]
        domain: Option<String>,
        /// How long the new keys are published before they sign: longer than the
        /// zone's TTL, so that receivers find them.
        #[arg(long, default_value = "2d", value_parser = parse_duration)]
        sign_after: i64,
        /// How long the old keys stay published after the new ones start signing, so
        /// that mail signed just before still verifies.
        #[arg(long, default_value = "7d", value_parser = parse_duration)]
        withdraw_after: i64,
    },
}

/// `30s`, `15m`, `2h`, `7d` (or plain seconds) in seconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, "s"),
    };
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: use a number with s, m, h or d, e.g. 2d")),
    };
    number
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| format!("{text:?}: use a number with s, m, h or d, e.g. 2d"))
}

pub async fn dkim(admin: &Admin, cmd: DkimCommand) -> anyhow::Result<()> {
    let now = crate::dkim::now();
    match cmd {
        DkimCommand::List { json } => {
            let keys = admin.dkim_keys(now).await?;
            if json {
                let rows: Vec<serde_json::Value> = keys
                    .iter()
                    .map(|k| {
                        serde_json::json!({
                            "domain": k.key.domain,
                            "selector": k.key.selector,
                            "algorithm": k.key.algorithm,
                            "state": k.state.as_str(),
                            "sign_from": k.key.sign_from,
                            "withdraw_at": k.key.withdraw_at,
                            "private_key_here": k.private_here,
                            "record_name": k.key.record_name(),
                            "record": k.key.record(),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if keys.is_empty() {
                println!(
                    "no DKIM keys yet: a sorter makes them when it first starts (or run `mailsite dkim rotate`)"
                );
            } else {
                for k in &keys {
                    let at = |t: i64| utc(t.max(0) as u64);
                    println!(
                        "{}  {}  {}  {}",
                        k.key.domain,
                        k.key.selector,
                        k.key.algorithm,
                        k.state.as_str()
                    );
                    println!("  signs from   {}", at(k.key.sign_from));
                    if let Some(w) = k.key.withdraw_at {
                        println!("  leaves zone  {}", at(w));
                    }
                    if !k.private_here {
                        println!("  private key  not in this node's data directory");
                    }
                    println!("  {} TXT \"{}\"", k.key.record_name(), k.key.record());
                }
            }
        }
        DkimCommand::Rotate {
            domain,
            sign_after,
            withdraw_after,
        } => {
            for r in admin
                .rotate_dkim(domain.as_deref(), sign_after, withdraw_after, now)
                .await?
            {
                let selectors: Vec<&str> = r.new.iter().map(|k| k.selector.as_str()).collect();
                println!("{}: published {}", r.domain, selectors.join(" and "));
                println!("  signs from {}", utc(r.sign_from.max(0) as u64));
                println!(
                    "  the older keys leave the zone at {}",
                    utc(r.withdraw_old_at.max(0) as u64)
                );
                for k in &r.forgotten {
                    println!("  forgot {} (left the zone earlier)", k.selector);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations_read_as_operators_write_them() {
        assert_eq!(parse_duration("2d"), Ok(172_800));
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("15m"), Ok(900));
        assert_eq!(parse_duration("0s"), Ok(0));
        assert!(parse_duration("2w").is_err());
        assert!(parse_duration("-1d").is_err());
        assert!(parse_duration("99999999999999999d").is_err());
    }
}
