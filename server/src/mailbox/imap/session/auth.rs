//! The commands of any state and of logging in: CAPABILITY, ID, ENABLE, STARTTLS,
//! LOGIN, AUTHENTICATE PLAIN (with [`crate::sasl`]) and LOGOUT. Passwords are refused
//! on an unencrypted connection except from loopback; a user served by another
//! mailbox server gets a login referral (RFC 2221).

use imap_codec::imap_types::auth::AuthMechanism;
use imap_codec::imap_types::core::{IString, NString, Tag, Vec1};
use imap_codec::imap_types::extensions::quota::Resource;
use imap_codec::imap_types::extensions::thread::ThreadingAlgorithm;
use imap_codec::imap_types::response::{Capability, Code, Data, Response, Status};

use super::super::wire;
use super::responses::{bad, data, no, ok, other_code, status, store_no};
use super::{Outcome, Session, Step};
use crate::mailbox::accept::NoStartTls;
use crate::mailbox::login::{self, Login};
use crate::sasl::{self, Refusal};
use crate::throttle::Protocol;

impl Session {
    /// What the server offers in the session's state (greeting, CAPABILITY, and the
    /// OK of a login): STARTTLS and the ways to log in only before login.
    pub fn capabilities(&self) -> Vec1<Capability<'static>> {
        // IMAP4rev2 (RFC 9051) beside IMAP4rev1: a client turns it on with ENABLE.
        let mut caps = vec![
            Capability::Imap4Rev1,
            Capability::from(wire::atom("IMAP4rev2")),
        ];
        if self.user.is_none() {
            if self.encryption.can_start() {
                caps.push(Capability::StartTls);
            }
            if self.encryption.passwords_allowed() {
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
            Capability::from(wire::atom("CREATE-SPECIAL-USE")),
            Capability::Sort(None),
            Capability::from(wire::atom("ESEARCH")),
            Capability::from(wire::atom("SEARCHRES")),
            Capability::from(wire::atom("UTF8=ACCEPT")),
            Capability::from(wire::atom("LIST-EXTENDED")),
            Capability::from(wire::atom("LIST-STATUS")),
            Capability::from(wire::atom("MULTIAPPEND")),
            Capability::Binary,
            Capability::CondStore,
            Capability::QResync,
            Capability::Quota,
            Capability::QuotaRes(Resource::Storage),
            Capability::QuotaRes(Resource::Message),
            Capability::StatusSize,
            Capability::Thread(ThreadingAlgorithm::OrderedSubject),
            Capability::Thread(ThreadingAlgorithm::References),
        ]);
        Vec1::try_from(caps).unwrap_or_else(|_| Vec1::from(Capability::Imap4Rev1))
    }

    pub(super) fn capability(&self, tag: &Tag<'static>) -> Vec<Response<'static>> {
        vec![
            data(Data::Capability(self.capabilities())),
            ok(tag, "CAPABILITY completed"),
        ]
    }

    pub(super) fn id(&self, tag: &Tag<'static>) -> Vec<Response<'static>> {
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

    /// STARTTLS: the connection loop starts TLS once the OK is on the wire.
    pub(super) fn starttls(&self, tag: &Tag<'static>) -> Outcome {
        let refusal = match self.encryption.start() {
            Ok(()) => {
                return Outcome {
                    responses: vec![ok(tag, "Begin TLS negotiation now")],
                    step: Step::StartTls,
                    more: false,
                };
            }
            Err(NoStartTls::AlreadyOn) => "TLS is already on",
            Err(NoStartTls::NotOffered) => "STARTTLS is not offered on this port",
        };
        Outcome::of(vec![bad(tag, refusal)])
    }

    /// Logs in, or says why not (after a delay that grows with each failure).
    pub async fn login(
        &mut self,
        tag: &Tag<'static>,
        user: &str,
        password: &str,
    ) -> Response<'static> {
        if !self.encryption.passwords_allowed() {
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
            self.peer,
            Protocol::Imap,
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
            Login::Blocked { until } => {
                return status(
                    Some(tag),
                    "NO",
                    Some(other_code("UNAVAILABLE")),
                    &crate::mailbox::login::blocked_text(until),
                );
            }
            // RFC 5530: the credentials were right once and are no longer.
            Login::Expired { label, at } => {
                return status(
                    Some(tag),
                    "NO",
                    Some(other_code("EXPIRED")),
                    &crate::mailbox::login::expired_text(&label, at),
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

    pub(super) fn logout(&mut self, tag: &Tag<'static>) -> Outcome {
        let bye = Status::bye(None, wire::text(&format!("{} logging out", self.hostname)))
            .unwrap_or_else(|never| match never {});
        Outcome {
            responses: vec![Response::Status(bye), ok(tag, "LOGOUT completed")],
            step: Step::Close,
            more: false,
        }
    }
}
