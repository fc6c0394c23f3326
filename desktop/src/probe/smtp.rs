//! The SMTP step: greeting, EHLO, STARTTLS and AUTH as a mail client does them, over a
//! recorded connection, so that the transcript holds the bytes the server sent (its
//! replies verbatim, credentials redacted); the session is also the round trip's way
//! out (MAIL, RCPT, DATA).

use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use mailsite_shared::autoconfig::{Security, ServerSetting};
use mailsite_shared::report::{Problem, Step};
use mailsite_shared::smtp_reply::{Reply, ReplyLimits, read_reply};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::wire::{Wire, open, upgrade};
use super::{Login, Running, login_probe, send};
use crate::explain;
use crate::net::Net;
use crate::record::{Recorder, Shared};

/// The name the helper greets with.
const HELLO: &str = "mailsite-helper.invalid";

/// The plain-text part of STARTTLS for the TLS step: greeting, EHLO, `STARTTLS`, its
/// 220.
pub(super) async fn starttls(stream: TcpStream) -> Result<TcpStream, String> {
    let mut r = BufReader::new(stream);
    expect_reply(&mut r, 220).await?;
    send(&mut r, format!("EHLO {HELLO}\r\n").as_bytes()).await?;
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
        Err(format!("unexpected answer: {}", quoted(&reply)))
    }
}

/// A reply as the server sent it, its lines joined.
fn quoted(reply: &Reply) -> String {
    reply.lines().collect::<Vec<_>>().join(" / ")
}

/// Any recorded connection, plain or TLS.
pub(super) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An SMTP conversation over a stream; [`Session`] is one the helper holds after
/// EHLO (and STARTTLS) and AUTH.
pub(super) struct Conversation<S> {
    r: BufReader<S>,
}

/// A session after AUTH, over whatever stream it ended up on.
pub(super) type Session = Conversation<Box<dyn Io>>;

/// What went wrong in a command: the connection, or a reply that was not the one
/// expected (kept whole, to explain).
enum Failed {
    Io(String),
    Reply(Reply),
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conversation<S> {
    fn new(stream: S) -> Conversation<S> {
        Conversation {
            r: BufReader::new(stream),
        }
    }

    /// Sends a command and reads its reply.
    async fn command(&mut self, line: &str) -> Result<Reply, Failed> {
        send(&mut self.r, format!("{line}\r\n").as_bytes())
            .await
            .map_err(Failed::Io)?;
        self.reply().await
    }

    async fn reply(&mut self) -> Result<Reply, Failed> {
        read_reply(&mut self.r, ReplyLimits::default())
            .await
            .map_err(|e| Failed::Io(e.to_string()))
    }

    /// A command whose reply must carry `code`.
    async fn expect(&mut self, line: &str, code: u16) -> Result<Reply, Failed> {
        let reply = self.command(line).await?;
        if reply.code == code {
            Ok(reply)
        } else {
            Err(Failed::Reply(reply))
        }
    }

    /// The greeting: 220, or the server's reason for not taking mail now.
    async fn greeting(&mut self) -> Result<(), Problem> {
        match self.reply().await {
            Ok(reply) if reply.code == 220 => Ok(()),
            Ok(reply) if reply.code < 500 => Err(explain::server_temporary(
                "outgoing (SMTP)",
                &quoted(&reply),
            )),
            Ok(reply) | Err(Failed::Reply(reply)) => Err(explain::protocol_error(
                "SMTP",
                &format!("the server greets with a refusal: {}", quoted(&reply)),
            )),
            Err(Failed::Io(e)) => Err(explain::protocol_error("SMTP", &e)),
        }
    }

    /// EHLO; the reply lists the extensions.
    async fn hello(&mut self) -> Result<Reply, Problem> {
        match self.command(&format!("EHLO {HELLO}")).await {
            Ok(reply) if reply.code == 250 => Ok(reply),
            Ok(reply) | Err(Failed::Reply(reply)) => Err(explain::protocol_error(
                "SMTP",
                &format!("EHLO was refused: {}", quoted(&reply)),
            )),
            Err(Failed::Io(e)) => Err(explain::protocol_error("SMTP", &e)),
        }
    }
}

impl Session {
    /// Sends a message to `to` from `from`: MAIL, RCPT, DATA with the message
    /// dot-stuffed; the final reply.
    pub(super) async fn send_message(
        &mut self,
        from: &str,
        to: &str,
        message: &str,
    ) -> Result<Reply, Problem> {
        let fail = |f: Failed| match f {
            Failed::Io(e) => explain::protocol_error("SMTP", &e),
            Failed::Reply(r) if r.code >= 500 => {
                explain::protocol_error("SMTP", &format!("the server refused: {}", quoted(&r)))
            }
            Failed::Reply(r) => explain::server_temporary("outgoing (SMTP)", &quoted(&r)),
        };
        self.expect(&format!("MAIL FROM:<{from}>"), 250)
            .await
            .map_err(fail)?;
        self.expect(&format!("RCPT TO:<{to}>"), 250)
            .await
            .map_err(fail)?;
        self.expect("DATA", 354).await.map_err(fail)?;
        let mut data = String::with_capacity(message.len() + 8);
        for line in message.split_inclusive("\r\n") {
            if line.starts_with('.') {
                data.push('.');
            }
            data.push_str(line);
        }
        if !data.ends_with("\r\n") {
            data.push_str("\r\n");
        }
        data.push_str(".\r\n");
        let written = self.r.get_mut().write_all(data.as_bytes()).await;
        written.map_err(|e| explain::protocol_error("SMTP", &e.to_string()))?;
        let reply = self.reply().await.map_err(fail)?;
        if reply.code == 250 {
            Ok(reply)
        } else {
            Err(fail(Failed::Reply(reply)))
        }
    }

    /// QUIT: the work is done, its answer matters little.
    pub(super) async fn quit(mut self) {
        let _ = self.command("QUIT").await;
    }
}

/// Connects, says EHLO, starts TLS where the setting says STARTTLS, and authenticates
/// with PLAIN (or LOGIN when only that is offered), every byte recorded.
pub(super) async fn session(
    net: &Net,
    s: &ServerSetting,
    ip: IpAddr,
    login: &Login,
    t: &Shared,
    run: &mut Running,
) -> Result<Session, Problem> {
    let wire = open(net, s, ip, t)
        .await
        .map_err(|e| explain::protocol_error("SMTP", &e))?;
    let mut session: Session = match wire {
        Wire::Tls(stream) => {
            let mut tls = Conversation::new(Box::new(*stream) as Box<dyn Io>);
            tls.greeting().await?;
            tls
        }
        Wire::Plain(stream) => {
            let mut plain = Conversation::new(stream);
            plain.greeting().await?;
            if s.security != Security::StartTls {
                Conversation::new(Box::new(plain.r.into_inner()) as Box<dyn Io>)
            } else {
                let ehlo = plain.hello().await?;
                if !ehlo.offers("STARTTLS") {
                    return Err(explain::protocol_error(
                        "SMTP",
                        "the server does not offer STARTTLS, so the password would travel unencrypted; the helper does not send it",
                    ));
                }
                match plain.command("STARTTLS").await {
                    Ok(reply) if reply.code == 220 => {}
                    Ok(reply) | Err(Failed::Reply(reply)) => {
                        return Err(explain::tls_failed(&s.hostname, &quoted(&reply)));
                    }
                    Err(Failed::Io(e)) => return Err(explain::tls_failed(&s.hostname, &e)),
                }
                // What came before the handshake is not to be trusted (RFC 3207 5):
                // anything the server sent early is dropped with the buffer.
                let recorder = plain.r.into_inner();
                let addr = recorder.peer();
                let tcp = recorder.into_inner();
                t.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .note("STARTTLS: the connection is encrypted from here");
                let tls = upgrade(net, s, tcp)
                    .await
                    .map_err(|e| explain::tls_failed(&s.hostname, &e))?;
                Conversation::new(Box::new(Recorder::new(tls, t.clone(), addr)) as Box<dyn Io>)
            }
        }
    };
    let ehlo = session.hello().await?;
    if let Some(offered) = ehlo.lines().find_map(|l| {
        let rest = l.get(4..)?.trim();
        rest.to_ascii_uppercase()
            .starts_with("AUTH")
            .then(|| rest.to_string())
    }) {
        run.detail("auth_offered", offered);
    }
    authenticate(&mut session, s, &ehlo, login, run).await?;
    Ok(session)
}

/// AUTH PLAIN, or AUTH LOGIN when only that is offered.
async fn authenticate(
    session: &mut Session,
    s: &ServerSetting,
    ehlo: &Reply,
    login: &Login,
    run: &mut Running,
) -> Result<(), Problem> {
    let offered: Vec<String> = ehlo
        .lines()
        .filter_map(|l| {
            let words: Vec<String> = l
                .get(4..)?
                .split_whitespace()
                .map(str::to_ascii_uppercase)
                .collect();
            (words.first().map(String::as_str) == Some("AUTH")).then(|| words[1..].to_vec())
        })
        .flatten()
        .collect();
    let refused = |f: Failed| match f {
        Failed::Io(e) => explain::protocol_error("SMTP", &e),
        Failed::Reply(r) => {
            let text = quoted(&r);
            if let Some(until) = explain::blocked(&text) {
                explain::source_blocked("outgoing (SMTP)", &login.username, until.as_deref())
            } else if let Some((label, at)) = explain::app_password_expired_in(&text) {
                explain::app_password_expired("outgoing (SMTP)", &login.username, &label, &at)
            } else if r.code == 535 || r.code >= 500 {
                explain::auth_refused("outgoing (SMTP)", &login.username)
            } else {
                explain::server_temporary("outgoing (SMTP)", &text)
            }
        }
    };
    if offered.iter().any(|m| m == "PLAIN") {
        let token = BASE64.encode(format!("\0{}\0{}", login.username, login.password));
        session
            .expect(&format!("AUTH PLAIN {token}"), 235)
            .await
            .map_err(refused)?;
    } else if offered.iter().any(|m| m == "LOGIN") {
        session.expect("AUTH LOGIN", 334).await.map_err(refused)?;
        session
            .expect(&BASE64.encode(&login.username), 334)
            .await
            .map_err(refused)?;
        session
            .expect(&BASE64.encode(&login.password), 235)
            .await
            .map_err(refused)?;
    } else {
        let offered = if offered.is_empty() {
            "no AUTH at all".to_string()
        } else {
            format!("AUTH {}", offered.join(" "))
        };
        if offered == "no AUTH at all" {
            run.detail("auth_offered", "none");
        }
        return Err(explain::mechanism_not_offered(
            "outgoing (SMTP)",
            &s.hostname,
            s.port,
            &offered,
        ));
    }
    run.detail("auth", "accepted");
    Ok(())
}

/// SMTP: greeting, EHLO, STARTTLS, AUTH.
pub async fn smtp(net: &Net, s: &ServerSetting, ip: IpAddr, login: &Login) -> Step {
    login_probe(net, ("smtp", "SMTP"), s, ip, login, async |t, run| {
        let session = session(net, s, ip, login, t, run).await?;
        session.quit().await;
        Ok(Vec::new())
    })
    .await
}

/// Sends the user a test message from themselves through `outgoing`, within the step
/// timeout: the round trip's and the long check's. `id` makes its Message-ID unique,
/// `purpose` is its one line of body.
pub(super) async fn send_to_self(
    net: &crate::net::Net,
    outgoing: (&ServerSetting, IpAddr),
    login: &Login,
    t: &crate::record::Shared,
    (email, subject, id, purpose): (&str, &str, &str, &str),
) -> Result<(), Problem> {
    let message = format!(
        "From: <{email}>\r\nTo: <{email}>\r\nSubject: {subject}\r\nDate: {}\r\nMessage-ID: <{id}@mailsite-helper.invalid>\r\n\r\n{purpose} The helper deletes it.\r\n",
        chrono::Utc::now().to_rfc2822()
    );
    super::bounded(net, "sending a test message", async {
        let mut scratch = Running::new(String::new(), "smtp", String::new());
        let mut session = session(net, outgoing.0, outgoing.1, login, t, &mut scratch).await?;
        session.send_message(email, email, &message).await?;
        session.quit().await;
        Ok(())
    })
    .await
}
