//! IMAP4rev1 (RFC 3501) for the mailbox role, with STARTTLS, SASL-IR, ID, UNSELECT,
//! UIDPLUS, MOVE, SPECIAL-USE, SORT and THREAD (RFC 5256), CONDSTORE (RFC 7162) and
//! login referrals (RFC 2221).
//!
//! imap-next does the framing (literals, continuation requests, size limits) of the
//! input that [`input::Gate`] lets through (a few KiB per command before login); the
//! [`session::Session`] state machine answers parsed commands; this module moves
//! events between them and owns timeouts and TLS. Passwords are refused on
//! unencrypted connections except on loopback, as for POP3.

pub mod binary;
pub mod input;
pub mod search;
pub mod session;
pub mod sort;
pub mod stream;
pub mod structure;
pub mod wire;

use std::collections::VecDeque;
use std::time::Duration;

use input::{Refusal, tag_of};
use tokio::time::Instant;

use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::response::{
    Code, CodeOther, CommandContinuationRequest, Greeting, GreetingKind, Response, Status,
};
use imap_next::server::{Error as ServerError, Event, Options, ResponseHandle, Server};
use stream::Error as StreamError;
pub use stream::Stream;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

pub use session::{Session, Step};

use super::Drain;

/// The largest literal (APPEND message) accepted.
pub const MAX_LITERAL: u32 = 40 * 1024 * 1024;
/// The longest command, literals included (Dovecot allows 64 KiB beside literals).
pub const MAX_COMMAND: u32 = MAX_LITERAL + 64 * 1024;
/// How long a last word (BYE, the OK before TLS) may take to reach the client.
const FAREWELL: Duration = Duration::from_secs(30);
/// Malformed commands tolerated on one connection before it is closed.
const MAX_ERRORS: u32 = 20;

fn options() -> Options {
    let mut options = Options::default();
    options.crlf_relaxed = true;
    options.max_literal_size = MAX_LITERAL;
    options.max_command_size = MAX_COMMAND;
    options
}

fn greeting(session: &Session, text: &str) -> Greeting<'static> {
    Greeting {
        kind: GreetingKind::Ok,
        code: Some(Code::Capability(session.capabilities())),
        text: wire::text(text),
    }
}

fn enqueue(server: &mut Server, responses: Vec<Response<'static>>) -> Option<ResponseHandle> {
    let mut last = None;
    for response in responses {
        last = Some(match response {
            Response::Data(data) => server.enqueue_data(data),
            Response::Status(status) => server.enqueue_status(status),
            Response::CommandContinuationRequest(c) => server.enqueue_continuation_request(c),
        });
    }
    last
}

/// What the client sent while the server was busy writing: answered in order later.
type Backlog = VecDeque<Result<Event, StreamError<ServerError>>>;

/// Drives the connection until `handle` is on the wire (or `limit` passes).
/// Commands that arrive meanwhile (pipelining) go to `backlog`.
async fn sent(
    stream: &mut Stream,
    server: &mut Server,
    handle: Option<ResponseHandle>,
    backlog: &mut Backlog,
    limit: Duration,
) -> bool {
    let wait = async {
        let Some(handle) = handle else {
            return stream.flush().await.is_ok();
        };
        loop {
            match stream.next(&mut *server).await {
                Ok(Event::ResponseSent { handle: h, .. }) if h == handle => {
                    return stream.flush().await.is_ok();
                }
                Ok(Event::ResponseSent { .. } | Event::GreetingSent { .. }) => {}
                Ok(event) => backlog.push_back(Ok(event)),
                Err(error @ (StreamError::State(_) | StreamError::Refused(_))) => {
                    backlog.push_back(Err(error))
                }
                Err(_) => return false,
            }
        }
    };
    tokio::time::timeout(limit, wait).await.unwrap_or(false)
}

/// The answer to a literal over the limit: before login a few KiB are enough for any
/// LOGIN or AUTHENTICATE.
fn literal_too_large(session: &Session) -> &'static str {
    match session.username() {
        None => "Literal too large before login",
        Some(_) => "Literal too large",
    }
}

fn untagged_bye(text: &str) -> Status<'static> {
    Status::bye(None, wire::text(text)).unwrap_or_else(|never| match never {})
}

/// The goodbye to sessions of a server being drained (RFC 5530 UNAVAILABLE): the
/// client reconnects, and the alias leads it to the server that serves it now.
fn drained_bye() -> Status<'static> {
    let code = Code::Other(CodeOther::unvalidated(b"UNAVAILABLE".to_vec()));
    let text = wire::text("This server is going out of service; reconnect to continue");
    Status::bye(Some(code), text).unwrap_or_else(|never| match never {})
}

/// Serves one connection until LOGOUT, a timeout, the peer leaves, or `drain` says
/// the server is going out of service (then `* BYE`).
pub async fn serve_connection(
    mut stream: Stream,
    mut session: Session,
    tls: Option<TlsAcceptor>,
    mut drain: Drain,
) -> std::io::Result<()> {
    let text = format!("{} IMAP4rev1 mailsite ready", session.hostname());
    let mut server = Server::new(options(), greeting(&session, &text));
    let mut pending_auth: Option<Tag<'static>> = None;
    let mut errors = 0;
    let mut backlog = Backlog::new();
    let login_by = Instant::now() + session.login_limit();
    loop {
        drain.follow(session.username());
        if session.logged_in() {
            stream.set_limits(input::AFTER_LOGIN);
        }
        // Before login the client has a deadline however busy it keeps.
        let limit = match session.username() {
            Some(_) => session.idle_limit(),
            None => session
                .idle_limit()
                .min(login_by.saturating_duration_since(Instant::now())),
        };
        let next = match backlog.pop_front() {
            Some(next) => Ok(next),
            None => tokio::select! {
                next = tokio::time::timeout(limit, stream.next(&mut server)) => next,
                _ = drain.started() => {
                    let bye = server.enqueue_status(drained_bye());
                    sent(&mut stream, &mut server, Some(bye), &mut backlog, FAREWELL).await;
                    return Ok(());
                }
            },
        };
        let event = match next {
            Ok(Ok(event)) => event,
            Err(_) => {
                let text = match session.username() {
                    None if Instant::now() >= login_by => "Too long without logging in, closing",
                    _ => "Idle too long, closing",
                };
                let bye = server.enqueue_status(untagged_bye(text));
                sent(&mut stream, &mut server, Some(bye), &mut backlog, FAREWELL).await;
                return Ok(());
            }
            Ok(Err(StreamError::Refused(refusal))) => {
                errors += 1;
                let (tag, text, close) = match refusal {
                    Refusal::LineTooLong(tag) => (tag, "Command line too long", false),
                    Refusal::LiteralTooLarge(tag) => (tag, literal_too_large(&session), false),
                    Refusal::NonSyncLiteralTooLarge(tag) => {
                        (tag, literal_too_large(&session), true)
                    }
                };
                let bad = |tag| {
                    Status::bad(tag, None, wire::text(text)).unwrap_or_else(|never| match never {})
                };
                match pending_auth.take() {
                    Some(auth) => {
                        let _ = server.authenticate_finish(bad(Some(auth)));
                    }
                    None => {
                        server.enqueue_status(bad(tag));
                    }
                }
                if close || errors >= MAX_ERRORS {
                    // What the client is still sending is not read: the socket closes.
                    let bye = server.enqueue_status(untagged_bye("Input refused, closing"));
                    sent(&mut stream, &mut server, Some(bye), &mut backlog, FAREWELL).await;
                    return Ok(());
                }
                continue;
            }
            Ok(Err(StreamError::State(error))) => {
                errors += 1;
                let (discarded, text) = match &error {
                    ServerError::LiteralTooLong { .. } => {
                        // imap-next already answered the command with BAD.
                        if errors >= MAX_ERRORS {
                            return Ok(());
                        }
                        continue;
                    }
                    ServerError::CommandTooLong { discarded_bytes } => {
                        (discarded_bytes, "Command too long")
                    }
                    ServerError::MalformedMessage { discarded_bytes }
                    | ServerError::ExpectedCrlfGotLf { discarded_bytes } => {
                        (discarded_bytes, "Malformed or unknown command")
                    }
                };
                let in_auth = pending_auth.is_some();
                let tag = match in_auth {
                    true => pending_auth.take(),
                    false => tag_of(discarded.declassify()),
                };
                let bad =
                    Status::bad(tag, None, wire::text(text)).unwrap_or_else(|never| match never {});
                if in_auth {
                    let _ = server.authenticate_finish(bad);
                } else {
                    server.enqueue_status(bad);
                }
                if errors >= MAX_ERRORS {
                    let bye = server.enqueue_status(untagged_bye("Too many errors, closing"));
                    sent(&mut stream, &mut server, Some(bye), &mut backlog, FAREWELL).await;
                    return Ok(());
                }
                continue;
            }
            Ok(Err(StreamError::Closed)) => return Ok(()),
            Ok(Err(StreamError::Io(e))) => return Err(e),
            Ok(Err(StreamError::Tls(e))) => return Err(std::io::Error::other(e)),
        };
        match event {
            Event::GreetingSent { .. } | Event::ResponseSent { .. } | Event::IdleDoneReceived => {}
            Event::CommandReceived { command } => {
                errors = 0;
                // Answers to earlier (pipelined) commands go out before this one runs.
                if stream.has_output() {
                    let flushed = tokio::time::timeout(session.idle_limit(), stream.flush());
                    if !matches!(flushed.await, Ok(Ok(()))) {
                        return Ok(());
                    }
                }
                let outcome = session.command(command).await;
                let mut last = enqueue(&mut server, outcome.responses);
                let mut more = outcome.more;
                while more {
                    // The next part once this one is written: memory stays bounded.
                    let limit = session.idle_limit();
                    if !sent(&mut stream, &mut server, last, &mut backlog, limit).await {
                        return Ok(());
                    }
                    let next = session.resume().await;
                    last = enqueue(&mut server, next.responses);
                    more = next.more;
                }
                match outcome.step {
                    Step::Continue => {}
                    Step::Close => {
                        sent(&mut stream, &mut server, last, &mut backlog, FAREWELL).await;
                        return Ok(());
                    }
                    Step::StartTls => {
                        let Some(acceptor) = tls.clone() else {
                            return Ok(());
                        };
                        if !sent(&mut stream, &mut server, last, &mut backlog, FAREWELL).await {
                            return Ok(());
                        }
                        // Nothing sent before the handshake is kept (see below).
                        backlog.clear();
                        // Anything the client sent before the handshake is discarded with
                        // the old stream and parser: it was not protected (the STARTTLS
                        // command-injection attack).
                        let tcp = TcpStream::from(stream);
                        let handshake =
                            tokio::time::timeout(Duration::from_secs(30), acceptor.accept(tcp));
                        let encrypted = match handshake.await {
                            Ok(Ok(encrypted)) => encrypted,
                            Ok(Err(e)) => return Err(e),
                            Err(_) => return Ok(()),
                        };
                        stream = Stream::tls(encrypted);
                        session.tls_started();
                        // imap-next always starts with a greeting; after STARTTLS it is an
                        // untagged OK with the new capabilities, which RFC 3501 allows.
                        server = Server::new(options(), greeting(&session, "TLS is on"));
                    }
                }
            }
            Event::CommandAuthenticateReceived {
                command_authenticate,
            } => {
                let initial = command_authenticate
                    .initial_response
                    .as_ref()
                    .map(|r| r.declassify().to_vec());
                let tag = command_authenticate.tag;
                let answer = session
                    .authenticate(&tag, &command_authenticate.mechanism, initial.as_deref())
                    .await;
                match answer {
                    Some(Response::Status(status)) => {
                        let _ = server.authenticate_finish(status);
                    }
                    _ => {
                        pending_auth = Some(tag);
                        let _ = server.authenticate_continue(CommandContinuationRequest::base64(
                            b"".as_slice(),
                        ));
                    }
                }
            }
            Event::AuthenticateDataReceived { authenticate_data } => {
                let Some(tag) = pending_auth.take() else {
                    continue;
                };
                use imap_codec::imap_types::auth::{AuthMechanism, AuthenticateData};
                let response = match authenticate_data {
                    AuthenticateData::Continue(data) => {
                        let data = data.declassify().to_vec();
                        session
                            .authenticate(&tag, &AuthMechanism::Plain, Some(&data))
                            .await
                    }
                    AuthenticateData::Cancel => None,
                };
                let status = match response {
                    Some(Response::Status(status)) => status,
                    _ => Status::bad(Some(tag), None, wire::text("Authentication cancelled"))
                        .unwrap_or_else(|never| match never {}),
                };
                let _ = server.authenticate_finish(status);
            }
            Event::IdleCommandReceived { tag } => {
                if !idle(&mut stream, &mut server, &mut session, tag, &mut drain).await {
                    return Ok(());
                }
            }
        }
    }
}

/// How often an IDLE session looks for changes made by other processes; changes made
/// in this process (deliveries, other sessions) wake it at once.
const IDLE_POLL: Duration = Duration::from_secs(5);

/// IDLE (RFC 2177): reports changes as they happen until the client sends DONE.
/// Returns false when the connection should close.
async fn idle(
    stream: &mut Stream,
    server: &mut Server,
    session: &mut Session,
    tag: Tag<'static>,
    drain: &mut Drain,
) -> bool {
    let Some(mut changes) = session.watch() else {
        let bad = Status::bad(Some(tag), None, wire::text("Log in first"))
            .unwrap_or_else(|never| match never {});
        let _ = server.idle_reject(bad);
        return true;
    };
    let Ok(accept) = CommandContinuationRequest::basic(None, wire::text("Idling")) else {
        return false;
    };
    if server.idle_accept(accept).is_err() {
        return false;
    }
    let updates = session.updates().await;
    enqueue(server, updates);
    let deadline = tokio::time::Instant::now() + session.idle_limit();
    // Traffic now and then keeps NAT and firewall state along the way (timeouts.idle_keepalive).
    // (Without one the timer is never polled; a day only keeps its arithmetic finite.)
    let every = session.idle_keepalive();
    let period = every.unwrap_or(Duration::from_secs(86_400));
    let mut keepalive = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let mut errors = 0;
    loop {
        let woken = async {
            if changes.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            event = stream.next(&mut *server) => match event {
                Ok(Event::IdleDoneReceived) => {
                    let mut out = session.updates().await;
                    out.push(Response::Status(
                        Status::ok(Some(tag), None, wire::text("IDLE terminated"))
                            .unwrap_or_else(|never| match never {}),
                    ));
                    enqueue(server, out);
                    return true;
                }
                Ok(_) => {}
                // Anything but DONE is discarded; a client that keeps sending it is gone.
                Err(StreamError::State(_)) if errors < MAX_ERRORS => errors += 1,
                Err(_) => return false,
            },
            _ = woken => {
                let updates = session.updates().await;
                enqueue(server, updates);
            }
            _ = tokio::time::sleep(IDLE_POLL) => {
                let updates = session.updates().await;
                enqueue(server, updates);
            }
            _ = keepalive.tick(), if every.is_some() => {
                let mut out = session.updates().await;
                out.push(Response::Status(
                    Status::ok(None, None, wire::text("Still here"))
                        .unwrap_or_else(|never| match never {}),
                ));
                enqueue(server, out);
            }
            _ = drain.started() => {
                let bye = server.enqueue_status(drained_bye());
                sent(stream, server, Some(bye), &mut Backlog::new(), FAREWELL).await;
                return false;
            }
            _ = tokio::time::sleep_until(deadline) => {
                let bye = server.enqueue_status(untagged_bye("Idle too long, closing"));
                sent(stream, server, Some(bye), &mut Backlog::new(), FAREWELL).await;
                return false;
            }
        }
    }
}

/// Accepts IMAP connections for one mailbox server on a bound listener until `stop`.
/// With `implicit`, every connection starts with TLS (port 993); otherwise STARTTLS is
/// offered when `tls` is given.
pub async fn run(
    listener: tokio::net::TcpListener,
    server: super::MailboxServer,
    implicit: bool,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let limits = server.site.view().config().limits;
    super::accept::run_admitting(
        listener,
        super::accept::Limits {
            total: limits.imap,
            per_source: limits.per_source,
        },
        super::accept::Busy {
            full: b"* BYE [UNAVAILABLE] Too many connections, try again later\r\n",
            source:
                b"* BYE [UNAVAILABLE] Too many connections from your address, try again later\r\n",
        },
        stop,
        move |stream, peer, admission| {
            let s = &server;
            let session = Session::new(&s.name, &s.hostname, s.site.clone(), s.store.clone(), peer)
                .admitted(admission);
            let tls = s.tls.clone();
            let drain = s.drain();
            async move {
                match (implicit, tls) {
                    (true, Some(acceptor)) => {
                        let encrypted = super::accept::tls_handshake(&acceptor, stream).await?;
                        let mut session = session;
                        session.tls_started();
                        let stream = Stream::tls(encrypted);
                        serve_connection(stream, session, None, drain).await
                    }
                    (true, None) => Ok(()),
                    (false, Some(acceptor)) => {
                        serve_connection(
                            Stream::insecure(stream),
                            session.offer_tls(),
                            Some(acceptor),
                            drain,
                        )
                        .await
                    }
                    (false, None) => {
                        serve_connection(Stream::insecure(stream), session, None, drain).await
                    }
                }
            }
        },
    )
    .await
}
