//! Sieve (RFC 5228) at final delivery: a user's active script decides where a message
//! arriving over LMTP goes (fileinto, keep, discard, reject), which flags it gets
//! (imap4flags), and whether an auto-reply (vacation, RFC 5230) or a redirect leaves.
//! Scripts are compiled and run by the `sieve-rs` interpreter; this module checks
//! scripts before they are stored, keeps compiled ones, answers the interpreter's
//! questions (does a mailbox exist, was this sender answered already) and turns its
//! actions into an [`Outcome`] that the LMTP session carries out.
//!
//! A script that fails while running (too many instructions, an error of its own)
//! changes nothing: the message is kept in INBOX, as RFC 5228 2.10.6 asks, and the
//! failure is logged. What a run wants to remember (a vacation reply sent) is recorded
//! only once the message is stored.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sieve::compiler::grammar::Capability;
use sieve::runtime::RuntimeError;
use sieve::{Compiler, Envelope, Event, Input, Mailbox, Recipient, Runtime, Sieve};

use super::store::Store;
use crate::directory::Directory;

/// The largest script accepted, in octets (ManageSieve's HAVESPACE answers by it).
pub const MAX_SCRIPT: usize = 64 * 1024;
/// The most messages one delivery's script may send (vacation replies, redirects).
pub const MAX_SENT: usize = 3;
/// How long a vacation reply to a sender holds without `:days` (RFC 5230 4.1: 7 days).
pub const VACATION_DAYS: u64 = 7;

/// The extensions scripts may require: what this server carries out. Everything else
/// the interpreter knows (notifications, editheader, spam tests, ...) is refused when
/// the script is stored, so that no script depends on an action that would not happen.
const ALLOWED: &[&str] = &[
    "fileinto",
    "reject",
    "ereject",
    "envelope",
    "encoded-character",
    "imap4flags",
    "vacation",
    "vacation-seconds",
    "body",
    "variables",
    "relational",
    "comparator-i;ascii-numeric",
    "comparator-i;octet",
    "comparator-i;ascii-casemap",
    "subaddress",
    "copy",
    "include",
    "mailbox",
    "date",
    "index",
    "regex",
    "duplicate",
    "ihave",
];

/// Whether `name` can name a script (RFC 5804 1.6): 1 to 128 characters, none of
/// them a control character, and no `/` (it would read as a path in other tools).
pub fn valid_name(name: &str) -> bool {
    let count = name.chars().count();
    (1..=128).contains(&count) && !name.chars().any(|c| c.is_control() || c == '/')
}

/// The extensions as ManageSieve's SIEVE capability lists them.
pub fn extensions() -> String {
    ALLOWED.join(" ")
}

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filing {
    pub mailbox: String,
    pub flags: Vec<String>,
    /// `fileinto :create` (RFC 5490): make the mailbox if it does not exist.
    pub create: bool,
}

/// A message a script sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The envelope sender: empty for an auto-reply (RFC 3834 3.3), the user's
    /// address for a redirect (so that its bounces reach the user).
    pub sender: String,
    pub recipient: String,
    pub message: Vec<u8>,
}

/// What a delivery's script decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Copies to store (none: discarded, or rejected).
    pub filings: Vec<Filing>,
    /// `reject`/`ereject` (RFC 5429): refuse the message with this reason.
    pub reject: Option<String>,
    pub outgoing: Vec<Outgoing>,
    /// Ids to remember once the message is stored, each for some seconds.
    pub remember: Vec<(String, u64)>,
    /// The script failed: the message is kept in INBOX.
    pub failed: Option<String>,
    /// A script ran (the user has an active one).
    pub ran: bool,
}

impl Outcome {
    /// No script, or a failed one: INBOX, no flags.
    pub fn keep() -> Outcome {
        Outcome {
            filings: vec![Filing {
                mailbox: "INBOX".into(),
                flags: Vec::new(),
                create: false,
            }],
            ..Outcome::default()
        }
    }
}

/// The delivery a script runs for.
pub struct Delivery<'a> {
    pub username: &'a str,
    /// The recipient address the sorter gave (the user's address).
    pub recipient: &'a str,
    /// The envelope sender (empty for a bounce).
    pub sender: &'a str,
    pub display_name: &'a str,
    pub message: &'a [u8],
}

/// Compiles, checks and runs scripts; one per process, shared by every session.
pub struct Engine {
    compiler: Compiler,
    runtime: Runtime,
    /// Compiled active scripts by user, with the time they last changed.
    cache: Mutex<HashMap<String, (i64, Arc<Sieve>)>>,
}

impl Default for Engine {
    fn default() -> Engine {
        Engine::new("localhost")
    }
}

impl Engine {
    /// An engine whose replies name `hostname` (the mailbox server's).
    pub fn new(hostname: &str) -> Engine {
        let mut runtime = Runtime::new()
            .with_max_out_messages(MAX_SENT)
            .with_max_redirects(MAX_SENT)
            .with_default_vacation_expiry(VACATION_DAYS * 86_400)
            .with_vacation_default_subject("Automatic reply")
            .with_local_hostname(hostname.to_string());
        for capability in Capability::all() {
            if !ALLOWED.contains(&capability.to_string().as_str()) {
                runtime.unset_capability(capability.clone());
            }
        }
        Engine {
            compiler: Compiler::new()
                .with_max_script_size(MAX_SCRIPT)
                .with_max_includes(3),
            runtime,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Checks a script before it is stored: UTF-8 (RFC 5228 2.1), within the size
    /// limit, valid Sieve, and requiring only extensions this server carries out.
    /// The error says what is wrong and on which line.
    pub fn check(&self, text: &[u8]) -> Result<Arc<Sieve>, String> {
        if text.len() > MAX_SCRIPT {
            return Err(format!(
                "the script has {} octets; at most {MAX_SCRIPT} are accepted",
                text.len()
            ));
        }
        if std::str::from_utf8(text).is_err() {
            return Err("a Sieve script must be UTF-8 text".into());
        }
        let script = Arc::new(self.compiler.compile(text).map_err(|e| e.to_string())?);
        // `require` runs first: a dry run on an empty message stops at the first
        // action, or fails on an extension this server does not allow.
        let mut context = self.runtime.filter(b"");
        let mut input = Input::script("check", script.clone());
        for _ in 0..64 {
            match context.run(input) {
                None => break,
                Some(Err(RuntimeError::CapabilityNotAllowed(c))) => {
                    return Err(format!(
                        "the extension \"{c}\" is not available here; available: {}",
                        extensions()
                    ));
                }
                Some(Err(RuntimeError::CapabilityNotSupported(c))) => {
                    return Err(format!("the extension \"{c}\" is not known"));
                }
                Some(Err(_)) => break,
                Some(Ok(Event::IncludeScript { .. })) => break,
                Some(Ok(_)) => input = Input::False,
            }
        }
        Ok(script)
    }

    /// The compiled active script of a user, from the cache while it has not changed.
    async fn active(
        &self,
        directory: &Directory,
        username: &str,
    ) -> Result<Option<Arc<Sieve>>, String> {
        let Some(active) = directory
            .active_sieve(username)
            .await
            .map_err(|e| e.to_string())?
        else {
            self.lock().remove(username);
            return Ok(None);
        };
        if let Some((at, script)) = self.lock().get(username)
            && *at == active.updated_at
        {
            return Ok(Some(script.clone()));
        }
        let script = self
            .compiler
            .compile(active.text.as_bytes())
            .map(Arc::new)
            .map_err(|e| format!("the active script {:?} does not compile: {e}", active.name))?;
        self.lock()
            .insert(username.to_string(), (active.updated_at, script.clone()));
        Ok(Some(script))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (i64, Arc<Sieve>)>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs the user's active script over a message being delivered. Without an
    /// active script, or when it fails, the message is kept in INBOX.
    pub async fn filter(
        &self,
        directory: &Directory,
        store: &Store,
        delivery: &Delivery<'_>,
    ) -> Outcome {
        let script = match self.active(directory, delivery.username).await {
            Ok(Some(script)) => script,
            Ok(None) => return Outcome::keep(),
            Err(error) => return failed(delivery, error),
        };
        match self.run(directory, store, delivery, script).await {
            Ok(outcome) => outcome,
            Err(error) => failed(delivery, error),
        }
    }

    async fn run(
        &self,
        directory: &Directory,
        store: &Store,
        delivery: &Delivery<'_>,
        script: Arc<Sieve>,
    ) -> Result<Outcome, String> {
        let mut context = self
            .runtime
            .filter(delivery.message)
            .with_envelope(Envelope::From, delivery.sender)
            .with_envelope(Envelope::To, delivery.recipient)
            .with_user_address(delivery.recipient)
            .with_user_full_name(delivery.display_name);
        let mut outcome = Outcome {
            ran: true,
            ..Outcome::default()
        };
        // Messages the script made (vacation replies), by their id (from 1).
        let mut created: Vec<Vec<u8>> = Vec::new();
        let mut input = Input::script("active", script);
        while let Some(event) = context.run(input) {
            input = Input::True;
            match event.map_err(|e| format!("{e:?}"))? {
                Event::IncludeScript { name, optional } => {
                    match directory
                        .sieve_script(delivery.username, name.as_str())
                        .await
                    {
                        Ok(text) => {
                            let included = self
                                .compiler
                                .compile(text.as_bytes())
                                .map_err(|e| format!("included script {name}: {e}"))?;
                            input = Input::script(name, included);
                        }
                        Err(_) if optional => input = Input::False,
                        Err(_) => return Err(format!("included script {name} does not exist")),
                    }
                }
                Event::MailboxExists { mailboxes, .. } => {
                    let mut all = true;
                    for mailbox in mailboxes {
                        let exists = match mailbox {
                            Mailbox::Name(name) => {
                                store.mailbox(delivery.username, &name).await.is_ok()
                            }
                            Mailbox::Id(_) => false,
                        };
                        all &= exists;
                    }
                    input = all.into();
                }
                Event::ListContains { .. } | Event::Function { .. } => input = Input::False,
                Event::DuplicateId { id, expiry, .. } => {
                    let seen = directory
                        .sieve_seen(delivery.username, &id)
                        .await
                        .map_err(|e| e.to_string())?;
                    outcome.remember.push((id, expiry));
                    input = seen.into();
                }
                Event::SetEnvelope { .. } => {}
                Event::Keep { flags, .. } => outcome.filings.push(Filing {
                    mailbox: "INBOX".into(),
                    flags: keywords(flags),
                    create: false,
                }),
                Event::FileInto {
                    folder,
                    flags,
                    create,
                    ..
                } => outcome.filings.push(Filing {
                    mailbox: folder,
                    flags: keywords(flags),
                    create,
                }),
                Event::Discard => {}
                Event::Reject { reason, .. } => outcome.reject = Some(reason),
                Event::CreatedMessage { message, .. } => created.push(message),
                Event::SendMessage {
                    recipient,
                    message_id,
                    ..
                } => {
                    let recipient = match recipient {
                        Recipient::Address(address) if sendable(&address) => address,
                        _ => continue,
                    };
                    let (sender, message) = match message_id {
                        // The message being delivered: a redirect.
                        0 => (delivery.recipient.to_string(), delivery.message.to_vec()),
                        id => match created.get(id - 1) {
                            Some(message) => (String::new(), message.clone()),
                            None => continue,
                        },
                    };
                    if outcome.outgoing.len() < MAX_SENT {
                        outcome.outgoing.push(Outgoing {
                            sender,
                            recipient,
                            message,
                        });
                    }
                }
                Event::Notify { .. } => {}
            }
        }
        if outcome.reject.is_some() {
            outcome.filings.clear();
        }
        // RFC 3834 2: no automatic reply to automatic mail. sieve-rs 0.7 looks for
        // Auto-Submitted among the headers mail-parser does not name, but mail-parser
        // names it, so the interpreter never sees it: the reply is withheld here, and
        // the sender is not marked as answered (sieve-rs's vacation ids start "_v").
        if auto_submitted(delivery.message) {
            outcome.outgoing.retain(|m| !m.sender.is_empty());
            outcome.remember.retain(|(id, _)| !id.starts_with("_v"));
        }
        Ok(outcome)
    }
}

fn failed(delivery: &Delivery<'_>, error: String) -> Outcome {
    tracing::warn!(user = %delivery.username, %error, "Sieve script failed: the message is kept in INBOX");
    Outcome {
        failed: Some(error),
        ran: true,
        ..Outcome::keep()
    }
}

/// Whether a message says it was sent automatically (RFC 3834 5: an Auto-Submitted
/// header with a value other than `no`).
fn auto_submitted(message: &[u8]) -> bool {
    // The header section: up to the first empty line.
    let end = message
        .windows(2)
        .position(|w| w == b"\n\n" || w == b"\n\r")
        .map_or(message.len(), |p| p + 1);
    message[..end]
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let (name, value) = line.split_at(line.iter().position(|&b| b == b':')?);
            name.eq_ignore_ascii_case(b"Auto-Submitted")
                .then_some(&value[1..])
        })
        .any(|value| {
            let value = value.split(|&b| b == b';').next().unwrap_or_default();
            !value.trim_ascii().eq_ignore_ascii_case(b"no")
        })
}

/// Whether a script's recipient can go into RCPT TO as it is: one address, nothing
/// that could end or add a command.
fn sendable(address: &str) -> bool {
    address.len() <= 254
        && address.contains('@')
        && address
            .chars()
            .all(|c| !c.is_control() && !c.is_whitespace() && c != '<' && c != '>')
}

/// The flags a script set that IMAP can carry: system flags and keywords (atoms).
fn keywords(flags: Vec<String>) -> Vec<String> {
    const SYSTEM: [&str; 5] = ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"];
    let mut out: Vec<String> = Vec::new();
    for flag in flags {
        let flag = match SYSTEM.iter().find(|s| s.eq_ignore_ascii_case(&flag)) {
            Some(system) => system.to_string(),
            None if !flag.is_empty()
                && flag.len() <= 64
                && flag
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !b"(){%*\"\\]".contains(&b)) =>
            {
                flag
            }
            None => continue,
        };
        if !out.contains(&flag) {
            out.push(flag);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_checked_before_they_are_stored() {
        let engine = Engine::default();
        assert!(
            engine
                .check(b"require [\"fileinto\", \"vacation\"];\nfileinto \"Lists\";\n")
                .is_ok()
        );
        let error = engine.check(b"require \"enotify\";\nkeep;\n").unwrap_err();
        assert!(
            error.contains("\"enotify\" is not available here"),
            "{error}"
        );
        let error = engine
            .check(b"require \"editheader\";\naddheader \"X\" \"y\";\n")
            .unwrap_err();
        assert!(error.contains("editheader"), "{error}");
        let error = engine.check(b"keep;\nfileinto \"x\";\n").unwrap_err();
        assert!(!error.is_empty());
        let error = engine.check(b"if true {\nkeep\n}\n").unwrap_err();
        assert!(error.contains("line 3"), "{error}");
        assert!(engine.check(b"keep; # \xff\n").is_err(), "not UTF-8");
        let big = format!("# {}\nkeep;\n", "x".repeat(MAX_SCRIPT));
        assert!(engine.check(big.as_bytes()).unwrap_err().contains("octets"));
    }

    #[test]
    fn only_flags_imap_can_carry_are_set() {
        let flags = keywords(vec![
            "\\seen".into(),
            "$label1".into(),
            "two words".into(),
            "\\Seen".into(),
            "(paren".into(),
            String::new(),
        ]);
        assert_eq!(flags, vec!["\\Seen".to_string(), "$label1".to_string()]);
    }

    #[test]
    fn automatic_mail_is_recognised() {
        assert!(auto_submitted(
            b"From: a@b\r\nAuto-Submitted: auto-generated\r\n\r\nx"
        ));
        assert!(auto_submitted(
            b"auto-submitted:auto-replied; owner-email=x\r\n\r\n"
        ));
        assert!(!auto_submitted(b"Auto-Submitted: no\r\n\r\nbody"));
        assert!(!auto_submitted(
            b"From: a@b\r\n\r\nAuto-Submitted: auto-generated\r\n"
        ));
    }

    #[test]
    fn only_single_addresses_are_sent_to() {
        assert!(sendable("bob@example.test"));
        assert!(!sendable("bob@example.test>\r\nRCPT TO:<eve@example.test"));
        assert!(!sendable("two words@example.test"));
        assert!(!sendable("no-at-sign"));
        assert!(valid_name("vacation 2026"));
        assert!(!valid_name("../etc/passwd") && !valid_name("") && !valid_name("a\u{7}b"));
    }
}
