//! LMTP intake (RFC 2033): how sorters hand messages to the mailbox server that owns
//! the recipient's letter. smtp-proto parses the commands; the session below decides,
//! one reply per recipient after DATA, and `250` only once the message is durable in
//! the store. A recipient over quota gets `452 4.2.2` (`552 5.2.2` for a message larger
//! than the whole quota).
//!
//! Only the site's sorters (their configured addresses, and the `[lmtp] allow`
//! networks) may deliver: LMTP skips every check a sorter makes, so anyone else gets
//! `550 5.7.1` at MAIL and the connection is closed. LHLO still works for them, so that
//! the health checks of the dns nodes see the server alive.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use smtp_proto::request::receiver::{DataReceiver, RequestReceiver};
use smtp_proto::{Error as ParseError, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::quota::room;
use super::sieve::{Delivery, Engine, Outcome};
use super::store::Store;
use crate::metrics::Sieve;
use crate::state::Site;

/// Largest message accepted, in bytes (announced as SIZE).
pub const MAX_MESSAGE: usize = 50 * 1024 * 1024;
/// Most recipients per transaction.
pub const MAX_RECIPIENTS: usize = 100;
/// How long a peer may stay silent.
pub const TIMEOUT: Duration = Duration::from_secs(300);
/// Most concurrent LMTP connections per listener.
pub const MAX_CONNECTIONS: usize = 1000;

/// A recipient accepted at RCPT.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Recipient {
    address: String,
    username: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Greeted,
    Ready,
    Mail,
}

/// One LMTP session, without I/O: commands in, replies out.
pub struct Session {
    /// The mailbox server this session delivers for.
    server: String,
    hostname: String,
    site: Arc<Site>,
    store: Store,
    sieve: Arc<Engine>,
    phase: Phase,
    from: String,
    recipients: Vec<Recipient>,
    /// The client is not a sorter: MAIL is refused.
    stranger: bool,
}

/// What the connection loop must do after a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Reply(String),
    /// Reply, then read the message body.
    Data(String),
    /// Reply, then close.
    Close(String),
}

impl Session {
    pub fn new(server: &super::MailboxServer) -> Session {
        Session {
            server: server.name.clone(),
            hostname: server.hostname.clone(),
            site: server.site.clone(),
            store: server.store.clone(),
            sieve: server.sieve.clone(),
            phase: Phase::Greeted,
            from: String::new(),
            recipients: Vec::new(),
            stranger: false,
        }
    }

    /// A session for a client that is not one of the site's sorters: it may greet, but
    /// not deliver.
    pub fn for_stranger(mut self) -> Session {
        self.stranger = true;
        self
    }

    pub fn greeting(&self) -> String {
        format!("220 {} LMTP mailsite ready\r\n", self.hostname)
    }

    fn reset(&mut self) {
        self.from.clear();
        self.recipients.clear();
        if self.phase == Phase::Mail {
            self.phase = Phase::Ready;
        }
    }

    /// Answers one parsed command.
    pub fn command(&mut self, request: Request<Cow<'_, str>>) -> Next {
        match request {
            Request::Lhlo { host } => {
                self.reset();
                self.phase = Phase::Ready;
                let host = echo(&host, 100);
                Next::Reply(format!(
                    "250-{} greets {host}\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE {MAX_MESSAGE}\r\n",
                    self.hostname
                ))
            }
            Request::Ehlo { .. } | Request::Helo { .. } => {
                Next::Reply("500 5.5.1 This is LMTP: greet with LHLO\r\n".into())
            }
            Request::Mail { from } => match self.phase {
                Phase::Greeted => Next::Reply("503 5.5.1 Send LHLO first\r\n".into()),
                Phase::Mail => Next::Reply("503 5.5.1 Nested MAIL command\r\n".into()),
                _ if self.stranger => Next::Close(
                    "550 5.7.1 Only the site's mail sorters may deliver here; closing\r\n".into(),
                ),
                Phase::Ready if from.size > MAX_MESSAGE => Next::Reply(format!(
                    "552 5.3.4 Message size exceeds the {MAX_MESSAGE} byte limit\r\n"
                )),
                Phase::Ready => {
                    self.phase = Phase::Mail;
                    // Written into the Return-Path header: no control characters,
                    // at most RFC 5321's 256 octets of a path.
                    self.from = echo(&from.address, 256);
                    Next::Reply("250 2.1.0 Sender ok\r\n".into())
                }
            },
            Request::Rcpt { to } => {
                if self.phase != Phase::Mail {
                    return Next::Reply("503 5.5.1 Send MAIL first\r\n".into());
                }
                if self.recipients.len() >= MAX_RECIPIENTS {
                    return Next::Reply("452 4.5.3 Too many recipients\r\n".into());
                }
                Next::Reply(self.recipient(&to.address))
            }
            Request::Data => {
                if self.phase != Phase::Mail {
                    Next::Reply("503 5.5.1 Send MAIL first\r\n".into())
                } else if self.recipients.is_empty() {
                    Next::Reply("503 5.5.1 No valid recipients\r\n".into())
                } else {
                    Next::Data("354 Go ahead, end with <CRLF>.<CRLF>\r\n".into())
                }
            }
            Request::Bdat { .. } => {
                Next::Reply("502 5.5.1 BDAT is not offered; use DATA\r\n".into())
            }
            Request::Rset => {
                self.reset();
                Next::Reply("250 2.0.0 Reset\r\n".into())
            }
            Request::Noop { .. } => Next::Reply("250 2.0.0 Ok\r\n".into()),
            Request::Vrfy { .. } => {
                Next::Reply("252 2.5.0 Cannot verify, but will try delivery\r\n".into())
            }
            Request::Quit => Next::Close(format!("221 2.0.0 {} closing\r\n", self.hostname)),
            Request::StartTls => {
                Next::Reply("502 5.5.1 STARTTLS is not offered on LMTP\r\n".into())
            }
            _ => Next::Reply("502 5.5.1 Command not implemented\r\n".into()),
        }
    }

    /// Checks a recipient: a site domain, a user in the directory, served here.
    fn recipient(&mut self, address: &str) -> String {
        let site = self.site.snapshot();
        let route = match site.map.route(address) {
            Ok(route) => route,
            Err(e) => {
                let (address, e) = (echo(address, 100), echo(&e.to_string(), 200));
                return format!("550 5.1.1 <{address}>: {e}\r\n");
            }
        };
        let address = echo(address, 100);
        match site.users.get(&route.username) {
            None => return format!("550 5.1.1 <{address}>: no such user here\r\n"),
            Some(user) if !user.enabled => {
                return format!("550 5.2.1 <{address}>: this mailbox is disabled\r\n");
            }
            Some(_) => {}
        }
        if route.server != self.server {
            // Temporary: the sorter retries, and routes again when it does.
            return format!(
                "451 4.3.0 <{address}>: letter {} is served by {}, not {}\r\n",
                route.letter, route.server, self.server
            );
        }
        self.recipients.push(Recipient {
            address: route.address,
            username: route.username,
        });
        "250 2.1.5 Recipient ok\r\n".into()
    }

    /// Delivers a received message to every recipient; one reply each.
    pub async fn deliver(&mut self, body: &[u8]) -> String {
        let mut replies = String::new();
        let recipients = std::mem::take(&mut self.recipients);
        for r in &recipients {
            let mut message = format!(
                "Return-Path: <{}>\r\nDelivered-To: {}\r\nReceived: by {} (mailsite LMTP) for <{}>\r\n",
                self.from, r.address, self.hostname, r.address
            )
            .into_bytes();
            message.extend_from_slice(body);
            // Over quota: temporary while deleting mail could make room (the sorter
            // keeps the message and tries again), permanent when it never fits.
            match room(
                &self.site.directory,
                &self.store,
                &r.username,
                message.len() as u64,
                1,
            )
            .await
            {
                Ok(Ok(())) => {}
                Ok(Err(exceeded)) => {
                    tracing::info!(recipient = %r.address, %exceeded, "delivery refused: over quota");
                    let code = if exceeded.never {
                        "552 5.2.2"
                    } else {
                        "452 4.2.2"
                    };
                    replies.push_str(&format!(
                        "{code} <{}>: mailbox full ({exceeded})\r\n",
                        r.address
                    ));
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%error, recipient = %r.address, "quota check failed");
                    replies.push_str(&format!(
                        "451 4.3.0 <{}>: could not check the mailbox's quota, try again later\r\n",
                        r.address
                    ));
                    continue;
                }
            }
            let outcome = self
                .sieve
                .filter(
                    &self.site.directory,
                    &self.store,
                    &Delivery {
                        username: &r.username,
                        recipient: &r.address,
                        sender: &self.from,
                        display_name: "",
                        message: body,
                    },
                )
                .await;
            let result = match (&outcome.failed, &outcome.reject, outcome.filings.is_empty()) {
                (Some(_), _, _) => Some(Sieve::Failed),
                (None, Some(_), _) => Some(Sieve::Rejected),
                (None, None, true) => Some(Sieve::Discarded),
                (None, None, false) => outcome.ran.then_some(Sieve::Filed),
            };
            if let Some(result) = result {
                self.site.metrics.sieve(result);
            }
            if let Some(reason) = &outcome.reject {
                // RFC 5429 2.1.1: refused at delivery, so the sender's server bounces.
                let reason = echo(reason, 200);
                replies.push_str(&format!(
                    "550 5.7.1 <{}>: refused by the recipient's filter: {reason}\r\n",
                    r.address
                ));
                continue;
            }
            // The sorter's DMARC verdict may ask for Junk: what would go to INBOX does.
            let mut outcome = outcome;
            if super::junk::wants_junk(
                mailsite_shared::smtp_data::header_section(body),
                &self.site.view().config().domain,
            ) {
                for filing in &mut outcome.filings {
                    if filing.mailbox.eq_ignore_ascii_case("INBOX") {
                        filing.mailbox = "Junk".into();
                        filing.create = true;
                    }
                }
            }
            match self.store_filed(&r.username, message, &outcome).await {
                Ok(uid) => {
                    for (id, seconds) in &outcome.remember {
                        if let Err(error) = self
                            .site
                            .directory
                            .remember_sieve(&r.username, id, *seconds)
                            .await
                        {
                            tracing::warn!(%error, recipient = %r.address, "cannot record what the Sieve script remembers");
                        }
                    }
                    super::outbound::send(
                        self.site.clone(),
                        &self.server,
                        &self.hostname,
                        outcome.outgoing,
                    );
                    replies.push_str(&match uid {
                        Some(uid) => format!("250 2.0.0 <{}> delivered (UID {uid})\r\n", r.address),
                        None => format!(
                            "250 2.0.0 <{}> discarded by the recipient's filter\r\n",
                            r.address
                        ),
                    });
                }
                Err(error) => {
                    tracing::warn!(%error, recipient = %r.address, "delivery failed");
                    replies.push_str(&format!(
                        "451 4.3.0 <{}>: could not store the message, try again later\r\n",
                        r.address
                    ));
                }
            }
        }
        self.reset();
        replies
    }

    /// Stores the copies a script filed (INBOX when it filed none but did not
    /// discard); the UID of the first, or `None` when the message was discarded. A
    /// mailbox that does not exist (and was not to be created) gets INBOX instead.
    async fn store_filed(
        &self,
        username: &str,
        mut message: Vec<u8>,
        outcome: &Outcome,
    ) -> Result<Option<u32>, super::store::StoreError> {
        use super::store::StoreError;
        self.store.ensure_user(username).await?;
        let mut first = None;
        let last = outcome.filings.len().saturating_sub(1);
        for (i, filing) in outcome.filings.iter().enumerate() {
            let mut mailbox = filing.mailbox.as_str();
            match self.store.mailbox(username, mailbox).await {
                Ok(_) => {}
                Err(StoreError::NoMailbox(_)) | Err(StoreError::Name(_)) if filing.create => {
                    match self.store.create_mailbox(username, mailbox, "").await {
                        Ok(_) | Err(StoreError::Exists(_)) => {}
                        Err(error) => {
                            tracing::info!(%error, user = %username, %mailbox, "Sieve fileinto :create failed: kept in INBOX");
                            mailbox = "INBOX";
                        }
                    }
                }
                Err(StoreError::NoMailbox(_)) | Err(StoreError::Name(_)) => {
                    tracing::info!(user = %username, %mailbox, "Sieve fileinto a mailbox that does not exist: kept in INBOX");
                    mailbox = "INBOX";
                }
                Err(error) => return Err(error),
            }
            // The last copy takes the message itself.
            let bytes = match i == last {
                true => std::mem::take(&mut message),
                false => message.clone(),
            };
            let (_, uid) = self
                .store
                .append(username, mailbox, bytes, &filing.flags, None)
                .await?;
            first.get_or_insert(uid);
        }
        Ok(first)
    }

    /// Replies for a message that was too large: one per recipient.
    pub fn too_large(&mut self) -> String {
        let replies: String = self
            .recipients
            .iter()
            .map(|r| {
                format!(
                    "552 5.3.4 <{}>: message exceeds the {MAX_MESSAGE} byte limit\r\n",
                    r.address
                )
            })
            .collect();
        self.reset();
        replies
    }
}

/// Something the client sent, fit to be echoed in a reply: one line of printable
/// characters, at most `max` of them.
fn echo(value: &str, max: usize) -> String {
    value
        .chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect()
}

/// The reply to a command smtp-proto could not parse.
pub fn parse_error(error: &ParseError) -> String {
    match error {
        ParseError::UnknownCommand => "500 5.5.1 Unknown command\r\n".into(),
        ParseError::ResponseTooLong => "500 5.5.6 Line too long\r\n".into(),
        ParseError::InvalidSenderAddress => "501 5.1.7 Bad sender address syntax\r\n".into(),
        ParseError::InvalidRecipientAddress => "501 5.1.3 Bad recipient address syntax\r\n".into(),
        ParseError::SyntaxError { syntax } => format!("501 5.5.4 Syntax: {syntax}\r\n"),
        ParseError::InvalidParameter { param } => {
            format!("501 5.5.4 Invalid parameter {param}\r\n")
        }
        ParseError::UnsupportedParameter { param } => {
            format!("555 5.5.4 Unsupported parameter {}\r\n", echo(param, 40))
        }
        _ => "500 5.5.2 Syntax error\r\n".into(),
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    match tokio::time::timeout(TIMEOUT, stream.read(buf)).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "peer silent too long",
        )),
    }
}

/// Serves one connection until QUIT, a timeout or the peer leaves.
pub async fn serve_connection(mut stream: TcpStream, mut session: Session) -> std::io::Result<()> {
    stream.write_all(session.greeting().as_bytes()).await?;
    let mut receiver = RequestReceiver::default();
    let mut buf = vec![0u8; 8192];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        if pending.is_empty() {
            let n = read_more(&mut stream, &mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            pending.extend_from_slice(&buf[..n]);
        }
        let mut bytes = pending.iter();
        let mut out = String::new();
        let mut data = false;
        let mut close = false;
        loop {
            match receiver.ingest(&mut bytes) {
                Ok(request) => match session.command(request) {
                    Next::Reply(r) => out.push_str(&r),
                    Next::Data(r) => {
                        out.push_str(&r);
                        data = true;
                        break;
                    }
                    Next::Close(r) => {
                        out.push_str(&r);
                        close = true;
                        break;
                    }
                },
                Err(ParseError::NeedsMoreData { .. }) => break,
                Err(e) => out.push_str(&parse_error(&e)),
            }
        }
        pending = bytes.as_slice().to_vec();
        // Pipelined replies go out together, as RFC 2920 allows.
        stream.write_all(out.as_bytes()).await?;
        if close {
            return Ok(());
        }
        if data {
            let mut message = Vec::new();
            let mut data_receiver = DataReceiver::new();
            // The CRLF that ended the DATA line also begins the first line of data
            // (RFC 5321 4.1.1.4): without it a first line starting with a dot is not
            // unstuffed, and ".\r\n" right after DATA (an empty message) is not seen
            // as the end, so the commands after it would be taken for message text.
            data_receiver.ingest(&mut b"\r\n".iter(), &mut message);
            message.clear();
            let mut too_large = false;
            loop {
                let mut bytes = pending.iter();
                let done = if too_large {
                    let mut discard = Vec::new();
                    data_receiver.ingest(&mut bytes, &mut discard)
                } else {
                    data_receiver.ingest(&mut bytes, &mut message)
                };
                pending = bytes.as_slice().to_vec();
                if message.len() > MAX_MESSAGE {
                    too_large = true;
                    message = Vec::new();
                }
                if done {
                    break;
                }
                let n = read_more(&mut stream, &mut buf).await?;
                if n == 0 {
                    return Ok(());
                }
                pending.extend_from_slice(&buf[..n]);
            }
            let replies = if too_large {
                session.too_large()
            } else {
                session.deliver(&message).await
            };
            stream.write_all(replies.as_bytes()).await?;
        }
    }
}

/// Accepts LMTP connections for one mailbox server on a bound listener until `stop`.
pub async fn run(
    listener: tokio::net::TcpListener,
    server: super::MailboxServer,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    // The clients are the site's own sorters: no limit per source.
    let busy = b"421 4.3.2 Too many connections, try again later\r\n";
    super::accept::run(
        listener,
        super::accept::Limits {
            total: MAX_CONNECTIONS,
            per_source: MAX_CONNECTIONS,
        },
        super::accept::Busy {
            full: busy,
            source: busy,
        },
        stop,
        move |stream, peer| {
            let s = &server;
            let mut session = Session::new(s);
            if !s.site.view().config().lmtp_allowed(peer.ip()) {
                tracing::info!(server = %s.name, %peer, "LMTP from a client that is not a sorter: MAIL will be refused");
                session = session.for_stranger();
            }
            serve_connection(stream, session)
        },
    )
    .await
}
