//! What SMTP and LMTP carry after DATA: the message dot-stuffed (RFC 5321 4.5.2),
//! for the sorters' client and for what the mailbox servers send themselves.

/// Dot-stuffing (RFC 5321 4.5.2) over chunks: a dot that starts a line is doubled,
/// a bare LF is sent as CRLF, and [`Stuffer::finish`] ends the last line and adds the
/// final `.` line.
#[derive(Debug)]
pub struct Stuffer {
    line_start: bool,
    last_cr: bool,
}

impl Default for Stuffer {
    fn default() -> Self {
        Stuffer {
            line_start: true,
            last_cr: false,
        }
    }
}

impl Stuffer {
    /// Appends `chunk`, stuffed, to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        out.reserve(chunk.len() + 16);
        for &b in chunk {
            if self.line_start && b == b'.' {
                out.push(b'.');
            }
            if b == b'\n' && !self.last_cr {
                out.push(b'\r');
            }
            out.push(b);
            self.line_start = b == b'\n';
            self.last_cr = b == b'\r';
        }
    }

    /// Ends the text: CRLF if its last line lacks one, then `.` CRLF.
    pub fn finish(self, out: &mut Vec<u8>) {
        if !self.line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }
}

/// The message as DATA carries it: CRLF line ends, leading dots doubled, and the
/// final `.` line.
pub fn dot_stuffed(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 8);
    let mut stuffer = Stuffer::default();
    stuffer.push(message, &mut out);
    stuffer.finish(&mut out);
    out
}

/// The header section of a message: everything before the first empty line (with the
/// last header line's CRLF).
pub fn header_section(message: &[u8]) -> &[u8] {
    if message.starts_with(b"\r\n") {
        return &[];
    }
    match message.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(p) => &message[..p + 2],
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuffing_over_chunks_matches_stuffing_at_once() {
        let text = b"a\r\n.b\r\n..c\n.\r\nd";
        let mut whole = Vec::new();
        let mut s = Stuffer::default();
        s.push(text, &mut whole);
        s.finish(&mut whole);
        assert_eq!(whole, b"a\r\n..b\r\n...c\r\n..\r\nd\r\n.\r\n");
        for split in 0..text.len() {
            let mut out = Vec::new();
            let mut s = Stuffer::default();
            s.push(&text[..split], &mut out);
            s.push(&text[split..], &mut out);
            s.finish(&mut out);
            assert_eq!(out, whole, "split at {split}");
        }
    }
}
