//! The console's changes to the site: moving a letter to another mailbox server, and
//! draining a server (maintenance) or bringing it back. Each is a GET that shows what
//! would change (which letters move, where `outbox` points) and a form to confirm it,
//! then a POST that must carry the session's CSRF token and `confirm=yes`. The change
//! goes to the directory like the CLI's, this node reloads at once (the others within
//! a poll), and it is logged with the operator's name.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use mailsite_shared::config::BUCKETS;
use mailsite_shared::route::{alias_label, bucket_name, parse_bucket};
use mailsite_shared::{ServerState, SiteMap};
use maud::{Markup, html};
use serde::Deserialize;

use super::Console;
use super::Operator;
use super::page::{self, Nav, alert, badge, csrf_field};
use super::sitemap::addresses;
use crate::admin::letters::{LetterChange, Progress, Storage, letter_changes, storage_between};
use crate::admin::servers::last_up_warning;

/// The site as it would be with some letters' homes and some servers' states changed.
fn preview(map: &SiteMap, homes: &[(usize, &str)], states: &[(&str, ServerState)]) -> SiteMap {
    let mut overrides: Vec<(usize, String)> = (0..BUCKETS)
        .map(|b| (b, map.home(b).name.clone()))
        .collect();
    for (bucket, server) in homes {
        overrides[*bucket].1 = server.to_string();
    }
    let config = &map.config;
    let mut current: HashMap<String, ServerState> = config
        .mailboxes
        .iter()
        .zip(&map.mailbox_states)
        .chain(config.sorters.iter().zip(&map.sorter_states))
        .map(|(s, state)| (s.name.clone(), *state))
        .collect();
    for (name, state) in states {
        current.insert(name.to_string(), *state);
    }
    SiteMap::new(config.clone(), &overrides, &current, map.generation)
}

fn moves_list(moves: &[LetterChange]) -> Markup {
    html! {
        @if moves.is_empty() {
            p { "No letter changes server." }
        } @else {
            ul.moves {
                @for c in moves {
                    li { (c.letter) " (" code { (c.alias) } "): " (c.from) " → " (c.to) }
                }
            }
        }
    }
}

/// One line for the log and the next page, letters grouped by where they went:
/// `letters a b c: mailbox1 → mailbox2`.
fn moves_line(moves: &[LetterChange]) -> String {
    if moves.is_empty() {
        return "no letter changed server".to_string();
    }
    let mut groups: Vec<((&str, &str), Vec<&str>)> = Vec::new();
    for c in moves {
        let key = (c.from.as_str(), c.to.as_str());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, letters)) => letters.push(&c.letter),
            None => groups.push((key, vec![&c.letter])),
        }
    }
    groups
        .iter()
        .map(|((from, to), letters)| {
            let noun = if letters.len() == 1 {
                "letter"
            } else {
                "letters"
            };
            format!("{noun} {}: {from} → {to}", letters.join(" "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

pub(super) fn refuse(op: &Operator, status: StatusCode, title: &str, message: &str) -> Response {
    let body = html! {
        (alert(message))
        p { a href="/console" { "Back to the site map" } }
    };
    page::html(status, page::page(title, Some(op), Nav::None, body))
}

/// A confirmation page: what will happen, a form that does it, a way back.
pub(super) fn confirmation(
    op: &Operator,
    title: &str,
    explanation: Markup,
    action: &str,
    fields: &[(&str, &str)],
    button: &str,
) -> Response {
    let body = html! {
        (explanation)
        form.confirm method="post" action=(action) {
            (csrf_field(op))
            @for (k, v) in fields {
                input type="hidden" name=(k) value=(v);
            }
            input type="hidden" name="confirm" value="yes";
            button id="confirm" class="danger" { (button) }
            " "
            a href="/console" id="cancel" { "Cancel" }
        }
    };
    page::html(StatusCode::OK, page::page(title, Some(op), Nav::None, body))
}

/// The refusal of a POST without `confirm=yes` (`None`: it is confirmed), and of one
/// without the session's CSRF token.
pub(super) fn refused(op: &Operator, csrf: &str, confirm: &Option<String>) -> Option<Response> {
    if let Some(forged) = op.forged(csrf) {
        return Some(forged);
    }
    if confirm.as_deref() == Some("yes") {
        None
    } else {
        Some(refuse(
            op,
            StatusCode::BAD_REQUEST,
            "Not confirmed",
            "The change was not confirmed, so nothing was changed. Start again from the site map.",
        ))
    }
}

#[derive(Deserialize)]
pub struct MoveQuery {
    #[serde(default)]
    letter: String,
    #[serde(default)]
    server: String,
}

/// The letter and server of a move, checked against the site.
fn move_target(map: &SiteMap, letter: &str, server: &str) -> Result<(usize, String), String> {
    let bucket = parse_bucket(letter).ok_or_else(|| {
        format!("{letter:?} is not a letter: use a-z, or other for digits and the rest")
    })?;
    let server = server.trim().to_ascii_lowercase();
    if map.config.mailbox_index(&server).is_none() {
        return Err(format!("{server:?} is not a mailbox server of this site"));
    }
    Ok((bucket, server))
}

pub async fn confirm_move(
    State(app): State<Console>,
    op: Operator,
    Query(query): Query<MoveQuery>,
) -> Response {
    let site = app.site.snapshot();
    let map = &site.map;
    let (bucket, server) = match move_target(map, &query.letter, &query.server) {
        Ok(target) => target,
        Err(e) => return refuse(&op, StatusCode::BAD_REQUEST, "Cannot move", &e),
    };
    let letter = bucket_name(bucket);
    let alias = format!("{}.{}", alias_label(bucket), map.config.domain);
    if map.home(bucket).name == server {
        return refuse(
            &op,
            StatusCode::OK,
            "Nothing to move",
            &format!("{server} is already the home of letter {letter}."),
        );
    }
    let after = preview(map, &[(bucket, &server)], &[]);
    let users = site
        .users
        .keys()
        .filter(|u| mailsite_shared::route::bucket_of(u) == bucket)
        .count();
    let serving = after.owner(bucket).name.as_str();
    let storage = storage_between(map, &map.home(bucket).name, &server);
    let explanation = html! {
        p {
            "Letter " strong { (letter) } " (" code { (alias) } ") is at home on "
            (map.home(bucket).name) " and served by " (map.owner(bucket).name)
            ". After the move its home is " strong { (server) } ": the alias, autoconfig's \
             answers and the sorters' deliveries follow within the alias TTL, and clients keep \
             their settings. " (users) " users of the directory have this letter."
        }
        (moves_list(&letter_changes(map, &after)))
        @if let Storage::Separate { from: from_root, to: to_root } = &storage {
            p {
                (server) " keeps its mail apart from " (map.home(bucket).name) ", so the letter's \
                 mail is copied to " (server) "'s own storage (" code { (to_root.display().to_string()) }
                ", from " code { (from_root.display().to_string()) } ") while "
                (map.home(bucket).name) " still serves it; then the letter moves, and what arrived \
                 meanwhile is copied too. UIDs and flags stay, so mail clients keep their caches."
            }
        }
        @if serving != server {
            p.warning {
                (server) " is " (after.mailbox_state(&server).unwrap_or_default().as_str())
                ", so the letter is served by " (serving) " until it is up."
            }
        }
    };
    confirmation(
        &op,
        &format!("Move letter {letter} to {server}?"),
        explanation,
        "/console/letter",
        &[("letter", &letter), ("server", &server)],
        &format!("Move letter {letter} to {server}"),
    )
}

#[derive(Deserialize)]
pub struct MoveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    letter: String,
    #[serde(default)]
    server: String,
    confirm: Option<String>,
}

pub async fn move_letter(
    State(app): State<Console>,
    op: Operator,
    Form(form): Form<MoveForm>,
) -> Response {
    if let Some(refused) = refused(&op, &form.csrf, &form.confirm) {
        return refused;
    }
    let before = app.site.snapshot();
    let (bucket, server) = match move_target(&before.map, &form.letter, &form.server) {
        Ok(target) => target,
        Err(e) => return refuse(&op, StatusCode::BAD_REQUEST, "Cannot move", &e),
    };
    let letter = bucket_name(bucket);
    let operator = op.username.clone();
    let progress = |event: Progress<'_>| log_progress(&operator, event);
    // Through the admin core, as `mailsite letter move --migrate`: when the new home
    // keeps mail apart, the letter's mail is copied around the move.
    let done = match app
        .admin
        .move_letter(bucket, &server, true, &progress)
        .await
    {
        Ok(done) => done,
        Err(e) => {
            tracing::warn!(operator = %op.username, %letter, to = %server, error = %e, "console: letter move failed");
            return refuse(
                &op,
                StatusCode::SERVICE_UNAVAILABLE,
                "Cannot move",
                &format!("the move did not happen: {e}"),
            );
        }
    };
    reload(&app).await;
    let after = app.site.snapshot();
    let moved = moves_line(&letter_changes(&before.map, &after.map));
    let copied = match done.copied {
        Some((mirrored, meanwhile)) => format!(
            " {} messages copied to {server}'s own storage ({} of them after the move).",
            mirrored.messages + meanwhile.messages,
            meanwhile.messages
        ),
        None => String::new(),
    };
    tracing::info!(operator = %op.username, %letter, from = %done.from, to = %server, moved = %moved, copied = %copied.trim(), "console: letter moved");
    op.tell(
        &app,
        format!("Letter {letter} now belongs to {server} ({moved}).{copied}"),
    );
    page::redirect("/console")
}

/// Logs a migration's progress with the operator who started it.
fn log_progress(operator: &str, event: Progress<'_>) {
    match event {
        Progress::Copying {
            letter,
            users,
            from,
            to,
            ..
        } => {
            tracing::info!(%operator, %letter, users, %from, %to, "console: copying the letter's mail")
        }
        Progress::Mirrored(copied) => {
            tracing::info!(%operator, messages = copied.messages, bytes = copied.bytes, "console: mail copied; moving the letter")
        }
        Progress::CaughtUp { copied, elapsed } => {
            tracing::info!(%operator, messages = copied.messages, seconds = elapsed.as_secs_f64(), "console: what arrived meanwhile is copied")
        }
        Progress::UserCopied { .. }
        | Progress::Flipped { .. }
        | Progress::Planned(_)
        | Progress::Moved(_) => {}
    }
}

#[derive(Deserialize)]
pub struct StateQuery {
    #[serde(default)]
    name: String,
    #[serde(default)]
    state: String,
}

/// The server and target state of a change, checked against the site: `(name, is a
/// mailbox server, state)`.
fn state_target(
    map: &SiteMap,
    name: &str,
    state: &str,
) -> Result<(String, bool, ServerState), String> {
    let name = name.trim().to_ascii_lowercase();
    let state = match state {
        "maintenance" => ServerState::Maintenance,
        "up" => ServerState::Up,
        other => {
            return Err(format!(
                "{other:?} is not a state an operator sets: use maintenance or up"
            ));
        }
    };
    let config = &map.config;
    if config.mailbox_index(&name).is_some() {
        Ok((name, true, state))
    } else if config.sorters.iter().any(|s| s.name == name) {
        Ok((name, false, state))
    } else {
        Err(format!("{name:?} is not a server of this site"))
    }
}

fn outbox_line(map: &SiteMap) -> String {
    map.outbox_sorters()
        .iter()
        .map(|s| format!("{} ({})", s.name, addresses(s)))
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn confirm_state(
    State(app): State<Console>,
    op: Operator,
    Query(query): Query<StateQuery>,
) -> Response {
    let site = app.site.snapshot();
    let map = &site.map;
    let (name, mailbox, state) = match state_target(map, &query.name, &query.state) {
        Ok(target) => target,
        Err(e) => return refuse(&op, StatusCode::BAD_REQUEST, "Cannot change", &e),
    };
    let failing = app
        .site
        .directory
        .server_health()
        .await
        .ok()
        .and_then(|h| h.get(&name).map(|h| h.failing))
        .unwrap_or(false);
    // Health keeps a failing server down whatever the operator says.
    let effective = if state == ServerState::Up && failing {
        ServerState::Down
    } else {
        state
    };
    let after = preview(map, &[], &[(&name, effective)]);
    let current = if mailbox {
        map.mailbox_state(&name)
    } else {
        map.config
            .sorters
            .iter()
            .position(|s| s.name == name)
            .map(|i| map.sorter_states[i])
    }
    .unwrap_or_default();
    // Draining the last server of its kind: said plainly, and confirming forces it.
    let last = (state == ServerState::Maintenance && current != ServerState::Maintenance)
        .then(|| last_up_warning(map, &name))
        .flatten();
    let (title, button) = match (state, &last) {
        (ServerState::Maintenance, None) => (format!("Drain {name}?"), format!("Drain {name}")),
        (ServerState::Maintenance, Some(_)) => (
            format!("Drain {name}, the last one up?"),
            format!("Drain {name} anyway"),
        ),
        _ => (format!("Bring {name} back?"), format!("Bring {name} back")),
    };
    let domain = &map.config.domain;
    let explanation = html! {
        p { (name) " is " (badge(current.as_str())) " now." }
        @if let Some(warning) = &last {
            p.warning { (warning) }
        }
        @match (state, mailbox) {
            (ServerState::Maintenance, true) if last.is_some() => p {
                "Draining it marks it for maintenance; its letters stay on it."
            },
            (ServerState::Maintenance, true) => p {
                "Draining it moves its letters to the other mailbox servers: their aliases \
                 resolve there within the alias TTL, autoconfig answers follow, its open IMAP \
                 and POP3 sessions are told to reconnect, and the health checks never end a \
                 maintenance. Letters that move:"
            },
            (ServerState::Maintenance, false) => p {
                "Draining it takes it out of " code { "outbox." (domain) } "'s rotation. \
                 Afterwards outbox points at: " (outbox_line(&after)) "."
            },
            (_, true) => p { "Bringing it back returns its letters to it. Letters that move:" },
            (_, false) => p {
                "Bringing it back returns it to " code { "outbox." (domain) } "'s rotation: "
                (outbox_line(&after)) "."
            },
        }
        @if mailbox {
            (moves_list(&letter_changes(map, &after)))
        }
        @if failing && state == ServerState::Up {
            p.warning { "Its health checks fail, so it stays down until they pass." }
        }
    };
    confirmation(
        &op,
        &title,
        explanation,
        "/console/server",
        &[
            ("name", &name),
            ("state", state.as_str()),
            ("force", if last.is_some() { "yes" } else { "no" }),
        ],
        &button,
    )
}

#[derive(Deserialize)]
pub struct StateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    state: String,
    /// `yes` when the confirmation page warned that this is the last server of its
    /// kind that is up.
    #[serde(default)]
    force: String,
    confirm: Option<String>,
}

pub async fn set_state(
    State(app): State<Console>,
    op: Operator,
    Form(form): Form<StateForm>,
) -> Response {
    if let Some(refused) = refused(&op, &form.csrf, &form.confirm) {
        return refused;
    }
    let before = app.site.snapshot();
    let (name, mailbox, state) = match state_target(&before.map, &form.name, &form.state) {
        Ok(target) => target,
        Err(e) => return refuse(&op, StatusCode::BAD_REQUEST, "Cannot change", &e),
    };
    let force = form.force == "yes";
    if let Err(e) = app.admin.set_server_state(&name, state, force).await {
        tracing::warn!(operator = %op.username, server = %name, %state, error = %e, "console: server state change failed");
        return refuse(
            &op,
            StatusCode::SERVICE_UNAVAILABLE,
            "Cannot change",
            &format!("the directory refused the change: {e}"),
        );
    }
    reload(&app).await;
    let after = app.site.snapshot();
    let what = if mailbox {
        moves_line(&letter_changes(&before.map, &after.map))
    } else {
        format!(
            "outbox.{} → {}",
            after.config().domain,
            outbox_line(&after.map)
        )
    };
    tracing::info!(operator = %op.username, server = %name, %state, changes = %what, "console: server state set");
    op.tell(&app, format!("{name} is now {state}: {what}."));
    page::redirect("/console")
}

/// Serves a change at once on this node rather than at the next poll.
pub(super) async fn reload(app: &Console) {
    if let Err(error) = app.site.refresh().await {
        tracing::warn!(%error, "cannot reload the site after a console change");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn previews_show_which_letters_move() {
        let map = SiteMap::initial(Arc::new(mailsite_shared::SiteConfig::embedded()));
        let drained = preview(&map, &[], &[("mailbox1", ServerState::Maintenance)]);
        let moved = letter_changes(&map, &drained);
        assert!(!moved.is_empty());
        assert!(
            moved
                .iter()
                .all(|c| c.from == "mailbox1" && c.to == "mailbox2")
        );
        assert_eq!(moved[0].alias, "maila.example.test");
        let one = preview(&map, &[(0, "mailbox2")], &[]);
        assert_eq!(
            moves_line(&letter_changes(&map, &one)),
            "letter a: mailbox1 → mailbox2"
        );
        assert!(moves_line(&moved).starts_with("letters a b c "));
        let sorter = preview(&map, &[], &[("sorter1", ServerState::Maintenance)]);
        assert!(letter_changes(&map, &sorter).is_empty());
        assert!(!outbox_line(&sorter).contains("sorter1"));
    }

    #[test]
    fn targets_are_checked_against_the_site() {
        let map = SiteMap::initial(Arc::new(mailsite_shared::SiteConfig::embedded()));
        assert_eq!(
            move_target(&map, "A", "Mailbox2"),
            Ok((0, "mailbox2".into()))
        );
        assert!(move_target(&map, "ab", "mailbox2").is_err());
        assert!(move_target(&map, "a", "sorter1").is_err());
        assert_eq!(
            state_target(&map, "sorter1", "maintenance"),
            Ok(("sorter1".into(), false, ServerState::Maintenance))
        );
        assert!(state_target(&map, "mailbox1", "down").is_err());
        assert!(state_target(&map, "<x>", "up").is_err());
    }
}
