//! Integration tests, built as one binary: shared helpers in `util`, one module per area.

mod util;
// Shared with the unit tests: the skip rule, the session bus, X server, sound server and
// speech-dispatcher harnesses.
#[path = "../src/test_dbus.rs"]
mod test_dbus;
#[path = "../src/test_display.rs"]
mod test_display;
#[path = "../src/test_keyring.rs"]
mod test_keyring;
#[path = "../src/test_pulse.rs"]
mod test_pulse;
#[path = "../src/test_skip.rs"]
mod test_skip;
#[path = "../src/test_speechd.rs"]
mod test_speechd;

mod accounts;
mod agent;
mod api;
mod bench_accuracy;
mod bundled;
mod cli;
mod daemon;
mod dashboard;
mod engine;
mod engine_safety;
mod events;
mod integrations;
mod layering;
mod loader_props;
mod mcp;
mod schedule;
mod secrets;
mod trust;
mod typed;
mod validation;
mod voice;
