//! The client a sorter hands messages on with: LMTP (RFC 2033) to the mailbox servers,
//! one reply per recipient after the data; and SMTP (RFC 5321) to other domains' mail
//! servers, with STARTTLS (RFC 3207: opportunistic, or required by the domain's TLS
//! policy, see [`super::tls_policy`]) and one reply for the message. One
//! transaction per message and server; the envelope is pipelined when the server
//! offers it (LMTP servers must). Every recipient gets its own [`Outcome`].

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailsite_shared::smtp_reply::{self, Reply, ReplyLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;

use mailsite_shared::smtp_data::Stuffer;
pub use mailsite_shared::smtp_data::dot_stuffed;

use super::body::{Body, CHUNK};
use super::connection::Stream;

/// How long to wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What happened to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: taken (stored in the mailbox, or by the remote server).
    Delivered(String),
    /// 4xx, or no answer: retried later.
    Temporary(String),
    /// 5xx: bounced.
    Permanent(String),
}

impl Outcome {
    fn from_reply(reply: &Reply) -> Outcome {
        // The last line, as logs and bounces quote it: printable and not too long.
        let text: String = reply
            .last_line()
            .trim_end()
            .chars()
            .filter(|c| !c.is_control())
            .take(300)
            .collect();
        match reply.code / 100 {
            2 => Outcome::Delivered(text),
            5 => Outcome::Permanent(text),
            _ => Outcome::Temporary(text),
        }
    }

    /// The reply or error text.
    pub fn text(&self) -> &str {
        match self {
            Outcome::Delivered(t) | Outcome::Temporary(t) | Outcome::Permanent(t) => t,
        }
    }
}

/// Which protocol the server speaks.
#[derive(Clone)]
pub enum Dialect {
    Lmtp,
    /// SMTP; STARTTLS when the server offers it (or, if it is required, nothing).
    Smtp {
        tls: Option<Starttls>,
    },
}

/// STARTTLS with one connector.
#[derive(Clone)]
pub struct Starttls {
    pub connector: TlsConnector,
    /// Whether the session must not go on without TLS (the domain's policy says so):
    /// then a server that does not offer it, or whose handshake fails, takes nothing.
    pub required: bool,
    /// What the session saw of TLS, for the domain's TLS report.
    pub seen: Arc<Mutex<TlsSeen>>,
}

impl From<TlsConnector> for Starttls {
    fn from(connector: TlsConnector) -> Starttls {
        Starttls {
            connector,
            required: false,
            seen: Arc::default(),
        }
    }
}

/// What one SMTP session saw of TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSeen {
    /// The server's EHLO reply was read (the session got that far).
    pub greeted: bool,
    /// Its EHLO offered STARTTLS.
    pub offered: bool,
    /// The handshake completed.
    pub encrypted: bool,
    /// Why the handshake failed, if it did.
    pub failed: Option<String>,
    /// This end's address of the connection.
    pub local: Option<IpAddr>,
}

impl Starttls {
    fn note(&self, change: impl FnOnce(&mut TlsSeen)) {
        if let Ok(mut seen) = self.seen.lock() {
            change(&mut seen);
        }
    }
}

/// One message to hand on.
pub struct Handoff<'a> {
    /// The name the sorter greets with.
    pub hostname: &'a str,
    pub sender: &'a str,
    pub recipients: &'a [String],
    pub message: &'a Body,
    /// How long the whole transaction may take.
    pub timeout: Duration,
    /// The address to connect from: a sorter's own, so that a mailbox server knows the
    /// connection is from a sorter (LMTP is closed to anyone else).
    pub source: Option<IpAddr>,
    /// What the sender asked of delivery reports, passed on to an SMTP server that
    /// offers DSN (RFC 3461 6.2.1).
    pub dsn: Option<&'a Dsn<'a>>,
}

/// The DSN parameters (RFC 3461) of a message and its recipients.
#[derive(Debug, Default)]
pub struct Dsn<'a> {
    /// RET=FULL (otherwise RET=HDRS).
    pub ret_full: bool,
    pub envid: Option<&'a str>,
    /// Per recipient of the handoff, in order: the NOTIFY bits
    /// ([`super::queue::notify`]; 0: not given) and the ORCPT address.
    pub recipients: Vec<(u8, Option<&'a str>)>,
    /// Set when a server that offered DSN took the parameters: it reports on
    /// delivery from then on, so no `relayed` report is due (RFC 3461 6.2.4).
    pub passed: std::sync::atomic::AtomicBool,
}

impl Dsn<'_> {
    /// The MAIL FROM parameters. RET=HDRS (what the sorters do without RET) only goes
    /// with a message whose sender used DSN.
    fn mail_params(&self) -> String {
        let used =
            self.envid.is_some() || self.recipients.iter().any(|(n, o)| *n != 0 || o.is_some());
        let mut params = String::from(match (self.ret_full, used) {
            (true, _) => " RET=FULL",
            (false, true) => " RET=HDRS",
            (false, false) => "",
        });
        if let Some(envid) = self.envid {
            params.push_str(" ENVID=");
            params.push_str(&xtext(envid));
        }
        params
    }

    /// The RCPT TO parameters of recipient `i`.
    fn rcpt_params(&self, i: usize) -> String {
        let Some((notify, orcpt)) = self.recipients.get(i) else {
            return String::new();
        };
        let mut params = String::new();
        if *notify != 0 {
            use super::queue::notify::{DELAY, FAILURE, NEVER, SUCCESS};
            let words: Vec<&str> = [
                (NEVER, "NEVER"),
                (SUCCESS, "SUCCESS"),
                (FAILURE, "FAILURE"),
                (DELAY, "DELAY"),
            ]
            .into_iter()
            .filter(|(bit, _)| notify & bit != 0)
            .map(|(_, word)| word)
            .collect();
            params.push_str(" NOTIFY=");
            params.push_str(&words.join(","));
        }
        if let Some(orcpt) = orcpt {
            // Stored without its type, which smtp-proto only takes as `rfc822` (the
            // address itself may hold a `;`).
            params.push_str(&format!(" ORCPT=rfc822;{}", xtext(orcpt)));
        }
        params
    }
}

/// `text` as xtext (RFC 3461 4): `+` and `=`, controls, space and non-ASCII bytes
/// as `+XX`.
pub fn xtext(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (b'!'..=b'~').contains(&byte) && byte != b'+' && byte != b'=' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("+{byte:02X}"));
        }
    }
    out
}

type Connection = BufReader<Box<dyn Stream>>;

async fn read_reply(reader: &mut Connection) -> std::io::Result<Reply> {
    Ok(smtp_reply::read_reply(reader, ReplyLimits::default()).await?)
}

async fn write(connection: &mut Connection, bytes: &[u8]) -> std::io::Result<()> {
    let stream = connection.get_mut();
    stream.write_all(bytes).await?;
    stream.flush().await
}

/// Sends the message as DATA carries it, read and stuffed a chunk at a time.
async fn send_body(connection: &mut Connection, body: &Body) -> std::io::Result<()> {
    let mut reader = body.reader().await?;
    let mut stuffer = Stuffer::default();
    let mut buf = vec![0u8; CHUNK];
    let mut out = Vec::with_capacity(CHUNK + CHUNK / 2);
    let stream = connection.get_mut();
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        stuffer.push(&buf[..n], &mut out);
        stream.write_all(&out).await?;
        out.clear();
    }
    stuffer.finish(&mut out);
    stream.write_all(&out).await?;
    stream.flush().await
}

/// Hands `handoff` to the first of `targets` (a host name and an address each) that
/// accepts a connection; one outcome per recipient, in order, and the host that
/// answered. Nothing here fails as a whole: a connection or protocol failure is a
/// temporary outcome for every recipient whose fate is not known yet.
pub async fn deliver(
    targets: &[(String, SocketAddr)],
    dialect: &Dialect,
    handoff: &Handoff<'_>,
) -> (Vec<Outcome>, Option<String>) {
    let mut last_error = String::from("no address to deliver to");
    for (host, addr) in targets {
        match tokio::time::timeout(CONNECT_TIMEOUT, connect(*addr, handoff.source)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                if let Dialect::Smtp { tls: Some(tls) } = dialect {
                    tls.note(|seen| seen.local = stream.local_addr().ok().map(|a| a.ip()));
                }
                let outcomes = transaction(Box::new(stream), host, dialect, handoff).await;
                return (outcomes, Some(host.clone()));
            }
            Ok(Err(e)) => last_error = format!("cannot connect to {host} ({addr}): {e}"),
            Err(_) => last_error = format!("cannot connect to {host} ({addr}): timed out"),
        }
    }
    let outcomes = vec![Outcome::Temporary(last_error); handoff.recipients.len()];
    (outcomes, None)
}

/// Connects to `addr` from `source` when it is given and of the same family (if this
/// host cannot bind it, from the default address: the server then decides).
async fn connect(addr: SocketAddr, source: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let Some(source) = source.filter(|s| s.is_ipv4() == addr.is_ipv4()) else {
        return TcpStream::connect(addr).await;
    };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    match socket.bind(SocketAddr::new(source, 0)) {
        Ok(()) => socket.connect(addr).await,
        Err(error) => {
            tracing::debug!(%source, %error, "cannot connect from the sorter's address");
            TcpStream::connect(addr).await
        }
    }
}

/// One transaction over a connected stream to `host`.
pub async fn transaction(
    stream: Box<dyn Stream>,
    host: &str,
    dialect: &Dialect,
    handoff: &Handoff<'_>,
) -> Vec<Outcome> {
    let mut outcomes: Vec<Option<Outcome>> = vec![None; handoff.recipients.len()];
    let result = tokio::time::timeout(
        handoff.timeout,
        converse(
            BufReader::new(stream),
            host,
            dialect,
            handoff,
            &mut outcomes,
        ),
    )
    .await;
    let error = match result {
        Ok(Ok(())) => String::new(),
        Ok(Err(e)) => format!("delivery to {host} failed: {e}"),
        Err(_) => format!(
            "delivery to {host} timed out after {} s",
            handoff.timeout.as_secs()
        ),
    };
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Outcome::Temporary(error.clone())))
        .collect()
}

/// Gives every recipient without an outcome this reply's (a reply about the whole
/// session is temporary unless it is a 5xx).
fn all(outcomes: &mut [Option<Outcome>], reply: &Reply) {
    for o in outcomes.iter_mut().filter(|o| o.is_none()) {
        *o = Some(Outcome::from_reply(reply));
    }
}

/// A reply that is never final: the session failed before the envelope.
fn temporary(reply: Reply) -> Reply {
    Reply {
        code: if reply.code / 100 == 2 { 451 } else { 421 },
        ..reply
    }
}

async fn hello(
    connection: &mut Connection,
    dialect: &Dialect,
    hostname: &str,
) -> std::io::Result<Reply> {
    let verb = if matches!(dialect, Dialect::Lmtp) {
        "LHLO"
    } else {
        "EHLO"
    };
    write(connection, format!("{verb} {hostname}\r\n").as_bytes()).await?;
    let reply = read_reply(connection).await?;
    if reply.code == 250 || matches!(dialect, Dialect::Lmtp) {
        return Ok(reply);
    }
    // An SMTP server without extensions.
    write(connection, format!("HELO {hostname}\r\n").as_bytes()).await?;
    read_reply(connection).await
}

async fn converse(
    mut connection: Connection,
    host: &str,
    dialect: &Dialect,
    handoff: &Handoff<'_>,
    outcomes: &mut [Option<Outcome>],
) -> std::io::Result<()> {
    let greeting = read_reply(&mut connection).await?;
    if greeting.code != 220 {
        all(outcomes, &temporary(greeting));
        return Ok(());
    }
    let mut ehlo = hello(&mut connection, dialect, handoff.hostname).await?;
    if ehlo.code != 250 {
        all(outcomes, &temporary(ehlo));
        return Ok(());
    }
    if let Dialect::Smtp { tls: Some(tls) } = dialect {
        let offered = ehlo.offers("STARTTLS");
        tls.note(|seen| {
            seen.greeted = true;
            seen.offered = offered;
        });
        let mut encrypted = false;
        if offered {
            write(&mut connection, b"STARTTLS\r\n").await?;
            let ready = read_reply(&mut connection).await?;
            if ready.code == 220 {
                let name = ServerName::try_from(host.to_string())
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
                let plain = connection.into_inner();
                let stream = match tls.connector.connect(name, plain).await {
                    Ok(stream) => stream,
                    Err(e) => {
                        tls.note(|seen| seen.failed = Some(e.to_string()));
                        return Err(e);
                    }
                };
                tls.note(|seen| seen.encrypted = true);
                encrypted = true;
                connection = BufReader::new(Box::new(stream));
                ehlo = hello(&mut connection, dialect, handoff.hostname).await?;
                if ehlo.code != 250 {
                    all(outcomes, &temporary(ehlo));
                    return Ok(());
                }
            }
        }
        if tls.required && !encrypted {
            let message =
                format!("{host} does not offer STARTTLS, which its domain's TLS policy requires");
            let refusal = Reply {
                code: 451,
                enhanced: Some([4, 7, 5]),
                raw: format!("451 4.7.5 {message}\r\n").into_bytes(),
                message,
            };
            all(outcomes, &refusal);
            let _ = write(&mut connection, b"QUIT\r\n").await;
            return Ok(());
        }
    }
    let lmtp = matches!(dialect, Dialect::Lmtp);
    let eight_bit = handoff.message.eight_bit().await?;
    let utf8 = !handoff.sender.is_ascii() || handoff.recipients.iter().any(|r| !r.is_ascii());
    let mut params = String::new();
    if eight_bit && (lmtp || ehlo.offers("8BITMIME")) {
        params.push_str(" BODY=8BITMIME");
    }
    if utf8 {
        if !lmtp && !ehlo.offers("SMTPUTF8") {
            let message = format!("{host} does not accept internationalized addresses (SMTPUTF8)");
            let refusal = Reply {
                code: 553,
                enhanced: Some([5, 6, 7]),
                raw: format!("553 5.6.7 {message}\r\n").into_bytes(),
                message,
            };
            all(outcomes, &refusal);
            return Ok(());
        }
        params.push_str(" SMTPUTF8");
    }
    if !lmtp && ehlo.offers("SIZE") {
        params.push_str(&format!(" SIZE={}", handoff.message.len()));
    }
    let dsn = handoff.dsn.filter(|_| !lmtp && ehlo.offers("DSN"));
    if let Some(dsn) = dsn {
        params.push_str(&dsn.mail_params());
    }
    let mail = format!("MAIL FROM:<{}>{params}\r\n", handoff.sender);
    let rcpts: Vec<String> = handoff
        .recipients
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let params = dsn.map(|d| d.rcpt_params(i)).unwrap_or_default();
            format!("RCPT TO:<{r}>{params}\r\n")
        })
        .collect();

    let mut accepted = Vec::new();
    let data = if lmtp || ehlo.offers("PIPELINING") {
        // The envelope in one write (RFC 2920).
        let mut envelope = mail;
        envelope.push_str(&rcpts.concat());
        envelope.push_str("DATA\r\n");
        write(&mut connection, envelope.as_bytes()).await?;
        let mail = read_reply(&mut connection).await?;
        for (i, outcome) in outcomes.iter_mut().enumerate() {
            let reply = read_reply(&mut connection).await?;
            if mail.code / 100 != 2 {
                *outcome = Some(Outcome::from_reply(&mail));
            } else if reply.code / 100 == 2 {
                accepted.push(i);
            } else {
                *outcome = Some(Outcome::from_reply(&reply));
            }
        }
        read_reply(&mut connection).await?
    } else {
        write(&mut connection, mail.as_bytes()).await?;
        let reply = read_reply(&mut connection).await?;
        if reply.code / 100 != 2 {
            all(outcomes, &reply);
            let _ = write(&mut connection, b"QUIT\r\n").await;
            return Ok(());
        }
        for (i, rcpt) in rcpts.iter().enumerate() {
            write(&mut connection, rcpt.as_bytes()).await?;
            let reply = read_reply(&mut connection).await?;
            if reply.code / 100 == 2 {
                accepted.push(i);
            } else {
                outcomes[i] = Some(Outcome::from_reply(&reply));
            }
        }
        if accepted.is_empty() {
            let _ = write(&mut connection, b"QUIT\r\n").await;
            return Ok(());
        }
        write(&mut connection, b"DATA\r\n").await?;
        read_reply(&mut connection).await?
    };
    if accepted.is_empty() {
        let _ = write(&mut connection, b"QUIT\r\n").await;
        return Ok(());
    }
    if data.code != 354 {
        // Anything but 354 or a refusal (a 2xx before the message was sent) is a broken
        // server: the message was not taken, so it is tried again later.
        let data = if data.code < 400 {
            temporary(data)
        } else {
            data
        };
        for &i in &accepted {
            outcomes[i] = Some(Outcome::from_reply(&data));
        }
        return Ok(());
    }
    send_body(&mut connection, handoff.message).await?;
    if lmtp {
        // One reply per accepted recipient, in order (RFC 2033 4.2).
        for &i in &accepted {
            let reply = read_reply(&mut connection).await?;
            outcomes[i] = Some(Outcome::from_reply(&reply));
        }
    } else {
        let reply = read_reply(&mut connection).await?;
        if let Some(dsn) = dsn
            && reply.code / 100 == 2
        {
            dsn.passed.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        for &i in &accepted {
            outcomes[i] = Some(Outcome::from_reply(&reply));
        }
    }
    let _ = write(&mut connection, b"QUIT\r\n").await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::super::queue;
    use super::*;

    #[test]
    fn dsn_parameters_are_passed_on_as_xtext() {
        assert_eq!(xtext("order 42+a=b"), "order+2042+2Ba+3Db");
        assert_eq!(xtext("Ünï"), "+C3+9Cn+C3+AF");
        let dsn = Dsn {
            ret_full: false,
            envid: Some("ticket+7"),
            recipients: vec![
                (
                    queue::notify::SUCCESS | queue::notify::FAILURE,
                    Some("Bob@Remote.Example"),
                ),
                (queue::notify::NEVER, Some("\"a;b c\"@Remote.Example")),
                (0, None),
            ],
            passed: Default::default(),
        };
        assert_eq!(dsn.mail_params(), " RET=HDRS ENVID=ticket+2B7");
        assert_eq!(
            dsn.rcpt_params(0),
            " NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bob@Remote.Example"
        );
        assert_eq!(
            dsn.rcpt_params(1),
            " NOTIFY=NEVER ORCPT=rfc822;\"a;b+20c\"@Remote.Example"
        );
        assert_eq!(dsn.rcpt_params(2), "");
        // A sender that used no DSN parameter: none are made up.
        let plain = Dsn {
            recipients: vec![(0, None)],
            ..Dsn::default()
        };
        assert_eq!(plain.mail_params(), "");
        let full = Dsn {
            ret_full: true,
            ..Dsn::default()
        };
        assert_eq!(full.mail_params(), " RET=FULL");
    }

    #[test]
    fn data_is_dot_stuffed_and_terminated() {
        assert_eq!(dot_stuffed(b"a\r\n.b\r\n"), b"a\r\n..b\r\n.\r\n");
        assert_eq!(dot_stuffed(b"a\r\n.b"), b"a\r\n..b\r\n.\r\n");
        assert_eq!(dot_stuffed(b".\r\n"), b"..\r\n.\r\n");
        assert_eq!(dot_stuffed(b""), b".\r\n");
    }

    /// A scripted server: reads whatever comes, answers with `replies` and closes.
    async fn scripted(dialect: Dialect, replies: &'static str) -> (Vec<Outcome>, String) {
        let (client, mut server) = tokio::io::duplex(1 << 16);
        let serve = tokio::spawn(async move {
            server.write_all(replies.as_bytes()).await.unwrap();
            // The script ends: the client sees the connection close after it.
            server.shutdown().await.unwrap();
            let mut seen = Vec::new();
            let _ = server.read_to_end(&mut seen).await;
            String::from_utf8_lossy(&seen).into_owned()
        });
        let recipients = [
            "n@example.test".to_string(),
            "x@example.test".into(),
            "m@example.test".into(),
        ];
        let handoff = Handoff {
            hostname: "sorter1.example.test",
            sender: "a@example.test",
            recipients: &recipients,
            message: &Body::from(b"Subject: x\r\n\r\n.dot\r\n".to_vec()),
            timeout: Duration::from_secs(5),
            source: None,
            dsn: None,
        };
        let outcomes = transaction(Box::new(client), "mx.example", &dialect, &handoff).await;
        (outcomes, serve.await.unwrap())
    }

    #[tokio::test]
    async fn lmtp_gives_one_outcome_per_recipient() {
        let (outcomes, seen) = scripted(
            Dialect::Lmtp,
            "220 hi\r\n250-mb\r\n250 PIPELINING\r\n250 ok\r\n250 ok\r\n550 5.1.1 no\r\n250 ok\r\n354 go\r\n250 2.0.0 stored\r\n451 4.3.0 later\r\n",
        )
        .await;
        assert_eq!(
            outcomes,
            vec![
                Outcome::Delivered("250 2.0.0 stored".into()),
                Outcome::Permanent("550 5.1.1 no".into()),
                Outcome::Temporary("451 4.3.0 later".into()),
            ]
        );
        assert!(seen.starts_with("LHLO sorter1.example.test\r\n"), "{seen}");
        assert!(seen.contains("RCPT TO:<x@example.test>\r\nRCPT TO:<m@example.test>\r\nDATA\r\n"));
        assert!(seen.contains("Subject: x\r\n\r\n..dot\r\n.\r\n"), "{seen}");
    }

    #[tokio::test]
    async fn smtp_without_pipelining_goes_step_by_step_with_one_reply_for_the_data() {
        let (outcomes, seen) = scripted(
            Dialect::Smtp { tls: None },
            "220 mx\r\n250-mx\r\n250 SIZE 1000\r\n250 ok\r\n250 ok\r\n550 5.1.1 no\r\n250 ok\r\n354 go\r\n250 2.0.0 queued\r\n221 bye\r\n",
        )
        .await;
        assert_eq!(
            outcomes,
            vec![
                Outcome::Delivered("250 2.0.0 queued".into()),
                Outcome::Permanent("550 5.1.1 no".into()),
                Outcome::Delivered("250 2.0.0 queued".into()),
            ]
        );
        assert!(seen.starts_with("EHLO sorter1.example.test\r\nMAIL FROM:<a@example.test> SIZE=20\r\nRCPT TO:<n@example.test>\r\n"), "{seen}");
    }

    #[tokio::test]
    async fn a_connection_that_ends_early_defers_the_rest() {
        let (outcomes, _) = scripted(
            Dialect::Lmtp,
            "220 hi\r\n250 ok\r\n250 ok\r\n550 5.1.1 no\r\n",
        )
        .await;
        assert_eq!(outcomes[0], Outcome::Permanent("550 5.1.1 no".into()));
        assert!(
            matches!(&outcomes[1], Outcome::Temporary(e) if e.contains("closed")),
            "{outcomes:?}"
        );
        assert!(
            matches!(&outcomes[2], Outcome::Temporary(_)),
            "{outcomes:?}"
        );
        let (outcomes, _) = scripted(Dialect::Smtp { tls: None }, "554 go away\r\n").await;
        assert!(matches!(&outcomes[0], Outcome::Temporary(e) if e.contains("go away")));
        let recipients = ["n@example.test".to_string()];
        let handoff = Handoff {
            hostname: "h",
            sender: "",
            recipients: &recipients,
            message: &Body::from(b"x".to_vec()),
            timeout: Duration::from_secs(5),
            source: None,
            dsn: None,
        };
        let target = [("nowhere".to_string(), "127.0.0.1:1".parse().unwrap())];
        let (refused, host) = deliver(&target, &Dialect::Lmtp, &handoff).await;
        assert!(matches!(&refused[0], Outcome::Temporary(e) if e.contains("cannot connect")));
        assert_eq!(host, None);
    }
}
