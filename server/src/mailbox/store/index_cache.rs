//! Each recently used mailbox's message list, kept in memory and shared by the
//! sessions of a store: a session that finds the mailbox unchanged since the last look
//! reads nothing but its mailbox row, and one that finds it changed reads only the
//! changed rows.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{MailboxInfo, MessageInfo, Result, Store, names};

/// The right to update one mailbox's cached index (see [`Store::messages_shared`]).
pub(super) type Turn = Arc<tokio::sync::Mutex<()>>;

/// A mailbox's messages as read at a HIGHESTMODSEQ: still true while the mailbox's
/// HIGHESTMODSEQ (and UIDVALIDITY and UIDNEXT) are unchanged, since every change to a
/// message row takes a new MODSEQ.
pub(super) struct Cached {
    stamp: (u32, u32, u64),
    messages: Arc<Vec<MessageInfo>>,
}

/// How many mailboxes' indexes are kept in memory.
const CACHED_MAILBOXES: usize = 256;

impl Store {
    /// The messages of a mailbox in UID order.
    pub async fn messages(&self, username: &str, name: &str) -> Result<Vec<MessageInfo>> {
        Ok(self.messages_shared(username, name).await?.as_ref().clone())
    }

    /// The messages of a mailbox in UID order, shared: from memory when nothing changed
    /// since the last look (one query), else updated with the changes, else read anew.
    pub async fn messages_shared(
        &self,
        username: &str,
        name: &str,
    ) -> Result<Arc<Vec<MessageInfo>>> {
        Ok(self.mailbox_shared(username, name).await?.1)
    }

    /// A mailbox's state and its messages as [`Store::messages_shared`] gives them, from
    /// one read of the mailbox's row (SELECT and STATUS want both).
    pub async fn mailbox_shared(
        &self,
        username: &str,
        name: &str,
    ) -> Result<(MailboxInfo, Arc<Vec<MessageInfo>>)> {
        let name = names::canonical(name)?;
        let info = self.mailbox_kept(username, &name).await?;
        let stamp = (info.uidvalidity, info.uidnext, info.highestmodseq);
        let key = (username.to_string(), name.clone());
        let fresh = |cache: &HashMap<(String, String), Cached>| {
            cache
                .get(&key)
                .filter(|c| c.stamp == stamp)
                .map(|c| c.messages.clone())
        };
        if let Some(messages) = fresh(&self.cache.lock().unwrap_or_else(|e| e.into_inner())) {
            return Ok((info, messages));
        }
        // One session brings a mailbox's entry up to date while the others wait for it
        // (with 16 sessions on one busy mailbox, each reading the whole index itself
        // was most of the server's work).
        let turn = {
            let mut updating = self.updating.lock().unwrap_or_else(|e| e.into_inner());
            updating.retain(|_, lock| Arc::strong_count(lock) > 1);
            updating.entry(key.clone()).or_default().clone()
        };
        let _turn = turn.lock().await;
        // A stale entry is taken out, so that updating it copies nothing unless a
        // FETCH still holds it.
        let cached = {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            // Brought up to date (or past this session's look) while it waited.
            if let Some(c) = cache.get(&key)
                && c.stamp.0 == stamp.0
                && c.stamp.1 >= stamp.1
                && c.stamp.2 >= stamp.2
            {
                return Ok((info, c.messages.clone()));
            }
            cache.remove(&key)
        };
        let messages = match cached {
            Some(Cached {
                stamp: old,
                messages,
            }) if old.0 == stamp.0 => {
                let mut merged = Arc::unwrap_or_clone(messages);
                for m in self.changed_since(username, &name, old.2).await? {
                    match merged.binary_search_by_key(&m.uid, |x| x.uid) {
                        Ok(i) => merged[i] = m,
                        Err(i) => merged.insert(i, m),
                    }
                }
                // Expunges leave no row to find (also one that came while this
                // looked): the journal names their UIDs. A count that still disagrees
                // (an expunge the journal does not name) reads it all.
                let now = self.mailbox(username, &name).await?;
                if now.uidvalidity != stamp.0 {
                    self.messages_where(username, &name, "", &[]).await?
                } else if now.expungedmodseq <= old.2 {
                    merged
                } else {
                    let gone: HashSet<u32> = self
                        .vanished_since(username, &name, old.2)
                        .await?
                        .into_iter()
                        .collect();
                    merged.retain(|m| !gone.contains(&m.uid));
                    if self.count(username, &name).await? == merged.len() {
                        merged
                    } else {
                        self.messages_where(username, &name, "", &[]).await?
                    }
                }
            }
            _ => self.messages_where(username, &name, "", &[]).await?,
        };
        let messages = Arc::new(messages);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHED_MAILBOXES && !cache.contains_key(&key) {
            let victim = cache.keys().next().cloned();
            if let Some(victim) = victim {
                cache.remove(&victim);
            }
        }
        cache.insert(
            key,
            Cached {
                stamp,
                messages: messages.clone(),
            },
        );
        Ok((info, messages))
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{msg, store};
    use super::super::{FlagOp, MessageInfo};

    #[tokio::test]
    async fn the_shared_index_follows_changes_and_expunges() {
        let (s, _dir) = store().await;
        s.ensure_user("erin").await.unwrap();
        for n in 1..=4 {
            s.append("erin", "INBOX", msg(n), &[], None).await.unwrap();
        }
        let uids = |m: &[MessageInfo]| m.iter().map(|m| m.uid).collect::<Vec<_>>();
        assert_eq!(
            uids(&s.messages_shared("erin", "INBOX").await.unwrap()),
            [1, 2, 3, 4]
        );
        // A flag change and a new message: brought up to date from the changed rows.
        s.store_flags("erin", "INBOX", &[2], FlagOp::Add, &["\\Seen".into()])
            .await
            .unwrap();
        s.append("erin", "INBOX", msg(5), &[], None).await.unwrap();
        let now = s.messages_shared("erin", "INBOX").await.unwrap();
        assert_eq!(uids(&now), [1, 2, 3, 4, 5]);
        assert_eq!(now[1].flags, ["\\Seen"]);
        // An expunge leaves no row to find: the mailbox says when the last one was.
        let before = s.mailbox("erin", "INBOX").await.unwrap();
        assert_eq!(s.expunge("erin", "INBOX", &[1, 4]).await.unwrap(), 2);
        let after = s.mailbox("erin", "INBOX").await.unwrap();
        assert!(after.expungedmodseq > before.highestmodseq);
        assert_eq!(after.expungedmodseq, after.highestmodseq);
        assert_eq!(
            uids(&s.messages_shared("erin", "INBOX").await.unwrap()),
            [2, 3, 5]
        );
        // Changes after the expunge do not look like another one.
        s.append("erin", "INBOX", msg(6), &[], None).await.unwrap();
        let later = s.mailbox("erin", "INBOX").await.unwrap();
        assert_eq!(later.expungedmodseq, after.expungedmodseq);
        assert_eq!(
            uids(&s.messages_shared("erin", "INBOX").await.unwrap()),
            [2, 3, 5, 6]
        );
    }
}
