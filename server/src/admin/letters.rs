//! Letter moves: making a mailbox server the home of a letter (rebalancing, which
//! plans several moves, is in `rebalance`).
//!
//! A move between servers that share storage is a directory change: every node's DNS,
//! autoconfig and deliveries follow within a poll. Between servers that keep mail
//! apart it is a migration: the letter's mail is mirrored to the new server while the
//! old one still serves it, the letter flips, then what arrived meanwhile is copied
//! (UIDVALIDITY, UIDs and flags stay, since the index is shared). A move never flips a
//! letter away from its mail: without the caller's consent to migrate, a move across
//! storage is refused.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mailsite_shared::config::BUCKETS;
use mailsite_shared::route::{alias_label, bucket_name};
use mailsite_shared::{ServerState, SiteMap};

use super::{Admin, Result, refused};
use crate::directory::DirectoryError;
use crate::mailbox::store::Store;
use crate::mailbox::store::migrate::{Copied, Pass, users_of_bucket};

/// A letter that changes server between two views of the site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LetterChange {
    pub bucket: usize,
    /// `a`..`z` or `other`.
    pub letter: String,
    /// `mail<letter>.<domain>`.
    pub alias: String,
    pub from: String,
    pub to: String,
}

/// The letters served by another server in `after` than in `before`.
pub fn letter_changes(before: &SiteMap, after: &SiteMap) -> Vec<LetterChange> {
    (0..BUCKETS)
        .filter(|&b| before.owner(b).name != after.owner(b).name)
        .map(|b| LetterChange {
            bucket: b,
            letter: bucket_name(b),
            alias: format!("{}.{}", alias_label(b), after.config.domain),
            from: before.owner(b).name.clone(),
            to: after.owner(b).name.clone(),
        })
        .collect()
}

/// What happens to a letter's mail when its home changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// Both servers read the same storage: nothing to copy.
    Shared(PathBuf),
    /// The servers keep mail apart: the mail must be copied around the move.
    Separate { from: PathBuf, to: PathBuf },
}

/// What a long move reports as it goes.
#[derive(Debug, Clone)]
pub enum Progress<'a> {
    /// A migration starts: `users` users' mail is copied while `from` serves them.
    Copying {
        letter: &'a str,
        users: usize,
        from: &'a str,
        from_root: &'a std::path::Path,
        to: &'a str,
        to_root: &'a std::path::Path,
    },
    /// One user's mail was mirrored (reported when something was copied, and last).
    UserCopied {
        index: usize,
        total: usize,
        user: &'a str,
        copied: Copied,
        so_far: usize,
    },
    /// The mirror pass is done.
    Mirrored(Copied),
    /// The letter now belongs to the new server; what arrived meanwhile is copied next.
    Flipped {
        letter: &'a str,
        from: &'a str,
        to: &'a str,
    },
    /// The catch-up passes are done.
    CaughtUp { copied: Copied, elapsed: Duration },
    /// A rebalance will make these moves (reported before the first).
    Planned(&'a super::rebalance::Plan),
    /// A rebalance moved one letter.
    Moved(&'a LetterChange),
}

/// What a letter move did.
#[derive(Debug)]
pub struct LetterMove {
    pub bucket: usize,
    pub letter: String,
    /// The new home.
    pub server: String,
    /// The letter's home before the move.
    pub from: String,
    pub storage: Storage,
    /// What a migration copied: before the flip, and what arrived meanwhile after it.
    pub copied: Option<(Copied, Copied)>,
    pub before: SiteMap,
    pub after: SiteMap,
}

impl LetterMove {
    /// The letters served elsewhere after the move (the moved one, unless its new
    /// home is not up).
    pub fn changes(&self) -> Vec<LetterChange> {
        letter_changes(&self.before, &self.after)
    }

    /// The new home's state when it is not the one serving the letter (not up).
    pub fn waiting_for(&self) -> Option<ServerState> {
        (self.after.owner(self.bucket).name != self.server)
            .then(|| self.after.mailbox_state(&self.server).unwrap_or_default())
    }
}

impl Admin {
    /// Makes `to` the home of a letter. When the two servers keep mail apart, the mail
    /// is migrated around the move if `migrate`, and the move is refused otherwise.
    pub async fn move_letter(
        &self,
        bucket: usize,
        to: &str,
        migrate: bool,
        progress: &(dyn Fn(Progress<'_>) + Sync),
    ) -> Result<LetterMove> {
        if bucket >= BUCKETS {
            return Err(refused(format!("there is no letter number {bucket}")));
        }
        let before = self.site_map().await?;
        let to = to.trim().to_ascii_lowercase();
        if before.config.mailbox_index(&to).is_none() {
            return Err(DirectoryError::NoServer(to).into());
        }
        let from = before.home(bucket).name.clone();
        let storage = storage_between(&before, &from, &to);
        let letter = bucket_name(bucket);
        let copied = match &storage {
            Storage::Separate {
                from: from_root,
                to: to_root,
            } if !migrate => {
                return Err(refused(format!(
                    "{to} keeps mail in {} and {from} in {}: add --migrate to copy letter {letter}'s mail there around the move",
                    to_root.display(),
                    from_root.display(),
                )));
            }
            Storage::Separate { .. } => Some(
                self.migrate_letter(&before, bucket, &from, &to, progress)
                    .await?,
            ),
            Storage::Shared(_) => {
                self.directory
                    .move_letter(&before.config, bucket, &to)
                    .await?;
                None
            }
        };
        let after = self.site_map().await?;
        Ok(LetterMove {
            bucket,
            letter,
            server: to,
            from,
            storage,
            copied,
            before,
            after,
        })
    }

    /// A mirror pass while `from` still serves the letter, the move, then catch-up
    /// passes until one finds nothing new after the running nodes had time to follow
    /// the move (what `from` delivered just before it stopped).
    async fn migrate_letter(
        &self,
        map: &SiteMap,
        bucket: usize,
        from: &str,
        to: &str,
        progress: &(dyn Fn(Progress<'_>) + Sync),
    ) -> Result<(Copied, Copied)> {
        let started = Instant::now();
        let config = &map.config;
        let source = Store::new(config.mail_root(from), self.directory.pool().clone());
        let target = source.beside(config.mail_root(to));
        let users = users_of_bucket(
            self.directory
                .users()
                .await?
                .into_iter()
                .map(|u| u.username),
            bucket,
        );
        let letter = bucket_name(bucket);
        progress(Progress::Copying {
            letter: &letter,
            users: users.len(),
            from,
            from_root: source.root(),
            to,
            to_root: target.root(),
        });
        let pass = |pass: Pass| {
            let (source, target, users) = (&source, &target, &users);
            async move {
                let mut total = Copied::default();
                for (i, user) in users.iter().enumerate() {
                    let copied = source
                        .copy_user_to(target, user, pass)
                        .await
                        .map_err(|e| refused(format!("cannot copy {user}'s mail to {to}: {e}")))?;
                    total += copied;
                    if pass == Pass::Mirror && (copied.messages > 0 || i + 1 == users.len()) {
                        progress(Progress::UserCopied {
                            index: i,
                            total: users.len(),
                            user,
                            copied,
                            so_far: total.messages,
                        });
                    }
                }
                Ok::<_, super::AdminError>(total)
            }
        };
        let first = pass(Pass::Mirror).await?;
        progress(Progress::Mirrored(first));
        self.directory.move_letter(config, bucket, to).await?;
        let flipped = Instant::now();
        progress(Progress::Flipped {
            letter: &letter,
            from,
            to,
        });
        // The nodes look at the directory every poll; a delivery or APPEND that passed
        // its ownership check on `from` just before may take a moment more to finish.
        let settle = crate::state::POLL_INTERVAL * 10;
        let mut after = Copied::default();
        for _ in 0..60 {
            tokio::time::sleep(crate::state::POLL_INTERVAL).await;
            let copied = pass(Pass::CatchUp).await?;
            after += copied;
            if copied.messages == 0 && flipped.elapsed() >= settle {
                break;
            }
        }
        progress(Progress::CaughtUp {
            copied: after,
            elapsed: started.elapsed(),
        });
        Ok((first, after))
    }
}

/// What happens to mail when a letter's home changes from `from` to `to`.
pub fn storage_between(map: &SiteMap, from: &str, to: &str) -> Storage {
    let (from_root, to_root) = (map.config.mail_root(from), map.config.mail_root(to));
    if from_root == to_root {
        Storage::Shared(to_root)
    } else {
        Storage::Separate {
            from: from_root,
            to: to_root,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use mailsite_shared::SiteConfig;

    use super::*;

    #[test]
    fn changes_name_each_letter_that_moves() {
        let map = SiteMap::initial(Arc::new(SiteConfig::embedded()));
        let states = HashMap::from([("mailbox1".to_string(), ServerState::Maintenance)]);
        let drained = SiteMap::new(map.config.clone(), &[], &states, 2);
        let changes = letter_changes(&map, &drained);
        assert_eq!(changes.len(), 14);
        assert_eq!(changes[0].alias, "maila.example.test");
        assert!(
            changes
                .iter()
                .all(|c| c.from == "mailbox1" && c.to == "mailbox2")
        );
    }
}
