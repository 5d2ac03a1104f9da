//! Authorised calls to a provider's REST API: the credential from [`Account::access_token`] in
//! the header the provider wants ([`AuthHeader`]), a 401 (or Slack's `invalid_auth`-like
//! `{"ok": false}`) answered by one refresh and one retry ([`Account::after_unauthorized`]; a
//! pasted token that is refused marks the account `needs_reauth`), and rate limits waited out,
//! bounded: a 429, Google's 403 `rateLimitExceeded`, GitHub's 403/429 with
//! `x-ratelimit-remaining: 0` (until `x-ratelimit-reset`) or a `retry-after`, a 503 with
//! `Retry-After` (Microsoft Graph), Discord's
//! `retry_after` in the body; each wait is at most [`MAX_RETRY_AFTER`] and at most
//! [`RATE_RETRIES`] of them, else [`ApiError::RateLimited`]. Before sending, the account's
//! [`super::pace::Pacer`] spaces calls the request names a pace for, and a Discord bucket
//! reported empty (`x-ratelimit-remaining: 0`, `x-ratelimit-reset-after`) holds back the next
//! call with that key.
//!
//! Error bodies are read in every provider's shape (Google's `error.message`, GitHub's and
//! Discord's `message`, Notion's `code` + `message`, Spotify's `error.reason`, Binance's
//! `code` + `msg`, Slack's `error`) into one [`ApiError::Http`] a user can read.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::AuthHeader;
use super::account::{Account, AccountError};

/// How many times a rate-limited call is retried.
pub const RATE_RETRIES: u32 = 3;

/// The longest `Retry-After` waited for; a longer one fails the call with it.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Slack's `error` values that mean the token is no good.
const SLACK_AUTH_ERRORS: &[&str] = &[
    "invalid_auth",
    "not_authed",
    "token_revoked",
    "token_expired",
    "account_inactive",
];

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
        /// The provider's error message (or the status text).
        message: String,
        /// The provider's error code or reason, if given.
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

    /// The provider's error code or reason, if any.
    pub fn reason(&self) -> Option<&str> {
        match self {
            ApiError::Http { reason, .. } => reason.as_deref(),
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
    /// How the credential is sent.
    pub auth: AuthHeader,
    /// More headers.
    pub headers: Vec<(String, String)>,
    /// Whether `{"ok": false}` in a 200 is an error (Slack).
    pub ok_field: bool,
    /// Pace: calls with this key go at most once per interval, and wait for a bucket the
    /// server reported empty.
    pub pace: Option<(String, Duration)>,
}

impl Request {
    /// A `method` request of `url`, bearer auth.
    pub fn new(method: Method, url: impl Into<String>) -> Request {
        Request {
            method,
            url: url.into(),
            query: Vec::new(),
            body: None,
            auth: AuthHeader::Bearer,
            headers: Vec::new(),
            ok_field: false,
            pace: None,
        }
    }

    /// A GET of `url`.
    pub fn get(url: impl Into<String>) -> Request {
        Request::new(Method::GET, url)
    }

    /// A POST of `body` to `url`.
    pub fn post(url: impl Into<String>, body: Value) -> Request {
        Request::new(Method::POST, url).json(body)
    }

    /// Adds a query pair.
    pub fn query(mut self, k: &str, v: impl Into<String>) -> Request {
        self.query.push((k.to_owned(), v.into()));
        self
    }

    /// Sets the JSON body.
    pub fn json(mut self, body: Value) -> Request {
        self.body = Some(body);
        self
    }

    /// Paces calls with `key` to one per `every` (and holds them for an emptied bucket).
    pub fn paced(mut self, key: impl Into<String>, every: Duration) -> Request {
        self.pace = Some((key.into(), every));
        self
    }
}

/// An answer: its JSON (`null` for an empty body) and headers (paging links, rate limits).
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status.
    pub status: u16,
    /// The body.
    pub body: Value,
    /// The headers.
    pub headers: HeaderMap,
}

impl Answer {
    /// The URL of the next page from a `Link: <..>; rel="next"` header (GitHub).
    pub fn next_link(&self) -> Option<String> {
        let link = self.headers.get(reqwest::header::LINK)?.to_str().ok()?;
        link.split(',').find_map(|part| {
            let (url, rel) = part.split_once(';')?;
            rel.contains("rel=\"next\"").then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
        })
    }
}

/// Sends `req` for `account`; see the module docs. The answer's JSON.
pub async fn call(account: &Account, req: &Request) -> Result<Value, ApiError> {
    Ok(call_full(account, req).await?.body)
}

/// Like [`call`], with the status and headers.
pub async fn call_full(account: &Account, req: &Request) -> Result<Answer, ApiError> {
    let mut token = account.access_token().await?;
    let mut refreshed = false;
    let mut rate_tries = 0;
    loop {
        if let Some((key, every)) = &req.pace {
            account
                .pacer()
                .slot(key, *every, MAX_RETRY_AFTER)
                .await
                .map_err(|wait| rate_limited(account, wait))?;
        }
        let resp = send(account, req, &token).await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        if let Some((key, _)) = &req.pace {
            note_bucket(account, key, &headers);
        }
        let body = resp.bytes().await.map_err(|e| transport(account, e))?;
        let outcome = judge(account.name(), req.ok_field, status, &headers, &body);
        match outcome {
            Judged::Ok(body) => {
                return Ok(Answer {
                    status: status.as_u16(),
                    body,
                    headers,
                });
            }
            Judged::Unauthorized(_) if !refreshed => {
                refreshed = true;
                token = account.after_unauthorized(&token).await?;
            }
            Judged::Unauthorized(err) => return Err(err),
            Judged::RateLimited(wait) => {
                let wait = wait.unwrap_or(Duration::from_secs(1 << rate_tries));
                if rate_tries >= RATE_RETRIES || wait > MAX_RETRY_AFTER {
                    return Err(rate_limited(account, wait));
                }
                rate_tries += 1;
                tracing::info!(integration = %account.name(), wait_s = wait.as_secs_f64(), "rate-limited; waiting");
                tokio::time::sleep(wait).await;
            }
            Judged::Failed(err) => return Err(err),
        }
    }
}

/// What an answer means.
pub(crate) enum Judged {
    /// Success, with its JSON.
    Ok(Value),
    /// The credential was refused.
    Unauthorized(ApiError),
    /// Rate-limited; wait this long if the server said.
    RateLimited(Option<Duration>),
    /// Another error.
    Failed(ApiError),
}

/// What the answer `status`, `headers`, `body` from `service` means; `ok_field` for Slack.
pub(crate) fn judge(
    service: &str,
    ok_field: bool,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Judged {
    if status.is_success() {
        if body.is_empty() {
            return Judged::Ok(Value::Null);
        }
        let v: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return Judged::Failed(ApiError::Http {
                    service: service.to_owned(),
                    status: status.as_u16(),
                    message: format!("the answer is not JSON: {e}"),
                    reason: None,
                });
            }
        };
        if ok_field && v["ok"] == Value::Bool(false) {
            let error = v["error"].as_str().unwrap_or("unknown_error").to_owned();
            if error == "ratelimited" {
                return Judged::RateLimited(retry_after(headers));
            }
            let err = ApiError::Http {
                service: service.to_owned(),
                status: status.as_u16(),
                message: error.clone(),
                reason: Some(error.clone()),
            };
            if SLACK_AUTH_ERRORS.contains(&error.as_str()) {
                return Judged::Unauthorized(err);
            }
            return Judged::Failed(err);
        }
        return Judged::Ok(v);
    }
    let err = http_error(service, status, body);
    if status == StatusCode::UNAUTHORIZED {
        return Judged::Unauthorized(err);
    }
    if let Some(wait) = rate_limit(status, headers, &err, body) {
        return Judged::RateLimited(wait);
    }
    Judged::Failed(err)
}

/// Whether this error answer is a rate limit, and the wait the server named.
fn rate_limit(
    status: StatusCode,
    h: &HeaderMap,
    err: &ApiError,
    body: &[u8],
) -> Option<Option<Duration>> {
    let header = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
    let github_exhausted = header("x-ratelimit-remaining") == Some("0");
    let google = matches!(err, ApiError::Http { reason: Some(r), .. }
        if r == "rateLimitExceeded" || r == "userRateLimitExceeded");
    // A 503 with `Retry-After` is Microsoft Graph's other throttling answer.
    let limited = status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::SERVICE_UNAVAILABLE
            && h.contains_key(reqwest::header::RETRY_AFTER))
        || (status == StatusCode::FORBIDDEN
            && (google || github_exhausted || h.contains_key(reqwest::header::RETRY_AFTER)));
    if !limited {
        return None;
    }
    if let Some(w) = retry_after(h) {
        return Some(Some(w));
    }
    // Discord: `retry_after` (seconds, a float) in the JSON body.
    if let Some(w) = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["retry_after"].as_f64())
        .filter(|s| *s >= 0.0)
    {
        return Some(Some(Duration::from_secs_f64(w)));
    }
    // GitHub's primary limit: wait until the window resets.
    if github_exhausted
        && let Some(reset) = header("x-ratelimit-reset").and_then(|r| r.parse::<i64>().ok())
    {
        let secs = (reset - chrono::Utc::now().timestamp()).max(1) as u64;
        return Some(Some(Duration::from_secs(secs)));
    }
    Some(None)
}

/// A Discord bucket reported empty holds back the next call with `key`.
fn note_bucket(account: &Account, key: &str, h: &HeaderMap) {
    let header = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
    if header("x-ratelimit-remaining") == Some("0")
        && let Some(after) = header("x-ratelimit-reset-after").and_then(|v| v.parse::<f64>().ok())
        && after >= 0.0
    {
        account.pacer().block(key, Duration::from_secs_f64(after));
    }
}

async fn send(
    account: &Account,
    req: &Request,
    token: &str,
) -> Result<reqwest::Response, ApiError> {
    let mut b = account.http().request(req.method.clone(), &req.url);
    b = match req.auth {
        AuthHeader::Bearer => b.bearer_auth(token),
        AuthHeader::Bot => b.header(reqwest::header::AUTHORIZATION, format!("Bot {token}")),
        AuthHeader::Signed => b,
    };
    for (k, v) in &req.headers {
        b = b.header(k, v);
    }
    if !req.query.is_empty() {
        b = b.query(&req.query);
    }
    if let Some(body) = &req.body {
        b = b.json(body);
    }
    b.send().await.map_err(|e| transport(account, e))
}

pub(crate) fn transport(account: &Account, e: reqwest::Error) -> ApiError {
    ApiError::Transport {
        service: account.name().to_owned(),
        // Without the URL: a query may carry a search the user typed (or a signature).
        reason: e.without_url().to_string(),
    }
}

pub(crate) fn rate_limited(account: &Account, wait: Duration) -> ApiError {
    rate_limited_for(account.name(), wait)
}

pub(crate) fn rate_limited_for(service: &str, wait: Duration) -> ApiError {
    ApiError::RateLimited {
        service: service.to_owned(),
        retry_after: wait.as_secs_f64().ceil() as u64,
    }
}

/// The error of a non-2xx answer, from whichever provider's error shape it has.
pub(crate) fn http_error(service: &str, status: StatusCode, body: &[u8]) -> ApiError {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let e = &v["error"];
    let text = |x: &Value| x.as_str().map(str::to_owned);
    let message = text(&e["message"])
        .or_else(|| text(&v["message"]))
        .or_else(|| text(&v["msg"]))
        .or_else(|| text(&v["error_description"]))
        .or_else(|| text(e))
        .map(|m| m.chars().take(300).collect())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    let code = |x: &Value| match x {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let reason = text(&e["errors"][0]["reason"])
        .or_else(|| text(&e["reason"]))
        .or_else(|| text(&e["status"]))
        .or_else(|| code(&v["code"]).filter(|c| c != "0"))
        // Microsoft Graph: `error.code` is a word (`ErrorItemNotFound`).
        .or_else(|| text(&e["code"]))
        .or_else(|| text(e));
    ApiError::Http {
        service: service.to_owned(),
        status: status.as_u16(),
        message,
        reason,
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by these providers; it is ignored).
pub(crate) fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| *s >= 0.0)
        .map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason_and_message(body: &str, status: u16) -> (Option<String>, String) {
        match http_error("x", StatusCode::from_u16(status).unwrap(), body.as_bytes()) {
            ApiError::Http {
                reason, message, ..
            } => (reason, message),
            _ => unreachable!(),
        }
    }

    #[test]
    fn every_providers_error_shape_is_read() {
        let cases = [
            (
                r#"{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND"}}"#,
                404,
                Some("NOT_FOUND"),
                "Requested entity was not found.",
            ),
            (
                r#"{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}"#,
                401,
                None,
                "Bad credentials",
            ),
            (
                r#"{"message":"Missing Access","code":50001}"#,
                403,
                Some("50001"),
                "Missing Access",
            ),
            (
                r#"{"object":"error","status":404,"code":"object_not_found","message":"Could not find page."}"#,
                404,
                Some("object_not_found"),
                "Could not find page.",
            ),
            (
                r#"{"error":{"status":404,"message":"Player command failed: No active device found","reason":"NO_ACTIVE_DEVICE"}}"#,
                404,
                Some("NO_ACTIVE_DEVICE"),
                "Player command failed: No active device found",
            ),
            (
                r#"{"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}"#,
                401,
                Some("-2015"),
                "Invalid API-key, IP, or permissions for action.",
            ),
            ("<html>down</html>", 503, None, "Service Unavailable"),
        ];
        for (body, status, reason, message) in cases {
            let (r, m) = reason_and_message(body, status);
            assert_eq!((r.as_deref(), m.as_str()), (reason, message), "{body}");
        }
    }

    #[test]
    fn the_next_page_comes_from_the_link_header() {
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::LINK,
            "<https://api.github.com/notifications?page=2>; rel=\"next\", <https://api.github.com/notifications?page=5>; rel=\"last\""
                .parse()
                .unwrap(),
        );
        let a = Answer {
            status: 200,
            body: Value::Null,
            headers,
        };
        assert_eq!(
            a.next_link().as_deref(),
            Some("https://api.github.com/notifications?page=2")
        );
    }
}
