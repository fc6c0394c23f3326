//! The durable queue of one sorter: its spool under `<data_dir>/queue/<sorter>/`.
//!
//! Each accepted message is two files: `<id>.msg` (the message as it will be
//! delivered, Received header included) and `<id>.json` (the [`Envelope`]: sender and
//! every recipient's state). A message from a client is written to `tmp/` while it
//! arrives ([`super::incoming`]). Both are written to `tmp/`, fsynced, renamed into place
//! (the envelope last: its presence marks a complete entry) and the directory is
//! fsynced, all before the client gets its 250. Directory fsyncs of concurrent
//! acceptances are shared (group commit). An entry whose recipients are all final is
//! deleted; a state change is written to a new envelope file and renamed over the old.
//!
//! The running sorter keeps every entry in memory and is the only writer of its spool
//! (a lock file makes a second process refuse to start on it). The `mailsite queue`
//! command reads the files, removes entries, and asks for a flush with a `flush` file
//! that the sorter picks up within a second.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::gauge::Gauge;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::body::Body;
use super::incoming::Incoming;
use crate::mailbox::store::maildir::sync_dir;

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Where a sorter's spool lives.
pub fn spool_dir(data_dir: &Path, sorter: &str) -> PathBuf {
    data_dir.join("queue").join(sorter)
}

/// The largest message kept in memory from acceptance to its first attempt.
const MAX_FRESH: usize = 256 * 1024;

/// The file whose presence asks the running sorter to retry everything now.
const FLUSH_FILE: &str = "flush";

/// Where a recipient stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Not delivered yet: tried at `next_attempt`.
    Pending,
    Delivered,
    /// Refused for good, or not delivered within the queue's lifetime: bounced.
    Failed,
}

/// One recipient of a queued message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    pub address: String,
    /// Not in one of the site's domains (accepted from an authenticated user only).
    #[serde(default)]
    pub remote: bool,
    pub state: State,
    #[serde(default)]
    pub attempts: u32,
    /// Unix seconds of the next delivery attempt.
    #[serde(default)]
    pub next_attempt: u64,
    /// The last failure, as the mailbox server (or the connection) reported it.
    #[serde(default)]
    pub last_error: Option<String>,
    /// What the sender asked to be told (RFC 3461 NOTIFY, [`notify`] bits); 0: not
    /// said (failures only).
    #[serde(default)]
    pub notify: u8,
    /// The address as the sender gave it (ORCPT: `rfc822;addr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orcpt: Option<String>,
    /// A delay report was sent for it.
    #[serde(default)]
    pub delay_reported: bool,
}

/// NOTIFY bits of a [`Recipient`].
pub mod notify {
    pub const SUCCESS: u8 = 1;
    pub const FAILURE: u8 = 2;
    pub const DELAY: u8 = 4;
    pub const NEVER: u8 = 8;
}

impl Recipient {
    pub fn new(address: String, remote: bool, now: u64) -> Recipient {
        Recipient {
            address,
            remote,
            state: State::Pending,
            attempts: 0,
            next_attempt: now,
            last_error: None,
            notify: 0,
            orcpt: None,
            delay_reported: false,
        }
    }

    /// Whether the sender wants a report when the recipient fails.
    pub fn wants_failure(&self) -> bool {
        self.notify == 0 || self.notify & notify::FAILURE != 0
    }

    /// Whether the sender asked to be told of its delivery.
    pub fn wants_success(&self) -> bool {
        self.notify & notify::SUCCESS != 0
    }

    /// Whether the sender asked to be told when it is delayed.
    pub fn wants_delay(&self) -> bool {
        self.notify & notify::DELAY != 0
    }

    /// Whether the delivery loop should try this recipient at `now`.
    pub fn due(&self, now: u64) -> bool {
        self.state == State::Pending && self.next_attempt <= now
    }

    /// A short description for `mailsite queue list`.
    pub fn describe(&self) -> &'static str {
        match (self.state, self.remote) {
            (State::Pending, false) => "pending",
            (State::Pending, true) => "pending (remote)",
            (State::Delivered, _) => "delivered",
            (State::Failed, _) => "failed (bounced)",
        }
    }
}

/// What the spool records about a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub id: String,
    /// The envelope sender; empty for the null sender of bounces (never bounced).
    pub sender: String,
    /// Unix seconds of acceptance.
    pub received: u64,
    /// The user who submitted it, if the client authenticated.
    #[serde(default)]
    pub authenticated: Option<String>,
    /// The client: `helo [ip]`.
    #[serde(default)]
    pub client: String,
    pub size: u64,
    /// RET=FULL: reports return the whole message (otherwise its headers).
    #[serde(default)]
    pub ret_full: bool,
    /// ENVID (RFC 3461 4.4), given back in reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envid: Option<String>,
    pub recipients: Vec<Recipient>,
}

impl Envelope {
    /// Whether every recipient is delivered or failed.
    pub fn finished(&self) -> bool {
        self.recipients.iter().all(|r| r.state != State::Pending)
    }
}

/// Queue errors, each naming the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "the queue {0} is in use by another mailsite process; run one process per sorter and data directory"
    )]
    Locked(PathBuf),
    #[error("no queued message {0:?}")]
    NoEntry(String),
}

fn at(path: &Path) -> impl FnOnce(io::Error) -> QueueError + '_ {
    move |source| QueueError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub type Result<T> = std::result::Result<T, QueueError>;

/// Writes a file and flushes it to disk.
fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Writes the envelope of `tmp/<id>.msg` (already synced) and moves both into the
/// spool, the envelope last: its presence marks a complete entry.
fn place(dir: &Path, id: &str, json: &[u8]) -> Result<()> {
    let tmp_msg = dir.join("tmp").join(format!("{id}.msg"));
    let tmp_json = dir.join("tmp").join(format!("{id}.json"));
    write_synced(&tmp_json, json).map_err(at(&tmp_json))?;
    let msg = dir.join(format!("{id}.msg"));
    fs::rename(&tmp_msg, &msg).map_err(at(&msg))?;
    let json_path = dir.join(format!("{id}.json"));
    fs::rename(&tmp_json, &json_path).map_err(at(&json_path))
}

/// Rewrites the message file `path` with `added` after its first `prefix` octets
/// (copied through a small buffer, never whole in memory), synced.
fn insert_headers(path: &Path, prefix: u64, added: &[u8]) -> io::Result<()> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let new = path.with_extension("new");
    let result = (|| {
        let mut source = File::open(path)?;
        let out = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&new)?;
        let mut out = io::BufWriter::new(out);
        io::copy(&mut (&mut source).take(prefix), &mut out)?;
        out.write_all(added)?;
        io::copy(&mut source, &mut out)?;
        let out = out.into_inner().map_err(|e| e.into_error())?;
        out.sync_all()?;
        fs::rename(&new, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&new);
    }
    result
}

/// Directory fsyncs shared by concurrent writers: a caller's rename is durable once
/// a sync that started after it has finished, so callers that arrive while one sync
/// runs are all covered by the next.
struct DirSync {
    dir: PathBuf,
    requested: AtomicU64,
    done: tokio::sync::Mutex<u64>,
}

impl DirSync {
    async fn sync(&self) -> io::Result<()> {
        let mine = self.requested.fetch_add(1, Ordering::AcqRel) + 1;
        let mut done = self.done.lock().await;
        if *done >= mine {
            return Ok(());
        }
        let upto = self.requested.load(Ordering::Acquire);
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || sync_dir(&dir))
            .await
            .map_err(io::Error::other)??;
        *done = upto;
        Ok(())
    }
}

/// A queued message as the running sorter holds it.
struct Entry {
    envelope: Envelope,
    /// Being delivered now: not handed out again.
    busy: bool,
    /// The message, kept from acceptance until the first attempt has read it.
    fresh: Option<Arc<Vec<u8>>>,
}

/// The queue of one running sorter.
pub struct Queue {
    pub dir: PathBuf,
    entries: Mutex<HashMap<String, Entry>>,
    /// Entries accepted since the delivery loop last looked: tried at once.
    arrivals: Mutex<VecDeque<String>>,
    wake: Notify,
    dir_sync: DirSync,
    /// Counts the ids this queue handed out (part of each id).
    ids: AtomicU64,
    /// The node's gauge of queued messages, moved with every entry in and out.
    queued: Gauge,
    _lock: File,
}

/// Reads the envelope files of a spool (the `mailsite queue` view), oldest first.
pub fn read_spool(dir: &Path) -> Result<Vec<Envelope>> {
    let mut out = Vec::new();
    let listing = match fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(at(dir)(e)),
    };
    for item in listing {
        let path = item.map_err(at(dir))?.path();
        if path.extension().is_some_and(|e| e == "json") {
            match fs::read(&path).map(|b| serde_json::from_slice::<Envelope>(&b)) {
                Ok(Ok(envelope)) => out.push(envelope),
                Ok(Err(error)) => {
                    tracing::warn!(path = %path.display(), %error, "unreadable envelope")
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(at(&path)(e)),
            }
        }
    }
    out.sort_by(|a, b| (a.received, &a.id).cmp(&(b.received, &b.id)));
    Ok(out)
}

/// Whether a queue id is one this module makes (so it is safe in a file name).
pub fn valid_id(id: &str) -> bool {
    (1..=40).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Removes a queued message from a spool; the running sorter forgets it when it next
/// looks at it.
pub fn remove(dir: &Path, id: &str) -> Result<Envelope> {
    if !valid_id(id) {
        return Err(QueueError::NoEntry(id.to_string()));
    }
    let json = dir.join(format!("{id}.json"));
    let envelope = match fs::read(&json) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| QueueError::Io {
            path: json.clone(),
            source: io::Error::other(e),
        })?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(QueueError::NoEntry(id.to_string()));
        }
        Err(e) => return Err(at(&json)(e)),
    };
    fs::remove_file(&json).map_err(at(&json))?;
    let msg = dir.join(format!("{id}.msg"));
    match fs::remove_file(&msg) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(at(&msg)(e)),
        _ => {}
    }
    sync_dir(dir).map_err(at(dir))?;
    Ok(envelope)
}

/// Asks the running sorter of a spool to retry every pending recipient now.
pub fn request_flush(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(at(dir))?;
    let path = dir.join(FLUSH_FILE);
    fs::write(&path, b"").map_err(at(&path))
}

impl Queue {
    /// Opens (creating) a spool, locks it for this process, and loads its entries,
    /// counting them in `queued` (the node's gauge, [`crate::metrics::Metrics::queue_gauge`]).
    pub fn open(dir: PathBuf, queued: Gauge) -> Result<Queue> {
        let tmp = dir.join("tmp");
        fs::create_dir_all(&tmp).map_err(at(&tmp))?;
        let lock_path = dir.join("lock");
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(at(&lock_path))?;
        if lock.try_lock().is_err() {
            return Err(QueueError::Locked(dir));
        }
        // Files in tmp/ were never acknowledged.
        for item in fs::read_dir(&tmp).map_err(at(&tmp))? {
            let path = item.map_err(at(&tmp))?.path();
            let _ = fs::remove_file(path);
        }
        let mut entries = HashMap::new();
        for envelope in read_spool(&dir)? {
            if !dir.join(format!("{}.msg", envelope.id)).exists() {
                tracing::warn!(id = %envelope.id, "queued envelope without its message; dropped");
                let _ = fs::remove_file(dir.join(format!("{}.json", envelope.id)));
                continue;
            }
            entries.insert(
                envelope.id.clone(),
                Entry {
                    envelope,
                    busy: false,
                    fresh: None,
                },
            );
        }
        // A message file without an envelope is from a crash between the two renames:
        // never acknowledged.
        for item in fs::read_dir(&dir).map_err(at(&dir))? {
            let path = item.map_err(at(&dir))?.path();
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            if path.extension().is_some_and(|e| e == "msg") && !entries.contains_key(stem) {
                let _ = fs::remove_file(&path);
            }
        }
        queued.inc_by(entries.len() as i64);
        Ok(Queue {
            dir_sync: DirSync {
                dir: dir.clone(),
                requested: AtomicU64::new(0),
                done: tokio::sync::Mutex::new(0),
            },
            dir,
            entries: Mutex::new(entries),
            arrivals: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            ids: AtomicU64::new(0),
            queued,
            _lock: lock,
        })
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many messages are queued.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A new queue id, unique in this spool: seconds, a counter and randomness in hex.
    pub fn new_id(&self) -> String {
        loop {
            let id = format!(
                "{:08X}{:04X}{:04X}",
                now() as u32,
                self.ids.fetch_add(1, Ordering::Relaxed) as u16,
                rand::random::<u16>()
            );
            if !self.entries().contains_key(&id) {
                return id;
            }
        }
    }

    fn path(&self, id: &str, extension: &str) -> PathBuf {
        self.dir.join(format!("{id}.{extension}"))
    }

    /// Writes a message and its envelope durably, then hands it to the delivery loop.
    /// Only once this returns may the client be told 250. (Bounces; messages from
    /// clients are streamed to the spool with [`Queue::accept_incoming`].)
    pub async fn accept(&self, envelope: Envelope, message: Vec<u8>) -> Result<()> {
        let id = envelope.id.clone();
        let message = Arc::new(message);
        let json = self.envelope_json(&envelope)?;
        let (dir, bytes) = (self.dir.clone(), message.clone());
        self.blocking(move || {
            let tmp_msg = dir.join("tmp").join(format!("{id}.msg"));
            write_synced(&tmp_msg, &bytes).map_err(at(&tmp_msg))?;
            place(&dir, &id, &json)
        })
        .await?;
        // Small messages stay in memory for their first attempt; large ones are read
        // back, so that a backlog does not fill the memory.
        let fresh = (message.len() <= MAX_FRESH).then_some(message);
        self.enter(envelope, fresh).await
    }

    /// Queues a message that was streamed to `tmp/` as it arrived: `added` (headers
    /// the sorter adds after its Received header) is put in, the file is flushed to
    /// disk, moved into the spool with its envelope, and the directory synced. Only
    /// once this returns may the client be told 250; on an error nothing is left.
    pub async fn accept_incoming(
        &self,
        envelope: Envelope,
        incoming: Incoming,
        added: Vec<u8>,
    ) -> Result<()> {
        let id = envelope.id.clone();
        let json = self.envelope_json(&envelope)?;
        let (tmp_msg, prefix, file) = incoming.finish().await.map_err(at(&self.dir))?;
        let dir = self.dir.clone();
        self.blocking(move || {
            let done = if added.is_empty() {
                file.sync_all().map_err(at(&tmp_msg))
            } else {
                drop(file);
                insert_headers(&tmp_msg, prefix, &added).map_err(at(&tmp_msg))
            }
            .and_then(|()| place(&dir, &id, &json));
            if done.is_err() {
                let _ = fs::remove_file(&tmp_msg);
            }
            done
        })
        .await?;
        self.enter(envelope, None).await
    }

    fn envelope_json(&self, envelope: &Envelope) -> Result<Vec<u8>> {
        serde_json::to_vec_pretty(envelope).map_err(|e| QueueError::Io {
            path: self.path(&envelope.id, "json"),
            source: io::Error::other(e),
        })
    }

    /// Runs file work off the async threads.
    async fn blocking(&self, work: impl FnOnce() -> Result<()> + Send + 'static) -> Result<()> {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| QueueError::Io {
                path: self.dir.clone(),
                source: io::Error::other(e),
            })?
    }

    /// Syncs the spool directory (the renames), then hands the entry to the delivery loop.
    async fn enter(&self, envelope: Envelope, fresh: Option<Arc<Vec<u8>>>) -> Result<()> {
        self.dir_sync.sync().await.map_err(at(&self.dir))?;
        let id = envelope.id.clone();
        self.entries().insert(
            id.clone(),
            Entry {
                envelope,
                busy: false,
                fresh,
            },
        );
        self.queued.inc();
        self.arrivals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(id);
        self.wake.notify_one();
        Ok(())
    }

    /// Waits until something was accepted (or `notify` is called).
    pub async fn notified(&self) {
        self.wake.notified().await
    }

    /// Takes the entries to work on now: those just accepted, and (with `scan`) every
    /// entry with a recipient due at `now` or past `expiry` seconds in the queue. Each is
    /// marked busy until [`Queue::finish`]. Also returns when the next one falls due.
    pub fn take_due(&self, now: u64, scan: bool, lifetime: u64) -> (Vec<String>, Option<u64>) {
        let arrived: Vec<String> = self
            .arrivals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        let mut entries = self.entries();
        let mut out = Vec::new();
        for id in arrived {
            if let Some(entry) = entries.get_mut(&id)
                && !entry.busy
            {
                entry.busy = true;
                out.push(id);
            }
        }
        let mut next: Option<u64> = None;
        if scan {
            for (id, entry) in entries.iter_mut() {
                if entry.busy {
                    continue;
                }
                let expires = entry.envelope.received.saturating_add(lifetime);
                let pending = entry
                    .envelope
                    .recipients
                    .iter()
                    .filter(|r| r.state == State::Pending);
                let mut due_at: Option<u64> = None;
                for r in pending {
                    let at = r.next_attempt.min(expires);
                    due_at = Some(due_at.map_or(at, |d| d.min(at)));
                }
                match due_at {
                    Some(at) if at <= now => {
                        entry.busy = true;
                        out.push(id.clone());
                    }
                    Some(at) => next = Some(next.map_or(at, |n| n.min(at))),
                    // Nothing pending: finished, deleted by finish.
                    None => {}
                }
            }
        }
        (out, next)
    }

    /// The envelope and message of a busy entry, for a delivery attempt (a message not
    /// in memory is read from its file as it is sent); `None` if it was removed (the
    /// entry is then forgotten).
    pub async fn checkout(&self, id: &str) -> Option<(Envelope, Body)> {
        let (envelope, fresh) = {
            let mut entries = self.entries();
            let entry = entries.get_mut(id)?;
            (entry.envelope.clone(), entry.fresh.take())
        };
        if let Some(message) = fresh {
            return Some((envelope, Body::Memory(message)));
        }
        let path = self.path(id, "msg");
        match tokio::fs::metadata(&path).await {
            Ok(meta) => Some((
                envelope,
                Body::File {
                    path,
                    size: meta.len(),
                },
            )),
            Err(error) => {
                if error.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(%error, path = %path.display(), "cannot read a queued message");
                    self.release(id);
                    return None;
                }
                // Removed with `mailsite queue remove`.
                self.forget(id).await;
                None
            }
        }
    }

    /// Makes a busy entry available again, unchanged.
    pub fn release(&self, id: &str) {
        if let Some(entry) = self.entries().get_mut(id) {
            entry.busy = false;
        }
    }

    async fn forget(&self, id: &str) {
        if self.entries().remove(id).is_some() {
            self.queued.dec();
        }
        let (json, msg) = (self.path(id, "json"), self.path(id, "msg"));
        let _ = tokio::fs::remove_file(json).await;
        let _ = tokio::fs::remove_file(msg).await;
    }

    /// Records the outcome of an attempt: deletes a finished entry, or writes its new
    /// state (tmp, fsync, rename) and makes it available again.
    pub async fn finish(&self, envelope: Envelope) -> Result<()> {
        let id = envelope.id.clone();
        if envelope.finished() {
            self.forget(&id).await;
            return Ok(());
        }
        let json = self.path(&id, "json");
        // Removed by an operator during the attempt: do not bring it back.
        if tokio::fs::metadata(self.path(&id, "msg")).await.is_err() {
            self.forget(&id).await;
            return Ok(());
        }
        let bytes = serde_json::to_vec_pretty(&envelope).map_err(|e| QueueError::Io {
            path: json.clone(),
            source: io::Error::other(e),
        })?;
        let tmp = self.dir.join("tmp").join(format!("{id}.json"));
        let (t, j) = (tmp.clone(), json.clone());
        let written = tokio::task::spawn_blocking(move || {
            write_synced(&t, &bytes).map_err(at(&t))?;
            fs::rename(&t, &j).map_err(at(&j))
        })
        .await
        .map_err(|e| QueueError::Io {
            path: tmp,
            source: io::Error::other(e),
        });
        // Kept in memory either way: a state not written only means an attempt made
        // again after a restart.
        if let Some(entry) = self.entries().get_mut(&id) {
            entry.envelope = envelope;
            entry.busy = false;
        }
        written?
    }

    /// Makes every pending recipient due now (`mailsite queue flush`), if a flush
    /// was asked for; returns whether it was.
    pub fn flush_if_requested(&self) -> bool {
        let file = self.dir.join(FLUSH_FILE);
        if fs::remove_file(&file).is_err() {
            return false;
        }
        let now = now();
        for entry in self.entries().values_mut() {
            for r in &mut entry.envelope.recipients {
                if r.state == State::Pending {
                    r.next_attempt = r.next_attempt.min(now);
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(queue: &Queue, recipients: &[&str]) -> Envelope {
        Envelope {
            id: queue.new_id(),
            sender: "alice@example.test".into(),
            received: now(),
            authenticated: Some("alice".into()),
            client: "client [127.0.0.1]".into(),
            size: 5,
            ret_full: false,
            envid: None,
            recipients: recipients
                .iter()
                .map(|r| Recipient::new(r.to_string(), false, now()))
                .collect(),
        }
    }

    #[tokio::test]
    async fn accepted_messages_survive_a_reopen_and_finished_ones_are_deleted() {
        let dir = std::env::temp_dir().join(format!("mailsite-queue-{}", rand::random::<u64>()));
        let queue = Queue::open(dir.clone(), Gauge::default()).unwrap();
        assert!(matches!(
            Queue::open(dir.clone(), Gauge::default()),
            Err(QueueError::Locked(_))
        ));
        let first = envelope(&queue, &["nora@example.test", "amy@example.test"]);
        let id = first.id.clone();
        queue.accept(first, b"hello".to_vec()).await.unwrap();
        let (due, _) = queue.take_due(now(), true, 100);
        assert_eq!(due, vec![id.clone()]);
        // Busy entries are not handed out twice.
        assert!(queue.take_due(now(), true, 100).0.is_empty());
        let (mut env, message) = queue.checkout(&id).await.unwrap();
        assert_eq!(message.head().await.unwrap(), b"hello");
        env.recipients[0].state = State::Delivered;
        env.recipients[1].attempts = 1;
        env.recipients[1].next_attempt = now() + 60;
        queue.finish(env).await.unwrap();
        let (due, next) = queue.take_due(now(), true, 1000);
        assert!(due.is_empty());
        assert!(next.is_some_and(|n| n >= now() + 59));
        drop(queue);

        let queue = Queue::open(dir.clone(), Gauge::default()).unwrap();
        assert_eq!(queue.len(), 1);
        let listed = read_spool(&dir).unwrap();
        assert_eq!(listed[0].recipients[0].state, State::Delivered);
        assert_eq!(listed[0].recipients[1].attempts, 1);
        request_flush(&dir).unwrap();
        assert!(queue.flush_if_requested());
        let (due, _) = queue.take_due(now(), true, 1000);
        assert_eq!(due, vec![id.clone()]);
        let (mut env, _) = queue.checkout(&id).await.unwrap();
        env.recipients[1].state = State::Delivered;
        queue.finish(env).await.unwrap();
        assert!(queue.is_empty());
        assert!(read_spool(&dir).unwrap().is_empty());
        assert!(!dir.join(format!("{id}.msg")).exists());
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn removed_entries_are_forgotten_and_expired_ones_fall_due() {
        let dir = std::env::temp_dir().join(format!("mailsite-queue-{}", rand::random::<u64>()));
        let queue = Queue::open(dir.clone(), Gauge::default()).unwrap();
        let mut held = envelope(&queue, &["x@example.org"]);
        held.recipients[0].remote = true;
        held.recipients[0].next_attempt = now() + 1000;
        held.received = now() - 10;
        let id = held.id.clone();
        queue.accept(held, b"m".to_vec()).await.unwrap();
        // Not due for a while: only its expiry makes the entry due.
        let (due, _) = queue.take_due(now(), false, 100);
        assert_eq!(due.len(), 1, "a new arrival is always looked at once");
        let (env, _) = queue.checkout(&id).await.unwrap();
        queue.finish(env).await.unwrap();
        assert!(queue.take_due(now(), true, 100).0.is_empty());
        assert_eq!(queue.take_due(now(), true, 5).0, vec![id.clone()]);
        queue.release(&id);
        assert_eq!(remove(&dir, &id).unwrap().id, id);
        assert!(matches!(remove(&dir, &id), Err(QueueError::NoEntry(_))));
        assert!(matches!(remove(&dir, "../x"), Err(QueueError::NoEntry(_))));
        queue.take_due(now(), true, 5);
        assert!(queue.checkout(&id).await.is_none());
        assert!(queue.is_empty());
        std::fs::remove_dir_all(dir).ok();
    }
}
