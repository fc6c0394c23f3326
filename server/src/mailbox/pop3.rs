//! POP3 (RFC 1939, CAPA RFC 2449, AUTH PLAIN RFC 5034) over the store's INBOX: for
//! users who want everything downloaded to one computer.
//!
//! The session is a state machine (AUTHORIZATION, TRANSACTION, UPDATE) that reads one
//! command line and returns the reply; the connection loop only moves bytes. Deletions
//! are marks until QUIT, then one atomic expunge. One session per maildrop at a time.
//! Passwords are refused on unencrypted connections (STLS, or port 995) except on loopback.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio_rustls::TlsAcceptor;

use super::accept::{Admission, Encryption, NoStartTls};
use super::login::Login;
use super::store::Store;
use crate::sasl::{self, Exchange, Mechanism};
use crate::state::Site;
use crate::throttle::Protocol;

/// Longest command line accepted, its LF not counted: 255 octets with CRLF (RFC 2449).
pub const MAX_LINE: usize = 254;
/// Longest answer to an AUTH challenge (a SASL response in base64, RFC 5034), its LF
/// not counted.
pub const MAX_AUTH_LINE: usize = 1024;

/// A message as the session numbers it.
struct Entry {
    uid: u32,
    size: u64,
    deleted: bool,
    /// The index row, to find the file without asking the index again.
    info: super::store::MessageInfo,
}

enum State {
    Authorization {
        user: Option<String>,
    },
    Transaction {
        username: String,
        uidvalidity: u32,
        messages: Vec<Entry>,
        _lock: super::store::MaildropLock,
    },
}

/// What the connection loop does after a command.
pub enum Step {
    Reply(Vec<u8>),
    Close(Vec<u8>),
    /// Reply, then start TLS on the connection (STLS).
    StartTls(Vec<u8>),
}

/// A connection, plain or TLS.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

fn ok(text: &str) -> Step {
    Step::Reply(format!("+OK {text}\r\n").into_bytes())
}

fn err(text: &str) -> Step {
    Step::Reply(format!("-ERR {text}\r\n").into_bytes())
}

/// Dot-stuffs a message (or its top) into a multi-line response body, ending with ".".
fn multiline(first: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 64);
    out.extend_from_slice(format!("+OK {first}\r\n").as_bytes());
    for line in body.split_inclusive(|&b| b == b'\n') {
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// The header and the first `lines` lines of the body.
fn top(message: &[u8], lines: usize) -> &[u8] {
    let header_end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .or_else(|| message.windows(2).position(|w| w == b"\n\n").map(|p| p + 2))
        .unwrap_or(message.len());
    let mut end = header_end;
    for _ in 0..lines {
        match message[end..].iter().position(|&b| b == b'\n') {
            Some(p) => end += p + 1,
            None => {
                end = message.len();
                break;
            }
        }
    }
    &message[..end]
}

/// The UIDL of a message: its UID and the mailbox's UIDVALIDITY (Dovecot's default
/// format, so that a move between the two keeps clients from downloading again).
pub fn uidl(uid: u32, uidvalidity: u32) -> String {
    format!("{uid:08X}{uidvalidity:08X}")
}

/// One POP3 session.
pub struct Session {
    server: String,
    hostname: String,
    site: Arc<Site>,
    store: Store,
    encryption: Encryption,
    state: State,
    failures: u32,
    peer: std::net::IpAddr,
    /// AUTH PLAIN was sent without its response: the next line is the response.
    auth_pending: Option<Exchange>,
    /// The connection's place in its listener's limits (none in the fuzzing harness).
    admission: Option<Admission>,
}

impl Session {
    pub fn new(
        server: &str,
        hostname: &str,
        site: Arc<Site>,
        store: Store,
        peer: SocketAddr,
    ) -> Session {
        Session {
            server: server.to_string(),
            hostname: hostname.to_string(),
            site,
            store,
            encryption: Encryption::for_peer(peer),
            state: State::Authorization { user: None },
            failures: 0,
            peer: peer.ip(),
            auth_pending: None,
            admission: None,
        }
    }

    /// Holds the connection's place in its listener's limits; the place it takes
    /// among its source's connections is given up at login.
    pub fn admitted(mut self, admission: Admission) -> Session {
        self.admission = Some(admission);
        self
    }

    /// The longest line the client may send now.
    fn max_line(&self) -> usize {
        match self.auth_pending {
            Some(_) => MAX_AUTH_LINE,
            None => MAX_LINE,
        }
    }

    /// Offers STLS on this connection.
    pub fn offer_tls(mut self) -> Session {
        self.encryption.offer();
        self
    }

    /// The connection is now encrypted: passwords may be sent.
    pub fn tls_started(&mut self) {
        self.encryption.started();
    }

    pub fn greeting(&self) -> String {
        format!("+OK {} POP3 mailsite ready\r\n", self.hostname)
    }

    /// The user whose maildrop this session holds, once logged in.
    pub fn username(&self) -> Option<&str> {
        match &self.state {
            State::Transaction { username, .. } => Some(username),
            State::Authorization { .. } => None,
        }
    }

    /// How long the client may stay silent now (the site's `[timeouts]`).
    pub fn idle_limit(&self) -> Duration {
        let timeouts = self.site.view().config().timeouts;
        Duration::from_secs(match self.state {
            State::Authorization { .. } => timeouts.login,
            _ => timeouts.pop3,
        })
    }

    fn capabilities(&self) -> Step {
        let mut caps = String::from(
            "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n",
        );
        if self.encryption.can_start() {
            caps.push_str("STLS\r\n");
        }
        if self.encryption.passwords_allowed() {
            caps.push_str("USER\r\nSASL PLAIN\r\n");
        }
        caps.push_str("IMPLEMENTATION mailsite\r\n.\r\n");
        Step::Reply(caps.into_bytes())
    }

    /// Logs in, or says why not (after a delay that grows with each failure).
    async fn login(&mut self, user: &str, password: &str) -> Step {
        if !self.encryption.passwords_allowed() {
            return err(
                "[AUTH] Passwords are not accepted on an unencrypted connection: use STLS first, or port 995",
            );
        }
        let username = match super::login::check(
            &self.site,
            &self.server,
            self.peer,
            Protocol::Pop3,
            user,
            password,
            &mut self.failures,
        )
        .await
        {
            Login::Accepted { username } => username,
            Login::Refused => return err("[AUTH] Wrong user name or password"),
            Login::Expired { label, at } => {
                return err(&format!(
                    "[AUTH] {}",
                    crate::mailbox::login::expired_text(&label, at)
                ));
            }
            // RFC 3206: a temporary condition of the system, not of the password.
            Login::Blocked { until } => {
                return err(&format!(
                    "[SYS/TEMP] {}",
                    crate::mailbox::login::blocked_text(until)
                ));
            }
            Login::Elsewhere {
                username,
                alias,
                server,
            } => {
                return err(&format!(
                    "[SYS/TEMP] {username} is served by {alias} ({server} now): connect there"
                ));
            }
        };
        let Some(lock) = self.store.lock_maildrop(&username) else {
            return err("[IN-USE] Another session has this maildrop open; try again when it ends");
        };
        let loaded = async {
            self.store.ensure_user(&username).await?;
            self.store.sync(&username, "INBOX").await?;
            let info = self.store.mailbox(&username, "INBOX").await?;
            let list = self.store.messages(&username, "INBOX").await?;
            Ok::<_, super::store::StoreError>((info.uidvalidity, list))
        }
        .await;
        match loaded {
            Ok((uidvalidity, list)) => {
                let count = list.len();
                let messages = list
                    .into_iter()
                    .map(|m| Entry {
                        uid: m.uid,
                        size: m.size,
                        deleted: false,
                        info: m,
                    })
                    .collect();
                self.state = State::Transaction {
                    username,
                    uidvalidity,
                    messages,
                    _lock: lock,
                };
                ok(&format!("Logged in, {count} messages"))
            }
            Err(error) => {
                tracing::warn!(%error, "cannot open a maildrop");
                err("[SYS/TEMP] The maildrop cannot be opened now; try again later")
            }
        }
    }

    /// Answers one command line (without its CRLF).
    pub async fn command(&mut self, line: &str) -> Step {
        if let Some(exchange) = self.auth_pending.take() {
            // The client's answer to "+ " after AUTH PLAIN (RFC 5034 4). An empty line
            // is an empty response, which PLAIN refuses, not a reason to ask again.
            return self.sasl_step(sasl::next(exchange, line)).await;
        }
        let (verb, args) = line.split_once(' ').unwrap_or((line, ""));
        let verb = verb.to_ascii_uppercase();
        match (&mut self.state, verb.as_str()) {
            (_, "CAPA") => self.capabilities(),
            (_, "NOOP") => ok(""),
            (State::Authorization { .. }, "QUIT") => Step::Close(b"+OK Bye\r\n".to_vec()),
            (State::Authorization { .. }, "STLS") => match self.encryption.start() {
                Ok(()) => Step::StartTls(b"+OK Begin TLS negotiation\r\n".to_vec()),
                Err(NoStartTls::AlreadyOn) => err("TLS is already on"),
                Err(NoStartTls::NotOffered) => err("STLS is not offered here"),
            },
            (State::Authorization { user }, "USER") => {
                if args.is_empty() {
                    return err("Say USER name");
                }
                *user = Some(args.to_string());
                ok("Send PASS")
            }
            (State::Authorization { user }, "PASS") => match user.take() {
                Some(name) => self.login(&name, args).await,
                None => err("Send USER first"),
            },
            (State::Authorization { .. }, "AUTH") => self.auth(args).await,
            (State::Authorization { .. }, _) => err("Log in first (USER/PASS or AUTH PLAIN)"),
            (State::Transaction { .. }, "QUIT") => self.update().await,
            (State::Transaction { messages, .. }, "STAT") => {
                let live = messages.iter().filter(|m| !m.deleted);
                let (count, size) = live.fold((0, 0), |(c, s), m| (c + 1, s + m.size));
                ok(&format!("{count} {size}"))
            }
            (
                State::Transaction {
                    messages,
                    uidvalidity,
                    ..
                },
                "LIST" | "UIDL",
            ) => {
                let uidvalidity = *uidvalidity;
                let show = |n: usize, m: &Entry| {
                    if verb == "LIST" {
                        format!("{n} {}", m.size)
                    } else {
                        format!("{n} {}", uidl(m.uid, uidvalidity))
                    }
                };
                if args.is_empty() {
                    let mut out = String::from("+OK\r\n");
                    for (i, m) in messages.iter().enumerate().filter(|(_, m)| !m.deleted) {
                        out.push_str(&show(i + 1, m));
                        out.push_str("\r\n");
                    }
                    out.push_str(".\r\n");
                    return Step::Reply(out.into_bytes());
                }
                match Session::pick(messages, args) {
                    Ok(n) => ok(&show(n, &messages[n - 1])),
                    Err(e) => e,
                }
            }
            (State::Transaction { messages, .. }, "DELE") => match Session::pick(messages, args) {
                Ok(n) => {
                    messages[n - 1].deleted = true;
                    ok(&format!("Message {n} marked for deletion"))
                }
                Err(e) => e,
            },
            (State::Transaction { messages, .. }, "RSET") => {
                messages.iter_mut().for_each(|m| m.deleted = false);
                ok("Deletion marks removed")
            }
            (State::Transaction { .. }, "RETR" | "TOP") => self.retrieve(&verb, args).await,
            (State::Transaction { .. }, "USER" | "PASS" | "AUTH") => err("Already logged in"),
            _ => err("Unknown command"),
        }
    }

    /// The message a command's first argument names, if it exists and is not deleted.
    fn pick(messages: &[Entry], args: &str) -> Result<usize, Step> {
        let arg = args.split_whitespace().next().unwrap_or("");
        match arg.parse::<usize>() {
            Ok(n) if n >= 1 && n <= messages.len() && !messages[n - 1].deleted => Ok(n),
            Ok(_) => Err(err("No such message")),
            Err(_) => Err(err("Give a message number")),
        }
    }

    async fn retrieve(&mut self, verb: &str, args: &str) -> Step {
        let State::Transaction {
            username, messages, ..
        } = &self.state
        else {
            return err("Log in first");
        };
        let n = match Session::pick(messages, args) {
            Ok(n) => n,
            Err(e) => return e,
        };
        let lines = if verb == "TOP" {
            match args.split_whitespace().nth(1).map(str::parse::<usize>) {
                Some(Ok(k)) => Some(k),
                _ => return err("Say TOP message lines"),
            }
        } else {
            None
        };
        let entry = &messages[n - 1];
        match self
            .store
            .read_message(username, "INBOX", &entry.info)
            .await
        {
            Ok(body) => match lines {
                Some(k) => Step::Reply(multiline("Top of message follows", top(&body, k))),
                None => Step::Reply(multiline(&format!("{} octets", body.len()), &body)),
            },
            Err(error) => {
                tracing::warn!(%error, uid = entry.uid, "cannot read a message");
                err("[SYS/TEMP] The message cannot be read now")
            }
        }
    }

    /// AUTH PLAIN, with or without the initial response on the line (RFC 5034).
    async fn auth(&mut self, args: &str) -> Step {
        let mut parts = args.split_whitespace();
        let mechanism = parts.next().unwrap_or("");
        if !mechanism.eq_ignore_ascii_case("PLAIN") {
            return err("Only AUTH PLAIN is offered");
        }
        self.sasl_step(sasl::start(Mechanism::Plain, parts.next()))
            .await
    }

    async fn sasl_step(&mut self, step: sasl::Step) -> Step {
        match step {
            sasl::Step::Prompt(exchange) => {
                let prompt = format!("+ {}\r\n", exchange.challenge());
                self.auth_pending = Some(exchange);
                Step::Reply(prompt.into_bytes())
            }
            sasl::Step::Refused(refusal) => err(&format!("[AUTH] {refusal}")),
            sasl::Step::Credentials(credentials) => {
                self.login(&credentials.user, &credentials.password).await
            }
        }
    }

    /// QUIT in the TRANSACTION state: the UPDATE state, all deletions at once.
    async fn update(&mut self) -> Step {
        let State::Transaction {
            username, messages, ..
        } = &self.state
        else {
            return Step::Close(b"+OK Bye\r\n".to_vec());
        };
        let doomed: Vec<u32> = messages
            .iter()
            .filter(|m| m.deleted)
            .map(|m| m.uid)
            .collect();
        match self.store.expunge(username, "INBOX", &doomed).await {
            Ok(n) => Step::Close(
                format!(
                    "+OK {} signing off, {n} messages deleted\r\n",
                    self.hostname
                )
                .into_bytes(),
            ),
            Err(error) => {
                tracing::warn!(%error, "POP3 update failed");
                Step::Close(b"-ERR [SYS/TEMP] Deleting failed; nothing was deleted\r\n".to_vec())
            }
        }
    }
}

/// Serves one connection until QUIT, a timeout, the peer leaves, or `drain` says the
/// server is going out of service (then `-ERR`, and nothing is deleted, as for any
/// session that ends without QUIT).
pub async fn serve_connection(
    stream: Box<dyn Stream>,
    mut session: Session,
    tls: Option<TlsAcceptor>,
    mut drain: super::Drain,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    reader
        .get_mut()
        .write_all(session.greeting().as_bytes())
        .await?;
    let login_by = tokio::time::Instant::now()
        + Duration::from_secs(session.site.view().config().timeouts.login_total);
    let mut line = Vec::new();
    let mut skip = false;
    loop {
        drain.follow(session.username());
        let limit = match session.username() {
            Some(_) => {
                if let Some(admission) = &mut session.admission {
                    admission.logged_in();
                }
                session.idle_limit()
            }
            // Before login the client has a deadline however busy it keeps.
            None => session
                .idle_limit()
                .min(login_by.saturating_duration_since(tokio::time::Instant::now())),
        };
        line.clear();
        let max = session.max_line();
        let read = tokio::time::timeout(limit, read_line(&mut reader, &mut line, max, skip));
        let read = tokio::select! {
            read = read => read,
            _ = drain.started() => {
                let bye = b"-ERR [SYS/TEMP] This server is going out of service; reconnect to continue\r\n";
                let _ = reader.get_mut().write_all(bye).await;
                return Ok(());
            }
        };
        let read = match read {
            Ok(r) => r?,
            Err(_) => {
                let bye: &[u8] = match session.username() {
                    None if tokio::time::Instant::now() >= login_by => {
                        b"-ERR Too long without logging in, closing\r\n"
                    }
                    _ => b"-ERR Idle too long, closing\r\n",
                };
                let _ = reader.get_mut().write_all(bye).await;
                return Ok(());
            }
        };
        skip = false;
        match read {
            Line::Closed => return Ok(()),
            Line::Whole => {}
            Line::TooLong { unfinished } => {
                // Refused at once; the rest of the line is skipped as it arrives.
                session.auth_pending = None;
                reader
                    .get_mut()
                    .write_all(b"-ERR Line too long\r\n")
                    .await?;
                skip = unfinished;
                continue;
            }
        }
        let text = String::from_utf8_lossy(&line);
        let command = text.trim_end_matches(['\r', '\n']);
        match session.command(command).await {
            Step::Reply(bytes) => reader.get_mut().write_all(&bytes).await?,
            Step::Close(bytes) => {
                reader.get_mut().write_all(&bytes).await?;
                return Ok(());
            }
            Step::StartTls(bytes) => {
                let Some(acceptor) = tls.clone() else {
                    return Ok(());
                };
                reader.get_mut().write_all(&bytes).await?;
                // Anything the client sent before the handshake is discarded: it was
                // not protected (the STARTTLS command-injection attack).
                let plain = reader.into_inner();
                let encrypted = super::accept::tls_handshake(&acceptor, plain).await?;
                session.tls_started();
                reader = BufReader::new(Box::new(encrypted));
            }
        }
    }
}

/// How a line read ended.
enum Line {
    /// A whole line, in the buffer.
    Whole,
    /// More than the limit came before the line's end: nothing of it is kept, and
    /// when `unfinished` its rest is still to come (to skip).
    TooLong { unfinished: bool },
    /// The client closed the connection.
    Closed,
}

/// Reads one line of at most `max` bytes before its LF into `line`. With `skip`, it
/// first discards the rest of a refused line. Nothing beyond `max` is ever held. A
/// last line the client did not finish before closing is refused as too long.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    max: usize,
    mut skip: bool,
) -> std::io::Result<Line> {
    loop {
        let buffer = reader.fill_buf().await?;
        if buffer.is_empty() {
            return Ok(match line.is_empty() || skip {
                true => Line::Closed,
                false => Line::TooLong { unfinished: false },
            });
        }
        let end = buffer.iter().position(|&b| b == b'\n');
        let used = end.map_or(buffer.len(), |e| e + 1);
        if skip {
            reader.consume(used);
            skip = end.is_none();
            continue;
        }
        if line.len() + end.unwrap_or(buffer.len()) > max {
            reader.consume(used);
            return Ok(Line::TooLong {
                unfinished: end.is_none(),
            });
        }
        line.extend_from_slice(&buffer[..used]);
        reader.consume(used);
        if end.is_some() {
            return Ok(Line::Whole);
        }
    }
}

/// Accepts POP3 connections for one mailbox server on a bound listener until `stop`.
/// With `implicit`, every connection starts with TLS (port 995); otherwise STLS is
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
            total: limits.pop3,
            per_source: limits.per_source,
        },
        super::accept::Busy {
            full: b"-ERR [SYS/TEMP] Too many connections, try again later\r\n",
            source: b"-ERR [SYS/TEMP] Too many connections from your address, try again later\r\n",
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
                        serve_connection(Box::new(encrypted), session, None, drain).await
                    }
                    (true, None) => Ok(()),
                    (false, Some(acceptor)) => {
                        let session = session.offer_tls();
                        serve_connection(Box::new(stream), session, Some(acceptor), drain).await
                    }
                    (false, None) => serve_connection(Box::new(stream), session, None, drain).await,
                }
            }
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_dot_stuffed_and_topped() {
        let body = b"Subject: x\r\n\r\n.hidden\r\nline2\r\nline3";
        let out = multiline("ok", body);
        assert_eq!(
            out,
            b"+OK ok\r\nSubject: x\r\n\r\n..hidden\r\nline2\r\nline3\r\n.\r\n"
        );
        assert_eq!(top(body, 1), b"Subject: x\r\n\r\n.hidden\r\n");
        assert_eq!(top(body, 0), b"Subject: x\r\n\r\n");
        assert_eq!(top(body, 10), &body[..]);
        assert_eq!(uidl(1, 0x65000000), "0000000165000000");
    }

    /// A session of the embedded site's first mailbox server, for a client at `peer`;
    /// the data directory to remove afterwards.
    async fn scratch_session(peer: &str) -> (Session, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("mailsite-pop3-{}", rand::random::<u64>()));
        let mut config = mailsite_shared::SiteConfig::embedded();
        config.data_dir = dir.clone();
        let directory = crate::directory::Directory::open(&config).await.unwrap();
        let store = Store::for_site(&config, &directory);
        let site = Site::load(Arc::new(config), directory).await.unwrap();
        let peer: SocketAddr = peer.parse().unwrap();
        let session = Session::new("mailbox1", "mailbox1.example.test", site, store, peer);
        (session, dir)
    }

    async fn say(session: &mut Session, line: &str) -> String {
        match session.command(line).await {
            Step::Reply(b) => String::from_utf8(b).unwrap(),
            _ => panic!("{line} closed"),
        }
    }

    #[tokio::test]
    async fn no_plaintext_passwords_from_other_hosts_before_tls() {
        let (session, dir) = scratch_session("192.0.2.7:40000").await;
        let mut session = session.offer_tls();
        let capa = say(&mut session, "CAPA").await;
        assert!(
            capa.contains("STLS") && !capa.contains("USER") && !capa.contains("SASL"),
            "{capa}"
        );
        session.command("USER alice").await;
        assert!(
            say(&mut session, "PASS secret-password")
                .await
                .starts_with("-ERR [AUTH] Passwords are not accepted")
        );
        assert!(matches!(session.command("STLS").await, Step::StartTls(_)));
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn auth_plain_refusals_say_why() {
        let (mut session, dir) = scratch_session("127.0.0.1:40000").await;
        let not_plain = "-ERR [AUTH] The response is not authzid NUL user NUL password";
        for (line, expected) in [
            ("AUTH PLAIN !!", "-ERR [AUTH] The response is not base64"),
            ("AUTH PLAIN =", not_plain),
            // bob NUL alice NUL password
            (
                "AUTH PLAIN Ym9iAGFsaWNlAGZ1enotcGFzc3dvcmQ=",
                "-ERR [AUTH] Logging in as another user is not allowed",
            ),
            ("AUTH PLAIN", "+ "),
            ("*", "-ERR [AUTH] Authentication cancelled"),
            ("AUTH PLAIN", "+ "),
            // An empty line is an empty response, not a reason to ask again.
            ("", not_plain),
            ("AUTH LOGIN", "-ERR Only AUTH PLAIN is offered"),
        ] {
            assert_eq!(say(&mut session, line).await, format!("{expected}\r\n"));
        }
        std::fs::remove_dir_all(dir).ok();
    }
}
