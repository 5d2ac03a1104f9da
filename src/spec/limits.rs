//! Bounds on the numbers a workflow file may give, and the [`Problem`] a check reports.
//!
//! Every bounded number is a literal (typed fields are never templates), so it is checked at load
//! and a run never meets a value it cannot compute with. The checks themselves live with what
//! they check: `workflow::limits` checks a workflow's and an action's own fields, and each action
//! kind checks its config (`actions::ActionKind::check`), both against these constants.

use std::time::Duration;

/// Most tries an action may have, the first included.
pub const MAX_ATTEMPTS: u32 = 100;
/// Largest factor between two retry waits.
pub const MAX_BACKOFF: f64 = 10.0;
/// Longest wait between two tries (`retry.delay`, `retry.max_delay`); also the ceiling of every
/// computed wait, `Retry-After` included.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);
/// Longest `timeout` (of a workflow, an action or a request) and longest `delay` action.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(30 * 86_400);
/// Largest `max_visits` of an action.
pub const MAX_VISITS: u32 = 100_000;
/// Largest `max_steps` of a workflow.
pub const MAX_STEPS: u32 = 1_000_000;

/// One problem found by a load-time check: the field's path and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Path of the field, relative to what was checked (e.g. `duration` inside an action's
    /// `config`, `retry.jitter` inside an action).
    pub field: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl Problem {
    /// A problem at `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The message for a duration over its bound: `a timeout of 86400000ms is too long: expected at
/// most 30 days (2592000000ms)`; `unit` says the bound in words.
pub fn too_long(what: &str, d: Duration, max: Duration, unit: &str) -> String {
    format!(
        "{what} {}ms is too long: expected at most {unit} ({}ms)",
        d.as_millis(),
        max.as_millis()
    )
}
