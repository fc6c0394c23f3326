//! The `[throttle]` section: how failed password logins (IMAP, POP3, SMTP AUTH and the
//! console) slow down and then block the address they come from, across connections.

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, Source};

/// Login throttling, as the server's `throttle` module applies it. With the defaults a
/// guesser gets 10 tries from one address (each answered a little later than the one
/// before), then that address is refused at once for 15 minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleSettings {
    /// Failures from one source (IPv4 address, IPv6 /64) before it is blocked.
    pub block_after: u32,
    /// How long a block lasts, in minutes.
    pub block_minutes: u64,
    /// The wait before answering a source's first failure; each later one doubles it.
    pub first_delay_ms: u64,
    /// The longest such wait.
    pub max_delay_ms: u64,
    /// A source's or account's failures are forgotten this long after the last one.
    pub forget_minutes: u64,
    /// Failures on one account (from any source) after which sources that never logged
    /// in to it wait `max_delay_ms` before each check; its owner's usual sources do not.
    pub account_slowdown_after: u32,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        ThrottleSettings {
            block_after: 10,
            block_minutes: 15,
            first_delay_ms: 250,
            max_delay_ms: 4000,
            forget_minutes: 15,
            account_slowdown_after: 10,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawThrottle {
    block_after: Option<Spanned<u64>>,
    block_minutes: Option<Spanned<u64>>,
    first_delay_ms: Option<Spanned<u64>>,
    max_delay_ms: Option<Spanned<u64>>,
    forget_minutes: Option<Spanned<u64>>,
    account_slowdown_after: Option<Spanned<u64>>,
}

impl ThrottleSettings {
    pub(super) fn from_raw(src: &Source, raw: &RawThrottle) -> Result<Self, ConfigError> {
        let d = ThrottleSettings::default();
        Ok(ThrottleSettings {
            block_after: src.number(
                "throttle.block_after",
                &raw.block_after,
                d.block_after.into(),
                1,
                10_000,
                "failed logins",
            )? as u32,
            block_minutes: src.number(
                "throttle.block_minutes",
                &raw.block_minutes,
                d.block_minutes,
                1,
                7 * 24 * 60,
                "minutes",
            )?,
            first_delay_ms: src.number(
                "throttle.first_delay_ms",
                &raw.first_delay_ms,
                d.first_delay_ms,
                0,
                60_000,
                "milliseconds",
            )?,
            max_delay_ms: src.number(
                "throttle.max_delay_ms",
                &raw.max_delay_ms,
                d.max_delay_ms,
                0,
                60_000,
                "milliseconds",
            )?,
            forget_minutes: src.number(
                "throttle.forget_minutes",
                &raw.forget_minutes,
                d.forget_minutes,
                1,
                7 * 24 * 60,
                "minutes",
            )?,
            account_slowdown_after: src.number(
                "throttle.account_slowdown_after",
                &raw.account_slowdown_after,
                d.account_slowdown_after.into(),
                1,
                100_000,
                "failed logins",
            )? as u32,
        })
    }
}
