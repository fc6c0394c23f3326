//! The console's home page: the site map. Every letter with its alias, the server that
//! serves it and its home; every mailbox server and sorter with its state, what its
//! health checks find and, for sorters, whether `outbox` points at it; and the forms
//! that lead to the confirmation of a move, a drain or a return.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use mailsite_shared::config::{BUCKETS, Server};
use mailsite_shared::route::{alias_label, bucket_name};
use mailsite_shared::{ServerState, SiteMap};
use maud::{Markup, html};

use super::Console;
use super::Operator;
use super::page::{self, Nav, badge};
use crate::directory::Health;

/// A server's addresses as text.
pub fn addresses(server: &Server) -> String {
    server
        .addresses
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the health checks say about a server.
pub fn health_text(health: Option<&HashMap<String, Health>>, name: &str) -> String {
    match health.map(|h| h.get(name)) {
        None => "unknown (the directory cannot be read)".to_string(),
        Some(None) => "passing".to_string(),
        Some(Some(h)) if h.failing => format!(
            "failing since {}: {}",
            crate::admin::utc(h.changed_at.max(0) as u64),
            h.detail
        ),
        Some(Some(h)) => format!(
            "passing since {}",
            crate::admin::utc(h.changed_at.max(0) as u64)
        ),
    }
}

/// The letters a mailbox server serves now, as text.
fn letters_served(map: &SiteMap, name: &str) -> String {
    let letters: Vec<String> = (0..BUCKETS)
        .filter(|&b| map.owner(b).name == name)
        .map(bucket_name)
        .collect();
    if letters.is_empty() {
        "none".to_string()
    } else {
        letters.join(" ")
    }
}

/// A server's row: name, addresses, state, health, `extra` (what it serves), and a
/// button that leads to the confirmation of a drain or a return.
fn server_row(server: &Server, state: ServerState, health: &str, extra: Markup) -> Markup {
    let (target, label) = match state {
        ServerState::Up => ("maintenance", "Drain…"),
        _ => ("up", "Bring back…"),
    };
    let n = &server.name;
    html! {
        tr id={ "server-" (n) } {
            th { (n) }
            td { (addresses(server)) }
            td.state { (badge(state.as_str())) }
            td { (health) }
            td { (extra) }
            td {
                form method="get" action="/console/server" {
                    input type="hidden" name="name" value=(n);
                    input type="hidden" name="state" value=(target);
                    button id={ (target) "-" (n) } { (label) }
                }
            }
        }
    }
}

/// A table of mailbox servers or sorters (`kind`), each with its states, health and
/// an `extra` column.
fn servers_table<'a>(
    id: &str,
    kind: &str,
    extra: &str,
    rows: impl Iterator<Item = (&'a Server, ServerState, Markup)>,
    health: Option<&HashMap<String, Health>>,
) -> Markup {
    html! {
        table id=(id) {
            thead {
                tr {
                    th { (kind) } th { "Addresses" } th { "State" } th { "Health checks" }
                    th { (extra) } th {}
                }
            }
            tbody {
                @for (server, state, extra) in rows {
                    (server_row(server, state, &health_text(health, &server.name), extra))
                }
            }
        }
    }
}

pub async fn show(State(app): State<Console>, op: Operator) -> Response {
    let site = app.site.snapshot();
    let map = &site.map;
    let config = site.config();
    let health = app.site.directory.server_health().await.ok();
    let d = &config.domain;
    let outbox: Vec<&str> = map
        .outbox_sorters()
        .iter()
        .map(|s| s.name.as_str())
        .collect();

    let mailboxes = config
        .mailboxes
        .iter()
        .zip(&map.mailbox_states)
        .map(|(server, state)| {
            let letters = html! { (letters_served(map, &server.name)) };
            (server, *state, letters)
        });
    let sorters = config
        .sorters
        .iter()
        .zip(&map.sorter_states)
        .map(|(server, state)| {
            let rotation = outbox.contains(&server.name.as_str());
            (server, *state, badge(if rotation { "yes" } else { "no" }))
        });

    let body = html! {
        form.lookup method="get" action="/console/user" {
            label {
                "Look up a user "
                input name="q" id="q" placeholder={ "alice or alice@" (d) } required;
            }
            " "
            button #lookup { "Look up" }
        }
        p.hint {
            (config.name) ": " (d)
            @if !config.other_domains.is_empty() {
                " (also " (config.other_domains.join(", ")) ")"
            }
            ". Site generation " (map.generation) "; this page shows the site as the aliases \
             and autoconfig serve it now."
        }

        section {
            h2 { "Mailbox servers" }
            (servers_table("mailboxes", "Server", "Serves letters", mailboxes, health.as_ref()))
        }

        section {
            h2 { "Sorters" }
            p { code { "outbox." (d) } " round-robins over the sorters in rotation." }
            (servers_table("sorters", "Sorter", "In outbox rotation", sorters, health.as_ref()))
        }

        section {
            h2 { "Letters" }
            table #letters {
                thead {
                    tr {
                        th { "Letter" } th { "Alias" } th { "Served by" } th { "Home" }
                        th { "Move to" }
                    }
                }
                tbody {
                    @for bucket in 0..BUCKETS {
                        (letter_row(map, bucket))
                    }
                }
            }
        }
    };
    page::html(
        StatusCode::OK,
        page::page("Site map", Some(&op), Nav::Map, body),
    )
}

/// A letter's row: its alias, who serves it, its home, and the form that leads to the
/// confirmation of a move.
fn letter_row(map: &SiteMap, bucket: usize) -> Markup {
    let config = &map.config;
    let (owner, home) = (&map.owner(bucket).name, &map.home(bucket).name);
    // The first server that is not the letter's home comes preselected.
    let other = config.mailboxes.iter().position(|s| &s.name != home);
    let l = bucket_name(bucket);
    html! {
        tr id={ "letter-" (l) } {
            th { (l) }
            td { code { (alias_label(bucket)) "." (config.domain) } }
            td.owner { (owner) }
            td {
                (home)
                @if owner != home {
                    " " (badge(map.mailbox_state(home).unwrap_or_default().as_str()))
                }
            }
            td {
                form.move method="get" action="/console/letter" {
                    input type="hidden" name="letter" value=(l);
                    select name="server" aria-label={ "new home of " (l) } {
                        @for (i, s) in config.mailboxes.iter().enumerate() {
                            option selected[Some(i) == other] { (s.name) }
                        }
                    }
                    " "
                    button { "Move…" }
                }
            }
        }
    }
}
