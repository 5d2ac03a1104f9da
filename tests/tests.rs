//! Integration tests, built as one binary: shared helpers in `util`, one module per area.

mod util;

mod agent;
mod bundled;
mod cli;
mod engine;
mod loader_props;
mod schedule;
mod secrets;
mod validation;
mod voice;
