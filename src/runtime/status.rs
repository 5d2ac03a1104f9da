//! The daemon's status file (`<data dir>/status.json`): what `atlas status` shows.
//!
//! One [`StatusWriter`] owns what the file says besides the agent's stage ([`Facts`]); the
//! daemon rewrites it at every stage change and every [`STATUS_REFRESH`], so the speech choice
//! and the next scheduled runs it lists stay current.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::instance;
use crate::agent::Stage;
use crate::store::Store;
use crate::triggers::Scheduler;
use crate::tts::AutoSpeaker;

/// How often the status file is rewritten while nothing changes.
pub const STATUS_REFRESH: Duration = Duration::from_secs(5);

/// What the daemon tells `atlas status` besides its stage.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The whisper model in use.
    pub model: Option<String>,
    /// Why no display is used, when headless.
    pub headless: Option<String>,
    /// What is off and why ("the microphone is off: ...").
    pub problems: Vec<String>,
    /// Still opening the voice, the desktop and the audio devices.
    pub starting: bool,
    /// The control API's URL, when it listens.
    pub api_url: Option<String>,
}

/// Writes the status file; cheap to clone and share with the agent's stage callback.
#[derive(Clone)]
pub struct StatusWriter {
    inner: Arc<Inner>,
}

struct Inner {
    data_dir: PathBuf,
    facts: Mutex<Facts>,
    stage: Mutex<Stage>,
    scheduler: Scheduler,
    speech: Arc<AutoSpeaker>,
    store: Store,
}

impl StatusWriter {
    /// A writer for `data_dir`, in the `starting` state.
    pub fn new(
        data_dir: &Path,
        scheduler: Scheduler,
        speech: Arc<AutoSpeaker>,
        store: Store,
    ) -> StatusWriter {
        StatusWriter {
            inner: Arc::new(Inner {
                data_dir: data_dir.to_path_buf(),
                facts: Mutex::new(Facts {
                    starting: true,
                    ..Facts::default()
                }),
                stage: Mutex::new(Stage::Idle),
                scheduler,
                speech,
                store,
            }),
        }
    }

    /// Replaces the facts.
    pub fn set_facts(&self, facts: Facts) {
        *self.inner.facts.lock().unwrap_or_else(|e| e.into_inner()) = facts;
    }

    /// Rewrites the file, with `stage` as the new stage if given.
    pub fn write(&self, stage: Option<Stage>) {
        let mut now = self.inner.stage.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = stage {
            *now = s;
        }
        let facts = self.inner.facts.lock().unwrap_or_else(|e| e.into_inner());
        instance::write_status(&self.inner.data_dir, &self.json(*now, &facts));
    }

    /// What the file says now (for `GET /v1/status`).
    pub fn snapshot(&self) -> Value {
        let stage = *self.inner.stage.lock().unwrap_or_else(|e| e.into_inner());
        let facts = self
            .inner
            .facts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        self.json(stage, &facts)
    }

    fn json(&self, stage: Stage, facts: &Facts) -> Value {
        let speech = self.inner.speech.report();
        json!({
            "history": self.inner.store.health(),
            "pid": std::process::id(),
            "state": if facts.starting { json!("starting") } else { json!(stage) },
            "model": facts.model,
            "headless": facts.headless.is_some(),
            "headless_reason": facts.headless,
            "problems": facts.problems,
            "api_url": facts.api_url,
            "speech": speech.to_string(),
            "speech_backend": speech.backend,
            "next": self.inner.scheduler.upcoming(5),
            "updated_at": chrono::Utc::now().to_rfc3339(),
        })
    }

    /// Rewrites the file every [`STATUS_REFRESH`] until `stop`.
    pub async fn refresh(self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(STATUS_REFRESH);
        loop {
            tokio::select! {
                _ = tick.tick() => self.write(None),
                _ = stop.cancelled() => break,
            }
        }
    }
}

/// The status file a daemon wrote in `data_dir`, if there is a readable one.
pub fn read_status(data_dir: &Path) -> Option<Value> {
    std::fs::read(instance::status_path(data_dir))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}
