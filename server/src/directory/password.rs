//! Password hashing with argon2id (the crate's defaults: 19 MiB, 2 passes), run on
//! the blocking pool so that a login never stalls other connections.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};

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

/// Hashes many passwords (a bulk import), as many at once as there are cores: each
/// takes ~20 MiB, so all of a batch at once could exhaust memory.
pub async fn hash_many(passwords: Vec<String>) -> Result<Vec<String>> {
    let mut out = vec![String::new(); passwords.len()];
    let at_once = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut jobs = tokio::task::JoinSet::new();
    for (index, password) in passwords.into_iter().enumerate() {
        if jobs.len() >= at_once {
            finish_one(&mut jobs, &mut out).await?;
        }
        jobs.spawn_blocking(move || (index, hash_now(&password)));
    }
    while !jobs.is_empty() {
        finish_one(&mut jobs, &mut out).await?;
    }
    Ok(out)
}

async fn finish_one(
    jobs: &mut tokio::task::JoinSet<(usize, Result<String>)>,
    out: &mut [String],
) -> Result<()> {
    if let Some(done) = jobs.join_next().await {
        let (index, hash) = done.map_err(|e| DirectoryError::Hash(e.to_string()))?;
        out[index] = hash?;
    }
    Ok(())
}

/// Whether `hash` is an argon2 PHC string this directory can verify passwords against
/// (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`).
pub fn is_argon2(hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Algorithm::try_from(parsed.algorithm).is_ok()
            && parsed.salt.is_some()
            && parsed.hash.is_some()
            && argon2::Params::try_from(&parsed).is_ok()
    })
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
    tokio::task::spawn_blocking(move || verify_now(password.as_bytes(), &hash))
        .await
        .unwrap_or(false)
}

/// What `PasswordVerifier::verify_password` does, with the hash's parameters, but in
/// argon2 working memory kept from an earlier check: allocating 19 MiB afresh made the
/// kernel zero and map 4,800 pages per login, a third as much work as the hash itself.
fn verify_now(password: &[u8], hash: &str) -> bool {
    use argon2::password_hash::Output;
    use argon2::{Algorithm, Params, Version};
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_bytes = [0u8; argon2::password_hash::Salt::MAX_LENGTH];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let blocks = params.block_count();
    let mut memory = WORKING_MEMORY.take(blocks);
    let mut out = vec![0u8; expected.len()];
    let hashed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password,
        salt,
        &mut out,
        &mut memory[..blocks],
    );
    WORKING_MEMORY.give(memory);
    // Output's equality is constant-time.
    hashed.is_ok() && Output::new(&out).is_ok_and(|computed| computed == expected)
}

/// Argon2 working memory kept between checks: at most one buffer per check that may
/// run at once ([`hashing`]), so at most `cores` x 19 MiB with the default parameters.
struct WorkingMemory(std::sync::Mutex<Vec<Vec<argon2::Block>>>);

static WORKING_MEMORY: WorkingMemory = WorkingMemory(std::sync::Mutex::new(Vec::new()));

impl WorkingMemory {
    fn take(&self, blocks: usize) -> Vec<argon2::Block> {
        let kept = self.0.lock().map(|mut free| free.pop()).unwrap_or(None);
        let mut memory = kept.unwrap_or_default();
        if memory.len() < blocks {
            memory.resize(blocks, argon2::Block::default());
        }
        memory
    }

    fn give(&self, memory: Vec<argon2::Block>) {
        // A hash with unusually large parameters does not pin its memory.
        if memory.len() > argon2::Params::DEFAULT_M_COST as usize * 4 {
            return;
        }
        if let Ok(mut free) = self.0.lock() {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            if free.len() < cores {
                free.push(memory);
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordVerifier;
    use argon2::{Algorithm, Params, Version};

    fn hash_with(params: Params, password: &str) -> String {
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(password.as_bytes(), &salt)
            .unwrap()
            .to_string()
    }

    #[test]
    fn reused_memory_gives_the_crates_own_answers() {
        // Smaller and larger memory than the one kept, other passes and lanes, another
        // output length: each answer must equal argon2's own verify_password.
        let cases = [
            Params::new(1024, 2, 1, None).unwrap(),
            Params::new(4096, 3, 2, Some(48)).unwrap(),
            Params::new(2048, 1, 1, Some(16)).unwrap(),
            Params::new(1024, 2, 1, None).unwrap(),
        ];
        for params in cases {
            let hash = hash_with(params, "correct horse");
            for attempt in ["correct horse", "correct hors", "", "correct horse "] {
                let parsed = PasswordHash::new(&hash).unwrap();
                let theirs = Argon2::default()
                    .verify_password(attempt.as_bytes(), &parsed)
                    .is_ok();
                assert_eq!(
                    verify_now(attempt.as_bytes(), &hash),
                    theirs,
                    "{hash} {attempt:?}"
                );
                assert_eq!(theirs, attempt == "correct horse");
            }
        }
    }

    #[test]
    fn malformed_hashes_never_match() {
        for hash in [
            "",
            "$argon2id$",
            "plain",
            "$argon2id$v=19$m=1024,t=2,p=1$c2FsdA$",
        ] {
            assert!(!verify_now(b"", hash), "{hash}");
        }
    }

    #[tokio::test]
    async fn many_passwords_hash_in_their_order_and_read_as_argon2() {
        let passwords = ["first one", "second one", "third one"].map(String::from);
        let hashes = hash_many(passwords.to_vec()).await.unwrap();
        assert!(verify("second one", &hashes[1]).await);
        assert!(!verify("first one", &hashes[1]).await);
        assert!(hashes.iter().all(|h| is_argon2(h)));
        for bad in [
            "",
            "plain",
            "$argon2id$",
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
            "$argon2id$v=19$m=1024,t=2,p=1$c2FsdA$",
        ] {
            assert!(!is_argon2(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn the_default_parameters_check_through_the_pool() {
        let hash = hash("s3cret").await.unwrap();
        for _ in 0..3 {
            assert!(verify(" s3cret".trim(), &hash).await);
            assert!(!verify("s3cret!", &hash).await);
        }
    }
}
