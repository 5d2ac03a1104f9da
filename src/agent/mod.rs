//! The resident agent: one task that owns the voice session as a state machine.
//!
//! Messages come from the desktop (hotkey press and release, tray menu), from voice handling
//! tasks it spawned, and from the speaker; the task is the only owner of the session's state
//! ([`Stage`]) and of the microphone recorder. Schedules and other triggers run beside it through
//! the engine, and their speech goes through the same [`GatedSpeaker`], queued behind current
//! speech and held while the key is down.

mod speaker;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub use speaker::GatedSpeaker;

use crate::audio::Recorder;
use crate::desktop::{AgentState, DesktopEvent, TrayUpdate};
use crate::engine::{Engine, RunRequest};
use crate::tts::{AudioPlayer, Speaker};
use crate::voice::{Handled, VoiceLoop};

/// `[agent]` in config.toml.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// The push-to-talk combination, e.g. `ctrl+shift+space`.
    pub hotkey: String,
    /// `hold` (talk while the key is down) or `toggle` (press to start, press to stop).
    pub mode: PttMode,
    /// Presses shorter than this are ignored, in milliseconds.
    pub min_press_ms: u64,
    /// Show the tray icon.
    pub tray: bool,
    /// Play the listening chimes.
    pub chimes: bool,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            hotkey: "ctrl+shift+space".into(),
            mode: PttMode::Hold,
            min_press_ms: 250,
            tray: true,
            chimes: true,
        }
    }
}

/// How the push-to-talk key works.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PttMode {
    /// Record while held.
    #[default]
    Hold,
    /// Press to start, press again to stop.
    Toggle,
}

/// Where the voice session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Waiting for the key.
    Idle,
    /// Recording.
    Listening,
    /// Transcribing and running the workflow.
    Running,
    /// Listening is switched off (schedules still run).
    Paused,
}

/// Messages the agent task handles.
#[derive(Debug)]
pub enum Msg {
    /// From the desktop.
    Desktop(DesktopEvent),
    /// A voice handling task finished.
    Handled(Box<Result<Handled, String>>),
    /// The speaker started or stopped speaking.
    Speaking(bool),
}

/// What the agent needs.
pub struct Parts {
    /// The engine.
    pub engine: Engine,
    /// The voice loop (None: no model or no microphone; the key then only says why).
    pub voice: Option<Arc<VoiceLoop>>,
    /// The microphone (None: none available).
    pub recorder: Option<Recorder>,
    /// The speaker everything says things through.
    pub speaker: Arc<GatedSpeaker>,
    /// For chimes.
    pub player: Option<AudioPlayer>,
    /// Sends updates to the tray (None when headless).
    pub tray: Option<Box<dyn Fn(TrayUpdate) + Send>>,
    /// Called with every stage change (status file).
    pub on_stage: Box<dyn Fn(Stage) + Send>,
}

/// The agent task. Returns when it gets `Quit` or its channel closes.
pub async fn run(
    cfg: AgentConfig,
    mut parts: Parts,
    tx: mpsc::UnboundedSender<Msg>,
    mut rx: mpsc::UnboundedReceiver<Msg>,
) {
    let mut stage = Stage::Idle;
    let mut listening_on = true;
    let mut pressed_at: Option<Instant> = None;
    let mut speaking = parts.speaker.subscribe_speaking();
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            while speaking.changed().await.is_ok() {
                let now = *speaking.borrow_and_update();
                if tx.send(Msg::Speaking(now)).is_err() {
                    break;
                }
            }
        });
    }
    let tray = |parts: &Parts, u: TrayUpdate| {
        if let Some(t) = &parts.tray {
            t(u);
        }
    };
    let set_stage = |parts: &Parts, stage: &mut Stage, new: Stage| {
        *stage = new;
        (parts.on_stage)(new);
        let state = match new {
            Stage::Idle => AgentState::Idle,
            Stage::Listening => AgentState::Listening,
            Stage::Running => AgentState::Thinking,
            Stage::Paused => AgentState::Paused,
        };
        if let Some(t) = &parts.tray {
            t(TrayUpdate::State(state));
        }
    };
    set_stage(&parts, &mut stage, Stage::Idle);
    while let Some(msg) = rx.recv().await {
        match msg {
            Msg::Desktop(DesktopEvent::HotkeyPressed) => {
                if cfg.mode == PttMode::Toggle && stage == Stage::Listening {
                    finish_recording(&cfg, &mut parts, &mut stage, &mut pressed_at, &tx, true)
                        .await;
                    continue;
                }
                if !listening_on || stage != Stage::Idle {
                    tracing::debug!(?stage, listening_on, "hotkey ignored");
                    continue;
                }
                // A press while Atlas speaks interrupts it; speech waits while the key is down.
                parts.speaker.hold(true);
                parts.speaker.stop();
                let Some(rec) = parts.recorder.as_mut() else {
                    tracing::warn!("push-to-talk pressed but no microphone is available");
                    parts.speaker.hold(false);
                    continue;
                };
                if let Err(e) = rec.start() {
                    tracing::warn!(error = %e, "cannot start recording");
                    parts.speaker.hold(false);
                    continue;
                }
                pressed_at = Some(Instant::now());
                if cfg.chimes
                    && let Some(p) = &parts.player
                {
                    let _ = p.play_chime(crate::tts::ChimeKind::ListeningStarted);
                }
                // Load the model while the key is held, so it is ready at release.
                if let Some(v) = &parts.voice
                    && !v.transcriber().is_loaded()
                {
                    let t = v.transcriber().clone();
                    tokio::spawn(async move {
                        if let Err(e) = t.preload().await {
                            tracing::warn!(error = %e, "cannot load the whisper model");
                        }
                    });
                }
                set_stage(&parts, &mut stage, Stage::Listening);
            }
            Msg::Desktop(DesktopEvent::HotkeyReleased) => {
                if cfg.mode == PttMode::Hold && stage == Stage::Listening {
                    finish_recording(&cfg, &mut parts, &mut stage, &mut pressed_at, &tx, false)
                        .await;
                }
            }
            Msg::Desktop(DesktopEvent::SetListening(on)) => {
                listening_on = on;
                tray(&parts, TrayUpdate::Listening(on));
                if stage == Stage::Idle || stage == Stage::Paused {
                    set_stage(
                        &parts,
                        &mut stage,
                        if on { Stage::Idle } else { Stage::Paused },
                    );
                }
            }
            Msg::Desktop(DesktopEvent::RunWorkflow(id)) => {
                if let Err(e) = parts.engine.trigger(RunRequest::manual(&id)) {
                    tracing::warn!(workflow = %id, error = %e, "tray run refused");
                }
            }
            Msg::Desktop(DesktopEvent::OpenWorkflowsFolder) => {}
            Msg::Desktop(DesktopEvent::Quit) => break,
            Msg::Handled(result) => {
                match *result {
                    Ok(h) => {
                        tracing::info!(transcript = %h.transcript, workflow = ?h.workflow, reply = ?h.reply, timings = ?h.timings, "utterance handled")
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "utterance failed");
                        if let Some(t) = &parts.tray {
                            t(TrayUpdate::State(AgentState::Error));
                        }
                    }
                }
                if stage == Stage::Running {
                    set_stage(
                        &parts,
                        &mut stage,
                        if listening_on {
                            Stage::Idle
                        } else {
                            Stage::Paused
                        },
                    );
                }
            }
            Msg::Speaking(now) => {
                if let Some(t) = &parts.tray {
                    let state = match (now, stage) {
                        (true, _) => AgentState::Speaking,
                        (false, Stage::Listening) => AgentState::Listening,
                        (false, Stage::Running) => AgentState::Thinking,
                        (false, Stage::Paused) => AgentState::Paused,
                        (false, Stage::Idle) => AgentState::Idle,
                    };
                    t(TrayUpdate::State(state));
                }
            }
        }
    }
    parts.speaker.stop();
}

async fn finish_recording(
    cfg: &AgentConfig,
    parts: &mut Parts,
    stage: &mut Stage,
    pressed_at: &mut Option<Instant>,
    tx: &mpsc::UnboundedSender<Msg>,
    toggle: bool,
) {
    let released = Instant::now();
    let held = pressed_at.take().map(|t| t.elapsed()).unwrap_or_default();
    let recording = parts.recorder.as_mut().map(|r| r.stop());
    parts.speaker.hold(false);
    let new = |s: Stage| s;
    if !toggle && held < Duration::from_millis(cfg.min_press_ms) {
        tracing::info!(
            held_ms = held.as_millis() as u64,
            "press too short: ignored"
        );
        *stage = new(Stage::Idle);
        (parts.on_stage)(Stage::Idle);
        if let Some(t) = &parts.tray {
            t(TrayUpdate::State(AgentState::Idle));
        }
        return;
    }
    if cfg.chimes
        && let Some(p) = &parts.player
    {
        let _ = p.play_chime(crate::tts::ChimeKind::ListeningStopped);
    }
    let samples = match recording {
        Some(Ok(r)) => r.samples,
        Some(Err(e)) => {
            let _ = tx.send(Msg::Handled(Box::new(Err(e.to_string()))));
            *stage = Stage::Running;
            return;
        }
        None => Vec::new(),
    };
    *stage = Stage::Running;
    (parts.on_stage)(Stage::Running);
    if let Some(t) = &parts.tray {
        t(TrayUpdate::State(AgentState::Thinking));
    }
    let Some(voice) = parts.voice.clone() else {
        let _ = tx.send(Msg::Handled(Box::new(Err(
            "no whisper model is installed: run `atlas model download base.en`".into(),
        ))));
        return;
    };
    let tx = tx.clone();
    tokio::spawn(async move {
        let r = voice
            .handle(samples, released)
            .await
            .map_err(|e| e.to_string());
        let _ = tx.send(Msg::Handled(Box::new(r)));
    });
}
