//! A desktop helper report, uploaded (a file, or JSON pasted) and shown next to the
//! site's truth: the likely causes first ([`crate::helpdesk::analyse`], the same as
//! `mailsite helpdesk explain`), then what the helper saw beside what the site has
//! (routing, settings, DNS answers, certificate). The report is read, shown and
//! forgotten: it is neither stored nor logged.

use std::fmt::Write;

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::Response;
use mailsite_shared::report::{Outcome, Report};

use super::Operator;
use super::lookup::{route_rows, settings_table};
use super::page::{self, Nav, badge, csrf_field, esc};
use crate::autoconfig::{App, account, client_config};
use crate::helpdesk::{self, Analysis};

/// The largest report taken (a report with every transcript is well under 1 MiB).
pub const MAX_REPORT: usize = 4 * 1024 * 1024;

fn form_html(op: &Operator) -> String {
    format!(
        "<form class=\"report\" method=\"post\" action=\"/console/report\" enctype=\"multipart/form-data\">{}\
         <p>The user runs <code>mailsite-helper report --out report.json</code> (or \"Save report\" in its \
         window) and sends you <code>report.json</code>.</p>\
         <label>Report file <input type=\"file\" name=\"report\" id=\"report-file\" accept=\".json,application/json\"></label>\
         <label>or paste its JSON <textarea name=\"text\" id=\"report-text\" rows=\"6\" spellcheck=\"false\"></textarea></label>\
         <button id=\"explain\">Explain</button></form>",
        csrf_field(op)
    )
}

fn form_page(op: &Operator, status: StatusCode, error: Option<&str>) -> Response {
    let mut body = String::new();
    if let Some(error) = error {
        let _ = write!(body, "<p class=\"error\" role=\"alert\">{}</p>", esc(error));
    }
    body.push_str(&form_html(op));
    page::html(
        status,
        page::page("Helper report", Some(op), Nav::Report, &body),
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
    State(app): State<App>,
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

    let mut body = String::new();
    body.push_str("<section class=\"causes\"><h2>Likely cause</h2>");
    if let Some(note) = helpdesk::schema_note(&report) {
        let _ = write!(body, "<p class=\"warning\">{}</p>", esc(&note));
    }
    if analysis.causes.is_empty() {
        body.push_str("<p id=\"causes\">None found: every step passed and matches the site.</p>");
    } else {
        body.push_str("<ol id=\"causes\">");
        for cause in &analysis.causes {
            let _ = write!(body, "<li>{}</li>", esc(cause));
        }
        body.push_str("</ol>");
    }
    body.push_str("</section><div class=\"columns\">");
    body.push_str(&seen_column(&report));
    body.push_str(&truth_column(&site, &report, &analysis));
    body.push_str("</div>");
    body.push_str("<section><h2>Another report</h2>");
    body.push_str(&form_html(&op));
    body.push_str("</section>");
    let title = format!("Helper report for {}", report.email);
    page::html(
        StatusCode::OK,
        page::page(&title, Some(&op), Nav::Report, &body),
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
fn seen_column(report: &Report) -> String {
    let mut out =
        String::from("<section class=\"column\" id=\"seen\"><h2>What the helper saw</h2>");
    let _ = write!(
        out,
        "<table class=\"facts\"><tbody>\
         <tr><th>Address</th><td>{}</td></tr><tr><th>Protocol</th><td>{}</td></tr>\
         <tr><th>Checked</th><td>{} – {}</td></tr><tr><th>Helper</th><td>{} on {}</td></tr>\
         <tr><th>Summary</th><td id=\"summary\">{} {}</td></tr>",
        esc(&report.email),
        esc(&report.protocol),
        esc(&report.started_at),
        esc(&report.finished_at),
        esc(&report.helper_version),
        esc(&report.os),
        badge(if report.passed { "pass" } else { "fail" }),
        esc(&report.summary),
    );
    if !report.overrides.is_empty() {
        let _ = write!(
            out,
            "<tr><th>Overrides</th><td>{}</td></tr>",
            esc(&report.overrides.join(", "))
        );
    }
    let _ = write!(
        out,
        "<tr><th>Found by</th><td>{}</td></tr></tbody></table>",
        esc(report
            .discovery
            .method
            .as_deref()
            .unwrap_or("nothing answered"))
    );
    if !report.discovery.settings.is_empty() {
        out.push_str(
            "<h3>Settings found</h3><table><thead><tr><th>Protocol</th><th>Server</th><th>Port</th>\
             <th>Security</th><th>Username</th></tr></thead><tbody>",
        );
        for s in &report.discovery.settings {
            let _ = write!(
                out,
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&s.protocol.to_uppercase()),
                esc(&s.host),
                s.port,
                esc(&s.security),
                esc(&s.username)
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("<h3>Steps</h3><ol class=\"steps\">");
    for step in &report.steps {
        let _ = write!(
            out,
            "<li class=\"{}\">{} {} <span class=\"ms\">{} ms</span>",
            outcome(step.outcome),
            badge(outcome(step.outcome)),
            esc(&step.title),
            step.millis
        );
        if let Some(problem) = &step.problem {
            let _ = write!(
                out,
                "<p>{} <em>{}</em></p>",
                esc(&problem.explanation),
                esc(&problem.suggestion)
            );
        }
        if !step.details.is_empty() {
            out.push_str("<details><summary>details</summary><dl>");
            for (k, v) in &step.details {
                let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(v));
            }
            out.push_str("</dl>");
            if !step.transcript.is_empty() {
                let _ = write!(out, "<pre>{}</pre>", esc(&step.transcript.join("\n")));
            }
            out.push_str("</details>");
        }
        out.push_str("</li>");
    }
    out.push_str("</ol>");
    if !report.findings.is_empty() {
        out.push_str("<h3>Findings</h3><ul>");
        for f in &report.findings {
            let _ = write!(
                out,
                "<li>{} <em>{}</em></li>",
                esc(&f.explanation),
                esc(&f.suggestion)
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("</section>");
    out
}

/// What the site has now for the same user.
fn truth_column(site: &crate::state::Snapshot, report: &Report, analysis: &Analysis) -> String {
    let route = &analysis.route;
    let mut out = String::from(
        "<section class=\"column\" id=\"truth\"><h2>The site now</h2><table class=\"facts\"><tbody>",
    );
    match &analysis.user {
        Some(u) => {
            let _ = write!(
                out,
                "<tr><th>User</th><td>{} {}, prefers {}</td></tr>",
                esc(&u.username),
                badge(if u.enabled { "enabled" } else { "disabled" }),
                u.preference
            );
        }
        None => {
            let _ = write!(
                out,
                "<tr><th>User</th><td>{} {}</td></tr>",
                esc(&route.username),
                badge("not in the directory")
            );
        }
    }
    out.push_str(&route_rows(&site.map, route));
    out.push_str("</tbody></table>");

    out.push_str("<h3>Settings autoconfig gives</h3>");
    match account(site, &route.address) {
        Ok(acct) => {
            let settings = client_config(site, &acct);
            out.push_str(&settings_table("site-settings", &settings));
            let differs = report.discovery.settings.iter().any(|seen| {
                !settings
                    .incoming
                    .iter()
                    .chain(&settings.outgoing)
                    .any(|s| s.hostname.eq_ignore_ascii_case(&seen.host) && s.port == seen.port)
            });
            if differs {
                out.push_str(
                    "<p class=\"warning\">The helper found settings the site does not give.</p>",
                );
            }
        }
        Err(refusal) => {
            let _ = write!(
                out,
                "<p class=\"error\">Autoconfig refuses this address: {}</p>",
                esc(&refusal.0)
            );
        }
    }

    if !analysis.names.is_empty() {
        out.push_str(
            "<h3>DNS</h3><table id=\"names\"><thead><tr><th>Name</th><th>The user's computer had</th>\
             <th>The site has</th><th></th></tr></thead><tbody>",
        );
        for name in &analysis.names {
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&name.host),
                esc(&name.seen.join(", ")),
                esc(&name.want.join(", ")),
                badge(if name.agrees() { "matches" } else { "differs" })
            );
        }
        out.push_str("</tbody></table>");
    }
    let mut seen_certs: Vec<&str> = report
        .steps
        .iter()
        .filter_map(|s| s.detail("sha256"))
        .collect();
    seen_certs.sort_unstable();
    seen_certs.dedup();
    if let Some(ours) = &analysis.fingerprint {
        let _ = write!(
            out,
            "<h3>Certificate</h3><p>The site's: <code class=\"fingerprint\">{}</code></p>",
            esc(ours)
        );
        for seen in seen_certs {
            let _ = write!(
                out,
                "<p>Seen: <code class=\"fingerprint\">{}</code> {}</p>",
                esc(seen),
                badge(if seen == ours { "matches" } else { "differs" })
            );
        }
    }
    out.push_str("</section>");
    out
}
