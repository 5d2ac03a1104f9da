//! Authorised calls to a provider's REST API: the bearer token from [`Account::access_token`], a
//! 401 answered by one refresh and one retry ([`Account::after_unauthorized`]), a 429 (or a 403
//! whose reason is a rate limit) waited out by its `Retry-After` (capped) up to
//! [`RATE_RETRIES`] times, and Google's error body (`{"error": {"code", "message", "status",
//! "errors": [{"reason"}]}}`) turned into an error a user can read.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::account::{Account, AccountError};

/// How many times a rate-limited call is retried.
pub const RATE_RETRIES: u32 = 3;

/// The longest `Retry-After` waited for; a longer one fails the call with it.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Why an API call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// No usable token.
    #[error(transparent)]
    Account(#[from] AccountError),
    /// The API refused.
    #[error("{service} answered HTTP {status}: {message}")]
    Http {
        /// Which integration.
        service: String,
        /// The status.
        status: u16,
        /// Google's `error.message` (or the status text).
        message: String,
        /// Google's `errors[0].reason` or `error.status`, if given.
        reason: Option<String>,
    },
    /// Still rate-limited after the retries (or asked to wait too long).
    #[error("{service} is rate-limiting Atlas: try again in {retry_after} s")]
    RateLimited {
        /// Which integration.
        service: String,
        /// Seconds the server asked for.
        retry_after: u64,
    },
    /// The request did not get an answer.
    #[error("{service} could not be reached: {reason}")]
    Transport {
        /// Which integration.
        service: String,
        /// Why.
        reason: String,
    },
}

impl ApiError {
    /// The HTTP status, for errors that have one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Http { status, .. } => Some(*status),
            ApiError::RateLimited { .. } => Some(429),
            _ => None,
        }
    }
}

/// One request's shape.
#[derive(Debug, Clone)]
pub struct Request {
    /// GET, POST, ...
    pub method: Method,
    /// The full URL.
    pub url: String,
    /// Query pairs.
    pub query: Vec<(String, String)>,
    /// A JSON body.
    pub body: Option<Value>,
}

impl Request {
    /// A GET of `url`.
    pub fn get(url: impl Into<String>) -> Request {
        Request {
            method: Method::GET,
            url: url.into(),
            query: Vec::new(),
            body: None,
        }
    }

    /// A POST of `body` to `url`.
    pub fn post(url: impl Into<String>, body: Value) -> Request {
        Request {
            method: Method::POST,
            url: url.into(),
            query: Vec::new(),
            body: Some(body),
        }
    }

    /// Adds a query pair.
    pub fn query(mut self, k: &str, v: impl Into<String>) -> Request {
        self.query.push((k.to_owned(), v.into()));
        self
    }
}

/// Sends `req` for `account`; see the module docs. The answer's JSON (`null` for an empty body).
pub async fn call(account: &Account, req: &Request) -> Result<Value, ApiError> {
    let mut token = account.access_token().await?;
    let mut refreshed = false;
    let mut rate_tries = 0;
    loop {
        let resp = send(account, req, &token).await?;
        let status = resp.status();
        let retry_after = retry_after(resp.headers());
        let body = resp.bytes().await.map_err(|e| transport(account, e))?;
        if status.is_success() {
            if body.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&body).map_err(|e| ApiError::Http {
                service: account.name().to_owned(),
                status: status.as_u16(),
                message: format!("the answer is not JSON: {e}"),
                reason: None,
            });
        }
        let err = http_error(account, status, &body);
        if status == StatusCode::UNAUTHORIZED && !refreshed {
            refreshed = true;
            token = account.after_unauthorized(&token).await?;
            continue;
        }
        if is_rate_limit(status, &err) {
            let wait = retry_after.unwrap_or(Duration::from_secs(1 << rate_tries));
            if rate_tries >= RATE_RETRIES || wait > MAX_RETRY_AFTER {
                return Err(ApiError::RateLimited {
                    service: account.name().to_owned(),
                    retry_after: wait.as_secs(),
                });
            }
            rate_tries += 1;
            tracing::info!(integration = %account.name(), wait_s = wait.as_secs_f64(), "rate-limited; waiting");
            tokio::time::sleep(wait).await;
            continue;
        }
        return Err(err);
    }
}

async fn send(
    account: &Account,
    req: &Request,
    token: &str,
) -> Result<reqwest::Response, ApiError> {
    let mut b = account
        .http()
        .request(req.method.clone(), &req.url)
        .bearer_auth(token);
    if !req.query.is_empty() {
        b = b.query(&req.query);
    }
    if let Some(body) = &req.body {
        b = b.json(body);
    }
    b.send().await.map_err(|e| transport(account, e))
}

fn transport(account: &Account, e: reqwest::Error) -> ApiError {
    ApiError::Transport {
        service: account.name().to_owned(),
        // Without the URL: a query may carry a search the user typed.
        reason: e.without_url().to_string(),
    }
}

fn http_error(account: &Account, status: StatusCode, body: &[u8]) -> ApiError {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let e = &v["error"];
    let message = e["message"]
        .as_str()
        .or_else(|| e.as_str())
        .map(|m| m.chars().take(300).collect())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    let reason = e["errors"][0]["reason"]
        .as_str()
        .or_else(|| e["status"].as_str())
        .map(str::to_owned);
    ApiError::Http {
        service: account.name().to_owned(),
        status: status.as_u16(),
        message,
        reason,
    }
}

fn is_rate_limit(status: StatusCode, err: &ApiError) -> bool {
    if status == StatusCode::TOO_MANY_REQUESTS {
        return true;
    }
    matches!(err, ApiError::Http { status: 403, reason: Some(r), .. }
        if r == "rateLimitExceeded" || r == "userRateLimitExceeded")
}

/// `Retry-After` in seconds (the HTTP-date form is not used by Google; it is ignored).
fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| *s >= 0.0)
        .map(Duration::from_secs_f64)
}
