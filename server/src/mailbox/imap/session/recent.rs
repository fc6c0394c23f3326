//! \Recent in a session (RFC 3501 2.3.2): the UIDs this session claimed as recent (see
//! the store's `claim_recent`) when it selected the mailbox read-write or noticed new
//! mail in it. A session that EXAMINEs claims nothing and sees as recent what nobody
//! has claimed yet.

use std::ops::Range;

use imap_codec::imap_types::flag::FlagFetch;

use super::super::wire;

/// The UIDs recent in one session, as ascending ranges.
#[derive(Debug, Clone, Default)]
pub(super) struct Recent(Vec<Range<u32>>);

impl Recent {
    /// Everything from `uid` up (an EXAMINE's view of what nobody claimed).
    pub fn from(uid: u32) -> Recent {
        let mut recent = Recent::default();
        recent.add(uid..u32::MAX);
        recent
    }

    pub fn add(&mut self, claimed: Range<u32>) {
        if claimed.is_empty() {
            return;
        }
        match self.0.last_mut() {
            Some(last) if last.end == claimed.start => last.end = claimed.end,
            _ => self.0.push(claimed),
        }
    }

    pub fn contains(&self, uid: u32) -> bool {
        self.0.iter().any(|r| r.contains(&uid))
    }

    /// How many of `uids` (ascending) are recent.
    pub fn count(&self, uids: &[u32]) -> u32 {
        self.0
            .iter()
            .map(|r| {
                let lo = uids.partition_point(|&u| u < r.start);
                let hi = uids.partition_point(|&u| u < r.end);
                (hi - lo) as u32
            })
            .sum()
    }

    /// FETCH FLAGS of a message: its flags, and `\Recent` if it is recent here.
    pub fn flags(&self, uid: u32, flags: &[String]) -> Vec<FlagFetch<'static>> {
        let mut out = wire::fetch_flags(flags);
        if self.contains(uid) {
            out.push(FlagFetch::Recent);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_count_and_flag() {
        let mut r = Recent::default();
        r.add(3..5);
        r.add(5..7);
        r.add(9..10);
        r.add(12..12);
        assert_eq!(r.0, vec![3..7, 9..10]);
        assert_eq!(r.count(&[1, 3, 4, 6, 7, 9, 11]), 4);
        assert!(r.contains(6) && !r.contains(7));
        assert!(r.flags(9, &[]).contains(&FlagFetch::Recent));
        assert!(!r.flags(8, &["\\Seen".into()]).contains(&FlagFetch::Recent));
        assert_eq!(Recent::from(5).count(&[1, 4, 5, 100]), 2);
    }
}
