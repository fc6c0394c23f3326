//! Looking up a user: where the site routes them (letter, alias, serving and home
//! server and their states), what the directory holds about them, the settings
//! autoconfig gives their mail client (the very document it serves), and the mail the
//! sorters still hold for them or from them.

use std::fmt::Write;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use mailsite_shared::autoconfig::{ClientConfig, ServerSetting};
use mailsite_shared::route::{Address, Route};
use mailsite_shared::{SiteConfig, SiteMap};
use serde::Deserialize;

use super::Operator;
use super::page::{self, Nav, badge, esc};
use super::sitemap::addresses;
use crate::autoconfig::{App, Kind, account, client_config};
use crate::directory::DirectoryError;
use crate::sorter::queue::{self, Envelope, State as Delivery};

#[derive(Deserialize, Default)]
pub struct LookupQuery {
    #[serde(default)]
    q: String,
}

/// The address a lookup is about: as typed, or a bare username at the site's domain.
fn address_of(config: &SiteConfig, typed: &str) -> String {
    let typed = typed.trim();
    if typed.contains('@') {
        typed.to_string()
    } else {
        format!("{typed}@{}", config.domain)
    }
}

/// A table of client settings, preferred first.
pub fn settings_table(id: &str, settings: &ClientConfig) -> String {
    let mut out = format!(
        "<table id=\"{id}\"><thead><tr><th>Protocol</th><th>Server</th><th>Port</th>\
         <th>Security</th><th>Username</th></tr></thead><tbody>"
    );
    for s in settings.incoming.iter().chain(&settings.outgoing) {
        out.push_str(&setting_row(s));
    }
    out.push_str("</tbody></table>");
    out
}

fn setting_row(s: &ServerSetting) -> String {
    format!(
        "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
        s.protocol.thunderbird_name().to_uppercase(),
        esc(&s.hostname),
        s.port,
        s.security.thunderbird_name(),
        esc(&s.username)
    )
}

/// Where an address is served, as table rows.
pub fn route_rows(map: &SiteMap, route: &Route) -> String {
    let mut out = String::new();
    let serving_state = map.mailbox_state(&route.server).unwrap_or_default();
    let _ = write!(
        out,
        "<tr><th>Letter</th><td id=\"letter\">{}</td></tr>\
         <tr><th>Alias</th><td><code id=\"alias\">{}</code> → {}</td></tr>\
         <tr><th>Served by</th><td><span id=\"server\">{}</span> {}</td></tr>",
        esc(&route.letter),
        esc(&route.alias),
        esc(&route
            .server_addresses
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", ")),
        esc(&route.server),
        badge(serving_state.as_str()),
    );
    if route.redirected() {
        let _ = write!(
            out,
            "<tr><th>Home</th><td>{} {}: the letter is served by {} until it is back</td></tr>",
            esc(&route.home),
            badge(route.home_state.as_str()),
            esc(&route.server)
        );
    } else {
        let _ = write!(out, "<tr><th>Home</th><td>{}</td></tr>", esc(&route.home));
    }
    let outbox: Vec<String> = map
        .outbox_sorters()
        .iter()
        .map(|s| format!("{} ({})", s.name, addresses(s)))
        .collect();
    let _ = write!(
        out,
        "<tr><th>Outbox</th><td><code>{}</code> → {}</td></tr>",
        esc(&route.outbox),
        esc(&outbox.join(", "))
    );
    out
}

/// Whether a queued message is from or for `username` at one of the site's domains.
fn involves(config: &SiteConfig, envelope: &Envelope, username: &str) -> bool {
    let ours = |address: &str| {
        Address::parse(address)
            .is_ok_and(|a| a.local == username && config.serves_domain(&a.domain))
    };
    envelope.authenticated.as_deref() == Some(username)
        || ours(&envelope.sender)
        || envelope.recipients.iter().any(|r| ours(&r.address))
}

/// The queued messages from or for a user, with their sorter, read from the spools.
async fn queued(config: &SiteConfig, username: &str) -> Result<Vec<(String, Envelope)>, String> {
    let spools: Vec<(String, std::path::PathBuf)> = config
        .sorters
        .iter()
        .map(|s| (s.name.clone(), queue::spool_dir(&config.data_dir, &s.name)))
        .collect();
    let config = config.clone();
    let username = username.to_string();
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for (name, dir) in spools {
            for envelope in queue::read_spool(&dir).map_err(|e| e.to_string())? {
                if involves(&config, &envelope, &username) {
                    out.push((name.clone(), envelope));
                }
            }
        }
        Ok(out)
    })
    .await
    .map_err(|e| e.to_string())?
}

fn queue_table(entries: &[(String, Envelope)]) -> String {
    if entries.is_empty() {
        return "<p id=\"queue-empty\">The sorters hold no mail from or for this user: \
                everything was delivered (or nothing was sent).</p>"
            .to_string();
    }
    let now = queue::now();
    let mut out = String::from(
        "<table id=\"queue\"><thead><tr><th>Queue id</th><th>Sorter</th><th>Received</th><th>From</th>\
         <th>To</th><th>State</th><th>Attempts</th><th>Next attempt</th><th>Last error</th></tr></thead><tbody>",
    );
    for (sorter, e) in entries {
        let from = if e.sender.is_empty() {
            "<> (a bounce)"
        } else {
            &e.sender
        };
        for r in &e.recipients {
            let next = match r.state {
                Delivery::Pending if r.next_attempt > now => format!(
                    "in {} s ({})",
                    r.next_attempt - now,
                    crate::admin::utc(r.next_attempt)
                ),
                Delivery::Pending => "now".to_string(),
                _ => String::new(),
            };
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&e.id),
                esc(sorter),
                crate::admin::utc(e.received),
                esc(from),
                esc(&r.address),
                badge(r.describe()),
                r.attempts,
                esc(&next),
                esc(r.last_error.as_deref().unwrap_or(""))
            );
        }
    }
    out.push_str("</tbody></table>");
    out
}

pub async fn show(
    State(app): State<App>,
    op: Operator,
    Query(query): Query<LookupQuery>,
) -> Response {
    let site = app.site.snapshot();
    let config = site.config();
    let typed = query.q.trim();
    let mut body = format!(
        "<form class=\"lookup\" method=\"get\" action=\"/console/user\">\
         <label>Address or username <input name=\"q\" id=\"q\" value=\"{}\" placeholder=\"alice or alice@{}\" required autofocus></label> \
         <button id=\"lookup\">Look up</button></form>",
        esc(typed),
        esc(&config.domain)
    );
    if typed.is_empty() {
        return page::html(
            StatusCode::OK,
            page::page("Look up a user", Some(&op), Nav::Lookup, &body),
        );
    }
    let address = address_of(config, typed);
    let route = match site.map.route(&address) {
        Ok(route) => route,
        Err(e) => {
            let _ = write!(
                body,
                "<p class=\"error\" role=\"alert\">{}: {}</p>",
                esc(&address),
                esc(&e.to_string())
            );
            return page::html(
                StatusCode::BAD_REQUEST,
                page::page("Look up a user", Some(&op), Nav::Lookup, &body),
            );
        }
    };

    let user = app.site.directory.user(&route.username).await;
    let _ = write!(
        body,
        "<section><h2 id=\"subject\">{}</h2><table class=\"facts\" id=\"route\"><tbody>",
        esc(&route.address)
    );
    match &user {
        Ok(u) => {
            let _ = write!(
                body,
                "<tr><th>User</th><td id=\"user\">{} {} {}{}, prefers {}, added {}</td></tr>",
                esc(&u.username),
                if u.display_name.is_empty() {
                    String::new()
                } else {
                    format!("({})", esc(&u.display_name))
                },
                badge(if u.enabled { "enabled" } else { "disabled" }),
                if u.operator { " operator" } else { "" },
                u.preference,
                crate::admin::utc(u.created_at.max(0) as u64)
            );
        }
        Err(DirectoryError::NoUser(_)) => {
            let _ = write!(
                body,
                "<tr><th>User</th><td id=\"user\">{} {}: autoconfig still answers (it does not reveal who has an account)</td></tr>",
                esc(&route.username),
                badge("not in the directory")
            );
        }
        Err(e) => {
            let _ = write!(
                body,
                "<tr><th>User</th><td id=\"user\" class=\"error\">the directory cannot be read: {}</td></tr>",
                esc(&e.to_string())
            );
        }
    }
    body.push_str(&route_rows(&site.map, &route));
    body.push_str("</tbody></table></section>");

    body.push_str("<section><h2>What autoconfig gives this user</h2>");
    match account(&site, &route.address) {
        Ok(acct) => {
            let settings = client_config(&site, &acct);
            body.push_str(&settings_table("settings", &settings));
            let document = app.document(&site, &acct, Kind::Thunderbird);
            let _ = write!(
                body,
                "<details><summary>The Thunderbird document (<code>/mail/config-v1.1.xml?emailaddress={}</code>)</summary><pre>{}</pre></details>",
                esc(&route.address),
                esc(&document)
            );
        }
        Err(refusal) => {
            let _ = write!(
                body,
                "<p class=\"error\" id=\"settings\">Autoconfig refuses this address (400): {}</p>",
                esc(&refusal.0)
            );
        }
    }
    body.push_str("</section><section><h2>Mail the sorters hold</h2>");
    match queued(config, &route.username).await {
        Ok(entries) => body.push_str(&queue_table(&entries)),
        Err(e) => {
            let _ = write!(
                body,
                "<p class=\"error\">The queues cannot be read: {}</p>",
                esc(&e)
            );
        }
    }
    body.push_str("</section>");
    page::html(
        StatusCode::OK,
        page::page("Look up a user", Some(&op), Nav::Lookup, &body),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sorter::queue::Recipient;

    #[test]
    fn queue_entries_from_or_for_a_user_are_theirs() {
        let config = SiteConfig::embedded();
        let envelope = |sender: &str, rcpt: &str, by: Option<&str>| Envelope {
            id: "x".into(),
            sender: sender.into(),
            received: 0,
            authenticated: by.map(str::to_string),
            client: String::new(),
            size: 1,
            recipients: vec![Recipient::new(rcpt.into(), false, 0)],
        };
        assert!(involves(
            &config,
            &envelope("a@example.org", "Alice@Example.Test", None),
            "alice"
        ));
        assert!(involves(
            &config,
            &envelope("alice@example.test", "x@example.org", None),
            "alice"
        ));
        assert!(involves(
            &config,
            &envelope("", "x@example.org", Some("alice")),
            "alice"
        ));
        assert!(!involves(
            &config,
            &envelope("a@example.org", "alice@example.org", None),
            "alice"
        ));
        assert!(!involves(
            &config,
            &envelope("a@example.org", "alicia@example.test", None),
            "alice"
        ));
    }

    #[test]
    fn bare_names_are_at_the_site_domain() {
        let config = SiteConfig::embedded();
        assert_eq!(address_of(&config, " alice "), "alice@example.test");
        assert_eq!(address_of(&config, "<b>@x"), "<b>@x");
    }
}
