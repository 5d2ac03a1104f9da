//! One action of a workflow file as serde reads it: the node of a graph before its config is
//! typed (see `actions::ActionConfig::parse`) and its edges resolved (see `workflow`).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Dur;

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

/// Whether `s` is an identifier (`[A-Za-z_][A-Za-z0-9_]*`): what action ids and the names a
/// template sees (a loop's `as`) must be, since templates address them as `{{ name.field }}`.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_what_templates_can_address() {
        assert!(is_identifier("fetch_2") && is_identifier("_x"));
        assert!(!is_identifier("2fetch") && !is_identifier("a-b") && !is_identifier(""));
    }
}
