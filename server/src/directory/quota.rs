//! Per-user quotas: the most octets and messages a user's mailboxes may hold together
//! (RFC 9208's STORAGE and MESSAGE resources). Operators set them; the mailbox servers
//! enforce them on every way mail comes in (IMAP APPEND and COPY, LMTP).

use std::fmt;

use sqlx::Row;

use super::{Directory, DirectoryError, Result};

/// A user's limits; 0 is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quota {
    /// Octets.
    pub storage: u64,
    pub messages: u64,
}

/// What a user's mailboxes hold now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Octets.
    pub storage: u64,
    pub messages: u64,
}

/// Why mail does not fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exceeded {
    /// What the limit is on and how far it is, in words (`storage: 1.0 MiB of 1.0 MiB`).
    pub detail: String,
    /// The mail alone is larger than the limit: it will never fit, whatever the user
    /// deletes (a permanent failure rather than a temporary one).
    pub never: bool,
}

impl fmt::Display for Exceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

impl Quota {
    pub fn is_limited(&self) -> bool {
        self.storage > 0 || self.messages > 0
    }

    /// Whether `messages` more messages of `storage` octets in all fit beside `usage`.
    pub fn admits(
        &self,
        usage: Usage,
        storage: u64,
        messages: u64,
    ) -> std::result::Result<(), Exceeded> {
        if self.storage > 0 && usage.storage.saturating_add(storage) > self.storage {
            return Err(Exceeded {
                detail: format!(
                    "storage quota exceeded: {} used of {}, {} more would not fit",
                    size(usage.storage),
                    size(self.storage),
                    size(storage)
                ),
                never: storage > self.storage,
            });
        }
        if self.messages > 0 && usage.messages.saturating_add(messages) > self.messages {
            return Err(Exceeded {
                detail: format!(
                    "message quota exceeded: {} of {} messages, {messages} more would not fit",
                    usage.messages, self.messages
                ),
                never: messages > self.messages,
            });
        }
        Ok(())
    }

    /// Refuses limits that make no sense, saying why.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.storage > 0 && self.storage < 1024 {
            return Err("a storage limit under 1 KiB holds no message: give at least 1K, or `none` for no limit".into());
        }
        Ok(())
    }

    /// The limits in words: `1.0 GiB, 10000 messages`, or `no limit`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.storage > 0 {
            parts.push(size(self.storage));
        }
        if self.messages > 0 {
            parts.push(format!("{} messages", self.messages));
        }
        if parts.is_empty() {
            "no limit".to_string()
        } else {
            parts.join(", ")
        }
    }
}

/// A size in octets as a person reads it: `512 B`, `1.5 KiB`, `2.0 GiB`.
pub fn size(octets: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if octets < 1024 {
        return format!("{octets} B");
    }
    let mut value = octets as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Reads a storage limit as an operator types it: `500M`, `2G`, `1.5GiB`, `750000`
/// (octets), `512K`; `0`, `none` or `unlimited` for no limit. Units are powers of 1024.
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("none") || t.eq_ignore_ascii_case("unlimited") {
        return Ok(0);
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit = unit.trim().to_ascii_uppercase();
    let factor: u64 = match unit.trim_end_matches("IB").trim_end_matches('B') {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(bad_size(text)),
    };
    let value: f64 = number.parse().map_err(|_| bad_size(text))?;
    let octets = value * factor as f64;
    if !octets.is_finite() || octets < 0.0 || octets > u64::MAX as f64 / 2.0 {
        return Err(bad_size(text));
    }
    Ok(octets.round() as u64)
}

/// Reads a message limit as an operator types it: `50000`; `0`, `none` or `unlimited`
/// for no limit.
pub fn parse_count(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("none") || t.eq_ignore_ascii_case("unlimited") {
        return Ok(0);
    }
    t.parse().map_err(|_| {
        format!("{text:?} is not a number of messages: write e.g. 50000, or `none` for no limit")
    })
}

fn bad_size(text: &str) -> String {
    format!(
        "{text:?} is not a size: write a number with K, M, G or T (powers of 1024), e.g. 500M or 2G, or `none` for no limit"
    )
}

impl Directory {
    /// A user's limits.
    pub async fn quota(&self, username: &str) -> Result<Quota> {
        let row =
            sqlx::query("SELECT quota_storage, quota_messages FROM users WHERE username = $1")
                .bind(username)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| DirectoryError::NoUser(username.to_string()))?;
        Directory::quota_from_row(&row)
    }

    pub(super) fn quota_from_row(row: &sqlx::any::AnyRow) -> Result<Quota> {
        Ok(Quota {
            storage: row.try_get::<i64, _>("quota_storage")?.max(0) as u64,
            messages: row.try_get::<i64, _>("quota_messages")?.max(0) as u64,
        })
    }

    /// Sets a user's limits (0: no limit). Mail already stored stays; new mail is
    /// refused while the user is at or over a limit.
    pub async fn set_quota(&self, username: &str, quota: Quota) -> Result<()> {
        let done = sqlx::query(
            "UPDATE users SET quota_storage = $1, quota_messages = $2 WHERE username = $3",
        )
        .bind(quota.storage.min(i64::MAX as u64) as i64)
        .bind(quota.messages.min(i64::MAX as u64) as i64)
        .bind(username)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(DirectoryError::NoUser(username.to_string()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_operators_write_them() {
        assert_eq!(parse_size("500M"), Ok(500 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("2 GiB"), Ok(2 << 30));
        assert_eq!(parse_size("1.5g"), Ok(3 << 29));
        assert_eq!(parse_size("512kb"), Ok(512 << 10));
        assert_eq!(parse_size("750000"), Ok(750_000));
        assert_eq!(parse_size("none"), Ok(0));
        assert_eq!(parse_size("0"), Ok(0));
        for bad in ["", "M", "5X", "-1G", "1e99T", "1.2.3M"] {
            let e = parse_size(bad).expect_err(bad);
            assert!(e.contains("500M"), "{e}");
        }
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(2 << 30), "2.0 GiB");
    }

    #[test]
    fn a_message_fits_until_a_limit_is_reached() {
        let quota = Quota {
            storage: 1000,
            messages: 3,
        };
        let usage = Usage {
            storage: 600,
            messages: 2,
        };
        assert!(quota.admits(usage, 400, 1).is_ok());
        let full = quota.admits(usage, 401, 1).expect_err("over storage");
        assert!(!full.never && full.detail.contains("storage"), "{full:?}");
        let never = quota
            .admits(Usage::default(), 1001, 1)
            .expect_err("too big");
        assert!(never.never, "{never:?}");
        let count = quota.admits(usage, 10, 2).expect_err("over count");
        assert!(count.detail.contains("message quota"), "{count:?}");
        assert!(Quota::default().admits(usage, u64::MAX, u64::MAX).is_ok());
        assert_eq!(Quota::default().describe(), "no limit");
        assert_eq!(quota.describe(), "1000 B, 3 messages");
    }
}
