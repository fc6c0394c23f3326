//! SASL for SMTP AUTH (RFC 4954): the PLAIN (RFC 4616) and LOGIN mechanisms, as
//! steps that take the client's base64 lines and end in a user name and password.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// `334` prompts of LOGIN: "Username:" and "Password:" in base64.
pub const LOGIN_USERNAME: &str = "334 VXNlcm5hbWU6\r\n";
pub const LOGIN_PASSWORD: &str = "334 UGFzc3dvcmQ6\r\n";

/// Where an exchange stands, waiting for the client's next line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exchange {
    /// PLAIN without an initial response: the next line is the response.
    Plain,
    /// LOGIN: the next line is the user name.
    LoginUser,
    /// LOGIN: the next line is the password of `user`.
    LoginPassword { user: String },
}

/// What a step of the exchange came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this `334` prompt and wait for the next line.
    Prompt(&'static str, Exchange),
    /// The credentials to check.
    Credentials { user: String, password: String },
    /// The exchange failed: send this reply.
    Refused(&'static str),
}

const CANCELLED: &str = "501 5.7.0 Authentication cancelled\r\n";
const NOT_BASE64: &str = "501 5.5.2 The response is not base64\r\n";
const NOT_PLAIN: &str = "501 5.5.2 The response is not authzid NUL user NUL password\r\n";
const NOT_UTF8: &str = "501 5.5.2 The user name or password is not UTF-8\r\n";
const OTHER_USER: &str = "535 5.7.8 Logging in as another user is not allowed\r\n";

fn decode(line: &str) -> Result<Vec<u8>, &'static str> {
    let line = line.trim();
    if line == "*" {
        return Err(CANCELLED);
    }
    if line == "=" {
        return Ok(Vec::new());
    }
    STANDARD.decode(line).map_err(|_| NOT_BASE64)
}

fn text(bytes: Vec<u8>) -> Result<String, &'static str> {
    String::from_utf8(bytes).map_err(|_| NOT_UTF8)
}

/// Starts PLAIN, with the initial response if the AUTH line had one.
pub fn plain(initial: &str) -> Step {
    if initial.is_empty() {
        return Step::Prompt("334 \r\n", Exchange::Plain);
    }
    plain_response(initial)
}

fn plain_response(line: &str) -> Step {
    let decoded = match decode(line) {
        Ok(d) => d,
        Err(reply) => return Step::Refused(reply),
    };
    let fields: Vec<&[u8]> = decoded.split(|&b| b == 0).collect();
    let [authzid, user, password] = fields[..] else {
        return Step::Refused(NOT_PLAIN);
    };
    if !authzid.is_empty() && authzid != user {
        return Step::Refused(OTHER_USER);
    }
    match (text(user.to_vec()), text(password.to_vec())) {
        (Ok(user), Ok(password)) => Step::Credentials { user, password },
        _ => Step::Refused(NOT_UTF8),
    }
}

/// Starts LOGIN; an initial response (RFC 4954 allows one) is the user name.
pub fn login(initial: &str) -> Step {
    if initial.is_empty() {
        return Step::Prompt(LOGIN_USERNAME, Exchange::LoginUser);
    }
    next(Exchange::LoginUser, initial)
}

/// Takes the client's line in an exchange.
pub fn next(exchange: Exchange, line: &str) -> Step {
    match exchange {
        Exchange::Plain => plain_response(line),
        Exchange::LoginUser => match decode(line).and_then(text) {
            Ok(user) => Step::Prompt(LOGIN_PASSWORD, Exchange::LoginPassword { user }),
            Err(reply) => Step::Refused(reply),
        },
        Exchange::LoginPassword { user } => match decode(line).and_then(text) {
            Ok(password) => Step::Credentials { user, password },
            Err(reply) => Step::Refused(reply),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        STANDARD.encode(s)
    }

    #[test]
    fn plain_with_and_without_initial_response() {
        let creds = Step::Credentials {
            user: "alice".into(),
            password: "pw".into(),
        };
        assert_eq!(plain(&b64("\0alice\0pw")), creds);
        assert_eq!(plain(&b64("alice\0alice\0pw")), creds);
        assert_eq!(plain(&b64("bob\0alice\0pw")), Step::Refused(OTHER_USER));
        assert_eq!(plain(""), Step::Prompt("334 \r\n", Exchange::Plain));
        assert_eq!(next(Exchange::Plain, &b64("\0alice\0pw")), creds);
        assert_eq!(next(Exchange::Plain, "*"), Step::Refused(CANCELLED));
        assert_eq!(plain("!!!"), Step::Refused(NOT_BASE64));
        assert_eq!(plain(&b64("no nul")), Step::Refused(NOT_PLAIN));
        assert_eq!(
            plain(&STANDARD.encode(b"\0a\0\xff")),
            Step::Refused(NOT_UTF8)
        );
    }

    #[test]
    fn login_asks_for_user_then_password() {
        let Step::Prompt(prompt, exchange) = login("") else {
            panic!()
        };
        assert_eq!(prompt, LOGIN_USERNAME);
        let Step::Prompt(prompt, exchange) = next(exchange, &b64("alice")) else {
            panic!()
        };
        assert_eq!(prompt, LOGIN_PASSWORD);
        assert_eq!(
            next(exchange, &b64("pw")),
            Step::Credentials {
                user: "alice".into(),
                password: "pw".into()
            }
        );
        assert!(matches!(
            login(&b64("alice")),
            Step::Prompt(LOGIN_PASSWORD, _)
        ));
    }
}
