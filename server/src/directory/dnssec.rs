//! The zone signing keys of the site's domains (DNSSEC), which every node running the
//! dns role signs with. Keys are opaque here: PKCS#8 documents made by the caller
//! ([`crate::dns::dnssec`]).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sqlx::Row;

use super::{Directory, Result, now};

/// A domain's zone signing key as stored.
#[derive(Clone)]
pub struct StoredZoneKey {
    pub domain: String,
    /// The DNSSEC algorithm number (13: ECDSA P-256 with SHA-256).
    pub algorithm: u8,
    /// The private key, PKCS#8 DER.
    pub private_key: Vec<u8>,
}

impl std::fmt::Debug for StoredZoneKey {
    /// Without the private key: a debug print must not leak it into a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredZoneKey")
            .field("domain", &self.domain)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl Directory {
    /// The zone signing key of every domain of `domains`; a domain without one gets the
    /// key `make` returns (PKCS#8 DER of `algorithm`). Nodes starting together keep
    /// whichever key was stored first, so the whole site signs with one key per domain.
    pub async fn zone_signing_keys(
        &self,
        domains: &[String],
        algorithm: u8,
        make: impl Fn() -> anyhow::Result<Vec<u8>>,
    ) -> anyhow::Result<Vec<StoredZoneKey>> {
        let mut keys = self.stored_zone_keys().await?;
        let missing: Vec<&String> = domains
            .iter()
            .filter(|d| !keys.iter().any(|k| &k.domain == *d))
            .collect();
        if missing.is_empty() {
            return Ok(keys);
        }
        for domain in missing {
            let key = make()?;
            sqlx::query(
                "INSERT INTO dnssec_keys (domain, algorithm, private_key, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (domain) DO NOTHING",
            )
            .bind(domain)
            .bind(i64::from(algorithm))
            .bind(STANDARD.encode(key))
            .bind(now())
            .execute(&self.pool)
            .await?;
            tracing::info!(%domain, "made the zone signing key (DNSSEC)");
        }
        keys = self.stored_zone_keys().await?;
        Ok(keys)
    }

    /// The zone signing keys stored, by domain.
    pub async fn stored_zone_keys(&self) -> Result<Vec<StoredZoneKey>> {
        let rows =
            sqlx::query("SELECT domain, algorithm, private_key FROM dnssec_keys ORDER BY domain")
                .fetch_all(&self.pool)
                .await?;
        let mut keys = Vec::new();
        for row in rows {
            let domain: String = row.try_get(0)?;
            let algorithm: i64 = row.try_get(1)?;
            let encoded: String = row.try_get(2)?;
            match (u8::try_from(algorithm), STANDARD.decode(encoded.trim())) {
                (Ok(algorithm), Ok(private_key)) => keys.push(StoredZoneKey {
                    domain,
                    algorithm,
                    private_key,
                }),
                _ => tracing::warn!(%domain, "a stored zone signing key is unreadable"),
            }
        }
        Ok(keys)
    }
}
