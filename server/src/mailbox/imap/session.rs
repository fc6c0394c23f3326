//! One IMAP session as a state machine (RFC 3501: not authenticated, authenticated,
//! selected, logout). It takes parsed commands and returns responses; framing, literals
//! and TLS stay in the connection loop ([`super::serve_connection`]).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use imap_codec::imap_types::ToStatic;
use imap_codec::imap_types::auth::AuthMechanism;
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::core::{Charset, IString, NString, Tag, Vec1};
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::fetch::{
    MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName, Section,
};
use imap_codec::imap_types::flag::{Flag, FlagNameAttribute, FlagPerm, StoreResponse, StoreType};
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::response::{Capability, Code, CodeOther, Data, Response, Status};
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::SequenceSet;
use imap_codec::imap_types::status::{StatusDataItem, StatusDataItemName};

use super::{search, wire};
use crate::mailbox::login::{self, Login};
use crate::mailbox::store::{FlagOp, MessageInfo, Store, StoreError};
use crate::sasl::{self, Refusal};
use crate::state::Site;

/// What the connection loop does after the responses are sent.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Continue,
    /// Close the connection (LOGOUT).
    Close,
    /// Start TLS, discarding anything the client sent before the handshake.
    StartTls,
}

/// The responses to one command, and what happens next.
pub struct Outcome {
    pub responses: Vec<Response<'static>>,
    pub step: Step,
    /// More responses follow: send these, then call [`Session::resume`]. A FETCH of
    /// many bodies is answered in parts so that memory stays bounded.
    pub more: bool,
}

impl Outcome {
    fn of(responses: Vec<Response<'static>>) -> Outcome {
        Outcome {
            responses,
            step: Step::Continue,
            more: false,
        }
    }
}

/// A FETCH being answered in parts.
struct FetchJob {
    tag: Tag<'static>,
    user: String,
    mailbox: String,
    names: Vec<MessageDataItemName<'static>>,
    needs: Needs,
    pairs: std::collections::VecDeque<(u32, u32)>,
    /// The mailbox's index when the FETCH began.
    infos: Arc<Vec<MessageInfo>>,
    /// Flags this FETCH changed (\Seen), reported with each message.
    new_flags: HashMap<u32, Vec<String>>,
}

/// What of each message's file a FETCH needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Needs {
    /// Nothing: the index has it (FLAGS, UID, INTERNALDATE, RFC822.SIZE).
    Index,
    /// The header (ENVELOPE, RFC822.HEADER, BODY[HEADER], BODY[HEADER.FIELDS ...]).
    Header,
    /// The whole message.
    Whole,
}

/// One part of a FETCH answer holds at most this many messages, or this many bytes
/// of message data (but always one message).
const FETCH_BATCH_MESSAGES: usize = 500;
const FETCH_BATCH_BYTES: usize = 1 << 20;

/// The mailbox a session has open, and the UIDs its sequence numbers stand for.
struct Selected {
    name: String,
    read_only: bool,
    uids: Vec<u32>,
    /// The mailbox's HIGHESTMODSEQ when the session last looked: anything above it is
    /// news to report.
    modseq: u64,
    /// Flag changes this session made itself (UID, MODSEQ), already reported to it.
    own: HashSet<(u32, u64)>,
}

pub struct Session {
    server: String,
    hostname: String,
    site: Arc<Site>,
    store: Store,
    /// Whether passwords may travel in this connection (TLS or loopback).
    secure: bool,
    tls_available: bool,
    tls_active: bool,
    user: Option<String>,
    selected: Option<Selected>,
    failures: u32,
    pending: Option<FetchJob>,
}

fn status(
    tag: Option<&Tag<'static>>,
    kind: &str,
    code: Option<Code<'static>>,
    text: &str,
) -> Response<'static> {
    let tag = tag.cloned();
    let text = wire::text(text);
    let status = match kind {
        "OK" => Status::ok(tag, code, text),
        "NO" => Status::no(tag, code, text),
        _ => Status::bad(tag, code, text),
    };
    Response::Status(status.unwrap_or_else(|never| match never {}))
}

fn ok(tag: &Tag<'static>, text: &str) -> Response<'static> {
    status(Some(tag), "OK", None, text)
}

fn no(tag: &Tag<'static>, text: &str) -> Response<'static> {
    status(Some(tag), "NO", None, text)
}

fn bad(tag: &Tag<'static>, text: &str) -> Response<'static> {
    status(Some(tag), "BAD", None, text)
}

fn other_code(code: &str) -> Code<'static> {
    Code::Other(CodeOther::unvalidated(code.as_bytes().to_vec()))
}

/// A store error as a tagged NO a user can act on.
fn store_no(tag: &Tag<'static>, error: StoreError) -> Response<'static> {
    match error {
        StoreError::NoMailbox(name) => status(
            Some(tag),
            "NO",
            Some(Code::TryCreate),
            &format!("No mailbox {name}"),
        ),
        StoreError::Exists(name) => status(
            Some(tag),
            "NO",
            Some(other_code("ALREADYEXISTS")),
            &format!("Mailbox {name} already exists"),
        ),
        StoreError::Name(e) => no(tag, &format!("Refused: {e}")),
        StoreError::Refused(e) => no(tag, &e),
        StoreError::NoMessage(uid) => no(tag, &format!("No message with UID {uid}")),
        error @ (StoreError::BadUser(_) | StoreError::Io(_) | StoreError::Sql(_)) => {
            tracing::warn!(%error, "IMAP store operation failed");
            status(
                Some(tag),
                "NO",
                Some(other_code("SERVERBUG")),
                "The mailbox store failed; try again later",
            )
        }
    }
}

fn data(data: Data<'static>) -> Response<'static> {
    Response::Data(data)
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
            secure: peer.ip().is_loopback(),
            tls_available: false,
            tls_active: false,
            user: None,
            selected: None,
            failures: 0,
            pending: None,
        }
    }

    /// Offers STARTTLS on this connection.
    pub fn offer_tls(mut self) -> Session {
        self.tls_available = true;
        self
    }

    /// The connection is now encrypted: passwords may be sent.
    pub fn tls_started(&mut self) {
        self.tls_active = true;
        self.secure = true;
    }

    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// The logged-in user, if any.
    pub fn username(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// How long the client may stay silent now (the site's `[timeouts]`), IDLE included.
    pub fn idle_limit(&self) -> Duration {
        let timeouts = self.site.view().config().timeouts;
        Duration::from_secs(match self.user {
            Some(_) => timeouts.imap,
            None => timeouts.login,
        })
    }

    pub fn capabilities(&self) -> Vec1<Capability<'static>> {
        let mut caps = vec![Capability::Imap4Rev1];
        if self.user.is_none() {
            if self.tls_available && !self.tls_active {
                caps.push(Capability::StartTls);
            }
            if self.secure {
                caps.push(Capability::Auth(AuthMechanism::Plain));
                caps.push(Capability::SaslIr);
            } else {
                caps.push(Capability::LoginDisabled);
            }
            caps.push(Capability::from(wire::atom("LOGIN-REFERRALS")));
        }
        caps.extend([
            Capability::Id,
            Capability::Idle,
            Capability::Namespace,
            Capability::Enable,
            Capability::LiteralPlus,
            Capability::Unselect,
            Capability::UidPlus,
            Capability::Move,
            Capability::from(wire::atom("SPECIAL-USE")),
        ]);
        Vec1::try_from(caps).unwrap_or_else(|_| Vec1::from(Capability::Imap4Rev1))
    }

    /// Answers one command.
    pub async fn command(&mut self, command: Command<'static>) -> Outcome {
        let tag = command.tag;
        let Some(user) = self.user.clone() else {
            return self.not_authenticated(tag, command.body).await;
        };
        let responses = match command.body {
            CommandBody::Capability => self.capability(&tag),
            CommandBody::Noop | CommandBody::Check => self.noop(&tag, &user).await,
            CommandBody::Logout => return self.logout(&tag),
            CommandBody::Id { .. } => self.id(&tag),
            CommandBody::Login { .. } | CommandBody::Authenticate { .. } => {
                vec![bad(&tag, "Already logged in")]
            }
            CommandBody::StartTLS => vec![bad(&tag, "STARTTLS is only possible before login")],
            CommandBody::List {
                reference,
                mailbox_wildcard,
            } => {
                self.list(&tag, &user, &reference, &mailbox_wildcard, false)
                    .await
            }
            CommandBody::Lsub {
                reference,
                mailbox_wildcard,
            } => {
                self.list(&tag, &user, &reference, &mailbox_wildcard, true)
                    .await
            }
            CommandBody::Create { mailbox } => self.create(&tag, &user, &mailbox).await,
            CommandBody::Delete { mailbox } => match wire::mailbox_name(&mailbox) {
                Ok(name) => match self.store.delete_mailbox(&user, &name).await {
                    Ok(()) => {
                        if self.selected.as_ref().is_some_and(|s| s.name == name) {
                            self.selected = None;
                        }
                        vec![ok(&tag, "DELETE completed")]
                    }
                    Err(e) => vec![store_no(&tag, e)],
                },
                Err(e) => vec![no(&tag, &e)],
            },
            CommandBody::Rename { from, to } => self.rename(&tag, &user, &from, &to).await,
            CommandBody::Namespace => self.namespace(&tag),
            CommandBody::Enable { .. } => {
                // No extension here needs enabling: the answer lists none (RFC 5161).
                vec![
                    data(Data::Enabled {
                        capabilities: Vec::new(),
                    }),
                    ok(&tag, "ENABLE completed"),
                ]
            }
            CommandBody::Subscribe { mailbox } => self.subscribe(&tag, &user, &mailbox, true).await,
            CommandBody::Unsubscribe { mailbox } => {
                self.subscribe(&tag, &user, &mailbox, false).await
            }
            CommandBody::Status {
                mailbox,
                item_names,
            } => self.status(&tag, &user, &mailbox, &item_names).await,
            CommandBody::Select { mailbox, .. } => self.select(&tag, &user, &mailbox, false).await,
            CommandBody::Examine { mailbox, .. } => self.select(&tag, &user, &mailbox, true).await,
            CommandBody::Append {
                mailbox,
                flags,
                date,
                message,
            } => {
                let bytes = match message {
                    LiteralOrLiteral8::Literal(l) => l.into_inner().into_owned(),
                    LiteralOrLiteral8::Literal8(l) => l.data.into_owned(),
                };
                let date = date.map(|d| d.as_ref().timestamp());
                self.append(&tag, &user, &mailbox, &flags, date, bytes)
                    .await
            }
            body => match self.selected.is_some() {
                true => self.selected_command(&tag, &user, body).await,
                false => vec![bad(&tag, "Select a mailbox first")],
            },
        };
        let mut outcome = Outcome::of(responses);
        outcome.more = self.pending.is_some();
        outcome
    }

    /// The next part of an answer begun by [`Session::command`] (see [`Outcome::more`]).
    pub async fn resume(&mut self) -> Outcome {
        let responses = self.fetch_batch().await;
        let mut outcome = Outcome::of(responses);
        outcome.more = self.pending.is_some();
        outcome
    }

    async fn not_authenticated(
        &mut self,
        tag: Tag<'static>,
        body: CommandBody<'static>,
    ) -> Outcome {
        let responses = match body {
            CommandBody::Capability => self.capability(&tag),
            CommandBody::Noop => vec![ok(&tag, "NOOP completed")],
            CommandBody::Logout => return self.logout(&tag),
            CommandBody::Id { .. } => self.id(&tag),
            CommandBody::StartTLS => {
                if self.tls_active {
                    vec![bad(&tag, "TLS is already on")]
                } else if !self.tls_available {
                    vec![bad(&tag, "STARTTLS is not offered on this port")]
                } else {
                    return Outcome {
                        responses: vec![ok(&tag, "Begin TLS negotiation now")],
                        step: Step::StartTls,
                        more: false,
                    };
                }
            }
            CommandBody::Login { username, password } => {
                let user = String::from_utf8_lossy(username.as_ref()).into_owned();
                let password = String::from_utf8_lossy(password.declassify().as_ref()).into_owned();
                vec![self.login(&tag, &user, &password).await]
            }
            _ => vec![bad(&tag, "Log in first (LOGIN or AUTHENTICATE PLAIN)")],
        };
        Outcome::of(responses)
    }

    fn capability(&self, tag: &Tag<'static>) -> Vec<Response<'static>> {
        vec![
            data(Data::Capability(self.capabilities())),
            ok(tag, "CAPABILITY completed"),
        ]
    }

    fn id(&self, tag: &Tag<'static>) -> Vec<Response<'static>> {
        let pair = |k: &str, v: &str| -> Option<(IString<'static>, NString<'static>)> {
            Some((
                IString::try_from(k.to_string()).ok()?,
                NString(Some(IString::try_from(v.to_string()).ok()?)),
            ))
        };
        let parameters = [
            pair("name", "mailsite"),
            pair("version", env!("CARGO_PKG_VERSION")),
        ]
        .into_iter()
        .flatten()
        .collect();
        vec![
            data(Data::Id {
                parameters: Some(parameters),
            }),
            ok(tag, "ID completed"),
        ]
    }

    fn logout(&mut self, tag: &Tag<'static>) -> Outcome {
        let bye = Status::bye(None, wire::text(&format!("{} logging out", self.hostname)))
            .unwrap_or_else(|never| match never {});
        Outcome {
            responses: vec![Response::Status(bye), ok(tag, "LOGOUT completed")],
            step: Step::Close,
            more: false,
        }
    }

    /// Logs in, or says why not (after a delay that grows with each failure).
    pub async fn login(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        password: &str,
    ) -> Response<'static> {
        if !self.secure {
            return status(
                Some(tag),
                "NO",
                Some(other_code("PRIVACYREQUIRED")),
                "Passwords are not accepted on an unencrypted connection: use STARTTLS first, or port 993",
            );
        }
        let username = match login::check(
            &self.site,
            &self.server,
            user,
            password,
            &mut self.failures,
        )
        .await
        {
            Login::Accepted { username } => username,
            Login::Refused => {
                return status(
                    Some(tag),
                    "NO",
                    Some(other_code("AUTHENTICATIONFAILED")),
                    "Wrong user name or password",
                );
            }
            Login::Elsewhere {
                username, alias, ..
            } => {
                // RFC 2221 login referral: the user's mail is on the server the alias names.
                return status(
                    Some(tag),
                    "NO",
                    Some(other_code(&format!("REFERRAL imap://{username}@{alias}/"))),
                    &format!("{username} is served by {alias}: connect there"),
                );
            }
        };
        if let Err(error) = self.store.ensure_user(&username).await {
            return store_no(tag, error);
        }
        self.user = Some(username);
        status(
            Some(tag),
            "OK",
            Some(Code::Capability(self.capabilities())),
            "Logged in",
        )
    }

    /// AUTHENTICATE PLAIN: `Some` response when the exchange is over, `None` to ask
    /// for the client's response.
    pub async fn authenticate(
        &mut self,
        tag: &Tag<'static>,
        mechanism: &AuthMechanism<'_>,
        response: Option<&[u8]>,
    ) -> Option<Response<'static>> {
        if self.user.is_some() {
            return Some(bad(tag, "Already logged in"));
        }
        if *mechanism != AuthMechanism::Plain {
            return Some(no(tag, "Only AUTHENTICATE PLAIN is offered"));
        }
        // imap-next has decoded the base64 already.
        Some(match sasl::plain(response?) {
            Ok(credentials) => {
                self.login(tag, &credentials.user, &credentials.password)
                    .await
            }
            // A well-formed response that cannot log in is refused (NO); anything
            // else is a protocol error (BAD).
            Err(refusal @ (Refusal::OtherUser | Refusal::NotUtf8)) => no(tag, &refusal.to_string()),
            Err(refusal) => bad(tag, &refusal.to_string()),
        })
    }

    /// NOOP and CHECK: report messages that arrived or vanished since the last look.
    async fn noop(&mut self, tag: &Tag<'static>, user: &str) -> Vec<Response<'static>> {
        let mut out = self.refresh(user).await;
        out.push(ok(tag, "NOOP completed"));
        out
    }

    /// A receiver that changes when this user's mail changes (for IDLE).
    pub fn watch(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.user.as_ref().map(|user| self.store.watch(user))
    }

    /// What changed in the selected mailbox since the session last looked, as untagged
    /// responses (for IDLE).
    pub async fn updates(&mut self) -> Vec<Response<'static>> {
        match self.user.clone() {
            Some(user) => self.refresh(&user).await,
            None => Vec::new(),
        }
    }

    /// Reports what other sessions and deliveries changed in the selected mailbox:
    /// EXPUNGE for messages gone, EXISTS for new ones, FETCH FLAGS for flag changes.
    /// Cheap when nothing changed: one look at `new/` and one at HIGHESTMODSEQ.
    async fn refresh(&mut self, user: &str) -> Vec<Response<'static>> {
        let Some(selected) = self.selected.as_mut() else {
            return Vec::new();
        };
        let _ = self.store.sync(user, &selected.name).await;
        let Ok(info) = self.store.mailbox(user, &selected.name).await else {
            return Vec::new();
        };
        if info.highestmodseq == selected.modseq {
            return Vec::new();
        }
        let Ok(changed) = self
            .store
            .changed_since(user, &selected.name, selected.modseq)
            .await
        else {
            return Vec::new();
        };
        let last = selected.uids.last().copied().unwrap_or(0);
        let new: Vec<u32> = changed
            .iter()
            .map(|m| m.uid)
            .filter(|&u| u > last)
            .collect();
        let mut out = Vec::new();
        // Expunges since the session last looked: compare its UIDs with the mailbox's.
        if info.expungedmodseq > selected.modseq
            && let Ok(present) = self.store.uids(user, &selected.name).await
        {
            let present: HashSet<u32> = present.into_iter().collect();
            for i in (0..selected.uids.len()).rev() {
                if !present.contains(&selected.uids[i]) {
                    selected.uids.remove(i);
                    if let Ok(d) = Data::expunge(i as u32 + 1) {
                        out.push(data(d));
                    }
                }
            }
        }
        let before = selected.uids.len();
        selected.uids.extend(&new);
        if selected.uids.len() != before || !out.is_empty() {
            out.push(data(Data::Exists(selected.uids.len() as u32)));
        }
        // Flag changes to messages the session already knew.
        for m in changed.iter().filter(|m| m.uid <= last) {
            if selected.own.contains(&(m.uid, m.modseq)) {
                continue;
            }
            let Ok(i) = selected.uids.binary_search(&m.uid) else {
                continue;
            };
            let (Some(seq), Some(uid)) = (NonZeroU32::new(i as u32 + 1), NonZeroU32::new(m.uid))
            else {
                continue;
            };
            let items = vec![
                MessageDataItem::Flags(wire::fetch_flags(&m.flags)),
                MessageDataItem::Uid(uid),
            ];
            if let Ok(items) = Vec1::try_from(items) {
                out.push(data(Data::Fetch { seq, items }));
            }
        }
        selected.modseq = info.highestmodseq;
        selected
            .own
            .retain(|&(_, modseq)| modseq > info.highestmodseq);
        out
    }

    async fn rename(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        from: &Mailbox<'static>,
        to: &Mailbox<'static>,
    ) -> Vec<Response<'static>> {
        let (from, to) = match (wire::mailbox_name(from), wire::mailbox_name(to)) {
            (Ok(from), Ok(to)) => (from, to),
            (Err(e), _) | (_, Err(e)) => return vec![no(tag, &e)],
        };
        match self.store.rename_mailbox(user, &from, &to).await {
            Ok(()) => {
                if let Some(selected) = self.selected.as_mut()
                    && from != "INBOX"
                {
                    let prefix = format!("{from}/");
                    if selected.name == from || selected.name.starts_with(&prefix) {
                        selected.name = format!("{to}{}", &selected.name[from.len()..]);
                    }
                }
                let mut out = self.refresh(user).await;
                out.push(ok(tag, "RENAME completed"));
                out
            }
            Err(e) => vec![store_no(tag, e)],
        }
    }

    /// One personal namespace, the whole tree, delimited by `/` (RFC 2342).
    fn namespace(&self, tag: &Tag<'static>) -> Vec<Response<'static>> {
        use imap_codec::imap_types::extensions::namespace::Namespace;
        let delimiter = imap_codec::imap_types::core::QuotedChar::try_from('/').ok();
        let personal = IString::try_from("")
            .map(|prefix| vec![Namespace::new(prefix, delimiter)])
            .unwrap_or_default();
        vec![
            data(Data::Namespace {
                personal,
                other: Vec::new(),
                shared: Vec::new(),
            }),
            ok(tag, "NAMESPACE completed"),
        ]
    }

    async fn list(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        reference: &Mailbox<'static>,
        pattern: &ListMailbox<'static>,
        lsub: bool,
    ) -> Vec<Response<'static>> {
        let (reference, pattern) = match (wire::raw_mailbox(reference), wire::list_pattern(pattern))
        {
            (Ok(r), Ok(p)) => (r, p),
            (Err(e), _) | (_, Err(e)) => return vec![no(tag, &e)],
        };
        let verb = if lsub { "LSUB" } else { "LIST" };
        let delimiter = imap_codec::imap_types::core::QuotedChar::try_from('/').ok();
        if pattern.is_empty() && !lsub {
            // The hierarchy delimiter and root (RFC 3501 6.3.8).
            let root = Mailbox::try_from("").ok();
            let mut out = Vec::new();
            if let Some(root) = root {
                out.push(data(Data::List {
                    items: vec![FlagNameAttribute::Noselect],
                    delimiter,
                    mailbox: root,
                }));
            }
            out.push(ok(tag, "LIST completed"));
            return out;
        }
        let full = format!("{reference}{pattern}");
        let mailboxes = match self.store.mailboxes(user).await {
            Ok(m) => m,
            Err(e) => return vec![store_no(tag, e)],
        };
        // Parents that are not mailboxes themselves are listed as \Noselect, so that a
        // client walking the tree with % finds "Lists" above "Lists/rust".
        let mut names: Vec<(String, Option<&crate::mailbox::store::MailboxInfo>)> = mailboxes
            .iter()
            .map(|m| (m.name.clone(), Some(m)))
            .collect();
        if !lsub {
            for info in &mailboxes {
                let mut parent = info.name.as_str();
                while let Some((up, _)) = parent.rsplit_once('/') {
                    if !names.iter().any(|(n, _)| n == up) {
                        names.push((up.to_string(), None));
                    }
                    parent = up;
                }
            }
            names.sort_by(|a, b| a.0.cmp(&b.0));
        }
        let mut out = Vec::new();
        for (name, info) in &names {
            if (lsub && !info.is_some_and(|i| i.subscribed)) || !wire::pattern_matches(&full, name)
            {
                continue;
            }
            let Some(mailbox) = wire::wire_mailbox(name) else {
                continue;
            };
            let prefix = format!("{name}/");
            let children = mailboxes.iter().any(|m| m.name.starts_with(&prefix));
            let mut items = Vec::new();
            if info.is_none() {
                items.push(FlagNameAttribute::Noselect);
            }
            items.push(FlagNameAttribute::from(wire::atom(if children {
                "HasChildren"
            } else {
                "HasNoChildren"
            })));
            if let Some(special) = info.and_then(|i| i.special_use.strip_prefix('\\'))
                && let Ok(atom) = imap_codec::imap_types::core::Atom::try_from(special.to_string())
            {
                items.push(FlagNameAttribute::from(atom));
            }
            out.push(data(if lsub {
                Data::Lsub {
                    items,
                    delimiter,
                    mailbox,
                }
            } else {
                Data::List {
                    items,
                    delimiter,
                    mailbox,
                }
            }));
        }
        out.push(ok(tag, &format!("{verb} completed")));
        out
    }

    async fn create(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        mailbox: &Mailbox<'static>,
    ) -> Vec<Response<'static>> {
        // "foo/" declares an intent to create children; the name is "foo".
        let name = match wire::raw_mailbox(mailbox) {
            Ok(raw) => match crate::mailbox::store::names::canonical(raw.trim_end_matches('/')) {
                Ok(name) => name,
                Err(e) => return vec![no(tag, &format!("Refused: {e}"))],
            },
            Err(e) => return vec![no(tag, &e)],
        };
        match self.store.create_mailbox(user, &name, "").await {
            Ok(_) => vec![ok(tag, "CREATE completed")],
            Err(e) => vec![store_no(tag, e)],
        }
    }

    async fn subscribe(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        mailbox: &Mailbox<'static>,
        on: bool,
    ) -> Vec<Response<'static>> {
        match wire::mailbox_name(mailbox) {
            Ok(name) => match self.store.subscribe(user, &name, on).await {
                Ok(()) => vec![ok(
                    tag,
                    if on {
                        "SUBSCRIBE completed"
                    } else {
                        "UNSUBSCRIBE completed"
                    },
                )],
                Err(e) => vec![store_no(tag, e)],
            },
            Err(e) => vec![no(tag, &e)],
        }
    }

    async fn status(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        mailbox: &Mailbox<'static>,
        names: &[StatusDataItemName],
    ) -> Vec<Response<'static>> {
        let name = match wire::mailbox_name(mailbox) {
            Ok(name) => name,
            Err(e) => return vec![no(tag, &e)],
        };
        let _ = self.store.sync(user, &name).await;
        let (info, messages) = match (
            self.store.mailbox(user, &name).await,
            self.store.messages_shared(user, &name).await,
        ) {
            (Ok(info), Ok(messages)) => (info, messages),
            (Err(e), _) | (_, Err(e)) => return vec![store_no(tag, e)],
        };
        let mut items = Vec::new();
        for item in names {
            items.push(match item {
                StatusDataItemName::Messages => StatusDataItem::Messages(messages.len() as u32),
                StatusDataItemName::Recent => StatusDataItem::Recent(0),
                StatusDataItemName::UidNext => match NonZeroU32::new(info.uidnext) {
                    Some(n) => StatusDataItem::UidNext(n),
                    None => continue,
                },
                StatusDataItemName::UidValidity => match NonZeroU32::new(info.uidvalidity) {
                    Some(n) => StatusDataItem::UidValidity(n),
                    None => continue,
                },
                StatusDataItemName::Unseen => StatusDataItem::Unseen(
                    messages.iter().filter(|m| !has(&m.flags, "\\Seen")).count() as u32,
                ),
                _ => {
                    return vec![bad(
                        tag,
                        "STATUS supports MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN",
                    )];
                }
            });
        }
        let Some(mailbox) = wire::wire_mailbox(&info.name) else {
            return vec![no(tag, "The mailbox name cannot be sent")];
        };
        vec![
            data(Data::Status {
                mailbox,
                items: items.into(),
            }),
            ok(tag, "STATUS completed"),
        ]
    }

    async fn select(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        mailbox: &Mailbox<'static>,
        read_only: bool,
    ) -> Vec<Response<'static>> {
        // A failed SELECT leaves no mailbox selected (RFC 3501 6.3.1).
        self.selected = None;
        let name = match wire::mailbox_name(mailbox) {
            Ok(name) => name,
            Err(e) => return vec![no(tag, &e)],
        };
        if let Err(e) = self.store.sync(user, &name).await {
            return vec![store_no(tag, e)];
        }
        let (info, messages) = match (
            self.store.mailbox(user, &name).await,
            self.store.messages_shared(user, &name).await,
        ) {
            (Ok(info), Ok(messages)) => (info, messages),
            (Err(e), _) | (_, Err(e)) => return vec![store_no(tag, e)],
        };
        let system = [
            Flag::Answered,
            Flag::Flagged,
            Flag::Deleted,
            Flag::Seen,
            Flag::Draft,
        ];
        let mut out = vec![
            data(Data::Flags(system.to_vec())),
            data(Data::Exists(messages.len() as u32)),
            data(Data::Recent(0)),
        ];
        let permanent = if read_only {
            Vec::new()
        } else {
            let mut p: Vec<FlagPerm<'static>> =
                system.iter().cloned().map(FlagPerm::Flag).collect();
            p.push(FlagPerm::Asterisk);
            p
        };
        out.push(status(
            None,
            "OK",
            Some(Code::PermanentFlags(permanent)),
            "Flags permitted",
        ));
        if let Some(first) = messages.iter().position(|m| !has(&m.flags, "\\Seen"))
            && let Ok(code) = Code::unseen(first as u32 + 1)
        {
            out.push(status(None, "OK", Some(code), "First unseen"));
        }
        if let Ok(code) = Code::uidvalidity(info.uidvalidity) {
            out.push(status(None, "OK", Some(code), "UIDs valid"));
        }
        if let Ok(code) = Code::uidnext(info.uidnext) {
            out.push(status(None, "OK", Some(code), "Predicted next UID"));
        }
        let (code, verb) = if read_only {
            (Code::ReadOnly, "EXAMINE")
        } else {
            (Code::ReadWrite, "SELECT")
        };
        out.push(status(
            Some(tag),
            "OK",
            Some(code),
            &format!("{verb} completed"),
        ));
        self.selected = Some(Selected {
            name: info.name,
            read_only,
            uids: messages.iter().map(|m| m.uid).collect(),
            modseq: info.highestmodseq,
            own: HashSet::new(),
        });
        out
    }

    async fn append(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        mailbox: &Mailbox<'static>,
        flags: &[Flag<'static>],
        date: Option<i64>,
        bytes: Vec<u8>,
    ) -> Vec<Response<'static>> {
        let name = match wire::mailbox_name(mailbox) {
            Ok(name) => name,
            Err(e) => return vec![no(tag, &e)],
        };
        let flags: Vec<String> = flags.iter().map(wire::flag_name).collect();
        match self.store.append(user, &name, bytes, &flags, date).await {
            Ok((uidvalidity, uid)) => {
                let mut out = if self.selected.as_ref().is_some_and(|s| s.name == name) {
                    self.refresh(user).await
                } else {
                    Vec::new()
                };
                let code = match (NonZeroU32::new(uidvalidity), NonZeroU32::new(uid)) {
                    (Some(uid_validity), Some(uid)) => Some(Code::AppendUid { uid_validity, uid }),
                    _ => None,
                };
                out.push(status(Some(tag), "OK", code, "APPEND completed"));
                out
            }
            Err(e) => vec![store_no(tag, e)],
        }
    }

    async fn selected_command(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        body: CommandBody<'static>,
    ) -> Vec<Response<'static>> {
        match body {
            CommandBody::Close => {
                if let Some(selected) = self.selected.take()
                    && !selected.read_only
                {
                    let _ = self.expunge_deleted(user, &selected, None).await;
                }
                vec![ok(tag, "CLOSE completed")]
            }
            CommandBody::Unselect => {
                self.selected = None;
                vec![ok(tag, "UNSELECT completed")]
            }
            CommandBody::Expunge => self.expunge(tag, user, None).await,
            CommandBody::ExpungeUid { sequence_set } => {
                self.expunge(tag, user, Some(&sequence_set)).await
            }
            CommandBody::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                ..
            } => {
                self.fetch(tag, user, &sequence_set, macro_or_item_names, uid)
                    .await
            }
            CommandBody::Search {
                charset,
                criteria,
                uid,
            } => {
                self.search(
                    tag,
                    user,
                    charset.as_ref().map(|c| c.as_ref()),
                    &criteria,
                    uid,
                )
                .await
            }
            CommandBody::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                ..
            } => {
                self.store_flags(tag, user, &sequence_set, kind, response, &flags, uid)
                    .await
            }
            CommandBody::Copy {
                sequence_set,
                mailbox,
                uid,
            } => {
                self.copy(tag, user, &sequence_set, &mailbox, uid, false)
                    .await
            }
            CommandBody::Move {
                sequence_set,
                mailbox,
                uid,
            } => {
                self.copy(tag, user, &sequence_set, &mailbox, uid, true)
                    .await
            }
            _ => vec![bad(tag, "This command is not available in this version")],
        }
    }

    /// Removes the \Deleted messages (of `only`, for UID EXPUNGE); returns the EXPUNGE
    /// responses, highest sequence number first so each number is right when it is read.
    async fn expunge_deleted(
        &self,
        user: &str,
        selected: &Selected,
        only: Option<&[u32]>,
    ) -> Result<(Vec<Response<'static>>, Vec<u32>), StoreError> {
        let messages = self.store.messages_shared(user, &selected.name).await?;
        let doomed: Vec<u32> = messages
            .iter()
            .filter(|m| has(&m.flags, "\\Deleted"))
            .filter(|m| only.is_none_or(|o| o.contains(&m.uid)))
            .map(|m| m.uid)
            .collect();
        self.store.expunge(user, &selected.name, &doomed).await?;
        let mut remaining = selected.uids.clone();
        let mut out = Vec::new();
        for i in (0..remaining.len()).rev() {
            if doomed.contains(&remaining[i]) {
                remaining.remove(i);
                if let Ok(d) = Data::expunge(i as u32 + 1) {
                    out.push(data(d));
                }
            }
        }
        Ok((out, remaining))
    }

    async fn expunge(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        set: Option<&SequenceSet>,
    ) -> Vec<Response<'static>> {
        let Some(selected) = self.selected.as_ref() else {
            return vec![bad(tag, "Select a mailbox first")];
        };
        if selected.read_only {
            return vec![no(tag, "The mailbox is read-only (EXAMINE)")];
        }
        let only = match set.map(|s| wire::resolve(s, &selected.uids, true)) {
            Some(Ok(pairs)) => Some(pairs.into_iter().map(|(_, uid)| uid).collect::<Vec<_>>()),
            Some(Err(e)) => return vec![bad(tag, &e)],
            None => None,
        };
        match self.expunge_deleted(user, selected, only.as_deref()).await {
            Ok((mut out, remaining)) => {
                if let Some(selected) = self.selected.as_mut() {
                    selected.uids = remaining;
                }
                out.push(ok(tag, "EXPUNGE completed"));
                out
            }
            Err(e) => vec![store_no(tag, e)],
        }
    }

    async fn fetch(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        set: &SequenceSet,
        items: MacroOrMessageDataItemNames<'static>,
        by_uid: bool,
    ) -> Vec<Response<'static>> {
        let Some(selected) = self.selected.as_ref() else {
            return vec![bad(tag, "Select a mailbox first")];
        };
        let mut names: Vec<MessageDataItemName<'static>> = match items {
            MacroOrMessageDataItemNames::Macro(m) => {
                m.expand().iter().map(|n| n.to_static()).collect()
            }
            MacroOrMessageDataItemNames::MessageDataItemNames(names) => names,
        };
        if by_uid && !names.contains(&MessageDataItemName::Uid) {
            names.insert(0, MessageDataItemName::Uid);
        }
        let mut marks_seen = false;
        let mut needs = Needs::Index;
        for name in &names {
            let this = match name {
                MessageDataItemName::Flags
                | MessageDataItemName::Uid
                | MessageDataItemName::InternalDate
                | MessageDataItemName::Rfc822Size => Needs::Index,
                MessageDataItemName::Rfc822Header | MessageDataItemName::Envelope => Needs::Header,
                MessageDataItemName::Rfc822 | MessageDataItemName::Rfc822Text => {
                    marks_seen = true;
                    Needs::Whole
                }
                MessageDataItemName::BodyExt { peek, section, .. } => {
                    marks_seen |= !peek;
                    match section {
                        Some(
                            Section::Header(None)
                            | Section::HeaderFields(None, _)
                            | Section::HeaderFieldsNot(None, _),
                        ) => Needs::Header,
                        _ => Needs::Whole,
                    }
                }
                MessageDataItemName::Body | MessageDataItemName::BodyStructure => Needs::Whole,
                _ => {
                    return vec![bad(
                        tag,
                        "FETCH supports FLAGS UID INTERNALDATE RFC822.SIZE RFC822 RFC822.HEADER RFC822.TEXT ENVELOPE BODY BODYSTRUCTURE BODY[section] in this version",
                    )];
                }
            };
            needs = needs.max(this);
        }
        let pairs = match wire::resolve(set, &selected.uids, by_uid) {
            Ok(pairs) => pairs,
            Err(e) => return vec![bad(tag, &e)],
        };
        let mailbox = selected.name.clone();
        let messages = match self.store.messages_shared(user, &mailbox).await {
            Ok(m) => m,
            Err(e) => return vec![store_no(tag, e)],
        };
        let mut new_flags = HashMap::new();
        if marks_seen && !selected.read_only {
            let unseen: Vec<u32> = pairs
                .iter()
                .map(|&(_, uid)| uid)
                .filter(|&uid| find(&messages, uid).is_some_and(|m| !has(&m.flags, "\\Seen")))
                .collect();
            if !unseen.is_empty() {
                match self
                    .store
                    .store_flags(
                        user,
                        &mailbox,
                        &unseen,
                        FlagOp::Add,
                        &["\\Seen".to_string()],
                    )
                    .await
                {
                    Ok(changed) => {
                        for (uid, flags, modseq) in changed {
                            new_flags.insert(uid, flags);
                            if let Some(selected) = self.selected.as_mut() {
                                selected.own.insert((uid, modseq));
                            }
                        }
                    }
                    Err(e) => return vec![store_no(tag, e)],
                }
            }
        }
        self.pending = Some(FetchJob {
            tag: tag.clone(),
            user: user.to_string(),
            mailbox,
            names,
            needs,
            pairs: pairs.into(),
            infos: messages,
            new_flags,
        });
        self.fetch_batch().await
    }

    /// Answers the next messages of the pending FETCH; the tagged OK comes with the last.
    async fn fetch_batch(&mut self) -> Vec<Response<'static>> {
        let Some(mut job) = self.pending.take() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        // Headers come in one batch for the messages this part may answer.
        let mut headers: HashMap<u32, Arc<[u8]>> = HashMap::new();
        if job.needs == Needs::Header {
            let infos: Vec<&MessageInfo> = job
                .pairs
                .iter()
                .take(FETCH_BATCH_MESSAGES)
                .filter_map(|&(_, uid)| find(&job.infos, uid))
                .collect();
            match self.store.headers(&job.user, &job.mailbox, &infos).await {
                Ok(read) => headers.extend(
                    infos
                        .iter()
                        .zip(read)
                        .filter_map(|(info, header)| Some((info.uid, header?))),
                ),
                Err(e) => {
                    out.push(store_no(&job.tag, e));
                    return out;
                }
            }
        }
        let (mut count, mut bytes) = (0, 0);
        while count < FETCH_BATCH_MESSAGES && bytes < FETCH_BATCH_BYTES {
            let Some((seq, uid)) = job.pairs.pop_front() else {
                out.push(ok(&job.tag, "FETCH completed"));
                return out;
            };
            let Some(info) = find(&job.infos, uid) else {
                continue;
            };
            let changed = job.new_flags.get(&uid).map(|flags| MessageInfo {
                flags: flags.clone(),
                ..info.clone()
            });
            let info = changed.as_ref().unwrap_or(info);
            let whole;
            let body: &[u8] = match job.needs {
                Needs::Index => &[],
                // A header cut short (over 256 KiB without its end) is not used.
                Needs::Header
                    if headers.get(&uid).is_some_and(|h| {
                        h.ends_with(b"\n\n")
                            || h.ends_with(b"\r\n\r\n")
                            || h.len() as u64 == info.size
                    }) =>
                {
                    &headers[&uid]
                }
                Needs::Header | Needs::Whole => {
                    whole = match self.store.read_message(&job.user, &job.mailbox, info).await {
                        Ok(b) => b,
                        Err(StoreError::NoMessage(_)) => continue,
                        Err(e) => {
                            out.push(store_no(&job.tag, e));
                            return out;
                        }
                    };
                    &whole
                }
            };
            count += 1;
            bytes += body.len();
            if let Some(response) = fetch_response(seq, uid, info, body, &job) {
                out.push(response);
            }
        }
        self.pending = Some(job);
        out
    }

    async fn search(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        charset: Option<&str>,
        criteria: &Vec1<SearchKey<'static>>,
        by_uid: bool,
    ) -> Vec<Response<'static>> {
        let Some(selected) = self.selected.as_ref() else {
            return vec![bad(tag, "Select a mailbox first")];
        };
        if let Some(charset) = charset
            && !charset.eq_ignore_ascii_case("UTF-8")
            && !charset.eq_ignore_ascii_case("US-ASCII")
        {
            let allowed = ["UTF-8", "US-ASCII"]
                .into_iter()
                .filter_map(|c| Charset::try_from(c).ok())
                .collect();
            return vec![status(
                Some(tag),
                "NO",
                Some(Code::BadCharset { allowed }),
                "Only UTF-8 and US-ASCII are supported",
            )];
        }
        let keys = criteria.as_ref();
        if !search::supported(keys) {
            return vec![bad(tag, "A search key is not available in this version")];
        }
        let mailbox = selected.name.clone();
        let uids = selected.uids.clone();
        let messages = match self.store.messages_shared(user, &mailbox).await {
            Ok(m) => m,
            Err(e) => return vec![store_no(tag, e)],
        };
        let needs_bytes = search::needs_bytes(keys);
        let needs_body = search::needs_body(keys);
        let last_seq = uids.len() as u32;
        let last_uid = uids.last().copied().unwrap_or(0);
        let candidates: Vec<(u32, &MessageInfo)> = uids
            .iter()
            .enumerate()
            .filter_map(|(i, &uid)| Some((i as u32 + 1, find(&messages, uid)?)))
            .collect();
        // Header searches take the headers in one batch, mostly from memory.
        let headers = if needs_bytes && !needs_body {
            let infos: Vec<&MessageInfo> = candidates.iter().map(|&(_, info)| info).collect();
            let mut headers = Vec::with_capacity(infos.len());
            for chunk in infos.chunks(HEADER_BATCH) {
                match self.store.headers(user, &mailbox, chunk).await {
                    Ok(read) => headers.extend(read),
                    Err(e) => return vec![store_no(tag, e)],
                }
            }
            headers
        } else {
            Vec::new()
        };
        let mut found = Vec::new();
        for (i, &(seq, info)) in candidates.iter().enumerate() {
            let uid = info.uid;
            let body;
            let bytes: Option<&[u8]> = if !needs_bytes {
                None
            } else if !needs_body {
                match headers.get(i) {
                    Some(Some(header)) => Some(header),
                    _ => continue,
                }
            } else {
                body = match self.store.read_message(user, &mailbox, info).await {
                    Ok(b) => b,
                    Err(StoreError::NoMessage(_)) => continue,
                    Err(e) => return vec![store_no(tag, e)],
                };
                Some(&body)
            };
            let candidate = search::Candidate::new(seq, info, bytes, last_seq, last_uid);
            if search::matches_all(keys, &candidate)
                && let Some(n) = NonZeroU32::new(if by_uid { uid } else { seq })
            {
                found.push(n);
            }
        }
        vec![
            data(Data::Search(found)),
            ok(
                tag,
                if by_uid {
                    "UID SEARCH completed"
                } else {
                    "SEARCH completed"
                },
            ),
        ]
    }

    #[allow(clippy::too_many_arguments)]
    async fn store_flags(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        set: &SequenceSet,
        kind: StoreType,
        response: StoreResponse,
        flags: &[Flag<'static>],
        by_uid: bool,
    ) -> Vec<Response<'static>> {
        let Some(selected) = self.selected.as_ref() else {
            return vec![bad(tag, "Select a mailbox first")];
        };
        if selected.read_only {
            return vec![no(tag, "The mailbox is read-only (EXAMINE)")];
        }
        let pairs = match wire::resolve(set, &selected.uids, by_uid) {
            Ok(pairs) => pairs,
            Err(e) => return vec![bad(tag, &e)],
        };
        let op = match kind {
            StoreType::Replace => FlagOp::Replace,
            StoreType::Add => FlagOp::Add,
            StoreType::Remove => FlagOp::Remove,
        };
        let flags: Vec<String> = flags.iter().map(wire::flag_name).collect();
        let uids: Vec<u32> = pairs.iter().map(|&(_, uid)| uid).collect();
        let changed = match self
            .store
            .store_flags(user, &selected.name, &uids, op, &flags)
            .await
        {
            Ok(changed) => changed,
            Err(e) => return vec![store_no(tag, e)],
        };
        if let Some(selected) = self.selected.as_mut() {
            selected
                .own
                .extend(changed.iter().map(|(uid, _, modseq)| (*uid, *modseq)));
        }
        let mut out = Vec::new();
        if response == StoreResponse::Answer {
            let seq_of: HashMap<u32, u32> = pairs.iter().map(|&(seq, uid)| (uid, seq)).collect();
            for (uid, flags, _) in changed {
                let (Some(seq), Some(nz)) = (
                    seq_of.get(&uid).and_then(|s| NonZeroU32::new(*s)),
                    NonZeroU32::new(uid),
                ) else {
                    continue;
                };
                let mut items = vec![MessageDataItem::Flags(wire::fetch_flags(&flags))];
                if by_uid {
                    items.push(MessageDataItem::Uid(nz));
                }
                if let Ok(items) = Vec1::try_from(items) {
                    out.push(data(Data::Fetch { seq, items }));
                }
            }
        }
        out.push(ok(tag, "STORE completed"));
        out
    }

    async fn copy(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        set: &SequenceSet,
        mailbox: &Mailbox<'static>,
        by_uid: bool,
        moving: bool,
    ) -> Vec<Response<'static>> {
        let Some(selected) = self.selected.as_ref() else {
            return vec![bad(tag, "Select a mailbox first")];
        };
        if moving && selected.read_only {
            return vec![no(tag, "The mailbox is read-only (EXAMINE)")];
        }
        let pairs = match wire::resolve(set, &selected.uids, by_uid) {
            Ok(pairs) => pairs,
            Err(e) => return vec![bad(tag, &e)],
        };
        let target = match wire::mailbox_name(mailbox) {
            Ok(name) => name,
            Err(e) => return vec![no(tag, &e)],
        };
        let uids: Vec<u32> = pairs.iter().map(|&(_, uid)| uid).collect();
        let from = selected.name.clone();
        let result = if moving {
            self.store.move_messages(user, &from, &uids, &target).await
        } else {
            self.store.copy(user, &from, &uids, &target).await
        };
        let (uidvalidity, copied) = match result {
            Ok(r) => r,
            Err(e) => return vec![store_no(tag, e)],
        };
        let old: Vec<u32> = copied.iter().map(|&(o, _)| o).collect();
        let new: Vec<u32> = copied.iter().map(|&(_, n)| n).collect();
        let code = match (
            NonZeroU32::new(uidvalidity),
            wire::uid_set(&old),
            wire::uid_set(&new),
        ) {
            (Some(uid_validity), Some(source), Some(destination)) => Some(Code::CopyUid {
                uid_validity,
                source,
                destination,
            }),
            _ => None,
        };
        if !moving {
            return vec![status(Some(tag), "OK", code, "COPY completed")];
        }
        // RFC 6851: COPYUID comes untagged, then the EXPUNGEs, then the tagged OK.
        let mut out = vec![status(None, "OK", code, "Moved")];
        if let Some(selected) = self.selected.as_mut() {
            for i in (0..selected.uids.len()).rev() {
                if old.contains(&selected.uids[i]) {
                    selected.uids.remove(i);
                    if let Ok(d) = Data::expunge(i as u32 + 1) {
                        out.push(data(d));
                    }
                }
            }
        }
        out.push(ok(tag, "MOVE completed"));
        out
    }
}

/// How many message headers one blocking read takes at most (header searches).
const HEADER_BATCH: usize = 2000;

/// One message's FETCH response.
fn fetch_response(
    seq: u32,
    uid: u32,
    info: &MessageInfo,
    body: &[u8],
    job: &FetchJob,
) -> Option<Response<'static>> {
    let structure = super::structure::Structure::parse(body);
    let mut items = Vec::new();
    for name in &job.names {
        items.push(match name {
            MessageDataItemName::Flags => MessageDataItem::Flags(wire::fetch_flags(&info.flags)),
            MessageDataItemName::Uid => match NonZeroU32::new(uid) {
                Some(uid) => MessageDataItem::Uid(uid),
                None => continue,
            },
            MessageDataItemName::InternalDate => match wire::internal_date(info.internal_date) {
                Some(date) => MessageDataItem::InternalDate(date),
                None => continue,
            },
            MessageDataItemName::Rfc822Size => {
                MessageDataItem::Rfc822Size(u32::try_from(info.size).unwrap_or(u32::MAX))
            }
            MessageDataItemName::Rfc822 => MessageDataItem::Rfc822(wire::literal(body)),
            MessageDataItemName::Rfc822Header => {
                MessageDataItem::Rfc822Header(wire::literal(wire::split_message(body).0))
            }
            MessageDataItemName::Rfc822Text => {
                MessageDataItem::Rfc822Text(wire::literal(wire::split_message(body).1))
            }
            MessageDataItemName::Envelope => MessageDataItem::Envelope(structure.envelope()),
            MessageDataItemName::Body => MessageDataItem::Body(structure.body_structure(false)),
            MessageDataItemName::BodyStructure => {
                MessageDataItem::BodyStructure(structure.body_structure(true))
            }
            MessageDataItemName::BodyExt {
                section, partial, ..
            } => {
                let whole = structure.section(section.as_ref());
                let part: &[u8] = &whole;
                let (origin, part) = match partial {
                    Some((start, count)) => {
                        let start = (*start as usize).min(part.len());
                        let end = start.saturating_add(count.get() as usize).min(part.len());
                        (Some(start as u32), &part[start..end])
                    }
                    None => (None, part),
                };
                MessageDataItem::BodyExt {
                    section: section.clone(),
                    origin,
                    data: wire::literal(part),
                }
            }
            _ => continue,
        });
    }
    if job.new_flags.contains_key(&uid) && !job.names.contains(&MessageDataItemName::Flags) {
        items.push(MessageDataItem::Flags(wire::fetch_flags(&info.flags)));
    }
    let (Some(seq), Ok(items)) = (NonZeroU32::new(seq), Vec1::try_from(items)) else {
        return None;
    };
    Some(data(Data::Fetch { seq, items }))
}

/// A message of an index in UID order, by UID.
fn find(messages: &[MessageInfo], uid: u32) -> Option<&MessageInfo> {
    messages
        .binary_search_by_key(&uid, |m| m.uid)
        .ok()
        .map(|i| &messages[i])
}

fn has(flags: &[String], flag: &str) -> bool {
    flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
}

#[cfg(test)]
mod tests {
    use super::*;
    use imap_codec::CommandCodec;
    use imap_codec::decode::Decoder;

    fn parse(line: &str) -> Command<'static> {
        let (_, command) = CommandCodec::default().decode(line.as_bytes()).unwrap();
        command.to_static()
    }

    fn wire(responses: &[Response<'static>]) -> String {
        use imap_codec::ResponseCodec;
        use imap_codec::encode::Encoder;
        responses
            .iter()
            .map(|r| {
                String::from_utf8_lossy(&ResponseCodec::default().encode(r).dump()).into_owned()
            })
            .collect()
    }

    #[tokio::test]
    async fn no_plaintext_passwords_from_other_hosts_before_tls() {
        let dir = std::env::temp_dir().join(format!("mailsite-imap-{}", rand::random::<u64>()));
        let mut config = mailsite_shared::SiteConfig::embedded();
        config.data_dir = dir.clone();
        let directory = crate::directory::Directory::open(&config).await.unwrap();
        let store = Store::for_site(&config, &directory);
        let site = Site::load(Arc::new(config), directory).await.unwrap();
        let peer: SocketAddr = "192.0.2.7:40000".parse().unwrap();
        let mut session =
            Session::new("mailbox1", "mailbox1.example.test", site, store, peer).offer_tls();
        let capability = wire(&session.command(parse("a CAPABILITY\r\n")).await.responses);
        assert!(
            capability.contains("STARTTLS")
                && capability.contains("LOGINDISABLED")
                && !capability.contains("AUTH="),
            "{capability}"
        );
        let login = wire(
            &session
                .command(parse("b LOGIN alice secret\r\n"))
                .await
                .responses,
        );
        assert!(login.starts_with("b NO [PRIVACYREQUIRED]"), "{login}");
        let select = wire(&session.command(parse("c SELECT INBOX\r\n")).await.responses);
        assert!(select.starts_with("c BAD"), "{select}");
        let starttls = session.command(parse("d STARTTLS\r\n")).await;
        assert_eq!(starttls.step, Step::StartTls);
        session.tls_started();
        let capability = wire(&session.command(parse("e CAPABILITY\r\n")).await.responses);
        assert!(
            !capability.contains("STARTTLS")
                && !capability.contains("LOGINDISABLED")
                && capability.contains("AUTH=PLAIN"),
            "{capability}"
        );
        std::fs::remove_dir_all(dir).ok();
    }
}
