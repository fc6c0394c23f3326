//! The live site: the current [`SiteMap`] and user cache, shared by every role of this
//! node, kept current by following the directory's change log.
//!
//! Reads are lock-free (`ArcSwap`), so the autoconfig and DNS hot paths never wait on
//! the database; operator changes made by the CLI or another node show up within one
//! poll interval. A poll reads the generation (one row) and, when it moved, the log rows
//! after the generation this node applied (an indexed range), then only the users they
//! name, or the small site map when a letter or server changed (on PostgreSQL, a
//! `NOTIFY` at each change's commit starts that poll at once): one user's change costs
//! a node the same at 100 users as at 100,000. The user cache is a persistent map, so a
//! new view shares all but one path of the old one instead of copying every user.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use mailsite_shared::{SiteConfig, SiteMap};
use tokio::sync::watch;

use crate::directory::changes::{Pending, Subject};
use crate::directory::{Directory, UserEntries};
use crate::metrics::Metrics;
use crate::throttle::Throttle;

/// How often the directory's generation is checked.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// One consistent view of the site.
pub struct Snapshot {
    /// The site map; its `generation` is that of the last change of the map itself.
    pub map: SiteMap,
    pub users: UserEntries,
    /// The last change (site generation) this view reflects, of the users or the map.
    pub generation: i64,
}

impl Snapshot {
    pub fn config(&self) -> &SiteConfig {
        &self.map.config
    }
}

/// What this node has read from the directory to follow it, since it started.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reads {
    /// Full reloads (the start, and catching up past the kept log).
    pub full: u64,
    /// Site maps read for a letter or server change.
    pub maps: u64,
    /// User rows read, by full reloads and by changes.
    pub users: u64,
}

#[derive(Default)]
struct ReadCounters {
    full: AtomicU64,
    maps: AtomicU64,
    users: AtomicU64,
}

/// The shared live state of a node.
pub struct Site {
    pub directory: Directory,
    current: ArcSwap<Snapshot>,
    changed: watch::Sender<i64>,
    /// One refresh at a time (the poller, and roles that apply their own change at
    /// once), so that an older view never replaces a newer one.
    refreshing: tokio::sync::Mutex<()>,
    reads: ReadCounters,
    /// This node's login throttle, with the directory's blocks.
    pub throttle: Throttle,
    /// This node's counters, served at `/metrics`.
    pub metrics: Arc<Metrics>,
}

impl Site {
    /// Loads the site from the directory.
    pub async fn load(config: Arc<SiteConfig>, directory: Directory) -> anyhow::Result<Arc<Site>> {
        let reads = ReadCounters::default();
        let snapshot = Site::read(&config, &directory, &reads).await?;
        let (changed, _) = watch::channel(snapshot.map.generation);
        let throttle = Throttle::new(config.throttle);
        throttle.apply(directory.blocks().await?, snapshot.generation);
        Ok(Arc::new(Site {
            directory,
            current: ArcSwap::from_pointee(snapshot),
            changed,
            refreshing: tokio::sync::Mutex::new(()),
            reads,
            throttle,
            metrics: Arc::default(),
        }))
    }

    /// Reads everything. The generation is read first: a change committed meanwhile
    /// may already show in what follows, and is applied again (harmlessly) next poll.
    async fn read(
        config: &Arc<SiteConfig>,
        directory: &Directory,
        reads: &ReadCounters,
    ) -> anyhow::Result<Snapshot> {
        let generation = directory.generation().await?;
        let map = directory.site_map(config.clone()).await?;
        let users = directory.user_entries().await?;
        reads.full.fetch_add(1, Ordering::Relaxed);
        reads.maps.fetch_add(1, Ordering::Relaxed);
        reads.users.fetch_add(users.len() as u64, Ordering::Relaxed);
        Ok(Snapshot {
            map,
            users,
            generation,
        })
    }

    /// The current view, to keep.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// The current view, for the length of one request (cheaper than a snapshot).
    pub fn view(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.current.load()
    }

    /// A receiver that sees the generation of every new site map (letters, server
    /// states, servers); user changes alone leave the map, and its watchers, as they are.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.changed.subscribe()
    }

    /// What this node has read from the directory so far.
    pub fn reads(&self) -> Reads {
        Reads {
            full: self.reads.full.load(Ordering::Relaxed),
            maps: self.reads.maps.load(Ordering::Relaxed),
            users: self.reads.users.load(Ordering::Relaxed),
        }
    }

    /// Applies what changed in the directory since the current view; returns whether
    /// anything did.
    pub async fn refresh(&self) -> anyhow::Result<bool> {
        let _turn = self.refreshing.lock().await;
        let current = self.current.load_full();
        let config = current.map.config.clone();
        let blocks_changed;
        let next = match self.directory.changes_after(current.generation).await? {
            Pending::Nothing => return Ok(false),
            Pending::Reload => {
                tracing::info!(
                    from = current.generation,
                    "the change log no longer reaches back to this node's view; reloading the whole site"
                );
                blocks_changed = true;
                Site::read(&config, &self.directory, &self.reads).await?
            }
            Pending::Changes {
                generation,
                changes,
            } => {
                blocks_changed = changes.iter().any(|c| c.subject == Subject::Block);
                let site_changed = changes.iter().any(|c| c.subject == Subject::Site);
                let map = match site_changed {
                    true => {
                        self.reads.maps.fetch_add(1, Ordering::Relaxed);
                        self.directory.site_map(config).await?
                    }
                    false => current.map.clone(),
                };
                let mut names: Vec<&str> = changes
                    .iter()
                    .filter(|c| c.subject == Subject::User)
                    .map(|c| c.name.as_str())
                    .collect();
                names.sort_unstable();
                names.dedup();
                let mut users = current.users.clone();
                if !names.is_empty() {
                    let found = self.directory.user_entries_of(&names).await?;
                    self.reads
                        .users
                        .fetch_add(found.len() as u64, Ordering::Relaxed);
                    // A named user the directory no longer has was removed.
                    for name in &names {
                        users.remove(*name);
                    }
                    users.extend(found);
                }
                Snapshot {
                    map,
                    users,
                    generation,
                }
            }
        };
        if blocks_changed {
            // Read after the generation: it shows at least every block change up to it.
            self.throttle
                .apply(self.directory.blocks().await?, next.generation);
        }
        let map_changed = next.map.generation != current.map.generation;
        let generation = next.map.generation;
        self.current.store(Arc::new(next));
        if map_changed {
            self.changed.send_replace(generation);
            tracing::info!(generation, "site changed; new routing in effect");
        }
        Ok(true)
    }

    /// Polls the directory until the process ends; on PostgreSQL, also as soon as a
    /// change is announced (the poll stays the path that makes sure nothing is missed).
    pub fn spawn_watcher(self: &Arc<Self>) {
        let site = self.clone();
        let announced = Arc::new(tokio::sync::Notify::new());
        tokio::spawn(listen_for_changes(
            self.directory.clone(),
            announced.clone(),
        ));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(POLL_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = announced.notified() => {}
                }
                match site.refresh().await {
                    Ok(_) if failing => {
                        failing = false;
                        tracing::info!("directory reachable again");
                    }
                    Ok(_) => {}
                    Err(error) if !failing => {
                        failing = true;
                        tracing::warn!(%error, "cannot read the directory; serving the last known site");
                    }
                    Err(_) => {}
                }
            }
        });
    }
}

/// Wakes the watcher at every change PostgreSQL announces; on SQLite, or while the
/// listening connection is down, the watcher's polls alone keep the node current.
async fn listen_for_changes(directory: Directory, announced: Arc<tokio::sync::Notify>) {
    let mut told = false;
    loop {
        match directory.change_notices().await {
            Ok(None) => return,
            Ok(Some(mut listener)) => {
                told = false;
                // recv reconnects by itself after a lost connection; an error means it
                // could not, and a new listener is tried after a pause.
                while listener.recv().await.is_ok() {
                    announced.notify_one();
                }
            }
            Err(error) if !told => {
                told = true;
                tracing::warn!(%error, "cannot listen for change notices; polling every {} ms", POLL_INTERVAL.as_millis());
            }
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use mailsite_shared::autoconfig::Preference;

    use super::*;
    use crate::directory::tests::temp_directory;

    /// A node (`Site`) with a connection of its own, and the directory an operator
    /// changes through another: two nodes of one site, as far as the database can tell.
    async fn two_nodes(
        users: usize,
    ) -> (Arc<Site>, Directory, Arc<SiteConfig>, std::path::PathBuf) {
        let (operator, config, dir) = temp_directory().await;
        for n in 0..users {
            operator
                .add_user(&format!("user{n}"), "password", "", Preference::Imap)
                .await
                .unwrap();
        }
        let own = Directory::open(&config).await.unwrap();
        let site = Site::load(config.clone(), own).await.unwrap();
        (site, operator, config, dir)
    }

    #[tokio::test]
    async fn a_user_change_reaches_another_node_by_reading_that_user_alone() {
        let (site, operator, _, dir) = two_nodes(12).await;
        let maps = site.subscribe();
        let start = site.reads();
        assert_eq!((start.full, start.users), (1, 12));
        assert!(!site.refresh().await.unwrap(), "nothing changed yet");

        operator
            .set_preference("user3", Preference::Pop3)
            .await
            .unwrap();
        assert!(site.refresh().await.unwrap());
        assert_eq!(site.view().users["user3"].preference, Preference::Pop3);
        operator.set_enabled("user5", false).await.unwrap();
        operator
            .add_user("newcomer", "password", "", Preference::Pop3)
            .await
            .unwrap();
        assert!(site.refresh().await.unwrap());
        assert!(!site.view().users["user5"].enabled);
        assert_eq!(site.view().users["newcomer"].preference, Preference::Pop3);
        assert_eq!(site.view().generation, operator.generation().await.unwrap());

        let reads = site.reads();
        assert_eq!(reads.full, 1, "no full reload");
        assert_eq!(reads.maps, start.maps, "users alone leave the site map be");
        assert_eq!(reads.users - start.users, 3, "one row per changed user");
        assert!(!maps.has_changed().unwrap(), "map watchers are not woken");
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn a_removed_user_leaves_every_node() {
        let (site, operator, _, dir) = two_nodes(3).await;
        operator.remove_user("user1").await.unwrap();
        assert!(site.refresh().await.unwrap());
        let view = site.view();
        assert!(!view.users.contains_key("user1"));
        assert_eq!(view.users.len(), 2);
        assert_eq!(site.reads().full, 1);
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn a_letter_move_rereads_the_site_map_alone() {
        let (site, operator, config, dir) = two_nodes(3).await;
        let maps = site.subscribe();
        let before = site.reads();
        assert_eq!(
            site.view().map.owner(0).name,
            "mailbox1",
            "a starts on mailbox1"
        );
        operator.move_letter(&config, 0, "mailbox2").await.unwrap();
        assert!(site.refresh().await.unwrap());
        assert_eq!(site.view().map.owner(0).name, "mailbox2");
        assert!(maps.has_changed().unwrap(), "map watchers are woken");
        let after = site.reads();
        assert_eq!(after.maps, before.maps + 1);
        assert_eq!((after.full, after.users), (before.full, before.users));
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn a_node_behind_the_kept_log_reloads_everything() {
        let (site, operator, config, dir) = two_nodes(3).await;
        operator
            .set_preference("user0", Preference::Pop3)
            .await
            .unwrap();
        operator.remove_user("user2").await.unwrap();
        operator.move_letter(&config, 0, "mailbox2").await.unwrap();
        // Three users added, then three changes: all but the newest go.
        assert_eq!(operator.prune_changes(1).await.unwrap(), 5);
        assert!(site.refresh().await.unwrap());
        let view = site.view();
        assert_eq!(view.users["user0"].preference, Preference::Pop3);
        assert!(!view.users.contains_key("user2"));
        assert_eq!(view.map.owner(0).name, "mailbox2");
        assert_eq!(site.reads().full, 2, "caught up by a full reload");
        std::fs::remove_dir_all(dir).ok();
    }
}
