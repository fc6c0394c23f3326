//! The commands on messages: APPEND into any mailbox, and in the selected one
//! SEARCH, STORE, COPY and MOVE (UIDPLUS's COPYUID), EXPUNGE and UID EXPUNGE, CLOSE
//! and UNSELECT. FETCH has its own file ([`super::fetch`]).

use std::collections::HashMap;
use std::num::NonZeroU32;

use imap_codec::imap_types::core::{Charset, Tag, Vec1};
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::extensions::multiappend::AppendMessage;
use imap_codec::imap_types::fetch::MessageDataItem;
use imap_codec::imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{Code, Data, Response};
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::SequenceSet;

use super::super::{search, wire};
use super::responses::{bad, data, no, ok, status, store_no};
use super::{Selected, Session, condstore, expunged, find, has};
use crate::mailbox::store::{FlagOp, MessageInfo, NewMessage, StoreError};

/// How many message headers one blocking read takes at most (header searches).
const HEADER_BATCH: usize = 2000;

/// A STORE as the client sent it.
pub(super) struct StoreRequest<'a> {
    pub set: &'a SequenceSet,
    pub kind: StoreType,
    pub response: StoreResponse,
    pub flags: &'a [Flag<'static>],
    pub by_uid: bool,
    /// RFC 7162's UNCHANGEDSINCE.
    pub unchanged_since: Option<u64>,
}

/// A message a search matched: its sequence number and index entry.
pub(super) struct Matched {
    pub seq: u32,
    pub info: MessageInfo,
}

impl Session {
    /// APPEND of one message or, with MULTIAPPEND (RFC 3502), several: all are
    /// stored or none, and APPENDUID names each new UID.
    pub(super) async fn append(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        mailbox: &Mailbox<'static>,
        first: AppendMessage<'static>,
        more: Vec<AppendMessage<'static>>,
    ) -> Vec<Response<'static>> {
        let name = match wire::mailbox_name(mailbox, self.names()) {
            Ok(name) => name,
            Err(e) => return vec![no(tag, &e)],
        };
        // UTF8 (~{n}...) is for clients that enabled UTF8=ACCEPT (RFC 6855 4).
        let utf8 = |m: &AppendMessage<'_>| matches!(m.message, LiteralOrLiteral8::Utf8(_));
        if !self.utf8 && (utf8(&first) || more.iter().any(utf8)) {
            return vec![bad(tag, "APPEND UTF8 (...) needs ENABLE UTF8=ACCEPT first")];
        }
        let messages: Vec<NewMessage> = std::iter::once(first)
            .chain(more)
            .map(|m| NewMessage {
                bytes: stored_form(match m.message {
                    LiteralOrLiteral8::Literal(l) => l.into_inner().into_owned(),
                    LiteralOrLiteral8::Literal8(l) | LiteralOrLiteral8::Utf8(l) => {
                        l.data.into_owned()
                    }
                }),
                flags: m.flags.iter().map(wire::flag_name).collect(),
                internal_date: m.date.map(|d| d.as_ref().timestamp()),
            })
            .collect();
        let size: u64 = messages.iter().map(|m| m.bytes.len() as u64).sum();
        if let Some(refusal) = self
            .over_quota(tag, user, size, messages.len() as u64)
            .await
        {
            return vec![refusal];
        }
        match self.store.append_all(user, &name, messages).await {
            Ok((uidvalidity, uids)) => {
                let mut out = if self.selected.as_ref().is_some_and(|s| s.name == name) {
                    self.refresh(user).await
                } else {
                    Vec::new()
                };
                let code = match (NonZeroU32::new(uidvalidity), &uids[..]) {
                    (Some(uid_validity), &[uid]) => {
                        NonZeroU32::new(uid).map(|uid| Code::AppendUid { uid_validity, uid })
                    }
                    (Some(uid_validity), _) => {
                        wire::uid_set(&uids).map(|uids| Code::AppendUids { uid_validity, uids })
                    }
                    _ => None,
                };
                out.push(status(Some(tag), "OK", code, "APPEND completed"));
                out
            }
            Err(e) => vec![store_no(tag, e)],
        }
    }

    pub(super) async fn search(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        charset: Option<&str>,
        criteria: &Vec1<SearchKey<'static>>,
        by_uid: bool,
    ) -> Vec<Response<'static>> {
        let found = match self.matching(tag, user, charset, criteria).await {
            Ok(found) => found,
            Err(refusal) => return refusal,
        };
        let modseq = self.highest_found(criteria.as_ref(), found.iter().map(|m| m.info.modseq));
        let found = found
            .iter()
            .filter_map(|m| NonZeroU32::new(if by_uid { m.info.uid } else { m.seq }))
            .collect();
        vec![
            data(Data::Search(found, modseq)),
            ok(
                tag,
                if by_uid {
                    "UID SEARCH completed"
                } else {
                    "SEARCH completed"
                },
            ),
        ]
    }

    /// The messages of the selected mailbox that match `criteria`, in mailbox order
    /// (SEARCH, and the set SORT and THREAD order); `Err` is the command's refusal.
    pub(super) async fn matching(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        charset: Option<&str>,
        criteria: &Vec1<SearchKey<'static>>,
    ) -> Result<Vec<Matched>, Vec<Response<'static>>> {
        let Some(selected) = self.selected.as_ref() else {
            return Err(vec![bad(tag, "Select a mailbox first")]);
        };
        if let Some(charset) = charset
            && !charset.eq_ignore_ascii_case("UTF-8")
            && !charset.eq_ignore_ascii_case("US-ASCII")
        {
            let allowed = ["UTF-8", "US-ASCII"]
                .into_iter()
                .filter_map(|c| Charset::try_from(c).ok())
                .collect();
            return Err(vec![status(
                Some(tag),
                "NO",
                Some(Code::BadCharset { allowed }),
                "Only UTF-8 and US-ASCII are supported",
            )]);
        }
        let keys = criteria.as_ref();
        if !search::supported(keys) {
            return Err(vec![bad(
                tag,
                "A search key is not available in this version",
            )]);
        }
        let mailbox = selected.name.clone();
        let uids = selected.uids.clone();
        let recent = selected.recent.clone();
        let saved = selected.saved.clone();
        let messages = match self.store.messages_shared(user, &mailbox).await {
            Ok(m) => m,
            Err(e) => return Err(vec![store_no(tag, e)]),
        };
        let needs_bytes = search::needs_bytes(keys);
        let needs_body = search::needs_body(keys);
        let last_seq = uids.len() as u32;
        let last_uid = uids.last().copied().unwrap_or(0);
        let candidates: Vec<(u32, &MessageInfo)> = uids
            .iter()
            .enumerate()
            .filter_map(|(i, &uid)| Some((i as u32 + 1, find(&messages, uid)?)))
            .collect();
        // Header searches take the headers in one batch, mostly from memory.
        let headers = if needs_bytes && !needs_body {
            let infos: Vec<&MessageInfo> = candidates.iter().map(|&(_, info)| info).collect();
            match self.headers_of(tag, user, &mailbox, &infos).await {
                Ok(headers) => headers,
                Err(refusal) => return Err(refusal),
            }
        } else {
            Vec::new()
        };
        let mut found = Vec::new();
        for (i, &(seq, info)) in candidates.iter().enumerate() {
            let uid = info.uid;
            let body;
            let bytes: Option<&[u8]> = if !needs_bytes {
                None
            } else if !needs_body {
                match headers.get(i) {
                    Some(Some(header)) => Some(header),
                    _ => continue,
                }
            } else {
                body = match self.store.read_message(user, &mailbox, info).await {
                    Ok(b) => b,
                    Err(StoreError::NoMessage(_)) => continue,
                    Err(e) => return Err(vec![store_no(tag, e)]),
                };
                Some(&body)
            };
            let mut candidate = search::Candidate::new(seq, info, bytes, last_seq, last_uid);
            candidate.recent = recent.contains(uid);
            candidate.saved = saved.binary_search(&uid).is_ok();
            if search::matches_all(keys, &candidate) {
                found.push(Matched {
                    seq,
                    info: info.clone(),
                });
            }
        }
        Ok(found)
    }

    /// For a search (SEARCH, SORT) that uses MODSEQ, the highest MODSEQ of what it
    /// found (RFC 7162 3.1.5); `None` otherwise.
    pub(super) fn highest_found(
        &mut self,
        keys: &[SearchKey<'_>],
        found: impl Iterator<Item = u64>,
    ) -> Option<std::num::NonZeroU64> {
        if !self.searches_modseq(keys) {
            return None;
        }
        std::num::NonZeroU64::new(found.max()?)
    }

    /// The headers of `infos` in the selected mailbox, read in batches (mostly from
    /// memory); `None` for a message whose file is gone.
    pub(super) async fn headers_of(
        &self,
        tag: &Tag<'static>,
        user: &str,
        mailbox: &str,
        infos: &[&MessageInfo],
    ) -> Result<Vec<Option<std::sync::Arc<[u8]>>>, Vec<Response<'static>>> {
        let mut headers = Vec::with_capacity(infos.len());
        for chunk in infos.chunks(HEADER_BATCH) {
            match self.store.headers(user, mailbox, chunk).await {
                Ok(read) => headers.extend(read),
                Err(e) => return Err(vec![store_no(tag, e)]),
            }
        }
        Ok(headers)
    }

    pub(super) async fn store_flags(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        request: StoreRequest<'_>,
    ) -> Vec<Response<'static>> {
        let Some(selected) = self.selected.as_ref() else {
            return vec![bad(tag, "Select a mailbox first")];
        };
        if selected.read_only {
            return vec![no(tag, "The mailbox is read-only (EXAMINE)")];
        }
        let by_uid = request.by_uid;
        let pairs = match wire::resolve(request.set, &selected.uids, &selected.saved, by_uid) {
            Ok(pairs) => pairs,
            Err(e) => return vec![bad(tag, &e)],
        };
        let op = match request.kind {
            StoreType::Replace => FlagOp::Replace,
            StoreType::Add => FlagOp::Add,
            StoreType::Remove => FlagOp::Remove,
        };
        let flags: Vec<String> = request.flags.iter().map(wire::flag_name).collect();
        let uids: Vec<u32> = pairs.iter().map(|&(_, uid)| uid).collect();
        let stored = match self
            .store
            .store_flags_unless_changed(
                user,
                &selected.name,
                &uids,
                op,
                &flags,
                request.unchanged_since,
            )
            .await
        {
            Ok(stored) => stored,
            Err(e) => return vec![store_no(tag, e)],
        };
        if let Some(selected) = self.selected.as_mut() {
            selected.own.extend(
                stored
                    .changed
                    .iter()
                    .map(|(uid, _, modseq)| (*uid, *modseq)),
            );
        }
        let mut out = Vec::new();
        let recent = self
            .selected
            .as_ref()
            .map(|s| s.recent.clone())
            .unwrap_or_default();
        let seq_of: HashMap<u32, u32> = pairs.iter().map(|&(seq, uid)| (uid, seq)).collect();
        // With CONDSTORE on, every change is told with its UID and MODSEQ, .SILENT or
        // not (RFC 7162 3.1.3); without it, .SILENT tells nothing.
        if request.response == StoreResponse::Answer || self.condstore {
            for (uid, flags, modseq) in stored.changed {
                let (Some(seq), Some(nz)) = (
                    seq_of.get(&uid).and_then(|s| NonZeroU32::new(*s)),
                    NonZeroU32::new(uid),
                ) else {
                    continue;
                };
                let mut items = Vec::new();
                if request.response == StoreResponse::Answer {
                    items.push(MessageDataItem::Flags(recent.flags(uid, &flags)));
                }
                if by_uid || self.condstore {
                    items.push(MessageDataItem::Uid(nz));
                }
                if self.condstore {
                    items.extend(condstore::modseq_item(modseq));
                }
                if let Ok(items) = Vec1::try_from(items) {
                    out.push(data(Data::Fetch { seq, items }));
                }
            }
        }
        // The messages UNCHANGEDSINCE kept from changing, by UID or number as asked.
        let modified: Vec<u32> = if by_uid {
            stored.modified
        } else {
            stored
                .modified
                .iter()
                .filter_map(|uid| seq_of.get(uid).copied())
                .collect()
        };
        let code = wire::sequence_set(&modified).map(Code::Modified);
        let text = if code.is_some() {
            "Conditional STORE failed for some messages"
        } else {
            "STORE completed"
        };
        out.push(status(Some(tag), "OK", code, text));
        out
    }

    pub(super) async fn copy(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        set: &SequenceSet,
        mailbox: &Mailbox<'static>,
        by_uid: bool,
        moving: bool,
    ) -> Vec<Response<'static>> {
        let Some(selected) = self.selected.as_ref() else {
            return vec![bad(tag, "Select a mailbox first")];
        };
        if moving && selected.read_only {
            return vec![no(tag, "The mailbox is read-only (EXAMINE)")];
        }
        let pairs = match wire::resolve(set, &selected.uids, &selected.saved, by_uid) {
            Ok(pairs) => pairs,
            Err(e) => return vec![bad(tag, &e)],
        };
        let target = match wire::mailbox_name(mailbox, self.names()) {
            Ok(name) => name,
            Err(e) => return vec![no(tag, &e)],
        };
        let uids: Vec<u32> = pairs.iter().map(|&(_, uid)| uid).collect();
        let from = selected.name.clone();
        // A copy adds to what the user keeps; a move within their mailboxes does not.
        if !moving {
            let storage = match self.store.messages_shared(user, &from).await {
                Ok(messages) => {
                    let wanted: std::collections::HashSet<u32> = uids.iter().copied().collect();
                    messages
                        .iter()
                        .filter(|m| wanted.contains(&m.uid))
                        .map(|m| m.size)
                        .sum()
                }
                Err(e) => return vec![store_no(tag, e)],
            };
            if let Some(refusal) = self.over_quota(tag, user, storage, uids.len() as u64).await {
                return vec![refusal];
            }
        }
        let result = if moving {
            self.store.move_messages(user, &from, &uids, &target).await
        } else {
            self.store.copy(user, &from, &uids, &target).await
        };
        let (uidvalidity, copied) = match result {
            Ok(r) => r,
            Err(e) => return vec![store_no(tag, e)],
        };
        let old: Vec<u32> = copied.iter().map(|&(o, _)| o).collect();
        let new: Vec<u32> = copied.iter().map(|&(_, n)| n).collect();
        let code = match (
            NonZeroU32::new(uidvalidity),
            wire::uid_set(&old),
            wire::uid_set(&new),
        ) {
            (Some(uid_validity), Some(source), Some(destination)) => Some(Code::CopyUid {
                uid_validity,
                source,
                destination,
            }),
            _ => None,
        };
        // Copies into the selected mailbox itself are news to this session: EXISTS.
        let into_selected = target == from;
        if !moving {
            let mut out = Vec::new();
            if into_selected {
                out.extend(self.refresh(user).await);
            }
            out.push(status(Some(tag), "OK", code, "COPY completed"));
            return out;
        }
        // RFC 6851: COPYUID comes untagged, then the EXPUNGEs, then the tagged OK.
        let mut out = vec![status(None, "OK", code, "Moved")];
        let vanished = self.qresync;
        if let Some(selected) = self.selected.as_mut() {
            out.extend(expunged(
                &mut selected.uids,
                |uid| old.contains(&uid),
                vanished,
            ));
        }
        if into_selected {
            out.extend(self.refresh(user).await);
        }
        out.push(ok(tag, "MOVE completed"));
        out
    }

    pub(super) async fn expunge(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        set: Option<&SequenceSet>,
    ) -> Vec<Response<'static>> {
        let Some(selected) = self.selected.as_ref() else {
            return vec![bad(tag, "Select a mailbox first")];
        };
        if selected.read_only {
            return vec![no(tag, "The mailbox is read-only (EXAMINE)")];
        }
        let only = match set.map(|s| wire::resolve(s, &selected.uids, &selected.saved, true)) {
            Some(Ok(pairs)) => Some(pairs.into_iter().map(|(_, uid)| uid).collect::<Vec<_>>()),
            Some(Err(e)) => return vec![bad(tag, &e)],
            None => None,
        };
        match self.expunge_deleted(user, selected, only.as_deref()).await {
            Ok((mut out, remaining)) => {
                if let Some(selected) = self.selected.as_mut() {
                    selected.uids = remaining;
                }
                // Messages another session expunged meanwhile are gone for this one too:
                // its client learns of them now (one of them may be what it wanted gone).
                out.extend(self.refresh(user).await);
                out.push(ok(tag, "EXPUNGE completed"));
                out
            }
            Err(e) => vec![store_no(tag, e)],
        }
    }

    /// Removes the \Deleted messages (of `only`, for UID EXPUNGE); returns the EXPUNGE
    /// responses, highest sequence number first so each number is right when it is read.
    async fn expunge_deleted(
        &self,
        user: &str,
        selected: &Selected,
        only: Option<&[u32]>,
    ) -> Result<(Vec<Response<'static>>, Vec<u32>), StoreError> {
        let messages = self.store.messages_shared(user, &selected.name).await?;
        let doomed: Vec<u32> = messages
            .iter()
            .filter(|m| has(&m.flags, "\\Deleted"))
            .filter(|m| only.is_none_or(|o| o.contains(&m.uid)))
            .map(|m| m.uid)
            .collect();
        self.store.expunge(user, &selected.name, &doomed).await?;
        let mut remaining = selected.uids.clone();
        let out = expunged(&mut remaining, |uid| doomed.contains(&uid), self.qresync);
        Ok((out, remaining))
    }

    /// CLOSE: expunges quietly (unless EXAMINEd), then leaves the mailbox.
    pub(super) async fn close(&mut self, tag: &Tag<'static>, user: &str) -> Vec<Response<'static>> {
        if let Some(selected) = self.selected.take()
            && !selected.read_only
        {
            let _ = self.expunge_deleted(user, &selected, None).await;
        }
        vec![ok(tag, "CLOSE completed")]
    }

    /// UNSELECT (RFC 3691): leaves the mailbox without expunging.
    pub(super) fn unselect(&mut self, tag: &Tag<'static>) -> Vec<Response<'static>> {
        self.selected = None;
        vec![ok(tag, "UNSELECT completed")]
    }
}

/// An appended message as it is kept: parts sent with `Content-Transfer-Encoding:
/// binary` (BINARY, RFC 3516) become base64, so that BODY[] never shows them raw;
/// BINARY[] undoes it.
fn stored_form(bytes: Vec<u8>) -> Vec<u8> {
    super::super::binary::encode_binary_parts(&bytes).unwrap_or(bytes)
}
