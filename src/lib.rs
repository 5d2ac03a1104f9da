//! Atlas: a local-first, voice-first desktop assistant with an embedded workflow engine.
//!
//! Components, in the order a run flows through them:
//! - [`config`]: paths and `config.toml`.
//! - [`spec`]: the definition types `workflow` and `actions` share (an action as written,
//!   durations, bounds); imports nothing from Atlas.
//! - [`workflow`]: workflow files, their validation, the checked graph.
//! - [`template`]: `{{ ... }}` templates and conditions (minijinja).
//! - [`engine`]: admits runs under their run mode, executes graphs, publishes events.
//! - [`actions`]: the closed registry of action kinds.
//! - [`store`]: durable run history in SQLite (one writer thread, WAL).
//! - [`secrets`]: the secret store interface; [`redact`]: masking what a run read from it.
//! - [`tts`]: the speaker interface and its backends (espeak-ng, speech-dispatcher, WAV files).
//! - [`audio`]: microphone capture, WAV input, resampling, the speech gate.
//! - [`stt`]: local transcription with whisper.
//! - [`intent`]: matching transcripts to voice-phrase triggers.
//! - [`model`]: the whisper model catalog, downloads and CTranslate2 import.
//! - [`triggers`]: schedules (cron) and other trigger sources.
//! - [`desktop`]: the push-to-talk hotkey and the tray icon; [`agent`]: the voice session's state
//!   machine that they drive.
//! - [`mcp`]: Atlas as an MCP server (tools, resources), over stdio and the API's `/mcp`.
//! - [`api`]: the daemon's HTTP server: the control API (`/v1`) and webhook triggers (`/hooks`).
//! - [`runtime`]: the assembled product: a [`runtime::Runtime`] (engine, store, services and
//!   workflows from config) and the resident [`runtime::Daemon`].
//!
//! The `atlas` binary's `app` module (the command-line edge, `atlas bench`) sits on top of these and
//! is not part of the library.
#![warn(missing_docs)]

pub mod actions;
pub mod agent;
pub mod api;
pub mod audio;
pub mod config;
pub mod desktop;
pub mod engine;
pub mod integrations;
pub mod intent;
pub mod mcp;
pub mod model;
pub mod redact;
pub mod runtime;
pub mod secrets;
pub mod spec;
pub mod store;
pub mod stt;
pub mod template;
pub mod triggers;
pub mod tts;
pub mod voice;
pub mod workflow;

#[cfg(test)]
mod test_dbus;
#[cfg(test)]
mod test_display;
#[cfg(test)]
mod test_keyring;
#[cfg(test)]
mod test_pulse;
#[cfg(test)]
mod test_skip;
#[cfg(test)]
mod test_speechd;
