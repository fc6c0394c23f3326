//! What the window holds and how each [`Message`] changes it. `update` does no I/O:
//! it answers with the [`Effect`] to perform, which `gui::run` hands to iced and a
//! test can perform itself.

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use mailsite_shared::autoconfig::Preference;
use mailsite_shared::report::{Discovery, Step};

use super::Job;
use crate::thunderbird::Account;
use crate::{CheckOptions, Progress, Report, SiteOverride, render};

/// A password as the form holds it: its `Debug` form never shows it, so neither a
/// message nor the state can leak it into a log.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Password(pub String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How the window starts: what the command line and the local preferences give.
#[derive(Debug, Clone, Default)]
pub struct Startup {
    pub email: String,
    pub password: Password,
    pub site: SiteOverride,
    /// The stored POP/IMAP choice, if any.
    pub protocol: Option<Preference>,
    /// Where preferences are kept (`None`: nowhere).
    pub config_dir: Option<PathBuf>,
    /// Start a check at once (`gui --check`).
    pub check_now: bool,
    /// Keep the password in the keyring once a login works.
    pub remember: bool,
    /// Seconds any one step may take (default 10).
    pub step_timeout: Option<Duration>,
    /// Where "Save report" writes by default.
    pub report_path: PathBuf,
}

/// Where a check is.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Nothing checked yet.
    Idle,
    /// Steps so far, in the order they finished.
    Running {
        discovery: Option<Discovery>,
        steps: Vec<Step>,
    },
    /// The report, which steps are opened (and of those, which show what the server
    /// said), and whether the report text is shown.
    Done {
        report: Box<Report>,
        expanded: BTreeSet<usize>,
        transcripts: BTreeSet<usize>,
        discovery_open: bool,
        reviewing: bool,
    },
    /// The check could not run (e.g. not an address, an unreadable CA file).
    Failed(String),
}

/// Everything the user can do, and everything a job answers.
#[derive(Debug, Clone)]
pub enum Message {
    EmailChanged(String),
    PasswordChanged(Password),
    SiteUrlChanged(String),
    DnsChanged(String),
    CaChanged(String),
    ToggleSite,
    RememberToggled(bool),
    Check,
    Progress(Progress),
    Checked(Result<Box<Report>, String>),
    /// Where the keyring kept the password after a check, or why it did not.
    Remembered(Result<String, String>),
    ToggleStep(usize),
    /// Show or hide the lines exchanged with the server in an opened step.
    ToggleTranscript(usize),
    ToggleDiscovery,
    Choose(Preference),
    StoreChoice,
    ChoiceStored(Result<String, String>),
    Review(bool),
    Copy,
    Copied,
    ReportPathChanged(String),
    Save,
    Saved(Result<String, String>),
    ProfileChanged(String),
    PreviewThunderbird,
    /// The text that would be appended to user.js, or why not.
    ThunderbirdPreviewed(Result<String, String>),
    WriteThunderbird,
    ThunderbirdWritten(Result<String, String>),
    /// Tab (forward) or Shift-Tab: the keyboard focus moves to the next or previous
    /// field or button, as in every other window.
    Focus {
        forward: bool,
    },
}

/// The message a key press no widget took stands for: Tab and Shift-Tab move the
/// focus (a text field does not take Tab, so without this a password typed after Tab
/// would land in the address field). Enter runs the check from the fields themselves.
pub fn key_message(
    key: &iced::keyboard::Key,
    modifiers: iced::keyboard::Modifiers,
) -> Option<Message> {
    use iced::keyboard::key::{Key, Named};
    match key {
        Key::Named(Named::Tab) if !modifiers.control() && !modifiers.alt() => {
            Some(Message::Focus {
                forward: !modifiers.shift(),
            })
        }
        _ => None,
    }
}

/// Work for the outside world: a [`Job`], or text for the clipboard (which only the
/// window system can take).
#[derive(Debug, Clone)]
pub enum Effect {
    Run(Job),
    Copy(String),
    /// Move the keyboard focus to the next (or previous) field or button.
    Focus {
        forward: bool,
    },
}

/// The whole window.
#[derive(Debug, Clone)]
pub struct State {
    pub email: String,
    pub password: Password,
    pub site_url: String,
    pub dns: String,
    pub ca: String,
    pub site_open: bool,
    pub remember: bool,
    /// What the keyring did with the password after the last check (`Err`: not kept).
    pub remember_status: Option<Result<String, String>>,
    pub choice: Option<Preference>,
    /// What storing the choice answered (`Err`: something was not stored).
    pub choice_status: Option<Result<String, String>>,
    pub phase: Phase,
    /// What the form says is wrong before a check can start.
    pub notice: Option<String>,
    pub report_path: String,
    /// What the last export did.
    pub export_status: Option<Result<String, String>>,
    /// The Thunderbird profile folder typed in.
    pub tb_profile: String,
    /// The previewed user.js text, for the profile and account it was made for:
    /// writing is offered only after a preview.
    pub tb_preview: Option<String>,
    /// What the last preview or write answered (`Err`: refused or failed).
    pub tb_status: Option<Result<String, String>>,
    config_dir: Option<PathBuf>,
    step_timeout: Duration,
    check_now: bool,
}

impl State {
    pub fn new(startup: Startup) -> State {
        let site = &startup.site;
        State {
            email: startup.email,
            password: startup.password,
            site_url: site.site_url.clone().unwrap_or_default(),
            dns: site.dns.map(|d| d.to_string()).unwrap_or_default(),
            ca: site
                .ca
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            site_open: false,
            remember: startup.remember,
            remember_status: None,
            choice: startup.protocol,
            choice_status: None,
            phase: Phase::Idle,
            notice: None,
            report_path: startup.report_path.display().to_string(),
            export_status: None,
            tb_profile: String::new(),
            tb_preview: None,
            tb_status: None,
            config_dir: startup.config_dir,
            step_timeout: startup.step_timeout.unwrap_or(Duration::from_secs(10)),
            check_now: startup.check_now,
        }
    }

    /// The work to start with: a check, if the command line asked for one.
    pub fn boot(&mut self) -> Option<Effect> {
        if self.check_now {
            self.update(Message::Check)
        } else {
            None
        }
    }

    pub fn title(&self) -> String {
        match &self.phase {
            Phase::Running { .. } => "mailsite helper: checking…".to_string(),
            Phase::Done { report, .. } if report.passed => "mailsite helper: all passed".into(),
            Phase::Done { .. } => "mailsite helper: problems found".to_string(),
            _ => "mailsite helper".to_string(),
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(self.phase, Phase::Running { .. })
    }

    /// The finished report, if any.
    pub fn report(&self) -> Option<&Report> {
        match &self.phase {
            Phase::Done { report, .. } => Some(report),
            _ => None,
        }
    }

    /// The site override the form describes, or what is wrong with it.
    pub fn site(&self) -> Result<SiteOverride, String> {
        let trimmed = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let dns = match trimmed(&self.dns) {
            Some(d) => Some(d.parse::<SocketAddr>().map_err(|_| {
                format!("The DNS server {d:?} is not an address and port, e.g. 127.0.0.1:10053.")
            })?),
            None => None,
        };
        Ok(SiteOverride {
            site_url: trimmed(&self.site_url),
            dns,
            ca: trimmed(&self.ca).map(PathBuf::from),
        })
    }

    /// The check the form describes, or what is missing.
    fn check_options(&self) -> Result<CheckOptions, String> {
        let email = self.email.trim();
        if email.is_empty() {
            return Err("Type your email address first.".to_string());
        }
        if self.password.0.is_empty() {
            return Err("Type your password: the servers are tested with it.".to_string());
        }
        let mut options = CheckOptions::new(email, &self.password.0);
        options.site = self.site()?;
        options.protocol = self.choice;
        options.step_timeout = self.step_timeout;
        Ok(options)
    }

    /// The Thunderbird account from the last check's settings and the POP/IMAP
    /// choice, and the profile folder typed in; or what is missing.
    fn thunderbird_account(&self) -> Result<(PathBuf, Account), String> {
        let report = self
            .report()
            .ok_or("Check first: the account comes from the settings found.")?;
        let profile = self.tb_profile.trim();
        if profile.is_empty() {
            return Err("Type the Thunderbird profile folder first.".to_string());
        }
        let protocol = self.choice.or(Preference::parse(&report.protocol));
        let account = Account::choose(&report.email, None, &report.discovery.settings, protocol)
            .map_err(|e| e.to_string())?;
        Ok((PathBuf::from(profile), account))
    }

    pub fn update(&mut self, message: Message) -> Option<Effect> {
        match message {
            Message::EmailChanged(e) => self.email = e,
            Message::PasswordChanged(p) => self.password = p,
            Message::SiteUrlChanged(s) => self.site_url = s,
            Message::DnsChanged(s) => self.dns = s,
            Message::CaChanged(s) => self.ca = s,
            Message::ToggleSite => self.site_open = !self.site_open,
            Message::RememberToggled(on) => self.remember = on,
            Message::Check => {
                if self.is_running() {
                    return None;
                }
                match self.check_options() {
                    Ok(options) => {
                        self.notice = None;
                        self.export_status = None;
                        self.remember_status = None;
                        self.phase = Phase::Running {
                            discovery: None,
                            steps: Vec::new(),
                        };
                        return Some(Effect::Run(Job::Check {
                            options: Box::new(options),
                            config_dir: self.config_dir.clone(),
                            remember: self.remember,
                        }));
                    }
                    Err(notice) => self.notice = Some(notice),
                }
            }
            Message::Progress(p) => {
                if let Phase::Running { discovery, steps } = &mut self.phase {
                    match p {
                        Progress::Discovered(d) => *discovery = Some(d),
                        Progress::Step(s) => steps.push(s),
                        // The long check is the command line's.
                        Progress::Note(_) => {}
                    }
                }
            }
            Message::Checked(Ok(report)) => {
                self.tb_preview = None;
                self.tb_status = None;
                if self.choice.is_none() {
                    self.choice = Preference::parse(&report.protocol);
                }
                // Failed steps open by themselves: they are what the user came for.
                let expanded = report
                    .steps
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.problem.is_some())
                    .map(|(i, _)| i)
                    .collect();
                self.phase = Phase::Done {
                    report,
                    expanded,
                    transcripts: BTreeSet::new(),
                    discovery_open: false,
                    reviewing: false,
                };
            }
            Message::Checked(Err(e)) => self.phase = Phase::Failed(e),
            Message::Remembered(status) => self.remember_status = Some(status),
            Message::ToggleStep(i) => {
                if let Phase::Done { expanded, .. } = &mut self.phase
                    && !expanded.remove(&i)
                {
                    expanded.insert(i);
                }
            }
            Message::ToggleTranscript(i) => {
                if let Phase::Done { transcripts, .. } = &mut self.phase
                    && !transcripts.remove(&i)
                {
                    transcripts.insert(i);
                }
            }
            Message::ToggleDiscovery => {
                if let Phase::Done { discovery_open, .. } = &mut self.phase {
                    *discovery_open = !*discovery_open;
                }
            }
            Message::Choose(p) => {
                self.choice = Some(p);
                self.tb_preview = None;
                self.choice_status = None;
            }
            Message::StoreChoice => {
                let preference = self.choice?;
                let site = match self.site() {
                    Ok(site) => site,
                    Err(e) => {
                        self.choice_status = Some(Err(e));
                        return None;
                    }
                };
                if self.email.trim().is_empty() || self.password.0.is_empty() {
                    self.choice_status = Some(Err(
                        "Type your address and password first: the site asks for them.".to_string(),
                    ));
                    return None;
                }
                self.choice_status = Some(Ok("Saving…".to_string()));
                return Some(Effect::Run(Job::StoreChoice {
                    email: self.email.trim().to_string(),
                    password: self.password.clone(),
                    preference,
                    site,
                    config_dir: self.config_dir.clone(),
                }));
            }
            Message::ChoiceStored(result) => self.choice_status = Some(result),
            Message::Review(on) => {
                if let Phase::Done { reviewing, .. } = &mut self.phase {
                    *reviewing = on;
                }
            }
            Message::Copy => {
                return self.report().map(|r| Effect::Copy(render::text(r)));
            }
            Message::Copied => {
                self.export_status = Some(Ok("The report text is on the clipboard.".into()))
            }
            Message::ReportPathChanged(p) => self.report_path = p,
            Message::Save => {
                let report = self.report()?.clone();
                let path = self.report_path.trim();
                if path.is_empty() {
                    self.export_status = Some(Err("Type where to save the report.".into()));
                    return None;
                }
                return Some(Effect::Run(Job::SaveReport {
                    report: Box::new(report),
                    path: PathBuf::from(path),
                }));
            }
            Message::Saved(result) => self.export_status = Some(result),
            Message::ProfileChanged(p) => {
                self.tb_profile = p;
                self.tb_preview = None;
                self.tb_status = None;
            }
            Message::PreviewThunderbird => {
                self.tb_preview = None;
                match self.thunderbird_account() {
                    Ok((profile, account)) => {
                        self.tb_status = None;
                        return Some(Effect::Run(Job::ThunderbirdPreview {
                            profile,
                            account: Box::new(account),
                        }));
                    }
                    Err(e) => self.tb_status = Some(Err(e)),
                }
            }
            Message::ThunderbirdPreviewed(Ok(text)) => {
                self.tb_preview = Some(text);
                self.tb_status = Some(Ok(
                    "Nothing is written yet: these lines are what Write to profile adds.".into(),
                ));
            }
            Message::ThunderbirdPreviewed(Err(e)) => self.tb_status = Some(Err(e)),
            Message::WriteThunderbird => {
                let expected = self.tb_preview.clone()?;
                match self.thunderbird_account() {
                    Ok((profile, account)) => {
                        self.tb_status = Some(Ok("Writing…".into()));
                        return Some(Effect::Run(Job::ThunderbirdWrite {
                            profile,
                            account: Box::new(account),
                            expected,
                        }));
                    }
                    Err(e) => self.tb_status = Some(Err(e)),
                }
            }
            Message::Focus { forward } => return Some(Effect::Focus { forward }),
            Message::ThunderbirdWritten(result) => {
                if result.is_ok() {
                    // Written once: a second press would be refused anyway.
                    self.tb_preview = None;
                }
                self.tb_status = Some(result);
            }
        }
        None
    }
}
