//! `/v1/workflows`: list, get, validate, create, replace, delete, enable, disable, reload.
//!
//! Writes go to the user's workflows folder only (a bundled workflow is overridden by writing
//! one with its id there), atomically (a temporary file in the folder, then a rename), and are
//! followed by a reload of every folder into the engine (and the voice matcher), so the change
//! takes effect without a restart. A body that does not validate is refused with the loader's
//! errors (line and column) and nothing is written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{Api, ApiError};
use crate::workflow::{Workflow, load_sources, load_str};

/// The loaded workflows and the errors of the files that did not load.
pub(super) async fn list(State(api): State<Arc<Api>>) -> Result<Json<Value>, ApiError> {
    let stats = stats(&api)?;
    let items: Vec<Value> = api
        .engine
        .workflows()
        .values()
        .map(|w| summary(&api, w, stats.get(w.id())))
        .collect();
    Ok(Json(json!({ "workflows": items })))
}

fn stats(api: &Api) -> Result<BTreeMap<String, crate::store::WorkflowStats>, ApiError> {
    Ok(api
        .engine
        .store()
        .stats()?
        .into_iter()
        .map(|s| (s.workflow_id.clone(), s))
        .collect())
}

fn summary(api: &Api, w: &Workflow, stats: Option<&crate::store::WorkflowStats>) -> Value {
    json!({
        "id": w.id(), "name": w.name(), "description": w.def.description,
        "version": w.def.version, "enabled": w.def.enabled,
        "triggers": w.def.triggers, "source": w.source,
        "editable": in_user_folder(api, &w.source),
        "stats": stats,
    })
}

fn in_user_folder(api: &Api, file: &Path) -> bool {
    file.parent() == Some(api.paths.user_workflows.as_path())
}

fn loaded(api: &Api, id: &str) -> Result<Arc<Workflow>, ApiError> {
    api.engine.workflow(id).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no workflow `{id}`; GET /v1/workflows lists the loaded ones"
        ))
    })
}

/// One workflow: its definition, its source text when readable, counters, warnings.
pub(super) async fn get_one(
    State(api): State<Arc<Api>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    let w = loaded(&api, &id)?;
    let stats = stats(&api)?;
    let mut v = summary(&api, &w, stats.get(w.id()));
    v["definition"] = serde_json::to_value(&w.def).unwrap_or(Value::Null);
    v["yaml"] = json!(std::fs::read_to_string(&w.source).ok());
    v["warnings"] = json!(w.warnings);
    v["graph"] = graph_json(&w.graph);
    Ok(Json(v))
}

/// The action graph for drawing: `nodes` (`id`, `kind`, `parent` loop when in a body) and
/// `edges` (`from`, `to`, `kind`: `next`, `on_success`, `on_failure`, `true`, `false`, `body`,
/// `repeat`: a body's end back to its loop). An edge to the run's end is left out.
pub(super) fn graph_json(g: &crate::workflow::Graph) -> Value {
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    add_graph(g, None, &mut nodes, &mut edges);
    json!({"nodes": nodes, "edges": edges, "entry": g.nodes.get(g.entry).map(|n| &n.id)})
}

fn add_graph(
    g: &crate::workflow::Graph,
    parent: Option<&str>,
    nodes: &mut Vec<Value>,
    edges: &mut Vec<Value>,
) {
    let id = |i: usize| g.nodes.get(i).map(|n| n.id.clone());
    for (i, n) in g.nodes.iter().enumerate() {
        nodes.push(
            json!({"id": n.id, "kind": n.kind, "parent": parent, "max_visits": n.max_visits}),
        );
        let mut edge = |to: Option<String>, kind: &str| {
            if let Some(to) = to {
                edges.push(json!({"from": n.id, "to": to, "kind": kind}));
            }
        };
        let next = g.next_in_list(i);
        if let Some((yes, no)) = n.branches {
            edge(id(yes.or(next).unwrap_or(usize::MAX)), "true");
            edge(id(no.or(next).unwrap_or(usize::MAX)), "false");
        } else {
            match n.on_success {
                Some(to) => edge(id(to), "on_success"),
                None => edge(next.and_then(id), "next"),
            }
        }
        if let Some(to) = n.on_failure {
            edge(id(to), "on_failure");
        }
        if let Some(body) = &n.body {
            edge(body.nodes.get(body.entry).map(|b| b.id.clone()), "body");
            add_graph(body, Some(&n.id), nodes, edges);
            if let Some(last) = body.nodes.last() {
                edges.push(json!({"from": last.id, "to": n.id, "kind": "repeat"}));
            }
        }
    }
}

fn text(body: &Bytes) -> Result<&str, ApiError> {
    std::str::from_utf8(body)
        .map_err(|_| ApiError::BadRequest("the body is not UTF-8 text (a YAML workflow)".into()))
}

/// Validates a YAML body; 200 with `ok` false and the errors when it does not validate.
pub(super) async fn validate(body: Bytes) -> Result<Json<Value>, ApiError> {
    let src = text(&body)?;
    Ok(Json(match load_str(src, Path::new("body.yaml")) {
        Ok(w) => {
            json!({"ok": true, "id": w.id(), "errors": [], "warnings": w.warnings, "graph": graph_json(&w.graph)})
        }
        Err(errors) => json!({"ok": false, "errors": errors, "warnings": []}),
    }))
}

/// The workflow in `src`, validated, or 400 with every error.
fn parse(src: &str, id_in_url: Option<&str>) -> Result<Workflow, ApiError> {
    let w = load_str(src, Path::new("body.yaml")).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        ApiError::BadRequest(format!(
            "the workflow does not validate: {}",
            lines.join("; ")
        ))
    })?;
    if let Some(id) = id_in_url
        && w.id() != id
    {
        return Err(ApiError::BadRequest(format!(
            "the body's id `{}` is not the URL's `{id}`",
            w.id()
        )));
    }
    Ok(w)
}

/// The user's file for `id`: the one it was loaded from when that is in the user's folder,
/// else `<folder>/<id>.yaml`.
fn user_file(api: &Api, id: &str) -> PathBuf {
    match api.engine.workflow(id) {
        Some(w) if in_user_folder(api, &w.source) => w.source.clone(),
        _ => api.paths.user_workflows.join(format!("{id}.yaml")),
    }
}

/// Writes `text` to `path` atomically: a temporary file beside it, synced, then renamed.
fn write_atomic(path: &Path, text: &str) -> Result<(), ApiError> {
    let dir = path
        .parent()
        .ok_or_else(|| ApiError::Internal(format!("{} has no folder", path.display())))?;
    let fail =
        |e: std::io::Error| ApiError::Internal(format!("cannot write {}: {e}", path.display()));
    std::fs::create_dir_all(dir).map_err(fail)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".atlas-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(fail)?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

/// Reloads every workflow folder into the engine and the voice matcher; the load report.
fn reload_now(api: &Api) -> Value {
    let report = load_sources(&api.config.workflow_dirs(&api.paths));
    api.engine.set_workflows(report.workflows.iter().cloned());
    if let Some(voice) = &api.voice
        && let Err(e) = voice.reload()
    {
        tracing::warn!(error = %e, "voice phrases not reloaded");
    }
    tracing::info!(
        workflows = report.workflows.len(),
        errors = report.errors.len(),
        "workflows reloaded"
    );
    json!({"workflows": report.workflows.len(), "errors": report.errors, "warnings": report.warnings})
}

/// `POST /v1/reload`.
pub(super) async fn reload(State(api): State<Arc<Api>>) -> Json<Value> {
    let _w = api.writes.lock().await;
    Json(reload_now(&api))
}

/// Creates a workflow (409 when its file exists in the user's folder).
pub(super) async fn create(
    State(api): State<Arc<Api>>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let src = text(&body)?;
    let w = parse(src, None)?;
    let _w = api.writes.lock().await;
    let path = user_file(&api, w.id());
    if path.exists() {
        return Err(ApiError::Conflict(format!(
            "workflow `{}` already exists in {}: PUT /v1/workflows/{} replaces it",
            w.id(),
            path.display(),
            w.id()
        )));
    }
    write_atomic(&path, src)?;
    let report = reload_now(&api);
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": w.id(), "file": path, "reload": report})),
    ))
}

/// Creates or replaces the workflow `id`.
pub(super) async fn replace(
    State(api): State<Arc<Api>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let src = text(&body)?;
    parse(src, Some(&id))?;
    let _w = api.writes.lock().await;
    let path = user_file(&api, &id);
    write_atomic(&path, src)?;
    let report = reload_now(&api);
    Ok(Json(json!({"id": id, "file": path, "reload": report})))
}

/// Deletes the workflow's file from the user's folder.
pub(super) async fn remove(
    State(api): State<Arc<Api>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    let _w = api.writes.lock().await;
    let w = loaded(&api, &id)?;
    if !in_user_folder(&api, &w.source) {
        return Err(ApiError::Conflict(format!(
            "workflow `{id}` comes from {}, not your folder {}; only files there are deleted",
            w.source.display(),
            api.paths.user_workflows.display()
        )));
    }
    std::fs::remove_file(&w.source)
        .map_err(|e| ApiError::Internal(format!("cannot delete {}: {e}", w.source.display())))?;
    let report = reload_now(&api);
    Ok(Json(
        json!({"id": id, "deleted": w.source, "reload": report}),
    ))
}

pub(super) async fn enable(
    State(api): State<Arc<Api>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    set_enabled(&api, &id, true).await
}

pub(super) async fn disable(
    State(api): State<Arc<Api>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    set_enabled(&api, &id, false).await
}

/// Rewrites the top-level `enabled:` line of the workflow's file (or adds one after `id:`),
/// keeping the rest of the text, comments included; a bundled workflow is first copied to the
/// user's folder.
async fn set_enabled(api: &Api, id: &str, on: bool) -> Result<Json<Value>, ApiError> {
    let _w = api.writes.lock().await;
    let w = loaded(api, id)?;
    let src = std::fs::read_to_string(&w.source)
        .or_else(|_| serde_yaml_ng::to_string(&w.def))
        .map_err(|e| ApiError::Internal(format!("cannot read {}: {e}", w.source.display())))?;
    let edited = with_enabled(&src, on);
    parse(&edited, Some(id))?;
    let path = user_file(api, id);
    write_atomic(&path, &edited)?;
    let report = reload_now(api);
    Ok(Json(
        json!({"id": id, "enabled": on, "file": path, "reload": report}),
    ))
}

/// `src` with its top-level `enabled:` set to `on`.
fn with_enabled(src: &str, on: bool) -> String {
    let line = format!("enabled: {on}");
    let mut out = Vec::new();
    let mut done = false;
    for l in src.lines() {
        if !done && l.starts_with("enabled:") {
            out.push(line.clone());
            done = true;
        } else {
            out.push(l.to_owned());
        }
    }
    if !done {
        let at = out
            .iter()
            .position(|l| l.starts_with("id:"))
            .map_or(0, |i| i + 1);
        out.insert(at, line);
    }
    let mut text = out.join("\n");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::with_enabled;

    #[test]
    fn enabled_is_set_in_place_or_added_after_the_id() {
        assert_eq!(
            with_enabled("id: a\n# note\nenabled: true\nactions: []\n", false),
            "id: a\n# note\nenabled: false\nactions: []\n"
        );
        assert_eq!(
            with_enabled("# c\nid: a\nactions: []", false),
            "# c\nid: a\nenabled: false\nactions: []\n"
        );
    }
}
