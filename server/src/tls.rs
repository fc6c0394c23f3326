//! TLS for the mailbox (and later sorter) protocols: rustls with the ring provider.
//!
//! A real site names its certificate and key files in `[tls]`. Without them, mailsite
//! makes a site CA on first start (`<data_dir>/tls/ca.pem`, which users or the desktop
//! helper can trust) and a server certificate signed by it for every name clients use:
//! each `mail<letter>`, `outbox`, `autoconfig`, `autodiscover` and server name of every
//! site domain, plus the servers' addresses.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use mailsite_shared::SiteConfig;
use mailsite_shared::route::alias_host;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Where the generated site CA and server certificate live.
pub fn tls_dir(config: &SiteConfig) -> PathBuf {
    config.data_dir.join("tls")
}

/// The site CA certificate file that clients can be told to trust.
pub fn ca_file(config: &SiteConfig) -> PathBuf {
    tls_dir(config).join("ca.pem")
}

/// Every DNS name and address the server certificate must cover.
pub fn certificate_names(config: &SiteConfig) -> Vec<String> {
    let mut names = Vec::new();
    for domain in config.domains() {
        for bucket in 0..mailsite_shared::config::BUCKETS {
            names.push(alias_host(bucket, domain));
        }
        for label in [
            "outbox",
            "autoconfig",
            "autodiscover",
            "ua-auto-config",
            "mta-sts",
        ] {
            names.push(format!("{label}.{domain}"));
        }
        for server in config.mailboxes.iter().chain(&config.sorters) {
            names.push(format!("{}.{domain}", server.name));
        }
    }
    for server in config.mailboxes.iter().chain(&config.sorters) {
        names.extend(server.addresses.iter().map(|a| a.to_string()));
    }
    names.sort();
    names.dedup();
    names
}

fn this_year() -> i32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    1970 + (secs / 31_556_952) as i32
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// Creates the site CA and a server certificate for every name, if they are missing.
fn ensure_generated(config: &SiteConfig) -> anyhow::Result<(PathBuf, PathBuf)> {
    let dir = tls_dir(config);
    let (cert_file, key_file) = (dir.join("server.pem"), dir.join("server-key.pem"));
    if cert_file.exists() && key_file.exists() && ca_file(config).exists() {
        return Ok((cert_file, key_file));
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let year = this_year();

    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::OrganizationName, config.name.clone());
    ca.distinguished_name.push(
        DnType::CommonName,
        format!("{} mail site CA", config.domain),
    );
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    ca.not_after = rcgen::date_time_ymd(year + 10, 1, 1);
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let mut leaf = CertificateParams::new(certificate_names(config))?;
    leaf.distinguished_name.push(
        DnType::CommonName,
        format!("{} mail servers", config.domain),
    );
    leaf.use_authority_key_identifier_extension = true;
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    leaf.not_after = rcgen::date_time_ymd(year + 2, 1, 1);
    let leaf_key = KeyPair::generate()?;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;

    write_private(&key_file, &leaf_key.serialize_pem())?;
    // The chain: the server certificate, then the CA that signed it.
    std::fs::write(&cert_file, format!("{}{}", leaf_cert.pem(), ca_cert.pem()))?;
    std::fs::write(ca_file(config), ca_cert.pem())?;
    Ok((cert_file, key_file))
}

/// The certificate and key files of this site: the configured ones, or the generated
/// ones (made if missing).
fn files(config: &SiteConfig) -> anyhow::Result<(PathBuf, PathBuf)> {
    match &config.tls {
        Some(files) => Ok((files.cert.clone(), files.key.clone())),
        None => ensure_generated(config),
    }
}

fn chain(cert_file: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_file_iter(cert_file)
        .with_context(|| format!("cannot read the certificate file {}", cert_file.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("{} is not a PEM certificate chain", cert_file.display()))
}

/// Makes the site CA and server certificate now if the site generates its own and
/// they are missing (a node that publishes TLSA records before its servers start).
pub fn ensure(config: &SiteConfig) -> anyhow::Result<()> {
    files(config).map(|_| ())
}

/// The SHA-256 of the server certificate's public key (its SubjectPublicKeyInfo): what
/// a DANE-EE TLSA record (3 1 1, RFC 7671) names, unchanged when the certificate is
/// renewed with the same key. `None` when the site makes its own certificate and this
/// data directory has none (nothing is made here).
pub fn public_key_digest(config: &SiteConfig) -> anyhow::Result<Option<[u8; 32]>> {
    use sha2::Digest;
    let cert_file = match &config.tls {
        Some(files) => files.cert.clone(),
        None => tls_dir(config).join("server.pem"),
    };
    if config.tls.is_none() && !cert_file.exists() {
        return Ok(None);
    }
    let chain = chain(&cert_file)?;
    let leaf = chain
        .first()
        .with_context(|| format!("{} holds no certificate", cert_file.display()))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| anyhow::anyhow!("{} is not a certificate: {e}", cert_file.display()))?;
    Ok(Some(sha2::Sha256::digest(parsed.public_key().raw).into()))
}

/// The TLS acceptor for this site: the configured files, or the generated ones.
pub fn acceptor(config: &SiteConfig) -> anyhow::Result<TlsAcceptor> {
    let (cert_file, key_file) = files(config)?;
    let certs = chain(&cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&key_file)
        .with_context(|| format!("cannot read a private key from {}", key_file.display()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .with_context(|| {
            format!(
                "{} does not match {}",
                key_file.display(),
                cert_file.display()
            )
        })?;
    Ok(TlsAcceptor::from(Arc::new(server)))
}
