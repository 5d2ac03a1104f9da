//! The application edge: builds the engine from config and runs the CLI's commands.
//!
//! `main` parses arguments and calls into here; everything below this module is a library with
//! typed errors, and this is where they become messages and exit codes (`anyhow` lives here only).

mod daemon;
mod history;
pub mod instance;
pub mod service;
mod voice_cmd;
mod workflow_cmd;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

pub use daemon::{daemon, status};
pub use history::prune;
pub use voice_cmd::{
    Input, ListenOpts, listen, model_download, model_import, model_list, model_probe,
    resolve_model, say, transcribe,
};
pub use workflow_cmd::{history, list, run_workflow, show_run, validate};

use crate::actions::Services;
use crate::config::{self, Config, Paths};
use crate::engine::Engine;
use crate::secrets::{ChainSecrets, EnvSecrets, SecretStore};
use crate::store::Store;
use crate::tts::Speaker;
use crate::workflow::{LoadReport, load_sources};

/// Options every command shares.
#[derive(Debug, Clone, Default)]
pub struct Global {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--workflows`: extra workflow folders.
    pub workflows: Vec<PathBuf>,
}

/// A configured engine and what loading produced.
pub struct App {
    /// The config file's contents.
    pub config: Config,
    /// Resolved paths.
    pub paths: Paths,
    /// The engine, workflows loaded.
    pub engine: Engine,
    /// The load report (errors of bad files; the good ones are in the engine).
    pub report: LoadReport,
}

/// Reads config, opens the store, loads workflows and builds the engine.
pub fn build(global: &Global, speaker: Arc<dyn Speaker>) -> anyhow::Result<App> {
    let (mut config, paths) = config::load(global.config.as_deref(), global.data_dir.as_deref())?;
    config
        .workflow_dirs
        .extend(global.workflows.iter().cloned());
    std::fs::create_dir_all(&paths.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            paths.data_dir.display()
        )
    })?;
    let store = Store::open(&paths.database())?;
    let services = services(&config, &paths, speaker)?;
    let engine = Engine::new(store, services);
    let report = load_sources(&config.workflow_dirs(&paths));
    engine.set_workflows(report.workflows.iter().cloned());
    Ok(App {
        config,
        paths,
        engine,
        report,
    })
}

/// The shared services actions use, from config.
pub fn services(
    config: &Config,
    paths: &Paths,
    speaker: Arc<dyn Speaker>,
) -> anyhow::Result<Services> {
    let roots = config.file_roots(paths);
    for (_, dir) in &roots {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the file root {}", dir.display()))?;
    }
    let secrets: Arc<dyn SecretStore> = Arc::new(ChainSecrets(vec![Arc::new(EnvSecrets)]));
    Ok(Services {
        http: reqwest::Client::builder()
            .user_agent(concat!("atlas/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .context("cannot build the HTTP client")?,
        speaker,
        secrets,
        file_roots: roots,
        env: config.env(),
        llm: config.llm.clone(),
    })
}

/// Prints load warnings and errors to stderr, one per line.
pub fn warn_load_errors(report: &LoadReport) {
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    for e in &report.errors {
        eprintln!("warning: {e}");
    }
    if !report.errors.is_empty() {
        eprintln!(
            "warning: {} problem(s) in workflow files; those workflows are not loaded (`atlas workflow validate` lists them)",
            report.errors.len()
        );
    }
}

/// SIGINT and SIGTERM, caught from the moment this is made: a signal that arrives while the
/// daemon is still starting up waits here instead of killing the process.
pub struct ShutdownSignal {
    #[cfg(unix)]
    signals: Vec<tokio::signal::unix::Signal>,
}

impl ShutdownSignal {
    /// Starts catching the signals.
    pub fn listen() -> ShutdownSignal {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signals = [SignalKind::interrupt(), SignalKind::terminate()]
                .into_iter()
                .filter_map(|k| signal(k).ok())
                .collect();
            ShutdownSignal { signals }
        }
        #[cfg(not(unix))]
        ShutdownSignal {}
    }

    /// Waits for the first of them.
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        {
            if self.signals.is_empty() {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
            let waits = self.signals.iter_mut().map(|s| Box::pin(s.recv()));
            futures::future::select_all(waits).await;
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
