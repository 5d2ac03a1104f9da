//! The HTTP client `http` and `llm` share, built on first use.
//!
//! Building a `reqwest::Client` sets up TLS: OpenSSL's context and the system's root
//! certificates, about 4 MB resident. An agent that only listens and speaks never pays it.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// A `reqwest::Client` built from these settings the first time a request needs it. Clones
/// share the one client.
#[derive(Clone, Default)]
pub struct HttpClient {
    client: Arc<OnceLock<reqwest::Client>>,
    user_agent: Option<String>,
    connect_timeout: Option<Duration>,
}

impl HttpClient {
    /// A client that will send `user_agent` and give up connecting after `connect_timeout`.
    pub fn new(user_agent: impl Into<String>, connect_timeout: Duration) -> HttpClient {
        HttpClient {
            client: Arc::default(),
            user_agent: Some(user_agent.into()),
            connect_timeout: Some(connect_timeout),
        }
    }

    /// The client, built now if no request has needed it yet. Building fails only when the TLS
    /// library cannot start, and is tried again on the next request.
    pub fn get(&self) -> Result<&reqwest::Client, reqwest::Error> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let mut builder = reqwest::Client::builder();
        if let Some(agent) = &self.user_agent {
            builder = builder.user_agent(agent);
        }
        if let Some(timeout) = self.connect_timeout {
            builder = builder.connect_timeout(timeout);
        }
        let built = builder.build()?;
        // Two first requests at once may both build; one client is kept and the other dropped.
        Ok(self.client.get_or_init(|| built))
    }

    /// True once a request has built the client.
    pub fn is_built(&self) -> bool {
        self.client.get().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_built_on_first_use_and_kept() {
        let http = HttpClient::new("atlas/test", Duration::from_secs(1));
        assert!(!http.is_built());
        let first = http.get().unwrap() as *const reqwest::Client;
        assert!(http.is_built());
        assert_eq!(first, http.get().unwrap() as *const _);
        let clone = http.clone();
        assert_eq!(first, clone.get().unwrap() as *const _);
    }
}
