//! One IMAP session as a state machine (RFC 3501: not authenticated, authenticated,
//! selected, logout). It takes parsed commands and returns responses; framing, literals
//! and TLS stay in the connection loop ([`super::serve_connection`]).
//!
//! This file holds the states and the dispatch from each command to its handler, in
//! the order of the states; the handlers live with their group:
//!
//! - [`auth`]: CAPABILITY, ID, ENABLE, STARTTLS, LOGIN, AUTHENTICATE, LOGOUT;
//! - [`condstore`]: what CONDSTORE (RFC 7162) adds to SELECT, FETCH, STORE and SEARCH;
//! - [`updates`]: NOOP, CHECK and IDLE's reports of what others changed;
//! - [`mailboxes`]: SELECT, EXAMINE, CREATE, DELETE, RENAME, (UN)SUBSCRIBE, LIST,
//!   LSUB, STATUS, NAMESPACE;
//! - [`messages`]: APPEND, SEARCH, STORE, COPY, MOVE, EXPUNGE, CLOSE, UNSELECT;
//! - [`fetch`]: FETCH, answered in parts;
//! - [`sorting`]: SORT and THREAD;
//! - [`qresync`]: what QRESYNC (RFC 7162 3.2) adds to SELECT, FETCH and expunges;
//! - [`quota`]: GETQUOTA, GETQUOTAROOT, SETQUOTA, and the check before mail comes in;
//! - [`responses`]: the status responses they all build.

mod auth;
mod condstore;
mod esearch;
mod fetch;
mod list;
mod mailboxes;
mod messages;
mod qresync;
mod quota;
mod recent;
mod responses;
mod sorting;
mod updates;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::extensions::multiappend::AppendMessage;
use imap_codec::imap_types::response::{Data, Response};

use crate::mailbox::accept::{Admission, Encryption};
use crate::mailbox::store::{MessageInfo, Store};
use crate::state::Site;
use messages::StoreRequest;
use responses::{bad, no, ok};

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
    /// The keywords the client was told of in FLAGS: a new one is announced before the
    /// first FETCH that shows it (RFC 3501 7.2.6).
    keywords: std::collections::BTreeSet<String>,
    /// The messages that are \Recent in this session.
    recent: recent::Recent,
    /// The UIDs (ascending) that the last `SEARCH RETURN (SAVE)` found, for `$`
    /// (SEARCHRES, RFC 5182): empty at SELECT, and gone with the mailbox at CLOSE.
    /// Expunged messages drop out as they go from `uids`.
    saved: Vec<u32>,
}

/// One IMAP connection's session, from the greeting to LOGOUT.
pub struct Session {
    server: String,
    hostname: String,
    site: Arc<Site>,
    store: Store,
    encryption: Encryption,
    user: Option<String>,
    selected: Option<Selected>,
    failures: u32,
    peer: std::net::IpAddr,
    /// A FETCH answered in parts (see [`Outcome::more`]).
    pending: Option<fetch::FetchJob>,
    /// The connection's place in its listener's limits (none in the fuzzing harness).
    admission: Option<Admission>,
    /// CONDSTORE is on (RFC 7162 3.1: ENABLE, or a command that uses it): flag
    /// changes are reported with their UID and MODSEQ.
    condstore: bool,
    /// QRESYNC is on (ENABLE QRESYNC): expunges are told as VANISHED with UIDs.
    qresync: bool,
    /// UTF8=ACCEPT is on (ENABLE, RFC 6855): mailbox names are UTF-8 both ways, and
    /// APPEND takes `UTF8 (~{n}...)`.
    utf8: bool,
    /// IMAP4rev2 is on (ENABLE IMAP4rev2, RFC 9051): UTF-8 mailbox names, no \Recent,
    /// SEARCH answered with ESEARCH, SELECT with the mailbox's LIST and `[CLOSED]`.
    rev2: bool,
}

impl Session {
    /// How this session spells mailbox names (UTF-8 once UTF8=ACCEPT is enabled).
    fn names(&self) -> super::wire::Names {
        match self.utf8 || self.rev2 {
            true => super::wire::Names::Utf8,
            false => super::wire::Names::Utf7,
        }
    }

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
            user: None,
            selected: None,
            failures: 0,
            peer: peer.ip(),
            pending: None,
            admission: None,
            condstore: false,
            qresync: false,
            utf8: false,
            rev2: false,
        }
    }

    /// Holds the connection's place in its listener's limits; the place it takes
    /// among its source's connections is given up at login ([`Session::logged_in`]).
    pub fn admitted(mut self, admission: Admission) -> Session {
        self.admission = Some(admission);
        self
    }

    /// Whether the client has logged in; the first time it has, the connection stops
    /// counting against its source.
    pub fn logged_in(&mut self) -> bool {
        if self.user.is_none() {
            return false;
        }
        if let Some(admission) = &mut self.admission {
            admission.logged_in();
        }
        true
    }

    /// How long a client may take from connecting to logging in (`[timeouts]`).
    pub fn login_limit(&self) -> Duration {
        Duration::from_secs(self.site.view().config().timeouts.login_total)
    }

    /// Offers STARTTLS on this connection.
    pub fn offer_tls(mut self) -> Session {
        self.encryption.offer();
        self
    }

    /// The connection is now encrypted: passwords may be sent.
    pub fn tls_started(&mut self) {
        self.encryption.started();
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

    /// How often an IDLE client is sent `* OK Still here` (`None`: never).
    pub fn idle_keepalive(&self) -> Option<Duration> {
        let every = self.site.view().config().timeouts.idle_keepalive;
        (every > 0).then(|| Duration::from_secs(every))
    }

    /// Answers one command: the dispatch of the authenticated and selected states.
    pub async fn command(&mut self, command: Command<'static>) -> Outcome {
        let tag = command.tag;
        let Some(user) = self.user.clone() else {
            return self.not_authenticated(tag, command.body).await;
        };
        // CONDSTORE turned on by a command other than SELECT and EXAMINE (which say
        // HIGHESTMODSEQ anyway) while a mailbox is open is told at once (RFC 7162 3.1).
        let reselects = matches!(
            command.body,
            CommandBody::Select { .. } | CommandBody::Examine { .. }
        );
        let condstore_before = self.condstore || self.selected.is_none() || reselects;
        let mut responses = match command.body {
            // Any state.
            CommandBody::Capability => self.capability(&tag),
            CommandBody::Noop | CommandBody::Check => self.noop(&tag, &user).await,
            CommandBody::Logout => return self.logout(&tag),
            CommandBody::Id { .. } => self.id(&tag),
            CommandBody::Enable { capabilities } => self.enable(&tag, capabilities.as_ref()),
            CommandBody::Login { .. } | CommandBody::Authenticate { .. } => {
                vec![bad(&tag, "Already logged in")]
            }
            CommandBody::StartTLS => vec![bad(&tag, "STARTTLS is only possible before login")],
            // Authenticated: mailboxes.
            CommandBody::Select {
                mailbox,
                parameters,
            } => match self.select_parameters(&tag, &parameters) {
                Ok(resync) => self.select(&tag, &user, &mailbox, false, resync).await,
                Err(refusal) => refusal,
            },
            CommandBody::Examine {
                mailbox,
                parameters,
            } => match self.select_parameters(&tag, &parameters) {
                Ok(resync) => self.select(&tag, &user, &mailbox, true, resync).await,
                Err(refusal) => refusal,
            },
            CommandBody::Create {
                mailbox,
                special_use,
            } => self.create(&tag, &user, &mailbox, &special_use).await,
            CommandBody::Delete { mailbox } => self.delete(&tag, &user, &mailbox).await,
            CommandBody::Rename { from, to } => self.rename(&tag, &user, &from, &to).await,
            CommandBody::Subscribe { mailbox } => self.subscribe(&tag, &user, &mailbox, true).await,
            CommandBody::Unsubscribe { mailbox } => {
                self.subscribe(&tag, &user, &mailbox, false).await
            }
            CommandBody::List {
                reference,
                mailbox_wildcard,
                selection,
                more_wildcards,
                ret,
            } => {
                let request = list::ListRequest {
                    reference: &reference,
                    patterns: std::iter::once(&mailbox_wildcard)
                        .chain(&more_wildcards)
                        .collect(),
                    selection: &selection,
                    ret: &ret,
                    lsub: false,
                };
                self.list(&tag, &user, request).await
            }
            CommandBody::Lsub {
                reference,
                mailbox_wildcard,
            } => {
                let request = list::ListRequest {
                    reference: &reference,
                    patterns: vec![&mailbox_wildcard],
                    selection: &[],
                    ret: &[],
                    lsub: true,
                };
                self.list(&tag, &user, request).await
            }
            CommandBody::Status {
                mailbox,
                item_names,
            } => self.status(&tag, &user, &mailbox, &item_names).await,
            CommandBody::Namespace => self.namespace(&tag),
            CommandBody::GetQuotaRoot { mailbox } => {
                self.get_quota_root(&tag, &user, &mailbox).await
            }
            CommandBody::GetQuota { root } => self.get_quota(&tag, &user, &root).await,
            CommandBody::SetQuota { .. } => vec![no(
                &tag,
                "Quotas are set by the site's operators (mailsite user quota), not over IMAP",
            )],
            CommandBody::Append {
                mailbox,
                flags,
                date,
                message,
                more,
            } => {
                let first = AppendMessage {
                    flags,
                    date,
                    message,
                };
                self.append(&tag, &user, &mailbox, first, more).await
            }
            // Selected: the messages of the open mailbox.
            _ if self.selected.is_none() => vec![bad(&tag, "Select a mailbox first")],
            CommandBody::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                modifiers,
            } => {
                let request = (sequence_set, macro_or_item_names, uid);
                self.fetch_command(&tag, &user, request, &modifiers).await
            }
            CommandBody::Search {
                charset,
                criteria,
                uid,
                ret: Some(options),
            } => {
                let request = esearch::Request {
                    charset: charset.as_ref().map(|c| c.as_ref()),
                    criteria: &criteria,
                    by_uid: uid,
                    options: &options,
                };
                self.esearch(&tag, &user, request).await
            }
            // IMAP4rev2 answers every SEARCH with ESEARCH, ALL by default (RFC 9051
            // 6.4.4).
            CommandBody::Search {
                charset,
                criteria,
                uid,
                ret: None,
            } if self.rev2 => {
                let request = esearch::Request {
                    charset: charset.as_ref().map(|c| c.as_ref()),
                    criteria: &criteria,
                    by_uid: uid,
                    options: &[],
                };
                self.esearch(&tag, &user, request).await
            }
            CommandBody::Search {
                charset,
                criteria,
                uid,
                ret: None,
            } => {
                self.search(
                    &tag,
                    &user,
                    charset.as_ref().map(|c| c.as_ref()),
                    &criteria,
                    uid,
                )
                .await
            }
            CommandBody::Sort {
                sort_criteria,
                charset,
                search_criteria,
                uid,
            } => {
                self.sort(&tag, &user, &sort_criteria, &charset, &search_criteria, uid)
                    .await
            }
            CommandBody::Thread {
                algorithm,
                charset,
                search_criteria,
                uid,
            } => {
                self.thread(&tag, &user, &algorithm, &charset, &search_criteria, uid)
                    .await
            }
            CommandBody::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                modifiers,
            } => {
                let since = self.unchanged_since(&modifiers);
                let request = StoreRequest {
                    set: &sequence_set,
                    kind,
                    response,
                    flags: &flags,
                    by_uid: uid,
                    unchanged_since: since,
                };
                self.store_flags(&tag, &user, request).await
            }
            CommandBody::Copy {
                sequence_set,
                mailbox,
                uid,
            } => {
                self.copy(&tag, &user, &sequence_set, &mailbox, uid, false)
                    .await
            }
            CommandBody::Move {
                sequence_set,
                mailbox,
                uid,
            } => {
                self.copy(&tag, &user, &sequence_set, &mailbox, uid, true)
                    .await
            }
            CommandBody::Expunge => self.expunge(&tag, &user, None).await,
            CommandBody::ExpungeUid { sequence_set } => {
                self.expunge(&tag, &user, Some(&sequence_set)).await
            }
            CommandBody::Close => self.close(&tag, &user).await,
            CommandBody::Unselect => self.unselect(&tag),
            _ => vec![bad(&tag, "This command is not available in this version")],
        };
        if !condstore_before && self.condstore {
            self.announce_highest_modseq(&user, &mut responses).await;
        }
        let mut outcome = Outcome::of(self.announce_keywords(responses));
        outcome.more = self.pending.is_some();
        outcome
    }

    /// The next part of an answer begun by [`Session::command`] (see [`Outcome::more`]).
    pub async fn resume(&mut self) -> Outcome {
        let responses = self.fetch_batch().await;
        let responses = self.announce_keywords(responses);
        let mut outcome = Outcome::of(responses);
        outcome.more = self.pending.is_some();
        outcome
    }

    /// The dispatch of the not authenticated state.
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
            CommandBody::StartTLS => return self.starttls(&tag),
            CommandBody::Login { username, password } => {
                let user = String::from_utf8_lossy(username.as_ref()).into_owned();
                let password = String::from_utf8_lossy(password.declassify().as_ref()).into_owned();
                vec![self.login(&tag, &user, &password).await]
            }
            _ => vec![bad(&tag, "Log in first (LOGIN or AUTHENTICATE PLAIN)")],
        };
        Outcome::of(responses)
    }
}

/// Removes the UIDs that are `gone` from a session's sequence and returns their
/// EXPUNGE responses, highest sequence number first so that each number is right
/// when the client reads it; with QRESYNC on (`vanished`), one `VANISHED` with their
/// UIDs instead.
fn expunged(
    uids: &mut Vec<u32>,
    gone: impl Fn(u32) -> bool,
    vanished: bool,
) -> Vec<Response<'static>> {
    let mut out = Vec::new();
    let mut removed = Vec::new();
    for i in (0..uids.len()).rev() {
        if gone(uids[i]) {
            removed.push(uids.remove(i));
            if !vanished && let Ok(d) = Data::expunge(i as u32 + 1) {
                out.push(responses::data(d));
            }
        }
    }
    if vanished {
        removed.reverse();
        out.extend(qresync::vanished(&removed, false));
    }
    out
}

/// A message of an index in UID order, by UID.
fn find(messages: &[MessageInfo], uid: u32) -> Option<&MessageInfo> {
    messages
        .binary_search_by_key(&uid, |m| m.uid)
        .ok()
        .map(|i| &messages[i])
}

/// Whether `flags` has `flag` (flags are case-insensitive).
fn has(flags: &[String], flag: &str) -> bool {
    flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
}

#[cfg(test)]
mod tests {
    use super::*;
    use imap_codec::CommandCodec;
    use imap_codec::decode::Decoder;
    use imap_codec::imap_types::ToStatic;

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
