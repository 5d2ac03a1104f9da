//! `/v1/workflows/{id}/run` and `/v1/runs`: start a run, the history, one run with its
//! actions, pause, resume, cancel (the engine's own `pause`/`resume`/`cancel`: pause takes
//! effect at the next action boundary).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::json_body;
use super::{Api, ApiError};
use crate::engine::{RunRequest, TriggerEvent};

/// The body of `POST /v1/workflows/{id}/run`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunBody {
    /// Variables overriding the workflow's defaults.
    #[serde(default)]
    vars: BTreeMap<String, Value>,
    /// Answer when the run has ended, with its outcome (default: as soon as it is admitted).
    #[serde(default)]
    wait: bool,
    /// Who asks (`cli`, `dashboard`, ...), recorded in the trigger data.
    #[serde(default)]
    source: Option<String>,
}

/// Starts a run: 202 with its id, or (with `wait`) 200 with its outcome.
pub(super) async fn run(
    State(api): State<Arc<Api>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body: RunBody = json_body(&body)?;
    let mut req = RunRequest::manual(&id);
    req.trigger = TriggerEvent {
        kind: "manual".into(),
        data: json!({"source": body.source.as_deref().unwrap_or("api")}),
    };
    req.vars = body.vars;
    let handle = api.engine.trigger(req)?;
    if !body.wait {
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({"run_id": handle.id, "workflow": id})),
        ));
    }
    let outcome = handle.wait().await;
    Ok((StatusCode::OK, Json(json!(*outcome))))
}

#[derive(Debug, Deserialize)]
pub(super) struct HistoryQuery {
    workflow: Option<String>,
    limit: Option<usize>,
}

/// Runs, newest first.
pub(super) async fn history(
    State(api): State<Arc<Api>>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(20).clamp(1, 1000);
    api.engine.store().flush().await?;
    let runs = api.engine.store().list_runs(q.workflow.as_deref(), limit)?;
    Ok(Json(json!({ "runs": runs })))
}

/// One run and its actions.
pub(super) async fn get_one(
    State(api): State<Arc<Api>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    let store = api.engine.store();
    // What the engine recorded a moment ago (the run, its last actions) may still be in the
    // writer's queue: a client that saw the run end must see all of it.
    store.flush().await?;
    let run = store
        .get_run(&id)?
        .ok_or_else(|| ApiError::NotFound(format!("no run `{id}`; GET /v1/runs lists them")))?;
    let actions = store.run_actions(&id)?;
    Ok(Json(json!({ "run": run, "actions": actions })))
}

/// Applies a control to a run: a run that exists but has ended is a conflict, not a 404. A run
/// whose end is already recorded is over even while it is still leaving the engine's active
/// set (a moment after its status was written): controlling it is refused the same way.
fn control(
    api: &Api,
    id: &str,
    what: &str,
    op: impl FnOnce() -> Result<(), crate::engine::EngineError>,
) -> Result<Json<Value>, ApiError> {
    let ended = |status: &dyn std::fmt::Display| {
        ApiError::Conflict(format!(
            "run `{id}` is {status}: only a running, queued or paused run can be {what}"
        ))
    };
    if let Some(run) = api.engine.store().get_run(id)?
        && run.status.is_final()
    {
        return Err(ended(&run.status));
    }
    match op() {
        Ok(()) => Ok(Json(json!({"run_id": id, "done": what}))),
        Err(crate::engine::EngineError::UnknownRun(_)) => match api.engine.store().get_run(id)? {
            Some(run) => Err(ended(&run.status)),
            None => Err(ApiError::NotFound(format!("no run `{id}`"))),
        },
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn pause(
    State(api): State<Arc<Api>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    control(&api, &id, "paused", || api.engine.pause(&id))
}

pub(super) async fn resume(
    State(api): State<Arc<Api>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    control(&api, &id, "resumed", || api.engine.resume(&id))
}

pub(super) async fn cancel(
    State(api): State<Arc<Api>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    control(&api, &id, "cancelled", || {
        api.engine
            .cancel_with(&id, "cancelled through the API".into())
    })
}
