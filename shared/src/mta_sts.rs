//! MTA-STS (RFC 8461): the policy each site domain serves at
//! `https://mta-sts.<domain>/.well-known/mta-sts.txt`, and the id the zone publishes
//! in `_mta-sts.<domain>` TXT. Both come from [`policy`], so the id always changes
//! with the text (a sender refetches a policy when the id it cached differs).

use sha2::{Digest, Sha256};

use crate::config::SiteConfig;

/// The host the policy is served at, before the domain.
pub const HOST_LABEL: &str = "mta-sts";
/// The owner of the policy's TXT record, before the domain.
pub const RECORD_LABEL: &str = "_mta-sts";
/// Where the policy is served.
pub const PATH: &str = "/.well-known/mta-sts.txt";
/// How long senders keep a policy (one week; RFC 8461 3.2 suggests weeks).
pub const MAX_AGE: u64 = 604_800;

/// The policy of `domain`: the configured mode and every sorter of the site as an MX
/// host (each is `<sorter>.<domain>` in the zone's MX records; a drained sorter leaves
/// the MX records for a while, not the policy).
pub fn policy(config: &SiteConfig, domain: &str) -> String {
    let mut text = format!(
        "version: STSv1\r\nmode: {}\r\n",
        config.mta_sts_mode().as_str()
    );
    for sorter in &config.sorters {
        text.push_str(&format!("mx: {}.{domain}\r\n", sorter.name));
    }
    text.push_str(&format!("max_age: {MAX_AGE}\r\n"));
    text
}

/// The policy's id (1 to 32 letters and digits): from a digest of its text.
pub fn id(policy: &str) -> String {
    let digest = Sha256::digest(policy.as_bytes());
    digest[..10].iter().map(|b| format!("{b:02x}")).collect()
}

/// The text of `_mta-sts.<domain>` TXT.
pub fn record(policy: &str) -> String {
    format!("v=STSv1; id={}", id(policy))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_every_sorter_and_its_id_follows_the_text() {
        let config = SiteConfig::embedded();
        let text = policy(&config, "example.test");
        assert_eq!(
            text,
            "version: STSv1\r\nmode: testing\r\nmx: sorter1.example.test\r\nmx: sorter2.example.test\r\nmax_age: 604800\r\n"
        );
        let id = id(&text);
        assert_eq!(id.len(), 20);
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(id, super::id(&text.replace("testing", "enforce")));
        assert_eq!(record(&text), format!("v=STSv1; id={id}"));
    }
}
