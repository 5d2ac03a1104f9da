//! The shape of a workflow file, as serde reads it.
//!
//! These types mirror the YAML one to one and carry no behaviour. Loading (see `load`) turns a
//! [`WorkflowDef`] into a validated [`crate::workflow::Workflow`]; action configs stay raw JSON here
//! and are given their typed form by `actions::ActionConfig::parse`, so that every action of a file
//! is checked on its own and one bad action does not hide the errors of the next.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// One workflow file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowDef {
    /// Unique id, also used on the command line (`atlas workflow run ID`).
    pub id: String,
    /// Human name; defaults to the id.
    #[serde(default)]
    pub name: Option<String>,
    /// What the workflow does, shown in lists and menus.
    #[serde(default)]
    pub description: String,
    /// Version of the definition, recorded with every run.
    #[serde(default = "one")]
    pub version: u32,
    /// A disabled workflow loads and validates but no trigger starts it.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// What starts a run.
    #[serde(default)]
    pub triggers: Vec<TriggerDef>,
    /// Initial values of `vars`, overridable per run.
    #[serde(default)]
    pub variables: BTreeMap<String, Value>,
    /// The action graph.
    #[serde(default)]
    pub actions: Vec<ActionDef>,
    /// The first action; defaults to the first in the list.
    #[serde(default)]
    pub entry: Option<String>,
    /// What happens when a run is triggered while another is going.
    #[serde(default)]
    pub concurrency: ConcurrencyDef,
    /// Upper bound on a whole run, paused time excluded.
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// After a crash, continue an unfinished run from its last completed action instead of
    /// marking it `interrupted`.
    #[serde(default)]
    pub resume: bool,
    /// Upper bound on actions executed by one run (guards loops made with edges).
    #[serde(default)]
    pub max_steps: Option<u32>,
}

fn one() -> u32 {
    1
}
fn yes() -> bool {
    true
}

/// A trigger: what starts a run.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TriggerDef {
    /// Started by hand: CLI, tray menu, API.
    Manual {},
    /// Started on a cron schedule.
    Schedule {
        /// Cron expression: 5 fields (`m h dom mon dow`), or 6/7 with seconds (and year).
        cron: String,
        /// IANA time zone name; defaults to the local zone.
        #[serde(default)]
        timezone: Option<String>,
        /// What to do with runs missed while Atlas was not running.
        #[serde(default)]
        missed: MissedPolicy,
    },
    /// Started by an HTTP request to the local webhook server.
    Webhook {
        /// URL path, e.g. `/hooks/github`.
        path: String,
        /// Shared secret used to verify signatures; may be a `{{ secrets.NAME }}` template.
        #[serde(default)]
        secret: Option<String>,
    },
    /// Started by an event on the event bus.
    Event {
        /// Event type, e.g. `run.failed`.
        event: String,
        /// Field values the event's data must match.
        #[serde(default)]
        filter: BTreeMap<String, Value>,
    },
    /// Started by a spoken phrase.
    Voice {
        /// Phrase templates, e.g. `what's [the] weather [like] [today]`.
        phrases: Vec<String>,
    },
}

impl TriggerDef {
    /// The trigger's type name, as written in YAML.
    pub fn kind(&self) -> &'static str {
        match self {
            TriggerDef::Manual {} => "manual",
            TriggerDef::Schedule { .. } => "schedule",
            TriggerDef::Webhook { .. } => "webhook",
            TriggerDef::Event { .. } => "event",
            TriggerDef::Voice { .. } => "voice",
        }
    }
}

/// What a schedule does about runs it missed.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MissedPolicy {
    /// Forget them.
    Skip,
    /// Run once for all of them.
    #[default]
    RunOnce,
}

/// One action: a node of the graph.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ActionDef {
    /// Unique within its list; other actions and templates refer to it by this id.
    pub id: String,
    /// The action kind, e.g. `http`, `condition`, `speak`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Human name for history and logs.
    #[serde(default)]
    pub name: Option<String>,
    /// Kind-specific settings.
    #[serde(default)]
    pub config: Value,
    /// Next action when this one succeeds.
    #[serde(default)]
    pub on_success: Option<String>,
    /// Next action when this one fails (after retries); without it the run fails.
    #[serde(default)]
    pub on_failure: Option<String>,
    /// Retry policy.
    #[serde(default)]
    pub retry: Option<RetryDef>,
    /// Upper bound on one attempt.
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// How often this action may run in one run; required on actions that edges can revisit.
    #[serde(default)]
    pub max_visits: Option<u32>,
}

/// Retry policy of an action: `attempts` tries in all, waiting `delay`, then `delay * backoff`, ...
/// up to `max_delay`, each wait varied by up to `jitter` (a fraction, 0.1 = +-10%).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetryDef {
    /// Total tries, the first included (1 = no retry).
    pub attempts: u32,
    /// Wait before the second try.
    #[serde(default = "default_retry_delay")]
    pub delay: Dur,
    /// Factor applied to the wait after each failed try (1 = fixed delay).
    #[serde(default = "default_backoff")]
    pub backoff: f64,
    /// Cap on any one wait.
    #[serde(default)]
    pub max_delay: Option<Dur>,
    /// Random variation of each wait, as a fraction of it (0 to 1).
    #[serde(default)]
    pub jitter: f64,
}

fn default_retry_delay() -> Dur {
    Dur(Duration::from_secs(1))
}
fn default_backoff() -> f64 {
    2.0
}

/// Run mode when a run is triggered while others are going.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Refuse the new run.
    #[default]
    Single,
    /// Wait until the running one finishes; at most `max` wait.
    Queued,
    /// Cancel the running one and start the new one.
    Restart,
    /// Run side by side, at most `max` at once.
    Parallel,
}

/// The `concurrency` block: `mode` and its `max` (the guide's `maxConcurrentRuns`).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ConcurrencyDef {
    /// The run mode.
    #[serde(default)]
    pub mode: Mode,
    /// `parallel`: runs at once; `queued`: runs waiting. Ignored by `single` and `restart`.
    #[serde(default = "default_max")]
    pub max: u32,
}

fn default_max() -> u32 {
    10
}

impl Default for ConcurrencyDef {
    fn default() -> Self {
        ConcurrencyDef {
            mode: Mode::Single,
            max: default_max(),
        }
    }
}

/// A duration written as `250ms`, `5s`, `2m`, `1h`, `1d`, or a bare number of milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(into = "String")]
pub struct Dur(pub Duration);

impl From<Dur> for String {
    fn from(d: Dur) -> String {
        d.to_string()
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0.as_millis())
    }
}

impl Dur {
    /// Parses `250ms`, `1.5s`, `2m`, `1h`, `1d` or a bare number of milliseconds.
    pub fn parse(s: &str) -> Result<Dur, String> {
        let s = s.trim();
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let value: f64 = num
            .parse()
            .map_err(|_| format!("`{s}` is not a duration: expected e.g. 500ms, 5s, 2m, 1h"))?;
        let scale = match unit.trim() {
            "" | "ms" => 0.001,
            "s" | "sec" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            other => {
                return Err(format!(
                    "unknown duration unit `{other}` in `{s}`: expected ms, s, m, h or d"
                ));
            }
        };
        let secs = value * scale;
        if !secs.is_finite() || secs > 1e9 {
            return Err(format!("duration `{s}` is out of range"));
        }
        Ok(Dur(Duration::from_secs_f64(secs)))
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Millis(u64),
            Text(String),
        }
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a duration such as 500ms, 5s, 2m or 1h")
        })? {
            Raw::Millis(ms) => Ok(Dur(Duration::from_millis(ms))),
            Raw::Text(s) => Dur::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_unit() {
        assert_eq!(Dur::parse("250ms").unwrap().0, Duration::from_millis(250));
        assert_eq!(Dur::parse("1.5s").unwrap().0, Duration::from_millis(1500));
        assert_eq!(Dur::parse("2m").unwrap().0, Duration::from_secs(120));
        assert_eq!(Dur::parse("40").unwrap().0, Duration::from_millis(40));
        assert!(
            Dur::parse("5 parsecs")
                .unwrap_err()
                .contains("unknown duration unit")
        );
        assert!(Dur::parse("soon").is_err());
    }
}
