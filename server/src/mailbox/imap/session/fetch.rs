//! FETCH, answered in parts: each part holds at most so many messages or bytes, and
//! the next is made once the last is written, so that a FETCH of a whole large
//! mailbox keeps memory bounded. Only what the items need is read: the index, the
//! headers (in one batch), or whole messages.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;
use std::sync::Arc;

use imap_codec::imap_types::ToStatic;
use imap_codec::imap_types::command::FetchModifier;
use imap_codec::imap_types::core::{Tag, Vec1};
use imap_codec::imap_types::fetch::{
    MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName, Section,
};
use imap_codec::imap_types::response::{Code, Data, Response};
use imap_codec::imap_types::sequence::SequenceSet;

use super::super::binary::{self, UnknownCte};
use super::super::{structure, wire};
use super::responses::{bad, data, ok, status, store_no};
use super::{Session, condstore, find, has};
use crate::mailbox::store::{FlagOp, MessageInfo, StoreError};

/// A FETCH being answered in parts.
pub(super) struct FetchJob {
    tag: Tag<'static>,
    user: String,
    mailbox: String,
    names: Vec<MessageDataItemName<'static>>,
    needs: Needs,
    pairs: VecDeque<(u32, u32)>,
    /// The mailbox's index when the FETCH began.
    infos: Arc<Vec<MessageInfo>>,
    /// Flags this FETCH changed (\Seen) and their MODSEQ, reported with each message.
    new_flags: HashMap<u32, (Vec<String>, u64)>,
    /// What is \Recent in the session.
    recent: super::recent::Recent,
}

/// What of each message's file a FETCH needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Needs {
    /// Nothing: the index has it (FLAGS, UID, INTERNALDATE, RFC822.SIZE).
    Index,
    /// The header (ENVELOPE, RFC822.HEADER, BODY[HEADER], BODY[HEADER.FIELDS ...]).
    Header,
    /// The whole message.
    Whole,
}

/// One part of a FETCH answer holds at most this many messages, or this many bytes
/// of message data (but always one message).
const FETCH_BATCH_MESSAGES: usize = 500;
const FETCH_BATCH_BYTES: usize = 1 << 20;

impl Session {
    /// FETCH with its modifiers: CHANGEDSINCE, and QRESYNC's VANISHED, whose
    /// `VANISHED (EARLIER)` comes before the FETCH responses.
    pub(super) async fn fetch_command(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        (set, items, by_uid): (SequenceSet, MacroOrMessageDataItemNames<'static>, bool),
        modifiers: &[FetchModifier],
    ) -> Vec<Response<'static>> {
        let (since, vanished) = match self.changed_since(tag, modifiers, by_uid) {
            Ok(found) => found,
            Err(refusal) => return refusal,
        };
        let mut out = Vec::new();
        if vanished && let Some(since) = since {
            match self.vanished_in(tag, user, &set, since).await {
                Ok(told) => out = told,
                Err(refusal) => return refusal,
            }
        }
        out.extend(self.fetch(tag, user, &set, items, by_uid, since).await);
        out
    }

    pub(super) async fn fetch(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        set: &SequenceSet,
        items: MacroOrMessageDataItemNames<'static>,
        by_uid: bool,
        changed_since: Option<u64>,
    ) -> Vec<Response<'static>> {
        if self.selected.is_none() {
            return vec![bad(tag, "Select a mailbox first")];
        }
        let mut names: Vec<MessageDataItemName<'static>> = match items {
            MacroOrMessageDataItemNames::Macro(m) => {
                m.expand().iter().map(|n| n.to_static()).collect()
            }
            MacroOrMessageDataItemNames::MessageDataItemNames(names) => names,
        };
        if by_uid && !names.contains(&MessageDataItemName::Uid) {
            names.insert(0, MessageDataItemName::Uid);
        }
        // CHANGEDSINCE answers with MODSEQ; asking for MODSEQ turns CONDSTORE on.
        if changed_since.is_some() && !names.contains(&MessageDataItemName::ModSeq) {
            names.push(MessageDataItemName::ModSeq);
        }
        if names.contains(&MessageDataItemName::ModSeq) {
            self.condstore = true;
        }
        let mut marks_seen = false;
        let mut needs = Needs::Index;
        for name in &names {
            let this = match name {
                MessageDataItemName::Flags
                | MessageDataItemName::Uid
                | MessageDataItemName::InternalDate
                | MessageDataItemName::Rfc822Size
                | MessageDataItemName::ModSeq => Needs::Index,
                MessageDataItemName::Rfc822Header | MessageDataItemName::Envelope => Needs::Header,
                MessageDataItemName::Rfc822 | MessageDataItemName::Rfc822Text => {
                    marks_seen = true;
                    Needs::Whole
                }
                MessageDataItemName::BodyExt { peek, section, .. } => {
                    marks_seen |= !peek;
                    match section {
                        Some(
                            Section::Header(None)
                            | Section::HeaderFields(None, _)
                            | Section::HeaderFieldsNot(None, _),
                        ) => Needs::Header,
                        _ => Needs::Whole,
                    }
                }
                MessageDataItemName::Body | MessageDataItemName::BodyStructure => Needs::Whole,
                // BINARY (RFC 3516).
                MessageDataItemName::Binary { peek, .. } => {
                    marks_seen |= !peek;
                    Needs::Whole
                }
                MessageDataItemName::BinarySize { .. } => Needs::Whole,
            };
            needs = needs.max(this);
        }
        let Some(selected) = self.selected.as_ref() else {
            return vec![bad(tag, "Select a mailbox first")];
        };
        let mut pairs = match wire::resolve(set, &selected.uids, &selected.saved, by_uid) {
            Ok(pairs) => pairs,
            Err(e) => return vec![bad(tag, &e)],
        };
        let mailbox = selected.name.clone();
        let recent = selected.recent.clone();
        let messages = match self.store.messages_shared(user, &mailbox).await {
            Ok(m) => m,
            Err(e) => return vec![store_no(tag, e)],
        };
        if let Some(since) = changed_since {
            pairs.retain(|&(_, uid)| find(&messages, uid).is_some_and(|m| m.modseq > since));
        }
        let mut new_flags = HashMap::new();
        if marks_seen && !selected.read_only {
            let unseen: Vec<u32> = pairs
                .iter()
                .map(|&(_, uid)| uid)
                .filter(|&uid| find(&messages, uid).is_some_and(|m| !has(&m.flags, "\\Seen")))
                .collect();
            if !unseen.is_empty() {
                match self
                    .store
                    .store_flags(
                        user,
                        &mailbox,
                        &unseen,
                        FlagOp::Add,
                        &["\\Seen".to_string()],
                    )
                    .await
                {
                    Ok(changed) => {
                        for (uid, flags, modseq) in changed {
                            new_flags.insert(uid, (flags, modseq));
                            if let Some(selected) = self.selected.as_mut() {
                                selected.own.insert((uid, modseq));
                            }
                        }
                    }
                    Err(e) => return vec![store_no(tag, e)],
                }
            }
        }
        self.pending = Some(FetchJob {
            tag: tag.clone(),
            user: user.to_string(),
            mailbox,
            names,
            needs,
            pairs: pairs.into(),
            infos: messages,
            new_flags,
            recent,
        });
        self.fetch_batch().await
    }

    /// Answers the next messages of the pending FETCH; the tagged OK comes with the last.
    pub(super) async fn fetch_batch(&mut self) -> Vec<Response<'static>> {
        let Some(mut job) = self.pending.take() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        // Headers come in one batch for the messages this part may answer.
        let mut headers: HashMap<u32, Arc<[u8]>> = HashMap::new();
        if job.needs == Needs::Header {
            let infos: Vec<&MessageInfo> = job
                .pairs
                .iter()
                .take(FETCH_BATCH_MESSAGES)
                .filter_map(|&(_, uid)| find(&job.infos, uid))
                .collect();
            match self.store.headers(&job.user, &job.mailbox, &infos).await {
                Ok(read) => headers.extend(
                    infos
                        .iter()
                        .zip(read)
                        .filter_map(|(info, header)| Some((info.uid, header?))),
                ),
                Err(e) => {
                    out.push(store_no(&job.tag, e));
                    return out;
                }
            }
        }
        let (mut count, mut bytes) = (0, 0);
        while count < FETCH_BATCH_MESSAGES && bytes < FETCH_BATCH_BYTES {
            let Some((seq, uid)) = job.pairs.pop_front() else {
                out.push(ok(&job.tag, "FETCH completed"));
                return out;
            };
            let Some(info) = find(&job.infos, uid) else {
                continue;
            };
            let changed = job.new_flags.get(&uid).map(|(flags, modseq)| MessageInfo {
                flags: flags.clone(),
                modseq: *modseq,
                ..info.clone()
            });
            let info = changed.as_ref().unwrap_or(info);
            let whole;
            let body: &[u8] = match job.needs {
                Needs::Index => &[],
                // A header cut short (over 256 KiB without its end) is not used.
                Needs::Header
                    if headers.get(&uid).is_some_and(|h| {
                        h.ends_with(b"\n\n")
                            || h.ends_with(b"\r\n\r\n")
                            || h.len() as u64 == info.size
                    }) =>
                {
                    &headers[&uid]
                }
                Needs::Header | Needs::Whole => {
                    whole = match self.store.read_message(&job.user, &job.mailbox, info).await {
                        Ok(b) => b,
                        Err(StoreError::NoMessage(_)) => continue,
                        Err(e) => {
                            out.push(store_no(&job.tag, e));
                            return out;
                        }
                    };
                    &whole
                }
            };
            count += 1;
            bytes += body.len();
            match fetch_response(seq, uid, info, body, &job) {
                Ok(Some(response)) => out.push(response),
                Ok(None) => {}
                // RFC 3516 4.2: a part this server cannot decode fails the FETCH.
                Err(UnknownCte(encoding)) => {
                    let text = format!(
                        "Message {seq}: BINARY cannot undo the Content-Transfer-Encoding {encoding:?}; fetch it with BODY[] instead"
                    );
                    out.push(status(Some(&job.tag), "NO", Some(Code::UnknownCte), &text));
                    return out;
                }
            }
        }
        self.pending = Some(job);
        out
    }
}

/// One message's FETCH response (`None`: nothing to say of it); `Err` for a BINARY
/// of a part whose transfer encoding is unknown.
fn fetch_response(
    seq: u32,
    uid: u32,
    info: &MessageInfo,
    body: &[u8],
    job: &FetchJob,
) -> Result<Option<Response<'static>>, UnknownCte> {
    let structure = structure::Structure::parse(body);
    let mut items = Vec::new();
    for name in &job.names {
        items.push(match name {
            MessageDataItemName::Flags => {
                MessageDataItem::Flags(job.recent.flags(uid, &info.flags))
            }
            MessageDataItemName::Uid => match NonZeroU32::new(uid) {
                Some(uid) => MessageDataItem::Uid(uid),
                None => continue,
            },
            MessageDataItemName::InternalDate => match wire::internal_date(info.internal_date) {
                Some(date) => MessageDataItem::InternalDate(date),
                None => continue,
            },
            MessageDataItemName::Rfc822Size => {
                MessageDataItem::Rfc822Size(u32::try_from(info.size).unwrap_or(u32::MAX))
            }
            MessageDataItemName::ModSeq => match condstore::modseq_item(info.modseq) {
                Some(item) => item,
                None => continue,
            },
            MessageDataItemName::Rfc822 => MessageDataItem::Rfc822(wire::literal(body)),
            MessageDataItemName::Rfc822Header => {
                MessageDataItem::Rfc822Header(wire::literal(wire::split_message(body).0))
            }
            MessageDataItemName::Rfc822Text => {
                MessageDataItem::Rfc822Text(wire::literal(wire::split_message(body).1))
            }
            MessageDataItemName::Envelope => MessageDataItem::Envelope(structure.envelope()),
            MessageDataItemName::Body => MessageDataItem::Body(structure.body_structure(false)),
            MessageDataItemName::BodyStructure => {
                MessageDataItem::BodyStructure(structure.body_structure(true))
            }
            MessageDataItemName::BodyExt {
                section, partial, ..
            } => {
                let whole = structure.section(section.as_ref());
                let (origin, part) = partial_range(&whole, *partial);
                MessageDataItem::BodyExt {
                    section: section.clone(),
                    origin,
                    data: wire::literal(part),
                }
            }
            MessageDataItemName::Binary {
                section, partial, ..
            } => {
                let whole = binary::section(&structure, section)?;
                let (origin, part) = partial_range(&whole, *partial);
                MessageDataItem::Binary {
                    section: section.clone(),
                    origin,
                    value: wire::literal8(part),
                }
            }
            MessageDataItemName::BinarySize { section } => MessageDataItem::BinarySize {
                section: section.clone(),
                size: u32::try_from(binary::section(&structure, section)?.len())
                    .unwrap_or(u32::MAX),
            },
        });
    }
    if job.new_flags.contains_key(&uid) && !job.names.contains(&MessageDataItemName::Flags) {
        items.push(MessageDataItem::Flags(job.recent.flags(uid, &info.flags)));
    }
    let (Some(seq), Ok(items)) = (NonZeroU32::new(seq), Vec1::try_from(items)) else {
        return Ok(None);
    };
    Ok(Some(data(Data::Fetch { seq, items })))
}

/// The octets `<start.count>` of a section asks for (all of it without), and the
/// origin to answer with.
fn partial_range(whole: &[u8], partial: Option<(u32, NonZeroU32)>) -> (Option<u32>, &[u8]) {
    match partial {
        Some((start, count)) => {
            let start = (start as usize).min(whole.len());
            let end = start.saturating_add(count.get() as usize).min(whole.len());
            (Some(start as u32), &whole[start..end])
        }
        None => (None, whole),
    }
}
