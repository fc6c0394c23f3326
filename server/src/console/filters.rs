//! The user page's Sieve section, read only: which filter scripts a user keeps and the
//! text of the one that runs when mail arrives. A helpdesk asked "where did my mail
//! go?" or "why does everyone get my out-of-office reply?" reads the answer here; users
//! change their scripts themselves over ManageSieve.

use maud::{Markup, html};

use super::Console;
use crate::admin::utc;
use crate::directory::User;

pub(super) async fn section(app: &Console, user: &User) -> Markup {
    let scripts = match app.admin.sieve_scripts(&user.username).await {
        Ok(scripts) => scripts,
        Err(e) => return html! { p.error #filters { "The filters cannot be read: " (e) } },
    };
    let Some(active) = scripts.iter().find(|s| s.active) else {
        return html! {
            p #filters {
                @if scripts.is_empty() { (user.username) " has no filters: all mail goes to INBOX." }
                @else { (user.username) " keeps " (scripts.len()) " filter scripts, none active: all mail goes to INBOX." }
            }
        };
    };
    let text = app
        .admin
        .sieve_script(&user.username, &active.name)
        .await
        .unwrap_or_else(|e| format!("(cannot be read: {e})"));
    html! {
        p #filters {
            "The filter script " code { (active.name) } " runs when mail arrives (changed "
            (utc(active.updated_at.max(0) as u64)) ")."
            @if scripts.len() > 1 { " Also kept, not active: " (scripts.len() - 1) "." }
        }
        details #filters-active {
            summary { "The active script" }
            pre { (text) }
        }
    }
}
