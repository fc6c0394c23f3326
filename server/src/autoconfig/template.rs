//! Pre-rendered documents: for every domain, letter and preference, the Thunderbird,
//! Autodiscover and Apple profile documents are rendered once per site change with
//! markers where the username (and a profile's UUIDs, derived from the address) go,
//! and filled per request by copying. This keeps the hot path at one allocation and a
//! few memcpys instead of building and escaping a whole document.

use mailsite_shared::SiteMap;
use mailsite_shared::autoconfig::{ClientConfig, Preference, apple, autodiscover, thunderbird};
use mailsite_shared::config::BUCKETS;
use mailsite_shared::route::bucket_char;
use mailsite_shared::xml::escape;

/// Stands for the username while rendering. Control characters never reach a routed
/// address (they are refused), so the marker cannot collide with a real name.
const SLOT: &str = "\u{1}user\u{1}";
/// Stand for an Apple profile's UUIDs (upper-case hex and hyphens when filled).
const ACCOUNT_UUID: &str = "\u{1}account-uuid\u{1}";
const PROFILE_UUID: &str = "\u{1}profile-uuid\u{1}";

/// What goes in a marker's place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    User,
    AccountUuid,
    ProfileUuid,
}

/// A document split around the places the username and UUIDs go.
#[derive(Debug, Clone)]
pub struct Template {
    /// One more part than slots: part, slot, part, ..., part.
    parts: Vec<String>,
    slots: Vec<Slot>,
    len: usize,
}

impl Template {
    fn new(rendered: &str) -> Template {
        let mut parts = Vec::new();
        let mut slots = Vec::new();
        let mut rest = rendered;
        loop {
            let next = [
                (SLOT, Slot::User),
                (ACCOUNT_UUID, Slot::AccountUuid),
                (PROFILE_UUID, Slot::ProfileUuid),
            ]
            .into_iter()
            .filter_map(|(marker, slot)| rest.find(marker).map(|at| (at, marker, slot)))
            .min_by_key(|(at, ..)| *at);
            let Some((at, marker, slot)) = next else {
                parts.push(rest.to_string());
                break;
            };
            parts.push(rest[..at].to_string());
            slots.push(slot);
            rest = &rest[at + marker.len()..];
        }
        Template {
            len: parts.iter().map(String::len).sum(),
            parts,
            slots,
        }
    }

    /// The document for `username` at `domain` (escaped here, as the renderers escape
    /// it; a profile's UUIDs derived from the address, as [`apple::render`] does).
    pub fn fill(&self, username: &str, domain: &str) -> String {
        let filled = self.with(username, domain);
        let mut out = String::with_capacity(filled.len());
        filled.write(|part| out.push_str(part));
        out
    }

    /// The values of `username` at `domain` for this template: its length is known
    /// before it is written, so that it can go straight after a response head.
    pub fn with<'a>(&'a self, username: &'a str, domain: &str) -> Filled<'a> {
        let uuids = self
            .slots
            .iter()
            .any(|s| *s != Slot::User)
            .then(|| apple::address_uuids(&[username, "@", domain]));
        Filled {
            template: self,
            name: escape(username),
            uuids,
        }
    }
}

/// A template and the values for its slots.
pub struct Filled<'a> {
    template: &'a Template,
    name: std::borrow::Cow<'a, str>,
    uuids: Option<(apple::UuidText, apple::UuidText)>,
}

impl Filled<'_> {
    /// The document's length in bytes.
    pub fn len(&self) -> usize {
        let slot = |slot: &Slot| match (slot, &self.uuids) {
            (Slot::User, _) => self.name.len(),
            (Slot::AccountUuid, Some((account, _))) => account.as_str().len(),
            (Slot::ProfileUuid, Some((_, profile))) => profile.as_str().len(),
            _ => 0,
        };
        self.template.len + self.template.slots.iter().map(slot).sum::<usize>()
    }

    /// Gives the document's pieces, in order, to `put`.
    pub fn write(&self, mut put: impl FnMut(&str)) {
        let mut parts = self.template.parts.iter();
        if let Some(first) = parts.next() {
            put(first);
        }
        for (slot, part) in self.template.slots.iter().zip(parts) {
            match (slot, &self.uuids) {
                (Slot::User, _) => put(&self.name),
                (Slot::AccountUuid, Some((account, _))) => put(account.as_str()),
                (Slot::ProfileUuid, Some((_, profile))) => put(profile.as_str()),
                _ => {}
            }
            put(part);
        }
    }
}

/// Which document.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Thunderbird = 0,
    Autodiscover = 1,
    Apple = 2,
}

/// Every template of one site generation.
pub struct Templates {
    pub generation: i64,
    domains: Vec<String>,
    /// Indexed by domain, bucket, preference, kind.
    templates: Vec<[[[Template; 3]; 2]; BUCKETS]>,
}

fn pref_index(p: Preference) -> usize {
    match p {
        Preference::Imap => 0,
        Preference::Pop3 => 1,
    }
}

impl Templates {
    pub fn build(map: &SiteMap) -> Templates {
        let config = &map.config;
        let mut templates = Vec::new();
        let domains: Vec<String> = config.domains().map(str::to_string).collect();
        for domain in &domains {
            let per_domain: [[[Template; 3]; 2]; BUCKETS] = std::array::from_fn(|bucket| {
                // Route a name of this bucket, then put the marker in its place.
                let probe = bucket_char(bucket).to_string();
                let mut route = map.route_user(&probe, domain);
                route.username = SLOT.to_string();
                route.address = format!("{SLOT}@{domain}");
                [Preference::Imap, Preference::Pop3].map(|pref| {
                    let doc = ClientConfig::for_route(config, &route, pref);
                    [
                        Template::new(&thunderbird::render(&doc)),
                        Template::new(&autodiscover::render_response(&doc)),
                        Template::new(&apple::render_with(
                            &doc,
                            ACCOUNT_UUID.to_string(),
                            PROFILE_UUID.to_string(),
                        )),
                    ]
                })
            });
            templates.push(per_domain);
        }
        Templates {
            generation: map.generation,
            domains,
            templates,
        }
    }

    /// Where the template for a domain, bucket, preference and kind is, if the domain
    /// is one of the site's.
    pub fn find(&self, domain: &str, bucket: usize, pref: Preference, kind: Kind) -> Option<At> {
        let domain = self.domains.iter().position(|x| x == domain)?;
        self.templates[domain].get(bucket)?;
        Some(At {
            domain,
            bucket,
            pref: pref_index(pref),
            kind: kind as usize,
        })
    }

    /// The template [`Templates::find`] found.
    pub fn at(&self, at: At) -> &Template {
        &self.templates[at.domain][at.bucket][at.pref][at.kind]
    }
}

/// Where a template is in [`Templates`].
#[derive(Debug, Clone, Copy)]
pub struct At {
    domain: usize,
    bucket: usize,
    pref: usize,
    kind: usize,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use mailsite_shared::SiteConfig;

    use super::*;

    #[test]
    fn filled_templates_equal_direct_rendering() {
        let map = SiteMap::initial(Arc::new(SiteConfig::embedded()));
        let templates = Templates::build(&map);
        for email in [
            "alice@example.test",
            "nora@example.test",
            "7up@example.test",
            "a\"<x>&@example.test",
        ] {
            let route = map.route(email).unwrap();
            for pref in [Preference::Imap, Preference::Pop3] {
                let doc = ClientConfig::for_route(&map.config, &route, pref);
                let t = |kind| {
                    let at = templates.find(&route.domain, route.bucket, pref, kind);
                    templates.at(at.unwrap())
                };
                let fill = |kind| {
                    let text = t(kind).fill(&route.username, &route.domain);
                    // The length a response head says is the length written.
                    let filled = t(kind).with(&route.username, &route.domain);
                    assert_eq!(filled.len(), text.len());
                    text
                };
                assert_eq!(fill(Kind::Thunderbird), thunderbird::render(&doc));
                assert_eq!(
                    fill(Kind::Autodiscover),
                    autodiscover::render_response(&doc)
                );
                assert_eq!(fill(Kind::Apple), apple::render(&doc));
            }
        }
    }
}
