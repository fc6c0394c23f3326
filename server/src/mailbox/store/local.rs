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

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags};
use sqlx::Row;

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

fn select_on<T>(
    connection: &Connection,
    sql: &str,
    params: &[Param<'_>],
    map: impl Fn(&dyn Cells) -> Result<T>,
) -> Result<Vec<T>> {
    let mut statement = connection.prepare_cached(sql)?;
    for (i, param) in params.iter().enumerate() {
        // By name, as sqlx binds them: `$3` may come before `$2` in the text.
        let Some(index) = statement.parameter_index(&format!("${}", i + 1))? else {
            continue;
        };
        match *param {
            Param::Text(text) => statement.raw_bind_parameter(index, text)?,
            Param::Int(int) => statement.raw_bind_parameter(index, int)?,
        }
    }
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
        let mut query = sqlx::query(sql);
        for param in params {
            query = match *param {
                Param::Text(text) => query.bind(text),
                Param::Int(int) => query.bind(int),
            };
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(|row| map(row)).collect()
    }
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
}
