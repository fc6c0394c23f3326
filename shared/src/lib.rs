//! The mailsite site model: what every part of mailsite agrees on.
//!
//! - [`config`]: the site configuration file and the embedded default site;
//! - [`route`]: letter -> alias -> server routing, the one place every role asks;
//! - [`autoconfig`]: the client configuration model and its Thunderbird, Outlook and
//!   Apple renderings (and parsers, for the desktop helper);
//! - [`report`]: the diagnostics report the desktop helper writes and the helpdesk reads;
//! - [`smtp_reply`]: reading SMTP/LMTP replies as a client, within limits;
//! - [`resolver`]: the DNS resolver of the parts that look names up as a client;
//! - [`xml`]: bounded XML reading and escaping.

pub mod autoconfig;
pub mod config;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod mta_sts;
pub mod report;
pub mod resolver;
pub mod route;
pub mod smtp_data;
pub mod smtp_reply;
pub mod utf7;
pub mod xml;

pub use config::{
    HealthSettings, QueueSettings, RelaySettings, Role, SiteConfig, SmtpLimits, ThrottleSettings,
};
pub use route::{DkimKey, Route, ServerState, SiteMap};
