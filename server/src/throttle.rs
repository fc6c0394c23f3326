//! Login throttling across connections, as Dovecot's auth penalty and fail2ban do it:
//! failed password logins (IMAP, POP3, SMTP AUTH, the console) are counted per source
//! (an IPv4 address, an IPv6 /64) and per account, shared by every connection and
//! protocol of this node.
//!
//! The rules, with the `[throttle]` settings:
//! - each attempt is counted against its source *before* its password is checked, so a
//!   burst of parallel guesses cannot all be checked before the count catches up;
//! - each failure is answered after a wait that doubles from `first_delay_ms` up to
//!   `max_delay_ms` (the caller sleeps outside the shared argon2 capacity);
//! - after `block_after` failures the source is blocked for `block_minutes`: it is
//!   refused at once and no password of it is checked at all;
//! - a success clears its source's count and remembers that source for that account;
//! - an account that `account_slowdown_after` failures came in on makes only the
//!   sources that never logged in to it wait `max_delay_ms`: it never blocks, so a
//!   stranger cannot lock the real user out.
//!
//! Blocks are kept in the directory ([`crate::directory::blocks`]) so that every node
//! honours them and `mailsite block remove` reaches every node through the change log;
//! this module holds this node's copy, refreshed by [`crate::state::Site`].

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mailsite_shared::ThrottleSettings;

use crate::directory::blocks::LoginBlock;

/// Past this many remembered sources, accounts or known pairs, the stale ones go.
const MOST_REMEMBERED: usize = 100_000;

/// The reason a block names (shown by `block list` and in the refusals).
pub const REASON: &str = "too many failed logins";

/// Where a login came in, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Imap,
    Pop3,
    Smtp,
    Console,
    ManageSieve,
}

impl Protocol {
    pub const ALL: [Protocol; 5] = [
        Protocol::Imap,
        Protocol::Pop3,
        Protocol::Smtp,
        Protocol::Console,
        Protocol::ManageSieve,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Protocol::Imap => "imap",
            Protocol::Pop3 => "pop3",
            Protocol::Smtp => "smtp",
            Protocol::Console => "console",
            Protocol::ManageSieve => "managesieve",
        }
    }
}

/// The source a peer counts as: its IPv4 address, or its IPv6 /64 (one host or one
/// LAN's worth of addresses), written as `block list` shows it.
pub fn source_of(ip: IpAddr) -> String {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments[4..].fill(0);
            format!("{}/64", std::net::Ipv6Addr::from(segments))
        }
    }
}

/// What to do with a login attempt before its password is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Check the password, after waiting this long (zero unless the source is a
    /// stranger to an account many failed on).
    Check { wait: Duration },
    /// Refuse at once: the source is blocked until this Unix time.
    Blocked { until: i64 },
    /// As many of the source's attempts are being checked as it has failures left
    /// before a block: ask again when one of them is settled.
    Busy,
}

/// What a failed attempt leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// How long to wait before answering.
    pub delay: Duration,
    /// The block this failure started, to record in the directory.
    pub block: Option<LoginBlock>,
}

#[derive(Debug, Clone, Copy)]
struct Count {
    failures: u32,
    /// Attempts let through whose check has not been settled yet (sources only).
    pending: u32,
    last: Instant,
}

#[derive(Debug, Clone)]
struct Held {
    block: LoginBlock,
    /// The site generation that recorded it in the directory (`None`: not yet).
    generation: Option<i64>,
}

#[derive(Default)]
struct State {
    sources: HashMap<String, Count>,
    accounts: HashMap<String, Count>,
    /// (account, source) pairs that logged in.
    known: HashSet<(String, String)>,
    blocks: HashMap<String, Held>,
}

/// This node's login throttle (one per running server, held by its `Site`).
pub struct Throttle {
    settings: ThrottleSettings,
    state: Mutex<State>,
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Throttle {
    pub fn new(settings: ThrottleSettings) -> Throttle {
        Throttle {
            settings,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn forget(&self) -> Duration {
        Duration::from_secs(self.settings.forget_minutes * 60)
    }

    /// Counts an attempt of `account` from `ip` and says whether to check it. Every
    /// `Check` must be followed by [`Throttle::failed`] or [`Throttle::succeeded`], and
    /// then by [`Throttle::settle`].
    ///
    /// Attempts being checked count against the failures a source has left, so that
    /// 400 guesses sent at once get no more checks than 10 sent one by one; what is
    /// over waits ([`Verdict::Busy`]) rather than being refused, since many users
    /// behind one address (an office's NAT at nine in the morning) log in at once too.
    pub fn begin(&self, ip: IpAddr, account: &str) -> Verdict {
        let source = source_of(ip);
        let now = Instant::now();
        let forget = self.forget();
        let mut state = self.state();
        let unix = unix_now();
        match state.blocks.get(&source) {
            Some(held) if held.block.until > unix => {
                return Verdict::Blocked {
                    until: held.block.until,
                };
            }
            Some(_) => {
                // The block ran out: the source starts afresh.
                state.blocks.remove(&source);
                state.sources.remove(&source);
            }
            None => {}
        }
        let block_after = self.settings.block_after;
        let count = state.sources.entry(source.clone()).or_insert(Count {
            failures: 0,
            pending: 0,
            last: now,
        });
        if now.duration_since(count.last) > forget {
            count.failures = 0;
        }
        if count.failures >= block_after {
            // The failure that reached the count started the block, or will have by
            // the time this is answered.
            return Verdict::Blocked {
                until: unix + self.settings.block_minutes as i64 * 60,
            };
        }
        if count.failures + count.pending >= block_after {
            return Verdict::Busy;
        }
        count.pending += 1;
        count.last = now;
        let hot = state.accounts.get(account).is_some_and(|a| {
            now.duration_since(a.last) <= forget
                && a.failures >= self.settings.account_slowdown_after
        });
        let stranger = !state.known.contains(&(account.to_string(), source.clone()));
        let wait = if hot && stranger {
            Duration::from_millis(self.settings.max_delay_ms)
        } else {
            Duration::ZERO
        };
        Verdict::Check { wait }
    }

    /// Records that the attempt `begin` let through had a wrong name or password.
    pub fn failed(&self, ip: IpAddr, account: &str) -> Failure {
        let source = source_of(ip);
        let now = Instant::now();
        let forget = self.forget();
        let mut state = self.state();
        prune(&mut state, now, forget);
        let account_count = state.accounts.entry(account.to_string()).or_insert(Count {
            failures: 0,
            pending: 0,
            last: now,
        });
        if now.duration_since(account_count.last) > forget {
            account_count.failures = 0;
        }
        account_count.failures = account_count.failures.saturating_add(1);
        account_count.last = now;
        let source_count = state.sources.entry(source.clone()).or_insert(Count {
            failures: 0,
            pending: 0,
            last: now,
        });
        if now.duration_since(source_count.last) > forget {
            source_count.failures = 0;
        }
        source_count.failures = source_count.failures.saturating_add(1);
        source_count.last = now;
        let failures = source_count.failures;
        let doubling = (failures - 1).min(16);
        let delay =
            Duration::from_millis(self.settings.first_delay_ms.saturating_mul(1 << doubling)).min(
                Duration::from_millis(self.settings.max_delay_ms.max(self.settings.first_delay_ms)),
            );
        let mut block = None;
        if failures >= self.settings.block_after && !state.blocks.contains_key(&source) {
            let since = unix_now();
            let started = LoginBlock {
                source: source.clone(),
                account: account.to_string(),
                reason: REASON.to_string(),
                failures: i64::from(failures),
                since,
                until: since + self.settings.block_minutes as i64 * 60,
            };
            state.blocks.insert(
                source,
                Held {
                    block: started.clone(),
                    generation: None,
                },
            );
            block = Some(started);
        }
        Failure { delay, block }
    }

    /// Records a successful login: its source's count is cleared and the source is
    /// known to the account from now on.
    pub fn succeeded(&self, ip: IpAddr, account: &str) {
        let source = source_of(ip);
        let mut state = self.state();
        if let Some(count) = state.sources.get_mut(&source) {
            count.failures = 0;
        }
        if state.known.len() >= MOST_REMEMBERED {
            state.known.clear();
        }
        state.known.insert((account.to_string(), source));
    }

    /// Ends an attempt [`Throttle::begin`] let through, however it ended (failed,
    /// succeeded, or abandoned when its client went away mid-check).
    pub fn settle(&self, ip: IpAddr) {
        let source = source_of(ip);
        let mut state = self.state();
        if let Some(count) = state.sources.get_mut(&source) {
            count.pending = count.pending.saturating_sub(1);
            if count.pending == 0 && count.failures == 0 {
                state.sources.remove(&source);
            }
        }
    }

    /// Notes that the block of `source` is in the directory as of `generation`.
    pub fn recorded(&self, source: &str, generation: i64) {
        if let Some(held) = self.state().blocks.get_mut(source) {
            held.generation = Some(generation);
        }
    }

    /// Takes the directory's blocks, read at `generation` or later: blocks this node
    /// held that the directory no longer has were lifted (their source's and
    /// account's failures are forgotten too); blocks this node started and has not
    /// recorded yet stay.
    pub fn apply(&self, blocks: Vec<LoginBlock>, generation: i64) {
        let mut state = self.state();
        let listed: HashSet<String> = blocks.iter().map(|b| b.source.clone()).collect();
        let lifted: Vec<LoginBlock> = state
            .blocks
            .values()
            .filter(|h| !listed.contains(&h.block.source))
            .filter(|h| h.generation.is_some_and(|g| g <= generation))
            .map(|h| h.block.clone())
            .collect();
        for block in lifted {
            state.blocks.remove(&block.source);
            state.sources.remove(&block.source);
            state.accounts.remove(&block.account);
        }
        for block in blocks {
            let source = block.source.clone();
            state.blocks.insert(
                source,
                Held {
                    block,
                    generation: Some(generation),
                },
            );
        }
    }

    /// The blocks this node holds now, oldest first.
    pub fn blocks(&self) -> Vec<LoginBlock> {
        let unix = unix_now();
        let mut all: Vec<LoginBlock> = self
            .state()
            .blocks
            .values()
            .map(|h| h.block.clone())
            .filter(|b| b.until > unix)
            .collect();
        all.sort_by(|a, b| (a.since, &a.source).cmp(&(b.since, &b.source)));
        all
    }
}

/// Drops stale counts once the maps grow large, so that a flood of sources or made-up
/// account names cannot grow this node's memory without bound.
fn prune(state: &mut State, now: Instant, forget: Duration) {
    for map in [&mut state.sources, &mut state.accounts] {
        if map.len() >= MOST_REMEMBERED {
            map.retain(|_, c| c.pending > 0 || now.duration_since(c.last) <= forget);
        }
        if map.len() >= MOST_REMEMBERED {
            map.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ThrottleSettings {
        ThrottleSettings {
            block_after: 10,
            block_minutes: 15,
            first_delay_ms: 100,
            max_delay_ms: 1_000,
            forget_minutes: 15,
            account_slowdown_after: 5,
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// One failed attempt, as a login makes it; returns its failure.
    fn fail(t: &Throttle, from: &str, account: &str) -> Failure {
        assert!(
            matches!(t.begin(ip(from), account), Verdict::Check { .. }),
            "checked"
        );
        let failure = t.failed(ip(from), account);
        t.settle(ip(from));
        failure
    }

    #[test]
    fn sources_are_addresses_and_ipv6_networks() {
        assert_eq!(source_of(ip("192.0.2.7")), "192.0.2.7");
        assert_eq!(source_of(ip("::ffff:192.0.2.7")), "192.0.2.7");
        assert_eq!(
            source_of(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            source_of(ip("2001:db8:1:2::1")),
            source_of(ip("2001:db8:1:2:ffff::9"))
        );
    }

    #[test]
    fn delays_grow_then_the_tenth_failure_blocks_the_source() {
        let t = Throttle::new(settings());
        let mut delays = Vec::new();
        for n in 1..=10 {
            let failure = fail(&t, "127.0.0.66", &format!("user{n}"));
            delays.push(failure.delay.as_millis());
            assert_eq!(failure.block.is_some(), n == 10, "failure {n}");
        }
        assert_eq!(
            delays,
            [100, 200, 400, 800, 1000, 1000, 1000, 1000, 1000, 1000]
        );
        let Verdict::Blocked { until } = t.begin(ip("127.0.0.66"), "user1") else {
            panic!("blocked");
        };
        assert!(until >= unix_now() + 14 * 60);
        let blocks = t.blocks();
        assert_eq!(blocks.len(), 1);
        assert_eq!(
            (blocks[0].source.as_str(), blocks[0].account.as_str()),
            ("127.0.0.66", "user10")
        );
        assert_eq!(blocks[0].failures, 10);
        // Another host is not affected.
        assert_eq!(
            t.begin(ip("127.0.0.67"), "user1"),
            Verdict::Check {
                wait: Duration::ZERO
            }
        );
    }

    #[test]
    fn parallel_attempts_are_counted_before_their_check() {
        let t = Throttle::new(settings());
        let verdicts: Vec<Verdict> = (0..40).map(|_| t.begin(ip("127.0.0.66"), "op")).collect();
        let checked = verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::Check { .. }))
            .count();
        assert_eq!(checked, 10, "only block_after of 40 parallel guesses");
        assert!(
            verdicts[10..].iter().all(|v| *v == Verdict::Busy),
            "the others wait: {verdicts:?}"
        );
        // Once the ten have failed, the waiting ones are refused unchecked.
        for _ in 0..10 {
            t.failed(ip("127.0.0.66"), "op");
            t.settle(ip("127.0.0.66"));
        }
        assert!(matches!(
            t.begin(ip("127.0.0.66"), "op"),
            Verdict::Blocked { .. }
        ));
    }

    #[test]
    fn many_users_behind_one_address_all_log_in() {
        // Forty people of one office log in at once: ten are checked at a time, the
        // rest wait for a turn, and nobody is refused.
        let t = Throttle::new(settings());
        let mut waiting = 40;
        let mut checking = 0;
        let mut rounds = 0;
        while waiting > 0 || checking > 0 {
            rounds += 1;
            assert!(rounds < 100, "stuck");
            while waiting > 0 {
                match t.begin(ip("127.0.0.66"), &format!("user{waiting}")) {
                    Verdict::Check { .. } => {
                        waiting -= 1;
                        checking += 1;
                    }
                    Verdict::Busy => break,
                    Verdict::Blocked { .. } => panic!("an office was blocked"),
                }
            }
            assert!(checking <= 10);
            t.succeeded(ip("127.0.0.66"), &format!("user{checking}"));
            t.settle(ip("127.0.0.66"));
            checking -= 1;
        }
    }

    #[test]
    fn a_success_clears_the_source_count() {
        let t = Throttle::new(settings());
        for _ in 0..9 {
            fail(&t, "127.0.0.66", "alice");
        }
        assert!(matches!(
            t.begin(ip("127.0.0.66"), "alice"),
            Verdict::Check { .. }
        ));
        t.succeeded(ip("127.0.0.66"), "alice");
        for _ in 0..9 {
            assert!(fail(&t, "127.0.0.66", "alice").block.is_none());
        }
    }

    #[test]
    fn a_guessed_account_slows_strangers_only_and_never_blocks_its_owner() {
        let t = Throttle::new(settings());
        // The owner logged in from home before.
        assert!(matches!(
            t.begin(ip("127.0.0.5"), "alice"),
            Verdict::Check { .. }
        ));
        t.succeeded(ip("127.0.0.5"), "alice");
        // Guessers from many hosts, each below the source limit.
        for host in 100..110 {
            fail(&t, &format!("127.0.0.{host}"), "alice");
        }
        assert_eq!(
            t.begin(ip("127.0.0.200"), "alice"),
            Verdict::Check {
                wait: Duration::from_millis(1_000)
            },
            "a new source waits"
        );
        t.failed(ip("127.0.0.200"), "alice");
        assert_eq!(
            t.begin(ip("127.0.0.5"), "alice"),
            Verdict::Check {
                wait: Duration::ZERO
            },
            "the owner's usual source does not"
        );
        t.succeeded(ip("127.0.0.5"), "alice");
        assert!(t.blocks().is_empty(), "no account is ever blocked");
    }

    #[test]
    fn blocks_lifted_in_the_directory_are_lifted_here() {
        let t = Throttle::new(settings());
        let mut started = None;
        for _ in 0..10 {
            started = fail(&t, "127.0.0.66", "alice").block.or(started);
        }
        let started = started.expect("a block");
        // A refresh read before the block was recorded keeps it.
        t.apply(Vec::new(), 5);
        assert!(matches!(
            t.begin(ip("127.0.0.66"), "x"),
            Verdict::Blocked { .. }
        ));
        t.recorded("127.0.0.66", 7);
        t.apply(vec![started.clone()], 7);
        assert!(matches!(
            t.begin(ip("127.0.0.66"), "x"),
            Verdict::Blocked { .. }
        ));
        // Another node's block arrives; then both are removed.
        let other = LoginBlock {
            source: "127.0.0.77".into(),
            ..started.clone()
        };
        t.apply(vec![started, other], 8);
        assert!(matches!(
            t.begin(ip("127.0.0.77"), "x"),
            Verdict::Blocked { .. }
        ));
        t.apply(Vec::new(), 9);
        assert!(t.blocks().is_empty());
        assert!(matches!(
            t.begin(ip("127.0.0.66"), "alice"),
            Verdict::Check { .. }
        ));
        assert!(matches!(
            t.begin(ip("127.0.0.77"), "alice"),
            Verdict::Check { .. }
        ));
    }

    #[test]
    fn an_expired_block_lets_the_source_try_again() {
        let t = Throttle::new(settings());
        let past = LoginBlock {
            source: "127.0.0.66".into(),
            account: "alice".into(),
            reason: REASON.into(),
            failures: 10,
            since: unix_now() - 3600,
            until: unix_now() - 1,
        };
        t.apply(vec![past], 1);
        assert!(matches!(
            t.begin(ip("127.0.0.66"), "alice"),
            Verdict::Check { .. }
        ));
    }
}
