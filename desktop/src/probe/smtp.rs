//! The SMTP step: EHLO, STARTTLS and AUTH as the user's client does them (lettre), the
//! transcript kept at the command level; the session is also the round trip's way
//! out.

use std::net::IpAddr;

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use mailsite_shared::autoconfig::{Security, ServerSetting};
use mailsite_shared::report::{Problem, Step};
use mailsite_shared::smtp_reply::{ReplyLimits, read_reply};
use tokio::io::{AsyncRead, BufReader};
use tokio::net::TcpStream;

use super::{Login, Running, login_probe, send};
use crate::explain;
use crate::net::Net;
use crate::record::Shared;

/// The plain-text part of STARTTLS for the TLS step: greeting, EHLO, `STARTTLS`, its
/// 220.
pub(super) async fn starttls(stream: TcpStream) -> Result<TcpStream, String> {
    let mut r = BufReader::new(stream);
    expect_reply(&mut r, 220).await?;
    send(&mut r, b"EHLO mailsite-helper.invalid\r\n").await?;
    expect_reply(&mut r, 250).await?;
    send(&mut r, b"STARTTLS\r\n").await?;
    expect_reply(&mut r, 220).await?;
    Ok(r.into_inner())
}

/// A reply that must carry `code`; any other is quoted whole.
async fn expect_reply<S: AsyncRead + Unpin>(r: &mut BufReader<S>, code: u16) -> Result<(), String> {
    let reply = read_reply(r, ReplyLimits::default())
        .await
        .map_err(|e| e.to_string())?;
    if reply.code == code {
        Ok(())
    } else {
        Err(format!(
            "unexpected answer: {}",
            String::from_utf8_lossy(&reply.raw).trim_end()
        ))
    }
}

/// The name the helper greets with.
fn hello() -> ClientId {
    ClientId::Domain("mailsite-helper.invalid".to_string())
}

/// lettre's TLS, trusting the site CA the user named besides the public roots.
fn tls_parameters(net: &Net, host: &str) -> Result<TlsParameters, String> {
    let mut builder = TlsParameters::builder(host.to_string());
    if let Some(pem) = &net.ca_pem {
        builder =
            builder.add_root_certificate(Certificate::from_pem(pem).map_err(|e| e.to_string())?);
    }
    builder.build_rustls().map_err(|e| e.to_string())
}

/// Connects and authenticates with lettre; the transcript is kept at the command level.
pub(super) async fn session(
    net: &Net,
    s: &ServerSetting,
    ip: IpAddr,
    login: &Login,
    t: &Shared,
    run: &mut Running,
) -> Result<AsyncSmtpConnection, Problem> {
    let note = |from_client: bool, line: &str| {
        t.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(from_client, line);
    };
    let serr = |e: lettre::transport::smtp::Error| explain::protocol_error("SMTP", &e.to_string());
    let params =
        tls_parameters(net, &s.hostname).map_err(|e| explain::tls_failed(&s.hostname, &e))?;
    let implicit = (s.security == Security::Tls).then(|| params.clone());
    let mut conn = AsyncSmtpConnection::connect_tokio1(
        (ip, s.port),
        Some(net.step_timeout),
        &hello(),
        implicit,
        None,
    )
    .await
    .map_err(serr)?;
    note(true, "EHLO mailsite-helper.invalid");
    note(false, &format!("250 {}", conn.server_info()));
    if s.security == Security::StartTls {
        note(true, "STARTTLS");
        conn.starttls(params, &hello())
            .await
            .map_err(|e| explain::tls_failed(&s.hostname, &e.to_string()))?;
        note(false, "220 (TLS started)");
        note(true, "EHLO mailsite-helper.invalid");
        note(false, &format!("250 {}", conn.server_info()));
    }
    run.detail("server", conn.server_info().to_string());
    let credentials = Credentials::new(login.username.clone(), login.password.clone());
    note(true, "AUTH PLAIN <redacted>");
    match conn
        .auth(&[Mechanism::Plain, Mechanism::Login], &credentials)
        .await
    {
        Ok(response) => {
            note(
                false,
                &format!(
                    "{} {}",
                    response.code(),
                    response.message().collect::<Vec<_>>().join(" ")
                ),
            );
            run.detail("auth", "accepted");
            Ok(conn)
        }
        Err(e) => {
            note(false, &e.to_string());
            if e.status().is_some_and(|c| c.to_string() == "535") || e.is_permanent() {
                Err(explain::auth_refused("outgoing (SMTP)", &login.username))
            } else if e.is_transient() {
                Err(explain::server_temporary("outgoing (SMTP)", &e.to_string()))
            } else {
                Err(serr(e))
            }
        }
    }
}

/// SMTP: EHLO, STARTTLS, AUTH (lettre).
pub async fn smtp(net: &Net, s: &ServerSetting, ip: IpAddr, login: &Login) -> Step {
    login_probe(net, ("smtp", "SMTP"), s, ip, login, async |t, run| {
        let mut conn = session(net, s, ip, login, t, run).await?;
        let _ = conn.quit().await;
        Ok(Vec::new())
    })
    .await
}
