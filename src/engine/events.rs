//! The engine's event bus: what happens to runs and actions, for the tray, the control API and
//! `event` triggers to subscribe to.
//!
//! A `tokio::sync::broadcast` channel: publishing never blocks and costs next to nothing without
//! subscribers; a subscriber that falls behind loses the oldest events and is told how many.

use serde::Serialize;
use tokio::sync::broadcast;

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
