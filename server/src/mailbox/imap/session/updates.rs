//! What changed in the selected mailbox since the session last looked, told to the
//! client: NOOP and CHECK, the responses IDLE sends as changes happen, and the
//! refresh that other commands end with. Other sessions and deliveries change a
//! mailbox at any time; a client only learns of it here.

use std::collections::HashSet;
use std::num::NonZeroU32;

use imap_codec::imap_types::core::{Tag, Vec1};
use imap_codec::imap_types::fetch::MessageDataItem;
use imap_codec::imap_types::flag::{Flag, FlagFetch};
use imap_codec::imap_types::response::{Data, Response};

use super::mailboxes::flags_in_use;
use super::responses::{data, ok};
use super::{Session, expunged};

impl Session {
    /// NOOP and CHECK: report messages that arrived or vanished since the last look.
    pub(super) async fn noop(&mut self, tag: &Tag<'static>, user: &str) -> Vec<Response<'static>> {
        let mut out = self.refresh(user).await;
        out.push(ok(tag, "NOOP completed"));
        out
    }

    /// A receiver that changes when this user's mail changes (for IDLE).
    pub fn watch(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.user.as_ref().map(|user| self.store.watch(user))
    }

    /// What changed in the selected mailbox since the session last looked, as untagged
    /// responses (for IDLE).
    pub async fn updates(&mut self) -> Vec<Response<'static>> {
        let out = match self.user.clone() {
            Some(user) => self.refresh(&user).await,
            None => Vec::new(),
        };
        self.announce_keywords(out)
    }

    /// Puts an untagged FLAGS (and PERMANENTFLAGS) before the first response that shows
    /// the selected mailbox's client a keyword it was not told of (RFC 3501 7.2.6: the
    /// FLAGS response lists every flag in use).
    pub(super) fn announce_keywords(
        &mut self,
        mut out: Vec<Response<'static>>,
    ) -> Vec<Response<'static>> {
        let Some(selected) = self.selected.as_mut() else {
            return out;
        };
        let mut first = None;
        for (i, response) in out.iter().enumerate() {
            let Response::Data(Data::Fetch { items, .. }) = response else {
                continue;
            };
            for item in items.as_ref() {
                let MessageDataItem::Flags(flags) = item else {
                    continue;
                };
                for flag in flags {
                    // Known keywords (the common case) cost a lookup, no allocation.
                    if let FlagFetch::Flag(Flag::Keyword(keyword)) = flag
                        && !selected.keywords.contains(keyword.as_ref())
                        && selected.keywords.insert(keyword.as_ref().to_string())
                    {
                        first.get_or_insert(i);
                    }
                }
            }
        }
        if let Some(at) = first {
            let announced = flags_in_use(&selected.keywords, selected.read_only);
            out.splice(at..at, announced);
        }
        out
    }

    /// Reports what other sessions and deliveries changed in the selected mailbox:
    /// EXPUNGE for messages gone, EXISTS for new ones, FETCH FLAGS for flag changes.
    /// Cheap when nothing changed: one look at `new/` and one at HIGHESTMODSEQ.
    pub(super) async fn refresh(&mut self, user: &str) -> Vec<Response<'static>> {
        let condstore = self.condstore;
        let vanished = self.qresync;
        let rev2 = self.rev2;
        let Some(selected) = self.selected.as_mut() else {
            return Vec::new();
        };
        let _ = self.store.sync(user, &selected.name).await;
        let Ok(info) = self.store.mailbox_kept(user, &selected.name).await else {
            return Vec::new();
        };
        if info.highestmodseq == selected.modseq {
            return Vec::new();
        }
        let Ok(changed) = self
            .store
            .changed_since(user, &selected.name, selected.modseq)
            .await
        else {
            return Vec::new();
        };
        let last = selected.uids.last().copied().unwrap_or(0);
        let new: Vec<u32> = changed
            .iter()
            .map(|m| m.uid)
            .filter(|&u| u > last)
            .collect();
        let mut out = Vec::new();
        // Expunges since the session last looked: compare its UIDs with the mailbox's.
        if info.expungedmodseq > selected.modseq
            && let Ok(present) = self.store.uids(user, &selected.name).await
        {
            let present: HashSet<u32> = present.into_iter().collect();
            out.extend(expunged(
                &mut selected.uids,
                |uid| !present.contains(&uid),
                vanished,
            ));
        }
        let before = selected.uids.len();
        selected.uids.extend(&new);
        if selected.uids.len() != before || !out.is_empty() {
            out.push(data(Data::Exists(selected.uids.len() as u32)));
        }
        // New mail is \Recent in the read-write session that notices it first (not in
        // IMAP4rev2, which has no \Recent).
        if !new.is_empty() && !rev2 {
            if !selected.read_only
                && let Ok(claimed) = self.store.claim_recent(user, &selected.name).await
            {
                selected.recent.add(claimed);
            }
            out.push(data(Data::Recent(selected.recent.count(&selected.uids))));
        }
        // Flag changes to messages the session already knew.
        for m in changed.iter().filter(|m| m.uid <= last) {
            if selected.own.contains(&(m.uid, m.modseq)) {
                continue;
            }
            let Ok(i) = selected.uids.binary_search(&m.uid) else {
                continue;
            };
            let (Some(seq), Some(uid)) = (NonZeroU32::new(i as u32 + 1), NonZeroU32::new(m.uid))
            else {
                continue;
            };
            let mut items = vec![
                MessageDataItem::Flags(selected.recent.flags(m.uid, &m.flags)),
                MessageDataItem::Uid(uid),
            ];
            if condstore {
                items.extend(super::condstore::modseq_item(m.modseq));
            }
            if let Ok(items) = Vec1::try_from(items) {
                out.push(data(Data::Fetch { seq, items }));
            }
        }
        selected.modseq = info.highestmodseq;
        selected
            .own
            .retain(|&(_, modseq)| modseq > info.highestmodseq);
        out
    }
}
