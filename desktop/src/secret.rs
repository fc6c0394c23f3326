//! The password, kept by the platform's keyring, never in a file, a log line or a
//! report. On Linux there are two: the desktop keyring (the Secret Service, which
//! GNOME Keyring and KeePassXC provide on the session bus) and the kernel's keyring
//! (keyutils), which needs no desktop and lasts until the user's last process ends or
//! the computer restarts. The helper uses the desktop keyring when there is a session
//! bus and falls back to the kernel's when that fails, says which one kept the
//! password, and when neither works says so in words with what to do instead.
//!
//! The kernel keyring is used directly rather than through the `keyring` crate: that
//! crate keeps keys in the session keyring with possessor-only rights, and where a
//! process has no session of its own (a container, an ssh command, a service) the next
//! process can neither read nor delete them (EACCES), so a stored password was never
//! found again and `forget` removed nothing. Here the key goes to the user's keyring,
//! readable by the same user only, and every change is read back before it is reported.

use keyring::Entry;

use crate::HelperError;

/// The keyring service name entries are stored under.
pub const SERVICE: &str = "mailsite-helper";

/// Where a password is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// The desktop keyring, over D-Bus (GNOME Keyring, KeePassXC, KWallet's bridge).
    SecretService,
    /// The kernel's keyring for this user (keyutils).
    Kernel,
    /// The platform's own store (macOS Keychain, Windows Credential Manager).
    Platform,
}

impl Store {
    /// Where the password is, as a user reads it.
    pub fn describe(self) -> &'static str {
        match self {
            Store::SecretService => "the desktop keyring (Secret Service)",
            Store::Kernel => {
                "the kernel keyring of your user (it lasts until you log out of every session or restart)"
            }
            Store::Platform => "this computer's keyring",
        }
    }
}

/// The stores to try, in order: the desktop keyring when there is a session bus, then
/// the kernel's; elsewhere the platform's.
fn stores() -> Vec<Store> {
    #[cfg(target_os = "linux")]
    {
        let address = std::env::var_os("DBUS_SESSION_BUS_ADDRESS");
        let runtime = std::env::var_os("XDG_RUNTIME_DIR").map(std::path::PathBuf::from);
        if has_session_bus(address.as_deref(), runtime.as_deref()) {
            vec![Store::SecretService, Store::Kernel]
        } else {
            vec![Store::Kernel]
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        vec![Store::Platform]
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

/// One store's answer: `Err` is the store's own words.
type Answer<T> = Result<T, String>;

fn entry(store: Store, email: &str) -> Answer<Entry> {
    match store {
        #[cfg(target_os = "linux")]
        Store::SecretService => {
            keyring::secret_service::SsCredential::new_with_target(None, SERVICE, email)
                .map(|c| Entry::new_with_credential(Box::new(c)))
                .map_err(|e| e.to_string())
        }
        _ => Entry::new(SERVICE, email).map_err(|e| e.to_string()),
    }
}

/// Runs a keyring call on a thread of its own: the Secret Service client blocks on a
/// runtime of its own, which panics inside the helper's (the CLI's and the window's
/// work runs on tokio).
fn off_runtime<T: Send>(call: impl FnOnce() -> Answer<T> + Send) -> Answer<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(call)
            .join()
            .unwrap_or_else(|_| Err("the keyring call failed".to_string()))
    })
}

fn get_in(store: Store, email: &str) -> Answer<Option<String>> {
    #[cfg(target_os = "linux")]
    if store == Store::Kernel {
        return kernel::get(email);
    }
    off_runtime(|| match entry(store, email)?.get_password() {
        Ok(p) => Ok(Some(p)),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(e.to_string()),
    })
}

fn set_in(store: Store, email: &str, password: &str) -> Answer<()> {
    #[cfg(target_os = "linux")]
    if store == Store::Kernel {
        return kernel::set(email, password);
    }
    off_runtime(|| {
        entry(store, email)?
            .set_password(password)
            .map_err(|e| e.to_string())
    })
}

/// Removes the password from one store: whether there was one.
fn forget_in(store: Store, email: &str) -> Answer<bool> {
    #[cfg(target_os = "linux")]
    if store == Store::Kernel {
        return kernel::forget(email);
    }
    off_runtime(|| match entry(store, email)?.delete_credential() {
        Ok(()) => Ok(true),
        Err(keyring::Error::NoEntry) => Ok(false),
        Err(e) => Err(e.to_string()),
    })
}

/// "the desktop keyring (Secret Service): <its error>; the kernel keyring ...: <its error>".
fn failures(errors: &[(Store, String)]) -> String {
    errors
        .iter()
        .map(|(store, e)| format!("{}: {e}", store.describe()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The stored password for an address, from the first store that has one (a password
/// kept in the kernel keyring while the desktop keyring was failing is found too).
pub fn get(email: &str) -> Result<Option<String>, HelperError> {
    let stores = stores();
    let mut errors = Vec::new();
    for store in &stores {
        match get_in(*store, email) {
            Ok(Some(p)) => return Ok(Some(p)),
            Ok(None) => {}
            Err(e) => errors.push((*store, e)),
        }
    }
    if errors.len() == stores.len() {
        return Err(HelperError::Keyring(failures(&errors)));
    }
    Ok(None)
}

/// Stores the password in the first store that keeps it (read back to be sure); says
/// which. When none does, the error names each store's reason and what to do instead.
pub fn set(email: &str, password: &str) -> Result<Store, HelperError> {
    let mut errors = Vec::new();
    for store in stores() {
        let kept = set_in(store, email, password).and_then(|()| match get_in(store, email)? {
            Some(back) if back == password => Ok(()),
            _ => Err("it took the password but does not give it back".to_string()),
        });
        match kept {
            Ok(()) => return Ok(store),
            Err(e) => errors.push((store, e)),
        }
    }
    Err(HelperError::Keyring(format!(
        "no keyring on this computer kept the password ({}). Type the password each time, or give it on standard input with --password-stdin",
        failures(&errors)
    )))
}

/// Removes the password from every store; `Ok(true)` if one was there. The removal is
/// read back: a password that is still found is an error, never "forgotten".
pub fn forget(email: &str) -> Result<bool, HelperError> {
    let stores = stores();
    let mut removed = false;
    let mut errors = Vec::new();
    for store in stores.iter().copied() {
        match forget_in(store, email) {
            Ok(was) => removed |= was,
            Err(e) => errors.push((store, e)),
        }
    }
    for store in stores.iter().copied() {
        if let Ok(Some(_)) = get_in(store, email) {
            return Err(HelperError::Keyring(format!(
                "the password for {email} is still in {} after removing it{}",
                store.describe(),
                if errors.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", failures(&errors))
                }
            )));
        }
    }
    if !removed && errors.len() == stores.len() {
        return Err(HelperError::Keyring(format!(
            "no keyring could be asked: {}",
            failures(&errors)
        )));
    }
    Ok(removed)
}

/// The kernel keyring: one `user` key per address in the user's keyring, with every
/// right for its owner (so later processes of the same user find it, whichever
/// session they run in) and none for anyone else.
#[cfg(target_os = "linux")]
mod kernel {
    use linux_keyutils::{KeyError, KeyPermissionsBuilder, KeyRing, KeyRingIdentifier, Permission};

    use super::{Answer, SERVICE};

    fn description(email: &str) -> String {
        format!("{SERVICE}:{email}")
    }

    fn user_keyring() -> Answer<KeyRing> {
        KeyRing::from_special_id(KeyRingIdentifier::User, true).map_err(words)
    }

    fn words(e: KeyError) -> String {
        match e {
            KeyError::AccessDenied => "the kernel refused access to the keyring".into(),
            KeyError::OperationNotSupported => "this kernel has no keyrings".into(),
            KeyError::QuotaExceeded => "the keyring is full (quota exceeded)".into(),
            other => format!("keyring error: {other:?}"),
        }
    }

    fn absent(e: &KeyError) -> bool {
        matches!(
            e,
            KeyError::KeyDoesNotExist | KeyError::KeyExpired | KeyError::KeyRevoked
        )
    }

    pub fn get(email: &str) -> Answer<Option<String>> {
        let key = match user_keyring()?.search(&description(email)) {
            Ok(key) => key,
            Err(e) if absent(&e) => return Ok(None),
            Err(e) => return Err(words(e)),
        };
        let bytes = key.read_to_vec().map_err(words)?;
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| "the stored password is not text".into())
    }

    pub fn set(email: &str, password: &str) -> Answer<()> {
        if password.is_empty() {
            return Err("an empty password cannot be kept".into());
        }
        let key = user_keyring()?
            .add_key(&description(email), password.as_bytes())
            .map_err(words)?;
        let owner_only = KeyPermissionsBuilder::builder()
            .posessor(Permission::ALL)
            .user(Permission::ALL)
            .build();
        key.set_perms(owner_only).map_err(words)?;
        Ok(())
    }

    pub fn forget(email: &str) -> Answer<bool> {
        match user_keyring()?.search(&description(email)) {
            Ok(key) => {
                key.invalidate().map_err(words)?;
                Ok(true)
            }
            Err(e) if absent(&e) => Ok(false),
            Err(e) => Err(words(e)),
        }
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

    /// The real kernel keyring: a password kept, found, replaced, forgotten (and then
    /// not found, and a second forget says there was nothing).
    #[cfg(target_os = "linux")]
    #[test]
    fn the_kernel_keyring_keeps_finds_and_forgets() {
        let email = format!("unit-{}@example.test", rand::random::<u64>());
        assert_eq!(kernel::get(&email).unwrap(), None);
        kernel::set(&email, "s3cret pass").unwrap();
        assert_eq!(kernel::get(&email).unwrap().as_deref(), Some("s3cret pass"));
        kernel::set(&email, "another pass").unwrap();
        assert_eq!(
            kernel::get(&email).unwrap().as_deref(),
            Some("another pass")
        );
        assert!(kernel::forget(&email).unwrap());
        assert_eq!(kernel::get(&email).unwrap(), None);
        assert!(!kernel::forget(&email).unwrap());
        assert!(kernel::set(&email, "").is_err());
    }
}
