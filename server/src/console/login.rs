//! Signing in to the console and out of it.
//!
//! The sign-in form carries a token that must match a cookie set with the form (both
//! fresh each time): a page on another site cannot produce it, so it cannot sign a
//! browser in to an account of its choosing. A wrong password and a right password of
//! a user who is no operator get the same answer (nothing tells a guesser the password
//! was right); too many failures get their own. The password is never echoed.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use mailsite_shared::route::login_username;
use maud::html;
use serde::Deserialize;

use super::Console;
use super::page::{self, Nav};
use super::session;
use super::{Local, Operator, SESSION_COOKIE, cookie, set_cookie};
use crate::mailbox::login::{self, Login};
use crate::throttle::Protocol;

/// The cookie that pairs a sign-in form with its browser.
const LOGIN_COOKIE: &str = "mailsite_console_login";

/// Where to go after signing in: a console page, never another site.
pub fn safe_next(next: &str) -> &str {
    let console =
        next == "/console" || next.starts_with("/console/") || next.starts_with("/console?");
    let odd = next.contains("//")
        || next.contains('\\')
        || next.chars().any(char::is_control)
        || next.starts_with("/console/login")
        || next.starts_with("/console/logout");
    if console && !odd { next } else { "/console" }
}

#[derive(Deserialize, Default)]
pub struct FormQuery {
    #[serde(default)]
    next: String,
    #[serde(default)]
    signed_out: Option<String>,
}

/// The sign-in form, with `message` above it (a refusal) and a fresh pairing token.
fn sign_in_page(
    status: StatusCode,
    local: &Local,
    next: &str,
    username: &str,
    message: Option<(&str, &str)>,
) -> Response {
    let login = session::token();
    let body = html! {
        @if let Some((class, text)) = message {
            p class=(class) role="alert" { (text) }
        }
        form.signin method="post" action="/console/login" {
            input type="hidden" name="login" value=(login);
            input type="hidden" name="next" value=(safe_next(next));
            label {
                "Operator name "
                input name="username" id="username" autocomplete="username" value=(username)
                    required autofocus;
            }
            label {
                "Password "
                input name="password" id="password" type="password"
                    autocomplete="current-password" required;
            }
            button #sign-in { "Sign in" }
        }
        p.hint {
            "Operators are users of the directory with the operator flag ("
            code { "mailsite user add NAME --operator" }
            ")."
        }
    };
    let mut response = page::html(status, page::page("Sign in", None, Nav::None, body));
    set_cookie(&mut response, LOGIN_COOKIE, &login, Some(3600), local.https);
    response
}

pub async fn form(
    State(app): State<Console>,
    local: Local,
    headers: axum::http::HeaderMap,
    Query(query): Query<FormQuery>,
) -> Response {
    let signed_in =
        cookie(&headers, SESSION_COOKIE).is_some_and(|t| app.console.get(&t, false).is_some());
    if signed_in {
        return page::redirect(safe_next(&query.next));
    }
    let message = query
        .signed_out
        .is_some()
        .then_some(("flash", "You are signed out."));
    sign_in_page(StatusCode::OK, &local, &query.next, "", message)
}

#[derive(Deserialize)]
pub struct SignIn {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    login: String,
    #[serde(default)]
    next: String,
}

pub async fn submit(
    State(app): State<Console>,
    local: Local,
    headers: axum::http::HeaderMap,
    Form(form): Form<SignIn>,
) -> Response {
    let paired =
        cookie(&headers, LOGIN_COOKIE).is_some_and(|c| session::same_secret(&c, &form.login));
    if !paired {
        return sign_in_page(
            StatusCode::FORBIDDEN,
            &local,
            &form.next,
            &form.username,
            Some((
                "error",
                "This sign-in form has expired or came from another page: sign in again here.",
            )),
        );
    }
    let typed = form.username.trim();
    let refuse =
        |status, text: &str| sign_in_page(status, &local, &form.next, typed, Some(("error", text)));
    let source = local.peer.ip();
    let account = login::account_of(&app.site, typed);
    // The console's own lock is per (name, source): a stranger's guesses lock out the
    // stranger, never the operator at their own desk.
    if let Err(wait) = app.console.attempt(&account, source) {
        tracing::warn!(user = ?account, peer = %local.peer, "console: sign-in refused, too many failures");
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "Too many failed sign-ins: try again in {} s.",
                wait.as_secs() + 1
            ),
        );
    }
    let _admitted = match login::admit(&app.site, source, &account, Protocol::Console).await {
        Ok(admitted) => admitted,
        Err(refusal) => {
            let minutes = match refusal {
                Login::Blocked { until } => login::minutes_until(until),
                _ => 1,
            };
            tracing::warn!(user = ?account, peer = %local.peer, "console: sign-in refused, source blocked");
            return refuse(
                StatusCode::TOO_MANY_REQUESTS,
                &format!(
                    "Too many failed logins from your address: try again in {minutes} minutes."
                ),
            );
        }
    };
    let directory = &app.site.directory;
    let name = login_username(app.site.view().config(), typed);
    let operator = match &name {
        Some(name) => {
            directory
                .verify_password(name, &form.password)
                .await
                .unwrap_or(false)
                && directory
                    .user(name)
                    .await
                    .is_ok_and(|u| u.operator && u.enabled)
        }
        None => false,
    };
    // A wrong password and a non-operator's right one get one answer, after one wait.
    let Some(name) = name.filter(|_| operator) else {
        tracing::warn!(user = ?account, peer = %local.peer, "console: sign-in refused");
        // The throttle's wait, as IMAP and SMTP logins wait.
        login::failed(&app.site, source, &account, Protocol::Console).await;
        app.console.failed(&account, source);
        return refuse(StatusCode::UNAUTHORIZED, "Wrong operator name or password.");
    };
    app.console.succeeded(&account, source);
    app.site.throttle.succeeded(source, &name);
    let token = app.console.start(&name);
    tracing::info!(operator = %name, peer = %local.peer, "console: signed in");
    let mut response = page::redirect(safe_next(&form.next));
    set_cookie(&mut response, SESSION_COOKIE, &token, None, local.https);
    set_cookie(&mut response, LOGIN_COOKIE, "", Some(0), local.https);
    response
}

#[derive(Deserialize)]
pub struct SignOut {
    #[serde(default)]
    csrf: String,
}

pub async fn logout(
    State(app): State<Console>,
    local: Local,
    op: Operator,
    Form(form): Form<SignOut>,
) -> Response {
    if let Some(refused) = op.forged(&form.csrf) {
        return refused;
    }
    app.console.end(&op.token);
    tracing::info!(operator = %op.username, "console: signed out");
    let mut response = page::redirect("/console/login?signed_out=1");
    set_cookie(&mut response, SESSION_COOKIE, "", Some(0), local.https);
    response
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_console_pages_come_next() {
        assert_eq!(safe_next("/console/user?q=alice"), "/console/user?q=alice");
        assert_eq!(safe_next("/console"), "/console");
        for bad in [
            "https://evil.example/",
            "//evil.example/console",
            "/console/..//evil",
            "/consolex",
            "/console/login?next=x",
            "/console\\@evil",
            "",
        ] {
            assert_eq!(safe_next(bad), "/console", "{bad}");
        }
    }
}
