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

pub mod maildir;
pub mod migrate;
pub mod names;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use mailsite_shared::route::valid_username;
use sqlx::{AnyPool, Row};
use tokio::sync::watch;

use maildir::Maildir;
pub use names::NameError;

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
    pub subscribed: bool,
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

/// What [`Store::reindex`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReindexReport {
    pub mailboxes: usize,
    pub messages: usize,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Expunges whose files may not all be unlinked: the journal rows (by their MODSEQ),
/// whether rows of the older per-message journal are among them, and the files.
#[derive(Debug, Default)]
struct Journal {
    batches: Vec<i64>,
    legacy: bool,
    files: Vec<(String, Vec<String>)>,
}

fn split_flags(flags: &str) -> Vec<String> {
    flags.split_whitespace().map(str::to_string).collect()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Io(std::io::Error::other(e)))?
        .map_err(StoreError::Io)
}

/// The header of the message file at `path` (see [`Store::read_header`]); `None` if
/// the file is gone.
fn header_of(path: &std::path::Path) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    const MAX_HEADER: u64 = 256 * 1024;
    let mut reader = match std::fs::File::open(path) {
        Ok(f) => f.take(MAX_HEADER),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = reader.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        let from = out.len().saturating_sub(3);
        out.extend_from_slice(&chunk[..n]);
        let tail = &out[from..];
        if let Some(end) = tail
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| from + i + 4)
            .or_else(|| {
                tail.windows(2)
                    .position(|w| w == b"\n\n")
                    .map(|i| from + i + 2)
            })
        {
            out.truncate(end);
            break;
        }
    }
    Ok(Some(out))
}

/// Message headers kept in memory for header searches and ENVELOPE, as Dovecot keeps
/// them in its cache file: a message never changes within a UIDVALIDITY, so a header
/// once read stays true. At most [`HEADER_CACHE_BYTES`] in all; past that, other
/// mailboxes' headers make room (the mailbox being read keeps what it has).
#[derive(Default)]
struct HeaderCache {
    mailboxes: HashMap<(String, String), KeptHeaders>,
    bytes: usize,
}

struct KeptHeaders {
    uidvalidity: u32,
    headers: HashMap<u32, Arc<[u8]>>,
    bytes: usize,
}

/// The most header bytes kept in memory by one process.
const HEADER_CACHE_BYTES: usize = 64 << 20;

impl HeaderCache {
    fn keep(&mut self, key: &(String, String), uidvalidity: u32, uid: u32, header: Arc<[u8]>) {
        let size = header.len() + 48;
        while self.bytes + size > HEADER_CACHE_BYTES {
            let Some(other) = self.mailboxes.keys().find(|k| *k != key).cloned() else {
                return;
            };
            if let Some(gone) = self.mailboxes.remove(&other) {
                self.bytes -= gone.bytes;
            }
        }
        let kept = self
            .mailboxes
            .entry(key.clone())
            .or_insert_with(|| KeptHeaders {
                uidvalidity,
                headers: HashMap::new(),
                bytes: 0,
            });
        if kept.uidvalidity != uidvalidity {
            self.bytes -= kept.bytes;
            *kept = KeptHeaders {
                uidvalidity,
                headers: HashMap::new(),
                bytes: 0,
            };
        }
        if kept.headers.insert(uid, header).is_none() {
            kept.bytes += size;
            self.bytes += size;
        }
    }
}

/// Wakes the sessions of a user when their mail changes in this process (a delivery,
/// an APPEND, a flag change or an expunge by another session), so that IDLE reports
/// it at once. Sessions also look on their own every few seconds, for changes made by
/// other processes.
#[derive(Default)]
struct Changes {
    users: Mutex<HashMap<String, watch::Sender<u64>>>,
}

fn changes() -> &'static Changes {
    static CHANGES: OnceLock<Changes> = OnceLock::new();
    CHANGES.get_or_init(Changes::default)
}

impl Changes {
    fn watch(&self, username: &str) -> watch::Receiver<u64> {
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        users
            .entry(username.to_string())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    fn notify(&self, username: &str) {
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = users.get(username) {
            if sender.receiver_count() == 0 {
                users.remove(username);
            } else {
                sender.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }
}

/// The store of one mailbox server.
#[derive(Clone)]
pub struct Store {
    root: PathBuf,
    pool: AnyPool,
    /// Mailboxes whose `cur/` was scanned for files without rows since this process
    /// started (the only way such files arise is a crash, so once is enough).
    scanned: Arc<Mutex<HashSet<(String, String)>>>,
    scan_lock: Arc<tokio::sync::Mutex<()>>,
    /// The index of recently used mailboxes, shared by every session of this process.
    cache: Arc<Mutex<HashMap<(String, String), Cached>>>,
    /// Per mailbox, the turn to bring its `cache` entry up to date.
    updating: Arc<Mutex<HashMap<(String, String), Turn>>>,
    /// Message headers read so far (header searches, ENVELOPE).
    headers: Arc<Mutex<HeaderCache>>,
    /// Per user, the highest UIDVALIDITY of a mailbox deleted or renamed away.
    retired: Arc<Mutex<HashMap<String, u32>>>,
    /// Whether the index is SQLite (write transactions begin IMMEDIATE).
    sqlite: bool,
}

/// SQLite lets one connection write at a time, and one that finds the database locked
/// sleeps in SQLite's busy handler (1, 2, 5, 10 ... 25, 50, 100 ms) before it looks again:
/// under contention the lock sat free while its waiters slept, and the last of 8 POP3
/// QUITs arriving together waited 100 ms for 7 transactions of 5 ms. This process's
/// writers queue here instead, and each starts the moment the one before it ends.
/// Only the store's write transactions queue: its single-statement writes (the UID
/// reservation of each APPEND and delivery among them), the directory's writes, and
/// other processes on the same file such as the CLI still meet the busy handler.
static SQLITE_WRITERS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A write transaction, holding this process's turn to write on SQLite until it
/// commits, rolls back or is dropped.
struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _turn: Option<tokio::sync::MutexGuard<'static, ()>>,
}

impl WriteTx {
    async fn commit(self) -> std::result::Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    async fn rollback(self) -> std::result::Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &sqlx::AnyConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }
}

/// Messages up to this size are read on the calling thread (see [`Store::read_message`]).
const INLINE_READ: u64 = 128 * 1024;

/// The right to update one mailbox's cached index (see [`Store::messages_shared`]).
type Turn = Arc<tokio::sync::Mutex<()>>;

/// A mailbox's messages as read at a HIGHESTMODSEQ: still true while the mailbox's
/// HIGHESTMODSEQ (and UIDVALIDITY and UIDNEXT) are unchanged, since every change to a
/// message row takes a new MODSEQ.
struct Cached {
    stamp: (u32, u32, u64),
    messages: Arc<Vec<MessageInfo>>,
}

/// How many messages one statement of an expunge names.
const EXPUNGE_CHUNK: usize = 400;

/// `$first, $first+1, ...`: `count` numbered placeholders (SQLite and PostgreSQL).
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How many mailboxes' indexes are kept in memory.
const CACHED_MAILBOXES: usize = 256;

impl Store {
    pub fn new(root: PathBuf, pool: AnyPool) -> Store {
        let sqlite = pool
            .connect_options()
            .database_url
            .scheme()
            .starts_with("sqlite");
        Store {
            sqlite,
            root,
            pool,
            scanned: Arc::default(),
            scan_lock: Arc::default(),
            cache: Arc::default(),
            updating: Arc::default(),
            headers: Arc::default(),
            retired: Arc::default(),
        }
    }

    /// A transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so that concurrent writers wait their turn instead of failing
    /// when one of them read before another committed (SQLITE_BUSY_SNAPSHOT), and the
    /// writers of this process queue for it in [`SQLITE_WRITERS`] first.
    async fn write_tx(&self) -> Result<WriteTx> {
        Ok(match self.sqlite {
            true => {
                let turn = SQLITE_WRITERS.lock().await;
                WriteTx {
                    tx: self.pool.begin_with("BEGIN IMMEDIATE").await?,
                    _turn: Some(turn),
                }
            }
            false => WriteTx {
                tx: self.pool.begin().await?,
                _turn: None,
            },
        })
    }

    /// Takes a mailbox's row lock for the rest of a write transaction, before it reads
    /// anything. On PostgreSQL (READ COMMITTED) two STOREs would otherwise read the same
    /// flags and one would undo the other's change, and writers that lock messages and
    /// the mailbox in different orders could deadlock: every writer that reads first
    /// takes the mailbox row first. SQLite's `BEGIN IMMEDIATE` already holds the database.
    async fn lock_mailbox(&self, tx: &mut WriteTx, username: &str, name: &str) -> Result<()> {
        if !self.sqlite {
            sqlx::query("SELECT 1 FROM mailboxes WHERE username = $1 AND name = $2 FOR UPDATE")
                .bind(username)
                .bind(name)
                .fetch_optional(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// A receiver that changes whenever this user's mail changes in this process.
    pub fn watch(&self, username: &str) -> watch::Receiver<u64> {
        changes().watch(username)
    }

    fn changed(&self, username: &str) {
        changes().notify(username);
    }

    /// The store of a site: mail under `<data_dir>/mail`, index in the site database.
    pub fn for_site(
        config: &mailsite_shared::SiteConfig,
        directory: &crate::directory::Directory,
    ) -> Store {
        Store::new(config.data_dir.join("mail"), directory.pool().clone())
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

    /// Creates the default mailboxes for a user who has none.
    pub async fn ensure_user(&self, username: &str) -> Result<()> {
        let existing = self.mailboxes(username).await?;
        for (name, special) in DEFAULT_MAILBOXES {
            if !existing.iter().any(|m| m.name == name) {
                match self.create_mailbox(username, name, special).await {
                    Ok(_) | Err(StoreError::Exists(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Creates a mailbox (its Maildir folder, then its index row).
    pub async fn create_mailbox(
        &self,
        username: &str,
        name: &str,
        special_use: &str,
    ) -> Result<MailboxInfo> {
        let name = names::canonical(name)?;
        let dir = self.maildir(username, &name)?;
        // Above every UIDVALIDITY this user's mailboxes have or had: a mailbox made
        // again under an old name (or the name a RENAME freed) within the same second
        // must not look like the old one to a client that knew it.
        let highest = self.highest_uidvalidity(username).await?;
        let proposed = now().clamp(1, i64::from(u32::MAX)) as u32;
        let proposed = proposed.max(highest.saturating_add(1));
        let uidvalidity = blocking(move || {
            dir.create()?;
            dir.uidvalidity(proposed)
        })
        .await?;
        let done = sqlx::query(
            "INSERT INTO mailboxes (username, name, uidvalidity, uidnext, highestmodseq, special_use, subscribed) \
             VALUES ($1, $2, $3, 1, 1, $4, 1) ON CONFLICT (username, name) DO NOTHING",
        )
        .bind(username)
        .bind(&name)
        .bind(i64::from(uidvalidity))
        .bind(special_use)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Exists(name));
        }
        self.mailbox(username, &name).await
    }

    fn info(row: &sqlx::any::AnyRow) -> Result<MailboxInfo> {
        Ok(MailboxInfo {
            name: row.try_get("name")?,
            uidvalidity: row.try_get::<i64, _>("uidvalidity")? as u32,
            uidnext: row.try_get::<i64, _>("uidnext")? as u32,
            highestmodseq: row.try_get::<i64, _>("highestmodseq")? as u64,
            expungedmodseq: row.try_get::<i64, _>("expungedmodseq")? as u64,
            special_use: row.try_get("special_use")?,
            subscribed: row.try_get::<i64, _>("subscribed")? != 0,
        })
    }

    pub async fn mailboxes(&self, username: &str) -> Result<Vec<MailboxInfo>> {
        let rows = sqlx::query(
            "SELECT name, uidvalidity, uidnext, highestmodseq, expungedmodseq, special_use, subscribed FROM mailboxes WHERE username = $1 ORDER BY name",
        )
        .bind(username)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Store::info).collect()
    }

    pub async fn mailbox(&self, username: &str, name: &str) -> Result<MailboxInfo> {
        let name = names::canonical(name)?;
        let row = sqlx::query(
            "SELECT name, uidvalidity, uidnext, highestmodseq, expungedmodseq, special_use, subscribed FROM mailboxes WHERE username = $1 AND name = $2",
        )
        .bind(username)
        .bind(&name)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NoMailbox(name))?;
        Store::info(&row)
    }

    /// Reserves the next UID of a mailbox (never reused; the row's MODSEQ comes with
    /// its insert).
    async fn reserve(&self, username: &str, name: &str) -> Result<(u32, u32)> {
        let row = sqlx::query(
            "UPDATE mailboxes SET uidnext = uidnext + 1 \
             WHERE username = $1 AND name = $2 RETURNING uidvalidity, uidnext - 1 AS uid",
        )
        .bind(username)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NoMailbox(name.to_string()))?;
        Ok((
            row.try_get::<i64, _>("uidvalidity")? as u32,
            row.try_get::<i64, _>("uid")? as u32,
        ))
    }

    /// Adds a message's row. Its MODSEQ is taken in the same transaction, so that a
    /// session that saw HIGHESTMODSEQ before the row existed finds it as a change
    /// (`m.modseq` is ignored).
    async fn insert(&self, username: &str, name: &str, m: &MessageInfo) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let modseq: i64 = sqlx::query(
            "UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE username = $1 AND name = $2 RETURNING highestmodseq",
        )
        .bind(username)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::NoMailbox(name.to_string()))?
        .try_get(0)?;
        sqlx::query(
            "INSERT INTO messages (username, mailbox, uid, modseq, flags, internal_date, size, file) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (username, mailbox, uid) DO NOTHING",
        )
        .bind(username)
        .bind(name)
        .bind(i64::from(m.uid))
        .bind(modseq)
        .bind(m.flags.join(" "))
        .bind(m.internal_date)
        .bind(m.size as i64)
        .bind(&m.file)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores a message durably; returns (UIDVALIDITY, UID) once it is on disk and indexed.
    pub async fn append(
        &self,
        username: &str,
        name: &str,
        bytes: Vec<u8>,
        flags: &[String],
        internal_date: Option<i64>,
    ) -> Result<(u32, u32)> {
        let name = names::canonical(name)?;
        let dir = self.maildir(username, &name)?;
        let (uidvalidity, uid) = self.reserve(username, &name).await?;
        let size = bytes.len() as u64;
        let file = maildir::unique_name(size, uid);
        let (base, file_flags) = (file.clone(), flags.to_vec());
        blocking(move || dir.write(&base, &file_flags, &bytes)).await?;
        let message = MessageInfo {
            uid,
            modseq: 0, // taken by insert
            flags: flags.to_vec(),
            internal_date: internal_date.unwrap_or_else(now),
            size,
            file,
        };
        self.insert(username, &name, &message).await?;
        self.changed(username);
        Ok((uidvalidity, uid))
    }

    /// The messages of a mailbox in UID order.
    pub async fn messages(&self, username: &str, name: &str) -> Result<Vec<MessageInfo>> {
        Ok(self.messages_shared(username, name).await?.as_ref().clone())
    }

    /// The messages of a mailbox in UID order, shared: from memory when nothing changed
    /// since the last look (one query), else updated with the changes, else read anew.
    pub async fn messages_shared(
        &self,
        username: &str,
        name: &str,
    ) -> Result<Arc<Vec<MessageInfo>>> {
        let name = names::canonical(name)?;
        let info = self.mailbox(username, &name).await?;
        let stamp = (info.uidvalidity, info.uidnext, info.highestmodseq);
        let key = (username.to_string(), name.clone());
        let fresh = |cache: &HashMap<(String, String), Cached>| {
            cache
                .get(&key)
                .filter(|c| c.stamp == stamp)
                .map(|c| c.messages.clone())
        };
        if let Some(messages) = fresh(&self.cache.lock().unwrap_or_else(|e| e.into_inner())) {
            return Ok(messages);
        }
        // One session brings a mailbox's entry up to date while the others wait for it
        // (with 16 sessions on one busy mailbox, each reading the whole index itself
        // was most of the server's work).
        let turn = {
            let mut updating = self.updating.lock().unwrap_or_else(|e| e.into_inner());
            updating.retain(|_, lock| Arc::strong_count(lock) > 1);
            updating.entry(key.clone()).or_default().clone()
        };
        let _turn = turn.lock().await;
        // A stale entry is taken out, so that updating it copies nothing unless a
        // FETCH still holds it.
        let cached = {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            // Brought up to date (or past this session's look) while it waited.
            if let Some(c) = cache.get(&key)
                && c.stamp.0 == stamp.0
                && c.stamp.1 >= stamp.1
                && c.stamp.2 >= stamp.2
            {
                return Ok(c.messages.clone());
            }
            cache.remove(&key)
        };
        let messages = match cached {
            Some(Cached {
                stamp: old,
                messages,
            }) if old.0 == stamp.0 => {
                let mut merged = Arc::unwrap_or_clone(messages);
                for m in self.changed_since(username, &name, old.2).await? {
                    match merged.binary_search_by_key(&m.uid, |x| x.uid) {
                        Ok(i) => merged[i] = m,
                        Err(i) => merged.insert(i, m),
                    }
                }
                // Expunges leave no row to find: after one (also one that came while
                // this looked), read it all.
                let now = self.mailbox(username, &name).await?;
                if now.uidvalidity == stamp.0 && now.expungedmodseq <= old.2 {
                    merged
                } else {
                    self.messages_where(username, &name, "", &[]).await?
                }
            }
            _ => self.messages_where(username, &name, "", &[]).await?,
        };
        let messages = Arc::new(messages);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHED_MAILBOXES && !cache.contains_key(&key) {
            let victim = cache.keys().next().cloned();
            if let Some(victim) = victim {
                cache.remove(&victim);
            }
        }
        cache.insert(
            key,
            Cached {
                stamp,
                messages: messages.clone(),
            },
        );
        Ok(messages)
    }

    /// The messages added or changed after `modseq` (new ones and flag changes).
    pub async fn changed_since(
        &self,
        username: &str,
        name: &str,
        modseq: u64,
    ) -> Result<Vec<MessageInfo>> {
        self.messages_where(username, name, "AND modseq > $3", &[modseq as i64])
            .await
    }

    /// The UIDs of a mailbox, in order.
    pub async fn uids(&self, username: &str, name: &str) -> Result<Vec<u32>> {
        let name = names::canonical(name)?;
        let rows = sqlx::query(
            "SELECT uid FROM messages WHERE username = $1 AND mailbox = $2 ORDER BY uid",
        )
        .bind(username)
        .bind(&name)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok(row.try_get::<i64, _>(0)? as u32))
            .collect()
    }

    async fn messages_where(
        &self,
        username: &str,
        name: &str,
        condition: &str,
        params: &[i64],
    ) -> Result<Vec<MessageInfo>> {
        let name = names::canonical(name)?;
        let sql = format!(
            "SELECT uid, modseq, flags, internal_date, size, file FROM messages \
             WHERE username = $1 AND mailbox = $2 {condition} ORDER BY uid"
        );
        let mut query = sqlx::query(&sql).bind(username).bind(&name);
        for &param in params {
            query = query.bind(param);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                Ok(MessageInfo {
                    uid: row.try_get::<i64, _>("uid")? as u32,
                    modseq: row.try_get::<i64, _>("modseq")? as u64,
                    flags: split_flags(&row.try_get::<String, _>("flags")?),
                    internal_date: row.try_get("internal_date")?,
                    size: row.try_get::<i64, _>("size")? as u64,
                    file: row.try_get("file")?,
                })
            })
            .collect()
    }

    /// The bytes of a message whose index row the caller has.
    pub async fn read_message(
        &self,
        username: &str,
        name: &str,
        message: &MessageInfo,
    ) -> Result<Vec<u8>> {
        let dir = self.maildir(username, &names::canonical(name)?)?;
        let (file, flags, uid) = (message.file.clone(), message.flags.clone(), message.uid);
        let read = move || dir.read(&file, &flags);
        // A small file is read in place, as Dovecot reads: handing it to a blocking
        // thread and back costs more than the read (POP3 RETR 0.23 ms against 0.08).
        let found = if message.size <= INLINE_READ {
            read().map_err(StoreError::Io)?
        } else {
            blocking(read).await?
        };
        match found {
            Some(bytes) => Ok(bytes),
            // Renamed (flags) or expunged meanwhile: ask the index.
            None => self.read(username, name, uid).await,
        }
    }

    /// The header of a message whose index row the caller has: the bytes up to and
    /// including the blank line that ends it (at most 256 KiB), for header searches.
    pub async fn read_header(
        &self,
        username: &str,
        name: &str,
        message: &MessageInfo,
    ) -> Result<Vec<u8>> {
        let mut found = self.headers(username, name, &[message]).await?;
        match found.pop().flatten() {
            Some(bytes) => Ok(bytes.to_vec()),
            None => self.read(username, name, message.uid).await,
        }
    }

    /// How many header bytes this store keeps in memory.
    #[cfg(test)]
    fn cache_bytes(&self) -> usize {
        self.headers.lock().unwrap_or_else(|e| e.into_inner()).bytes
    }

    /// The highest UIDVALIDITY of the user's mailboxes, now or (in this process) before
    /// a DELETE or RENAME.
    async fn highest_uidvalidity(&self, username: &str) -> Result<u32> {
        let row = sqlx::query("SELECT MAX(uidvalidity) FROM mailboxes WHERE username = $1")
            .bind(username)
            .fetch_one(&self.pool)
            .await?;
        let current = row.try_get::<Option<i64>, _>(0)?.unwrap_or(0);
        let retired = self
            .retired
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(username)
            .copied()
            .unwrap_or(0);
        Ok(u32::try_from(current).unwrap_or(0).max(retired))
    }

    /// Before a mailbox (and its children) is deleted or renamed: its UIDVALIDITY is
    /// remembered as used, and what memory holds of it is dropped.
    async fn retire(&self, username: &str, name: &str) -> Result<()> {
        let highest = self.highest_uidvalidity(username).await?;
        self.retired
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(username.to_string(), highest);
        let child = format!("{name}/");
        let gone =
            |(u, n): &(String, String)| u == username && (n == name || n.starts_with(&child));
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|key, _| !gone(key));
        let mut cache = self.headers.lock().unwrap_or_else(|e| e.into_inner());
        let forgotten: Vec<_> = cache
            .mailboxes
            .keys()
            .filter(|key| gone(key))
            .cloned()
            .collect();
        for key in forgotten {
            if let Some(kept) = cache.mailboxes.remove(&key) {
                cache.bytes -= kept.bytes;
            }
        }
        Ok(())
    }

    /// The headers of messages whose index rows the caller has (see [`Self::read_header`]),
    /// `None` for a message whose file is gone. Headers are read once per process and
    /// kept ([`HeaderCache`]); the rest are read in one blocking task.
    pub async fn headers(
        &self,
        username: &str,
        name: &str,
        messages: &[&MessageInfo],
    ) -> Result<Vec<Option<Arc<[u8]>>>> {
        let name = names::canonical(name)?;
        let uidvalidity = self.mailbox(username, &name).await?.uidvalidity;
        let key = (username.to_string(), name.clone());
        let mut out: Vec<Option<Arc<[u8]>>> = vec![None; messages.len()];
        let mut missing = Vec::new();
        {
            let cache = self.headers.lock().unwrap_or_else(|e| e.into_inner());
            let kept = cache
                .mailboxes
                .get(&key)
                .filter(|m| m.uidvalidity == uidvalidity);
            for (i, message) in messages.iter().enumerate() {
                match kept.and_then(|m| m.headers.get(&message.uid)) {
                    Some(header) => out[i] = Some(header.clone()),
                    None => {
                        missing.push((i, message.uid, message.file.clone(), message.flags.clone()))
                    }
                }
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let dir = self.maildir(username, &name)?;
        let read = blocking(move || {
            let mut read = Vec::with_capacity(missing.len());
            for (i, uid, file, flags) in missing {
                let header = match dir.locate(&file, &flags)? {
                    Some(path) => header_of(&path)?,
                    None => None,
                };
                read.push((i, uid, header));
            }
            Ok(read)
        })
        .await?;
        let mut cache = self.headers.lock().unwrap_or_else(|e| e.into_inner());
        for (i, uid, header) in read {
            let Some(header) = header else {
                continue;
            };
            let header: Arc<[u8]> = header.into();
            cache.keep(&key, uidvalidity, uid, header.clone());
            out[i] = Some(header);
        }
        Ok(out)
    }

    /// A message's bytes.
    pub async fn read(&self, username: &str, name: &str, uid: u32) -> Result<Vec<u8>> {
        let name = names::canonical(name)?;
        let row = sqlx::query(
            "SELECT file, flags FROM messages WHERE username = $1 AND mailbox = $2 AND uid = $3",
        )
        .bind(username)
        .bind(&name)
        .bind(i64::from(uid))
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NoMessage(uid))?;
        let file: String = row.try_get(0)?;
        let flags = split_flags(&row.try_get::<String, _>(1)?);
        let dir = self.maildir(username, &name)?;
        blocking(move || {
            dir.read(&file, &flags)?.ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("message file {file} is missing"),
                )
            })
        })
        .await
    }

    /// Changes flags (STORE): replaces, adds or removes them on each UID that exists.
    /// Each changed message gets a new MODSEQ; its file's `:2,` suffix follows.
    /// Returns the new flags and MODSEQ of every message touched.
    pub async fn store_flags(
        &self,
        username: &str,
        name: &str,
        uids: &[u32],
        op: FlagOp,
        flags: &[String],
    ) -> Result<Vec<(u32, Vec<String>, u64)>> {
        let name = names::canonical(name)?;
        let mut tx = self.write_tx().await?;
        self.lock_mailbox(&mut tx, username, &name).await?;
        let mut changed = Vec::new();
        for &uid in uids {
            let Some(row) = sqlx::query("SELECT flags, file FROM messages WHERE username = $1 AND mailbox = $2 AND uid = $3")
                .bind(username)
                .bind(&name)
                .bind(i64::from(uid))
                .fetch_optional(&mut *tx)
                .await?
            else {
                continue;
            };
            let old = split_flags(&row.try_get::<String, _>("flags")?);
            let file: String = row.try_get("file")?;
            let new = op.apply(&old, flags);
            if new == old {
                continue;
            }
            let modseq: i64 = sqlx::query(
                "UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE username = $1 AND name = $2 RETURNING highestmodseq",
            )
            .bind(username)
            .bind(&name)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
            sqlx::query("UPDATE messages SET flags = $1, modseq = $2 WHERE username = $3 AND mailbox = $4 AND uid = $5")
                .bind(new.join(" "))
                .bind(modseq)
                .bind(username)
                .bind(&name)
                .bind(i64::from(uid))
                .execute(&mut *tx)
                .await?;
            changed.push((uid, new, modseq as u64, file, old));
        }
        tx.commit().await?;
        if changed.is_empty() {
            return Ok(Vec::new());
        }
        self.changed(username);
        // The index decides; file names follow for the benefit of other Maildir readers.
        let dir = self.maildir(username, &name)?;
        let renames: Vec<(String, Vec<String>, Vec<String>)> = changed
            .iter()
            .map(|(_, f, _, file, old)| (file.clone(), f.clone(), old.clone()))
            .collect();
        blocking(move || {
            for (file, flags, old) in renames {
                if let Some(path) = dir.locate(&file, &old)? {
                    std::fs::rename(
                        &path,
                        dir.path
                            .join("cur")
                            .join(format!("{file}{}", maildir::suffix(&flags))),
                    )?;
                }
            }
            maildir::sync_dir(&dir.path.join("cur"))
        })
        .await?;
        Ok(changed
            .into_iter()
            .map(|(uid, flags, modseq, _, _)| (uid, flags, modseq))
            .collect())
    }

    /// Copies messages to another mailbox (a hard link to the same file where possible),
    /// keeping flags and internal dates. Returns (source UID, new UID) pairs and the
    /// target's UIDVALIDITY, for COPYUID.
    pub async fn copy(
        &self,
        username: &str,
        from: &str,
        uids: &[u32],
        to: &str,
    ) -> Result<(u32, Vec<(u32, u32)>)> {
        let (from, to) = (names::canonical(from)?, names::canonical(to)?);
        let target = self.mailbox(username, &to).await?;
        let (source_dir, target_dir) =
            (self.maildir(username, &from)?, self.maildir(username, &to)?);
        let wanted: HashSet<u32> = uids.iter().copied().collect();
        let mut pairs = Vec::new();
        for m in self.messages(username, &from).await? {
            if !wanted.contains(&m.uid) {
                continue;
            }
            let (_, uid) = self.reserve(username, &to).await?;
            let base = maildir::unique_name(m.size, uid);
            let (src, dst, file, flags, new_base) = (
                source_dir.clone(),
                target_dir.clone(),
                m.file.clone(),
                m.flags.clone(),
                base.clone(),
            );
            blocking(move || {
                let path = src.locate(&file, &flags)?.ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("message file {file} is missing"),
                    )
                })?;
                let dest = dst
                    .path
                    .join("cur")
                    .join(format!("{new_base}{}", maildir::suffix(&flags)));
                if std::fs::hard_link(&path, &dest).is_err() {
                    let bytes = std::fs::read(&path)?;
                    dst.write(&new_base, &flags, &bytes)?;
                }
                maildir::sync_dir(&dst.path.join("cur"))
            })
            .await?;
            self.insert(
                username,
                &to,
                &MessageInfo {
                    uid,
                    modseq: 0, // taken by insert
                    flags: m.flags.clone(),
                    internal_date: m.internal_date,
                    size: m.size,
                    file: base,
                },
            )
            .await?;
            pairs.push((m.uid, uid));
        }
        if !pairs.is_empty() {
            self.changed(username);
        }
        Ok((target.uidvalidity, pairs))
    }

    /// Moves messages: a copy, then an expunge from the source.
    pub async fn move_messages(
        &self,
        username: &str,
        from: &str,
        uids: &[u32],
        to: &str,
    ) -> Result<(u32, Vec<(u32, u32)>)> {
        let (uidvalidity, pairs) = self.copy(username, from, uids, to).await?;
        let moved: Vec<u32> = pairs.iter().map(|(old, _)| *old).collect();
        self.expunge(username, from, &moved).await?;
        Ok((uidvalidity, pairs))
    }

    /// Deletes a mailbox that has no children, with its messages. INBOX cannot be deleted.
    pub async fn delete_mailbox(&self, username: &str, name: &str) -> Result<()> {
        let name = names::canonical(name)?;
        self.retire(username, &name).await?;
        if name == "INBOX" {
            return Err(StoreError::Refused("INBOX cannot be deleted".into()));
        }
        self.mailbox(username, &name).await?;
        let prefix = format!("{name}/");
        if self
            .mailboxes(username)
            .await?
            .iter()
            .any(|m| m.name.starts_with(&prefix))
        {
            return Err(StoreError::Refused(format!(
                "{name} has mailboxes inside it; delete those first"
            )));
        }
        let mut tx = self.write_tx().await?;
        self.lock_mailbox(&mut tx, username, &name).await?;
        for table in [
            "DELETE FROM messages WHERE username = $1 AND mailbox = $2",
            "DELETE FROM mailboxes WHERE username = $1 AND name = $2",
        ] {
            sqlx::query(table)
                .bind(username)
                .bind(&name)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        let dir = self.maildir(username, &name)?;
        blocking(move || {
            std::fs::remove_dir_all(&dir.path)?;
            match dir.path.parent() {
                Some(parent) => maildir::sync_dir(parent),
                None => Ok(()),
            }
        })
        .await
    }

    /// Renames a mailbox and the mailboxes inside it (RFC 3501 6.3.5). Renaming INBOX
    /// moves its messages into a new mailbox and leaves INBOX empty. UIDVALIDITY and
    /// UIDs are kept: the messages did not change.
    pub async fn rename_mailbox(&self, username: &str, from: &str, to: &str) -> Result<()> {
        let (from, to) = (names::canonical(from)?, names::canonical(to)?);
        self.retire(username, &from).await?;
        self.retire(username, &to).await?;
        if to == "INBOX" || (from == "INBOX" && to.starts_with("INBOX/")) {
            return Err(StoreError::Refused(
                "INBOX cannot be the new name, nor hold the renamed INBOX".into(),
            ));
        }
        if to == from || to.starts_with(&format!("{from}/")) {
            return Err(StoreError::Refused(format!(
                "{from} cannot be renamed into itself"
            )));
        }
        let all = self.mailboxes(username).await?;
        let prefix = format!("{from}/");
        // A parent that is only implied by its children can be renamed too.
        if !all
            .iter()
            .any(|m| m.name == from || m.name.starts_with(&prefix))
        {
            return Err(StoreError::NoMailbox(from));
        }
        if all.iter().any(|m| m.name == to) {
            return Err(StoreError::Exists(to));
        }
        if from == "INBOX" {
            self.create_mailbox(username, &to, "").await?;
            let uids = self.uids(username, "INBOX").await?;
            self.move_messages(username, "INBOX", &uids, &to).await?;
            return Ok(());
        }
        let renames: Vec<(String, String)> = all
            .iter()
            .filter(|m| m.name == from || m.name.starts_with(&prefix))
            .map(|m| (m.name.clone(), format!("{to}{}", &m.name[from.len()..])))
            .collect();
        if let Some((_, taken)) = renames
            .iter()
            .find(|(_, new)| all.iter().any(|m| &m.name == new))
        {
            return Err(StoreError::Exists(taken.clone()));
        }
        // Folders first (each rename is atomic), then the index in one transaction; if
        // the index cannot follow, the folders go back.
        let mut moved = Vec::new();
        for (old, new) in &renames {
            let (a, b) = (self.maildir(username, old)?, self.maildir(username, new)?);
            let (pa, pb) = (a.path.clone(), b.path.clone());
            let result = blocking(move || {
                if pb.exists() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        format!("{} is in the way", pb.display()),
                    ));
                }
                std::fs::rename(&pa, &pb)
            })
            .await;
            if let Err(e) = result {
                self.unrename(moved).await;
                return Err(e);
            }
            moved.push((a.path, b.path));
        }
        let mut tx = self.write_tx().await?;
        for (old, new) in &renames {
            for sql in [
                "UPDATE mailboxes SET name = $1 WHERE username = $2 AND name = $3",
                "UPDATE messages SET mailbox = $1 WHERE username = $2 AND mailbox = $3",
                "UPDATE expunges SET mailbox = $1 WHERE username = $2 AND mailbox = $3",
                "UPDATE expunge_batches SET mailbox = $1 WHERE username = $2 AND mailbox = $3",
            ] {
                if let Err(e) = sqlx::query(sql)
                    .bind(new)
                    .bind(username)
                    .bind(old)
                    .execute(&mut *tx)
                    .await
                {
                    drop(tx);
                    self.unrename(moved).await;
                    return Err(e.into());
                }
            }
        }
        if let Err(e) = tx.commit().await {
            self.unrename(moved).await;
            return Err(e.into());
        }
        let user_dir = self.user_dir(username)?;
        blocking(move || maildir::sync_dir(&user_dir)).await?;
        self.changed(username);
        Ok(())
    }

    /// Puts renamed folders back after a failed RENAME.
    async fn unrename(&self, moved: Vec<(PathBuf, PathBuf)>) {
        let _ = blocking(move || {
            for (old, new) in moved.iter().rev() {
                std::fs::rename(new, old)?;
            }
            Ok(())
        })
        .await;
    }

    /// Subscribes to or unsubscribes from a mailbox (LSUB lists the subscribed ones).
    pub async fn subscribe(&self, username: &str, name: &str, subscribed: bool) -> Result<()> {
        let name = names::canonical(name)?;
        let done =
            sqlx::query("UPDATE mailboxes SET subscribed = $1 WHERE username = $2 AND name = $3")
                .bind(i64::from(subscribed))
                .bind(username)
                .bind(&name)
                .execute(&self.pool)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NoMailbox(name));
        }
        Ok(())
    }

    /// Removes messages atomically: their rows go, and their files are recorded for
    /// unlinking, in one transaction; then the files are unlinked. Returns how many
    /// messages were removed (UIDs not in the mailbox are ignored).
    pub async fn expunge(&self, username: &str, name: &str, uids: &[u32]) -> Result<usize> {
        let name = names::canonical(name)?;
        if uids.is_empty() {
            return Ok(0);
        }
        let mut tx = self.write_tx().await?;
        self.lock_mailbox(&mut tx, username, &name).await?;
        // A few hundred per statement: a POP3 QUIT of thousands stays a few statements.
        // Each deleted row says which file to unlink, and with which flags it is found
        // at once.
        let mut files: Vec<(String, Vec<String>)> = Vec::new();
        for chunk in uids.chunks(EXPUNGE_CHUNK) {
            let sql = format!(
                "DELETE FROM messages WHERE username = $1 AND mailbox = $2 AND uid IN ({}) RETURNING file, flags",
                placeholders(3, chunk.len())
            );
            let mut query = sqlx::query(&sql).bind(username).bind(&name);
            for &uid in chunk {
                query = query.bind(i64::from(uid));
            }
            for row in query.fetch_all(&mut *tx).await? {
                files.push((row.try_get(0)?, split_flags(&row.try_get::<String, _>(1)?)));
            }
        }
        if files.is_empty() {
            tx.rollback().await?;
            return Ok(0);
        }
        let modseq: i64 = sqlx::query(
            "UPDATE mailboxes SET highestmodseq = highestmodseq + 1, expungedmodseq = highestmodseq + 1 \
             WHERE username = $1 AND name = $2 RETURNING highestmodseq",
        )
        .bind(username)
        .bind(&name)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        // The journal: one row, the file names joined by '/' (which no file name holds).
        let journal: Vec<&str> = files.iter().map(|(file, _)| file.as_str()).collect();
        sqlx::query(
            "INSERT INTO expunge_batches (username, mailbox, modseq, files) VALUES ($1, $2, $3, $4)",
        )
        .bind(username)
        .bind(&name)
        .bind(modseq)
        .bind(journal.join("/"))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.changed(username);
        self.unlink(username, &name, &files).await?;
        // Forgetting the unlinked files is another write: done after the answer, so
        // that a POP3 QUIT or an EXPUNGE does not wait for the write lock twice. A
        // record left by a crash is harmless: the next start unlinks nothing and
        // forgets it.
        let (store, user) = (self.clone(), username.to_string());
        tokio::spawn(async move {
            let done = Journal {
                batches: vec![modseq],
                ..Journal::default()
            };
            if let Err(error) = store.forget_expunged(&user, &name, &done).await {
                tracing::debug!(%error, "expunged files stay recorded until the next start");
            }
        });
        Ok(files.len())
    }

    /// The expunges of a mailbox whose files may not all be unlinked yet.
    async fn pending_expunges(&self, username: &str, name: &str) -> Result<Journal> {
        let mut journal = Journal::default();
        let batches = sqlx::query(
            "SELECT modseq, files FROM expunge_batches WHERE username = $1 AND mailbox = $2",
        )
        .bind(username)
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        for row in batches {
            journal.batches.push(row.try_get(0)?);
            let files: String = row.try_get(1)?;
            journal.files.extend(
                files
                    .split('/')
                    .filter(|f| !f.is_empty())
                    .map(|f| (f.to_string(), Vec::new())),
            );
        }
        // Rows of the per-message journal that versions before 0007 wrote.
        let legacy = sqlx::query("SELECT file FROM expunges WHERE username = $1 AND mailbox = $2")
            .bind(username)
            .bind(name)
            .fetch_all(&self.pool)
            .await?;
        journal.legacy = !legacy.is_empty();
        for row in legacy {
            journal.files.push((row.try_get(0)?, Vec::new()));
        }
        Ok(journal)
    }

    /// Unlinks the files of expunged messages (each with the flags the index had for
    /// it, so it is found at once), durably.
    async fn unlink(
        &self,
        username: &str,
        name: &str,
        files: &[(String, Vec<String>)],
    ) -> Result<()> {
        let dir = self.maildir(username, name)?;
        let gone = files.to_vec();
        blocking(move || {
            for (file, flags) in &gone {
                dir.remove(file, flags)?;
            }
            maildir::sync_dir(&dir.path.join("cur"))
        })
        .await
    }

    /// Finishes the expunges a crash interrupted: unlinks their files, then forgets them.
    async fn unlink_expunged(&self, username: &str, name: &str, journal: Journal) -> Result<()> {
        self.unlink(username, name, &journal.files).await?;
        self.forget_expunged(username, name, &journal).await
    }

    /// Removes the journal entries of expunges whose files are unlinked.
    async fn forget_expunged(&self, username: &str, name: &str, journal: &Journal) -> Result<()> {
        let mut tx = self.write_tx().await?;
        for &modseq in &journal.batches {
            sqlx::query(
                "DELETE FROM expunge_batches WHERE username = $1 AND mailbox = $2 AND modseq = $3",
            )
            .bind(username)
            .bind(name)
            .bind(modseq)
            .execute(&mut *tx)
            .await?;
        }
        if journal.legacy {
            sqlx::query("DELETE FROM expunges WHERE username = $1 AND mailbox = $2")
                .bind(username)
                .bind(name)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Indexes what is on disk but not in the index: files another program dropped into
    /// `new/`, and files written before a crash whose row was never committed. Returns
    /// how many messages were added.
    /// The first sync of a mailbox in this process also finishes interrupted expunges
    /// and scans `cur/`; later ones only look at `new/`.
    pub async fn sync(&self, username: &str, name: &str) -> Result<usize> {
        let name = names::canonical(name)?;
        let dir = self.maildir(username, &name)?;
        let key = (username.to_string(), name.clone());
        let first = !self
            .scanned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&key);
        if !dir.exists() {
            // No folder: say whether the mailbox is unknown or its folder went missing.
            self.mailbox(username, &name).await?;
        }
        if !first {
            let scan = dir.clone();
            let new = blocking(move || scan.list("new")).await?;
            let mut added = 0;
            for file in new {
                let Some(file) = self.adopt(&dir, file).await? else {
                    continue;
                };
                self.index_file(username, &name, &dir, &file, false).await?;
                added += 1;
            }
            if added > 0 {
                self.changed(username);
            }
            return Ok(added);
        }
        // One full scan at a time, so that no file is indexed twice.
        let _scan = self.scan_lock.lock().await;
        if self
            .scanned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&key)
        {
            return Ok(0);
        }
        // Finish expunges a crash interrupted before anything else.
        let pending = self.pending_expunges(username, &name).await?;
        if !pending.files.is_empty() {
            self.unlink_expunged(username, &name, pending).await?;
        }
        let known: HashSet<String> = self
            .messages(username, &name)
            .await?
            .into_iter()
            .map(|m| m.file)
            .collect();
        let scan = dir.clone();
        let (cur, new) = blocking(move || Ok((scan.list("cur")?, scan.list("new")?))).await?;
        let mut added = 0;
        let mut found: Vec<(String, bool)> = cur
            .into_iter()
            .filter(|f| !known.contains(maildir::base(f)))
            .map(|f| (f, false))
            .collect();
        found.extend(new.into_iter().map(|f| (f, true)));
        // Oldest first, so UIDs follow arrival order.
        found.sort_by(|a, b| maildir::base(&a.0).cmp(maildir::base(&b.0)));
        for (file, in_new) in found {
            let file = if in_new {
                match self.adopt(&dir, file).await? {
                    Some(file) => file,
                    None => continue,
                }
            } else {
                file
            };
            self.index_file(username, &name, &dir, &file, !in_new)
                .await?;
            added += 1;
        }
        self.scanned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key);
        if added > 0 {
            self.changed(username);
        }
        Ok(added)
    }

    /// Moves a file from `new/` to `cur/`; `None` if another session took it first.
    async fn adopt(&self, dir: &Maildir, file: String) -> Result<Option<String>> {
        let d = dir.clone();
        match blocking(move || d.adopt(&file)).await {
            Ok(file) => Ok(Some(file)),
            Err(StoreError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Adds an index row for a file in `cur/`, under the UID its name carries if that
    /// UID is free and below UIDNEXT, else under a new UID. A file this store wrote
    /// itself (`ours`: found in `cur/`) keeps its UID even at or above UIDNEXT, which
    /// then moves past it: after a power loss the index may be older than the files.
    async fn index_file(
        &self,
        username: &str,
        name: &str,
        dir: &Maildir,
        file: &str,
        ours: bool,
    ) -> Result<()> {
        let path = dir.path.join("cur").join(file);
        let meta = blocking(move || std::fs::metadata(path)).await?;
        let internal_date = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or_else(now, |d| d.as_secs() as i64);
        let info = self.mailbox(username, name).await?;
        let claimed = maildir::uid_of(file)
            .filter(|&u| u > 0 && (u < info.uidnext || ours && u < u32::MAX - 1));
        if let Some(uid) = claimed.filter(|&u| u >= info.uidnext) {
            sqlx::query(
                "UPDATE mailboxes SET uidnext = $1 WHERE username = $2 AND name = $3 AND uidnext <= $4",
            )
            .bind(i64::from(uid) + 1)
            .bind(username)
            .bind(name)
            .bind(i64::from(uid))
            .execute(&self.pool)
            .await?;
        }
        let taken = match claimed {
            Some(uid) => sqlx::query(
                "SELECT 1 FROM messages WHERE username = $1 AND mailbox = $2 AND uid = $3",
            )
            .bind(username)
            .bind(name)
            .bind(i64::from(uid))
            .fetch_optional(&self.pool)
            .await?
            .is_some(),
            None => true,
        };
        let uid = match claimed {
            Some(uid) if !taken => uid,
            _ => self.reserve(username, name).await?.1,
        };
        let message = MessageInfo {
            uid,
            modseq: 0, // taken by insert
            flags: maildir::flags_of(file),
            internal_date,
            size: meta.len(),
            file: maildir::base(file).to_string(),
        };
        self.insert(username, name, &message).await
    }

    /// Rebuilds a user's index from their Maildir folders: UIDVALIDITY from each
    /// folder's file, UIDs from the file names, flags from the `:2,` suffixes.
    pub async fn reindex(&self, username: &str) -> Result<ReindexReport> {
        let user_dir = self.user_dir(username)?;
        let specials: Vec<(String, String)> = self
            .mailboxes(username)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|m| (m.name, m.special_use))
            .collect();
        sqlx::query("DELETE FROM messages WHERE username = $1")
            .bind(username)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM mailboxes WHERE username = $1")
            .bind(username)
            .execute(&self.pool)
            .await?;
        let scan = user_dir.clone();
        let folders: Vec<String> = blocking(move || {
            let mut out = vec![String::new()];
            if scan.is_dir() {
                for entry in std::fs::read_dir(&scan)? {
                    let name = entry?.file_name().to_string_lossy().into_owned();
                    if name.starts_with('.') && scan.join(&name).join("cur").is_dir() {
                        out.push(name);
                    }
                }
            }
            Ok(out)
        })
        .await?;
        let mut report = ReindexReport::default();
        for folder in folders {
            let Some(name) = names::from_folder(&folder) else {
                continue;
            };
            let dir = Maildir::new(user_dir.join(&folder));
            if !dir.exists() {
                continue;
            }
            let special = specials
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, s)| s.clone())
                .or_else(|| {
                    DEFAULT_MAILBOXES
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, s)| s.to_string())
                })
                .unwrap_or_default();
            let probe = dir.clone();
            let files = blocking(move || probe.list("cur")).await?;
            let top_uid = files
                .iter()
                .filter_map(|f| maildir::uid_of(f))
                .max()
                .unwrap_or(0);
            let info = self.create_mailbox(username, &name, &special).await?;
            // Start UIDNEXT above every UID on disk so that the files keep theirs.
            sqlx::query("UPDATE mailboxes SET uidnext = $1 WHERE username = $2 AND name = $3")
                .bind(i64::from(top_uid.max(info.uidnext - 1)) + 1)
                .bind(username)
                .bind(&name)
                .execute(&self.pool)
                .await?;
            report.messages += self.sync(username, &name).await?;
            report.mailboxes += 1;
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use mailsite_shared::SiteConfig;

    use super::*;
    use crate::directory::Directory;

    async fn store() -> (Store, PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "mailsite-store-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        let mut config = SiteConfig::embedded();
        config.data_dir = dir.clone();
        // The same tests run on PostgreSQL (a fresh database each) with MAILSITE_TEST_POSTGRES=1.
        config.database = crate::test_postgres::database_for_test();
        let directory = Directory::open(&Arc::new(config)).await.unwrap();
        (Store::new(dir.join("mail"), directory.pool().clone()), dir)
    }

    fn msg(n: u32) -> Vec<u8> {
        format!("From: a@example.test\r\nSubject: {n}\r\n\r\nbody {n}\r\n").into_bytes()
    }

    #[tokio::test]
    async fn new_users_get_the_special_mailboxes() {
        let (s, dir) = store().await;
        s.ensure_user("amy").await.unwrap();
        s.ensure_user("amy").await.unwrap();
        let boxes = s.mailboxes("amy").await.unwrap();
        let names: Vec<&str> = boxes.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            ["Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"]
        );
        assert_eq!(
            boxes.iter().find(|m| m.name == "Sent").unwrap().special_use,
            "\\Sent"
        );
        assert!(dir.join("mail/amy/.Sent/cur").is_dir());
        assert!(dir.join("mail/amy/cur").is_dir());
        assert!(matches!(
            s.ensure_user("../etc").await,
            Err(StoreError::BadUser(_))
        ));
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn appended_messages_are_on_disk_with_rising_uids() {
        let (s, dir) = store().await;
        s.ensure_user("alice").await.unwrap();
        let (v1, u1) = s
            .append(
                "alice",
                "inbox",
                msg(1),
                &["\\Seen".into()],
                Some(1_700_000_000),
            )
            .await
            .unwrap();
        let (v2, u2) = s.append("alice", "INBOX", msg(2), &[], None).await.unwrap();
        assert_eq!(v1, v2);
        assert_eq!((u1, u2), (1, 2));
        assert_eq!(s.read("alice", "INBOX", 2).await.unwrap(), msg(2));
        let list = s.messages("alice", "INBOX").await.unwrap();
        assert_eq!(list[0].flags, ["\\Seen"]);
        assert_eq!(list[0].internal_date, 1_700_000_000);
        assert_eq!(list[1].size, msg(2).len() as u64);
        let cur = std::fs::read_dir(dir.join("mail/alice/cur"))
            .unwrap()
            .count();
        assert_eq!(cur, 2);
        assert!(matches!(
            s.append("alice", "Nope", msg(3), &[], None).await,
            Err(StoreError::NoMailbox(_))
        ));
        assert!(matches!(
            s.append("alice", "../x", msg(3), &[], None).await,
            Err(StoreError::Name(_))
        ));
        std::fs::remove_dir_all(dir).ok();
    }

    /// Headers are read once and kept; a mailbox deleted and made again (same name,
    /// possibly the same UIDVALIDITY within a second) or renamed never shows old
    /// headers; a header cut short at 256 KiB is not taken for the whole.
    #[tokio::test]
    async fn kept_headers_follow_the_mailbox() {
        let (s, dir) = store().await;
        s.ensure_user("alice").await.unwrap();
        s.create_mailbox("alice", "Kept", "").await.unwrap();
        for n in 1..=3 {
            s.append("alice", "Kept", msg(n), &[], None).await.unwrap();
        }
        let subjects = |s: Store, name: &'static str| async move {
            let messages = s.messages("alice", name).await.unwrap();
            let infos: Vec<&MessageInfo> = messages.iter().collect();
            let headers = s.headers("alice", name, &infos).await.unwrap();
            headers
                .into_iter()
                .map(|h| {
                    let h = String::from_utf8(
                        h.unwrap_or_else(|| panic!("a header in {name}")).to_vec(),
                    )
                    .unwrap();
                    assert!(h.ends_with("\r\n\r\n"), "{h:?}");
                    h.lines().nth(1).unwrap_or_default().to_string()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            subjects(s.clone(), "Kept").await,
            ["Subject: 1", "Subject: 2", "Subject: 3"]
        );
        // Kept: the files can go and the headers are still there (until the mailbox goes).
        let kept = s.cache_bytes();
        assert!(kept > 0);
        let first = s.mailbox("alice", "Kept").await.unwrap().uidvalidity;
        s.delete_mailbox("alice", "Kept").await.unwrap();
        assert_eq!(s.cache_bytes(), 0);
        let again = s
            .create_mailbox("alice", "Kept", "")
            .await
            .unwrap()
            .uidvalidity;
        assert!(again > first, "UIDVALIDITY {again} after {first}");
        s.append("alice", "Kept", msg(7), &[], None).await.unwrap();
        assert_eq!(subjects(s.clone(), "Kept").await, ["Subject: 7"]);
        s.rename_mailbox("alice", "Kept", "Other").await.unwrap();
        let third = s
            .create_mailbox("alice", "Kept", "")
            .await
            .unwrap()
            .uidvalidity;
        assert!(third > again, "UIDVALIDITY {third} after {again}");
        s.append("alice", "Kept", msg(8), &[], None).await.unwrap();
        assert_eq!(subjects(s.clone(), "Kept").await, ["Subject: 8"]);
        assert_eq!(subjects(s.clone(), "Other").await, ["Subject: 7"]);

        let mut huge = b"Subject: huge\r\nX-Big: ".to_vec();
        huge.extend(std::iter::repeat_n(b'x', 300 * 1024));
        huge.extend_from_slice(b"\r\n\r\nbody\r\n");
        let (_, uid) = s
            .append("alice", "INBOX", huge.clone(), &[], None)
            .await
            .unwrap();
        let messages = s.messages("alice", "INBOX").await.unwrap();
        let info = messages.iter().find(|m| m.uid == uid).unwrap();
        let header = s
            .headers("alice", "INBOX", &[info])
            .await
            .unwrap()
            .remove(0)
            .unwrap();
        assert_eq!(header.len(), 256 * 1024, "cut at 256 KiB");
        assert!(!header.ends_with(b"\r\n\r\n"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn files_dropped_into_new_are_picked_up() {
        let (s, dir) = store().await;
        s.ensure_user("nora").await.unwrap();
        s.append("nora", "INBOX", msg(1), &[], None).await.unwrap();
        std::fs::write(dir.join("mail/nora/new/1700000000.external.host"), msg(9)).unwrap();
        assert_eq!(s.sync("nora", "INBOX").await.unwrap(), 1);
        assert_eq!(s.sync("nora", "INBOX").await.unwrap(), 0);
        let list = s.messages("nora", "INBOX").await.unwrap();
        assert_eq!(list.iter().map(|m| m.uid).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(s.read("nora", "INBOX", 2).await.unwrap(), msg(9));
        assert!(!dir.join("mail/nora/new/1700000000.external.host").exists());
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn a_lost_index_is_rebuilt_with_uids_and_uidvalidity() {
        let (s, dir) = store().await;
        s.ensure_user("bob").await.unwrap();
        s.create_mailbox("bob", "Lists/rust.lang", "")
            .await
            .unwrap();
        for n in 1..=5 {
            s.append("bob", "INBOX", msg(n), &[], None).await.unwrap();
        }
        s.append(
            "bob",
            "Lists/rust.lang",
            msg(7),
            &["\\Flagged".into()],
            None,
        )
        .await
        .unwrap();
        let before = s.mailbox("bob", "INBOX").await.unwrap();
        // The index is lost: bob's rows are gone.
        for table in ["messages", "mailboxes"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE username = 'bob'"))
                .execute(&s.pool)
                .await
                .unwrap();
        }
        let report = s.reindex("bob").await.unwrap();
        assert_eq!(report.messages, 6);
        assert_eq!(report.mailboxes, 7);
        let after = s.mailbox("bob", "INBOX").await.unwrap();
        assert_eq!(after.uidvalidity, before.uidvalidity);
        assert_eq!(after.uidnext, 6);
        assert_eq!(after.special_use, "");
        assert_eq!(
            s.mailbox("bob", "Sent").await.unwrap().special_use,
            "\\Sent"
        );
        let uids: Vec<u32> = s
            .messages("bob", "INBOX")
            .await
            .unwrap()
            .iter()
            .map(|m| m.uid)
            .collect();
        assert_eq!(uids, [1, 2, 3, 4, 5]);
        for n in 1..=5 {
            assert_eq!(s.read("bob", "INBOX", n).await.unwrap(), msg(n));
        }
        let lists = s.messages("bob", "Lists/rust.lang").await.unwrap();
        assert_eq!(lists[0].flags, ["\\Flagged"]);
        // New mail after the rebuild never reuses a UID.
        let (_, uid) = s.append("bob", "INBOX", msg(6), &[], None).await.unwrap();
        assert_eq!(uid, 6);
        std::fs::remove_dir_all(dir).ok();
    }

    /// Sessions of several processes write one mailbox at once (on PostgreSQL, with
    /// READ COMMITTED): every message gets its own UID, and no flag change is lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writers_get_distinct_uids_and_keep_every_flag() {
        let (s, dir) = store().await;
        s.ensure_user("kim").await.unwrap();
        let appends: Vec<_> = (0..16)
            .map(|n| {
                let s = s.clone();
                tokio::spawn(async move { s.append("kim", "INBOX", msg(n), &[], None).await })
            })
            .collect();
        let mut uids = Vec::new();
        for append in appends {
            uids.push(append.await.unwrap().unwrap().1);
        }
        uids.sort_unstable();
        assert_eq!(uids, (1..=16).collect::<Vec<u32>>());
        let flags: Vec<String> = (0..12).map(|n| format!("$Label{n}")).collect();
        let stores: Vec<_> = flags
            .iter()
            .map(|flag| {
                let (s, flag) = (s.clone(), flag.clone());
                tokio::spawn(async move {
                    s.store_flags("kim", "INBOX", &[1, 2], FlagOp::Add, &[flag])
                        .await
                })
            })
            .collect();
        let mut modseqs = Vec::new();
        for store in stores {
            modseqs.extend(store.await.unwrap().unwrap().into_iter().map(|c| c.2));
        }
        modseqs.sort_unstable();
        modseqs.dedup();
        assert_eq!(modseqs.len(), 24, "each change its own MODSEQ");
        for m in &s.messages("kim", "INBOX").await.unwrap()[..2] {
            let mut got = m.flags.clone();
            got.sort();
            let mut want = flags.clone();
            want.sort();
            assert_eq!(got, want, "UID {}", m.uid);
        }
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn flags_copy_move_delete_and_subscriptions() {
        let (s, dir) = store().await;
        s.ensure_user("erin").await.unwrap();
        for n in 1..=3 {
            s.append(
                "erin",
                "INBOX",
                msg(n),
                &[],
                Some(1_700_000_000 + i64::from(n)),
            )
            .await
            .unwrap();
        }
        let seen = vec!["\\Seen".to_string()];
        let changed = s
            .store_flags("erin", "INBOX", &[1, 2, 9], FlagOp::Add, &seen)
            .await
            .unwrap();
        assert_eq!(changed.len(), 2);
        assert!(
            changed[1].2 > changed[0].2,
            "each change gets a higher MODSEQ"
        );
        let again = s
            .store_flags("erin", "INBOX", &[1], FlagOp::Add, &seen)
            .await
            .unwrap();
        assert!(again.is_empty(), "no change, no new MODSEQ");
        s.store_flags(
            "erin",
            "INBOX",
            &[1],
            FlagOp::Add,
            &["$Work".to_string(), "\\Flagged".to_string()],
        )
        .await
        .unwrap();
        s.store_flags(
            "erin",
            "INBOX",
            &[2],
            FlagOp::Remove,
            &["\\SEEN".to_string()],
        )
        .await
        .unwrap();
        let list = s.messages("erin", "INBOX").await.unwrap();
        assert_eq!(list[0].flags, ["\\Seen", "$Work", "\\Flagged"]);
        assert!(list[1].flags.is_empty());
        let names: Vec<String> = std::fs::read_dir(dir.join("mail/erin/cur"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().any(|n| n.ends_with(":2,FS")), "{names:?}");

        let (validity, pairs) = s.copy("erin", "INBOX", &[1, 3], "Archive").await.unwrap();
        assert_eq!(
            validity,
            s.mailbox("erin", "Archive").await.unwrap().uidvalidity
        );
        assert_eq!(pairs, [(1, 1), (3, 2)]);
        let archived = s.messages("erin", "Archive").await.unwrap();
        assert_eq!(archived[0].flags, list[0].flags);
        assert_eq!(archived[1].internal_date, 1_700_000_003);
        assert_eq!(s.read("erin", "Archive", 2).await.unwrap(), msg(3));

        let (_, moved) = s
            .move_messages("erin", "INBOX", &[2], "Trash")
            .await
            .unwrap();
        assert_eq!(moved, [(2, 1)]);
        let inbox: Vec<u32> = s
            .messages("erin", "INBOX")
            .await
            .unwrap()
            .iter()
            .map(|m| m.uid)
            .collect();
        assert_eq!(inbox, [1, 3]);
        assert_eq!(s.read("erin", "Trash", 1).await.unwrap(), msg(2));

        s.create_mailbox("erin", "Projects", "").await.unwrap();
        s.create_mailbox("erin", "Projects/2026", "").await.unwrap();
        assert!(matches!(
            s.delete_mailbox("erin", "Projects").await,
            Err(StoreError::Refused(_))
        ));
        assert!(matches!(
            s.delete_mailbox("erin", "inbox").await,
            Err(StoreError::Refused(_))
        ));
        s.delete_mailbox("erin", "Projects/2026").await.unwrap();
        s.delete_mailbox("erin", "Projects").await.unwrap();
        assert!(!dir.join("mail/erin/.Projects").exists());
        s.subscribe("erin", "Junk", false).await.unwrap();
        assert!(!s.mailbox("erin", "Junk").await.unwrap().subscribed);
        assert!(matches!(
            s.subscribe("erin", "Nope", true).await,
            Err(StoreError::NoMailbox(_))
        ));
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn mail_copied_to_other_storage_keeps_names_and_drops_stale_copies() {
        use super::migrate::Pass;
        let (s, dir) = store().await;
        let other = Store::new(dir.join("mail2"), s.pool.clone());
        s.ensure_user("fay").await.unwrap();
        for n in 1..=5 {
            s.append("fay", "INBOX", msg(n), &["\\Seen".into()], None)
                .await
                .unwrap();
        }
        s.create_mailbox("fay", "Old", "").await.unwrap();
        // A stale copy on the target from an earlier stay: a file since expunged and a
        // folder since deleted.
        let copied = s.copy_user_to(&other, "fay", Pass::Mirror).await.unwrap();
        assert_eq!(copied.messages, 5);
        s.expunge("fay", "INBOX", &[2]).await.unwrap();
        s.delete_mailbox("fay", "Old").await.unwrap();
        s.append("fay", "INBOX", msg(6), &[], None).await.unwrap();
        // A catch-up pass only adds.
        let more = s.copy_user_to(&other, "fay", Pass::CatchUp).await.unwrap();
        assert_eq!((more.messages, more.removed), (1, 0));
        assert_eq!(
            other
                .maildir("fay", "INBOX")
                .unwrap()
                .list("cur")
                .unwrap()
                .len(),
            6
        );
        assert!(dir.join("mail2/fay/.Old").is_dir());
        // A mirror pass removes what the index no longer names.
        let again = s.copy_user_to(&other, "fay", Pass::Mirror).await.unwrap();
        assert_eq!((again.messages, again.removed), (0, 2));
        assert!(!dir.join("mail2/fay/.Old").exists());
        let ours = s.maildir("fay", "INBOX").unwrap().list("cur").unwrap();
        let theirs = other.maildir("fay", "INBOX").unwrap().list("cur").unwrap();
        assert_eq!(ours, theirs);
        // The target reads the same index: same UIDVALIDITY, UIDs and flags.
        assert_eq!(
            other.mailbox("fay", "INBOX").await.unwrap(),
            s.mailbox("fay", "INBOX").await.unwrap()
        );
        assert_eq!(other.sync("fay", "INBOX").await.unwrap(), 0);
        let uids: Vec<u32> = other
            .messages("fay", "INBOX")
            .await
            .unwrap()
            .iter()
            .map(|m| m.uid)
            .collect();
        assert_eq!(uids, [1, 3, 4, 5, 6]);
        assert_eq!(other.read("fay", "INBOX", 6).await.unwrap(), msg(6));
        assert_eq!(
            std::fs::read_to_string(dir.join("mail2/fay/mailsite-uidvalidity"))
                .unwrap()
                .trim(),
            s.mailbox("fay", "INBOX")
                .await
                .unwrap()
                .uidvalidity
                .to_string()
        );
    }

    #[tokio::test]
    async fn the_shared_index_follows_changes_and_expunges() {
        let (s, _dir) = store().await;
        s.ensure_user("erin").await.unwrap();
        for n in 1..=4 {
            s.append("erin", "INBOX", msg(n), &[], None).await.unwrap();
        }
        let uids = |m: &[MessageInfo]| m.iter().map(|m| m.uid).collect::<Vec<_>>();
        assert_eq!(
            uids(&s.messages_shared("erin", "INBOX").await.unwrap()),
            [1, 2, 3, 4]
        );
        // A flag change and a new message: brought up to date from the changed rows.
        s.store_flags("erin", "INBOX", &[2], FlagOp::Add, &["\\Seen".into()])
            .await
            .unwrap();
        s.append("erin", "INBOX", msg(5), &[], None).await.unwrap();
        let now = s.messages_shared("erin", "INBOX").await.unwrap();
        assert_eq!(uids(&now), [1, 2, 3, 4, 5]);
        assert_eq!(now[1].flags, ["\\Seen"]);
        // An expunge leaves no row to find: the mailbox says when the last one was.
        let before = s.mailbox("erin", "INBOX").await.unwrap();
        assert_eq!(s.expunge("erin", "INBOX", &[1, 4]).await.unwrap(), 2);
        let after = s.mailbox("erin", "INBOX").await.unwrap();
        assert!(after.expungedmodseq > before.highestmodseq);
        assert_eq!(after.expungedmodseq, after.highestmodseq);
        assert_eq!(
            uids(&s.messages_shared("erin", "INBOX").await.unwrap()),
            [2, 3, 5]
        );
        // Changes after the expunge do not look like another one.
        s.append("erin", "INBOX", msg(6), &[], None).await.unwrap();
        let later = s.mailbox("erin", "INBOX").await.unwrap();
        assert_eq!(later.expungedmodseq, after.expungedmodseq);
        assert_eq!(
            uids(&s.messages_shared("erin", "INBOX").await.unwrap()),
            [2, 3, 5, 6]
        );
    }

    /// How many rows of an expunge journal name dora's mail.
    async fn journal_rows(s: &Store, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE username = 'dora'");
        sqlx::query(&sql)
            .fetch_one(&s.pool)
            .await
            .unwrap()
            .try_get(0)
            .unwrap()
    }

    #[tokio::test]
    async fn expunged_messages_never_come_back() {
        let (s, dir) = store().await;
        s.ensure_user("dora").await.unwrap();
        for n in 1..=3 {
            s.append("dora", "INBOX", msg(n), &[], None).await.unwrap();
        }
        assert_eq!(s.expunge("dora", "INBOX", &[1, 3, 99]).await.unwrap(), 2);
        let uids: Vec<u32> = s
            .messages("dora", "INBOX")
            .await
            .unwrap()
            .iter()
            .map(|m| m.uid)
            .collect();
        assert_eq!(uids, [2]);
        assert_eq!(
            std::fs::read_dir(dir.join("mail/dora/cur"))
                .unwrap()
                .count(),
            1
        );
        // A crash between the commit and the unlink: the row is gone, the file is not.
        let (_, uid) = s.reserve("dora", "INBOX").await.unwrap();
        let base = maildir::unique_name(10, uid);
        s.maildir("dora", "INBOX")
            .unwrap()
            .write(&base, &[], &msg(4))
            .unwrap();
        sqlx::query("INSERT INTO expunges (username, mailbox, file) VALUES ('dora', 'INBOX', $1)")
            .bind(&base)
            .execute(&s.pool)
            .await
            .unwrap();
        assert_eq!(s.sync("dora", "INBOX").await.unwrap(), 0);
        assert_eq!(s.messages("dora", "INBOX").await.unwrap().len(), 1);
        assert_eq!(
            std::fs::read_dir(dir.join("mail/dora/cur"))
                .unwrap()
                .count(),
            1
        );
        assert_eq!(
            journal_rows(&s, "expunges").await,
            0,
            "finished, then forgotten"
        );
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn an_expunge_a_crash_interrupted_is_finished_at_the_next_start() {
        let (s, dir) = store().await;
        s.ensure_user("dora").await.unwrap();
        for i in 1..=4 {
            s.append("dora", "INBOX", msg(i), &[], None).await.unwrap();
        }
        let cur = dir.join("mail/dora/cur");
        let files = || {
            let mut names: Vec<String> = std::fs::read_dir(&cur)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort_by_key(|f| maildir::uid_of(f));
            names
        };
        let before = files();
        // A 1,000-message QUIT writes one journal row, forgotten once the files are gone.
        assert_eq!(s.expunge("dora", "INBOX", &[1, 2]).await.unwrap(), 2);
        assert_eq!(files(), before[2..]);
        for _ in 0..100 {
            if journal_rows(&s, "expunge_batches").await == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(
            journal_rows(&s, "expunge_batches").await,
            0,
            "the journal row is forgotten"
        );
        // A crash between the commit and the unlink: the rows of UIDs 3 and 4 are gone
        // and the journal names their files, which are still there.
        let left: Vec<String> = before[2..]
            .iter()
            .map(|f| maildir::base(f).to_string())
            .collect();
        let mut tx = s.pool.begin().await.unwrap();
        sqlx::query(
            "DELETE FROM messages WHERE username = 'dora' AND mailbox = 'INBOX' AND uid IN (3, 4)",
        )
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query("INSERT INTO expunge_batches (username, mailbox, modseq, files) VALUES ('dora', 'INBOX', 99, $1)")
            .bind(left.join("/"))
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        // The next start (a new store on the same data): nothing comes back.
        let again = Store::new(dir.join("mail"), s.pool.clone());
        assert_eq!(again.sync("dora", "INBOX").await.unwrap(), 0);
        assert!(again.messages("dora", "INBOX").await.unwrap().is_empty());
        assert_eq!(files(), Vec::<String>::new());
        assert_eq!(journal_rows(&s, "expunge_batches").await, 0);
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn a_file_newer_than_the_index_keeps_its_uid_and_moves_uidnext() {
        let (s, dir) = store().await;
        s.ensure_user("dora").await.unwrap();
        s.append("dora", "INBOX", msg(1), &[], None).await.unwrap();
        // The index lost the reservation of UID 7 (a power loss), but the file is there.
        let md = s.maildir("dora", "INBOX").unwrap();
        md.write(&maildir::unique_name(10, 7), &[], &msg(2))
            .unwrap();
        assert_eq!(s.sync("dora", "INBOX").await.unwrap(), 1);
        let uids = s.uids("dora", "INBOX").await.unwrap();
        assert_eq!(uids, [1, 7]);
        assert_eq!(s.mailbox("dora", "INBOX").await.unwrap().uidnext, 8);
        let (_, next) = s.append("dora", "INBOX", msg(3), &[], None).await.unwrap();
        assert_eq!(next, 8);
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn a_file_whose_row_was_never_committed_keeps_its_uid() {
        let (s, dir) = store().await;
        s.ensure_user("carol").await.unwrap();
        s.append("carol", "INBOX", msg(1), &[], None).await.unwrap();
        // A crash after the file was written but before its row: reserve, write, no row.
        let (_, uid) = s.reserve("carol", "INBOX").await.unwrap();
        let md = s.maildir("carol", "INBOX").unwrap();
        md.write(&maildir::unique_name(10, uid), &[], &msg(2))
            .unwrap();
        assert_eq!(s.sync("carol", "INBOX").await.unwrap(), 1);
        let uids: Vec<u32> = s
            .messages("carol", "INBOX")
            .await
            .unwrap()
            .iter()
            .map(|m| m.uid)
            .collect();
        assert_eq!(uids, [1, uid]);
        std::fs::remove_dir_all(dir).ok();
    }
}
