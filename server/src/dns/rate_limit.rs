//! Response rate limiting for DNS over UDP, as NSD's and BIND's RRL do it.
//!
//! UDP source addresses can be forged, so an open authoritative server can be made to
//! send its answers to a victim. Each source network (/24 for IPv4, /56 for IPv6, the
//! unit an attacker cannot easily vary) gets a token bucket of `rate` answers per
//! second. Over it, answers are dropped, except every `slip`-th one, which goes out
//! empty with TC=1: a real resolver in that network then asks again over TCP (which
//! cannot be forged) and still gets its answer, while the victim of a forged flood gets
//! a trickle of 12-byte packets.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// What to do with one UDP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Send,
    /// Send an empty answer with TC=1 instead.
    Truncate,
    Drop,
}

/// Above this many networks tracked, the ones with full buckets are forgotten.
const MAX_TRACKED: usize = 16_384;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
    /// Answers limited since the bucket was last full, for the slip count.
    limited: u64,
}

/// The limiter of one DNS role (shared by its receive loops).
#[derive(Debug)]
pub struct RateLimit {
    rate: f64,
    slip: u64,
    buckets: Mutex<HashMap<[u8; 8], Bucket>>,
}

/// The network an address belongs to, for counting: its /24 or /56.
fn network(ip: IpAddr) -> [u8; 8] {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            [4, o[0], o[1], o[2], 0, 0, 0, 0]
        }
        IpAddr::V6(v6) => {
            let o = v6.octets();
            [6, o[0], o[1], o[2], o[3], o[4], o[5], o[6]]
        }
    }
}

impl RateLimit {
    /// `rate` answers per second per network (0: unlimited), every `slip`-th limited
    /// answer truncated (0: none).
    pub fn new(rate: u32, slip: u32) -> Option<RateLimit> {
        (rate > 0).then(|| RateLimit {
            rate: f64::from(rate),
            slip: u64::from(slip),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Takes one answer to `source` from its network's bucket.
    pub fn check(&self, source: IpAddr, now: Instant) -> Verdict {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_TRACKED {
            let rate = self.rate;
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < rate);
        }
        let bucket = buckets.entry(network(source)).or_insert(Bucket {
            tokens: self.rate,
            at: now,
            limited: 0,
        });
        let refill = now.saturating_duration_since(bucket.at).as_secs_f64() * self.rate;
        bucket.tokens = (bucket.tokens + refill).min(self.rate);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            if bucket.tokens + 1.0 >= self.rate {
                bucket.limited = 0;
            }
            return Verdict::Send;
        }
        bucket.limited += 1;
        if self.slip > 0 && bucket.limited.is_multiple_of(self.slip) {
            Verdict::Truncate
        } else {
            Verdict::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_network_over_its_rate_gets_every_second_answer_truncated_and_the_rest_dropped() {
        let limit = RateLimit::new(10, 2).unwrap();
        let now = Instant::now();
        let verdicts: Vec<Verdict> = (0..20).map(|_| limit.check(ip("192.0.2.7"), now)).collect();
        assert!(verdicts[..10].iter().all(|v| *v == Verdict::Send));
        let over = &verdicts[10..];
        assert_eq!(over.iter().filter(|v| **v == Verdict::Truncate).count(), 5);
        assert_eq!(over.iter().filter(|v| **v == Verdict::Drop).count(), 5);
        // Another address of the same /24 shares the bucket; another /24 does not.
        assert_ne!(limit.check(ip("192.0.2.200"), now), Verdict::Send);
        assert_eq!(limit.check(ip("192.0.3.7"), now), Verdict::Send);
        // A tenth of a second later one answer's worth has come back.
        let later = now + Duration::from_millis(100);
        assert_eq!(limit.check(ip("192.0.2.7"), later), Verdict::Send);
        assert_ne!(limit.check(ip("192.0.2.7"), later), Verdict::Send);
    }

    #[test]
    fn ipv6_networks_are_counted_by_their_56() {
        let limit = RateLimit::new(1, 0).unwrap();
        let now = Instant::now();
        assert_eq!(limit.check(ip("2001:db8:0:100::1"), now), Verdict::Send);
        assert_eq!(limit.check(ip("2001:db8:0:1ff::9"), now), Verdict::Drop);
        assert_eq!(limit.check(ip("2001:db8:0:200::1"), now), Verdict::Send);
        // IPv4-mapped addresses count as their IPv4 network.
        assert_eq!(limit.check(ip("::ffff:192.0.2.1"), now), Verdict::Send);
        assert_eq!(limit.check(ip("192.0.2.9"), now), Verdict::Drop);
    }

    #[test]
    fn zero_is_no_limit() {
        assert!(RateLimit::new(0, 2).is_none());
    }
}
