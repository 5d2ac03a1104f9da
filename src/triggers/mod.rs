//! Trigger sources: what starts runs besides a person at the CLI. Each source calls
//! `Engine::trigger` with its own `TriggerEvent` kind; the engine knows nothing of them.
//!
//! - [`schedule`]: cron schedules in IANA time zones, with missed-run catch-up.
//! - [`signature`]: webhook signature schemes (GitHub, Slack, Standard Webhooks).
//! - [`events`]: `event` triggers: run chaining, agent, integration, file and desktop events.

pub mod events;
pub mod schedule;
pub mod signature;

pub use events::{Event, EventHub, EventTriggers};
pub use schedule::{Scheduler, Upcoming, next_fire};
