//! A desktop helper report, uploaded (a file, or JSON pasted) and shown next to the
//! site's truth: the likely causes first ([`crate::helpdesk::analyse`], the same as
//! `mailsite helpdesk explain`), then what the helper saw beside what the site has
//! (routing, settings, DNS answers, certificate). The report is read, shown and
//! forgotten: it is neither stored nor logged.

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::Response;
use mailsite_shared::report::{Outcome, Report};
use maud::{Markup, html};

use super::Console;
use super::Operator;
use super::lookup::{route_rows, settings_table};
use super::page::{self, Nav, alert, badge, csrf_field};
use crate::autoconfig::{account, client_config};
use crate::helpdesk::{self, Analysis};

/// The largest report taken (a report with every transcript is well under 1 MiB).
pub const MAX_REPORT: usize = 4 * 1024 * 1024;

fn form_html(op: &Operator) -> Markup {
    html! {
        form.report method="post" action="/console/report" enctype="multipart/form-data" {
            (csrf_field(op))
            p {
                "The user runs " code { "mailsite-helper report --out report.json" }
                " (or \"Save report\" in its window) and sends you " code { "report.json" } "."
            }
            label {
                "Report file "
                input type="file" name="report" id="report-file" accept=".json,application/json";
            }
            label {
                "or paste its JSON "
                textarea name="text" id="report-text" rows="6" spellcheck="false" {}
            }
            button #explain { "Explain" }
        }
    }
}

fn form_page(op: &Operator, status: StatusCode, error: Option<&str>) -> Response {
    let body = html! {
        @if let Some(error) = error {
            (alert(error))
        }
        (form_html(op))
    };
    page::html(
        status,
        page::page("Helper report", Some(op), Nav::Report, body),
    )
}

pub async fn form(op: Operator) -> Response {
    form_page(&op, StatusCode::OK, None)
}

/// The fields of the upload form.
#[derive(Default)]
struct Upload {
    csrf: String,
    file: Vec<u8>,
    text: String,
}

async fn read_upload(mut multipart: Multipart) -> Result<Upload, String> {
    let mut upload = Upload::default();
    let too_big = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            format!("the report is larger than {} MiB", MAX_REPORT >> 20)
        } else {
            format!("the upload could not be read: {}", e.body_text())
        }
    };
    while let Some(field) = multipart.next_field().await.map_err(too_big)? {
        match field.name() {
            Some("csrf") => upload.csrf = field.text().await.map_err(too_big)?,
            Some("report") => upload.file = field.bytes().await.map_err(too_big)?.to_vec(),
            Some("text") => upload.text = field.text().await.map_err(too_big)?,
            _ => {}
        }
    }
    Ok(upload)
}

pub async fn upload(
    State(app): State<Console>,
    op: Operator,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let upload = match multipart {
        Ok(multipart) => read_upload(multipart).await,
        Err(rejection) => Err(format!(
            "send the report with this page's form: {}",
            rejection.body_text()
        )),
    };
    let upload = match upload {
        Ok(upload) => upload,
        Err(e) => return form_page(&op, StatusCode::BAD_REQUEST, Some(&e)),
    };
    if let Some(refused) = op.forged(&upload.csrf) {
        return refused;
    }
    let text = if upload.file.is_empty() {
        upload.text
    } else {
        match String::from_utf8(upload.file) {
            Ok(text) => text,
            Err(_) => {
                return form_page(
                    &op,
                    StatusCode::BAD_REQUEST,
                    Some(
                        "the file is not text: choose the report's .json file, not its .txt or a screenshot",
                    ),
                );
            }
        }
    };
    if text.trim().is_empty() {
        return form_page(
            &op,
            StatusCode::BAD_REQUEST,
            Some("choose a report file or paste its JSON"),
        );
    }
    let report = match helpdesk::parse_report(&text) {
        Ok(report) => report,
        Err(e) => {
            return form_page(
                &op,
                StatusCode::BAD_REQUEST,
                Some(&format!("this is not a mailsite-helper report ({e})")),
            );
        }
    };
    let site = app.site.snapshot();
    let analysis = match helpdesk::analyse(&report, &site.map, &app.site.directory).await {
        Ok(analysis) => analysis,
        Err(e) => {
            return form_page(
                &op,
                StatusCode::BAD_REQUEST,
                Some(&format!(
                    "the report cannot be compared with this site: {e}"
                )),
            );
        }
    };
    tracing::info!(operator = %op.username, user = %analysis.route.address, causes = analysis.causes.len(), "console: helper report explained");

    let body = html! {
        section.causes {
            h2 { "Likely cause" }
            @if let Some(note) = helpdesk::schema_note(&report) {
                p.warning { (note) }
            }
            @if analysis.causes.is_empty() {
                p #causes { "None found: every step passed and matches the site." }
            } @else {
                ol #causes {
                    @for cause in &analysis.causes {
                        li { (cause) }
                    }
                }
            }
        }
        div.columns {
            (seen_column(&report))
            (truth_column(&site, &report, &analysis))
        }
        section {
            h2 { "Another report" }
            (form_html(&op))
        }
    };
    let title = format!("Helper report for {}", report.email);
    page::html(
        StatusCode::OK,
        page::page(&title, Some(&op), Nav::Report, body),
    )
}

fn outcome(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "pass",
        Outcome::Fail => "fail",
        Outcome::Skipped => "skipped",
    }
}

/// What the helper saw: the check, discovery, every step.
fn seen_column(report: &Report) -> Markup {
    html! {
        section.column #seen {
            h2 { "What the helper saw" }
            table.facts {
                tbody {
                    tr { th { "Address" } td { (report.email) } }
                    tr { th { "Protocol" } td { (report.protocol) } }
                    tr { th { "Checked" } td { (report.started_at) " – " (report.finished_at) } }
                    tr { th { "Helper" } td { (report.helper_version) " on " (report.os) } }
                    tr {
                        th { "Summary" }
                        td #summary {
                            (badge(if report.passed { "pass" } else { "fail" }))
                            " " (report.summary)
                        }
                    }
                    @if !report.overrides.is_empty() {
                        tr { th { "Overrides" } td { (report.overrides.join(", ")) } }
                    }
                    tr {
                        th { "Found by" }
                        td { (report.discovery.method.as_deref().unwrap_or("nothing answered")) }
                    }
                }
            }
            @if !report.discovery.settings.is_empty() {
                h3 { "Settings found" }
                table {
                    thead {
                        tr {
                            th { "Protocol" } th { "Server" } th { "Port" } th { "Security" }
                            th { "Username" }
                        }
                    }
                    tbody {
                        @for s in &report.discovery.settings {
                            tr {
                                td { (s.protocol.to_uppercase()) }
                                td { code { (s.host) } }
                                td { (s.port) }
                                td { (s.security) }
                                td { (s.username) }
                            }
                        }
                    }
                }
            }
            h3 { "Steps" }
            ol.steps {
                @for step in &report.steps {
                    li class=(outcome(step.outcome)) {
                        (badge(outcome(step.outcome))) " " (step.title) " "
                        span.ms { (step.millis) " ms" }
                        @if let Some(problem) = &step.problem {
                            p { (problem.explanation) " " em { (problem.suggestion) } }
                        }
                        @if !step.details.is_empty() {
                            details {
                                summary { "details" }
                                dl {
                                    @for (k, v) in &step.details {
                                        dt { (k) }
                                        dd { (v) }
                                    }
                                }
                                @if !step.transcript.is_empty() {
                                    pre { (step.transcript.join("\n")) }
                                }
                            }
                        }
                    }
                }
            }
            @if !report.findings.is_empty() {
                h3 { "Findings" }
                ul {
                    @for f in &report.findings {
                        li { (f.explanation) " " em { (f.suggestion) } }
                    }
                }
            }
        }
    }
}

/// What the site has now for the same user.
fn truth_column(site: &crate::state::Snapshot, report: &Report, analysis: &Analysis) -> Markup {
    let route = &analysis.route;
    let settings = match account(site, &route.address) {
        Ok(acct) => {
            let settings = client_config(site, &acct);
            let differs = report.discovery.settings.iter().any(|seen| {
                !settings
                    .incoming
                    .iter()
                    .chain(&settings.outgoing)
                    .any(|s| s.hostname.eq_ignore_ascii_case(&seen.host) && s.port == seen.port)
            });
            html! {
                (settings_table("site-settings", &settings))
                @if differs {
                    p.warning { "The helper found settings the site does not give." }
                }
            }
        }
        Err(refusal) => html! {
            p.error { "Autoconfig refuses this address: " (refusal.0) }
        },
    };
    let mut seen_certs: Vec<&str> = report
        .steps
        .iter()
        .filter_map(|s| s.detail("sha256"))
        .collect();
    seen_certs.sort_unstable();
    seen_certs.dedup();
    html! {
        section.column #truth {
            h2 { "The site now" }
            table.facts {
                tbody {
                    @match &analysis.user {
                        Some(u) => tr {
                            th { "User" }
                            td {
                                (u.username) " "
                                (badge(if u.enabled { "enabled" } else { "disabled" }))
                                ", prefers " (u.preference)
                            }
                        },
                        None => tr {
                            th { "User" }
                            td { (route.username) " " (badge("not in the directory")) }
                        },
                    }
                    (route_rows(&site.map, route))
                }
            }
            h3 { "Settings autoconfig gives" }
            (settings)
            @if !analysis.names.is_empty() {
                h3 { "DNS" }
                table #names {
                    thead {
                        tr {
                            th { "Name" } th { "The user's computer had" } th { "The site has" }
                            th {}
                        }
                    }
                    tbody {
                        @for name in &analysis.names {
                            tr {
                                td { code { (name.host) } }
                                td { (name.seen.join(", ")) }
                                td { (name.want.join(", ")) }
                                td { (badge(if name.agrees() { "matches" } else { "differs" })) }
                            }
                        }
                    }
                }
            }
            @if let Some(ours) = &analysis.fingerprint {
                h3 { "Certificate" }
                p { "The site's: " code.fingerprint { (ours) } }
                @for seen in &seen_certs {
                    p {
                        "Seen: " code.fingerprint { (seen) } " "
                        (badge(if seen == ours { "matches" } else { "differs" }))
                    }
                }
            }
        }
    }
}
