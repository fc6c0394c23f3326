//! Login blocks in the site database, so that every node honours them and the CLI (a
//! separate process) can list and lift them. Each change logs a `block` row in the
//! change log, which is how running nodes hear of it (see [`crate::state`]).

use sqlx::Row;

use super::changes::{self, Subject};
use super::{Directory, Result, now};

/// A source blocked from logging in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginBlock {
    /// An IPv4 address or an IPv6 /64 (`2001:db8:1:2::/64`).
    pub source: String,
    /// The account the last failure named.
    pub account: String,
    pub reason: String,
    /// Failed logins counted when the block started.
    pub failures: i64,
    /// When it started and ends (Unix seconds).
    pub since: i64,
    pub until: i64,
}

fn block_of(row: &sqlx::any::AnyRow) -> Result<LoginBlock> {
    Ok(LoginBlock {
        source: row.try_get(0)?,
        account: row.try_get(1)?,
        reason: row.try_get(2)?,
        failures: row.try_get(3)?,
        since: row.try_get(4)?,
        until: row.try_get(5)?,
    })
}

const COLUMNS: &str = "source, account, reason, failures, since, until";

impl Directory {
    /// Records a block (replacing an older one of its source); returns the site
    /// generation that announces it. Blocks that ran out are dropped on the way.
    pub async fn add_block(&self, block: &LoginBlock) -> Result<i64> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM login_blocks WHERE until <= $1")
            .bind(now())
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!(
            "INSERT INTO login_blocks ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (source) DO UPDATE SET account = excluded.account, \
             reason = excluded.reason, failures = excluded.failures, \
             since = excluded.since, until = excluded.until"
        ))
        .bind(&block.source)
        .bind(&block.account)
        .bind(&block.reason)
        .bind(block.failures)
        .bind(block.since)
        .bind(block.until)
        .execute(&mut *tx)
        .await?;
        let generation = changes::record(&mut tx, Subject::Block, &[&block.source]).await?;
        tx.commit().await?;
        Ok(generation)
    }

    /// The blocks in force, oldest first.
    pub async fn blocks(&self) -> Result<Vec<LoginBlock>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM login_blocks WHERE until > $1 ORDER BY since, source"
        ))
        .bind(now())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(block_of).collect()
    }

    /// Lifts the blocks of a source, or those whose failures named an account;
    /// returns the blocks lifted (those that had run out too).
    pub async fn remove_blocks(&self, source_or_account: &str) -> Result<Vec<LoginBlock>> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM login_blocks WHERE source = $1 OR account = $1 ORDER BY since, source"
        ))
        .bind(source_or_account)
        .fetch_all(&mut *tx)
        .await?;
        let removed = rows.iter().map(block_of).collect::<Result<Vec<_>>>()?;
        if removed.is_empty() {
            return Ok(removed);
        }
        sqlx::query("DELETE FROM login_blocks WHERE source = $1 OR account = $1")
            .bind(source_or_account)
            .execute(&mut *tx)
            .await?;
        let names: Vec<&str> = removed.iter().map(|b| b.source.as_str()).collect();
        changes::record(&mut tx, Subject::Block, &names).await?;
        tx.commit().await?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::changes::Pending;
    use crate::directory::tests::temp_directory;

    fn block(source: &str, account: &str, until: i64) -> LoginBlock {
        LoginBlock {
            source: source.into(),
            account: account.into(),
            reason: "too many failed logins".into(),
            failures: 10,
            since: now(),
            until,
        }
    }

    #[tokio::test]
    async fn blocks_are_kept_listed_and_lifted_by_source_or_account() {
        let (d, _, dir) = temp_directory().await;
        let g0 = d.generation().await.unwrap();
        let later = now() + 900;
        let g1 = d
            .add_block(&block("127.0.0.66", "alice", later))
            .await
            .unwrap();
        assert_eq!(g1, g0 + 1);
        d.add_block(&block("127.0.0.67", "alice", later))
            .await
            .unwrap();
        d.add_block(&block("2001:db8::/64", "bob", later))
            .await
            .unwrap();
        d.add_block(&block("127.0.0.99", "carol", now() - 1))
            .await
            .unwrap();
        let listed: Vec<String> = d
            .blocks()
            .await
            .unwrap()
            .into_iter()
            .map(|b| b.source)
            .collect();
        assert_eq!(
            listed.len(),
            3,
            "{listed:?}: the one that ran out is not listed"
        );
        let Pending::Changes { changes, .. } = d.changes_after(g0).await.unwrap() else {
            panic!("logged");
        };
        assert!(changes.iter().all(|c| c.subject == Subject::Block));

        let lifted = d.remove_blocks("alice").await.unwrap();
        assert_eq!(lifted.len(), 2);
        let lifted = d.remove_blocks("2001:db8::/64").await.unwrap();
        assert_eq!(lifted[0].account, "bob");
        assert!(d.blocks().await.unwrap().is_empty());
        assert!(d.remove_blocks("nobody").await.unwrap().is_empty());
        std::fs::remove_dir_all(dir).ok();
    }
}
