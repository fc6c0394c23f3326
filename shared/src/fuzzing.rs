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
    // The request read without a tree reads what the tree holds.
    assert_eq!(
        autodiscover::parse_request(text),
        request_from_tree(text),
        "{text:?}"
    );
    let _ = autodiscover::parse_response(text);
}

/// A POX request read from the element tree (what `parse_request` reads as it walks).
fn request_from_tree(
    text: &str,
) -> Result<autodiscover::Request, crate::autoconfig::DocumentError> {
    use crate::autoconfig::DocumentError;
    let root = crate::xml::parse(text)?;
    if root.name != "Autodiscover" {
        return Err(DocumentError::Missing("the Autodiscover root element"));
    }
    let request = root
        .child("Request")
        .ok_or(DocumentError::Missing("Request"))?;
    let email = request
        .child_text("EMailAddress")
        .filter(|e| !e.is_empty())
        .ok_or(DocumentError::Missing("EMailAddress"))?
        .to_string();
    Ok(autodiscover::Request {
        email,
        schema: request
            .child_text("AcceptableResponseSchema")
            .map(str::to_string),
    })
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

    #[test]
    fn a_request_read_as_it_is_walked_is_what_its_tree_holds() {
        let requests = [
            "<Autodiscover><Request><EMailAddress> x@example.test </EMailAddress></Request></Autodiscover>",
            "<a:Autodiscover xmlns:a=\"urn:x\"><a:Request><a:EMailAddress>x@example.test</a:EMailAddress><a:AcceptableResponseSchema>s</a:AcceptableResponseSchema></a:Request></a:Autodiscover>",
            // The first of each counts; text of the element itself, not of its children.
            "<Autodiscover><Request><EMailAddress>a<b>no</b>&amp;<![CDATA[c]]>&#x41;</EMailAddress><EMailAddress>second</EMailAddress></Request><Request><EMailAddress>r2</EMailAddress></Request></Autodiscover>",
            "<Autodiscover><Other><EMailAddress>deep</EMailAddress></Other><Request><Inner><EMailAddress>deeper</EMailAddress></Inner><EMailAddress/></Request></Autodiscover>",
            "<Autodiscover><Request/><Request><EMailAddress>later</EMailAddress></Request></Autodiscover>",
            "<Autodiscover><Request><AcceptableResponseSchema/><AcceptableResponseSchema>two</AcceptableResponseSchema><EMailAddress><!-- c -->x@example.test</EMailAddress></Request></Autodiscover>",
            "<Other><Request><EMailAddress>x@example.test</EMailAddress></Request></Other>",
            "<Autodiscover><Request><EMailAddress>x</EMailAddress></Request></Autodiscover><Autodiscover/>",
            "<?xml version=\"1.0\"?><!DOCTYPE x><Autodiscover/>",
            "<Autodiscover a=\"&bogus;\"><Request><EMailAddress>x</EMailAddress></Request></Autodiscover>",
            "<Autodiscover><Request><EMailAddress>x</Request></EMailAddress></Autodiscover>",
            "<Autodiscover/>",
            "text",
            "",
        ];
        for request in requests {
            // Each, and each of its beginnings (unfinished documents and their errors).
            for end in 0..=request.len() {
                documents(&request.as_bytes()[..end]);
            }
        }
        let deep = format!(
            "<Autodiscover><Request><EMailAddress>x</EMailAddress>{}{}</Request></Autodiscover>",
            "<a>".repeat(40),
            "</a>".repeat(40)
        );
        documents(deep.as_bytes());
        let read = autodiscover::parse_request(requests[2]).unwrap();
        assert_eq!(read.email, "a&cA");
        assert_eq!(
            autodiscover::parse_request(requests[4])
                .unwrap_err()
                .to_string(),
            "the document is missing EMailAddress"
        );
    }
}
