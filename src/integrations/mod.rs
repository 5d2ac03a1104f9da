//! Integrations: the services Atlas acts on for its user (Gmail, Google Calendar, GitHub, Slack,
//! Discord, Notion, Spotify, Binance, Microsoft's Outlook mail and calendar), their credentials in the OS keyring, their status, health
//! checks and the events they publish.
//!
//! - [`Provider`]: the registry, [`PROVIDERS`]. Each provider is one module declaring its
//!   [`Spec`]: how it signs in ([`OAuthSpec`]: OAuth 2.0 + PKCE through the browser, and/or
//!   [`TokenKind`]: a token or an API key and secret the user pastes), its API base, the headers
//!   and the auth header its API wants, its health check ([`Health`]), its service operations
//!   ([`RunFn`], with its action kind's table declared in the same module into
//!   [`crate::actions::SERVICE_KINDS`]) and its polling triggers ([`WatchFn`]). Adding a ninth:
//!   its module (`mod` line) and its line in [`PROVIDERS`]; `[integrations.NAME]` is then
//!   accepted in config ([`check_config`]) and its action kind loads.
//! - [`oauth`]: authorization code + PKCE with a loopback redirect, refresh, revocation.
//! - [`account`]: one account's credentials, status file and refresh lock.
//! - [`manager`]: [`Integrations`], the lifecycle (connect, disconnect, status, health check,
//!   reconnect with backoff) and the `integration.*` events.
//! - [`api`]: authorised REST calls (401 refresh once, 429 and `Retry-After`, GitHub's and
//!   Slack's rate-limit shapes, bounded); [`pace`]: client-side pacing (Slack's tiers, Discord's
//!   buckets).
//! - the capabilities: [`mail`] ([`mail::MailSource`]) and [`agenda`]
//!   ([`agenda::CalendarSource`]), served by every connected account that has them.
//! - the provider clients: [`calendar`], [`gmail`], [`github`], [`slack`], [`discord`],
//!   [`notion`], [`spotify`], [`binance`], [`microsoft`] ([`outlook`], [`outlook_calendar`]);
//!   [`services`] routes the actions' operations to them.
//! - the polling triggers: [`calendar_watch`] (`calendar.soon`), [`mail_watch`] (`mail.new`) and,
//!   on the generic [`watch`] loop, GitHub notifications, Discord mentions, Notion database items
//!   and Binance price thresholds.
//!
//! **Boundary**: credentials exist only in the keyring and in memory for the request that uses
//! them; every one read or received is registered with the process redactor, status files and
//! events hold none, and nothing here logs one.

/// Defines `run_boxed`, the [`RunFn`] of the provider module's `async fn run` (named here).
macro_rules! boxed_run {
    ($run:ident) => {
        fn run_boxed<'a>(
            all: &'a $crate::integrations::Integrations,
            op: &'a $crate::actions::ServiceOp,
        ) -> $crate::integrations::BoxFuture<
            'a,
            Result<serde_json::Value, $crate::integrations::services::ServiceError>,
        > {
            Box::pin($run(all, op))
        }
    };
}
pub(crate) use boxed_run;

pub mod account;
pub mod agenda;
pub mod api;
pub mod binance;
pub mod calendar;
pub mod calendar_watch;
pub mod discord;
mod gateway;
pub mod github;
pub mod gmail;
mod loopback;
pub mod mail;
pub mod mail_watch;
pub mod manager;
pub mod microsoft;
pub mod notion;
pub mod oauth;
pub mod outlook;
pub mod outlook_calendar;
pub mod pace;
pub mod services;
pub mod slack;
pub mod spotify;
pub mod watch;

pub use account::{Account, AccountError, Announce, DesktopAnnounce, State, Status};
pub use manager::{IntegrationError, IntegrationStatus, Integrations};
pub use oauth::{Endpoints, OAuthError, TokenSet};

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::actions::ServiceOp;
use crate::config::{IntegrationsConfig, ProviderConfig};
use crate::triggers::events::EventHub;
use api::ApiError;
use services::ServiceError;

/// Google's authorization endpoint.
pub const GOOGLE_AUTH_URL: &str = "https://accounts.google.com/o/oauth2/v2/auth";
/// Google's token endpoint.
pub const GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// Google's revocation endpoint.
pub const GOOGLE_REVOKE_URL: &str = "https://oauth2.googleapis.com/revoke";

/// How a provider's OAuth sign-in goes (defaults; `[integrations.NAME]` may point elsewhere).
#[derive(Debug)]
pub struct OAuthSpec {
    /// The authorization endpoint.
    pub auth_url: &'static str,
    /// The token endpoint.
    pub token_url: &'static str,
    /// The revocation endpoint (RFC 7009 form `token=`), if any.
    pub revoke_url: Option<&'static str>,
    /// The scopes asked for unless config names others.
    pub scopes: &'static [&'static str],
    /// Extra authorization parameters.
    pub extra: &'static [(&'static str, &'static str)],
    /// Where the user gets an OAuth client, for the "not configured" message.
    pub client_hint: &'static str,
}

/// A credential the user pastes (`atlas integration connect NAME --token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// One token, described for the prompt.
    Token(&'static str),
    /// An API key and its secret, described for the prompt.
    KeySecret(&'static str),
}

/// How the API wants the credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthHeader {
    /// `Authorization: Bearer TOKEN`.
    Bearer,
    /// `Authorization: Bot TOKEN` (Discord).
    Bot,
    /// Not in a header of its own: the client signs (Binance).
    Signed,
}

/// A boxed future, for the functions a [`Spec`] points to.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A provider's own health check (when one GET is not it).
pub type HealthFn =
    for<'a> fn(&'a Integrations, &'a Account) -> BoxFuture<'a, Result<(), ApiError>>;

/// A provider's service operations: runs one `op` of its action kind.
pub type RunFn =
    for<'a> fn(&'a Integrations, &'a ServiceOp) -> BoxFuture<'a, Result<Value, ServiceError>>;

/// A provider's polling triggers: spawns them (each asks nothing of a provider that is not
/// connected or has nothing to watch).
pub type WatchFn = fn(&WatchCtx<'_>);

/// What a provider's [`WatchFn`] starts its triggers with.
pub struct WatchCtx<'a> {
    /// The integrations.
    pub all: &'a Arc<Integrations>,
    /// Where events go.
    pub hub: &'a EventHub,
    /// Where watch state files go (`integrations/NAME-watch.json` below it).
    pub data_dir: &'a Path,
    /// Stops them.
    pub shutdown: &'a CancellationToken,
}

impl WatchCtx<'_> {
    /// Spawns `poller` on the generic [`watch`] loop, every `poll_secs` of its provider's
    /// config (default 60, at least 15).
    pub fn spawn<P: watch::Poller>(&self, poller: P) {
        let every = P::PROVIDER
            .config(self.all.config())
            .and_then(|c| c.poll_secs)
            .unwrap_or(60)
            .max(15);
        let w = watch::Watch::new(poller, self.all.clone(), self.hub.clone(), self.data_dir);
        tokio::spawn(w.run(Duration::from_secs(every), self.shutdown.clone()));
    }
}

/// How a provider's health is checked.
#[derive(Debug, Clone, Copy)]
pub enum Health {
    /// One cheap authorised GET of this path, relative to the API base.
    Get(&'static str),
    /// The provider module's own check.
    Own(HealthFn),
}

/// One provider's declaration; see the module docs.
#[derive(Debug)]
pub struct Spec {
    /// Its name in config, commands and events.
    pub name: &'static str,
    /// What it is, for people.
    pub title: &'static str,
    /// Its OAuth sign-in, if it has one.
    pub oauth: Option<OAuthSpec>,
    /// The credential the user can paste instead, if any.
    pub token: Option<TokenKind>,
    /// The REST API's base URL unless config names another.
    pub api_url: &'static str,
    /// The auth header.
    pub auth: AuthHeader,
    /// Headers every call sends (API versions, media types).
    pub headers: &'static [(&'static str, &'static str)],
    /// Whether a 200 answer can still be an error (`{"ok": false, "error": ..}`, Slack).
    pub ok_field: bool,
    /// Its health check.
    pub health: Health,
    /// Its service operations, if it has an action kind of its own (the kind's table is the
    /// module's [`crate::actions::ServiceKind`] in [`crate::actions::SERVICE_KINDS`]).
    pub run: Option<RunFn>,
    /// Its polling triggers, if any.
    pub watch: Option<WatchFn>,
    /// Its mailbox, if it holds mail (the `mail` action and `mail.new`).
    pub mail: Option<mail::MailFn>,
    /// Its calendar, if it has one (the `calendar` action and `calendar.soon`).
    pub calendar: Option<agenda::CalendarFn>,
}

/// An integration Atlas knows: a handle on its [`Spec`]; the registry is [`PROVIDERS`].
/// Equal, ordered and hashed by name.
#[derive(Clone, Copy)]
pub struct Provider(&'static Spec);

/// Every integration, in the order status lists them: **the** registry, one line each.
pub const PROVIDERS: &[Provider] = &[
    Provider(&gmail::SPEC),
    Provider(&calendar::SPEC),
    Provider(&github::SPEC),
    Provider(&slack::SPEC),
    Provider(&discord::SPEC),
    Provider(&notion::SPEC),
    Provider(&spotify::SPEC),
    Provider(&binance::SPEC),
    Provider(&microsoft::SPEC),
];

/// Shorthands for the providers that code names (a new provider needs none: it is found by
/// name, and its own module can use `Provider::of(&SPEC)`).
#[allow(non_upper_case_globals)]
impl Provider {
    /// Gmail (REST v1).
    pub const Gmail: Provider = Provider(&gmail::SPEC);
    /// Google Calendar (REST v3).
    pub const Calendar: Provider = Provider(&calendar::SPEC);
    /// GitHub (REST).
    pub const GitHub: Provider = Provider(&github::SPEC);
    /// Slack (Web API).
    pub const Slack: Provider = Provider(&slack::SPEC);
    /// Discord (REST v10).
    pub const Discord: Provider = Provider(&discord::SPEC);
    /// Notion (REST).
    pub const Notion: Provider = Provider(&notion::SPEC);
    /// Spotify (Web API).
    pub const Spotify: Provider = Provider(&spotify::SPEC);
    /// Binance (spot REST).
    pub const Binance: Provider = Provider(&binance::SPEC);
}

impl PartialEq for Provider {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for Provider {}

impl std::hash::Hash for Provider {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.name.hash(state);
    }
}

impl PartialOrd for Provider {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Provider {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.name.cmp(other.0.name)
    }
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.name)
    }
}

/// Every integration's name, for messages.
pub fn names() -> String {
    PROVIDERS
        .iter()
        .map(|p| p.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks `[integrations.NAME]` against the registry: a section of no registered provider is an
/// error naming the known ones.
pub fn check_config(config: &IntegrationsConfig) -> Result<(), IntegrationError> {
    if let Some(name) = config
        .providers
        .keys()
        .find(|name| !PROVIDERS.iter().any(|p| p.name() == name.as_str()))
    {
        return Err(IntegrationError::UnknownSection(name.clone()));
    }
    // The tenant goes into the sign-in URLs' path.
    for (name, c) in &config.providers {
        if let Some(t) = &c.tenant
            && (t.is_empty()
                || !t
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '.')))
        {
            return Err(IntegrationError::BadConfig {
                name: name.clone(),
                what: format!(
                    "tenant `{t}` is not a directory id or domain (letters, digits, `-` and `.`): use `common`, `organizations`, `consumers`, your tenant id or your domain"
                ),
            });
        }
    }
    Ok(())
}

impl Provider {
    /// The provider `spec` declares (for its own module; others find it by name).
    pub const fn of(spec: &'static Spec) -> Provider {
        Provider(spec)
    }

    /// Its declaration.
    pub fn spec(self) -> &'static Spec {
        self.0
    }

    /// Its section of `[integrations]`, if written.
    pub fn config(self, all: &IntegrationsConfig) -> Option<&ProviderConfig> {
        all.get(self.name())
    }
    /// Its name in config, commands and events.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The provider called `name`.
    pub fn parse(name: &str) -> Result<Provider, IntegrationError> {
        PROVIDERS
            .iter()
            .copied()
            .find(|p| p.name() == name)
            .ok_or_else(|| IntegrationError::Unknown(name.to_owned()))
    }

    /// What it is, for people.
    pub fn title(self) -> &'static str {
        self.spec().title
    }

    /// The scopes asked for unless config names others (none for token providers).
    pub fn default_scopes(self) -> &'static [&'static str] {
        self.spec().oauth.as_ref().map_or(&[], |o| o.scopes)
    }

    /// The REST API's base URL unless config names another.
    pub fn default_api_url(self) -> &'static str {
        self.spec().api_url
    }

    /// A request of `method` to `url` shaped for this provider's API (its auth header, its
    /// headers, its error shape).
    pub fn request(self, method: reqwest::Method, url: impl Into<String>) -> api::Request {
        let s = self.spec();
        let mut r = api::Request::new(method, url);
        r.auth = s.auth;
        r.ok_field = s.ok_field;
        r.headers = s
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        r
    }
}

/// The Gmail and Calendar specs (their clients predate the registry's specs).
const fn google(
    name: &'static str,
    title: &'static str,
    scopes: &'static [&'static str],
    api_url: &'static str,
    health_path: &'static str,
    mail: Option<mail::MailFn>,
    calendar: Option<agenda::CalendarFn>,
) -> Spec {
    Spec {
        name,
        title,
        oauth: Some(OAuthSpec {
            auth_url: GOOGLE_AUTH_URL,
            token_url: GOOGLE_TOKEN_URL,
            revoke_url: Some(GOOGLE_REVOKE_URL),
            scopes,
            // Without these Google sends no refresh token.
            extra: &[("access_type", "offline"), ("prompt", "consent")],
            client_hint: "a Google Cloud \"Desktop app\" OAuth client of your own, with its client_secret",
        }),
        token: None,
        api_url,
        auth: AuthHeader::Bearer,
        headers: &[],
        ok_field: false,
        health: Health::Get(health_path),
        run: None,
        watch: None,
        mail,
        calendar,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::service_kinds;

    #[test]
    fn every_action_kind_of_a_provider_has_its_run_and_back() {
        let kinds: Vec<&str> = service_kinds().iter().map(|k| k.name).collect();
        let runs: Vec<&str> = {
            let mut r: Vec<&str> = PROVIDERS
                .iter()
                .filter(|p| p.spec().run.is_some())
                .map(|p| p.name())
                .collect();
            r.sort();
            r
        };
        assert_eq!(kinds, runs);
        assert_eq!(
            kinds,
            ["binance", "discord", "github", "notion", "slack", "spotify"]
        );
        let mut names: Vec<&str> = PROVIDERS.iter().map(|p| p.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), PROVIDERS.len(), "a name registered twice");
    }

    #[test]
    fn a_config_section_of_no_provider_is_refused_naming_the_known_ones() {
        let ok = IntegrationsConfig::default().with("github", ProviderConfig::default());
        assert!(check_config(&ok).is_ok());
        let bad_tenant = ok.clone().with(
            "microsoft",
            ProviderConfig {
                tenant: Some("../evil?x=".into()),
                ..ProviderConfig::default()
            },
        );
        let err = check_config(&bad_tenant).unwrap_err().to_string();
        assert!(err.contains("tenant `../evil?x=`"), "{err}");
        let typo = ok.with("gihtub", ProviderConfig::default());
        let err = check_config(&typo).unwrap_err().to_string();
        assert!(
            err.contains("[integrations.gihtub]") && err.contains("gmail, calendar, github"),
            "{err}"
        );
        // Read from TOML the same way.
        let parsed: IntegrationsConfig =
            toml::from_str("check_every_secs = 60\n[slack]\nchannels = [\"C1\"]\n[spotifi]\n")
                .unwrap();
        assert_eq!(parsed.check_every_secs, 60);
        assert_eq!(
            Provider::Slack.config(&parsed).unwrap().channels,
            Some(vec!["C1".to_owned()])
        );
        assert!(check_config(&parsed).is_err());
        // A mistyped setting of [integrations] itself says where settings go.
        let err = toml::from_str::<IntegrationsConfig>("check_every_sec = 60\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("[integrations.check_every_sec]") && err.contains("check_every_secs"),
            "{err}"
        );
    }
}
