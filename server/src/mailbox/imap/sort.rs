//! SORT and THREAD (RFC 5256): the keys of a message (base subject, sent date, first
//! addresses), the order SORT puts messages in, and the threads of ORDEREDSUBJECT and
//! REFERENCES. Strings compare by their upper case (close to `i;unicode-casemap`); ties
//! keep the mailbox order.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::num::NonZeroU32;

use imap_codec::imap_types::core::{NString, Vec1, Vec2};
use imap_codec::imap_types::envelope::Address;
use imap_codec::imap_types::extensions::sort::{SortCriterion, SortKey};
use imap_codec::imap_types::extensions::thread::Thread;

use super::structure;
use crate::mailbox::store::MessageInfo;

/// What SORT and THREAD compare of one message.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    /// The number reported: the sequence number, or the UID.
    pub number: u32,
    pub seq: u32,
    pub arrival: i64,
    /// The sent date (RFC 5256 2.2): the Date header in UTC, else the arrival.
    pub date: i64,
    pub size: u64,
    pub modseq: u64,
    /// The base subject (RFC 5256 2.1), upper case.
    pub subject: String,
    /// Whether the subject had a reply or forward marker taken off.
    pub reply: bool,
    /// The first From, To and Cc address's mailbox part, upper case.
    pub from: String,
    pub to: String,
    pub cc: String,
    pub message_id: Option<String>,
    /// The References (or In-Reply-To) message ids, oldest first.
    pub references: Vec<String>,
}

impl Keys {
    /// The keys of a message from its index entry and its header (`None` when its
    /// file is gone: only the index's keys then).
    pub fn of(number: u32, seq: u32, info: &MessageInfo, header: Option<&[u8]>) -> Keys {
        let mut keys = Keys {
            number,
            seq,
            arrival: info.internal_date,
            date: info.internal_date,
            size: info.size,
            modseq: info.modseq,
            ..Keys::default()
        };
        let Some(header) = header else { return keys };
        let parsed = structure::parser().parse_headers(header);
        if let Some(message) = &parsed {
            if let Some(date) = message.date().filter(|d| d.is_valid()) {
                keys.date = date.to_timestamp();
            }
            let (subject, reply) = base_subject(message.subject().unwrap_or_default());
            keys.subject = subject.to_uppercase();
            keys.reply = reply;
        }
        let envelope = structure::envelope(header);
        keys.from = first_mailbox(&envelope.from);
        keys.to = first_mailbox(&envelope.to);
        keys.cc = first_mailbox(&envelope.cc);
        keys.message_id =
            structure::raw_header(header, "Message-ID").and_then(|v| message_ids(&v).next());
        keys.references = match structure::raw_header(header, "References") {
            Some(v) if message_ids(&v).next().is_some() => message_ids(&v).collect(),
            _ => structure::raw_header(header, "In-Reply-To")
                .and_then(|v| message_ids(&v).next())
                .into_iter()
                .collect(),
        };
        keys
    }
}

fn first_mailbox(addresses: &[Address<'_>]) -> String {
    addresses
        .first()
        .and_then(|a| nstring(&a.mailbox))
        .unwrap_or_default()
        .to_uppercase()
}

fn nstring(s: &NString<'_>) -> Option<String> {
    s.0.as_ref()
        .map(|s| String::from_utf8_lossy(s.as_ref()).into_owned())
}

/// The message ids (`<...>` with an `@`, without the brackets) in a header value.
fn message_ids(value: &str) -> impl Iterator<Item = String> + '_ {
    value.split('<').skip(1).filter_map(|rest| {
        let id: String = rest.split('>').next()?.split_whitespace().collect();
        (id.contains('@') && !id.starts_with('@') && !id.ends_with('@')).then_some(id)
    })
}

/// RFC 5256 2.1: the base subject, and whether a reply or forward marker came off.
pub fn base_subject(subject: &str) -> (String, bool) {
    // (1) Whitespace runs become one space.
    let mut s = String::with_capacity(subject.len());
    for c in subject.chars() {
        let c = if c.is_whitespace() { ' ' } else { c };
        if !(c == ' ' && s.ends_with(' ')) {
            s.push(c);
        }
    }
    let mut reply = false;
    loop {
        // (2) Trailing "(fwd)" and spaces.
        loop {
            let trimmed = s.trim_end_matches(' ').len();
            if trimmed < s.len() {
                s.truncate(trimmed);
            } else if s.len() >= 5 && s.as_bytes()[s.len() - 5..].eq_ignore_ascii_case(b"(fwd)") {
                s.truncate(s.len() - 5);
                reply = true;
            } else {
                break;
            }
        }
        // (3)-(5) Leaders, and a leading blob that leaves something.
        loop {
            let mut changed = false;
            while let Some(end) = leader(s.as_bytes()) {
                reply |= s.as_bytes()[0] != b' ';
                s.drain(..end);
                changed = true;
            }
            if let Some(end) = blob(s.as_bytes(), 0)
                && s[end..].bytes().any(|b| b != b' ')
            {
                s.drain(..end);
                changed = true;
            }
            if !changed {
                break;
            }
        }
        // (6) "[fwd: ...]" around the whole.
        if s.len() >= 6 && s.as_bytes()[..5].eq_ignore_ascii_case(b"[fwd:") && s.ends_with(']') {
            s = s[5..s.len() - 1].to_string();
            reply = true;
            continue;
        }
        return (s, reply);
    }
}

/// The end of a subj-blob (`[...]` and the spaces after it) starting at `at`.
fn blob(s: &[u8], at: usize) -> Option<usize> {
    if s.get(at) != Some(&b'[') {
        return None;
    }
    let close = at + 1 + s[at + 1..].iter().position(|&b| b == b']' || b == b'[')?;
    if s[close] != b']' {
        return None;
    }
    let mut end = close + 1;
    while s.get(end) == Some(&b' ') {
        end += 1;
    }
    Some(end)
}

/// The end of a subj-leader at the start: a space, or blobs and `re`/`fw`/`fwd`
/// (with an optional blob) and a colon.
fn leader(s: &[u8]) -> Option<usize> {
    if s.first() == Some(&b' ') {
        return Some(1);
    }
    let mut at = 0;
    while let Some(end) = blob(s, at) {
        at = end;
    }
    let rest = &s[at..];
    let word = if rest.len() >= 2 && rest[..2].eq_ignore_ascii_case(b"re") {
        2
    } else if rest.len() >= 2 && rest[..2].eq_ignore_ascii_case(b"fw") {
        if rest.get(2).is_some_and(|b| b.eq_ignore_ascii_case(&b'd')) {
            3
        } else {
            2
        }
    } else {
        return None;
    };
    at += word;
    while s.get(at) == Some(&b' ') {
        at += 1;
    }
    if let Some(end) = blob(s, at) {
        at = end;
    }
    (s.get(at) == Some(&b':')).then_some(at + 1)
}

/// Orders two messages by the SORT criteria, the mailbox order last.
fn compare(a: &Keys, b: &Keys, criteria: &[SortCriterion]) -> Ordering {
    for criterion in criteria {
        let order = match criterion.key {
            SortKey::Arrival => a.arrival.cmp(&b.arrival),
            SortKey::Cc => a.cc.cmp(&b.cc),
            SortKey::Date => a.date.cmp(&b.date),
            SortKey::From => a.from.cmp(&b.from),
            SortKey::Size => a.size.cmp(&b.size),
            SortKey::Subject => a.subject.cmp(&b.subject),
            SortKey::To => a.to.cmp(&b.to),
            // Not advertised (SORT=DISPLAY): parsed, refused before sorting.
            SortKey::DisplayFrom | SortKey::DisplayTo => Ordering::Equal,
        };
        let order = if criterion.reverse {
            order.reverse()
        } else {
            order
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    a.seq.cmp(&b.seq)
}

/// Whether every criterion is one this server sorts by.
pub fn supported(criteria: &[SortCriterion]) -> bool {
    !criteria
        .iter()
        .any(|c| matches!(c.key, SortKey::DisplayFrom | SortKey::DisplayTo))
}

/// SORT: the numbers of `messages` in the order of `criteria`.
pub fn sort(mut messages: Vec<Keys>, criteria: &[SortCriterion]) -> Vec<NonZeroU32> {
    messages.sort_by(|a, b| compare(a, b, criteria));
    messages
        .iter()
        .filter_map(|m| NonZeroU32::new(m.number))
        .collect()
}

/// A node of a thread tree: a message, or a dummy (`None`) that holds siblings.
#[derive(Debug)]
struct Node {
    message: Option<usize>,
    children: Vec<usize>,
    parent: Option<usize>,
}

/// The threads being built: the nodes and the messages they hold.
struct Tree<'a> {
    nodes: Vec<Node>,
    messages: &'a [Keys],
}

impl Tree<'_> {
    fn new(messages: &[Keys]) -> Tree<'_> {
        Tree {
            nodes: Vec::new(),
            messages,
        }
    }

    fn add(&mut self, message: Option<usize>) -> usize {
        self.nodes.push(Node {
            message,
            children: Vec::new(),
            parent: None,
        });
        self.nodes.len() - 1
    }

    fn is_ancestor(&self, ancestor: usize, mut node: usize) -> bool {
        loop {
            if node == ancestor {
                return true;
            }
            match self.nodes[node].parent {
                Some(p) => node = p,
                None => return false,
            }
        }
    }

    fn unlink(&mut self, child: usize) {
        if let Some(parent) = self.nodes[child].parent.take() {
            self.nodes[parent].children.retain(|&c| c != child);
        }
    }

    fn link(&mut self, parent: usize, child: usize) {
        self.unlink(child);
        self.nodes[child].parent = Some(parent);
        self.nodes[parent].children.push(child);
    }

    /// The message a node is dated and named by: its own, or its first child's.
    fn first_message(&self, node: usize) -> Option<&Keys> {
        match self.nodes[node].message {
            Some(m) => Some(&self.messages[m]),
            None => self.nodes[node]
                .children
                .first()
                .and_then(|&c| self.first_message(c)),
        }
    }

    fn by_date(&self, a: usize, b: usize) -> Ordering {
        match (self.first_message(a), self.first_message(b)) {
            (Some(a), Some(b)) => a.date.cmp(&b.date).then(a.seq.cmp(&b.seq)),
            (a, b) => a.is_some().cmp(&b.is_some()),
        }
    }

    /// Sorts every set of siblings under `nodes` by date, the deepest first, then
    /// `nodes` themselves.
    fn sort_siblings(&mut self, nodes: &mut [usize]) {
        for &node in nodes.iter() {
            let mut children = std::mem::take(&mut self.nodes[node].children);
            self.sort_siblings(&mut children);
            self.nodes[node].children = children;
        }
        nodes.sort_by(|&a, &b| self.by_date(a, b));
    }

    /// The IMAP form of the thread under `node`.
    fn thread(&self, node: usize) -> Option<Thread> {
        let mut prefix = Vec::new();
        let mut at = node;
        loop {
            if let Some(m) = self.nodes[at].message
                && let Some(n) = NonZeroU32::new(self.messages[m].number)
            {
                prefix.push(n);
            }
            match self.nodes[at].children.as_slice() {
                [only] => at = *only,
                _ => break,
            }
        }
        let mut answers: Vec<Thread> = self.nodes[at]
            .children
            .iter()
            .filter_map(|&c| self.thread(c))
            .collect();
        let prefix = Vec1::try_from(prefix).ok();
        if answers.len() == 1 {
            // A lone answer continues the thread.
            let answer = answers.pop()?;
            let Some(prefix) = prefix else {
                return Some(answer);
            };
            return Some(match answer {
                Thread::Members {
                    prefix: more,
                    answers,
                } => {
                    let mut all = prefix.into_inner();
                    all.extend(more.into_inner());
                    Thread::Members {
                        prefix: Vec1::try_from(all).ok()?,
                        answers,
                    }
                }
                Thread::Nested { answers } => Thread::Members {
                    prefix,
                    answers: Some(answers),
                },
            });
        }
        let answers = Vec2::try_from(answers).ok();
        match (prefix, answers) {
            (Some(prefix), answers) => Some(Thread::Members { prefix, answers }),
            (None, Some(answers)) => Some(Thread::Nested { answers }),
            (None, None) => None,
        }
    }
}

/// THREAD=ORDEREDSUBJECT: messages grouped by base subject, each group under its
/// earliest message, the groups in the order of their first message's date.
pub fn ordered_subject(mut messages: Vec<Keys>) -> Vec<Thread> {
    messages.sort_by(|a, b| {
        a.subject
            .cmp(&b.subject)
            .then(a.date.cmp(&b.date))
            .then(a.seq.cmp(&b.seq))
    });
    let mut tree = Tree::new(&messages);
    let mut roots: Vec<usize> = Vec::new();
    let mut last: Option<(usize, &str)> = None;
    for (i, m) in messages.iter().enumerate() {
        let node = tree.add(Some(i));
        match last {
            Some((root, subject)) if subject == m.subject => tree.link(root, node),
            _ => {
                roots.push(node);
                last = Some((node, &m.subject));
            }
        }
    }
    roots.sort_by(|&a, &b| tree.by_date(a, b));
    roots.iter().filter_map(|&r| tree.thread(r)).collect()
}

/// THREAD=REFERENCES (RFC 5256 3): the messages linked by their References, the
/// dummies pruned, the roots gathered by base subject, every sibling set by date.
pub fn references(messages: Vec<Keys>) -> Vec<Thread> {
    let mut tree = Tree::new(&messages);
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut container = |tree: &mut Tree, id: &str| -> usize {
        *ids.entry(id.to_string()).or_insert_with(|| tree.add(None))
    };
    let mut mine = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        // (1) A message's own container: by its id unless the id is taken.
        let node = match &m.message_id {
            Some(id) => {
                let node = container(&mut tree, id);
                if tree.nodes[node].message.is_none() {
                    tree.nodes[node].message = Some(i);
                    node
                } else {
                    tree.add(Some(i))
                }
            }
            None => tree.add(Some(i)),
        };
        mine.push(node);
        // (1A) The references linked in order, keeping links made before.
        let mut previous: Option<usize> = None;
        for id in &m.references {
            let node = container(&mut tree, id);
            if let Some(parent) = previous
                && tree.nodes[node].parent.is_none()
                && !tree.is_ancestor(node, parent)
            {
                tree.link(parent, node);
            }
            previous = Some(node);
        }
        // (1B) The message under its last reference: the parent that references of
        // other messages gave it goes first, even when the new link would be a loop.
        tree.unlink(node);
        if let Some(parent) = previous
            && !tree.is_ancestor(node, parent)
        {
            tree.link(parent, node);
        }
    }
    // (2) The roots; (4) dummies pruned.
    let mut roots: Vec<usize> = (0..tree.nodes.len())
        .filter(|&n| tree.nodes[n].parent.is_none())
        .collect();
    roots = prune(&mut tree, roots, true);
    // (5)(6) Roots with the same base subject gathered.
    roots.sort_by(|&a, &b| tree.by_date(a, b));
    let mut subjects: HashMap<String, usize> = HashMap::new();
    let subject_of = |tree: &Tree, node: usize| -> Option<(String, bool)> {
        let m = tree.first_message(node)?;
        (!m.subject.is_empty()).then(|| (m.subject.clone(), m.reply))
    };
    for &root in &roots {
        let Some((subject, _)) = subject_of(&tree, root) else {
            continue;
        };
        let replace = match subjects.get(&subject) {
            None => true,
            Some(&other) => {
                let (dummy, other_dummy) = (
                    tree.nodes[root].message.is_none(),
                    tree.nodes[other].message.is_none(),
                );
                let reply = |n: usize| tree.nodes[n].message.is_some_and(|m| messages[m].reply);
                (dummy && !other_dummy) || (reply(other) && !reply(root) && !other_dummy)
            }
        };
        if replace {
            subjects.insert(subject, root);
        }
    }
    let mut merged = Vec::new();
    for &root in &roots {
        let Some((subject, _)) = subject_of(&tree, root) else {
            merged.push(root);
            continue;
        };
        let Some(&other) = subjects.get(&subject) else {
            merged.push(root);
            continue;
        };
        if other == root {
            merged.push(root);
            continue;
        }
        let dummy = |n: usize| tree.nodes[n].message.is_none();
        let reply = |n: usize| tree.nodes[n].message.is_some_and(|m| messages[m].reply);
        if dummy(root) && dummy(other) {
            for child in std::mem::take(&mut tree.nodes[root].children) {
                tree.nodes[child].parent = None;
                tree.link(other, child);
            }
        } else if dummy(other) {
            tree.link(other, root);
        } else if dummy(root) {
            // The table holds a dummy whenever a dummy root has the subject.
            merged.push(root);
        } else if reply(root) && !reply(other) {
            tree.link(other, root);
        } else {
            let parent = tree.add(None);
            tree.link(parent, other);
            tree.link(parent, root);
            subjects.insert(subject, parent);
            match merged.iter_mut().find(|n| **n == other) {
                Some(slot) => *slot = parent,
                None => merged.push(parent),
            }
        }
    }
    // (7) Every sibling set by date, the roots last.
    tree.sort_siblings(&mut merged);
    merged.iter().filter_map(|&r| tree.thread(r)).collect()
}

/// RFC 5256 3 (4): dummies without children go; a dummy's children take its place,
/// except at the root where a dummy with several children stays.
fn prune(tree: &mut Tree, nodes: Vec<usize>, at_root: bool) -> Vec<usize> {
    let mut out = Vec::new();
    for node in nodes {
        let children = std::mem::take(&mut tree.nodes[node].children);
        let children = prune(tree, children, false);
        for &c in &children {
            tree.nodes[c].parent = Some(node);
        }
        tree.nodes[node].children = children;
        if tree.nodes[node].message.is_some() {
            out.push(node);
            continue;
        }
        let children = tree.nodes[node].children.len();
        if children == 0 || (at_root && children > 1) {
            if children > 0 {
                out.push(node);
            }
            continue;
        }
        for child in std::mem::take(&mut tree.nodes[node].children) {
            tree.nodes[child].parent = None;
            out.push(child);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_subjects_as_rfc_5256_extracts_them() {
        let base = |s: &str| base_subject(s).0;
        assert_eq!(base("a"), "a");
        assert_eq!(base("[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)"), "b");
        assert_eq!(base("Re: [FWD: c]"), "c");
        assert_eq!(base("[xyz]"), "[xyz]");
        assert_eq!(base(" "), "");
        assert_eq!(base("b (a)"), "b (a)");
        assert_eq!(base("Re[2]: re:  hello\tworld "), "hello world");
        assert!(base_subject("Re: x").1);
        assert!(!base_subject("[list] x").1);
        assert_eq!(base("[list] x"), "x");
    }

    fn keys(n: u32, date: i64, subject: &str, id: &str, refs: &[&str]) -> Keys {
        let (subject, reply) = base_subject(subject);
        Keys {
            number: n,
            seq: n,
            date,
            subject: subject.to_uppercase(),
            reply,
            message_id: (!id.is_empty()).then(|| id.to_string()),
            references: refs.iter().map(|s| s.to_string()).collect(),
            ..Keys::default()
        }
    }

    fn text(threads: &[Thread]) -> String {
        threads.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn references_thread_replies_under_their_parents() {
        let messages = vec![
            keys(1, 10, "hello", "a@x", &[]),
            keys(2, 20, "Re: hello", "b@x", &["a@x"]),
            keys(3, 30, "Re: hello", "c@x", &["a@x"]),
            keys(4, 40, "Re: hello", "d@x", &["a@x", "b@x"]),
            keys(5, 5, "other", "e@x", &[]),
            // Its parent is missing: the dummy is pruned, it is a root of its own,
            // then gathered under the thread of its subject.
            keys(6, 60, "Re: hello", "f@x", &["gone@x"]),
        ];
        assert_eq!(text(&references(messages)), "(5)(1 (2 4)(3)(6))");
    }

    /// imaptest's `thread`: the third message's id was referenced by the second, which
    /// it references back; its first parent goes, and the loop is not made.
    #[test]
    fn references_loops_are_broken_where_the_message_says() {
        let messages = vec![
            keys(1, 17, "", "a@b", &[]),
            keys(2, 15, "", "b@b", &["a@b", "c@b"]),
            keys(3, 16, "", "c@b", &["b@b"]),
        ];
        assert_eq!(text(&references(messages)), "(3 2)(1)");
    }

    #[test]
    fn ordered_subject_groups_by_subject_under_the_first() {
        let messages = vec![
            keys(1, 10, "b", "", &[]),
            keys(2, 5, "a", "", &[]),
            keys(3, 30, "Re: b", "", &[]),
            keys(4, 40, "re: B", "", &[]),
            keys(5, 50, "a", "", &[]),
        ];
        assert_eq!(text(&ordered_subject(messages)), "(2 5)(1 (3)(4))");
    }
}
