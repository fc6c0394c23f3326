//! The password, kept by the platform's keyring (Secret Service in a desktop session,
//! the kernel keyutils otherwise) through the `keyring` crate: never a file, a log
//! line or a report. Tests swap in keyring's mock store.

use keyring::Entry;

use crate::HelperError;

/// The keyring service name entries are stored under.
pub const SERVICE: &str = "mailsite-helper";

/// Picks the store for this process, once, before the first entry: the Secret Service
/// when there is a session bus (a desktop session), the kernel's keyutils otherwise (a
/// console, ssh, a container), where a Secret Service call would only fail. On other
/// systems the platform's store stays.
pub fn choose_store() {
    #[cfg(target_os = "linux")]
    {
        let address = std::env::var_os("DBUS_SESSION_BUS_ADDRESS");
        let runtime = std::env::var_os("XDG_RUNTIME_DIR").map(std::path::PathBuf::from);
        if !has_session_bus(address.as_deref(), runtime.as_deref()) {
            keyring::set_default_credential_builder(keyring::keyutils::default_credential_builder());
        }
    }
}

/// Whether a D-Bus session bus is there: named by `DBUS_SESSION_BUS_ADDRESS`, or the
/// `bus` socket in `XDG_RUNTIME_DIR` (where systemd user sessions put it).
#[cfg(target_os = "linux")]
fn has_session_bus(address: Option<&std::ffi::OsStr>, runtime: Option<&std::path::Path>) -> bool {
    use std::os::unix::fs::FileTypeExt;
    address.is_some_and(|a| !a.is_empty())
        || runtime.is_some_and(|dir| {
            std::fs::metadata(dir.join("bus")).is_ok_and(|m| m.file_type().is_socket())
        })
}

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

    /// A session bus is found by its address or by the socket in the runtime folder;
    /// without either (a console, a container) keyutils is the store.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_secret_service_only_with_a_session_bus() {
        use std::ffi::OsStr;
        let dir = std::env::temp_dir().join(format!("helper-bus-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(!has_session_bus(None, None));
        assert!(!has_session_bus(Some(OsStr::new("")), Some(&dir)));
        assert!(has_session_bus(
            Some(OsStr::new("unix:path=/run/user/1000/bus")),
            None
        ));
        std::fs::write(dir.join("bus"), b"").unwrap();
        assert!(
            !has_session_bus(None, Some(&dir)),
            "a plain file is not a bus"
        );
        std::fs::remove_file(dir.join("bus")).unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(dir.join("bus")).unwrap();
        assert!(has_session_bus(None, Some(&dir)));
        let _ = std::fs::remove_dir_all(&dir);
    }

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
