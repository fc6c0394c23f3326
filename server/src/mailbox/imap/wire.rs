//! Conversions between the store's plain values (UTF-8 names, flag strings, UIDs,
//! Unix times) and imap-types' wire values: mailbox names in modified UTF-7, LIST
//! patterns, sequence sets, flags, dates, UID sets and message sections.

use std::num::NonZeroU32;

use imap_codec::imap_types::core::{
    AString, Atom, IString, Literal, LiteralMode, NString, NString8, Text, Vec1,
};
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::extensions::binary::Literal8;
use imap_codec::imap_types::extensions::uidplus::{UidElement, UidSet};
use imap_codec::imap_types::extensions::utf8::QuotedUtf8;
use imap_codec::imap_types::flag::{Flag, FlagFetch};
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use mailsite_shared::utf7;

use crate::mailbox::store::names;

/// How a session spells mailbox names on the wire: in modified UTF-7 (RFC 3501 5.1.3),
/// or, once the client enabled UTF8=ACCEPT, in UTF-8 as they are (RFC 6855 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Names {
    Utf7,
    Utf8,
}

/// A mailbox name from the wire, checked: decoded, then canonical.
pub fn mailbox_name(mailbox: &Mailbox<'_>, names: Names) -> Result<String, String> {
    let raw = raw_mailbox(mailbox, names)?;
    names::canonical(&raw).map_err(|e| format!("Refused: {e}"))
}

/// A mailbox name from the wire, decoded but not checked (LIST references may be empty).
pub fn raw_mailbox(mailbox: &Mailbox<'_>, names: Names) -> Result<String, String> {
    match mailbox {
        Mailbox::Inbox => Ok("INBOX".to_string()),
        Mailbox::Other(other) => decode(other.as_ref(), names),
    }
}

/// A LIST pattern from the wire, decoded.
pub fn list_pattern(pattern: &ListMailbox<'_>, names: Names) -> Result<String, String> {
    match pattern {
        ListMailbox::Token(token) => decode(token.as_ref(), names),
        ListMailbox::String(string) => decode(string.as_ref(), names),
    }
}

fn decode(bytes: &[u8], names: Names) -> Result<String, String> {
    let text = std::str::from_utf8(bytes).ok();
    match names {
        Names::Utf7 => text
            .and_then(utf7::decode)
            .ok_or_else(|| "The mailbox name is not valid modified UTF-7".to_string()),
        Names::Utf8 => text
            .map(str::to_string)
            .ok_or_else(|| "The mailbox name is not valid UTF-8".to_string()),
    }
}

/// A store name as the wire spells it.
pub fn wire_mailbox(name: &str, names: Names) -> Option<Mailbox<'static>> {
    match names {
        Names::Utf7 => Mailbox::try_from(utf7::encode(name)).ok(),
        // A quoted UTF-8 string (RFC 6855 3) where an atom will not do, not a literal.
        Names::Utf8 if !name.is_ascii() => {
            let quoted = QuotedUtf8::try_from(name.to_string()).ok()?;
            Some(Mailbox::from(AString::String(IString::QuotedUtf8(quoted))))
        }
        Names::Utf8 => Mailbox::try_from(name.to_string()).ok(),
    }
}

/// Whether a LIST pattern (`*` anything, `%` anything but the delimiter) matches a name.
/// INBOX matches case-insensitively, as its name is.
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    let pattern = match pattern.get(..5) {
        Some(head) if head.eq_ignore_ascii_case("INBOX") && name.starts_with("INBOX") => {
            format!("INBOX{}", &pattern[5..])
        }
        _ => pattern.to_string(),
    };
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    matches_from(&p, &n)
}

fn matches_from(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => (0..=n.len()).any(|i| matches_from(&p[1..], &n[i..])),
        Some('%') => (0..=n.len())
            .take_while(|&i| i == 0 || n[i - 1] != '/')
            .any(|i| matches_from(&p[1..], &n[i..])),
        Some(c) => n.first() == Some(c) && matches_from(&p[1..], &n[1..]),
    }
}

/// Resolves a sequence set against the selected mailbox's UIDs (ascending), giving
/// (sequence number, UID) pairs in ascending order. Sequence numbers past the end are an
/// error; UIDs that do not exist are simply not there (RFC 3501 6.4.8). `$` (SEARCHRES,
/// RFC 5182) is the `saved` UIDs (ascending) still in the mailbox, for UID commands and
/// others alike.
pub fn resolve(
    set: &SequenceSet,
    uids: &[u32],
    saved: &[u32],
    by_uid: bool,
) -> Result<Vec<(u32, u32)>, String> {
    if set.is_last_command() {
        return Ok(uids
            .iter()
            .enumerate()
            .map(|(i, &uid)| (i as u32 + 1, uid))
            .filter(|(_, uid)| saved.binary_search(uid).is_ok())
            .collect());
    }
    let largest = if by_uid {
        uids.last().copied().unwrap_or(0)
    } else {
        uids.len() as u32
    };
    let value = |v: &SeqOrUid| match v {
        SeqOrUid::Value(n) => n.get(),
        SeqOrUid::Asterisk => largest,
    };
    let mut ranges = Vec::new();
    for sequence in set.0.as_ref() {
        let (a, b) = match sequence {
            Sequence::Single(v) => (value(v), value(v)),
            Sequence::Range(a, b) => (value(a), value(b)),
            // Only ever a whole set, resolved above.
            Sequence::LastCommand => continue,
        };
        let (lo, hi) = (a.min(b), a.max(b));
        if !by_uid && (hi > largest || lo == 0) {
            return Err("No such message: the sequence number is past the last message".into());
        }
        ranges.push((lo, hi));
    }
    let inside = |x: u32| ranges.iter().any(|&(lo, hi)| lo <= x && x <= hi);
    Ok(uids
        .iter()
        .enumerate()
        .map(|(i, &uid)| (i as u32 + 1, uid))
        .filter(|&(seq, uid)| inside(if by_uid { uid } else { seq }))
        .collect())
}

/// A flag as the store keeps it (`\Seen`, `$Junk`).
pub fn flag_name(flag: &Flag<'_>) -> String {
    flag.to_string()
}

/// The store's flags as FETCH FLAGS items (skipping any the wire cannot carry).
pub fn fetch_flags(flags: &[String]) -> Vec<FlagFetch<'static>> {
    flags
        .iter()
        .filter_map(|f| Flag::try_from(f.as_str()).ok())
        .map(|f| FlagFetch::Flag(imap_codec::imap_types::ToStatic::to_static(&f)))
        .collect()
}

/// A Unix time as an INTERNALDATE (UTC).
pub fn internal_date(secs: i64) -> Option<DateTime> {
    let utc = chrono::DateTime::from_timestamp(secs, 0)?;
    DateTime::try_from(utc.fixed_offset()).ok()
}

/// Message bytes as a literal. IMAP4rev1 literals cannot hold NUL; like Dovecot, NUL is
/// sent as 0x80.
pub fn literal(bytes: &[u8]) -> NString<'static> {
    let data: Vec<u8> = bytes
        .iter()
        .map(|&b| if b == 0 { 0x80 } else { b })
        .collect();
    match Literal::try_from(data) {
        Ok(literal) => NString(Some(IString::Literal(literal))),
        Err(_) => NString(None),
    }
}

/// Decoded content for BINARY (RFC 3516): a literal8 (`~{n}`) when it holds NUL,
/// which a literal cannot, otherwise a literal.
pub fn literal8(bytes: &[u8]) -> NString8<'static> {
    if bytes.contains(&0) {
        return NString8::Literal8(Literal8 {
            data: bytes.to_vec().into(),
            mode: LiteralMode::Sync,
        });
    }
    NString8::NString(literal(bytes))
}

/// The header of a message (with the blank line that ends it) and its body.
pub fn split_message(message: &[u8]) -> (&[u8], &[u8]) {
    let end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .or_else(|| message.windows(2).position(|w| w == b"\n\n").map(|p| p + 2))
        .unwrap_or(message.len());
    message.split_at(end)
}

/// UIDs as a UID set, runs of consecutive UIDs as ranges (order kept, for COPYUID).
pub fn uid_set(uids: &[u32]) -> Option<UidSet> {
    let mut elements: Vec<UidElement> = Vec::new();
    let mut run: Option<(u32, u32)> = None;
    let mut push = |run: (u32, u32)| -> Option<()> {
        let (a, b) = (NonZeroU32::new(run.0)?, NonZeroU32::new(run.1)?);
        elements.push(if a == b {
            UidElement::Single(a)
        } else {
            UidElement::Range(a, b)
        });
        Some(())
    };
    for &uid in uids {
        run = match run {
            Some((a, b)) if b.checked_add(1) == Some(uid) => Some((a, uid)),
            Some(done) => {
                push(done)?;
                Some((uid, uid))
            }
            None => Some((uid, uid)),
        };
    }
    push(run?)?;
    Vec1::try_from(elements).ok().map(UidSet)
}

/// Numbers (UIDs or sequence numbers) as a sequence set, runs as ranges, for
/// response codes such as CONDSTORE's MODIFIED.
pub fn sequence_set(numbers: &[u32]) -> Option<SequenceSet> {
    let set = uid_set(numbers)?;
    let elements: Vec<Sequence> = set
        .0
        .as_ref()
        .iter()
        .map(|e| match *e {
            UidElement::Single(a) => Sequence::Single(SeqOrUid::Value(a)),
            UidElement::Range(a, b) => Sequence::Range(SeqOrUid::Value(a), SeqOrUid::Value(b)),
        })
        .collect();
    Vec1::try_from(elements).ok().map(SequenceSet)
}

/// Whether `set` holds `value` (a UID or sequence number), `*` standing for `largest`.
pub fn in_set(set: &SequenceSet, value: u32, largest: u32) -> bool {
    let v = |x: &SeqOrUid| match x {
        SeqOrUid::Value(n) => n.get(),
        SeqOrUid::Asterisk => largest,
    };
    set.0.as_ref().iter().any(|s| match s {
        Sequence::Single(x) => v(x) == value,
        Sequence::Range(a, b) => {
            let (a, b) = (v(a), v(b));
            a.min(b) <= value && value <= a.max(b)
        }
        // `$` is known to the session, which looks at it first (see `resolve`).
        Sequence::LastCommand => false,
    })
}

/// Response text: one line, never empty.
pub fn text(s: &str) -> Text<'static> {
    let line: String = s
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect();
    Text::try_from(line).unwrap_or_else(|_| Text::unvalidated("."))
}

/// An atom known to be valid (capability names, attributes).
pub fn atom(s: &'static str) -> Atom<'static> {
    Atom::try_from(s).unwrap_or_else(|_| Atom::unvalidated("X"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_like_rfc_3501() {
        assert!(pattern_matches("*", "Lists/rust"));
        assert!(!pattern_matches("%", "Lists/rust"));
        assert!(pattern_matches("%", "Lists"));
        assert!(pattern_matches("Lists/%", "Lists/rust"));
        assert!(pattern_matches("inbox", "INBOX"));
        assert!(!pattern_matches("inbox", "Inboxes"));
        assert!(pattern_matches("S*t", "Sent"));
    }

    #[test]
    fn sequence_sets_resolve_against_the_snapshot() {
        let uids = [3, 5, 9];
        let set: SequenceSet = "2:*".parse().unwrap();
        assert_eq!(
            resolve(&set, &uids, &[], false).unwrap(),
            vec![(2, 5), (3, 9)]
        );
        let set: SequenceSet = "4:*".parse().unwrap();
        assert_eq!(
            resolve(&set, &uids, &[], true).unwrap(),
            vec![(2, 5), (3, 9)]
        );
        let set: SequenceSet = "4".parse().unwrap();
        assert!(resolve(&set, &uids, &[], false).is_err());
        assert!(resolve(&set, &uids, &[], true).unwrap().is_empty());
        let set: SequenceSet = "10:*".parse().unwrap();
        assert_eq!(resolve(&set, &uids, &[], true).unwrap(), vec![(3, 9)]);
        // An empty mailbox, as Dovecot 2.3 answers it: `FETCH 1:*` and `FETCH *` name an
        // invalid message set (BAD; RFC 9051 9: `*` is the number of messages "in a
        // non-empty mailbox"), `UID FETCH 1:*` names nothing (OK).
        for starred in ["1:*", "*"] {
            let set: SequenceSet = starred.parse().unwrap();
            assert!(resolve(&set, &[], &[], false).is_err(), "{starred}");
            assert!(
                resolve(&set, &[], &[], true).unwrap().is_empty(),
                "{starred}"
            );
        }
    }

    /// `$` (SEARCHRES) is the saved UIDs still in the mailbox, for UID commands and
    /// sequence-number commands alike; with nothing saved it names nothing (no error).
    #[test]
    fn the_saved_result_resolves_to_the_saved_messages_still_there() {
        let uids = [3, 5, 9];
        let set: SequenceSet = "$".parse().unwrap();
        for by_uid in [true, false] {
            assert_eq!(
                resolve(&set, &uids, &[3, 4, 9], by_uid).unwrap(),
                vec![(1, 3), (3, 9)],
                "4 was expunged"
            );
            assert!(resolve(&set, &uids, &[], by_uid).unwrap().is_empty());
        }
        assert!(!in_set(&set, 3, 9), "only the session knows what `$` holds");
    }

    #[test]
    fn uid_sets_compress_runs() {
        let set = uid_set(&[1, 2, 3, 7]).unwrap();
        assert_eq!(set.0.as_ref().len(), 2);
        assert!(uid_set(&[]).is_none());
    }
}
