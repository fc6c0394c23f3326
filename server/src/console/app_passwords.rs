//! A user's app passwords in the console: listed on the user page with when and from
//! where each was last used, added from a form there (the password is shown once, on
//! the next page), and removed after a confirmation page. Every change is a POST with
//! the session's CSRF token, goes through the admin core as `mailsite user
//! app-password` does, and is logged with the operator's name, never the password.
//! As with the other account changes ([`super::account`]), operators' accounts are left
//! to the command line.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use super::actions::{confirmation, refuse, refused};
use super::page::{self, Nav, badge, csrf_field};
use super::{Console, Operator};
use crate::admin::app_passwords::{MAX_LABEL_CHARS, parse_expiry};
use crate::admin::utc;
use crate::directory::User;
use crate::directory::app_passwords::AppPassword;

#[derive(Deserialize)]
pub struct RemoveQuery {
    #[serde(default)]
    user: String,
    #[serde(default)]
    label: String,
}

#[derive(Deserialize)]
pub struct AppPasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    expires: String,
    confirm: Option<String>,
}

fn user_page(username: &str) -> String {
    format!(
        "/console/user?q={}",
        utf8_percent_encode(username, NON_ALPHANUMERIC)
    )
}

/// The user's app passwords with a remove button each, and the form that adds one: the
/// section of the user page.
pub(super) async fn section(app: &Console, op: &Operator, user: &User) -> Markup {
    let list = match app.admin.app_passwords(&user.username).await {
        Ok(list) => list,
        Err(e) => {
            return html! { p.error #app-passwords { "The app passwords cannot be read: " (e) } };
        }
    };
    let now = crate::throttle::unix_now();
    let changeable = !user.operator;
    html! {
        @if list.is_empty() {
            p #app-passwords { (user.username) " has no app passwords." }
        } @else {
            table #app-passwords {
                thead { tr {
                    th { "Label" } th { "Created" } th { "Expires" } th { "Last used" } th { "From" }
                    @if changeable { th {} }
                } }
                tbody {
                    @for a in &list { (row(a, now, changeable)) }
                }
            }
        }
        @if changeable {
            form.inline #app-password-add method="post" action="/console/app-password" {
                (csrf_field(op))
                input type="hidden" name="user" value=(user.username);
                input type="hidden" name="action" value="add";
                input type="hidden" name="confirm" value="yes";
                label { "Label " input name="label" id="app-label" required
                    maxlength=(MAX_LABEL_CHARS) placeholder="phone"; }
                " "
                label { "Expires (optional) " input name="expires" id="app-expires" type="date"; }
                " "
                button #app-password-new { "Add an app password" }
            }
        } @else {
            p { "Operators' app passwords are changed on the server, with "
                code { "mailsite user app-password" } "." }
        }
    }
}

fn row(a: &AppPassword, now: i64, changeable: bool) -> Markup {
    html! {
        tr {
            td.label { (a.label) }
            td { (utc(a.created_at.max(0) as u64)) }
            td {
                @match a.expires_at {
                    None => "never",
                    Some(at) => { (utc(at.max(0) as u64)) @if a.expired(now) { " " (badge("expired")) } },
                }
            }
            @match &a.last_used {
                None => { td { "never" } td { "-" } },
                Some((at, source)) => { td { (utc((*at).max(0) as u64)) } td { (source) } },
            }
            @if changeable {
                td {
                    form.inline method="get" action="/console/app-password" {
                        input type="hidden" name="user" value=(a.username);
                        input type="hidden" name="label" value=(a.label);
                        button.remove { "Remove" }
                    }
                }
            }
        }
    }
}

/// The user a request names, checked: in the directory and not an operator.
async fn target(app: &Console, op: &Operator, typed: &str) -> Result<User, Response> {
    let refusal = |e: String| {
        refuse(
            op,
            StatusCode::BAD_REQUEST,
            "Cannot change app passwords",
            &e,
        )
    };
    let username = app
        .admin
        .username(typed)
        .map_err(|e| refusal(e.to_string()))?;
    let user = app
        .admin
        .user(&username)
        .await
        .map_err(|e| refusal(e.to_string()))?
        .user;
    if user.operator {
        return Err(refusal(format!(
            "{} is an operator: operators' accounts are changed on the server, with `mailsite user app-password`",
            user.username
        )));
    }
    Ok(user)
}

/// The confirmation page of a removal.
pub async fn confirm_remove(
    State(app): State<Console>,
    op: Operator,
    Query(query): Query<RemoveQuery>,
) -> Response {
    let user = match target(&app, &op, &query.user).await {
        Ok(user) => user,
        Err(refusal) => return refusal,
    };
    let name = user.username.as_str();
    let known = app.admin.app_passwords(name).await.unwrap_or_default();
    let Some(found) = known.iter().find(|a| a.label == query.label) else {
        return refuse(
            &op,
            StatusCode::NOT_FOUND,
            "Cannot change app passwords",
            &format!("{name} has no app password labelled {:?}.", query.label),
        );
    };
    let used = found.last_used.as_ref().map_or_else(
        || "It has never been used.".to_string(),
        |(at, source)| {
            format!(
                "It was last used {} from {source}.",
                utc((*at).max(0) as u64)
            )
        },
    );
    confirmation(
        &op,
        &format!("Remove {name}'s app password \"{}\"?", found.label),
        html! {
            p {
                "The device that uses the app password " strong { (found.label) } " of "
                strong { (name) } " can no longer log in (IMAP, POP3, SMTP). " (used)
            }
            p { (name) "'s own password and other app passwords keep working." }
        },
        "/console/app-password",
        &[
            ("user", name),
            ("action", "remove"),
            ("label", &found.label),
        ],
        &format!("Remove \"{}\"", found.label),
    )
}

/// Adds or removes an app password.
pub async fn apply(
    State(app): State<Console>,
    op: Operator,
    Form(form): Form<AppPasswordForm>,
) -> Response {
    if let Some(refused) = refused(&op, &form.csrf, &form.confirm) {
        return refused;
    }
    let user = match target(&app, &op, &form.user).await {
        Ok(user) => user,
        Err(refusal) => return refusal,
    };
    let name = user.username;
    let cannot = |e: &dyn std::fmt::Display| {
        refuse(
            &op,
            StatusCode::BAD_REQUEST,
            "Cannot change app passwords",
            &format!("nothing was changed: {e}"),
        )
    };
    match form.action.as_str() {
        "remove" => match app.admin.remove_app_password(&name, &form.label).await {
            Ok(removed) => {
                tracing::info!(operator = %op.username, user = %name, label = %removed.label, "console: app password removed");
                op.tell(
                    &app,
                    format!("{name}'s app password \"{}\" is removed.", removed.label),
                );
                page::redirect(&user_page(&name))
            }
            Err(e) => cannot(&e),
        },
        "add" => {
            let expires = form.expires.trim();
            let expires_at = if expires.is_empty() {
                None
            } else {
                match parse_expiry(expires, crate::throttle::unix_now()) {
                    Ok(at) => Some(at),
                    Err(e) => return cannot(&e),
                }
            };
            let (added, password) = match app
                .admin
                .add_app_password(&name, form.label.trim(), expires_at)
                .await
            {
                Ok(added) => added,
                Err(e) => return cannot(&e),
            };
            tracing::info!(operator = %op.username, user = %name, label = %added.label, "console: app password added");
            let until = added
                .expires_at
                .map_or("It does not expire.".to_string(), |at| {
                    format!("It stops working at {}.", utc(at.max(0) as u64))
                });
            let body = html! {
                p { "The app password " strong { (added.label) } " of " strong { (name) } ":" }
                p { code #password { (password) } }
                p {
                    "The user types it in that device's mail settings in place of their \
                     password. It is shown only on this page and is not logged. " (until)
                }
                p { a href=(user_page(&name)) { "Back to " (name) } }
            };
            page::html(
                StatusCode::OK,
                page::page(
                    &format!("New app password for {name}"),
                    Some(&op),
                    Nav::Lookup,
                    body,
                ),
            )
        }
        other => refuse(
            &op,
            StatusCode::BAD_REQUEST,
            "Cannot change app passwords",
            &format!(
                "{other:?} is not something the console does to app passwords: use add or remove"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_show_expiry_and_last_use() {
        let a = AppPassword {
            username: "alice".into(),
            label: "phone".into(),
            created_at: 1_796_000_000,
            expires_at: Some(1_796_000_100),
            last_used: Some((1_796_000_050, "192.0.2.7".into())),
        };
        let html = row(&a, 1_796_000_200, true).into_string();
        assert!(html.contains("expired"), "{html}");
        assert!(html.contains("192.0.2.7"), "{html}");
        assert!(html.contains("name=\"label\" value=\"phone\""), "{html}");
        let html = row(&a, 1_796_000_000, false).into_string();
        assert!(!html.contains("expired"), "{html}");
        assert!(!html.contains("Remove"), "{html}");
    }
}
