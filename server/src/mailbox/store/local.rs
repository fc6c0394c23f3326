//! The index's most frequent reads on SQLite, run on the calling thread.
//!
//! sqlx runs every SQLite connection on a thread of its own: each statement is sent to
//! that thread and its rows are sent back one by one, two or more thread wake-ups a
//! statement. With imaptest's ten logged-in clients that hand-off was a third of
//! mailsite's CPU time (`perf`, 2026-12-07), more than SQLite's own work. The reads
//! that every IMAP command makes (the mailbox's row, the messages changed since the
//! session last looked) take a connection of this module instead and step it where
//! they are: a read of the index is a few microseconds of B-tree walk over pages the
//! kernel holds, less than the wake-ups it replaces.
//!
//! The connections open the same file as the pool's, read-only (`query_only`), each
//! statement in a read transaction of its own, so a read sees every transaction any
//! connection committed before it began, as the pool's connections do (WAL). Writes,
//! and reads inside a write transaction, stay on the pool. PostgreSQL, and a SQLite
//! database this module cannot open by path (in memory, or a URL it does not read),
//! keep every read on the pool.
//!
//! The store's writes on such a file take one connection of this module too, while
//! they hold the turn to write (see `database.rs`): a write transaction of five
//! statements was a dozen hand-offs to sqlx's thread and back, each a wake-up that
//! waits for a core while every other writer of the process waits for the turn.
//! Stepped here, a transaction holds the turn for the time SQLite needs. It begins
//! IMMEDIATE, and commits as the pool's connections do (`synchronous = NORMAL`: see
//! `directory/mod.rs`). Another process that holds SQLite's write lock (the CLI)
//! makes it wait on this thread, in SQLite's busy handler, as long as the pool's
//! connections would (5 s at most); writes of this process never meet it, they queue
//! for the turn first.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};
use sqlx::Row;

use super::database::Database;
use super::{Result, Store};

/// A value bound to a statement's `$1`, `$2`, ...
#[derive(Clone, Copy, Debug)]
pub(super) enum Param<'a> {
    Text(&'a str),
    Int(i64),
}

/// A row as either driver gives it, read by column name.
pub(super) trait Cells {
    fn int(&self, column: &str) -> Result<i64>;
    fn text(&self, column: &str) -> Result<String>;
}

impl Cells for sqlx::any::AnyRow {
    fn int(&self, column: &str) -> Result<i64> {
        Ok(self.try_get(column)?)
    }
    fn text(&self, column: &str) -> Result<String> {
        Ok(self.try_get(column)?)
    }
}

impl Cells for rusqlite::Row<'_> {
    fn int(&self, column: &str) -> Result<i64> {
        Ok(self.get(column)?)
    }
    fn text(&self, column: &str) -> Result<String> {
        Ok(self.get(column)?)
    }
}

/// At most this many idle connections are kept; a burst beyond them opens more and
/// closes them after use.
const KEEP: usize = 8;

/// Read-only connections to one SQLite file, lent one at a time.
pub(super) struct Reader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// The connection the store's writes take, one writer at a time.
    writer: Mutex<Option<Connection>>,
}

impl Reader {
    /// The reader of the SQLite database at `url` (as the pool was given it), if it is a
    /// file this module can open: `sqlite://<absolute path>`, with options or none.
    pub(super) fn for_url(url: &str) -> Option<Reader> {
        let (path, options) = url
            .strip_prefix("sqlite://")
            .map(|rest| rest.split_once('?').unwrap_or((rest, "")))?;
        let memory = options
            .split('&')
            .any(|option| option == "mode=memory" || option.starts_with("vfs="));
        let path = PathBuf::from(
            percent_encoding::percent_decode_str(path)
                .decode_utf8()
                .ok()?
                .as_ref(),
        );
        if memory || !path.is_absolute() {
            return None;
        }
        let reader = Reader {
            path,
            idle: Mutex::new(Vec::new()),
            writer: Mutex::new(None),
        };
        // Opened once now, so that a file the pool reads but this cannot is found out
        // here and left to the pool.
        let first = reader.open().ok()?;
        reader.put_back(first);
        Some(reader)
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        open(&self.path)
    }

    fn put_back(&self, connection: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < KEEP {
            idle.push(connection);
        }
    }

    /// Runs `sql` (its parameters written `$1`, `$2`, ...) with `params` and maps every
    /// row it returns.
    pub(super) fn select<T>(
        &self,
        sql: &str,
        params: &[Param<'_>],
        map: impl Fn(&dyn Cells) -> Result<T>,
    ) -> Result<Vec<T>> {
        let taken = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let connection = match taken {
            Some(connection) => connection,
            None => self.open()?,
        };
        let result = select_on(&connection, sql, params, map);
        self.put_back(connection);
        result
    }

    /// The writing connection, for the holder of the turn to write.
    fn take_writer(&self) -> Result<Connection> {
        let kept = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        match kept {
            Some(connection) => Ok(connection),
            None => Ok(open_writer(&self.path)?),
        }
    }

    /// Gives the writing connection back, unless a transaction is still open on it
    /// (one that neither committed nor rolled back: closing it rolls it back).
    fn keep_writer(&self, connection: Connection) {
        if connection.is_autocommit() {
            *self.writer.lock().unwrap_or_else(|e| e.into_inner()) = Some(connection);
        }
    }

    /// Runs one statement that writes, in a transaction of its own, and maps the rows
    /// it returns. The caller holds the turn to write.
    pub(super) fn write<T>(
        &self,
        sql: &str,
        params: &[Param<'_>],
        map: impl Fn(&dyn Cells) -> Result<T>,
    ) -> Result<Vec<T>> {
        let connection = self.take_writer()?;
        let result = select_on(&connection, sql, params, map);
        self.keep_writer(connection);
        result
    }
}

/// A write transaction on the writing connection of a [`Reader`], for the holder of
/// the turn to write. Dropped before [`Writing::commit`], it rolls back.
pub(super) struct Writing {
    connection: Option<Connection>,
    database: Arc<Database>,
}

impl Writing {
    /// Begins a transaction on the writing connection of `database`'s reader, or `None`
    /// when the database has none (PostgreSQL, SQLite in memory).
    pub(super) fn begin(database: &Arc<Database>) -> Option<Result<Writing>> {
        let reader = database.reader.as_ref()?;
        Some(reader.take_writer().and_then(|connection| {
            match connection.execute_batch("BEGIN IMMEDIATE") {
                Ok(()) => Ok(Writing {
                    connection: Some(connection),
                    database: database.clone(),
                }),
                Err(error) => {
                    reader.keep_writer(connection);
                    Err(error.into())
                }
            }
        }))
    }

    fn connection(&self) -> &Connection {
        self.connection
            .as_ref()
            .expect("a transaction's connection is there until it ends")
    }

    fn reader(&self) -> &Reader {
        self.database
            .reader
            .as_ref()
            .expect("a Writing is made only where there is a reader")
    }

    /// Runs `sql` and maps the rows it returns (none for most writes).
    pub(super) fn fetch<T>(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        map: impl Fn(&dyn Cells) -> Result<T>,
    ) -> Result<Vec<T>> {
        select_on(self.connection(), sql, params, map)
    }

    /// Runs `sql`; how many rows it changed.
    pub(super) fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        let mut statement = self.connection().prepare_cached(sql)?;
        bind(&mut statement, params)?;
        Ok(statement.raw_execute()? as u64)
    }

    pub(super) fn commit(mut self) -> Result<()> {
        let connection = self.connection.take().expect("not ended yet");
        let committed = connection.execute_batch("COMMIT");
        if committed.is_err() {
            connection.execute_batch("ROLLBACK").ok();
        }
        self.reader().keep_writer(connection);
        Ok(committed?)
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            connection.execute_batch("ROLLBACK").ok();
            self.reader().keep_writer(connection);
        }
    }
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.pragma_update(None, "query_only", true)?;
    // As long as the pool's connections wait on a lock (sqlx's default).
    connection.busy_timeout(std::time::Duration::from_secs(5))?;
    connection.set_prepared_statement_cache_capacity(32);
    Ok(connection)
}

/// The writing connection: as the pool's (`synchronous = NORMAL`, 5 s on a lock).
fn open_writer(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.busy_timeout(std::time::Duration::from_secs(5))?;
    connection.set_prepared_statement_cache_capacity(64);
    Ok(connection)
}

/// Binds `params` to `$1`, `$2`, ... by name, as sqlx binds them: `$3` may come
/// before `$2` in the text, and a parameter the text does not use is skipped.
fn bind(statement: &mut rusqlite::Statement<'_>, params: &[Param<'_>]) -> Result<()> {
    for (i, param) in params.iter().enumerate() {
        let Some(index) = statement.parameter_index(&format!("${}", i + 1))? else {
            continue;
        };
        match *param {
            Param::Text(text) => statement.raw_bind_parameter(index, text)?,
            Param::Int(int) => statement.raw_bind_parameter(index, int)?,
        }
    }
    Ok(())
}

fn select_on<T>(
    connection: &Connection,
    sql: &str,
    params: &[Param<'_>],
    map: impl Fn(&dyn Cells) -> Result<T>,
) -> Result<Vec<T>> {
    let mut statement = connection.prepare_cached(sql)?;
    bind(&mut statement, params)?;
    let mut rows = statement.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(map(row)?);
    }
    Ok(out)
}

impl Store {
    /// Runs a read of the index outside any transaction: on this thread where the
    /// database is a SQLite file (see the module's note), on the pool otherwise.
    pub(super) async fn select<T>(
        &self,
        sql: &str,
        params: &[Param<'_>],
        map: impl Fn(&dyn Cells) -> Result<T>,
    ) -> Result<Vec<T>> {
        if let Some(reader) = &self.database.reader {
            return reader.select(sql, params, map);
        }
        let rows = bound(sql, params).fetch_all(&self.pool).await?;
        rows.iter().map(|row| map(row)).collect()
    }

    /// Runs one statement that writes, outside any transaction, in this process's
    /// turn to write on SQLite, and maps the rows it returns (`RETURNING`): on this
    /// thread where the database is a SQLite file, on the pool otherwise.
    pub(super) async fn write<T>(
        &self,
        sql: &str,
        params: &[Param<'_>],
        map: impl Fn(&dyn Cells) -> Result<T>,
    ) -> Result<Vec<T>> {
        let _turn = self.write_turn().await;
        if let Some(reader) = &self.database.reader {
            return reader.write(sql, params, map);
        }
        let rows = bound(sql, params).fetch_all(&self.pool).await?;
        rows.iter().map(|row| map(row)).collect()
    }
}

/// `sql` with `params` bound in order, for sqlx.
pub(super) fn bound<'q>(
    sql: &'q str,
    params: &[Param<'q>],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    params
        .iter()
        .fold(sqlx::query(sql), |query, param| match *param {
            Param::Text(text) => query.bind(text),
            Param::Int(int) => query.bind(int),
        })
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{msg, store};
    use super::*;

    #[test]
    fn only_a_sqlite_file_by_absolute_path_gets_a_reader() {
        let dir = std::env::temp_dir().join(format!("mailsite-local-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a b")).unwrap();
        let file = dir.join("a b").join("site.db");
        rusqlite::Connection::open(&file).unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.display()).replace(' ', "%20");
        let at = |name: &str| {
            Reader::for_url(&url.replace("?mode=rwc", &format!("/a%20b/{name}?mode=rwc")))
        };
        assert_eq!(at("site.db").map(|r| r.path), Some(file.clone()));
        assert!(at("missing/site.db").is_none(), "a file it cannot open");
        for url in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite:site.db",
            "sqlite://relative/site.db",
            &format!("sqlite://{}?mode=memory", file.display()),
            "postgres://mailsite@localhost/site",
        ] {
            assert!(Reader::for_url(url).is_none(), "{url}");
        }
        std::fs::remove_dir_all(dir).ok();
    }

    /// On SQLite the store's reads outside transactions take the reader, and see every
    /// change the pool's connections committed before them.
    #[tokio::test]
    async fn reads_on_this_thread_see_every_committed_change() {
        let (s, dir) = store().await;
        // PostgreSQL (MAILSITE_TEST_POSTGRES=1): the same reads, on the pool.
        assert_eq!(s.database.reader.is_some(), s.sqlite);
        s.ensure_user("amy").await.unwrap();
        let before = s.mailbox("amy", "INBOX").await.unwrap();
        for n in 1..=3 {
            s.append("amy", "INBOX", msg(n), &[], None).await.unwrap();
            let now = s.mailbox("amy", "INBOX").await.unwrap();
            assert_eq!(now.uidnext, before.uidnext + n);
            assert_eq!(s.count("amy", "INBOX").await.unwrap(), n as usize);
            assert_eq!(s.uids("amy", "INBOX").await.unwrap().len(), n as usize);
        }
        let changed = s
            .changed_since("amy", "INBOX", before.highestmodseq)
            .await
            .unwrap();
        assert_eq!(changed.iter().map(|m| m.uid).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(changed.windows(2).all(|w| w[0].modseq < w[1].modseq));
        assert!(matches!(
            s.mailbox("amy", "Nowhere").await,
            Err(super::super::StoreError::NoMailbox(_))
        ));
        // The reader reads and nothing else: a write is refused.
        if let Some(reader) = &s.database.reader {
            assert!(
                reader
                    .select("DELETE FROM messages", &[], |_| Ok(()))
                    .is_err()
            );
        }
        assert_eq!(s.count("amy", "INBOX").await.unwrap(), 3);
        std::fs::remove_dir_all(dir).ok();
    }

    /// A write transaction commits whole or not at all, on this thread on a SQLite
    /// file (on the pool on PostgreSQL), and a failed statement or a dropped
    /// transaction leaves the writing connection ready for the next writer.
    #[tokio::test]
    async fn writes_commit_whole_or_roll_back_and_the_next_writer_goes_on() {
        let (s, dir) = store().await;
        s.ensure_user("amy").await.unwrap();
        s.append("amy", "INBOX", msg(1), &[], None).await.unwrap();
        let before = s.mailbox("amy", "INBOX").await.unwrap().highestmodseq;
        // What the pool's connections see, not the reader's.
        let pooled = || async {
            let modseq: i64 = sqlx::Row::get(
                &sqlx::query(
                    "SELECT highestmodseq FROM mailboxes WHERE username = 'amy' AND name = 'INBOX'",
                )
                .fetch_one(&s.pool)
                .await
                .unwrap(),
                0,
            );
            modseq as u64
        };
        let bump = "UPDATE mailboxes SET highestmodseq = highestmodseq + 100 WHERE username = $1 AND name = $2";
        let amy = [Param::Text("amy"), Param::Text("INBOX")];
        // Dropped: nothing of it stays.
        let mut tx = s.write_tx().await.unwrap();
        assert_eq!(tx.execute(bump, &amy).await.unwrap(), 1);
        drop(tx);
        assert_eq!(pooled().await, before);
        // Rolled back after a statement that failed.
        let mut tx = s.write_tx().await.unwrap();
        tx.execute(bump, &amy).await.unwrap();
        assert!(tx.execute("UPDATE nowhere SET x = 1", &[]).await.is_err());
        tx.rollback().await.unwrap();
        assert_eq!(pooled().await, before);
        // Committed: the pool and the reader see it, and RETURNING comes back.
        let mut tx = s.write_tx().await.unwrap();
        let after = tx
            .fetch(
                "UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE username = $1 AND name = $2 RETURNING highestmodseq",
                &amy,
                |row| row.int("highestmodseq"),
            )
            .await
            .unwrap();
        assert_eq!(after, [before as i64 + 1]);
        tx.commit().await.unwrap();
        assert_eq!(pooled().await, before + 1);
        assert_eq!(
            s.mailbox("amy", "INBOX").await.unwrap().highestmodseq,
            before + 1
        );
        // One statement on its own, then the store's own writes go on as before.
        let uid = s
            .write(
                "UPDATE mailboxes SET uidnext = uidnext + 1 WHERE username = $1 AND name = $2 RETURNING uidnext",
                &amy,
                |row| row.int("uidnext"),
            )
            .await
            .unwrap();
        assert_eq!(uid.len(), 1);
        s.append("amy", "INBOX", msg(2), &[], None).await.unwrap();
        s.expunge("amy", "INBOX", &[1]).await.unwrap();
        assert_eq!(s.count("amy", "INBOX").await.unwrap(), 1);
        std::fs::remove_dir_all(dir).ok();
    }
}
