//! Rebalancing: moving letters so that every mailbox server that is up carries an even
//! share of the load, weighed by what the letters hold rather than by their count.
//!
//! First letters are far from uniform (many names start with `m` or `s`, few with `q`
//! or `x`), so an even count of letters is an uneven load. Each letter weighs its share
//! of the site's users and of the mail bytes stored, with a little for the letter
//! itself so that an empty site still spreads its letters evenly. The plan moves
//! letters from the heaviest server to the lightest while that narrows the gap by more
//! than 2% of the site's load (a move costs a migration and a DNS change), and stops
//! when no move does, so a second rebalance finds nothing to do. Letters whose home is down or in maintenance go first.
//!
//! The plan, with each server's share before and after, is shown before anything
//! moves: the command line prints it (and stops there with `--dry-run`).

use std::collections::HashMap;

use mailsite_shared::config::BUCKETS;
use mailsite_shared::route::{alias_label, bucket_name, bucket_of};
use mailsite_shared::{ServerState, SiteMap};

use super::letters::{LetterChange, Progress, Storage, storage_between};
use super::{Admin, Result, refused};
use crate::mailbox::store::Store;

/// Weights are in millionths of the site's load.
const WHOLE: u64 = 1_000_000;
/// The part of a letter's weight that is its share of users, of bytes and of letters.
const USERS_PART: u64 = 45;
const BYTES_PART: u64 = 45;
const LETTER_PART: u64 = 10;
/// Servers whose loads differ by no more than this (millionths) are balanced.
const TOLERANCE: u64 = WHOLE / 50;

/// What a letter holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LetterLoad {
    pub users: u64,
    pub bytes: u64,
}

/// One server's part of the site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub server: String,
    pub letters: usize,
    pub users: u64,
    pub bytes: u64,
    /// Its weight, in millionths of the site's load.
    pub weight: u64,
}

impl Share {
    /// The weight as a percentage of the site's load.
    pub fn percent(&self) -> f64 {
        self.weight as f64 * 100.0 / WHOLE as f64
    }
}

/// What a rebalance will do: the moves, and each server's share before and after them
/// (servers that are up; letters on a server that is not up count for no one).
#[derive(Debug, Clone)]
pub struct Plan {
    pub moves: Vec<LetterChange>,
    pub before: Vec<Share>,
    pub after: Vec<Share>,
}

/// What a rebalance did.
#[derive(Debug)]
pub struct Rebalance {
    pub plan: Plan,
    pub after: SiteMap,
}

/// Each letter's weight, in millionths of the site's load.
fn weights(loads: &[LetterLoad; BUCKETS]) -> [u64; BUCKETS] {
    let users: u64 = loads.iter().map(|l| l.users).sum();
    let bytes: u64 = loads.iter().map(|l| l.bytes).sum();
    // A measure the site has none of gives its part to the others.
    let (users_part, bytes_part, letter_part) = match (users, bytes) {
        (0, 0) => (0, 0, 100),
        (0, _) => (0, USERS_PART + BYTES_PART, LETTER_PART),
        (_, 0) => (USERS_PART + BYTES_PART, 0, LETTER_PART),
        _ => (USERS_PART, BYTES_PART, LETTER_PART),
    };
    let share = |part: u64, of: u64, total: u64| {
        if total == 0 {
            0
        } else {
            (WHOLE as u128 * part as u128 * of as u128 / (100 * total as u128)) as u64
        }
    };
    let mut out = [0; BUCKETS];
    for (w, load) in out.iter_mut().zip(loads) {
        *w = share(users_part, load.users, users)
            + share(bytes_part, load.bytes, bytes)
            + share(letter_part, 1, BUCKETS as u64);
    }
    out
}

fn shares(up: &[String], homes: &[String], loads: &[LetterLoad; BUCKETS]) -> Vec<Share> {
    let weights = weights(loads);
    up.iter()
        .map(|server| {
            let mine: Vec<usize> = (0..BUCKETS).filter(|&b| &homes[b] == server).collect();
            Share {
                server: server.clone(),
                letters: mine.len(),
                users: mine.iter().map(|&b| loads[b].users).sum(),
                bytes: mine.iter().map(|&b| loads[b].bytes).sum(),
                weight: mine.iter().map(|&b| weights[b]).sum(),
            }
        })
        .collect()
}

/// The moves that even out the load over the mailbox servers that are up, with the
/// shares before and after.
pub fn plan(map: &SiteMap, loads: &[LetterLoad; BUCKETS]) -> Plan {
    let up: Vec<String> = map
        .config
        .mailboxes
        .iter()
        .filter(|s| map.mailbox_state(&s.name) == Some(ServerState::Up))
        .map(|s| s.name.clone())
        .collect();
    let start: Vec<String> = (0..BUCKETS).map(|b| map.home(b).name.clone()).collect();
    let before = shares(&up, &start, loads);
    if up.is_empty() {
        return Plan {
            moves: Vec::new(),
            after: before.clone(),
            before,
        };
    }
    let weights = weights(loads);
    let mut homes = start.clone();
    let load_of = |homes: &[String], server: &String| -> u64 {
        (0..BUCKETS)
            .filter(|&b| &homes[b] == server)
            .map(|b| weights[b])
            .sum()
    };
    let lightest = |homes: &[String]| {
        up.iter()
            .min_by_key(|s| (load_of(homes, s), *s))
            .cloned()
            .expect("at least one server is up")
    };
    // Letters whose home is not up count for no one: the heaviest goes first, each to
    // the lightest server at that moment.
    let mut stranded: Vec<usize> = (0..BUCKETS).filter(|&b| !up.contains(&homes[b])).collect();
    stranded.sort_by_key(|&b| (std::cmp::Reverse(weights[b]), b));
    for bucket in stranded {
        homes[bucket] = lightest(&homes);
    }
    // Then from the heaviest to the lightest while a letter narrows their gap. Every
    // such move lowers the sum of the squared loads, so this ends; the bound is a
    // second guard.
    for _ in 0..BUCKETS * up.len() {
        let heaviest = up
            .iter()
            .max_by_key(|s| (load_of(&homes, s), std::cmp::Reverse(*s)))
            .cloned()
            .expect("at least one server is up");
        let lightest = lightest(&homes);
        let gap = load_of(&homes, &heaviest) - load_of(&homes, &lightest);
        if gap <= TOLERANCE {
            break;
        }
        // The letter that comes closest to halving the gap, if it narrows the gap by
        // more than the tolerance: a move costs a migration and a DNS change, so
        // letters that weigh next to nothing stay where they are.
        let best = (0..BUCKETS)
            .rev()
            .filter(|&b| homes[b] == heaviest && weights[b] < gap)
            .filter(|&b| gap - (weights[b] * 2).abs_diff(gap) > TOLERANCE)
            .min_by_key(|&b| (weights[b] * 2).abs_diff(gap));
        let Some(bucket) = best else {
            break;
        };
        homes[bucket] = lightest;
    }
    let moves = (0..BUCKETS)
        .filter(|&b| homes[b] != start[b])
        .map(|b| LetterChange {
            bucket: b,
            letter: bucket_name(b),
            alias: format!("{}.{}", alias_label(b), map.config.domain),
            from: start[b].clone(),
            to: homes[b].clone(),
        })
        .collect();
    Plan {
        moves,
        before,
        after: shares(&up, &homes, loads),
    }
}

impl Admin {
    /// What each letter holds now: its users (from the directory) and the bytes of
    /// their mail (from the index).
    pub async fn letter_loads(&self) -> Result<[LetterLoad; BUCKETS]> {
        let mut loads = [LetterLoad::default(); BUCKETS];
        for user in self.directory.users().await? {
            loads[bucket_of(&user.username)].users += 1;
        }
        let bytes: HashMap<String, u64> = Store::for_site(&self.config, &self.directory)
            .bytes_by_user()
            .await?;
        for (username, bytes) in bytes {
            loads[bucket_of(&username)].bytes += bytes;
        }
        Ok(loads)
    }

    /// The rebalance the site needs now, without moving anything.
    pub async fn rebalance_plan(&self) -> Result<Plan> {
        let map = self.site_map().await?;
        Ok(plan(&map, &self.letter_loads().await?))
    }

    /// Moves letters until every mailbox server that is up carries an even share of
    /// the load, each move as [`Admin::move_letter`] makes it. The plan is reported
    /// ([`Progress::Planned`]) before the first move.
    pub async fn rebalance(
        &self,
        migrate: bool,
        progress: &(dyn Fn(Progress<'_>) + Sync),
    ) -> Result<Rebalance> {
        let map = self.site_map().await?;
        let plan = plan(&map, &self.letter_loads().await?);
        // Refuse before moving anything rather than stop half-way.
        if !migrate {
            for change in &plan.moves {
                if let Storage::Separate {
                    from: from_root,
                    to: to_root,
                } = storage_between(&map, &change.from, &change.to)
                {
                    return Err(refused(format!(
                        "{} keeps mail in {} and {} in {}: add --migrate to copy the moved letters' mail",
                        change.to,
                        to_root.display(),
                        change.from,
                        from_root.display()
                    )));
                }
            }
        }
        progress(Progress::Planned(&plan));
        for change in &plan.moves {
            self.move_letter(change.bucket, &change.to, migrate, progress)
                .await?;
            progress(Progress::Moved(change));
        }
        let after = self.site_map().await?;
        Ok(Rebalance { plan, after })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use mailsite_shared::SiteConfig;
    use mailsite_shared::route::letter_bucket;

    use super::*;

    fn count(plan: &Plan) -> HashMap<String, usize> {
        plan.after
            .iter()
            .map(|s| (s.server.clone(), s.letters))
            .collect()
    }

    fn three_servers() -> Arc<SiteConfig> {
        let config = SiteConfig::embedded();
        let added = mailsite_shared::config::Server {
            name: "mailbox3".into(),
            addresses: vec!["127.0.0.13".parse().unwrap()],
            storage: None,
        };
        Arc::new(config.with_added(&[(true, added)]))
    }

    fn applied(map: &SiteMap, plan: &Plan, serial: i64) -> SiteMap {
        let mut overrides: Vec<(usize, String)> = (0..BUCKETS)
            .map(|b| (b, map.home(b).name.clone()))
            .collect();
        for change in &plan.moves {
            overrides[change.bucket].1 = change.to.clone();
        }
        SiteMap::new(map.config.clone(), &overrides, &HashMap::new(), serial)
    }

    #[test]
    fn an_empty_site_gets_an_even_count_of_letters() {
        let map = SiteMap::new(three_servers(), &[], &HashMap::new(), 1);
        let loads = [LetterLoad::default(); BUCKETS];
        let plan = plan(&map, &loads);
        // 14 letters on mailbox1 (a-m and other), 13 on mailbox2, none on mailbox3.
        assert_eq!(plan.moves.len(), 9, "{plan:?}");
        let count = count(&plan);
        assert_eq!(
            (count["mailbox1"], count["mailbox2"], count["mailbox3"]),
            (9, 9, 9)
        );
        assert!(plan.moves.iter().all(|m| m.to == "mailbox3"));
        // Done: the same plan applied leaves nothing to do.
        let after = applied(&map, &plan, 2);
        assert!(super::plan(&after, &loads).moves.is_empty());
    }

    #[test]
    fn busy_letters_count_for_more_than_empty_ones() {
        // Two servers: mailbox1 has a-m and other, mailbox2 n-z. Nearly everyone's name
        // starts with a or m, and they keep nearly all the mail.
        let map = SiteMap::initial(Arc::new(SiteConfig::embedded()));
        let mut loads = [LetterLoad::default(); BUCKETS];
        let m = letter_bucket(b'm').unwrap();
        let s = letter_bucket(b's').unwrap();
        let a = letter_bucket(b'a').unwrap();
        loads[m] = LetterLoad {
            users: 200,
            bytes: 10 << 30,
        };
        loads[a] = LetterLoad {
            users: 300,
            bytes: 10 << 30,
        };
        loads[s] = LetterLoad {
            users: 20,
            bytes: 1 << 30,
        };
        // By count the site is balanced already (14 and 13 letters).
        let plan = plan(&map, &loads);
        assert!(!plan.moves.is_empty(), "{plan:?}");
        let percent = |shares: &[Share], server: &str| {
            shares
                .iter()
                .find(|s| s.server == server)
                .map(Share::percent)
                .unwrap()
        };
        assert!(percent(&plan.before, "mailbox1") > 85.0, "{plan:?}");
        // a and m are each about two fifths of the site: they end up apart.
        let gap = (percent(&plan.after, "mailbox1") - percent(&plan.after, "mailbox2")).abs();
        assert!(gap < 20.0, "{plan:?}");
        let home = |bucket: usize| {
            plan.moves
                .iter()
                .find(|c| c.bucket == bucket)
                .map_or("mailbox1", |c| c.to.as_str())
        };
        assert_ne!(home(a), home(m), "{plan:?}");
        let before: u64 = plan.before.iter().map(|s| s.users).sum();
        let after: u64 = plan.after.iter().map(|s| s.users).sum();
        assert_eq!(before, after);
        // Applied, nothing more to do.
        let done = applied(&map, &plan, 2);
        assert!(super::plan(&done, &loads).moves.is_empty());
    }

    #[test]
    fn letters_of_a_server_in_maintenance_go_to_the_others() {
        let config = three_servers();
        let states = HashMap::from([("mailbox2".to_string(), ServerState::Maintenance)]);
        let map = SiteMap::new(config, &[], &states, 1);
        let mut loads = [LetterLoad::default(); BUCKETS];
        for (b, load) in loads.iter_mut().enumerate() {
            load.users = b as u64 + 1;
        }
        let plan = plan(&map, &loads);
        let count = count(&plan);
        assert_eq!(count.get("mailbox2"), None, "{plan:?}");
        assert_eq!(count["mailbox1"] + count["mailbox3"], BUCKETS);
        assert!(plan.moves.iter().all(|m| m.to != "mailbox2"));
        let weight: u64 = plan.after.iter().map(|s| s.weight).sum();
        assert!(
            weight > WHOLE - 100,
            "every letter counts for someone: {plan:?}"
        );
        let (one, three) = (&plan.after[0], &plan.after[1]);
        assert!(one.weight.abs_diff(three.weight) <= TOLERANCE, "{plan:?}");
    }

    #[test]
    fn an_even_count_on_an_empty_site_is_balanced_already() {
        let map = SiteMap::initial(Arc::new(SiteConfig::embedded()));
        // 14 and 13 already differ by one letter.
        let loads = [LetterLoad::default(); BUCKETS];
        assert!(plan(&map, &loads).moves.is_empty());
    }
}
