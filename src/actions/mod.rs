//! The closed registry of action kinds: their configs and how the leaf actions run.
//!
//! An action's YAML `config` is parsed once, at load, into its typed [`ActionConfig`]; fields that
//! may hold templates are [`crate::template::Tmpl`], [`crate::template::TValue`] or [`crate::template::Expr`] and render at run time against the run's
//! scope. Leaf actions (`http`, `delay`, `set`, `log`, `file`, `notify`, `llm`, `speak`,
//! `condition`) run here through [`execute`]; the control actions that need the engine itself
//! (`loop` runs a body graph, `workflow` starts another run) are run by `engine::executor`.
//! Adding a kind means adding a variant, its config file and a line in [`KINDS`].
//!
//! **Boundary**: actions see the run only through [`ActionCtx`]; they never touch the store.

mod basic;
mod body;
mod file;
mod http;
mod llm;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use minijinja::Value as MjValue;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::redact::Redactor;
use crate::secrets::SecretStore;
use crate::template::RenderError;
use crate::tts::Speaker;
use crate::workflow::ActionDef;

pub use basic::{
    ConditionConfig, DelayConfig, LogConfig, NotifyConfig, SetConfig, SpeakConfig,
    WorkflowCallConfig,
};
pub use body::{ByteLimit, DEFAULT_MAX_BYTES, MAX_MAX_BYTES};
pub use file::{FileConfig, FileOp, resolve_in_root};
pub use http::HttpConfig;
pub use llm::{LlmConfig, LlmDefaults};

/// Every action kind, as written in `type:`.
pub const KINDS: &[&str] = &[
    "http",
    "condition",
    "loop",
    "delay",
    "set",
    "log",
    "file",
    "notify",
    "llm",
    "speak",
    "workflow",
];

/// The typed config of one action.
#[derive(Debug, Clone)]
pub enum ActionConfig {
    /// HTTP request.
    Http(HttpConfig),
    /// Branch on an expression.
    Condition(ConditionConfig),
    /// Run a body of actions per item.
    Loop(LoopConfig),
    /// Wait.
    Delay(DelayConfig),
    /// Set run variables.
    Set(SetConfig),
    /// Write to the log (and the run history).
    Log(LogConfig),
    /// Sandboxed file access.
    File(FileConfig),
    /// Desktop notification.
    Notify(NotifyConfig),
    /// Chat completion from an OpenAI-compatible server.
    Llm(LlmConfig),
    /// Say something.
    Speak(SpeakConfig),
    /// Run another workflow.
    Workflow(WorkflowCallConfig),
}

/// Config of a `loop` action.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoopConfig {
    /// The list to iterate over (usually one `{{ expr }}`).
    pub items: crate::template::TValue,
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

/// A config that did not parse: the path inside `config` and what was expected.
#[derive(Debug, Clone)]
pub struct ConfigError {
    /// Path below the action's `config`, e.g. `headers.Accept`; empty for the config itself.
    pub path: String,
    /// What was wrong and what was expected.
    pub message: String,
}

fn parse<T: DeserializeOwned>(raw: &Value) -> Result<T, ConfigError> {
    let raw = if raw.is_null() {
        &Value::Object(Default::default())
    } else {
        raw
    };
    serde_path_to_error::deserialize(raw).map_err(|e| {
        let path = e.path().to_string();
        ConfigError {
            path: if path == "." { String::new() } else { path },
            message: e.into_inner().to_string(),
        }
    })
}

impl ActionConfig {
    /// Parses the raw `config` of an action of kind `kind`.
    pub fn parse(kind: &str, raw: &Value) -> Result<ActionConfig, ConfigError> {
        Ok(match kind {
            "http" => ActionConfig::Http(parse(raw)?),
            "condition" => ActionConfig::Condition(parse(raw)?),
            "loop" => ActionConfig::Loop(parse(raw)?),
            "delay" => ActionConfig::Delay(parse(raw)?),
            "set" => ActionConfig::Set(parse(raw)?),
            "log" => ActionConfig::Log(parse(raw)?),
            "file" => ActionConfig::File(parse(raw)?),
            "notify" => ActionConfig::Notify(parse(raw)?),
            "llm" => ActionConfig::Llm(parse(raw)?),
            "speak" => ActionConfig::Speak(parse(raw)?),
            "workflow" => ActionConfig::Workflow(parse(raw)?),
            other => {
                return Err(ConfigError {
                    path: String::new(),
                    message: format!(
                        "unknown action type `{other}`, expected one of: {}",
                        KINDS.join(", ")
                    ),
                });
            }
        })
    }
}

/// Everything shared that actions use: clients, stores, the speaker, limits.
#[derive(Clone)]
pub struct Services {
    /// HTTP client shared by `http` and `llm`.
    pub http: reqwest::Client,
    /// Where `speak` goes.
    pub speaker: Arc<dyn Speaker>,
    /// Where `{{ secrets.X }}` comes from. Actions read it through [`ActionCtx::secret`], which
    /// registers what it reads with the run's redactor.
    pub secrets: Arc<dyn SecretStore>,
    /// Roots the `file` action may touch, by name; the first is the default.
    pub file_roots: Vec<(String, PathBuf)>,
    /// Environment variables templates may read as `env.NAME`.
    pub env: BTreeMap<String, String>,
    /// Defaults for the `llm` action.
    pub llm: LlmDefaults,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("speaker", &self.speaker.name())
            .field("secrets", &self.secrets.name())
            .field("file_roots", &self.file_roots)
            .finish_non_exhaustive()
    }
}

/// What a leaf action sees of its run.
pub struct ActionCtx<'a> {
    /// The template context (vars, trigger, outputs, env, secrets, loop item).
    pub scope: &'a MjValue,
    /// Shared services.
    pub services: &'a Services,
    /// Fires when the run is cancelled or times out.
    pub cancel: &'a CancellationToken,
    /// The run's redactor: every secret an action reads is registered here before it is used.
    pub redactor: &'a Redactor,
}

impl ActionCtx<'_> {
    /// Reads secret `name` from the secret store, registering its value with the run's redactor
    /// first. Actions read secrets only through this (or `{{ secrets.NAME }}`), never from
    /// [`Services::secrets`] directly.
    pub fn secret(&self, name: &str) -> Result<Option<String>, crate::secrets::SecretError> {
        let value = self.services.secrets.get(name)?;
        if let Some(v) = &value {
            self.redactor.add(v);
        }
        Ok(value)
    }
}

/// Why an action failed.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// A template in the config could not be rendered.
    #[error(transparent)]
    Template(#[from] RenderError),
    /// The request could not be made or its answer read.
    #[error("HTTP request to {url} failed: {reason}")]
    Http {
        /// Where to.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The server answered with a status the action does not accept.
    #[error("HTTP {status} from {url}: {body}")]
    Status {
        /// Where from.
        url: String,
        /// The status code.
        status: u16,
        /// The start of the answer's body.
        body: String,
        /// How long the server asked to wait before trying again (`Retry-After`), if it did.
        retry_after: Option<std::time::Duration>,
    },
    /// An answer or a file is larger than the action's cap.
    #[error(
        "{what} is larger than the cap of {limit}: raise the action's `max_bytes` (at most 256 MiB) or ask for less"
    )]
    TooLarge {
        /// What was being read.
        what: String,
        /// The cap, e.g. `10 MiB`.
        limit: String,
    },
    /// A file operation was refused or failed.
    #[error("{0}")]
    File(String),
    /// The LLM server answered, but not with a chat completion.
    #[error("LLM call failed: {0}")]
    Llm(String),
    /// Speaking failed.
    #[error(transparent)]
    Speak(#[from] crate::tts::TtsError),
    /// One attempt took longer than the action's timeout.
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// The run was cancelled while the action was in flight.
    #[error("cancelled")]
    Cancelled,
    /// Anything else, in words.
    #[error("{0}")]
    Failed(String),
}

impl ActionError {
    /// Whether trying again could help. Template and sandbox errors are deterministic, and so is
    /// an HTTP 4xx (the request itself is wrong) except 429 Too Many Requests; 5xx may pass.
    pub fn is_retryable(&self) -> bool {
        match self {
            ActionError::Status { status, .. } => *status == 429 || *status >= 500,
            ActionError::Template(_)
            | ActionError::File(_)
            | ActionError::TooLarge { .. }
            | ActionError::Cancelled => false,
            _ => true,
        }
    }

    /// How long the server asked to wait before the next try, if it said (`Retry-After`).
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            ActionError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Runs a leaf action. `loop` and `workflow` are the engine's and are refused here.
pub async fn execute(cfg: &ActionConfig, ctx: &ActionCtx<'_>) -> Result<Value, ActionError> {
    match cfg {
        ActionConfig::Http(c) => http::run(c, ctx).await,
        ActionConfig::Condition(c) => basic::condition(c, ctx),
        ActionConfig::Delay(c) => basic::delay(c, ctx).await,
        ActionConfig::Set(c) => basic::set(c, ctx),
        ActionConfig::Log(c) => basic::log(c, ctx),
        ActionConfig::File(c) => file::run(c, ctx).await,
        ActionConfig::Notify(c) => basic::notify(c, ctx).await,
        ActionConfig::Llm(c) => llm::run(c, ctx).await,
        ActionConfig::Speak(c) => basic::speak(c, ctx).await,
        ActionConfig::Loop(_) | ActionConfig::Workflow(_) => Err(ActionError::Failed(
            "control actions are run by the engine".into(),
        )),
    }
}
