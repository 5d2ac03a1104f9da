//! [`Integrations`]: every integration's lifecycle. Connect (a sign-in through the browser),
//! disconnect (revoke, then forget), status, a health check (one cheap authorised GET, bounded
//! by [`CHECK_LIMIT`]) at start and every `check_every_secs`, and for an integration whose check
//! failed (not one that needs a new sign-in) a retry with exponential backoff
//! ([`backoff`]: 30 s doubling to the check interval). A change of state publishes
//! `integration.connected` or `integration.error` on the event hub (and `needs_reauth` comes from
//! [`super::account`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::account::{Account, AccountError, Announce, EventAnnounce, State, Status};
use super::api::{self, ApiError, Request};
use super::oauth::{self, Endpoints, OAuthError, TokenSet};
use super::{Health, PROVIDERS, Provider, TokenKind};
use crate::config::IntegrationsConfig;
use crate::secrets::{SecretStore, SecretVault};
use crate::triggers::events::{Event, EventHub};

/// How long a health check may take.
pub const CHECK_LIMIT: Duration = Duration::from_secs(5);

/// The first retry after a failed check.
pub const FIRST_RETRY: Duration = Duration::from_secs(30);

/// How long a sign-in waits for the redirect unless configured.
pub const REDIRECT_LIMIT: Duration = Duration::from_secs(180);

/// What went wrong with an integration.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IntegrationError {
    /// No such integration.
    #[error("there is no integration `{name}`: the integrations are {}", super::names(), name = .0)]
    Unknown(String),
    /// A setting of `[integrations.NAME]` that cannot work.
    #[error("[integrations.{name}]: {what}")]
    BadConfig {
        /// The section.
        name: String,
        /// What is wrong and what to write.
        what: String,
    },
    /// A `[integrations.NAME]` section of no registered provider.
    #[error("config has [integrations.{name}], but there is no integration `{name}`: the integrations are {}", super::names(), name = .0)]
    UnknownSection(String),
    /// Not set up in config.
    #[error(
        "{name} has no OAuth client: add [integrations.{name}] with client_id ({hint}) to {config}"
    )]
    NotConfigured {
        /// The integration.
        name: String,
        /// Where to get a client.
        hint: String,
        /// The config file.
        config: String,
    },
    /// The provider has no OAuth sign-in here.
    #[error(
        "{0} takes a token, not a browser sign-in: run `atlas integration connect {0} --token`"
    )]
    TokenOnly(String),
    /// The provider takes no pasted token.
    #[error("{0} signs in through the browser only: run `atlas integration connect {0}`")]
    OAuthOnly(String),
    /// A pasted credential was empty or incomplete.
    #[error("{name}: {what}")]
    BadToken {
        /// The integration.
        name: String,
        /// What is wrong.
        what: String,
    },
    /// The provider refused a pasted credential; nothing was stored.
    #[error("{name} refused the credential, so nothing was stored: {reason}")]
    Refused {
        /// The integration.
        name: String,
        /// What it said.
        reason: String,
    },
    /// Sign-in failed.
    #[error("connecting {name} failed: {source}")]
    Connect {
        /// The integration.
        name: String,
        /// Why.
        source: OAuthError,
    },
    /// The account could not be used.
    #[error(transparent)]
    Account(#[from] AccountError),
    /// A call to the API failed.
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// One integration's status as commands, the API and the tray show it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IntegrationStatus {
    /// `gmail`, `calendar`, `github`, ...
    pub name: String,
    /// For people.
    pub title: String,
    /// Whether it can be connected: `[integrations.NAME]` has a client id, or it takes a token.
    pub configured: bool,
    /// How it connects: `oauth`, `token`, `oauth or token`, `key and secret`.
    pub auth: String,
    /// `disconnected`, `connected`, `needs_reauth`, `error`.
    pub state: String,
    /// Why, for `needs_reauth` and `error`.
    pub reason: Option<String>,
    /// When it was connected.
    pub connected_at: Option<String>,
    /// The last health check.
    pub last_check: Option<String>,
}

impl IntegrationStatus {
    /// Whether the user has to do something (sign in again, or look at an error).
    pub fn needs_attention(&self) -> bool {
        self.state == "needs_reauth" || self.state == "error"
    }
}

/// What a connect did.
#[derive(Debug, Clone)]
pub struct Connected {
    /// The integration.
    pub name: String,
    /// How long from the URL being ready to the tokens stored.
    pub took: Duration,
    /// The scopes granted, if the server said.
    pub scope: Option<String>,
}

/// The integrations of one Atlas; see the module docs.
pub struct Integrations {
    config: IntegrationsConfig,
    config_file: String,
    dir: PathBuf,
    vault: Arc<dyn SecretVault>,
    secrets: Arc<dyn SecretStore>,
    http: reqwest::Client,
    announce: Arc<dyn Announce>,
    hub: Arc<OnceLock<EventHub>>,
    accounts: Mutex<BTreeMap<Provider, Arc<Account>>>,
}

impl Integrations {
    /// The integrations configured in `config`, their files under `data_dir/integrations`,
    /// tokens in `vault`, client secrets (`client_secret_secret`) read from `secrets`; events go
    /// to `hub`, and a dead grant is also told to `announce` (a desktop notification).
    pub fn new(
        config: IntegrationsConfig,
        config_file: &Path,
        data_dir: &Path,
        vault: Arc<dyn SecretVault>,
        secrets: Arc<dyn SecretStore>,
        announce: Arc<dyn Announce>,
        hub: Option<EventHub>,
    ) -> Integrations {
        let shared = Arc::new(OnceLock::new());
        if let Some(h) = hub {
            let _ = shared.set(h);
        }
        Integrations {
            config,
            config_file: config_file.display().to_string(),
            dir: data_dir.join("integrations"),
            vault,
            secrets,
            http: oauth::http_client(Duration::from_secs(20)),
            announce: Arc::new(EventAnnounce {
                hub: shared.clone(),
                next: announce,
            }),
            hub: shared,
            accounts: Mutex::default(),
        }
    }

    /// Publishes this integration's events on `hub` from now on (the daemon's hub exists only
    /// after the runtime that holds the integrations); a second hub is ignored.
    pub fn attach_hub(&self, hub: EventHub) {
        let _ = self.hub.set(hub);
    }

    /// The account of `p` (built once from config).
    pub fn account(&self, p: Provider) -> Result<Arc<Account>, IntegrationError> {
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = accounts.get(&p) {
            return Ok(a.clone());
        }
        let endpoints = match self.endpoints(p) {
            Ok(e) => Some(e),
            // A provider that takes a pasted token works without an OAuth client.
            Err(IntegrationError::NotConfigured { .. } | IntegrationError::TokenOnly(_))
                if p.spec().token.is_some() =>
            {
                None
            }
            Err(e) => return Err(e),
        };
        let account = Arc::new(Account::new(
            p.name(),
            endpoints,
            self.vault.clone(),
            self.http.clone(),
            &self.dir,
            self.announce.clone(),
        ));
        accounts.insert(p, account.clone());
        Ok(account)
    }

    fn endpoints(&self, p: Provider) -> Result<Endpoints, IntegrationError> {
        let Some(spec) = p.spec().oauth.as_ref() else {
            return Err(IntegrationError::TokenOnly(p.name().to_owned()));
        };
        let not_configured = || IntegrationError::NotConfigured {
            name: p.name().to_owned(),
            hint: spec.client_hint.to_owned(),
            config: self.config_file.clone(),
        };
        let c = p.config(&self.config).ok_or_else(not_configured)?;
        let client_id = c.client_id.clone().ok_or_else(not_configured)?;
        let client_secret = match (&c.client_secret, &c.client_secret_secret) {
            (Some(s), _) => Some(s.clone()),
            (None, Some(name)) => {
                let s = self
                    .secrets
                    .get(name)
                    .map_err(|e| AccountError::Secrets(e.to_string()))?
                    .ok_or_else(|| {
                        AccountError::Secrets(format!(
                            "the client secret `{name}` of {} is not in the keyring nor the environment: `atlas secret set {name}`",
                            p.name()
                        ))
                    })?;
                crate::redact::process().add(&s);
                Some(s)
            }
            (None, None) => None,
        };
        let scopes = c
            .scopes
            .clone()
            .unwrap_or_else(|| p.default_scopes().iter().map(|s| s.to_string()).collect());
        // Microsoft's endpoints name the tenant: `common` unless config names one.
        let tenant = c.tenant.as_deref().unwrap_or("common");
        let with_tenant = |u: &str| u.replace("{tenant}", tenant);
        Ok(Endpoints {
            auth_url: c
                .auth_url
                .clone()
                .unwrap_or_else(|| with_tenant(spec.auth_url)),
            token_url: c
                .token_url
                .clone()
                .unwrap_or_else(|| with_tenant(spec.token_url)),
            revoke_url: c
                .revoke_url
                .clone()
                .or_else(|| spec.revoke_url.map(str::to_owned)),
            client_id,
            client_secret,
            scopes,
            extra: spec
                .extra
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
    }

    /// The HTTP client (no redirects, bounded).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The integrations' config.
    pub fn config(&self) -> &IntegrationsConfig {
        &self.config
    }

    /// The API base URL of `p`.
    pub fn api_url(&self, p: Provider) -> String {
        p.config(&self.config)
            .and_then(|c| c.api_url.clone())
            .unwrap_or_else(|| p.default_api_url().to_owned())
            .trim_end_matches('/')
            .to_owned()
    }

    fn redirect_limit(&self, p: Provider) -> Duration {
        p.config(&self.config)
            .and_then(|c| c.redirect_timeout_secs)
            .map_or(REDIRECT_LIMIT, Duration::from_secs)
    }

    /// Signs in to `p`: `open` is given the URL to show the user (open a browser, print it);
    /// then waits for the redirect, stores the tokens, marks it connected and publishes
    /// `integration.connected`.
    pub async fn connect(
        &self,
        p: Provider,
        open: impl FnOnce(&str),
    ) -> Result<Connected, IntegrationError> {
        let account = self.account(p)?;
        let connect_err = |source| IntegrationError::Connect {
            name: p.name().to_owned(),
            source,
        };
        let Some(endpoints) = account.endpoints() else {
            return Err(self
                .endpoints(p)
                .err()
                .unwrap_or(IntegrationError::TokenOnly(p.name().to_owned())));
        };
        let pending = oauth::begin(endpoints).await.map_err(connect_err)?;
        let started = Instant::now();
        open(pending.url());
        let tokens = pending
            .finish(&self.http, self.redirect_limit(p))
            .await
            .map_err(connect_err)?;
        account.store_connected(&tokens)?;
        let took = started.elapsed();
        tracing::info!(
            integration = p.name(),
            took_ms = took.as_millis() as u64,
            "connected"
        );
        self.publish(
            p,
            "integration.connected",
            json!({ "integration": p.name() }),
        );
        Ok(Connected {
            name: p.name().to_owned(),
            took,
            scope: tokens.scope,
        })
    }

    /// Connects `p` with a pasted credential (`token`, and `secret` for a key + secret
    /// provider): stored in the keyring, then checked at once against the provider; a
    /// credential the provider refuses is deleted again and the error says why.
    pub async fn connect_token(
        &self,
        p: Provider,
        token: String,
        secret: Option<String>,
    ) -> Result<IntegrationStatus, IntegrationError> {
        let bad = |what: &str| IntegrationError::BadToken {
            name: p.name().to_owned(),
            what: what.to_owned(),
        };
        let Some(kind) = p.spec().token else {
            return Err(IntegrationError::OAuthOnly(p.name().to_owned()));
        };
        let (token, secret) = (token.trim().to_owned(), secret.map(|s| s.trim().to_owned()));
        if token.is_empty() {
            return Err(bad("the token is empty"));
        }
        if token.chars().any(char::is_whitespace) {
            return Err(bad("a token has no spaces or line breaks in it"));
        }
        let secret = match (kind, secret) {
            (TokenKind::KeySecret(_), Some(s)) if !s.is_empty() => Some(s),
            (TokenKind::KeySecret(_), _) => {
                return Err(bad("give the API key, then its secret on the next line"));
            }
            (TokenKind::Token(_), _) => None,
        };
        let account = self.account(p)?;
        account.store_connected(&TokenSet::pasted(token, secret))?;
        let checked = self.check(p).await;
        if checked.state == "needs_reauth" {
            let reason = checked.reason.unwrap_or_default();
            account.forget()?;
            return Err(IntegrationError::Refused {
                name: p.name().to_owned(),
                reason,
            });
        }
        tracing::info!(integration = p.name(), state = %checked.state, "connected with a token");
        self.publish(
            p,
            "integration.connected",
            json!({ "integration": p.name() }),
        );
        Ok(checked)
    }

    /// Disconnects `p` (revoking where the provider can); a note says when revocation did not
    /// happen.
    pub async fn disconnect(&self, p: Provider) -> Result<Option<String>, IntegrationError> {
        let account = self.account(p)?;
        let note = account.disconnect().await?;
        self.publish(
            p,
            "integration.disconnected",
            json!({ "integration": p.name() }),
        );
        Ok(note)
    }

    /// The status of `p`.
    pub fn status(&self, p: Provider) -> IntegrationStatus {
        let spec = p.spec();
        let configured = spec.token.is_some()
            || p.config(&self.config)
                .is_some_and(|c| c.client_id.is_some());
        let auth = match (&spec.oauth, spec.token) {
            (Some(_), Some(_)) => "oauth or token",
            (Some(_), None) => "oauth",
            (None, Some(TokenKind::KeySecret(_))) => "key and secret",
            (None, _) => "token",
        };
        // From the file alone: building the account may read a client secret from the keyring,
        // and status is asked from async code (the API, the tray feed).
        let s = read_status(&self.dir, p);
        IntegrationStatus {
            name: p.name().to_owned(),
            title: p.title().to_owned(),
            configured,
            auth: auth.to_owned(),
            state: s.state.as_str().to_owned(),
            reason: s.reason,
            connected_at: s.connected_at,
            last_check: s.last_check,
        }
    }

    /// Every integration's status.
    pub fn statuses(&self) -> Vec<IntegrationStatus> {
        PROVIDERS.iter().map(|p| self.status(*p)).collect()
    }

    /// Whether `p` is connected (its last known state).
    pub fn is_connected(&self, p: Provider) -> bool {
        self.status(p).state == "connected"
    }

    /// An authorised call to `p`'s API.
    pub async fn call(
        &self,
        p: Provider,
        req: &Request,
    ) -> Result<serde_json::Value, IntegrationError> {
        let account = self.account(p)?;
        Ok(api::call(&account, req).await?)
    }

    /// The health check of `p`: one authorised GET within [`CHECK_LIMIT`], recorded in its
    /// status (a disconnected integration is left alone). Returns the new status.
    pub async fn check(&self, p: Provider) -> IntegrationStatus {
        let Ok(account) = self.account(p) else {
            return self.status(p);
        };
        let before = account.status();
        if before.state == State::Disconnected || before.state == State::NeedsReauth {
            return self.status(p);
        }
        let result = tokio::time::timeout(CHECK_LIMIT, self.health(p, &account)).await;
        let mut s = account.status();
        s.last_check = Some(chrono::Utc::now().to_rfc3339());
        match result {
            Ok(Ok(_)) => {
                s.state = State::Connected;
                s.reason = None;
                s.failures = 0;
            }
            Ok(Err(ApiError::Account(AccountError::NeedsReauth { .. }))) => {
                // Recorded (and announced) by the account.
                return self.status(p);
            }
            Ok(Err(e)) => {
                s.state = State::Error;
                s.reason = Some(e.to_string());
                s.failures += 1;
            }
            Err(_) => {
                s.state = State::Error;
                s.reason = Some(format!(
                    "the health check took longer than {} s",
                    CHECK_LIMIT.as_secs()
                ));
                s.failures += 1;
            }
        }
        if let Err(e) = account.set_status(&s) {
            tracing::warn!(integration = p.name(), error = %e, "cannot record the status");
        }
        if s.state != before.state {
            match s.state {
                State::Connected => self.publish(
                    p,
                    "integration.connected",
                    json!({ "integration": p.name() }),
                ),
                State::Error => self.publish(
                    p,
                    "integration.error",
                    json!({ "integration": p.name(), "reason": s.reason }),
                ),
                _ => {}
            }
        }
        self.status(p)
    }

    /// Checks every connected integration at once, then on schedule until `shutdown`: every
    /// `check_every_secs`, and a failed one after [`backoff`] of its failures.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let every = Duration::from_secs(self.config.check_every_secs.max(10));
        let mut due: BTreeMap<Provider, tokio::time::Instant> = PROVIDERS
            .iter()
            .map(|p| (*p, tokio::time::Instant::now()))
            .collect();
        loop {
            let now = tokio::time::Instant::now();
            for p in PROVIDERS {
                if due[p] <= now {
                    let s = self.check(*p).await;
                    let failures = self.account(*p).map(|a| a.status().failures).unwrap_or(0);
                    let next = if s.state == "error" {
                        backoff(failures, every)
                    } else {
                        every
                    };
                    due.insert(*p, tokio::time::Instant::now() + next);
                }
            }
            let next = due.values().min().copied().unwrap_or(now + every);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep_until(next) => {}
            }
        }
    }

    /// One health check call: the provider's cheap authorised GET, or its own check.
    async fn health(&self, p: Provider, account: &Account) -> Result<(), ApiError> {
        match p.spec().health {
            Health::Get(path) => {
                let req = p.request(reqwest::Method::GET, format!("{}{path}", self.api_url(p)));
                api::call(account, &req).await.map(drop)
            }
            Health::Own(check) => check(self, account).await,
        }
    }

    pub(crate) fn publish(&self, p: Provider, kind: &str, data: serde_json::Value) {
        if let Some(hub) = self.hub.get() {
            hub.publish(Event::new(p.name(), kind, data));
        }
    }
}

/// The wait before retrying after `failures` failed checks: 30 s doubling, at most `every`.
pub fn backoff(failures: u32, every: Duration) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    (FIRST_RETRY * 2u32.pow(exp)).min(every)
}

fn read_status(dir: &Path, p: Provider) -> Status {
    std::fs::read(dir.join(format!("{}.json", p.name())))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_30_s_up_to_the_check_interval() {
        let every = Duration::from_secs(900);
        let waits: Vec<u64> = (1..=7).map(|f| backoff(f, every).as_secs()).collect();
        assert_eq!(waits, vec![30, 60, 120, 240, 480, 900, 900]);
        assert_eq!(backoff(40, every), every);
    }
}
