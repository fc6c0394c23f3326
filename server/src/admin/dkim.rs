//! The site's DKIM keys, as operators see and rotate them. A site's first keys are
//! made by its first sorter start; rotating adds a pair that signs after a delay (so
//! that resolvers holding the zone's old answers have the new record first) and
//! withdraws the old pair a while after that (so that mail signed just before the
//! switch still verifies where it is read late).

use mailsite_shared::DkimKey;

use super::{Admin, Result, refused};
use crate::dkim;

/// Where a key stands at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published, and signing starts later.
    Waiting,
    /// Published and signing.
    Signing,
    /// Published, no longer signing, leaving the zone later.
    Retiring,
    /// No longer in the zone.
    Withdrawn,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Waiting => "waiting",
            KeyState::Signing => "signing",
            KeyState::Retiring => "retiring",
            KeyState::Withdrawn => "withdrawn",
        }
    }
}

/// A key with its state, as listed.
#[derive(Debug, Clone)]
pub struct KeyView {
    pub key: DkimKey,
    pub state: KeyState,
    /// Whether this node's data directory holds its private half.
    pub private_here: bool,
}

/// What a rotation did for one domain.
#[derive(Debug, Clone)]
pub struct Rotated {
    pub domain: String,
    pub new: Vec<DkimKey>,
    /// When the new keys start signing, and when the old ones leave the zone.
    pub sign_from: i64,
    pub withdraw_old_at: i64,
    /// Keys forgotten because they had left the zone.
    pub forgotten: Vec<DkimKey>,
}

impl Admin {
    /// Every key of the site with its state at `now` (Unix seconds).
    pub async fn dkim_keys(&self, now: i64) -> Result<Vec<KeyView>> {
        let mut map = self.site_map().await?;
        let keys = std::mem::take(&mut map.dkim);
        let dir = dkim::key_dir(&self.config);
        Ok(keys
            .iter()
            .map(|key| {
                let signing = DkimKey::signing(&keys, &key.domain, now)
                    .iter()
                    .any(|k| k.selector == key.selector);
                let state = if !key.published(now) {
                    KeyState::Withdrawn
                } else if signing {
                    KeyState::Signing
                } else if key.withdraw_at.is_none() && key.sign_from > now {
                    KeyState::Waiting
                } else {
                    KeyState::Retiring
                };
                KeyView {
                    private_here: dir
                        .join(format!("{}.{}.pem", key.selector, key.domain))
                        .exists(),
                    key: key.clone(),
                    state,
                }
            })
            .collect())
    }

    /// Makes a new Ed25519 and RSA pair for `domain` (every site domain when none is
    /// named), published now, signing `sign_after` seconds from `now`; the domain's
    /// older keys leave the zone `withdraw_after` seconds after that. The private keys
    /// are written to this node's data directory: run it where the sorters' data
    /// directory is (or copy `dkim/` to each sorter before `sign_after` passes).
    pub async fn rotate_dkim(
        &self,
        domain: Option<&str>,
        sign_after: i64,
        withdraw_after: i64,
        now: i64,
    ) -> Result<Vec<Rotated>> {
        let domains: Vec<String> = match domain {
            Some(d) => {
                let d = d.to_ascii_lowercase();
                if !self.config.serves_domain(&d) {
                    return Err(refused(format!(
                        "{d} is not one of this site's domains ({})",
                        self.config.domains().collect::<Vec<_>>().join(", ")
                    )));
                }
                vec![d]
            }
            None => self.config.domains().map(str::to_string).collect(),
        };
        if sign_after < 0 || withdraw_after < 0 {
            return Err(refused("delays cannot be negative"));
        }
        let dir = dkim::key_dir(&self.config);
        let forgotten = self.directory.forget_withdrawn_dkim_keys(now).await?;
        dkim::remove_keys(&dir, &forgotten);
        let mut done = Vec::new();
        for domain in domains {
            let sign_from = now + sign_after;
            let withdraw_old_at = sign_from + withdraw_after;
            let (d, folder) = (domain.clone(), dir.clone());
            let made = tokio::task::spawn_blocking(move || {
                let keys = dkim::generate(&d, now, sign_from)?;
                dkim::write_keys(&folder, &keys)?;
                anyhow::Ok(keys)
            })
            .await
            .map_err(|e| refused(format!("cannot make keys: {e}")))?
            .map_err(|e| refused(format!("cannot make keys for {domain}: {e:#}")))?;
            let new: Vec<DkimKey> = made.into_iter().map(|k| k.key).collect();
            if let Err(error) = self
                .directory
                .rotate_dkim_keys(&domain, &new, withdraw_old_at)
                .await
            {
                dkim::remove_keys(&dir, &new);
                return Err(error.into());
            }
            done.push(Rotated {
                forgotten: forgotten
                    .iter()
                    .filter(|k| k.domain == domain)
                    .cloned()
                    .collect(),
                domain,
                new,
                sign_from,
                withdraw_old_at,
            });
        }
        Ok(done)
    }
}
