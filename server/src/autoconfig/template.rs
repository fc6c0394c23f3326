//! Pre-rendered documents: for every domain, letter and preference, the Thunderbird
//! and Autodiscover documents are rendered once per site change with a marker where
//! the username goes, and filled per request by copying. This keeps the hot path at
//! one allocation and a few memcpys instead of building and escaping a whole document.

use mailsite_shared::SiteMap;
use mailsite_shared::autoconfig::{ClientConfig, Preference, autodiscover, thunderbird};
use mailsite_shared::config::BUCKETS;
use mailsite_shared::route::bucket_char;
use mailsite_shared::xml::escape;

/// Stands for the username while rendering. Control characters never reach a routed
/// address (they are refused), so the marker cannot collide with a real name.
const SLOT: &str = "\u{1}user\u{1}";

/// A document split around the places the username goes.
#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<String>,
    len: usize,
}

impl Template {
    fn new(rendered: &str) -> Template {
        let parts: Vec<String> = rendered.split(SLOT).map(str::to_string).collect();
        Template {
            len: parts.iter().map(String::len).sum(),
            parts,
        }
    }

    /// The document for `username` (escaped here, as the renderers escape it).
    pub fn fill(&self, username: &str) -> String {
        let name = escape(username);
        let mut out = String::with_capacity(self.len + (self.parts.len() - 1) * name.len());
        let mut parts = self.parts.iter();
        if let Some(first) = parts.next() {
            out.push_str(first);
        }
        for part in parts {
            out.push_str(&name);
            out.push_str(part);
        }
        out
    }
}

/// Which document.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Thunderbird = 0,
    Autodiscover = 1,
}

/// Every template of one site generation.
pub struct Templates {
    pub generation: i64,
    domains: Vec<String>,
    /// Indexed by domain, bucket, preference, kind.
    templates: Vec<[[[Template; 2]; 2]; BUCKETS]>,
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
            let per_domain: [[[Template; 2]; 2]; BUCKETS] = std::array::from_fn(|bucket| {
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

    pub fn get(
        &self,
        domain: &str,
        bucket: usize,
        pref: Preference,
        kind: Kind,
    ) -> Option<&Template> {
        let d = self.domains.iter().position(|x| x == domain)?;
        Some(&self.templates[d].get(bucket)?[pref_index(pref)][kind as usize])
    }
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
                    templates
                        .get(&route.domain, route.bucket, pref, kind)
                        .unwrap()
                };
                assert_eq!(
                    t(Kind::Thunderbird).fill(&route.username),
                    thunderbird::render(&doc)
                );
                assert_eq!(
                    t(Kind::Autodiscover).fill(&route.username),
                    autodiscover::render_response(&doc)
                );
            }
        }
    }
}
