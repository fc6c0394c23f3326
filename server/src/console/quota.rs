//! A user's quota from their user page: what their mailboxes hold against the limits,
//! and a form that sets new limits. As every change the console makes, the form leads
//! to a confirmation page (GET) and the change is a POST with the session's CSRF token
//! and `confirm=yes`; it goes through the admin core, as `mailsite user quota` does.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::actions::{confirmation, refuse, refused};
use super::page;
use super::{Console, Operator};
use crate::directory::User;
use crate::directory::quota::{Quota, parse_count, parse_size, size};

#[derive(Deserialize)]
pub struct QuotaQuery {
    #[serde(default)]
    user: String,
    #[serde(default)]
    storage: String,
    #[serde(default)]
    messages: String,
}

/// The confirmed change: the same fields, with the session's token and `confirm`.
#[derive(Deserialize)]
pub struct QuotaForm {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    change: QuotaQuery,
    confirm: Option<String>,
}

/// The limits as the form gives them: a size (`2G`, `none`) and a count (`none`, or
/// empty for no limit).
fn limits(storage: &str, messages: &str) -> Result<Quota, String> {
    let storage = if storage.trim().is_empty() {
        0
    } else {
        parse_size(storage)?
    };
    let messages = if messages.trim().is_empty() {
        0
    } else {
        parse_count(messages)?
    };
    Ok(Quota { storage, messages })
}

/// The limit fields as they are typed back in: `2.0 GiB` reads again as the same size.
fn storage_text(octets: u64) -> String {
    if octets == 0 {
        String::new()
    } else if octets.is_multiple_of(1 << 20) {
        format!("{}M", octets >> 20)
    } else {
        octets.to_string()
    }
}

/// The user page's quota section: usage against the limits, and the form.
pub(super) async fn section(app: &Console, user: &User) -> Markup {
    let view = match app.admin.quota(&user.username).await {
        Ok(view) => view,
        Err(e) => return html! { p.error #quota { "The quota cannot be read: " (e) } },
    };
    html! {
        p #quota { (user.username) "'s mailboxes hold " (view.describe()) "." }
        form.inline #quota-set method="get" action="/console/quota" {
            input type="hidden" name="user" value=(user.username);
            label { "Storage " input name="storage" id="quota-storage"
                value=(storage_text(view.quota.storage)) placeholder="2G, or empty for no limit"; }
            " "
            label { "Messages " input name="messages" id="quota-messages"
                value=(if view.quota.messages > 0 { view.quota.messages.to_string() } else { String::new() })
                placeholder="50000, or empty"; }
            " "
            button #quota-change { "Change the quota" }
        }
    }
}

/// The user and limits a request is about, checked.
async fn target(
    app: &Console,
    typed: &str,
    storage: &str,
    messages: &str,
) -> Result<(String, Quota), String> {
    let username = app.admin.username(typed).map_err(|e| e.to_string())?;
    app.admin.user(&username).await.map_err(|e| e.to_string())?;
    let quota = limits(storage, messages)?;
    quota.check()?;
    Ok((username, quota))
}

/// The confirmation page of a quota change.
pub async fn confirm(
    State(app): State<Console>,
    op: Operator,
    Query(query): Query<QuotaQuery>,
) -> Response {
    let (name, quota) = match target(&app, &query.user, &query.storage, &query.messages).await {
        Ok(target) => target,
        Err(e) => return refuse(&op, StatusCode::BAD_REQUEST, "Cannot change the quota", &e),
    };
    let used = match app.admin.quota(&name).await {
        Ok(view) => view.usage,
        Err(e) => {
            return refuse(
                &op,
                StatusCode::SERVICE_UNAVAILABLE,
                "Cannot change the quota",
                &e.to_string(),
            );
        }
    };
    let over = quota.admits(used, 0, 0).is_err();
    let explanation = html! {
        p {
            "The mailboxes of " strong { (name) } " may then hold " strong { (quota.describe()) }
            " together. They hold " (size(used.storage)) " in " (used.messages) " messages now."
        }
        @if over {
            p.error #quota-over {
                "That is less than they hold already. Nothing is deleted, but new mail is \
                 refused until they make room: IMAP clients are told the mailbox is over \
                 quota, and mail sent to them waits at the sorters (452 4.2.2) and comes \
                 back to its senders if no room is made in time."
            }
        }
    };
    let storage = quota.storage.to_string();
    let messages = quota.messages.to_string();
    confirmation(
        &op,
        &format!("Change {name}'s quota?"),
        explanation,
        "/console/quota",
        &[
            ("user", &name),
            ("storage", &storage),
            ("messages", &messages),
        ],
        &format!("Set {name}'s quota"),
    )
}

/// Applies a confirmed quota change.
pub async fn apply(
    State(app): State<Console>,
    op: Operator,
    Form(form): Form<QuotaForm>,
) -> Response {
    if let Some(refused) = refused(&op, &form.csrf, &form.confirm) {
        return refused;
    }
    let QuotaQuery {
        user,
        storage,
        messages,
    } = &form.change;
    let (name, quota) = match target(&app, user, storage, messages).await {
        Ok(target) => target,
        Err(e) => return refuse(&op, StatusCode::BAD_REQUEST, "Cannot change the quota", &e),
    };
    match app.admin.set_quota(&name, quota).await {
        Ok(view) => {
            tracing::info!(operator = %op.username, user = %name, limits = %quota.describe(), "console: quota set");
            op.tell(
                &app,
                format!(
                    "{name}'s quota is now {}: {}.",
                    quota.describe(),
                    view.describe()
                ),
            );
            page::redirect(&super::account::user_page(&name))
        }
        Err(e) => {
            tracing::warn!(operator = %op.username, user = %name, error = %e, "console: quota change failed");
            refuse(
                &op,
                StatusCode::SERVICE_UNAVAILABLE,
                "Cannot change the quota",
                &format!("nothing was changed: {e}"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_reads_sizes_counts_and_empty_fields() {
        assert_eq!(
            limits("2G", "50000"),
            Ok(Quota {
                storage: 2 << 30,
                messages: 50_000
            })
        );
        assert_eq!(limits("", ""), Ok(Quota::default()));
        assert_eq!(limits("none", "none"), Ok(Quota::default()));
        assert!(limits("lots", "").is_err());
        assert!(limits("", "-3").is_err());
        assert_eq!(
            limits(&storage_text(2 << 30), ""),
            Ok(Quota {
                storage: 2 << 30,
                messages: 0
            })
        );
        assert_eq!(
            limits(&storage_text(1500), ""),
            Ok(Quota {
                storage: 1500,
                messages: 0
            })
        );
    }
}
