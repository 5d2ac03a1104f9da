//! Run modes: what happens when a workflow is triggered while runs of it are going.
//!
//! One [`Slots`] per workflow, behind the engine's mutex (held for a few instructions, never across
//! an await). `single` refuses, `parallel` admits up to `max` at once, `queued` runs one at a time
//! with up to `max` waiting in order, `restart` cancels what runs and starts the new run.

use std::collections::VecDeque;

use tokio::sync::oneshot;

use crate::workflow::{ConcurrencyDef, Mode};

/// Why a run was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// `single` mode and a run is going.
    #[error(
        "workflow `{workflow}` is already running (run {running}); its mode is `single`. Set `concurrency: {{mode: queued}}` or `parallel` to allow more"
    )]
    AlreadyRunning {
        /// Workflow id.
        workflow: String,
        /// The run in the way.
        running: String,
    },
    /// `parallel` mode at its limit.
    #[error("Maximum concurrent runs ({max}) reached for workflow `{workflow}`")]
    MaxConcurrent {
        /// Workflow id.
        workflow: String,
        /// The limit.
        max: u32,
    },
    /// `queued` mode with a full queue.
    #[error("the queue of workflow `{workflow}` is full ({max} waiting)")]
    QueueFull {
        /// Workflow id.
        workflow: String,
        /// The limit.
        max: u32,
    },
}

/// What to do with a new run.
pub enum Admission {
    /// Start it now.
    Start,
    /// Start it when the receiver fires.
    Wait(oneshot::Receiver<()>),
    /// Cancel these runs, then start it.
    Replace(Vec<String>),
}

/// Runs going and waiting for one workflow.
#[derive(Debug, Default)]
pub struct Slots {
    running: Vec<String>,
    waiting: VecDeque<(String, oneshot::Sender<()>)>,
}

impl Slots {
    /// Decides about run `id` of `workflow` under `policy`, and books it.
    pub fn admit(
        &mut self,
        workflow: &str,
        id: &str,
        policy: ConcurrencyDef,
    ) -> Result<Admission, Refusal> {
        let admission = match policy.mode {
            Mode::Single => match self.running.first() {
                Some(r) => {
                    return Err(Refusal::AlreadyRunning {
                        workflow: workflow.into(),
                        running: r.clone(),
                    });
                }
                None => Admission::Start,
            },
            Mode::Parallel => {
                if self.running.len() >= policy.max as usize {
                    return Err(Refusal::MaxConcurrent {
                        workflow: workflow.into(),
                        max: policy.max,
                    });
                }
                Admission::Start
            }
            Mode::Queued => {
                if self.running.is_empty() && self.waiting.is_empty() {
                    Admission::Start
                } else if self.waiting.len() >= policy.max as usize {
                    return Err(Refusal::QueueFull {
                        workflow: workflow.into(),
                        max: policy.max,
                    });
                } else {
                    let (tx, rx) = oneshot::channel();
                    self.waiting.push_back((id.to_owned(), tx));
                    return Ok(Admission::Wait(rx));
                }
            }
            Mode::Restart => Admission::Replace(self.running.clone()),
        };
        self.running.push(id.to_owned());
        Ok(admission)
    }

    /// Run `id` ended (or left the queue); wakes the next waiting run if there is one.
    pub fn release(&mut self, id: &str) {
        self.running.retain(|r| r != id);
        self.waiting.retain(|(w, _)| w != id);
        while self.running.is_empty() {
            let Some((next, tx)) = self.waiting.pop_front() else {
                break;
            };
            if tx.send(()).is_ok() {
                self.running.push(next);
            }
        }
    }

    /// Whether nothing runs or waits.
    #[cfg(test)]
    pub fn is_idle(&self) -> bool {
        self.running.is_empty() && self.waiting.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(mode: Mode, max: u32) -> ConcurrencyDef {
        ConcurrencyDef { mode, max }
    }

    #[test]
    fn queued_runs_start_in_order_and_the_queue_is_bounded() {
        let mut s = Slots::default();
        let p = policy(Mode::Queued, 2);
        assert!(matches!(s.admit("w", "a", p), Ok(Admission::Start)));
        let Ok(Admission::Wait(mut b)) = s.admit("w", "b", p) else {
            panic!("b should wait")
        };
        let Ok(Admission::Wait(mut c)) = s.admit("w", "c", p) else {
            panic!("c should wait")
        };
        assert!(matches!(
            s.admit("w", "d", p),
            Err(Refusal::QueueFull { max: 2, .. })
        ));
        s.release("a");
        assert!(b.try_recv().is_ok());
        assert!(c.try_recv().is_err());
        s.release("b");
        assert!(c.try_recv().is_ok());
        s.release("c");
        assert!(s.is_idle());
    }
}
