//! The assembled Atlas: components built from [`Config`] into something that runs.
//!
//! A [`Runtime`] is the engine with its store, services and workflows loaded: what every command
//! that runs a workflow needs. A [`Daemon`] is a runtime plus the resident parts (crash recovery,
//! the scheduler, retention, the status file, the voice loop, the desktop and the agent), started
//! with [`Daemon::start`] and run until a shutdown future resolves with [`Daemon::run`], so a test
//! (or, later, the control API) can run one in-process. This is the top of the library: it may
//! import every component; nothing in the library imports it, and only the `atlas` binary's `app`
//! (the command-line edge) sits above it.

mod daemon;
pub mod instance;
mod retention;
mod status;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use daemon::{Daemon, DaemonError, Started};
pub use retention::{PRUNE_EVERY, keep_history};
pub use status::{Facts, STATUS_REFRESH, StatusWriter, read_status};

use crate::actions::{HttpClient, Services};
use crate::config::{Config, Paths};
use crate::engine::Engine;
use crate::integrations::{DesktopAnnounce, Integrations};
use crate::model::{self, ModelError};
use crate::secrets::{ChainSecrets, EnvSecrets, KeyringSecrets, SecretStore};
use crate::store::{Store, StoreError};
use crate::tts::Speaker;
use crate::workflow::{LoadReport, load_sources};

/// Why a runtime could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A directory Atlas needs could not be created.
    #[error("cannot create the {what} {path}: {source}")]
    Dir {
        /// Which directory ("data directory", "file root").
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The database could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `[integrations]` names a provider that does not exist.
    #[error("{0} (in {1})")]
    Integrations(crate::integrations::IntegrationError, PathBuf),
}

/// A configured engine and what loading produced.
pub struct Runtime {
    /// The config file's contents.
    pub config: Config,
    /// Resolved paths.
    pub paths: Paths,
    /// The engine, workflows loaded.
    pub engine: Engine,
    /// The load report (errors of bad files; the good ones are in the engine).
    pub report: LoadReport,
    /// The integrations (the `gmail` action's, and the daemon's health checks).
    pub integrations: Arc<Integrations>,
}

impl Runtime {
    /// Opens the store, loads the workflows and builds the engine; actions speak through
    /// `speaker`.
    pub fn build(
        config: Config,
        paths: Paths,
        speaker: Arc<dyn Speaker>,
    ) -> Result<Runtime, RuntimeError> {
        create_dir("data directory", &paths.data_dir)?;
        crate::integrations::check_config(&config.integrations)
            .map_err(|e| RuntimeError::Integrations(e, paths.config_file.clone()))?;
        let store = Store::open(&paths.database())?;
        let integrations = integrations(&config, &paths);
        let mut services = services(&config, &paths, speaker)?;
        services.accounts = Some(integrations.clone());
        let engine = Engine::new(store, services);
        let report = load_sources(&config.workflow_dirs(&paths));
        engine.set_workflows(report.workflows.iter().cloned());
        Ok(Runtime {
            config,
            paths,
            engine,
            report,
            integrations,
        })
    }
}

fn create_dir(what: &'static str, path: &std::path::Path) -> Result<(), RuntimeError> {
    std::fs::create_dir_all(path).map_err(|source| RuntimeError::Dir {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// The integrations of `config`: tokens in the OS keyring, client secrets from the environment
/// or the keyring, a desktop notification when one needs a new sign-in; events go to the hub the
/// daemon attaches ([`Integrations::attach_hub`]).
pub fn integrations(config: &Config, paths: &Paths) -> Arc<Integrations> {
    let keyring = Arc::new(KeyringSecrets::new());
    let secrets: Arc<dyn SecretStore> =
        Arc::new(ChainSecrets(vec![Arc::new(EnvSecrets), keyring.clone()]));
    Arc::new(Integrations::new(
        config.integrations.clone(),
        &paths.config_file,
        &paths.data_dir,
        keyring,
        secrets,
        Arc::new(DesktopAnnounce),
        None,
    ))
}

/// The shared services actions use, from config (without integrations: [`Runtime::build`] adds
/// them).
pub fn services(
    config: &Config,
    paths: &Paths,
    speaker: Arc<dyn Speaker>,
) -> Result<Services, RuntimeError> {
    let roots = config.file_roots(paths);
    for (_, dir) in &roots {
        create_dir("file root", dir)?;
    }
    // The environment overrides the keyring (CI, servers).
    let secrets: Arc<dyn SecretStore> = Arc::new(ChainSecrets(vec![
        Arc::new(EnvSecrets),
        Arc::new(KeyringSecrets::new()),
    ]));
    Ok(Services {
        http: HttpClient::new(
            concat!("atlas/", env!("CARGO_PKG_VERSION")),
            Duration::from_secs(10),
        ),
        speaker,
        secrets,
        file_roots: roots,
        env: config.env(),
        llm: config.llm.clone(),
        mcp_servers: config.mcp.servers.clone(),
        accounts: None,
        questions: Default::default(),
    })
}

/// Why no whisper model could be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelChoiceError {
    /// A model file was named and does not exist.
    #[error("the whisper model file {0} does not exist")]
    MissingFile(PathBuf),
    /// The name is not in the catalog.
    #[error(transparent)]
    Unknown(#[from] ModelError),
    /// A catalog model was named and is not installed.
    #[error("whisper model `{name}` is not installed in {dir}: run `atlas model download {name}`")]
    NotInstalled {
        /// The name asked for.
        name: String,
        /// The models folder.
        dir: PathBuf,
    },
    /// Nothing was named and nothing is installed.
    #[error(
        "no whisper model is installed in {0}: run `atlas model download base.en` (or tiny.en), or `atlas model import DIR` for a faster-whisper model"
    )]
    NoneInstalled(PathBuf),
}

/// The whisper model to use: `arg` (a `--model` option), else `ATLAS_MODEL`, else
/// `voice.model` in config.toml (each a catalog name or a file), else the best installed English
/// model.
pub fn resolve_model(
    arg: Option<&str>,
    config: &Config,
    paths: &Paths,
) -> Result<PathBuf, ModelChoiceError> {
    let models = paths.models();
    let wanted = arg
        .map(str::to_owned)
        .or_else(|| std::env::var("ATLAS_MODEL").ok().filter(|m| !m.is_empty()))
        .or_else(|| config.voice.model.clone());
    if let Some(w) = wanted {
        let p = PathBuf::from(&w);
        if p.exists() || w.contains('/') || w.ends_with(".bin") {
            if !p.exists() {
                return Err(ModelChoiceError::MissingFile(p));
            }
            return Ok(p);
        }
        let entry = model::catalog::lookup(&w)?;
        let path = models.join(entry.file_name);
        if !path.exists() {
            return Err(ModelChoiceError::NotInstalled {
                name: w,
                dir: models,
            });
        }
        return Ok(path);
    }
    model::best_installed_english(&models)
        .map(|m| m.path)
        .ok_or(ModelChoiceError::NoneInstalled(models))
}
