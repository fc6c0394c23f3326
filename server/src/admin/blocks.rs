//! Login blocks: the sources the login throttle refuses after too many failed logins
//! (see [`crate::throttle`]), listed and lifted by an operator. A helpdesk lifts the
//! blocks of a user whose phone kept an old password by naming the user: every block
//! whose failures named that account goes, whatever address it came from.

use std::net::IpAddr;

use mailsite_shared::route::login_username;

use super::{Admin, Result, refused};
use crate::directory::blocks::LoginBlock;
use crate::throttle::source_of;

/// What `block remove` was asked to lift, as understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A source: an address (an IPv6 one stands for its /64) or an IPv6 `/64`.
    Source(String),
    /// An account, by username.
    Account(String),
}

impl Admin {
    /// Every block in force, oldest first.
    pub async fn blocks(&self) -> Result<Vec<LoginBlock>> {
        Ok(self.directory.blocks().await?)
    }

    /// What an operator typed, as a source or an account.
    pub fn block_target(&self, typed: &str) -> Result<Target> {
        let typed = typed.trim();
        if let Ok(ip) = typed.parse::<IpAddr>() {
            return Ok(Target::Source(source_of(ip)));
        }
        if let Some(network) = typed.strip_suffix("/64")
            && let Ok(ip) = network.parse::<IpAddr>()
            && ip.is_ipv6()
        {
            return Ok(Target::Source(source_of(ip)));
        }
        match login_username(&self.config, typed) {
            Some(name) => Ok(Target::Account(name)),
            None => Err(refused(format!(
                "{typed:?} is neither an address (192.0.2.7, 2001:db8::1, 2001:db8::/64) nor a user of this site"
            ))),
        }
    }

    /// Lifts the blocks of a source, or every block whose failures named an account;
    /// running nodes let them in again within a poll interval. Returns what was lifted
    /// (nothing when nothing matched).
    pub async fn remove_blocks(&self, target: &Target) -> Result<Vec<LoginBlock>> {
        let key = match target {
            Target::Source(source) => source,
            Target::Account(account) => account,
        };
        Ok(self.directory.remove_blocks(key).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::tests::temp_directory;

    #[tokio::test]
    async fn typed_targets_are_sources_or_accounts() {
        let (directory, config, dir) = temp_directory().await;
        let admin = Admin::new(config, directory);
        let source = |s: &str| Target::Source(s.to_string());
        assert_eq!(
            admin.block_target("127.0.0.66").unwrap(),
            source("127.0.0.66")
        );
        assert_eq!(
            admin.block_target("2001:db8:1:2::77").unwrap(),
            source("2001:db8:1:2::/64")
        );
        assert_eq!(
            admin.block_target("2001:db8:1:2::/64").unwrap(),
            source("2001:db8:1:2::/64")
        );
        assert_eq!(
            admin.block_target("Alice@example.test").unwrap(),
            Target::Account("alice".into())
        );
        assert!(admin.block_target("alice@elsewhere.example").is_err());
        std::fs::remove_dir_all(dir).ok();
    }
}
