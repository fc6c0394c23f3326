//! Password hashing with argon2id (the crate's defaults: 19 MiB, 2 passes), run on
//! the blocking pool so that a login never stalls other connections.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use super::{DirectoryError, Result};

/// The hasher for new hashes. Fuzzing builds (`--cfg fuzzing`, set by cargo-fuzz) use
/// the cheapest parameters, so that an iteration that logs in takes microseconds.
/// Verifying always uses the parameters a hash records.
fn hasher() -> Argon2<'static> {
    if cfg!(fuzzing) {
        use argon2::{Algorithm, Params, Version};
        let cheapest = Params::new(Params::MIN_M_COST, Params::MIN_T_COST, 1, None);
        if let Ok(params) = cheapest {
            return Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        }
    }
    Argon2::default()
}

fn hash_now(password: &str) -> Result<String> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| DirectoryError::Hash(e.to_string()))?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| DirectoryError::Hash(e.to_string()))
}

/// Hashes a password into a PHC string.
pub async fn hash(password: &str) -> Result<String> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || hash_now(&password))
        .await
        .map_err(|e| DirectoryError::Hash(e.to_string()))?
}

/// At most this many password checks run at once (each takes ~20 MiB and a core for a
/// moment): a storm of logins queues here instead of starving every other session of
/// CPU and memory.
fn hashing() -> &'static tokio::sync::Semaphore {
    static HASHING: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    HASHING.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(cores)
    })
}

/// Checks a password against a PHC string; a malformed hash never matches.
pub async fn verify(password: &str, hash: &str) -> bool {
    let password = password.to_string();
    let hash = hash.to_string();
    let Ok(_turn) = hashing().acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// A hash of a random password, verified against for unknown users so that their
/// logins take as long as real ones.
pub fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let random: [u8; 16] = rand::random();
        hash_now(&format!("{random:?}")).unwrap_or_default()
    })
}
