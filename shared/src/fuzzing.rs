//! Entry points for the fuzz targets in `shared/fuzz/` (and for the tests that run
//! them over fixed seeds on every `cargo test`): each takes arbitrary bytes, must
//! never panic, and checks a property that must hold for every input.

use std::sync::{Arc, OnceLock};

use crate::autoconfig::{ClientConfig, Preference, apple, autodiscover, thunderbird};
use crate::config::SiteConfig;
use crate::route::SiteMap;

fn site() -> &'static SiteMap {
    static SITE: OnceLock<SiteMap> = OnceLock::new();
    SITE.get_or_init(|| SiteMap::initial(Arc::new(SiteConfig::embedded())))
}

/// Any document read by the XML parsers: an error or a value, never a panic.
pub fn documents(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = crate::xml::parse(text);
    let _ = thunderbird::parse(text);
    let _ = autodiscover::parse_request(text);
    let _ = autodiscover::parse_response(text);
}

/// Any address: either refused, or routed and rendered into documents that parse back
/// to the same login name (escaping holds for every input).
pub fn addresses(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(route) = site().route(text) else {
        return;
    };
    let config = ClientConfig::for_route(&site().config, &route, Preference::Imap);
    let parsed =
        thunderbird::parse(&thunderbird::render(&config)).expect("rendered clientConfig parses");
    assert_eq!(parsed.incoming[0].username, route.username);
    let parsed = autodiscover::parse_response(&autodiscover::render_response(&config))
        .expect("rendered Autodiscover response parses");
    assert_eq!(parsed.outgoing[0].username, route.username);
    let request = autodiscover::parse_request(&autodiscover::render_request(text))
        .expect("rendered Autodiscover request parses");
    assert_eq!(request.email, text.trim());
    // The profile's DOCTYPE is Apple's fixed one; the rest must be well-formed.
    let profile = apple::render(&config);
    let body = profile
        .split_once("<plist")
        .map(|(_, rest)| format!("<plist{rest}"));
    let plist = crate::xml::parse(&body.expect("profile has a plist")).expect("profile parses");
    let account = &plist.children[0].children[1].children[0];
    let email = account
        .children
        .windows(2)
        .find(|kv| kv[0].text == "EmailAddress")
        .map(|kv| kv[1].text.clone());
    assert_eq!(email.as_deref(), route.address.as_str().into());
}

/// Any mailbox name: modified UTF-7 decoding never panics, and every UTF-8 name
/// survives encoding and decoding.
pub fn mailbox_names(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = crate::utf7::decode(text);
    assert_eq!(
        crate::utf7::decode(&crate::utf7::encode(text)).as_deref(),
        Some(text)
    );
}

/// Any configuration text: a configuration or a located error, never a panic.
pub fn configs(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = SiteConfig::from_toml(text, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator, so the seeds below are varied but repeatable.
    fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x & 0xff) as u8
            })
            .collect()
    }

    #[test]
    fn fuzz_entry_points_hold_on_seeds() {
        let alphabet = b"a\"<>&'@.-_ %\x01\xc3\xa9example.test";
        for seed in 0..2000u64 {
            let raw = noise(seed, (seed % 80) as usize);
            let mapped: Vec<u8> = raw
                .iter()
                .map(|b| alphabet[*b as usize % alphabet.len()])
                .collect();
            for input in [&raw, &mapped] {
                documents(input);
                addresses(input);
                configs(input);
                mailbox_names(input);
            }
            let mut address = mapped.clone();
            address.extend_from_slice(b"@example.test");
            addresses(&address);
        }
        for seed in [
            &b"a\"<x>&'@example.test"[..],
            b"<Autodiscover><Request><EMailAddress>x@example.test</EMailAddress></Request></Autodiscover>",
            b"<clientConfig><emailProvider><domain>d</domain></emailProvider></clientConfig>",
            crate::config::DEFAULT_SITE_TOML.as_bytes(),
        ] {
            documents(seed);
            addresses(seed);
            configs(seed);
        }
    }
}
