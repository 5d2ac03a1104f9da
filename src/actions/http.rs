//! The `http` action: one request, JSON or text back, non-2xx an error unless allowed.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{ActionCtx, ActionError};
use crate::template::{TValue, Tmpl};
use crate::workflow::Dur;

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

pub(super) async fn run(c: &HttpConfig, ctx: &ActionCtx<'_>) -> Result<Value, ActionError> {
    let url = c.url.render(ctx.scope)?;
    let method = reqwest::Method::from_bytes(c.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| ActionError::Failed(format!("`{}` is not an HTTP method", c.method)))?;
    let fail = |reason: String| ActionError::Http {
        url: url.clone(),
        reason,
    };
    let mut req = ctx.services.http.request(method, &url);
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
    let resp = tokio::select! {
        r = req.send() => r.map_err(|e| fail(error_chain(&e)))?,
        _ = ctx.cancel.cancelled() => return Err(ActionError::Cancelled),
    };
    let status = resp.status().as_u16();
    let is_json_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let headers: serde_json::Map<String, Value> = resp
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.to_string(), Value::String(v.to_str().ok()?.to_owned()))))
        .collect();
    let text = tokio::select! {
        r = resp.text() => r.map_err(|e| fail(error_chain(&e)))?,
        _ = ctx.cancel.cancelled() => return Err(ActionError::Cancelled),
    };
    let allowed = (200..300).contains(&status)
        || match &c.allow_status {
            AllowStatus::Any(any) => *any,
            AllowStatus::List(list) => list.contains(&status),
            AllowStatus::None => false,
        };
    if !allowed {
        // Masked before it is cut: a cut through a secret would leave its start unmasked.
        let body: String = ctx.redactor.text(&text).chars().take(300).collect();
        return Err(ActionError::Status { url, status, body });
    }
    let body = match c.response {
        ResponseKind::Text => Value::String(text),
        ResponseKind::Json => {
            serde_json::from_str(&text).map_err(|e| fail(format!("the answer is not JSON: {e}")))?
        }
        ResponseKind::Auto if is_json_type => serde_json::from_str(&text)
            .map_err(|e| fail(format!("the answer says JSON but does not parse: {e}")))?,
        ResponseKind::Auto => serde_json::from_str(&text).unwrap_or(Value::String(text)),
    };
    Ok(json!({ "status": status, "headers": headers, "body": body }))
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
