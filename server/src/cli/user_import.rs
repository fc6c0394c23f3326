//! `mailsite user import FILE`: reads the file (or standard input), reports every bad
//! row before anything is written, shows the import's progress (a bar on a terminal,
//! a line per tenth otherwise, for logs) and sums up what was added, updated or
//! skipped. The parsing and checks are `directory::import`; the import itself is the
//! admin core's.

use std::io::{IsTerminal, Read};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::admin::Admin;
use crate::directory::import::{Format, Summary, parse};

/// Skipped users named in the summary; the rest are counted.
const NAMED: usize = 20;

/// Imports the users of `file` (`-`: standard input).
pub async fn run(
    admin: &Admin,
    file: &Path,
    format: Option<Format>,
    update: bool,
) -> anyhow::Result<()> {
    let from_stdin = file == Path::new("-");
    let mut text = String::new();
    match from_stdin {
        true => std::io::stdin().read_to_string(&mut text),
        false => std::fs::File::open(file).and_then(|mut f| f.read_to_string(&mut text)),
    }
    .with_context(|| format!("cannot read {}", file.display()))?;
    let format = format.unwrap_or_else(|| Format::guess(file, &text));
    let users = match parse(text.as_bytes(), format) {
        Ok(users) => users,
        Err(bad) => {
            for row in &bad {
                eprintln!("{}: {row}", file.display());
            }
            bail!(
                "{} bad row(s) in {}; nothing was imported: fix them and import the file again",
                bad.len(),
                file.display()
            );
        }
    };
    let started = Instant::now();
    let total = users.len();
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(total as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} users ({per_sec}, {eta} left)",
        ) {
            bar.set_style(style);
        }
        bar
    });
    let mut tenths_told = 0;
    let summary = admin
        .import_users(users, update, |done, total| match &bar {
            Some(bar) => bar.set_position(done as u64),
            None => {
                let tenths = done * 10 / total.max(1);
                if tenths > tenths_told {
                    tenths_told = tenths;
                    eprintln!("imported {done}/{total} users");
                }
            }
        })
        .await?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    println!(
        "{}",
        summary_text(&summary, total, started.elapsed().as_secs_f64())
    );
    Ok(())
}

fn summary_text(summary: &Summary, total: usize, seconds: f64) -> String {
    let mut text = format!(
        "{total} user(s) read: {} added, {} updated, {} skipped in {seconds:.1} s",
        summary.added,
        summary.updated,
        summary.skipped.len()
    );
    if !summary.skipped.is_empty() {
        let named: Vec<&str> = summary
            .skipped
            .iter()
            .take(NAMED)
            .map(String::as_str)
            .collect();
        let more = summary.skipped.len().saturating_sub(NAMED);
        text.push_str(&format!(
            "\nskipped (already there, left as they are; --update replaces their name, preference and password): {}{}",
            named.join(", "),
            match more {
                0 => String::new(),
                more => format!(" and {more} more"),
            }
        ));
    }
    text
}
