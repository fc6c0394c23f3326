//! The message store: bodies in Maildir files under the storage root (one directory
//! per user), metadata in the site database (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ per
//! mailbox; UID, MODSEQ, flags, internal date, size and file per message).
//!
//! Durability order for a new message: reserve its UID (committed), write the file to
//! `tmp/`, fsync, rename into `cur/` under a name that carries the UID, fsync the
//! directory, then commit its index row. A crash at any point loses nothing that was
//! acknowledged: a file without a row is found by [`Store::sync`] and indexed under the
//! UID its name carries; a reserved UID without a file is a gap, never reused.
//! If the index is lost, [`Store::reindex`] rebuilds it from the files, keeping
//! UIDVALIDITY and UIDs.
//!
//! This file holds the [`Store`] type, its error and the data it hands out. The rest,
//! in the order a message meets it:
//! - `mailboxes`: creating, deleting, renaming and subscribing to mailboxes;
//! - `messages`: APPEND, reads, STORE, COPY and MOVE;
//! - `index`: the SQL rows of mailboxes and messages, and the turn to write them;
//! - `local`: on a SQLite file, the index's reads and the store's writes stepped on
//!   the calling thread instead of sqlx's connection threads;
//! - `index_cache`: each recently used mailbox's message list kept in memory;
//! - `header_cache`: message headers kept in memory for searches and ENVELOPE;
//! - `journal`: expunges, journaled so that a crash never brings a message back;
//! - `sync`: indexing files that arrived without a row (dropped into `new/`, or
//!   written before a crash);
//! - `reindex`: rebuilding a lost index from the files;
//! - `database` and `changes`: what every store on one site database shares in
//!   this process (the SQLite writer queue, the wake-ups of IDLE sessions);
//! - `maildir`: the files themselves; `names`: mailbox names and their folders;
//!   `migrate`: copying a user's files to another server's storage.

mod changes;
mod database;
mod header_cache;
mod index;
mod index_cache;
mod journal;
mod listing;
mod local;
mod mailboxes;
pub mod maildir;
mod messages;
pub mod migrate;
pub mod names;
mod recent;
pub mod reindex;
mod rows;
mod sync;

#[cfg(test)]
mod fixture;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use mailsite_shared::route::valid_username;
use sqlx::AnyPool;
use tokio::sync::watch;

use database::Database;
use header_cache::HeaderCache;
use index_cache::{Cached, Turn};
pub use listing::Listed;
use maildir::Maildir;
pub use messages::{NewMessage, Stored};
pub use names::NameError;
pub use reindex::ReindexReport;

/// A POP3 session's hold on a maildrop ([`Store::lock_maildrop`]).
pub struct MaildropLock {
    set: Arc<std::sync::Mutex<HashSet<String>>>,
    username: String,
}

impl Drop for MaildropLock {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.username);
    }
}

/// The mailboxes every new user gets, with their SPECIAL-USE attribute (RFC 6154).
pub const DEFAULT_MAILBOXES: [(&str, &str); 6] = [
    ("INBOX", ""),
    ("Sent", "\\Sent"),
    ("Drafts", "\\Drafts"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Name(#[from] NameError),
    #[error("{0:?} is not a valid username")]
    BadUser(String),
    #[error("no mailbox {0:?}")]
    NoMailbox(String),
    #[error("mailbox {0:?} already exists")]
    Exists(String),
    #[error("no message with UID {0}")]
    NoMessage(u32),
    #[error("{0}")]
    Refused(String),
    #[error("storage error: {0}")]
    Io(#[from] std::io::Error),
    #[error("index error: {0}")]
    Sql(#[from] sqlx::Error),
    /// From the connections that read and write a SQLite file on the calling thread.
    #[error("index error: {0}")]
    Local(#[from] rusqlite::Error),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A mailbox's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxInfo {
    pub name: String,
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub highestmodseq: u64,
    /// The HIGHESTMODSEQ of the mailbox's latest expunge (0: none since it was made):
    /// a session that saw HIGHESTMODSEQ n has missed an expunge when this exceeds n.
    pub expungedmodseq: u64,
    pub special_use: String,
}

/// A message's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageInfo {
    pub uid: u32,
    pub modseq: u64,
    /// System flags (`\Seen`, ...) and keywords.
    pub flags: Vec<String>,
    /// Seconds since the epoch.
    pub internal_date: i64,
    pub size: u64,
    /// Maildir base name (without the `:2,` flags).
    pub file: String,
}

/// How STORE changes flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    Replace,
    Add,
    Remove,
}

impl FlagOp {
    /// The flags after the change; flags compare case-insensitively, order is kept.
    pub fn apply(self, old: &[String], flags: &[String]) -> Vec<String> {
        let has = |set: &[String], f: &str| set.iter().any(|x| x.eq_ignore_ascii_case(f));
        let mut out: Vec<String> = match self {
            FlagOp::Replace => Vec::new(),
            FlagOp::Add | FlagOp::Remove => old.to_vec(),
        };
        match self {
            FlagOp::Replace | FlagOp::Add => {
                for f in flags {
                    if !has(&out, f) {
                        out.push(f.clone());
                    }
                }
            }
            FlagOp::Remove => out.retain(|x| !has(flags, x)),
        }
        out
    }
}

/// The store of one mailbox server.
#[derive(Clone)]
pub struct Store {
    root: PathBuf,
    pool: AnyPool,
    /// What this store shares with every other store on the same site database.
    database: Arc<Database>,
    /// Mailboxes whose `cur/` was scanned for files without rows since this process
    /// started (the only way such files arise is a crash, so once is enough).
    scanned: Arc<Mutex<HashSet<(String, String)>>>,
    /// Per mailbox, the modification time of `new/` when it was last found empty of
    /// anything to adopt (see `sync`).
    new_seen: Arc<Mutex<HashMap<(String, String), std::time::SystemTime>>>,
    scan_lock: Arc<tokio::sync::Mutex<()>>,
    /// The index of recently used mailboxes, shared by every session of this store.
    cache: Arc<Mutex<HashMap<(String, String), Cached>>>,
    /// Per mailbox, the turn to bring its `cache` entry up to date.
    updating: Arc<Mutex<HashMap<(String, String), Turn>>>,
    /// Message headers read so far (header searches, ENVELOPE).
    headers: Arc<Mutex<HeaderCache>>,
    /// Per user, the highest UIDVALIDITY of a mailbox deleted or renamed away.
    retired: Arc<Mutex<HashMap<String, u32>>>,
    /// Per user, the mailbox names LIST shows (see `listing.rs`).
    listings: Arc<listing::Listings>,
    /// Whether the index is SQLite (write transactions begin IMMEDIATE).
    sqlite: bool,
}

impl Store {
    /// The store of the Maildirs under `root`, indexed in the database of `pool`.
    /// Stores made on the same database share its writer queue and change wake-ups
    /// (see `database.rs`); what it keeps in memory of mailboxes and headers is its own.
    pub fn new(root: PathBuf, pool: AnyPool) -> Store {
        let url = pool.connect_options().database_url.clone();
        let reader = local::Reader::for_url(url.as_str());
        Store::on(root, pool, Arc::new(database::Database::new(reader)))
    }

    /// The store of another storage root on the same database (another mailbox
    /// server's own storage): writers queue together, and a change through one wakes
    /// the sessions watching through the other.
    pub fn beside(&self, root: PathBuf) -> Store {
        Store::on(root, self.pool.clone(), self.database.clone())
    }

    fn on(root: PathBuf, pool: AnyPool, database: Arc<database::Database>) -> Store {
        Store {
            sqlite: pool
                .connect_options()
                .database_url
                .scheme()
                .starts_with("sqlite"),
            root,
            database,
            pool,
            scanned: Arc::default(),
            new_seen: Arc::default(),
            scan_lock: Arc::default(),
            cache: Arc::default(),
            updating: Arc::default(),
            headers: Arc::default(),
            retired: Arc::default(),
            listings: Arc::default(),
        }
    }

    /// The store of a site: mail under `<data_dir>/mail`, index in the site database.
    pub fn for_site(
        config: &mailsite_shared::SiteConfig,
        directory: &crate::directory::Directory,
    ) -> Store {
        Store::new(config.data_dir.join("mail"), directory.pool().clone())
    }

    /// Takes the exclusive POP3 lock of a user's maildrop (RFC 1939 8); `None` while
    /// another session holds it. The lock is released when the guard is dropped.
    pub fn lock_maildrop(&self, username: &str) -> Option<MaildropLock> {
        let set = self.database.maildrops.clone();
        let taken = set
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(username.to_string());
        taken.then(|| MaildropLock {
            set,
            username: username.to_string(),
        })
    }

    /// A receiver that changes whenever this user's mail changes in this process.
    pub fn watch(&self, username: &str) -> watch::Receiver<u64> {
        self.database.changes.watch(username)
    }

    /// Wakes the sessions that watch this user's mail.
    fn changed(&self, username: &str) {
        self.database.rows.changed(username);
        self.database.changes.notify(username);
    }

    fn user_dir(&self, username: &str) -> Result<PathBuf> {
        if !valid_username(username) {
            return Err(StoreError::BadUser(username.to_string()));
        }
        Ok(self.root.join(username))
    }

    fn maildir(&self, username: &str, name: &str) -> Result<Maildir> {
        Ok(Maildir::new(
            self.user_dir(username)?.join(names::folder(name)),
        ))
    }
}

/// The time now in seconds since the epoch (internal dates, UIDVALIDITY).
fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Runs file-system work on the blocking pool, so that a slow disk holds up no
/// runtime thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Io(std::io::Error::other(e)))?
        .map_err(StoreError::Io)
}
