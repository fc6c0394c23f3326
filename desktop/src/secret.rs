//! The password, kept by the platform's keyring (Secret Service in a desktop session,
//! the kernel keyutils otherwise) through the `keyring` crate: never a file, a log
//! line or a report. Tests swap in keyring's mock store.

use keyring::Entry;

use crate::HelperError;

/// The keyring service name entries are stored under.
pub const SERVICE: &str = "mailsite-helper";

fn entry(email: &str) -> Result<Entry, HelperError> {
    Entry::new(SERVICE, email).map_err(|e| HelperError::Keyring(e.to_string()))
}

/// The stored password for an address, if any.
pub fn get(email: &str) -> Result<Option<String>, HelperError> {
    match entry(email)?.get_password() {
        Ok(p) => Ok(Some(p)),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(HelperError::Keyring(e.to_string())),
    }
}

pub fn set(email: &str, password: &str) -> Result<(), HelperError> {
    entry(email)?
        .set_password(password)
        .map_err(|e| HelperError::Keyring(e.to_string()))
}

pub fn forget(email: &str) -> Result<(), HelperError> {
    match entry(email)?.delete_credential() {
        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(e) => Err(HelperError::Keyring(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_go_to_the_keyring_and_back() {
        keyring::set_default_credential_builder(keyring::mock::default_credential_builder());
        // The mock store keeps a secret per Entry object, so one entry does the round trip.
        let e = entry("alice@example.test").unwrap();
        assert!(matches!(e.get_password(), Err(keyring::Error::NoEntry)));
        e.set_password("s3cret pass").unwrap();
        assert_eq!(e.get_password().unwrap(), "s3cret pass");
        e.delete_credential().unwrap();
        assert!(matches!(e.get_password(), Err(keyring::Error::NoEntry)));
        // Through the module's functions: a fresh mock entry has nothing stored.
        assert_eq!(get("bob@example.test").unwrap(), None);
        forget("bob@example.test").unwrap();
    }
}
