//! `atlas workflow ...`: list, validate, run, history, show-run.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::{Global, build, warn_load_errors};
use atlas::engine::RunRequest;
use atlas::store::{RunStatus, now_ms};
use atlas::tts::{RecordingSpeaker, Speaker};
use atlas::workflow::{LoadError, load_dirs, load_file};

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn ago(ms: i64) -> String {
    let secs = (now_ms() - ms).max(0) / 1000;
    match secs {
        0..=59 => format!("{secs}s ago"),
        60..=3599 => format!("{}m ago", secs / 60),
        3600..=86399 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86400),
    }
}

/// `atlas workflow list`.
pub fn list(global: &Global, as_json: bool) -> anyhow::Result<()> {
    let app = build(global, Arc::new(RecordingSpeaker::default()))?;
    let stats: BTreeMap<String, _> = app
        .engine
        .store()
        .stats()?
        .into_iter()
        .map(|s| (s.workflow_id.clone(), s))
        .collect();
    let workflows = app.engine.workflows();
    if as_json {
        let items: Vec<Value> = workflows
            .values()
            .map(|w| {
                json!({
                    "id": w.id(), "name": w.name(), "description": w.def.description,
                    "version": w.def.version, "enabled": w.def.enabled,
                    "triggers": w.def.triggers, "source": w.source,
                    "stats": stats.get(w.id()),
                })
            })
            .collect();
        print_json(&json!({ "workflows": items, "errors": app.report.errors }));
        return Ok(());
    }
    if workflows.is_empty() {
        println!(
            "no workflows loaded (folders: {:?})",
            app.config.workflow_dirs(&app.paths)
        );
    }
    for w in workflows.values() {
        let triggers: Vec<&str> = w.def.triggers.iter().map(|t| t.kind()).collect();
        let runs = stats
            .get(w.id())
            .map(|s| format!("{} runs, {} ok, {} failed", s.runs, s.successes, s.failures))
            .unwrap_or_else(|| "never run".into());
        let off = if w.def.enabled { "" } else { " (disabled)" };
        println!(
            "{:<20} {}{off} [{}] {runs}",
            w.id(),
            w.name(),
            triggers.join(", ")
        );
    }
    warn_load_errors(&app.report);
    Ok(())
}

/// `atlas workflow validate [PATH...]`: every problem, non-zero exit if any.
pub fn validate(global: &Global, paths: &[PathBuf], as_json: bool) -> anyhow::Result<bool> {
    let (files, errors, warnings): (usize, Vec<LoadError>, Vec<LoadError>) = if paths.is_empty() {
        let app = build(global, Arc::new(RecordingSpeaker::default()))?;
        (app.report.files, app.report.errors, app.report.warnings)
    } else {
        let mut files = 0;
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        for p in paths {
            if p.is_dir() {
                let r = load_dirs(std::slice::from_ref(p));
                files += r.files;
                errors.extend(r.errors);
                warnings.extend(r.warnings);
            } else {
                files += 1;
                match load_file(p) {
                    Ok(wf) => warnings.extend(wf.warnings),
                    Err(e) => errors.extend(e),
                }
            }
        }
        (files, errors, warnings)
    };
    if as_json {
        print_json(
            &json!({ "files": files, "ok": errors.is_empty(), "errors": errors, "warnings": warnings }),
        );
    } else {
        for e in &errors {
            println!("error: {e}");
        }
        // Warnings do not fail validation: the workflow loads, but part of it does nothing yet.
        for w in &warnings {
            println!("warning: {w}");
        }
        if errors.is_empty() {
            println!("{files} workflow file(s) OK");
        } else {
            println!("{} problem(s) in {files} file(s)", errors.len());
        }
    }
    Ok(errors.is_empty())
}

fn parse_var(s: &str) -> anyhow::Result<(String, Value)> {
    let (k, v) = s
        .split_once('=')
        .with_context(|| format!("`--var {s}`: expected NAME=VALUE"))?;
    // A value that parses as JSON keeps its type (`n=3`, `list=[1,2]`); anything else is text.
    let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_owned()));
    Ok((k.trim().to_owned(), value))
}

/// `atlas workflow run ID`: runs to completion; returns whether it succeeded.
pub async fn run_workflow(
    global: &Global,
    id: &str,
    vars: &[String],
    as_json: bool,
    silent: bool,
) -> anyhow::Result<bool> {
    let mut parsed = serde_json::Map::new();
    for v in vars {
        let (k, val) = parse_var(v)?;
        parsed.insert(k, val);
    }
    if let Some(done) = via_daemon(global, id, &parsed).await {
        return print_daemon_run(done?, as_json);
    }
    // Chosen in the background: a workflow that says nothing never waits for a speech service,
    // and one that speaks waits at most the backends' start-up bounds.
    let auto = if silent {
        None
    } else {
        let (config, _) =
            atlas::config::load(global.config.as_deref(), global.data_dir.as_deref())?;
        Some(atlas::tts::start_speaker(&config.speech))
    };
    let speaker: Arc<dyn Speaker> = match &auto {
        Some(auto) => auto.clone(),
        None => Arc::new(RecordingSpeaker::default()),
    };
    let app = build(global, speaker)?;
    // A workflow that failed to load: say why rather than "no such workflow".
    let broken = app.report.errors.iter().find(|e| {
        e.file
            .file_stem()
            .is_some_and(|s| s.to_string_lossy() == id)
    });
    if let (None, Some(e)) = (app.engine.workflow(id), broken) {
        bail!("workflow `{id}` did not load: {e}");
    }
    let mut req = RunRequest::manual(id);
    req.vars.extend(parsed);
    let started = std::time::Instant::now();
    let outcome = app.engine.run(req).await?;
    // Reported after the outcome: the run happened even if its history could not be written.
    let recorded = app.engine.store().flush().await;
    let ok = outcome.status == RunStatus::Succeeded;
    // Only a run that spoke knows which backend it spoke with; others never waited for one.
    let speech = auto
        .as_ref()
        .filter(|_| !outcome.spoken.is_empty())
        .map(|a| a.report());
    if as_json {
        print_json(&json!({
            "run_id": outcome.run_id, "workflow": outcome.workflow_id, "status": outcome.status,
            "error": outcome.error, "result": outcome.result, "spoken": outcome.spoken,
            "speech": speech.as_ref().map(ToString::to_string),
            "outputs": outcome.outputs, "duration_ms": started.elapsed().as_millis() as u64,
        }));
    } else {
        if let Some(report) = speech.as_ref().filter(|r| r.backend == "none") {
            eprintln!("speech: {report}; what would have been said is printed here");
        }
        println!(
            "run {} of `{}` {} in {} ms",
            outcome.run_id,
            outcome.workflow_id,
            outcome.status,
            started.elapsed().as_millis()
        );
        for s in &outcome.spoken {
            println!("said: {s}");
        }
        if let Some(r) = &outcome.result {
            println!("result: {}", serde_json::to_string(r).unwrap_or_default());
        }
        if let Some(e) = &outcome.error {
            eprintln!("error: {e}");
            eprintln!("details: atlas workflow show-run {}", outcome.run_id);
        }
    }
    recorded.with_context(|| format!("run {} is not in the run history", outcome.run_id))?;
    Ok(ok)
}

/// Runs `id` in the running daemon through its API (so the run is in its history and tray),
/// waiting for the outcome; `None` when no daemon answers there.
async fn via_daemon(
    global: &Global,
    id: &str,
    vars: &serde_json::Map<String, Value>,
) -> Option<anyhow::Result<Value>> {
    let (_, paths) = super::load(global).ok()?;
    atlas::runtime::instance::running(&paths.data_dir)?;
    let url = atlas::runtime::read_status(&paths.data_dir)?["api_url"]
        .as_str()?
        .to_owned();
    let token = std::fs::read_to_string(atlas::api::token::token_path(&paths.data_dir)).ok()?;
    let client = reqwest::Client::builder().no_proxy().build().ok()?;
    let resp = client
        .post(format!("{url}/v1/workflows/{id}/run"))
        .bearer_auth(token.trim())
        .json(&json!({"vars": vars, "wait": true, "source": "cli"}))
        .send()
        .await;
    let resp = match resp {
        Ok(r) => r,
        Err(e) if e.is_connect() => {
            eprintln!("warning: the daemon's API at {url} does not answer; running here instead");
            return None;
        }
        Err(e) => return Some(Err(anyhow::anyhow!("the daemon's API at {url}: {e}"))),
    };
    let status = resp.status();
    let body: Value = match resp.json().await {
        Ok(v) => v,
        Err(e) => {
            return Some(Err(anyhow::anyhow!(
                "the daemon's API answered {status}: {e}"
            )));
        }
    };
    if !status.is_success() {
        let msg = body["error"]["message"].as_str().unwrap_or("no message");
        return Some(Err(anyhow::anyhow!("the daemon refused the run: {msg}")));
    }
    Some(Ok(body))
}

/// Prints a run the daemon carried out; whether it succeeded.
fn print_daemon_run(outcome: Value, as_json: bool) -> anyhow::Result<bool> {
    let ok = outcome["status"] == "succeeded";
    if as_json {
        let mut v = outcome;
        v["workflow"] = v["workflow_id"].clone();
        v["via"] = json!("daemon");
        print_json(&v);
        return Ok(ok);
    }
    println!(
        "run {} of `{}` {} (in the daemon)",
        outcome["run_id"].as_str().unwrap_or("?"),
        outcome["workflow_id"].as_str().unwrap_or("?"),
        outcome["status"].as_str().unwrap_or("?")
    );
    for s in outcome["spoken"].as_array().into_iter().flatten() {
        println!("said: {}", s.as_str().unwrap_or_default());
    }
    if !outcome["result"].is_null() {
        println!("result: {}", outcome["result"]);
    }
    if let Some(e) = outcome["error"].as_str() {
        eprintln!("error: {e}");
        eprintln!(
            "details: atlas workflow show-run {}",
            outcome["run_id"].as_str().unwrap_or("?")
        );
    }
    Ok(ok)
}

/// `atlas workflow history [ID]`.
pub fn history(
    global: &Global,
    id: Option<&str>,
    limit: usize,
    as_json: bool,
) -> anyhow::Result<()> {
    let app = build(global, Arc::new(RecordingSpeaker::default()))?;
    let runs = app.engine.store().list_runs(id, limit)?;
    if as_json {
        print_json(&json!({ "runs": runs }));
        return Ok(());
    }
    if runs.is_empty() {
        println!("no runs yet");
    }
    for r in runs {
        let took = match (r.started_at, r.finished_at) {
            (Some(s), Some(f)) => format!("{} ms", f - s),
            _ => "-".into(),
        };
        println!(
            "{}  {:<18} {:<11} {:<9} {:>9}  {}{}",
            r.id,
            r.workflow_id,
            r.status.as_str(),
            r.trigger,
            took,
            ago(r.created_at),
            r.error.map(|e| format!("  ({e})")).unwrap_or_default()
        );
    }
    Ok(())
}

/// `atlas workflow show-run RUN_ID`.
pub fn show_run(global: &Global, run_id: &str, as_json: bool) -> anyhow::Result<()> {
    let app = build(global, Arc::new(RecordingSpeaker::default()))?;
    let store = app.engine.store();
    let Some(run) = store.get_run(run_id)? else {
        bail!("no run `{run_id}`; `atlas workflow history` lists recent runs");
    };
    let actions = store.run_actions(run_id)?;
    if as_json {
        print_json(&json!({ "run": run, "actions": actions }));
        return Ok(());
    }
    println!("run      {}", run.id);
    println!(
        "workflow {} (version {})",
        run.workflow_id, run.workflow_version
    );
    println!("trigger  {} {}", run.trigger, run.trigger_data);
    println!(
        "status   {}{}",
        run.status,
        run.error
            .as_ref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    );
    println!("created  {}", ago(run.created_at));
    for a in &actions {
        let dur = a
            .duration_us
            .map(|d| format!("{:.1} ms", d as f64 / 1000.0))
            .unwrap_or_else(|| "-".into());
        println!(
            "  #{:<3} {:<24} {:<10} {:<10} tries {} {:>10}",
            a.seq, a.path, a.kind, a.status, a.attempts, dur
        );
        if let Some(e) = &a.error {
            println!("        error: {e}");
        }
        if let Some(o) = &a.output {
            let text = serde_json::to_string(o).unwrap_or_default();
            let short: String = text.chars().take(200).collect();
            println!(
                "        output: {short}{}",
                if text.len() > 200 { "..." } else { "" }
            );
        }
    }
    if let Some(r) = &run.result {
        println!("result   {}", serde_json::to_string(r).unwrap_or_default());
    }
    Ok(())
}
