//! One SMTP session (RFC 5321; submission RFC 6409, AUTH RFC 4954, CHUNKING RFC 3030,
//! STARTTLS RFC 3207), without I/O: lines in, replies out. smtp-proto parses each
//! command line; the policy is here: which recipients an unauthenticated client may
//! name (the site's users only: never an open relay), what an authenticated one may
//! send as, and the limits. The connection loop ([`super::connection`]) frames lines
//! and reads message data.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Duration;

use mailsite_shared::SmtpLimits;
use mailsite_shared::route::{Address, AddressError};
use smtp_proto::Request;

use super::incoming::Incoming;
use super::message::{self, FromProblem};
use super::queue::{self, Envelope, Recipient};
use super::{Port, Sorter, verdict};

mod own_mail;
use crate::mailbox::login::Login;
use crate::sasl::{self, Exchange, Mechanism, Refusal};

/// Replies with a 5xx code a connection may get before it is closed.
pub const MAX_ERRORS: u32 = 20;
/// Commands between two accepted messages before the connection is closed.
pub const MAX_COMMANDS: u32 = 500;
/// Failed AUTH attempts before the connection is closed.
pub const MAX_LOGIN_FAILURES: u32 = 5;

/// What the connection loop does after a line.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Reply(String),
    /// Reply, then close.
    Close(String),
    /// Reply, then start TLS (anything the client sent after STARTTLS is dropped).
    StartTls(String),
    /// Reply 354, then take the message file with [`Session::take_incoming`], write
    /// the message up to CRLF "." CRLF to it and pass it to [`Session::message`].
    Data(String),
    /// Read `size` octets of a BDAT chunk into the message file
    /// ([`Session::take_incoming`]) and pass it to [`Session::chunk`] (`keep` false:
    /// the command is refused, read and drop them).
    Bdat {
        size: usize,
        keep: bool,
    },
}

struct Transaction {
    sender: String,
    recipients: Vec<Recipient>,
    /// Chunks were sent with BDAT (RFC 3030): DATA is no longer allowed.
    bdat: bool,
    /// The message file, from DATA or the first BDAT until the message is queued.
    incoming: Option<Incoming>,
    /// The queue id and time of the message, fixed when its file is started (they are
    /// in its Received header).
    id: String,
    time: u64,
    /// DSN (RFC 3461): RET=FULL, and ENVID.
    ret_full: bool,
    envid: Option<String>,
}

struct Greeting {
    host: String,
    extended: bool,
}

/// One SMTP session.
pub struct Session {
    sorter: Sorter,
    port: Port,
    peer: SocketAddr,
    tls_offered: bool,
    tls_active: bool,
    greeting: Option<Greeting>,
    /// The user who authenticated.
    user: Option<String>,
    sasl: Option<Exchange>,
    login_failures: u32,
    errors: u32,
    commands: u32,
    transaction: Option<Transaction>,
    /// The reply a refused BDAT gets once its chunk is read.
    bdat_refusal: Option<String>,
    /// The chunk being read is the last (BDAT ... LAST).
    bdat_last: bool,
    /// The command line being answered names `<postmaster>`.
    postmaster_named: bool,
}

/// smtp-proto's NOTIFY flags as a recipient's [`queue::notify`] bits.
fn dsn_notify(flags: u64) -> u8 {
    let mut bits = 0;
    for (flag, bit) in [
        (smtp_proto::RCPT_NOTIFY_SUCCESS, queue::notify::SUCCESS),
        (smtp_proto::RCPT_NOTIFY_FAILURE, queue::notify::FAILURE),
        (smtp_proto::RCPT_NOTIFY_DELAY, queue::notify::DELAY),
        (smtp_proto::RCPT_NOTIFY_NEVER, queue::notify::NEVER),
    ] {
        if flags & flag != 0 {
            bits |= bit;
        }
    }
    bits
}

fn reply(text: &str) -> Next {
    Next::Reply(format!("{text}\r\n"))
}

/// The reply to an AUTH exchange that ended without credentials (RFC 4954 6).
fn refused(refusal: Refusal) -> Next {
    let code = match refusal {
        Refusal::Cancelled => "501 5.7.0",
        Refusal::OtherUser => "535 5.7.8",
        Refusal::NotBase64 | Refusal::NotPlain | Refusal::NotUtf8 | Refusal::TooLong => "501 5.5.2",
    };
    reply(&format!("{code} {refusal}"))
}

impl Session {
    pub fn new(sorter: Sorter, port: Port, peer: SocketAddr) -> Session {
        Session {
            sorter,
            port,
            peer,
            tls_offered: false,
            tls_active: false,
            greeting: None,
            user: None,
            sasl: None,
            login_failures: 0,
            errors: 0,
            commands: 0,
            transaction: None,
            bdat_refusal: None,
            bdat_last: false,
            postmaster_named: false,
        }
    }

    /// Offers STARTTLS on this connection.
    pub fn offer_tls(mut self) -> Session {
        self.tls_offered = true;
        self
    }

    /// TLS is on (after STARTTLS, or from the start on the submissions port): the
    /// session starts over (RFC 3207 4.2).
    pub fn tls_started(&mut self) {
        self.tls_active = true;
        self.greeting = None;
        self.user = None;
        self.sasl = None;
        self.transaction = None;
    }

    pub fn greeting(&self) -> String {
        format!("220 {} ESMTP mailsite ready\r\n", self.sorter.hostname)
    }

    fn limits(&self) -> SmtpLimits {
        self.sorter.site.view().config().smtp
    }

    /// The SIZE limit, in octets.
    pub fn max_message_size(&self) -> u64 {
        self.limits().max_message_size
    }

    /// How long the client may take to send a command line, or stay silent in a message.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.sorter.site.view().config().timeouts.smtp)
    }

    /// The reply to a client that stayed silent too long.
    pub fn timed_out(&self) -> String {
        format!(
            "421 4.4.2 {} Timeout: too long without a command, closing\r\n",
            self.sorter.hostname
        )
    }

    /// Passwords may be sent: the connection is encrypted, or comes from this host.
    fn auth_allowed(&self) -> bool {
        self.tls_active || self.peer.ip().is_loopback()
    }

    /// Answers one line from the client (without its line end).
    pub async fn line(&mut self, line: &[u8]) -> Next {
        let next = if let Some(exchange) = self.sasl.take() {
            let text = String::from_utf8_lossy(line).into_owned();
            self.sasl_step(sasl::next(exchange, &text)).await
        } else {
            self.commands += 1;
            if self.commands > MAX_COMMANDS {
                return Next::Close(
                    "421 4.7.0 Too many commands without a message, closing\r\n".into(),
                );
            }
            self.postmaster_named = line
                .windows(12)
                .any(|w| w.eq_ignore_ascii_case(b"<postmaster>"));
            let mut command = Vec::with_capacity(line.len() + 2);
            command.extend_from_slice(line);
            command.extend_from_slice(b"\r\n");
            match Request::parse(&mut command.iter()) {
                Ok(request) => self.command(request).await,
                Err(error) => Next::Reply(crate::mailbox::lmtp::parse_error(&error)),
            }
        };
        self.count_errors(next)
    }

    /// The reply to a command line longer than RFC 5321 allows.
    pub fn line_too_long(&mut self) -> Next {
        self.sasl = None;
        self.count_errors(reply("500 5.5.2 Line too long (at most 1000 octets)"))
    }

    /// Closes the connection after too many 5xx replies.
    fn count_errors(&mut self, next: Next) -> Next {
        let Next::Reply(text) = next else {
            return next;
        };
        if text.starts_with('5') {
            self.errors += 1;
            if self.errors >= MAX_ERRORS {
                return Next::Close(format!("{text}421 4.7.0 Too many errors, closing\r\n"));
            }
        }
        Next::Reply(text)
    }

    async fn command(&mut self, request: Request<Cow<'_, str>>) -> Next {
        match request {
            Request::Ehlo { host } => self.hello(&host, true),
            Request::Helo { host } => self.hello(&host, false),
            Request::Lhlo { .. } => reply("500 5.5.1 This is SMTP: greet with EHLO"),
            Request::StartTls => self.start_tls(),
            Request::Auth {
                mechanism,
                initial_response,
            } => self.auth(mechanism, &initial_response).await,
            Request::Mail { from } => self.mail(&from),
            Request::Rcpt { to } => self.rcpt(&to),
            Request::Data => self.data().await,
            Request::Bdat {
                chunk_size,
                is_last,
            } => self.bdat(chunk_size, is_last).await,
            Request::Rset => {
                self.transaction = None;
                reply("250 2.0.0 Reset")
            }
            Request::Noop { .. } => reply("250 2.0.0 Ok"),
            Request::Quit => Next::Close(format!("221 2.0.0 {} closing\r\n", self.sorter.hostname)),
            Request::Vrfy { .. } => {
                reply("252 2.5.0 Cannot verify the user, but will take mail for it")
            }
            Request::Help { .. } => reply("214 2.0.0 See RFC 5321; mailsite is a mail sorter"),
            Request::Expn { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => reply("502 5.5.1 Command not implemented"),
        }
    }

    fn hello(&mut self, host: &str, extended: bool) -> Next {
        self.transaction = None;
        let host = message::printable(host, 255);
        let text = if extended {
            let mut lines = vec![
                format!("{} greets {host}", self.sorter.hostname),
                "PIPELINING".to_string(),
                format!("SIZE {}", self.limits().max_message_size),
                "8BITMIME".into(),
                "ENHANCEDSTATUSCODES".into(),
                "SMTPUTF8".into(),
                "CHUNKING".into(),
                "DSN".into(),
            ];
            if self.tls_offered && !self.tls_active {
                lines.push("STARTTLS".into());
            }
            if self.auth_allowed() {
                lines.push("AUTH PLAIN LOGIN".into());
            }
            let last = lines.len() - 1;
            lines
                .iter()
                .enumerate()
                .map(|(i, l)| format!("250{}{l}\r\n", if i == last { ' ' } else { '-' }))
                .collect()
        } else {
            format!("250 {} greets {host}\r\n", self.sorter.hostname)
        };
        self.greeting = Some(Greeting { host, extended });
        Next::Reply(text)
    }

    fn start_tls(&mut self) -> Next {
        if self.tls_active {
            reply("503 5.5.1 TLS is already active")
        } else if !self.tls_offered {
            reply("454 4.7.0 TLS is not available here")
        } else {
            Next::StartTls("220 2.0.0 Ready to start TLS\r\n".into())
        }
    }

    async fn auth(&mut self, mechanism: u64, initial: &str) -> Next {
        if self.greeting.is_none() {
            return reply("503 5.5.1 Send EHLO first");
        }
        if self.user.is_some() {
            return reply("503 5.5.1 Already authenticated");
        }
        if self.transaction.is_some() {
            return reply("503 5.5.1 AUTH is not allowed during a mail transaction");
        }
        if !self.auth_allowed() {
            return reply("538 5.7.11 Encryption required: use STARTTLS first, or port 465");
        }
        let mechanism = match mechanism {
            smtp_proto::AUTH_PLAIN => Mechanism::Plain,
            smtp_proto::AUTH_LOGIN => Mechanism::Login,
            _ => return reply("504 5.5.4 Unsupported mechanism: use PLAIN or LOGIN"),
        };
        let initial = Some(initial).filter(|i| !i.is_empty());
        self.sasl_step(sasl::start(mechanism, initial)).await
    }

    async fn sasl_step(&mut self, step: sasl::Step) -> Next {
        let credentials = match step {
            sasl::Step::Prompt(exchange) => {
                let prompt = format!("334 {}\r\n", exchange.challenge());
                self.sasl = Some(exchange);
                return Next::Reply(prompt);
            }
            sasl::Step::Refused(refusal) => return refused(refusal),
            sasl::Step::Credentials(credentials) => credentials,
        };
        // Any server name: a sorter serves every user, so Elsewhere is a success too.
        let login = crate::mailbox::login::check(
            &self.sorter.site,
            "",
            self.peer.ip(),
            crate::throttle::Protocol::Smtp,
            &credentials.user,
            &credentials.password,
            &mut self.login_failures,
        )
        .await;
        match login {
            Login::Accepted { username } | Login::Elsewhere { username, .. } => {
                tracing::info!(sorter = %self.sorter.name, user = %username, peer = %self.peer, "authenticated");
                self.user = Some(username);
                reply("235 2.7.0 Authentication successful")
            }
            Login::Refused if self.login_failures >= MAX_LOGIN_FAILURES => {
                Next::Close("535 5.7.8 Authentication credentials invalid; closing\r\n".into())
            }
            Login::Refused => reply("535 5.7.8 Authentication credentials invalid"),
            Login::Expired { label, at } => reply(&format!(
                "535 5.7.8 {}",
                crate::mailbox::login::expired_text(&label, at)
            )),
            // As Postfix's anvil and postscreen do: a temporary refusal, then close.
            Login::Blocked { until } => Next::Close(format!(
                "421 4.7.0 {}; closing\r\n",
                crate::mailbox::login::blocked_text(until)
            )),
        }
    }

    /// Whether `address` is one of the authenticated user's own addresses.
    fn owns(&self, user: &str, address: &str) -> bool {
        let config = &self.sorter.site.view().map.config;
        Address::parse(address).is_ok_and(|a| a.local == user && config.serves_domain(&a.domain))
    }

    fn mail(&mut self, from: &smtp_proto::MailFrom<Cow<'_, str>>) -> Next {
        if self.greeting.is_none() {
            return reply("503 5.5.1 Send EHLO or HELO first");
        }
        if self.transaction.is_some() {
            return reply("503 5.5.1 Nested MAIL command");
        }
        if self.port.requires_auth() && self.user.is_none() {
            return reply("530 5.7.0 Authentication required");
        }
        let limit = self.limits().max_message_size;
        if from.size as u64 > limit {
            return Next::Reply(format!(
                "552 5.3.4 Message size exceeds the limit of {limit} octets\r\n"
            ));
        }
        let sender = from.address.as_ref();
        match &self.user {
            Some(user) if !self.owns(user, sender) => {
                return Next::Reply(format!(
                    "553 5.7.1 <{}>: sender address not owned by {user}\r\n",
                    message::printable(sender, 256)
                ));
            }
            _ => {}
        }
        // Kept as given (a remote local part may be case-sensitive), once checked.
        if let (false, Err(e)) = (sender.is_empty(), Address::parse(sender)) {
            return Next::Reply(format!("501 5.1.7 Bad sender address: {e}\r\n"));
        }
        let sender = sender.trim().to_string();
        // RFC 3461 4.4: ENVID is at most 100 characters of printable ASCII (smtp-proto
        // has decoded its xtext).
        let envid = from.env_id.as_deref().map(str::to_string);
        if envid
            .as_deref()
            .is_some_and(|e| e.len() > 100 || !e.bytes().all(|b| b.is_ascii_graphic() || b == b' '))
        {
            return reply("501 5.5.4 ENVID must be at most 100 printable characters");
        }
        self.transaction = Some(Transaction {
            sender,
            recipients: Vec::new(),
            bdat: false,
            incoming: None,
            id: String::new(),
            time: 0,
            ret_full: from.flags & smtp_proto::MAIL_RET_FULL != 0,
            envid,
        });
        reply("250 2.1.0 Sender ok")
    }

    fn rcpt(&mut self, to: &smtp_proto::RcptTo<Cow<'_, str>>) -> Next {
        let address = to.address.as_ref();
        let limit = self.limits().max_recipients;
        // RFC 3461 4.1: NEVER stands alone.
        let notify = dsn_notify(to.flags);
        if notify & queue::notify::NEVER != 0 && notify != queue::notify::NEVER {
            return reply("501 5.5.4 NOTIFY=NEVER cannot be combined with other values");
        }
        if to
            .orcpt
            .as_deref()
            .is_some_and(|o| o.len() > 500 || !o.bytes().all(|b| b.is_ascii_graphic() || b == b' '))
        {
            return reply("501 5.5.4 ORCPT must be printable and at most 500 characters");
        }
        let Some(transaction) = &mut self.transaction else {
            return reply("503 5.5.1 Send MAIL first");
        };
        let view = self.sorter.site.view();
        let config = view.config();
        // May relay: an authenticated user, or one of the site's mailbox servers
        // sending what its users' Sieve scripts send (auto-replies with the null
        // sender, redirects from the user's own address), see mailbox::outbound.
        let authenticated = self.user.is_some()
            || (config.is_mailbox_server(self.peer.ip())
                && (transaction.sender.is_empty()
                    || Address::parse(&transaction.sender)
                        .is_ok_and(|a| config.serves_domain(&a.domain))));
        // RFC 5321 4.5.1: <Postmaster> (which smtp-proto reads as an empty address)
        // and postmaster@ each of the site's domains go to the configured mailbox.
        let postmaster = match address {
            "" => self.postmaster_named,
            _ => Address::parse(address).is_ok_and(|a| {
                a.local.eq_ignore_ascii_case("postmaster") && config.serves_domain(&a.domain)
            }),
        };
        if address.is_empty() && !postmaster {
            return reply("501 5.1.3 Bad recipient address syntax");
        }
        let address = if postmaster {
            format!("{}@{}", config.postmaster, config.domain)
        } else {
            address.to_string()
        };
        let shown = message::printable(&address, 256);
        let (address, remote) = match view.map.route(&address) {
            Ok(route) => match view.users.get(&route.username) {
                Some(user) if user.enabled => (route.address, false),
                Some(_) => {
                    return Next::Reply(format!(
                        "550 5.2.1 <{shown}>: this mailbox is disabled\r\n"
                    ));
                }
                // Mail for postmaster must be taken (RFC 5321 4.5.1): later, once the
                // operator has made the mailbox.
                None if postmaster => {
                    tracing::warn!(sorter = %self.sorter.name, user = %config.postmaster, "mail for postmaster, but the postmaster user (site.postmaster) does not exist");
                    return reply(
                        "451 4.3.0 The postmaster's mailbox is not set up; try again later",
                    );
                }
                None => {
                    return Next::Reply(format!("550 5.1.1 <{shown}>: no such user here\r\n"));
                }
            },
            // Kept as given: a remote local part may be case-sensitive (RFC 5321 2.4).
            Err(AddressError::ForeignDomain(_)) if authenticated => {
                (address.trim().to_string(), true)
            }
            Err(AddressError::ForeignDomain(domain)) => {
                return Next::Reply(format!(
                    "554 5.7.1 <{shown}>: relay access denied: {} is not a domain of this site; authenticate to send elsewhere\r\n",
                    message::printable(&domain, 255)
                ));
            }
            Err(e) => return Next::Reply(format!("501 5.1.3 <{shown}>: {e}\r\n")),
        };
        if !transaction.recipients.iter().any(|r| r.address == address) {
            if transaction.recipients.len() >= limit {
                return reply("452 4.5.3 Too many recipients");
            }
            let mut recipient = Recipient::new(address, remote, queue::now());
            recipient.notify = notify;
            recipient.orcpt = to.orcpt.as_deref().map(str::to_string);
            transaction.recipients.push(recipient);
        }
        reply("250 2.1.5 Recipient ok")
    }

    async fn data(&mut self) -> Next {
        match &self.transaction {
            None => reply("503 5.5.1 Send MAIL first"),
            Some(t) if t.bdat => reply("503 5.5.1 DATA after BDAT: finish with BDAT LAST"),
            Some(t) if t.recipients.is_empty() => reply("554 5.5.1 No valid recipients"),
            Some(_) => match self.start_message().await {
                Ok(()) => Next::Data("354 Go ahead, end with <CRLF>.<CRLF>\r\n".into()),
                Err(error) => {
                    tracing::error!(sorter = %self.sorter.name, %error, "cannot start a message file");
                    reply("451 4.3.0 The message cannot be received now; try again later")
                }
            },
        }
    }

    /// Starts the message file of the transaction, with the Received header (RFC 5321
    /// 4.4) at its top.
    async fn start_message(&mut self) -> std::io::Result<()> {
        let id = self.sorter.queue.new_id();
        let now = queue::now();
        let limit = self.max_message_size();
        let Some(transaction) = &self.transaction else {
            return Err(std::io::Error::other("no transaction"));
        };
        let (helo, extended) = self
            .greeting
            .as_ref()
            .map_or(("unknown", false), |g| (g.host.as_str(), g.extended));
        // RFC 3848 protocol names.
        let protocol = match (extended, self.tls_active, self.user.is_some()) {
            (false, _, _) => "SMTP",
            (true, false, false) => "ESMTP",
            (true, true, false) => "ESMTPS",
            (true, false, true) => "ESMTPA",
            (true, true, true) => "ESMTPSA",
        };
        let single = match &transaction.recipients[..] {
            [only] => Some(only.address.as_str()),
            _ => None,
        };
        let trace = message::received(&message::Trace {
            helo,
            ip: self.peer.ip(),
            hostname: &self.sorter.hostname,
            protocol,
            id: &id,
            recipient: single,
            time: now,
        });
        let incoming =
            Incoming::create(&self.sorter.queue.dir, &id, trace.as_bytes(), limit).await?;
        if let Some(t) = &mut self.transaction {
            t.incoming = Some(incoming);
            t.id = id;
            t.time = now;
        }
        Ok(())
    }

    /// The message file to write DATA or a BDAT chunk to, taken from the transaction
    /// (given back with [`Session::message`] or [`Session::chunk`]).
    pub fn take_incoming(&mut self) -> Option<Incoming> {
        self.transaction.as_mut()?.incoming.take()
    }

    async fn bdat(&mut self, size: usize, last: bool) -> Next {
        let limit = self.limits().max_message_size;
        let refusal = match &self.transaction {
            None => Some("503 5.5.1 Send MAIL first\r\n"),
            Some(t) if t.recipients.is_empty() => Some("554 5.5.1 No valid recipients\r\n"),
            Some(t) => {
                let so_far = t.incoming.as_ref().map_or(0, Incoming::received);
                if so_far + size as u64 > limit {
                    // The chunk is not read: the connection cannot go on.
                    return Next::Close(format!(
                        "552 5.3.4 Message size exceeds the limit of {limit} octets; closing\r\n"
                    ));
                }
                None
            }
        };
        if let Some(text) = refusal {
            if size as u64 > limit {
                return Next::Close(format!("{}; closing\r\n", text.trim_end()));
            }
            self.bdat_refusal = Some(text.to_string());
            return Next::Bdat { size, keep: false };
        }
        let started = self.transaction.as_ref().is_some_and(|t| t.bdat);
        if !started {
            if let Err(error) = self.start_message().await {
                tracing::error!(sorter = %self.sorter.name, %error, "cannot start a message file");
                self.bdat_refusal = Some(
                    "451 4.3.0 The message cannot be received now; try again later\r\n".into(),
                );
                self.transaction = None;
                return Next::Bdat { size, keep: false };
            }
            if let Some(t) = &mut self.transaction {
                t.bdat = true;
            }
        }
        self.bdat_last = last;
        Next::Bdat { size, keep: true }
    }

    /// Takes back the message file after a BDAT chunk was written to it (`None`: the
    /// chunk was refused and dropped).
    pub async fn chunk(&mut self, incoming: Option<Incoming>, size: usize) -> Next {
        let next = match (self.bdat_refusal.take(), incoming, &mut self.transaction) {
            (Some(text), _, _) => Next::Reply(text),
            (None, Some(incoming), Some(_)) if self.bdat_last => {
                return self.message(incoming).await;
            }
            (None, Some(incoming), Some(t)) => {
                t.incoming = Some(incoming);
                Next::Reply(format!("250 2.0.0 {size} octets received\r\n"))
            }
            _ => reply("503 5.5.1 Send MAIL first"),
        };
        self.count_errors(next)
    }

    /// Takes a whole message (DATA or the last BDAT chunk) in its file: checks it and
    /// queues it durably; 250 only once it is on disk, 552 if it went over the limit
    /// (it was read to its end and dropped).
    pub async fn message(&mut self, mut incoming: Incoming) -> Next {
        let Some(transaction) = self.transaction.take() else {
            return self.count_errors(reply("503 5.5.1 Send MAIL first"));
        };
        if incoming.too_large() {
            let limit = self.limits().max_message_size;
            return self.count_errors(Next::Reply(format!(
                "552 5.3.4 Message size exceeds the limit of {limit} octets\r\n"
            )));
        }
        if let Some(error) = incoming.take_failure() {
            tracing::error!(sorter = %self.sorter.name, %error, "cannot write a message to the spool");
            return reply("451 4.3.0 The message cannot be queued now; try again later");
        }
        let next = self.queue_message(transaction, incoming).await;
        self.count_errors(next)
    }

    async fn queue_message(&mut self, transaction: Transaction, mut incoming: Incoming) -> Next {
        let head = match incoming.head().await {
            Ok(head) => head,
            Err(error) => {
                tracing::error!(sorter = %self.sorter.name, %error, "cannot read a message back from the spool");
                return reply("451 4.3.0 The message cannot be queued now; try again later");
            }
        };
        let header = message::header_section(&head);
        if message::hops(header) > message::MAX_HOPS {
            return reply("554 5.4.6 Too many Received headers: is there a mail loop?");
        }
        if let Some(user) = &self.user {
            let problem = match message::check_from(header, |a| self.owns(user, a)) {
                Ok(()) => None,
                Err(FromProblem::Missing) => Some("the message has no From: header".to_string()),
                Err(FromProblem::Several) => {
                    Some("the message has more than one From: header".into())
                }
                Err(FromProblem::NotYours(a)) => {
                    Some(format!("From: <{a}> is not an address of {user}"))
                }
            };
            if let Some(problem) = problem {
                return Next::Reply(format!("550 5.7.1 {problem}\r\n"));
            }
        }
        let (id, now) = (transaction.id.clone(), transaction.time);
        let mut added = match &self.user {
            Some(_) => message::missing_headers(header, &self.sorter.hostname, &id, now),
            None => String::new(),
        };
        let signer = self.signing_domain(header);
        let inbound = !self.own_mail() && self.port == Port::Mx;
        drop(head);
        // Mail from other domains: checked, and queued with the verdict on top (and
        // without forged verdicts), rewritten whole.
        let mut rewritten = None;
        if let (true, Some(verifier)) = (inbound, self.sorter.verifier.clone()) {
            let (whole, prefix) = match incoming.contents().await {
                Ok(read) => read,
                Err(error) => {
                    tracing::error!(sorter = %self.sorter.name, %error, "cannot read a message back from the spool to check it");
                    return reply("451 4.3.0 The message cannot be queued now; try again later");
                }
            };
            let (trace, message) = whole.split_at(prefix.min(whole.len()));
            let helo = self
                .greeting
                .as_ref()
                .map_or("", |g| g.host.as_str())
                .to_string();
            let envelope = verdict::Envelope {
                ip: self.peer.ip(),
                helo: &helo,
                sender: &transaction.sender,
            };
            let found = verifier.check(&envelope, message).await;
            self.sorter.site.metrics.verdict(found.action.label());
            if let verdict::Action::Refuse(text) = found.action {
                tracing::info!(sorter = %self.sorter.name, from = %transaction.sender, peer = %self.peer, verdict = %found.header.trim_end(), "refused after DMARC");
                return Next::Reply(text);
            }
            let message = verdict::without_forged_results(message, verifier.authserv_id())
                .map_or(Cow::Borrowed(message), Cow::Owned);
            let mut bytes = Vec::with_capacity(whole.len() + found.header.len());
            bytes.extend_from_slice(trace);
            bytes.extend_from_slice(found.header.as_bytes());
            bytes.extend_from_slice(&message);
            rewritten = Some(bytes);
        }
        if let Some(domain) = signer {
            match self.signatures(&domain, &mut incoming, &added, now).await {
                Ok(signatures) => added.insert_str(0, &signatures),
                Err(error) => {
                    tracing::error!(sorter = %self.sorter.name, %error, "cannot read a message back from the spool to sign it");
                    return reply("451 4.3.0 The message cannot be queued now; try again later");
                }
            }
        }
        let helo = self
            .greeting
            .as_ref()
            .map_or("unknown", |g| g.host.as_str());
        let envelope = Envelope {
            id: id.clone(),
            sender: transaction.sender,
            received: now,
            authenticated: self.user.clone(),
            client: format!("{helo} [{}]", self.peer.ip()),
            size: incoming.size() + added.len() as u64,
            ret_full: transaction.ret_full,
            envid: transaction.envid,
            recipients: transaction.recipients,
        };
        let (sender, count) = (envelope.sender.clone(), envelope.recipients.len());
        let queued = match rewritten {
            Some(bytes) => {
                // The spool file as it came is dropped with `incoming`.
                drop(incoming);
                let envelope = Envelope {
                    size: bytes.len() as u64,
                    ..envelope
                };
                self.sorter.queue.accept(envelope, bytes).await
            }
            None => {
                self.sorter
                    .queue
                    .accept_incoming(envelope, incoming, added.into_bytes())
                    .await
            }
        };
        match queued {
            Ok(()) => {
                self.commands = 0;
                self.sorter.site.metrics.accepted();
                tracing::info!(sorter = %self.sorter.name, %id, from = %sender, recipients = count, peer = %self.peer, "queued");
                Next::Reply(format!("250 2.0.0 Ok: queued as {id}\r\n"))
            }
            Err(error) => {
                tracing::error!(sorter = %self.sorter.name, %error, "cannot queue a message");
                reply("451 4.3.0 The message cannot be queued now; try again later")
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::state::Site;

    /// A sorter over a scratch site (database, spool) with the user alice, whose
    /// password is `alice-password`; the scratch folder is returned to be removed.
    pub(crate) async fn scratch_sorter() -> (Sorter, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("mailsite-smtp-{}", rand::random::<u64>()));
        let mut config = mailsite_shared::SiteConfig::embedded();
        config.data_dir = dir.clone();
        let directory = crate::directory::Directory::open(&config).await.unwrap();
        directory
            .add_user("alice", "alice-password", "Alice", Default::default())
            .await
            .unwrap();
        let site = Site::load(Arc::new(config), directory).await.unwrap();
        let queue = queue::Queue::open(dir.join("queue/sorter1"), Default::default()).unwrap();
        let sorter = Sorter {
            name: "sorter1".into(),
            hostname: "sorter1.example.test".into(),
            site,
            queue: Arc::new(queue),
            tls: None,
            relay: Arc::new(
                crate::sorter::relay::Relay::new(&mailsite_shared::RelaySettings {
                    resolver: Some("127.0.0.1:9".parse().unwrap()),
                    ..Default::default()
                })
                .unwrap(),
            ),
            dkim: Arc::new(crate::dkim::Signer::new(
                &mailsite_shared::SiteConfig::embedded(),
            )),
            verifier: None,
        };
        (sorter, dir)
    }

    #[test]
    fn sasl_refusals_are_smtp_replies() {
        for (refusal, expected) in [
            (Refusal::Cancelled, "501 5.7.0 Authentication cancelled"),
            (Refusal::NotBase64, "501 5.5.2 The response is not base64"),
            (
                Refusal::NotPlain,
                "501 5.5.2 The response is not authzid NUL user NUL password",
            ),
            (
                Refusal::NotUtf8,
                "501 5.5.2 The user name or password is not UTF-8",
            ),
            (
                Refusal::OtherUser,
                "535 5.7.8 Logging in as another user is not allowed",
            ),
        ] {
            assert_eq!(refused(refusal), Next::Reply(format!("{expected}\r\n")));
        }
    }

    async fn say(session: &mut Session, line: &str) -> String {
        match session.line(line.as_bytes()).await {
            Next::Reply(text) | Next::Close(text) | Next::StartTls(text) | Next::Data(text) => text,
            Next::Bdat { .. } => "BDAT".into(),
        }
    }

    #[tokio::test]
    async fn passwords_only_after_tls_except_from_loopback() {
        let (sorter, dir) = scratch_sorter().await;
        let remote: SocketAddr = "192.0.2.7:40000".parse().unwrap();
        let mut session = Session::new(sorter.clone(), Port::Submission, remote).offer_tls();
        let ehlo = say(&mut session, "EHLO client").await;
        assert!(
            ehlo.contains("STARTTLS") && !ehlo.contains("AUTH"),
            "{ehlo}"
        );
        let auth = say(&mut session, "AUTH PLAIN AGFsaWNlAGFsaWNlLXBhc3N3b3Jk").await;
        assert!(auth.starts_with("538 5.7.11"), "{auth}");
        assert!(
            say(&mut session, "MAIL FROM:<alice@example.test>")
                .await
                .starts_with("530 5.7.0")
        );
        assert!(matches!(session.line(b"STARTTLS").await, Next::StartTls(_)));
        session.tls_started();
        assert!(
            say(&mut session, "MAIL FROM:<a@b.example>")
                .await
                .starts_with("503"),
            "EHLO again after TLS"
        );
        let ehlo = say(&mut session, "EHLO client").await;
        assert!(
            !ehlo.contains("STARTTLS") && ehlo.contains("AUTH PLAIN LOGIN"),
            "{ehlo}"
        );
        // AUTH LOGIN, step by step.
        assert_eq!(
            say(&mut session, "AUTH LOGIN").await,
            "334 VXNlcm5hbWU6\r\n"
        );
        assert_eq!(say(&mut session, "YWxpY2U=").await, "334 UGFzc3dvcmQ6\r\n");
        let ok = say(&mut session, "YWxpY2UtcGFzc3dvcmQ=").await;
        assert!(ok.starts_with("235 2.7.0"), "{ok}");
        assert!(
            say(&mut session, "AUTH PLAIN")
                .await
                .starts_with("503 5.5.1")
        );
        let forged = say(&mut session, "MAIL FROM:<bob@example.test>").await;
        assert!(forged.starts_with("553 5.7.1"), "{forged}");
        assert!(
            say(&mut session, "MAIL FROM:<Alice@Example.Test> SIZE=100")
                .await
                .starts_with("250")
        );
        // Authenticated: a remote recipient is accepted (relayed later).
        assert!(
            say(&mut session, "RCPT TO:<friend@example.org>")
                .await
                .starts_with("250 2.1.5")
        );

        // Loopback clients may log in without TLS.
        let local: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let mut session = Session::new(sorter, Port::Mx, local);
        assert!(
            say(&mut session, "EHLO c")
                .await
                .contains("AUTH PLAIN LOGIN")
        );
        let wrong = say(&mut session, "AUTH PLAIN AGFsaWNlAHdyb25n").await;
        assert!(wrong.starts_with("535 5.7.8"), "{wrong}");
        std::fs::remove_dir_all(dir).ok();
    }

    /// What users' Sieve scripts send leaves from the mailbox servers: they may relay
    /// auto-replies (null sender) and the site's own addresses, nothing else, and
    /// nobody else may relay unauthenticated.
    #[tokio::test]
    async fn mailbox_servers_relay_only_auto_replies_and_the_sites_addresses() {
        let (sorter, dir) = scratch_sorter().await;
        let mailbox: SocketAddr = "127.0.0.11:40000".parse().expect("an address");
        let stranger: SocketAddr = "127.0.0.99:40000".parse().expect("an address");
        for (peer, sender, expected) in [
            (mailbox, "", "250 2.1.5"),
            (mailbox, "alice@example.test", "250 2.1.5"),
            (mailbox, "someone@example.org", "554 5.7.1"),
            (stranger, "", "554 5.7.1"),
            (stranger, "alice@example.test", "554 5.7.1"),
        ] {
            let mut session = Session::new(sorter.clone(), Port::Mx, peer);
            say(&mut session, "EHLO mailbox1.example.test").await;
            let mail = say(&mut session, &format!("MAIL FROM:<{sender}>")).await;
            assert!(mail.starts_with("250"), "{mail}");
            let rcpt = say(&mut session, "RCPT TO:<friend@example.org>").await;
            assert!(rcpt.starts_with(expected), "{peer} {sender:?}: {rcpt}");
        }
        std::fs::remove_dir_all(dir).ok();
    }
}
