//! Configuration and paths: `config.toml`, the data directory, the workflow folders.
//!
//! **Boundary**: plain data. Components import their section from here (`[voice]` is
//! [`VoiceConfig`], `[speech]` [`SpeakerConfig`], ...); `config` imports no component.
//!
//! Paths follow the platform's conventions (XDG on Linux: `~/.config/atlas/config.toml`,
//! `~/.local/share/atlas/` for the database and logs, `~/.config/atlas/workflows/` for the user's
//! workflows). `--config`/`ATLAS_CONFIG` and `--data-dir`/`ATLAS_DATA_DIR` override them. A missing
//! config file means the defaults; a broken one is an error that names the file and the field.
//! `ATLAS_SPEECH` (auto, native, espeak, none) overrides `speech.backend`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod sections;

pub use sections::{
    AgentConfig, ApiConfig, BackendChoice, DEFAULT_AGREE_MARGIN, DEFAULT_API_LISTEN,
    DEFAULT_PROMPT_CHARS, DEFAULT_RATE, DEFAULT_VOICE, EventsConfig, HistoryConfig,
    IntegrationsConfig, LlmDefaults, McpConfig, McpServerConfig, PriceAlert, ProviderConfig,
    PttMode, SpeakerConfig, VoiceConfig, WorkflowSource,
};

/// Errors reading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but cannot be read.
    #[error("cannot read the config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("invalid config file {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// toml's explanation, with line and column.
        message: String,
    },
    /// No home directory to put things in.
    #[error(
        "no home directory found: set --data-dir and --config (or ATLAS_DATA_DIR and ATLAS_CONFIG)"
    )]
    NoHome,
}

/// The contents of `config.toml`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the database and logs go (default: the platform data dir).
    pub data_dir: Option<PathBuf>,
    /// The bundled workflows folder (default: `share/atlas/workflows` next to the program, else
    /// the copy built into the program).
    pub bundled_workflows: Option<PathBuf>,
    /// Your workflows folder (default: `workflows/` in the platform's config folder,
    /// `~/.config/atlas/workflows` on Linux, whichever config file `--config` names).
    pub workflows_dir: Option<PathBuf>,
    /// More workflow folders, read after the bundled one and the user's.
    pub workflow_dirs: Vec<PathBuf>,
    /// Environment variables templates may read as `env.NAME`.
    pub env_allow: Vec<String>,
    /// Folders the `file` action may use, by name. Default: `files` = `<data dir>/files`.
    pub file_roots: BTreeMap<String, PathBuf>,
    /// Defaults of the `llm` action.
    pub llm: LlmDefaults,
    /// The voice loop: model, matching, the not-understood reply.
    pub voice: VoiceConfig,
    /// How Atlas speaks: backend (auto, native, espeak, none), voice, rate.
    pub speech: SpeakerConfig,
    /// The resident agent: hotkey, push-to-talk mode, tray, chimes.
    pub agent: AgentConfig,
    /// Where `atlas model download` fetches whisper.cpp models from.
    pub model_base_url: Option<String>,
    /// How much run history to keep.
    pub history: HistoryConfig,
    /// The daemon's HTTP server: control API and webhooks.
    pub api: ApiConfig,
    /// External MCP servers the `mcp` action calls (`[mcp.servers.NAME]`).
    pub mcp: McpConfig,
    /// The sources of `event` triggers: watched folders, D-Bus signals.
    pub events: EventsConfig,
    /// Accounts Atlas signs in to (`[integrations.gmail]`, `[integrations.calendar]`).
    pub integrations: IntegrationsConfig,
}

/// Where everything lives, resolved.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The config file (may not exist).
    pub config_file: PathBuf,
    /// The data directory.
    pub data_dir: PathBuf,
    /// The user's workflows folder.
    pub user_workflows: PathBuf,
}

impl Paths {
    /// The run database.
    pub fn database(&self) -> PathBuf {
        self.data_dir.join("atlas.db")
    }

    /// The log folder.
    pub fn logs(&self) -> PathBuf {
        self.data_dir.join("logs")
    }

    /// The installed models folder.
    pub fn models(&self) -> PathBuf {
        self.data_dir.join("models")
    }
}

fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("", "", "atlas")
}

/// Resolves the paths from the overrides and the platform's conventions, and reads the config.
pub fn load(
    config_override: Option<&Path>,
    data_override: Option<&Path>,
) -> Result<(Config, Paths), ConfigError> {
    let dirs = project_dirs();
    let config_file = match config_override {
        Some(p) => p.to_path_buf(),
        None => dirs
            .as_ref()
            .ok_or(ConfigError::NoHome)?
            .config_dir()
            .join("config.toml"),
    };
    let mut config = read(&config_file)?;
    if let Ok(backend) = std::env::var("ATLAS_SPEECH") {
        config.speech.backend = serde_json::from_value(serde_json::Value::String(backend.clone()))
            .map_err(|_| ConfigError::Invalid {
                path: PathBuf::from("ATLAS_SPEECH"),
                message: format!(
                    "`{backend}` is not a speech backend: expected auto, native, espeak or none"
                ),
            })?;
    }
    // A second daemon (a test, a trial config) can move its server off the default port.
    if let Ok(listen) = std::env::var("ATLAS_API_LISTEN")
        && !listen.trim().is_empty()
    {
        config.api.listen = listen;
    }
    let data_dir = match (data_override, &config.data_dir, &dirs) {
        (Some(p), _, _) => p.to_path_buf(),
        (None, Some(p), _) => p.clone(),
        (None, None, Some(d)) => d.data_dir().to_path_buf(),
        (None, None, None) => return Err(ConfigError::NoHome),
    };
    // Not beside `--config`'s file: pointing at another config must not move the workflows.
    let user_workflows = match (&config.workflows_dir, &dirs) {
        (Some(p), _) => p.clone(),
        (None, Some(d)) => d.config_dir().join("workflows"),
        (None, None) => data_dir.join("workflows"),
    };
    Ok((
        config,
        Paths {
            config_file,
            data_dir,
            user_workflows,
        },
    ))
}

fn read(path: &Path) -> Result<Config, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    toml::from_str(&text).map_err(|e| ConfigError::Invalid {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

impl Config {
    /// Where the bundled workflows come from: configured, `ATLAS_BUNDLED_WORKFLOWS`,
    /// `share/atlas/workflows` next to the program (an installed package), or the copy built
    /// into the program. Never the machine the program was built on.
    pub fn bundled_source(&self) -> WorkflowSource {
        if let Some(p) = &self.bundled_workflows {
            return WorkflowSource::Dir(p.clone());
        }
        if let Ok(p) = std::env::var("ATLAS_BUNDLED_WORKFLOWS") {
            return WorkflowSource::Dir(PathBuf::from(p));
        }
        let exe_relative = std::env::current_exe().ok().and_then(|exe| {
            let share = exe.parent()?.parent()?.join("share/atlas/workflows");
            share.is_dir().then_some(share)
        });
        exe_relative.map_or(WorkflowSource::Embedded, WorkflowSource::Dir)
    }

    /// Every workflow source, in load order (later ones override earlier ids).
    pub fn workflow_dirs(&self, paths: &Paths) -> Vec<WorkflowSource> {
        let mut dirs = vec![
            self.bundled_source(),
            WorkflowSource::Dir(paths.user_workflows.clone()),
        ];
        dirs.extend(self.workflow_dirs.iter().cloned().map(WorkflowSource::Dir));
        dirs
    }

    /// The `file` action's roots, the default one included.
    pub fn file_roots(&self, paths: &Paths) -> Vec<(String, PathBuf)> {
        if self.file_roots.is_empty() {
            return vec![("files".into(), paths.data_dir.join("files"))];
        }
        self.file_roots
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Allow-listed environment variables and their values.
    pub fn env(&self) -> BTreeMap<String, String> {
        self.env_allow
            .iter()
            .filter_map(|k| Some((k.clone(), std::env::var(k).ok()?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_config_file_does_not_move_the_workflows_folder() {
        let dir = tempfile::tempdir().expect("temp dir");
        let other = dir.path().join("elsewhere/other.toml");
        std::fs::create_dir_all(other.parent().expect("parent")).expect("mkdir");
        std::fs::write(&other, "").expect("write");
        let (_, default_paths) = load(None, Some(dir.path())).expect("defaults");
        let (_, paths) = load(Some(&other), Some(dir.path())).expect("other config");
        assert_eq!(paths.config_file, other);
        assert_eq!(paths.user_workflows, default_paths.user_workflows);
        assert_ne!(paths.user_workflows, dir.path().join("elsewhere/workflows"));

        std::fs::write(&other, "workflows_dir = \"/srv/atlas-flows\"\n").expect("write");
        let (_, paths) = load(Some(&other), Some(dir.path())).expect("configured");
        assert_eq!(paths.user_workflows, Path::new("/srv/atlas-flows"));
    }

    #[test]
    fn the_bundled_workflows_never_come_from_the_build_tree() {
        let config = Config::default();
        // Tests run from target/debug/deps: no share/atlas/workflows beside them.
        if std::env::var_os("ATLAS_BUNDLED_WORKFLOWS").is_none() {
            assert_eq!(config.bundled_source(), WorkflowSource::Embedded);
        }
        let configured = Config {
            bundled_workflows: Some(PathBuf::from("/opt/flows")),
            ..Config::default()
        };
        assert_eq!(
            configured.bundled_source(),
            WorkflowSource::Dir(PathBuf::from("/opt/flows"))
        );
    }
}
