//! Modified UTF-7 (RFC 3501 section 5.1.3): how IMAP mailbox names travel on the wire,
//! and how mailsite names Maildir folders on disk (as Dovecot does), so that a name in
//! any script survives both.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

fn flush(out: &mut String, pending: &mut Vec<u16>) {
    if pending.is_empty() {
        return;
    }
    let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
    out.push('&');
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out.push('-');
    pending.clear();
}

/// Encodes a UTF-8 name.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut out, &mut pending);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut out, &mut pending);
    out
}

/// Decodes a modified UTF-7 name; `None` if it is not valid modified UTF-7.
pub fn decode(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !(0x20..=0x7e).contains(&b) {
            return None;
        }
        if b != b'&' {
            out.push(b as char);
            i += 1;
            continue;
        }
        let end = i + 1 + bytes[i + 1..].iter().position(|&c| c == b'-')?;
        let run = &bytes[i + 1..end];
        if run.is_empty() {
            out.push('&');
        } else {
            let mut bits = 0u32;
            let mut nbits = 0;
            let mut units = Vec::new();
            let mut byte_buf = Vec::new();
            for &c in run {
                let v = ALPHABET.iter().position(|&a| a == c)? as u32;
                bits = (bits << 6) | v;
                nbits += 6;
                if nbits >= 8 {
                    nbits -= 8;
                    byte_buf.push((bits >> nbits) as u8);
                    bits &= (1 << nbits) - 1;
                }
            }
            if byte_buf.len() % 2 != 0 || bits != 0 {
                return None;
            }
            for pair in byte_buf.chunks(2) {
                units.push(u16::from_be_bytes([pair[0], pair[1]]));
            }
            let decoded = String::from_utf16(&units).ok()?;
            // A run must not encode what could be written directly.
            if decoded
                .chars()
                .any(|c| (' '..='~').contains(&c) && c != '.')
            {
                return None;
            }
            out.push_str(&decoded);
        }
        i = end + 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3501_examples() {
        assert_eq!(
            encode("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        assert_eq!(
            decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-").unwrap(),
            "~peter/mail/台北/日本語"
        );
        assert_eq!(encode("Tom & Jerry"), "Tom &- Jerry");
        assert_eq!(decode("Tom &- Jerry").unwrap(), "Tom & Jerry");
    }

    #[test]
    fn round_trips_and_refuses_garbage() {
        for name in ["Entwürfe", "Отправленные", "😀 smile", "a&b", "plain", ""] {
            assert_eq!(decode(&encode(name)).as_deref(), Some(name), "{name}");
        }
        for bad in ["&", "&Jjo", "&Jjo!-", "&AGE-", "caf\u{e9}"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
