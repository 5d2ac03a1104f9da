//! The API's errors: each a status code and a message a user can act on, answered as
//! `{"error": {"status": 404, "message": "..."}}`.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::engine::EngineError;

/// Why a request (or the server itself) failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// `[api] listen` is not an address.
    #[error("api.listen `{0}` is not an address such as 127.0.0.1:7077 (or `off`)")]
    BadListen(String),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source} (set another api.listen in config.toml)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The token file could not be read or written.
    #[error("cannot use the API token file {path}: {source}")]
    Token {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No or a wrong bearer token.
    #[error(
        "missing or wrong API token: send `Authorization: Bearer <token>` (`atlas api token` prints it)"
    )]
    Unauthorized,
    /// A webhook delivery whose signature is missing, wrong or stale.
    #[error("{0}")]
    BadSignature(String),
    /// A body over `api.max_body_bytes`.
    #[error("{0}")]
    TooLarge(String),
    /// A foreign `Host` or `Origin`.
    #[error("{0}")]
    Forbidden(String),
    /// Nothing of that name.
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// Something the request needs is off.
    #[error("{0}")]
    Unavailable(String),
    /// A failure of Atlas itself.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized | ApiError::BadSignature(_) => StatusCode::UNAUTHORIZED,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        let text = e.to_string();
        match e {
            EngineError::UnknownWorkflow(_) | EngineError::UnknownRun(_) => {
                ApiError::NotFound(text)
            }
            EngineError::Disabled(_) | EngineError::Refused(_) | EngineError::TooDeep(_) => {
                ApiError::Conflict(text)
            }
            EngineError::ShuttingDown => ApiError::Unavailable(text),
            EngineError::Store(_) => ApiError::Internal(text),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> ApiError {
        ApiError::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = crate::redact::process().text(&self.to_string());
        (
            status,
            axum::Json(json!({"error": {"status": status.as_u16(), "message": message}})),
        )
            .into_response()
    }
}

/// A JSON body, parsed from the raw bytes so that malformed JSON is a 400 naming line and
/// column in the API's error shape.
pub(super) fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body is not the JSON expected: {e} (line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}
