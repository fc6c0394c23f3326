//! What a client must be able to rely on in whatever a server wrote, checked against
//! what it was sent: IMAP responses that imap-codec parses and that carry tags the
//! client used, POP3 and LMTP replies framed as their RFCs say.

use imap_codec::decode::{Decoder, ResponseDecodeError};
use imap_codec::imap_types::response::{Response, Status, StatusKind};
use imap_codec::{GreetingCodec, ResponseCodec};

/// One connection as the client saw it.
pub struct Transcript {
    /// Everything the server wrote.
    pub output: Vec<u8>,
    /// What the server's connection loop returned.
    pub ended: std::io::Result<()>,
}

/// At most this much of the output around a problem, in a panic message.
const SHOWN: usize = 300;

/// Panics with what went wrong in which protocol, the output where it did, and how
/// the connection loop ended.
fn fail(protocol: &str, what: &str, at: &[u8], transcript: &Transcript) -> ! {
    let at = String::from_utf8_lossy(&at[..at.len().min(SHOWN)]);
    panic!(
        "{protocol} {what}: {at:?} (the connection loop returned {:?})",
        transcript.ended
    );
}

/// The lines of client input, each with its ending.
fn lines(input: &[u8]) -> impl Iterator<Item = &[u8]> {
    input.split_inclusive(|&b| b == b'\n')
}

/// IMAP: a greeting, then responses imap-codec parses, to the end of the output (the
/// server answered everything it was sent before the input ended, so nothing is cut
/// off); every tagged response carries a tag that began one of the client's lines.
/// After a tagged OK to STARTTLS the bytes are TLS and are not looked at.
pub fn imap(input: &[u8], transcript: &Transcript) {
    let fail = |what: &str, at: &[u8]| -> ! { fail("IMAP", what, at, transcript) };
    let output = &transcript.output[..];
    let mut rest = match GreetingCodec::default().decode(output) {
        Ok((rest, _)) => rest,
        Err(error) => fail(&format!("greeting ({error:?})"), output),
    };
    let codec = ResponseCodec::default();
    while !rest.is_empty() {
        let response = match codec.decode(rest) {
            Ok((next, response)) => {
                rest = next;
                response
            }
            Err(ResponseDecodeError::Failed) => fail("response imap-codec cannot parse", rest),
            Err(error) => fail(&format!("output ends inside a response ({error:?})"), rest),
        };
        let Response::Status(Status::Tagged(tagged)) = &response else {
            continue;
        };
        let tag = tagged.tag.inner().as_bytes();
        let began = |line: &&[u8]| {
            line.starts_with(tag)
                && matches!(line.get(tag.len()), None | Some(b' ' | b'\r' | b'\n'))
        };
        if !lines(input).any(|l| began(&l)) {
            fail("tagged response with a tag the client never sent", tag);
        }
        let starttls = |line: &[u8]| {
            let words: Vec<&[u8]> = line.trim_ascii().split(|&b| b == b' ').collect();
            words
                .get(1)
                .is_some_and(|w| w.eq_ignore_ascii_case(b"STARTTLS"))
        };
        if tagged.body.kind == StatusKind::Ok && lines(input).filter(began).any(starttls) {
            return;
        }
    }
}

/// Splits the next line off `output`: it must end with CRLF, hold no other CR or LF,
/// and, if it is a status or reply line, no control characters (a client that shows or
/// logs it must not be tricked).
fn line<'a>(
    protocol: &str,
    output: &mut &'a [u8],
    status: bool,
    transcript: &Transcript,
) -> &'a [u8] {
    let Some(end) = output.iter().position(|&b| b == b'\n') else {
        fail(protocol, "output ends without CRLF", output, transcript);
    };
    let line = &output[..=end];
    let text = &line[..end];
    if text.last() != Some(&b'\r') || text[..end - 1].contains(&b'\r') {
        fail(protocol, "line with a bare CR or LF", line, transcript);
    }
    if status
        && text[..end - 1]
            .iter()
            .any(|&b| b < b' ' && b != b'\t' || b == 0x7f)
    {
        fail(
            protocol,
            "reply line with a control character",
            line,
            transcript,
        );
    }
    *output = &output[end + 1..];
    line
}

/// POP3: the output is the greeting and one reply per command line, in order, each
/// `+OK` or `-ERR` (or `+ ` to AUTH, whose next line is then the SASL response); the
/// multi-line ones (CAPA, LIST and UIDL without an argument, RETR, TOP) end with a lone
/// dot and dot-stuff their lines. Lines are framed as the server reads them: up to
/// 1024 octets and LF, anything longer refused and skipped.
pub fn pop3(input: &[u8], transcript: &Transcript) {
    use crate::mailbox::pop3::MAX_LINE;
    let fail = |what: &str, at: &[u8]| -> ! { fail("POP3", what, at, transcript) };
    let mut output = &transcript.output[..];
    let greeting = line("POP3", &mut output, true, transcript);
    if !greeting.starts_with(b"+OK ") {
        fail("greeting", greeting);
    }
    let mut rest = input;
    let mut sasl = false;
    while !rest.is_empty() {
        let window = &rest[..rest.len().min(MAX_LINE + 1)];
        let (verb, args) = match window.iter().position(|&b| b == b'\n') {
            Some(end) => {
                let text = String::from_utf8_lossy(&rest[..end + 1]).into_owned();
                rest = &rest[end + 1..];
                let command = text.trim_end_matches(['\r', '\n']).to_string();
                let (verb, args) = command.split_once(' ').unwrap_or((&command, ""));
                match std::mem::take(&mut sasl) {
                    true => (String::new(), String::new()),
                    false => (verb.to_ascii_uppercase(), args.to_string()),
                }
            }
            None => {
                // Too long (or cut off by the end of input): refused, and skipped to
                // the end of its line.
                rest = &rest[window.len()..];
                let skip = &rest[..rest.len().min(1 << 20)];
                let end = skip
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(skip.len(), |p| p + 1);
                rest = &rest[end..];
                (String::new(), String::new())
            }
        };
        let status = line("POP3", &mut output, true, transcript);
        if verb == "AUTH" && status.starts_with(b"+ ") {
            sasl = true;
            continue;
        }
        let ok = status.starts_with(b"+OK") && matches!(status[3], b' ' | b'\r');
        let err = status.starts_with(b"-ERR") && matches!(status[4], b' ' | b'\r');
        if !ok && !err {
            fail(&format!("reply to {verb:?}"), status);
        }
        let multiline = match verb.as_str() {
            "CAPA" | "RETR" | "TOP" => true,
            "LIST" | "UIDL" => args.is_empty(),
            _ => false,
        };
        if ok && multiline {
            loop {
                let body = line("POP3", &mut output, false, transcript);
                if body == b".\r\n" {
                    break;
                }
                if body.starts_with(b".") && !body.starts_with(b"..") {
                    fail(&format!("{verb} line not dot-stuffed"), body);
                }
            }
        }
        if verb == "QUIT" || (verb == "STLS" && ok) {
            return;
        }
    }
    if !output.is_empty() {
        fail("output past the last reply", output);
    }
}

/// LMTP: every line is a reply line, a three-digit code from 2xx to 5xx, then a space
/// or (continued) a hyphen, ending with CRLF; the first is the 220 greeting.
pub fn lmtp(transcript: &Transcript) {
    reply_lines("LMTP", transcript, |_| {});
}

/// SMTP: reply lines as LMTP's, up to a 220 after the greeting (the answer to
/// STARTTLS: what follows is TLS); and the spool holds exactly the messages whose
/// queue ids "250 2.0.0 Ok: queued as" replies gave, no more (nothing unacknowledged
/// stays queued) and no fewer (nothing acknowledged is missing).
pub fn smtp(transcript: &Transcript, spool: &[String]) {
    let mut acknowledged = Vec::new();
    reply_lines("SMTP", transcript, |reply| {
        if let Some(id) = reply.strip_prefix(b"250 2.0.0 Ok: queued as ") {
            acknowledged.push(String::from_utf8_lossy(id).trim_end().to_string());
        }
    });
    let mut queued = spool.to_vec();
    acknowledged.sort();
    queued.sort();
    if acknowledged != queued {
        let what = format!("spool holds {queued:?} after acknowledging {acknowledged:?}");
        fail("SMTP", &what, &transcript.output, transcript);
    }
}

/// ManageSieve: the output is responses, each data lines (strings: quoted, or a
/// `{n}` literal and its n octets; a capability or script name, `ACTIVE`) ending in
/// an `OK`, `NO` or `BYE` status line; the greeting ends in OK; nothing follows BYE;
/// after the OK to STARTTLS the bytes are TLS and are not looked at.
pub fn managesieve(transcript: &Transcript) {
    let fail = |what: &str, at: &[u8]| -> ! { fail("ManageSieve", what, at, transcript) };
    let mut output = &transcript.output[..];
    let mut statuses = 0;
    while !output.is_empty() {
        let whole = line("ManageSieve", &mut output, false, transcript);
        // A literal goes on after its octets, to the end of the line that follows.
        let mut tail = whole;
        while let Some(open) = tail.iter().rposition(|&b| b == b'{')
            && tail.ends_with(b"}\r\n")
            && let Ok(n) = std::str::from_utf8(&tail[open + 1..tail.len() - 3])
                .unwrap_or("")
                .parse::<usize>()
        {
            if output.len() < n {
                fail("output ends inside a literal", tail);
            }
            output = &output[n..];
            tail = line("ManageSieve", &mut output, false, transcript);
        }
        let status = ["OK", "NO", "BYE"].iter().any(|s| {
            whole.starts_with(s.as_bytes()) && matches!(whole.get(s.len()), Some(b' ' | b'\r'))
        });
        if status {
            statuses += 1;
            if whole.contains(&0) || whole.iter().any(|&b| b < b' ' && b != b'\r' && b != b'\n') {
                fail("status line with a control character", whole);
            }
            if whole.starts_with(b"BYE") && !output.is_empty() {
                fail("output after BYE", output);
            }
            if whole.starts_with(b"OK \"Begin TLS negotiation now\"") {
                return;
            }
        } else if !matches!(whole.first(), Some(b'"' | b'{')) {
            fail("line that is neither a status nor a string", whole);
        } else if statuses == 0 && !whole.starts_with(b"\"") {
            fail("greeting line that is not a capability", whole);
        }
    }
    if statuses == 0 {
        fail("no greeting", &transcript.output);
    }
}

/// SMTP and LMTP: every line is a reply line, a three-digit code from 2xx to 5xx, then
/// a space or (continued) a hyphen, ending with CRLF; the first is the 220 greeting. A
/// later 220 answers STARTTLS: the bytes after it are TLS and are not looked at. Each
/// reply line goes to `seen`.
fn reply_lines(protocol: &str, transcript: &Transcript, mut seen: impl FnMut(&[u8])) {
    let mut output = &transcript.output[..];
    let mut first = true;
    while !output.is_empty() {
        let reply = line(protocol, &mut output, true, transcript);
        let well_formed = reply.len() >= 6
            && (b'2'..=b'5').contains(&reply[0])
            && reply[1..3].iter().all(u8::is_ascii_digit)
            && matches!(reply[3], b' ' | b'-');
        if !well_formed || (first && !reply.starts_with(b"220 ")) {
            fail(protocol, "reply line", reply, transcript);
        }
        seen(reply);
        if !first && reply.starts_with(b"220 ") {
            return;
        }
        first = false;
    }
}
