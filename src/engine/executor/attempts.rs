//! One action of a run: its attempts and retries, each attempt raced against cancellation, the
//! action's `timeout` and the run's deadline, and the dispatch of the attempt to a leaf action
//! (`actions::execute`), a `loop` body or a child `workflow` run.
//!
//! Every action is recorded twice: `Op::ActionStarted` before its first attempt and
//! `Op::ActionFinished` (output redacted) after its last, each sent to the store before the
//! matching event is published.

use std::time::Duration;

use futures::future::BoxFuture;
use minijinja::Value as MjValue;
use serde_json::Value;
use tokio::time::Instant;

use super::{AttemptErr, Run, Stop, sleep_until_opt};
use crate::actions::{self, ActionConfig, ActionCtx, ActionError};
use crate::engine::EngineEvent;
use crate::engine::retry::retry_wait;
use crate::store::{Op, now_ms};
use crate::workflow::Node;

impl Run {
    /// Runs one action with its retries, recording it.
    pub(super) async fn run_node(
        &mut self,
        node: &Node,
        prefix: &str,
        locals: &[(String, MjValue)],
    ) -> Result<Value, Stop> {
        let seq = self.seq;
        self.seq += 1;
        let path = format!("{prefix}{}", node.id);
        self.record_started(node, seq, &path);
        let t0 = Instant::now();
        let (result, attempts) = self.retried(node, &path, locals).await;
        let duration_us = t0.elapsed().as_micros() as i64;
        self.record_finished(node, seq, attempts, duration_us, &result);
        result
    }

    /// Tries the action until it succeeds, its retries run out or the error is not worth
    /// retrying; returns the outcome and the number of attempts made.
    async fn retried(
        &mut self,
        node: &Node,
        path: &str,
        locals: &[(String, MjValue)],
    ) -> (Result<Value, Stop>, u32) {
        let attempts_allowed = node.retry.as_ref().map_or(1, |r| r.attempts.max(1));
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            match self.attempt(node, path, locals).await {
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
        (result, attempt)
    }

    /// `Op::ActionStarted`, then its event.
    fn record_started(&self, node: &Node, seq: u32, path: &str) {
        self.engine.store().send(Op::ActionStarted {
            run_id: self.run_id.clone(),
            seq,
            action_id: node.id.clone(),
            path: path.to_owned(),
            kind: node.kind.clone(),
            at: now_ms(),
        });
        self.engine.bus().publish(EngineEvent::ActionStarted {
            run_id: self.run_id.clone(),
            action_id: node.id.clone(),
        });
    }

    /// `Op::ActionFinished` (the output redacted), then its event.
    fn record_finished(
        &self,
        node: &Node,
        seq: u32,
        attempts: u32,
        duration_us: i64,
        result: &Result<Value, Stop>,
    ) {
        let (status, output, error) = match result {
            Ok(v) => ("succeeded", Some(self.redactor.json(v)), None),
            Err(Stop::Failed(e)) => ("failed", None, Some(e.clone())),
            Err(Stop::Cancelled(e)) => ("cancelled", None, Some(e.clone())),
        };
        self.engine.store().send(Op::ActionFinished {
            run_id: self.run_id.clone(),
            seq,
            status,
            attempts,
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

    /// Runs the attempt's work: a `loop` body, a child run, or a leaf action.
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
                    if node.id == crate::engine::tests::PANICKING_ACTION {
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
}
