//! Integrations: accounts Atlas signs in to with OAuth 2.0 (Gmail, Google Calendar), their tokens
//! in the OS keyring, their status, health checks and the events they publish.
//!
//! - [`Provider`]: the closed registry of integrations, each one declaration: its name, Google's
//!   endpoints (overridable in `[integrations.NAME]`), default scopes, API base and health check.
//! - [`oauth`]: authorization code + PKCE with a loopback redirect, refresh, revocation.
//! - [`account`]: one account's tokens, status file and refresh lock.
//! - [`manager`]: [`Integrations`], the lifecycle (connect, disconnect, status, health check,
//!   reconnect with backoff) and the `integration.*` events.
//! - [`api`]: authorised REST calls (401 refresh once, 429 and `Retry-After`, bounded).
//! - [`calendar`]: the Calendar REST v3 client, [`calendar_watch`]: the `calendar.soon` events; [`gmail`]: the Gmail REST v1 client; [`mail_watch`]: the `mail.new` events (history based).
//!
//! **Boundary**: tokens exist only in the keyring and in memory for the request that uses them;
//! every token read or received is registered with the process redactor, status files and
//! events hold no token, and nothing here logs one.

pub mod account;
pub mod api;
pub mod calendar;
pub mod calendar_watch;
mod gateway;
pub mod gmail;
mod loopback;
pub mod mail_watch;
pub mod manager;
pub mod oauth;

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

/// An integration Atlas knows; the closed registry is [`PROVIDERS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    /// Gmail (REST v1).
    Gmail,
    /// Google Calendar (REST v3).
    Calendar,
}

/// Every integration, in the order status lists them.
pub const PROVIDERS: &[Provider] = &[Provider::Gmail, Provider::Calendar];

impl Provider {
    /// Its name in config, commands and events.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Gmail => "gmail",
            Provider::Calendar => "calendar",
        }
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
        match self {
            Provider::Gmail => "Gmail",
            Provider::Calendar => "Google Calendar",
        }
    }

    /// The scopes asked for unless config names others.
    pub fn default_scopes(self) -> &'static [&'static str] {
        match self {
            // Read, send, label and mark read; not delete.
            Provider::Gmail => &["https://www.googleapis.com/auth/gmail.modify"],
            Provider::Calendar => &[
                "https://www.googleapis.com/auth/calendar.events",
                "https://www.googleapis.com/auth/calendar.freebusy",
            ],
        }
    }

    /// The REST API's base URL unless config names another.
    pub fn default_api_url(self) -> &'static str {
        match self {
            Provider::Gmail => "https://gmail.googleapis.com/gmail/v1",
            Provider::Calendar => "https://www.googleapis.com/calendar/v3",
        }
    }

    /// The cheap authorised GET the health check makes, relative to the API base.
    pub fn health_path(self) -> &'static str {
        match self {
            Provider::Gmail => "/users/me/profile",
            Provider::Calendar => "/users/me/calendarList?maxResults=1",
        }
    }

    /// Its section of `[integrations]`, if written.
    pub fn config(self, all: &IntegrationsConfig) -> Option<&ProviderConfig> {
        match self {
            Provider::Gmail => all.gmail.as_ref(),
            Provider::Calendar => all.calendar.as_ref(),
        }
    }
}
