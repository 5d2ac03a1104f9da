//! The secret store interface: where API keys and tokens come from.
//!
//! Templates read secrets as `{{ secrets.NAME }}`; the engine registers every value read with the
//! run's redactor so it never reaches run history or a log line. Stores here: [`EnvSecrets`]
//! (`ATLAS_SECRET_<NAME>` environment variables, the default until the OS keyring store lands with
//! the integrations) and [`MemorySecrets`] (tests and embedding), chained by [`ChainSecrets`].

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, RwLock};

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
