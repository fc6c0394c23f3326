//! Users' Sieve scripts in the site database (RFC 5228 scripts, managed as RFC 5804
//! describes: several per user, at most one active) and what running scripts remember
//! between deliveries (vacation replies sent, message ids seen). Checking a script's
//! text is [`crate::sieve`]'s; this module stores what it accepted.

use sqlx::Row;

use super::{Directory, DirectoryError, Result, now};

/// The most scripts one user keeps.
pub const MAX_SCRIPTS: usize = 32;

/// A script as LISTSCRIPTS shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptInfo {
    pub name: String,
    pub active: bool,
    /// Octets of its text.
    pub size: usize,
    pub updated_at: i64,
}

/// The script that runs at a user's deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveScript {
    pub name: String,
    pub text: String,
    /// When it last changed (Unix seconds): compiled scripts are cached by it.
    pub updated_at: i64,
}

impl Directory {
    /// A user's scripts, by name.
    pub async fn sieve_scripts(&self, username: &str) -> Result<Vec<ScriptInfo>> {
        let rows = sqlx::query(
            "SELECT name, active, script, updated_at FROM sieve_scripts WHERE username = $1 ORDER BY name",
        )
        .bind(username)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let script: String = row.try_get(2)?;
                Ok(ScriptInfo {
                    name: row.try_get(0)?,
                    active: row.try_get::<i64, _>(1)? != 0,
                    size: script.len(),
                    updated_at: row.try_get(3)?,
                })
            })
            .collect()
    }

    /// The text of one script.
    pub async fn sieve_script(&self, username: &str, name: &str) -> Result<String> {
        sqlx::query("SELECT script FROM sieve_scripts WHERE username = $1 AND name = $2")
            .bind(username)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| row.try_get(0))
            .transpose()?
            .ok_or_else(|| DirectoryError::NoScript(username.to_string(), name.to_string()))
    }

    /// The script that runs at the user's deliveries, if one is active.
    pub async fn active_sieve(&self, username: &str) -> Result<Option<ActiveScript>> {
        let row = sqlx::query(
            "SELECT name, script, updated_at FROM sieve_scripts WHERE username = $1 AND active = 1",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(ActiveScript {
                name: row.try_get(0)?,
                text: row.try_get(1)?,
                updated_at: row.try_get(2)?,
            })
        })
        .transpose()
    }

    /// Stores a script under `name`, replacing one of that name (which stays active
    /// if it was). The user must exist, and may keep at most [`MAX_SCRIPTS`].
    pub async fn put_sieve(&self, username: &str, name: &str, text: &str) -> Result<()> {
        self.user(username).await?;
        let mut tx = self.pool.begin().await?;
        let replaced =
            sqlx::query("UPDATE sieve_scripts SET script = $3, updated_at = $4 WHERE username = $1 AND name = $2")
                .bind(username)
                .bind(name)
                .bind(text)
                .bind(now())
                .execute(&mut *tx)
                .await?;
        if replaced.rows_affected() == 0 {
            let count: i64 = sqlx::query("SELECT COUNT(*) FROM sieve_scripts WHERE username = $1")
                .bind(username)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
            if count as usize >= MAX_SCRIPTS {
                return Err(DirectoryError::TooManyScripts(
                    username.to_string(),
                    MAX_SCRIPTS,
                ));
            }
            sqlx::query(
                "INSERT INTO sieve_scripts (username, name, script, active, updated_at) VALUES ($1, $2, $3, 0, $4)",
            )
            .bind(username)
            .bind(name)
            .bind(text)
            .bind(now())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Makes `name` the user's active script, or with `None` leaves none active.
    pub async fn activate_sieve(&self, username: &str, name: Option<&str>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE sieve_scripts SET active = 0, updated_at = $2 WHERE username = $1 AND active = 1")
            .bind(username)
            .bind(now())
            .execute(&mut *tx)
            .await?;
        if let Some(name) = name {
            let done = sqlx::query(
                "UPDATE sieve_scripts SET active = 1, updated_at = $3 WHERE username = $1 AND name = $2",
            )
            .bind(username)
            .bind(name)
            .bind(now())
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Err(DirectoryError::NoScript(
                    username.to_string(),
                    name.to_string(),
                ));
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes a script that is not active.
    pub async fn delete_sieve(&self, username: &str, name: &str) -> Result<()> {
        let scripts = self.sieve_scripts(username).await?;
        match scripts.iter().find(|s| s.name == name) {
            None => Err(DirectoryError::NoScript(
                username.to_string(),
                name.to_string(),
            )),
            Some(s) if s.active => Err(DirectoryError::ScriptActive(
                username.to_string(),
                name.to_string(),
            )),
            Some(_) => {
                sqlx::query(
                    "DELETE FROM sieve_scripts WHERE username = $1 AND name = $2 AND active = 0",
                )
                .bind(username)
                .bind(name)
                .execute(&self.pool)
                .await?;
                Ok(())
            }
        }
    }

    /// Renames a script (it stays active if it was).
    pub async fn rename_sieve(&self, username: &str, from: &str, to: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let taken = sqlx::query("SELECT 1 FROM sieve_scripts WHERE username = $1 AND name = $2")
            .bind(username)
            .bind(to)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            return Err(DirectoryError::ScriptExists(
                username.to_string(),
                to.to_string(),
            ));
        }
        let done = sqlx::query(
            "UPDATE sieve_scripts SET name = $3, updated_at = $4 WHERE username = $1 AND name = $2",
        )
        .bind(username)
        .bind(from)
        .bind(to)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(DirectoryError::NoScript(
                username.to_string(),
                from.to_string(),
            ));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Whether a running script remembered `id` for this user and it has not expired.
    pub async fn sieve_seen(&self, username: &str, id: &str) -> Result<bool> {
        let row = sqlx::query(
            "SELECT 1 FROM sieve_seen WHERE username = $1 AND id = $2 AND expires_at > $3",
        )
        .bind(username)
        .bind(id)
        .bind(now())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Remembers `id` for this user for `seconds`; expired rows of the user go.
    pub async fn remember_sieve(&self, username: &str, id: &str, seconds: u64) -> Result<()> {
        let now = now();
        let expires_at = now.saturating_add(i64::try_from(seconds).unwrap_or(i64::MAX / 2));
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM sieve_seen WHERE username = $1 AND (expires_at <= $2 OR id = $3)")
            .bind(username)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO sieve_seen (username, id, expires_at) VALUES ($1, $2, $3)")
            .bind(username)
            .bind(id)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
