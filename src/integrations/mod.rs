//! Integrations: the services Atlas acts on for its user (Gmail, Google Calendar, GitHub, Slack,
//! Discord, Notion, Spotify, Binance), their credentials in the OS keyring, their status, health
//! checks and the events they publish.
//!
//! - [`Provider`]: the closed registry. Each provider is one module declaring its [`Spec`]: how
//!   it signs in ([`OAuthSpec`]: OAuth 2.0 + PKCE through the browser, and/or [`TokenKind`]: a
//!   token or an API key and secret the user pastes), its API base, the headers and the auth
//!   header its API wants, and its health check. Adding a ninth: its module, a variant and a
//!   line in [`Provider::spec`], its `[integrations.NAME]` field in config, and its action kind.
//! - [`oauth`]: authorization code + PKCE with a loopback redirect, refresh, revocation.
//! - [`account`]: one account's credentials, status file and refresh lock.
//! - [`manager`]: [`Integrations`], the lifecycle (connect, disconnect, status, health check,
//!   reconnect with backoff) and the `integration.*` events.
//! - [`api`]: authorised REST calls (401 refresh once, 429 and `Retry-After`, GitHub's and
//!   Slack's rate-limit shapes, bounded); [`pace`]: client-side pacing (Slack's tiers, Discord's
//!   buckets).
//! - the provider clients: [`calendar`], [`gmail`], [`github`], [`slack`], [`discord`],
//!   [`notion`], [`spotify`], [`binance`]; [`services`] routes the actions' operations to them.
//! - the polling triggers: [`calendar_watch`] (`calendar.soon`), [`mail_watch`] (`mail.new`) and,
//!   on the generic [`watch`] loop, GitHub notifications, Discord mentions, Notion database items
//!   and Binance price thresholds.
//!
//! **Boundary**: credentials exist only in the keyring and in memory for the request that uses
//! them; every one read or received is registered with the process redactor, status files and
//! events hold none, and nothing here logs one.

pub mod account;
pub mod api;
pub mod binance;
pub mod calendar;
pub mod calendar_watch;
pub mod discord;
mod gateway;
pub mod github;
pub mod gmail;
mod loopback;
pub mod mail_watch;
pub mod manager;
pub mod notion;
pub mod oauth;
pub mod pace;
pub mod services;
pub mod slack;
pub mod spotify;
pub mod watch;

pub use account::{Account, AccountError, Announce, DesktopAnnounce, State, Status};
pub use manager::{IntegrationError, IntegrationStatus, Integrations};
pub use oauth::{Endpoints, OAuthError, TokenSet};

use crate::config::{IntegrationsConfig, ProviderConfig};

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
    /// The cheap authorised GET of the health check, relative to the API base (`None`: the
    /// provider's module checks in its own way).
    pub health_path: Option<&'static str>,
}

/// An integration Atlas knows; the closed registry is [`PROVIDERS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    /// Gmail (REST v1).
    Gmail,
    /// Google Calendar (REST v3).
    Calendar,
    /// GitHub (REST).
    GitHub,
    /// Slack (Web API).
    Slack,
    /// Discord (REST v10).
    Discord,
    /// Notion (REST).
    Notion,
    /// Spotify (Web API).
    Spotify,
    /// Binance (spot REST).
    Binance,
}

/// Every integration, in the order status lists them.
pub const PROVIDERS: &[Provider] = &[
    Provider::Gmail,
    Provider::Calendar,
    Provider::GitHub,
    Provider::Slack,
    Provider::Discord,
    Provider::Notion,
    Provider::Spotify,
    Provider::Binance,
];

/// Every integration's name, for messages.
pub fn names() -> String {
    PROVIDERS
        .iter()
        .map(|p| p.name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Provider {
    /// Its declaration.
    pub fn spec(self) -> &'static Spec {
        match self {
            Provider::Gmail => &gmail::SPEC,
            Provider::Calendar => &calendar::SPEC,
            Provider::GitHub => &github::SPEC,
            Provider::Slack => &slack::SPEC,
            Provider::Discord => &discord::SPEC,
            Provider::Notion => &notion::SPEC,
            Provider::Spotify => &spotify::SPEC,
            Provider::Binance => &binance::SPEC,
        }
    }

    /// Its section of `[integrations]`, if written.
    pub fn config(self, all: &IntegrationsConfig) -> Option<&ProviderConfig> {
        match self {
            Provider::Gmail => all.gmail.as_ref(),
            Provider::Calendar => all.calendar.as_ref(),
            Provider::GitHub => all.github.as_ref(),
            Provider::Slack => all.slack.as_ref(),
            Provider::Discord => all.discord.as_ref(),
            Provider::Notion => all.notion.as_ref(),
            Provider::Spotify => all.spotify.as_ref(),
            Provider::Binance => all.binance.as_ref(),
        }
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
        health_path: Some(health_path),
    }
}
