//! Arguments, passwords and output for the command line, and the door to the window
//! (`gui`, also what a bare `mailsite-helper` opens on a desktop). Exit codes: 0 every
//! check passed, 1 some failed, 2 the command could not run as asked (usage).

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use mailsite_helper::discover::Method;
use mailsite_helper::thunderbird::{self, Account};
use mailsite_helper::{
    CheckOptions, HelperError, Report, SiteOverride, discover, prefs, render, secret,
};
use mailsite_shared::autoconfig::Preference;

const ABOUT: &str = "Checks that your mail works: finds your settings the way mail clients do, \
tests every server they name (DNS, connection, certificate, login, a test message to \
yourself), explains what fails and what to try, and writes a report for the helpdesk.";

const AFTER_HELP: &str = "\
Examples:
  mailsite-helper gui                                  the window (what a bare mailsite-helper
                                                       opens when DISPLAY or WAYLAND_DISPLAY is set)
  mailsite-helper check alice@example.test             test everything; asks for the password
  mailsite-helper check alice@example.test --json      the full report as JSON on stdout
  echo \"$PW\" | mailsite-helper check alice@example.test --password-stdin
  mailsite-helper report --out report.json             the report for the helpdesk (and report.json.txt)
  mailsite-helper prefer pop3 alice@example.test       choose POP for that address (on the site, then here)
  mailsite-helper thunderbird alice@example.test --profile ~/.thunderbird/x.default
                                                       the lines that would add the account to
                                                       Thunderbird; --write appends them

Trying the embedded default site (mailsite serve) on this machine:
  mailsite-helper check demo@example.test --site-url http://127.0.0.1:8080 \\
      --dns 127.0.0.1:10053 --ca mailsite-data/tls/ca.pem
  mailsite-helper gui demo@example.test --site-url http://127.0.0.1:8080 \\
      --dns 127.0.0.1:10053 --ca mailsite-data/tls/ca.pem --password-stdin --check

The password is read from the keyring, a prompt, or one line of standard input
(--password-stdin); never from the command line, where other users could see it.
It is never written to a file, a log or a report.

Exit status: 0 all checks passed (or the choice was saved), 1 some failed (or the site
refused the choice, e.g. a wrong password), 2 the command was used wrongly.";

const THUNDERBIRD_HELP: &str = "\
Standard output is exactly the text that is (with --write) or would be appended to
user.js: a new account numbered after the ones in prefs.js, which it keeps. No
password is written; Thunderbird asks for it once.

Refused (exit 1, nothing written): Thunderbird has the profile open (close
Thunderbird first), or the profile already has an account for the address.

Exit status: 0 shown or written, 1 refused or no settings found, 2 the command was
used wrongly.";

#[derive(Parser, Debug)]
#[command(name = "mailsite-helper", version, about = ABOUT, after_help = AFTER_HELP)]
struct Cli {
    /// Without a command: the window on a desktop, this help elsewhere.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Find the settings for an address and test every server they name.
    Check {
        /// Your address, e.g. alice@example.test (default: the last one checked).
        email: Option<String>,
        /// Print the whole report as JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Print every step's details and transcript, not only the summary and what
        /// failed.
        #[arg(long, short)]
        verbose: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Run a check and save its report: JSON in FILE, the text rendering in FILE.txt.
    Report {
        /// Your address (default: the last one checked).
        email: Option<String>,
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Choose POP or IMAP: stored here and, with your password, on the site so that
    /// mail clients set up later are offered it first.
    Prefer {
        /// imap keeps mail on the server for every device; pop3 downloads it to one computer.
        #[arg(value_parser = parse_preference)]
        protocol: Preference,
        /// Your address, e.g. alice@example.test (default: the last one checked). The
        /// choice is for this address only.
        email: Option<String>,
        /// The address, as older versions took it.
        #[arg(long = "email", hide = true, conflicts_with = "email")]
        email_option: Option<String>,
        /// Only store the choice on this computer.
        #[arg(long)]
        local_only: bool,
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        site: SiteArgs,
    },
    /// Add your account to a closed Thunderbird profile: finds your settings (no
    /// password needed) and prints the user.js lines; only --write appends them.
    #[command(after_help = THUNDERBIRD_HELP)]
    Thunderbird {
        /// Your address, e.g. alice@example.test.
        email: String,
        /// The Thunderbird profile folder (the one holding prefs.js), e.g.
        /// ~/.thunderbird/abcd1234.default-release.
        #[arg(long, value_name = "DIR")]
        profile: PathBuf,
        /// The incoming protocol (default: your preference, else the site's first).
        #[arg(long, value_parser = parse_preference)]
        protocol: Option<Preference>,
        /// Your name as it appears on the messages you send.
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Append the lines to the profile's user.js (otherwise: only show them).
        #[arg(long)]
        write: bool,
        #[command(flatten)]
        site: SiteArgs,
    },
    /// Forget the password stored for an address, in every keyring the helper uses;
    /// says whether there was one (and fails if it is still found afterwards).
    Forget { email: String },
    /// Open the window: type your address and password, press Check, watch each step,
    /// choose POP or IMAP, and review, copy or save the report.
    #[cfg(feature = "gui")]
    Gui {
        /// Your address (default: the last one checked).
        email: Option<String>,
        /// Read the password as one line from standard input (otherwise: the keyring,
        /// or type it in the window).
        #[arg(long)]
        password_stdin: bool,
        /// Start the check at once.
        #[arg(long)]
        check: bool,
        /// The incoming protocol to test (default: your preference, else the site's first).
        #[arg(long, value_parser = parse_preference)]
        protocol: Option<Preference>,
        #[command(flatten)]
        site: SiteArgs,
        /// Seconds any one step may take.
        #[arg(long, default_value_t = 10)]
        timeout: u64,
    },
}

#[derive(Args, Debug)]
struct SiteArgs {
    /// Ask this autoconfig service (e.g. http://127.0.0.1:8080) instead of
    /// autoconfig.<domain>.
    #[arg(long, value_name = "URL")]
    site_url: Option<String>,
    /// Ask this DNS server (e.g. 127.0.0.1:10053) instead of the system's.
    #[arg(long, value_name = "ADDR")]
    dns: Option<std::net::SocketAddr>,
    /// Trust this CA certificate (PEM) too, e.g. a site's own CA.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct Common {
    /// The incoming protocol to test (default: your preference, else the site's first).
    #[arg(long, value_parser = parse_preference)]
    protocol: Option<Preference>,
    /// Read the password as one line from standard input.
    #[arg(long)]
    password_stdin: bool,
    /// Keep the password in the keyring once the login works: the desktop keyring
    /// (Secret Service: GNOME Keyring, KeePassXC) when there is one, else the kernel
    /// keyring of your user (until you log out of every session or restart). Says
    /// which, or why neither could.
    #[arg(long)]
    remember: bool,
    #[command(flatten)]
    site: SiteArgs,
    /// Discovery methods to try, in order (autoconfig, autodiscover, srv, convention).
    #[arg(long, value_delimiter = ',', value_parser = parse_method, default_value = "autoconfig,autodiscover,srv,convention")]
    discover: Vec<Method>,
    /// Test this incoming server name (the one in your mail client) instead of the
    /// discovered one.
    #[arg(long, value_name = "HOST")]
    incoming_host: Option<String>,
    /// Seconds any one step may take.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// Skip the round trip (sending a test message to yourself).
    #[arg(long)]
    no_round_trip: bool,
    /// The long check (about 30 minutes): wait in IMAP IDLE as a mail program does
    /// and, after each silence (1, 2, 4, 8 and 14 min), send yourself a test message
    /// and see whether its notice still arrives; says after how much silence push
    /// stopped, if it did, and the keep-alive interval that works on this network.
    #[arg(long)]
    long: bool,
    /// The long check's silences instead of the default, e.g. 30s,2m,10m (30 min in
    /// all at most).
    #[arg(long, value_name = "LIST", value_parser = parse_schedule, requires = "long")]
    idle_schedule: Option<Schedule>,
}

/// The long check's silences, as `--idle-schedule` reads them.
#[derive(Clone, Debug)]
struct Schedule(Vec<Duration>);

fn parse_schedule(s: &str) -> Result<Schedule, String> {
    mailsite_helper::probe::idle::parse_schedule(s).map(Schedule)
}

fn parse_preference(s: &str) -> Result<Preference, String> {
    Preference::parse(s).ok_or_else(|| format!("{s:?} is not a protocol: use imap or pop3"))
}

fn parse_method(s: &str) -> Result<Method, String> {
    Method::parse(s).ok_or_else(|| {
        format!("{s:?} is not a discovery method: use autoconfig, autodiscover, srv or convention")
    })
}

impl SiteArgs {
    fn overrides(&self) -> SiteOverride {
        SiteOverride {
            site_url: self.site_url.clone(),
            dns: self.dns,
            ca: self.ca.clone(),
        }
    }
}

/// A failure to run as asked (exit 2).
struct Usage(String);

impl From<HelperError> for Usage {
    fn from(e: HelperError) -> Usage {
        Usage(e.to_string())
    }
}

fn password(email: &str, from_stdin: bool) -> Result<(String, bool), Usage> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Usage(format!("cannot read the password from standard input: {e}")))?;
        return Ok((line.trim_end_matches(['\r', '\n']).to_string(), false));
    }
    match secret::get(email) {
        Ok(Some(p)) => return Ok((p, true)),
        Ok(None) => {}
        Err(e) => eprintln!("note: no keyring could be read, so no stored password: {e}"),
    }
    if std::io::stdin().is_terminal() {
        let p = rpassword::prompt_password(format!("Password for {email}: "))
            .map_err(|e| Usage(format!("cannot read the password: {e}")))?;
        return Ok((p, false));
    }
    Err(Usage(
        "no password: none is stored in the keyring and standard input is not a terminal; use --password-stdin".to_string(),
    ))
}

fn email_or_last(email: Option<String>, dir: Option<&std::path::Path>) -> Result<String, Usage> {
    if let Some(e) = email {
        return Ok(e);
    }
    dir.and_then(|d| prefs::load(d).ok())
        .and_then(|p| p.email)
        .ok_or_else(|| {
            Usage(
                "which address? give it, e.g. mailsite-helper check alice@example.test".to_string(),
            )
        })
}

async fn run_check(email: Option<String>, common: &Common) -> Result<Report, Usage> {
    let dir = prefs::config_dir();
    let email = email_or_last(email, dir.as_deref())?;
    let (password, from_keyring) = password(&email, common.password_stdin)?;
    let local = dir
        .as_deref()
        .and_then(|d| prefs::load(d).ok())
        .unwrap_or_default();
    let mut opts = CheckOptions::new(&email, &password);
    opts.protocol = common.protocol.or(local.protocol_for(&email));
    opts.site = common.site.overrides();
    opts.methods = common.discover.clone();
    opts.incoming_host = common.incoming_host.clone();
    opts.step_timeout = Duration::from_secs(common.timeout.max(1));
    opts.round_trip = !common.no_round_trip;
    if common.long {
        opts.idle_schedule = common.idle_schedule.clone().map_or_else(
            || mailsite_helper::probe::idle::DEFAULT_SCHEDULE.to_vec(),
            |s| s.0,
        );
        let total: Duration = opts.idle_schedule.iter().sum();
        eprintln!(
            "long check: push mail is tested through {} of silence after the other steps; each round is told here",
            mailsite_helper::probe::idle::human(total)
        );
    }
    let on_progress = |p: mailsite_helper::Progress| {
        if let mailsite_helper::Progress::Note(note) = p {
            eprintln!("long check: {note}");
        }
    };
    let report = mailsite_helper::check_with_progress(&opts, &on_progress).await?;
    if let Some(d) = &dir {
        let mut p = local;
        p.email = Some(report.email.clone());
        if let Err(e) = prefs::save(d, &p) {
            tracing::warn!(error = %e, "preferences not saved");
        }
    }
    let login_ok = report.steps.iter().any(|s| {
        matches!(s.kind.as_str(), "imap" | "pop3")
            && s.outcome == mailsite_shared::report::Outcome::Pass
    });
    if common.remember && !from_keyring {
        if !login_ok {
            eprintln!("note: the password was not remembered: no server accepted it");
        } else {
            match secret::set(&report.email, &password) {
                Ok(store) => eprintln!("remembered the password in {}", store.describe()),
                Err(e) => eprintln!("note: the password was not remembered: {e}"),
            }
        }
    }
    Ok(report)
}

fn status(report: &Report) -> ExitCode {
    ExitCode::from(if report.passed { 0 } else { 1 })
}

async fn run(command: Command) -> Result<ExitCode, Usage> {
    match command {
        Command::Check {
            email,
            json,
            verbose,
            common,
        } => {
            let report = run_check(email, &common).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).map_err(|e| Usage(e.to_string()))?
                );
            } else if verbose {
                print!("{}", render::text(&report));
            } else {
                print!("{}", render::brief(&report));
            }
            Ok(status(&report))
        }
        Command::Report { email, out, common } => {
            let report = run_check(email, &common).await?;
            let text_file = render::write_files(&report, &out)?;
            println!("{}", report.summary);
            println!("wrote {} and {}", out.display(), text_file.display());
            Ok(status(&report))
        }
        Command::Prefer {
            protocol,
            email,
            email_option,
            local_only,
            password_stdin,
            site,
        } => {
            let dir = prefs::config_dir().ok_or_else(|| {
                Usage(
                    "no configuration folder on this system; set MAILSITE_HELPER_CONFIG_DIR"
                        .to_string(),
                )
            })?;
            let mut p = prefs::load(&dir)?;
            let email = email_or_last(email.or(email_option), Some(&dir))?;
            println!("{}", prefs::consequence(protocol));
            // The site first: a choice it refused is not kept here either, so that
            // this computer and the site never disagree.
            if !local_only {
                let (password, _) = password(&email, password_stdin)?;
                let net =
                    mailsite_helper::net::Net::new(&site.overrides(), Duration::from_secs(10))?;
                let stored = mailsite_helper::server_pref::store(
                    &net,
                    &site.overrides(),
                    &email,
                    &password,
                    protocol,
                )
                .await;
                match stored {
                    Ok(answer) => println!("the site: {answer}"),
                    Err(e) => {
                        eprintln!("{e}; nothing was saved on this computer either");
                        return Ok(ExitCode::from(1));
                    }
                }
            }
            p.choose(&email, protocol);
            p.email = Some(email.clone());
            let path = prefs::save(&dir, &p)?;
            println!(
                "{protocol} is your choice for {email} (saved in {})",
                path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Thunderbird {
            email,
            profile,
            protocol,
            name,
            write,
            site,
        } => add_to_thunderbird(&email, &profile, protocol, name.as_deref(), write, &site).await,
        Command::Forget { email } => {
            if secret::forget(&email)? {
                println!(
                    "forgot the password for {email}: it is no longer stored on this computer"
                );
            } else {
                println!("no password was stored for {email}: nothing to forget");
            }
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "gui")]
        Command::Gui { .. } => unreachable!("the window runs outside the runtime"),
    }
}

/// `thunderbird`: discovery, then the preview on stdout, and the write if asked.
async fn add_to_thunderbird(
    email: &str,
    profile: &std::path::Path,
    protocol: Option<Preference>,
    name: Option<&str>,
    write: bool,
    site: &SiteArgs,
) -> Result<ExitCode, Usage> {
    let address = mailsite_shared::route::Address::parse(email)
        .map_err(|e| HelperError::BadAddress(email.to_string(), e.to_string()))?;
    if !profile.is_dir() {
        return Err(Usage(
            thunderbird::TbError::NotAProfile(profile.display().to_string()).to_string(),
        ));
    }
    let overrides = site.overrides();
    let net = mailsite_helper::net::Net::new(&overrides, Duration::from_secs(10))?;
    let found = discover::discover(&net, &overrides, &address, &Method::ALL).await;
    let Some(config) = found.config else {
        eprintln!(
            "mailsite-helper: no settings found for {email}; `mailsite-helper check {email}` \
             shows what was asked and what answered"
        );
        return Ok(ExitCode::from(1));
    };
    let settings: Vec<_> = config
        .incoming
        .iter()
        .chain(&config.outgoing)
        .map(discover::setting)
        .collect();
    let protocol = protocol.or_else(|| {
        prefs::config_dir()
            .and_then(|d| prefs::load(&d).ok())
            .and_then(|p| p.protocol_for(email))
    });
    let result =
        Account::choose(&address.to_string(), name, &settings, protocol).and_then(|account| {
            if write {
                thunderbird::write(profile, &account, None)
            } else {
                thunderbird::preview(profile, &account)
            }
        });
    match result {
        Ok(plan) => {
            print!("{}", plan.text);
            if write {
                eprintln!(
                    "added {} to {}; start Thunderbird and it asks for the password once",
                    plan.account_key,
                    plan.user_js.display()
                );
            } else {
                eprintln!(
                    "nothing written: add --write to append these lines to {}",
                    plan.user_js.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if e.is_usage() => Err(Usage(e.to_string())),
        Err(e) => {
            eprintln!("mailsite-helper: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// Opens the window (iced runs its own tokio runtime, so this is called outside ours).
#[cfg(feature = "gui")]
fn gui(
    email: Option<String>,
    password_stdin: bool,
    check: bool,
    protocol: Option<Preference>,
    site: &SiteArgs,
    timeout: u64,
) -> Result<ExitCode, Usage> {
    use mailsite_helper::gui::{self, Password, Startup};
    let dir = prefs::config_dir();
    let local = dir
        .as_deref()
        .and_then(|d| prefs::load(d).ok())
        .unwrap_or_default();
    let email = email.or(local.email.clone()).unwrap_or_default();
    let (password, from_keyring) = if password_stdin {
        password(&email, true)?
    } else if email.is_empty() {
        (String::new(), false)
    } else {
        match secret::get(&email) {
            Ok(Some(p)) => (p, true),
            Ok(None) => (String::new(), false),
            Err(e) => {
                tracing::debug!(error = %e, "no keyring");
                (String::new(), false)
            }
        }
    };
    let report_dir = directories::UserDirs::new()
        .map(|u| {
            u.document_dir()
                .unwrap_or_else(|| u.home_dir())
                .to_path_buf()
        })
        .unwrap_or_default();
    let protocol = protocol.or(local.protocol_for(&email));
    let startup = Startup {
        email,
        password: Password(password),
        site: site.overrides(),
        protocol,
        config_dir: dir,
        check_now: check,
        remember: from_keyring,
        step_timeout: Some(Duration::from_secs(timeout.max(1))),
        report_path: report_dir.join("mailsite-report.json"),
    };
    gui::run(startup).map_err(|e| Usage(format!("cannot open the window: {e}")))?;
    Ok(ExitCode::SUCCESS)
}

/// Whether a window can be opened here.
#[cfg(feature = "gui")]
fn on_a_desktop() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let command = match cli.command {
        Some(command) => command,
        #[cfg(feature = "gui")]
        None if on_a_desktop() => Command::Gui {
            email: None,
            password_stdin: false,
            check: false,
            protocol: None,
            site: SiteArgs {
                site_url: None,
                dns: None,
                ca: None,
            },
            timeout: 10,
        },
        None => {
            use clap::CommandFactory;
            let _ = Cli::command().print_help();
            return ExitCode::from(2);
        }
    };
    #[cfg(feature = "gui")]
    if let Command::Gui {
        email,
        password_stdin,
        check,
        protocol,
        site,
        timeout,
    } = &command
    {
        return match gui(
            email.clone(),
            *password_stdin,
            *check,
            *protocol,
            site,
            *timeout,
        ) {
            Ok(code) => code,
            Err(Usage(message)) => {
                eprintln!("mailsite-helper: {message}");
                ExitCode::from(2)
            }
        };
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mailsite-helper: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(command)) {
        Ok(code) => code,
        Err(Usage(message)) => {
            eprintln!("mailsite-helper: {message}");
            ExitCode::from(2)
        }
    }
}
