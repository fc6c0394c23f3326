//! App passwords in the site database: a user's passwords for their devices, each
//! with a label, an optional expiry and an argon2 hash of its own, and the one check
//! of a protocol login ([`Directory::verify_login`]) that accepts the user's password or
//! any of them. The console signs in with [`Directory::verify_password`], which knows
//! nothing of app passwords.

use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{Directory, DirectoryError, Result, now, password};

/// An app password as the directory holds it (the hash stays inside this module).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppPassword {
    pub username: String,
    pub label: String,
    pub created_at: i64,
    /// When it stops working (Unix seconds); `None`: never.
    pub expires_at: Option<i64>,
    /// When and from where it last logged in; `None`: never used.
    pub last_used: Option<(i64, String)>,
}

impl AppPassword {
    /// Whether it has stopped working at `now` (Unix seconds).
    pub fn expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// What a protocol login's password turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// The user's own password.
    Password,
    /// One of the user's app passwords, named by its label.
    AppPassword { label: String },
    /// One of the user's app passwords, but it expired at `at` (Unix seconds).
    Expired { label: String, at: i64 },
    /// Neither (or no such user, or the user is disabled).
    Wrong,
}

/// 16 bits of the SHA-256 of a password: which app passwords a login can match.
pub fn selector(password: &str) -> i64 {
    let digest = Sha256::digest(password.as_bytes());
    i64::from(u16::from_be_bytes([digest[0], digest[1]]))
}

const COLUMNS: &str = "username, label, created_at, expires_at, last_used_at, last_source";

fn app_password_of(row: &sqlx::any::AnyRow) -> Result<AppPassword> {
    let expires_at: i64 = row.try_get(3)?;
    let last_used_at: i64 = row.try_get(4)?;
    Ok(AppPassword {
        username: row.try_get(0)?,
        label: row.try_get(1)?,
        created_at: row.try_get(2)?,
        expires_at: (expires_at != 0).then_some(expires_at),
        last_used: (last_used_at != 0).then(|| (last_used_at, row.try_get(5).unwrap_or_default())),
    })
}

impl Directory {
    /// Adds an app password `password` labelled `label` to a user, which must exist.
    pub async fn add_app_password(
        &self,
        username: &str,
        label: &str,
        password: &str,
        expires_at: Option<i64>,
    ) -> Result<AppPassword> {
        self.user(username).await?;
        let hash = password::hash(password).await?;
        let created_at = now();
        let added = sqlx::query(
            "INSERT INTO app_passwords (username, label, password_hash, selector, created_at, expires_at, last_used_at, last_source) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, '') ON CONFLICT (username, label) DO NOTHING",
        )
        .bind(username)
        .bind(label)
        .bind(hash)
        .bind(selector(password))
        .bind(created_at)
        .bind(expires_at.unwrap_or(0))
        .execute(&self.pool)
        .await?;
        if added.rows_affected() == 0 {
            return Err(DirectoryError::AppPasswordExists(
                username.to_string(),
                label.to_string(),
            ));
        }
        Ok(AppPassword {
            username: username.to_string(),
            label: label.to_string(),
            created_at,
            expires_at,
            last_used: None,
        })
    }

    /// A user's app passwords, oldest first.
    pub async fn app_passwords(&self, username: &str) -> Result<Vec<AppPassword>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM app_passwords WHERE username = $1 ORDER BY created_at, label"
        ))
        .bind(username)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(app_password_of).collect()
    }

    /// Removes one of a user's app passwords; returns it as it was.
    pub async fn remove_app_password(&self, username: &str, label: &str) -> Result<AppPassword> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM app_passwords WHERE username = $1 AND label = $2"
        ))
        .bind(username)
        .bind(label)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| DirectoryError::NoAppPassword(username.to_string(), label.to_string()))?;
        let removed = app_password_of(&row)?;
        sqlx::query("DELETE FROM app_passwords WHERE username = $1 AND label = $2")
            .bind(username)
            .bind(label)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(removed)
    }

    /// Checks a protocol login (IMAP, POP3, SMTP AUTH): the user's password or one of
    /// their app passwords, whose use from `source` is recorded. A wrong password costs
    /// one argon2 check, like an unknown user: only app passwords whose
    /// [`selector`] matches are verified, and one matches a wrong guess once in 65,536.
    pub async fn verify_login(
        &self,
        username: &str,
        password: &str,
        source: &str,
    ) -> Result<Verified> {
        let rows = sqlx::query(
            "SELECT a.label, a.password_hash, a.expires_at, u.enabled FROM app_passwords a \
             JOIN users u ON u.username = a.username WHERE a.username = $1 AND a.selector = $2",
        )
        .bind(username)
        .bind(selector(password))
        .fetch_all(&self.pool)
        .await?;
        for row in &rows {
            let hash: String = row.try_get(1)?;
            if !password::verify(password, &hash).await {
                continue;
            }
            let label: String = row.try_get(0)?;
            let expires_at: i64 = row.try_get(2)?;
            if row.try_get::<i64, _>(3)? == 0 {
                return Ok(Verified::Wrong);
            }
            let at = now();
            if expires_at != 0 && expires_at <= at {
                return Ok(Verified::Expired {
                    label,
                    at: expires_at,
                });
            }
            sqlx::query(
                "UPDATE app_passwords SET last_used_at = $1, last_source = $2 WHERE username = $3 AND label = $4",
            )
            .bind(at)
            .bind(source)
            .bind(username)
            .bind(&label)
            .execute(&self.pool)
            .await?;
            return Ok(Verified::AppPassword { label });
        }
        Ok(if self.verify_password(username, password).await? {
            Verified::Password
        } else {
            Verified::Wrong
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::tests::temp_directory;
    use mailsite_shared::autoconfig::Preference;

    #[tokio::test]
    async fn app_passwords_log_in_expire_record_their_use_and_go() {
        let (d, _, dir) = temp_directory().await;
        d.add_user("alice", "alice-password", "", Preference::Imap)
            .await
            .unwrap();
        d.add_user("bob", "bob-password", "", Preference::Imap)
            .await
            .unwrap();
        d.add_app_password("alice", "phone", "abcd-efgh-ijkm-npqr", None)
            .await
            .unwrap();
        d.add_app_password(
            "alice",
            "old laptop",
            "stuv-wxyz-ABCD-EFGH",
            Some(now() - 5),
        )
        .await
        .unwrap();
        assert!(matches!(
            d.add_app_password("alice", "phone", "other-one-entirely", None)
                .await,
            Err(DirectoryError::AppPasswordExists(..))
        ));
        assert!(matches!(
            d.add_app_password("nobody", "phone", "x", None).await,
            Err(DirectoryError::NoUser(_))
        ));
        let check = |user: &'static str, password: &'static str| {
            let d = d.clone();
            async move { d.verify_login(user, password, "192.0.2.7").await.unwrap() }
        };
        assert_eq!(check("alice", "alice-password").await, Verified::Password);
        assert_eq!(
            check("alice", "abcd-efgh-ijkm-npqr").await,
            Verified::AppPassword {
                label: "phone".into()
            }
        );
        assert!(matches!(
            check("alice", "stuv-wxyz-ABCD-EFGH").await,
            Verified::Expired { label, .. } if label == "old laptop"
        ));
        // One user's app password is nobody else's, and the console never takes it.
        assert_eq!(check("bob", "abcd-efgh-ijkm-npqr").await, Verified::Wrong);
        assert!(
            !d.verify_password("alice", "abcd-efgh-ijkm-npqr")
                .await
                .unwrap()
        );
        assert_eq!(check("alice", "wrong").await, Verified::Wrong);

        let listed = d.app_passwords("alice").await.unwrap();
        assert_eq!(listed.len(), 2);
        let phone = listed.iter().find(|a| a.label == "phone").unwrap();
        let (used, source) = phone.last_used.clone().unwrap();
        assert!(used >= now() - 60);
        assert_eq!(source, "192.0.2.7");
        assert!(
            listed
                .iter()
                .any(|a| a.label == "old laptop" && a.expired(now()))
        );

        // A disabled user's app passwords stop working with their password.
        d.set_enabled("alice", false).await.unwrap();
        assert_eq!(check("alice", "abcd-efgh-ijkm-npqr").await, Verified::Wrong);
        d.set_enabled("alice", true).await.unwrap();

        let removed = d.remove_app_password("alice", "phone").await.unwrap();
        assert_eq!(removed.label, "phone");
        assert_eq!(check("alice", "abcd-efgh-ijkm-npqr").await, Verified::Wrong);
        assert!(matches!(
            d.remove_app_password("alice", "phone").await,
            Err(DirectoryError::NoAppPassword(..))
        ));
        // Removing the user removes the rest.
        d.remove_user("alice").await.unwrap();
        d.add_user("alice", "alice-password", "", Preference::Imap)
            .await
            .unwrap();
        assert!(d.app_passwords("alice").await.unwrap().is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }
}
