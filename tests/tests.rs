//! Integration tests, built as one binary: shared helpers in `util`, one module per area.

mod util;
// The skip rule shared with the unit tests.
#[path = "../src/test_skip.rs"]
mod test_skip;

mod agent;
mod bundled;
mod cli;
mod engine;
mod loader_props;
mod schedule;
mod validation;
mod voice;
