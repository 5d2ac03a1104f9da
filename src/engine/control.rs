//! What other code holds of a run: its [`RunHandle`] (wait for the outcome) and, inside the
//! engine, its [`RunControl`] (cancel token, pause switch, cancel reason). The run's state itself
//! belongs to its task alone; a `workflow` child gets a [`Parent`] from the run that starts it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{RunOutcome, lock};
use crate::redact::Redactor;
use crate::store::RunStatus;

/// A run that was admitted; wait on it for its outcome.
#[derive(Debug, Clone)]
pub struct RunHandle {
    /// Run id.
    pub id: String,
    pub(super) done: watch::Receiver<Option<Arc<RunOutcome>>>,
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
pub(super) struct RunControl {
    pub(super) cancel: CancellationToken,
    /// The run's redactor, found here by the child runs it starts.
    pub(super) redactor: Arc<Redactor>,
    pub(super) paused: watch::Sender<bool>,
    pub(super) cancel_reason: Mutex<Option<String>>,
    /// The run that started this one (`workflow` action), whose cancellation cancels this one.
    pub(super) parent: Option<(String, Arc<RunControl>)>,
}

impl RunControl {
    /// Why the run was cancelled: its own reason, else its parent's.
    pub(super) fn reason(&self) -> String {
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
pub(super) struct Parent {
    /// The parent's run id.
    pub(super) run_id: String,
    /// The parent's control: the child's cancel token is derived from it.
    pub(super) control: Arc<RunControl>,
    /// The parent's deadline, which bounds the child's.
    pub(super) deadline: Option<tokio::time::Instant>,
}
