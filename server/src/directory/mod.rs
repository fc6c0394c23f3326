//! The site directory: users (argon2 password hashes, display name, POP/IMAP
//! preference, enabled), operator letter moves and server states, in one SQL store.
//!
//! Written once against sqlx's `Any` driver so that SQLite (the default, a file in the
//! data directory) and PostgreSQL (multi-node sites) are a connection-string change.
//! Every change bumps `site_generation` and names itself in the change log
//! ([`changes`]), which running nodes poll to pick up only what changed.

pub mod app_passwords;
pub mod blocks;
pub mod changes;
pub mod dkim;
pub mod dnssec;
mod history;
pub mod import;
pub mod password;
pub mod quota;
pub mod sieve;
pub mod tls_reports;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use mailsite_shared::autoconfig::Preference;
use mailsite_shared::route::{bucket_name, valid_username};
use mailsite_shared::{ServerState, SiteConfig, SiteMap};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};

use changes::Subject;

/// Directory errors, each with a message an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("cannot open the database {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("the database schema could not be brought up to date: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("user {0:?} already exists")]
    UserExists(String),
    #[error("no user {0:?}")]
    NoUser(String),
    #[error(
        "{0:?} is not a valid username: use 1-64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit"
    )]
    BadUsername(String),
    #[error("no mailbox server named {0:?} in this site's configuration or added to it")]
    NoServer(String),
    #[error("cannot add server {0:?}: {1}")]
    BadServer(String, String),
    #[error(
        "{0} already has an app password labelled {1:?}: choose another label, or remove that one first"
    )]
    AppPasswordExists(String, String),
    #[error(
        "{0} has no app password labelled {1:?}: `mailsite user app-password list {0}` shows them"
    )]
    NoAppPassword(String, String),
    #[error("{0} has no Sieve script named {1:?}")]
    NoScript(String, String),
    #[error("{0} already has a Sieve script named {1:?}")]
    ScriptExists(String, String),
    #[error("the Sieve script {1:?} of {0} is active: activate another one (or none) first")]
    ScriptActive(String, String),
    #[error("{0} has {1} Sieve scripts, the most a user may keep: remove one first")]
    TooManyScripts(String, usize),
    #[error("password hashing failed: {0}")]
    Hash(String),
}

pub type Result<T> = std::result::Result<T, DirectoryError>;

/// A user as the directory holds them (the hash stays inside this module).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub username: String,
    pub display_name: String,
    pub preference: Preference,
    pub enabled: bool,
    pub operator: bool,
    pub created_at: i64,
    /// The limits on what the user's mailboxes hold.
    pub quota: quota::Quota,
}

/// What the health checks last found about a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Whether the server is failing its checks (marked down).
    pub failing: bool,
    /// When it started or stopped failing (Unix seconds).
    pub changed_at: i64,
    /// What the check that changed it saw (`IMAP: connection refused`).
    pub detail: String,
}

/// What the autoconfig service needs per user, kept in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserEntry {
    pub preference: Preference,
    pub enabled: bool,
}

/// Every user's entry, as a persistent map: a copy costs nothing and a change copies
/// one path of the tree, so a node applies one user's change without copying 100,000.
pub type UserEntries = imbl::HashMap<String, UserEntry>;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A handle on the site database.
#[derive(Clone)]
pub struct Directory {
    pool: AnyPool,
    /// The database URL on PostgreSQL, where nodes also listen for change notices.
    postgres: Option<Arc<str>>,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Directory {
    /// Opens the site database (creating the SQLite file and its folder if needed) and
    /// brings the schema up to date.
    pub async fn open(config: &SiteConfig) -> Result<Directory> {
        let url = config.database_url();
        if config.database.is_none() {
            std::fs::create_dir_all(&config.data_dir).map_err(|e| DirectoryError::Open {
                url: url.clone(),
                source: sqlx::Error::Io(e),
            })?;
        }
        Directory::connect(&url).await
    }

    pub async fn connect(url: &str) -> Result<Directory> {
        install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        let pool = AnyPoolOptions::new()
            .max_connections(if sqlite { 16 } else { 20 })
            // A pooled SQLite connection cannot go away under us, and the check before
            // each use is a round trip to its worker thread: one per query, as much as
            // a LIST costs. A PostgreSQL connection can (a restarted server): checked.
            .test_before_acquire(!sqlite)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        // Message files are fsynced before any OK and the index can be
                        // rebuilt from them, so index commits need not wait for the
                        // disk (Dovecot's `mail_fsync = optimized`): in WAL mode a
                        // commit stays atomic, and a power loss can only undo the
                        // newest index-only changes. The directory is small and rarely
                        // written; its changes are just as atomic.
                        sqlx::Executor::execute(&mut *conn, "PRAGMA synchronous = NORMAL").await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await
            .map_err(|source| DirectoryError::Open {
                url: redact_url(url),
                source,
            })?;
        if sqlite {
            // WAL lets the CLI write while a running server reads.
            sqlx::query("PRAGMA journal_mode=WAL")
                .execute(&pool)
                .await?;
        }
        MIGRATOR.run(&pool).await?;
        let postgres = url.starts_with("postgres").then(|| Arc::from(url));
        Ok(Directory { pool, postgres })
    }

    /// The connection pool, for the other stores that share the site database.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Bumps the generation and logs the change of one user (`Subject::User`) or of the
    /// site map (`Subject::Site`, named by letter or server), in the change's transaction.
    async fn bump(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        subject: Subject,
        name: &str,
    ) -> Result<()> {
        changes::record(tx, subject, &[name]).await.map(|_| ())
    }

    // ---- users ------------------------------------------------------------------

    pub async fn add_user(
        &self,
        username: &str,
        password: &str,
        display_name: &str,
        preference: Preference,
    ) -> Result<User> {
        if !valid_username(username) {
            return Err(DirectoryError::BadUsername(username.to_string()));
        }
        let hash = password::hash(password).await?;
        let created_at = now();
        let mut tx = self.pool.begin().await?;
        let added = sqlx::query(
            "INSERT INTO users (username, password_hash, display_name, preference, enabled, operator, created_at) \
             VALUES ($1, $2, $3, $4, 1, 0, $5) ON CONFLICT (username) DO NOTHING",
        )
        .bind(username)
        .bind(hash)
        .bind(display_name)
        .bind(preference.as_str())
        .bind(created_at)
        .execute(&mut *tx)
        .await?;
        if added.rows_affected() == 0 {
            return Err(DirectoryError::UserExists(username.to_string()));
        }
        Directory::bump(&mut tx, Subject::User, username).await?;
        tx.commit().await?;
        Ok(User {
            username: username.to_string(),
            display_name: display_name.to_string(),
            preference,
            enabled: true,
            operator: false,
            created_at,
            quota: quota::Quota::default(),
        })
    }

    /// Runs one statement that changes a user's row, failing if there is no such user.
    async fn update_user<V>(&self, sql: &str, username: &str, value: Option<V>) -> Result<()>
    where
        V: for<'q> sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any> + Send + 'static,
    {
        let mut tx = self.pool.begin().await?;
        let mut q = sqlx::query(sql);
        if let Some(v) = value {
            q = q.bind(v);
        }
        let done = q.bind(username).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(DirectoryError::NoUser(username.to_string()));
        }
        Directory::bump(&mut tx, Subject::User, username).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes a user, their app passwords and their Sieve scripts.
    pub async fn remove_user(&self, username: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for table in ["app_passwords", "sieve_scripts", "sieve_seen"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE username = $1"))
                .bind(username)
                .execute(&mut *tx)
                .await?;
        }
        let done = sqlx::query("DELETE FROM users WHERE username = $1")
            .bind(username)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(DirectoryError::NoUser(username.to_string()));
        }
        Directory::bump(&mut tx, Subject::User, username).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn set_password(&self, username: &str, password: &str) -> Result<()> {
        let hash = password::hash(password).await?;
        self.update_user(
            "UPDATE users SET password_hash = $1 WHERE username = $2",
            username,
            Some(hash),
        )
        .await
    }

    pub async fn set_preference(&self, username: &str, preference: Preference) -> Result<()> {
        self.update_user(
            "UPDATE users SET preference = $1 WHERE username = $2",
            username,
            Some(preference.as_str().to_string()),
        )
        .await
    }

    pub async fn set_enabled(&self, username: &str, enabled: bool) -> Result<()> {
        self.update_user(
            "UPDATE users SET enabled = $1 WHERE username = $2",
            username,
            Some(i64::from(enabled)),
        )
        .await
    }

    pub async fn set_operator(&self, username: &str, operator: bool) -> Result<()> {
        self.update_user(
            "UPDATE users SET operator = $1 WHERE username = $2",
            username,
            Some(i64::from(operator)),
        )
        .await
    }

    fn user_from_row(row: &sqlx::any::AnyRow) -> Result<User> {
        let preference: String = row.try_get("preference")?;
        Ok(User {
            username: row.try_get("username")?,
            display_name: row.try_get("display_name")?,
            preference: Preference::parse(&preference).unwrap_or_default(),
            enabled: row.try_get::<i64, _>("enabled")? != 0,
            operator: row.try_get::<i64, _>("operator")? != 0,
            created_at: row.try_get("created_at")?,
            quota: Directory::quota_from_row(row)?,
        })
    }

    pub async fn user(&self, username: &str) -> Result<User> {
        let row = sqlx::query(
            "SELECT username, display_name, preference, enabled, operator, created_at, quota_storage, quota_messages FROM users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| DirectoryError::NoUser(username.to_string()))?;
        Directory::user_from_row(&row)
    }

    pub async fn users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query(
            "SELECT username, display_name, preference, enabled, operator, created_at, quota_storage, quota_messages FROM users ORDER BY username",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Directory::user_from_row).collect()
    }

    /// Checks a password. Unknown users cost the same as known ones (a hash is
    /// verified either way) so that timing does not reveal who exists.
    pub async fn verify_password(&self, username: &str, password: &str) -> Result<bool> {
        let row = sqlx::query("SELECT password_hash, enabled FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        let (hash, enabled) = match &row {
            Some(row) => (
                row.try_get::<String, _>("password_hash")?,
                row.try_get::<i64, _>("enabled")? != 0,
            ),
            None => (password::decoy_hash().to_string(), false),
        };
        let ok = password::verify(password, &hash).await;
        Ok(ok && enabled && row.is_some())
    }

    /// Preference and enabled flag of every user, for the in-memory cache.
    pub async fn user_entries(&self) -> Result<UserEntries> {
        let rows = sqlx::query("SELECT username, preference, enabled FROM users")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Directory::entry_from_row).collect()
    }

    /// The entries of the named users only (absent: no such user, e.g. removed), for a
    /// node that follows the change log.
    pub async fn user_entries_of(&self, usernames: &[&str]) -> Result<Vec<(String, UserEntry)>> {
        let mut out = Vec::with_capacity(usernames.len());
        for chunk in usernames.chunks(500) {
            let sql = format!(
                "SELECT username, preference, enabled FROM users WHERE username IN ({})",
                changes::list(chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for name in chunk {
                query = query.bind(name.to_string());
            }
            for row in query.fetch_all(&self.pool).await? {
                out.push(Directory::entry_from_row(&row)?);
            }
        }
        Ok(out)
    }

    fn entry_from_row(row: &sqlx::any::AnyRow) -> Result<(String, UserEntry)> {
        let preference: String = row.try_get("preference")?;
        Ok((
            row.try_get("username")?,
            UserEntry {
                preference: Preference::parse(&preference).unwrap_or_default(),
                enabled: row.try_get::<i64, _>("enabled")? != 0,
            },
        ))
    }

    // ---- letters and servers ------------------------------------------------------

    /// Makes `server` the home of `bucket`; moving a letter back to its configured home
    /// removes the override.
    pub async fn move_letter(
        &self,
        config: &SiteConfig,
        bucket: usize,
        server: &str,
    ) -> Result<()> {
        let config = &self.effective_config(config).await?;
        let index = config
            .mailbox_index(server)
            .ok_or_else(|| DirectoryError::NoServer(server.to_string()))?;
        let mut tx = self.pool.begin().await?;
        // Written first: the transaction takes the write lock before it reads (SQLite
        // cannot turn a reader into a writer while another writes).
        Directory::bump(&mut tx, Subject::Site, &bucket_name(bucket)).await?;
        let before: Option<String> =
            sqlx::query("SELECT server FROM letter_overrides WHERE bucket = $1")
                .bind(bucket as i64)
                .fetch_optional(&mut *tx)
                .await?
                .map(|row| row.try_get(0))
                .transpose()?;
        let before =
            before.unwrap_or_else(|| config.mailboxes[config.letters[bucket]].name.clone());
        if config.letters[bucket] == index {
            sqlx::query("DELETE FROM letter_overrides WHERE bucket = $1")
                .bind(bucket as i64)
                .execute(&mut *tx)
                .await?;
        } else {
            sqlx::query(
                "INSERT INTO letter_overrides (bucket, server, moved_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (bucket) DO UPDATE SET server = excluded.server, moved_at = excluded.moved_at",
            )
            .bind(bucket as i64)
            .bind(server)
            .bind(now())
            .execute(&mut *tx)
            .await?;
        }
        history::record(&mut tx, "letter", &bucket.to_string(), &before, server).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn set_server_state(
        &self,
        config: &SiteConfig,
        name: &str,
        state: ServerState,
    ) -> Result<()> {
        let config = &self.effective_config(config).await?;
        let known = config
            .mailboxes
            .iter()
            .chain(&config.sorters)
            .any(|s| s.name == name);
        if !known {
            return Err(DirectoryError::NoServer(name.to_string()));
        }
        let mut tx = self.pool.begin().await?;
        Directory::bump(&mut tx, Subject::Site, name).await?;
        let before: Option<String> = sqlx::query("SELECT state FROM server_states WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| row.try_get(0))
            .transpose()?;
        let before = before.unwrap_or_else(|| ServerState::Up.as_str().to_string());
        sqlx::query(
            "INSERT INTO server_states (name, state, changed_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET state = excluded.state, changed_at = excluded.changed_at",
        )
        .bind(name)
        .bind(state.as_str())
        .bind(now())
        .execute(&mut *tx)
        .await?;
        history::record(&mut tx, "state", name, &before, state.as_str()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records what the health checks found about `name`; returns whether that changed
    /// the site (only a change is written, and bumps the generation). One statement
    /// decides and writes, so that the checkers of several nodes never both see the same
    /// change (a server never checked counts as passing).
    pub async fn set_server_health(&self, name: &str, failing: bool, detail: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let sql = match failing {
            true => {
                "INSERT INTO server_health (name, failing, changed_at, detail) VALUES ($1, 1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET failing = 1, changed_at = excluded.changed_at, \
                 detail = excluded.detail WHERE server_health.failing = 0"
            }
            false => {
                "UPDATE server_health SET failing = 0, changed_at = $2, detail = $3 \
                 WHERE name = $1 AND failing <> 0"
            }
        };
        let changed = sqlx::query(sql)
            .bind(name)
            .bind(now())
            .bind(detail)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        if changed {
            Directory::bump(&mut tx, Subject::Site, name).await?;
            let (before, after) = match failing {
                true => ("passing", "failing"),
                false => ("failing", "passing"),
            };
            history::record(&mut tx, "health", name, before, after).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// Forgets every health finding (a site whose checks are turned off); returns
    /// whether there was any.
    pub async fn clear_server_health(&self) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let removed = sqlx::query("DELETE FROM server_health")
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if removed > 0 {
            Directory::bump(&mut tx, Subject::Site, "health").await?;
        }
        tx.commit().await?;
        Ok(removed > 0)
    }

    /// What the health checks found, per server name (servers never checked are absent).
    pub async fn server_health(&self) -> Result<HashMap<String, Health>> {
        let mut out = HashMap::new();
        for row in sqlx::query("SELECT name, failing, changed_at, detail FROM server_health")
            .fetch_all(&self.pool)
            .await?
        {
            out.insert(
                row.try_get::<String, _>(0)?,
                Health {
                    failing: row.try_get::<i64, _>(1)? != 0,
                    changed_at: row.try_get(2)?,
                    detail: row.try_get(3)?,
                },
            );
        }
        Ok(out)
    }

    /// Servers added to the running site with `mailsite server add`: (is a mailbox
    /// server, the server).
    pub async fn added_servers(&self) -> Result<Vec<(bool, mailsite_shared::config::Server)>> {
        let rows = sqlx::query(
            "SELECT name, kind, addresses, storage FROM added_servers ORDER BY added_at, name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Directory::added_from_row).collect()
    }

    fn added_from_row(row: &sqlx::any::AnyRow) -> Result<(bool, mailsite_shared::config::Server)> {
        let kind: String = row.try_get(1)?;
        let addresses: String = row.try_get(2)?;
        let storage: String = row.try_get(3)?;
        Ok((
            kind == "mailbox",
            mailsite_shared::config::Server {
                name: row.try_get(0)?,
                addresses: addresses
                    .split(',')
                    .filter_map(|a| a.trim().parse().ok())
                    .collect(),
                storage: (!storage.is_empty()).then(|| storage.into()),
            },
        ))
    }

    /// The configuration with the servers added to the running site.
    pub async fn effective_config(&self, config: &SiteConfig) -> Result<SiteConfig> {
        Ok(config.with_added(&self.added_servers().await?))
    }

    /// Adds a mailbox server (or a sorter) to the running site: every node's DNS,
    /// health checks and routing know it within a poll; it serves no letter until one
    /// is moved to it (or `mailsite letter rebalance`).
    pub async fn add_server(
        &self,
        config: &SiteConfig,
        mailbox: bool,
        server: &mailsite_shared::config::Server,
    ) -> Result<()> {
        let effective = self.effective_config(config).await?;
        effective
            .check_new_server(&server.name, &server.addresses)
            .map_err(|why| DirectoryError::BadServer(server.name.clone(), why))?;
        let addresses: Vec<String> = server.addresses.iter().map(|a| a.to_string()).collect();
        let storage = server
            .storage
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO added_servers (name, kind, addresses, storage, added_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(server.name.clone())
        .bind(if mailbox { "mailbox" } else { "sorter" })
        .bind(addresses.join(","))
        .bind(storage)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        Directory::bump(&mut tx, Subject::Site, &server.name).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The site as the directory says it is now.
    pub async fn site_map(&self, config: Arc<SiteConfig>) -> Result<SiteMap> {
        let added: Vec<(bool, mailsite_shared::config::Server)> = self.added_servers().await?;
        let config = match added.is_empty() {
            true => config,
            false => Arc::new(config.with_added(&added)),
        };
        Ok(self.site_rows().await?.map(config))
    }

    /// The rows the site map is made of, read in one transaction.
    async fn site_rows(&self) -> Result<history::SiteRows> {
        let mut tx = self.pool.begin().await?;
        let generation: i64 = sqlx::query("SELECT generation FROM site_generation WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let mut rows = history::SiteRows {
            generation,
            ..Default::default()
        };
        for row in sqlx::query("SELECT bucket, server FROM letter_overrides")
            .fetch_all(&mut *tx)
            .await?
        {
            rows.overrides.insert(
                row.try_get::<i64, _>(0)? as usize,
                row.try_get::<String, _>(1)?,
            );
        }
        for row in sqlx::query("SELECT name, state FROM server_states")
            .fetch_all(&mut *tx)
            .await?
        {
            let state: String = row.try_get(1)?;
            if let Some(state) = ServerState::parse(&state) {
                rows.operator.insert(row.try_get::<String, _>(0)?, state);
            }
        }
        for row in sqlx::query("SELECT name FROM server_health WHERE failing <> 0")
            .fetch_all(&mut *tx)
            .await?
        {
            rows.failing.insert(row.try_get::<String, _>(0)?);
        }
        rows.dkim = dkim::read_keys(&mut tx).await?;
        tx.commit().await?;
        Ok(rows)
    }
}

/// A database URL with any password replaced, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A directory of its own (SQLite in a temporary folder, or a fresh PostgreSQL
    /// database), its configuration, and the folder to remove.
    pub(crate) async fn temp_directory() -> (Directory, Arc<SiteConfig>, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "mailsite-dir-test-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        let mut config = SiteConfig::embedded();
        config.data_dir = dir.clone();
        // The same tests run on PostgreSQL (a fresh database each) with MAILSITE_TEST_POSTGRES=1.
        config.database = crate::test_postgres::database_for_test();
        let d = Directory::open(&config).await.unwrap();
        (d, Arc::new(config), dir)
    }

    #[tokio::test]
    async fn users_round_trip_and_changes_bump_the_generation() {
        let (d, _, dir) = temp_directory().await;
        let g0 = d.generation().await.unwrap();
        d.add_user("alice", "correct horse", "Alice", Preference::Pop3)
            .await
            .unwrap();
        assert!(d.generation().await.unwrap() > g0);
        assert!(matches!(
            d.add_user("alice", "x", "", Preference::Imap).await,
            Err(DirectoryError::UserExists(_))
        ));
        assert!(matches!(
            d.add_user("../x", "x", "", Preference::Imap).await,
            Err(DirectoryError::BadUsername(_))
        ));
        let u = d.user("alice").await.unwrap();
        assert_eq!(u.preference, Preference::Pop3);
        assert!(d.verify_password("alice", "correct horse").await.unwrap());
        assert!(!d.verify_password("alice", "wrong").await.unwrap());
        assert!(!d.verify_password("nobody", "correct horse").await.unwrap());
        d.set_enabled("alice", false).await.unwrap();
        assert!(!d.verify_password("alice", "correct horse").await.unwrap());
        d.remove_user("alice").await.unwrap();
        assert!(matches!(
            d.user("alice").await,
            Err(DirectoryError::NoUser(_))
        ));
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn letter_moves_and_states_shape_the_site_map() {
        let (d, config, dir) = temp_directory().await;
        d.move_letter(&config, 0, "mailbox2").await.unwrap();
        let map = d.site_map(config.clone()).await.unwrap();
        assert_eq!(map.owner(0).name, "mailbox2");
        d.move_letter(&config, 0, "mailbox1").await.unwrap();
        d.set_server_state(&config, "mailbox2", ServerState::Maintenance)
            .await
            .unwrap();
        let map = d.site_map(config.clone()).await.unwrap();
        assert_eq!(map.owner(0).name, "mailbox1");
        assert_eq!(map.owner(25).name, "mailbox1");
        assert!(d.move_letter(&config, 0, "mailbox9").await.is_err());
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn failing_health_downs_a_server_but_never_ends_maintenance() {
        let (d, config, dir) = temp_directory().await;
        let g0 = d.generation().await.unwrap();
        assert!(!d.set_server_health("mailbox1", false, "").await.unwrap());
        assert_eq!(d.generation().await.unwrap(), g0, "no change, no bump");
        assert!(
            d.set_server_health("mailbox1", true, "IMAP: refused")
                .await
                .unwrap()
        );
        assert!(
            !d.set_server_health("mailbox1", true, "IMAP: refused")
                .await
                .unwrap()
        );
        let map = d.site_map(config.clone()).await.unwrap();
        assert_eq!(map.mailbox_state("mailbox1"), Some(ServerState::Down));
        assert_eq!(map.owner(0).name, "mailbox2");
        assert_eq!(
            d.server_health().await.unwrap()["mailbox1"].detail,
            "IMAP: refused"
        );
        d.set_server_state(&config, "mailbox1", ServerState::Maintenance)
            .await
            .unwrap();
        assert!(d.set_server_health("mailbox1", false, "").await.unwrap());
        let map = d.site_map(config.clone()).await.unwrap();
        assert_eq!(
            map.mailbox_state("mailbox1"),
            Some(ServerState::Maintenance)
        );
        assert_eq!(map.owner(0).name, "mailbox2");
        d.set_server_state(&config, "mailbox1", ServerState::Up)
            .await
            .unwrap();
        let map = d.site_map(config.clone()).await.unwrap();
        assert_eq!(map.owner(0).name, "mailbox1");
        std::fs::remove_dir_all(dir).ok();
    }

    /// Operators and the health checks of several nodes change the site at once: every
    /// change succeeds, and the last one of each kind is what the site map shows.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_changes_all_succeed() {
        let (d, config, dir) = temp_directory().await;
        let mut tasks = Vec::new();
        for n in 0..8 {
            let (d, config) = (d.clone(), config.clone());
            tasks.push(tokio::spawn(async move {
                let state = [ServerState::Maintenance, ServerState::Up][n % 2];
                d.set_server_state(&config, "sorter1", state).await?;
                d.move_letter(&config, 3, ["mailbox1", "mailbox2"][n % 2])
                    .await?;
                d.set_server_health("sorter2", n % 2 == 0, "SMTP: refused")
                    .await?;
                d.add_user(&format!("user{n}"), "password", "", Preference::Imap)
                    .await
                    .map(|_| ())
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(d.users().await.unwrap().len(), 8);
        d.set_server_state(&config, "sorter1", ServerState::Maintenance)
            .await
            .unwrap();
        d.move_letter(&config, 3, "mailbox2").await.unwrap();
        d.set_server_health("sorter2", false, "").await.unwrap();
        let map = d.site_map(config.clone()).await.unwrap();
        assert_eq!(map.owner(3).name, "mailbox2");
        let outbox: Vec<&str> = map
            .outbox_sorters()
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(outbox, ["sorter2"]);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn urls_lose_their_password() {
        assert_eq!(
            redact_url("postgres://site:s3cret@db/mailsite"),
            "postgres://site:***@db/mailsite"
        );
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
    }
}
