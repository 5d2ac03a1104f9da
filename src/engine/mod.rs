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

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

pub use events::{EngineEvent, EventBus};
pub use modes::Refusal;

use crate::actions::Services;
use crate::redact::Redactor;
use crate::store::{Op, RunRecord, RunStatus, Store, now_ms};
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
}

struct Inner {
    workflows: RwLock<Arc<BTreeMap<String, Arc<Workflow>>>>,
    store: Store,
    bus: EventBus,
    services: Services,
    active: Mutex<HashMap<String, Arc<RunControl>>>,
    slots: Mutex<HashMap<String, modes::Slots>>,
    owner: String,
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
        let owner = format!("{}:{}", std::process::id(), uuid::Uuid::now_v7().simple());
        Engine {
            inner: Arc::new(Inner {
                workflows: RwLock::new(Arc::new(BTreeMap::new())),
                store,
                bus: EventBus::default(),
                services,
                active: Mutex::new(HashMap::new()),
                slots: Mutex::new(HashMap::new()),
                owner,
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
        let redactor = req
            .parent_run
            .as_ref()
            .and_then(|p| lock(&self.inner.active).get(p).map(|c| c.redactor.clone()))
            .unwrap_or_default();
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
            redactor,
        };
        Ok(self.spawn_run(start, waiting))
    }

    /// Triggers a run and waits for its end.
    pub async fn run(&self, req: RunRequest) -> Result<Arc<RunOutcome>, EngineError> {
        Ok(self.trigger(req)?.wait().await)
    }

    fn spawn_run(
        &self,
        start: executor::Start,
        waiting: Option<tokio::sync::oneshot::Receiver<()>>,
    ) -> RunHandle {
        let control = Arc::new(RunControl {
            cancel: CancellationToken::new(),
            redactor: start.redactor.clone(),
            paused: watch::channel(false).0,
            cancel_reason: Mutex::new(None),
        });
        lock(&self.inner.active).insert(start.run_id.clone(), control.clone());
        let (done_tx, done_rx) = watch::channel(None);
        let handle = RunHandle {
            id: start.run_id.clone(),
            done: done_rx,
        };
        let engine = self.clone();
        tokio::spawn(async move {
            let run_id = start.run_id.clone();
            let workflow_id = start.workflow.id().to_owned();
            let outcome = engine.drive(start, waiting, &control).await;
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
                let reason = lock(&control.cancel_reason)
                    .clone()
                    .unwrap_or_else(|| "cancelled while queued".into());
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

    fn cancel_with(&self, run_id: &str, reason: String) -> Result<(), EngineError> {
        let c = self.control(run_id)?;
        lock(&c.cancel_reason).get_or_insert(reason);
        c.cancel.cancel();
        Ok(())
    }

    /// Cancels every active run, e.g. at shutdown, and waits for the history to be written.
    pub async fn shutdown(&self, reason: &str) {
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

    /// Deals with runs a dead process left unfinished: resumes those whose workflow says
    /// `resume: true` (from their last completed action) and marks the others `interrupted`.
    /// Runs owned by a live process are left alone. Returns (resumed, interrupted) run ids.
    pub async fn recover(&self) -> Result<(Vec<RunHandle>, Vec<String>), EngineError> {
        let mut resumed = Vec::new();
        let mut interrupted = Vec::new();
        for run in self.inner.store.unfinished_runs()? {
            if run.owner == self.inner.owner || owner_alive(&run.owner) {
                continue;
            }
            match self.workflow(&run.workflow_id) {
                Some(wf) if wf.def.resume => resumed.push(self.resume_recorded(run, wf)?),
                _ => {
                    let pid = run.owner.split(':').next().unwrap_or("?").to_owned();
                    self.finish(
                        &run.id,
                        &run.workflow_id,
                        RunStatus::Interrupted,
                        Some(format!(
                            "the process running it (pid {pid}) stopped before the run ended"
                        )),
                        None,
                        Default::default(),
                        Vec::new(),
                    );
                    interrupted.push(run.id);
                }
            }
        }
        // A database that cannot take writes now must not keep the daemon from starting: the
        // writes are kept and retried, and the store's health says what is wrong.
        if let Err(e) = self.inner.store.flush().await {
            tracing::error!(error = %e, "recovered runs are not recorded yet");
        }
        Ok((resumed, interrupted))
    }

    fn resume_recorded(&self, run: RunRecord, wf: Arc<Workflow>) -> Result<RunHandle, EngineError> {
        let actions = self.inner.store.run_actions(&run.id)?;
        let vars = match run.vars {
            Some(Value::Object(m)) => m,
            _ => Default::default(),
        };
        self.inner.store.send(Op::Status {
            id: run.id.clone(),
            status: RunStatus::Running,
            at: now_ms(),
            owner: Some(self.inner.owner.clone()),
        });
        lock(&self.inner.slots)
            .entry(wf.id().to_owned())
            .or_default()
            .admit(
                wf.id(),
                &run.id,
                crate::workflow::ConcurrencyDef {
                    mode: crate::workflow::Mode::Parallel,
                    max: u32::MAX,
                },
            )?;
        let start = executor::Start {
            run_id: run.id.clone(),
            workflow: wf,
            trigger: TriggerEvent {
                kind: run.trigger,
                data: run.trigger_data,
            },
            vars,
            depth: 0,
            resume_from: Some(executor::Resume {
                cursor: run.cursor,
                done: actions,
            }),
            redactor: Arc::default(),
        };
        Ok(self.spawn_run(start, None))
    }
}

/// Whether the process named by an `owner` (`pid:instance`) still lives.
fn owner_alive(owner: &str) -> bool {
    let Some(pid) = owner.split(':').next().and_then(|p| p.parse::<i32>().ok()) else {
        return false;
    };
    if pid == std::process::id() as i32 {
        // Another engine instance of this very process: it was dropped, or it is alive in the
        // same process. Only the former happens outside tests, so treat it as gone.
        return false;
    }
    // SAFETY: kill with signal 0 only checks that the process exists; it sends nothing.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}
