//! Local preferences: the chosen incoming protocol and the address last checked, in
//! `preferences.toml` in the platform's config directory (XDG on Linux), or in the
//! folder `MAILSITE_HELPER_CONFIG_DIR` names (tests use that). Never a password.

use std::path::{Path, PathBuf};

use mailsite_shared::autoconfig::Preference;
use serde::{Deserialize, Serialize};

use crate::HelperError;

/// What POP and IMAP mean for the user, shown wherever they choose.
pub fn consequence(p: Preference) -> &'static str {
    match p {
        Preference::Imap => {
            "IMAP keeps your mail on the server: every device (laptop, phone, webmail) sees the same folders, and nothing is lost with a computer."
        }
        Preference::Pop3 => {
            "POP downloads your mail to this computer and, by default, removes it from the server after a while: other devices will not see it, and a lost disk loses it."
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preferences {
    /// `imap` or `pop3`.
    pub protocol: Option<String>,
    pub email: Option<String>,
}

impl Preferences {
    pub fn protocol(&self) -> Option<Preference> {
        self.protocol.as_deref().and_then(Preference::parse)
    }
}

/// The folder preferences live in.
pub fn config_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("MAILSITE_HELPER_CONFIG_DIR") {
        return Some(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("", "mailsite", "mailsite-helper")
        .map(|d| d.config_dir().to_path_buf())
}

pub fn file_in(dir: &Path) -> PathBuf {
    dir.join("preferences.toml")
}

fn error(path: &Path, message: impl ToString) -> HelperError {
    HelperError::Prefs {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// Reads the preferences (defaults when the file does not exist yet).
pub fn load(dir: &Path) -> Result<Preferences, HelperError> {
    let path = file_in(dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).map_err(|e| error(&path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Preferences::default()),
        Err(e) => Err(error(&path, e)),
    }
}

/// Writes the preferences (a temporary file renamed into place).
pub fn save(dir: &Path, prefs: &Preferences) -> Result<PathBuf, HelperError> {
    let path = file_in(dir);
    std::fs::create_dir_all(dir).map_err(|e| error(&path, e))?;
    let text = toml::to_string(prefs).map_err(|e| error(&path, e))?;
    let tmp = dir.join("preferences.toml.tmp");
    std::fs::write(&tmp, text).map_err(|e| error(&path, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| error(&path, e))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preferences_round_trip_through_the_file() {
        let dir = std::env::temp_dir().join(format!("helper-prefs-{}", rand::random::<u64>()));
        assert_eq!(load(&dir).unwrap(), Preferences::default());
        let prefs = Preferences {
            protocol: Some("pop3".into()),
            email: Some("alice@example.test".into()),
        };
        save(&dir, &prefs).unwrap();
        assert_eq!(load(&dir).unwrap().protocol(), Some(Preference::Pop3));
        std::fs::remove_dir_all(dir).ok();
    }
}
