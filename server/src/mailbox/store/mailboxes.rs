//! Mailboxes: the default set a new user gets, CREATE, DELETE, RENAME and SUBSCRIBE.
//! A mailbox is a Maildir folder and an index row; UIDVALIDITY never repeats for a
//! name, even when a mailbox is made again under it.

use std::path::PathBuf;

use sqlx::Row;

use super::local::Param;
use super::{
    DEFAULT_MAILBOXES, MailboxInfo, Result, Store, StoreError, blocking, maildir, names, now,
};

impl Store {
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

    /// Creates a mailbox (its Maildir folder, then its index row) and subscribes to it
    /// (the default mailboxes, Sieve's `fileinto :create`, a reindex).
    pub async fn create_mailbox(
        &self,
        username: &str,
        name: &str,
        special_use: &str,
    ) -> Result<MailboxInfo> {
        self.create(username, name, special_use, true).await
    }

    /// Creates a mailbox as IMAP's CREATE does: subscriptions stay as they are (RFC 3501
    /// 6.3.3, as Dovecot; a subscription the name had before stays too).
    pub async fn create_unsubscribed(
        &self,
        username: &str,
        name: &str,
        special_use: &str,
    ) -> Result<MailboxInfo> {
        self.create(username, name, special_use, false).await
    }

    async fn create(
        &self,
        username: &str,
        name: &str,
        special_use: &str,
        subscribe: bool,
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
        let turn = self.write_turn().await;
        let done = sqlx::query(
            "INSERT INTO mailboxes (username, name, uidvalidity, uidnext, highestmodseq, special_use) \
             VALUES ($1, $2, $3, 1, 1, $4) ON CONFLICT (username, name) DO NOTHING",
        )
        .bind(username)
        .bind(&name)
        .bind(i64::from(uidvalidity))
        .bind(special_use)
        .execute(&self.pool)
        .await?;
        if subscribe && done.rows_affected() == 1 {
            sqlx::query(
                "INSERT INTO subscriptions (username, name) VALUES ($1, $2) \
                 ON CONFLICT (username, name) DO NOTHING",
            )
            .bind(username)
            .bind(&name)
            .execute(&self.pool)
            .await?;
        }
        drop(turn);
        self.names_changed(username);
        if done.rows_affected() == 0 {
            return Err(StoreError::Exists(name));
        }
        self.mailbox(username, &name).await
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
        self.headers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .forget(gone);
        Ok(())
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
        let mut removed = 0;
        for table in [
            "DELETE FROM messages WHERE username = $1 AND mailbox = $2",
            "DELETE FROM vanished WHERE username = $1 AND mailbox = $2",
            "DELETE FROM mailboxes WHERE username = $1 AND name = $2",
        ] {
            removed = tx
                .execute(table, &[Param::Text(username), Param::Text(&name)])
                .await?;
        }
        // Another session deleted it between the check and the lock: it is gone.
        if removed == 0 {
            return Err(StoreError::NoMailbox(name));
        }
        tx.commit().await?;
        self.names_changed(username);
        let dir = self.maildir(username, &name)?;
        blocking(move || {
            match std::fs::remove_dir_all(&dir.path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
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
                "UPDATE vanished SET mailbox = $1 WHERE username = $2 AND mailbox = $3",
                // A subscription moves with its mailbox, over one the new name had.
                "DELETE FROM subscriptions WHERE name = $1 AND username = $2 \
                 AND EXISTS (SELECT 1 FROM subscriptions WHERE username = $2 AND name = $3)",
                "UPDATE subscriptions SET name = $1 WHERE username = $2 AND name = $3",
            ] {
                let params = [Param::Text(new), Param::Text(username), Param::Text(old)];
                if let Err(e) = tx.execute(sql, &params).await {
                    drop(tx);
                    self.unrename(moved).await;
                    return Err(e);
                }
            }
        }
        let committed = tx.commit().await;
        self.names_changed(username);
        if let Err(e) = committed {
            self.unrename(moved).await;
            return Err(e);
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

    /// Subscribes to a mailbox that exists, or unsubscribes from a name (LSUB lists the
    /// subscribed ones). A subscription outlives its mailbox (RFC 3501 6.3.6) until it
    /// is unsubscribed.
    pub async fn subscribe(&self, username: &str, name: &str, subscribed: bool) -> Result<()> {
        let name = names::canonical(name)?;
        if subscribed {
            self.mailbox(username, &name).await?;
        }
        let turn = self.write_turn().await;
        let sql = match subscribed {
            true => {
                "INSERT INTO subscriptions (username, name) VALUES ($1, $2) \
                 ON CONFLICT (username, name) DO NOTHING"
            }
            false => "DELETE FROM subscriptions WHERE username = $1 AND name = $2",
        };
        let done = sqlx::query(sql)
            .bind(username)
            .bind(&name)
            .execute(&self.pool)
            .await?;
        drop(turn);
        self.names_changed(username);
        if !subscribed && done.rows_affected() == 0 {
            // Neither subscribed nor a mailbox: say which.
            self.mailbox(username, &name).await?;
        }
        Ok(())
    }

    /// The names the user is subscribed to, mailboxes or not, in name order.
    pub async fn subscriptions(&self, username: &str) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT name FROM subscriptions WHERE username = $1 ORDER BY name")
            .bind(username)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok(row.try_get::<String, _>("name")?))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::StoreError;
    use super::super::fixture::store;

    /// Two sessions deleting one mailbox at once: one deletes it, the other hears that
    /// it is gone (NONEXISTENT), never a storage failure.
    #[tokio::test]
    async fn deleting_a_mailbox_twice_at_once_is_no_failure() {
        let (s, dir) = store().await;
        s.ensure_user("amy").await.unwrap();
        for round in 0..5 {
            let name = format!("Gone{round}");
            s.create_mailbox("amy", &name, "").await.unwrap();
            let (a, b) = tokio::join!(
                s.delete_mailbox("amy", &name),
                s.delete_mailbox("amy", &name)
            );
            let results = [a, b];
            assert_eq!(
                results.iter().filter(|r| r.is_ok()).count(),
                1,
                "{results:?}"
            );
            assert!(
                results
                    .iter()
                    .any(|r| matches!(r, Err(StoreError::NoMailbox(_)))),
                "{results:?}"
            );
        }
        std::fs::remove_dir_all(dir).ok();
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
}
