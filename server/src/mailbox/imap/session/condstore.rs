//! CONDSTORE (RFC 7162 3.1): every message's MODSEQ and the mailbox's HIGHESTMODSEQ
//! (kept by the store with each change) shown to clients. Here: turning it on (ENABLE,
//! SELECT (CONDSTORE), or any command that uses it), and reading the command modifiers
//! (FETCH CHANGEDSINCE, STORE UNCHANGEDSINCE), and the parameters QRESYNC adds to
//! them (see `qresync`).

use std::num::NonZeroU64;

use imap_codec::imap_types::command::{FetchModifier, SelectParameter, StoreModifier};
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::extensions::enable::CapabilityEnable;
use imap_codec::imap_types::extensions::utf8::Utf8Kind;
use imap_codec::imap_types::fetch::MessageDataItem;
use imap_codec::imap_types::response::{Code, Data, Response};
use imap_codec::imap_types::search::SearchKey;

use super::Session;
use super::qresync::Resync;
use super::responses::{bad, data, ok, status};

impl Session {
    /// ENABLE (RFC 5161): CONDSTORE, QRESYNC (which turns CONDSTORE on too),
    /// UTF8=ACCEPT and IMAP4rev2 (RFC 9051) are the extensions here to enable; others
    /// are left out of the answer.
    pub(super) fn enable(
        &mut self,
        tag: &Tag<'static>,
        asked: &[CapabilityEnable<'static>],
    ) -> Vec<Response<'static>> {
        let mut enabled = Vec::new();
        if asked.contains(&CapabilityEnable::CondStore) {
            self.condstore = true;
            enabled.push(CapabilityEnable::CondStore);
        }
        // UTF8=ONLY is not offered: a server with it refuses clients without UTF-8.
        if asked.contains(&CapabilityEnable::Utf8(Utf8Kind::Accept)) && !self.utf8 {
            self.utf8 = true;
            enabled.push(CapabilityEnable::Utf8(Utf8Kind::Accept));
        }
        for capability in asked {
            if capability.to_string().eq_ignore_ascii_case("IMAP4rev2") && !self.rev2 {
                self.rev2 = true;
                enabled.push(capability.clone());
            }
            if capability.to_string().eq_ignore_ascii_case("QRESYNC") && !self.qresync {
                self.qresync = true;
                self.condstore = true;
                enabled.push(capability.clone());
            }
        }
        vec![
            data(Data::Enabled {
                capabilities: enabled,
            }),
            ok(tag, "ENABLE completed"),
        ]
    }

    /// SELECT and EXAMINE parameters: `(CONDSTORE)` turns it on; `(QRESYNC (...))`,
    /// once QRESYNC is enabled (RFC 7162 3.2.5), says what the client knew.
    pub(super) fn select_parameters(
        &mut self,
        tag: &Tag<'static>,
        parameters: &[SelectParameter],
    ) -> Result<Option<Resync>, Vec<Response<'static>>> {
        let mut resync = None;
        for parameter in parameters {
            match parameter {
                SelectParameter::CondStore => self.condstore = true,
                SelectParameter::QResync { .. } if !self.qresync => {
                    return Err(vec![bad(
                        tag,
                        "QRESYNC is not enabled: send ENABLE QRESYNC first",
                    )]);
                }
                SelectParameter::QResync {
                    uid_validity,
                    mod_sequence_value,
                    known_uids,
                    ..
                } => {
                    resync = Some(Resync {
                        uidvalidity: uid_validity.get(),
                        modseq: mod_sequence_value.get(),
                        known: known_uids.clone(),
                    });
                }
            }
        }
        Ok(resync)
    }

    /// FETCH's `(CHANGEDSINCE n)`: only messages changed after MODSEQ n, with their
    /// MODSEQ; and whether QRESYNC's `VANISHED` asks for what was expunged since too
    /// (only with UID FETCH, CHANGEDSINCE and QRESYNC enabled: RFC 7162 3.2.6).
    pub(super) fn changed_since(
        &mut self,
        tag: &Tag<'static>,
        modifiers: &[FetchModifier],
        by_uid: bool,
    ) -> Result<(Option<u64>, bool), Vec<Response<'static>>> {
        let mut since = None;
        let mut vanished = false;
        for modifier in modifiers {
            match modifier {
                FetchModifier::ChangedSince(n) => {
                    self.condstore = true;
                    since = Some(n.get());
                }
                FetchModifier::Vanished => vanished = true,
            }
        }
        if vanished && !(self.qresync && by_uid && since.is_some()) {
            return Err(vec![bad(
                tag,
                "VANISHED needs ENABLE QRESYNC, UID FETCH and CHANGEDSINCE",
            )]);
        }
        Ok((since, vanished))
    }

    /// STORE's `(UNCHANGEDSINCE n)`.
    pub(super) fn unchanged_since(&mut self, modifiers: &[StoreModifier]) -> Option<u64> {
        let mut since = None;
        for StoreModifier::UnchangedSince(n) in modifiers {
            self.condstore = true;
            since = Some(*n);
        }
        since
    }

    /// CONDSTORE was turned on with a mailbox open (not by SELECT or EXAMINE): the
    /// client learns the mailbox's HIGHESTMODSEQ first (RFC 7162 3.1), as it is now,
    /// the command's own changes included.
    pub(super) async fn announce_highest_modseq(
        &self,
        user: &str,
        responses: &mut Vec<Response<'static>>,
    ) {
        let Some(selected) = &self.selected else {
            return;
        };
        let highest = match self.store.mailbox(user, &selected.name).await {
            Ok(info) => info.highestmodseq,
            Err(_) => selected.modseq,
        };
        if let Some(modseq) = NonZeroU64::new(highest) {
            let said = status(
                None,
                "OK",
                Some(Code::HighestModSeq(modseq)),
                "Highest MODSEQ",
            );
            responses.insert(0, said);
        }
    }

    /// Whether a search uses MODSEQ (then its answer says the highest MODSEQ found,
    /// and CONDSTORE is on).
    pub(super) fn searches_modseq(&mut self, keys: &[SearchKey<'_>]) -> bool {
        let uses = uses_modseq(keys);
        self.condstore |= uses;
        uses
    }
}

fn uses_modseq(keys: &[SearchKey<'_>]) -> bool {
    keys.iter().any(|key| match key {
        SearchKey::ModSequence { .. } => true,
        SearchKey::And(keys) => uses_modseq(keys.as_ref()),
        SearchKey::Not(key) => uses_modseq(std::slice::from_ref(key.as_ref())),
        SearchKey::Or(a, b) => {
            uses_modseq(std::slice::from_ref(a.as_ref()))
                || uses_modseq(std::slice::from_ref(b.as_ref()))
        }
        _ => false,
    })
}

/// A message's MODSEQ as a FETCH item (every stored message has one above 0).
pub(super) fn modseq_item(modseq: u64) -> Option<MessageDataItem<'static>> {
    NonZeroU64::new(modseq).map(MessageDataItem::ModSeq)
}
