//! The work the window asks for, as data: [`Job::run`] performs it with the core and
//! answers with [`Message`]s. The window turns a job into an iced task; a test can run
//! the same stream and feed the messages back to `update` itself.

use std::path::PathBuf;
use std::time::Duration;

use futures::stream::{self, BoxStream};
use futures::{FutureExt, StreamExt};
use mailsite_shared::autoconfig::Preference;

use super::Message;
use super::state::Password;
use crate::thunderbird::{self, Account};
use crate::{CheckOptions, Report, SiteOverride, check_with_progress, prefs, render, secret};

/// One piece of work.
#[derive(Debug, Clone)]
pub enum Job {
    /// A whole check: a [`Message::Progress`] per step as it finishes, then
    /// [`Message::Checked`]. Afterwards the address is remembered in the local
    /// preferences (in `config_dir`), and the password in the keyring if `remember`.
    Check {
        options: Box<CheckOptions>,
        config_dir: Option<PathBuf>,
        remember: bool,
    },
    /// Store the POP/IMAP choice here (`config_dir`) and on the site.
    StoreChoice {
        email: String,
        password: Password,
        preference: Preference,
        site: SiteOverride,
        config_dir: Option<PathBuf>,
    },
    /// Write the report as JSON in `path` and as text in `path.txt`.
    SaveReport { report: Box<Report>, path: PathBuf },
    /// The user.js lines that would add the account to a Thunderbird profile.
    ThunderbirdPreview {
        profile: PathBuf,
        account: Box<Account>,
    },
    /// Append them, if they are still what the preview showed.
    ThunderbirdWrite {
        profile: PathBuf,
        account: Box<Account>,
        expected: String,
    },
}

impl Job {
    /// Performs the job; the stream ends when it is done.
    pub fn run(self) -> BoxStream<'static, Message> {
        match self {
            Job::Check {
                options,
                config_dir,
                remember,
            } => check(*options, config_dir, remember),
            Job::StoreChoice {
                email,
                password,
                preference,
                site,
                config_dir,
            } => stream::once(async move {
                Message::ChoiceStored(
                    store_choice(&email, &password.0, preference, &site, config_dir).await,
                )
            })
            .boxed(),
            Job::SaveReport { report, path } => stream::once(async move {
                Message::Saved(
                    render::write_files(&report, &path)
                        .map(|text| format!("Saved {} and {}", path.display(), text.display()))
                        .map_err(|e| e.to_string()),
                )
            })
            .boxed(),
            Job::ThunderbirdPreview { profile, account } => stream::once(async move {
                Message::ThunderbirdPreviewed(
                    thunderbird::preview(&profile, &account)
                        .map(|plan| plan.text)
                        .map_err(|e| e.to_string()),
                )
            })
            .boxed(),
            Job::ThunderbirdWrite {
                profile,
                account,
                expected,
            } => stream::once(async move {
                Message::ThunderbirdWritten(
                    thunderbird::write(&profile, &account, Some(&expected))
                        .map(|plan| {
                            format!(
                                "Added {} to {}. Start Thunderbird: it asks for the password once.",
                                plan.account_key,
                                plan.user_js.display()
                            )
                        })
                        .map_err(|e| e.to_string()),
                )
            })
            .boxed(),
        }
    }
}

/// The check's progress and result, in the order they happen: both go through one
/// channel, so the result cannot overtake the last step.
fn check(
    options: CheckOptions,
    config_dir: Option<PathBuf>,
    remember: bool,
) -> BoxStream<'static, Message> {
    let (tx, rx) = futures::channel::mpsc::unbounded();
    let work = async move {
        let progress = tx.clone();
        let on_progress = move |p| {
            let _ = progress.unbounded_send(Message::Progress(p));
        };
        let result = check_with_progress(&options, &on_progress).await;
        if let Ok(report) = &result
            && let Some(kept) = after_check(report, &options.password, config_dir, remember)
        {
            let _ = tx.unbounded_send(Message::Remembered(kept));
        }
        let _ = tx.unbounded_send(Message::Checked(
            result.map(Box::new).map_err(|e| e.to_string()),
        ));
    };
    // `work` yields nothing itself; the stream ends once it is done and the channel
    // is drained.
    stream::select(rx, work.into_stream().filter_map(|()| async { None })).boxed()
}

/// What the CLI also does after a check: remember the address, and the password once
/// a login worked (if asked to); returns what the keyring did, for the window.
fn after_check(
    report: &Report,
    password: &str,
    config_dir: Option<PathBuf>,
    remember: bool,
) -> Option<Result<String, String>> {
    if let Some(dir) = config_dir {
        let mut p = prefs::load(&dir).unwrap_or_default();
        p.email = Some(report.email.clone());
        if let Err(e) = prefs::save(&dir, &p) {
            tracing::warn!(error = %e, "preferences not saved");
        }
    }
    let login_ok = report.steps.iter().any(|s| {
        matches!(s.kind.as_str(), "imap" | "pop3")
            && s.outcome == mailsite_shared::report::Outcome::Pass
    });
    if !remember {
        return None;
    }
    if !login_ok {
        return Some(Err(
            "The password was not remembered: no server accepted it.".to_string(),
        ));
    }
    Some(match secret::set(&report.email, password) {
        Ok(store) => Ok(format!("Remembered the password in {}.", store.describe())),
        Err(e) => {
            tracing::warn!(error = %e, "the password was not stored in the keyring");
            Err(format!("The password was not remembered: {e}"))
        }
    })
}

/// Stores the choice on the site, then, once the site took it, on this computer: the
/// two never disagree because the site refused the password. One line per place, for
/// the window.
async fn store_choice(
    email: &str,
    password: &str,
    preference: Preference,
    site: &SiteOverride,
    config_dir: Option<PathBuf>,
) -> Result<String, String> {
    let net = crate::net::Net::new(site, Duration::from_secs(10)).map_err(|e| e.to_string())?;
    let answer = crate::server_pref::store(&net, site, email, password, preference)
        .await
        .map_err(|e| format!("Not saved, here or on the site: {e}"))?;
    let local = match &config_dir {
        Some(dir) => {
            let mut p = prefs::load(dir).map_err(|e| e.to_string())?;
            p.choose(email, preference);
            p.email = Some(email.to_string());
            prefs::save(dir, &p)
                .map(|path| format!("Saved on this computer ({}).", path.display()))
                .map_err(|e| format!("The site: {answer}. Not saved on this computer: {e}"))?
        }
        None => "Not saved on this computer: it has no configuration folder.".to_string(),
    };
    Ok(format!("The site: {answer} {local}"))
}
