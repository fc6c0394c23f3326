//! The report as people read it: a one-line summary, then discovery, each step with
//! its details and transcript, and what to try. JSON is the report itself (serde).

use std::fmt::Write;
use std::path::{Path, PathBuf};

use mailsite_shared::report::{Outcome, Report};

use crate::HelperError;

/// "All 14 checks passed for alice@example.test (IMAP) in 0.82 s", or the count of
/// failures and the most important problem.
pub fn summary(report: &Report) -> String {
    let total = report.steps.len();
    let failed = report.count(Outcome::Fail);
    let secs = duration(report);
    let who = format!("{} ({})", report.email, report.protocol.to_uppercase());
    if failed == 0 {
        return format!("All {total} checks passed for {who} in {secs:.2} s");
    }
    let first = report
        .findings
        .first()
        .map(|f| f.explanation.clone())
        .or_else(|| {
            report
                .steps
                .iter()
                .filter_map(|s| s.problem.as_ref())
                .find(|p| p.code != "connection_refused" || report.findings.is_empty())
                .map(|p| p.explanation.clone())
        })
        .unwrap_or_default();
    format!("{failed} of {total} checks failed for {who}: {first}")
}

fn duration(report: &Report) -> f64 {
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
    match (parse(&report.started_at), parse(&report.finished_at)) {
        (Some(a), Some(b)) => (b - a).num_milliseconds() as f64 / 1000.0,
        _ => 0.0,
    }
}

/// What the findings mean and what to try.
fn write_findings(out: &mut String, report: &Report) {
    if !report.findings.is_empty() {
        let _ = writeln!(out, "\nWhat this means");
        for f in &report.findings {
            let _ = writeln!(out, "  - {}\n    Try: {}", f.explanation, f.suggestion);
        }
    }
}

/// A step's mark in the text renderings.
fn mark(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Pass => "PASS",
        Outcome::Fail => "FAIL",
        Outcome::Skipped => "SKIP",
    }
}

/// The transcript lines shown with a failed step in the brief rendering: its end,
/// where the failure is.
const BRIEF_TRANSCRIPT: usize = 8;

/// What `check` prints by default: the summary, what it means, a line per step, and
/// for the steps that failed their problem and the end of their transcript. The rest
/// is in `--verbose` and in the report's files.
pub fn brief(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", report.summary);
    write_findings(&mut out, report);
    let method = report.discovery.method.as_deref();
    let _ = writeln!(
        out,
        "\nSettings found by {}",
        method.unwrap_or("nothing (no discovery method answered)")
    );
    for s in &report.discovery.settings {
        let _ = writeln!(
            out,
            "  {:<5} {}:{} {} user {}",
            s.protocol, s.host, s.port, s.security, s.username
        );
    }
    let _ = writeln!(out, "\nSteps");
    for s in &report.steps {
        let _ = writeln!(out, "  {} {} ({} ms)", mark(s.outcome), s.title, s.millis);
        if s.outcome != Outcome::Fail {
            continue;
        }
        if let Some(p) = &s.problem {
            let _ = writeln!(
                out,
                "       problem: {}\n       try: {}",
                p.explanation, p.suggestion
            );
        }
        let skip = s.transcript.len().saturating_sub(BRIEF_TRANSCRIPT);
        if skip > 0 {
            let _ = writeln!(out, "       | ({skip} earlier lines in --verbose)");
        }
        for line in &s.transcript[skip..] {
            let _ = writeln!(out, "       | {line}");
        }
    }
    let _ = writeln!(
        out,
        "\nEvery detail and transcript: mailsite-helper check --verbose, or `report` for the helpdesk."
    );
    out
}

/// Details longer than this are printed once; a step that repeats one refers to the
/// first (a certificate's list of names, shown by every step on the same server).
const LONG_DETAIL: usize = 120;

/// The plain-text rendering (what `report` writes next to the JSON, `check --verbose`
/// prints and the GUI copies).
pub fn text(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", report.summary);
    let _ = writeln!(
        out,
        "\nmailsite-helper {} on {}, {} to {} (UTC)",
        report.helper_version, report.os, report.started_at, report.finished_at
    );
    for o in &report.overrides {
        let _ = writeln!(out, "override: {o}");
    }
    write_findings(&mut out, report);
    let method = report.discovery.method.as_deref();
    let _ = writeln!(out, "\nDiscovery: {}", method.unwrap_or("nothing answered"));
    for a in &report.discovery.attempts {
        let _ = writeln!(
            out,
            "  [{}] {:<12} {} -> {} ({} ms)",
            if a.ok { "ok" } else { "--" },
            a.method,
            a.target,
            a.status,
            a.millis
        );
    }
    for s in &report.discovery.settings {
        let _ = writeln!(
            out,
            "  setting {:<5} {}:{} {} user {}",
            s.protocol, s.host, s.port, s.security, s.username
        );
    }
    let _ = writeln!(out, "\nSteps");
    let mut shown: Vec<(&str, &str)> = Vec::new();
    for s in &report.steps {
        let _ = writeln!(out, "  {} {} ({} ms)", mark(s.outcome), s.title, s.millis);
        for (k, v) in &s.details {
            if v.len() > LONG_DETAIL {
                if shown.contains(&(k.as_str(), v.as_str())) {
                    let _ = writeln!(out, "       {k}: (as above)");
                    continue;
                }
                shown.push((k, v));
            }
            let _ = writeln!(out, "       {k}: {v}");
        }
        if let Some(p) = &s.problem {
            let _ = writeln!(
                out,
                "       problem: {}\n       try: {}",
                p.explanation, p.suggestion
            );
        }
        for line in &s.transcript {
            let _ = writeln!(out, "       | {line}");
        }
    }
    out
}

/// Saves a report for the helpdesk: the JSON in `path`, the text rendering in
/// `path.txt` (whose path comes back).
pub fn write_files(report: &Report, path: &Path) -> Result<PathBuf, HelperError> {
    let failed = |path: &Path, e: &dyn std::fmt::Display| HelperError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let json = serde_json::to_string_pretty(report).map_err(|e| failed(path, &e))?;
    let text_file = PathBuf::from(format!("{}.txt", path.display()));
    std::fs::write(path, json + "\n").map_err(|e| failed(path, &e))?;
    std::fs::write(&text_file, text(report)).map_err(|e| failed(&text_file, &e))?;
    Ok(text_file)
}
