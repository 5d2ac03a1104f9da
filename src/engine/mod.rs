//! The workflow engine: admits runs, executes their action graphs, records everything.
//!
//! [`Engine`] is a cheap handle (an `Arc`) shared by the CLI, the daemon, triggers and the
//! `workflow` action. [`Engine::trigger`] decides admission under the workflow's run mode
//! (`modes`), writes the run to the store, and spawns one task per run that walks the graph
//! (`executor`). Runs are controlled through [`Engine::pause`], [`Engine::resume`] and
//! [`Engine::cancel`]; what happens is published on the [`EventBus`].
//!
//! **Invariant**: every state change of a run is sent to the store *before* it is published or
//! acted on, so history is never behind what a subscriber has seen.
//! **Boundary**: the engine knows nothing of audio, the desktop or HTTP servers; triggers reach
//! it only through [`Engine::trigger`].

mod events;
mod executor;
mod modes;
mod recovery;
mod retry;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

pub use events::{EngineEvent, EventBus, first_action_started, wait_run_finished};
pub use modes::Refusal;

use crate::actions::Services;
use crate::redact::Redactor;
use crate::store::{Op, RunStatus, Store, now_ms};
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

/// A run that was admitted; wait on it for its outcome.
#[derive(Debug, Clone)]
pub struct RunHandle {
    /// Run id.
    pub id: String,
    done: watch::Receiver<Option<Arc<RunOutcome>>>,
}

impl RunHandle {
    /// Waits for the run to end.
    pub async fn wait(mut self) -> Arc<RunOutcome> {
        loop {
            if let Some(o) = self.done.borrow().clone() {
                return o;
            }
            if self.done.changed().await.is_err() {
                // The run task is gone without an outcome: only possible if the runtime shut down.
                return Arc::new(RunOutcome {
                    run_id: self.id.clone(),
                    workflow_id: String::new(),
                    status: RunStatus::Interrupted,
                    error: Some("the engine stopped before the run ended".into()),
                    result: None,
                    outputs: BTreeMap::new(),
                    spoken: Vec::new(),
                });
            }
        }
    }
}

/// Control of one active run.
#[derive(Debug)]
struct RunControl {
    cancel: CancellationToken,
    /// The run's redactor, found here by the child runs it starts.
    redactor: Arc<Redactor>,
    paused: watch::Sender<bool>,
    cancel_reason: Mutex<Option<String>>,
    /// The run that started this one (`workflow` action), whose cancellation cancels this one.
    parent: Option<(String, Arc<RunControl>)>,
}

impl RunControl {
    /// Why the run was cancelled: its own reason, else its parent's.
    fn reason(&self) -> String {
        if let Some(r) = lock(&self.cancel_reason).clone() {
            return r;
        }
        match &self.parent {
            Some((id, p)) if p.cancel.is_cancelled() => {
                format!("its parent run {id} was cancelled: {}", p.reason())
            }
            _ => "cancelled".into(),
        }
    }
}

/// What a `workflow` child run inherits from its parent.
struct Parent {
    /// The parent's run id.
    run_id: String,
    /// The parent's control: the child's cancel token is derived from it.
    control: Arc<RunControl>,
    /// The parent's deadline, which bounds the child's.
    deadline: Option<tokio::time::Instant>,
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

    /// Starts a run (or queues it, per the workflow's mode) and returns at once.
    pub fn trigger(&self, req: RunRequest) -> Result<RunHandle, EngineError> {
        self.trigger_inner(req, None)
    }

    /// Starts a run for a `workflow` action of run `parent`: cancelling the parent cancels it,
    /// and the parent's deadline bounds it.
    fn trigger_child(&self, req: RunRequest, parent: Parent) -> Result<RunHandle, EngineError> {
        self.trigger_inner(req, Some(parent))
    }

    fn trigger_inner(
        &self,
        req: RunRequest,
        parent: Option<Parent>,
    ) -> Result<RunHandle, EngineError> {
        if self.is_closing() {
            return Err(EngineError::ShuttingDown);
        }
        let wf = self
            .workflow(&req.workflow_id)
            .ok_or_else(|| EngineError::UnknownWorkflow(req.workflow_id.clone()))?;
        if !wf.def.enabled {
            return Err(EngineError::Disabled(req.workflow_id));
        }
        if req.depth > MAX_DEPTH {
            return Err(EngineError::TooDeep(MAX_DEPTH));
        }
        let run_id = uuid::Uuid::now_v7().to_string();
        let admission = lock(&self.inner.slots)
            .entry(wf.id().to_owned())
            .or_default()
            .admit(wf.id(), &run_id, wf.def.concurrency)?;
        let mut vars: serde_json::Map<String, Value> = wf
            .def
            .variables
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        vars.extend(req.vars.clone());
        let waiting = match admission {
            modes::Admission::Start => None,
            modes::Admission::Wait(rx) => Some(rx),
            modes::Admission::Replace(old) => {
                for id in old {
                    let _ =
                        self.cancel_with(&id, format!("replaced by run {run_id} (mode `restart`)"));
                }
                None
            }
        };
        let status = if waiting.is_some() {
            RunStatus::Queued
        } else {
            RunStatus::Running
        };
        // A child run shares its parent's redactor: its variables may hold the parent's secrets,
        // and its outputs flow back into the parent.
        let redactor = match &parent {
            Some(p) => p.control.redactor.clone(),
            None => req
                .parent_run
                .as_ref()
                .and_then(|p| lock(&self.inner.active).get(p).map(|c| c.redactor.clone()))
                .unwrap_or_default(),
        };
        self.inner.store.send(Op::CreateRun {
            id: run_id.clone(),
            workflow_id: wf.id().to_owned(),
            version: wf.def.version,
            trigger: req.trigger.kind.clone(),
            trigger_data: req.trigger.data.clone(),
            status,
            vars: redactor.json(&Value::Object(vars.clone())),
            owner: self.inner.owner.clone(),
            parent_run: req.parent_run.clone(),
            cursor: Some(wf.graph.nodes[wf.graph.entry].id.clone()),
            at: now_ms(),
        });
        let start = executor::Start {
            run_id: run_id.clone(),
            workflow: wf,
            trigger: req.trigger,
            vars,
            depth: req.depth,
            resume_from: None,
            parent_deadline: parent
                .as_ref()
                .and_then(|p| Some((p.run_id.clone(), p.deadline?))),
            redactor,
        };
        let parent = parent.map(|p| (p.run_id, p.control));
        Ok(self.spawn_run(start, waiting, parent))
    }

    /// Triggers a run and waits for its end.
    pub async fn run(&self, req: RunRequest) -> Result<Arc<RunOutcome>, EngineError> {
        Ok(self.trigger(req)?.wait().await)
    }

    fn spawn_run(
        &self,
        start: executor::Start,
        waiting: Option<tokio::sync::oneshot::Receiver<()>>,
        parent: Option<(String, Arc<RunControl>)>,
    ) -> RunHandle {
        let cancel = match &parent {
            Some((_, p)) => p.cancel.child_token(),
            None => CancellationToken::new(),
        };
        let control = Arc::new(RunControl {
            cancel,
            redactor: start.redactor.clone(),
            paused: watch::channel(false).0,
            cancel_reason: Mutex::new(None),
            parent,
        });
        lock(&self.inner.active).insert(start.run_id.clone(), control.clone());
        let (done_tx, done_rx) = watch::channel(None);
        let handle = RunHandle {
            id: start.run_id.clone(),
            done: done_rx,
        };
        let engine = self.clone();
        tokio::spawn(async move {
            use futures::FutureExt;
            let run_id = start.run_id.clone();
            let workflow_id = start.workflow.id().to_owned();
            // A panic anywhere in the run (a bug) must not leave its row `running`, its slot
            // taken and its handle unresolved: it ends the run as `failed`, and the rest of this
            // task still runs.
            let driven = std::panic::AssertUnwindSafe(engine.drive(start, waiting, &control))
                .catch_unwind()
                .await;
            let outcome = match driven {
                Ok(outcome) => outcome,
                Err(payload) => {
                    // Nothing says a panic message holds no secret: mask every one read so far.
                    let what = crate::redact::process().text(&panic_message(payload.as_ref()));
                    tracing::error!(workflow = %workflow_id, run = %run_id, panic = %what, "run task panicked");
                    engine.finish(
                        &run_id,
                        &workflow_id,
                        RunStatus::Failed,
                        Some(format!(
                            "the run stopped on an internal error (it panicked: {what}); this is a bug in Atlas, please report it"
                        )),
                        None,
                        Default::default(),
                        Vec::new(),
                    )
                }
            };
            lock(&engine.inner.active).remove(&run_id);
            if let Some(slots) = lock(&engine.inner.slots).get_mut(&workflow_id) {
                slots.release(&run_id);
            }
            let _ = done_tx.send(Some(Arc::new(outcome)));
        });
        handle
    }

    async fn drive(
        &self,
        start: executor::Start,
        waiting: Option<tokio::sync::oneshot::Receiver<()>>,
        control: &Arc<RunControl>,
    ) -> RunOutcome {
        let run_id = start.run_id.clone();
        let workflow_id = start.workflow.id().to_owned();
        if let Some(rx) = waiting {
            self.inner.bus.publish(EngineEvent::RunQueued {
                run_id: run_id.clone(),
                workflow_id: workflow_id.clone(),
            });
            let started = tokio::select! {
                r = rx => r.is_ok(),
                _ = control.cancel.cancelled() => false,
            };
            if !started {
                let reason = match control.reason() {
                    r if r == "cancelled" => "cancelled while queued".into(),
                    r => r,
                };
                return self.finish(
                    &run_id,
                    &workflow_id,
                    RunStatus::Cancelled,
                    Some(reason),
                    None,
                    Default::default(),
                    Vec::new(),
                );
            }
            self.inner.store.send(Op::Status {
                id: run_id.clone(),
                status: RunStatus::Running,
                at: now_ms(),
                owner: None,
            });
        }
        self.inner.bus.publish(EngineEvent::RunStarted {
            run_id: run_id.clone(),
            workflow_id: workflow_id.clone(),
            trigger: start.trigger.kind.clone(),
        });
        let (status, error, result, outputs, spoken) =
            executor::Run::new(self.clone(), start, control.clone())
                .execute()
                .await;
        self.finish(
            &run_id,
            &workflow_id,
            status,
            error,
            result,
            outputs,
            spoken,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        run_id: &str,
        workflow_id: &str,
        status: RunStatus,
        error: Option<String>,
        result: Option<Value>,
        outputs: BTreeMap<String, Value>,
        spoken: Vec<String>,
    ) -> RunOutcome {
        self.inner.store.send(Op::Finish {
            id: run_id.to_owned(),
            workflow_id: workflow_id.to_owned(),
            status,
            error: error.clone(),
            result: result.clone(),
            at: now_ms(),
        });
        self.inner.bus.publish(EngineEvent::RunFinished {
            run_id: run_id.to_owned(),
            workflow_id: workflow_id.to_owned(),
            status,
            error: error.clone(),
        });
        match status {
            RunStatus::Succeeded => {
                tracing::info!(workflow = workflow_id, run = run_id, "run succeeded")
            }
            _ => {
                tracing::warn!(workflow = workflow_id, run = run_id, %status, error = error.as_deref().unwrap_or(""), "run ended")
            }
        }
        RunOutcome {
            run_id: run_id.to_owned(),
            workflow_id: workflow_id.to_owned(),
            status,
            error,
            result,
            outputs,
            spoken,
        }
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

/// The text of a panic's payload (`panic!` gives a `&str` or a `String`).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "no message".to_owned()
    };
    text.chars().take(300).collect()
}
