//! The sorters' queues: mail accepted over SMTP and not delivered yet. These act on the
//! spool files, so they work whether or not the sorters are running; a running sorter
//! picks a flush request up within a second.

use std::path::PathBuf;

use super::{Admin, Result, refused};
use crate::sorter::queue::{self, Envelope, QueueError};

/// A queued message and the sorter whose queue holds it.
#[derive(Debug, Clone)]
pub struct Queued {
    pub sorter: String,
    pub envelope: Envelope,
}

impl Admin {
    /// The spools of the sorters an operation is about: one sorter, or all of them.
    fn spools(&self, only: Option<&str>) -> Result<Vec<(String, PathBuf)>> {
        let names: Vec<&str> = self
            .config
            .sorters
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        if let Some(name) = only
            && !names.contains(&name)
        {
            return Err(refused(format!(
                "no sorter is named {name:?}: this site has {}",
                names.join(", ")
            )));
        }
        Ok(names
            .into_iter()
            .filter(|n| only.is_none_or(|o| o == *n))
            .map(|n| (n.to_string(), queue::spool_dir(&self.config.data_dir, n)))
            .collect())
    }

    /// Every queued message (of one sorter, or of all).
    pub fn queued(&self, only: Option<&str>) -> Result<Vec<Queued>> {
        let mut all = Vec::new();
        for (sorter, dir) in self.spools(only)? {
            for envelope in queue::read_spool(&dir)? {
                all.push(Queued {
                    sorter: sorter.clone(),
                    envelope,
                });
            }
        }
        Ok(all)
    }

    /// Asks the sorters to retry every waiting recipient now; returns which were asked.
    pub fn flush_queue(&self, only: Option<&str>) -> Result<Vec<String>> {
        let mut asked = Vec::new();
        for (sorter, dir) in self.spools(only)? {
            queue::request_flush(&dir)?;
            asked.push(sorter);
        }
        Ok(asked)
    }

    /// Removes a message for good (neither delivered nor bounced).
    pub fn remove_queued(&self, id: &str) -> Result<Queued> {
        for (sorter, dir) in self.spools(None)? {
            match queue::remove(&dir, id) {
                Ok(envelope) => return Ok(Queued { sorter, envelope }),
                Err(QueueError::NoEntry(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(refused(format!(
            "no queued message {id:?}: `mailsite queue list` shows the ids"
        )))
    }
}
