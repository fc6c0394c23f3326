//! LIST and LSUB, with LIST-EXTENDED (RFC 5258): selection options (SUBSCRIBED,
//! RECURSIVEMATCH, REMOTE, and RFC 6154's SPECIAL-USE), several patterns, return
//! options (SUBSCRIBED, CHILDREN, SPECIAL-USE) and LIST-STATUS (RFC 5819: a STATUS
//! after each mailbox listed). One personal namespace, delimited by `/`; mailboxes
//! that are only implied by their children are `\Noselect`, subscriptions whose
//! mailbox is gone `\NonExistent`.

use std::collections::BTreeMap;

use imap_codec::imap_types::core::{Atom, QuotedChar, Tag, Vec1};
use imap_codec::imap_types::extensions::list_extended::{
    ListReturnOption, ListSelectBaseOpt, ListSelectBaseOptExtension, ListSelectBaseOptExtensionTag,
    ListSelectOption, MboxListExtendedItem,
};
use imap_codec::imap_types::flag::FlagNameAttribute;
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::response::{Data, Response};

use super::super::wire;
use super::Session;
use super::responses::{bad, data, no, ok, store_no};
use crate::mailbox::store::{Listed, MailboxInfo};

/// A LIST or LSUB as the client sent it.
pub(super) struct ListRequest<'a> {
    pub reference: &'a Mailbox<'static>,
    /// One pattern, or several (LIST-EXTENDED).
    pub patterns: Vec<&'a ListMailbox<'static>>,
    pub selection: &'a [ListSelectOption],
    pub ret: &'a [ListReturnOption],
    pub lsub: bool,
}

/// One name to answer, with what the answer says of it.
struct Entry<'a> {
    /// The mailbox or subscription (`None`: a parent only implied by its children).
    listed: Option<&'a Listed>,
    /// CHILDINFO: the selection options that children not matching the patterns meet.
    child_info: Vec<&'static str>,
}

impl Session {
    pub(super) async fn list(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        request: ListRequest<'_>,
    ) -> Vec<Response<'static>> {
        let verb = if request.lsub { "LSUB" } else { "LIST" };
        let select = |option| request.selection.contains(&option);
        let (by_subscription, by_use) = (
            select(ListSelectOption::Subscribed),
            select(ListSelectOption::SpecialUse),
        );
        let recursive = select(ListSelectOption::RecursiveMatch);
        if recursive && !by_subscription && !by_use {
            return vec![bad(
                tag,
                "RECURSIVEMATCH goes with SUBSCRIBED or SPECIAL-USE (RFC 5258 3.1)",
            )];
        }
        let extended =
            !request.selection.is_empty() || !request.ret.is_empty() || request.patterns.len() > 1;
        let names = self.names();
        let reference = match wire::raw_mailbox(request.reference, names) {
            Ok(reference) => reference,
            Err(e) => return vec![no(tag, &e)],
        };
        // A pattern that does not decode (`&'+,-` is a valid atom, no valid modified
        // UTF-7) names no mailbox: every name this server has encodes validly.
        let patterns: Vec<String> = request
            .patterns
            .iter()
            .filter_map(|p| wire::list_pattern(p, names).ok())
            .collect();
        let delimiter = QuotedChar::try_from('/').ok();
        if !extended && !request.lsub && patterns.first().is_some_and(String::is_empty) {
            // The hierarchy delimiter and root (RFC 3501 6.3.8).
            let mut out = Vec::new();
            if let Ok(root) = Mailbox::try_from("") {
                out.push(data(Data::List {
                    items: vec![FlagNameAttribute::Noselect],
                    delimiter,
                    mailbox: root,
                    extended: Vec::new(),
                }));
            }
            out.push(ok(tag, "LIST completed"));
            return out;
        }
        let full: Vec<String> = patterns.iter().map(|p| format!("{reference}{p}")).collect();
        let matches = |name: &str| full.iter().any(|f| wire::pattern_matches(f, name));
        let listing = match self.store.listing(user).await {
            Ok(listing) => listing,
            Err(e) => return vec![store_no(tag, e)],
        };
        let entries = if request.lsub {
            lsub_entries(&listing, &matches)
        } else if by_subscription || by_use {
            let chosen = |m: &Listed| {
                (!by_subscription || m.subscribed) && (!by_use || !m.special_use.is_empty())
            };
            let why = if by_subscription {
                "SUBSCRIBED"
            } else {
                "SPECIAL-USE"
            };
            selected_entries(&listing, &matches, chosen, recursive.then_some(why))
        } else {
            all_entries(&listing, &matches)
        };

        let status_items = request.ret.iter().find_map(|option| match option {
            ListReturnOption::Status(items) => Some(items.as_ref().to_vec()),
            _ => None,
        });
        let tell_subscribed =
            by_subscription || request.ret.contains(&ListReturnOption::Subscribed);
        let mut out = Vec::new();
        for (name, entry) in &entries {
            let Some((response, mailbox)) =
                self.entry_response(&listing, name, entry, request.lsub, tell_subscribed)
            else {
                continue;
            };
            out.push(response);
            // LIST-STATUS: each selectable mailbox's STATUS after its LIST line; one
            // that went away meanwhile is left out (RFC 5819 2).
            if let Some(items) = &status_items
                && entry.listed.is_some_and(|m| m.exists)
            {
                let answered = self.status(tag, user, &mailbox, items).await;
                out.extend(
                    answered
                        .into_iter()
                        .filter(|r| matches!(r, Response::Data(Data::Status { .. }))),
                );
            }
        }
        out.push(ok(tag, &format!("{verb} completed")));
        out
    }

    /// The LIST (or LSUB) response for one name, and the name as the wire spells it.
    fn entry_response(
        &self,
        listing: &[Listed],
        name: &str,
        entry: &Entry<'_>,
        lsub: bool,
        tell_subscribed: bool,
    ) -> Option<(Response<'static>, Mailbox<'static>)> {
        let mailbox = wire::wire_mailbox(name, self.names())?;
        let delimiter = QuotedChar::try_from('/').ok();
        let prefix = format!("{name}/");
        let children = listing
            .iter()
            .any(|m| m.exists && m.name.starts_with(&prefix));
        let mut items = Vec::new();
        match entry.listed {
            // \NonExistent implies \Noselect (RFC 5258 3.4), which LSUB says instead.
            Some(m) if !m.exists && !lsub => {
                items.push(FlagNameAttribute::from(wire::atom("NonExistent")))
            }
            Some(m) if m.exists => {}
            _ => items.push(FlagNameAttribute::Noselect),
        }
        if tell_subscribed && entry.listed.is_some_and(|m| m.subscribed) {
            items.push(FlagNameAttribute::from(wire::atom("Subscribed")));
        }
        items.push(FlagNameAttribute::from(wire::atom(if children {
            "HasChildren"
        } else {
            "HasNoChildren"
        })));
        let uses = entry.listed.map(|m| m.special_use.split_whitespace());
        for special in uses.into_iter().flatten() {
            if let Some(special) = special.strip_prefix('\\')
                && let Ok(atom) = Atom::try_from(special.to_string())
            {
                items.push(FlagNameAttribute::from(atom));
            }
        }
        let response = data(if lsub {
            Data::Lsub {
                items,
                delimiter,
                mailbox: mailbox.clone(),
            }
        } else {
            Data::List {
                items,
                delimiter,
                mailbox: mailbox.clone(),
                extended: child_info(&entry.child_info),
            }
        });
        Some((response, mailbox))
    }

    /// The LIST response of the mailbox `info` (IMAP4rev2's SELECT tells it), as
    /// `LIST "" name` gives it.
    pub(super) async fn list_one(
        &mut self,
        user: &str,
        info: &MailboxInfo,
    ) -> Option<Response<'static>> {
        let listing = self.store.listing(user).await.unwrap_or_default();
        // The names kept in memory may be up to a second behind another process.
        let here = Listed {
            name: info.name.clone(),
            special_use: info.special_use.clone(),
            subscribed: false,
            exists: true,
        };
        let entry = Entry {
            listed: Some(&here),
            child_info: Vec::new(),
        };
        self.entry_response(&listing, &info.name, &entry, false, false)
            .map(|(response, _)| response)
    }
}

/// The extended data item for the selection options children meet (RFC 5258 3.5).
fn child_info(options: &[&'static str]) -> Vec<MboxListExtendedItem<'static>> {
    let options: Vec<ListSelectBaseOpt<'static>> = options
        .iter()
        .filter_map(|&option| match option {
            "SUBSCRIBED" => Some(ListSelectBaseOpt::Subscribed),
            other => Some(ListSelectBaseOpt::Extension(ListSelectBaseOptExtension {
                tag: ListSelectBaseOptExtensionTag::try_from(Atom::try_from(other).ok()?).ok()?,
                value: None,
            })),
        })
        .collect();
    Vec1::try_from(options)
        .map(|options| vec![MboxListExtendedItem::ChildInfo(options)])
        .unwrap_or_default()
}

/// The parents of `name`, nearest last ("a/b/c": "a", "a/b").
fn parents(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices('/').map(move |(i, _)| &name[..i])
}

/// Plain LIST: every mailbox the patterns match, and the parents only implied by
/// mailboxes below them (`\Noselect`), so that a client walking the tree with `%`
/// finds "Lists" above "Lists/rust".
fn all_entries<'a>(
    listing: &'a [Listed],
    matches: &dyn Fn(&str) -> bool,
) -> BTreeMap<String, Entry<'a>> {
    let mut entries = BTreeMap::new();
    for m in listing.iter().filter(|m| m.exists) {
        for up in parents(&m.name) {
            if matches(up) {
                entries.entry(up.to_string()).or_insert(Entry {
                    listed: None,
                    child_info: Vec::new(),
                });
            }
        }
    }
    for m in listing.iter().filter(|m| m.exists && matches(&m.name)) {
        entries.insert(
            m.name.clone(),
            Entry {
                listed: Some(m),
                child_info: Vec::new(),
            },
        );
    }
    entries
}

/// LSUB (RFC 3501 6.3.9): the subscribed names the patterns match (a mailbox that is
/// gone too, as `\Noselect`), and a parent the pattern stops at of a subscribed name
/// it does not match (`%` with "foo/bar" subscribed lists "foo" as `\Noselect`).
fn lsub_entries<'a>(
    listing: &'a [Listed],
    matches: &dyn Fn(&str) -> bool,
) -> BTreeMap<String, Entry<'a>> {
    let mut entries = BTreeMap::new();
    for m in listing.iter().filter(|m| m.subscribed) {
        if matches(&m.name) {
            entries.insert(
                m.name.clone(),
                Entry {
                    listed: Some(m),
                    child_info: Vec::new(),
                },
            );
        } else {
            for up in parents(&m.name).filter(|up| matches(up)) {
                entries.entry(up.to_string()).or_insert(Entry {
                    listed: None,
                    child_info: Vec::new(),
                });
            }
        }
    }
    entries
}

/// LIST with a selection option: the names the option chooses that the patterns
/// match, and with RECURSIVEMATCH (`why` is then the option) also a name the patterns
/// match with a chosen child they do not match, told with CHILDINFO (RFC 5258 3.5).
fn selected_entries<'a>(
    listing: &'a [Listed],
    matches: &dyn Fn(&str) -> bool,
    chosen: impl Fn(&Listed) -> bool,
    why: Option<&'static str>,
) -> BTreeMap<String, Entry<'a>> {
    let by_name: BTreeMap<&str, &Listed> = listing.iter().map(|m| (m.name.as_str(), m)).collect();
    let mut entries = BTreeMap::new();
    for m in listing.iter().filter(|m| chosen(m)) {
        if matches(&m.name) {
            entries
                .entry(m.name.clone())
                .or_insert(Entry {
                    listed: Some(m),
                    child_info: Vec::new(),
                })
                .listed = Some(m);
            continue;
        }
        let Some(why) = why else { continue };
        for up in parents(&m.name).filter(|up| matches(up)) {
            let entry = entries.entry(up.to_string()).or_insert(Entry {
                // A parent that is a mailbox, or a subscription, is told as such.
                listed: by_name.get(up).copied(),
                child_info: Vec::new(),
            });
            if !entry.child_info.contains(&why) {
                entry.child_info.push(why);
            }
        }
    }
    entries
}
