//! Workflow definitions: the YAML format, its validation, and the checked form the engine runs.
//!
//! `def` holds the serde shapes of a file (an action as written is `spec`'s [`ActionDef`]),
//! `load` reads one file into a [`Workflow`] (or precise [`LoadError`]s naming file, line,
//! column and field), `check` runs the semantic checks of its header and triggers, `graph`
//! builds and checks its action graph (configs typed by `actions`), `limits` bounds its
//! numbers, `dirs` loads whole folders and checks calls between workflows, `positions` maps field
//! paths back to positions in the source, `bundled` holds the workflows built into the program.
//! A [`Workflow`] is immutable once built and shared as `Arc<Workflow>`.
//!
//! **Boundary**: `workflow` imports `spec` and `actions` (to parse and check action configs);
//! `actions` never imports `workflow`.

mod bundled;
mod check;
mod def;
mod dirs;
mod graph;
mod limits;
mod load;
mod positions;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

pub use bundled::BUNDLED_PREFIX;
pub use check::KNOWN_EVENTS;
pub use def::{ConcurrencyDef, MissedPolicy, Mode, TriggerDef, WorkflowDef};
// `spec`'s types at their old paths, for the code that names them through `workflow`.
pub use crate::spec::{
    ActionDef, Dur, MAX_ATTEMPTS, MAX_BACKOFF, MAX_RETRY_DELAY, MAX_STEPS, MAX_TIMEOUT, MAX_VISITS,
    RetryDef,
};
pub use dirs::{load_dirs, load_sources};
pub use load::{LoadError, LoadReport, load_file, load_str};
pub use positions::{Pos, Positions};

use crate::actions::ActionConfig;

/// A validated workflow, ready to run.
#[derive(Debug)]
pub struct Workflow {
    /// The definition as written.
    pub def: WorkflowDef,
    /// The file it came from.
    pub source: PathBuf,
    /// The action graph.
    pub graph: Graph,
    /// Parsed schedule triggers (cron and zone), in the order of `def.triggers`.
    pub schedules: Vec<Schedule>,
    /// What is valid but will not work as written, e.g. a webhook trigger, which nothing fires
    /// yet; shown by `atlas workflow validate` and when the workflows load.
    pub warnings: Vec<LoadError>,
}

impl Workflow {
    /// The workflow's id.
    pub fn id(&self) -> &str {
        &self.def.id
    }

    /// Its display name.
    pub fn name(&self) -> &str {
        self.def.name.as_deref().unwrap_or(&self.def.id)
    }

    /// Whether a trigger of this kind may start it.
    pub fn has_trigger(&self, kind: &str) -> bool {
        self.def.triggers.iter().any(|t| t.kind() == kind)
    }

    /// Its run timeout.
    pub fn timeout(&self) -> Option<Duration> {
        self.def.timeout.map(|d| d.0)
    }
}

/// A parsed `schedule` trigger.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Index of this trigger in the workflow's `triggers`.
    pub trigger: u32,
    /// The cron expression as written.
    pub expr: String,
    /// The cron schedule (seconds field included).
    pub cron: cron::Schedule,
    /// The time zone it is read in.
    pub timezone: Option<chrono_tz::Tz>,
    /// What to do about missed runs.
    pub missed: MissedPolicy,
}

/// A list of actions with its edges resolved to indexes.
#[derive(Debug)]
pub struct Graph {
    /// The actions, in file order.
    pub nodes: Vec<Node>,
    /// Index of the first action.
    pub entry: usize,
    index: HashMap<String, usize>,
}

impl Graph {
    /// Index of the action called `id`.
    pub fn find(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }
}

/// One action of a graph.
#[derive(Debug)]
pub struct Node {
    /// The action's id.
    pub id: String,
    /// Its kind, as written.
    pub kind: String,
    /// Its typed config.
    pub config: ActionConfig,
    /// Where to go on success (default: the next node).
    pub on_success: Option<usize>,
    /// Where to go on failure (default: fail the run).
    pub on_failure: Option<usize>,
    /// For `condition`: where to go when true / false (default: the next node).
    pub branches: Option<(Option<usize>, Option<usize>)>,
    /// For `loop`: the body.
    pub body: Option<Graph>,
    /// Retry policy.
    pub retry: Option<RetryDef>,
    /// Timeout of one attempt.
    pub timeout: Option<Duration>,
    /// Visit bound, for nodes on a cycle.
    pub max_visits: Option<u32>,
}

impl Graph {
    /// The node after `idx` in list order, if any.
    pub fn next_in_list(&self, idx: usize) -> Option<usize> {
        (idx + 1 < self.nodes.len()).then_some(idx + 1)
    }
}
