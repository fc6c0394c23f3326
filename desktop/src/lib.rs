//! The mailsite desktop helper's core, with no user interface in it: find a user's
//! settings the way mail clients do ([`discover`], over [`http`]), test every server
//! those settings name ([`probe`], run by [`check`]), explain what fails in words a
//! user can act on ([`explain`]), and export what happened ([`render`], over the
//! report schema in `mailsite_shared::report`). Local choices live in [`prefs`], the
//! password in [`secret`]; [`thunderbird`] writes the account into a closed
//! Thunderbird profile. The two faces in the binary, the CLI and the iced GUI, only
//! map input to these calls; nothing here knows about either. The window's state,
//! messages and views are in [`gui`] (feature `gui`, on by default) so that its
//! tests can drive them; no other module uses iced.

pub mod check;
pub mod discover;
pub mod explain;
#[cfg(feature = "gui")]
pub mod gui;
pub mod http;
pub mod net;
pub mod prefs;
pub mod probe;
pub mod record;
pub mod render;
pub mod secret;
pub mod server_pref;
pub mod thunderbird;

pub use check::{CheckOptions, Progress, check, check_with_progress};
pub use mailsite_shared::report::Report;
pub use net::SiteOverride;

/// The helper's errors: things that stop a check before it starts.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    #[error("{0}")]
    Setup(String),
    #[error("{0:?} is not an email address: {1}")]
    BadAddress(String, String),
    #[error("the preferences file {path}: {message}")]
    Prefs { path: String, message: String },
    #[error("the keyring: {0}")]
    Keyring(String),
    #[error("{0}")]
    Server(String),
    #[error("cannot write {path}: {message}")]
    Write { path: String, message: String },
}
