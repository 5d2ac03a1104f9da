//! The secret store interface: where API keys and tokens come from.
//!
//! Templates read secrets as `{{ secrets.NAME }}`; the engine registers every value read with the
//! run's redactor so it never reaches run history or a log line. Stores here: [`EnvSecrets`]
//! (`ATLAS_SECRET_<NAME>` environment variables, an override for CI and servers),
//! [`KeyringSecrets`] (the OS keyring, where `atlas secret set` and the integrations' OAuth tokens
//! go) and [`MemorySecrets`] (tests and embedding), chained by [`ChainSecrets`]. A store that can
//! also be written is a [`SecretVault`].

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, RwLock};

mod keyring;

pub use keyring::{CALL_LIMIT, KeyringError, KeyringSecrets, SERVICE};

/// A secret store failed (not: the secret does not exist, which is `Ok(None)`).
#[derive(Debug, thiserror::Error)]
#[error("secret store {store} failed: {reason}")]
pub struct SecretError {
    /// Which store.
    pub store: &'static str,
    /// What went wrong.
    pub reason: String,
}

/// Somewhere secrets can be read from.
pub trait SecretStore: Send + Sync + Debug + 'static {
    /// The secret called `name`, if the store has it.
    fn get(&self, name: &str) -> Result<Option<String>, SecretError>;
    /// The store's name, shown by `atlas status`.
    fn name(&self) -> &'static str;
}

/// A secret store that can be written: the keyring (and memory, for tests).
pub trait SecretVault: SecretStore {
    /// Stores `value` as `name` (a [`check_name`]-valid name), replacing any earlier value.
    fn set(&self, name: &str, value: &str) -> Result<(), SecretError>;
    /// Removes `name`; false when there was no such secret.
    fn delete(&self, name: &str) -> Result<bool, SecretError>;
    /// The names held, sorted (never the values).
    fn names(&self) -> Result<Vec<String>, SecretError>;
}

/// Whether `name` can name a secret: 1 to 64 ASCII letters, digits, `_`, `-` or `.`, starting
/// with a letter. (Templates read `secrets.NAME`, so names meant for them use `_`; the
/// integrations' own items have dots, which templates cannot reach.)
pub fn check_name(name: &str) -> Result<(), SecretError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(SecretError {
            store: "names",
            reason: format!(
                "`{name}` is not a secret name: use 1 to 64 letters, digits, `_`, `-` or `.`, starting with a letter (e.g. openai_key)"
            ),
        })
    }
}

/// Secrets from environment variables: `secrets.openai_key` reads `ATLAS_SECRET_OPENAI_KEY`.
#[derive(Debug, Default)]
pub struct EnvSecrets;

impl SecretStore for EnvSecrets {
    fn get(&self, name: &str) -> Result<Option<String>, SecretError> {
        let var = format!(
            "ATLAS_SECRET_{}",
            name.to_ascii_uppercase().replace('-', "_")
        );
        Ok(std::env::var(var).ok())
    }

    fn name(&self) -> &'static str {
        "environment"
    }
}

/// Secrets held in memory.
#[derive(Debug, Default)]
pub struct MemorySecrets {
    values: RwLock<HashMap<String, String>>,
}

impl MemorySecrets {
    /// Stores a secret.
    pub fn set(&self, name: &str, value: &str) {
        self.values
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned(), value.to_owned());
    }
}

impl SecretStore for MemorySecrets {
    fn get(&self, name: &str) -> Result<Option<String>, SecretError> {
        Ok(self
            .values
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned())
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}

impl SecretVault for MemorySecrets {
    fn set(&self, name: &str, value: &str) -> Result<(), SecretError> {
        check_name(name)?;
        MemorySecrets::set(self, name, value);
        Ok(())
    }

    fn delete(&self, name: &str) -> Result<bool, SecretError> {
        Ok(self
            .values
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name)
            .is_some())
    }

    fn names(&self) -> Result<Vec<String>, SecretError> {
        let mut names: Vec<String> = self
            .values
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        names.sort();
        Ok(names)
    }
}

/// Asks each store in turn; the first that has the secret wins.
#[derive(Debug)]
pub struct ChainSecrets(pub Vec<Arc<dyn SecretStore>>);

impl SecretStore for ChainSecrets {
    fn get(&self, name: &str) -> Result<Option<String>, SecretError> {
        for store in &self.0 {
            if let Some(v) = store.get(name)? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    fn name(&self) -> &'static str {
        self.0.first().map(|s| s.name()).unwrap_or("none")
    }
}
