//! The engine's event bus: what happens to runs and actions, for the tray, the control API and
//! `event` triggers to subscribe to.
//!
//! A `tokio::sync::broadcast` channel: publishing never blocks and costs next to nothing without
//! subscribers; a subscriber that falls behind loses the oldest events and is told how many.

use serde::Serialize;
use tokio::sync::broadcast;

use super::RunHandle;
use crate::store::RunStatus;

/// Something that happened in the engine.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EngineEvent {
    /// A run is waiting for its turn.
    RunQueued {
        /// Run id.
        run_id: String,
        /// Workflow id.
        workflow_id: String,
    },
    /// A run started (or resumed after a crash).
    RunStarted {
        /// Run id.
        run_id: String,
        /// Workflow id.
        workflow_id: String,
        /// Trigger kind.
        trigger: String,
        /// The run whose `workflow` action started this one, for `event` triggers to carry the
        /// causation chain through child runs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent_run: Option<String>,
    },
    /// A run paused.
    RunPaused {
        /// Run id.
        run_id: String,
    },
    /// A paused run resumed.
    RunResumed {
        /// Run id.
        run_id: String,
    },
    /// A run ended, whatever the outcome.
    RunFinished {
        /// Run id.
        run_id: String,
        /// Workflow id.
        workflow_id: String,
        /// Final status.
        status: RunStatus,
        /// Error, if any.
        error: Option<String>,
        /// The last action's output (redacted), for `event` triggers chained on this run.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<serde_json::Value>,
    },
    /// An action started.
    ActionStarted {
        /// Run id.
        run_id: String,
        /// Action id.
        action_id: String,
    },
    /// An action succeeded.
    ActionFinished {
        /// Run id.
        run_id: String,
        /// Action id.
        action_id: String,
        /// How long it took, retries included.
        duration_us: u64,
    },
    /// An action failed (after its retries).
    ActionFailed {
        /// Run id.
        run_id: String,
        /// Action id.
        action_id: String,
        /// Why.
        error: String,
    },
}

impl EngineEvent {
    /// The event's type as `event` triggers name it: `run.started`, `run.finished`, `run.failed`
    /// (a finished run whose status is failed), `action.failed`, ...
    pub fn kind(&self) -> &'static str {
        match self {
            EngineEvent::RunQueued { .. } => "run.queued",
            EngineEvent::RunStarted { .. } => "run.started",
            EngineEvent::RunPaused { .. } => "run.paused",
            EngineEvent::RunResumed { .. } => "run.resumed",
            EngineEvent::RunFinished { status, .. } if *status == RunStatus::Failed => "run.failed",
            EngineEvent::RunFinished { .. } => "run.finished",
            EngineEvent::ActionStarted { .. } => "action.started",
            EngineEvent::ActionFinished { .. } => "action.finished",
            EngineEvent::ActionFailed { .. } => "action.failed",
        }
    }
}

/// Publisher side of the bus.
#[derive(Debug, Clone)]
pub struct EventBus {
    tx: broadcast::Sender<EngineEvent>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            tx: broadcast::channel(1024).0,
        }
    }
}

impl EventBus {
    /// Publishes an event (dropped when nobody listens).
    pub fn publish(&self, event: EngineEvent) {
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(event);
        }
    }

    /// A new subscription, seeing events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.tx.subscribe()
    }
}

/// Waits until a run finishes, for subscribers that show run history (the tray's recent runs):
/// returns `true` when a `RunFinished` arrived *or* events were lost to lag (a subscriber that
/// fell behind cannot know whether a `RunFinished` was among them, so it should re-read the
/// store either way), and `false` only when the bus is gone. One `Lagged` never ends the wait.
pub async fn wait_run_finished(rx: &mut broadcast::Receiver<EngineEvent>) -> bool {
    loop {
        match rx.recv().await {
            Ok(EngineEvent::RunFinished { .. }) => return true,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::debug!(missed, "event subscriber lagged; re-reading run history");
                return true;
            }
            Err(broadcast::error::RecvError::Closed) => return false,
        }
    }
}

/// Waits until the first action of the run behind `handle` starts, reading `events` (subscribed
/// before the run was triggered) and returns when that was seen; `None` when the run ended first
/// or the event was lost to lag. It never waits past the run's end: the run's own handle, not an
/// event that lag may drop, says when that is.
pub async fn first_action_started(
    events: &mut broadcast::Receiver<EngineEvent>,
    handle: &RunHandle,
) -> Option<std::time::Instant> {
    let end = handle.clone().wait();
    tokio::pin!(end);
    loop {
        tokio::select! {
            biased;
            e = events.recv() => match e {
                Ok(EngineEvent::ActionStarted { run_id, .. }) if run_id == handle.id => {
                    return Some(std::time::Instant::now());
                }
                Ok(EngineEvent::RunFinished { run_id, .. }) if run_id == handle.id => return None,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            },
            _ = &mut end => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(i: usize) -> EngineEvent {
        EngineEvent::ActionStarted {
            run_id: format!("r{i}"),
            action_id: "a".into(),
        }
    }

    #[tokio::test]
    async fn a_lagging_history_subscriber_resyncs_and_goes_on() {
        let bus = EventBus::default();
        let mut rx = bus.subscribe();
        // A flood larger than the bus: the oldest events, a RunFinished among them, are lost.
        bus.publish(EngineEvent::RunFinished {
            run_id: "lost".into(),
            workflow_id: "w".into(),
            status: RunStatus::Succeeded,
            error: None,
            result: None,
        });
        for i in 0..3000 {
            bus.publish(started(i));
        }
        assert!(wait_run_finished(&mut rx).await, "lag means: re-read");
        // And it keeps going afterwards, to the next run's end, until the bus is gone.
        bus.publish(EngineEvent::RunFinished {
            run_id: "next".into(),
            workflow_id: "w".into(),
            status: RunStatus::Failed,
            error: None,
            result: None,
        });
        drop(bus);
        let mut refreshes = 0;
        while wait_run_finished(&mut rx).await {
            refreshes += 1;
        }
        assert!(
            refreshes >= 1,
            "the run that finished after the lag was seen"
        );
    }
}
