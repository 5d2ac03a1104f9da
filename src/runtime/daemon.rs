//! The resident agent: [`Daemon::start`] brings every part up, [`Daemon::run`] keeps it until a
//! shutdown future resolves (or the tray's Quit), then stops it cleanly.
//!
//! Start-up order matters: the instance lock, the engine with crash recovery, the scheduler,
//! retention and the status file (state `starting`) come first, so schedules run even when a
//! speech service or an audio device hangs; the speaker is chosen on its own thread (each
//! candidate bounded); the microphone and chimes wait for that choice, because two audio
//! streams opening at once through ALSA's PulseAudio plugin can stall both.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::instance::{self, InstanceLock, LockError};
use super::status::{Facts, StatusWriter};
use super::{Runtime, RuntimeError, keep_history, resolve_model};
use crate::agent::{self, GatedSpeaker, Msg, Parts};
use crate::api::{self, Api, ApiParts};
use crate::audio::{CaptureConfig, Recorder};
use crate::config::{Config, Paths};
use crate::desktop::{self, Desktop, DesktopEvent, TrayUpdate};
use crate::engine::{Engine, EngineError};
use crate::integrations::Integrations;
use crate::integrations::calendar_watch::CalendarWatch;
use crate::integrations::mail_watch::MailWatch;
use crate::stt::{SttConfig, Transcriber};
use crate::triggers::events::{files, system};
use crate::triggers::{Event, EventHub, EventTriggers, Scheduler};
use crate::tts::{AudioPlayer, AutoSpeaker, Speaker, SpeechReport};
use crate::voice::{MeteredSpeaker, VoiceLoop};

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Another daemon runs, or the lock file is unusable.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The engine could not be built.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// Crash recovery failed (the database could not be read).
    #[error("crash recovery failed: {0}")]
    Recover(#[from] EngineError),
}

/// What start-up found, for the person who started the daemon.
#[derive(Debug, Clone)]
pub struct Started {
    /// Workflows loaded.
    pub workflows: usize,
    /// Runs resumed from their last completed action.
    pub resumed: usize,
    /// Runs of a dead daemon marked interrupted.
    pub interrupted: usize,
    /// The database file.
    pub database: PathBuf,
    /// Why no display is used (the hotkey and tray are off), when headless.
    pub headless: Option<String>,
    /// What else is off and why, one line each ("the microphone is off: ...").
    pub problems: Vec<String>,
    /// The speech output chosen.
    pub speech: SpeechReport,
}

/// A running daemon.
pub struct Daemon {
    runtime: Runtime,
    api: Option<Arc<Api>>,
    started: Started,
    /// Stops the scheduler, retention and the status refresh.
    background: CancellationToken,
    speaker: Arc<GatedSpeaker>,
    desktop: Option<Arc<Desktop>>,
    agent: JoinHandle<()>,
    _lock: InstanceLock,
}

/// What the desktop side of start-up opened (all `None` when headless).
#[derive(Default)]
struct DesktopParts {
    desktop: Option<Arc<Desktop>>,
    recorder: Option<Recorder>,
    player: Option<AudioPlayer>,
}

impl Daemon {
    /// Starts every part and the agent task; returns once they are up (or known to be off).
    pub async fn start(config: Config, paths: Paths) -> Result<Daemon, DaemonError> {
        super::create_dir("data directory", &paths.data_dir)?;
        let lock = instance::acquire(&paths.data_dir)?;
        let auto = crate::tts::start_speaker(&config.speech);
        let metered = MeteredSpeaker::new(auto.clone());
        let gated = GatedSpeaker::new(metered.clone());
        let runtime = Runtime::build(config, paths, gated.clone())?;
        let engine = runtime.engine.clone();
        let (resumed, interrupted) = engine.recover().await?;
        let background = CancellationToken::new();
        let (scheduler, status) = start_background(&runtime, auto.clone(), &background);

        let speech = auto.ready().await;
        tracing::info!(speech = %speech, "speech output chosen");
        status.write(None);

        let mut problems = Vec::new();
        let (voice, model_name) = open_voice(&runtime, metered, &mut problems);
        let events = start_events(&runtime, &background, &mut problems);
        let integrations = start_integrations(&runtime, events.hub(), &background);
        let api = start_api(
            &runtime,
            voice.clone(),
            &status,
            &events,
            integrations.clone(),
            &background,
            &mut problems,
        )
        .await;
        let (tx, rx) = mpsc::unbounded_channel::<Msg>();
        let headless = desktop::display_problem();
        let parts = match &headless {
            Some(_) => DesktopParts::default(),
            None => open_desktop(&runtime.config, &tx, &mut problems).await,
        };
        if let Some(d) = &parts.desktop {
            feed_tray(d.clone(), &engine, &scheduler);
            feed_tray_accounts(d.clone(), integrations.clone(), events.hub(), &background);
        }
        status.set_facts(Facts {
            model: model_name,
            headless: headless.clone(),
            problems: problems.clone(),
            starting: false,
            api_url: api.as_ref().and_then(|a| a.url()),
        });
        status.write(None);
        let desktop = parts.desktop.clone();
        let agent_parts = Parts {
            engine: engine.clone(),
            voice,
            recorder: parts.recorder,
            speaker: gated.clone(),
            player: parts.player,
            tray: parts
                .desktop
                .map(|d| Box::new(move |u| d.update(u)) as Box<dyn Fn(TrayUpdate) + Send>),
            on_stage: {
                let api = api.clone();
                let hub = events.hub().clone();
                Box::new(move |stage| {
                    status.write(Some(stage));
                    hub.publish(Event::new(
                        "agent",
                        "agent.stage",
                        serde_json::json!({ "stage": stage }),
                    ));
                    if let Some(api) = &api {
                        api.publish_agent(
                            serde_json::json!({"type": "agent_stage", "stage": stage}),
                        );
                    }
                })
            },
            workflows_dir: runtime.paths.user_workflows.clone(),
            max_recording: Duration::from_secs(u64::from(runtime.config.voice.max_seconds.max(1))),
            live: agent::live_config(&runtime.config.voice),
            // Heard utterances join the dashboard's list (with their match candidates).
            on_handled: api.clone().map(|a| {
                Box::new(move |h: &crate::voice::Handled, _| {
                    a.record_utterance(h, "voice");
                }) as agent::OnHandled
            }),
            dashboard_link: api
                .clone()
                .map(|a| Box::new(move || a.login_url()) as Box<dyn Fn() -> Option<String> + Send>),
        };
        tracing::info!(hotkey = %runtime.config.agent.hotkey, headless = headless.is_some(), "agent ready");
        let agent = tokio::spawn(agent::run(
            runtime.config.agent.clone(),
            agent_parts,
            tx,
            rx,
        ));
        let started = Started {
            workflows: runtime.report.workflows.len(),
            resumed: resumed.len(),
            interrupted: interrupted.len(),
            database: runtime.paths.database(),
            headless,
            problems,
            speech,
        };
        Ok(Daemon {
            runtime,
            api,
            started,
            background,
            speaker: gated,
            desktop,
            agent,
            _lock: lock,
        })
    }

    /// What start-up found.
    pub fn started(&self) -> &Started {
        &self.started
    }

    /// The runtime (config, paths, engine, load report).
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.runtime.engine
    }

    /// The control API's URL, when it listens.
    pub fn api_url(&self) -> Option<String> {
        self.api.as_ref().and_then(|a| a.url())
    }

    /// Runs until `shutdown` resolves or the agent ends (the tray's Quit), then stops: from
    /// the first moment of stopping nothing starts a run (the engine refuses new ones, the agent
    /// and the scheduler stop); runs in flight are recorded `cancelled`.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::select! {
            _ = shutdown => {}
            _ = &mut self.agent => {}
        }
        tracing::info!("atlas daemon stopping");
        self.agent.abort();
        self.background.cancel();
        self.speaker.stop();
        self.runtime.engine.shutdown("the daemon was stopped").await;
        if let Some(d) = self.desktop.take()
            && let Ok(d) = Arc::try_unwrap(d)
        {
            d.shutdown();
        }
        let _ = std::fs::remove_file(instance::status_path(&self.runtime.paths.data_dir));
    }
}

/// The scheduler, retention and the status file (state `starting`, refreshed), all stopped by
/// `background`.
fn start_background(
    runtime: &Runtime,
    speech: Arc<AutoSpeaker>,
    background: &CancellationToken,
) -> (Scheduler, StatusWriter) {
    let engine = &runtime.engine;
    let scheduler = Scheduler::new(engine.clone(), true);
    tokio::spawn(scheduler.clone().run(background.clone()));
    tokio::spawn(keep_history(
        engine.store().clone(),
        runtime.config.history,
        background.clone(),
    ));
    let status = StatusWriter::new(
        &runtime.paths.data_dir,
        scheduler.clone(),
        speech,
        engine.store().clone(),
    );
    status.write(None);
    tokio::spawn(status.clone().refresh(background.clone()));
    (scheduler, status)
}

/// The control API and webhooks on `[api] listen`, served until `background` is cancelled; why
/// it is off, if it is, is pushed to `problems`.
/// The `event` trigger dispatcher and its sources: the engine's bus (always), the watched folders
/// of `[events] watch` (a folder that cannot be watched is a problem), and the D-Bus signals
/// (on their own task, each bus bounded; an absent bus is an unavailable source, not a problem).
fn start_events(
    runtime: &Runtime,
    background: &CancellationToken,
    problems: &mut Vec<String>,
) -> EventTriggers {
    let hub = EventHub::default();
    let triggers = EventTriggers::start(
        runtime.engine.clone(),
        hub.clone(),
        runtime.config.events.max_starts_per_minute,
        background.clone(),
    );
    let config = &runtime.config.events;
    if config.watch.is_empty() {
        hub.set_source("files", "off: no folder in `[events] watch`");
    } else if let Err(e) = files::watch(
        &config.watch,
        Duration::from_millis(config.debounce_ms.max(1)),
        hub.clone(),
        background.clone(),
    ) {
        hub.set_source("files", format!("unavailable: {e}"));
        problems.push(format!("file events are off: {e}"));
    }
    if config.dbus {
        tokio::spawn(system::listen(
            system::Buses::default(),
            hub,
            background.clone(),
        ));
    } else {
        hub.set_source("system", "off: `[events] dbus = false`");
    }
    triggers
}

async fn start_api(
    runtime: &Runtime,
    voice: Option<Arc<VoiceLoop>>,
    status: &StatusWriter,
    events: &EventTriggers,
    integrations: Arc<Integrations>,
    background: &CancellationToken,
    problems: &mut Vec<String>,
) -> Option<Arc<Api>> {
    let listener = match api::bind(&runtime.config.api).await {
        Ok(Some(l)) => l,
        Ok(None) => return None,
        Err(e) => {
            problems.push(format!("the control API is off: {e}"));
            return None;
        }
    };
    let snapshot = status.clone();
    let parts = ApiParts {
        engine: runtime.engine.clone(),
        voice,
        config: runtime.config.clone(),
        paths: runtime.paths.clone(),
        status: Some(Arc::new({
            let events = events.clone();
            move || {
                let mut v = snapshot.snapshot();
                if let Some(o) = v.as_object_mut() {
                    o.insert(
                        "event_sources".into(),
                        serde_json::json!(events.hub().sources()),
                    );
                    o.insert(
                        "event_refusals".into(),
                        serde_json::json!(events.refusals()),
                    );
                }
                v
            }
        })),
        integrations: Some(integrations),
    };
    match Api::new(parts) {
        Ok(a) => {
            api::start(a.clone(), listener, background.clone());
            Some(a)
        }
        Err(e) => {
            problems.push(format!("the control API is off: {e}"));
            None
        }
    }
}

/// The voice loop on the configured model, and the model's path for the status file; why voice
/// is off, if it is, is pushed to `problems`.
fn open_voice(
    runtime: &Runtime,
    speaker: Arc<MeteredSpeaker>,
    problems: &mut Vec<String>,
) -> (Option<Arc<VoiceLoop>>, Option<String>) {
    let model = match resolve_model(None, &runtime.config, &runtime.paths) {
        Ok(path) => path,
        Err(e) => {
            problems.push(format!("voice is off: {e}"));
            return (None, None);
        }
    };
    let name = model.display().to_string();
    let voice = voice_loop(&runtime.config, &runtime.engine, model, speaker)
        .map_err(|e| problems.push(format!("voice is off: {e}")))
        .ok();
    (voice, Some(name))
}

/// The voice loop on the model at `model`.
fn voice_loop(
    config: &Config,
    engine: &Engine,
    model: PathBuf,
    speaker: Arc<MeteredSpeaker>,
) -> Result<Arc<VoiceLoop>, crate::voice::VoiceError> {
    let stt = SttConfig::for_voice(model, &config.voice);
    VoiceLoop::new(
        engine.clone(),
        Transcriber::new(stt),
        speaker,
        config.voice.clone(),
    )
    .map(Arc::new)
}

/// The hotkey and tray, the warm microphone and the chime player, one at a time; what fails is
/// pushed to `problems` and stays off.
async fn open_desktop(
    config: &Config,
    tx: &mpsc::UnboundedSender<Msg>,
    problems: &mut Vec<String>,
) -> DesktopParts {
    let mut parts = DesktopParts::default();
    let (dtx, mut drx) = mpsc::unbounded_channel::<DesktopEvent>();
    let dcfg = desktop::DesktopConfig {
        hotkey: config.agent.hotkey.clone(),
        tray: config.agent.tray,
    };
    match Desktop::start(&dcfg, dtx) {
        Ok(d) => {
            if let Some(problem) = d.hotkey_problem() {
                problems.push(format!("push-to-talk is off: {problem}"));
            }
            if let Some(problem) = d.tray_problem() {
                problems.push(format!("the tray is off: {problem}"));
            }
            parts.desktop = Some(Arc::new(d));
            let tx = tx.clone();
            tokio::spawn(async move {
                while let Some(e) = drx.recv().await {
                    if tx.send(Msg::Desktop(e)).is_err() {
                        break;
                    }
                }
            });
        }
        Err(e) => problems.push(format!("the hotkey and tray are off: {e}")),
    }
    let capture = CaptureConfig {
        device: config.voice.input_device.clone(),
        max_seconds: config.voice.max_seconds,
        keep_warm: true,
    };
    parts.recorder = opened(
        tokio::task::spawn_blocking(move || Recorder::open(&capture)).await,
        "the microphone",
        problems,
    );
    if config.agent.chimes {
        parts.player = opened(
            tokio::task::spawn_blocking(AudioPlayer::open_default).await,
            "the chimes",
            problems,
        );
    }
    parts
}

/// The device a blocking task opened, or `None` with "WHAT is off: why" pushed to `problems`.
fn opened<T, E: std::fmt::Display>(
    result: Result<Result<T, E>, tokio::task::JoinError>,
    what: &str,
    problems: &mut Vec<String>,
) -> Option<T> {
    let why = match result {
        Ok(Ok(device)) => return Some(device),
        Ok(Err(e)) => e.to_string(),
        Err(e) => e.to_string(),
    };
    problems.push(format!("{what} is off: {why}"));
    None
}

/// "Name at Tue 07:30" for the tray's next-run line.
fn next_run_line(scheduler: &Scheduler) -> Option<String> {
    scheduler.upcoming(1).first().map(|u| {
        format!(
            "{} at {}",
            u.name,
            u.at.with_timezone(&chrono::Local).format("%a %H:%M")
        )
    })
}

/// The `query` of every enabled workflow's `mail.new` trigger.
fn mail_queries(engine: &Engine) -> Vec<String> {
    engine
        .workflows()
        .values()
        .filter(|w| w.def.enabled)
        .flat_map(|w| w.def.triggers.iter())
        .filter_map(|t| match t {
            crate::workflow::TriggerDef::Event {
                event,
                query: Some(q),
                ..
            } if event == "mail.new" => Some(q.clone()),
            _ => None,
        })
        .collect()
}

/// The runtime's integrations, their events on the hub; their health checks (at start and
/// periodically) and the new-mail watcher run until the daemon stops.
fn start_integrations(
    runtime: &Runtime,
    hub: &EventHub,
    background: &CancellationToken,
) -> Arc<Integrations> {
    let integrations = runtime.integrations.clone();
    integrations.attach_hub(hub.clone());
    tokio::spawn(integrations.clone().run(background.clone()));
    let poll = runtime
        .config
        .integrations
        .get("gmail")
        .and_then(|g| g.poll_secs)
        .unwrap_or(60)
        .max(15);
    let engine = runtime.engine.clone();
    let watch = MailWatch::new(integrations.clone(), hub.clone(), &runtime.paths.data_dir)
        .with_queries(Arc::new(move || mail_queries(&engine)));
    tokio::spawn(watch.run(Duration::from_secs(poll), background.clone()));
    // One watcher for every calendar: `[integrations.calendar]`'s settings, else Microsoft's.
    let sections = ["calendar", "microsoft"].map(|n| runtime.config.integrations.get(n));
    let setting = |f: fn(&crate::config::ProviderConfig) -> Option<i64>| {
        sections.iter().flatten().find_map(|c| f(c))
    };
    let cal_poll = setting(|c| c.poll_secs.map(|s| s as i64))
        .unwrap_or(60)
        .max(15) as u64;
    let lead = setting(|c| c.remind_minutes).unwrap_or(10);
    let meetings = CalendarWatch::new(
        integrations.clone(),
        hub.clone(),
        &runtime.paths.data_dir,
        lead,
    );
    tokio::spawn(meetings.run(Duration::from_secs(cal_poll), background.clone()));
    start_watches(runtime, &integrations, hub, background);
    integrations
}

/// The polling triggers of the service integrations: each provider's [`crate::integrations::WatchFn`]
/// spawns its own.
fn start_watches(
    runtime: &Runtime,
    all: &Arc<Integrations>,
    hub: &EventHub,
    background: &CancellationToken,
) {
    let ctx = crate::integrations::WatchCtx {
        all,
        hub,
        data_dir: &runtime.paths.data_dir,
        shutdown: background,
    };
    for p in crate::integrations::PROVIDERS {
        if let Some(watch) = p.spec().watch {
            watch(&ctx);
        }
    }
}

/// Shows the integrations that need the user in the tray: now, and after every
/// `integration.*` event.
fn feed_tray_accounts(
    desktop: Arc<Desktop>,
    integrations: Arc<Integrations>,
    hub: &EventHub,
    background: &CancellationToken,
) {
    let mut events = hub.subscribe();
    let stop = background.clone();
    let show = move || {
        let lines = integrations
            .statuses()
            .into_iter()
            .filter(|s| s.needs_attention())
            .map(|s| match s.state.as_str() {
                "needs_reauth" => format!("{}: sign in again", s.title),
                _ => format!(
                    "{}: {}",
                    s.title,
                    s.reason.unwrap_or_else(|| "error".into())
                ),
            })
            .collect();
        desktop.update(TrayUpdate::Accounts(lines));
    };
    show();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                e = events.recv() => match e {
                    Ok(e) if e.kind.starts_with("integration.") => show(),
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => show(),
                    Err(_) => return,
                },
            }
        }
    });
}

/// Gives the tray its workflow menu and next run now, and its recent runs after every run.
fn feed_tray(desktop: Arc<Desktop>, engine: &Engine, scheduler: &Scheduler) {
    let workflows: Vec<(String, String)> = engine
        .workflows()
        .values()
        .filter(|w| w.has_trigger("manual"))
        .map(|w| (w.id().to_owned(), w.name().to_owned()))
        .collect();
    desktop.update(TrayUpdate::Workflows(workflows));
    desktop.update(TrayUpdate::Next(next_run_line(scheduler)));
    let mut events = engine.subscribe();
    let store = engine.store().clone();
    let scheduler = scheduler.clone();
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
            desktop.update(TrayUpdate::Recent(recent));
            desktop.update(TrayUpdate::Next(next_run_line(&scheduler)));
        }
    });
}
