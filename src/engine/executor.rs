//! One run: walks the action graph, with retries, timeouts, pause, cancel and loops, recording
//! every step.
//!
//! A [`Run`] is owned by the run's task; nothing else touches its state. It follows edges
//! (`on_success`, `on_failure`, a condition's `then`/`else`, else the next action in the list),
//! checks for pause and cancel at every action boundary, and races the action in flight against
//! cancellation, the action's timeout and the run's deadline, so each of those stops it promptly
//! (dropping an action's future aborts its I/O). After each top-level action it records the
//! cursor and variables, which is what lets a run resume after a crash.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use minijinja::Value as MjValue;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::retry::retry_wait;
use super::{Engine, EngineEvent, RunControl, RunRequest, TriggerEvent};
use crate::actions::{self, ActionConfig, ActionCtx, ActionError, LoopConfig, WorkflowCallConfig};
use crate::store::{ActionRecord, Op, RunStatus, now_ms};
use crate::template::{Redactor, SecretsView, mj};
use crate::workflow::{Graph, Node, Workflow};

/// What a new (or resumed) run starts from.
pub(super) struct Start {
    pub run_id: String,
    pub workflow: Arc<Workflow>,
    pub trigger: TriggerEvent,
    pub vars: Map<String, Value>,
    pub depth: u32,
    pub resume_from: Option<Resume>,
    /// For a `workflow` child: the parent's run id and deadline, which bounds the child's.
    pub parent_deadline: Option<(String, Instant)>,
    /// The run's redactor (a child run shares its parent's).
    pub redactor: Arc<Redactor>,
}

/// Recorded progress of a run being resumed after a crash.
pub(super) struct Resume {
    pub cursor: Option<String>,
    pub done: Vec<ActionRecord>,
}

/// Why a run stops early.
enum Stop {
    Cancelled(String),
    Failed(String),
}

/// How one attempt of an action ended badly.
enum AttemptErr {
    /// The action failed; retry or follow `on_failure`.
    Action(ActionError),
    /// The run must stop (cancelled, or out of time).
    Stop(Stop),
}

pub(super) type Ending = (
    RunStatus,
    Option<String>,
    Option<Value>,
    BTreeMap<String, Value>,
    Vec<String>,
);

pub(super) struct Run {
    engine: Engine,
    run_id: String,
    wf: Arc<Workflow>,
    trigger: MjValue,
    vars: Map<String, Value>,
    vars_mj: Option<MjValue>,
    outputs: BTreeMap<String, MjValue>,
    outputs_json: BTreeMap<String, Value>,
    last: Option<Value>,
    spoken: Vec<String>,
    seq: u32,
    steps: u32,
    visits: HashMap<String, u32>,
    redactor: Arc<Redactor>,
    secrets: MjValue,
    env: MjValue,
    run_info: MjValue,
    control: Arc<RunControl>,
    deadline: Option<Instant>,
    /// The deadline is the parent run's (earlier than this run's own): reaching it cancels
    /// this run, as the parent is ending, rather than failing it.
    deadline_of_parent: Option<String>,
    depth: u32,
    resume: Option<Resume>,
}

impl Run {
    pub(super) fn new(engine: Engine, start: Start, control: Arc<RunControl>) -> Run {
        let services = engine.services();
        let redactor = start.redactor.clone();
        let secrets = MjValue::from_object(SecretsView {
            store: services.secrets.clone(),
            redactor: redactor.clone(),
        });
        let env = mj(&services.env);
        let run_info = mj(json!({
            "id": start.run_id,
            "workflow": start.workflow.id(),
            "trigger": start.trigger.kind,
        }));
        let own = start
            .workflow
            .timeout()
            .and_then(|t| Instant::now().checked_add(t));
        let (deadline, deadline_of_parent) = match (own, start.parent_deadline) {
            (Some(o), Some((parent, p))) if p < o => (Some(p), Some(parent)),
            (None, Some((parent, p))) => (Some(p), Some(parent)),
            (own, _) => (own, None),
        };
        Run {
            trigger: mj(&start.trigger.data),
            engine,
            run_id: start.run_id,
            wf: start.workflow,
            vars: start.vars,
            vars_mj: None,
            outputs: BTreeMap::new(),
            outputs_json: BTreeMap::new(),
            last: None,
            spoken: Vec::new(),
            seq: 0,
            steps: 0,
            visits: HashMap::new(),
            redactor,
            secrets,
            env,
            run_info,
            control,
            deadline,
            deadline_of_parent,
            depth: start.depth,
            resume: start.resume_from,
        }
    }

    pub(super) async fn execute(mut self) -> Ending {
        let wf = self.wf.clone();
        let first = match self.resume.take() {
            None => Some(wf.graph.entry),
            Some(resume) => match self.restore(&wf.graph, resume) {
                Ok(first) => first,
                Err(e) => return self.ending(RunStatus::Failed, Some(e)),
            },
        };
        match self
            .run_graph(&wf.graph, first, String::new(), true, Vec::new())
            .await
        {
            Ok(()) => self.ending(RunStatus::Succeeded, None),
            Err(Stop::Cancelled(reason)) => self.ending(RunStatus::Cancelled, Some(reason)),
            Err(Stop::Failed(e)) => self.ending(RunStatus::Failed, Some(e)),
        }
    }

    fn ending(self, status: RunStatus, error: Option<String>) -> Ending {
        let r = &self.redactor;
        let outputs = self
            .outputs_json
            .iter()
            .map(|(k, v)| (k.clone(), r.json(v)))
            .collect();
        (
            status,
            error.map(|e| r.text(&e)),
            self.last.as_ref().map(|v| r.json(v)),
            outputs,
            self.spoken.iter().map(|s| r.text(s)).collect(),
        )
    }

    /// Reloads what a crashed run had done; returns where to go on.
    fn restore(&mut self, g: &Graph, resume: Resume) -> Result<Option<usize>, String> {
        self.seq = resume.done.iter().map(|a| a.seq + 1).max().unwrap_or(0);
        for a in &resume.done {
            if a.path == a.action_id && a.status == "succeeded" {
                let out = a.output.clone().unwrap_or(Value::Null);
                self.outputs.insert(a.action_id.clone(), mj(&out));
                self.outputs_json.insert(a.action_id.clone(), out.clone());
                self.last = Some(out);
            }
        }
        tracing::info!(run = %self.run_id, cursor = ?resume.cursor, "resuming run after a crash");
        match resume.cursor {
            Some(id) => g.find(&id).map(Some).ok_or_else(|| {
                format!("cannot resume: action `{id}` no longer exists in the workflow")
            }),
            None => Ok(None),
        }
    }

    fn scope(&mut self, locals: &[(String, MjValue)]) -> MjValue {
        let vars = self.vars_mj.get_or_insert_with(|| mj(&self.vars)).clone();
        let mut m: BTreeMap<String, MjValue> = self.outputs.clone();
        m.insert("actions".into(), MjValue::from(self.outputs.clone()));
        m.insert("vars".into(), vars);
        m.insert("trigger".into(), self.trigger.clone());
        m.insert("env".into(), self.env.clone());
        m.insert("secrets".into(), self.secrets.clone());
        m.insert("run".into(), self.run_info.clone());
        for (k, v) in locals {
            m.insert(k.clone(), v.clone());
        }
        MjValue::from(m)
    }

    fn cancel_reason(&self) -> String {
        self.control.reason()
    }

    /// Why the run stops at its deadline: its own timeout fails it; its parent's cancels it.
    fn deadline_stop(&self) -> Stop {
        match &self.deadline_of_parent {
            Some(parent) => Stop::Cancelled(format!(
                "its parent run {parent} timed out (the parent's `timeout`)"
            )),
            None => {
                let t = self.wf.timeout().unwrap_or_default();
                Stop::Failed(format!(
                    "the workflow timed out after {t:?} (its `timeout`)"
                ))
            }
        }
    }

    /// The action boundary: stop if cancelled or late, wait here while paused.
    async fn checkpoint(&mut self) -> Result<(), Stop> {
        if self.control.cancel.is_cancelled() {
            return Err(Stop::Cancelled(self.cancel_reason()));
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(self.deadline_stop());
        }
        let mut paused = self.control.paused.subscribe();
        if !*paused.borrow_and_update() {
            return Ok(());
        }
        let store = self.engine.store();
        store.send(Op::Status {
            id: self.run_id.clone(),
            status: RunStatus::Paused,
            at: now_ms(),
            owner: None,
        });
        self.engine.bus().publish(EngineEvent::RunPaused {
            run_id: self.run_id.clone(),
        });
        let since = Instant::now();
        loop {
            tokio::select! {
                changed = paused.changed() => {
                    if changed.is_err() || !*paused.borrow_and_update() {
                        break;
                    }
                }
                _ = self.control.cancel.cancelled() => {
                    return Err(Stop::Cancelled(self.cancel_reason()));
                }
            }
        }
        // Time spent paused does not count against the run's own timeout (the parent's deadline,
        // when it is the one that binds, does not move: the parent is not paused).
        if self.deadline_of_parent.is_none()
            && let Some(d) = self.deadline.as_mut()
        {
            *d = d.checked_add(since.elapsed()).unwrap_or(*d);
        }
        store.send(Op::Status {
            id: self.run_id.clone(),
            status: RunStatus::Running,
            at: now_ms(),
            owner: None,
        });
        self.engine.bus().publish(EngineEvent::RunResumed {
            run_id: self.run_id.clone(),
        });
        Ok(())
    }

    fn run_graph<'a>(
        &'a mut self,
        g: &'a Graph,
        first: Option<usize>,
        prefix: String,
        top: bool,
        locals: Vec<(String, MjValue)>,
    ) -> BoxFuture<'a, Result<(), Stop>> {
        Box::pin(async move {
            let mut cursor = first;
            while let Some(idx) = cursor {
                self.checkpoint().await?;
                let node = &g.nodes[idx];
                self.steps += 1;
                if let Some(max) = self.wf.def.max_steps
                    && self.steps > max
                {
                    return Err(Stop::Failed(format!(
                        "the run executed more than {max} actions (its `max_steps`)"
                    )));
                }
                if let Some(max) = node.max_visits {
                    let n = self.visits.entry(node.id.clone()).or_insert(0);
                    *n += 1;
                    if *n > max {
                        return Err(Stop::Failed(format!(
                            "action `{}` would run a {}th time, more than its `max_visits` ({max})",
                            node.id, *n
                        )));
                    }
                }
                let next_in_list = g.next_in_list(idx);
                cursor = match self.run_node(node, &prefix, &locals).await {
                    Ok(out) => {
                        let next = match node.branches {
                            Some((then, otherwise)) => {
                                if out["result"].as_bool().unwrap_or(false) {
                                    then.or(next_in_list)
                                } else {
                                    otherwise.or(next_in_list)
                                }
                            }
                            None => node.on_success.or(next_in_list),
                        };
                        if let (ActionConfig::Set(_), Value::Object(values)) = (&node.config, &out)
                        {
                            self.vars.extend(values.clone());
                            self.vars_mj = None;
                        }
                        if let ActionConfig::Speak(_) = node.config
                            && let Some(text) = out["text"].as_str()
                        {
                            self.spoken.push(text.to_owned());
                        }
                        self.record_output(&node.id, out);
                        next
                    }
                    Err(Stop::Failed(e)) => match node.on_failure {
                        Some(target) => {
                            self.record_output(&node.id, json!({ "error": e }));
                            Some(target)
                        }
                        None => {
                            return Err(Stop::Failed(format!("action `{}` failed: {e}", node.id)));
                        }
                    },
                    Err(stop) => return Err(stop),
                };
                if top {
                    self.engine.store().send(Op::Progress {
                        id: self.run_id.clone(),
                        cursor: cursor.map(|i| g.nodes[i].id.clone()),
                        vars: self.redactor.json(&Value::Object(self.vars.clone())),
                    });
                }
            }
            Ok(())
        })
    }

    fn record_output(&mut self, id: &str, out: Value) {
        self.outputs.insert(id.to_owned(), mj(&out));
        self.outputs_json.insert(id.to_owned(), out.clone());
        self.last = Some(out);
    }

    /// Runs one action with its retries, recording it.
    async fn run_node(
        &mut self,
        node: &Node,
        prefix: &str,
        locals: &[(String, MjValue)],
    ) -> Result<Value, Stop> {
        let seq = self.seq;
        self.seq += 1;
        let path = format!("{prefix}{}", node.id);
        let store = self.engine.store().clone();
        store.send(Op::ActionStarted {
            run_id: self.run_id.clone(),
            seq,
            action_id: node.id.clone(),
            path: path.clone(),
            kind: node.kind.clone(),
            at: now_ms(),
        });
        self.engine.bus().publish(EngineEvent::ActionStarted {
            run_id: self.run_id.clone(),
            action_id: node.id.clone(),
        });
        let t0 = Instant::now();
        let attempts_allowed = node.retry.as_ref().map_or(1, |r| r.attempts.max(1));
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            match self.attempt(node, &path, locals).await {
                Ok(v) => break Ok(v),
                Err(AttemptErr::Stop(s)) => break Err(s),
                Err(AttemptErr::Action(e)) => {
                    let msg = self.redactor.text(&e.to_string());
                    if attempt < attempts_allowed && e.is_retryable() {
                        let wait = node
                            .retry
                            .as_ref()
                            .map(|r| retry_wait(r, attempt, e.retry_after()))
                            .unwrap_or_default();
                        tracing::info!(run = %self.run_id, action = %node.id, attempt, error = %msg, wait_ms = wait.as_millis() as u64, "action failed, retrying");
                        if let Err(stop) = self.pause_for(wait).await {
                            break Err(stop);
                        }
                        continue;
                    }
                    break Err(Stop::Failed(msg));
                }
            }
        };
        let duration_us = t0.elapsed().as_micros() as i64;
        let (status, output, error) = match &result {
            Ok(v) => ("succeeded", Some(self.redactor.json(v)), None),
            Err(Stop::Failed(e)) => ("failed", None, Some(e.clone())),
            Err(Stop::Cancelled(e)) => ("cancelled", None, Some(e.clone())),
        };
        store.send(Op::ActionFinished {
            run_id: self.run_id.clone(),
            seq,
            status,
            attempts: attempt,
            output,
            error: error.clone(),
            at: now_ms(),
            duration_us,
        });
        self.engine.bus().publish(match error {
            None => EngineEvent::ActionFinished {
                run_id: self.run_id.clone(),
                action_id: node.id.clone(),
                duration_us: duration_us as u64,
            },
            Some(error) => EngineEvent::ActionFailed {
                run_id: self.run_id.clone(),
                action_id: node.id.clone(),
                error,
            },
        });
        result
    }

    /// Waits between retries; cancel and the run deadline cut the wait short.
    async fn pause_for(&self, wait: Duration) -> Result<(), Stop> {
        tokio::select! {
            _ = tokio::time::sleep(wait) => Ok(()),
            _ = self.control.cancel.cancelled() => Err(Stop::Cancelled(self.cancel_reason())),
            _ = sleep_until_opt(self.deadline) => Err(self.deadline_stop()),
        }
    }

    /// One try of an action, raced against cancellation, its timeout and the run's deadline.
    async fn attempt(
        &mut self,
        node: &Node,
        path: &str,
        locals: &[(String, MjValue)],
    ) -> Result<Value, AttemptErr> {
        let cancel = self.control.cancel.clone();
        let deadline = self.deadline;
        let deadline_stop = self.deadline_stop();
        let control = self.control.clone();
        let per_action = node.timeout;
        let work = async {
            let fut = self.dispatch(node, path, locals);
            match per_action {
                Some(t) => match tokio::time::timeout(t, fut).await {
                    Ok(r) => r,
                    Err(_) => Err(AttemptErr::Action(ActionError::Timeout(t))),
                },
                None => fut.await,
            }
        };
        tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(AttemptErr::Stop(Stop::Cancelled(control.reason()))),
            _ = sleep_until_opt(deadline) => Err(AttemptErr::Stop(deadline_stop)),
            r = work => r,
        }
    }

    fn dispatch<'a>(
        &'a mut self,
        node: &'a Node,
        path: &'a str,
        locals: &'a [(String, MjValue)],
    ) -> BoxFuture<'a, Result<Value, AttemptErr>> {
        Box::pin(async move {
            match &node.config {
                ActionConfig::Loop(cfg) => self.run_loop(node, cfg, path, locals).await,
                ActionConfig::Workflow(cfg) => self.call_workflow(cfg, locals).await,
                cfg => {
                    #[cfg(test)]
                    if node.id == super::tests::PANICKING_ACTION {
                        panic!("a deliberate panic in a test action");
                    }
                    let scope = self.scope(locals);
                    let services = self.engine.services();
                    let ctx = ActionCtx {
                        scope: &scope,
                        services,
                        cancel: &self.control.cancel,
                        redactor: &self.redactor,
                    };
                    actions::execute(cfg, &ctx)
                        .await
                        .map_err(AttemptErr::Action)
                }
            }
        })
    }

    async fn run_loop(
        &mut self,
        node: &Node,
        cfg: &LoopConfig,
        path: &str,
        locals: &[(String, MjValue)],
    ) -> Result<Value, AttemptErr> {
        let scope = self.scope(locals);
        let items = cfg
            .items
            .render(&scope)
            .map_err(|e| AttemptErr::Action(e.into()))?;
        let items = match items {
            Value::Array(items) => items,
            Value::Null => Vec::new(),
            Value::Object(map) => map
                .into_iter()
                .map(|(k, v)| json!({ "key": k, "value": v }))
                .collect(),
            other => {
                return Err(AttemptErr::Action(ActionError::Failed(format!(
                    "loop `items` must be a list, got {other}"
                ))));
            }
        };
        if items.len() > cfg.max_iterations as usize {
            return Err(AttemptErr::Action(ActionError::Failed(format!(
                "loop has {} items, more than its `max_iterations` ({})",
                items.len(),
                cfg.max_iterations
            ))));
        }
        let Some(body) = node.body.as_ref() else {
            return Ok(json!({ "count": 0, "results": [] }));
        };
        let n = items.len();
        let mut results = Vec::with_capacity(n);
        for (i, item) in items.into_iter().enumerate() {
            for b in &body.nodes {
                self.outputs.remove(&b.id);
                self.outputs_json.remove(&b.id);
            }
            let mut inner: Vec<(String, MjValue)> = locals.to_vec();
            inner.push((cfg.as_name.clone(), mj(&item)));
            inner.push((
                "loop".into(),
                mj(json!({
                    "index": i + 1, "index0": i, "first": i == 0, "last": i + 1 == n, "length": n,
                })),
            ));
            match self
                .run_graph(
                    body,
                    Some(body.entry),
                    format!("{path}[{i}]."),
                    false,
                    inner,
                )
                .await
            {
                Ok(()) => {}
                Err(Stop::Failed(e)) => {
                    return Err(AttemptErr::Action(ActionError::Failed(format!(
                        "iteration {i}: {e}"
                    ))));
                }
                Err(stop) => return Err(AttemptErr::Stop(stop)),
            }
            let out: Map<String, Value> = body
                .nodes
                .iter()
                .filter_map(|b| Some((b.id.clone(), self.outputs_json.get(&b.id)?.clone())))
                .collect();
            results.push(Value::Object(out));
        }
        Ok(json!({ "count": n, "results": results }))
    }

    async fn call_workflow(
        &mut self,
        cfg: &WorkflowCallConfig,
        locals: &[(String, MjValue)],
    ) -> Result<Value, AttemptErr> {
        let scope = self.scope(locals);
        let mut vars = BTreeMap::new();
        for (k, v) in &cfg.vars {
            vars.insert(
                k.clone(),
                v.render(&scope).map_err(|e| AttemptErr::Action(e.into()))?,
            );
        }
        let req = RunRequest {
            workflow_id: cfg.workflow.clone(),
            trigger: TriggerEvent {
                kind: "workflow".into(),
                data: json!({ "parent_run": self.run_id, "parent_workflow": self.wf.id() }),
            },
            vars,
            parent_run: Some(self.run_id.clone()),
            depth: self.depth + 1,
        };
        let parent = super::Parent {
            run_id: self.run_id.clone(),
            control: self.control.clone(),
            deadline: self.deadline,
        };
        let handle = self
            .engine
            .trigger_child(req, parent)
            .map_err(|e| AttemptErr::Action(ActionError::Failed(e.to_string())))?;
        let child = handle.id.clone();
        // The child's cancel token is derived from this run's, so cancelling this run (by hand,
        // at shutdown or by a `restart` replacement) cancels it too; its deadline is at most this
        // run's. This guard covers the rest: whenever this wait is dropped before the child ended
        // (this action's own `timeout`, this run's deadline), the child is cancelled.
        let mut guard = CancelChildOnDrop {
            engine: self.engine.clone(),
            child: child.clone(),
            parent: self.run_id.clone(),
            parent_cancel: self.control.cancel.clone(),
            armed: true,
        };
        let outcome = handle.wait().await;
        guard.armed = false;
        self.spoken.extend(outcome.spoken.iter().cloned());
        if outcome.status != RunStatus::Succeeded {
            return Err(AttemptErr::Action(ActionError::Failed(format!(
                "workflow `{}` (run {child}) {}: {}",
                cfg.workflow,
                outcome.status,
                outcome.error.as_deref().unwrap_or("no error given")
            ))));
        }
        Ok(json!({
            "run_id": child,
            "status": outcome.status,
            "result": outcome.result,
            "outputs": outcome.outputs,
        }))
    }
}

/// Cancels a child run when its parent stops waiting for it.
struct CancelChildOnDrop {
    engine: Engine,
    child: String,
    parent: String,
    parent_cancel: tokio_util::sync::CancellationToken,
    armed: bool,
}

impl Drop for CancelChildOnDrop {
    fn drop(&mut self) {
        // A cancelled parent has cancelled the child through its derived token already, and the
        // child reports the parent's reason; only a parent out of time needs to say so here.
        if self.armed && !self.parent_cancel.is_cancelled() {
            let reason = format!(
                "its parent run {} stopped waiting for it (a `timeout` ran out)",
                self.parent
            );
            let _ = self.engine.cancel_with(&self.child, reason);
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
