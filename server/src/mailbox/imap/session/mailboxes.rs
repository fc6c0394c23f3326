//! The commands on mailboxes as a whole: SELECT and EXAMINE, CREATE, DELETE, RENAME,
//! SUBSCRIBE and UNSUBSCRIBE, STATUS, NAMESPACE (LIST and LSUB: `list.rs`). One
//! personal namespace, delimited by `/`.

use std::collections::HashSet;
use std::num::NonZeroU32;

use imap_codec::imap_types::core::{IString, Tag};
use imap_codec::imap_types::flag::{Flag, FlagNameAttribute, FlagPerm};
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{Code, Data, Response};
use imap_codec::imap_types::status::{StatusDataItem, StatusDataItemName};

use super::super::wire;
use super::responses::{data, no, ok, other_code, status, store_no};
use super::{Selected, Session, has, recent};

/// The untagged FLAGS of a mailbox whose messages use `keywords`, and its
/// PERMANENTFLAGS: the same and `\*` (any new keyword), or none when it is read-only.
pub(super) fn flags_in_use(
    keywords: &std::collections::BTreeSet<String>,
    read_only: bool,
) -> Vec<Response<'static>> {
    let mut flags = vec![
        Flag::Answered,
        Flag::Flagged,
        Flag::Deleted,
        Flag::Seen,
        Flag::Draft,
    ];
    flags.extend(
        keywords
            .iter()
            .filter_map(|k| Flag::try_from(k.as_str()).ok())
            .map(|f| imap_codec::imap_types::ToStatic::to_static(&f)),
    );
    let permanent = if read_only {
        Vec::new()
    } else {
        let mut p: Vec<FlagPerm<'static>> = flags.iter().cloned().map(FlagPerm::Flag).collect();
        p.push(FlagPerm::Asterisk);
        p
    };
    vec![
        data(Data::Flags(flags)),
        status(
            None,
            "OK",
            Some(Code::PermanentFlags(permanent)),
            "Flags permitted",
        ),
    ]
}

impl Session {
    pub(super) async fn select(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        mailbox: &Mailbox<'static>,
        read_only: bool,
        resync: Option<super::qresync::Resync>,
    ) -> Vec<Response<'static>> {
        // A failed SELECT leaves no mailbox selected (RFC 3501 6.3.1); with QRESYNC
        // on, the client is told that the one it had is closed (RFC 7162 3.2.11).
        let mut closed = Vec::new();
        // [CLOSED] for the mailbox this SELECT closes (RFC 7162 3.2.11, RFC 9051 6.3.2).
        if self.selected.take().is_some() && (self.qresync || self.rev2) {
            closed.push(status(
                None,
                "OK",
                Some(Code::Closed),
                "Previous mailbox closed",
            ));
        }
        let name = match wire::mailbox_name(mailbox, self.names()) {
            Ok(name) => name,
            Err(e) => return vec![no(tag, &e)],
        };
        if let Err(e) = self.store.sync(user, &name).await {
            return vec![store_no(tag, e)];
        }
        let (info, messages) = match self.store.mailbox_shared(user, &name).await {
            Ok(both) => both,
            Err(e) => return vec![store_no(tag, e)],
        };
        // The keywords in use in the mailbox are flags of it too (RFC 3501 7.2.6).
        let keywords: std::collections::BTreeSet<String> = messages
            .iter()
            .flat_map(|m| m.flags.iter())
            .filter(|f| matches!(Flag::try_from(f.as_str()), Ok(Flag::Keyword(_))))
            .cloned()
            .collect();
        let [flags, permanent] = <[_; 2]>::try_from(flags_in_use(&keywords, read_only))
            .unwrap_or_else(|_| unreachable!("flags_in_use gives FLAGS and PERMANENTFLAGS"));
        // \Recent: a read-write SELECT claims what no session had; EXAMINE only looks.
        // IMAP4rev2 has no \Recent (RFC 9051 E.7).
        let uids: Vec<u32> = messages.iter().map(|m| m.uid).collect();
        let recent = if self.rev2 {
            recent::Recent::default()
        } else if read_only {
            match self.store.recent_from(user, &name).await {
                Ok(from) => recent::Recent::from(from),
                Err(e) => return vec![store_no(tag, e)],
            }
        } else {
            let mut recent = recent::Recent::default();
            match self.store.claim_recent(user, &name).await {
                Ok(claimed) => recent.add(claimed),
                Err(e) => return vec![store_no(tag, e)],
            }
            recent
        };
        let mut out = closed;
        out.extend([flags, data(Data::Exists(messages.len() as u32))]);
        if self.rev2 {
            // IMAP4rev2's SELECT tells the mailbox's LIST (RFC 9051 6.3.2).
            out.extend(self.list_one(user, &info).await);
        } else {
            out.push(data(Data::Recent(recent.count(&uids))));
        }
        out.push(permanent);
        if let Some(first) = messages.iter().position(|m| !has(&m.flags, "\\Seen"))
            && let Ok(code) = Code::unseen(first as u32 + 1)
        {
            out.push(status(None, "OK", Some(code), "First unseen"));
        }
        if let Ok(code) = Code::uidvalidity(info.uidvalidity) {
            out.push(status(None, "OK", Some(code), "UIDs valid"));
        }
        if let Ok(code) = Code::uidnext(info.uidnext) {
            out.push(status(None, "OK", Some(code), "Predicted next UID"));
        }
        // CONDSTORE (RFC 7162 3.1.2.1): every SELECT and EXAMINE says HIGHESTMODSEQ.
        if let Some(modseq) = std::num::NonZeroU64::new(info.highestmodseq) {
            out.push(status(
                None,
                "OK",
                Some(Code::HighestModSeq(modseq)),
                "Highest MODSEQ",
            ));
        }
        if let Some(resync) = &resync {
            match self
                .resync(user, &name, resync, &info, &messages, &recent)
                .await
            {
                Ok(responses) => out.extend(responses),
                Err(e) => return vec![store_no(tag, e)],
            }
        }
        let (code, verb) = if read_only {
            (Code::ReadOnly, "EXAMINE")
        } else {
            (Code::ReadWrite, "SELECT")
        };
        out.push(status(
            Some(tag),
            "OK",
            Some(code),
            &format!("{verb} completed"),
        ));
        self.selected = Some(Selected {
            name: info.name,
            read_only,
            uids,
            modseq: info.highestmodseq,
            own: HashSet::new(),
            keywords,
            recent,
            saved: Vec::new(),
        });
        out
    }

    /// CREATE, with CREATE-SPECIAL-USE's `(USE (...))` (RFC 6154) marking what the
    /// mailbox is for, as LIST then says.
    pub(super) async fn create(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        mailbox: &Mailbox<'static>,
        special_use: &[FlagNameAttribute<'static>],
    ) -> Vec<Response<'static>> {
        let special_use = match special_uses(special_use) {
            Ok(uses) => uses,
            Err(refused) => {
                let text = format!(
                    "{refused} is not a special use a mailbox here can have (\\Archive, \\Drafts, \\Junk, \\Sent, \\Trash)"
                );
                return vec![status(Some(tag), "NO", Some(other_code("USEATTR")), &text)];
            }
        };
        // "foo/" declares an intent to create children; the name is "foo".
        let name = match wire::raw_mailbox(mailbox, self.names()) {
            Ok(raw) => match crate::mailbox::store::names::canonical(raw.trim_end_matches('/')) {
                Ok(name) => name,
                Err(e) => return vec![no(tag, &format!("Refused: {e}"))],
            },
            Err(e) => return vec![no(tag, &e)],
        };
        // CREATE does not subscribe (RFC 3501 6.3.3, as Dovecot): clients that want it
        // say SUBSCRIBE.
        match self
            .store
            .create_unsubscribed(user, &name, &special_use)
            .await
        {
            Ok(_) => vec![ok(tag, "CREATE completed")],
            Err(e) => vec![store_no(tag, e)],
        }
    }

    pub(super) async fn delete(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        mailbox: &Mailbox<'static>,
    ) -> Vec<Response<'static>> {
        let name = match wire::mailbox_name(mailbox, self.names()) {
            Ok(name) => name,
            Err(e) => return vec![no(tag, &e)],
        };
        match self.store.delete_mailbox(user, &name).await {
            Ok(()) => {
                if self.selected.as_ref().is_some_and(|s| s.name == name) {
                    self.selected = None;
                }
                vec![ok(tag, "DELETE completed")]
            }
            Err(e) => vec![store_no(tag, e)],
        }
    }

    pub(super) async fn rename(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        from: &Mailbox<'static>,
        to: &Mailbox<'static>,
    ) -> Vec<Response<'static>> {
        let (from, to) = match (
            wire::mailbox_name(from, self.names()),
            wire::mailbox_name(to, self.names()),
        ) {
            (Ok(from), Ok(to)) => (from, to),
            (Err(e), _) | (_, Err(e)) => return vec![no(tag, &e)],
        };
        match self.store.rename_mailbox(user, &from, &to).await {
            Ok(()) => {
                if let Some(selected) = self.selected.as_mut()
                    && from != "INBOX"
                {
                    let prefix = format!("{from}/");
                    if selected.name == from || selected.name.starts_with(&prefix) {
                        selected.name = format!("{to}{}", &selected.name[from.len()..]);
                    }
                }
                let mut out = self.refresh(user).await;
                out.push(ok(tag, "RENAME completed"));
                out
            }
            Err(e) => vec![store_no(tag, e)],
        }
    }

    pub(super) async fn subscribe(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        mailbox: &Mailbox<'static>,
        on: bool,
    ) -> Vec<Response<'static>> {
        match wire::mailbox_name(mailbox, self.names()) {
            Ok(name) => match self.store.subscribe(user, &name, on).await {
                Ok(()) => vec![ok(
                    tag,
                    if on {
                        "SUBSCRIBE completed"
                    } else {
                        "UNSUBSCRIBE completed"
                    },
                )],
                Err(e) => vec![store_no(tag, e)],
            },
            Err(e) => vec![no(tag, &e)],
        }
    }

    pub(super) async fn status(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        mailbox: &Mailbox<'static>,
        names: &[StatusDataItemName],
    ) -> Vec<Response<'static>> {
        let name = match wire::mailbox_name(mailbox, self.names()) {
            Ok(name) => name,
            Err(e) => return vec![no(tag, &e)],
        };
        let _ = self.store.sync(user, &name).await;
        let (info, messages) = match self.store.mailbox_shared(user, &name).await {
            Ok(both) => both,
            Err(e) => return vec![store_no(tag, e)],
        };
        // RECENT: the messages no session has claimed yet.
        let recent = if names.contains(&StatusDataItemName::Recent) {
            match self.store.recent_from(user, &name).await {
                Ok(from) => messages.iter().filter(|m| m.uid >= from).count() as u32,
                Err(e) => return vec![store_no(tag, e)],
            }
        } else {
            0
        };
        let mut items = Vec::new();
        for item in names {
            items.push(match item {
                StatusDataItemName::Messages => StatusDataItem::Messages(messages.len() as u32),
                StatusDataItemName::Recent => StatusDataItem::Recent(recent),
                StatusDataItemName::UidNext => match NonZeroU32::new(info.uidnext) {
                    Some(n) => StatusDataItem::UidNext(n),
                    None => continue,
                },
                StatusDataItemName::UidValidity => match NonZeroU32::new(info.uidvalidity) {
                    Some(n) => StatusDataItem::UidValidity(n),
                    None => continue,
                },
                StatusDataItemName::Unseen => StatusDataItem::Unseen(
                    messages.iter().filter(|m| !has(&m.flags, "\\Seen")).count() as u32,
                ),
                // RFC 9208 4.3, for the quota resources.
                StatusDataItemName::Deleted => StatusDataItem::Deleted(
                    messages
                        .iter()
                        .filter(|m| has(&m.flags, "\\Deleted"))
                        .count() as u32,
                ),
                StatusDataItemName::DeletedStorage => StatusDataItem::DeletedStorage(
                    messages
                        .iter()
                        .filter(|m| has(&m.flags, "\\Deleted"))
                        .map(|m| m.size)
                        .sum(),
                ),
                // STATUS=SIZE (RFC 8438): what the mailbox holds, in octets.
                StatusDataItemName::Size => {
                    StatusDataItem::Size(messages.iter().map(|m| m.size).sum())
                }
                StatusDataItemName::HighestModSeq => {
                    self.condstore = true;
                    StatusDataItem::HighestModSeq(info.highestmodseq)
                }
            });
        }
        let Some(mailbox) = wire::wire_mailbox(&info.name, self.names()) else {
            return vec![no(tag, "The mailbox name cannot be sent")];
        };
        vec![
            data(Data::Status {
                mailbox,
                items: items.into(),
            }),
            ok(tag, "STATUS completed"),
        ]
    }

    /// One personal namespace, the whole tree, delimited by `/` (RFC 2342).
    pub(super) fn namespace(&self, tag: &Tag<'static>) -> Vec<Response<'static>> {
        use imap_codec::imap_types::extensions::namespace::Namespace;
        let delimiter = imap_codec::imap_types::core::QuotedChar::try_from('/').ok();
        let personal = IString::try_from("")
            .map(|prefix| vec![Namespace::new(prefix, delimiter)])
            .unwrap_or_default();
        vec![
            data(Data::Namespace {
                personal,
                other: Vec::new(),
                shared: Vec::new(),
            }),
            ok(tag, "NAMESPACE completed"),
        ]
    }
}

/// The special uses a new mailbox can be made for (RFC 6154), as the store keeps them
/// (`\Drafts`, several separated by spaces); `Err` names one that cannot be: `\All`
/// and `\Flagged` are virtual mailboxes, which mailsite does not have, and others are
/// unknown.
fn special_uses(asked: &[FlagNameAttribute<'_>]) -> Result<String, String> {
    const KNOWN: [&str; 5] = ["Archive", "Drafts", "Junk", "Sent", "Trash"];
    let mut uses: Vec<String> = Vec::new();
    for attribute in asked {
        let name = attribute.to_string();
        let bare = name.trim_start_matches('\\');
        let Some(known) = KNOWN.iter().find(|k| k.eq_ignore_ascii_case(bare)) else {
            return Err(name);
        };
        let known = format!("\\{known}");
        if !uses.contains(&known) {
            uses.push(known);
        }
    }
    Ok(uses.join(" "))
}
