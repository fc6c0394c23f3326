//! The window drawn from [`State`]: the form, the check (steps as they finish, then
//! the results with each step expandable, export, and adding the account to a
//! Thunderbird profile), the POP/IMAP choice; or the report text under review.
//! Nothing here changes state.

use iced::widget::{
    Column, TextInput, button, checkbox, column, container, radio, row, rule, scrollable, text,
    text_input,
};
use iced::{Element, Fill, Font};
use mailsite_shared::autoconfig::Preference;
use mailsite_shared::report::{Discovery, Outcome, Report, Step};

use super::state::{Message, Password, Phase, State};
use crate::{prefs, render};

pub fn view(state: &State) -> Element<'_, Message> {
    let body = match &state.phase {
        Phase::Done {
            report,
            reviewing: true,
            ..
        } => review(state, report),
        phase => column![
            form(state),
            rule::horizontal(1),
            check(state, phase),
            rule::horizontal(1),
            choice(state)
        ]
        .spacing(16)
        .into(),
    };
    scrollable(container(body).padding(24).width(Fill))
        .height(Fill)
        .into()
}

fn field<'a>(label: &'a str, input: TextInput<'a, Message>) -> Element<'a, Message> {
    column![text(label).size(13), input.padding(8)]
        .spacing(4)
        .width(Fill)
        .into()
}

fn form(state: &State) -> Element<'_, Message> {
    let running = state.is_running();
    let mut col = column![
        text("Check your mail settings").size(22),
        text(
            "The helper finds your settings the way mail clients do, tests every server they \
             name, and tells you what fails and what to try."
        )
        .size(13),
        row![
            field(
                "Email address",
                text_input("you@example.org", &state.email)
                    .id("email")
                    .on_input(Message::EmailChanged)
                    .on_submit(Message::Check)
            ),
            field(
                "Password",
                text_input("your mail password", &state.password.0)
                    .id("password")
                    .secure(true)
                    .on_input(|p| Message::PasswordChanged(Password(p)))
                    .on_submit(Message::Check)
            ),
            button(text(if running { "Checking…" } else { "Check" }).size(16))
                .padding([8, 28])
                .on_press_maybe((!running).then_some(Message::Check)),
        ]
        .spacing(12)
        .align_y(iced::Bottom),
        row![
            button(text(site_toggle(state)).size(13))
                .style(button::text)
                .padding(0)
                .on_press(Message::ToggleSite)
                .width(Fill),
            checkbox(state.remember)
                .label("Remember the password in the keyring")
                .text_size(13)
                .on_toggle(Message::RememberToggled),
        ]
        .spacing(10)
        .align_y(iced::Center),
    ]
    .spacing(10);
    if state.site_open {
        col = col.push(
            row![
                field(
                    "Autoconfig URL",
                    text_input("https://autoconfig.<your domain>", &state.site_url)
                        .id("site-url")
                        .on_input(Message::SiteUrlChanged)
                ),
                field(
                    "DNS server",
                    text_input("the system's, e.g. 127.0.0.1:10053", &state.dns)
                        .id("dns")
                        .on_input(Message::DnsChanged)
                ),
                field(
                    "CA certificate (PEM file)",
                    text_input("public authorities only", &state.ca)
                        .id("ca")
                        .on_input(Message::CaChanged)
                ),
            ]
            .spacing(12),
        );
    }
    if let Some(status) = &state.remember_status {
        col = col.push(outcome_text(status).size(13));
    }
    if let Some(notice) = &state.notice {
        col = col.push(text(notice).style(text::danger));
    }
    col.into()
}

fn site_toggle(state: &State) -> String {
    let set: Vec<&str> = [
        (&state.site_url, "autoconfig URL"),
        (&state.dns, "DNS server"),
        (&state.ca, "CA certificate"),
    ]
    .iter()
    .filter(|(v, _)| !v.trim().is_empty())
    .map(|(_, name)| *name)
    .collect();
    let sign = if state.site_open { "-" } else { "+" };
    if set.is_empty() {
        format!("{sign} Site settings (for testing a site; leave empty normally)")
    } else {
        format!("{sign} Site settings in use: {}", set.join(", "))
    }
}

fn choice(state: &State) -> Element<'_, Message> {
    // The label is a button of its own: iced's radio draws its label but does not
    // expose it, and a label should be clickable anyway.
    let option = |label: &'static str, p: Preference| {
        column![
            row![
                radio("", p, state.choice, Message::Choose).spacing(0),
                button(text(label))
                    .style(button::text)
                    .padding(0)
                    .on_press(Message::Choose(p)),
            ]
            .spacing(8)
            .align_y(iced::Center),
            container(text(prefs::consequence(p)).size(13)).padding([0, 28]),
        ]
        .spacing(4)
    };
    let mut col = column![
        text("How should your mail be kept?").size(18),
        option("IMAP: keep it on the server", Preference::Imap),
        option("POP: download it to this computer", Preference::Pop3),
    ]
    .spacing(8);
    let mut actions = row![
        button("Save my choice")
            .style(button::secondary)
            .on_press_maybe(state.choice.map(|_| Message::StoreChoice))
    ]
    .spacing(12)
    .align_y(iced::Center);
    if let Some(status) = &state.choice_status {
        actions = actions.push(outcome_text(status).size(13));
    }
    col = col.push(actions);
    if let (Some(report), Some(choice)) = (state.report(), state.choice)
        && report.protocol != choice.as_str()
    {
        col = col.push(
            text(format!(
                "The last check tested {}; press Check to test {}.",
                report.protocol.to_uppercase(),
                choice.as_str().to_uppercase()
            ))
            .size(13),
        );
    }
    col.into()
}

fn outcome_text(status: &Result<String, String>) -> iced::widget::Text<'_> {
    match status {
        Ok(s) => text(s),
        Err(e) => text(e).style(text::danger),
    }
}

fn check<'a>(state: &'a State, phase: &'a Phase) -> Element<'a, Message> {
    match phase {
        Phase::Idle => text("Type your address and password, then press Check.")
            .size(14)
            .into(),
        Phase::Failed(e) => column![
            text("The check could not run").size(18),
            text(e).style(text::danger)
        ]
        .spacing(6)
        .into(),
        Phase::Running { discovery, steps } => {
            let mut col =
                column![text(format!("Checking… {} steps done", steps.len())).size(18)].spacing(6);
            if let Some(d) = discovery {
                col = col.push(text(discovery_line(d)).size(14));
            }
            col.push(Column::with_children(
                steps.iter().map(|s| step_line(s, None, Opened::Closed)),
            ))
            .into()
        }
        Phase::Done {
            report,
            expanded,
            transcripts,
            discovery_open,
            ..
        } => results(state, report, (expanded, transcripts), *discovery_open),
    }
}

fn discovery_line(d: &Discovery) -> String {
    match &d.method {
        Some(m) => format!(
            "Settings found by {m}: {}",
            d.settings
                .iter()
                .map(|s| format!("{} {}:{}", s.protocol.to_uppercase(), s.host, s.port))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => "No settings found".to_string(),
    }
}

fn mark(outcome: Outcome) -> Element<'static, Message> {
    let (word, style): (&str, fn(&iced::Theme) -> text::Style) = match outcome {
        Outcome::Pass => ("PASS", text::success),
        Outcome::Fail => ("FAIL", text::danger),
        Outcome::Skipped => ("SKIP", text::secondary),
    };
    text(word).size(13).style(style).width(44).into()
}

/// How much of a step is shown.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Opened {
    Closed,
    /// What went wrong in words, what to try, and what was found.
    Details,
    /// And the lines exchanged with the server.
    Transcript,
}

/// One step: a line, and once the check is done a button that opens it: first the
/// plain-language details, then (behind a button of its own) the transcript.
fn step_line(step: &Step, index: Option<usize>, opened: Opened) -> Element<'_, Message> {
    let mut line = row![
        mark(step.outcome),
        text(&step.title).size(14).width(Fill),
        text(format!("{} ms", step.millis)).size(13),
    ]
    .spacing(8)
    .align_y(iced::Center);
    let Some(index) = index else {
        return line.into();
    };
    // Says it opens, in the link colour: a line of text would not look clickable.
    line = line.push(
        text(if opened == Opened::Closed {
            "Show details"
        } else {
            "Hide details"
        })
        .size(13)
        .style(text::primary),
    );
    let header = button(line)
        .style(button::text)
        .width(Fill)
        .padding([2, 0])
        .on_press(Message::ToggleStep(index));
    if opened == Opened::Closed {
        return header.into();
    }
    let mut details = Column::new().spacing(3);
    if let Some(p) = &step.problem {
        details = details.push(text(&p.explanation).style(text::danger).size(14));
        details = details.push(text(format!("Try: {}", p.suggestion)).size(14));
    }
    details = details.extend(
        step.details
            .iter()
            .map(|(k, v)| text(format!("{k}: {v}")).size(13).into()),
    );
    if !step.transcript.is_empty() {
        let label = if opened == Opened::Transcript {
            "Hide what the server said".to_string()
        } else {
            format!(
                "Show what the server said ({} lines)",
                step.transcript.len()
            )
        };
        details = details.push(
            button(text(label).size(13))
                .style(button::text)
                .padding(0)
                .on_press(Message::ToggleTranscript(index)),
        );
        if opened == Opened::Transcript {
            details = details.extend(
                step.transcript
                    .iter()
                    .map(|l| text(l).size(12).font(Font::MONOSPACE).into()),
            );
        }
    }
    column![header, container(details).padding([4, 52])].into()
}

fn results<'a>(
    state: &'a State,
    report: &'a Report,
    (expanded, transcripts): (
        &'a std::collections::BTreeSet<usize>,
        &'a std::collections::BTreeSet<usize>,
    ),
    discovery_open: bool,
) -> Element<'a, Message> {
    let banner = container(text(&report.summary).size(16))
        .padding(12)
        .width(Fill)
        .style(if report.passed {
            container::success
        } else {
            container::danger
        });
    let mut col = column![banner].spacing(10);
    if !report.findings.is_empty() {
        col = col.push(text("What this means").size(18));
        for f in &report.findings {
            col = col.push(text(&f.explanation).size(14));
            col = col.push(text(format!("Try: {}", f.suggestion)).size(14));
        }
    }
    let d = &report.discovery;
    col = col.push(
        button(text(format!(
            "{} Discovery: {} ({} requests; press for each one)",
            if discovery_open { "-" } else { "+" },
            match &d.method {
                Some(m) => format!("settings found by {m}"),
                None => "nothing answered".to_string(),
            },
            d.attempts.len()
        )))
        .style(button::text)
        .padding(0)
        .on_press(Message::ToggleDiscovery),
    );
    if discovery_open {
        col = col.push(text(discovery_line(d)).size(13));
        col = col.extend(d.attempts.iter().map(|a| {
            text(format!(
                "[{}] {} {} -> {} ({} ms)",
                if a.ok { "ok" } else { "--" },
                a.method,
                a.target,
                a.status,
                a.millis
            ))
            .size(13)
            .into()
        }));
    }
    col = col.push(
        text(format!(
            "Steps ({} passed, {} failed, {} skipped; press one for its details)",
            report.count(Outcome::Pass),
            report.count(Outcome::Fail),
            report.count(Outcome::Skipped)
        ))
        .size(18),
    );
    col = col.push(Column::with_children(report.steps.iter().enumerate().map(
        |(i, s)| {
            let opened = match (expanded.contains(&i), transcripts.contains(&i)) {
                (false, _) => Opened::Closed,
                (true, false) => Opened::Details,
                (true, true) => Opened::Transcript,
            };
            step_line(s, Some(i), opened)
        },
    )));
    col = col.push(rule::horizontal(1));
    col = col.push(text("Send this to the helpdesk").size(18));
    col = col.push(export(state));
    col = col.push(rule::horizontal(1));
    col = col.push(thunderbird(state));
    col.into()
}

/// Adding the account to a closed Thunderbird profile: preview first, then write.
fn thunderbird(state: &State) -> Element<'_, Message> {
    let mut col = column![
        text("Thunderbird profile").size(18),
        text(
            "Add this account to Thunderbird: close it, type its profile folder (the one \
             holding prefs.js), preview the lines, then write them to its user.js. \
             No password is written."
        )
        .size(13),
        row![
            text_input("~/.thunderbird/xxxxxxxx.default-release", &state.tb_profile)
                .id("thunderbird-profile")
                .on_input(Message::ProfileChanged)
                .padding(6),
            button("Preview")
                .style(button::secondary)
                .on_press(Message::PreviewThunderbird),
            button("Write to profile")
                .on_press_maybe(state.tb_preview.as_ref().map(|_| Message::WriteThunderbird)),
        ]
        .spacing(10)
        .align_y(iced::Center),
    ]
    .spacing(6);
    if let Some(status) = &state.tb_status {
        col = col.push(outcome_text(status).size(13));
    }
    if let Some(preview) = &state.tb_preview {
        col = col.push(
            container(text(preview).size(12).font(Font::MONOSPACE))
                .padding(12)
                .width(Fill)
                .style(container::bordered_box),
        );
    }
    col.into()
}

fn export(state: &State) -> Element<'_, Message> {
    let mut col = column![
        row![
            button("Review report")
                .style(button::secondary)
                .on_press(Message::Review(true)),
            button("Copy to clipboard")
                .style(button::secondary)
                .on_press(Message::Copy),
            text_input("report.json", &state.report_path)
                .id("report-path")
                .on_input(Message::ReportPathChanged)
                .padding(6),
            button("Save report").on_press(Message::Save),
        ]
        .spacing(10)
        .align_y(iced::Center),
        text("Save report writes the JSON file and, beside it, the same text with .txt added.")
            .size(12),
    ]
    .spacing(6);
    if let Some(status) = &state.export_status {
        col = col.push(outcome_text(status).size(13));
    }
    col.into()
}

fn review<'a>(state: &'a State, report: &'a Report) -> Element<'a, Message> {
    column![
        row![
            button("Back").on_press(Message::Review(false)),
            text("The report as the helpdesk will read it (no password is in it)")
                .size(18)
                .width(Fill),
        ]
        .spacing(12)
        .align_y(iced::Center),
        export(state),
        container(text(render::text(report)).size(12).font(Font::MONOSPACE))
            .padding(12)
            .width(Fill)
            .style(container::bordered_box),
    ]
    .spacing(12)
    .into()
}
