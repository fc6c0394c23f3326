//! The `mailsite` command line: run the site, and administer its directory, letters
//! and servers. Administrative commands act on the site database directly, so they
//! need what the server itself needs: the configuration and access to the database.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use mailsite_shared::autoconfig::{ClientConfig, Preference, Security};
use mailsite_shared::config::{BUCKETS, DEFAULT_SITE_TOML};
use mailsite_shared::route::bucket_name;
use mailsite_shared::{ServerState, SiteConfig};

mod app_password;
mod block;
mod dkim;
mod dns;
mod sieve;
mod tls_report;
mod user_import;

use crate::admin::queue::Queued;
use crate::admin::servers::{Kind, NewServer, last_up_warning};
use crate::admin::users::{NewUser, UserView, check_password};
use crate::admin::{Admin, utc};
use crate::directory::quota::Quota;
use crate::helpdesk::user_line;

mod letters;

use letters::{letter, print_changes, rebalance};

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
  mailsite block list                            sources refused after too many failed logins
  mailsite block remove alice                    let a user whose phone kept an old password in again
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
    /// Login blocks: sources refused after too many failed password logins, listed
    /// and lifted (by address, or by username for every block on that account).
    #[command(subcommand)]
    Block(block::BlockCommand),
    /// Users' Sieve filter scripts (users manage their own over ManageSieve).
    #[command(subcommand)]
    Sieve(sieve::SieveCommand),
    /// Check that the zone agrees with the servers (SPF, DKIM, MTA-STS, TLSA).
    #[command(subcommand)]
    Dns(dns::DnsCommand),
    /// The site's DKIM signing keys: list them, and rotate them.
    #[command(subcommand)]
    Dkim(dkim::DkimCommand),
    /// TLS reports (RFC 8460): how the sorters' TLS sessions with other domains' mail
    /// servers went under their DANE and MTA-STS policies, per day and domain.
    TlsReport(tls_report::TlsReportArgs),
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
    /// Show a user's quota (the limits on what all their mailboxes hold together) and
    /// what they hold; with --storage or --messages, set it first. Mail past a limit is
    /// refused (IMAP NO [OVERQUOTA], LMTP 452 4.2.2); nothing stored is deleted.
    /// Example: `mailsite user quota alice --storage 2G --messages 50000`.
    Quota {
        username: String,
        /// Most octets: 500M, 2G, 1.5T (powers of 1024), or `none` for no limit.
        #[arg(long, value_parser = crate::directory::quota::parse_size)]
        storage: Option<u64>,
        /// Most messages, or `none` for no limit.
        #[arg(long, value_parser = crate::directory::quota::parse_count)]
        messages: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// A user's app passwords: one per device, each cut off on its own.
    #[command(subcommand)]
    AppPassword(app_password::AppPasswordCommand),
    /// Add many users from a file: CSV with a header (username,name,prefer,password or
    /// password_hash, an argon2 PHC string) or JSON lines with the same fields. Every
    /// row is checked first; one bad row and nothing is imported. Users already there
    /// are skipped, or updated with --update.
    Import {
        /// The file; "-" reads standard input.
        file: PathBuf,
        /// csv or jsonl; without it, from the file's extension or its first character.
        #[arg(long, value_enum)]
        format: Option<crate::directory::import::Format>,
        /// Replace the name, preference and password of users already there.
        #[arg(long)]
        update: bool,
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
    /// Move letters so that every mailbox server that is up carries an even share of
    /// the load (after `server add`, say).
    ///
    /// Letters are weighed by their users and the mail they store, not counted: first
    /// letters are far from uniform. The plan, with each server's share of letters,
    /// users and bytes before and after, is printed before anything moves; then each
    /// move as it happens.
    Rebalance {
        /// Copy moved letters' mail to servers with storage of their own.
        #[arg(long)]
        migrate: bool,
        /// Print the plan and stop: move nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ServerCommand {
    /// Drain a server: its letters (or, for a sorter, its share of outbox) move to the
    /// others, and its open IMAP and POP3 sessions are told to reconnect. Health checks
    /// never end a maintenance.
    ///
    /// Draining the last mailbox server or the last sorter that is up is refused, with
    /// what users would see, unless --force.
    Maintenance {
        name: String,
        /// Drain it even if it is the last server of its kind that is up.
        #[arg(long)]
        force: bool,
    },
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
        Command::Helpdesk(HelpdeskCommand::Explain { report }) => {
            crate::helpdesk::explain(config, &report).await.map(|_| ())
        }
        command => {
            // Adding users may start a site; anything else in a directory with no site
            // is a mistake, said as one (not an empty site.db and "no user").
            let creates = matches!(
                command,
                Command::User(UserCommand::Add { .. } | UserCommand::Import { .. })
            );
            let admin = if creates {
                if !crate::admin::site_exists(&config) {
                    eprintln!(
                        "note: no site in {} yet: creating one (site.db)",
                        config.data_dir.display()
                    );
                }
                Admin::open(config).await?
            } else {
                Admin::open_existing(config).await?
            };
            match command {
                Command::User(cmd) => user(&admin, cmd).await,
                Command::Route { email, json } => route(&admin, &email, json).await,
                Command::Letter(cmd) => letter(&admin, cmd).await,
                Command::Server(cmd) => server(&admin, cmd).await,
                Command::Zone(ZoneCommand::Export { domain, out }) => {
                    zone_export(&admin, domain, out).await
                }
                Command::Mailbox(cmd) => mailbox(&admin, cmd).await,
                Command::Queue(cmd) => queue(&admin, cmd),
                Command::Block(cmd) => block::block(&admin, cmd).await,
                Command::Sieve(cmd) => sieve::sieve(&admin, cmd).await,
                Command::Dkim(cmd) => dkim::dkim(&admin, cmd).await,
                Command::TlsReport(args) => tls_report::tls_report(&admin, args).await,
                Command::Dns(cmd) => dns::dns(&admin, cmd).await,
                Command::Serve | Command::CheckConfig { .. } | Command::Helpdesk(_) => {
                    unreachable!("handled above")
                }
            }
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
        let password = line.trim_end_matches(['\r', '\n']).to_string();
        if password.is_empty() {
            bail!(
                "no password was given: standard input was empty. Run the command on a terminal to be asked for one, or give it as one line on standard input"
            );
        }
        password
    };
    check_password(&password)?;
    Ok(password)
}

async fn user(admin: &Admin, cmd: UserCommand) -> anyhow::Result<()> {
    let domain = &admin.config().domain;
    match cmd {
        UserCommand::Add {
            username,
            name,
            prefer,
            operator,
        } => {
            // A taken or badly formed name is refused before the password is asked for.
            let username = admin.check_new_username(&username).await?;
            let password = read_new_password()?;
            let view = admin
                .add_user(NewUser {
                    username: &username,
                    password: &password,
                    display_name: &name,
                    preference: prefer,
                    operator,
                })
                .await?;
            let route = &view.route;
            println!(
                "added {}@{}: letter {}, served by {} as {}, prefers {}",
                username, domain, route.letter, route.server, route.alias, prefer
            );
        }
        UserCommand::Remove { username } => {
            let username = admin.username(&username)?;
            admin.remove_user(&username).await?;
            println!("removed {username} (their stored mail is kept)");
        }
        UserCommand::Passwd { username } => {
            let username = admin.username(&username)?;
            admin.user(&username).await?;
            let password = read_new_password()?;
            admin.set_password(&username, &password).await?;
            println!("password of {username} changed");
        }
        UserCommand::Prefer { username, protocol } => {
            let username = admin.username(&username)?;
            admin.set_preference(&username, protocol).await?;
            println!("{username} now prefers {protocol}; autoconfig lists it first");
        }
        UserCommand::Disable { username } => {
            let username = admin.username(&username)?;
            admin.set_enabled(&username, false).await?;
            println!("{username} is disabled");
        }
        UserCommand::Enable { username } => {
            let username = admin.username(&username)?;
            admin.set_enabled(&username, true).await?;
            println!("{username} is enabled");
        }
        UserCommand::List { json } => {
            let users = admin.users().await?;
            if json {
                let list: Vec<_> = users.iter().map(UserView::to_json).collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!(
                    "{:<24} {:<6} {:<6} {:<10} {:<8} {:<8} NAME",
                    "USERNAME", "LETTER", "PREFER", "SERVER", "STATE", "OPERATOR"
                );
                for UserView { user: u, route } in &users {
                    let state = if u.enabled { "enabled" } else { "disabled" };
                    let operator = if u.operator { "yes" } else { "-" };
                    println!(
                        "{:<24} {:<6} {:<6} {:<10} {:<8} {:<8} {}",
                        u.username,
                        route.letter,
                        u.preference,
                        route.server,
                        state,
                        operator,
                        u.display_name
                    );
                }
                println!("{} users", users.len());
            }
        }
        UserCommand::Import {
            file,
            format,
            update,
        } => user_import::run(admin, &file, format, update).await?,
        UserCommand::AppPassword(cmd) => app_password::app_password(admin, cmd).await?,
        UserCommand::Quota {
            username,
            storage,
            messages,
            json,
        } => {
            let username = admin.username(&username)?;
            let view = if storage.is_some() || messages.is_some() {
                let old = admin.quota(&username).await?.quota;
                let quota = Quota {
                    storage: storage.unwrap_or(old.storage),
                    messages: messages.unwrap_or(old.messages),
                };
                admin.set_quota(&username, quota).await?
            } else {
                admin.quota(&username).await?
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&view.to_json())?);
            } else {
                println!("{username}: {}", view.describe());
            }
        }
        UserCommand::Show { username, json } => {
            let view = admin.user(&admin.username(&username)?).await?;
            let value = view.to_json();
            if json {
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else if let Some(object) = value.as_object() {
                for (k, v) in object {
                    let v = match (k.as_str(), v.as_u64()) {
                        ("created_at", Some(secs)) => utc(secs),
                        _ => v.as_str().map_or(v.to_string(), str::to_string),
                    };
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

async fn route(admin: &Admin, email: &str, json: bool) -> anyhow::Result<()> {
    let map = admin.site_map().await?;
    let route = map
        .route(email)
        .map_err(|e| anyhow::anyhow!("{email:?}: {e}"))?;
    let user = admin.directory().user(&route.username).await.ok();
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

async fn server(admin: &Admin, cmd: ServerCommand) -> anyhow::Result<()> {
    let domain = &admin.config().domain;
    let (name, state, force) = match cmd {
        ServerCommand::Add {
            name,
            addresses,
            sorter,
            storage,
            rebalance: even,
            migrate,
        } => {
            let kind = if sorter { Kind::Sorter } else { Kind::Mailbox };
            let name = name.to_ascii_lowercase();
            let list: Vec<String> = addresses.iter().map(|a| a.to_string()).collect();
            let new = NewServer {
                name: name.clone(),
                addresses,
                kind,
                storage,
            };
            admin.add_server(new).await?;
            println!(
                "added {} {name} ({}): {name}.{domain} resolves to it, and every node checks it, within a second",
                if sorter { "sorter" } else { "mailbox server" },
                list.join(", "),
            );
            if !sorter && even {
                rebalance(admin, migrate, false).await?;
            } else if !sorter {
                println!(
                    "it serves no letter yet: `mailsite letter move L {name}` or `mailsite letter rebalance`"
                );
            }
            return Ok(());
        }
        ServerCommand::List => {
            println!(
                "{:<10} {:<8} {:<12} {:<16} HEALTH",
                "NAME", "ROLE", "STATE", "ADDRESSES"
            );
            for s in admin.servers().await? {
                let addresses: Vec<String> =
                    s.server.addresses.iter().map(|a| a.to_string()).collect();
                let found = match &s.health {
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
                    s.server.name,
                    s.kind.as_str(),
                    s.state,
                    addresses.join(",")
                );
            }
            return Ok(());
        }
        ServerCommand::Maintenance { name, force } => (name, ServerState::Maintenance, force),
        ServerCommand::Up { name } => (name, ServerState::Up, false),
    };
    let change = admin.set_server_state(&name, state, force).await?;
    let name = &change.name;
    println!("{name} is now {state}; running nodes follow within a second");
    if let Some(detail) = &change.failing {
        println!("  note: its health checks fail ({detail}), so it stays down until they pass");
    }
    match change.kind {
        Kind::Mailbox => {
            print_changes(&change.changes());
        }
        Kind::Sorter => {
            let outbox: Vec<&str> = change
                .after
                .outbox_sorters()
                .iter()
                .map(|s| s.name.as_str())
                .collect();
            println!("  outbox.{domain} -> {}", outbox.join(", "));
        }
    }
    if let Some(warning) = (state == ServerState::Maintenance)
        .then(|| last_up_warning(&change.before, name))
        .flatten()
    {
        println!("  warning: {warning}");
    }
    Ok(())
}

async fn zone_export(
    admin: &Admin,
    domain: Option<String>,
    out: Option<PathBuf>,
) -> anyhow::Result<()> {
    let map = admin.site_map().await?;
    // TLSA records as this node's DNS role publishes them: from the certificate this
    // node has (none is made here).
    let certificate = crate::tls::public_key_digest(admin.config())?;
    // Signed as the dns role signs it (the keys are made if the site has none yet).
    let domains: Vec<String> = admin.config().domains().map(str::to_string).collect();
    let keys =
        crate::dns::dnssec::Keys::load(admin.directory(), &domains, admin.config().dnssec).await?;
    let zone = crate::dns::Zone::build_signed(&map, certificate, &keys);
    let domain = domain
        .unwrap_or_else(|| admin.config().domain.clone())
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

async fn mailbox(admin: &Admin, cmd: MailboxCommand) -> anyhow::Result<()> {
    match cmd {
        MailboxCommand::List { username } => {
            let username = admin.username(&username)?;
            println!(
                "{:<24} {:>8} {:>12} {:>8} SPECIAL-USE",
                "MAILBOX", "MESSAGES", "UIDVALIDITY", "UIDNEXT"
            );
            for m in admin.mailboxes_of(&username).await? {
                println!(
                    "{:<24} {:>8} {:>12} {:>8} {}",
                    m.name, m.messages, m.uidvalidity, m.uidnext, m.special_use
                );
            }
        }
        MailboxCommand::Reindex { username } => {
            let username = admin.username(&username)?;
            let report = admin.reindex(&username).await?;
            println!(
                "reindexed {username}: {} messages in {} mailboxes, UIDs and UIDVALIDITY kept",
                report.messages, report.mailboxes
            );
        }
    }
    Ok(())
}

fn queue(admin: &Admin, cmd: QueueCommand) -> anyhow::Result<()> {
    use crate::sorter::queue::{self, State};
    match cmd {
        QueueCommand::List { sorter, json } => {
            let all = admin.queued(sorter.as_deref())?;
            if json {
                let list: Vec<_> = all
                    .iter()
                    .map(|q| serde_json::json!({ "sorter": q.sorter, "message": q.envelope }))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(());
            }
            let now = queue::now();
            for Queued {
                sorter: name,
                envelope: e,
            } in &all
            {
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
                    if r.state == State::Pending {
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
                .flat_map(|q| &q.envelope.recipients)
                .filter(|r| r.state == State::Pending)
                .count();
            println!(
                "{} messages queued, {waiting} recipients waiting",
                all.len()
            );
        }
        QueueCommand::Flush { sorter } => {
            for name in admin.flush_queue(sorter.as_deref())? {
                println!(
                    "{name}: flush requested; the running sorter retries every waiting recipient within a second"
                );
            }
        }
        QueueCommand::Remove { id } => {
            let removed = admin.remove_queued(&id)?;
            let e = &removed.envelope;
            println!(
                "removed {id} from {}'s queue (from {}, {} recipients); it will be neither delivered nor bounced",
                removed.sorter,
                if e.sender.is_empty() { "<>" } else { &e.sender },
                e.recipients.len()
            );
        }
    }
    Ok(())
}
