//! Wake-ups for the sessions of a user when their mail changes in this process (a
//! delivery, an APPEND, a flag change or an expunge by another session), so that IDLE
//! reports it at once. Sessions also look on their own every few seconds, for changes
//! made by other processes.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

/// Per user, a counter that moves on every change to their mail.
#[derive(Default)]
pub(super) struct Changes {
    users: Mutex<HashMap<String, watch::Sender<u64>>>,
}

impl Changes {
    /// A receiver that changes whenever this user's mail changes.
    pub(super) fn watch(&self, username: &str) -> watch::Receiver<u64> {
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        users
            .entry(username.to_string())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Wakes the user's watchers; a user nobody watches any more is forgotten.
    pub(super) fn notify(&self, username: &str) {
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
