//! The console's sign-in state, kept in memory on the node that serves it: sessions
//! (a random token in a cookie, its CSRF token, expiry) and the console's own lockout
//! of failed sign-ins per (name, source), beside the site's login throttle.
//!
//! A session token is 32 random bytes; the server keeps only its SHA-256, so a lookup
//! by token reveals nothing through timing and a memory dump holds no usable token.
//! Sessions end after [`IDLE`] without a request, [`LIFETIME`] after sign-in, or at
//! sign-out. Each node keeps its own: behind a load balancer, the console needs
//! sticky sessions (or one node).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use sha2::Digest;

/// A session unused this long ends.
pub const IDLE: Duration = Duration::from_secs(30 * 60);
/// A session ends this long after sign-in, however busy.
pub const LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// Failed sign-ins for one name from one source that cost only the fixed delay; each one after that
/// doubles a wait during which that name cannot try again.
const FREE_FAILURES: u32 = 3;
/// The longest such wait.
const MAX_LOCKOUT: Duration = Duration::from_secs(5 * 60);
/// Failures are forgotten this long after the last one.
const FAILURE_MEMORY: Duration = Duration::from_secs(15 * 60);
/// At most this many sessions are kept; signing in past it ends the oldest.
const MAX_SESSIONS: usize = 1024;

/// A fresh random token, URL- and cookie-safe.
pub fn token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn key(token: &str) -> [u8; 32] {
    sha2::Sha256::digest(token.as_bytes()).into()
}

/// One signed-in operator.
#[derive(Debug, Clone)]
pub struct Session {
    pub username: String,
    /// The token every state-changing form must carry.
    pub csrf: String,
    started: Instant,
    last_seen: Instant,
    /// A message for the next page (what the last action did).
    flash: Option<String>,
}

impl Session {
    fn expired(&self, now: Instant) -> bool {
        now.duration_since(self.last_seen) > IDLE || now.duration_since(self.started) > LIFETIME
    }
}

/// Failed sign-ins of one name from one source.
#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    /// No attempt for this pair is checked before then.
    locked_until: Instant,
}

/// Sessions and sign-in throttling of one node.
#[derive(Default)]
pub struct Sessions {
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    failures: Mutex<HashMap<(String, IpAddr), Failures>>,
}

impl Sessions {
    /// Starts a session; returns its token (for the cookie).
    pub fn start(&self, username: &str) -> String {
        let token = token();
        let now = Instant::now();
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, s| !s.expired(now));
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| *k)
        {
            sessions.remove(&oldest);
        }
        sessions.insert(
            key(&token),
            Session {
                username: username.to_string(),
                csrf: self::token(),
                started: now,
                last_seen: now,
                flash: None,
            },
        );
        token
    }

    /// The live session of a token, marked as used now; with `take_flash`, its
    /// message for the next page is handed out (and forgotten).
    pub fn get(&self, token: &str, take_flash: bool) -> Option<(Session, Option<String>)> {
        let now = Instant::now();
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let k = key(token);
        let session = sessions.get_mut(&k)?;
        if session.expired(now) {
            sessions.remove(&k);
            return None;
        }
        session.last_seen = now;
        let flash = if take_flash {
            session.flash.take()
        } else {
            None
        };
        Some((session.clone(), flash))
    }

    /// Leaves a message for the session's next page.
    pub fn flash(&self, token: &str, message: String) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(session) = sessions.get_mut(&key(token)) {
            session.flash = Some(message);
        }
    }

    /// Ends a session.
    pub fn end(&self, token: &str) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.remove(&key(token));
    }

    /// Counts a sign-in attempt of `name` from `source` as a failure *before* its
    /// password is checked (so parallel guesses cannot all be checked), unless the pair
    /// is locked out: then `Err` says how long it must wait, and nothing is counted.
    /// A success takes the count back ([`Sessions::succeeded`]).
    pub fn attempt(&self, name: &str, source: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.retain(|_, f| now.duration_since(f.last) < FAILURE_MEMORY);
        let f = failures
            .entry((name.to_string(), source))
            .or_insert(Failures {
                count: 0,
                last: now,
                locked_until: now,
            });
        if f.locked_until > now {
            return Err(f.locked_until - now);
        }
        f.count += 1;
        f.last = now;
        if f.count > FREE_FAILURES {
            let doubling = (f.count - FREE_FAILURES - 1).min(16);
            let wait = Duration::from_secs(1u64 << doubling).min(MAX_LOCKOUT);
            f.locked_until = now + wait;
        }
        Ok(())
    }

    /// Confirms a failure [`Sessions::attempt`] counted, once its answer is ready: the
    /// lock starts again from now, so that the wait before the answer does not use it up.
    pub fn failed(&self, name: &str, source: IpAddr) {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = failures.get_mut(&(name.to_string(), source))
            && f.count > FREE_FAILURES
        {
            let doubling = (f.count - FREE_FAILURES - 1).min(16);
            let wait = Duration::from_secs(1u64 << doubling).min(MAX_LOCKOUT);
            f.locked_until = f.locked_until.max(now + wait);
            f.last = now;
        }
    }

    /// Forgets the failures of `name` from `source` (it signed in).
    pub fn succeeded(&self, name: &str, source: IpAddr) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(&(name.to_string(), source));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_live_until_their_end() {
        let sessions = Sessions::default();
        let token = sessions.start("op");
        let (session, flash) = sessions.get(&token, true).unwrap();
        assert_eq!(session.username, "op");
        assert_eq!(flash, None);
        assert!(sessions.get("not-a-token", false).is_none());
        sessions.flash(&token, "done".into());
        assert_eq!(sessions.get(&token, false).unwrap().1, None);
        assert_eq!(
            sessions.get(&token, true).unwrap().1.as_deref(),
            Some("done")
        );
        assert_eq!(sessions.get(&token, true).unwrap().1, None);
        let other = sessions.start("op");
        assert_ne!(token, other);
        assert_ne!(
            sessions.get(&token, false).unwrap().0.csrf,
            sessions.get(&other, false).unwrap().0.csrf
        );
        sessions.end(&token);
        assert!(sessions.get(&token, false).is_none());
        assert!(sessions.get(&other, false).is_some());
    }

    #[test]
    fn repeated_failures_lock_a_name_from_one_source_for_longer_and_longer() {
        let sessions = Sessions::default();
        let here: IpAddr = "127.0.0.66".parse().unwrap();
        let there: IpAddr = "127.0.0.5".parse().unwrap();
        for _ in 0..=FREE_FAILURES {
            assert_eq!(sessions.attempt("op", here), Ok(()));
        }
        let first = sessions.attempt("op", here).unwrap_err();
        assert!(first <= Duration::from_secs(1));
        // The operator at their own desk is not locked out by the stranger.
        assert_eq!(sessions.attempt("op", there), Ok(()));
        sessions.succeeded("op", there);
        assert_eq!(sessions.attempt("someone-else", here), Ok(()));
        sessions.succeeded("op", here);
        assert_eq!(sessions.attempt("op", here), Ok(()));
    }

    #[test]
    fn parallel_attempts_are_counted_before_their_check() {
        let sessions = Sessions::default();
        let here: IpAddr = "127.0.0.66".parse().unwrap();
        let let_through = (0..40)
            .filter(|_| sessions.attempt("op", here).is_ok())
            .count();
        assert_eq!(let_through as u32, FREE_FAILURES + 1);
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert_eq!(token().len(), 43);
    }
}
