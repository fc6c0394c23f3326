//! The bounds on what an IMAP client may send, checked on the input before the
//! protocol parser sees it, so that refused input is never buffered.
//!
//! imap-next buffers a whole command, literals included, up to one size fixed for the
//! connection (the largest APPEND). Before a client has logged in that is far too
//! much: `a LOGIN {40000000}` would be answered `+` and 40 MiB held per connection.
//! The [`Gate`] follows the input the way imap-next's fragmentizer does (lines, and
//! literals announced at their end) and passes it on only within the current
//! [`Limits`]: a line is held back until it is whole (at most `line` bytes), a literal
//! streams through. What breaks a limit is a [`Refusal`] for the connection to answer:
//! - a line too long: the rest of it is skipped as it arrives, never stored;
//! - a synchronising literal too large: the command is dropped and answered `BAD`,
//!   with no `+`, so the client never sends it;
//! - a non-synchronising literal (LITERAL+, RFC 7888) too large: the client is
//!   already sending it, so the connection is answered `BAD` and closed (as Dovecot
//!   does) rather than reading it.
//!
//! A refusal in the middle of a command whose first parts imap-next already has ends
//! that command with a byte no IMAP command may contain, so imap-next discards it as
//! malformed (and answers `BAD`) instead of acting on a truncated command.

use imap_codec::imap_types::core::Tag;

/// How much a client may send in one go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest line, literals not included.
    pub line: usize,
    /// The largest literal.
    pub literal: u32,
    /// The longest command, literals included (`None`: only imap-next's own bound).
    pub command: Option<u64>,
}

/// Before logging in: enough for any LOGIN or AUTHENTICATE, and for the largest ID a
/// client may send (RFC 2971: 30 fields of up to 1,024 octets, about 31 KiB on one
/// line, which Dovecot takes too).
pub const BEFORE_LOGIN: Limits = Limits {
    line: 32 * 1024,
    literal: 8 * 1024,
    command: Some(40 * 1024),
};

/// After logging in: Dovecot's 64 KiB lines; literals (APPEND) up to the message limit.
pub const AFTER_LOGIN: Limits = Limits {
    line: 64 * 1024,
    literal: super::MAX_LITERAL,
    command: None,
};

/// What the client sent that breaks the limits, with the tag of its command when
/// it has a usable one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A line too long; its rest is skipped.
    LineTooLong(Option<Tag<'static>>),
    /// A synchronising literal too large; the command is dropped.
    LiteralTooLarge(Option<Tag<'static>>),
    /// A non-synchronising literal too large; the connection must close.
    NonSyncLiteralTooLarge(Option<Tag<'static>>),
}

/// The line parser's view of the last bytes, as imap-codec's fragmentizer has it.
#[derive(Debug, Clone, Copy)]
enum Latest {
    Other,
    Open,
    Digit(u32),
    Plus(u32),
    Close(u32, bool),
    Cr(Option<(u32, bool)>),
}

/// Where the gate is in the client's input.
#[derive(Debug, Clone, Copy)]
enum Place {
    /// In a line, held back until it is whole.
    Line(Latest),
    /// In a literal: this many bytes still pass straight through.
    Literal(u32),
    /// Skipping the rest of a refused line.
    Skip,
}

/// Follows a client's input and passes on what is within the limits.
#[derive(Debug)]
pub struct Gate {
    limits: Limits,
    place: Place,
    /// The line being received (held back until whole).
    line: Vec<u8>,
    /// Input not yet looked at (what followed a refusal).
    unread: Vec<u8>,
    /// Bytes of the current command passed on so far.
    command: u64,
}

/// Ends a partly passed command so that imap-next refuses it as malformed.
const POISON: &[u8] = b" \0\r\n";

impl Gate {
    pub fn new(limits: Limits) -> Gate {
        Gate {
            limits,
            place: Place::Line(Latest::Other),
            line: Vec::new(),
            unread: Vec::new(),
            command: 0,
        }
    }

    /// Applies other limits from the next byte on (after login).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Input from the client, looked at by the next [`Gate::pass`].
    pub fn push(&mut self, input: &[u8]) {
        self.unread.extend_from_slice(input);
    }

    /// Whether input waits to be looked at (after a refusal).
    pub fn has_unread(&self) -> bool {
        !self.unread.is_empty()
    }

    /// Moves what is within the limits to `out`, stopping at the first refusal (the
    /// input after it is kept for the next call).
    pub fn pass(&mut self, out: &mut Vec<u8>) -> Option<Refusal> {
        let unread = std::mem::take(&mut self.unread);
        let mut at = 0;
        let mut refusal = None;
        while at < unread.len() && refusal.is_none() {
            let rest = &unread[at..];
            match self.place {
                Place::Literal(remaining) => {
                    let n = rest.len().min(remaining as usize);
                    out.extend_from_slice(&rest[..n]);
                    self.command += n as u64;
                    at += n;
                    self.place = match remaining - n as u32 {
                        0 => Place::Line(Latest::Other),
                        left => Place::Literal(left),
                    };
                }
                Place::Skip => match rest.iter().position(|&b| b == b'\n') {
                    Some(end) => {
                        at += end + 1;
                        self.end_command();
                    }
                    None => at = unread.len(),
                },
                Place::Line(latest) => {
                    let (used, refused) = self.line_bytes(latest, rest, out);
                    at += used;
                    refusal = refused;
                }
            }
        }
        // Kept only when a refusal stopped the loop; an idle connection keeps no buffer.
        if at < unread.len() {
            self.unread = unread[at..].to_vec();
        }
        refusal
    }

    /// Takes line bytes from `input` until the line is whole or refused; returns the
    /// bytes used.
    fn line_bytes(
        &mut self,
        mut latest: Latest,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> (usize, Option<Refusal>) {
        for (i, &byte) in input.iter().enumerate() {
            if byte == b'\n' {
                self.line.extend_from_slice(&input[..=i]);
                let announcement = match latest {
                    Latest::Cr(a) => a,
                    Latest::Close(n, sync) => Some((n, sync)),
                    _ => None,
                };
                return (i + 1, self.line_done(announcement, out));
            }
            latest = step(latest, byte);
            let length = self.line.len() + i + 1;
            let command = self.command + length as u64;
            if length > self.limits.line || self.limits.command.is_some_and(|c| command > c) {
                self.line.extend_from_slice(&input[..=i]);
                let refusal = Refusal::LineTooLong(self.refused_tag(out));
                self.line = Vec::new();
                self.place = Place::Skip;
                return (i + 1, Some(refusal));
            }
        }
        self.line.extend_from_slice(input);
        self.place = Place::Line(latest);
        (input.len(), None)
    }

    /// A whole line, ending with a literal's announcement or not.
    fn line_done(
        &mut self,
        announcement: Option<(u32, bool)>,
        out: &mut Vec<u8>,
    ) -> Option<Refusal> {
        if let Some((length, sync)) = announcement {
            let total = self.command + self.line.len() as u64 + u64::from(length);
            if length > self.limits.literal || self.limits.command.is_some_and(|c| total > c) {
                let tag = self.refused_tag(out);
                self.line = Vec::new();
                self.end_command();
                return Some(match sync {
                    true => Refusal::LiteralTooLarge(tag),
                    false => Refusal::NonSyncLiteralTooLarge(tag),
                });
            }
        }
        self.command += self.line.len() as u64;
        out.append(&mut self.line);
        self.line = Vec::new();
        match announcement {
            Some((length, _)) if length > 0 => self.place = Place::Literal(length),
            Some(_) => self.place = Place::Line(Latest::Other),
            None => self.end_command(),
        }
        None
    }

    /// The tag to refuse the current command with; a command that imap-next has the
    /// start of is ended so that it is discarded.
    fn refused_tag(&mut self, out: &mut Vec<u8>) -> Option<Tag<'static>> {
        if self.command > 0 {
            out.extend_from_slice(POISON);
            // imap-next answers the poisoned command itself.
            None
        } else {
            tag_of(&self.line)
        }
    }

    fn end_command(&mut self) {
        self.command = 0;
        self.place = Place::Line(Latest::Other);
    }
}

/// One byte (not LF) through the line parser of imap-codec's fragmentizer: what
/// remains is whether the line ends with a literal's announcement (`{n}`, `{n+}`).
fn step(latest: Latest, byte: u8) -> Latest {
    match (latest, byte) {
        (Latest::Close(n, sync), b'\r') => Latest::Cr(Some((n, sync))),
        (_, b'\r') => Latest::Cr(None),
        (_, b'{') => Latest::Open,
        (Latest::Open, b'0'..=b'9') => Latest::Digit(u32::from(byte - b'0')),
        (Latest::Digit(n), b'0'..=b'9') => n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u32::from(byte - b'0')))
            .map_or(Latest::Other, Latest::Digit),
        (Latest::Digit(n), b'+') => Latest::Plus(n),
        (Latest::Digit(n), b'}') => Latest::Close(n, true),
        (Latest::Plus(n), b'}') => Latest::Close(n, false),
        _ => Latest::Other,
    }
}

/// The tag at the start of a command line, if it is a valid one.
pub fn tag_of(line: &[u8]) -> Option<Tag<'static>> {
    let first = line
        .split(|&b| b == b' ' || b == b'\r' || b == b'\n')
        .next()?;
    Tag::try_from(first.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(gate: &mut Gate, input: &[u8]) -> (Vec<u8>, Vec<Refusal>) {
        gate.push(input);
        let mut out = Vec::new();
        let mut refusals = Vec::new();
        for _ in 0..100 {
            match gate.pass(&mut out) {
                Some(r) => refusals.push(r),
                None if !gate.has_unread() => break,
                None => {}
            }
        }
        (out, refusals)
    }

    fn tag(t: &str) -> Option<Tag<'static>> {
        Some(Tag::try_from(t.to_string()).unwrap())
    }

    #[test]
    fn small_commands_and_literals_pass_unchanged() {
        let mut gate = Gate::new(BEFORE_LOGIN);
        let input = b"a CAPABILITY\r\nb LOGIN {5}\r\nalice {6+}\r\nsecret\r\nc NOOP\n";
        let (out, refusals) = run(&mut gate, input);
        assert_eq!(out, input);
        assert!(refusals.is_empty());
    }

    #[test]
    fn input_in_single_bytes_passes_unchanged() {
        let mut gate = Gate::new(BEFORE_LOGIN);
        let input = b"b LOGIN {5}\r\n{}}{x\r {6+}\r\n{4}\r\nx NOOP\r\n";
        let mut out = Vec::new();
        for byte in input {
            gate.push(&[*byte]);
            assert_eq!(gate.pass(&mut out), None);
        }
        assert_eq!(out, input);
    }

    #[test]
    fn a_large_synchronising_literal_is_refused_without_its_line() {
        let mut gate = Gate::new(BEFORE_LOGIN);
        let (out, refusals) = run(&mut gate, b"a LOGIN {40000000}\r\nb NOOP\r\n");
        assert_eq!(out, b"b NOOP\r\n");
        assert_eq!(refusals, vec![Refusal::LiteralTooLarge(tag("a"))]);
    }

    #[test]
    fn a_large_non_synchronising_literal_is_refused_for_closing() {
        let mut gate = Gate::new(BEFORE_LOGIN);
        let (out, refusals) = run(&mut gate, b"a LOGIN {40000000+}\r\nxxxx");
        assert!(out.is_empty());
        assert_eq!(refusals[0], Refusal::NonSyncLiteralTooLarge(tag("a")));
    }

    #[test]
    fn a_long_line_is_refused_and_skipped_without_being_kept() {
        let mut gate = Gate::new(BEFORE_LOGIN);
        gate.push(b"a LOGIN ");
        let mut out = Vec::new();
        assert_eq!(gate.pass(&mut out), None);
        let chunk = vec![b'x'; 4096];
        let mut refusals = Vec::new();
        for _ in 0..1000 {
            gate.push(&chunk);
            refusals.extend(gate.pass(&mut out));
            assert!(gate.line.capacity() <= BEFORE_LOGIN.line * 2);
        }
        let (rest, more) = run(&mut gate, b"yyy\r\nb NOOP\r\n");
        assert!(out.is_empty() && more.is_empty());
        assert_eq!(refusals, vec![Refusal::LineTooLong(tag("a"))]);
        assert_eq!(rest, b"b NOOP\r\n");
    }

    #[test]
    fn a_refusal_after_a_passed_literal_poisons_the_command() {
        let mut gate = Gate::new(BEFORE_LOGIN);
        let (out, refusals) = run(&mut gate, b"a LOGIN {5}\r\nalice {9000}\r\nb NOOP\r\n");
        assert_eq!(out, b"a LOGIN {5}\r\nalice \0\r\nb NOOP\r\n");
        assert_eq!(refusals, vec![Refusal::LiteralTooLarge(None)]);
    }

    #[test]
    fn after_login_the_limits_are_larger() {
        let mut gate = Gate::new(BEFORE_LOGIN);
        gate.set_limits(AFTER_LOGIN);
        let mut input = b"a APPEND INBOX {100000+}\r\n".to_vec();
        input.extend(std::iter::repeat_n(b'm', 100_000));
        input.extend_from_slice(b"\r\n");
        let (out, refusals) = run(&mut gate, &input);
        assert_eq!(out, input);
        assert!(refusals.is_empty());
        let long = vec![b'x'; 70 * 1024];
        let (_, refusals) = run(&mut gate, &long);
        assert_eq!(refusals.len(), 1);
    }

    #[test]
    fn the_command_total_is_bounded_before_login() {
        let mut gate = Gate::new(BEFORE_LOGIN);
        let mut input = Vec::new();
        // Past the bound at the ninth literal (the connection closes after it).
        for _ in 0..9 {
            input.extend_from_slice(b"{5000+}\r\n");
            input.extend(std::iter::repeat_n(b'p', 5000));
        }
        let mut command = b"a LOGIN ".to_vec();
        command.extend(input);
        let (out, refusals) = run(&mut gate, &command);
        let bound = BEFORE_LOGIN.command.unwrap_or_default() as usize;
        assert!(out.len() <= bound + POISON.len(), "{} > {bound}", out.len());
        assert_eq!(refusals.len(), 1);
    }
}
