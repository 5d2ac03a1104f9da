//! Webhook deliveries: `POST /hooks/<path>` starts the workflow whose `webhook` trigger has that
//! path, once its sender is proven.
//!
//! In order, each refusal recorded (`webhook_deliveries`, with why) and starting nothing: a path
//! no workflow claims (404); a body over `api.max_body_bytes` (413, read no further); the secret
//! missing from the secret store (503); a signature that is missing, malformed, does not match
//! the raw bytes or carries a stale timestamp (401, `triggers::signature`); a delivery id already
//! accepted, in this process or (from the store) before a restart (409); a body declared JSON
//! that does not parse (400); the engine refusing the run (409 disabled or run mode, 503 shutting
//! down). Otherwise the run is queued and answered 202 at once, not when it ends.
//!
//! The run's trigger data (`trigger.*` in templates): `body` (JSON when it parses as JSON, else
//! the text), `headers` (only [`HEADERS`]: never a signature or a credential), `query`, `path`,
//! `delivery`. The secret is read from the secret store per delivery, registered with the
//! process redactor, and never written anywhere.
//!
//! **Invariant**: an accepted delivery id starts exactly one run: the id is claimed in memory
//! under a lock before the store is asked, so two concurrent copies cannot both pass; a claim
//! whose run was refused is released so the sender's retry can succeed.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Digest;

use super::{Api, ApiError};
use crate::engine::{EngineError, RunRequest, TriggerEvent};
use crate::spec::{hook_path, secret_ref};
use crate::store::{Delivery, Op, now_ms};
use crate::triggers::signature::{self, Scheme};
use crate::workflow::{TriggerDef, Workflow};

/// Headers a run sees as `trigger.headers` (lowercase).
pub const HEADERS: &[&str] = &[
    "content-type",
    "user-agent",
    "x-github-event",
    "x-github-delivery",
    "x-github-hook-id",
    "x-slack-retry-num",
    "x-slack-retry-reason",
    "webhook-id",
    "webhook-timestamp",
    "x-request-id",
];

/// Delivery ids claimed by this process, per hook.
#[derive(Default)]
pub(super) struct Seen {
    claimed: Mutex<HashSet<(String, String)>>,
}

impl Seen {
    fn claim(&self, hook: &str, id: &str) -> bool {
        self.lock().insert((hook.to_owned(), id.to_owned()))
    }

    fn release(&self, hook: &str, id: &str) {
        self.lock().remove(&(hook.to_owned(), id.to_owned()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<(String, String)>> {
        self.claimed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a refusal that happened before the handler (the origin guard).
    pub(super) fn record_refused(&self, api: &Api, hook: &str, status: u16, reason: &str) {
        record(api, Record::refused(hook, None, None, status, reason));
    }
}

/// The hook path of a request path `/hooks/...`.
pub(super) fn hook_of(path: &str) -> &str {
    hook_path(path.strip_prefix("/hooks").unwrap_or(path))
}

struct Record {
    d: Delivery,
}

impl Record {
    fn refused(
        hook: &str,
        workflow: Option<&str>,
        id: Option<&str>,
        status: u16,
        reason: &str,
    ) -> Record {
        Record {
            d: Delivery {
                hook: hook.to_owned(),
                workflow_id: workflow.map(str::to_owned),
                delivery_id: id.map(str::to_owned),
                accepted: false,
                status,
                reason: Some(crate::redact::process().text(reason)),
                run_id: None,
                at: now_ms(),
            },
        }
    }
}

fn record(api: &Api, r: Record) {
    if !r.d.accepted && r.d.status >= 400 {
        tracing::warn!(hook = %r.d.hook, status = r.d.status, reason = r.d.reason.as_deref().unwrap_or(""), "webhook delivery refused");
    }
    api.engine.store().send(Op::Delivery(r.d));
}

/// A refusal: recorded, answered.
struct Refused {
    status: StatusCode,
    error: ApiError,
}

fn refuse(api: &Api, hook: &str, wf: Option<&str>, id: Option<&str>, error: ApiError) -> Refused {
    let status = error.status();
    record(
        api,
        Record::refused(hook, wf, id, status.as_u16(), &error.to_string()),
    );
    Refused { status, error }
}

/// The workflow claiming `hook`, with its trigger's scheme and secret.
fn claimant(api: &Api, hook: &str) -> Result<(Arc<Workflow>, Scheme, Option<String>), ApiError> {
    let mut found = Vec::new();
    for w in api.engine.workflows().values() {
        for t in &w.def.triggers {
            if let TriggerDef::Webhook {
                path,
                secret,
                scheme,
            } = t
                && hook_path(path) == hook
            {
                found.push((w.clone(), scheme.unwrap_or(Scheme::None), secret.clone()));
            }
        }
    }
    match found.len() {
        0 => Err(ApiError::NotFound(format!(
            "no workflow has a webhook trigger at /hooks/{hook}"
        ))),
        1 => Ok(found.remove(0)),
        _ => {
            let ids: Vec<&str> = found.iter().map(|(w, _, _)| w.id()).collect();
            Err(ApiError::Conflict(format!(
                "/hooks/{hook} is claimed by several workflows ({}): give each its own path",
                ids.join(", ")
            )))
        }
    }
}

/// The secret's value from the secret store, registered with the redactor.
fn secret_value(api: &Api, reference: Option<&str>) -> Result<String, ApiError> {
    let name = reference.and_then(secret_ref).ok_or_else(|| {
        ApiError::Unavailable("the webhook trigger has no usable secret reference".into())
    })?;
    let value = api
        .engine
        .services()
        .secrets
        .get(name)
        .map_err(|e| ApiError::Unavailable(e.to_string()))?
        .ok_or_else(|| {
            ApiError::Unavailable(format!(
                "the webhook's secret `{name}` is not in the secret store (set ATLAS_SECRET_{})",
                name.to_ascii_uppercase().replace('-', "_")
            ))
        })?;
    crate::redact::process().add(&value);
    Ok(value)
}

/// The id that refuses a replay: the scheme's delivery id, or for Slack (which has none) a hash
/// of the signature header (a replay carries the same one; a retry is signed anew).
fn replay_key(
    scheme: Scheme,
    verified: &signature::Verified,
    headers: &HeaderMap,
) -> Option<String> {
    if let Some(id) = &verified.delivery {
        return Some(id.clone());
    }
    if scheme == Scheme::Slack {
        let sig = headers.get("x-slack-signature")?.as_bytes();
        return Some(format!(
            "slack-sig:{}",
            hex::encode(&sha2::Sha256::digest(sig)[..16])
        ));
    }
    None
}

fn is_json(headers: &HeaderMap) -> bool {
    super::media_type(headers).is_some_and(|ct| ct == "application/json" || ct.ends_with("+json"))
}

/// The body as templates see it: JSON when declared or shaped so and parsing, else text.
fn body_value(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    if is_json(headers) {
        return serde_json::from_slice(body).map_err(|e| {
            ApiError::BadRequest(format!(
                "the body is declared JSON but does not parse: {e} (line {}, column {})",
                e.line(),
                e.column()
            ))
        });
    }
    if let Ok(v) = serde_json::from_slice::<Value>(body)
        && (v.is_object() || v.is_array())
    {
        return Ok(v);
    }
    Ok(Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// The most of a refused body that is read and dropped before the answer, so that the sender,
/// still writing, reads the 413 instead of a reset connection. A bigger one is cut off.
const DRAIN_MAX: u64 = 8 * 1024 * 1024;
/// How long the draining may take.
const DRAIN_FOR: std::time::Duration = std::time::Duration::from_secs(2);

type Chunks = futures::stream::BoxStream<'static, Result<axum::body::Bytes, axum::Error>>;

/// The body if it has at most `limit` bytes (`None` once it has more, or fails).
async fn read_bounded(stream: &mut Chunks, limit: usize) -> Option<Vec<u8>> {
    use futures::StreamExt;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.ok()?;
        if bytes.len() + chunk.len() > limit {
            return None;
        }
        bytes.extend_from_slice(&chunk);
    }
    Some(bytes)
}

/// Reads and drops what is left of a refused body, up to [`DRAIN_MAX`] bytes and
/// [`DRAIN_FOR`].
async fn drain(mut stream: Chunks) {
    use futures::StreamExt;
    let _ = tokio::time::timeout(DRAIN_FOR, async {
        let mut n = 0u64;
        while let Some(Ok(chunk)) = stream.next().await {
            n += chunk.len() as u64;
            if n > DRAIN_MAX {
                break;
            }
        }
    })
    .await;
}

/// `POST /hooks/{*path}`.
pub(super) async fn deliver(
    State(api): State<Arc<Api>>,
    UrlPath(path): UrlPath<String>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> (StatusCode, Json<Value>) {
    let hook = hook_path(&path).to_owned();
    match accept(&api, &hook, query, &headers, body).await {
        Ok(Accepted::Queued(v)) => (StatusCode::ACCEPTED, Json(v)),
        Ok(Accepted::Challenge(c)) => (StatusCode::OK, Json(json!({ "challenge": c }))),
        Err(r) => {
            let message = r.error.to_string();
            (
                r.status,
                Json(json!({"error": {"status": r.status.as_u16(), "message": message}})),
            )
        }
    }
}

/// What an accepted delivery got.
enum Accepted {
    /// A run is queued: `{run_id, workflow, delivery}`.
    Queued(Value),
    /// A signed Slack `url_verification` request: its challenge is echoed, nothing runs.
    Challenge(String),
}

/// The challenge of a Slack Events API `url_verification` request, which Slack sends (signed)
/// when the request URL is saved and expects echoed back.
fn slack_challenge(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    (v.get("type")?.as_str()? == "url_verification")
        .then(|| v.get("challenge")?.as_str().map(str::to_owned))
        .flatten()
}

async fn accept(
    api: &Api,
    hook: &str,
    query: BTreeMap<String, String>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Accepted, Refused> {
    let (wf, scheme, secret) = claimant(api, hook).map_err(|e| refuse(api, hook, None, None, e))?;
    let wid = Some(wf.id());
    let limit = api.config.api.max_body_bytes;
    let too_big = || {
        ApiError::TooLarge(format!(
            "the body is over the {limit} bytes accepted (api.max_body_bytes)"
        ))
    };
    let declared = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let mut stream: Chunks = futures::StreamExt::boxed(body.into_data_stream());
    if declared.is_some_and(|n| n > limit as u64) {
        if declared.is_some_and(|n| n <= DRAIN_MAX) {
            drain(stream).await;
        }
        return Err(refuse(api, hook, wid, None, too_big()));
    }
    let Some(bytes) = read_bounded(&mut stream, limit).await else {
        drain(stream).await;
        return Err(refuse(api, hook, wid, None, too_big()));
    };
    let verified = if scheme == Scheme::None {
        signature::Verified::default()
    } else {
        let key =
            secret_value(api, secret.as_deref()).map_err(|e| refuse(api, hook, wid, None, e))?;
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let now = now_ms() / 1000;
        signature::verify(scheme, &key, header, &bytes, now).map_err(|why| {
            let e = ApiError::BadSignature(format!("{} signature refused: {why}", scheme.name()));
            refuse(api, hook, wid, None, e)
        })?
    };
    if scheme == Scheme::Slack
        && let Some(challenge) = slack_challenge(&bytes)
    {
        let why = "Slack url_verification: challenge answered, nothing started";
        record(api, Record::refused(hook, wid, None, 200, why));
        tracing::info!(hook = %hook, "answered Slack's url_verification challenge");
        return Ok(Accepted::Challenge(challenge));
    }
    let key = replay_key(scheme, &verified, headers);
    if let Some(id) = &key {
        let replay = || {
            ApiError::Conflict(format!(
                "delivery `{id}` was already accepted: a replay starts nothing"
            ))
        };
        if !api.hooks.claim(hook, id) {
            return Err(refuse(api, hook, wid, Some(id), replay()));
        }
        match api.engine.store().delivery_accepted(hook, id) {
            Ok(false) => {}
            Ok(true) => return Err(refuse(api, hook, wid, Some(id), replay())),
            Err(e) => {
                api.hooks.release(hook, id);
                return Err(refuse(api, hook, wid, Some(id), e.into()));
            }
        }
    }
    let release = || {
        if let Some(id) = &key {
            api.hooks.release(hook, id);
        }
    };
    let body = body_value(headers, &bytes).map_err(|e| {
        release();
        refuse(api, hook, wid, key.as_deref(), e)
    })?;
    let shown: serde_json::Map<String, Value> = HEADERS
        .iter()
        .filter_map(|h| Some((h.to_string(), json!(headers.get(*h)?.to_str().ok()?))))
        .collect();
    let req = RunRequest {
        workflow_id: wf.id().to_owned(),
        trigger: TriggerEvent {
            kind: "webhook".into(),
            data: json!({"path": hook, "body": body, "headers": shown, "query": query, "delivery": key}),
        },
        vars: BTreeMap::new(),
        parent_run: None,
        depth: 0,
    };
    let handle = api.engine.trigger(req).map_err(|e: EngineError| {
        release();
        refuse(api, hook, wid, key.as_deref(), e.into())
    })?;
    record(
        api,
        Record {
            d: Delivery {
                hook: hook.to_owned(),
                workflow_id: wid.map(str::to_owned),
                delivery_id: key.clone(),
                accepted: true,
                status: 202,
                reason: None,
                run_id: Some(handle.id.clone()),
                at: now_ms(),
            },
        },
    );
    tracing::info!(hook = %hook, workflow = %wf.id(), run = %handle.id, "webhook delivery accepted");
    Ok(Accepted::Queued(
        json!({"run_id": handle.id, "workflow": wf.id(), "delivery": key}),
    ))
}

#[derive(Debug, Deserialize)]
pub(super) struct DeliveriesQuery {
    limit: Option<usize>,
}

/// `GET /v1/deliveries`.
pub(super) async fn deliveries(
    State(api): State<Arc<Api>>,
    Query(q): Query<DeliveriesQuery>,
) -> Result<Json<Value>, ApiError> {
    let store = api.engine.store();
    store.flush().await?;
    let list = store.deliveries(q.limit.unwrap_or(50).clamp(1, 5000))?;
    Ok(Json(json!({ "deliveries": list })))
}
