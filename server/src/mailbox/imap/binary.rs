//! BINARY (RFC 3516): a part's content with its Content-Transfer-Encoding undone
//! (`FETCH BINARY[1]`, `BINARY.SIZE[1]`), and the other way at APPEND: a part sent
//! with `Content-Transfer-Encoding: binary` (which may hold NULs, and which BODY[]
//! could not show a client that did not ask for BINARY) is kept as base64.

use std::num::NonZeroU32;
use std::ops::Range;

use base64::Engine;

use super::structure::{Kind, Part, Structure};

/// A part whose Content-Transfer-Encoding this server does not decode (the client is
/// told `NO [UNKNOWN-CTE]`).
#[derive(Debug, PartialEq, Eq)]
pub struct UnknownCte(pub String);

/// BINARY[section]: the whole message for `[]`; a message/rfc822 or multipart part
/// as BODY[section] gives it (there is nothing to decode); another part with its
/// transfer encoding undone. A part that does not exist is empty, as with BODY.
pub fn section(structure: &Structure<'_>, path: &[NonZeroU32]) -> Result<Vec<u8>, UnknownCte> {
    let bytes = structure.bytes;
    if path.is_empty() {
        return Ok(bytes.to_vec());
    }
    let Some(part) = structure.find(path) else {
        return Ok(Vec::new());
    };
    match &part.kind {
        Kind::Message(inner) => Ok(bytes[inner.header.start..inner.body.end].to_vec()),
        Kind::Multi(_) => Ok(bytes[part.body.clone()].to_vec()),
        Kind::Single => decode(part.encoding.as_deref(), &bytes[part.body.clone()]),
    }
}

/// `raw` with the transfer encoding `encoding` undone.
pub fn decode(encoding: Option<&str>, raw: &[u8]) -> Result<Vec<u8>, UnknownCte> {
    let encoding = encoding.map(|e| e.trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("" | "7bit" | "8bit" | "binary") => Ok(raw.to_vec()),
        Some("base64") => Ok(base64_decode(raw)),
        Some("quoted-printable") => Ok(quoted_printable_decode(raw)),
        Some(other) => Err(UnknownCte(other.to_string())),
    }
}

/// Base64 as mail carries it: line breaks and other characters outside the alphabet
/// are skipped; what follows the padding, and a last incomplete group, are dropped.
fn base64_decode(raw: &[u8]) -> Vec<u8> {
    let mut clean: Vec<u8> = raw
        .iter()
        .copied()
        .take_while(|&b| b != b'=')
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
        .collect();
    // A single character left over carries no whole octet.
    if clean.len() % 4 == 1 {
        clean.pop();
    }
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(&clean)
        .unwrap_or_default()
}

/// Quoted-printable (RFC 2045 6.7): `=XX` is an octet, `=` at the end of a line joins
/// it to the next, and white space at the end of a line is dropped. A `=` that starts
/// neither is kept as it is.
fn quoted_printable_decode(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let lines: Vec<&[u8]> = raw.split_inclusive(|&b| b == b'\n').collect();
    for line in lines {
        let (text, ending): (&[u8], &[u8]) = match line {
            [rest @ .., b'\r', b'\n'] => (rest, b"\r\n"),
            [rest @ .., b'\n'] => (rest, b"\n"),
            rest => (rest, b""),
        };
        let text = trim_end_blanks(text);
        // Blanks before a soft break are data; only those after it were added.
        let (text, soft) = match text {
            [rest @ .., b'='] => (rest, true),
            _ => (text, false),
        };
        let mut i = 0;
        while i < text.len() {
            if text[i] == b'='
                && let (Some(hi), Some(lo)) = (
                    text.get(i + 1).and_then(|&b| hex(b)),
                    text.get(i + 2).and_then(|&b| hex(b)),
                )
            {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
            out.push(text[i]);
            i += 1;
        }
        if !soft {
            out.extend_from_slice(ending);
        }
    }
    out
}

fn trim_end_blanks(text: &[u8]) -> &[u8] {
    let end = text
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |i| i + 1);
    &text[..end]
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// The message with every part sent as `Content-Transfer-Encoding: binary` turned into
/// base64 (`None` when it has none), for APPEND: BODY[] then never shows raw binary
/// (NULs, lines of any length) to a client that did not ask for BINARY, and BINARY[]
/// still gives each part back as it was sent.
pub fn encode_binary_parts(message: &[u8]) -> Option<Vec<u8>> {
    let structure = Structure::parse(message);
    let mut parts: Vec<&Part> = Vec::new();
    binary_leaves(&structure.root, &mut parts);
    if parts.is_empty() {
        return None;
    }
    let mut out = message.to_vec();
    // From the last part back, so that the ranges of those before stay where they are;
    // in each part its body (after the header) first.
    parts.sort_by_key(|p| std::cmp::Reverse(p.header.start));
    for part in parts {
        let body = &message[part.body.clone()];
        out.splice(part.body.clone(), base64_lines(body));
        let field = encoding_field(&message[part.header.clone()])?;
        let at = part.header.start;
        out.splice(
            at + field.start..at + field.end,
            b"Content-Transfer-Encoding: base64\r\n".iter().copied(),
        );
    }
    Some(out)
}

/// The single (not multipart, not message) parts sent as binary, inside `part`.
fn binary_leaves<'p>(part: &'p Part, out: &mut Vec<&'p Part>) {
    match &part.kind {
        Kind::Multi(parts) => parts.iter().for_each(|p| binary_leaves(p, out)),
        Kind::Message(inner) => binary_leaves(inner, out),
        Kind::Single => {
            if part
                .encoding
                .as_deref()
                .is_some_and(|e| e.trim().eq_ignore_ascii_case("binary"))
            {
                out.push(part);
            }
        }
    }
}

/// Base64 in lines of 76 characters (RFC 2045 6.8), separated by CRLF.
fn base64_lines(body: &[u8]) -> Vec<u8> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(body);
    let lines: Vec<&[u8]> = encoded.as_bytes().chunks(76).collect();
    lines.join(&b"\r\n"[..])
}

/// Where the Content-Transfer-Encoding field is in a header, its folded lines and
/// line ending included.
fn encoding_field(header: &[u8]) -> Option<Range<usize>> {
    let mut start = None;
    let mut at = 0;
    for line in header.split_inclusive(|&b| b == b'\n') {
        // A line of blanks only ends the header, as the structure reads it.
        let folded = matches!(line.first(), Some(b' ' | b'\t')) && !line.trim_ascii().is_empty();
        match start {
            Some(begin) if !folded => return Some(begin..at),
            Some(_) => {}
            None => {
                let name = line.split(|&b| b == b':').next().unwrap_or_default();
                if name
                    .trim_ascii()
                    .eq_ignore_ascii_case(b"Content-Transfer-Encoding")
                {
                    start = Some(at);
                }
            }
        }
        at += line.len();
    }
    start.map(|begin| begin..at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nz(path: &[u32]) -> Vec<NonZeroU32> {
        path.iter().filter_map(|&n| NonZeroU32::new(n)).collect()
    }

    const MIXED: &[u8] = b"From: a@example.org\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\
\r\n\
--b\r\n\
Content-Type: text/plain\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
  aGVs \r\n\
bG8gd29y\r\n\
bGQ=\r\n\
--b\r\n\
Content-Type: text/plain\r\n\
Content-Transfer-Encoding: Quoted-Printable\r\n\
\r\n\
caf=C3=A9 =\r\n\
au lait  \r\n\
--b\r\n\
Content-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: x-uuencode\r\n\
\r\n\
begin 644 x\r\n\
--b--\r\n";

    #[test]
    fn parts_are_decoded_by_their_transfer_encoding() {
        let structure = Structure::parse(MIXED);
        assert_eq!(section(&structure, &nz(&[1])).unwrap(), b"hello world");
        assert_eq!(
            section(&structure, &nz(&[2])).unwrap(),
            "café au lait".as_bytes()
        );
        assert_eq!(
            section(&structure, &nz(&[3])),
            Err(UnknownCte("x-uuencode".to_string()))
        );
        // BINARY[] is the whole message; a part that is not there is empty.
        assert_eq!(section(&structure, &[]).unwrap(), MIXED);
        assert_eq!(section(&structure, &nz(&[9])).unwrap(), b"");
    }

    #[test]
    fn quoted_printable_keeps_blanks_before_a_soft_break_only() {
        let raw = b"hello  \r\nbar=\r\n\r\nfoo\t=\r\nbar\r\nfoo\t \t= \r\n=62\r\n=zz=4\r\n";
        assert_eq!(
            quoted_printable_decode(raw),
            b"hello\r\nbar\r\nfoo\tbar\r\nfoo\t \tb\r\n=zz=4\r\n"
        );
    }

    #[test]
    fn base64_skips_what_is_not_in_its_alphabet() {
        assert_eq!(base64_decode(b" YWJj\r\n ZA= =\r\n"), b"abcd");
        assert_eq!(base64_decode(b"YWJjZ"), b"abc");
        assert_eq!(base64_decode(b"!!!"), b"");
    }

    #[test]
    fn binary_parts_are_kept_as_base64_and_given_back_by_binary() {
        let sent: &[u8] = b"From: a@example.org\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\
\r\n\
--b\r\n\
Content-Type: text/plain\r\n\
\r\n\
text\r\n\
--b\r\n\
Content-Type: application/octet-stream\r\n\
Content-Transfer-Encoding:\r\n\
\x20binary\r\n\
\r\n\
\x00\xe4-\r\n\x00\r\n\
--b--\r\n";
        let kept = encode_binary_parts(sent).expect("a binary part");
        let text = String::from_utf8(kept.clone()).expect("no raw binary left");
        assert!(
            text.contains("Content-Transfer-Encoding: base64\r\n\r\nAOQtDQoA\r\n--b--"),
            "{text}"
        );
        assert!(
            text.contains("Content-Type: text/plain\r\n\r\ntext\r\n"),
            "{text}"
        );
        let structure = Structure::parse(&kept);
        assert_eq!(
            section(&structure, &nz(&[2])).unwrap(),
            b"\x00\xe4-\r\n\x00"
        );
        assert_eq!(section(&structure, &nz(&[1])).unwrap(), b"text");
        // Nothing to change: nothing changed.
        assert_eq!(encode_binary_parts(MIXED), None);
        // A single-part message sent as binary.
        let single = b"Subject: x\r\nContent-Transfer-Encoding: BINARY\r\n\r\n\x00\x01";
        let kept = encode_binary_parts(single).unwrap();
        assert_eq!(
            kept,
            b"Subject: x\r\nContent-Transfer-Encoding: base64\r\n\r\nAAE="
        );
    }
}
