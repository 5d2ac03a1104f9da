//! Admission: [`Engine::trigger`] looks the workflow up, applies its run mode (refuse, queue,
//! replace or start), records the new run (`Op::CreateRun`) and hands it to its task.

use std::sync::Arc;

use serde_json::{Map, Value};

use tokio::sync::oneshot;

use super::control::Parent;
use super::modes::Admission;
use super::{Engine, EngineError, MAX_DEPTH, RunHandle, RunOutcome, RunRequest, executor, lock};
use crate::redact::Redactor;
use crate::store::{Op, RunStatus, now_ms};
use crate::workflow::Workflow;

impl Engine {
    /// Starts a run (or queues it, per the workflow's mode) and returns at once.
    pub fn trigger(&self, req: RunRequest) -> Result<RunHandle, EngineError> {
        self.trigger_inner(req, None)
    }

    /// Starts a run for a `workflow` action of run `parent`: cancelling the parent cancels it,
    /// and the parent's deadline bounds it.
    pub(super) fn trigger_child(
        &self,
        req: RunRequest,
        parent: Parent,
    ) -> Result<RunHandle, EngineError> {
        self.trigger_inner(req, Some(parent))
    }

    fn trigger_inner(
        &self,
        req: RunRequest,
        parent: Option<Parent>,
    ) -> Result<RunHandle, EngineError> {
        let wf = self.admissible(&req)?;
        let run_id = uuid::Uuid::now_v7().to_string();
        let waiting = self.admit(&wf, &run_id)?;
        let mut vars: Map<String, Value> = wf
            .def
            .variables
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        vars.extend(req.vars.clone());
        let status = if waiting.is_some() {
            RunStatus::Queued
        } else {
            RunStatus::Running
        };
        let redactor = self.redactor_for(&req, parent.as_ref());
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
            parent_run: parent.as_ref().map(|p| p.run_id.clone()),
            parent_deadline: parent
                .as_ref()
                .and_then(|p| Some((p.run_id.clone(), p.deadline?))),
            redactor,
        };
        let parent = parent.map(|p| (p.run_id, p.control));
        Ok(self.spawn_run(start, waiting, parent))
    }

    /// The workflow a request names, if a run of it may start at all.
    fn admissible(&self, req: &RunRequest) -> Result<Arc<Workflow>, EngineError> {
        if self.is_closing() {
            return Err(EngineError::ShuttingDown);
        }
        let wf = self
            .workflow(&req.workflow_id)
            .ok_or_else(|| EngineError::UnknownWorkflow(req.workflow_id.clone()))?;
        if !wf.def.enabled {
            return Err(EngineError::Disabled(req.workflow_id.clone()));
        }
        if req.depth > MAX_DEPTH {
            return Err(EngineError::TooDeep(MAX_DEPTH));
        }
        Ok(wf)
    }

    /// Takes a slot for run `run_id` under the workflow's run mode: `None` to start now (after
    /// cancelling the runs a `restart` replaces), or the signal a queued run waits for.
    fn admit(
        &self,
        wf: &Workflow,
        run_id: &str,
    ) -> Result<Option<oneshot::Receiver<()>>, EngineError> {
        let admission = lock(&self.inner.slots)
            .entry(wf.id().to_owned())
            .or_default()
            .admit(wf.id(), run_id, wf.def.concurrency)?;
        Ok(match admission {
            Admission::Start => None,
            Admission::Wait(rx) => Some(rx),
            Admission::Replace(old) => {
                for id in old {
                    let _ =
                        self.cancel_with(&id, format!("replaced by run {run_id} (mode `restart`)"));
                }
                None
            }
        })
    }

    /// The redactor of a new run. A child run shares its parent's: its variables may hold the
    /// parent's secrets, and its outputs flow back into the parent.
    fn redactor_for(&self, req: &RunRequest, parent: Option<&Parent>) -> Arc<Redactor> {
        match parent {
            Some(p) => p.control.redactor.clone(),
            None => req
                .parent_run
                .as_ref()
                .and_then(|p| lock(&self.inner.active).get(p).map(|c| c.redactor.clone()))
                .unwrap_or_default(),
        }
    }

    /// Triggers a run and waits for its end.
    pub async fn run(&self, req: RunRequest) -> Result<Arc<RunOutcome>, EngineError> {
        Ok(self.trigger(req)?.wait().await)
    }
}
