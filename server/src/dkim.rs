//! DKIM signing (RFC 6376, with Ed25519 per RFC 8463): every message the submission
//! ports accept, every bounce and every auto-reply of a mailbox server leaves the
//! sorters with two signatures of its From: domain, one Ed25519 and one RSA-2048
//! (receivers that do not know Ed25519 yet check the RSA one).
//!
//! Keys are made per domain at the first start of a node that runs a sorter: the
//! private halves are files in the data directory (`dkim/<selector>.<domain>.pem`,
//! mode 0600, PKCS#8), the public halves go to the site database, from which every
//! node's zone publishes them as `<selector>._domainkey.<domain>` TXT records.
//! `mailsite dkim rotate` adds a new pair that signs after a delay (resolvers still
//! hold the old records meanwhile) and withdraws the old pair later.
//!
//! Canonicalisation and signing are mail-auth's (Stalwart's), on ring.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use base64::Engine as _;
use mail_auth::common::crypto::{Algorithm, Ed25519Key, RsaKey, Sha256, SigningKey};
use mail_auth::common::headers::{HeaderWriter, Writable};
use mail_auth::dkim::{Canonicalization, DkimSigner};
use mailsite_shared::{DkimKey, SiteConfig, SiteMap};
use tokio_rustls::rustls::pki_types::PrivateKeyDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;

/// The headers signed, where the message has them (RFC 6376 5.4.1's list, and those
/// receivers judge bulk mail by).
pub const SIGNED_HEADERS: [&str; 18] = [
    "From",
    "Sender",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "To",
    "Cc",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "In-Reply-To",
    "References",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Auto-Submitted",
    "Feedback-ID",
];

/// The RSA key size (RFC 8301: at least 1024; 2048 is what receivers expect now).
const RSA_BITS: usize = 2048;

/// Unix seconds now: the clock keys are rotated by.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Where a node keeps its private keys.
pub fn key_dir(config: &SiteConfig) -> PathBuf {
    config.data_dir.join("dkim")
}

fn key_file(dir: &Path, domain: &str, selector: &str) -> PathBuf {
    dir.join(format!("{selector}.{domain}.pem"))
}

/// A key pair just made: its public half as the zone will publish it, and its private
/// half in PEM.
pub struct NewKey {
    pub key: DkimKey,
    pem: String,
}

fn pem(der: &[u8]) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END PRIVATE KEY-----\n");
    out
}

/// Makes an Ed25519 and an RSA-2048 pair for `domain`, signing from `sign_from`. The
/// selectors name the time they were made (`ms-20261206-044200-3f9a-ed25519`). Slow (the
/// RSA key): run it off the async threads.
pub fn generate(domain: &str, made: i64, sign_from: i64) -> anyhow::Result<Vec<NewKey>> {
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey};
    // The time, and a random tag so that keys made in the same second differ.
    let stamp = chrono::DateTime::from_timestamp(made, 0).map_or_else(
        || made.to_string(),
        |t| t.format("%Y%m%d-%H%M%S").to_string(),
    );
    let stamp = format!("{stamp}-{:04x}", rand::random::<u16>());
    let encode = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let key = |algorithm: &str, public: &[u8], pem: String| NewKey {
        key: DkimKey {
            domain: domain.to_string(),
            selector: format!("ms-{stamp}-{algorithm}"),
            algorithm: algorithm.to_string(),
            public_key: encode(public),
            sign_from,
            withdraw_at: None,
        },
        pem,
    };

    let ed_der = Ed25519Key::generate_pkcs8()
        .map_err(|e| anyhow::anyhow!("cannot make an Ed25519 key: {e}"))?;
    let ed = Ed25519Key::from_pkcs8_der(&ed_der)
        .map_err(|e| anyhow::anyhow!("cannot read back the Ed25519 key: {e}"))?;

    let rsa_key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, RSA_BITS)
        .context("cannot make an RSA key")?;
    let rsa_der = rsa_key
        .to_pkcs8_der()
        .context("cannot encode the RSA key")?;
    let rsa_public = rsa_key
        .to_public_key()
        .to_public_key_der()
        .context("cannot encode the RSA public key")?;

    Ok(vec![
        key("ed25519", &ed.public_key(), pem(&ed_der)),
        key("rsa", rsa_public.as_bytes(), pem(rsa_der.as_bytes())),
    ])
}

/// Writes the private halves into `dir` (made 0700), each file 0600 and synced, the
/// folder synced after.
pub fn write_keys(dir: &Path, keys: &[NewKey]) -> anyhow::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict {}", dir.display()))?;
    }
    for new in keys {
        let path = key_file(dir, &new.key.domain, &new.key.selector);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        file.write_all(new.pem.as_bytes())?;
        file.sync_all()?;
    }
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Removes the private halves of keys (lost a race to publish, or withdrawn).
pub fn remove_keys(dir: &Path, keys: &[DkimKey]) {
    for key in keys {
        let path = key_file(dir, &key.domain, &key.selector);
        if let Err(error) = std::fs::remove_file(&path)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), %error, "cannot remove a DKIM key file");
        }
    }
}

/// A loaded private key.
enum Private {
    Ed25519(Ed25519Key),
    Rsa(RsaKey<Sha256>),
}

/// A loaded key shared by every signing (mail-auth's signer takes its key by value).
#[derive(Clone)]
struct Shared(Arc<Private>);

impl SigningKey for Shared {
    type Hasher = Sha256;

    fn sign(&self, input: impl Writable) -> mail_auth::Result<Vec<u8>> {
        match &*self.0 {
            Private::Ed25519(key) => key.sign(input),
            Private::Rsa(key) => key.sign(input),
        }
    }

    fn algorithm(&self) -> Algorithm {
        match &*self.0 {
            Private::Ed25519(_) => Algorithm::Ed25519Sha256,
            Private::Rsa(_) => Algorithm::RsaSha256,
        }
    }
}

fn load(path: &Path, algorithm: &str) -> anyhow::Result<Private> {
    let der = PrivateKeyDer::from_pem_file(path)
        .with_context(|| format!("cannot read the DKIM key {}", path.display()))?;
    let PrivateKeyDer::Pkcs8(pkcs8) = &der else {
        anyhow::bail!("{} is not a PKCS#8 private key", path.display());
    };
    match algorithm {
        "ed25519" => Ed25519Key::from_pkcs8_maybe_unchecked_der(pkcs8.secret_pkcs8_der())
            .map(Private::Ed25519)
            .map_err(|e| anyhow::anyhow!("{} is not an Ed25519 key: {e}", path.display())),
        "rsa" => RsaKey::<Sha256>::from_key_der(der.clone_key())
            .map(Private::Rsa)
            .map_err(|e| anyhow::anyhow!("{} is not an RSA key: {e}", path.display())),
        other => anyhow::bail!("unknown DKIM algorithm {other:?}"),
    }
}

/// Signs with the keys the site map says, loading each private key from the data
/// directory the first time it is needed. A key this node does not have is logged
/// once and skipped (the other signature still goes on).
pub struct Signer {
    dir: PathBuf,
    /// Loaded keys by file name; `None`: missing or unreadable (already logged).
    keys: Mutex<HashMap<String, Option<Shared>>>,
}

impl Signer {
    pub fn new(config: &SiteConfig) -> Signer {
        Signer {
            dir: key_dir(config),
            keys: Mutex::default(),
        }
    }

    fn key(&self, key: &DkimKey) -> Option<Shared> {
        let path = key_file(&self.dir, &key.domain, &key.selector);
        let name = path.to_string_lossy().into_owned();
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(loaded) = keys.get(&name) {
            return loaded.clone();
        }
        let loaded = match load(&path, &key.algorithm) {
            Ok(private) => Some(Shared(Arc::new(private))),
            Err(error) => {
                tracing::error!(selector = %key.selector, domain = %key.domain, error = format!("{error:#}"), "cannot sign with a published DKIM key: copy the data directory's dkim/ folder from the node that made it");
                None
            }
        };
        keys.insert(name, loaded.clone());
        loaded
    }

    /// The `DKIM-Signature:` header lines (CRLF-ended) for a message of `domain` made
    /// of `parts` (header and body, in order), signed with the keys the domain signs
    /// with at `now`; empty when it has none.
    pub fn sign(&self, map: &SiteMap, domain: &str, parts: &[&[u8]], now: i64) -> String {
        let mut out = String::new();
        for key in map.dkim_signing(domain, now) {
            let Some(private) = self.key(key) else {
                continue;
            };
            let signed = DkimSigner::from_key(private)
                .domain(key.domain.as_str())
                .selector(key.selector.as_str())
                .headers(SIGNED_HEADERS)
                .header_canonicalization(Canonicalization::Relaxed)
                .body_canonicalization(Canonicalization::Relaxed)
                .sign_chained(parts.iter().copied());
            match signed {
                Ok(signature) => out.push_str(&signature.to_header()),
                Err(error) => {
                    tracing::warn!(selector = %key.selector, %domain, %error, "cannot DKIM-sign a message");
                }
            }
        }
        out
    }
}

/// Whether this node holds the private half of `key`, and it is the half of the
/// public key the zone publishes.
pub fn private_matches(config: &SiteConfig, key: &DkimKey) -> Result<(), String> {
    use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
    let path = key_file(&key_dir(config), &key.domain, &key.selector);
    let der = PrivateKeyDer::from_pem_file(&path).map_err(|e| {
        format!(
            "its private half is not on this node ({}: {e})",
            path.display()
        )
    })?;
    let PrivateKeyDer::Pkcs8(pkcs8) = &der else {
        return Err(format!("{} is not a PKCS#8 key", path.display()));
    };
    let public = match key.algorithm.as_str() {
        "ed25519" => Ed25519Key::from_pkcs8_maybe_unchecked_der(pkcs8.secret_pkcs8_der())
            .map(|k| k.public_key())
            .map_err(|e| format!("{} is not an Ed25519 key: {e}", path.display()))?,
        "rsa" => rsa::RsaPrivateKey::from_pkcs8_der(pkcs8.secret_pkcs8_der())
            .ok()
            .and_then(|k| k.to_public_key().to_public_key_der().ok())
            .map(|d| d.as_bytes().to_vec())
            .ok_or_else(|| format!("{} is not an RSA key", path.display()))?,
        other => return Err(format!("unknown algorithm {other:?}")),
    };
    match base64::engine::general_purpose::STANDARD.encode(public) == key.public_key {
        true => Ok(()),
        false => Err(format!(
            "{} is not the private half of the published key",
            path.display()
        )),
    }
}

/// Makes the first keys of every site domain that has none, publishing them at once
/// (a site's first start). Another node that publishes first wins; this one's files
/// are removed. Returns the domains given keys.
pub async fn ensure_keys(
    directory: &crate::directory::Directory,
    config: &SiteConfig,
) -> anyhow::Result<Vec<String>> {
    let existing = directory.dkim_keys().await?;
    let dir = key_dir(config);
    let mut made = Vec::new();
    for domain in config.domains() {
        if existing.iter().any(|k| k.domain == domain) {
            continue;
        }
        let now = now();
        let (domain_owned, dir_owned) = (domain.to_string(), dir.clone());
        let keys = tokio::task::spawn_blocking(move || {
            let keys = generate(&domain_owned, now, now)?;
            write_keys(&dir_owned, &keys)?;
            anyhow::Ok(keys)
        })
        .await??;
        let public: Vec<DkimKey> = keys.iter().map(|k| k.key.clone()).collect();
        if directory.add_first_dkim_keys(domain, &public).await? {
            tracing::info!(%domain, selectors = %public.iter().map(|k| k.selector.as_str()).collect::<Vec<_>>().join(" "), "made and published the domain's DKIM keys");
            made.push(domain.to_string());
        } else {
            remove_keys(&dir, &public);
        }
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_key_reached_signs_and_withdrawn_keys_do_not() {
        let key = |selector: &str, algorithm: &str, sign_from: i64, withdraw_at| DkimKey {
            domain: "example.test".into(),
            selector: selector.into(),
            algorithm: algorithm.into(),
            public_key: String::new(),
            sign_from,
            withdraw_at,
        };
        let mut map = SiteMap::initial(Arc::new(SiteConfig::embedded()));
        map.dkim = vec![
            key("old-e", "ed25519", 100, Some(500)),
            key("old-r", "rsa", 100, Some(500)),
            key("new-e", "ed25519", 300, None),
            key("new-r", "rsa", 300, None),
        ]
        .into();
        let signing = |now| {
            map.dkim_signing("Example.TEST", now)
                .iter()
                .map(|k| k.selector.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(signing(50), Vec::<String>::new());
        assert_eq!(signing(200), ["old-e", "old-r"]);
        assert_eq!(signing(300), ["new-e", "new-r"]);
        assert_eq!(map.dkim_signing("other.test", 300).len(), 0);
        assert_eq!(map.dkim_next_change(200), Some(300));
        assert_eq!(map.dkim_next_change(300), Some(500));
        assert_eq!(map.dkim_next_change(500), None);
    }

    #[test]
    fn made_keys_are_written_privately_and_sign() {
        let dir = std::env::temp_dir().join(format!("mailsite-dkim-{}", rand::random::<u64>()));
        let keys = generate("example.test", 1_796_000_000, 0).expect("keys are made");
        assert_eq!(keys.len(), 2);
        assert!(
            keys[0].key.selector.ends_with("-ed25519"),
            "{}",
            keys[0].key.selector
        );
        assert!(
            keys[1]
                .key
                .record()
                .starts_with("v=DKIM1; k=rsa; p=MIIBIjAN")
        );
        write_keys(&dir, &keys).expect("written");
        #[cfg(unix)]
        for new in &keys {
            use std::os::unix::fs::PermissionsExt;
            let path = key_file(&dir, "example.test", &new.key.selector);
            let mode = std::fs::metadata(&path)
                .expect("the key file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{}", path.display());
        }
        let mut config = SiteConfig::embedded();
        config.data_dir = dir.parent().expect("a parent").to_path_buf();
        let signer = Signer {
            dir: dir.clone(),
            keys: Mutex::default(),
        };
        let mut map = SiteMap::initial(Arc::new(config));
        map.dkim = keys
            .iter()
            .map(|k| k.key.clone())
            .collect::<Vec<_>>()
            .into();
        let message = b"From: a@example.test\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nHello\r\n";
        let headers = signer.sign(&map, "example.test", &[message], 10);
        assert_eq!(headers.matches("DKIM-Signature:").count(), 2, "{headers}");
        assert!(headers.contains("a=ed25519-sha256"), "{headers}");
        assert!(headers.contains("a=rsa-sha256"), "{headers}");
        assert!(headers.contains("d=example.test"), "{headers}");
        assert!(headers.ends_with("\r\n"));
        std::fs::remove_dir_all(dir).ok();
    }
}
