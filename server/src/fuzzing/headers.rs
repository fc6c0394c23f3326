//! The `message_headers` target: the fuzzer's bytes are a message arriving from
//! another domain, as the sorter and the mailbox servers read its header section for
//! the verdicts: forged `Authentication-Results:` of the site are removed (and nothing
//! else: every other field and the body stay byte for byte), removing twice finds
//! nothing more, whether the verdict asks for Junk is decided, and the From: domain
//! that DKIM signing would use is found or not. None of it may panic.

use crate::mailbox::junk::wants_junk;
use crate::sorter::message::{from_domain, header_section};
use crate::sorter::verdict::without_forged_results;

const AUTHSERV_ID: &str = "example.test";

pub fn message_headers(data: &[u8]) {
    let header = header_section(data);
    let body = &data[header.len()..];
    if let Some(cleaned) = without_forged_results(data, AUTHSERV_ID) {
        assert!(
            cleaned.len() < data.len(),
            "removing made the message longer"
        );
        assert!(cleaned.ends_with(body), "the body changed");
        assert!(
            without_forged_results(&cleaned, AUTHSERV_ID).is_none(),
            "a forged verdict survived its removal"
        );
        // What was removed is whole fields of ours; what stayed is in order.
        let kept = &cleaned[..cleaned.len() - body.len()];
        assert!(
            is_subsequence(kept, header),
            "a field that was kept changed"
        );
        assert!(
            !wants_junk(kept, AUTHSERV_ID),
            "a removed verdict still counts"
        );
    }
    let _ = wants_junk(header, AUTHSERV_ID);
    if let Some(domain) = from_domain(data) {
        assert!(!domain.contains('@'), "{domain}");
        assert_eq!(domain, domain.to_ascii_lowercase());
    }
}

/// Whether `small` is `large` with some runs of bytes taken out.
fn is_subsequence(small: &[u8], large: &[u8]) -> bool {
    let mut rest = large.iter();
    small.iter().all(|b| rest.any(|c| c == b))
}
