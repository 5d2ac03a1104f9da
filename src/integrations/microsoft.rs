//! Microsoft: Outlook mail and calendar through Microsoft Graph (`https://graph.microsoft.com/v1.0`),
//! signed in with the Microsoft identity platform v2.0: the authorization code flow with PKCE and
//! a loopback redirect, as a public client (the user's own app registration, no client secret),
//! tenant `common` unless `[integrations.microsoft] tenant` names an organisation, scopes
//! `offline_access User.Read Mail.ReadWrite Mail.Send Calendars.ReadWrite`. Microsoft rotates
//! refresh tokens: the token set a refresh returns (with its new refresh token) replaces the old
//! one in its one keyring item, in one write ([`super::account`]), and `invalid_grant` marks the
//! account `needs_reauth` once. There is no revocation endpoint: disconnecting forgets the tokens
//! (consent is withdrawn at myapps.microsoft.com / account.live.com).
//!
//! This module declares the provider and what its two clients share: Graph's error body
//! (`error.code`, `error.message`) read into one status line ([`GraphError`]), `@odata.nextLink`
//! paging ([`pages`]), the time zone calendar times are asked and read in ([`zone`]). The clients
//! are [`super::outlook`] (mail, and the `mail.new` delta watch) and [`super::outlook_calendar`]
//! (calendar). Throttling (429, and 503 with `Retry-After`) is waited out by [`super::api`].

use chrono_tz::Tz;
use serde_json::Value;

use super::api::{ApiError, Request};
use super::{AuthHeader, Health, IntegrationError, Integrations, OAuthSpec, Provider, Spec};

/// The most pages one listing follows.
pub const MAX_PAGES: usize = 20;

/// Microsoft's declaration in the registry.
pub const SPEC: Spec = Spec {
    name: "microsoft",
    title: "Microsoft (Outlook mail and calendar)",
    oauth: Some(OAuthSpec {
        auth_url: "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize",
        token_url: "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
        revoke_url: None,
        scopes: &[
            "offline_access",
            "User.Read",
            "Mail.ReadWrite",
            "Mail.Send",
            "Calendars.ReadWrite",
        ],
        extra: &[],
        client_hint: "the application (client) id of your own app registration in Microsoft Entra: platform \"Mobile and desktop applications\" with the redirect URI http://127.0.0.1/callback, public client flows allowed, no secret",
    }),
    token: None,
    api_url: "https://graph.microsoft.com/v1.0",
    auth: AuthHeader::Bearer,
    headers: &[],
    ok_field: false,
    health: Health::Get("/me?$select=id"),
    run: None,
    watch: Some(super::outlook::watches),
    mail: Some(super::outlook::mailbox),
    calendar: Some(super::outlook_calendar::agenda),
};

/// This provider.
pub const PROVIDER: Provider = Provider::of(&SPEC);

/// What went wrong with Graph.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GraphError {
    /// The call failed before Graph could say why (not connected, sign in again, unreachable,
    /// rate-limited).
    #[error(transparent)]
    Call(IntegrationError),
    /// Graph refused, with its error body.
    #[error("Microsoft Graph refused ({code}, HTTP {status}): {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// `error.code` (`ErrorItemNotFound`, `InvalidAuthenticationToken`, ...).
        code: String,
        /// `error.message`, at most 300 characters.
        message: String,
    },
    /// Bad input (an empty title, a recipient missing, ...).
    #[error("{0}")]
    Input(String),
    /// Graph answered without something it always sends.
    #[error("Microsoft Graph answered without `{0}`")]
    Shape(&'static str),
}

impl From<IntegrationError> for GraphError {
    fn from(e: IntegrationError) -> Self {
        match e {
            IntegrationError::Api(ApiError::Http {
                status,
                message,
                reason,
                ..
            }) => GraphError::Refused {
                status,
                code: reason.unwrap_or_else(|| "error".into()),
                message,
            },
            other => GraphError::Call(other),
        }
    }
}

impl GraphError {
    /// The HTTP status Graph answered with, if it refused.
    pub fn status(&self) -> Option<u16> {
        match self {
            GraphError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// `path` of the Graph API.
pub fn url(all: &Integrations, path: &str) -> String {
    format!("{}{path}", all.api_url(PROVIDER))
}

/// One authorised Graph call.
pub async fn call(all: &Integrations, req: &Request) -> Result<Value, GraphError> {
    Ok(all.call(PROVIDER, req).await?)
}

/// Follows `@odata.nextLink` from `first` until `enough` says so, the pages end, or
/// [`MAX_PAGES`]; the items of every page, and the `@odata.deltaLink` of the last if it has
/// one. `with` adds the headers every page needs (a `Prefer`).
pub async fn pages(
    all: &Integrations,
    first: Request,
    enough: impl Fn(usize) -> bool,
) -> Result<(Vec<Value>, Option<String>), GraphError> {
    let headers = first.headers.clone();
    let mut req = first;
    let mut items = Vec::new();
    for _ in 0..MAX_PAGES {
        let v = call(all, &req).await?;
        items.extend(v["value"].as_array().cloned().unwrap_or_default());
        if let Some(delta) = v["@odata.deltaLink"].as_str() {
            return Ok((items, Some(delta.to_owned())));
        }
        let Some(next) = v["@odata.nextLink"].as_str() else {
            return Ok((items, None));
        };
        if enough(items.len()) {
            return Ok((items, None));
        }
        let mut r = PROVIDER.request(reqwest::Method::GET, next);
        r.headers = headers.clone();
        req = r;
    }
    Ok((items, None))
}

/// A path segment: Graph ids are base64 (`+`, `/`, `=`), so they are percent-encoded.
pub fn seg(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The time zone calendar times are asked and read in: `[integrations.microsoft] timezone`,
/// else the machine's (`TZ`, `/etc/timezone`, the `/etc/localtime` link), else UTC.
pub fn zone(all: &Integrations) -> Tz {
    PROVIDER
        .config(all.config())
        .and_then(|c| c.timezone.as_deref())
        .and_then(|z| z.parse().ok())
        .or_else(machine_zone)
        .unwrap_or(Tz::UTC)
}

fn machine_zone() -> Option<Tz> {
    if let Ok(z) = std::env::var("TZ")
        && let Ok(tz) = z.trim_start_matches(':').parse()
    {
        return Some(tz);
    }
    if let Ok(z) = std::fs::read_to_string("/etc/timezone")
        && let Ok(tz) = z.trim().parse()
    {
        return Some(tz);
    }
    let link = std::fs::read_link("/etc/localtime").ok()?;
    let text = link.to_string_lossy();
    let name = text.split("zoneinfo/").nth(1)?;
    name.parse().ok()
}

/// The `Prefer` header asking for times in `tz`.
pub fn prefer_zone(tz: Tz) -> (String, String) {
    (
        "Prefer".into(),
        format!("outlook.timezone=\"{}\"", tz.name()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_ids_are_percent_encoded_as_one_segment() {
        assert_eq!(seg("AAMkAGI2+/x=="), "AAMkAGI2%2B%2Fx%3D%3D");
        assert_eq!(seg("../me"), "..%2Fme");
    }

    #[test]
    fn graph_error_bodies_become_one_status_line() {
        let body = br#"{"error":{"code":"ErrorItemNotFound","message":"The specified object was not found in the store.","innerError":{"date":"2026-12-07T08:00:00","request-id":"x"}}}"#;
        let api = super::super::api::http_error("microsoft", reqwest::StatusCode::NOT_FOUND, body);
        let e = GraphError::from(IntegrationError::Api(api));
        assert_eq!(
            e.to_string(),
            "Microsoft Graph refused (ErrorItemNotFound, HTTP 404): The specified object was not found in the store."
        );
    }
}
