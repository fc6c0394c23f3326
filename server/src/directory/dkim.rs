//! The public halves of the site's DKIM keys (RFC 6376), which the zone publishes.
//! Adding keys or scheduling their withdrawal is a change of the site: every node's
//! zone and signers follow it within a poll. The private halves are files in the data
//! directory ([`crate::dkim`]).

use mailsite_shared::DkimKey;
use sqlx::Row;

use super::changes::Subject;
use super::{Directory, Result, now};

impl Directory {
    /// Every key, oldest first.
    pub async fn dkim_keys(&self) -> Result<Vec<DkimKey>> {
        let mut conn = self.pool.acquire().await?;
        read_keys(&mut conn).await
    }

    /// Adds keys of `domain` if the domain has none yet (the first start); returns
    /// whether they were added. One transaction decides and writes, so that nodes
    /// starting together publish one set.
    pub async fn add_first_dkim_keys(&self, domain: &str, keys: &[DkimKey]) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let existing: i64 = sqlx::query("SELECT COUNT(*) FROM dkim_keys WHERE domain = $1")
            .bind(domain)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        if existing > 0 {
            return Ok(false);
        }
        insert(&mut tx, keys).await?;
        Directory::bump(&mut tx, Subject::Site, domain).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Adds a rotation's new keys of `domain`, and schedules every older key still
    /// published to leave the zone at `withdraw_old_at` (a key already due to leave
    /// earlier keeps its time).
    pub async fn rotate_dkim_keys(
        &self,
        domain: &str,
        keys: &[DkimKey],
        withdraw_old_at: i64,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE dkim_keys SET withdraw_at = $2 \
             WHERE domain = $1 AND (withdraw_at IS NULL OR withdraw_at > $2)",
        )
        .bind(domain)
        .bind(withdraw_old_at)
        .execute(&mut *tx)
        .await?;
        insert(&mut tx, keys).await?;
        Directory::bump(&mut tx, Subject::Site, domain).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Forgets keys that left the zone before `before` (their files are the caller's).
    pub async fn forget_withdrawn_dkim_keys(&self, before: i64) -> Result<Vec<DkimKey>> {
        let mut tx = self.pool.begin().await?;
        let gone: Vec<DkimKey> = read_keys(&mut tx)
            .await?
            .into_iter()
            .filter(|k| k.withdraw_at.is_some_and(|at| at < before))
            .collect();
        for key in &gone {
            sqlx::query("DELETE FROM dkim_keys WHERE domain = $1 AND selector = $2")
                .bind(&key.domain)
                .bind(&key.selector)
                .execute(&mut *tx)
                .await?;
        }
        if !gone.is_empty() {
            Directory::bump(&mut tx, Subject::Site, "dkim").await?;
        }
        tx.commit().await?;
        Ok(gone)
    }
}

pub(super) async fn read_keys(conn: &mut sqlx::AnyConnection) -> Result<Vec<DkimKey>> {
    let rows = sqlx::query(
        "SELECT domain, selector, algorithm, public_key, sign_from, withdraw_at FROM dkim_keys \
         ORDER BY sign_from, created_at, selector",
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(DkimKey {
                domain: row.try_get(0)?,
                selector: row.try_get(1)?,
                algorithm: row.try_get(2)?,
                public_key: row.try_get(3)?,
                sign_from: row.try_get(4)?,
                withdraw_at: row.try_get(5)?,
            })
        })
        .collect()
}

async fn insert(tx: &mut sqlx::Transaction<'_, sqlx::Any>, keys: &[DkimKey]) -> Result<()> {
    let created = now();
    for key in keys {
        sqlx::query(
            "INSERT INTO dkim_keys (domain, selector, algorithm, public_key, created_at, sign_from, withdraw_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&key.domain)
        .bind(&key.selector)
        .bind(&key.algorithm)
        .bind(&key.public_key)
        .bind(created)
        .bind(key.sign_from)
        .bind(key.withdraw_at)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
