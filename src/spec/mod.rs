//! The shared vocabulary of workflow definitions: what an action is as written ([`ActionDef`],
//! [`RetryDef`]), how durations are written ([`Dur`]), and the bounds on literal numbers
//! ([`MAX_TIMEOUT`] and the rest) with the [`Problem`] a bound check reports, and the webhook
//! signature [`Scheme`] a trigger names.
//!
//! These types sit below both `actions` (whose `loop` config holds a body of [`ActionDef`]s and
//! whose kinds check their own durations) and `workflow` (whose files are made of them), so that
//! neither has to import the other for them.
//!
//! **Boundary (the dependency rule)**: `spec` imports nothing from Atlas. `actions` imports
//! `spec` and never `workflow`; `workflow` imports `spec` and `actions` (its loader parses each
//! action's config with `actions::ActionConfig::parse` and runs the kind's checks). So the
//! modules form `spec <- actions <- workflow`, and no cycle.

mod action;
mod dur;
mod limits;
mod webhook;

pub use action::{ActionDef, RetryDef, is_identifier};
pub use dur::Dur;
pub use limits::{
    MAX_ATTEMPTS, MAX_BACKOFF, MAX_RETRY_DELAY, MAX_STEPS, MAX_TIMEOUT, MAX_VISITS, Problem,
    too_long,
};
pub use webhook::{Scheme, hook_path, secret_ref};
