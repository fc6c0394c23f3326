//! The `[queue]` section: how the sorters retry deliveries, give up on them, and tell
//! senders who asked (DSN NOTIFY=DELAY) that their mail waits.

/// How the sorters' queues retry, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSettings {
    /// The wait before the first retry of a temporary failure; each retry waits twice
    /// as long as the one before, up to `retry_max`.
    pub retry_first: u64,
    pub retry_max: u64,
    /// How long a message may wait before it is returned to its sender (5 days).
    pub lifetime: u64,
    /// How long a recipient must have waited before a sender who asked for it
    /// (NOTIFY=DELAY) is told that it is delayed (4 hours).
    pub delay_warning: u64,
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings {
            retry_first: 5,
            retry_max: 10 * 60,
            lifetime: 5 * 24 * 60 * 60,
            delay_warning: 4 * 60 * 60,
        }
    }
}
