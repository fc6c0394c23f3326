//! Rebuilding a user's lost index from their Maildir folders, keeping UIDVALIDITY and
//! UIDs (so that clients keep their caches).

use super::maildir::{self, Maildir};
use super::{DEFAULT_MAILBOXES, Result, Store, blocking, names};

/// What [`Store::reindex`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReindexReport {
    pub mailboxes: usize,
    pub messages: usize,
}

impl Store {
    /// Rebuilds a user's index from their Maildir folders: UIDVALIDITY from each
    /// folder's file, UIDs from the file names, flags from the `:2,` suffixes.
    pub async fn reindex(&self, username: &str) -> Result<ReindexReport> {
        let user_dir = self.user_dir(username)?;
        let specials: Vec<(String, String)> = self
            .mailboxes(username)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|m| (m.name, m.special_use))
            .collect();
        let turn = self.write_turn().await;
        sqlx::query("DELETE FROM messages WHERE username = $1")
            .bind(username)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM mailboxes WHERE username = $1")
            .bind(username)
            .execute(&self.pool)
            .await?;
        drop(turn);
        self.names_changed(username);
        let scan = user_dir.clone();
        let folders: Vec<String> = blocking(move || {
            let mut out = vec![String::new()];
            if scan.is_dir() {
                for entry in std::fs::read_dir(&scan)? {
                    let name = entry?.file_name().to_string_lossy().into_owned();
                    if name.starts_with('.') && scan.join(&name).join("cur").is_dir() {
                        out.push(name);
                    }
                }
            }
            Ok(out)
        })
        .await?;
        let mut report = ReindexReport::default();
        for folder in folders {
            let Some(name) = names::from_folder(&folder) else {
                continue;
            };
            let dir = Maildir::new(user_dir.join(&folder));
            if !dir.exists() {
                continue;
            }
            let special = specials
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, s)| s.clone())
                .or_else(|| {
                    DEFAULT_MAILBOXES
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, s)| s.to_string())
                })
                .unwrap_or_default();
            let probe = dir.clone();
            let files = blocking(move || probe.list("cur")).await?;
            let top_uid = files
                .iter()
                .filter_map(|f| maildir::uid_of(f))
                .max()
                .unwrap_or(0);
            let info = self.create_mailbox(username, &name, &special).await?;
            // Start UIDNEXT above every UID on disk so that the files keep theirs.
            let turn = self.write_turn().await;
            sqlx::query("UPDATE mailboxes SET uidnext = $1 WHERE username = $2 AND name = $3")
                .bind(i64::from(top_uid.max(info.uidnext - 1)) + 1)
                .bind(username)
                .bind(&name)
                .execute(&self.pool)
                .await?;
            drop(turn);
            report.messages += self.sync(username, &name).await?;
            report.mailboxes += 1;
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{msg, store};

    #[tokio::test]
    async fn a_lost_index_is_rebuilt_with_uids_and_uidvalidity() {
        let (s, dir) = store().await;
        s.ensure_user("bob").await.unwrap();
        s.create_mailbox("bob", "Lists/rust.lang", "")
            .await
            .unwrap();
        for n in 1..=5 {
            s.append("bob", "INBOX", msg(n), &[], None).await.unwrap();
        }
        s.append(
            "bob",
            "Lists/rust.lang",
            msg(7),
            &["\\Flagged".into()],
            None,
        )
        .await
        .unwrap();
        let before = s.mailbox("bob", "INBOX").await.unwrap();
        // The index is lost: bob's rows are gone.
        for table in ["messages", "mailboxes"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE username = 'bob'"))
                .execute(&s.pool)
                .await
                .unwrap();
        }
        let report = s.reindex("bob").await.unwrap();
        assert_eq!(report.messages, 6);
        assert_eq!(report.mailboxes, 7);
        let after = s.mailbox("bob", "INBOX").await.unwrap();
        assert_eq!(after.uidvalidity, before.uidvalidity);
        assert_eq!(after.uidnext, 6);
        assert_eq!(after.special_use, "");
        assert_eq!(
            s.mailbox("bob", "Sent").await.unwrap().special_use,
            "\\Sent"
        );
        let uids: Vec<u32> = s
            .messages("bob", "INBOX")
            .await
            .unwrap()
            .iter()
            .map(|m| m.uid)
            .collect();
        assert_eq!(uids, [1, 2, 3, 4, 5]);
        for n in 1..=5 {
            assert_eq!(s.read("bob", "INBOX", n).await.unwrap(), msg(n));
        }
        let lists = s.messages("bob", "Lists/rust.lang").await.unwrap();
        assert_eq!(lists[0].flags, ["\\Flagged"]);
        // New mail after the rebuild never reuses a UID.
        let (_, uid) = s.append("bob", "INBOX", msg(6), &[], None).await.unwrap();
        assert_eq!(uid, 6);
        std::fs::remove_dir_all(dir).ok();
    }
}
