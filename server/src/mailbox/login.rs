//! Password logins, the same for IMAP, POP3 and SMTP AUTH: the name as users type it
//! (with or without `@domain`), the site's login throttle (a blocked source is refused
//! before any password is checked), the directory's check, a delay that grows with
//! each failure from the source, and whether this mailbox server serves the user.

use std::net::IpAddr;
use std::time::Duration;

use mailsite_shared::route::login_username;

use crate::directory::app_passwords::Verified;
use crate::state::Site;
use crate::throttle::{Protocol, Verdict, source_of};

/// Unit tests and fuzzing builds (`--cfg fuzzing`, set by cargo-fuzz) answer at once:
/// they check answers, not timing, and a fuzzing iteration must take milliseconds.
const WAITS: bool = !cfg!(any(test, fuzzing));

/// The result of a login attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// The password is right and this server serves the user.
    Accepted { username: String },
    /// Wrong name or password (after the delay).
    Refused,
    /// The password is right but another server serves the user's letter now.
    Elsewhere {
        username: String,
        alias: String,
        server: String,
    },
    /// The source is blocked after too many failures; nothing was checked. The block
    /// ends at `until` (Unix seconds).
    Blocked { until: i64 },
    /// The password is one of the user's app passwords, which expired at `at`.
    Expired { label: String, at: i64 },
}

/// The account a login names, for counting: the username it would log in as, or what
/// was typed (bounded) when that is no valid name.
pub fn account_of(site: &Site, typed: &str) -> String {
    login_username(site.view().config(), typed).unwrap_or_else(|| {
        typed
            .trim()
            .chars()
            .take(64)
            .collect::<String>()
            .to_lowercase()
    })
}

/// Minutes left until `until` (Unix seconds), at least 1.
pub fn minutes_until(until: i64) -> i64 {
    ((until - crate::throttle::unix_now() + 59) / 60).max(1)
}

/// The words every protocol refuses a blocked source with: when to try again, and the
/// block's end as an RFC 3339 time, which the desktop helper reads to tell its user.
pub fn blocked_text(until: i64) -> String {
    let end = rfc3339(until);
    format!(
        "Too many failed logins from your address: try again in {} minutes (blocked until {end})",
        minutes_until(until)
    )
}

/// The words every protocol refuses an expired app password with: which one and since
/// when (RFC 3339), which the desktop helper reads to tell its user.
pub fn expired_text(label: &str, at: i64) -> String {
    format!(
        "The app password \"{label}\" expired at {}: create a new one for this device",
        rfc3339(at)
    )
}

fn rfc3339(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0).map_or_else(
        || at.to_string(),
        |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

/// How often a login waiting for its source's turn ([`Verdict::Busy`]) asks again, and
/// how many times before it gives up (a minute: argon2 checks take a few dozen ms).
const BUSY_POLL: Duration = Duration::from_millis(10);
const BUSY_POLLS: u32 = 6_000;

/// A login attempt the throttle let through; dropping it settles the attempt, whether
/// it failed, succeeded or its client went away mid-check.
#[must_use]
pub struct Admitted<'s> {
    site: &'s Site,
    peer: IpAddr,
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.site.throttle.settle(self.peer);
    }
}

/// Asks the throttle whether a login of `account` from `peer` may be checked, waiting
/// first when it says so (for a delay, or for a turn among the source's attempts being
/// checked); `Err` carries the refusal of a blocked source.
pub async fn admit<'s>(
    site: &'s Site,
    peer: IpAddr,
    account: &str,
    protocol: Protocol,
) -> Result<Admitted<'s>, Login> {
    let mut polls = 0;
    loop {
        match site.throttle.begin(peer, account) {
            Verdict::Blocked { until } => {
                site.metrics.login_blocked(protocol);
                return Err(Login::Blocked { until });
            }
            Verdict::Busy if polls < BUSY_POLLS => {
                polls += 1;
                tokio::time::sleep(BUSY_POLL).await;
            }
            Verdict::Busy => {
                site.metrics.login_blocked(protocol);
                // Not a block of its own: a minute's wait, said the same way.
                return Err(Login::Blocked {
                    until: crate::throttle::unix_now() + 60,
                });
            }
            Verdict::Check { wait } => {
                let admitted = Admitted { site, peer };
                if WAITS && !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                return Ok(admitted);
            }
        }
    }
}

/// Counts a failed login of `account` from `peer` (after [`admit`]): records the block
/// it starts, if any, in the directory, and waits the throttle's delay.
pub async fn failed(site: &Site, peer: IpAddr, account: &str, protocol: Protocol) {
    site.metrics.login_failure(protocol);
    let failure = site.throttle.failed(peer, account);
    if let Some(block) = failure.block {
        site.metrics.block_started();
        tracing::warn!(source = %block.source, account = %block.account, failures = block.failures,
            protocol = protocol.label(), "login: source blocked after too many failures");
        match site.directory.add_block(&block).await {
            Ok(generation) => site.throttle.recorded(&block.source, generation),
            Err(error) => {
                tracing::warn!(%error, source = %block.source, "login: cannot record the block; it holds on this node only")
            }
        }
    }
    if WAITS && !failure.delay.is_zero() {
        tokio::time::sleep(failure.delay.min(Duration::from_secs(60))).await;
    }
}

/// Checks a login for `server` from `peer`. `failures` counts this connection's failed
/// attempts (the callers close a connection after too many).
pub async fn check(
    site: &Site,
    server: &str,
    peer: IpAddr,
    protocol: Protocol,
    typed: &str,
    password: &str,
    failures: &mut u32,
) -> Login {
    let name = login_username(site.view().config(), typed);
    let account = account_of(site, typed);
    let _admitted = match admit(site, peer, &account, protocol).await {
        Ok(admitted) => admitted,
        Err(blocked) => {
            tracing::info!(source = %source_of(peer), account = %account, protocol = protocol.label(), "login: refused, source blocked");
            return blocked;
        }
    };
    let verified = match &name {
        Some(name) => site
            .directory
            .verify_login(name, password, &peer.to_string())
            .await
            .unwrap_or(Verified::Wrong),
        None => Verified::Wrong,
    };
    let username = match (name, verified) {
        (Some(username), Verified::Password | Verified::AppPassword { .. }) => username,
        (Some(username), Verified::Expired { label, at }) => {
            // The right secret, out of date: not a guess, so not counted as one.
            tracing::info!(user = %username, label = %label, protocol = protocol.label(), "login: refused, app password expired");
            return Login::Expired { label, at };
        }
        _ => {
            *failures += 1;
            failed(site, peer, &account, protocol).await;
            return Login::Refused;
        }
    };
    site.throttle.succeeded(peer, &username);
    let snapshot = site.snapshot();
    let route = snapshot
        .map
        .route_user(&username, &snapshot.config().domain);
    if route.server != server {
        return Login::Elsewhere {
            username,
            alias: route.alias,
            server: route.server,
        };
    }
    Login::Accepted { username }
}
