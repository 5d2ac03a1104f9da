//! The control kinds, `loop` and `workflow`: declared in the registry like every kind (name,
//! config, load-time checks), but run by `engine::executor`, since running a body graph or
//! starting another run needs the engine itself.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::ActionKind;
use crate::spec::{ActionDef, Problem, is_identifier};
use crate::template::TValue;

/// The `loop` kind.
pub struct Loop;

impl ActionKind for Loop {
    const NAME: &'static str = "loop";
    const DOC: &'static str = "Run a body of actions per item.";
    type Config = LoopConfig;

    /// The body must not be empty and `as` must be an identifier (templates address it as
    /// `{{ item.field }}`). The body's actions are checked by the workflow loader, as a graph.
    fn check(c: &LoopConfig) -> Vec<Problem> {
        if c.body.is_empty() {
            return vec![Problem::new(
                "body",
                "a loop needs at least one action in its body",
            )];
        }
        if !is_identifier(&c.as_name) {
            return vec![Problem::new("as", "must be an identifier such as `item`")];
        }
        Vec::new()
    }
}

/// Config of a `loop` action.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoopConfig {
    /// The list to iterate over (usually one `{{ expr }}`).
    pub items: TValue,
    /// Name under which the body sees the current item (default `item`; `loop.index` too).
    #[serde(default = "default_item_name", rename = "as")]
    pub as_name: String,
    /// Upper bound on iterations; more items fail the action.
    #[serde(default = "default_max_iterations")]
    pub max_iterations: u32,
    /// Actions run for every item, with the same graph rules as a workflow's actions.
    pub body: Vec<ActionDef>,
}

fn default_item_name() -> String {
    "item".into()
}
fn default_max_iterations() -> u32 {
    1000
}

/// The `workflow` kind.
pub struct WorkflowCall;

impl ActionKind for WorkflowCall {
    const NAME: &'static str = "workflow";
    const DOC: &'static str = "Run another workflow.";
    type Config = WorkflowCallConfig;
}

/// Config of `workflow`: run another workflow and use its result.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowCallConfig {
    /// Id of the workflow to run.
    pub workflow: String,
    /// Variables for the child run.
    #[serde(default)]
    pub vars: BTreeMap<String, TValue>,
}
