//! The tools: their input schemas (JSON Schema objects) and handlers.
//!
//! Arguments are read into a typed struct that refuses unknown fields, and `run_workflow`'s
//! `arguments` are checked against the workflow's variables (each one's JSON type is its
//! default's; a variable whose default is `null` takes any value), so a wrong call is an MCP
//! `invalid_params` error before anything starts.

use std::collections::BTreeMap;
use std::time::Duration;

use rmcp::ErrorData;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::AtlasMcp;
use crate::engine::{RunRequest, TriggerEvent};
use crate::store::RunStatus;
use crate::workflow::Workflow;

/// The tools' names, in `tools/list` order.
pub const TOOL_NAMES: &[&str] = &[
    "list_workflows",
    "run_workflow",
    "get_run",
    "history",
    "say",
    "command",
];

/// How long `run_workflow` waits for the end of a run by default, and at most.
const DEFAULT_WAIT: u64 = 60;
const MAX_WAIT: u64 = 600;

fn schema(v: Value) -> JsonObject {
    match v {
        Value::Object(m) => m,
        _ => JsonObject::new(),
    }
}

/// The JSON Schema of a workflow's variables: one property per variable, typed by its default.
pub fn arguments_schema(w: &Workflow) -> Value {
    let props: Map<String, Value> = w
        .def
        .variables
        .iter()
        .map(|(name, default)| {
            let mut p = json!({ "default": default });
            if let Some(t) = json_type(default) {
                p["type"] = json!(t);
            }
            (name.clone(), p)
        })
        .collect();
    json!({"type": "object", "properties": props, "additionalProperties": false})
}

fn json_type(v: &Value) -> Option<&'static str> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    })
}

fn fits(expected: &str, v: &Value) -> bool {
    match expected {
        // An integer default accepts any number: `2.5` for a volume of `2` is the user's call.
        "integer" | "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "string" => v.is_string(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => true,
    }
}

/// The tools, with `run_workflow`'s schema naming the loaded workflows.
pub(super) fn list(server: &AtlasMcp) -> Vec<Tool> {
    let workflows = server.engine.workflows();
    let ids: Vec<&String> = workflows.keys().collect();
    let per_workflow: Map<String, Value> = workflows
        .values()
        .map(|w| (w.id().to_owned(), arguments_schema(w)))
        .collect();
    let text = |what: &str| {
        schema(json!({
            "type": "object",
            "properties": {"text": {"type": "string", "description": what}},
            "required": ["text"], "additionalProperties": false,
        }))
    };
    vec![
        Tool::new(
            "list_workflows",
            "The loaded workflows: id, name, description, whether enabled, triggers, and the JSON \
             Schema of the arguments run_workflow takes for each.",
            schema(json!({"type": "object", "properties": {}, "additionalProperties": false})),
        ),
        Tool::new(
            "run_workflow",
            "Run a workflow with arguments (its variables; list_workflows gives each workflow's \
             schema). Waits for the end of the run (up to wait_seconds) and returns its outcome, \
             or returns the run id at once with wait=false.",
            schema(json!({
                "type": "object",
                "properties": {
                    "workflow": {"type": "string", "enum": ids, "description": "The workflow's id."},
                    "arguments": {
                        "type": "object",
                        "description": "Values of the workflow's variables; see x-arguments-by-workflow.",
                    },
                    "wait": {"type": "boolean", "default": true},
                    "wait_seconds": {"type": "integer", "minimum": 1, "maximum": MAX_WAIT, "default": DEFAULT_WAIT},
                },
                "required": ["workflow"],
                "additionalProperties": false,
                "x-arguments-by-workflow": per_workflow,
            })),
        ),
        Tool::new(
            "get_run",
            "One run: status, trigger, variables, result, error, and every action with its output.",
            schema(json!({
                "type": "object",
                "properties": {"run_id": {"type": "string"}},
                "required": ["run_id"], "additionalProperties": false,
            })),
        ),
        Tool::new(
            "history",
            "Recent runs, newest first, of one workflow or all.",
            schema(json!({
                "type": "object",
                "properties": {
                    "workflow": {"type": "string"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                },
                "additionalProperties": false,
            })),
        ),
        Tool::new(
            "say",
            "Say something out loud through Atlas's speaker.",
            text("What to say."),
        ),
        Tool::new(
            "command",
            "A typed command, matched against the workflows' voice phrases and run as if it had \
             been spoken (the reply is spoken too). When voice is off, only matched: nothing runs.",
            text("The command, e.g. \"what's the weather\"."),
        ),
    ]
}

fn args<T: DeserializeOwned>(tool: &str, args: JsonObject) -> Result<T, ErrorData> {
    serde_json::from_value(Value::Object(args))
        .map_err(|e| ErrorData::invalid_params(format!("wrong arguments for `{tool}`: {e}"), None))
}

fn ok(v: Value) -> CallToolResult {
    let mut r = CallToolResult::success(vec![ContentBlock::text(
        serde_json::to_string_pretty(&v).unwrap_or_default(),
    )]);
    r.structured_content = Some(v);
    r
}

fn failed(message: String, v: Value) -> CallToolResult {
    let mut r = CallToolResult::error(vec![ContentBlock::text(message)]);
    r.structured_content = Some(v);
    r
}

fn internal(e: impl std::fmt::Display) -> ErrorData {
    ErrorData::internal_error(e.to_string(), None)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunArgs {
    workflow: String,
    #[serde(default)]
    arguments: Map<String, Value>,
    #[serde(default = "yes")]
    wait: bool,
    #[serde(default)]
    wait_seconds: Option<u64>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunId {
    run_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryArgs {
    #[serde(default)]
    workflow: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Text {
    text: String,
}

fn text_arg(tool: &str, a: JsonObject) -> Result<String, ErrorData> {
    let Text { text } = args(tool, a)?;
    if text.trim().is_empty() {
        return Err(ErrorData::invalid_params(
            format!("wrong arguments for `{tool}`: `text` is empty"),
            None,
        ));
    }
    Ok(text)
}

/// Runs tool `name`: an MCP error for an unknown tool or wrong arguments.
pub(super) async fn call(
    server: &AtlasMcp,
    name: &str,
    a: JsonObject,
) -> Result<CallToolResult, ErrorData> {
    match name {
        "list_workflows" => {
            let Empty {} = args(name, a)?;
            list_workflows(server)
        }
        "run_workflow" => run_workflow(server, args(name, a)?).await,
        "get_run" => get_run(server, args(name, a)?).await,
        "history" => history(server, args(name, a)?),
        "say" => {
            let text = text_arg(name, a)?;
            let speaker = server.engine.services().speaker.clone();
            Ok(match speaker.speak(&text).await {
                Ok(outcome) => ok(json!({"said": text, "outcome": outcome})),
                Err(e) => failed(format!("could not say it: {e}"), json!({"said": null})),
            })
        }
        "command" => command(server, text_arg(name, a)?).await,
        _ => Err(ErrorData::invalid_params(
            format!(
                "unknown tool `{name}`; the tools are: {}",
                TOOL_NAMES.join(", ")
            ),
            None,
        )),
    }
}

fn list_workflows(server: &AtlasMcp) -> Result<CallToolResult, ErrorData> {
    let items: Vec<Value> = server
        .engine
        .workflows()
        .values()
        .map(|w| {
            json!({
                "id": w.id(), "name": w.name(), "description": w.def.description,
                "enabled": w.def.enabled, "triggers": w.def.triggers,
                "arguments": arguments_schema(w),
            })
        })
        .collect();
    Ok(ok(json!({ "workflows": items })))
}

/// Checks `given` against `w`'s variables: every name known, every value of its type.
fn check_arguments(w: &Workflow, given: &Map<String, Value>) -> Result<(), ErrorData> {
    let vars = &w.def.variables;
    let mut problems = Vec::new();
    for (name, value) in given {
        match vars.get(name) {
            None => problems.push(format!(
                "`{name}` is not a variable of `{}` (its variables: {})",
                w.id(),
                if vars.is_empty() {
                    "none".to_owned()
                } else {
                    vars.keys().cloned().collect::<Vec<_>>().join(", ")
                }
            )),
            Some(default) => {
                if let Some(t) = json_type(default)
                    && !fits(t, value)
                {
                    problems.push(format!("`{name}` must be of type {t}, got {value}"));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ErrorData::invalid_params(
            format!(
                "wrong arguments for workflow `{}`: {}",
                w.id(),
                problems.join("; ")
            ),
            Some(json!({"schema": arguments_schema(w)})),
        ))
    }
}

async fn run_workflow(server: &AtlasMcp, a: RunArgs) -> Result<CallToolResult, ErrorData> {
    let w = server.engine.workflow(&a.workflow).ok_or_else(|| {
        let ids: Vec<String> = server.engine.workflows().keys().cloned().collect();
        ErrorData::invalid_params(
            format!(
                "unknown workflow `{}`; the loaded workflows are: {}",
                a.workflow,
                ids.join(", ")
            ),
            None,
        )
    })?;
    check_arguments(&w, &a.arguments)?;
    let wait_for = a.wait_seconds.unwrap_or(DEFAULT_WAIT);
    if !(1..=MAX_WAIT).contains(&wait_for) {
        return Err(ErrorData::invalid_params(
            format!("wrong arguments for `run_workflow`: `wait_seconds` must be 1 to {MAX_WAIT}"),
            None,
        ));
    }
    let mut req = RunRequest::manual(&a.workflow);
    req.trigger = TriggerEvent {
        kind: "manual".into(),
        data: json!({"source": "mcp"}),
    };
    req.vars = a.arguments.into_iter().collect::<BTreeMap<_, _>>();
    let handle = server
        .engine
        .trigger(req)
        .map_err(|e| ErrorData::invalid_params(e.to_string(), None))?;
    let run_id = handle.id.clone();
    if !a.wait {
        return Ok(ok(
            json!({"run_id": run_id, "workflow": a.workflow, "status": "started"}),
        ));
    }
    match tokio::time::timeout(Duration::from_secs(wait_for), handle.wait()).await {
        Ok(outcome) => {
            let v = json!(*outcome);
            Ok(if outcome.status == RunStatus::Succeeded {
                ok(v)
            } else {
                failed(
                    format!(
                        "run {run_id} of `{}` ended {}: {}",
                        outcome.workflow_id,
                        outcome.status,
                        outcome.error.as_deref().unwrap_or("no error recorded")
                    ),
                    v,
                )
            })
        }
        Err(_) => Ok(ok(json!({
            "run_id": run_id, "workflow": a.workflow, "status": "running",
            "note": format!("still running after {wait_for} s; get_run reads it later"),
        }))),
    }
}

async fn get_run(server: &AtlasMcp, a: RunId) -> Result<CallToolResult, ErrorData> {
    let store = server.engine.store();
    // What the engine recorded a moment ago (the run, its last actions) may still be in the
    // writer's queue: a client that saw the run end must see all of it.
    store.flush().await.map_err(internal)?;
    let run = store.get_run(&a.run_id).map_err(internal)?.ok_or_else(|| {
        ErrorData::invalid_params(
            format!("no run `{}`; the history tool lists runs", a.run_id),
            None,
        )
    })?;
    let actions = store.run_actions(&a.run_id).map_err(internal)?;
    Ok(ok(json!({"run": run, "actions": actions})))
}

fn history(server: &AtlasMcp, a: HistoryArgs) -> Result<CallToolResult, ErrorData> {
    let limit = a.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ErrorData::invalid_params(
            "wrong arguments for `history`: `limit` must be 1 to 100",
            None,
        ));
    }
    let runs = server
        .engine
        .store()
        .list_runs(a.workflow.as_deref(), limit)
        .map_err(internal)?;
    Ok(ok(json!({ "runs": runs })))
}

async fn command(server: &AtlasMcp, text: String) -> Result<CallToolResult, ErrorData> {
    match &server.voice {
        Some(voice) => {
            let handled = voice.handle_text(&text).await;
            Ok(ok(json!(handled)))
        }
        None => {
            let outcome = crate::voice::dry_match(&server.engine, &server.voice_config, &text)
                .map_err(internal)?;
            Ok(ok(json!({
                "transcript": text,
                "dry": true,
                "note": "voice is off (no whisper model is loaded here): the command was matched, nothing ran",
                "workflow": outcome.best.as_ref().map(|b| b.workflow_id.clone()),
                "slots": outcome.best.as_ref().map(|b| b.slots.clone()),
                "score": outcome.best.as_ref().map(|b| b.score),
                "reason": outcome.reason,
                "candidates": outcome.candidates,
            })))
        }
    }
}
