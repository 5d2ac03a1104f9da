//! One run: walks the action graph, with retries, timeouts, pause, cancel and loops, recording
//! every step.
//!
//! A [`Run`] is owned by the run's task; nothing else touches its state. It follows edges
//! (`on_success`, `on_failure`, a condition's `then`/`else`, else the next action in the list),
//! checks for pause and cancel at every action boundary, and races the action in flight against
//! cancellation, the action's timeout and the run's deadline, so each of those stops it promptly
//! (dropping an action's future aborts its I/O). After each top-level action it records the
//! cursor and variables, which is what lets a run resume after a crash.
//!
//! This file holds the run's state and the graph walk; `attempts` runs one action (attempts,
//! retries, dispatch) and `nested` the actions that run more of the engine (`loop` bodies and
//! child `workflow` runs).

mod attempts;
mod nested;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::future::BoxFuture;
use minijinja::Value as MjValue;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::{Engine, EngineEvent, RunControl, TriggerEvent};
use crate::actions::{ActionConfig, ActionError};
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
    /// For a `workflow` child: the parent's run id.
    pub parent_run: Option<String>,
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

/// How a run ended, as the run task records and reports it (every text already redacted).
pub(super) struct Ending {
    /// The final status.
    pub status: RunStatus,
    /// Why it did not succeed.
    pub error: Option<String>,
    /// The last action's output.
    pub result: Option<Value>,
    /// Every action's last output, by id.
    pub outputs: BTreeMap<String, Value>,
    /// What `speak` actions said, in order.
    pub spoken: Vec<String>,
}

impl Ending {
    /// An end before any action produced something: no result, outputs or speech.
    pub fn bare(status: RunStatus, error: Option<String>) -> Ending {
        Ending {
            status,
            error,
            result: None,
            outputs: BTreeMap::new(),
            spoken: Vec::new(),
        }
    }
}

/// The state of one run, owned by its task.
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
        Ending {
            status,
            error: error.map(|e| r.text(&e)),
            result: self.last.as_ref().map(|v| r.json(v)),
            outputs,
            spoken: self.spoken.iter().map(|s| r.text(s)).collect(),
        }
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

    /// Walks `g` from `first` until no edge leads on. `prefix` places nested actions in the
    /// history (`each[1].`); `top` says this is the workflow's own graph, whose progress is
    /// recorded for resumption; `locals` are a loop body's `item` and `loop`.
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
                self.count_step(node)?;
                let next_in_list = g.next_in_list(idx);
                cursor = match self.run_node(node, &prefix, &locals).await {
                    Ok(out) => self.follow(node, out, next_in_list),
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

    /// Counts one more action against the run's `max_steps` and the node's `max_visits`.
    fn count_step(&mut self, node: &Node) -> Result<(), Stop> {
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
        Ok(())
    }

    /// Takes in a succeeded action's output (`set` values, `speak` text) and picks the next
    /// action: a condition's branch, else `on_success`, else the next in the list.
    fn follow(&mut self, node: &Node, out: Value, next_in_list: Option<usize>) -> Option<usize> {
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
        if let (ActionConfig::Set(_), Value::Object(values)) = (&node.config, &out) {
            self.vars.extend(values.clone());
            self.vars_mj = None;
        }
        let said = match node.config {
            ActionConfig::Speak(_) => out["text"].as_str(),
            ActionConfig::Ask(_) => out["question"].as_str(),
            _ => None,
        };
        if let Some(text) = said {
            self.spoken.push(text.to_owned());
        }
        self.record_output(&node.id, out);
        next
    }

    fn record_output(&mut self, id: &str, out: Value) {
        self.outputs.insert(id.to_owned(), mj(&out));
        self.outputs_json.insert(id.to_owned(), out.clone());
        self.last = Some(out);
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
