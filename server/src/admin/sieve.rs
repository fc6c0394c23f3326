//! A user's Sieve scripts, as operators manage them (users manage their own over
//! ManageSieve): stored only once the interpreter accepts them, at most one active.

use super::{Admin, Result, refused};
use crate::directory::sieve::ScriptInfo;
use crate::mailbox::sieve::{Engine, valid_name};

/// What storing a script did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub replaced: bool,
    pub activated: bool,
}

fn checked_name(name: &str) -> Result<()> {
    match valid_name(name) {
        true => Ok(()),
        false => Err(refused(format!(
            "{name:?} cannot name a Sieve script: use 1 to 128 characters, no control characters and no '/'"
        ))),
    }
}

impl Admin {
    /// A user's scripts; the user must exist.
    pub async fn sieve_scripts(&self, username: &str) -> Result<Vec<ScriptInfo>> {
        self.directory.user(username).await?;
        Ok(self.directory.sieve_scripts(username).await?)
    }

    /// One script's text.
    pub async fn sieve_script(&self, username: &str, name: &str) -> Result<String> {
        Ok(self.directory.sieve_script(username, name).await?)
    }

    /// Stores a script once the interpreter accepts it (the error says what is wrong
    /// and where), and makes it the active one when asked.
    pub async fn put_sieve(
        &self,
        username: &str,
        name: &str,
        text: &[u8],
        activate: bool,
    ) -> Result<Stored> {
        checked_name(name)?;
        Engine::default()
            .check(text)
            .map_err(|e| refused(format!("the script {name:?} is not accepted: {e}")))?;
        let text = String::from_utf8_lossy(text);
        let replaced = self
            .directory
            .sieve_scripts(username)
            .await?
            .iter()
            .any(|s| s.name == name);
        self.directory.put_sieve(username, name, &text).await?;
        if activate {
            self.directory.activate_sieve(username, Some(name)).await?;
        }
        Ok(Stored {
            replaced,
            activated: activate,
        })
    }

    /// Makes `name` the active script, or none.
    pub async fn activate_sieve(&self, username: &str, name: Option<&str>) -> Result<()> {
        self.directory.user(username).await?;
        Ok(self.directory.activate_sieve(username, name).await?)
    }

    /// Removes a script that is not active.
    pub async fn remove_sieve(&self, username: &str, name: &str) -> Result<()> {
        Ok(self.directory.delete_sieve(username, name).await?)
    }
}
