//! Password logins, the same for IMAP and POP3: the name as users type it (with or
//! without `@domain`), the directory's check, a delay that grows with each failure on
//! the connection, and whether this mailbox server is the one that serves the user.

use std::time::Duration;

use mailsite_shared::route::login_username;

use crate::state::Site;

/// The wait before answering a connection's first failed login. Unit tests and fuzzing
/// builds (`--cfg fuzzing`, set by cargo-fuzz) answer at once: they check answers, not
/// timing, and a fuzzing iteration must take milliseconds.
const FIRST_FAILURE_DELAY: Duration = if cfg!(any(test, fuzzing)) {
    Duration::ZERO
} else {
    Duration::from_millis(250)
};

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
}

/// Checks a login for `server`. `failures` counts this connection's failed attempts:
/// each one waits longer (250 ms, doubling, at most 4 s) before its answer.
pub async fn check(
    site: &Site,
    server: &str,
    typed: &str,
    password: &str,
    failures: &mut u32,
) -> Login {
    let name = login_username(site.view().config(), typed);
    let valid = match &name {
        Some(name) => site
            .directory
            .verify_password(name, password)
            .await
            .unwrap_or(false),
        None => false,
    };
    let Some(username) = name.filter(|_| valid) else {
        *failures += 1;
        let delay = FIRST_FAILURE_DELAY * 2u32.pow((*failures).min(5) - 1);
        if !delay.is_zero() {
            tokio::time::sleep(delay.min(Duration::from_secs(4))).await;
        }
        return Login::Refused;
    };
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
