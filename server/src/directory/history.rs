//! The site's history: each letter move, operator server state and health finding is
//! recorded with what it was before (in the transaction that makes it), so that the
//! site can be seen as it was at an earlier time. The helpdesk judges a user's report
//! against the site as it was when the report was made: a server drained after it
//! must not make the report's DNS answers look stale.
//!
//! The site at a time is the site now with every later change undone: for each item,
//! the earliest change after that time holds, in `before`, what the item was then.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use mailsite_shared::{ServerState, SiteConfig, SiteMap};
use sqlx::Row;

use super::{Directory, Result, now};

/// The rows a site map is made of.
#[derive(Debug, Default, Clone)]
pub(super) struct SiteRows {
    pub generation: i64,
    /// Letter (bucket) to its home, where it is not the configured one.
    pub overrides: HashMap<usize, String>,
    /// Operator states (absent: up).
    pub operator: HashMap<String, ServerState>,
    /// Servers whose health checks fail.
    pub failing: HashSet<String>,
    /// The DKIM keys (not kept in the history: the site at an earlier time is shown
    /// with today's keys).
    pub dkim: Vec<mailsite_shared::DkimKey>,
}

impl SiteRows {
    /// The site map of these rows over `config` (with the servers added at run time).
    pub fn map(&self, config: Arc<SiteConfig>) -> SiteMap {
        let overrides: Vec<(usize, String)> = self
            .overrides
            .iter()
            .map(|(b, s)| (*b, s.clone()))
            .collect();
        let states = config
            .mailboxes
            .iter()
            .chain(&config.sorters)
            .map(|s| {
                let state = ServerState::effective(
                    self.operator.get(&s.name).copied(),
                    self.failing.contains(&s.name),
                );
                (s.name.clone(), state)
            })
            .collect();
        let mut map = SiteMap::new(config, &overrides, &states, self.generation);
        map.dkim = self.dkim.clone().into();
        map
    }
}

/// Records a change of `kind` (`letter`, `state`, `health`) to `name`, in the
/// transaction that makes it; nothing when nothing changes.
pub(super) async fn record(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    kind: &str,
    name: &str,
    before: &str,
    after: &str,
) -> Result<()> {
    if before == after {
        return Ok(());
    }
    let seq: i64 = sqlx::query("SELECT generation FROM site_generation WHERE id = 1")
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
    sqlx::query(
        "INSERT INTO site_history (at, seq, kind, name, before, after) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(now())
    .bind(seq)
    .bind(kind)
    .bind(name)
    .bind(before)
    .bind(after)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Directory {
    /// The site as it was at `at` (Unix seconds), over `config` as the site map now
    /// has it (with the servers added at run time).
    pub async fn site_map_at(&self, config: Arc<SiteConfig>, at: i64) -> Result<SiteMap> {
        let mut rows = self.site_rows().await?;
        let later = sqlx::query(
            "SELECT kind, name, before FROM site_history WHERE at > $1 ORDER BY at, seq",
        )
        .bind(at)
        .fetch_all(&self.pool)
        .await?;
        let mut undone = HashSet::new();
        for row in later {
            let (kind, name, before): (String, String, String) =
                (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            // The earliest change after `at` says what the item was then.
            if !undone.insert((kind.clone(), name.clone())) {
                continue;
            }
            match kind.as_str() {
                "letter" => {
                    let Ok(bucket) = name.parse::<usize>() else {
                        continue;
                    };
                    let configured = config
                        .letters
                        .get(bucket)
                        .and_then(|&i| config.mailboxes.get(i))
                        .is_some_and(|s| s.name == before);
                    if configured {
                        rows.overrides.remove(&bucket);
                    } else {
                        rows.overrides.insert(bucket, before);
                    }
                }
                "state" => match ServerState::parse(&before) {
                    Some(ServerState::Up) | None => {
                        rows.operator.remove(&name);
                    }
                    Some(state) => {
                        rows.operator.insert(name, state);
                    }
                },
                "health" => {
                    if before == "failing" {
                        rows.failing.insert(name);
                    } else {
                        rows.failing.remove(&name);
                    }
                }
                _ => {}
            }
        }
        Ok(rows.map(config))
    }
}

#[cfg(test)]
mod tests {
    use mailsite_shared::ServerState;

    /// A letter move, a drain and a failing health check, each undone for a time
    /// before it and kept for a time after.
    #[tokio::test]
    async fn the_site_is_seen_as_it_was() {
        let (d, config, dir) = crate::directory::tests::temp_directory().await;
        let before = super::now() - 1;
        d.move_letter(&config, 0, "mailbox2").await.unwrap();
        d.set_server_state(&config, "mailbox1", ServerState::Maintenance)
            .await
            .unwrap();
        d.set_server_health("sorter1", true, "SMTP: refused")
            .await
            .unwrap();
        let now = d.site_map(config.clone()).await.unwrap();
        let map = now.config.clone();
        assert_eq!(now.home(0).name, "mailbox2");
        assert_eq!(
            now.mailbox_state("mailbox1"),
            Some(ServerState::Maintenance)
        );
        assert_eq!(now.sorter_states[0], ServerState::Down);

        let then = d.site_map_at(map.clone(), before).await.unwrap();
        assert_eq!(then.home(0).name, "mailbox1");
        assert_eq!(then.mailbox_state("mailbox1"), Some(ServerState::Up));
        assert_eq!(then.sorter_states[0], ServerState::Up);
        // Every letter of the drained server was served by it then.
        assert_eq!(then.owner(1).name, "mailbox1");

        let later = d.site_map_at(map.clone(), super::now() + 5).await.unwrap();
        assert_eq!(later.home(0).name, "mailbox2");
        assert_eq!(
            later.mailbox_state("mailbox1"),
            Some(ServerState::Maintenance)
        );
        assert_eq!(later.sorter_states[0], ServerState::Down);
        std::fs::remove_dir_all(dir).ok();
    }
}
