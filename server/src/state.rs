//! The live site: the current [`SiteMap`] and user cache, shared by every role of this
//! node, kept current by polling the directory's generation counter.
//!
//! Reads are lock-free (`ArcSwap`), so the autoconfig and DNS hot paths never wait on
//! the database; operator changes made by the CLI or another node show up within one
//! poll interval.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use mailsite_shared::{SiteConfig, SiteMap};
use tokio::sync::watch;

use crate::directory::{Directory, UserEntry};

/// How often the directory's generation is checked.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// One consistent view of the site.
pub struct Snapshot {
    pub map: SiteMap,
    pub users: HashMap<String, UserEntry>,
}

impl Snapshot {
    pub fn config(&self) -> &SiteConfig {
        &self.map.config
    }
}

/// The shared live state of a node.
pub struct Site {
    pub directory: Directory,
    current: ArcSwap<Snapshot>,
    changed: watch::Sender<i64>,
}

impl Site {
    /// Loads the site from the directory.
    pub async fn load(config: Arc<SiteConfig>, directory: Directory) -> anyhow::Result<Arc<Site>> {
        let snapshot = Site::read(&config, &directory).await?;
        let (changed, _) = watch::channel(snapshot.map.generation);
        Ok(Arc::new(Site {
            directory,
            current: ArcSwap::from_pointee(snapshot),
            changed,
        }))
    }

    async fn read(config: &Arc<SiteConfig>, directory: &Directory) -> anyhow::Result<Snapshot> {
        let map = directory.site_map(config.clone()).await?;
        let users = directory.user_entries().await?;
        Ok(Snapshot { map, users })
    }

    /// The current view, to keep.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// The current view, for the length of one request (cheaper than a snapshot).
    pub fn view(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.current.load()
    }

    /// A receiver that sees the generation of every new view.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.changed.subscribe()
    }

    /// Reloads if the directory changed since the current view; returns whether it did.
    pub async fn refresh(&self) -> anyhow::Result<bool> {
        let generation = self.directory.generation().await?;
        let current = self.current.load();
        if generation == current.map.generation {
            return Ok(false);
        }
        let config = current.map.config.clone();
        drop(current);
        let snapshot = Site::read(&config, &self.directory).await?;
        let generation = snapshot.map.generation;
        self.current.store(Arc::new(snapshot));
        self.changed.send_replace(generation);
        tracing::info!(generation, "site changed; new routing in effect");
        Ok(true)
    }

    /// Polls the directory until the process ends.
    pub fn spawn_watcher(self: &Arc<Self>) {
        let site = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(POLL_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                tick.tick().await;
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
