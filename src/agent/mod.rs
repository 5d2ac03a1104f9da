//! The resident agent: one task that owns the voice session as a state machine.
//!
//! Messages come from the desktop (hotkey press and release, tray menu), from the voice handling
//! tasks it spawned (each utterance has a number and a cancellation token; a newer press cancels
//! the older utterance, which then starts no workflow, has its run cancelled and speaks no
//! reply), and from the speaker; the task is the only owner of the session's
//! state ([`Stage`]) and of the microphone recorder. Schedules and other triggers run beside it
//! through the engine, and their speech goes through the same [`GatedSpeaker`], queued behind
//! current speech and held while the key is down.
//!
//! While it records, a watcher thread (`audio::live::watch`) reads the recording and reports
//! pauses and the silence after speech as messages: at a pause the agent starts a speculative
//! decode of what was said so far (`VoiceLoop::speculate`, one per utterance, a newer replacing
//! the older) and hands it to the utterance task at release, which uses it only when nothing was
//! heard after its snapshot; in toggle mode the silence after speech (`voice.silence_stop`) ends
//! the recording like a second tap. The watcher and the speculation belong to the utterance:
//! release, a switch-off or a newer press drops them, and their late messages are stale.
//!
//! ```text
//!            press                release (held >= min_press_ms)
//!   Idle ───────────▶ Listening ─────────────────────────▶ Transcribing ──match──▶ Running
//!    ▲  ◀── too short ───┘                                                          │
//!    └──────────────────────────────── utterance handled ◀──────────────────────────┘
//!   Speaking: anything is being said (outside Listening); a press interrupts it and listens.
//!   Paused: listening switched off in the tray; the key is ignored, schedules still run.
//! ```

mod speaker;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use speaker::GatedSpeaker;

use crate::audio::{LiveConfig, LiveEvent, LiveWatch, Recorder};
use crate::config::{AgentConfig, PttMode, VoiceConfig};
use crate::desktop::{AgentState, DesktopEvent, TrayUpdate};
use crate::engine::{Engine, RunRequest};
use crate::tts::{AudioPlayer, Speaker};
use crate::voice::{Handled, Phase, Speculation, VoiceLoop};

/// Where the voice session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Waiting for the key.
    Idle,
    /// Recording.
    Listening,
    /// Whisper is decoding the utterance.
    Transcribing,
    /// The matched workflow (or the "not understood" reply) is running.
    Running,
    /// Something is being said: a reply or a scheduled alert.
    Speaking,
    /// Listening is switched off (schedules still run).
    Paused,
}

impl Stage {
    /// The tray's picture of the stage.
    pub fn tray_state(self) -> AgentState {
        match self {
            Stage::Idle => AgentState::Idle,
            Stage::Listening => AgentState::Listening,
            Stage::Transcribing | Stage::Running => AgentState::Thinking,
            Stage::Speaking => AgentState::Speaking,
            Stage::Paused => AgentState::Paused,
        }
    }
}

/// Messages the agent task handles.
#[derive(Debug)]
pub enum Msg {
    /// From the desktop.
    Desktop(DesktopEvent),
    /// Utterance `utterance` reached `phase`.
    Phase {
        /// The utterance's number.
        utterance: u64,
        /// Where it is.
        phase: Phase,
    },
    /// Utterance `utterance` was handled.
    Handled {
        /// The utterance's number.
        utterance: u64,
        /// When its recording ended.
        released: Instant,
        /// What became of it.
        result: Box<Result<Handled, String>>,
    },
    /// The speaker started or stopped speaking.
    Speaking(bool),
    /// The utterance with this number has recorded for the longest allowed time: it ends as if
    /// the key came up.
    RecordingLimit(u64),
    /// The live watcher of utterance `utterance`'s recording saw a pause or the final silence.
    Live {
        /// The utterance's number.
        utterance: u64,
        /// What it saw.
        event: LiveEvent,
    },
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
    /// The user's workflows folder, opened from the tray.
    pub workflows_dir: PathBuf,
    /// The longest recording (`voice.max_seconds`): a key held longer, or a toggle never pressed
    /// again, ends the utterance then.
    pub max_recording: Duration,
    /// When the live watcher reports a pause (speculative decoding) and the silence that ends a
    /// toggle-mode recording (`voice.speculate_pause_ms`, `voice.silence_stop`).
    pub live: LiveConfig,
    /// Called with every handled utterance of this agent and when its recording ended (the
    /// agent benchmark reads its timings).
    pub on_handled: Option<OnHandled>,
    /// Makes a one-time dashboard login link (the control API's), for the tray's "Open
    /// dashboard"; `None` when the API is off.
    pub dashboard_link: Option<Box<dyn Fn() -> Option<String> + Send>>,
}

/// A callback given every handled utterance and the instant its recording ended.
pub type OnHandled = Box<dyn Fn(&Handled, Instant) + Send>;

/// How long after Atlas's last sample (the start chime's, or the speech a press stopped) the
/// microphone may still hear it: the sound server's output buffer and the room.
const OUTPUT_ECHO: Duration = Duration::from_millis(300);

/// The live watcher's settings from `[voice]`: `speculate_pause_ms` and `silence_stop` (a
/// value that is not a positive number of seconds turns the silence stop off).
pub fn live_config(voice: &VoiceConfig) -> LiveConfig {
    LiveConfig {
        pause: Duration::from_millis(voice.speculate_pause_ms),
        silence_stop: Duration::try_from_secs_f32(voice.silence_stop).unwrap_or(Duration::ZERO),
        poll: Duration::from_millis(40),
        own_sound: Duration::ZERO,
    }
}

/// The agent task. Returns when it gets `Quit` or its channel closes.
pub async fn run(
    cfg: AgentConfig,
    parts: Parts,
    tx: mpsc::UnboundedSender<Msg>,
    mut rx: mpsc::UnboundedReceiver<Msg>,
) {
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
    let mut agent = Agent {
        cfg,
        parts,
        tx,
        base: Stage::Idle,
        speaking: false,
        listening_on: true,
        pressed_at: None,
        utterance: 0,
        shown: None,
        error: false,
        superseded: CancellationToken::new(),
        watch: None,
        speculation: None,
        own_sound: Duration::ZERO,
    };
    agent.publish();
    while let Some(msg) = rx.recv().await {
        if !agent.handle(msg) {
            break;
        }
    }
    agent.parts.speaker.stop();
}

/// The state the agent task owns.
struct Agent {
    cfg: AgentConfig,
    parts: Parts,
    tx: mpsc::UnboundedSender<Msg>,
    /// Where the session is, apart from speaking (which overlays every stage but Listening).
    base: Stage,
    speaking: bool,
    listening_on: bool,
    pressed_at: Option<Instant>,
    /// The current utterance's number; older ones are stale.
    utterance: u64,
    /// What was last published.
    shown: Option<(Stage, bool)>,
    /// The last utterance failed: the tray shows the error until the next press.
    error: bool,
    /// Cancelled when a newer press replaces the utterance being handled.
    superseded: CancellationToken,
    /// Watches the current recording (dropping it stops the watcher).
    watch: Option<LiveWatch>,
    /// The current recording's latest speculative decode.
    speculation: Option<Speculation>,
    /// The start of the current recording that may hold Atlas's own sound ([`Agent::own_sound`]).
    own_sound: Duration,
}

impl Agent {
    fn stage(&self) -> Stage {
        if self.speaking && self.base != Stage::Listening {
            Stage::Speaking
        } else {
            self.base
        }
    }

    fn at_rest(&self) -> Stage {
        if self.listening_on {
            Stage::Idle
        } else {
            Stage::Paused
        }
    }

    /// Tells the status file and the tray about a change of stage.
    fn publish(&mut self) {
        let now = (self.stage(), self.error);
        if self.shown == Some(now) {
            return;
        }
        self.shown = Some(now);
        (self.parts.on_stage)(now.0);
        let state = if now.1 && matches!(now.0, Stage::Idle | Stage::Paused) {
            AgentState::Error
        } else {
            now.0.tray_state()
        };
        self.tray(TrayUpdate::State(state));
    }

    fn tray(&self, u: TrayUpdate) {
        if let Some(t) = &self.parts.tray {
            t(u);
        }
    }

    /// Handles one message; false to stop.
    fn handle(&mut self, msg: Msg) -> bool {
        match msg {
            Msg::Desktop(DesktopEvent::HotkeyPressed) => self.pressed(),
            Msg::Desktop(DesktopEvent::HotkeyReleased) => {
                if self.cfg.mode == PttMode::Hold && self.base == Stage::Listening {
                    self.finish_recording(false);
                }
            }
            Msg::Desktop(DesktopEvent::SetListening(on)) => {
                self.listening_on = on;
                self.tray(TrayUpdate::Listening(on));
                if !on && self.base == Stage::Listening {
                    // Switched off mid-recording: drop what was recorded.
                    if let Some(rec) = self.parts.recorder.as_mut() {
                        let _ = rec.stop();
                    }
                    self.watch = None;
                    self.speculation = None;
                    self.parts.speaker.hold(false);
                    self.pressed_at = None;
                    self.base = Stage::Paused;
                } else if matches!(self.base, Stage::Idle | Stage::Paused) {
                    self.base = self.at_rest();
                }
            }
            Msg::Desktop(DesktopEvent::RunWorkflow(id)) => {
                let mut req = RunRequest::manual(&id);
                req.trigger.data = serde_json::json!({"source": "tray"});
                if let Err(e) = self.parts.engine.trigger(req) {
                    tracing::warn!(workflow = %id, error = %e, "tray run refused");
                }
            }
            Msg::Desktop(DesktopEvent::OpenWorkflowsFolder) => {
                open_folder(&self.parts.workflows_dir)
            }
            Msg::Desktop(DesktopEvent::OpenDashboard) => {
                match self.parts.dashboard_link.as_ref().and_then(|f| f()) {
                    Some(link) => xdg_open(std::ffi::OsStr::new(&link)),
                    None => tracing::warn!(
                        "the dashboard is served on the control API, which is off (api.listen)"
                    ),
                }
            }
            Msg::Desktop(DesktopEvent::Quit) => return false,
            Msg::Phase { utterance, phase } => {
                if utterance == self.utterance
                    && matches!(self.base, Stage::Transcribing | Stage::Running)
                {
                    self.base = match phase {
                        Phase::Transcribing => Stage::Transcribing,
                        Phase::Running => Stage::Running,
                    };
                }
            }
            Msg::Handled {
                utterance,
                released,
                result,
            } => {
                let current = utterance == self.utterance;
                match *result {
                    Ok(h) => {
                        if let Some(f) = &self.parts.on_handled {
                            f(&h, released);
                        }
                        tracing::info!(utterance, current, transcript = %h.transcript, workflow = ?h.workflow, reply = ?h.reply.as_deref().map(|r| crate::redact::process().text(r)), reason = ?h.reason, timings = ?h.timings, "utterance handled");
                        if current {
                            self.error = false;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(utterance, current, error = %e, "utterance failed");
                        if current {
                            self.error = true;
                        }
                    }
                }
                if current && matches!(self.base, Stage::Transcribing | Stage::Running) {
                    self.base = self.at_rest();
                }
            }
            Msg::Speaking(now) => self.speaking = now,
            Msg::RecordingLimit(utterance) => {
                if utterance == self.utterance && self.base == Stage::Listening {
                    tracing::info!(
                        seconds = self.parts.max_recording.as_secs(),
                        "longest recording reached: handling what was said"
                    );
                    self.finish_recording(true);
                }
            }
            Msg::Live { utterance, event } => {
                if utterance == self.utterance && self.base == Stage::Listening {
                    self.live(event);
                }
            }
        }
        self.publish();
        true
    }

    fn pressed(&mut self) {
        if self.cfg.mode == PttMode::Toggle && self.base == Stage::Listening {
            self.finish_recording(true);
            return;
        }
        if !self.listening_on {
            tracing::info!("push-to-talk ignored: listening is switched off in the tray");
            return;
        }
        if self.base == Stage::Listening {
            return;
        }
        // Any other stage: a new utterance. Speech stops (a press interrupts Atlas) and new
        // speech waits while the key is down; an utterance still being handled is superseded:
        // it starts no workflow, its run is cancelled and its reply is not spoken.
        let interrupted = self.speaking;
        self.parts.speaker.hold(true);
        self.parts.speaker.stop();
        self.superseded.cancel();
        let Some(rec) = self.parts.recorder.as_mut() else {
            tracing::warn!("push-to-talk pressed but no microphone is available");
            self.parts.speaker.hold(false);
            return;
        };
        if let Err(e) = rec.start() {
            tracing::warn!(error = %e, "cannot start recording");
            self.parts.speaker.hold(false);
            self.error = true;
            return;
        }
        let tap = rec.live_tap();
        self.pressed_at = Some(Instant::now());
        self.utterance += 1;
        self.speculation = None;
        self.own_sound = self.own_sound(interrupted);
        self.watch = self.watch_recording(tap);
        self.error = false;
        let (tx, utterance, limit) = (self.tx.clone(), self.utterance, self.parts.max_recording);
        tokio::spawn(async move {
            tokio::time::sleep(limit).await;
            let _ = tx.send(Msg::RecordingLimit(utterance));
        });
        if self.cfg.chimes
            && let Some(p) = &self.parts.player
        {
            let _ = p.play_chime(crate::tts::ChimeKind::ListeningStarted);
        }
        // Load the model while the key is held, so it is ready at release.
        if let Some(v) = &self.parts.voice
            && !v.transcriber().is_loaded()
        {
            let t = v.transcriber().clone();
            tokio::spawn(async move {
                if let Err(e) = t.preload().await {
                    tracing::warn!(error = %e, "cannot load the whisper model");
                }
            });
        }
        self.base = Stage::Listening;
    }

    /// Ends the recording and hands it to the voice loop; `any_length` skips the too-short check
    /// (a toggle press, or the recording limit).
    fn finish_recording(&mut self, any_length: bool) {
        let released = Instant::now();
        self.watch = None;
        let speculation = self.speculation.take();
        let held = self
            .pressed_at
            .take()
            .map(|t| t.elapsed())
            .unwrap_or_default();
        let recording = self.parts.recorder.as_mut().map(|r| r.stop());
        self.parts.speaker.hold(false);
        if !any_length && held < Duration::from_millis(self.cfg.min_press_ms) {
            tracing::info!(
                held_ms = held.as_millis() as u64,
                "press too short: ignored"
            );
            self.base = self.at_rest();
            return;
        }
        if self.cfg.chimes
            && let Some(p) = &self.parts.player
        {
            let _ = p.play_chime(crate::tts::ChimeKind::ListeningStopped);
        }
        self.base = Stage::Transcribing;
        self.superseded = CancellationToken::new();
        let superseded = self.superseded.clone();
        let utterance = self.utterance;
        let tx = self.tx.clone();
        let done = move |result: Result<Handled, String>| {
            let _ = tx.send(Msg::Handled {
                utterance,
                released,
                result: Box::new(result),
            });
        };
        let samples = match recording {
            Some(Ok(r)) => r.samples,
            Some(Err(e)) => return done(Err(e.to_string())),
            None => Vec::new(),
        };
        let Some(voice) = self.parts.voice.clone() else {
            return done(Err(
                "no whisper model is installed: run `atlas model download base.en`".into(),
            ));
        };
        let (tx, own_sound) = (self.tx.clone(), self.own_sound);
        tokio::spawn(async move {
            let progress = move |phase| {
                let _ = tx.send(Msg::Phase { utterance, phase });
            };
            let r = voice
                .handle_released(
                    samples,
                    released,
                    &progress,
                    &superseded,
                    speculation,
                    own_sound,
                )
                .await
                .map_err(|e| e.to_string());
            done(r);
        });
    }
}

impl Agent {
    /// Starts the watcher of the recording `tap` reads, when there is a voice loop to hand its
    /// pauses to (the silence stop only matters in toggle mode).
    fn watch_recording(&self, tap: crate::audio::LiveTap) -> Option<LiveWatch> {
        self.parts.voice.as_ref()?;
        let mut live = self.parts.live;
        if self.cfg.mode == PttMode::Hold {
            live.silence_stop = Duration::ZERO;
        }
        live.own_sound = self.own_sound;
        let (tx, utterance) = (self.tx.clone(), self.utterance);
        crate::audio::live::watch(tap, live, move |event| {
            tx.send(Msg::Live { utterance, event }).is_ok()
        })
    }

    /// The start of a recording that may hold Atlas's own sound, heard back through the
    /// microphone: the start chime, which plays into the room as the recording opens (a pitched
    /// tone passes the speech gate: measured, a chime taken for speech ended a toggle-mode
    /// recording 1.2 s later, before the user had said anything), and, when the press cut
    /// speech short (`interrupted`), what the sound server still plays of it (measured: a
    /// story's last 250 ms made whisper hear "I'll skip set the volume to low."). Each may be
    /// heard up to [`OUTPUT_ECHO`] after its last sample.
    fn own_sound(&self, interrupted: bool) -> Duration {
        let chime = if self.cfg.chimes && self.parts.player.is_some() {
            crate::tts::ChimeKind::ListeningStarted
                .audio()
                .map(|a| a.duration())
                .unwrap_or_default()
        } else {
            Duration::ZERO
        };
        if chime.is_zero() && !interrupted {
            return Duration::ZERO;
        }
        chime + OUTPUT_ECHO
    }

    /// What the current recording's watcher saw.
    fn live(&mut self, event: LiveEvent) {
        match event {
            LiveEvent::Pause(snapshot) => {
                if let Some(voice) = &self.parts.voice {
                    // Replacing the older speculation; its decode is aborted by the newer one.
                    self.speculation = Some(voice.speculate(snapshot, self.own_sound));
                }
            }
            LiveEvent::Silence if self.cfg.mode == PttMode::Toggle => {
                tracing::info!(
                    silence_ms = self.parts.live.silence_stop.as_millis() as u64,
                    "silence after speech: the recording ends"
                );
                self.finish_recording(true);
            }
            LiveEvent::Silence => {}
        }
    }
}

/// Opens a folder in the user's file manager (`xdg-open`), creating it first.
fn open_folder(dir: &std::path::Path) {
    if let Err(e) = std::fs::create_dir_all(dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot create the workflows folder");
        return;
    }
    xdg_open(dir.as_os_str());
}

/// Opens a folder or a link with the desktop's handler (`xdg-open`), reaped in the background.
/// The argument is not logged: a dashboard link carries a login code.
fn xdg_open(target: &std::ffi::OsStr) {
    match std::process::Command::new("xdg-open")
        .arg(target)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        // Reap it in the background; the file manager outlives it.
        Ok(mut child) => {
            std::thread::spawn(move || child.wait());
        }
        Err(e) => tracing::warn!(error = %e, "cannot run xdg-open"),
    }
}
