//! The POP3 workload: one client per maildrop downloads every message and deletes it,
//! as a POP3 user's mail program does (USER/PASS, STAT, UIDL, RETR and DELE each
//! message, QUIT, which commits the deletions).

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::conn::{Conn, timed};
use crate::imap::Target;
use crate::stats::Recorder;

pub const LOGIN: usize = 0;
pub const STAT: usize = 1;
pub const UIDL: usize = 2;
pub const RETR: usize = 3;
pub const DELE: usize = 4;
pub const QUIT: usize = 5;
pub const OPS: &[&str] = &["login", "stat", "uidl", "retr", "dele", "quit"];

#[derive(Default)]
pub struct Totals {
    pub messages: AtomicU64,
    pub bytes: AtomicU64,
}

/// Downloads (and unless `keep`, deletes) up to `max` messages of `user`'s maildrop.
pub async fn client(
    target: Target,
    user: String,
    keep: bool,
    max: u64,
    recorder: Recorder,
    totals: Arc<Totals>,
) -> Result<(), String> {
    let limit = target.timeout;
    let fail = |op: usize, e: io::Error| {
        recorder.error(op);
        format!("{user}: {} failed: {e}", OPS[op])
    };
    let refused = |op: usize, conn: &Conn| {
        recorder.error(op);
        format!("{user}: {} refused: {}", OPS[op], conn.last_line())
    };

    let t = Instant::now();
    let mut conn = Conn::connect(target.addr, 64 * 1024)
        .await
        .map_err(|e| fail(LOGIN, e))?;
    let greeting = conn.read_line().await.map_err(|e| fail(LOGIN, e))?;
    if !greeting.starts_with(b"+OK") {
        return Err(refused(LOGIN, &conn));
    }
    if !conn
        .pop3(format!("USER {user}").as_bytes())
        .await
        .map_err(|e| fail(LOGIN, e))?
    {
        return Err(refused(LOGIN, &conn));
    }
    let pass = format!("PASS {}", target.password);
    if !timed(limit, conn.pop3(pass.as_bytes()))
        .await
        .map_err(|e| fail(LOGIN, e))?
    {
        return Err(refused(LOGIN, &conn));
    }
    recorder.ok(LOGIN, t);

    let t = Instant::now();
    if !timed(limit, conn.pop3(b"STAT"))
        .await
        .map_err(|e| fail(STAT, e))?
    {
        return Err(refused(STAT, &conn));
    }
    recorder.ok(STAT, t);
    let count: u64 = conn
        .last_line()
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("{user}: STAT answer unreadable: {}", conn.last_line()))?;

    let t = Instant::now();
    match timed(limit, conn.pop3_multi(b"UIDL"))
        .await
        .map_err(|e| fail(UIDL, e))?
    {
        Some(_) => recorder.ok(UIDL, t),
        None => return Err(refused(UIDL, &conn)),
    }

    for n in 1..=count.min(max) {
        let t = Instant::now();
        let cmd = format!("RETR {n}");
        match timed(limit, conn.pop3_multi(cmd.as_bytes()))
            .await
            .map_err(|e| fail(RETR, e))?
        {
            Some(bytes) => {
                recorder.ok(RETR, t);
                totals.bytes.fetch_add(bytes, Ordering::Relaxed);
            }
            None => return Err(refused(RETR, &conn)),
        }
        if !keep {
            let t = Instant::now();
            let cmd = format!("DELE {n}");
            if !timed(limit, conn.pop3(cmd.as_bytes()))
                .await
                .map_err(|e| fail(DELE, e))?
            {
                return Err(refused(DELE, &conn));
            }
            recorder.ok(DELE, t);
        }
        totals.messages.fetch_add(1, Ordering::Relaxed);
    }

    let t = Instant::now();
    if !timed(limit, conn.pop3(b"QUIT"))
        .await
        .map_err(|e| fail(QUIT, e))?
    {
        return Err(refused(QUIT, &conn));
    }
    recorder.ok(QUIT, t);
    Ok(())
}
