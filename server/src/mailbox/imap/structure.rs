//! A message's MIME structure for FETCH: ENVELOPE, BODY/BODYSTRUCTURE and section
//! bytes (BODY[1.2], BODY[HEADER.FIELDS (...)], BODY[1.MIME]...). Part boundaries are
//! found on the raw bytes here, so that offsets are exact; header values are decoded
//! with `mail-parser`. Nothing here panics on odd input: missing or broken headers give
//! NIL and the RFC 2045 defaults.

use std::ops::Range;

use imap_codec::imap_types::body::{
    BasicFields, Body, BodyStructure, Disposition, MultiPartExtensionData, SinglePartExtensionData,
    SpecificFields,
};
use imap_codec::imap_types::core::{AString, IString, NString, Vec1};
use imap_codec::imap_types::envelope::{Address, Envelope};
use imap_codec::imap_types::fetch::Section;
use mail_parser::{HeaderValue, Message, MessageParser, MimeHeaders};

/// The header parser for what IMAP reads (ENVELOPE, BODYSTRUCTURE, SEARCH): mail_parser's
/// own parsing of each header, except that Received headers, often the longest, are
/// skipped: nothing here reads their parts (HEADER and TEXT searches read them raw).
/// Built once, not per message.
pub fn parser() -> &'static MessageParser {
    static PARSER: std::sync::LazyLock<MessageParser> = std::sync::LazyLock::new(|| {
        use mail_parser::HeaderName as H;
        // mail_parser's own choice for each header (used when no map is given), as a map.
        let mut parser = MessageParser::new()
            .header_raw(H::MimeVersion)
            .ignore_header(H::Received);
        for name in [
            H::Subject,
            H::Comments,
            H::ContentDescription,
            H::ContentLocation,
            H::ContentTransferEncoding,
        ] {
            parser = parser.header_text(name);
        }
        for name in [
            H::From,
            H::To,
            H::Cc,
            H::Bcc,
            H::ReplyTo,
            H::Sender,
            H::ResentTo,
            H::ResentFrom,
            H::ResentBcc,
            H::ResentCc,
            H::ResentSender,
            H::ListArchive,
            H::ListHelp,
            H::ListId,
            H::ListOwner,
            H::ListPost,
            H::ListSubscribe,
            H::ListUnsubscribe,
        ] {
            parser = parser.header_address(name);
        }
        for name in [H::Date, H::ResentDate] {
            parser = parser.header_date(name);
        }
        for name in [
            H::MessageId,
            H::References,
            H::InReplyTo,
            H::ReturnPath,
            H::ContentId,
            H::ResentMessageId,
        ] {
            parser = parser.header_id(name);
        }
        for name in [H::Keywords, H::ContentLanguage] {
            parser = parser.header_comma_separated(name);
        }
        for name in [H::ContentType, H::ContentDisposition] {
            parser = parser.header_content_type(name);
        }
        parser
    });
    &PARSER
}

/// How deep nested multiparts and messages are followed.
const MAX_DEPTH: usize = 20;

/// One MIME part: where its header and body are in the message, and what it is.
#[derive(Debug)]
pub struct Part {
    pub header: Range<usize>,
    pub body: Range<usize>,
    pub kind: Kind,
    pub ctype: String,
    pub subtype: String,
    pub params: Vec<(String, String)>,
    pub id: Option<String>,
    pub description: Option<String>,
    pub encoding: Option<String>,
    pub disposition: Option<(String, Vec<(String, String)>)>,
}

#[derive(Debug)]
pub enum Kind {
    Single,
    Multi(Vec<Part>),
    /// message/rfc822: the encapsulated message.
    Message(Box<Part>),
}

/// The parsed structure of a whole message.
pub struct Structure<'a> {
    pub bytes: &'a [u8],
    pub root: Part,
}

impl<'a> Structure<'a> {
    pub fn parse(bytes: &'a [u8]) -> Structure<'a> {
        let root = parse_part(bytes, 0..bytes.len(), ("text", "plain"), 0);
        Structure { bytes, root }
    }

    pub fn envelope(&self) -> Envelope<'static> {
        envelope(&self.bytes[self.root.header.clone()])
    }

    /// BODYSTRUCTURE (`extended`) or BODY.
    pub fn body_structure(&self, extended: bool) -> BodyStructure<'static> {
        body_structure(self.bytes, &self.root, extended)
    }

    /// The bytes a section names (`None` for BODY[]). A part that does not exist gives
    /// an empty string, as other servers do.
    pub fn section(&self, section: Option<&Section<'_>>) -> Vec<u8> {
        let b = self.bytes;
        let whole = |p: &Part| b[p.header.start..p.body.end].to_vec();
        match section {
            None => b.to_vec(),
            Some(Section::Header(None)) => b[self.root.header.clone()].to_vec(),
            Some(Section::Text(None)) => b[self.root.body.clone()].to_vec(),
            Some(Section::HeaderFields(None, names)) => {
                header_fields(&b[self.root.header.clone()], names.as_ref(), false)
            }
            Some(Section::HeaderFieldsNot(None, names)) => {
                header_fields(&b[self.root.header.clone()], names.as_ref(), true)
            }
            Some(Section::Part(part)) => match self.find(part.0.as_ref()) {
                Some(p) => match &p.kind {
                    Kind::Message(inner) => whole(inner),
                    _ => b[p.body.clone()].to_vec(),
                },
                None => Vec::new(),
            },
            Some(Section::Mime(part)) => match self.find(part.0.as_ref()) {
                Some(p) => b[p.header.clone()].to_vec(),
                None => Vec::new(),
            },
            Some(
                Section::Header(Some(part))
                | Section::Text(Some(part))
                | Section::HeaderFields(Some(part), _)
                | Section::HeaderFieldsNot(Some(part), _),
            ) => {
                let Some(Part {
                    kind: Kind::Message(inner),
                    ..
                }) = self.find(part.0.as_ref())
                else {
                    return Vec::new();
                };
                let header = &b[inner.header.clone()];
                match section {
                    Some(Section::Header(_)) => header.to_vec(),
                    Some(Section::HeaderFields(_, names)) => {
                        header_fields(header, names.as_ref(), false)
                    }
                    Some(Section::HeaderFieldsNot(_, names)) => {
                        header_fields(header, names.as_ref(), true)
                    }
                    _ => b[inner.body.clone()].to_vec(),
                }
            }
        }
    }

    /// The part a part number (1.2.3) names.
    pub fn find(&self, path: &[std::num::NonZeroU32]) -> Option<&Part> {
        let mut numbers = path.iter().map(|n| n.get() as usize);
        let mut cur = in_message(&self.root, numbers.next()?)?;
        for n in numbers {
            cur = match &cur.kind {
                Kind::Multi(parts) => parts.get(n - 1)?,
                Kind::Message(inner) => in_message(inner, n)?,
                Kind::Single => return None,
            };
        }
        Some(cur)
    }
}

/// Part `n` of a message: a child of its multipart body, or the body itself (1).
fn in_message(message: &Part, n: usize) -> Option<&Part> {
    match &message.kind {
        Kind::Multi(parts) => parts.get(n - 1),
        _ => (n == 1).then_some(message),
    }
}

/// Where the header of `range` ends (after the blank line) and the body starts.
fn split(bytes: &[u8], range: Range<usize>) -> (Range<usize>, Range<usize>) {
    let slice = &bytes[range.clone()];
    let end = if slice.starts_with(b"\r\n") {
        2
    } else if slice.starts_with(b"\n") {
        1
    } else {
        let crlf = slice
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|p| p + 4);
        let lf = slice.windows(2).position(|w| w == b"\n\n").map(|p| p + 2);
        match (crlf, lf) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(slice.len()),
        }
    };
    let mid = range.start + end;
    (range.start..mid, mid..range.end)
}

fn parse_part(bytes: &[u8], range: Range<usize>, default: (&str, &str), depth: usize) -> Part {
    let (header, body) = split(bytes, range);
    let parsed = parser().parse_headers(&bytes[header.clone()]);
    let root = parsed.as_ref().map(|m| m.root_part());
    let content_type = root.and_then(|r| r.content_type());
    let (mut ctype, mut subtype) = match content_type {
        Some(ct) => (
            ct.c_type.to_ascii_lowercase(),
            ct.c_subtype
                .as_deref()
                .unwrap_or_default()
                .to_ascii_lowercase(),
        ),
        None => (default.0.to_string(), default.1.to_string()),
    };
    if ctype.is_empty() || subtype.is_empty() {
        (ctype, subtype) = ("text".to_string(), "plain".to_string());
    }
    let params = content_type.map(attributes).unwrap_or_default();
    let disposition = root
        .and_then(|r| r.content_disposition())
        .map(|d| (d.c_type.to_string(), attributes(d)));
    let boundary = params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.clone())
        .filter(|b| !b.is_empty());
    let kind = if depth >= MAX_DEPTH {
        Kind::Single
    } else if ctype == "multipart" {
        match boundary {
            Some(boundary) => {
                let child_default = if subtype == "digest" {
                    ("message", "rfc822")
                } else {
                    ("text", "plain")
                };
                let parts = multipart_ranges(bytes, body.clone(), boundary.as_bytes())
                    .into_iter()
                    .map(|r| parse_part(bytes, r, child_default, depth + 1))
                    .collect::<Vec<_>>();
                Kind::Multi(parts)
            }
            None => Kind::Multi(Vec::new()),
        }
    } else if ctype == "message" && subtype == "rfc822" {
        Kind::Message(Box::new(parse_part(
            bytes,
            body.clone(),
            ("text", "plain"),
            depth + 1,
        )))
    } else {
        Kind::Single
    };
    let text = |v: Option<&str>| v.map(|s| s.trim().to_string());
    Part {
        header,
        body,
        kind,
        ctype,
        subtype,
        params,
        id: text(root.and_then(|r| r.content_id())).map(|id| format!("<{id}>")),
        description: text(root.and_then(|r| r.content_description())),
        encoding: text(root.and_then(|r| r.content_transfer_encoding())),
        disposition,
    }
}

/// The body ranges of a multipart's parts: between delimiter lines, without the line
/// break that belongs to the next delimiter.
fn multipart_ranges(bytes: &[u8], body: Range<usize>, boundary: &[u8]) -> Vec<Range<usize>> {
    let mut delimiter = b"--".to_vec();
    delimiter.extend_from_slice(boundary);
    let mut ranges = Vec::new();
    let mut start: Option<usize> = None;
    let mut line_start = body.start;
    while line_start < body.end {
        let line_end = bytes[line_start..body.end]
            .iter()
            .position(|&c| c == b'\n')
            .map(|p| line_start + p + 1)
            .unwrap_or(body.end);
        let line = &bytes[line_start..line_end];
        if line.starts_with(&delimiter) {
            let rest = &line[delimiter.len()..];
            let closing = rest.starts_with(b"--");
            let rest = if closing { &rest[2..] } else { rest };
            if rest.iter().all(|c| c.is_ascii_whitespace()) {
                if let Some(s) = start.take() {
                    let mut end = line_start.max(s);
                    if end > s && bytes[end - 1] == b'\n' {
                        end -= 1;
                        if end > s && bytes[end - 1] == b'\r' {
                            end -= 1;
                        }
                    }
                    ranges.push(s..end);
                }
                if closing {
                    return ranges;
                }
                start = Some(line_end);
            }
        }
        line_start = line_end;
    }
    if let Some(s) = start {
        ranges.push(s..body.end);
    }
    ranges
}

fn istring(s: &str) -> Option<IString<'static>> {
    IString::try_from(s.replace('\0', "")).ok()
}

fn nstring(s: Option<&str>) -> NString<'static> {
    NString(s.and_then(istring))
}

/// A header value for the envelope: 8-bit text as RFC 2047 UTF-8, as headers must be.
fn header_text(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect();
    let s = s.trim();
    if s.is_ascii() {
        s.to_string()
    } else {
        format!("=?UTF-8?B?{}?=", base64(s.as_bytes()))
    }
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The raw (undecoded, unfolded) value of the first header field with this name.
pub fn raw_header(header: &[u8], name: &str) -> Option<String> {
    fields(header)
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, field)| unfold_value(field))
}

fn unfold_value(field: &[u8]) -> String {
    let value = match field.iter().position(|&c| c == b':') {
        Some(p) => &field[p + 1..],
        None => field,
    };
    let text = String::from_utf8_lossy(value);
    text.replace("\r\n", "")
        .replace('\n', "")
        .trim()
        .to_string()
}

/// The header fields of a header block: (name, the whole field with its line breaks).
pub fn fields(header: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut out: Vec<(&[u8], &[u8])> = Vec::new();
    let mut start: Option<usize> = None;
    let mut pos = 0;
    fn close<'h>(header: &'h [u8], start: usize, end: usize, out: &mut Vec<(&'h [u8], &'h [u8])>) {
        let field = &header[start..end];
        let name_end = field.iter().position(|&c| c == b':').unwrap_or(field.len());
        let name = field[..name_end].trim_ascii();
        out.push((name, field));
    }
    while pos < header.len() {
        let end = header[pos..]
            .iter()
            .position(|&c| c == b'\n')
            .map(|p| pos + p + 1)
            .unwrap_or(header.len());
        let line = &header[pos..end];
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if !matches!(line.first(), Some(b' ' | b'\t')) {
            if let Some(s) = start {
                close(header, s, pos, &mut out);
            }
            start = Some(pos);
        }
        pos = end;
    }
    if let Some(s) = start {
        close(header, s, pos, &mut out);
    }
    out
}

/// HEADER.FIELDS (or .NOT): the matching fields, then the blank line.
pub fn header_fields(header: &[u8], names: &[AString<'_>], not: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, field) in fields(header) {
        let listed = names
            .iter()
            .any(|n| AsRef::<[u8]>::as_ref(n).eq_ignore_ascii_case(name));
        if listed != not {
            out.extend_from_slice(field);
            if !field.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn addresses(value: Option<&HeaderValue<'_>>) -> Vec<Address<'static>> {
    let Some(HeaderValue::Address(address)) = value else {
        return Vec::new();
    };
    let one = |name: Option<&str>, addr: Option<&str>| -> Address<'static> {
        let addr = addr.unwrap_or_default();
        let (mailbox, host) = match addr.rsplit_once('@') {
            Some((m, h)) => (m, h),
            None => (addr, ""),
        };
        // A source route (`@route:user@domain`, RFC 822) is the address's ADL.
        let (adl, mailbox) = match mailbox.split_once(':') {
            Some((route, local)) if route.starts_with('@') => (Some(route), local),
            _ => (None, mailbox),
        };
        Address {
            name: nstring(name.map(header_text).as_deref()),
            adl: nstring(adl.map(header_text).as_deref()),
            mailbox: nstring(Some(&header_text(mailbox))),
            host: nstring(Some(&header_text(host))),
        }
    };
    match address {
        mail_parser::Address::List(list) => list
            .iter()
            .map(|a| one(a.name.as_deref(), a.address.as_deref()))
            .collect(),
        mail_parser::Address::Group(groups) => {
            let mut out = Vec::new();
            for group in groups {
                match group.name.as_deref() {
                    Some(name) => {
                        out.push(Address {
                            name: NString(None),
                            adl: NString(None),
                            mailbox: nstring(Some(&header_text(name))),
                            host: NString(None),
                        });
                        // A comment in an empty group (`g2: (foo) ;`) is no member.
                        out.extend(
                            group
                                .addresses
                                .iter()
                                .filter(|a| a.address.as_deref().is_some_and(|x| !x.is_empty()))
                                .map(|a| one(a.name.as_deref(), a.address.as_deref())),
                        );
                        out.push(Address {
                            name: NString(None),
                            adl: NString(None),
                            mailbox: NString(None),
                            host: NString(None),
                        });
                    }
                    None => out.extend(
                        group
                            .addresses
                            .iter()
                            .map(|a| one(a.name.as_deref(), a.address.as_deref())),
                    ),
                }
            }
            out
        }
    }
}

/// The ENVELOPE of a header block.
pub fn envelope(header: &[u8]) -> Envelope<'static> {
    let parsed: Option<Message<'_>> = parser().parse_headers(header);
    let raw = |name: &str| raw_header(header, name).map(|v| header_text(&v));
    let list = |name: &str| -> Vec<Address<'static>> {
        parsed
            .as_ref()
            .map(|m| addresses(m.header(name)))
            .unwrap_or_default()
    };
    let from = list("From");
    let mut sender = list("Sender");
    if sender.is_empty() {
        sender = from.clone();
    }
    let mut reply_to = list("Reply-To");
    if reply_to.is_empty() {
        reply_to = from.clone();
    }
    Envelope {
        date: nstring(raw("Date").as_deref()),
        subject: nstring(raw("Subject").as_deref()),
        from,
        sender,
        reply_to,
        to: list("To"),
        cc: list("Cc"),
        bcc: list("Bcc"),
        in_reply_to: nstring(raw("In-Reply-To").as_deref()),
        message_id: nstring(raw("Message-ID").as_deref()),
    }
}

fn pairs(params: &[(String, String)]) -> Vec<(IString<'static>, IString<'static>)> {
    params
        .iter()
        .filter_map(|(k, v)| Some((istring(k)?, istring(&header_text(v))?)))
        .collect()
}

fn lines(bytes: &[u8]) -> u32 {
    let n = bytes.iter().filter(|&&c| c == b'\n').count();
    let trailing = !bytes.is_empty() && !bytes.ends_with(b"\n");
    u32::try_from(n + usize::from(trailing)).unwrap_or(u32::MAX)
}

fn atom_string(s: &str) -> IString<'static> {
    istring(s).unwrap_or_else(|| IString::try_from("x").unwrap_or_else(|_| unreachable!()))
}

fn body_structure(bytes: &[u8], part: &Part, extended: bool) -> BodyStructure<'static> {
    if let Kind::Multi(children) = &part.kind {
        let bodies: Vec<BodyStructure<'static>> = children
            .iter()
            .map(|c| body_structure(bytes, c, extended))
            .collect();
        if let Ok(bodies) = Vec1::try_from(bodies) {
            return BodyStructure::Multi {
                bodies,
                subtype: atom_string(&part.subtype),
                extension_data: extended.then(|| MultiPartExtensionData {
                    parameter_list: pairs(&part.params),
                    tail: None,
                }),
            };
        }
    }
    let mut params = part.params.clone();
    if part.ctype == "text"
        && !params
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("charset"))
    {
        params.push(("charset".to_string(), "us-ascii".to_string()));
    }
    let body_bytes = &bytes[part.body.clone()];
    let basic = BasicFields {
        parameter_list: pairs(&params),
        id: nstring(part.id.as_deref()),
        description: nstring(part.description.as_deref().map(header_text).as_deref()),
        content_transfer_encoding: atom_string(
            &part
                .encoding
                .as_deref()
                .filter(|e| !e.is_empty() && e.is_ascii())
                .unwrap_or("7bit")
                .to_ascii_lowercase(),
        ),
        size: u32::try_from(body_bytes.len()).unwrap_or(u32::MAX),
    };
    let (ctype, subtype) = if matches!(part.kind, Kind::Multi(_)) {
        // A multipart without parts or boundary: describe it as plain text.
        ("text", "plain")
    } else {
        (part.ctype.as_str(), part.subtype.as_str())
    };
    let specific = match &part.kind {
        Kind::Message(inner) => SpecificFields::Message {
            envelope: Box::new(envelope(&bytes[inner.header.clone()])),
            body_structure: Box::new(body_structure(bytes, inner, extended)),
            number_of_lines: lines(body_bytes),
        },
        _ if ctype == "text" => SpecificFields::Text {
            subtype: atom_string(subtype),
            number_of_lines: lines(body_bytes),
        },
        _ => SpecificFields::Basic {
            r#type: atom_string(ctype),
            subtype: atom_string(subtype),
        },
    };
    BodyStructure::Single {
        body: Body { basic, specific },
        extension_data: extended.then(|| SinglePartExtensionData {
            md5: NString(None),
            tail: Some(Disposition {
                disposition: part.disposition.as_ref().and_then(|(kind, params)| {
                    Some((istring(&kind.to_ascii_lowercase())?, pairs(params)))
                }),
                tail: None,
            }),
        }),
    }
}

/// The parameters of a Content-Type or Content-Disposition, as name and value pairs.
fn attributes(header: &mail_parser::ContentType<'_>) -> Vec<(String, String)> {
    header
        .attributes
        .iter()
        .flatten()
        .map(|a| (a.name.to_string(), a.value.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use imap_codec::imap_types::fetch::Part as PartNumber;
    use std::num::NonZeroU32;

    const MIXED: &[u8] = b"From: \"Ann Example\" <ann@example.org>\r\n\
To: bob@example.test, Carl <carl@example.test>\r\n\
Subject: Report\r\n\
Date: Tue, 3 Mar 2026 10:00:00 +0000\r\n\
Message-ID: <m1@example.org>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
\r\n\
preamble\r\n\
--outer\r\n\
Content-Type: multipart/alternative; boundary=inner\r\n\
\r\n\
--inner\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Hello plain\r\n\
--inner\r\n\
Content-Type: text/html\r\n\
\r\n\
<p>Hello</p>\r\n\
--inner--\r\n\
--outer\r\n\
Content-Type: application/pdf; name=\"r.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename=\"r.pdf\"\r\n\
\r\n\
JVBERi0=\r\n\
--outer--\r\n";

    fn part(numbers: &[u32]) -> PartNumber {
        PartNumber(
            Vec1::try_from(
                numbers
                    .iter()
                    .map(|&n| NonZeroU32::new(n).unwrap())
                    .collect::<Vec<_>>(),
            )
            .unwrap(),
        )
    }

    fn encode(structure: &BodyStructure<'static>) -> String {
        use imap_codec::ResponseCodec;
        use imap_codec::encode::Encoder;
        use imap_codec::imap_types::fetch::MessageDataItem;
        use imap_codec::imap_types::response::{Data, Response};
        let response = Response::Data(Data::Fetch {
            seq: NonZeroU32::new(1).unwrap(),
            items: Vec1::from(MessageDataItem::BodyStructure(structure.clone())),
        });
        String::from_utf8_lossy(&ResponseCodec::default().encode(&response).dump()).into_owned()
    }

    #[test]
    fn multipart_structure_and_sections() {
        let s = Structure::parse(MIXED);
        let wire = encode(&s.body_structure(true)).to_lowercase();
        assert!(
            wire.contains("\"text\" \"plain\" (\"charset\" \"utf-8\")"),
            "{wire}"
        );
        assert!(wire.contains("\"text\" \"html\""), "{wire}");
        assert!(wire.contains("\"alternative\""), "{wire}");
        assert!(wire.contains("\"application\" \"pdf\""), "{wire}");
        assert!(wire.contains("\"base64\" 8"), "{wire}");
        assert!(wire.contains("\"mixed\""), "{wire}");
        assert!(wire.contains("\"attachment\""), "{wire}");
        let body = |p: &[u32]| s.section(Some(&Section::Part(part(p))));
        assert_eq!(body(&[1, 1]), b"Hello plain");
        assert_eq!(body(&[1, 2]), b"<p>Hello</p>");
        assert_eq!(body(&[2]), b"JVBERi0=");
        assert!(body(&[3]).is_empty());
        let mime = s.section(Some(&Section::Mime(part(&[1, 2]))));
        assert_eq!(mime, b"Content-Type: text/html\r\n\r\n");
        let names = Vec1::from(AString::try_from("subject").unwrap());
        let fields = s.section(Some(&Section::HeaderFields(None, names.clone())));
        assert_eq!(fields, b"Subject: Report\r\n\r\n");
        let not = s.section(Some(&Section::HeaderFieldsNot(None, names)));
        assert!(!String::from_utf8_lossy(&not).contains("Report"));
        assert!(String::from_utf8_lossy(&not).contains("Message-ID"));
    }

    #[test]
    fn the_parser_reads_every_header_as_mail_parser_does_but_received() {
        let header = b"Received: from a.example (a.example [192.0.2.1]) by b.example; Mon, 2 Jan 2023 10:00:00 +0000\r\n\
From: \"Ann Example\" <ann@example.org>\r\nTo: bob@example.net, Cy <cy@example.com>\r\n\
Subject: =?utf-8?q?caf=C3=A9?= report\r\nDate: Mon, 2 Jan 2023 10:00:00 +0000\r\n\
Message-ID: <m1@example.org>\r\nIn-Reply-To: <m0@example.org>\r\nList-Id: <list.example.org>\r\n\
Keywords: a, b\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
X-Other: raw value\r\n\r\n";
        let ours = parser().parse_headers(&header[..]).unwrap();
        let theirs = MessageParser::default().parse_headers(&header[..]).unwrap();
        assert_eq!(ours.headers().len(), theirs.headers().len());
        for (a, b) in ours.headers().iter().zip(theirs.headers()) {
            assert_eq!(a.name, b.name);
            if a.name != mail_parser::HeaderName::Received {
                assert_eq!(a.value, b.value, "{}", a.name.as_str());
            }
        }
        assert_eq!(ours.subject(), Some("café report"));
    }

    #[test]
    fn envelope_fields() {
        let e = envelope(&MIXED[..MIXED.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4]);
        assert_eq!(e.subject, nstring(Some("Report")));
        assert_eq!(e.message_id, nstring(Some("<m1@example.org>")));
        assert_eq!(e.from.len(), 1);
        assert_eq!(e.from[0].name, nstring(Some("Ann Example")));
        assert_eq!(e.from[0].mailbox, nstring(Some("ann")));
        assert_eq!(e.from[0].host, nstring(Some("example.org")));
        assert_eq!(e.sender, e.from);
        assert_eq!(e.reply_to, e.from);
        assert_eq!(e.to.len(), 2);
        assert!(e.cc.is_empty() && e.in_reply_to.0.is_none());
    }

    /// A source-routed address (`@route:user@domain`) carries its route as the ADL.
    #[test]
    fn envelope_source_routes_are_the_adl() {
        let e = envelope(b"From: <@route:user@domain>\r\n\r\n");
        let a = &e.from[0];
        assert_eq!(a.adl, nstring(Some("@route")));
        assert_eq!(a.mailbox, nstring(Some("user")));
        assert_eq!(a.host, nstring(Some("domain")));
        let plain = envelope(b"From: user@domain\r\n\r\n");
        assert_eq!(plain.from[0].adl, NString(None));
    }

    /// RFC 3501 7.4.2: a group is `(NIL NIL "name" NIL)` … `(NIL NIL NIL NIL)`, its
    /// members between; a comment in an empty group is no member.
    #[test]
    fn envelope_groups_have_their_markers_and_no_invented_members() {
        let e = envelope(b"Cc: group:;, group2: (foo) ;, team: ann@example.org;\r\n\r\n");
        let wire: Vec<(Option<String>, Option<String>, Option<String>)> =
            e.cc.iter()
                .map(|a| {
                    let text = |n: &NString<'_>| {
                        n.0.as_ref()
                            .map(|v| String::from_utf8_lossy(v.as_ref()).into_owned())
                    };
                    (text(&a.name), text(&a.mailbox), text(&a.host))
                })
                .collect();
        let start = |g: &str| (None, Some(g.to_string()), None);
        let end = (None, None, None);
        assert_eq!(
            wire,
            vec![
                start("group"),
                end.clone(),
                start("group2"),
                end.clone(),
                start("team"),
                (None, Some("ann".into()), Some("example.org".into())),
                end,
            ]
        );
    }

    #[test]
    fn nested_messages_and_odd_input() {
        let nested = b"Subject: outer\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nFrom: x@y\r\n\r\ninner body\r\n";
        let s = Structure::parse(nested);
        let wire = encode(&s.body_structure(false)).to_lowercase();
        assert!(wire.contains("\"message\" \"rfc822\""), "{wire}");
        assert!(wire.contains("\"inner\""), "{wire}");
        let header = s.section(Some(&Section::Header(Some(part(&[1])))));
        assert!(header.starts_with(b"Subject: inner"));
        let text = s.section(Some(&Section::Text(Some(part(&[1])))));
        assert_eq!(text, b"inner body\r\n");
        for odd in [
            &b""[..],
            b"no header at all",
            b"Content-Type: multipart/mixed\r\n\r\nno boundary",
            b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n",
            b"Subject: \xff\xfe\r\nFrom: <<<\r\n\r\n\xff",
            b"Content-Type: /\r\n\r\n",
        ] {
            let s = Structure::parse(odd);
            let _ = encode(&s.body_structure(true));
            let _ = s.envelope();
            let _ = s.section(Some(&Section::Part(part(&[1, 2, 3]))));
        }
    }

    #[test]
    fn base64_encodes() {
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
        assert_eq!(header_text("Zoë"), "=?UTF-8?B?Wm/Dqw==?=");
    }
}
