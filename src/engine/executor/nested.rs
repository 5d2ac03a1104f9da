//! Actions that run more of the engine: a `loop` runs its body sub-graph once per item with the
//! same graph walker, and a `workflow` action starts a child run and waits for it.
//!
//! A child run's cancel token is derived from its parent's and its deadline is at most the
//! parent's, so cancelling, timing out or `restart`-replacing a parent cancels its children;
//! [`CancelChildOnDrop`] covers a parent that merely stops waiting (its action's `timeout`).

use std::collections::BTreeMap;

use minijinja::Value as MjValue;
use serde_json::{Map, Value, json};

use super::{AttemptErr, Run, Stop};
use crate::actions::{ControlError, LoopConfig, WorkflowCallConfig};
use crate::engine::{Engine, Parent, RunRequest, TriggerEvent};
use crate::store::RunStatus;
use crate::template::mj;
use crate::workflow::Node;

impl Run {
    /// A loop's `items`, rendered: a list as it is, `null` as no items, a map as `key`/`value`
    /// pairs; at most `max_iterations` of them.
    fn loop_items(
        &mut self,
        cfg: &LoopConfig,
        locals: &[(String, MjValue)],
    ) -> Result<Vec<Value>, AttemptErr> {
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
                return Err(AttemptErr::Action(
                    ControlError::NotAList {
                        got: other.to_string(),
                    }
                    .into(),
                ));
            }
        };
        if items.len() > cfg.max_iterations as usize {
            return Err(AttemptErr::Action(
                ControlError::TooManyItems {
                    items: items.len(),
                    max: cfg.max_iterations,
                }
                .into(),
            ));
        }
        Ok(items)
    }

    /// A `loop`: its body once per item, with `item` (or its `as` name) and `loop` in scope;
    /// the output lists each iteration's body outputs.
    pub(super) async fn run_loop(
        &mut self,
        node: &Node,
        cfg: &LoopConfig,
        path: &str,
        locals: &[(String, MjValue)],
    ) -> Result<Value, AttemptErr> {
        let items = self.loop_items(cfg, locals)?;
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
                    return Err(AttemptErr::Action(
                        ControlError::Iteration {
                            index: i,
                            reason: e,
                        }
                        .into(),
                    ));
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

    /// A `workflow` action: starts the child run and waits for its outcome; the child's speech
    /// counts as this run's.
    pub(super) async fn call_workflow(
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
        let parent = Parent {
            run_id: self.run_id.clone(),
            control: self.control.clone(),
            deadline: self.deadline,
        };
        let handle = self.engine.trigger_child(req, parent).map_err(|e| {
            AttemptErr::Action(
                ControlError::NotStarted {
                    workflow: cfg.workflow.clone(),
                    reason: e.to_string(),
                }
                .into(),
            )
        })?;
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
            return Err(AttemptErr::Action(
                ControlError::ChildFailed {
                    workflow: cfg.workflow.clone(),
                    run: child,
                    status: outcome.status.to_string(),
                    reason: outcome
                        .error
                        .clone()
                        .unwrap_or_else(|| "no error given".into()),
                }
                .into(),
            ));
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
