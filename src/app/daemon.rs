//! `atlas daemon` and `atlas status`: the resident agent and what it tells about itself.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Global, ShutdownSignal, build, instance, resolve_model, warn_load_errors};
use crate::agent::{self, GatedSpeaker, Msg, Parts, Stage};
use crate::config::{self, Config};
use crate::desktop::{self, Desktop, DesktopEvent, TrayUpdate};
use crate::store::Store;
use crate::stt::{SttConfig, Transcriber};
use crate::triggers::Scheduler;
use crate::tts::{AutoSpeaker, Speaker};
use crate::voice::{MeteredSpeaker, VoiceLoop};

/// What the daemon tells `atlas status` besides its stage.
#[derive(Default)]
struct Facts {
    model: Option<String>,
    headless: Option<String>,
    /// What is off and why ("microphone is off: ...").
    problems: Vec<String>,
    /// Still opening the voice, the desktop and the audio devices.
    starting: bool,
}

fn status_json(
    stage: Stage,
    facts: &Facts,
    scheduler: &Scheduler,
    speech: &AutoSpeaker,
    store: &Store,
) -> Value {
    let speech = speech.report();
    json!({
        "history": store.health(),
        "pid": std::process::id(),
        "state": if facts.starting { json!("starting") } else { json!(stage) },
        "model": facts.model,
        "headless": facts.headless.is_some(),
        "headless_reason": facts.headless,
        "problems": facts.problems,
        "speech": speech.to_string(),
        "speech_backend": speech.backend,
        "next": scheduler.upcoming(5),
        "updated_at": chrono::Utc::now().to_rfc3339(),
    })
}

/// How often the status file is rewritten while nothing changes.
const STATUS_REFRESH: Duration = Duration::from_secs(5);

/// `atlas daemon`: runs until SIGINT/SIGTERM or the tray's Quit.
pub async fn daemon(global: &Global) -> anyhow::Result<()> {
    let mut signals = ShutdownSignal::listen();
    let (config, paths) = config::load(global.config.as_deref(), global.data_dir.as_deref())?;
    std::fs::create_dir_all(&paths.data_dir)
        .with_context(|| format!("cannot create {}", paths.data_dir.display()))?;
    let _lock = instance::acquire(&paths.data_dir)?;
    // The speech backend is chosen on its own thread (each candidate bounded): the engine, the
    // scheduler and the status file never wait for a speech service.
    let auto = crate::tts::start_speaker(&config.speech);
    let metered = MeteredSpeaker::new(auto.clone());
    let gated = GatedSpeaker::new(metered.clone());
    let app = build(global, gated.clone())?;
    warn_load_errors(&app.report);
    let engine = app.engine.clone();
    let (resumed, interrupted) = engine.recover().await?;
    let shutdown = CancellationToken::new();
    let scheduler = Scheduler::new(engine.clone(), true);
    tokio::spawn(scheduler.clone().run(shutdown.clone()));
    tokio::spawn(super::history::keep_history(
        engine.store().clone(),
        config.history,
        shutdown.clone(),
    ));

    // The status file: written now, rewritten at every stage change and every few seconds so
    // that the speech choice and the next scheduled runs it lists stay current.
    let facts = Arc::new(std::sync::Mutex::new(Facts {
        starting: true,
        ..Facts::default()
    }));
    let stage_now = Arc::new(std::sync::Mutex::new(Stage::Idle));
    let write_status = {
        let (data_dir, facts, stage_now, scheduler, auto, store) = (
            paths.data_dir.clone(),
            facts.clone(),
            stage_now.clone(),
            scheduler.clone(),
            auto.clone(),
            engine.store().clone(),
        );
        move |stage: Option<Stage>| {
            let mut now = stage_now.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(s) = stage {
                *now = s;
            }
            let facts = facts.lock().unwrap_or_else(|e| e.into_inner());
            instance::write_status(
                &data_dir,
                &status_json(*now, &facts, &scheduler, &auto, &store),
            );
        }
    };
    write_status(None);
    {
        let (write_status, stop) = (write_status.clone(), shutdown.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(STATUS_REFRESH);
            loop {
                tokio::select! {
                    _ = tick.tick() => write_status(None),
                    _ = stop.cancelled() => break,
                }
            }
        });
    }
    // The audio devices are opened one at a time (two streams opening at once through ALSA's
    // PulseAudio plugin can stall both): the microphone and the chimes wait for the speech
    // choice, which is bounded; the engine, the schedules and the status file above do not.
    let report = auto.ready().await;
    tracing::info!(speech = %report, "speech output chosen");
    if report.backend == "none" {
        eprintln!("speech is off: {report}; replies are only logged");
    }
    write_status(None);

    // Voice: a model and a microphone, or a plain message saying what is missing.
    // Everything that is off, said once at start and kept for `atlas status`.
    let mut problems = Vec::new();
    let mut off = |what: String| {
        eprintln!("{what}");
        problems.push(what);
    };
    let model = resolve_model(None, &config, &paths);
    let model_name = model.as_ref().ok().map(|p| p.display().to_string());
    let voice = match model {
        Ok(path) => {
            let mut stt = SttConfig::new(path);
            stt.idle_unload = Duration::from_secs(config.voice.idle_unload_secs);
            stt.audio_ctx_floor = config.voice.audio_ctx_floor;
            match VoiceLoop::new(
                engine.clone(),
                Transcriber::new(stt),
                metered.clone(),
                config.voice.clone(),
            ) {
                Ok(v) => Some(Arc::new(v)),
                Err(e) => {
                    off(format!("voice is off: {e}"));
                    None
                }
            }
        }
        Err(e) => {
            off(format!("voice is off: {e:#}"));
            None
        }
    };

    let (tx, rx) = mpsc::unbounded_channel::<Msg>();
    let headless = desktop::display_problem();
    let mut desktop_handle = None;
    let mut tray_fn: Option<Box<dyn Fn(TrayUpdate) + Send>> = None;
    let mut recorder = None;
    let mut player = None;
    match &headless {
        Some(reason) => eprintln!(
            "no display ({reason}): running headless, the hotkey and tray are off; schedules and workflows work"
        ),
        None => {
            let (dtx, mut drx) = mpsc::unbounded_channel::<DesktopEvent>();
            let dcfg = desktop::DesktopConfig {
                hotkey: config.agent.hotkey.clone(),
                tray: config.agent.tray,
            };
            match Desktop::start(&dcfg, dtx) {
                Ok(d) => {
                    if let Some(problem) = d.hotkey_problem() {
                        off(format!("push-to-talk is off: {problem}"));
                    }
                    let d = Arc::new(d);
                    let d2 = d.clone();
                    tray_fn = Some(Box::new(move |u| d2.update(u)));
                    desktop_handle = Some(d);
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        while let Some(e) = drx.recv().await {
                            if tx.send(Msg::Desktop(e)).is_err() {
                                break;
                            }
                        }
                    });
                }
                Err(e) => off(format!("the hotkey and tray are off: {e}")),
            }
            let capture = crate::audio::CaptureConfig {
                device: config.voice.input_device.clone(),
                max_seconds: config.voice.max_seconds,
                keep_warm: true,
            };
            recorder = tokio::task::spawn_blocking(move || crate::audio::Recorder::open(&capture))
                .await?
                .map_err(|e| off(format!("the microphone is off: {e}")))
                .ok();
            if config.agent.chimes {
                player = tokio::task::spawn_blocking(crate::tts::AudioPlayer::open_default)
                    .await?
                    .map_err(|e| off(format!("the chimes are off: {e}")))
                    .ok();
            }
        }
    }
    if let Some(t) = &tray_fn {
        let workflows: Vec<(String, String)> = engine
            .workflows()
            .values()
            .filter(|w| w.has_trigger("manual"))
            .map(|w| (w.id().to_owned(), w.name().to_owned()))
            .collect();
        t(TrayUpdate::Workflows(workflows));
        t(TrayUpdate::Next(scheduler.upcoming(1).first().map(|u| {
            format!(
                "{} at {}",
                u.name,
                u.at.with_timezone(&chrono::Local).format("%a %H:%M")
            )
        })));
    }
    // Tray: recent runs from the event bus.
    if let Some(d) = desktop_handle.clone() {
        let mut events = engine.subscribe();
        let store = engine.store().clone();
        let sched = scheduler.clone();
        tokio::spawn(async move {
            // A run finished, or events were lost to lag: either way re-read the store.
            while crate::engine::wait_run_finished(&mut events).await {
                let _ = store.flush().await;
                let recent = store
                    .list_runs(None, 5)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|r| format!("{}: {}", r.workflow_id, r.status))
                    .collect();
                d.update(TrayUpdate::Recent(recent));
                d.update(TrayUpdate::Next(sched.upcoming(1).first().map(|u| {
                    format!(
                        "{} at {}",
                        u.name,
                        u.at.with_timezone(&chrono::Local).format("%a %H:%M")
                    )
                })));
            }
        });
    }

    {
        let mut f = facts.lock().unwrap_or_else(|e| e.into_inner());
        *f = Facts {
            model: model_name.clone(),
            headless: headless.clone(),
            problems,
            starting: false,
        };
    }
    write_status(None);
    let parts = Parts {
        engine: engine.clone(),
        voice,
        recorder,
        speaker: gated.clone(),
        player,
        tray: tray_fn,
        on_stage: Box::new(move |stage| write_status(Some(stage))),
        workflows_dir: paths.user_workflows.clone(),
        max_recording: Duration::from_secs(u64::from(config.voice.max_seconds.max(1))),
    };
    eprintln!(
        "atlas daemon running (pid {}): {} workflows, {} resumed and {} interrupted runs recovered, database {}",
        std::process::id(),
        app.report.workflows.len(),
        resumed.len(),
        interrupted.len(),
        app.paths.database().display()
    );
    tracing::info!(hotkey = %config.agent.hotkey, headless = headless.is_some(), "agent ready");
    let mut agent = tokio::spawn(agent::run(config.agent.clone(), parts, tx.clone(), rx));
    tokio::select! {
        _ = signals.recv() => {}
        _ = &mut agent => {}
    }
    eprintln!("atlas daemon stopping");
    // From here on nothing starts a run: the engine refuses new ones, the agent and the
    // scheduler stop.
    agent.abort();
    shutdown.cancel();
    gated.stop();
    engine.shutdown("the daemon was stopped").await;
    if let Some(d) = desktop_handle
        && let Ok(d) = Arc::try_unwrap(d)
    {
        d.shutdown();
    }
    let _ = std::fs::remove_file(instance::status_path(&paths.data_dir));
    Ok(())
}

/// `atlas status`.
pub fn status(global: &Global, as_json: bool) -> anyhow::Result<bool> {
    let (config, paths) = config::load(global.config.as_deref(), global.data_dir.as_deref())?;
    let pid = instance::running(&paths.data_dir);
    let file: Option<Value> = std::fs::read(instance::status_path(&paths.data_dir))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
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
                &json!({"running": pid.is_some(), "pid": pid, "state": state, "model": model, "speech": speech, "next": next, "problems": problems, "headless": file.as_ref().map(|f| f["headless"].clone()), "history": file.as_ref().filter(|_| pid.is_some()).map(|f| f["history"].clone())})
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
        && let Ok(h) = serde_json::from_value::<crate::store::StoreHealth>(h.clone())
    {
        println!("history: {}", h.summary());
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
    let paths = config::Paths {
        config_file: Default::default(),
        data_dir: data_dir.to_path_buf(),
        user_workflows: Default::default(),
    };
    resolve_model(None, config, &paths)
        .ok()
        .map(|p| p.display().to_string())
}
