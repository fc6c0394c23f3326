//! The site change log: every change of the directory or the site's state appends a
//! row naming what changed, in the transaction that makes the change, so that a node
//! can follow the site by reading only what is new (an indexed range of this table)
//! and then only the users those rows name, instead of every user at every change.
//!
//! A row's id is the site generation its change made. Writers take the generation row's
//! lock to get their ids, so ids commit in order and without gaps: a node that has
//! applied generation `g` and finds the rows `g+1 ..= now` all there has missed nothing.
//! When rows are missing (pruned while the node was behind, or a change made by a
//! version of mailsite that kept no log) the node reloads everything instead.

use sqlx::Row;

use super::{Directory, Result, now};

/// How many changes the log keeps: a node further behind than this reloads everything
/// (as it does at start), which costs one read of the users table.
pub const KEEP: i64 = 10_000;

/// Pruning runs when the generation crosses a multiple of this, not at every change.
const PRUNE_EVERY: i64 = 100;

/// More pending changes than this are cheaper to catch up on with one full reload
/// (a bulk import) than user by user.
pub const MOST_PENDING: i64 = 2_000;

/// The PostgreSQL channel on which every committed change is announced.
const CHANNEL: &str = "mailsite_site_changes";
const NOTICES: &str = "NOTIFY mailsite_site_changes";

/// What a logged change touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// One user (added, changed or removed), named by username.
    User,
    /// The site map: a letter, a server's state or health, an added server.
    Site,
    /// A login block added or lifted, named by source or account.
    Block,
}

impl Subject {
    fn as_str(self) -> &'static str {
        match self {
            Subject::User => "user",
            Subject::Site => "site",
            Subject::Block => "block",
        }
    }
}

/// One row of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub id: i64,
    pub subject: Subject,
    pub name: String,
}

/// What happened after the generation a node last applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// Nothing: the node is current.
    Nothing,
    /// These changes, in order, up to `generation`.
    Changes {
        generation: i64,
        changes: Vec<Change>,
    },
    /// The log cannot say (too far behind, pruned, or written without a log): reload all.
    Reload,
}

/// Records `names` (each one change of `subject`) in `tx`: bumps the generation by
/// their number and logs one row per change; returns the new generation. Holding the
/// generation row's lock until commit is what keeps the ids in commit order.
pub(super) async fn record(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    subject: Subject,
    names: &[&str],
) -> Result<i64> {
    if names.is_empty() {
        return current_generation(&mut **tx).await;
    }
    let count = names.len() as i64;
    let generation: i64 = sqlx::query(
        "UPDATE site_generation SET generation = generation + $1 WHERE id = 1 RETURNING generation",
    )
    .bind(count)
    .fetch_one(&mut **tx)
    .await?
    .try_get(0)?;
    let first = generation - count + 1;
    let at = now();
    // Batches stay far below the databases' limits on bound parameters (4 per row).
    for (chunk_index, chunk) in names.chunks(1_000).enumerate() {
        let sql = format!(
            "INSERT INTO site_changes (id, kind, name, changed_at) VALUES {}",
            placeholders(chunk.len(), 4)
        );
        let mut query = sqlx::query(&sql);
        for (i, name) in chunk.iter().enumerate() {
            query = query
                .bind(first + (chunk_index * 1_000 + i) as i64)
                .bind(subject.as_str())
                .bind(name.to_string())
                .bind(at);
        }
        query.execute(&mut **tx).await?;
    }
    if tx.backend_name() == <sqlx::Postgres as sqlx::Database>::NAME {
        // Delivered at commit, to the nodes listening: they poll at once instead of at
        // their next tick. Only a wake-up: the log stays what they read.
        sqlx::query(NOTICES).execute(&mut **tx).await?;
    }
    if (generation - count) / PRUNE_EVERY != generation / PRUNE_EVERY {
        prune(&mut **tx, generation - KEEP).await?;
    }
    Ok(generation)
}

/// `($1, $2), ($3, $4)`: the VALUES of a multi-row INSERT.
pub(super) fn placeholders(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| {
            let fields: Vec<String> = (1..=columns)
                .map(|c| format!("${}", row * columns + c))
                .collect();
            format!("({})", fields.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `$1, $2, $3`: the list of an `IN (...)`.
pub(super) fn list(count: usize) -> String {
    (1..=count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn current_generation<'e>(db: impl sqlx::Executor<'e, Database = sqlx::Any>) -> Result<i64> {
    let row = sqlx::query("SELECT generation FROM site_generation WHERE id = 1")
        .fetch_one(db)
        .await?;
    Ok(row.try_get(0)?)
}

async fn prune<'e>(db: impl sqlx::Executor<'e, Database = sqlx::Any>, upto: i64) -> Result<u64> {
    Ok(sqlx::query("DELETE FROM site_changes WHERE id <= $1")
        .bind(upto)
        .execute(db)
        .await?
        .rows_affected())
}

impl Directory {
    /// The generation counter: it grows with every change made through this module.
    pub async fn generation(&self) -> Result<i64> {
        current_generation(&self.pool).await
    }

    /// What changed after generation `applied`: one read of the generation when nothing
    /// did, else an indexed range of the log.
    pub async fn changes_after(&self, applied: i64) -> Result<Pending> {
        let generation = self.generation().await?;
        let behind = generation - applied;
        if behind == 0 {
            return Ok(Pending::Nothing);
        }
        if !(1..=MOST_PENDING).contains(&behind) {
            return Ok(Pending::Reload);
        }
        let rows = sqlx::query(
            "SELECT id, kind, name FROM site_changes WHERE id > $1 AND id <= $2 ORDER BY id",
        )
        .bind(applied)
        .bind(generation)
        .fetch_all(&self.pool)
        .await?;
        // Gapless ids: a missing row means a pruned or unlogged change.
        if rows.len() as i64 != behind {
            return Ok(Pending::Reload);
        }
        let mut changes = Vec::with_capacity(rows.len());
        for row in rows {
            let kind: String = row.try_get(1)?;
            changes.push(Change {
                id: row.try_get(0)?,
                subject: match kind.as_str() {
                    "user" => Subject::User,
                    "block" => Subject::Block,
                    _ => Subject::Site,
                },
                name: row.try_get(2)?,
            });
        }
        Ok(Pending::Changes {
            generation,
            changes,
        })
    }

    /// On PostgreSQL, a connection that hears of every committed change as it commits
    /// (`LISTEN`), to wake a node before its next poll; `None` on SQLite.
    pub async fn change_notices(&self) -> Result<Option<sqlx::postgres::PgListener>> {
        let Some(url) = &self.postgres else {
            return Ok(None);
        };
        let mut listener = sqlx::postgres::PgListener::connect(url).await?;
        listener.listen(CHANNEL).await?;
        Ok(Some(listener))
    }

    /// Drops all but the newest `keep` changes (done as changes are written; public for
    /// tests that need a node to fall behind); returns how many rows went.
    pub async fn prune_changes(&self, keep: i64) -> Result<u64> {
        prune(&self.pool, self.generation().await? - keep).await
    }
}

#[cfg(test)]
mod tests {
    use mailsite_shared::autoconfig::Preference;

    use super::*;
    use crate::directory::tests::temp_directory;

    #[tokio::test]
    async fn every_change_is_logged_under_the_generation_it_made() {
        let (d, config, dir) = temp_directory().await;
        let g0 = d.generation().await.unwrap();
        assert_eq!(d.changes_after(g0).await.unwrap(), Pending::Nothing);
        d.add_user("alice", "password", "", Preference::Imap)
            .await
            .unwrap();
        d.move_letter(&config, 1, "mailbox2").await.unwrap();
        d.set_server_health("sorter1", true, "SMTP: refused")
            .await
            .unwrap();
        let change = |id, subject, name: &str| Change {
            id,
            subject,
            name: name.to_string(),
        };
        assert_eq!(
            d.changes_after(g0).await.unwrap(),
            Pending::Changes {
                generation: g0 + 3,
                changes: vec![
                    change(g0 + 1, Subject::User, "alice"),
                    change(g0 + 2, Subject::Site, "b"),
                    change(g0 + 3, Subject::Site, "sorter1"),
                ]
            }
        );
        // A change without its row (as an older mailsite made them): the log cannot
        // account for it, so the node must reload.
        sqlx::query("UPDATE site_generation SET generation = generation + 1 WHERE id = 1")
            .execute(d.pool())
            .await
            .unwrap();
        assert_eq!(d.changes_after(g0 + 2).await.unwrap(), Pending::Reload);
        assert_eq!(
            d.changes_after(g0 - MOST_PENDING).await.unwrap(),
            Pending::Reload
        );
        std::fs::remove_dir_all(dir).ok();
    }

    /// On PostgreSQL a change is announced at its commit; SQLite has nothing to listen to.
    #[tokio::test]
    async fn changes_are_announced_on_postgresql() {
        let (d, _, dir) = temp_directory().await;
        let Some(mut listener) = d.change_notices().await.unwrap() else {
            assert!(d.postgres.is_none(), "PostgreSQL always listens");
            return;
        };
        d.add_user("alice", "password", "", Preference::Imap)
            .await
            .unwrap();
        let notice = tokio::time::timeout(std::time::Duration::from_secs(5), listener.recv())
            .await
            .expect("a notice within 5 s")
            .unwrap();
        assert_eq!(notice.channel(), CHANNEL);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn placeholders_number_every_field() {
        assert_eq!(placeholders(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(list(3), "$1, $2, $3");
    }
}
