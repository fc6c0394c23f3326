//! Mailbox names: what a user may call a mailbox, and where it lives on disk.
//!
//! Names are UTF-8 with `/` as the hierarchy delimiter; `INBOX` is case-insensitive.
//! On disk the layout is Maildir++ as Dovecot writes it: INBOX is the user's Maildir
//! itself, `Lists/rust` is the folder `.Lists.rust`, each part in modified UTF-7 with
//! `.` written `&AC4-`. A name can therefore never hold a path separator, `.` or `..`
//! component on disk: it cannot leave the user's directory.

use mailsite_shared::utf7;

/// The longest name accepted, in bytes.
pub const MAX_NAME: usize = 255;

/// Why a name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("the mailbox name is empty")]
    Empty,
    #[error("the mailbox name is longer than {MAX_NAME} bytes")]
    TooLong,
    #[error("the mailbox name has an empty, \".\" or \"..\" part")]
    BadPart,
    #[error("the mailbox name contains control characters or the wildcards * and %")]
    BadCharacter,
}

/// Checks a name and returns its canonical form (`INBOX` upper-cased, also as a parent).
pub fn canonical(name: &str) -> Result<String, NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME {
        return Err(NameError::TooLong);
    }
    if name.chars().any(|c| c.is_control() || c == '*' || c == '%') {
        return Err(NameError::BadCharacter);
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return Err(NameError::BadPart);
    }
    if parts[0].eq_ignore_ascii_case("INBOX") {
        parts[0] = "INBOX";
    }
    Ok(parts.join("/"))
}

/// The Maildir++ folder of a canonical name: `""` for INBOX, `.A.B` for `A/B`.
pub fn folder(name: &str) -> String {
    if name == "INBOX" {
        return String::new();
    }
    let mut out = String::new();
    for part in name.split('/') {
        out.push('.');
        out.push_str(&utf7::encode(part).replace('.', "&AC4-"));
    }
    out
}

/// The name of a Maildir++ folder (`.A.B`), or `None` if it is not one of ours.
pub fn from_folder(folder: &str) -> Option<String> {
    if folder.is_empty() {
        return Some("INBOX".to_string());
    }
    let rest = folder.strip_prefix('.')?;
    let parts: Option<Vec<String>> = rest.split('.').map(utf7::decode).collect();
    let name = parts?.join("/");
    canonical(&name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_inbox_is_canonical() {
        assert_eq!(canonical("inbox").unwrap(), "INBOX");
        assert_eq!(canonical("Inbox/Work").unwrap(), "INBOX/Work");
        assert_eq!(canonical("Lists/rust").unwrap(), "Lists/rust");
        for bad in [
            "", "/a", "a/", "a//b", "../x", "a/../b", ".", "a\nb", "a*", "a%",
        ] {
            assert!(canonical(bad).is_err(), "{bad:?}");
        }
        assert_eq!(canonical(&"x".repeat(300)), Err(NameError::TooLong));
    }

    #[test]
    fn folders_stay_inside_and_round_trip() {
        for name in [
            "INBOX",
            "Sent",
            "Lists/rust",
            "Project.2024",
            "Entwürfe",
            "a&b/c d",
            "..hidden",
        ] {
            let Ok(canon) = canonical(name) else { continue };
            let dir = folder(&canon);
            assert!(!dir.contains('/') && !dir.contains(".."), "{name} -> {dir}");
            assert_eq!(
                from_folder(&dir).as_deref(),
                Some(canon.as_str()),
                "{name} -> {dir}"
            );
        }
        assert_eq!(folder("Lists/rust"), ".Lists.rust");
        assert_eq!(folder("Project.2024"), ".Project&AC4-2024");
        assert_eq!(from_folder("cur"), None);
    }
}
