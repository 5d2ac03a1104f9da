//! The run task: one tokio task per run that waits for its turn (queued runs), drives the
//! executor, records the end (`Op::Finish`) and frees the run's slot. A panic in a run (a bug)
//! still ends it as `failed` and resolves its handle.

use std::sync::{Arc, Mutex};

use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::control::RunControl;
use super::executor::{self, Ending};
use super::{Engine, EngineEvent, RunHandle, RunOutcome, lock};
use crate::store::{Op, RunStatus, now_ms};

impl Engine {
    /// Registers the run's control and spawns its task; the handle resolves when it ends.
    pub(super) fn spawn_run(
        &self,
        start: executor::Start,
        waiting: Option<oneshot::Receiver<()>>,
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
                        Ending::bare(
                            RunStatus::Failed,
                            Some(format!(
                                "the run stopped on an internal error (it panicked: {what}); this is a bug in Atlas, please report it"
                            )),
                        ),
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

    /// The run proper: its turn (when queued), `RunStarted`, the executor, the end recorded.
    async fn drive(
        &self,
        start: executor::Start,
        waiting: Option<oneshot::Receiver<()>>,
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
                    Ending::bare(RunStatus::Cancelled, Some(reason)),
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
            parent_run: start.parent_run.clone(),
        });
        let ending = executor::Run::new(self.clone(), start, control.clone())
            .execute()
            .await;
        self.finish(&run_id, &workflow_id, ending)
    }

    /// Records a run's end (`Op::Finish`), then publishes and logs it.
    pub(super) fn finish(&self, run_id: &str, workflow_id: &str, ending: Ending) -> RunOutcome {
        let Ending {
            status,
            error,
            result,
            outputs,
            spoken,
        } = ending;
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
            result: result.clone(),
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
