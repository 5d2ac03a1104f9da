//! `atlas daemon` and `atlas status`: the resident agent started from the command line, and
//! what it tells about itself.

use std::path::Path;

use serde_json::{Value, json};

use super::{Global, ShutdownSignal, load, resolve_model, warn_load_errors};
use atlas::config::{Config, Paths};
use atlas::runtime::{Daemon, instance, read_status};

/// `atlas daemon`: runs until SIGINT/SIGTERM or the tray's Quit.
pub async fn daemon(global: &Global) -> anyhow::Result<()> {
    let mut signals = ShutdownSignal::listen();
    let (config, paths) = load(global)?;
    let daemon = Daemon::start(config, paths).await?;
    warn_load_errors(&daemon.runtime().report);
    let started = daemon.started();
    if started.speech.backend == "none" {
        eprintln!("speech is off: {}; replies are only logged", started.speech);
    }
    if let Some(reason) = &started.headless {
        eprintln!(
            "no display ({reason}): running headless, the hotkey and tray are off; schedules and workflows work"
        );
    }
    for problem in &started.problems {
        eprintln!("{problem}");
    }
    eprintln!(
        "atlas daemon running (pid {}): {} workflows, {} resumed and {} interrupted runs recovered, database {}",
        std::process::id(),
        started.workflows,
        started.resumed,
        started.interrupted,
        started.database.display()
    );
    daemon.run(async move { signals.recv().await }).await;
    Ok(())
}

/// `atlas status`.
pub fn status(global: &Global, as_json: bool) -> anyhow::Result<bool> {
    let (config, paths) = load(global)?;
    let pid = instance::running(&paths.data_dir);
    let file: Option<Value> = read_status(&paths.data_dir);
    let (state, model, next, problems, speech) = match (&pid, &file) {
        (Some(_), Some(f)) => (
            f["state"].clone(),
            f["model"].clone(),
            f["next"].clone(),
            f["problems"].clone(),
            f["speech"].clone(),
        ),
        _ => (
            Value::Null,
            json!(model_now(&config, &paths.data_dir)),
            Value::Null,
            Value::Null,
            Value::Null,
        ),
    };
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"running": pid.is_some(), "pid": pid, "state": state, "model": model, "speech": speech, "next": next, "problems": problems, "headless": file.as_ref().map(|f| f["headless"].clone()), "history": file.as_ref().filter(|_| pid.is_some()).map(|f| f["history"].clone()), "api_url": file.as_ref().filter(|_| pid.is_some()).and_then(|f| f["api_url"].as_str().map(str::to_owned))})
            )?
        );
        return Ok(true);
    }
    match pid {
        Some(pid) => {
            println!(
                "atlas daemon running, pid {pid}, state {}",
                state.as_str().unwrap_or("?")
            );
            if file.as_ref().is_some_and(|f| f["headless"] == true) {
                println!(
                    "headless: {}",
                    file.as_ref()
                        .and_then(|f| f["headless_reason"].as_str())
                        .unwrap_or("")
                );
            }
        }
        None => println!("atlas daemon is not running"),
    }
    for p in problems.as_array().into_iter().flatten() {
        println!("{}", p.as_str().unwrap_or_default());
    }
    if let Some(h) = file
        .as_ref()
        .filter(|_| pid.is_some())
        .map(|f| &f["history"])
        && let Ok(h) = serde_json::from_value::<atlas::store::StoreHealth>(h.clone())
    {
        println!("history: {}", h.summary());
    }
    if let Some(url) = file
        .as_ref()
        .filter(|_| pid.is_some())
        .and_then(|f| f["api_url"].as_str())
    {
        println!("api: {url} (token: `atlas api token`)");
    }
    println!("model: {}", model.as_str().unwrap_or("none installed"));
    if let Some(speech) = speech.as_str() {
        println!("speech: {speech}");
    }
    if let Some(list) = next.as_array() {
        for n in list {
            let at = n["at"]
                .as_str()
                .and_then(|a| chrono::DateTime::parse_from_rfc3339(a).ok())
                .map(|a| {
                    a.with_timezone(&chrono::Local)
                        .format("%a %Y-%m-%d %H:%M:%S")
                        .to_string()
                })
                .unwrap_or_default();
            println!("next: {} at {at}", n["name"].as_str().unwrap_or(""));
        }
    }
    Ok(true)
}

fn model_now(config: &Config, data_dir: &Path) -> Option<String> {
    let paths = Paths {
        config_file: Default::default(),
        data_dir: data_dir.to_path_buf(),
        user_workflows: Default::default(),
    };
    resolve_model(None, config, &paths)
        .ok()
        .map(|p| p.display().to_string())
}
