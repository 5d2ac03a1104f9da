//! `/v1/integrations`: the integrations' status, a health check now, a sign-in started from a
//! client (the answer carries the URL to open; the sign-in finishes in the background when the
//! browser comes back), and disconnect. The same operations as `atlas integration`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{Api, ApiError};
use crate::integrations::{IntegrationError, Integrations, Provider};

fn integrations(api: &Api) -> Result<Arc<Integrations>, ApiError> {
    api.integrations
        .clone()
        .ok_or_else(|| ApiError::Unavailable("the integrations are not running here".into()))
}

fn provider(name: &str) -> Result<Provider, ApiError> {
    Provider::parse(name).map_err(|e| ApiError::NotFound(e.to_string()))
}

fn failed(e: IntegrationError) -> ApiError {
    match e {
        IntegrationError::Unknown(_) => ApiError::NotFound(e.to_string()),
        IntegrationError::NotConfigured { .. } => ApiError::Conflict(e.to_string()),
        other => ApiError::Unavailable(other.to_string()),
    }
}

/// Every integration's status, as last recorded.
pub(super) async fn list(State(api): State<Arc<Api>>) -> Result<Json<Value>, ApiError> {
    let all = integrations(&api)?;
    Ok(Json(json!({ "integrations": all.statuses() })))
}

/// One integration, checked now (within 5 s).
pub(super) async fn check(
    State(api): State<Arc<Api>>,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    let p = provider(&name)?;
    let all = integrations(&api)?;
    Ok(Json(json!(all.check(p).await)))
}

/// Starts a sign-in: 202 with `{"url"}` to open; `integration.connected` (or the status's
/// reason) tells how it ended.
pub(super) async fn connect(
    State(api): State<Arc<Api>>,
    UrlPath(name): UrlPath<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let p = provider(&name)?;
    let all = integrations(&api)?;
    let (tx, rx) = tokio::sync::oneshot::channel::<String>();
    let task = tokio::spawn(async move {
        let result = all
            .connect(p, move |url| {
                let _ = tx.send(url.to_owned());
            })
            .await;
        if let Err(e) = &result {
            tracing::warn!(integration = p.name(), error = %e, "sign-in from the API failed");
        }
        result
    });
    match rx.await {
        Ok(url) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "integration": p.name(), "url": url })),
        )),
        // The sign-in ended before it had a URL: its error says why.
        Err(_) => match task.await {
            Ok(Err(e)) => Err(failed(e)),
            _ => Err(ApiError::Internal("the sign-in ended without a URL".into())),
        },
    }
}

/// Revokes and forgets the tokens.
pub(super) async fn disconnect(
    State(api): State<Arc<Api>>,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    let p = provider(&name)?;
    let all = integrations(&api)?;
    let note = all.disconnect(p).await.map_err(failed)?;
    Ok(Json(
        json!({ "integration": p.name(), "state": "disconnected", "note": note }),
    ))
}
