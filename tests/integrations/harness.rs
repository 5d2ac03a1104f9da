//! One [`Setup`]: the fake services, the strict OAuth fake for Slack and Spotify, and an
//! [`Integrations`] pointed at them with its credentials in memory.

use std::sync::Arc;

use atlas::actions::ServiceOp;
use atlas::config::{IntegrationsConfig, ProviderConfig};
use atlas::integrations::services::{self, ServiceError};
use atlas::integrations::{Announce, Integrations, Provider};
use atlas::secrets::MemorySecrets;
use atlas::triggers::events::EventHub;
use serde_json::Value;

use super::fake::Fake;
use crate::accounts::fake_auth::FakeAuth;

/// Announces nothing (the accounts tests count announcements).
struct Quiet;

impl Announce for Quiet {
    fn needs_reauth(&self, _name: &str, _reason: &str) {}
}

pub struct Setup {
    pub fake: Fake,
    pub auth: FakeAuth,
    pub all: Arc<Integrations>,
    pub vault: Arc<MemorySecrets>,
    pub hub: EventHub,
    pub dir: tempfile::TempDir,
}

/// `[integrations.NAME]` for the fake, with `extra` applied.
pub fn provider(fake: &Fake, auth: &FakeAuth, name: &str) -> ProviderConfig {
    let mut c = if matches!(name, "slack" | "spotify" | "gmail") {
        auth.provider_config(10)
    } else {
        ProviderConfig::default()
    };
    if name != "gmail" {
        c.api_url = Some(fake.base(name));
    }
    c
}

pub async fn setup_with(f: impl FnOnce(&mut IntegrationsConfig)) -> Setup {
    let fake = Fake::start().await;
    let auth = FakeAuth::start().await;
    fake.set(|i| i.oauth = Some(auth.inner.clone()));
    let mut config = IntegrationsConfig::default();
    for name in [
        "gmail", "github", "slack", "discord", "notion", "spotify", "binance",
    ] {
        config = config.with(name, provider(&fake, &auth, name));
    }
    f(&mut config);
    let dir = tempfile::tempdir().unwrap();
    let vault = Arc::new(MemorySecrets::default());
    let hub = EventHub::default();
    let all = Arc::new(Integrations::new(
        config,
        &dir.path().join("config.toml"),
        dir.path(),
        vault.clone(),
        vault.clone(),
        Arc::new(Quiet),
        Some(hub.clone()),
    ));
    Setup {
        fake,
        auth,
        all,
        vault,
        hub,
        dir,
    }
}

pub async fn setup() -> Setup {
    setup_with(|_| {}).await
}

impl Setup {
    /// Connects `p` with `token` (and `secret`), which the fake then accepts.
    pub async fn paste(&self, p: Provider, token: &str, secret: Option<&str>) {
        self.fake.set(|i| {
            i.tokens.insert(token.to_owned());
            if let Some(s) = secret {
                i.secrets.insert(token.to_owned(), s.to_owned());
            }
        });
        let s = self
            .all
            .connect_token(p, token.to_owned(), secret.map(str::to_owned))
            .await
            .unwrap_or_else(|e| panic!("connect {}: {e}", p.name()));
        assert_eq!(s.state, "connected", "{s:?}");
    }

    /// Signs in to `p` through the strict OAuth fake.
    pub async fn sign_in(&self, p: Provider) {
        self.all
            .connect(p, crate::accounts::fake_auth::browse)
            .await
            .unwrap_or_else(|e| panic!("sign in to {}: {e}", p.name()));
    }

    /// Runs one operation of the service `kind`.
    pub async fn op(
        &self,
        kind: &str,
        op: &str,
        args: &[(&str, Value)],
    ) -> Result<Value, ServiceError> {
        let op = ServiceOp {
            op: op.to_owned(),
            args: args
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        };
        services::run(&self.all, kind, &op).await
    }

    /// The status file's state of `p`.
    pub fn state(&self, p: Provider) -> String {
        self.all.status(p).state
    }
}
