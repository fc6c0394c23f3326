//! The `letter` commands (list, move, rebalance) and how letter changes and a long
//! move's progress are printed; `server add --rebalance` and `server drain` print
//! through the same helpers.

use anyhow::Context;
use mailsite_shared::SiteMap;
use mailsite_shared::config::BUCKETS;
use mailsite_shared::route::{alias_label, bucket_name, parse_bucket};

use super::LetterCommand;
use crate::admin::Admin;
use crate::admin::letters::{LetterChange, Progress, Storage};
use crate::admin::rebalance::Plan;

pub(super) fn print_letters(map: &SiteMap) {
    println!("{:<7} {:<20} {:<10} HOME", "LETTER", "ALIAS", "SERVER");
    for b in 0..BUCKETS {
        let home = &map.home(b).name;
        let owner = &map.owner(b).name;
        let note = if home == owner {
            String::new()
        } else {
            format!("{home} ({})", map.mailbox_state(home).unwrap_or_default())
        };
        println!(
            "{:<7} {:<20} {:<10} {}",
            bucket_name(b),
            format!("{}.{}", alias_label(b), map.config.domain),
            owner,
            note
        );
    }
}

/// Prints which letters changed server.
pub(super) fn print_changes(changes: &[LetterChange]) {
    for c in changes {
        println!("  {} ({}): {} -> {}", c.letter, c.alias, c.from, c.to);
    }
    if changes.is_empty() {
        println!("  no letter changed server");
    }
}

/// Prints a move's progress as it goes (letter moves with --migrate, rebalances).
pub(super) fn print_progress(event: Progress<'_>) {
    match event {
        Progress::Copying {
            letter,
            users,
            from,
            from_root,
            to,
            to_root,
        } => println!(
            "letter {letter}: copying {users} user(s)' mail from {from} ({}) to {to} ({}) while {from} serves them",
            from_root.display(),
            to_root.display()
        ),
        Progress::UserCopied {
            index,
            total,
            user,
            copied,
            so_far,
        } => println!(
            "  {}/{total} {user}: {} message(s) in {} mailbox(es) ({so_far} in all)",
            index + 1,
            copied.messages,
            copied.mailboxes,
        ),
        Progress::Mirrored(copied) => println!(
            "  copied {} message(s), {} bytes; removed {} stale file(s) or folder(s) from the new server",
            copied.messages, copied.bytes, copied.removed
        ),
        Progress::Flipped { letter, from, to } => {
            println!("letter {letter} now belongs to {to}; copying what {from} received meanwhile")
        }
        Progress::CaughtUp { copied, elapsed } => println!(
            "  copied {} more message(s); done in {:.1} s",
            copied.messages,
            elapsed.as_secs_f64()
        ),
        Progress::Planned(plan) => print_plan(plan),
        Progress::Moved(c) => println!("letter {}: {} -> {} ({})", c.letter, c.from, c.to, c.alias),
    }
}

/// "1.5 GiB", "20 KiB", "512 B".
fn bytes_text(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Prints a rebalance plan: the moves, and each server's share before and after.
fn print_plan(plan: &Plan) {
    if plan.moves.is_empty() {
        println!(
            "every mailbox server that is up already carries an even share of the load (within 2%):"
        );
    } else {
        println!("plan: {} letter move(s)", plan.moves.len());
        print_changes(&plan.moves);
        println!("shares of the load (users and mail stored), before -> after:");
    }
    for (before, after) in plan.before.iter().zip(&plan.after) {
        if plan.moves.is_empty() {
            println!(
                "  {:<10} {:>5.1}%  {} letter(s), {} user(s), {}",
                before.server,
                before.percent(),
                before.letters,
                before.users,
                bytes_text(before.bytes)
            );
        } else {
            println!(
                "  {:<10} {:>5.1}% -> {:>5.1}%  letters {} -> {}, users {} -> {}, mail {} -> {}",
                before.server,
                before.percent(),
                after.percent(),
                before.letters,
                after.letters,
                before.users,
                after.users,
                bytes_text(before.bytes),
                bytes_text(after.bytes)
            );
        }
    }
}

pub(super) async fn rebalance(admin: &Admin, migrate: bool, dry_run: bool) -> anyhow::Result<()> {
    if dry_run {
        let plan = admin.rebalance_plan().await?;
        print_plan(&plan);
        if !plan.moves.is_empty() {
            println!("nothing moved (--dry-run)");
        }
        return Ok(());
    }
    let done = admin.rebalance(migrate, &print_progress).await?;
    if !done.plan.moves.is_empty() {
        print_letters(&done.after);
    }
    Ok(())
}

pub(super) async fn letter(admin: &Admin, cmd: LetterCommand) -> anyhow::Result<()> {
    match cmd {
        LetterCommand::List => print_letters(&admin.site_map().await?),
        LetterCommand::Rebalance { migrate, dry_run } => rebalance(admin, migrate, dry_run).await?,
        LetterCommand::Move {
            letter,
            server,
            migrate,
        } => {
            let bucket = parse_bucket(&letter).with_context(|| {
                format!("{letter:?} is not a letter: use a-z, or other for digits and the rest")
            })?;
            let done = admin
                .move_letter(bucket, &server, migrate, &print_progress)
                .await?;
            if let (Storage::Shared(root), true) = (&done.storage, migrate) {
                println!(
                    "{} and {} share the storage {}: nothing to copy",
                    done.from,
                    done.server,
                    root.display()
                );
            }
            println!(
                "letter {} now belongs to {}; running nodes follow within a second",
                done.letter, done.server
            );
            print_changes(&done.changes());
            if let Some(state) = done.waiting_for() {
                println!(
                    "  note: {} is {state}, so {} is served by {} until it is up",
                    done.server,
                    alias_label(bucket),
                    done.after.owner(bucket).name
                );
            }
        }
    }
    Ok(())
}
