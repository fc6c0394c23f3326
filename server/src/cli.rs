//! The `mailsite` command line: run the site, and administer its directory, letters
//! and servers. Administrative commands act on the site database directly, so they
//! need what the server itself needs: the configuration and access to the database.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use mailsite_shared::autoconfig::{ClientConfig, Preference, Security};
use mailsite_shared::config::{BUCKETS, DEFAULT_SITE_TOML};
use mailsite_shared::route::{alias_label, bucket_name, parse_bucket};
use mailsite_shared::{ServerState, SiteConfig, SiteMap};

use crate::directory::{Directory, DirectoryError, User};

const ABOUT: &str = "An institution's whole mail site: the autoconfig service mail clients set \
themselves up from, the alias DNS behind mail<letter>.<domain> and outbox.<domain>, and the \
mailbox servers and sorters those names point at.";

const AFTER_HELP: &str = "\
Getting started:
  mailsite serve                      run the embedded default site example.test on loopback
  mailsite route alice@example.test   see which server and settings alice gets
  mailsite user add alice             add a user (the password is asked for, or read from stdin)

Operating a site:
  mailsite --config site.toml check-config      validate a configuration, naming line and fix
  mailsite server maintenance mailbox1           drain a mailbox server: its letters move away
  mailsite server up mailbox1                    bring it back: its letters return
  mailsite server list                           each server's state and what its health checks find
  mailsite letter move q mailbox2                move one letter for good
  mailsite zone export > example.test.zone       the live zone as a BIND master file
  mailsite queue list                            mail the sorters have not delivered yet, and why
  mailsite queue flush                           retry every waiting recipient now
  mailsite helpdesk explain report.json          why a user's mailsite-helper check failed

Environment: MAILSITE_CONFIG and MAILSITE_DATA_DIR stand for --config and --data-dir;
RUST_LOG sets the log level (default info).";

#[derive(Parser, Debug)]
#[command(name = "mailsite", version, about = ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    /// Site configuration file (TOML). Without it, the embedded default site example.test.
    #[arg(long, global = true, env = "MAILSITE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Data directory (database, certificates, mail); overrides the configuration's.
    #[arg(long, global = true, env = "MAILSITE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Log format on standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the roles this node is configured for (all of them in the embedded default).
    Serve,
    /// Add, remove and change users.
    #[command(subcommand)]
    User(UserCommand),
    /// Show where an address lives: letter, alias, server and the settings clients get.
    Route {
        /// An address, e.g. alice@example.test.
        email: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Move letters between mailbox servers.
    #[command(subcommand)]
    Letter(LetterCommand),
    /// Drain mailbox servers and sorters for maintenance, and bring them back.
    #[command(subcommand)]
    Server(ServerCommand),
    /// The site's DNS zone.
    #[command(subcommand)]
    Zone(ZoneCommand),
    /// Inspect and repair users' stored mail.
    #[command(subcommand)]
    Mailbox(MailboxCommand),
    /// Inspect and control the sorters' queues: mail accepted over SMTP and not yet
    /// delivered, to its mailbox server (down, say) or to another domain's server.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// Read what users' desktop helpers report.
    #[command(subcommand)]
    Helpdesk(HelpdeskCommand),
    /// Check the configuration and report the first problem with its line and fix.
    CheckConfig {
        /// Print the embedded default configuration, a complete example, and exit.
        #[arg(long)]
        print_default: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user. The password is asked for twice on a terminal, or read as one line
    /// from standard input (never from the command line, where others could see it).
    Add {
        username: String,
        /// Display name.
        #[arg(long, default_value = "")]
        name: String,
        /// Preferred protocol: imap keeps mail on the server for every device; pop3
        /// downloads it to one computer.
        #[arg(long, value_parser = parse_preference, default_value = "imap")]
        prefer: Preference,
        /// Let this user sign in to the helpdesk console.
        #[arg(long)]
        operator: bool,
    },
    /// Remove a user from the directory.
    Remove { username: String },
    /// Set a new password (asked for, or one line from standard input).
    Passwd { username: String },
    /// Change a user's preferred protocol.
    Prefer {
        username: String,
        #[arg(value_parser = parse_preference)]
        protocol: Preference,
    },
    /// Stop a user from signing in (their mail is kept).
    Disable { username: String },
    /// Let a disabled user sign in again.
    Enable { username: String },
    /// List users.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one user and where they are served.
    Show {
        username: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum HelpdeskCommand {
    /// Compare a `mailsite-helper` report (JSON) with the site: which server should
    /// serve the user, its state, the expected addresses and certificate; print the
    /// likely cause.
    Explain {
        #[arg(value_name = "REPORT.json")]
        report: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum LetterCommand {
    /// Make SERVER the home of a letter (a-z, or "other" for digits and the rest).
    ///
    /// On shared storage the move is instant. When SERVER keeps mail in storage of its
    /// own (`storage` in its [[mailbox]]), add --migrate: the letter's mail is copied
    /// to SERVER while the current server still serves it, then the letter moves, then
    /// what arrived meanwhile is copied. UIDVALIDITY, UIDs and flags stay as they are,
    /// so mail clients keep their caches. Run it where both servers' storage is
    /// mounted.
    Move {
        letter: String,
        server: String,
        /// Copy the letter's mail to SERVER's own storage around the move.
        #[arg(long)]
        migrate: bool,
    },
    /// Show every letter, its alias and the server serving it.
    List,
    /// Move letters so that every mailbox server that is up is the home of an even
    /// share of them (after `server add`, say). Prints each move.
    Rebalance {
        /// Copy moved letters' mail to servers with storage of their own.
        #[arg(long)]
        migrate: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ServerCommand {
    /// Drain a server: its letters (or, for a sorter, its share of outbox) move to the
    /// others, and its open IMAP and POP3 sessions are told to reconnect. Health checks
    /// never end a maintenance.
    Maintenance { name: String },
    /// Bring a server back: its letters return (once its health checks pass).
    Up { name: String },
    /// Show every server, its state (up, maintenance, down) and its health checks.
    List,
    /// Add a mailbox server (or, with --sorter, a sorter) to the running site. Every
    /// node's DNS (NAME.<domain>, MX or outbox for a sorter), health checks and routing
    /// know it within a second, without a restart. Start its node first: a config file
    /// with this [[mailbox]] (or [[sorter]]) block and `[node] servers = ["NAME"]`.
    /// A new mailbox server serves no letter until letters are moved to it: add
    /// --rebalance to move an even share of them now.
    Add {
        /// The new server's name, as in its node's config (e.g. mailbox3): DNS answers
        /// for NAME.<domain>.
        name: String,
        /// Its IP addresses (IMAP, POP3 and LMTP, or SMTP for a sorter, listen there).
        #[arg(required = true)]
        addresses: Vec<std::net::IpAddr>,
        /// Add a sorter instead of a mailbox server.
        #[arg(long)]
        sorter: bool,
        /// The new mailbox server's own mail storage (separate storage); relative paths
        /// are taken from the data directory. Default: the site's shared storage.
        #[arg(long)]
        storage: Option<PathBuf>,
        /// Then move letters so that every mailbox server that is up has an even share.
        #[arg(long)]
        rebalance: bool,
        /// With --rebalance: copy moved letters' mail when storage differs.
        #[arg(long, requires = "rebalance")]
        migrate: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ZoneCommand {
    /// Write the live zone as a BIND master file.
    Export {
        /// Which site domain (default: the primary one).
        #[arg(long)]
        domain: Option<String>,
        /// Write to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum MailboxCommand {
    /// Show a user's mailboxes: messages, UIDVALIDITY, UIDNEXT (mail another program
    /// dropped into a Maildir new/ folder is picked up first).
    List { username: String },
    /// Rebuild a user's mail index from their Maildir files, keeping UIDVALIDITY and
    /// UIDs so that mail clients do not download everything again. No mail is lost.
    Reindex { username: String },
}

#[derive(Subcommand, Debug)]
pub enum QueueCommand {
    /// List queued messages: id, sender, and each recipient with its state, attempts,
    /// next attempt and last error. Reads the spool files, so it works whether or not
    /// `mailsite serve` is running.
    List {
        /// Only this sorter's queue (default: every sorter of the site).
        #[arg(long, value_name = "NAME")]
        sorter: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Retry every pending recipient now instead of at its next attempt. The running
    /// sorter picks the request up within a second (or when it next starts).
    Flush {
        /// Only this sorter's queue (default: every sorter of the site).
        #[arg(long, value_name = "NAME")]
        sorter: Option<String>,
    },
    /// Remove a message from the queue for good: neither delivered nor bounced.
    Remove {
        /// The queue id, as `queue list` shows it.
        id: String,
    },
}

fn parse_preference(s: &str) -> Result<Preference, String> {
    Preference::parse(s).ok_or_else(|| format!("{s:?} is not a protocol: use imap or pop3"))
}

/// The configuration this invocation uses.
pub fn load_config(cli: &Cli) -> anyhow::Result<SiteConfig> {
    let mut config = match &cli.config {
        Some(path) => SiteConfig::load(path).map_err(|e| anyhow::anyhow!("{e}"))?,
        None => SiteConfig::embedded(),
    };
    if let Some(dir) = &cli.data_dir {
        config.data_dir = dir.clone();
    }
    Ok(config)
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::CheckConfig {
        print_default: true,
    } = cli.command
    {
        print!("{DEFAULT_SITE_TOML}");
        return Ok(());
    }
    let config = load_config(&cli)?;
    match cli.command {
        Command::Serve => crate::serve::serve(config, cli.config.is_none()).await,
        Command::CheckConfig { .. } => check_config(&cli, &config),
        Command::User(cmd) => user(&config, cmd).await,
        Command::Route { email, json } => route(config, &email, json).await,
        Command::Letter(cmd) => letter(config, cmd).await,
        Command::Server(cmd) => server(config, cmd).await,
        Command::Zone(ZoneCommand::Export { domain, out }) => {
            zone_export(config, domain, out).await
        }
        Command::Mailbox(cmd) => mailbox(config, cmd).await,
        Command::Queue(cmd) => queue(&config, cmd),
        Command::Helpdesk(HelpdeskCommand::Explain { report }) => {
            crate::helpdesk::explain(config, &report).await.map(|_| ())
        }
    }
}

fn check_config(cli: &Cli, config: &SiteConfig) -> anyhow::Result<()> {
    let source = cli
        .config
        .as_ref()
        .map_or("the embedded default".to_string(), |p| {
            p.display().to_string()
        });
    println!("{source}: ok");
    println!("  site       {} ({})", config.domain, config.name);
    if !config.other_domains.is_empty() {
        println!("  also       {}", config.other_domains.join(", "));
    }
    let roles: Vec<String> = config
        .roles
        .iter()
        .map(|r| format!("{r:?}").to_lowercase())
        .collect();
    println!("  roles      {}", roles.join(", "));
    for m in &config.mailboxes {
        let letters: Vec<String> = (0..BUCKETS)
            .filter(|&b| config.mailboxes[config.letters[b]].name == m.name)
            .map(bucket_name)
            .collect();
        println!(
            "  mailbox    {} {:?} letters {}",
            m.name,
            m.addresses,
            letters.join(" ")
        );
    }
    for s in &config.sorters {
        println!("  sorter     {} {:?}", s.name, s.addresses);
    }
    println!(
        "  database   {}",
        crate::directory::redact_url(&config.database_url())
    );
    Ok(())
}

/// Reads a new password: twice from a terminal, or one line from standard input.
fn read_new_password() -> anyhow::Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("New password: ")?;
        let second = rpassword::prompt_password("Again: ")?;
        if first != second {
            bail!("the two passwords differ; nothing was changed");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if password.chars().count() < 8 {
        bail!("the password is too short: use at least 8 characters");
    }
    Ok(password)
}

fn user_json(user: &User, map: &SiteMap) -> serde_json::Value {
    let route = map.route_user(&user.username, &map.config.domain);
    serde_json::json!({
        "username": user.username,
        "display_name": user.display_name,
        "preference": user.preference.as_str(),
        "enabled": user.enabled,
        "operator": user.operator,
        "created_at": user.created_at,
        "letter": route.letter,
        "alias": route.alias,
        "server": route.server,
    })
}

async fn user(config: &SiteConfig, cmd: UserCommand) -> anyhow::Result<()> {
    let dir = Directory::open(config).await?;
    let map = || async { dir.site_map(Arc::new(config.clone())).await };
    match cmd {
        UserCommand::Add {
            username,
            name,
            prefer,
            operator,
        } => {
            let username = username.to_lowercase();
            if !mailsite_shared::route::valid_username(&username) {
                return Err(DirectoryError::BadUsername(username).into());
            }
            if dir.user(&username).await.is_ok() {
                return Err(DirectoryError::UserExists(username).into());
            }
            let password = read_new_password()?;
            dir.add_user(&username, &password, &name, prefer).await?;
            if operator {
                dir.set_operator(&username, true).await?;
            }
            let route = map().await?.route_user(&username, &config.domain);
            println!(
                "added {}@{}: letter {}, served by {} as {}, prefers {}",
                username, config.domain, route.letter, route.server, route.alias, prefer
            );
        }
        UserCommand::Remove { username } => {
            dir.remove_user(&username).await?;
            println!("removed {username} (their stored mail is kept)");
        }
        UserCommand::Passwd { username } => {
            dir.user(&username).await?;
            let password = read_new_password()?;
            dir.set_password(&username, &password).await?;
            println!("password of {username} changed");
        }
        UserCommand::Prefer { username, protocol } => {
            dir.set_preference(&username, protocol).await?;
            println!("{username} now prefers {protocol}; autoconfig lists it first");
        }
        UserCommand::Disable { username } => {
            dir.set_enabled(&username, false).await?;
            println!("{username} is disabled");
        }
        UserCommand::Enable { username } => {
            dir.set_enabled(&username, true).await?;
            println!("{username} is enabled");
        }
        UserCommand::List { json } => {
            let users = dir.users().await?;
            let map = map().await?;
            if json {
                let list: Vec<_> = users.iter().map(|u| user_json(u, &map)).collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!(
                    "{:<24} {:<6} {:<6} {:<10} {:<8} NAME",
                    "USERNAME", "LETTER", "PREFER", "SERVER", "STATE"
                );
                for u in &users {
                    let route = map.route_user(&u.username, &config.domain);
                    let state = if u.enabled { "enabled" } else { "disabled" };
                    println!(
                        "{:<24} {:<6} {:<6} {:<10} {:<8} {}",
                        u.username, route.letter, u.preference, route.server, state, u.display_name
                    );
                }
                println!("{} users", users.len());
            }
        }
        UserCommand::Show { username, json } => {
            let u = dir.user(&username).await?;
            let map = map().await?;
            let value = user_json(&u, &map);
            if json {
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else if let Some(object) = value.as_object() {
                for (k, v) in object {
                    let v = v.as_str().map_or(v.to_string(), str::to_string);
                    println!("{k:<13} {v}");
                }
            }
        }
    }
    Ok(())
}

fn security_name(s: Security) -> &'static str {
    match s {
        Security::Tls => "SSL/TLS",
        Security::StartTls => "STARTTLS",
        Security::Plain => "none",
    }
}

async fn route(config: SiteConfig, email: &str, json: bool) -> anyhow::Result<()> {
    let dir = Directory::open(&config).await?;
    let map = dir.site_map(Arc::new(config)).await?;
    let route = map
        .route(email)
        .map_err(|e| anyhow::anyhow!("{email:?}: {e}"))?;
    let user = dir.user(&route.username).await.ok();
    let preference = user.as_ref().map(|u| u.preference).unwrap_or_default();
    let settings = ClientConfig::for_route(&map.config, &route, preference);
    let outbox: Vec<String> = map
        .outbox_sorters()
        .iter()
        .map(|s| format!("{} {:?}", s.name, s.addresses))
        .collect();
    if json {
        let servers: Vec<_> = settings
            .incoming
            .iter()
            .chain(&settings.outgoing)
            .map(|s| {
                serde_json::json!({
                    "protocol": s.protocol.thunderbird_name(),
                    "host": s.hostname,
                    "port": s.port,
                    "security": s.security.thunderbird_name(),
                    "username": s.username,
                })
            })
            .collect();
        let value = serde_json::json!({
            "address": route.address,
            "username": route.username,
            "in_directory": user.is_some(),
            "preference": preference.as_str(),
            "letter": route.letter,
            "alias": route.alias,
            "server": route.server,
            "server_addresses": route.server_addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "home": route.home,
            "home_state": route.home_state.as_str(),
            "redirected": route.redirected(),
            "outbox": route.outbox,
            "outbox_servers": outbox,
            "settings": servers,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    println!("address   {}", route.address);
    println!("{}", user_line(user.as_ref(), &route.username));
    println!("letter    {}", route.letter);
    println!("alias     {}", route.alias);
    let addrs: Vec<String> = route
        .server_addresses
        .iter()
        .map(|a| a.to_string())
        .collect();
    println!("server    {} ({})", route.server, addrs.join(", "));
    if route.redirected() {
        println!(
            "          home is {}, which is {}: served here until it is back",
            route.home, route.home_state
        );
    }
    println!("outbox    {} -> {}", route.outbox, outbox.join(", "));
    println!("settings");
    for s in settings.incoming.iter().chain(&settings.outgoing) {
        println!(
            "  {:<5} {}:{} {}, username {}",
            s.protocol.thunderbird_name().to_uppercase(),
            s.hostname,
            s.port,
            security_name(s.security),
            s.username
        );
    }
    Ok(())
}

fn print_letters(map: &SiteMap) {
    println!("{:<7} {:<20} {:<10} HOME", "LETTER", "ALIAS", "SERVER");
    for b in 0..BUCKETS {
        let home = &map.home(b).name;
        let owner = &map.owner(b).name;
        let note = if home == owner {
            String::new()
        } else {
            format!("{home} ({})", map.mailbox_state(home).unwrap_or_default())
        };
        println!(
            "{:<7} {:<20} {:<10} {}",
            bucket_name(b),
            format!("{}.{}", alias_label(b), map.config.domain),
            owner,
            note
        );
    }
}

/// Prints which letters changed server between two maps.
fn print_moves(before: &SiteMap, after: &SiteMap) {
    let mut moved = 0;
    for b in 0..BUCKETS {
        let (from, to) = (&before.owner(b).name, &after.owner(b).name);
        if from != to {
            println!(
                "  {} ({}.{}): {from} -> {to}",
                bucket_name(b),
                alias_label(b),
                after.config.domain
            );
            moved += 1;
        }
    }
    if moved == 0 {
        println!("  no letter changed server");
    }
}

async fn letter(config: SiteConfig, cmd: LetterCommand) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let dir = Directory::open(&config).await?;
    match cmd {
        LetterCommand::List => print_letters(&dir.site_map(config).await?),
        LetterCommand::Rebalance { migrate } => rebalance(&config, &dir, migrate).await?,
        LetterCommand::Move {
            letter,
            server,
            migrate,
        } => {
            let bucket = parse_bucket(&letter).with_context(|| {
                format!("{letter:?} is not a letter: use a-z, or other for digits and the rest")
            })?;
            let server = server.to_ascii_lowercase();
            let before = dir.site_map(config.clone()).await?;
            let effective = before.config.clone();
            if effective.mailbox_index(&server).is_none() {
                return Err(DirectoryError::NoServer(server).into());
            }
            let from = before.owner(bucket).name.clone();
            let (from_root, to_root) = (effective.mail_root(&from), effective.mail_root(&server));
            if from_root != to_root && !migrate {
                bail!(
                    "{server} keeps mail in {} and {from} in {}: add --migrate to copy letter {}'s mail there around the move",
                    to_root.display(),
                    from_root.display(),
                    bucket_name(bucket)
                );
            }
            if from_root != to_root {
                migrate_letter(&effective, &dir, bucket, &from, &server).await?;
            } else {
                if migrate {
                    println!(
                        "{from} and {server} share the storage {}: nothing to copy",
                        to_root.display()
                    );
                }
                dir.move_letter(&config, bucket, &server).await?;
            }
            let after = dir.site_map(config.clone()).await?;
            println!(
                "letter {} now belongs to {server}; running nodes follow within a second",
                bucket_name(bucket)
            );
            print_moves(&before, &after);
            if after.owner(bucket).name != server {
                println!(
                    "  note: {server} is {}, so {} is served by {} until it is up",
                    after.mailbox_state(&server).unwrap_or_default(),
                    alias_label(bucket),
                    after.owner(bucket).name
                );
            }
        }
    }
    Ok(())
}

/// Moves letters from the mailbox servers that are home to the most letters to those
/// home to the fewest, among the servers that are up, until shares differ by one at most.
pub fn rebalance_plan(map: &SiteMap) -> Vec<(usize, String)> {
    let up: Vec<String> = map
        .config
        .mailboxes
        .iter()
        .filter(|s| map.mailbox_state(&s.name) == Some(ServerState::Up))
        .map(|s| s.name.clone())
        .collect();
    if up.len() < 2 {
        return Vec::new();
    }
    let mut homes: Vec<String> = (0..BUCKETS).map(|b| map.home(b).name.clone()).collect();
    let mut moves = Vec::new();
    loop {
        let count = |name: &String| homes.iter().filter(|h| *h == name).count();
        let most = up
            .iter()
            .max_by_key(|n| (count(n), std::cmp::Reverse(*n)))
            .cloned();
        let fewest = up.iter().min_by_key(|n| (count(n), *n)).cloned();
        let (Some(most), Some(fewest)) = (most, fewest) else {
            break;
        };
        // Letters whose home is down or in maintenance count for no one: they go first.
        let stranded = (0..BUCKETS).rev().find(|&b| !up.contains(&homes[b]));
        let from = match stranded {
            Some(b) => Some(b),
            None if count(&most) > count(&fewest) + 1 => {
                (0..BUCKETS).rev().find(|&b| homes[b] == most)
            }
            None => None,
        };
        let Some(bucket) = from else {
            break;
        };
        homes[bucket] = fewest.clone();
        moves.push((bucket, fewest));
    }
    moves
}

/// `letter rebalance` (and `server add --rebalance`): makes the moves of
/// [`rebalance_plan`], each with its mail copied when storage differs and `migrate`.
async fn rebalance(config: &Arc<SiteConfig>, dir: &Directory, migrate: bool) -> anyhow::Result<()> {
    let map = dir.site_map(config.clone()).await?;
    let plan = rebalance_plan(&map);
    if plan.is_empty() {
        println!("every mailbox server that is up already has an even share of the letters");
        return Ok(());
    }
    let effective = map.config.clone();
    for (bucket, to) in plan {
        let from = map.home(bucket).name.clone();
        let moving = effective.mail_root(&from) != effective.mail_root(&to);
        if moving && !migrate {
            bail!(
                "{to} keeps mail in {} and {from} in {}: add --migrate to copy the moved letters' mail",
                effective.mail_root(&to).display(),
                effective.mail_root(&from).display()
            );
        }
        if moving {
            migrate_letter(&effective, dir, bucket, &from, &to).await?;
        } else {
            dir.move_letter(&effective, bucket, &to).await?;
        }
        println!(
            "letter {}: {from} -> {to} ({})",
            bucket_name(bucket),
            alias_label(bucket)
        );
    }
    print_letters(&dir.site_map(config.clone()).await?);
    Ok(())
}

/// `letter move --migrate`: a mirror pass while `from` still serves the letter, the
/// move, then catch-up passes until one finds nothing new after the running nodes had
/// time to follow the move (what `from` delivered just before it stopped).
async fn migrate_letter(
    config: &Arc<SiteConfig>,
    dir: &Directory,
    bucket: usize,
    from: &str,
    to: &str,
) -> anyhow::Result<()> {
    use crate::mailbox::store::Store;
    use crate::mailbox::store::migrate::{Copied, Pass, users_of_bucket};
    let started = std::time::Instant::now();
    let source = Store::new(config.mail_root(from), dir.pool().clone());
    let target = Store::new(config.mail_root(to), dir.pool().clone());
    let users = users_of_bucket(dir.users().await?.into_iter().map(|u| u.username), bucket);
    let letter = bucket_name(bucket);
    println!(
        "letter {letter}: copying {} user(s)' mail from {from} ({}) to {to} ({}) while {from} serves them",
        users.len(),
        source.root().display(),
        target.root().display()
    );
    let pass = |pass: Pass| {
        let (source, target, users) = (&source, &target, &users);
        async move {
            let mut total = Copied::default();
            for (i, user) in users.iter().enumerate() {
                let copied = source
                    .copy_user_to(target, user, pass)
                    .await
                    .with_context(|| format!("cannot copy {user}'s mail to {to}"))?;
                total += copied;
                if pass == Pass::Mirror && (copied.messages > 0 || i + 1 == users.len()) {
                    println!(
                        "  {}/{} {user}: {} message(s) in {} mailbox(es) ({} in all)",
                        i + 1,
                        users.len(),
                        copied.messages,
                        copied.mailboxes,
                        total.messages
                    );
                }
            }
            anyhow::Ok(total)
        }
    };
    let first = pass(Pass::Mirror).await?;
    println!(
        "  copied {} message(s), {} bytes; removed {} stale file(s) or folder(s) from {to}",
        first.messages, first.bytes, first.removed
    );
    dir.move_letter(config, bucket, to).await?;
    let flipped = std::time::Instant::now();
    println!("letter {letter} now belongs to {to}; copying what {from} received meanwhile");
    // The nodes look at the directory every 200 ms; a delivery or APPEND that passed
    // its ownership check on `from` just before may take a moment more to finish.
    let settle = crate::state::POLL_INTERVAL * 10;
    let mut after = Copied::default();
    for _ in 0..60 {
        tokio::time::sleep(crate::state::POLL_INTERVAL).await;
        let copied = pass(Pass::CatchUp).await?;
        after += copied;
        if copied.messages == 0 && flipped.elapsed() >= settle {
            break;
        }
    }
    println!(
        "  copied {} more message(s); done in {:.1} s",
        after.messages,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn server(config: SiteConfig, cmd: ServerCommand) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let dir = Directory::open(&config).await?;
    let (name, state) = match cmd {
        ServerCommand::Add {
            name,
            addresses,
            sorter,
            storage,
            rebalance: even,
            migrate,
        } => {
            let name = name.to_ascii_lowercase();
            if sorter && storage.is_some() {
                bail!("only mailbox servers store mail: leave --storage out for a sorter");
            }
            let server = mailsite_shared::config::Server {
                name: name.clone(),
                addresses,
                storage,
            };
            dir.add_server(&config, !sorter, &server).await?;
            let list: Vec<String> = server.addresses.iter().map(|a| a.to_string()).collect();
            println!(
                "added {} {name} ({}): {name}.{} resolves to it, and every node checks it, within a second",
                if sorter { "sorter" } else { "mailbox server" },
                list.join(", "),
                config.domain
            );
            if !sorter && even {
                rebalance(&config, &dir, migrate).await?;
            } else if !sorter {
                println!(
                    "it serves no letter yet: `mailsite letter move L {name}` or `mailsite letter rebalance`"
                );
            }
            return Ok(());
        }
        ServerCommand::List => {
            let map = dir.site_map(config.clone()).await?;
            let health = dir.server_health().await?;
            println!(
                "{:<10} {:<8} {:<12} {:<16} HEALTH",
                "NAME", "ROLE", "STATE", "ADDRESSES"
            );
            let servers = map
                .config
                .mailboxes
                .iter()
                .zip(&map.mailbox_states)
                .map(|(s, st)| ("mailbox", s, st))
                .chain(
                    map.config
                        .sorters
                        .iter()
                        .zip(&map.sorter_states)
                        .map(|(s, st)| ("sorter", s, st)),
                );
            for (role, s, st) in servers {
                let addresses: Vec<String> = s.addresses.iter().map(|a| a.to_string()).collect();
                let found = match health.get(&s.name) {
                    Some(h) if h.failing => format!(
                        "failing since {}: {}",
                        utc(h.changed_at.max(0) as u64),
                        h.detail
                    ),
                    Some(h) => format!("passing since {}", utc(h.changed_at.max(0) as u64)),
                    None => "passing".to_string(),
                };
                println!(
                    "{:<10} {:<8} {:<12} {:<16} {found}",
                    s.name,
                    role,
                    st,
                    addresses.join(",")
                );
            }
            return Ok(());
        }
        ServerCommand::Maintenance { name } => (name, ServerState::Maintenance),
        ServerCommand::Up { name } => (name, ServerState::Up),
    };
    let name = name.to_ascii_lowercase();
    let before = dir.site_map(config.clone()).await?;
    dir.set_server_state(&config, &name, state).await?;
    let after = dir.site_map(config.clone()).await?;
    println!("{name} is now {state}; running nodes follow within a second");
    if state == ServerState::Up
        && let Some(h) = dir.server_health().await?.get(&name)
        && h.failing
    {
        println!(
            "  note: its health checks fail ({}), so it stays down until they pass",
            h.detail
        );
    }
    if config.mailbox_index(&name).is_some() {
        print_moves(&before, &after);
        if state == ServerState::Maintenance
            && after.serving_mailboxes().iter().all(|s| s.name == name)
        {
            println!(
                "  warning: no other mailbox server is up, so its letters stay where they are"
            );
        }
    } else {
        let outbox: Vec<&str> = after
            .outbox_sorters()
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        println!("  outbox.{} -> {}", config.domain, outbox.join(", "));
    }
    Ok(())
}

async fn zone_export(
    config: SiteConfig,
    domain: Option<String>,
    out: Option<PathBuf>,
) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let dir = Directory::open(&config).await?;
    let map = dir.site_map(config.clone()).await?;
    let zone = crate::dns::Zone::build(&map);
    let domain = domain
        .unwrap_or_else(|| config.domain.clone())
        .to_ascii_lowercase();
    let text = zone
        .export(&domain)
        .with_context(|| format!("{domain} is not a domain of this site"))?;
    match out {
        Some(path) => {
            std::fs::write(&path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote the {domain} zone to {}", path.display());
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
        }
    }
    Ok(())
}

async fn mailbox(config: SiteConfig, cmd: MailboxCommand) -> anyhow::Result<()> {
    let dir = Directory::open(&config).await?;
    let username = match &cmd {
        MailboxCommand::List { username } | MailboxCommand::Reindex { username } => username,
    };
    // The user's mail is in the storage of the server serving them now.
    let map = dir.site_map(Arc::new(config.clone())).await?;
    let server = &map.owner(mailsite_shared::route::bucket_of(username)).name;
    let store = crate::mailbox::store::Store::new(map.config.mail_root(server), dir.pool().clone());
    match cmd {
        MailboxCommand::List { username } => {
            dir.user(&username).await?;
            store.ensure_user(&username).await?;
            println!(
                "{:<24} {:>8} {:>12} {:>8} SPECIAL-USE",
                "MAILBOX", "MESSAGES", "UIDVALIDITY", "UIDNEXT"
            );
            for m in store.mailboxes(&username).await? {
                store.sync(&username, &m.name).await?;
                let info = store.mailbox(&username, &m.name).await?;
                let count = store.messages(&username, &m.name).await?.len();
                println!(
                    "{:<24} {:>8} {:>12} {:>8} {}",
                    info.name, count, info.uidvalidity, info.uidnext, info.special_use
                );
            }
        }
        MailboxCommand::Reindex { username } => {
            dir.user(&username).await?;
            let report = store.reindex(&username).await?;
            println!(
                "reindexed {username}: {} messages in {} mailboxes, UIDs and UIDVALIDITY kept",
                report.messages, report.mailboxes
            );
        }
    }
    Ok(())
}

/// The spools of the sorters a queue command is about.
fn spools(config: &SiteConfig, only: Option<&str>) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let names: Vec<&str> = config.sorters.iter().map(|s| s.name.as_str()).collect();
    if let Some(name) = only
        && !names.contains(&name)
    {
        bail!(
            "no sorter is named {name:?}: this site has {}",
            names.join(", ")
        );
    }
    Ok(names
        .into_iter()
        .filter(|n| only.is_none_or(|o| o == *n))
        .map(|n| {
            (
                n.to_string(),
                crate::sorter::queue::spool_dir(&config.data_dir, n),
            )
        })
        .collect())
}

/// A Unix time as UTC text.
/// The `user` line of `route` and `helpdesk explain`: the directory's entry, or that
/// there is none.
pub(crate) fn user_line(user: Option<&User>, username: &str) -> String {
    match user {
        Some(u) => format!(
            "user      {} ({}, prefers {})",
            u.username,
            if u.enabled { "enabled" } else { "disabled" },
            u.preference
        ),
        None => format!("user      {username} (not in the directory)"),
    }
}

pub(crate) fn utc(secs: u64) -> String {
    chrono::DateTime::from_timestamp(secs as i64, 0).map_or_else(
        || secs.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

fn queue(config: &SiteConfig, cmd: QueueCommand) -> anyhow::Result<()> {
    use crate::sorter::queue::{self, State};
    match cmd {
        QueueCommand::List { sorter, json } => {
            let mut all = Vec::new();
            for (name, dir) in spools(config, sorter.as_deref())? {
                for envelope in queue::read_spool(&dir)? {
                    all.push((name.clone(), envelope));
                }
            }
            if json {
                let list: Vec<_> = all
                    .iter()
                    .map(|(name, e)| serde_json::json!({ "sorter": name, "message": e }))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(());
            }
            let now = queue::now();
            for (name, e) in &all {
                let sender = if e.sender.is_empty() {
                    "<> (a bounce)".to_string()
                } else {
                    e.sender.clone()
                };
                let by = e
                    .authenticated
                    .as_ref()
                    .map_or(String::new(), |u| format!(", submitted by {u}"));
                println!(
                    "{}  {name}  {}  from {sender}  {} bytes{by}",
                    e.id,
                    utc(e.received),
                    e.size
                );
                for r in &e.recipients {
                    let mut line = format!("    {:<32} {}", r.address, r.describe());
                    if r.attempts > 0 {
                        line.push_str(&format!(", {} attempts", r.attempts));
                    }
                    if r.state == State::Pending && !r.remote {
                        if r.next_attempt > now {
                            line.push_str(&format!(
                                ", next in {} s ({})",
                                r.next_attempt - now,
                                utc(r.next_attempt)
                            ));
                        } else {
                            line.push_str(", next now");
                        }
                    }
                    println!("{line}");
                    if let Some(error) = &r.last_error {
                        println!("        last error: {error}");
                    }
                }
            }
            let waiting = all
                .iter()
                .flat_map(|(_, e)| &e.recipients)
                .filter(|r| r.state == State::Pending)
                .count();
            println!(
                "{} messages queued, {waiting} recipients waiting",
                all.len()
            );
        }
        QueueCommand::Flush { sorter } => {
            for (name, dir) in spools(config, sorter.as_deref())? {
                queue::request_flush(&dir)?;
                println!(
                    "{name}: flush requested; the running sorter retries every waiting recipient within a second"
                );
            }
        }
        QueueCommand::Remove { id } => {
            for (name, dir) in spools(config, None)? {
                match queue::remove(&dir, &id) {
                    Ok(envelope) => {
                        println!(
                            "removed {id} from {name}'s queue (from {}, {} recipients); it will be neither delivered nor bounced",
                            if envelope.sender.is_empty() {
                                "<>"
                            } else {
                                &envelope.sender
                            },
                            envelope.recipients.len()
                        );
                        return Ok(());
                    }
                    Err(queue::QueueError::NoEntry(_)) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            bail!("no queued message {id:?}: `mailsite queue list` shows the ids");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn homes(map: &SiteMap, plan: &[(usize, String)]) -> HashMap<String, usize> {
        let mut homes: Vec<String> = (0..BUCKETS).map(|b| map.home(b).name.clone()).collect();
        for (bucket, to) in plan {
            homes[*bucket] = to.clone();
        }
        let mut count = HashMap::new();
        for home in homes {
            *count.entry(home).or_default() += 1;
        }
        count
    }

    #[test]
    fn rebalancing_gives_every_server_that_is_up_an_even_share() {
        let config = SiteConfig::embedded();
        let added = mailsite_shared::config::Server {
            name: "mailbox3".into(),
            addresses: vec!["127.0.0.13".parse().unwrap()],
            storage: None,
        };
        let config = Arc::new(config.with_added(&[(true, added)]));
        let map = SiteMap::new(config.clone(), &[], &HashMap::new(), 1);
        let plan = rebalance_plan(&map);
        // 14 letters on mailbox1 (a-m and other), 13 on mailbox2, none on mailbox3.
        assert_eq!(plan.len(), 9, "{plan:?}");
        let count = homes(&map, &plan);
        assert_eq!(count["mailbox1"], 9);
        assert_eq!(count["mailbox2"], 9);
        assert_eq!(count["mailbox3"], 9);
        // Done: the same plan applied leaves nothing to do.
        let overrides: Vec<(usize, String)> = plan.clone();
        let after = SiteMap::new(config.clone(), &overrides, &HashMap::new(), 2);
        assert!(rebalance_plan(&after).is_empty());
        // A server in maintenance gets nothing, and its letters go to the others.
        let states = HashMap::from([("mailbox2".to_string(), ServerState::Maintenance)]);
        let drained = SiteMap::new(config, &overrides, &states, 3);
        let plan = rebalance_plan(&drained);
        let count = homes(&drained, &plan);
        assert_eq!(count.get("mailbox2"), None, "{plan:?}");
        assert!(
            count["mailbox1"].abs_diff(count["mailbox3"]) <= 1,
            "{count:?}"
        );
    }

    #[test]
    fn one_server_up_is_nothing_to_balance() {
        let map = SiteMap::initial(Arc::new(SiteConfig::embedded()));
        // 14 and 13 already differ by one.
        assert!(rebalance_plan(&map).is_empty());
    }
}
