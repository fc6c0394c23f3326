//! SASL for every protocol that takes a password: SMTP AUTH (RFC 4954), POP3 AUTH
//! (RFC 5034) and IMAP AUTHENTICATE (RFC 3501, SASL-IR RFC 4959). The PLAIN (RFC 4616)
//! and LOGIN mechanisms as steps that take the client's responses and end in a user
//! name and password, or in a [`Refusal`]. Each protocol words its own prompts and
//! replies around these steps; the password check is [`crate::mailbox::login`]'s.

use base64::Engine;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};

/// The longest response accepted, decoded. RFC 4616 asks servers to take names and
/// passwords of up to 255 octets each; this leaves room for long generated passwords
/// and keeps a client from making the server decode and hash megabytes.
pub const MAX_RESPONSE: usize = 8 * 1024;

/// Base64 as clients send it: with or without the final padding, and without
/// insisting on zero bits at the end (some clients' encoders leave them set).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// The mechanisms offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// RFC 4616: one response, `authzid NUL authcid NUL password`.
    Plain,
    /// The user name, then the password, each asked for (draft-murchison-sasl-login).
    Login,
}

/// What a client proved it knows, to be checked against the directory.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    /// The password stays out of logs and test failure messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"…")
            .finish()
    }
}

/// Why an exchange ended without credentials; the text is what the client is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The client answered `*` (RFC 4422 5).
    #[error("Authentication cancelled")]
    Cancelled,
    #[error("The response is not base64")]
    NotBase64,
    #[error("The response is not authzid NUL user NUL password")]
    NotPlain,
    #[error("The user name or password is not UTF-8")]
    NotUtf8,
    /// An authzid other than the authcid: acting for another user is not offered.
    #[error("Logging in as another user is not allowed")]
    OtherUser,
    #[error("The response is too long")]
    TooLong,
}

/// Where an exchange stands, waiting for the client's next response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exchange {
    /// PLAIN without an initial response: the next response is the whole of it.
    Plain,
    /// LOGIN: the next response is the user name.
    LoginUser,
    /// LOGIN: the next response is the password of `user`.
    LoginPassword { user: String },
}

impl Exchange {
    /// The server's challenge for the next response, in base64: empty for PLAIN,
    /// "Username:" and "Password:" for LOGIN (what clients expect to see).
    pub fn challenge(&self) -> &'static str {
        match self {
            Exchange::Plain => "",
            Exchange::LoginUser => "VXNlcm5hbWU6",
            Exchange::LoginPassword { .. } => "UGFzc3dvcmQ6",
        }
    }
}

/// What a step of an exchange came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send the exchange's [`Exchange::challenge`] and wait for the next response.
    Prompt(Exchange),
    /// The credentials to check.
    Credentials(Credentials),
    /// The exchange failed.
    Refused(Refusal),
}

impl From<Result<Credentials, Refusal>> for Step {
    fn from(result: Result<Credentials, Refusal>) -> Step {
        match result {
            Ok(credentials) => Step::Credentials(credentials),
            Err(refusal) => Step::Refused(refusal),
        }
    }
}

/// Starts an exchange, with the base64 initial response if the command had one
/// (`None`: ask for it). For LOGIN an initial response is the user name (RFC 4954
/// allows one).
pub fn start(mechanism: Mechanism, initial: Option<&str>) -> Step {
    let exchange = match mechanism {
        Mechanism::Plain => Exchange::Plain,
        Mechanism::Login => Exchange::LoginUser,
    };
    match initial {
        None => Step::Prompt(exchange),
        Some(response) => next(exchange, response),
    }
}

/// Takes the client's base64 response in an exchange.
pub fn next(exchange: Exchange, response: &str) -> Step {
    match exchange {
        Exchange::Plain => decode(response).and_then(|d| plain(&d)).into(),
        Exchange::LoginUser => match decode(response).and_then(text) {
            Ok(user) => Step::Prompt(Exchange::LoginPassword { user }),
            Err(refusal) => Step::Refused(refusal),
        },
        Exchange::LoginPassword { user } => decode(response)
            .and_then(text)
            .map(|password| Credentials { user, password })
            .into(),
    }
}

/// Decodes one base64 response line: `*` cancels, `=` is an empty response (RFC 4954).
pub fn decode(line: &str) -> Result<Vec<u8>, Refusal> {
    let line = line.trim();
    match line {
        "*" => Err(Refusal::Cancelled),
        "=" => Ok(Vec::new()),
        // Four characters carry three octets; padding may add up to three more.
        _ if line.len() > MAX_RESPONSE.div_ceil(3) * 4 => Err(Refusal::TooLong),
        _ => match LENIENT.decode(line) {
            Ok(decoded) if decoded.len() > MAX_RESPONSE => Err(Refusal::TooLong),
            Ok(decoded) => Ok(decoded),
            Err(_) => Err(Refusal::NotBase64),
        },
    }
}

/// A decoded PLAIN response: `authzid NUL authcid NUL password`, where the authzid is
/// empty or the authcid itself.
pub fn plain(response: &[u8]) -> Result<Credentials, Refusal> {
    if response.len() > MAX_RESPONSE {
        return Err(Refusal::TooLong);
    }
    let fields: Vec<&[u8]> = response.split(|&b| b == 0).collect();
    let [authzid, user, password] = fields[..] else {
        return Err(Refusal::NotPlain);
    };
    if !authzid.is_empty() && authzid != user {
        return Err(Refusal::OtherUser);
    }
    Ok(Credentials {
        user: text(user.to_vec())?,
        password: text(password.to_vec())?,
    })
}

fn text(bytes: Vec<u8>) -> Result<String, Refusal> {
    String::from_utf8(bytes).map_err(|_| Refusal::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    fn b64(s: impl AsRef<[u8]>) -> String {
        STANDARD.encode(s)
    }

    fn alice() -> Step {
        Step::Credentials(Credentials {
            user: "alice".into(),
            password: "pw".into(),
        })
    }

    #[test]
    fn plain_with_and_without_initial_response() {
        let plain_with = |s: &str| start(Mechanism::Plain, Some(s));
        assert_eq!(plain_with(&b64("\0alice\0pw")), alice());
        assert_eq!(plain_with(&b64("alice\0alice\0pw")), alice());
        assert_eq!(start(Mechanism::Plain, None), Step::Prompt(Exchange::Plain));
        assert_eq!(Exchange::Plain.challenge(), "");
        assert_eq!(next(Exchange::Plain, &b64("\0alice\0pw")), alice());
        // Line ends and surrounding blanks are not part of the response.
        assert_eq!(
            next(Exchange::Plain, &format!(" {}\r\n", b64("\0alice\0pw"))),
            alice()
        );
    }

    #[test]
    fn plain_refuses_malformed_responses() {
        let refused = |s: &str| next(Exchange::Plain, s);
        assert_eq!(refused("*"), Step::Refused(Refusal::Cancelled));
        assert_eq!(refused("!!!"), Step::Refused(Refusal::NotBase64));
        assert_eq!(
            refused("@@@not base64@@@"),
            Step::Refused(Refusal::NotBase64)
        );
        // No NULs, one NUL, three NULs.
        assert_eq!(refused(&b64("no nul")), Step::Refused(Refusal::NotPlain));
        assert_eq!(refused(&b64("\0alice")), Step::Refused(Refusal::NotPlain));
        assert_eq!(
            refused(&b64("\0alice\0pw\0")),
            Step::Refused(Refusal::NotPlain)
        );
        // "=" and an empty line are an empty response, which is not a PLAIN one.
        assert_eq!(refused("="), Step::Refused(Refusal::NotPlain));
        assert_eq!(refused(""), Step::Refused(Refusal::NotPlain));
        assert_eq!(refused(&b64(b"\0a\0\xff")), Step::Refused(Refusal::NotUtf8));
        assert_eq!(
            refused(&b64(b"\0\xffa\0pw")),
            Step::Refused(Refusal::NotUtf8)
        );
    }

    #[test]
    fn plain_refuses_acting_for_another_user() {
        assert_eq!(
            plain(b"bob\0alice\0pw"),
            Err(Refusal::OtherUser),
            "authzid bob, authcid alice"
        );
        assert_eq!(plain(b"Alice\0alice\0pw"), Err(Refusal::OtherUser));
    }

    #[test]
    fn empty_names_and_passwords_reach_the_password_check() {
        // The directory refuses them like any wrong password (with the failure
        // delay), so that they cannot be told apart from other failures.
        let empty = |user: &str, password: &str| {
            Ok(Credentials {
                user: user.into(),
                password: password.into(),
            })
        };
        assert_eq!(plain(b"\0alice\0"), empty("alice", ""));
        assert_eq!(plain(b"\0\0pw"), empty("", "pw"));
        assert_eq!(plain(b"\0\0"), empty("", ""));
    }

    #[test]
    fn padding_is_optional() {
        let secret = Step::Credentials(Credentials {
            user: "alice".into(),
            password: "secret".into(),
        });
        assert_eq!(next(Exchange::Plain, "AGFsaWNlAHNlY3JldA=="), secret);
        assert_eq!(next(Exchange::Plain, "AGFsaWNlAHNlY3JldA"), secret);
        assert_eq!(decode("AGFsaWNlAHNlY3JldA==").unwrap(), b"\0alice\0secret");
        assert_eq!(decode("AGFsaWNlAHNlY3JldA").unwrap(), b"\0alice\0secret");
        assert_eq!(decode("!!"), Err(Refusal::NotBase64));
    }

    #[test]
    fn over_long_responses_are_refused_before_decoding() {
        let longest = format!("\0alice\0{}", "p".repeat(MAX_RESPONSE - 7));
        assert_eq!(longest.len(), MAX_RESPONSE);
        assert!(matches!(
            next(Exchange::Plain, &b64(&longest)),
            Step::Credentials(c) if c.password.len() == MAX_RESPONSE - 7
        ));
        let over = format!("{longest}p");
        assert_eq!(
            next(Exchange::Plain, &b64(&over)),
            Step::Refused(Refusal::TooLong)
        );
        assert_eq!(plain(over.as_bytes()), Err(Refusal::TooLong));
        // Far too long is refused by its length alone, base64 or not.
        assert_eq!(decode(&"!".repeat(4 * MAX_RESPONSE)), Err(Refusal::TooLong));
        assert_eq!(
            next(Exchange::LoginUser, &b64("u".repeat(MAX_RESPONSE + 1))),
            Step::Refused(Refusal::TooLong)
        );
    }

    #[test]
    fn login_asks_for_user_then_password() {
        let Step::Prompt(exchange) = start(Mechanism::Login, None) else {
            panic!()
        };
        assert_eq!(exchange.challenge(), b64("Username:"));
        let Step::Prompt(exchange) = next(exchange, &b64("alice")) else {
            panic!()
        };
        assert_eq!(exchange.challenge(), b64("Password:"));
        assert_eq!(next(exchange, &b64("pw")), alice());
        assert_eq!(
            start(Mechanism::Login, Some(&b64("alice"))),
            Step::Prompt(Exchange::LoginPassword {
                user: "alice".into()
            })
        );
        assert_eq!(
            next(Exchange::LoginUser, "*"),
            Step::Refused(Refusal::Cancelled)
        );
        assert_eq!(
            next(Exchange::LoginUser, &b64(b"\xff")),
            Step::Refused(Refusal::NotUtf8)
        );
        assert_eq!(
            next(
                Exchange::LoginPassword {
                    user: "alice".into()
                },
                "not base64!"
            ),
            Step::Refused(Refusal::NotBase64)
        );
    }

    #[test]
    fn the_password_is_not_shown() {
        let credentials = Credentials {
            user: "alice".into(),
            password: "secret".into(),
        };
        let shown = format!("{credentials:?}");
        assert!(
            shown.contains("alice") && !shown.contains("secret"),
            "{shown}"
        );
    }
}
