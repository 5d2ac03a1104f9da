//! The `http` action: one request, JSON or text back, non-2xx an error unless allowed.
//!
//! The answer's body is read up to `max_bytes` (see `body`). A refused status is an
//! [`ActionError::Status`] carrying the server's `Retry-After`, which retries honour; whether a
//! status is worth retrying at all is [`ActionError::is_retryable`]'s call (429 and 5xx are).

use std::collections::BTreeMap;

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::body::{ByteLimit, Over, decode_text, read_response};
use super::{ActionCtx, ActionError, ActionKind, LeafKind};
use crate::spec::{Dur, MAX_RETRY_DELAY, MAX_TIMEOUT, Problem, too_long};
use crate::template::{TValue, Tmpl};

/// The `http` kind.
pub struct Http;

impl ActionKind for Http {
    const NAME: &'static str = "http";
    const DOC: &'static str = "HTTP request.";
    type Config = HttpConfig;

    /// A request's `timeout` is at most [`MAX_TIMEOUT`] (30 days).
    fn check(c: &HttpConfig) -> Vec<Problem> {
        match c.timeout {
            Some(t) if t.0 > MAX_TIMEOUT => vec![Problem::new(
                "timeout",
                too_long("a timeout of", t.0, MAX_TIMEOUT, "30 days"),
            )],
            _ => Vec::new(),
        }
    }
}

impl LeafKind for Http {
    async fn execute(c: &HttpConfig, ctx: &ActionCtx<'_>) -> Result<Value, ActionError> {
        let url = c.url.render(ctx.scope)?;
        let req = request(c, ctx, &url)?;
        let resp = tokio::select! {
            r = req.send() => r.map_err(|e| failed(&url, error_chain(&e)))?,
            _ = ctx.cancel.cancelled() => return Err(ActionError::Cancelled),
        };
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let headers: serde_json::Map<String, Value> = resp
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.to_string(), Value::String(v.to_str().ok()?.to_owned()))))
            .collect();
        let allowed = (200..300).contains(&status)
            || match &c.allow_status {
                AllowStatus::Any(any) => *any,
                AllowStatus::List(list) => list.contains(&status),
                AllowStatus::None => false,
            };
        if !allowed {
            return Err(refused(resp, url, content_type.as_deref(), ctx).await);
        }
        let bytes = tokio::select! {
            r = read_response(resp, c.max_bytes, Over::Fail, &url) => r?,
            _ = ctx.cancel.cancelled() => return Err(ActionError::Cancelled),
        };
        let body = decode_body(&bytes, content_type.as_deref(), c.response, &url)?;
        Ok(json!({ "status": status, "headers": headers, "body": body }))
    }
}

/// Config of `http`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// The URL.
    pub url: Tmpl,
    /// GET, POST, PUT, PATCH, DELETE, HEAD.
    #[serde(default = "default_method")]
    pub method: String,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, Tmpl>,
    /// Query parameters added to the URL.
    #[serde(default)]
    pub query: BTreeMap<String, Tmpl>,
    /// JSON body.
    #[serde(default)]
    pub json: Option<TValue>,
    /// Form body (`application/x-www-form-urlencoded`).
    #[serde(default)]
    pub form: Option<BTreeMap<String, Tmpl>>,
    /// Text body.
    #[serde(default)]
    pub body: Option<Tmpl>,
    /// Per-request timeout (the action's `timeout` bounds retries as a whole per attempt too).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Statuses accepted besides 2xx, or `true` for any.
    #[serde(default)]
    pub allow_status: AllowStatus,
    /// How to read the answer: `auto` (JSON if it says so), `json` or `text`.
    #[serde(default)]
    pub response: ResponseKind,
    /// Cap on the answer's body (default 10 MiB, at most 256 MiB); a longer one fails the action.
    #[serde(default)]
    pub max_bytes: ByteLimit,
}

fn default_method() -> String {
    "GET".into()
}

/// Which non-2xx statuses an `http` action accepts.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(untagged)]
pub enum AllowStatus {
    /// `true`: any status; `false`: only 2xx.
    Any(bool),
    /// These statuses too.
    List(Vec<u16>),
    /// Only 2xx.
    #[default]
    #[serde(skip)]
    None,
}

/// How the body of the answer is read.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResponseKind {
    /// JSON when the content type says so (or the text parses as JSON), else text.
    #[default]
    Auto,
    /// JSON, or an error.
    Json,
    /// Text.
    Text,
}

fn render_map(
    m: &BTreeMap<String, Tmpl>,
    ctx: &ActionCtx<'_>,
) -> Result<Vec<(String, String)>, ActionError> {
    m.iter()
        .map(|(k, v)| Ok((k.clone(), v.render(ctx.scope)?)))
        .collect()
}

fn failed(url: &str, reason: String) -> ActionError {
    ActionError::Http {
        url: url.to_owned(),
        reason,
    }
}

/// The request the config describes, its templates rendered.
fn request(
    c: &HttpConfig,
    ctx: &ActionCtx<'_>,
    url: &str,
) -> Result<reqwest::RequestBuilder, ActionError> {
    let method =
        reqwest::Method::from_bytes(c.method.to_ascii_uppercase().as_bytes()).map_err(|_| {
            ActionError::Method {
                method: c.method.clone(),
            }
        })?;
    let client = ctx
        .services
        .http
        .get()
        .map_err(|e| failed(url, error_chain(&e)))?;
    let mut req = client.request(method, url);
    for (k, v) in render_map(&c.headers, ctx)? {
        req = req.header(k, v);
    }
    if !c.query.is_empty() {
        req = req.query(&render_map(&c.query, ctx)?);
    }
    if let Some(j) = &c.json {
        req = req.json(&j.render(ctx.scope)?);
    } else if let Some(f) = &c.form {
        req = req.form(&render_map(f, ctx)?);
    } else if let Some(b) = &c.body {
        req = req.body(b.render(ctx.scope)?);
    }
    if let Some(t) = c.timeout {
        req = req.timeout(t.0);
    }
    Ok(req)
}

/// The error for an answer whose status the action does not accept: the start of its body,
/// masked, and the wait the server asked for.
async fn refused(
    resp: reqwest::Response,
    url: String,
    content_type: Option<&str>,
    ctx: &ActionCtx<'_>,
) -> ActionError {
    let status = resp.status().as_u16();
    let retry_after = retry_after(resp.headers(), chrono::Utc::now());
    // Only the start of a refused answer is shown: read no more than that.
    let bytes = tokio::select! {
        r = read_response(resp, ERROR_BODY_CAP, Over::Truncate, &url) => match r {
            Ok(bytes) => bytes,
            Err(e) => return e,
        },
        _ = ctx.cancel.cancelled() => return ActionError::Cancelled,
    };
    // Masked before it is cut: a cut through a secret would leave its start unmasked.
    let text = decode_text(&bytes, content_type);
    let body: String = ctx.redactor.text(&text).chars().take(300).collect();
    ActionError::Status {
        url,
        status,
        body,
        retry_after,
    }
}

/// The answer's body as the config's `response` asks: JSON, text, or JSON when it is.
fn decode_body(
    bytes: &[u8],
    content_type: Option<&str>,
    response: ResponseKind,
    url: &str,
) -> Result<Value, ActionError> {
    let is_json_type = content_type.is_some_and(|v| v.contains("json"));
    let text = decode_text(bytes, content_type);
    Ok(match response {
        ResponseKind::Text => Value::String(text),
        ResponseKind::Json => serde_json::from_str(&text)
            .map_err(|e| failed(url, format!("the answer is not JSON: {e}")))?,
        ResponseKind::Auto if is_json_type => serde_json::from_str(&text)
            .map_err(|e| failed(url, format!("the answer says JSON but does not parse: {e}")))?,
        ResponseKind::Auto => serde_json::from_str(&text).unwrap_or(Value::String(text)),
    })
}

/// How much of a refused answer is read, to show its start in the error.
const ERROR_BODY_CAP: ByteLimit = ByteLimit(64 * 1024);

/// The wait a `Retry-After` header asks for: delay-seconds or an HTTP-date (RFC 9110 10.2.3),
/// at most [`MAX_RETRY_DELAY`]; `None` when absent or unreadable.
pub(super) fn retry_after(
    headers: &reqwest::header::HeaderMap,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let wait = match v.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
            (at.with_timezone(&chrono::Utc) - now)
                .to_std()
                .unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(MAX_RETRY_DELAY))
}

/// reqwest's top error says little ("error sending request"); its sources say why.
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(v: &str) -> reqwest::header::HeaderMap {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, v.parse().unwrap());
        h
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates_and_is_capped() {
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            retry_after(&headers("120"), now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:28:30 GMT"), now),
            Some(Duration::from_secs(30))
        );
        // A date already past: try again now.
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:00:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            retry_after(&headers("99999999"), now),
            Some(MAX_RETRY_DELAY)
        );
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&reqwest::header::HeaderMap::new(), now), None);
    }
}
