//! The workflow engine: admits runs, executes their action graphs, records everything.
//!
//! [`Engine`] is a cheap handle (an `Arc`) shared by the CLI, the daemon, triggers and the
//! `workflow` action. [`Engine::trigger`] decides admission under the workflow's run mode
//! (`modes`, `admission`), writes the run to the store, and spawns one task per run (`task`)
//! that walks the graph (`executor`). Runs are controlled through [`Engine::pause`],
//! [`Engine::resume`] and [`Engine::cancel`]; what happens is published on the [`EventBus`].
//!
//! **Invariant**: every state change of a run is sent to the store *before* it is published or
//! acted on, so history is never behind what a subscriber has seen.
//! **Boundary**: the engine knows nothing of audio, the desktop or HTTP servers; triggers reach
//! it only through [`Engine::trigger`].

mod admission;
mod control;
mod events;
mod executor;
mod modes;
mod recovery;
mod retry;
mod task;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

pub use control::RunHandle;
pub use events::{EngineEvent, EventBus, first_action_started, wait_run_finished};
pub use modes::Refusal;

use control::{Parent, RunControl};

use crate::actions::Services;
use crate::store::{RunStatus, Store};
use crate::workflow::Workflow;

/// Why the engine could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No loaded workflow has that id.
    #[error("no workflow `{0}`; `atlas workflow list` shows the loaded ones")]
    UnknownWorkflow(String),
    /// The workflow is disabled.
    #[error("workflow `{0}` is disabled (`enabled: false` in its file)")]
    Disabled(String),
    /// The run mode refused the run.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// No active run has that id.
    #[error("no active run `{0}`")]
    UnknownRun(String),
    /// `workflow` actions nested too deeply (a workflow calling itself?).
    #[error("workflow calls are nested more than {0} deep")]
    TooDeep(u32),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// [`Engine::shutdown`] has begun: no new run starts.
    #[error("atlas is shutting down; no new run starts")]
    ShuttingDown,
}

/// What started a run.
#[derive(Debug, Clone, Serialize)]
pub struct TriggerEvent {
    /// `manual`, `schedule`, `webhook`, `event`, `voice` or `workflow`.
    pub kind: String,
    /// What the trigger knows (voice slots, webhook body, ...), seen by templates as `trigger`.
    pub data: Value,
}

impl TriggerEvent {
    /// A manual trigger with no data.
    pub fn manual() -> TriggerEvent {
        TriggerEvent {
            kind: "manual".into(),
            data: Value::Object(Default::default()),
        }
    }
}

/// A request to run a workflow.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// Which workflow.
    pub workflow_id: String,
    /// What started it.
    pub trigger: TriggerEvent,
    /// Variables overriding the workflow's defaults.
    pub vars: BTreeMap<String, Value>,
    /// The run that asked for this one (`workflow` action).
    pub parent_run: Option<String>,
    /// Nesting depth of `workflow` calls.
    pub depth: u32,
}

impl RunRequest {
    /// A manual run of `workflow_id`.
    pub fn manual(workflow_id: &str) -> RunRequest {
        RunRequest {
            workflow_id: workflow_id.into(),
            trigger: TriggerEvent::manual(),
            vars: BTreeMap::new(),
            parent_run: None,
            depth: 0,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Serialize)]
pub struct RunOutcome {
    /// Run id.
    pub run_id: String,
    /// Workflow id.
    pub workflow_id: String,
    /// Final status.
    pub status: RunStatus,
    /// Error, if it failed.
    pub error: Option<String>,
    /// The last action's output.
    pub result: Option<Value>,
    /// Every action's last output, by id.
    pub outputs: BTreeMap<String, Value>,
    /// What `speak` actions said, in order.
    pub spoken: Vec<String>,
}

struct Inner {
    workflows: RwLock<Arc<BTreeMap<String, Arc<Workflow>>>>,
    store: Store,
    bus: EventBus,
    services: Services,
    active: Mutex<HashMap<String, Arc<RunControl>>>,
    slots: Mutex<HashMap<String, modes::Slots>>,
    owner: String,
    /// Set when shutdown begins; `trigger` refuses from then on.
    closing: std::sync::atomic::AtomicBool,
}

/// The engine. Clone it freely.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("owner", &self.inner.owner)
            .finish()
    }
}

const MAX_DEPTH: u32 = 8;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Engine {
    /// An engine over `store` with `services`, running no workflow yet.
    pub fn new(store: Store, services: Services) -> Engine {
        let owner = recovery::current(&uuid::Uuid::now_v7().simple().to_string());
        Engine {
            inner: Arc::new(Inner {
                workflows: RwLock::new(Arc::new(BTreeMap::new())),
                store,
                bus: EventBus::default(),
                services,
                active: Mutex::new(HashMap::new()),
                slots: Mutex::new(HashMap::new()),
                owner,
                closing: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// Replaces the set of workflows (runs already going keep the version they started with).
    pub fn set_workflows(&self, workflows: impl IntoIterator<Item = Arc<Workflow>>) {
        let map = workflows
            .into_iter()
            .map(|w| (w.id().to_owned(), w))
            .collect();
        *self
            .inner
            .workflows
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(map);
    }

    /// The loaded workflows, by id.
    pub fn workflows(&self) -> Arc<BTreeMap<String, Arc<Workflow>>> {
        self.inner
            .workflows
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// One workflow.
    pub fn workflow(&self, id: &str) -> Option<Arc<Workflow>> {
        self.workflows().get(id).cloned()
    }

    /// The run database.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The services actions use.
    pub fn services(&self) -> &Services {
        &self.inner.services
    }

    /// Subscribes to engine events.
    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.inner.bus.subscribe()
    }

    /// The bus, for components that publish on it too.
    pub fn bus(&self) -> &EventBus {
        &self.inner.bus
    }

    /// Ids of the runs going or waiting now.
    pub fn active_runs(&self) -> Vec<String> {
        lock(&self.inner.active).keys().cloned().collect()
    }

    fn control(&self, run_id: &str) -> Result<Arc<RunControl>, EngineError> {
        lock(&self.inner.active)
            .get(run_id)
            .cloned()
            .ok_or_else(|| EngineError::UnknownRun(run_id.to_owned()))
    }

    /// Pauses a run at its next action boundary (the action in flight completes first).
    pub fn pause(&self, run_id: &str) -> Result<(), EngineError> {
        self.control(run_id)?.paused.send_replace(true);
        Ok(())
    }

    /// Resumes a paused run from where it stopped.
    pub fn resume(&self, run_id: &str) -> Result<(), EngineError> {
        self.control(run_id)?.paused.send_replace(false);
        Ok(())
    }

    /// Cancels a run; the action in flight is stopped promptly.
    pub fn cancel(&self, run_id: &str) -> Result<(), EngineError> {
        self.cancel_with(run_id, "cancelled by the user".into())
    }

    /// Cancels a run, recording `reason` as its error.
    pub fn cancel_with(&self, run_id: &str, reason: String) -> Result<(), EngineError> {
        let c = self.control(run_id)?;
        lock(&c.cancel_reason).get_or_insert(reason);
        c.cancel.cancel();
        Ok(())
    }

    /// Whether [`Engine::shutdown`] has begun.
    pub fn is_closing(&self) -> bool {
        self.inner.closing.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Stops new runs from starting, cancels every active run and waits for the history to be
    /// written.
    pub async fn shutdown(&self, reason: &str) {
        self.inner
            .closing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let runs: Vec<String> = self.active_runs();
        for id in &runs {
            let _ = self.cancel_with(id, reason.to_owned());
        }
        // Give run tasks a moment to record their end, then flush.
        for _ in 0..100 {
            if lock(&self.inner.active).is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        if let Err(e) = self.inner.store.flush().await {
            tracing::error!(error = %e, "run history not fully written at shutdown");
        }
    }
}
