//! The certificate check of one STARTTLS handshake to another domain's mail server,
//! as its domain's policy asks: none (opportunistic TLS), PKIX for the MX host name
//! (MTA-STS), or a match with the host's TLSA records (DANE, RFC 7672 3). The verdict
//! is kept for the TLS report; the handshake fails on it only when the policy is
//! enforced (an MTA-STS policy in testing mode reports and goes on).

use std::sync::{Arc, Mutex};

use hickory_resolver::proto::rr::rdata::TLSA;
use hickory_resolver::proto::rr::rdata::tlsa::{CertUsage, Matching, Selector};
use mail_auth::report::tlsrpt::ResultType;
use sha2::Digest;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{
    CryptoProvider, verify_tls12_signature, verify_tls13_signature,
};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error, RootCertStore, SignatureScheme,
};

use super::Failure;

/// What a server's certificate must be.
#[derive(Clone)]
pub enum Check {
    /// Anything (opportunistic, or encryption without authentication).
    Any,
    /// Valid for the host name with these roots (MTA-STS).
    Pkix(Arc<WebPkiServerVerifier>),
    /// Matching one of these usable TLSA records (DANE).
    Dane(Arc<[TLSA]>),
}

/// The verdict on the certificate of one handshake, once it was checked.
pub type Verdict = Arc<Mutex<Option<Result<(), Failure>>>>;

/// A connector for one connection with `check`; the handshake fails on a bad
/// certificate when `enforce`. The verdict is written to the returned slot.
pub fn connector(
    provider: &Arc<CryptoProvider>,
    check: Check,
    enforce: bool,
) -> Result<(TlsConnector, Verdict), Error> {
    let verdict: Verdict = Arc::default();
    let verifier = PolicyVerifier {
        check,
        enforce,
        provider: provider.clone(),
        verdict: verdict.clone(),
    };
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok((TlsConnector::from(Arc::new(config)), verdict))
}

/// A PKIX verifier with the web's roots and `extra` ones.
pub fn pkix(
    provider: &Arc<CryptoProvider>,
    extra: &[CertificateDer<'static>],
) -> Result<Arc<WebPkiServerVerifier>, String> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let (_, ignored) = roots.add_parsable_certificates(extra.iter().cloned());
    if ignored > 0 {
        tracing::warn!(
            ignored,
            "[relay] tls_trust: some certificates are not usable as roots"
        );
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| e.to_string())
}

#[derive(Debug)]
struct PolicyVerifier {
    check: Check,
    enforce: bool,
    provider: Arc<CryptoProvider>,
    verdict: Verdict,
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Check::Any => "any",
            Check::Pkix(_) => "pkix",
            Check::Dane(_) => "dane",
        })
    }
}

impl ServerCertVerifier for PolicyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let result = match &self.check {
            Check::Any => Ok(()),
            Check::Pkix(pkix) => pkix
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
                .map(|_| ())
                .map_err(|e| failure_of(&e)),
            Check::Dane(records) => dane_match(
                records,
                end_entity,
                intermediates,
                server_name,
                &self.provider,
                now,
            ),
        };
        let error = result.as_ref().err().map(|f| f.detail.clone());
        if let Ok(mut slot) = self.verdict.lock() {
            *slot = Some(result);
        }
        match error {
            Some(detail) if self.enforce => {
                Err(Error::InvalidCertificate(CertificateError::Other(
                    tokio_rustls::rustls::OtherError(Arc::new(std::io::Error::other(detail))),
                )))
            }
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The TLS-RPT failure of a PKIX check's error.
pub fn failure_of(error: &Error) -> Failure {
    let kind = match error {
        Error::InvalidCertificate(c) => match c {
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => ResultType::CertificateExpired,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                ResultType::CertificateHostMismatch
            }
            CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                ResultType::CertificateNotTrusted
            }
            _ => ResultType::ValidationFailure,
        },
        _ => ResultType::ValidationFailure,
    };
    Failure::new(kind, format!("the certificate is not valid: {error}"))
}

/// Whether the server's chain matches one of the usable TLSA `records` (RFC 7672 3.1):
/// DANE-EE names the server's own certificate or key (no name or date checks);
/// DANE-TA a certificate of the chain, which must then be a trust anchor under which
/// the server's certificate is valid for the host.
fn dane_match(
    records: &[TLSA],
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    server_name: &ServerName<'_>,
    provider: &Arc<CryptoProvider>,
    now: UnixTime,
) -> Result<(), Failure> {
    let mut why = String::from("no TLSA record matches the certificate");
    for record in records {
        match record.cert_usage {
            CertUsage::DaneEe if matches(record, end_entity) => return Ok(()),
            CertUsage::DaneTa => {
                for anchor in intermediates.iter().filter(|c| matches(record, c)) {
                    let mut roots = RootCertStore::empty();
                    if roots.add(anchor.clone().into_owned()).is_err() {
                        continue;
                    }
                    let verified = WebPkiServerVerifier::builder_with_provider(
                        Arc::new(roots),
                        provider.clone(),
                    )
                    .build()
                    .map_err(|e| e.to_string())
                    .and_then(|v| {
                        v.verify_server_cert(end_entity, intermediates, server_name, &[], now)
                            .map_err(|e| e.to_string())
                    });
                    match verified {
                        Ok(_) => return Ok(()),
                        Err(e) => why = format!("a DANE-TA record matches, but {e}"),
                    }
                }
            }
            _ => {}
        }
    }
    Err(Failure::new(ResultType::ValidationFailure, why))
}

/// Whether `cert` is what `record` names.
fn matches(record: &TLSA, cert: &CertificateDer<'_>) -> bool {
    let spki;
    let selected: &[u8] = match record.selector {
        Selector::Full => cert.as_ref(),
        Selector::Spki => match x509_parser::parse_x509_certificate(cert.as_ref()) {
            Ok((_, parsed)) => {
                spki = parsed.public_key().raw.to_vec();
                &spki
            }
            Err(_) => return false,
        },
        _ => return false,
    };
    match record.matching {
        Matching::Raw => selected == record.cert_data.as_slice(),
        Matching::Sha256 => sha2::Sha256::digest(selected).as_slice() == record.cert_data,
        Matching::Sha512 => sha2::Sha512::digest(selected).as_slice() == record.cert_data,
        _ => false,
    }
}

/// Whether DANE can use `record` for SMTP: DANE-TA or DANE-EE with a known selector
/// and matching type (RFC 7672 3.1.3: the PKIX usages are not used for SMTP).
pub fn usable(record: &TLSA) -> bool {
    matches!(record.cert_usage, CertUsage::DaneEe | CertUsage::DaneTa)
        && matches!(record.selector, Selector::Full | Selector::Spki)
        && matches!(
            record.matching,
            Matching::Raw | Matching::Sha256 | Matching::Sha512
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate() -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["mx.remote.example".into()]).unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    fn tlsa(usage: CertUsage, selector: Selector, matching: Matching, data: Vec<u8>) -> TLSA {
        TLSA::new(usage, selector, matching, data)
    }

    #[test]
    fn dane_ee_records_match_the_certificate_or_its_key() {
        let cert = certificate();
        let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).unwrap();
        let spki = parsed.public_key().raw.to_vec();
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let name = ServerName::try_from("mx.remote.example").unwrap();
        let check =
            |record: TLSA| dane_match(&[record], &cert, &[], &name, &provider, UnixTime::now());
        let ee = CertUsage::DaneEe;
        assert!(
            check(tlsa(
                ee,
                Selector::Spki,
                Matching::Sha256,
                sha2::Sha256::digest(&spki).to_vec()
            ))
            .is_ok()
        );
        assert!(
            check(tlsa(
                ee,
                Selector::Full,
                Matching::Sha256,
                sha2::Sha256::digest(&cert).to_vec()
            ))
            .is_ok()
        );
        assert!(
            check(tlsa(
                ee,
                Selector::Spki,
                Matching::Sha512,
                sha2::Sha512::digest(&spki).to_vec()
            ))
            .is_ok()
        );
        assert!(check(tlsa(ee, Selector::Full, Matching::Raw, cert.to_vec())).is_ok());
        let wrong = check(tlsa(ee, Selector::Spki, Matching::Sha256, vec![0; 32])).unwrap_err();
        assert_eq!(wrong.kind, ResultType::ValidationFailure);
        // PKIX-EE names the certificate too, but is not for SMTP.
        let pkix = tlsa(
            CertUsage::PkixEe,
            Selector::Spki,
            Matching::Sha256,
            sha2::Sha256::digest(&spki).to_vec(),
        );
        assert!(!usable(&pkix));
        assert!(check(pkix).is_err());
    }
}
