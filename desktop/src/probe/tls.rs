//! The TLS step: a handshake (after each protocol's STARTTLS for those settings) that
//! shows the server's certificate whatever it is, then says whether the user's client
//! would accept it, and why not.

use std::net::IpAddr;

use mailsite_shared::autoconfig::{Protocol, Security, ServerSetting};
use mailsite_shared::report::Step;
use sha2::Digest;
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, CertificateError};

use super::{Running, bounded, endpoint, imap, pop3, security_name, smtp};
use crate::explain;
use crate::net::Net;

/// The plain-text part of STARTTLS/STLS, up to the point where TLS starts.
async fn before_tls(protocol: Protocol, stream: TcpStream) -> Result<TcpStream, String> {
    match protocol {
        Protocol::Imap => imap::starttls(stream).await,
        Protocol::Pop3 => pop3::stls(stream).await,
        Protocol::Smtp => smtp::starttls(stream).await,
    }
}

/// What the TLS step says about a certificate.
pub struct Described {
    /// Its names (subject alternative names), comma-separated.
    pub names: String,
    pub issuer: String,
    /// When it expires (RFC 2822).
    pub expiry: String,
    /// Whether it vouches for itself (its issuer is its subject): no authority issued it.
    pub self_signed: bool,
}

/// Facts about a certificate (DER), also recorded as the step's details.
pub fn describe_certificate(der: &[u8], run: &mut Running) -> Described {
    let fingerprint = sha2::Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    let mut names = String::new();
    let mut issuer = String::new();
    let mut expiry = String::new();
    let mut self_signed = false;
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => {
            run.detail("subject", cert.subject());
            issuer = cert.issuer().to_string();
            run.detail("issuer", &issuer);
            self_signed = cert.issuer() == cert.subject();
            if self_signed {
                run.detail("self_signed", true);
            }
            if let Ok(Some(san)) = cert.subject_alternative_name() {
                let list: Vec<String> = san
                    .value
                    .general_names
                    .iter()
                    .map(|n| match n {
                        x509_parser::extensions::GeneralName::DNSName(d) => d.to_string(),
                        x509_parser::extensions::GeneralName::IPAddress(ip) => match ip.len() {
                            4 => IpAddr::from(<[u8; 4]>::try_from(*ip).unwrap_or_default())
                                .to_string(),
                            16 => IpAddr::from(<[u8; 16]>::try_from(*ip).unwrap_or_default())
                                .to_string(),
                            _ => format!("{ip:?}"),
                        },
                        other => other.to_string(),
                    })
                    .collect();
                names = list.join(", ");
                run.detail("sans", &names);
            }
            expiry = cert
                .validity()
                .not_after
                .to_rfc2822()
                .unwrap_or_else(|_| cert.validity().not_after.to_string());
            run.detail("not_after", &expiry);
        }
        Err(e) => run.detail("certificate_error", e),
    }
    run.detail("sha256", &fingerprint);
    Described {
        names,
        issuer,
        expiry,
        self_signed,
    }
}

/// A TLS handshake (after STARTTLS for those settings) that shows the certificate
/// whatever it is, then says whether the user's client would accept it.
pub async fn tls(net: &Net, s: &ServerSetting, stream: TcpStream) -> Step {
    let peer = stream.peer_addr().ok();
    let mut run = Running::new(
        format!("tls:{}:{}", s.hostname, s.port),
        "tls",
        format!("TLS on {} ({})", endpoint(s), security_name(s.security)),
    );
    run.detail("protocol", s.protocol.thunderbird_name());
    run.detail("host", &s.hostname);
    run.detail("port", s.port);
    if let Some(p) = peer {
        run.detail("address", p.ip());
    }
    let (connector, verdict) = net.inspecting();
    let Ok(name) = ServerName::try_from(s.hostname.clone()) else {
        return run.fail(explain::tls_failed(&s.hostname, "not a valid server name"));
    };
    let work = async {
        let stream = if s.security == Security::StartTls {
            before_tls(s.protocol, stream)
                .await
                .map_err(|e| explain::tls_failed(&s.hostname, &format!("STARTTLS: {e}")))?
        } else {
            stream
        };
        connector
            .connect(name, stream)
            .await
            .map_err(|e| explain::tls_failed(&s.hostname, &e.to_string()))
    };
    let tls = match bounded(net, "TLS", work).await {
        Ok(tls) => tls,
        Err(p) => return run.fail(p),
    };
    let conn = tls.get_ref().1;
    if let Some(v) = conn.protocol_version() {
        run.detail(
            "tls_version",
            v.as_str().unwrap_or("unknown").replace('_', "."),
        );
    }
    if let Some(c) = conn.negotiated_cipher_suite() {
        run.detail("cipher", format!("{:?}", c.suite()));
    }
    let cert = match conn.peer_certificates().and_then(|c| c.first()) {
        Some(cert) => describe_certificate(cert.as_ref(), &mut run),
        None => {
            return run.fail(explain::tls_failed(
                &s.hostname,
                "the server sent no certificate",
            ));
        }
    };
    let verdict = verdict.lock().unwrap_or_else(|p| p.into_inner()).take();
    run.detail(
        "trusted",
        verdict.is_none()
            || !matches!(
                verdict,
                Some(rustls::Error::InvalidCertificate(
                    CertificateError::UnknownIssuer
                ))
            ),
    );
    let name_ok = !matches!(
        verdict,
        Some(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
        ))
    );
    run.detail("host_matches", name_ok);
    match verdict {
        None => run.pass(),
        Some(rustls::Error::InvalidCertificate(e)) => match e {
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                run.fail(explain::tls_wrong_name(&s.hostname, &cert.names))
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                run.fail(explain::tls_expired(&s.hostname, &cert.expiry))
            }
            // Issued by nobody: no CA file on this computer can make it trusted.
            CertificateError::UnknownIssuer if cert.self_signed => {
                run.fail(explain::tls_bad_certificate(&s.hostname))
            }
            CertificateError::UnknownIssuer => {
                run.fail(explain::tls_untrusted(&s.hostname, &cert.issuer))
            }
            CertificateError::BadSignature
            | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
            | CertificateError::BadEncoding => run.fail(explain::tls_bad_certificate(&s.hostname)),
            other => run.fail(explain::tls_failed(&s.hostname, &format!("{other:?}"))),
        },
        Some(other) => run.fail(explain::tls_failed(&s.hostname, &other.to_string())),
    }
}
