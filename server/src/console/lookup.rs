//! Looking up a user: where the site routes them (letter, alias, serving and home
//! server and their states), what the directory holds about them, the settings
//! autoconfig gives their mail client (the very document it serves), the mail the
//! sorters still hold for them or from them, and buttons for what the console may do
//! to the account ([`super::account`]).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use mailsite_shared::autoconfig::{ClientConfig, ServerSetting};
use mailsite_shared::route::{Address, Route};
use mailsite_shared::{SiteConfig, SiteMap};
use maud::{Markup, html};
use serde::Deserialize;

use super::Console;
use super::Operator;
use super::page::{self, Nav, alert, badge};
use super::sitemap::addresses;
use crate::autoconfig::{Kind, account, client_config};
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
pub fn settings_table(id: &str, settings: &ClientConfig) -> Markup {
    html! {
        table id=(id) {
            thead {
                tr {
                    th { "Protocol" } th { "Server" } th { "Port" } th { "Security" }
                    th { "Username" }
                }
            }
            tbody {
                @for s in settings.incoming.iter().chain(&settings.outgoing) {
                    (setting_row(s))
                }
            }
        }
    }
}

fn setting_row(s: &ServerSetting) -> Markup {
    html! {
        tr {
            td { (s.protocol.thunderbird_name().to_uppercase()) }
            td { code { (s.hostname) } }
            td { (s.port) }
            td { (s.security.thunderbird_name()) }
            td { (s.username) }
        }
    }
}

/// Where an address is served, as table rows.
pub fn route_rows(map: &SiteMap, route: &Route) -> Markup {
    let serving_state = map.mailbox_state(&route.server).unwrap_or_default();
    let server_addresses = route
        .server_addresses
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let outbox: Vec<String> = map
        .outbox_sorters()
        .iter()
        .map(|s| format!("{} ({})", s.name, addresses(s)))
        .collect();
    html! {
        tr { th { "Letter" } td #letter { (route.letter) } }
        tr { th { "Alias" } td { code #alias { (route.alias) } " → " (server_addresses) } }
        tr {
            th { "Served by" }
            td { span #server { (route.server) } " " (badge(serving_state.as_str())) }
        }
        @if route.redirected() {
            tr {
                th { "Home" }
                td {
                    (route.home) " " (badge(route.home_state.as_str()))
                    ": the letter is served by " (route.server) " until it is back"
                }
            }
        } @else {
            tr { th { "Home" } td { (route.home) } }
        }
        tr { th { "Outbox" } td { code { (route.outbox) } " → " (outbox.join(", ")) } }
    }
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

fn queue_table(entries: &[(String, Envelope)]) -> Markup {
    if entries.is_empty() {
        return html! {
            p #queue-empty {
                "The sorters hold no mail from or for this user: everything was delivered (or \
                 nothing was sent)."
            }
        };
    }
    let now = queue::now();
    html! {
        table #queue {
            thead {
                tr {
                    th { "Queue id" } th { "Sorter" } th { "Received" } th { "From" } th { "To" }
                    th { "State" } th { "Attempts" } th { "Next attempt" } th { "Last error" }
                }
            }
            tbody {
                @for (sorter, e) in entries {
                    @let from = if e.sender.is_empty() { "<> (a bounce)" } else { &e.sender };
                    @for r in &e.recipients {
                        @let next = match r.state {
                            Delivery::Pending if r.next_attempt > now => format!(
                                "in {} s ({})",
                                r.next_attempt - now,
                                crate::admin::utc(r.next_attempt)
                            ),
                            Delivery::Pending => "now".to_string(),
                            _ => String::new(),
                        };
                        tr {
                            td { code { (e.id) } }
                            td { (sorter) }
                            td { (crate::admin::utc(e.received)) }
                            td { (from) }
                            td { (r.address) }
                            td { (badge(r.describe())) }
                            td { (r.attempts) }
                            td { (next) }
                            td { (r.last_error.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    }
}

pub async fn show(
    State(app): State<Console>,
    op: Operator,
    Query(query): Query<LookupQuery>,
) -> Response {
    let site = app.site.snapshot();
    let config = site.config();
    let typed = query.q.trim();
    let form = html! {
        form.lookup method="get" action="/console/user" {
            label {
                "Address or username "
                input name="q" id="q" value=(typed)
                    placeholder={ "alice or alice@" (config.domain) } required autofocus;
            }
            " "
            button #lookup { "Look up" }
        }
    };
    let lookup_page = |status, body| {
        page::html(
            status,
            page::page("Look up a user", Some(&op), Nav::Lookup, body),
        )
    };
    if typed.is_empty() {
        return lookup_page(StatusCode::OK, form);
    }
    let address = address_of(config, typed);
    let route = match site.map.route(&address) {
        Ok(route) => route,
        Err(e) => {
            return lookup_page(
                StatusCode::BAD_REQUEST,
                html! { (form) (alert(&format!("{address}: {e}"))) },
            );
        }
    };

    let user = app.site.directory.user(&route.username).await;
    let subject = html! {
        section {
            h2 #subject { (route.address) }
            table.facts #route {
                tbody {
                    @match &user {
                        Ok(u) => tr {
                            th { "User" }
                            td #user {
                                (u.username) " "
                                @if !u.display_name.is_empty() { "(" (u.display_name) ")" }
                                " " (badge(if u.enabled { "enabled" } else { "disabled" }))
                                @if u.operator { " operator" }
                                ", prefers " (u.preference)
                                ", added " (crate::admin::utc(u.created_at.max(0) as u64))
                            }
                        },
                        Err(DirectoryError::NoUser(_)) => tr {
                            th { "User" }
                            td #user {
                                (route.username) " " (badge("not in the directory"))
                                ": autoconfig still answers (it does not reveal who has an account)"
                            }
                        },
                        Err(e) => tr {
                            th { "User" }
                            td id="user" class="error" { "the directory cannot be read: " (e) }
                        },
                    }
                    (route_rows(&site.map, &route))
                }
            }
        }
    };

    // What the console may do to the account (see `account`): buttons to its
    // confirmation pages.
    let actions = match &user {
        Ok(u) if u.operator => html! {
            p #account-actions {
                (u.username) " is an operator: operators' accounts are changed on the server,                  with " code { "mailsite user" } "."
            }
        },
        Ok(u) => {
            let toggle = if u.enabled {
                ("disable", "Disable the account")
            } else {
                ("enable", "Enable the account")
            };
            html! {
                div #account-actions {
                    @for (action, label) in [("password", "Reset the password"), toggle] {
                        form.inline method="get" action="/console/account" {
                            input type="hidden" name="user" value=(u.username);
                            input type="hidden" name="action" value=(action);
                            button id={ "account-" (action) } { (label) }
                        }
                        " "
                    }
                }
            }
        }
        Err(_) => html! {},
    };
    let app_passwords = match &user {
        Ok(u) => html! {
            section { h2 { "App passwords" } (super::app_passwords::section(&app, &op, u).await) }
        },
        Err(_) => html! {},
    };
    let quota = match &user {
        Ok(u) => html! { section { h2 { "Quota" } (super::quota::section(&app, u).await) } },
        Err(_) => html! {},
    };
    let filters = match &user {
        Ok(u) => html! { section { h2 { "Filters" } (super::filters::section(&app, u).await) } },
        Err(_) => html! {},
    };
    let autoconfig = match account(&site, &route.address) {
        Ok(acct) => {
            let settings = client_config(&site, &acct);
            let document = app
                .autoconfig
                .document(&site, acct, Kind::Thunderbird)
                .into_text();
            html! {
                (settings_table("settings", &settings))
                details {
                    summary {
                        "The Thunderbird document ("
                        code { "/mail/config-v1.1.xml?emailaddress=" (route.address) }
                        ")"
                    }
                    pre { (document) }
                }
            }
        }
        Err(refusal) => html! {
            p.error #settings { "Autoconfig refuses this address (400): " (refusal.0) }
        },
    };
    let held = match queued(config, &route.username).await {
        Ok(entries) => queue_table(&entries),
        Err(e) => html! { p.error { "The queues cannot be read: " (e) } },
    };
    lookup_page(
        StatusCode::OK,
        html! {
            (form)
            (subject)
            (actions)
            (app_passwords)
            (quota)
            (filters)
            section { h2 { "What autoconfig gives this user" } (autoconfig) }
            section { h2 { "Mail the sorters hold" } (held) }
        },
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
            ret_full: false,
            envid: None,
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
