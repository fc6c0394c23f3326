//! The console's home page: the site map. Every letter with its alias, the server that
//! serves it and its home; every mailbox server and sorter with its state, what its
//! health checks find and, for sorters, whether `outbox` points at it; and the forms
//! that lead to the confirmation of a move, a drain or a return.

use std::collections::HashMap;
use std::fmt::Write;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use mailsite_shared::config::{BUCKETS, Server};
use mailsite_shared::route::{alias_label, bucket_name};
use mailsite_shared::{ServerState, SiteMap};

use super::Operator;
use super::page::{self, Nav, badge, esc};
use crate::autoconfig::App;
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
            crate::cli::utc(h.changed_at.max(0) as u64),
            h.detail
        ),
        Some(Some(h)) => format!(
            "passing since {}",
            crate::cli::utc(h.changed_at.max(0) as u64)
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
fn server_row(server: &Server, state: ServerState, health: &str, extra: &str) -> String {
    let (target, label) = match state {
        ServerState::Up => ("maintenance", "Drain…"),
        _ => ("up", "Bring back…"),
    };
    format!(
        "<tr id=\"server-{n}\"><th>{n}</th><td>{}</td><td class=\"state\">{}</td><td>{}</td><td>{extra}</td>\
         <td><form method=\"get\" action=\"/console/server\">\
         <input type=\"hidden\" name=\"name\" value=\"{n}\">\
         <input type=\"hidden\" name=\"state\" value=\"{target}\">\
         <button id=\"{target}-{n}\">{label}</button></form></td></tr>",
        esc(&addresses(server)),
        badge(state.as_str()),
        esc(health),
        n = esc(&server.name)
    )
}

pub async fn show(State(app): State<App>, op: Operator) -> Response {
    let site = app.site.snapshot();
    let map = &site.map;
    let config = site.config();
    let health = app.site.directory.server_health().await.ok();
    let mut body = String::new();

    let _ = write!(
        body,
        "<form class=\"lookup\" method=\"get\" action=\"/console/user\">\
         <label>Look up a user <input name=\"q\" id=\"q\" placeholder=\"alice or alice@{d}\" required></label> \
         <button id=\"lookup\">Look up</button></form>\
         <p class=\"hint\">{name}: {d}{others}. Site generation {g}; this page shows the site as the \
         aliases and autoconfig serve it now.</p>",
        d = esc(&config.domain),
        name = esc(&config.name),
        others = if config.other_domains.is_empty() {
            String::new()
        } else {
            format!(" (also {})", esc(&config.other_domains.join(", ")))
        },
        g = map.generation
    );

    body.push_str(
        "<section><h2>Mailbox servers</h2><table id=\"mailboxes\"><thead><tr><th>Server</th>\
         <th>Addresses</th><th>State</th><th>Health checks</th><th>Serves letters</th><th></th></tr></thead><tbody>",
    );
    for (server, state) in config.mailboxes.iter().zip(&map.mailbox_states) {
        body.push_str(&server_row(
            server,
            *state,
            &health_text(health.as_ref(), &server.name),
            &letters_served(map, &server.name),
        ));
    }
    body.push_str("</tbody></table></section>");

    let outbox: Vec<&str> = map
        .outbox_sorters()
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    let _ = write!(
        body,
        "<section><h2>Sorters</h2><p><code>outbox.{}</code> round-robins over the sorters in \
         rotation.</p><table id=\"sorters\"><thead><tr><th>Sorter</th><th>Addresses</th><th>State</th>\
         <th>Health checks</th><th>In outbox rotation</th><th></th></tr></thead><tbody>",
        esc(&config.domain)
    );
    for (server, state) in config.sorters.iter().zip(&map.sorter_states) {
        let rotation = outbox.contains(&server.name.as_str());
        body.push_str(&server_row(
            server,
            *state,
            &health_text(health.as_ref(), &server.name),
            &badge(if rotation { "yes" } else { "no" }),
        ));
    }
    body.push_str("</tbody></table></section>");

    body.push_str(
        "<section><h2>Letters</h2><table id=\"letters\"><thead><tr><th>Letter</th><th>Alias</th>\
         <th>Served by</th><th>Home</th><th>Move to</th></tr></thead><tbody>",
    );
    for bucket in 0..BUCKETS {
        let (owner, home) = (&map.owner(bucket).name, &map.home(bucket).name);
        // The first server that is not the letter's home comes preselected.
        let other = config.mailboxes.iter().position(|s| &s.name != home);
        let options: String = config
            .mailboxes
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let selected = if Some(i) == other { " selected" } else { "" };
                format!("<option{selected}>{}</option>", esc(&s.name))
            })
            .collect();
        let home_note = if owner == home {
            esc(home).into_owned()
        } else {
            format!(
                "{} {}",
                esc(home),
                badge(map.mailbox_state(home).unwrap_or_default().as_str())
            )
        };
        let letter = bucket_name(bucket);
        let _ = write!(
            body,
            "<tr id=\"letter-{l}\"><th>{l}</th><td><code>{}.{}</code></td><td class=\"owner\">{}</td><td>{home_note}</td>\
             <td><form class=\"move\" method=\"get\" action=\"/console/letter\">\
             <input type=\"hidden\" name=\"letter\" value=\"{l}\">\
             <select name=\"server\" aria-label=\"new home of {l}\">{options}</select> <button>Move…</button></form></td></tr>",
            alias_label(bucket),
            esc(&config.domain),
            esc(owner),
            l = letter,
        );
    }
    body.push_str("</tbody></table></section>");
    page::html(
        StatusCode::OK,
        page::page("Site map", Some(&op), Nav::Map, &body),
    )
}
