//! The route table: one list ([`route_docs`]) from which the router is built and the OpenAPI
//! document (`GET /v1/openapi.json`) is written, so the document names every route served and
//! nothing else. A handler is added here, once, with its method, path and summary.
//!
//! The document is kept by hand rather than derived (utoipa): the table is the single place a
//! route is declared, and `tests/api.rs` checks that every route in it answers on the server and
//! appears in the served document.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{MethodRouter, delete, get, post, put};
use serde_json::{Map, Value, json};

use super::{Api, agent, dashboard, guard, hooks, integrations, runs, workflows};

/// One route, as the OpenAPI document describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteDoc {
    /// `get`, `post`, `put` or `delete`.
    pub method: &'static str,
    /// The path, with `{name}` parameters as axum and OpenAPI both write them.
    pub path: &'static str,
    /// What it does.
    pub summary: &'static str,
    /// Whether it needs the bearer token (everything under `/v1`).
    pub token: bool,
    /// What the body is: `json`, `yaml`, `wav-or-json`, `any` or none.
    pub body: Option<&'static str>,
}

type Handler = fn() -> MethodRouter<Arc<Api>>;

/// The body limit of `/v1/utterance`, which takes recordings: 16 MiB holds 30 s of 48 kHz
/// stereo 32-bit float, the largest format a recorder commonly writes (the duration is then
/// checked against `voice.max_seconds`).
const AUDIO_BODY_LIMIT: usize = 16 * 1024 * 1024;

const fn r(
    method: &'static str,
    path: &'static str,
    body: Option<&'static str>,
    summary: &'static str,
) -> RouteDoc {
    RouteDoc {
        method,
        path,
        summary,
        token: true,
        body,
    }
}

/// Every route the server has, with its handler.
fn table() -> Vec<(RouteDoc, Handler)> {
    vec![
        (r("get", "/v1/openapi.json", None, "This document."), || {
            get(openapi_json)
        }),
        (
            r(
                "get",
                "/v1/status",
                None,
                "The agent's stage, model, problems, next schedules, active runs.",
            ),
            || get(agent::status),
        ),
        (
            r(
                "get",
                "/v1/events",
                None,
                "Server-sent events: the engine's event bus (runs, actions) and agent stage changes.",
            ),
            || get(agent::events),
        ),
        (
            r(
                "post",
                "/v1/utterance",
                Some("wav-or-json"),
                "A command: a WAV recording (`audio/wav`, at most `voice.max_seconds`) heard as push-to-talk speech, or `{\"text\": ...}` matched as a typed command; the run starts as speech would start it.",
            ),
            || post(agent::utterance).layer(DefaultBodyLimit::max(AUDIO_BODY_LIMIT)),
        ),
        (
            r(
                "get",
                "/v1/utterances",
                None,
                "The last utterances handled (typed, sent or heard), newest first, with match candidates and scores.",
            ),
            || get(agent::utterances),
        ),
        (
            r(
                "get",
                "/v1/action-kinds",
                None,
                "Every action kind: `name`, `doc`, `control`, and its config's `fields` (`name`, `required`).",
            ),
            || get(agent::action_kinds),
        ),
        (
            r(
                "post",
                "/v1/dashboard/login",
                None,
                "A one-time dashboard login link (`url`, valid 60 s, used once), exchanged by the browser for a session cookie.",
            ),
            || post(dashboard::login_link),
        ),
        (
            r(
                "post",
                "/v1/say",
                Some("json"),
                "Says `{\"text\": ...}` through the daemon's speaker.",
            ),
            || post(agent::say),
        ),
        (
            r(
                "post",
                "/v1/reload",
                None,
                "Reloads the workflows from their folders.",
            ),
            || post(workflows::reload),
        ),
        (
            r(
                "get",
                "/v1/workflows",
                None,
                "The loaded workflows with their counters.",
            ),
            || get(workflows::list),
        ),
        (
            r(
                "post",
                "/v1/workflows",
                Some("yaml"),
                "Creates a workflow in your folder from a YAML body (409 if its file exists).",
            ),
            || post(workflows::create),
        ),
        (
            r(
                "post",
                "/v1/workflows/validate",
                Some("yaml"),
                "Validates a YAML body: errors and warnings with line and column.",
            ),
            || post(workflows::validate),
        ),
        (
            r(
                "get",
                "/v1/workflows/{id}",
                None,
                "One workflow: definition, source, counters, warnings.",
            ),
            || get(workflows::get_one),
        ),
        (
            r(
                "put",
                "/v1/workflows/{id}",
                Some("yaml"),
                "Creates or replaces the workflow's file in your folder.",
            ),
            || put(workflows::replace),
        ),
        (
            r(
                "delete",
                "/v1/workflows/{id}",
                None,
                "Deletes the workflow's file from your folder.",
            ),
            || delete(workflows::remove),
        ),
        (
            r(
                "post",
                "/v1/workflows/{id}/enable",
                None,
                "Sets `enabled: true` in the workflow's file.",
            ),
            || post(workflows::enable),
        ),
        (
            r(
                "post",
                "/v1/workflows/{id}/disable",
                None,
                "Sets `enabled: false` in the workflow's file.",
            ),
            || post(workflows::disable),
        ),
        (
            r(
                "post",
                "/v1/workflows/{id}/run",
                Some("json"),
                "Runs it: `{\"vars\": {...}, \"wait\": bool}`; 202 with the run id, or the outcome when waiting.",
            ),
            || post(runs::run),
        ),
        (
            r(
                "get",
                "/v1/runs",
                None,
                "Run history, newest first (`?workflow=ID&limit=N`).",
            ),
            || get(runs::history),
        ),
        (
            r("get", "/v1/runs/{id}", None, "One run with every action."),
            || get(runs::get_one),
        ),
        (
            r(
                "post",
                "/v1/runs/{id}/pause",
                None,
                "Pauses a run at its next action boundary.",
            ),
            || post(runs::pause),
        ),
        (
            r(
                "post",
                "/v1/runs/{id}/resume",
                None,
                "Resumes a paused run.",
            ),
            || post(runs::resume),
        ),
        (
            r("post", "/v1/runs/{id}/cancel", None, "Cancels a run."),
            || post(runs::cancel),
        ),
        (
            r(
                "get",
                "/v1/deliveries",
                None,
                "Webhook deliveries answered, accepted and refused, newest first (`?limit=N`).",
            ),
            || get(hooks::deliveries),
        ),
        (
            r(
                "get",
                "/v1/integrations",
                None,
                "Every integration (gmail, calendar) with its state, as last recorded.",
            ),
            || get(integrations::list),
        ),
        (
            r(
                "get",
                "/v1/integrations/{id}",
                None,
                "One integration, health-checked now (within 5 s).",
            ),
            || get(integrations::check),
        ),
        (
            r(
                "post",
                "/v1/integrations/{id}/connect",
                None,
                "Starts a sign-in: 202 with the `url` to open; it finishes when the browser comes back (`integration.connected`).",
            ),
            || post(integrations::connect),
        ),
        (
            r(
                "post",
                "/v1/integrations/{id}/disconnect",
                None,
                "Revokes the grant where the provider can and forgets the tokens.",
            ),
            || post(integrations::disconnect),
        ),
        (
            RouteDoc {
                method: "post",
                path: "/hooks/{*path}",
                summary: "A webhook delivery for the workflow whose `webhook` trigger has this path; authenticated by its signature, not the token.",
                token: false,
                body: Some("any"),
            },
            || post(hooks::deliver),
        ),
    ]
}

/// Every route served.
pub fn route_docs() -> Vec<RouteDoc> {
    table().into_iter().map(|(d, _)| d).collect()
}

/// The router: `/v1` behind the token guard, `/hooks` behind the origin guard.
pub(super) fn router(api: Arc<Api>) -> Router {
    let limit = api.config.api.max_body_bytes;
    let mut v1 = Router::new();
    let mut hooks = Router::new();
    for (doc, handler) in table() {
        if doc.token {
            v1 = v1.route(doc.path, handler());
        } else {
            hooks = hooks.route(doc.path, handler());
        }
    }
    let v1 = v1
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            api.clone(),
            guard::api_guard,
        ));
    // The hook handler reads the body itself, bounded, so that a refusal is recorded.
    let hooks =
        hooks
            .layer(DefaultBodyLimit::disable())
            .layer(axum::middleware::from_fn_with_state(
                api.clone(),
                guard::hook_guard,
            ));
    // MCP over streamable HTTP, behind the same guard as `/v1` (token, Host, Origin).
    let server = crate::mcp::AtlasMcp::new(
        api.engine.clone(),
        api.voice.clone(),
        api.config.voice.clone(),
    );
    let mcp = Router::new()
        .nest_service(
            "/mcp",
            crate::mcp::http_service(server, api.stop.child_token()),
        )
        .layer(axum::middleware::from_fn_with_state(
            api.clone(),
            guard::api_guard,
        ));
    // The dashboard's pages: static files and the login, behind the Host/Origin guard.
    let pages = Router::new()
        .route("/", get(dashboard::root))
        .route("/dashboard", get(dashboard::root))
        .route("/dashboard/", get(dashboard::index))
        .route("/dashboard/login", get(dashboard::login))
        .route("/dashboard/logout", post(dashboard::logout))
        .route("/dashboard/{*path}", get(dashboard::asset))
        .layer(axum::middleware::from_fn_with_state(
            api.clone(),
            guard::page_guard,
        ));
    v1.merge(hooks).merge(pages).with_state(api).merge(mcp)
}

async fn openapi_json() -> axum::Json<Value> {
    axum::Json(openapi())
}

/// The OpenAPI 3.1 document of [`route_docs`].
pub fn openapi() -> Value {
    let mut paths = Map::new();
    for d in route_docs() {
        let mut op = json!({
            "summary": d.summary,
            "responses": {
                "200": {"description": "Done; JSON."},
                "400": {"$ref": "#/components/responses/Error"},
                "401": {"$ref": "#/components/responses/Error"},
                "403": {"$ref": "#/components/responses/Error"},
                "404": {"$ref": "#/components/responses/Error"},
                "409": {"$ref": "#/components/responses/Error"},
                "413": {"$ref": "#/components/responses/Error"},
            },
        });
        if !d.token {
            op["security"] = json!([]);
            op["responses"]["202"] = json!({"description": "The run is queued; `{run_id}`."});
        }
        let params: Vec<Value> = d
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({"name": name.trim_start_matches('*'), "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        if let Some(kind) = d.body {
            let media: &[&str] = match kind {
                "json" => &["application/json"],
                "yaml" => &["application/yaml"],
                "wav-or-json" => &["audio/wav", "application/json"],
                _ => &["*/*"],
            };
            let content: Map<String, Value> =
                media.iter().map(|m| (m.to_string(), json!({}))).collect();
            op["requestBody"] = json!({ "content": content });
        }
        let path = d.path.replace("{*path}", "{path}");
        paths
            .entry(path)
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .map(|m| m.insert(d.method.to_owned(), op));
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Atlas control API", "version": env!("CARGO_PKG_VERSION")},
        "servers": [{"url": format!("http://{}", crate::config::DEFAULT_API_LISTEN)}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "`atlas api token` prints it."}},
            "responses": {"Error": {"description": "`{\"error\": {\"status\": N, \"message\": \"...\"}}`"}},
        },
        "paths": paths,
    })
}
