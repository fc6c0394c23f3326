//! The blocks page: the sources the login throttle refuses after too many failed
//! logins, each with a button that lifts it, and a form that lifts every block of a
//! user (whose phone kept an old password). Lifting goes through the admin core, needs
//! the session's CSRF token and is logged with the operator's name.

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::page::{self, Nav, alert, csrf_field};
use super::{Console, Operator};
use crate::admin::blocks::Target;
use crate::admin::utc;

pub async fn show(State(app): State<Console>, op: Operator) -> Response {
    let blocks = match app.admin.blocks().await {
        Ok(blocks) => blocks,
        Err(e) => {
            let body = html! { (alert(&format!("Cannot read the blocks: {e}"))) };
            return page::html(
                StatusCode::SERVICE_UNAVAILABLE,
                page::page("Login blocks", Some(&op), Nav::Blocks, body),
            );
        }
    };
    let body = html! {
        p {
            "Sources refused after too many failed logins (IMAP, POP3, SMTP, this console). "
            "A blocked source gets no password checked until its block ends or is lifted."
        }
        @if blocks.is_empty() {
            p #no-blocks { "No source is blocked." }
        } @else {
            table #blocks {
                thead { tr {
                    th { "Source" } th { "Account" } th { "Reason" } th { "Failures" }
                    th { "Since" } th { "Until" } th {}
                } }
                tbody {
                    @for b in &blocks {
                        tr {
                            td.source { (b.source) }
                            td.account { (b.account) }
                            td { (b.reason) }
                            td { (b.failures) }
                            td { (utc(b.since.max(0) as u64)) }
                            td { (utc(b.until.max(0) as u64)) }
                            td {
                                form method="post" action="/console/blocks" {
                                    (csrf_field(&op))
                                    input type="hidden" name="target" value=(b.source);
                                    button.remove { "Lift" }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Let a user in again" }
        form method="post" action="/console/blocks" {
            (csrf_field(&op))
            label {
                "Username or address "
                input name="target" id="target" required;
            }
            button #lift { "Lift their blocks" }
        }
    };
    page::html(
        StatusCode::OK,
        page::page("Login blocks", Some(&op), Nav::Blocks, body),
    )
}

#[derive(Deserialize)]
pub struct Remove {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    target: String,
}

pub async fn remove(
    State(app): State<Console>,
    op: Operator,
    Form(form): Form<Remove>,
) -> Response {
    if let Some(refused) = op.forged(&form.csrf) {
        return refused;
    }
    let lifted = match app.admin.block_target(&form.target) {
        Ok(target) => app.admin.remove_blocks(&target).await.map(|l| (target, l)),
        Err(e) => Err(e),
    };
    let message = match lifted {
        Ok((target, lifted)) => {
            let what = match target {
                Target::Source(source) => format!("source {source}"),
                Target::Account(account) => format!("account {account}"),
            };
            let sources: Vec<&str> = lifted.iter().map(|b| b.source.as_str()).collect();
            tracing::info!(operator = %op.username, target = %what, lifted = ?sources, "console: login blocks lifted");
            if lifted.is_empty() {
                format!("No block for {what}.")
            } else {
                // Served at once on this node rather than at the next poll.
                if let Err(error) = app.site.refresh().await {
                    tracing::warn!(%error, "cannot reload the site after a console change");
                }
                format!(
                    "Lifted {} block(s) for {what}: {}.",
                    lifted.len(),
                    sources.join(", ")
                )
            }
        }
        Err(e) => format!("Nothing lifted: {e}"),
    };
    op.tell(&app, message);
    page::redirect("/console/blocks")
}
