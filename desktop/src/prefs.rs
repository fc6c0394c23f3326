//! Local preferences: the incoming protocol chosen for each address and the address
//! last checked, in `preferences.toml` in the platform's config directory (XDG on
//! Linux), or in the folder `MAILSITE_HELPER_CONFIG_DIR` names (tests use that). Never
//! a password.
//!
//! A choice belongs to one address: someone who keeps a POP account for one address
//! and IMAP for another gets each where they chose it. A file from before, with one
//! `protocol` for everything, counts as the choice for the address it names.

use std::collections::BTreeMap;
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
    /// The address last checked.
    pub email: Option<String>,
    /// Per address (lower case), `imap` or `pop3`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub choices: BTreeMap<String, String>,
    /// The one choice of files from before choices were per address.
    #[serde(default, skip_serializing)]
    protocol: Option<String>,
}

impl Preferences {
    /// The protocol chosen for `email`, if one was.
    pub fn protocol_for(&self, email: &str) -> Option<Preference> {
        self.choices
            .get(&email.trim().to_lowercase())
            .and_then(|p| Preference::parse(p))
    }

    /// Records the protocol chosen for `email`.
    pub fn choose(&mut self, email: &str, preference: Preference) {
        self.choices
            .insert(email.trim().to_lowercase(), preference.as_str().to_string());
    }

    /// A file from before: its one choice was made for the address it names.
    fn upgraded(mut self) -> Preferences {
        if let (Some(protocol), Some(email)) = (self.protocol.take(), &self.email)
            && let Some(preference) = Preference::parse(&protocol)
        {
            let email = email.clone();
            self.choices
                .entry(email.trim().to_lowercase())
                .or_insert_with(|| preference.as_str().to_string());
        }
        self
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
        Ok(text) => toml::from_str::<Preferences>(&text)
            .map(Preferences::upgraded)
            .map_err(|e| error(&path, e)),
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
    fn each_address_keeps_its_own_choice() {
        let dir = std::env::temp_dir().join(format!("helper-prefs-{}", rand::random::<u64>()));
        assert_eq!(load(&dir).unwrap(), Preferences::default());
        let mut prefs = Preferences {
            email: Some("alice@example.test".into()),
            ..Preferences::default()
        };
        prefs.choose("Demo@Example.test", Preference::Pop3);
        prefs.choose("alice@example.test", Preference::Imap);
        save(&dir, &prefs).unwrap();
        let back = load(&dir).unwrap();
        assert_eq!(
            back.protocol_for("demo@example.test"),
            Some(Preference::Pop3)
        );
        assert_eq!(
            back.protocol_for("alice@example.test"),
            Some(Preference::Imap)
        );
        assert_eq!(back.protocol_for("bob@example.test"), None);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_file_from_before_keeps_its_choice_for_its_address_only() {
        let dir = std::env::temp_dir().join(format!("helper-prefs-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            file_in(&dir),
            "protocol = \"pop3\"\nemail = \"demo@example.test\"\n",
        )
        .unwrap();
        let prefs = load(&dir).unwrap();
        assert_eq!(
            prefs.protocol_for("demo@example.test"),
            Some(Preference::Pop3)
        );
        assert_eq!(prefs.protocol_for("alice@example.test"), None);
        save(&dir, &prefs).unwrap();
        let text = std::fs::read_to_string(file_in(&dir)).unwrap();
        assert!(!text.starts_with("protocol"), "{text}");
        std::fs::remove_dir_all(dir).ok();
    }
}
