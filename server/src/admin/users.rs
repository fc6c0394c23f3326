//! A user's lifecycle: add, remove, new password, preferred protocol, enable and
//! disable, operator rights; and the view of a user with where the site serves them.

use mailsite_shared::autoconfig::Preference;
use mailsite_shared::route::{Route, login_username, valid_username};

use super::{Admin, Result, refused};
use crate::directory::{DirectoryError, User};

/// The shortest password the site accepts.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// A user and where the site serves them now.
#[derive(Debug, Clone)]
pub struct UserView {
    pub user: User,
    pub route: Route,
}

impl UserView {
    /// The view as JSON, as `user list --json` and `user show --json` print it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "username": self.user.username,
            "display_name": self.user.display_name,
            "preference": self.user.preference.as_str(),
            "enabled": self.user.enabled,
            "operator": self.user.operator,
            "created_at": self.user.created_at,
            "letter": self.route.letter,
            "alias": self.route.alias,
            "server": self.route.server,
            "quota_storage": self.user.quota.storage,
            "quota_messages": self.user.quota.messages,
        })
    }
}

/// What a new user needs.
pub struct NewUser<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub display_name: &'a str,
    pub preference: Preference,
    pub operator: bool,
}

/// The characters of a generated password: letters and digits that cannot be taken
/// for one another when read out or typed from a note (no 0/O, 1/l/I).
const READABLE: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A password for the helpdesk to hand over: 16 readable characters (about 93 bits)
/// in groups of four, `xxxx-xxxx-xxxx-xxxx`.
pub fn generated_password() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    let mut out = String::with_capacity(19);
    for i in 0..16 {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        out.push(char::from(READABLE[rng.random_range(0..READABLE.len())]));
    }
    out
}

/// Refuses a password the site would not accept, saying why.
pub fn check_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(refused(format!(
            "the password is too short: use at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

impl Admin {
    /// The username a name typed by an operator stands for: `alice`, `Alice` or
    /// `alice@<domain>` for any of the site's domains, as every sign-in accepts it.
    pub fn username(&self, typed: &str) -> Result<String> {
        login_username(&self.config, typed).ok_or_else(|| {
            refused(format!(
                "{typed:?} is not a user of this site: give a username or an address at {}",
                self.config.domain
            ))
        })
    }

    /// Refuses a name that cannot be a new user (badly formed, or taken), before the
    /// caller asks for a password.
    pub async fn check_new_username(&self, username: &str) -> Result<String> {
        let username = self.username(username)?;
        if !valid_username(&username) {
            return Err(DirectoryError::BadUsername(username).into());
        }
        if self.directory.user(&username).await.is_ok() {
            return Err(DirectoryError::UserExists(username).into());
        }
        Ok(username)
    }

    /// Adds a user; returns where the site serves them.
    pub async fn add_user(&self, new: NewUser<'_>) -> Result<UserView> {
        let username = self.check_new_username(new.username).await?;
        check_password(new.password)?;
        self.directory
            .add_user(&username, new.password, new.display_name, new.preference)
            .await?;
        if new.operator {
            self.directory.set_operator(&username, true).await?;
        }
        self.user(&username).await
    }

    /// Removes a user from the directory; their stored mail is kept.
    pub async fn remove_user(&self, username: &str) -> Result<()> {
        Ok(self.directory.remove_user(username).await?)
    }

    /// Gives a user a new password.
    pub async fn set_password(&self, username: &str, password: &str) -> Result<()> {
        self.directory.user(username).await?;
        check_password(password)?;
        Ok(self.directory.set_password(username, password).await?)
    }

    /// Gives a user a generated password ([`generated_password`]) and returns it: the
    /// helpdesk's reset, for a user who forgot theirs.
    pub async fn reset_password(&self, username: &str) -> Result<String> {
        let password = generated_password();
        self.set_password(username, &password).await?;
        Ok(password)
    }

    /// Changes which protocol autoconfig lists first for the user.
    pub async fn set_preference(&self, username: &str, preference: Preference) -> Result<()> {
        Ok(self.directory.set_preference(username, preference).await?)
    }

    /// Lets a user sign in, or stops them (their mail is kept).
    pub async fn set_enabled(&self, username: &str, enabled: bool) -> Result<()> {
        Ok(self.directory.set_enabled(username, enabled).await?)
    }

    /// Gives or takes the right to sign in to the helpdesk console.
    pub async fn set_operator(&self, username: &str, operator: bool) -> Result<()> {
        Ok(self.directory.set_operator(username, operator).await?)
    }

    /// Adds (or with `update`, replaces) the checked users of an import, by batches;
    /// `progress(done, total)` after each batch.
    pub async fn import_users(
        &self,
        users: Vec<crate::directory::import::NewUser>,
        update: bool,
        progress: impl FnMut(usize, usize),
    ) -> Result<crate::directory::import::Summary> {
        Ok(self.directory.import_users(users, update, progress).await?)
    }

    /// One user and where they are served.
    pub async fn user(&self, username: &str) -> Result<UserView> {
        let user = self.directory.user(username).await?;
        let map = self.site_map().await?;
        let route = map.route_user(&user.username, &self.config.domain);
        Ok(UserView { user, route })
    }

    /// Every user and where they are served.
    pub async fn users(&self) -> Result<Vec<UserView>> {
        let users = self.directory.users().await?;
        let map = self.site_map().await?;
        Ok(users
            .into_iter()
            .map(|user| {
                let route = map.route_user(&user.username, &self.config.domain);
                UserView { user, route }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_readable_grouped_and_different() {
        let passwords: Vec<String> = (0..200).map(|_| generated_password()).collect();
        for p in &passwords {
            let groups: Vec<&str> = p.split('-').collect();
            assert_eq!(groups.len(), 4, "{p}");
            assert!(groups.iter().all(|g| g.len() == 4), "{p}");
            assert!(
                p.bytes()
                    .filter(|b| *b != b'-')
                    .all(|b| READABLE.contains(&b)),
                "{p}"
            );
            assert!(!p.contains(['0', 'O', '1', 'l', 'I']), "{p}");
            check_password(p).expect("the site accepts its own passwords");
        }
        let mut distinct = passwords.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), passwords.len());
    }
}
