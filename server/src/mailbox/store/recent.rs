//! \Recent (RFC 3501 2.3.2) in the index: `recent_uid` is the first UID of a mailbox
//! that no session has claimed. A session that selects the mailbox read-write, or
//! notices new mail in it, claims what lies between it and UIDNEXT; a claim moves
//! `recent_uid` only if no other session moved it meanwhile, so each message is
//! \Recent in exactly one session.

use std::ops::Range;

use super::local::Param;
use super::{Result, Store, StoreError, names};

/// How often a claim is tried again when another session's claim came between.
const CLAIM_TRIES: u32 = 16;

impl Store {
    /// The first UID of `name` not yet claimed as \Recent by any session.
    pub async fn recent_from(&self, username: &str, name: &str) -> Result<u32> {
        let name = names::canonical(name)?;
        let from = self
            .select(
                "SELECT recent_uid FROM mailboxes WHERE username = $1 AND name = $2",
                &[Param::Text(username), Param::Text(&name)],
                |row| row.int("recent_uid"),
            )
            .await?
            .pop()
            .ok_or(StoreError::NoMailbox(name))?;
        Ok(u32::try_from(from).unwrap_or(u32::MAX))
    }

    /// Claims the UIDs of `name` that no session had as \Recent: they are recent for
    /// the caller alone. Empty when there is nothing new.
    pub async fn claim_recent(&self, username: &str, name: &str) -> Result<Range<u32>> {
        let name = names::canonical(name)?;
        for _ in 0..CLAIM_TRIES {
            let (from, next) = self
                .select(
                    "SELECT recent_uid, uidnext FROM mailboxes WHERE username = $1 AND name = $2",
                    &[Param::Text(username), Param::Text(&name)],
                    |row| Ok((row.int("recent_uid")?, row.int("uidnext")?)),
                )
                .await?
                .pop()
                .ok_or_else(|| StoreError::NoMailbox(name.clone()))?;
            if from >= next {
                return Ok(0..0);
            }
            let moved = self
                .write(
                    "UPDATE mailboxes SET recent_uid = $1 WHERE username = $2 AND name = $3 AND recent_uid = $4 RETURNING recent_uid",
                    &[
                        Param::Int(next),
                        Param::Text(username),
                        Param::Text(&name),
                        Param::Int(from),
                    ],
                    |_| Ok(()),
                )
                .await?;
            if moved.len() == 1 {
                let uid = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
                return Ok(uid(from)..uid(next));
            }
        }
        // Claimed by others each time: nothing is recent here.
        Ok(0..0)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::store;

    #[tokio::test]
    async fn each_new_message_is_claimed_once() {
        let (s, dir) = store().await;
        s.ensure_user("amy").await.unwrap();
        // A new user's mailboxes: nothing yet.
        assert_eq!(s.claim_recent("amy", "INBOX").await.unwrap(), 0..0);
        for n in 0..3 {
            s.append(
                "amy",
                "INBOX",
                format!("Subject: {n}\r\n\r\nx\r\n").into_bytes(),
                &[],
                None,
            )
            .await
            .unwrap();
        }
        let from = s.recent_from("amy", "INBOX").await.unwrap();
        let first = s.claim_recent("amy", "INBOX").await.unwrap();
        assert_eq!(first.start, from);
        assert_eq!(first.len(), 3);
        assert_eq!(s.claim_recent("amy", "INBOX").await.unwrap(), 0..0);
        assert_eq!(s.recent_from("amy", "INBOX").await.unwrap(), first.end);
        s.append(
            "amy",
            "INBOX",
            b"Subject: later\r\n\r\nx\r\n".to_vec(),
            &[],
            None,
        )
        .await
        .unwrap();
        let second = s.claim_recent("amy", "INBOX").await.unwrap();
        assert_eq!(second, first.end..first.end + 1);
        std::fs::remove_dir_all(dir).ok();
    }
}
