//! App passwords: a password of its own for each of a user's devices, so that a lost
//! phone is cut off without changing the password every other device uses. Each is
//! generated (16 readable characters, shown once), labelled, may expire, and is
//! accepted by IMAP, POP3 and SMTP AUTH, never by the helpdesk console.

use super::users::generated_password;
use super::{Admin, Result, refused};
use crate::directory::app_passwords::AppPassword;

/// The most app passwords one user may have.
pub const MAX_PER_USER: usize = 50;

/// The longest label, in characters.
pub const MAX_LABEL_CHARS: usize = 64;

/// Refuses a label that could not be shown safely in a protocol's answer or a page:
/// 1-64 ASCII letters, digits, spaces and `-_.,:;()'/@+#`, not only spaces.
pub fn check_label(label: &str) -> Result<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || " -_.,:;()'/@+#".contains(c);
    if label.trim().is_empty()
        || label.chars().count() > MAX_LABEL_CHARS
        || !label.chars().all(allowed)
        || label.trim() != label
    {
        return Err(refused(format!(
            "{label:?} is not a usable label: use 1-{MAX_LABEL_CHARS} letters, digits, spaces and - _ . , : ; ( ) ' / @ + # (\"phone\", \"laptop 2026\"), with no space at either end"
        )));
    }
    Ok(())
}

/// When an app password given `--expires TEXT` at `now` (Unix seconds) stops working:
/// `YYYY-MM-DD` (the start of that day, UTC), an RFC 3339 time, or `N` days (`90d`).
/// It must lie in the future.
pub fn parse_expiry(text: &str, now: i64) -> Result<i64> {
    let text = text.trim();
    let at = if let Some(days) = text.strip_suffix('d') {
        days.parse::<u32>()
            .ok()
            .filter(|d| (1..=36_500).contains(d))
            .map(|d| now + i64::from(d) * 86_400)
    } else if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        date.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp())
    } else {
        chrono::DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.timestamp())
    };
    let Some(at) = at else {
        return Err(refused(format!(
            "{text:?} is not an expiry: give a date (2027-06-30, the start of that day UTC), a time (2027-06-30T17:00:00Z) or a number of days (90d)"
        )));
    };
    if at <= now {
        return Err(refused(format!(
            "{text} has already passed: give a date in the future"
        )));
    }
    Ok(at)
}

impl Admin {
    /// Gives a user a new app password labelled `label`, expiring at `expires_at`
    /// (Unix seconds) if given; returns it with the password, which is shown once and
    /// never stored in clear.
    pub async fn add_app_password(
        &self,
        username: &str,
        label: &str,
        expires_at: Option<i64>,
    ) -> Result<(AppPassword, String)> {
        check_label(label)?;
        let existing = self.directory.app_passwords(username).await?;
        if existing.len() >= MAX_PER_USER {
            return Err(refused(format!(
                "{username} already has {MAX_PER_USER} app passwords, the most one user may have: remove the ones no device uses (`mailsite user app-password list {username}` shows when each was last used)"
            )));
        }
        let password = generated_password();
        let added = self
            .directory
            .add_app_password(username, label, &password, expires_at)
            .await?;
        tracing::info!(user = %username, label = %label, expires_at, "app password added");
        Ok((added, password))
    }

    /// A user's app passwords, oldest first, with when and from where each was last used.
    pub async fn app_passwords(&self, username: &str) -> Result<Vec<AppPassword>> {
        self.directory.user(username).await?;
        Ok(self.directory.app_passwords(username).await?)
    }

    /// Removes one of a user's app passwords: the devices that use it can no longer
    /// log in (sessions already open run on until they log out).
    pub async fn remove_app_password(&self, username: &str, label: &str) -> Result<AppPassword> {
        self.directory.user(username).await?;
        let removed = self.directory.remove_app_password(username, label).await?;
        tracing::info!(user = %username, label = %label, "app password removed");
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_plain_and_bounded() {
        for good in ["phone", "laptop 2026", "Thunderbird (home)", "a", "x/y@z+1"] {
            check_label(good).unwrap();
        }
        for bad in [
            "",
            "   ",
            " phone",
            "phone ",
            "tab\there",
            "quote\"d",
            "back\\slash",
            "tél",
            "<script>",
            &"x".repeat(65),
        ] {
            assert!(check_label(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn expiries_are_dates_times_or_days_in_the_future() {
        let now = 1_796_000_000; // 2026-11-30
        assert_eq!(parse_expiry("30d", now).unwrap(), now + 30 * 86_400);
        assert_eq!(parse_expiry("2027-01-01", now).unwrap(), 1_798_761_600);
        assert_eq!(
            parse_expiry("2027-01-01T12:00:00Z", now).unwrap(),
            1_798_761_600 + 12 * 3600
        );
        for bad in ["2020-01-01", "0d", "soon", "-5d", "2027-13-01", ""] {
            assert!(parse_expiry(bad, now).is_err(), "{bad:?}");
        }
    }
}
