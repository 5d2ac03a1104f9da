//! The `llm` action: a chat completion from any OpenAI-compatible server (OpenAI, Ollama,
//! llama.cpp's server, vLLM), `POST {base_url}/chat/completions`.

use serde::Deserialize;
use serde_json::{Value, json};

use super::body::{ByteLimit, Over, read_response};
use super::http::{error_chain, retry_after};
use super::{ActionCtx, ActionError, ActionKind, LeafKind, LlmError};
use crate::template::{TValue, Tmpl};

/// The `llm` kind.
pub struct Llm;

impl ActionKind for Llm {
    const NAME: &'static str = "llm";
    const DOC: &'static str = "Chat completion from an OpenAI-compatible server.";
    type Config = LlmConfig;
}

impl LeafKind for Llm {
    async fn execute(c: &LlmConfig, ctx: &ActionCtx<'_>) -> Result<Value, ActionError> {
        let defaults = &ctx.services.llm;
        let base = match &c.base_url {
            Some(t) => t.render(ctx.scope)?,
            None => defaults.base_url.clone(),
        };
        let model = match &c.model {
            Some(t) => t.render(ctx.scope)?,
            None => defaults.model.clone(),
        };
        let key = match (&c.api_key, &defaults.api_key_secret) {
            (Some(t), _) => Some(t.render(ctx.scope)?),
            (None, Some(name)) => ctx.secret(name).map_err(LlmError::from)?,
            (None, None) => None,
        };
        let mut body = json!({ "model": model, "messages": messages(c, ctx)?, "stream": false });
        if let Some(t) = c.temperature {
            body["temperature"] = json!(t);
        }
        if let Some(m) = c.max_tokens {
            body["max_tokens"] = json!(m);
        }
        let url = format!("{}/chat/completions", base.trim_end_matches('/'));
        let answer = complete(c, ctx, &url, &body, key).await?;
        let text = answer["choices"][0]["message"]["content"]
            .as_str()
            .ok_or_else(|| LlmError::NoContent {
                answer: answer.to_string(),
            })?;
        Ok(json!({
            "text": text,
            "model": answer["model"].as_str().unwrap_or(&model),
            "usage": answer.get("usage").cloned().unwrap_or(Value::Null),
        }))
    }
}

/// Config of `llm`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmConfig {
    /// The user's message.
    #[serde(default)]
    pub prompt: Option<Tmpl>,
    /// A system message put first.
    #[serde(default)]
    pub system: Option<Tmpl>,
    /// Full message list instead of `prompt` (`[{role, content}]`).
    #[serde(default)]
    pub messages: Option<TValue>,
    /// Overrides the configured model.
    #[serde(default)]
    pub model: Option<Tmpl>,
    /// Overrides the configured base URL.
    #[serde(default)]
    pub base_url: Option<Tmpl>,
    /// API key, usually `{{ secrets.openai }}`; default the configured secret.
    #[serde(default)]
    pub api_key: Option<Tmpl>,
    /// Sampling temperature.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Cap on the answer's length.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Cap on the answer's size in bytes (default 10 MiB, at most 256 MiB).
    #[serde(default)]
    pub max_bytes: ByteLimit,
}

/// The message list: `messages` as given, or `system` and `prompt`.
fn messages(c: &LlmConfig, ctx: &ActionCtx<'_>) -> Result<Value, ActionError> {
    Ok(match (&c.messages, &c.prompt) {
        (Some(m), _) => m.render(ctx.scope)?,
        (None, Some(p)) => {
            let mut m = Vec::new();
            if let Some(s) = &c.system {
                m.push(json!({"role": "system", "content": s.render(ctx.scope)?}));
            }
            m.push(json!({"role": "user", "content": p.render(ctx.scope)?}));
            Value::Array(m)
        }
        (None, None) => return Err(LlmError::NoPrompt.into()),
    })
}

/// Posts `body` to `url` and reads the answer as JSON; a non-2xx answer is a status error.
async fn complete(
    c: &LlmConfig,
    ctx: &ActionCtx<'_>,
    url: &str,
    body: &Value,
    key: Option<String>,
) -> Result<Value, ActionError> {
    let http_error = |reason| ActionError::Http {
        url: url.to_owned(),
        reason,
    };
    let client = ctx
        .services
        .http
        .get()
        .map_err(|e| http_error(error_chain(&e)))?;
    let mut req = client.post(url).json(body);
    if let Some(k) = key {
        // An API key is a secret wherever it came from (a literal in the file too).
        ctx.redactor.add(&k);
        req = req.bearer_auth(k);
    }
    let resp = tokio::select! {
        r = req.send() => r.map_err(|e| http_error(error_chain(&e)))?,
        _ = ctx.cancel.cancelled() => return Err(ActionError::Cancelled),
    };
    let status = resp.status().as_u16();
    let retry_after = retry_after(resp.headers(), chrono::Utc::now());
    let bytes = tokio::select! {
        r = read_response(resp, c.max_bytes, Over::Fail, url) => r?,
        _ = ctx.cancel.cancelled() => return Err(ActionError::Cancelled),
    };
    let parsed = serde_json::from_slice::<Value>(&bytes);
    if !(200..300).contains(&status) {
        // A refusal is a status error (so a 4xx is not retried) whatever its body is made of.
        let msg = match &parsed {
            Ok(answer) => answer["error"]["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| answer.to_string()),
            Err(_) => String::from_utf8_lossy(&bytes).chars().take(300).collect(),
        };
        return Err(ActionError::Status {
            url: url.to_owned(),
            status,
            body: msg,
            retry_after,
        });
    }
    parsed.map_err(|e| http_error(format!("answer is not JSON: {e}")))
}
