//! The Junk folder for mail whose sender's domain asks for it: the sorter checked
//! DMARC and wrote the verdict in an `Authentication-Results:` header with the site's
//! domain as authserv-id (removing any such header the message came with), and a
//! failing message of a `quarantine` domain (or of a `reject` domain, when the site
//! delivers those to Junk) is filed there instead of INBOX.

/// The header field the sorter writes.
const HEADER: &str = "Authentication-Results";

/// Whether a delivered message's own Authentication-Results header (the first one of
/// `authserv_id`, which the sorter put on top) asks for the Junk folder: DMARC failed
/// for a domain whose policy is quarantine, or reject when such mail goes to Junk.
pub fn wants_junk(header_section: &[u8], authserv_id: &str) -> bool {
    let text = String::from_utf8_lossy(header_section);
    let mut fields: Vec<String> = Vec::new();
    for line in text.split_inclusive('\n') {
        let continues = line.starts_with(' ') || line.starts_with('\t');
        match fields.last_mut() {
            Some(last) if continues => last.push_str(line),
            _ => fields.push(line.to_string()),
        }
    }
    let ours = fields.iter().find(|f| {
        f.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case(HEADER)
                && value
                    .trim_start()
                    .split(|c: char| c == ';' || c.is_whitespace())
                    .next()
                    .is_some_and(|id| id.eq_ignore_ascii_case(authserv_id))
        })
    });
    ours.is_some_and(|f| {
        let f = f.to_ascii_lowercase();
        f.contains("dmarc=fail")
            && (f.contains("policy.dmarc=quarantine") || f.contains("policy.dmarc=reject"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junk_is_wanted_only_for_our_failing_quarantine_or_reject() {
        let ours = |v: &str| {
            format!("Authentication-Results: example.test;\r\n\t{v}\r\nSubject: x\r\n\r\n")
        };
        assert!(wants_junk(
            ours("dmarc=fail header.from=example.org policy.dmarc=reject").as_bytes(),
            "example.test"
        ));
        assert!(wants_junk(
            ours("dmarc=fail header.from=example.org policy.dmarc=quarantine").as_bytes(),
            "example.test"
        ));
        assert!(!wants_junk(
            ours("dmarc=pass header.from=example.org policy.dmarc=reject").as_bytes(),
            "example.test"
        ));
        assert!(!wants_junk(
            ours("dmarc=fail header.from=example.org policy.dmarc=none").as_bytes(),
            "example.test"
        ));
        assert!(!wants_junk(
            b"Authentication-Results: elsewhere.example; dmarc=fail policy.dmarc=reject\r\n\r\n",
            "example.test"
        ));
    }
}
