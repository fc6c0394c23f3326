//! SEARCH (RFC 3501 6.4.4): evaluating search keys against one message. Strings match
//! as case-insensitive substrings of decoded header values and decoded body text.

use std::cell::OnceCell;

use imap_codec::imap_types::core::AString;
use imap_codec::imap_types::search::SearchKey;
use mail_parser::{Address, HeaderValue, Message, PartType};

use super::structure;
use crate::mailbox::store::MessageInfo;

/// Whether any key needs the message's bytes (headers or text).
pub fn needs_bytes(keys: &[SearchKey<'_>]) -> bool {
    keys.iter().any(|key| match key {
        SearchKey::And(keys) => needs_bytes(keys.as_ref()),
        SearchKey::Not(key) => needs_bytes(std::slice::from_ref(key.as_ref())),
        SearchKey::Or(a, b) => {
            needs_bytes(std::slice::from_ref(a.as_ref()))
                || needs_bytes(std::slice::from_ref(b.as_ref()))
        }
        SearchKey::Bcc(_)
        | SearchKey::Body(_)
        | SearchKey::Cc(_)
        | SearchKey::From(_)
        | SearchKey::Header(..)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_)
        | SearchKey::Subject(_)
        | SearchKey::Text(_)
        | SearchKey::To(_) => true,
        _ => false,
    })
}

/// Whether the keys look past the header (BODY, TEXT): without them the header of each
/// message is enough.
pub fn needs_body(keys: &[SearchKey<'_>]) -> bool {
    keys.iter().any(|key| match key {
        SearchKey::And(keys) => needs_body(keys.as_ref()),
        SearchKey::Not(key) => needs_body(std::slice::from_ref(key.as_ref())),
        SearchKey::Or(a, b) => {
            needs_body(std::slice::from_ref(a.as_ref()))
                || needs_body(std::slice::from_ref(b.as_ref()))
        }
        SearchKey::Body(_) | SearchKey::Text(_) => true,
        _ => false,
    })
}

/// Whether the keys use anything this server does not implement.
pub fn supported(keys: &[SearchKey<'_>]) -> bool {
    keys.iter().all(|key| match key {
        SearchKey::And(keys) => supported(keys.as_ref()),
        SearchKey::Not(key) => supported(std::slice::from_ref(key.as_ref())),
        SearchKey::Or(a, b) => {
            supported(std::slice::from_ref(a.as_ref()))
                && supported(std::slice::from_ref(b.as_ref()))
        }
        SearchKey::SequenceSet(_)
        | SearchKey::All
        | SearchKey::Answered
        | SearchKey::Bcc(_)
        | SearchKey::Before(_)
        | SearchKey::Body(_)
        | SearchKey::Cc(_)
        | SearchKey::Deleted
        | SearchKey::Draft
        | SearchKey::Flagged
        | SearchKey::From(_)
        | SearchKey::Header(..)
        | SearchKey::Keyword(_)
        | SearchKey::Larger(_)
        | SearchKey::ModSequence { .. }
        | SearchKey::New
        | SearchKey::Old
        | SearchKey::On(_)
        | SearchKey::Recent
        | SearchKey::Seen
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_)
        | SearchKey::Since(_)
        | SearchKey::Smaller(_)
        | SearchKey::Subject(_)
        | SearchKey::Text(_)
        | SearchKey::To(_)
        | SearchKey::Uid(_)
        | SearchKey::Unanswered
        | SearchKey::Undeleted
        | SearchKey::Undraft
        | SearchKey::Unflagged
        | SearchKey::Unkeyword(_)
        | SearchKey::Unseen => true,
        #[allow(unreachable_patterns)]
        _ => false,
    })
}

/// One message as SEARCH sees it.
pub struct Candidate<'a> {
    pub seq: u32,
    pub info: &'a MessageInfo,
    /// The message, when a key needs it (see [`needs_bytes`]).
    pub bytes: Option<&'a [u8]>,
    /// The largest sequence number and UID in the mailbox, for `*`.
    pub last_seq: u32,
    pub last_uid: u32,
    /// Whether the message is \Recent in the searching session.
    pub recent: bool,
    /// Whether the message is in the session's saved search result (`$`, SEARCHRES).
    pub saved: bool,
    parsed: OnceCell<Option<Message<'a>>>,
}

impl<'a> Candidate<'a> {
    pub fn new(
        seq: u32,
        info: &'a MessageInfo,
        bytes: Option<&'a [u8]>,
        last_seq: u32,
        last_uid: u32,
    ) -> Candidate<'a> {
        Candidate {
            seq,
            info,
            bytes,
            last_seq,
            last_uid,
            recent: false,
            saved: false,
            parsed: OnceCell::new(),
        }
    }

    fn message(&self) -> Option<&Message<'a>> {
        self.parsed
            .get_or_init(|| self.bytes.and_then(|b| super::structure::parser().parse(b)))
            .as_ref()
    }

    fn header(&self) -> &'a [u8] {
        let bytes = self.bytes.unwrap_or_default();
        super::wire::split_message(bytes).0
    }

    fn has(&self, flag: &str) -> bool {
        self.info.flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
    }

    fn internal_date(&self) -> Option<chrono::NaiveDate> {
        chrono::DateTime::from_timestamp(self.info.internal_date, 0).map(|d| d.date_naive())
    }

    fn sent_date(&self) -> Option<chrono::NaiveDate> {
        let date = self.message()?.date()?;
        chrono::NaiveDate::from_ymd_opt(
            i32::from(date.year),
            u32::from(date.month),
            u32::from(date.day),
        )
    }

    fn address_text(&self, name: &str) -> String {
        let mut text = String::new();
        if let Some(HeaderValue::Address(address)) =
            self.message().and_then(|m| m.header(name.to_string()))
        {
            let addrs: Vec<&mail_parser::Addr<'_>> = match address {
                Address::List(list) => list.iter().collect(),
                Address::Group(groups) => groups.iter().flat_map(|g| g.addresses.iter()).collect(),
            };
            for a in addrs {
                for w in [a.name.as_deref(), a.address.as_deref()]
                    .into_iter()
                    .flatten()
                {
                    text.push_str(w);
                    text.push(' ');
                }
            }
            if let Address::Group(groups) = address {
                for n in groups.iter().filter_map(|g| g.name.as_deref()) {
                    text.push_str(n);
                    text.push(' ');
                }
            }
        }
        // Also the raw value, so that odd addresses mail-parser gives up on still match.
        for (field, value) in structure::fields(self.header()) {
            if field.eq_ignore_ascii_case(name.as_bytes()) {
                text.push_str(&String::from_utf8_lossy(value));
            }
        }
        text
    }

    fn subject(&self) -> String {
        let decoded = self.message().and_then(|m| m.subject()).unwrap_or_default();
        let raw = structure::raw_header(self.header(), "Subject").unwrap_or_default();
        format!("{decoded}\n{raw}")
    }

    fn header_value(&self, name: &str) -> Option<String> {
        let mut values = Vec::new();
        if let Some(m) = self.message() {
            for h in m.headers() {
                if h.name.as_str().eq_ignore_ascii_case(name) {
                    values.push(value_text(&h.value));
                }
            }
        }
        let mut found = !values.is_empty();
        for (field, _) in structure::fields(self.header()) {
            if field.eq_ignore_ascii_case(name.as_bytes()) {
                found = true;
            }
        }
        if let Some(raw) = structure::raw_header(self.header(), name) {
            values.push(raw);
        }
        found.then(|| values.join("\n"))
    }

    fn body_text(&self) -> String {
        let mut text = String::new();
        if let Some(m) = self.message() {
            for part in m.parts.iter() {
                match &part.body {
                    PartType::Text(t) | PartType::Html(t) => {
                        text.push_str(t);
                        text.push('\n');
                    }
                    _ => {}
                }
            }
        }
        let bytes = self.bytes.unwrap_or_default();
        text.push_str(&String::from_utf8_lossy(
            super::wire::split_message(bytes).1,
        ));
        text
    }
}

fn value_text(value: &HeaderValue<'_>) -> String {
    match value {
        HeaderValue::Text(t) => t.to_string(),
        HeaderValue::TextList(list) => list.join(" "),
        HeaderValue::Address(Address::List(list)) => list
            .iter()
            .flat_map(|a| [a.name.as_deref(), a.address.as_deref()])
            .flatten()
            .collect::<Vec<_>>()
            .join(" "),
        HeaderValue::Address(Address::Group(groups)) => groups
            .iter()
            .flat_map(|g| g.addresses.iter())
            .flat_map(|a| [a.name.as_deref(), a.address.as_deref()])
            .flatten()
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn contains(haystack: &str, needle: &AString<'_>) -> bool {
    let needle = String::from_utf8_lossy(needle.as_ref()).to_lowercase();
    haystack.to_lowercase().contains(&needle)
}

/// Whether all keys match the message.
pub fn matches_all(keys: &[SearchKey<'_>], c: &Candidate<'_>) -> bool {
    keys.iter().all(|k| matches(k, c))
}

pub fn matches(key: &SearchKey<'_>, c: &Candidate<'_>) -> bool {
    let date = |d: &imap_codec::imap_types::datetime::NaiveDate| *d.as_ref();
    match key {
        SearchKey::And(keys) => matches_all(keys.as_ref(), c),
        SearchKey::SequenceSet(set) | SearchKey::Uid(set) if set.is_last_command() => c.saved,
        SearchKey::SequenceSet(set) => super::wire::in_set(set, c.seq, c.last_seq),
        SearchKey::Uid(set) => super::wire::in_set(set, c.info.uid, c.last_uid),
        SearchKey::All => true,
        SearchKey::Answered => c.has("\\Answered"),
        SearchKey::Deleted => c.has("\\Deleted"),
        SearchKey::Draft => c.has("\\Draft"),
        SearchKey::Flagged => c.has("\\Flagged"),
        SearchKey::Seen => c.has("\\Seen"),
        SearchKey::Unanswered => !c.has("\\Answered"),
        SearchKey::Undeleted => !c.has("\\Deleted"),
        SearchKey::Undraft => !c.has("\\Draft"),
        SearchKey::Unflagged => !c.has("\\Flagged"),
        SearchKey::Unseen => !c.has("\\Seen"),
        SearchKey::Keyword(k) => c.has(k.as_ref()),
        SearchKey::Unkeyword(k) => !c.has(k.as_ref()),
        SearchKey::Recent => c.recent,
        SearchKey::New => c.recent && !c.has("\\Seen"),
        SearchKey::Old => !c.recent,
        SearchKey::Larger(n) => c.info.size > u64::from(*n),
        // RFC 7162 3.1.5: one MODSEQ per message here, so the entry name is ignored.
        SearchKey::ModSequence { modseq, .. } => c.info.modseq >= *modseq,
        SearchKey::Smaller(n) => c.info.size < u64::from(*n),
        SearchKey::Before(d) => c.internal_date().is_some_and(|x| x < date(d)),
        SearchKey::On(d) => c.internal_date().is_some_and(|x| x == date(d)),
        SearchKey::Since(d) => c.internal_date().is_some_and(|x| x >= date(d)),
        SearchKey::SentBefore(d) => c.sent_date().is_some_and(|x| x < date(d)),
        SearchKey::SentOn(d) => c.sent_date().is_some_and(|x| x == date(d)),
        SearchKey::SentSince(d) => c.sent_date().is_some_and(|x| x >= date(d)),
        SearchKey::From(s) => contains(&c.address_text("From"), s),
        SearchKey::To(s) => contains(&c.address_text("To"), s),
        SearchKey::Cc(s) => contains(&c.address_text("Cc"), s),
        SearchKey::Bcc(s) => contains(&c.address_text("Bcc"), s),
        SearchKey::Subject(s) => contains(&c.subject(), s),
        SearchKey::Header(name, value) => {
            let name = String::from_utf8_lossy(name.as_ref()).into_owned();
            c.header_value(&name)
                .is_some_and(|v| value.as_ref().is_empty() || contains(&v, value))
        }
        SearchKey::Body(s) => contains(&c.body_text(), s),
        SearchKey::Text(s) => {
            contains(&String::from_utf8_lossy(c.header()), s)
                || c.message().is_some_and(|m| {
                    m.headers()
                        .iter()
                        .any(|h| contains(&value_text(&h.value), s))
                })
                || contains(&c.body_text(), s)
        }
        SearchKey::Not(key) => !matches(key, c),
        SearchKey::Or(a, b) => matches(a, c) || matches(b, c),
        #[allow(unreachable_patterns)]
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imap_codec::CommandCodec;
    use imap_codec::decode::Decoder;
    use imap_codec::imap_types::command::CommandBody;

    fn keys(criteria: &str) -> Vec<SearchKey<'static>> {
        let line = format!("a SEARCH {criteria}\r\n");
        let (_, command) = CommandCodec::default().decode(line.as_bytes()).unwrap();
        match imap_codec::imap_types::ToStatic::to_static(&command).body {
            CommandBody::Search { criteria, .. } => criteria.into_iter().collect(),
            other => panic!("{other:?}"),
        }
    }

    fn info(uid: u32, flags: &[&str], size: u64, internal_date: i64) -> MessageInfo {
        MessageInfo {
            uid,
            modseq: 1,
            flags: flags.iter().map(|f| f.to_string()).collect(),
            internal_date,
            size,
            file: String::new(),
        }
    }

    const ONE: &[u8] = b"From: =?UTF-8?Q?Zo=C3=AB?= <zoe@example.org>\r\nTo: bob@example.test\r\nCc: carl@example.test\r\nSubject: =?UTF-8?B?TGVja2VyZXMgRXNzZW4=?=\r\nDate: Tue, 3 Mar 2026 10:00:00 +0000\r\nX-Tag: alpha\r\n\r\nThe quick brown fox\r\n";
    const TWO: &[u8] = b"From: ann@example.org\r\nSubject: plain\r\n\r\nlazy dog\r\n";

    fn run(criteria: &str) -> Vec<u32> {
        run_keys(keys(criteria))
    }

    fn run_keys(keys: Vec<SearchKey<'static>>) -> Vec<u32> {
        let infos = [
            info(5, &["\\Seen", "$Work"], 3000, 1_772_532_000), // 2026-03-03
            info(9, &[], 100, 1_700_000_000),                   // 2023-11-14
        ];
        let bytes = [ONE, TWO];
        assert!(supported(&keys));
        (0..2)
            .filter(|&i| {
                let c = Candidate::new(i as u32 + 1, &infos[i], Some(bytes[i]), 2, 9);
                matches_all(&keys, &c)
            })
            .map(|i| infos[i].uid)
            .collect()
    }

    #[test]
    fn keys_match_flags_sizes_dates_and_text() {
        assert_eq!(run("ALL"), [5, 9]);
        assert_eq!(run("SEEN"), [5]);
        assert_eq!(run("UNSEEN"), [9]);
        assert_eq!(run("KEYWORD $Work"), [5]);
        assert_eq!(run("UNKEYWORD $Work"), [9]);
        assert_eq!(run("LARGER 1000"), [5]);
        assert_eq!(run("SMALLER 1000"), [9]);
        assert_eq!(run("SINCE 1-Jan-2026"), [5]);
        assert_eq!(run("BEFORE 1-Jan-2026"), [9]);
        assert_eq!(run("ON 3-Mar-2026"), [5]);
        assert_eq!(run("SENTON 3-Mar-2026"), [5]);
        assert_eq!(run("SENTBEFORE 3-Mar-2026"), Vec::<u32>::new());
        assert_eq!(run("SENTSINCE 3-Mar-2026"), [5]);
        let zoe = AString::try_from("ZOË").unwrap();
        assert_eq!(run_keys(vec![SearchKey::From(zoe)]), [5]);
        assert_eq!(run("FROM ANN"), [9]);
        assert_eq!(run("FROM example.org"), [5, 9]);
        assert_eq!(run("TO bob"), [5]);
        assert_eq!(run("CC carl"), [5]);
        assert_eq!(run("BCC carl"), Vec::<u32>::new());
        assert_eq!(run("SUBJECT essen"), [5]);
        assert_eq!(run("BODY FOX"), [5]);
        assert_eq!(run("TEXT lazy"), [9]);
        assert_eq!(run("TEXT plain"), [9]);
        assert_eq!(run("HEADER X-Tag alpha"), [5]);
        assert_eq!(run("HEADER X-Tag \"\""), [5]);
        assert_eq!(run("NOT SEEN"), [9]);
        assert_eq!(run("OR SEEN SMALLER 200"), [5, 9]);
        assert_eq!(run("(SEEN LARGER 10)"), [5]);
        assert_eq!(run("2"), [9]);
        assert_eq!(run("1:*"), [5, 9]);
        assert_eq!(run("UID 9"), [9]);
        assert_eq!(run("UID 6:*"), [9]);
        assert_eq!(run("NEW"), Vec::<u32>::new());
        assert_eq!(run("OLD UNDELETED UNDRAFT UNFLAGGED UNANSWERED"), [5, 9]);
        assert!(needs_bytes(&keys("OR SEEN FROM x")));
        assert!(!needs_bytes(&keys("OR SEEN UID 1")));
    }

    #[test]
    fn odd_messages_do_not_match_or_panic() {
        let i = info(1, &[], 10, 0);
        for bytes in [&b""[..], b"\xff\xfe", b"From: <<<\r\n\r\n"] {
            let c = Candidate::new(1, &i, Some(bytes), 1, 1);
            for k in [
                "FROM x",
                "SUBJECT x",
                "SENTON 1-Jan-2020",
                "BODY x",
                "HEADER a b",
            ] {
                assert!(!matches_all(&keys(k), &c), "{k}");
            }
        }
    }
}
