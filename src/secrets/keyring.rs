//! The OS keyring as a [`SecretStore`]: the Secret Service on Linux (over D-Bus, through the
//! `keyring` crate's zbus store), the Keychain on macOS, the Credential Manager on Windows.
//!
//! Every secret is one keyring item with the attributes `service = atlas` and
//! `username = NAME`, labelled `Atlas: NAME` so a keyring manager shows what it is.
//!
//! **When no keyring is reachable** (no session bus, no Secret Service, a locked keyring), Atlas
//! stores nothing: writes fail with [`KeyringError::Unavailable`], whose message says why and
//! what to do (start or unlock a keyring, or give the secret as `ATLAS_SECRET_NAME`), and reads
//! find nothing (the environment still works). It never falls back to a plain file. The reason
//! is logged once per process, not once per secret.
//!
//! Keyring calls block on D-Bus (and a Secret Service may be D-Bus-activated and wait for an
//! unlock prompt that never comes on a headless machine): each call runs on its own thread and
//! is given up after [`CALL_LIMIT`].

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::Duration;

use super::{SecretError, SecretStore, SecretVault, check_name};

/// The `service` attribute of Atlas's keyring items.
pub const SERVICE: &str = "atlas";

/// The item name the availability probe reads (never written).
const PROBE: &str = "atlas-keyring-probe";

/// How long one keyring call may take.
pub const CALL_LIMIT: Duration = Duration::from_secs(5);

/// Why the keyring could not be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KeyringError {
    /// No OS keyring answers; nothing is stored.
    #[error(
        "no OS keyring is reachable ({reason}); Atlas keeps no secrets in plain files, so none is stored or read there. Start and unlock a keyring (on Linux a Secret Service such as gnome-keyring or KeePassXC in your desktop session; headless: `dbus-run-session` with `gnome-keyring-daemon --unlock --components=secrets`), or give the secret as the environment variable ATLAS_SECRET_<NAME>"
    )]
    Unavailable {
        /// What the keyring said.
        reason: String,
    },
    /// The keyring answered with an error.
    #[error("the OS keyring failed: {0}")]
    Failed(String),
}

impl From<KeyringError> for SecretError {
    fn from(e: KeyringError) -> Self {
        SecretError {
            store: "keyring",
            reason: e.to_string(),
        }
    }
}

/// The OS keyring store; see the module docs. Opening is lazy: the first call finds out whether
/// a keyring answers, and that answer holds for the process.
#[derive(Debug, Default)]
pub struct KeyringSecrets {
    state: OnceLock<Result<(), KeyringError>>,
    warned: Mutex<bool>,
}

impl KeyringSecrets {
    /// The store (nothing is contacted yet).
    pub fn new() -> KeyringSecrets {
        KeyringSecrets::default()
    }

    /// Whether a keyring answers, finding out on first use (bounded by [`CALL_LIMIT`]).
    pub fn available(&self) -> Result<(), KeyringError> {
        self.state
            .get_or_init(|| {
                bounded(|| {
                    keyring::Entry::store_status()
                        .as_ref()
                        .map_err(|e| unavailable(e.to_string()))?;
                    // A store can exist with no unlocked collection behind it: ask for an item.
                    match entry(PROBE)?.get_password() {
                        Ok(_) | Err(keyring::Error::NoEntry) => Ok(()),
                        Err(e) => Err(unavailable(e.to_string())),
                    }
                })
            })
            .clone()
    }

    /// [`Self::available`], logging a failure once per store.
    fn ready(&self) -> Result<(), KeyringError> {
        let state = self.available();
        if let Err(e) = &state {
            let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
            if !*warned {
                *warned = true;
                tracing::warn!(error = %e, "the OS keyring is not available");
            }
        }
        state
    }
}

impl SecretStore for KeyringSecrets {
    fn get(&self, name: &str) -> Result<Option<String>, SecretError> {
        if self.ready().is_err() {
            // Said once in `ready`; the environment may still have it.
            return Ok(None);
        }
        // The reader registers the value with its redactor (the engine does for templates).
        let name = name.to_owned();
        Ok(bounded(move || match entry(&name)?.get_password() {
            Ok(v) => Ok(Some(v)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(classify(e)),
        })?)
    }

    fn name(&self) -> &'static str {
        "keyring"
    }
}

impl SecretVault for KeyringSecrets {
    fn set(&self, name: &str, value: &str) -> Result<(), SecretError> {
        check_name(name)?;
        self.ready()?;
        let (name, value) = (name.to_owned(), value.to_owned());
        Ok(bounded(move || {
            entry(&name)?.set_password(&value).map_err(classify)
        })?)
    }

    fn delete(&self, name: &str) -> Result<bool, SecretError> {
        self.ready()?;
        let name = name.to_owned();
        Ok(bounded(move || match entry(&name)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(e) => Err(classify(e)),
        })?)
    }

    fn names(&self) -> Result<Vec<String>, SecretError> {
        self.ready()?;
        Ok(bounded(|| {
            let spec = HashMap::from([("service", SERVICE)]);
            let found = keyring_core::Entry::search(&spec).map_err(classify)?;
            let mut names: Vec<String> = found
                .iter()
                .filter_map(|e| e.get_specifiers())
                .filter(|(service, _)| service == SERVICE)
                .map(|(_, user)| user)
                .filter(|user| user != PROBE)
                .collect();
            names.sort();
            names.dedup();
            Ok(names)
        })?)
    }
}

/// Atlas's item for `name`, labelled for keyring managers.
fn entry(name: &str) -> Result<keyring_core::Entry, KeyringError> {
    // Through keyring's own constructor first: it installs the platform store as the default.
    keyring::Entry::store_status()
        .as_ref()
        .map_err(|e| unavailable(e.to_string()))?;
    let label = format!("Atlas: {name}");
    let modifiers = HashMap::from([("label", label.as_str())]);
    keyring_core::Entry::new_with_modifiers(SERVICE, name, &modifiers).map_err(classify)
}

fn unavailable(reason: String) -> KeyringError {
    KeyringError::Unavailable { reason }
}

/// Errors that mean "no usable keyring here" versus a failure of one call.
fn classify(e: keyring::Error) -> KeyringError {
    match e {
        keyring::Error::NoStorageAccess(_) | keyring::Error::NoDefaultStore => {
            unavailable(e.to_string())
        }
        other => KeyringError::Failed(other.to_string()),
    }
}

/// Runs `f` on its own thread and gives up after [`CALL_LIMIT`] (the thread is left to finish
/// or hang on its own; it holds nothing of the caller's).
fn bounded<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, KeyringError> + Send + 'static,
) -> Result<T, KeyringError> {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("atlas-keyring".into())
        .spawn(move || {
            let _ = tx.send(f());
        });
    if let Err(e) = spawned {
        return Err(KeyringError::Failed(format!("cannot start a thread: {e}")));
    }
    match rx.recv_timeout(CALL_LIMIT) {
        Ok(result) => result,
        Err(_) => Err(unavailable(format!(
            "the keyring did not answer within {} s (a locked keyring waiting for a password?)",
            CALL_LIMIT.as_secs()
        ))),
    }
}
