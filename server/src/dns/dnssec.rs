//! DNSSEC for the site's zones (RFC 4033, 4034, 4035): one ECDSA P-256 key per domain
//! (a combined signing key, flags 257, that signs its own DNSKEY set and every other
//! record set), kept in the site database so that every node running the dns role
//! signs with it ([`crate::directory::dnssec`]).
//!
//! The zone is signed whenever it is built: at every live change (a letter move, a
//! server's health, a DKIM rotation, a renewed certificate) and at least every
//! [`RESIGN`], with signatures valid for [`VALIDITY`]. Denial of existence is NSEC (RFC
//! 4034 4): every name of the zone, empty non-terminals included, has one, so a
//! resolver can prove both "no such name" and "no such type". The zone holds nothing
//! secret that NSEC's walkability would give away: every name is one the site
//! publishes for clients anyway.

use std::time::Duration;

use hickory_proto::dnssec::crypto::EcdsaSigningKey;
use hickory_proto::dnssec::rdata::sig::SigInput;
use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, DS, NSEC, RRSIG};
use hickory_proto::dnssec::{Algorithm, DigestType, SigningKey, TBS};
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType, SerialNumber};
use tokio_rustls::rustls::pki_types::PrivatePkcs8KeyDer;

use crate::directory::Directory;
use crate::directory::dnssec::StoredZoneKey;

/// The algorithm of new keys: ECDSA P-256 with SHA-256 (13), which every validator
/// supports and whose signatures keep answers small.
pub const ALGORITHM: Algorithm = Algorithm::ECDSAP256SHA256;

/// How long a signature is valid after the zone was signed.
pub const VALIDITY: Duration = Duration::from_secs(14 * 86_400);

/// How often the zone is signed again when nothing changed: long before any
/// signature a resolver holds runs out.
pub const RESIGN: Duration = Duration::from_secs(86_400);

/// How far back a signature's inception lies, for validators whose clocks are behind.
const CLOCK_SKEW: u64 = 3_600;

/// One domain's signing key.
pub struct ZoneKey {
    apex: Name,
    key: EcdsaSigningKey,
    dnskey: DNSKEY,
    tag: u16,
}

impl ZoneKey {
    /// The key of `apex` from its PKCS#8 document.
    pub fn new(apex: Name, pkcs8: &[u8]) -> anyhow::Result<ZoneKey> {
        let der = PrivatePkcs8KeyDer::from(pkcs8.to_vec());
        let key = EcdsaSigningKey::from_pkcs8(&der, ALGORITHM)
            .map_err(|e| anyhow::anyhow!("not an ECDSA P-256 key: {e}"))?;
        let public = key
            .to_public_key()
            .map_err(|e| anyhow::anyhow!("no public key: {e}"))?;
        // Zone key, secure entry point: flags 257.
        let dnskey = DNSKEY::new(true, true, false, public);
        let tag = dnskey
            .calculate_key_tag()
            .map_err(|e| anyhow::anyhow!("no key tag: {e}"))?;
        Ok(ZoneKey {
            apex,
            key,
            dnskey,
            tag,
        })
    }

    /// A new key's PKCS#8 document.
    pub fn generate() -> anyhow::Result<Vec<u8>> {
        let der = EcdsaSigningKey::generate_pkcs8(ALGORITHM)
            .map_err(|e| anyhow::anyhow!("cannot make a zone signing key: {e}"))?;
        Ok(der.secret_pkcs8_der().to_vec())
    }

    /// The zone's apex.
    pub fn apex(&self) -> &Name {
        &self.apex
    }

    /// The key's tag (RFC 4034 appendix B).
    pub fn tag(&self) -> u16 {
        self.tag
    }

    /// The DNSKEY record the zone publishes at its apex.
    pub fn dnskey_record(&self, ttl: u32) -> Record {
        Record::from_rdata(
            self.apex.clone(),
            ttl,
            RData::DNSSEC(DNSSECRData::DNSKEY(self.dnskey.clone())),
        )
    }

    /// The DS record (SHA-256, RFC 4509) the parent zone publishes for this key.
    pub fn ds(&self) -> anyhow::Result<DS> {
        let digest = self
            .dnskey
            .to_digest(&self.apex, DigestType::SHA256)
            .map_err(|e| anyhow::anyhow!("no DS digest: {e}"))?;
        Ok(DS::new(
            self.tag,
            ALGORITHM,
            DigestType::SHA256,
            digest.as_ref().to_vec(),
        ))
    }

    /// The RRSIG over `records`, one record set (same owner, type and TTL), signed at
    /// `now` (Unix seconds).
    pub fn sign(&self, records: &[Record], now: u64) -> anyhow::Result<Record> {
        let first = records
            .first()
            .ok_or_else(|| anyhow::anyhow!("an empty record set"))?;
        let input = SigInput {
            type_covered: first.record_type(),
            algorithm: ALGORITHM,
            num_labels: first.name.num_labels(),
            original_ttl: first.ttl,
            // Serial number arithmetic (RFC 4034 3.1.5): the times wrap in 2106.
            sig_expiration: SerialNumber::new((now + VALIDITY.as_secs()) as u32),
            sig_inception: SerialNumber::new(now.saturating_sub(CLOCK_SKEW) as u32),
            key_tag: self.tag,
            signer_name: self.apex.clone(),
        };
        let tbs = TBS::from_input(&first.name, DNSClass::IN, &input, records.iter())
            .map_err(|e| anyhow::anyhow!("cannot serialise {}: {e}", first.name))?;
        let signature = self
            .key
            .sign(&tbs)
            .map_err(|e| anyhow::anyhow!("cannot sign {}: {e}", first.name))?;
        Ok(Record::from_rdata(
            first.name.clone(),
            first.ttl,
            RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, signature))),
        ))
    }
}

/// The signing keys of the site's domains.
#[derive(Default)]
pub struct Keys(Vec<ZoneKey>);

impl Keys {
    /// The keys as stored; one that cannot be read leaves its domain unsigned (and
    /// says so).
    pub fn from_stored(stored: &[StoredZoneKey]) -> Keys {
        let mut keys = Vec::new();
        for key in stored {
            let apex = match Name::from_ascii(format!("{}.", key.domain)) {
                Ok(apex) => apex,
                Err(_) => continue,
            };
            if key.algorithm != u8::from(ALGORITHM) {
                tracing::warn!(domain = %key.domain, algorithm = key.algorithm, "a zone signing key of an unknown algorithm: the zone stays unsigned");
                continue;
            }
            match ZoneKey::new(apex, &key.private_key) {
                Ok(zone_key) => keys.push(zone_key),
                Err(error) => {
                    tracing::warn!(domain = %key.domain, error = format!("{error:#}"), "cannot read the zone signing key: the zone stays unsigned")
                }
            }
        }
        Keys(keys)
    }

    /// The keys of `domains`, made and stored for any that has none yet; none when
    /// `[dns] dnssec` is off.
    pub async fn load(directory: &Directory, domains: &[String], on: bool) -> anyhow::Result<Keys> {
        if !on {
            return Ok(Keys::default());
        }
        let stored = directory
            .zone_signing_keys(domains, u8::from(ALGORITHM), ZoneKey::generate)
            .await?;
        Ok(Keys::from_stored(&stored))
    }

    /// The key of the zone whose apex is `apex`.
    pub fn for_apex(&self, apex: &Name) -> Option<&ZoneKey> {
        self.0.iter().find(|k| k.apex == *apex)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &ZoneKey> {
        self.0.iter()
    }
}

/// The NSEC record of `owner`: the next name of the zone in canonical order (the apex
/// after the last), and the types at `owner`.
pub fn nsec(owner: &Name, next: &Name, types: &[RecordType], ttl: u32) -> Record {
    Record::from_rdata(
        owner.clone(),
        ttl,
        RData::DNSSEC(DNSSECRData::NSEC(NSEC::new_cover_self(
            next.clone(),
            types.iter().copied(),
        ))),
    )
}

/// Every ancestor of `name` strictly below `apex`, and `name` itself: the names that
/// exist because `name` does (empty non-terminals, RFC 4592 2.2.2).
pub fn with_ancestors(name: &LowerName, apex: &LowerName) -> Vec<LowerName> {
    let mut out = vec![name.clone()];
    let mut at = name.base_name();
    while at.num_labels() > apex.num_labels() && apex.zone_of(&at) {
        out.push(at.clone());
        at = at.base_name();
    }
    out
}

#[cfg(test)]
mod tests {
    use hickory_proto::dnssec::Verifier;

    use super::*;

    #[test]
    fn a_signature_verifies_with_the_published_key_and_the_ds_names_it() {
        let apex = Name::from_ascii("example.test.").expect("a name");
        let key = ZoneKey::new(apex.clone(), &ZoneKey::generate().expect("a key")).expect("a key");
        let owner = Name::from_ascii("www.example.test.").expect("a name");
        let records = [
            Record::from_rdata(
                owner.clone(),
                300,
                RData::A("127.0.0.1".parse().expect("ip")),
            ),
            Record::from_rdata(
                owner.clone(),
                300,
                RData::A("127.0.0.2".parse().expect("ip")),
            ),
        ];
        let signature = key.sign(&records, 1_800_000_000).expect("a signature");
        let RData::DNSSEC(DNSSECRData::RRSIG(rrsig)) = &signature.data else {
            panic!("not an RRSIG: {signature}");
        };
        // Canonical order: the records may come in any order.
        let reversed = [records[1].clone(), records[0].clone()];
        let input = rrsig.input();
        assert_eq!(input.key_tag, key.tag());
        assert_eq!(input.type_covered, RecordType::A);
        let tbs = TBS::from_input(&owner, DNSClass::IN, input, reversed.iter()).expect("tbs");
        key.dnskey
            .verify(tbs.as_ref(), rrsig.sig())
            .expect("the signature verifies");
        let other = Record::from_rdata(
            owner.clone(),
            300,
            RData::A("127.0.0.3".parse().expect("ip")),
        );
        let tbs = TBS::from_input(&owner, DNSClass::IN, input, [other].iter()).expect("tbs");
        assert!(key.dnskey.verify(tbs.as_ref(), rrsig.sig()).is_err());
        let ds = key.ds().expect("a DS");
        assert!(ds.covers(&apex, &key.dnskey).expect("a digest"));
        assert_eq!(key.dnskey.flags(), 257);
    }

    #[test]
    fn empty_non_terminals_are_the_ancestors_below_the_apex() {
        let lower = |s: &str| LowerName::new(&Name::from_ascii(s).expect("a name"));
        let names = with_ancestors(&lower("_imaps._tcp.example.test."), &lower("example.test."));
        assert_eq!(
            names,
            [
                lower("_imaps._tcp.example.test."),
                lower("_tcp.example.test.")
            ]
        );
        assert_eq!(
            with_ancestors(&lower("example.test."), &lower("example.test.")),
            [lower("example.test.")]
        );
    }
}
