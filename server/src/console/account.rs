//! The console's changes to one account, from its user page: disabling it, enabling it
//! again, and resetting its password to a generated one that is shown to the operator
//! once. As the site-wide changes ([`super::actions`]), each is a GET that says what
//! will happen and a POST that must carry the session's CSRF token and `confirm=yes`;
//! each goes through the admin core, as `mailsite user` does, and is logged with the
//! operator's name (never the password).
//!
//! Operators' accounts are left to the command line on the server (`mailsite user`):
//! from here one operator can neither take over another's account nor lock it out.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use super::actions::{confirmation, refuse, refused, reload};
use super::page::{self, Nav};
use super::{Console, Operator};
use crate::directory::User;

/// What the operator does to the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Disable,
    Enable,
    Password,
}

impl Action {
    fn parse(text: &str) -> Option<Action> {
        match text {
            "disable" => Some(Action::Disable),
            "enable" => Some(Action::Enable),
            "password" => Some(Action::Password),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Action::Disable => "disable",
            Action::Enable => "enable",
            Action::Password => "password",
        }
    }
}

#[derive(Deserialize)]
pub struct AccountQuery {
    #[serde(default)]
    user: String,
    #[serde(default)]
    action: String,
}

#[derive(Deserialize)]
pub struct AccountForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    action: String,
    confirm: Option<String>,
}

/// The user page of `username`.
pub(super) fn user_page(username: &str) -> String {
    format!(
        "/console/user?q={}",
        utf8_percent_encode(username, NON_ALPHANUMERIC)
    )
}

/// The account and action a request is about, checked: a user of the directory who is
/// not an operator, and an action that changes something.
async fn target(app: &Console, typed: &str, action: &str) -> Result<(User, Action), String> {
    let action = Action::parse(action).ok_or_else(|| {
        format!("{action:?} is not something the console does to an account: use disable, enable or password")
    })?;
    let username = app.admin.username(typed).map_err(|e| e.to_string())?;
    let user = app
        .admin
        .user(&username)
        .await
        .map_err(|e| e.to_string())?
        .user;
    if user.operator {
        return Err(format!(
            "{} is an operator: operators' accounts are changed on the server, with `mailsite user`",
            user.username
        ));
    }
    match action {
        Action::Disable if !user.enabled => Err(format!("{} is already disabled.", user.username)),
        Action::Enable if user.enabled => Err(format!("{} is already enabled.", user.username)),
        _ => Ok((user, action)),
    }
}

/// [`target`], or the page that refuses the request.
async fn checked(
    app: &Console,
    op: &Operator,
    typed: &str,
    action: &str,
) -> Result<(User, Action), Response> {
    target(app, typed, action)
        .await
        .map_err(|e| refuse(op, StatusCode::BAD_REQUEST, "Cannot change the account", &e))
}

/// The confirmation page of an account change.
pub async fn confirm(
    State(app): State<Console>,
    op: Operator,
    Query(query): Query<AccountQuery>,
) -> Response {
    let (user, action) = match checked(&app, &op, &query.user, &query.action).await {
        Ok(target) => target,
        Err(refusal) => return refusal,
    };
    let name = user.username.as_str();
    let address = format!("{name}@{}", app.site.snapshot().config().domain);
    let (title, explanation, button) = match action {
        Action::Disable => (
            format!("Disable {name}?"),
            html! {
                p {
                    strong { (name) } " will no longer be able to sign in: IMAP, POP3 and SMTP \
                     submission refuse the password, and autoconfig tells mail clients that the \
                     account is disabled."
                }
                p {
                    "Mail sent to " code { (address) } " is refused (" code { "550 5.2.1" }
                    " this mailbox is disabled), so its senders get it back. The mail already \
                     stored is kept; enabling the account again restores everything."
                }
            },
            format!("Disable {name}"),
        ),
        Action::Enable => (
            format!("Enable {name}?"),
            html! {
                p {
                    strong { (name) } " will be able to sign in again with the password the \
                     account had, and mail to " code { (address) } " is accepted again."
                }
            },
            format!("Enable {name}"),
        ),
        Action::Password => (
            format!("Reset {name}'s password?"),
            html! {
                p {
                    "A new password is made for " strong { (name) } " and shown to you once, \
                     on the next page. The current password stops working at once, on every \
                     device that remembers it (phones, mail programs, the desktop helper)."
                }
                p {
                    "Give the new password to the user over a channel you trust; they enter \
                     it in each of their devices."
                }
            },
            format!("Reset {name}'s password"),
        ),
    };
    confirmation(
        &op,
        &title,
        explanation,
        "/console/account",
        &[("user", name), ("action", action.as_str())],
        &button,
    )
}

/// Applies a confirmed account change.
pub async fn apply(
    State(app): State<Console>,
    op: Operator,
    Form(form): Form<AccountForm>,
) -> Response {
    if let Some(refused) = refused(&op, &form.csrf, &form.confirm) {
        return refused;
    }
    let (user, action) = match checked(&app, &op, &form.user, &form.action).await {
        Ok(target) => target,
        Err(refusal) => return refusal,
    };
    let name = user.username;
    let failed = |e: &dyn std::fmt::Display| {
        tracing::warn!(operator = %op.username, user = %name, action = action.as_str(), error = %e, "console: account change failed");
        refuse(
            &op,
            StatusCode::SERVICE_UNAVAILABLE,
            "Cannot change the account",
            &format!("nothing was changed: {e}"),
        )
    };
    match action {
        Action::Disable | Action::Enable => {
            let enabled = action == Action::Enable;
            if let Err(e) = app.admin.set_enabled(&name, enabled).await {
                return failed(&e);
            }
            reload(&app).await;
            let done = if enabled { "enabled" } else { "disabled" };
            tracing::info!(operator = %op.username, user = %name, "console: account {done}");
            op.tell(&app, format!("{name}'s account is now {done}."));
            page::redirect(&user_page(&name))
        }
        Action::Password => {
            let password = match app.admin.reset_password(&name).await {
                Ok(password) => password,
                Err(e) => return failed(&e),
            };
            tracing::info!(operator = %op.username, user = %name, "console: password reset");
            let body = html! {
                p { "Give this password to " strong { (name) } ":" }
                p { code #password { (password) } }
                p {
                    "It is shown only on this page and is not logged. The old password no \
                     longer works."
                }
                p {
                    "If " (name) "'s devices kept trying the old password, their address may be \
                     blocked for a while: "
                    a href="/console/blocks" { "see the login blocks" } "."
                }
                p { a href=(user_page(&name)) { "Back to " (name) } }
            };
            page::html(
                StatusCode::OK,
                page::page(
                    &format!("New password for {name}"),
                    Some(&op),
                    Nav::Lookup,
                    body,
                ),
            )
        }
    }
}
