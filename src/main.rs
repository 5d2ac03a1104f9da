//! The `atlas` command: parses the command line and hands it to [`app::run`], which sets up
//! logging and the async runtime and carries the command out. Everything the commands use is the
//! `atlas` library; `app` is this binary's own edge (command output, exit codes, `anyhow`).

mod app;

// Test harnesses shared with the library's unit tests and the integration tests, included by
// path; the bench's key-injection tests use the X server harness.
#[cfg(test)]
#[path = "test_display.rs"]
mod test_display;
#[cfg(test)]
#[path = "test_skip.rs"]
mod test_skip;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    app::run(app::cli::Cli::parse())
}
