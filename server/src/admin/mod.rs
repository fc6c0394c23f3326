//! The admin core: every operation that changes the site, written once, with no user
//! interface in it. The command line (`cli`) and the helpdesk console (`console`) only
//! turn what an operator typed or clicked into these calls and render what they return.
//!
//! - [`users`]: a user's lifecycle (add, remove, password, preference, enable/disable,
//!   operator), and the views of users the interfaces show;
//! - [`letters`]: moving a letter to another mailbox server, with the storage check
//!   and, when the servers keep mail apart, the migration of its mail around the move;
//! - [`rebalance`]: evening out the load (users and mail stored) over the mailbox
//!   servers that are up, planned and shown before anything moves;
//! - [`servers`]: adding servers to the running site, draining them and bringing them
//!   back, and what their health checks find;
//! - [`queue`]: the sorters' queues (list, flush, remove);
//! - [`blocks`]: the login throttle's blocks (list, remove);
//! - [`mailboxes`]: a user's stored mail (list, reindex);
//! - [`app_passwords`]: a user's app passwords (add, list, remove);
//! - [`quotas`]: a user's quota (limits on what their mailboxes hold) and usage;
//! - [`sieve`]: a user's Sieve filter scripts (list, show, put, activate, remove);
//! - [`dkim`]: the site's DKIM signing keys (list, rotate);
//! - [`dns_check`]: what the zone says against what the servers present;
//! - [`tls_report`]: the TLS reports (RFC 8460) of the sorters' sessions with other domains.
//!
//! Operations take an [`Admin`] (the site's configuration and its directory) and return
//! plain values: what changed, so that each interface can say it in its own words.
//! Long operations report their progress through a callback rather than printing.

pub mod app_passwords;
pub mod blocks;
pub mod dkim;
pub mod dns_check;
pub mod dnssec;
pub mod letters;
pub mod mailboxes;
pub mod queue;
pub mod quotas;
pub mod rebalance;
pub mod servers;
pub mod sieve;
pub mod tls_report;
pub mod users;

use std::sync::Arc;

use mailsite_shared::{SiteConfig, SiteMap};

use crate::directory::{Directory, DirectoryError};

/// Why an admin operation did not happen, in words an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] crate::mailbox::store::StoreError),
    #[error(transparent)]
    Queue(#[from] crate::sorter::queue::QueueError),
    #[error(
        "no site found in {0}: there is no site.db there. Run `mailsite serve` once to create the site, or point at an existing one with --data-dir DIR (MAILSITE_DATA_DIR) or --config FILE (MAILSITE_CONFIG)"
    )]
    NoSite(std::path::PathBuf),
}

pub type Result<T> = std::result::Result<T, AdminError>;

fn refused(message: impl Into<String>) -> AdminError {
    AdminError::Refused(message.into())
}

/// The site an operator acts on: its configuration (as configured; servers added at
/// run time come from the directory) and its directory.
#[derive(Clone)]
pub struct Admin {
    config: Arc<SiteConfig>,
    directory: Directory,
}

impl Admin {
    /// Opens the site database of `config`.
    pub async fn open(config: SiteConfig) -> Result<Admin> {
        let directory = Directory::open(&config).await?;
        Ok(Admin::new(Arc::new(config), directory))
    }

    /// Opens the site database of `config` only if the site exists, so that a command
    /// run in the wrong directory says so instead of creating an empty site. A
    /// PostgreSQL site is its database: it exists once configured.
    pub async fn open_existing(config: SiteConfig) -> Result<Admin> {
        if !site_exists(&config) {
            return Err(AdminError::NoSite(config.data_dir.clone()));
        }
        Admin::open(config).await
    }

    /// An admin over a directory already open (the console shares the server's).
    pub fn new(config: Arc<SiteConfig>, directory: Directory) -> Admin {
        Admin { config, directory }
    }

    pub fn config(&self) -> &Arc<SiteConfig> {
        &self.config
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// The site as it is now: letters, servers (configured and added) and their states.
    pub async fn site_map(&self) -> Result<SiteMap> {
        Ok(self.directory.site_map(self.config.clone()).await?)
    }
}

/// Whether the site of `config` exists: its SQLite database is there, or it is on
/// PostgreSQL.
pub fn site_exists(config: &SiteConfig) -> bool {
    config.database.is_some() || config.data_dir.join("site.db").exists()
}

/// A Unix time as UTC text, as every interface shows times.
pub fn utc(secs: u64) -> String {
    chrono::DateTime::from_timestamp(secs as i64, 0).map_or_else(
        || secs.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}
