//! Load-time bound checks of a workflow's and an action's own fields: retry attempts, backoff,
//! delays, timeouts, visit and step bounds.
//!
//! Every one of these is a literal (typed fields are never templates), so it is checked at load
//! and a run never meets a value it cannot compute with: a backoff of `1e300` or a million
//! attempts is a load error naming the field, not an overflow in the middle of a run. The engine
//! still computes waits with saturating arithmetic (see `engine::executor::backoff`), so a
//! `RetryDef` built in code cannot break a run either. The bounds are `spec`'s constants; the
//! fields inside an action's `config` are checked by its kind (`actions::ActionKind::check`).

use std::time::Duration;

use super::def::WorkflowDef;
use crate::actions::ActionConfig;
use crate::spec::{
    ActionDef, MAX_ATTEMPTS, MAX_BACKOFF, MAX_RETRY_DELAY, MAX_STEPS, MAX_TIMEOUT, MAX_VISITS,
    Problem, RetryDef, too_long,
};

/// A factor as a person wrote it: `1e300`, not three hundred digits.
fn shown(x: f64) -> String {
    if x.is_finite() && x.abs() < 1e6 {
        x.to_string()
    } else {
        format!("{x:e}")
    }
}

/// A `timeout` at `field`: more than 0, at most [`MAX_TIMEOUT`].
fn check_timeout(field: String, t: Duration, example: &str, out: &mut Vec<Problem>) {
    if t.is_zero() {
        out.push(Problem::new(
            field,
            format!("must be more than 0 (e.g. `{example}`)"),
        ));
    } else if t > MAX_TIMEOUT {
        out.push(Problem::new(
            field,
            too_long("a timeout of", t, MAX_TIMEOUT, "30 days"),
        ));
    }
}

/// Checks the workflow-level bounds: `timeout` and `max_steps`.
pub(super) fn check_workflow(def: &WorkflowDef) -> Vec<Problem> {
    let mut out = Vec::new();
    if let Some(t) = def.timeout {
        check_timeout("timeout".into(), t.0, "30s", &mut out);
    }
    if let Some(n) = def.max_steps
        && !(1..=MAX_STEPS).contains(&n)
    {
        out.push(Problem::new(
            "max_steps",
            format!("{n} is out of range: expected 1 to {MAX_STEPS}"),
        ));
    }
    out
}

/// Checks one action's bounds, its kind's checks of its config included; `at` is its path, e.g.
/// `actions[2]`.
pub(super) fn check_action(at: &str, a: &ActionDef, config: Option<&ActionConfig>) -> Vec<Problem> {
    let mut out = Vec::new();
    if let Some(r) = &a.retry {
        check_retry(at, r, &mut out);
    }
    if let Some(t) = a.timeout {
        check_timeout(format!("{at}.timeout"), t.0, "10s", &mut out);
    }
    if let Some(n) = a.max_visits
        && !(1..=MAX_VISITS).contains(&n)
    {
        out.push(Problem::new(
            format!("{at}.max_visits"),
            format!("{n} is out of range: expected 1 to {MAX_VISITS}"),
        ));
    }
    if let Some(config) = config {
        out.extend(config.check().into_iter().map(|p| Problem {
            field: format!("{at}.config.{}", p.field),
            message: p.message,
        }));
    }
    out
}

fn check_retry(at: &str, r: &RetryDef, out: &mut Vec<Problem>) {
    if !(1..=MAX_ATTEMPTS).contains(&r.attempts) {
        out.push(Problem::new(
            format!("{at}.retry.attempts"),
            format!(
                "{} is out of range: expected 1 (no retry) to {MAX_ATTEMPTS}",
                r.attempts
            ),
        ));
    }
    if !(0.0..=1.0).contains(&r.jitter) {
        out.push(Problem::new(
            format!("{at}.retry.jitter"),
            "must be between 0 and 1 (a fraction of the delay)",
        ));
    }
    if !(r.backoff.is_finite() && (1.0..=MAX_BACKOFF).contains(&r.backoff)) {
        out.push(Problem::new(
            format!("{at}.retry.backoff"),
            format!(
                "{} is out of range: expected 1 (fixed delay) to {MAX_BACKOFF}",
                shown(r.backoff)
            ),
        ));
    }
    if r.delay.0 > MAX_RETRY_DELAY {
        out.push(Problem::new(
            format!("{at}.retry.delay"),
            too_long("a retry delay of", r.delay.0, MAX_RETRY_DELAY, "1 hour"),
        ));
    }
    if let Some(m) = r.max_delay
        && m.0 > MAX_RETRY_DELAY
    {
        out.push(Problem::new(
            format!("{at}.retry.max_delay"),
            too_long("a max_delay of", m.0, MAX_RETRY_DELAY, "1 hour"),
        ));
    }
}
