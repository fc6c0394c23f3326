//! ManageSieve (RFC 5804) on the mailbox servers: where users' mail programs (and
//! tools such as sieve-connect) keep their Sieve filters. STARTTLS, then AUTHENTICATE
//! PLAIN with the user's password or an app password, then PUTSCRIPT, LISTSCRIPTS,
//! SETACTIVE, GETSCRIPT, DELETESCRIPT, RENAMESCRIPT, CHECKSCRIPT and HAVESPACE.
//! Passwords are refused before TLS except on loopback, as for IMAP and POP3.
//!
//! Scripts live in the site database, so every mailbox server manages every user's
//! scripts, whichever server serves the user's letter: a client configured with the
//! letter's alias keeps working across a move. A script is stored only once the
//! interpreter accepts it (the refusal names the line), and runs at the next delivery.
//!
//! [`wire`] reads command lines and literals; [`Session`] answers one command; the
//! connection loop below moves bytes.

pub mod wire;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio_rustls::TlsAcceptor;

use self::wire::{Arg, Line};
use super::accept::{Admission, Encryption};
use super::login::Login;
use super::sieve::{Engine, MAX_SCRIPT, extensions, valid_name};
use crate::directory::DirectoryError;
use crate::directory::sieve::MAX_SCRIPTS;
use crate::sasl::{self, Mechanism};
use crate::state::Site;
use crate::throttle::Protocol;

/// The longest literal read into memory; longer ones are skipped and refused.
pub const MAX_LITERAL: usize = MAX_SCRIPT + 1024;
/// Failed logins before the connection is closed.
const MAX_FAILURES: u32 = 3;

/// What the connection loop does after a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Reply(Vec<u8>),
    /// Reply, then close.
    Close(Vec<u8>),
    /// Reply, start TLS, then send the capabilities again (RFC 5804 2.2).
    StartTls(Vec<u8>),
}

fn ok(text: &str) -> Vec<u8> {
    response("OK", None, text)
}

fn no(code: Option<&str>, text: &str) -> Vec<u8> {
    response("NO", code, text)
}

fn response(status: &str, code: Option<&str>, text: &str) -> Vec<u8> {
    let mut out = status.as_bytes().to_vec();
    if let Some(code) = code {
        out.extend_from_slice(format!(" ({code})").as_bytes());
    }
    out.push(b' ');
    out.extend_from_slice(&wire::string(text.as_bytes()));
    out.extend_from_slice(b"\r\n");
    out
}

/// One ManageSieve session.
pub struct Session {
    server: String,
    hostname: String,
    site: Arc<Site>,
    engine: Arc<Engine>,
    encryption: Encryption,
    peer: IpAddr,
    failures: u32,
    user: Option<String>,
    /// AUTHENTICATE "PLAIN" came without its response: the next command line is it.
    auth_pending: bool,
    admission: Option<Admission>,
}

impl Session {
    pub fn new(server: &super::MailboxServer, peer: SocketAddr) -> Session {
        Session {
            server: server.name.clone(),
            hostname: server.hostname.clone(),
            site: server.site.clone(),
            engine: server.sieve.clone(),
            encryption: Encryption::for_peer(peer),
            peer: peer.ip(),
            failures: 0,
            user: None,
            auth_pending: false,
            admission: None,
        }
    }

    pub fn admitted(mut self, admission: Admission) -> Session {
        self.admission = Some(admission);
        self
    }

    /// Offers STARTTLS on this connection.
    pub fn offer_tls(mut self) -> Session {
        self.encryption.offer();
        self
    }

    pub fn tls_started(&mut self) {
        self.encryption.started();
    }

    /// The logged-in user.
    pub fn username(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// How long the client may stay silent now (the site's `[timeouts]`).
    pub fn idle_limit(&self) -> Duration {
        let timeouts = self.site.view().config().timeouts;
        Duration::from_secs(match self.user {
            None => timeouts.login,
            Some(_) => timeouts.imap,
        })
    }

    /// The capability response (RFC 5804 1.7), ending in OK: the greeting, and the
    /// answer to CAPABILITY and to a finished STARTTLS.
    pub fn capabilities(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut line = |key: &str, value: Option<&str>| {
            out.extend_from_slice(&wire::string(key.as_bytes()));
            if let Some(value) = value {
                out.push(b' ');
                out.extend_from_slice(&wire::string(value.as_bytes()));
            }
            out.extend_from_slice(b"\r\n");
        };
        line("IMPLEMENTATION", Some("mailsite"));
        line("SIEVE", Some(&extensions()));
        // Before TLS on a connection from elsewhere no mechanism is usable.
        let sasl = if self.encryption.passwords_allowed() {
            "PLAIN"
        } else {
            ""
        };
        line("SASL", Some(sasl));
        if self.encryption.can_start() {
            line("STARTTLS", None);
        }
        line("MAXREDIRECTS", Some(&super::sieve::MAX_SENT.to_string()));
        if let Some(user) = &self.user {
            line("OWNER", Some(user));
        }
        line("VERSION", Some("1.0"));
        out.extend_from_slice(&ok(&format!("{} ManageSieve ready", self.hostname)));
        out
    }

    /// Answers one command (its arguments, literals read).
    pub async fn command(&mut self, args: Vec<Arg>) -> Step {
        if std::mem::take(&mut self.auth_pending) {
            // The client's answer to the empty challenge: its SASL PLAIN response.
            return match args.as_slice() {
                [arg @ Arg::String(_)] => match arg.text() {
                    Some("*") => Step::Reply(no(None, "Authentication cancelled")),
                    Some(response) => self.sasl(sasl::next(sasl::Exchange::Plain, response)).await,
                    None => Step::Reply(no(None, "The response is not base64")),
                },
                _ => Step::Reply(no(None, "Expected the SASL response as a string")),
            };
        }
        let mut args = args.into_iter();
        let Some(Arg::Atom(name)) = args.next() else {
            return Step::Reply(no(None, "Expected a command"));
        };
        let args: Vec<Arg> = args.collect();
        let name = name.to_ascii_uppercase();
        match (name.as_str(), args.as_slice()) {
            ("CAPABILITY", []) => Step::Reply(self.capabilities()),
            ("LOGOUT", []) => Step::Close(ok("Logout completed")),
            ("NOOP", []) => Step::Reply(ok("Done")),
            ("NOOP", [Arg::String(bytes)]) => {
                let mut out = b"OK (TAG ".to_vec();
                out.extend_from_slice(&wire::string(bytes));
                out.extend_from_slice(b") \"Done\"\r\n");
                Step::Reply(out)
            }
            ("STARTTLS", []) => match self.encryption.start() {
                Ok(()) => Step::StartTls(ok("Begin TLS negotiation now")),
                Err(_) => Step::Reply(no(None, "STARTTLS is not available now")),
            },
            ("AUTHENTICATE", _) if self.user.is_some() => {
                Step::Reply(no(None, "Already logged in"))
            }
            ("AUTHENTICATE", [mechanism, rest @ ..]) if rest.len() <= 1 => {
                self.authenticate(mechanism, rest.first()).await
            }
            (_, _) if self.user.is_none() && is_command(&name) => Step::Reply(no(
                None,
                "Log in first: STARTTLS, then AUTHENTICATE \"PLAIN\"",
            )),
            _ => match self.user.clone() {
                Some(user) => Step::Reply(self.scripts(&user, &name, &args).await),
                None => Step::Reply(no(None, "Unknown command")),
            },
        }
    }

    async fn authenticate(&mut self, mechanism: &Arg, initial: Option<&Arg>) -> Step {
        if !mechanism
            .text()
            .is_some_and(|m| m.eq_ignore_ascii_case("PLAIN"))
        {
            return Step::Reply(no(None, "Only the PLAIN mechanism is offered"));
        }
        if !self.encryption.passwords_allowed() {
            return Step::Reply(no(
                Some("ENCRYPT-NEEDED"),
                "Passwords are not accepted on an unencrypted connection: use STARTTLS first",
            ));
        }
        match initial {
            None => {
                self.auth_pending = true;
                Step::Reply(b"\"\"\r\n".to_vec())
            }
            Some(arg) => match arg.text() {
                Some(response) => {
                    self.sasl(sasl::start(Mechanism::Plain, Some(response)))
                        .await
                }
                None => Step::Reply(no(None, "The response is not base64")),
            },
        }
    }

    async fn sasl(&mut self, step: sasl::Step) -> Step {
        let credentials = match step {
            sasl::Step::Credentials(credentials) => credentials,
            sasl::Step::Refused(refusal) => return Step::Reply(no(None, &refusal.to_string())),
            // PLAIN with a response has no further step; refused like a bad one.
            sasl::Step::Prompt(_) => return Step::Reply(no(None, "Send the PLAIN response")),
        };
        let login = super::login::check(
            &self.site,
            &self.server,
            self.peer,
            Protocol::ManageSieve,
            &credentials.user,
            &credentials.password,
            &mut self.failures,
        )
        .await;
        let refusal = match login {
            // Scripts are in the site database: any mailbox server manages them.
            Login::Accepted { username } | Login::Elsewhere { username, .. } => {
                tracing::info!(server = %self.server, user = %username, peer = %self.peer, "ManageSieve login");
                self.user = Some(username);
                if let Some(admission) = &mut self.admission {
                    admission.logged_in();
                }
                return Step::Reply(ok("Logged in"));
            }
            Login::Refused => no(None, "Wrong user name or password"),
            Login::Expired { label, at } => no(None, &super::login::expired_text(&label, at)),
            Login::Blocked { until } => no(Some("TRYLATER"), &super::login::blocked_text(until)),
        };
        if self.failures >= MAX_FAILURES {
            let mut out = refusal;
            out.extend_from_slice(b"BYE \"Too many failed logins\"\r\n");
            return Step::Close(out);
        }
        Step::Reply(refusal)
    }

    /// The commands of a logged-in user.
    async fn scripts(&self, user: &str, name: &str, args: &[Arg]) -> Vec<u8> {
        let directory = &self.site.directory;
        let named = |arg: &Arg| -> Result<String, Vec<u8>> {
            match arg.text() {
                Some(name) if valid_name(name) => Ok(name.to_string()),
                _ => Err(no(
                    None,
                    "A script name is 1 to 128 characters of UTF-8, without control characters or '/'",
                )),
            }
        };
        let result = match (name, args) {
            ("LISTSCRIPTS", []) => match directory.sieve_scripts(user).await {
                Ok(scripts) => {
                    let mut out = Vec::new();
                    for s in scripts {
                        out.extend_from_slice(&wire::string(s.name.as_bytes()));
                        if s.active {
                            out.extend_from_slice(b" ACTIVE");
                        }
                        out.extend_from_slice(b"\r\n");
                    }
                    out.extend_from_slice(&ok("Listed"));
                    return out;
                }
                Err(e) => Err(e),
            },
            ("GETSCRIPT", [script]) => {
                let script = match named(script) {
                    Ok(s) => s,
                    Err(reply) => return reply,
                };
                match directory.sieve_script(user, &script).await {
                    Ok(text) => {
                        let mut out = format!("{{{}}}\r\n", text.len()).into_bytes();
                        out.extend_from_slice(text.as_bytes());
                        out.extend_from_slice(b"\r\n");
                        out.extend_from_slice(&ok("Got it"));
                        return out;
                    }
                    Err(e) => Err(e),
                }
            }
            ("PUTSCRIPT", [script, Arg::String(text)]) => {
                let script = match named(script) {
                    Ok(s) => s,
                    Err(reply) => return reply,
                };
                if let Err(error) = self.engine.check(text) {
                    return no(None, &error);
                }
                let text = String::from_utf8_lossy(text);
                directory.put_sieve(user, &script, &text).await.map(|_| ())
            }
            ("CHECKSCRIPT", [Arg::String(text)]) => {
                return match self.engine.check(text) {
                    Ok(_) => ok("The script is valid"),
                    Err(error) => no(None, &error),
                };
            }
            ("SETACTIVE", [script]) => match script.text() {
                Some("") => directory.activate_sieve(user, None).await,
                _ => match named(script) {
                    Ok(script) => directory.activate_sieve(user, Some(&script)).await,
                    Err(reply) => return reply,
                },
            },
            ("DELETESCRIPT", [script]) => match named(script) {
                Ok(script) => directory.delete_sieve(user, &script).await,
                Err(reply) => return reply,
            },
            ("RENAMESCRIPT", [from, to]) => match (named(from), named(to)) {
                (Ok(from), Ok(to)) => directory.rename_sieve(user, &from, &to).await,
                (Err(reply), _) | (_, Err(reply)) => return reply,
            },
            ("HAVESPACE", [script, Arg::Number(size)]) => {
                let script = match named(script) {
                    Ok(s) => s,
                    Err(reply) => return reply,
                };
                if *size > MAX_SCRIPT as u64 {
                    return no(
                        Some("QUOTA/MAXSIZE"),
                        &format!("A script may have at most {MAX_SCRIPT} octets"),
                    );
                }
                match directory.sieve_scripts(user).await {
                    Ok(scripts)
                        if scripts.len() >= MAX_SCRIPTS
                            && !scripts.iter().any(|s| s.name == script) =>
                    {
                        return no(
                            Some("QUOTA/MAXSCRIPTS"),
                            &format!("You may keep at most {MAX_SCRIPTS} scripts"),
                        );
                    }
                    Ok(_) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            _ if is_command(name) => {
                return no(None, &format!("Wrong arguments for {name}"));
            }
            _ => return no(None, "Unknown command"),
        };
        match result {
            Ok(()) => ok("Done"),
            Err(DirectoryError::NoScript(_, name)) => no(
                Some("NONEXISTENT"),
                &format!("There is no script named {name:?}"),
            ),
            Err(DirectoryError::ScriptExists(_, name)) => no(
                Some("ALREADYEXISTS"),
                &format!("A script named {name:?} already exists"),
            ),
            Err(DirectoryError::ScriptActive(_, name)) => no(
                Some("ACTIVE"),
                &format!("{name:?} is the active script: activate another one (or none) first"),
            ),
            Err(DirectoryError::TooManyScripts(_, n)) => no(
                Some("QUOTA/MAXSCRIPTS"),
                &format!("You may keep at most {n} scripts"),
            ),
            Err(error) => {
                tracing::warn!(%error, user = %user, "ManageSieve: the directory failed");
                no(
                    Some("TRYLATER"),
                    "The scripts cannot be reached now; try again later",
                )
            }
        }
    }
}

/// The commands of RFC 5804 that need a login.
fn is_command(name: &str) -> bool {
    matches!(
        name,
        "LISTSCRIPTS"
            | "GETSCRIPT"
            | "PUTSCRIPT"
            | "CHECKSCRIPT"
            | "SETACTIVE"
            | "DELETESCRIPT"
            | "RENAMESCRIPT"
            | "HAVESPACE"
    )
}

/// A client's command as the connection loop reads it.
enum Read {
    Command(Vec<Arg>),
    /// Not a command: the reply says why (the rest of it was skipped).
    Refused(Vec<u8>),
    Closed,
}

/// Reads one command: a line, and for each literal it announces its octets and the
/// line after them.
async fn read_command<R: AsyncBufRead + Unpin>(reader: &mut R) -> std::io::Result<Read> {
    let mut args = Vec::new();
    let mut line = Vec::new();
    let mut error = None;
    loop {
        line.clear();
        let mut limited = (&mut *reader).take(wire::MAX_LINE as u64 + 2);
        if limited.read_until(b'\n', &mut line).await? == 0 {
            return Ok(Read::Closed);
        }
        if line.last() != Some(&b'\n') {
            if line.len() <= wire::MAX_LINE {
                return Ok(Read::Closed);
            }
            // Too long: skip to its end, then refuse.
            skip_line(reader).await?;
            return Ok(Read::Refused(no(None, "Line too long")));
        }
        let text = line
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .unwrap_or(&line);
        match wire::parse_line(text, &mut args) {
            Ok(Line::Done) => break,
            Ok(Line::Literal(n)) if n > MAX_LITERAL || error.is_some() => {
                let copied =
                    tokio::io::copy(&mut (&mut *reader).take(n as u64), &mut tokio::io::sink())
                        .await?;
                if copied < n as u64 {
                    return Ok(Read::Closed);
                }
                error.get_or_insert_with(|| {
                    format!("A literal may have at most {MAX_LITERAL} octets")
                });
            }
            Ok(Line::Literal(n)) => {
                let mut bytes = vec![0; n];
                if reader.read_exact(&mut bytes).await.is_err() {
                    return Ok(Read::Closed);
                }
                args.push(Arg::String(bytes));
            }
            Err(e) => {
                error.get_or_insert(e);
                break;
            }
        }
    }
    Ok(match error {
        Some(error) => Read::Refused(no(None, &error)),
        None => Read::Command(args),
    })
}

async fn skip_line<R: AsyncBufRead + Unpin>(reader: &mut R) -> std::io::Result<()> {
    loop {
        let buffer = reader.fill_buf().await?;
        if buffer.is_empty() {
            return Ok(());
        }
        match buffer.iter().position(|&b| b == b'\n') {
            Some(end) => {
                reader.consume(end + 1);
                return Ok(());
            }
            None => {
                let n = buffer.len();
                reader.consume(n);
            }
        }
    }
}

/// Serves one connection until LOGOUT, a timeout or the peer leaves.
pub async fn serve_connection(
    stream: Box<dyn super::pop3::Stream>,
    mut session: Session,
    tls: Option<TlsAcceptor>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    reader.get_mut().write_all(&session.capabilities()).await?;
    let login_by = tokio::time::Instant::now()
        + Duration::from_secs(session.site.view().config().timeouts.login_total);
    loop {
        let limit = match session.username() {
            Some(_) => session.idle_limit(),
            None => session
                .idle_limit()
                .min(login_by.saturating_duration_since(tokio::time::Instant::now())),
        };
        let read = match tokio::time::timeout(limit, read_command(&mut reader)).await {
            Ok(read) => read?,
            Err(_) => {
                let _ = reader
                    .get_mut()
                    .write_all(b"BYE \"Idle too long, closing\"\r\n")
                    .await;
                return Ok(());
            }
        };
        let step = match read {
            Read::Closed => return Ok(()),
            Read::Refused(reply) => {
                session.auth_pending = false;
                Step::Reply(reply)
            }
            Read::Command(args) => session.command(args).await,
        };
        match step {
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
                // What the client sent before the handshake is dropped unread.
                let plain = reader.into_inner();
                let encrypted = super::accept::tls_handshake(&acceptor, plain).await?;
                session.tls_started();
                reader = BufReader::new(Box::new(encrypted));
                reader.get_mut().write_all(&session.capabilities()).await?;
            }
        }
    }
}

/// Accepts ManageSieve connections for one mailbox server on a bound listener until
/// `stop`; STARTTLS is offered when the server has TLS. ManageSieve clients connect
/// seldom and briefly: they share the limits of POP3 (`[limits] pop3_connections`).
pub async fn run(
    listener: tokio::net::TcpListener,
    server: super::MailboxServer,
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
            full: b"BYE \"Too many connections, try again later\"\r\n",
            source: b"BYE \"Too many connections from your address, try again later\"\r\n",
        },
        stop,
        move |stream, peer, admission| {
            let s = &server;
            let mut session = Session::new(s, peer).admitted(admission);
            let tls = s.tls.clone();
            if tls.is_some() {
                session = session.offer_tls();
            }
            serve_connection(Box::new(stream), session, tls)
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailbox::MailboxServer;
    use crate::mailbox::store::Store;

    /// The embedded site's first mailbox server, for a client at `peer`; the data
    /// directory to remove afterwards.
    async fn scratch_session(peer: &str) -> (Session, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("mailsite-sieve-{}", rand::random::<u64>()));
        let mut config = mailsite_shared::SiteConfig::embedded();
        config.data_dir = dir.clone();
        let directory = crate::directory::Directory::open(&config)
            .await
            .expect("a scratch site database");
        let store = Store::for_site(&config, &directory);
        let site = Site::load(Arc::new(config), directory)
            .await
            .expect("the scratch site");
        let server = MailboxServer {
            name: "mailbox1".into(),
            hostname: "mailbox1.example.test".into(),
            site,
            store,
            tls: None,
            sieve: Arc::default(),
        };
        (
            Session::new(&server, peer.parse().expect("a peer address")),
            dir,
        )
    }

    async fn say(session: &mut Session, line: &str) -> String {
        let mut args = Vec::new();
        assert_eq!(wire::parse_line(line.as_bytes(), &mut args), Ok(Line::Done));
        match session.command(args).await {
            Step::Reply(b) | Step::Close(b) | Step::StartTls(b) => {
                String::from_utf8(b).expect("responses are UTF-8")
            }
        }
    }

    #[tokio::test]
    async fn no_plaintext_passwords_from_other_hosts_before_tls() {
        let (session, dir) = scratch_session("192.0.2.7:40000").await;
        let mut session = session.offer_tls();
        let caps = say(&mut session, "CAPABILITY").await;
        assert!(
            caps.contains("\"STARTTLS\"\r\n") && caps.contains("\"SASL\" \"\"\r\n"),
            "{caps}"
        );
        assert!(
            say(
                &mut session,
                "AUTHENTICATE \"PLAIN\" \"AGFsaWNlAHNlY3JldA==\""
            )
            .await
            .starts_with("NO (ENCRYPT-NEEDED)")
        );
        assert!(
            say(&mut session, "LISTSCRIPTS")
                .await
                .starts_with("NO \"Log in first")
        );
        assert!(say(&mut session, "STARTTLS").await.starts_with("OK"));
        session.tls_started();
        assert!(
            say(&mut session, "CAPABILITY")
                .await
                .contains("\"SASL\" \"PLAIN\"")
        );
        std::fs::remove_dir_all(dir).ok();
    }

    async fn commands(input: &[u8]) -> Vec<String> {
        let mut reader = BufReader::new(input);
        let mut out = Vec::new();
        loop {
            match read_command(&mut reader)
                .await
                .expect("reading from memory")
            {
                Read::Closed => return out,
                Read::Refused(reply) => {
                    out.push(String::from_utf8(reply).expect("refusals are UTF-8"))
                }
                Read::Command(args) => out.push(format!("{args:?}")),
            }
        }
    }

    #[tokio::test]
    async fn literals_are_read_and_oversized_ones_skipped() {
        let big = MAX_LITERAL + 1;
        let mut input =
            b"PUTSCRIPT \"a\" {6+}\r\nkeep;\n\r\nRENAMESCRIPT {1+}\r\na {1}\r\nb\r\n".to_vec();
        input.extend_from_slice(format!("PUTSCRIPT \"b\" {{{big}+}}\r\n").as_bytes());
        input.extend_from_slice(&vec![b'x'; big]);
        input.extend_from_slice(b"\r\nNOOP\r\n");
        input.extend_from_slice(&vec![b'y'; wire::MAX_LINE + 10]);
        input.extend_from_slice(b"\r\nLOGOUT\r\n");
        let out = commands(&input).await;
        assert_eq!(
            out,
            vec![
                r#"[Atom("PUTSCRIPT"), String([97]), String([107, 101, 101, 112, 59, 10])]"#
                    .to_string(),
                r#"[Atom("RENAMESCRIPT"), String([97]), String([98])]"#.into(),
                format!("NO \"A literal may have at most {MAX_LITERAL} octets\"\r\n"),
                r#"[Atom("NOOP")]"#.into(),
                "NO \"Line too long\"\r\n".into(),
                r#"[Atom("LOGOUT")]"#.into(),
            ]
        );
        // A literal the client never finishes ends the connection.
        assert_eq!(
            commands(b"PUTSCRIPT \"a\" {100+}\r\nkeep;").await,
            Vec::<String>::new()
        );
    }
}
