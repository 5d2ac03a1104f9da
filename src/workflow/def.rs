//! The shape of a workflow file, as serde reads it.
//!
//! These types mirror the YAML one to one and carry no behaviour. The parts an action kind needs
//! too ([`ActionDef`], `RetryDef`, [`Dur`]) are `spec`'s. Loading (see `load`) turns a
//! [`WorkflowDef`] into a validated [`crate::workflow::Workflow`]; action configs stay raw JSON here
//! and are given their typed form by `actions::ActionConfig::parse`, so that every action of a file
//! is checked on its own and one bad action does not hide the errors of the next.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::spec::{ActionDef, Dur, Scheme};

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
    /// Started by an HTTP request to the daemon's webhook server, at `/hooks/<path>`.
    Webhook {
        /// URL path under `/hooks/`: `/deploy` (or `/hooks/deploy`) is served at `/hooks/deploy`.
        path: String,
        /// The shared secret that signs deliveries, as a secret reference:
        /// `{{ secrets.NAME }}` (never the value itself).
        #[serde(default)]
        secret: Option<String>,
        /// How deliveries are signed: `github`, `slack`, `standard`, or an explicit `none`.
        #[serde(default)]
        scheme: Option<Scheme>,
    },
    /// Started by an event: another workflow's run ending (`run.finished`, `run.failed`), an
    /// agent stage change (`agent.stage`), an integration's event (`mail.new`), a file in a
    /// watched folder (`file.created`), a desktop signal (`session.locked`, `network.down`).
    Event {
        /// Event type, e.g. `run.failed`.
        event: String,
        /// A minijinja expression over the event (`event`, `source`, `data`); the trigger fires
        /// only when it is true, e.g. `data.workflow_id == "backup"`. The load-time checks
        /// compile it (an error names `triggers[i].filter` and its line).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filter: Option<String>,
        /// For `mail.new` only: a Gmail search query the new message must match, in Gmail's own
        /// syntax (`from:boss is:important`), which Gmail itself evaluates.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        query: Option<String>,
        /// Lets an event caused by this workflow's own runs start it again (still bounded by
        /// the causation depth); off by default, so A -> A and A -> B -> A are refused.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        allow_loop: bool,
    },
    /// Started by a spoken phrase.
    Voice {
        /// Phrase templates, e.g. `what's [the] weather [like] [today]`.
        phrases: Vec<String>,
        /// Said as soon as a run this trigger started begins, before its actions finish, e.g.
        /// `On it.` for a workflow that takes a while (plain text, not a template).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ack: Option<String>,
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
