//! The service integrations' operations, as the actions ask for them ([`ServiceOp`] from the
//! service kinds, `github`, `slack`, ...): each goes to its provider's [`super::RunFn`], and what fails comes back as one [`ServiceError`] whose message a workflow
//! can speak or test (`not connected`, `sign in again`, `rate-limiting`, ...).

use serde_json::Value;

use super::api::{self, Answer, ApiError, Request};
use super::{IntegrationError, Integrations, Provider};
use crate::actions::ServiceOp;

/// Why a service operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ServiceError {
    /// The call failed (not connected, refused, rate-limited, unreachable).
    #[error(transparent)]
    Call(#[from] IntegrationError),
    /// The operation's arguments do not work (a bad repository name, no such playlist).
    #[error("{0}")]
    Input(String),
    /// The provider answered in a way that needs the user (no active device, Premium needed).
    #[error("{0}")]
    Provider(String),
}

impl From<ApiError> for ServiceError {
    fn from(e: ApiError) -> Self {
        ServiceError::Call(IntegrationError::Api(e))
    }
}

impl ServiceError {
    /// The API error inside, if this is one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            ServiceError::Call(IntegrationError::Api(e)) => Some(e),
            _ => None,
        }
    }
}

/// Carries out `op` of the service `kind`.
pub async fn run(all: &Integrations, kind: &str, op: &ServiceOp) -> Result<Value, ServiceError> {
    match Provider::parse(kind).ok().and_then(|p| p.spec().run) {
        Some(run) => run(all, op).await,
        None => Err(ServiceError::Input(format!(
            "no integration serves `{kind}`"
        ))),
    }
}

/// An operation the provider's module does not have (the action kind's table is checked at
/// load, so this is a mismatch between the two).
pub(crate) fn unknown_op(kind: &str, op: &ServiceOp) -> ServiceError {
    ServiceError::Input(format!("{kind} has no operation `{}`", op.op))
}

/// Argument `name` of `op`, which the kind's table says it needs.
pub(crate) fn need(op: &ServiceOp, name: &str) -> Result<String, ServiceError> {
    op.text(name)
        .ok_or_else(|| ServiceError::Input(format!("`{name}` is empty")))
}

/// An authorised call to `p` with its answer's headers.
pub(crate) async fn call_full(
    all: &Integrations,
    p: Provider,
    req: &Request,
) -> Result<Answer, ServiceError> {
    let account = all.account(p)?;
    Ok(api::call_full(&account, req).await?)
}

/// An authorised call to `p`.
pub(crate) async fn call(
    all: &Integrations,
    p: Provider,
    req: &Request,
) -> Result<Value, ServiceError> {
    Ok(call_full(all, p, req).await?.body)
}

/// `p`'s API base joined with `path`.
pub(crate) fn url(all: &Integrations, p: Provider, path: &str) -> String {
    format!("{}{path}", all.api_url(p))
}

/// Whether `s` is safe as one path segment (ids, `owner` or `name` of a repository).
pub(crate) fn segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}
