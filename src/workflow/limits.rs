//! Bounds on the numbers a workflow file may give: retry attempts, backoff, delays, timeouts,
//! visit and step bounds.
//!
//! Every one of these is a literal (typed fields are never templates), so it is checked at load
//! and a run never meets a value it cannot compute with: a backoff of `1e300` or a million
//! attempts is a load error naming the field, not an overflow in the middle of a run. The engine
//! still computes waits with saturating arithmetic (see `engine::executor::backoff`), so a
//! `RetryDef` built in code cannot break a run either.

use std::time::Duration;

use super::def::{ActionDef, WorkflowDef};
use crate::actions::ActionConfig;

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

/// A factor as a person wrote it: `1e300`, not three hundred digits.
fn shown(x: f64) -> String {
    if x.is_finite() && x.abs() < 1e6 {
        x.to_string()
    } else {
        format!("{x:e}")
    }
}

/// One problem: the field's path and what was expected.
pub(super) type Problem = (String, String);

fn too_long(what: &str, d: Duration, max: Duration, unit: &str) -> String {
    format!(
        "{what} {}ms is too long: expected at most {unit} ({}ms)",
        d.as_millis(),
        max.as_millis()
    )
}

/// Checks the workflow-level bounds: `timeout` and `max_steps`.
pub(super) fn check_workflow(def: &WorkflowDef) -> Vec<Problem> {
    let mut out = Vec::new();
    if let Some(t) = def.timeout {
        if t.0.is_zero() {
            out.push(("timeout".into(), "must be more than 0 (e.g. `30s`)".into()));
        } else if t.0 > MAX_TIMEOUT {
            out.push((
                "timeout".into(),
                too_long("a timeout of", t.0, MAX_TIMEOUT, "30 days"),
            ));
        }
    }
    if let Some(n) = def.max_steps
        && !(1..=MAX_STEPS).contains(&n)
    {
        out.push((
            "max_steps".into(),
            format!("{n} is out of range: expected 1 to {MAX_STEPS}"),
        ));
    }
    out
}

/// Checks one action's bounds; `at` is its path, e.g. `actions[2]`.
pub(super) fn check_action(at: &str, a: &ActionDef, config: Option<&ActionConfig>) -> Vec<Problem> {
    let mut out = Vec::new();
    if let Some(r) = &a.retry {
        if !(1..=MAX_ATTEMPTS).contains(&r.attempts) {
            out.push((
                format!("{at}.retry.attempts"),
                format!(
                    "{} is out of range: expected 1 (no retry) to {MAX_ATTEMPTS}",
                    r.attempts
                ),
            ));
        }
        if !(0.0..=1.0).contains(&r.jitter) {
            out.push((
                format!("{at}.retry.jitter"),
                "must be between 0 and 1 (a fraction of the delay)".into(),
            ));
        }
        if !(r.backoff.is_finite() && (1.0..=MAX_BACKOFF).contains(&r.backoff)) {
            out.push((
                format!("{at}.retry.backoff"),
                format!(
                    "{} is out of range: expected 1 (fixed delay) to {MAX_BACKOFF}",
                    shown(r.backoff)
                ),
            ));
        }
        if r.delay.0 > MAX_RETRY_DELAY {
            out.push((
                format!("{at}.retry.delay"),
                too_long("a retry delay of", r.delay.0, MAX_RETRY_DELAY, "1 hour"),
            ));
        }
        if let Some(m) = r.max_delay
            && m.0 > MAX_RETRY_DELAY
        {
            out.push((
                format!("{at}.retry.max_delay"),
                too_long("a max_delay of", m.0, MAX_RETRY_DELAY, "1 hour"),
            ));
        }
    }
    if let Some(t) = a.timeout {
        if t.0.is_zero() {
            out.push((
                format!("{at}.timeout"),
                "must be more than 0 (e.g. `10s`)".into(),
            ));
        } else if t.0 > MAX_TIMEOUT {
            out.push((
                format!("{at}.timeout"),
                too_long("a timeout of", t.0, MAX_TIMEOUT, "30 days"),
            ));
        }
    }
    if let Some(n) = a.max_visits
        && !(1..=MAX_VISITS).contains(&n)
    {
        out.push((
            format!("{at}.max_visits"),
            format!("{n} is out of range: expected 1 to {MAX_VISITS}"),
        ));
    }
    let (field, d) = match config {
        Some(ActionConfig::Delay(c)) => ("duration", Some(c.duration.0)),
        Some(ActionConfig::Http(c)) => ("timeout", c.timeout.map(|t| t.0)),
        _ => ("", None),
    };
    if let Some(d) = d
        && d > MAX_TIMEOUT
    {
        out.push((
            format!("{at}.config.{field}"),
            too_long(&format!("a {field} of"), d, MAX_TIMEOUT, "30 days"),
        ));
    }
    out
}
