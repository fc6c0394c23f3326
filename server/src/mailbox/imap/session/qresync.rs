//! QRESYNC (RFC 7162 3.2): a client that comes back to a mailbox with the UIDVALIDITY
//! and HIGHESTMODSEQ it last saw is told, in the SELECT itself, which of its messages
//! vanished meanwhile (`VANISHED (EARLIER)`, from the store's record of every expunge)
//! and which changed (FETCH with UID, FLAGS and MODSEQ); `UID FETCH ... (CHANGEDSINCE n
//! VANISHED)` asks the same for a UID range. Once a client enabled it, every expunge
//! it hears of comes as `VANISHED` with UIDs instead of EXPUNGE, and a SELECT that
//! closes a mailbox says so with `[CLOSED]`.

use std::num::{NonZeroU32, NonZeroU64};

use imap_codec::imap_types::core::{Tag, Vec1};
use imap_codec::imap_types::fetch::MessageDataItem;
use imap_codec::imap_types::response::{Data, Response};
use imap_codec::imap_types::sequence::SequenceSet;

use super::super::wire;
use super::Session;
use super::recent::Recent;
use super::responses::{bad, data, store_no};
use crate::mailbox::store::{MailboxInfo, MessageInfo, Result};

/// What a client knew of a mailbox: SELECT's `(QRESYNC (uidvalidity modseq
/// [known-uids]))`.
pub(super) struct Resync {
    pub uidvalidity: u32,
    pub modseq: u64,
    pub known: Option<SequenceSet>,
}

/// `* VANISHED [(EARLIER)] uids`, or nothing for no UIDs.
pub(super) fn vanished(uids: &[u32], earlier: bool) -> Option<Response<'static>> {
    let known_uids = wire::sequence_set(uids)?;
    Some(data(Data::Vanished {
        earlier,
        known_uids,
    }))
}

impl Session {
    /// `UID FETCH set (CHANGEDSINCE n VANISHED)`: the UIDs of `set` expunged since n,
    /// told before the FETCH responses.
    pub(super) async fn vanished_in(
        &self,
        tag: &Tag<'static>,
        user: &str,
        set: &SequenceSet,
        since: u64,
    ) -> std::result::Result<Vec<Response<'static>>, Vec<Response<'static>>> {
        let Some(selected) = self.selected.as_ref() else {
            return Err(vec![bad(tag, "Select a mailbox first")]);
        };
        let uidnext = match self.store.mailbox(user, &selected.name).await {
            Ok(info) => info.uidnext,
            Err(e) => return Err(vec![store_no(tag, e)]),
        };
        match self
            .vanished_earlier(user, &selected.name, since, Some(set), uidnext)
            .await
        {
            Ok(found) => Ok(found.into_iter().collect()),
            Err(e) => Err(vec![store_no(tag, e)]),
        }
    }

    /// The UIDs in `set` (`*` being the highest UID the mailbox gave) expunged after
    /// MODSEQ `since`, as `VANISHED (EARLIER)`.
    pub(super) async fn vanished_earlier(
        &self,
        user: &str,
        name: &str,
        since: u64,
        set: Option<&SequenceSet>,
        uidnext: u32,
    ) -> Result<Option<Response<'static>>> {
        let largest = uidnext.saturating_sub(1);
        let gone: Vec<u32> = self
            .store
            .vanished_since(user, name, since)
            .await?
            .into_iter()
            .filter(|&uid| set.is_none_or(|set| wire::in_set(set, uid, largest)))
            .collect();
        Ok(vanished(&gone, true))
    }

    /// What a SELECT with QRESYNC adds before its tagged OK: what vanished and what
    /// changed since the client's MODSEQ, if the mailbox is still the one it knew.
    pub(super) async fn resync(
        &self,
        user: &str,
        name: &str,
        resync: &Resync,
        info: &MailboxInfo,
        messages: &[MessageInfo],
        recent: &Recent,
    ) -> Result<Vec<Response<'static>>> {
        let (uidvalidity, uidnext) = (info.uidvalidity, info.uidnext);
        if resync.uidvalidity != uidvalidity {
            return Ok(Vec::new());
        }
        let mut out: Vec<Response<'static>> = self
            .vanished_earlier(user, name, resync.modseq, resync.known.as_ref(), uidnext)
            .await?
            .into_iter()
            .collect();
        let largest = uidnext.saturating_sub(1);
        for (i, m) in messages.iter().enumerate() {
            if m.modseq <= resync.modseq
                || resync
                    .known
                    .as_ref()
                    .is_some_and(|set| !wire::in_set(set, m.uid, largest))
            {
                continue;
            }
            let (Some(seq), Some(uid), Some(modseq)) = (
                NonZeroU32::new(i as u32 + 1),
                NonZeroU32::new(m.uid),
                NonZeroU64::new(m.modseq),
            ) else {
                continue;
            };
            let items = vec![
                MessageDataItem::Uid(uid),
                MessageDataItem::Flags(recent.flags(m.uid, &m.flags)),
                MessageDataItem::ModSeq(modseq),
            ];
            if let Ok(items) = Vec1::try_from(items) {
                out.push(data(Data::Fetch { seq, items }));
            }
        }
        Ok(out)
    }
}
