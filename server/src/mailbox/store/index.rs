//! The index in the site database: the rows of mailboxes and messages, read and
//! written here, and the turn a write transaction takes.

use std::collections::HashMap;

use sqlx::Row;
use tokio::sync::OwnedMutexGuard;

use super::local::{Cells, Param, Writing, bound};
use super::{MailboxInfo, MessageInfo, Result, Store, StoreError, names};
use crate::directory::quota::Usage;

/// A write transaction, holding this process's turn to write on SQLite until it
/// commits, rolls back or is dropped (which rolls back). On a SQLite file its
/// statements run on the calling thread (see `local.rs`); elsewhere on the pool.
pub(super) struct WriteTx {
    inner: Inner,
    _turn: Option<OwnedMutexGuard<()>>,
}

enum Inner {
    Pool(sqlx::Transaction<'static, sqlx::Any>),
    Local(Writing),
}

impl WriteTx {
    /// Runs `sql` with `params` and maps the rows it returns (`RETURNING`, or a
    /// read inside the transaction).
    pub(super) async fn fetch<T>(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        map: impl Fn(&dyn Cells) -> Result<T>,
    ) -> Result<Vec<T>> {
        match &mut self.inner {
            Inner::Local(writing) => writing.fetch(sql, params, map),
            Inner::Pool(tx) => {
                let rows = bound(sql, params).fetch_all(&mut **tx).await?;
                rows.iter().map(|row| map(row)).collect()
            }
        }
    }

    /// Runs `sql` with `params`; how many rows it changed.
    pub(super) async fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        match &mut self.inner {
            Inner::Local(writing) => writing.execute(sql, params),
            Inner::Pool(tx) => Ok(bound(sql, params).execute(&mut **tx).await?.rows_affected()),
        }
    }

    pub(super) async fn commit(self) -> Result<()> {
        match self.inner {
            Inner::Local(writing) => writing.commit(),
            Inner::Pool(tx) => Ok(tx.commit().await?),
        }
    }

    pub(super) async fn rollback(self) -> Result<()> {
        match self.inner {
            // Dropped, it rolls back.
            Inner::Local(writing) => {
                drop(writing);
                Ok(())
            }
            Inner::Pool(tx) => Ok(tx.rollback().await?),
        }
    }
}

/// A message's row: username, mailbox, UID, MODSEQ, flags (space-separated), internal
/// date, size, file (the Maildir base name).
pub(super) const INSERT_MESSAGE: &str = "INSERT INTO messages (username, mailbox, uid, modseq, flags, internal_date, size, file) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (username, mailbox, uid) DO NOTHING";

impl Store {
    /// A transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so that concurrent writers wait their turn instead of failing
    /// when one of them read before another committed (SQLITE_BUSY_SNAPSHOT), and the
    /// writers of this process queue for it first, in the queue of the store's
    /// [`Database`](super::database::Database).
    pub(super) async fn write_tx(&self) -> Result<WriteTx> {
        if !self.sqlite {
            return Ok(WriteTx {
                inner: Inner::Pool(self.pool.begin().await?),
                _turn: None,
            });
        }
        let turn = self.database.turn_to_write().await;
        let inner = match Writing::begin(&self.database) {
            Some(writing) => Inner::Local(writing?),
            None => Inner::Pool(self.pool.begin_with("BEGIN IMMEDIATE").await?),
        };
        Ok(WriteTx {
            inner,
            _turn: Some(turn),
        })
    }

    /// This process's turn to write on SQLite, for a write of one statement outside a
    /// [`WriteTx`] (none on PostgreSQL, whose writers wait on row locks, not in a
    /// sleeping busy handler). Never taken while the same task holds a `WriteTx`.
    pub(super) async fn write_turn(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match self.sqlite {
            true => Some(self.database.turn_to_write().await),
            false => None,
        }
    }

    /// Takes a mailbox's row lock for the rest of a write transaction, before it reads
    /// anything. On PostgreSQL (READ COMMITTED) two STOREs would otherwise read the same
    /// flags and one would undo the other's change, and writers that lock messages and
    /// the mailbox in different orders could deadlock: every writer that reads first
    /// takes the mailbox row first. SQLite's `BEGIN IMMEDIATE` already holds the database.
    pub(super) async fn lock_mailbox(
        &self,
        tx: &mut WriteTx,
        username: &str,
        name: &str,
    ) -> Result<()> {
        if !self.sqlite {
            tx.fetch(
                "SELECT 1 FROM mailboxes WHERE username = $1 AND name = $2 FOR UPDATE",
                &[Param::Text(username), Param::Text(name)],
                |_| Ok(()),
            )
            .await?;
        }
        Ok(())
    }

    fn info(row: &dyn Cells) -> Result<MailboxInfo> {
        Ok(MailboxInfo {
            name: row.text("name")?,
            uidvalidity: row.int("uidvalidity")? as u32,
            uidnext: row.int("uidnext")? as u32,
            highestmodseq: row.int("highestmodseq")? as u64,
            expungedmodseq: row.int("expungedmodseq")? as u64,
            special_use: row.text("special_use")?,
        })
    }

    pub async fn mailboxes(&self, username: &str) -> Result<Vec<MailboxInfo>> {
        let rows = sqlx::query(
            "SELECT name, uidvalidity, uidnext, highestmodseq, expungedmodseq, special_use FROM mailboxes WHERE username = $1 ORDER BY name",
        )
        .bind(username)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| Store::info(row)).collect()
    }

    /// The bytes of mail each user keeps, from the index (users with no mail are left
    /// out). What a rebalance weighs letters by.
    pub async fn bytes_by_user(&self) -> Result<HashMap<String, u64>> {
        let rows = sqlx::query(
            "SELECT username, CAST(SUM(size) AS BIGINT) AS bytes FROM messages GROUP BY username",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let bytes: i64 = row.try_get("bytes")?;
                Ok((row.try_get("username")?, bytes.max(0) as u64))
            })
            .collect()
    }

    /// What a user's mailboxes hold together: messages and octets (what quotas count).
    pub async fn usage(&self, username: &str) -> Result<Usage> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS messages, CAST(COALESCE(SUM(size), 0) AS BIGINT) AS bytes FROM messages WHERE username = $1",
        )
        .bind(username)
        .fetch_one(&self.pool)
        .await?;
        Ok(Usage {
            messages: row.try_get::<i64, _>("messages")?.max(0) as u64,
            storage: row.try_get::<i64, _>("bytes")?.max(0) as u64,
        })
    }

    pub async fn mailbox(&self, username: &str, name: &str) -> Result<MailboxInfo> {
        let name = names::canonical(name)?;
        self.select(
            "SELECT name, uidvalidity, uidnext, highestmodseq, expungedmodseq, special_use FROM mailboxes WHERE username = $1 AND name = $2",
            &[Param::Text(username), Param::Text(&name)],
            Store::info,
        )
        .await?
        .pop()
        .ok_or(StoreError::NoMailbox(name))
    }

    /// A mailbox's state as [`Store::mailbox`] read it in the last moment, or read now:
    /// what IMAP's commands and their refreshes ask for many times a second. Every
    /// change of this process shows in it at once; another process's within
    /// `rows::FRESH_FOR` (a tenth of a second).
    pub async fn mailbox_kept(&self, username: &str, name: &str) -> Result<MailboxInfo> {
        let name = names::canonical(name)?;
        let rows = &self.database.rows;
        if let Some(info) = rows.get(username, &name) {
            return Ok(info);
        }
        let (before, at) = (rows.before_read(), std::time::Instant::now());
        let info = self.mailbox(username, &name).await?;
        rows.keep(username, &info, before, at);
        Ok(info)
    }

    /// Reserves the next UID of a mailbox (never reused; the row's MODSEQ comes with
    /// its insert).
    pub(super) async fn reserve(&self, username: &str, name: &str) -> Result<(u32, u32)> {
        self.write(
            "UPDATE mailboxes SET uidnext = uidnext + 1 \
             WHERE username = $1 AND name = $2 RETURNING uidvalidity, uidnext - 1 AS uid",
            &[Param::Text(username), Param::Text(name)],
            |row| Ok((row.int("uidvalidity")? as u32, row.int("uid")? as u32)),
        )
        .await?
        .pop()
        .ok_or_else(|| StoreError::NoMailbox(name.to_string()))
    }

    /// Adds a message's row. Its MODSEQ is taken in the same transaction, so that a
    /// session that saw HIGHESTMODSEQ before the row existed finds it as a change
    /// (`m.modseq` is ignored).
    pub(super) async fn insert(&self, username: &str, name: &str, m: &MessageInfo) -> Result<()> {
        self.insert_all(username, name, std::slice::from_ref(m))
            .await
    }

    /// Adds messages' rows in one transaction (all or none), each with a MODSEQ of its
    /// own taken there (see [`Store::insert`]).
    pub(super) async fn insert_all(
        &self,
        username: &str,
        name: &str,
        messages: &[MessageInfo],
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        for m in messages {
            let modseq = tx
                .fetch(
                    "UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE username = $1 AND name = $2 RETURNING highestmodseq",
                    &[Param::Text(username), Param::Text(name)],
                    |row| row.int("highestmodseq"),
                )
                .await?
                .pop()
                .ok_or_else(|| StoreError::NoMailbox(name.to_string()))?;
            let flags = m.flags.join(" ");
            tx.execute(
                INSERT_MESSAGE,
                &[
                    Param::Text(username),
                    Param::Text(name),
                    Param::Int(i64::from(m.uid)),
                    Param::Int(modseq),
                    Param::Text(&flags),
                    Param::Int(m.internal_date),
                    Param::Int(m.size as i64),
                    Param::Text(&m.file),
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The messages added or changed after `modseq` (new ones and flag changes).
    pub async fn changed_since(
        &self,
        username: &str,
        name: &str,
        modseq: u64,
    ) -> Result<Vec<MessageInfo>> {
        self.messages_where(username, name, "AND modseq > $3", &[modseq as i64])
            .await
    }

    /// How many messages a mailbox holds.
    pub async fn count(&self, username: &str, name: &str) -> Result<usize> {
        let name = names::canonical(name)?;
        let counts = self
            .select(
                "SELECT COUNT(*) AS n FROM messages WHERE username = $1 AND mailbox = $2",
                &[Param::Text(username), Param::Text(&name)],
                |row| row.int("n"),
            )
            .await?;
        Ok(counts.first().copied().unwrap_or(0).max(0) as usize)
    }

    /// The UIDs of a mailbox, in order.
    pub async fn uids(&self, username: &str, name: &str) -> Result<Vec<u32>> {
        let name = names::canonical(name)?;
        self.select(
            "SELECT uid FROM messages WHERE username = $1 AND mailbox = $2 ORDER BY uid",
            &[Param::Text(username), Param::Text(&name)],
            |row| Ok(row.int("uid")? as u32),
        )
        .await
    }

    pub(super) async fn messages_where(
        &self,
        username: &str,
        name: &str,
        condition: &str,
        params: &[i64],
    ) -> Result<Vec<MessageInfo>> {
        let name = names::canonical(name)?;
        let sql = format!(
            "SELECT uid, modseq, flags, internal_date, size, file FROM messages \
             WHERE username = $1 AND mailbox = $2 {condition} ORDER BY uid"
        );
        let mut bound = vec![Param::Text(username), Param::Text(&name)];
        bound.extend(params.iter().map(|&param| Param::Int(param)));
        self.select(&sql, &bound, |row| {
            Ok(MessageInfo {
                uid: row.int("uid")? as u32,
                modseq: row.int("modseq")? as u64,
                flags: split_flags(&row.text("flags")?),
                internal_date: row.int("internal_date")?,
                size: row.int("size")? as u64,
                file: row.text("file")?,
            })
        })
        .await
    }
}

/// How many UIDs one statement names (the DELETE of an expunge, the SELECT of a STORE):
/// a POP3 QUIT of thousands stays a few statements.
pub(super) const UIDS_PER_STATEMENT: usize = 400;

/// `$3, $4, ...`: a placeholder for each of `uids`, after the user's and the mailbox's
/// (SQLite and PostgreSQL).
pub(super) fn uid_placeholders(uids: &[u32]) -> String {
    (3..3 + uids.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The parameters of a statement written with [`uid_placeholders`]: the user, the
/// mailbox and `uids`.
pub(super) fn uid_params<'a>(username: &'a str, name: &'a str, uids: &[u32]) -> Vec<Param<'a>> {
    [Param::Text(username), Param::Text(name)]
        .into_iter()
        .chain(uids.iter().map(|&uid| Param::Int(i64::from(uid))))
        .collect()
}

/// The flags of an index row, which keeps them separated by spaces.
pub(super) fn split_flags(flags: &str) -> Vec<String> {
    flags.split_whitespace().map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::super::FlagOp;
    use super::super::fixture::{msg, store};

    /// What a rebalance weighs letters by: each user's bytes, over every mailbox.
    #[tokio::test]
    async fn bytes_by_user_adds_up_every_mailbox() {
        let (s, dir) = store().await;
        for user in ["kim", "zoe", "nobody"] {
            s.ensure_user(user).await.unwrap();
        }
        s.create_mailbox("kim", "Projects", "").await.unwrap();
        let mut kim = 0;
        for (n, mailbox) in [(1, "INBOX"), (2, "INBOX"), (30, "Projects")] {
            kim += msg(n).len() as u64;
            s.append("kim", mailbox, msg(n), &[], None).await.unwrap();
        }
        s.append("zoe", "INBOX", msg(4), &[], None).await.unwrap();
        let bytes = s.bytes_by_user().await.unwrap();
        assert_eq!(bytes.get("kim"), Some(&kim));
        assert_eq!(bytes.get("zoe"), Some(&(msg(4).len() as u64)));
        assert_eq!(bytes.get("nobody"), None);
        std::fs::remove_dir_all(dir).ok();
    }

    /// Sessions of several processes write one mailbox at once (on PostgreSQL, with
    /// READ COMMITTED): every message gets its own UID, and no flag change is lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writers_get_distinct_uids_and_keep_every_flag() {
        let (s, dir) = store().await;
        s.ensure_user("kim").await.unwrap();
        let appends: Vec<_> = (0..16)
            .map(|n| {
                let s = s.clone();
                tokio::spawn(async move { s.append("kim", "INBOX", msg(n), &[], None).await })
            })
            .collect();
        let mut uids = Vec::new();
        for append in appends {
            uids.push(append.await.unwrap().unwrap().1);
        }
        uids.sort_unstable();
        assert_eq!(uids, (1..=16).collect::<Vec<u32>>());
        let flags: Vec<String> = (0..12).map(|n| format!("$Label{n}")).collect();
        let stores: Vec<_> = flags
            .iter()
            .map(|flag| {
                let (s, flag) = (s.clone(), flag.clone());
                tokio::spawn(async move {
                    s.store_flags("kim", "INBOX", &[1, 2], FlagOp::Add, &[flag])
                        .await
                })
            })
            .collect();
        let mut modseqs = Vec::new();
        for store in stores {
            modseqs.extend(store.await.unwrap().unwrap().into_iter().map(|c| c.2));
        }
        modseqs.sort_unstable();
        modseqs.dedup();
        assert_eq!(modseqs.len(), 24, "each change its own MODSEQ");
        for m in &s.messages("kim", "INBOX").await.unwrap()[..2] {
            let mut got = m.flags.clone();
            got.sort();
            let mut want = flags.clone();
            want.sort();
            assert_eq!(got, want, "UID {}", m.uid);
        }
        std::fs::remove_dir_all(dir).ok();
    }
}
