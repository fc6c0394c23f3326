//! `mailsite dns ds`: what the parent zone of each site domain publishes for DNSSEC
//! (RFC 4035 2.4): the DS record of the domain's zone signing key, and the DNSKEY it
//! names. The key is made here when the site has none yet (as the dns role makes it at
//! its first start), so the DS can go to the registrar before the site serves.

use super::{Admin, AdminError, Result, refused};
use crate::dns::dnssec::Keys;

/// One domain's key as the parent zone needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegation {
    pub domain: String,
    pub key_tag: u16,
    /// The DS record, master-file text (`example.test. 3600 IN DS …`).
    pub ds: String,
    /// The DNSKEY record the zone serves, master-file text.
    pub dnskey: String,
}

impl Admin {
    /// The DS and DNSKEY of every domain of the site.
    pub async fn dnssec_delegations(&self) -> Result<Vec<Delegation>> {
        let config = self.config.clone();
        if !config.dnssec {
            return Err(refused(
                "DNSSEC is off: set `dnssec = true` in [dns] (the default) and restart the dns role",
            ));
        }
        let domains: Vec<String> = config.domains().map(str::to_string).collect();
        let keys = Keys::load(&self.directory, &domains, true)
            .await
            .map_err(|e| AdminError::Refused(format!("{e:#}")))?;
        let mut out = Vec::new();
        for key in keys.iter() {
            let ds = key.ds().map_err(|e| refused(format!("{e:#}")))?;
            let domain = key.apex().to_ascii().trim_end_matches('.').to_string();
            out.push(Delegation {
                key_tag: key.tag(),
                ds: format!("{} 3600 IN DS {ds}", key.apex()),
                dnskey: key.dnskey_record(config.ttl).to_string(),
                domain,
            });
        }
        Ok(out)
    }
}
