//! The closed registry of action kinds: their configs and how the leaf actions run.
//!
//! An action's YAML `config` is parsed once, at load, into its typed [`ActionConfig`]; fields that
//! may hold templates are [`crate::template::Tmpl`], [`crate::template::TValue`] or
//! [`crate::template::Expr`] and render at run time against the run's scope. Leaf actions run
//! here through [`execute`]; the control actions that need the engine itself (`loop` runs a body
//! graph, `workflow` starts another run) are run by `engine::executor`.
//!
//! **Adding a kind** (e.g. `gmail.send`): write its file with a unit struct implementing
//! [`ActionKind`] (`NAME = "gmail.send"`, `DOC`, `type Config`, and `check` if its config has
//! bounds to check at load) and [`LeafKind`] (`execute`), then add its `mod` line and one line to
//! the `action_kinds!` list below (`leaf GmailSend => gmail::Send,`). The enum variant,
//! [`KINDS`], parsing, load-time checks and dispatch all follow from that list; a name that is not
//! dotted lowercase words, or is used twice, fails the build.
//!
//! **Boundary**: actions see the run only through [`ActionCtx`]; they never touch the store.
//! **Boundary**: `actions` imports `spec` for the definition types it shares with `workflow`, and
//! never imports `workflow` (which imports `actions`).

mod ask;
mod basic;
mod body;
mod calendar;
mod client;
mod control;
mod error;
mod fields;
mod file;
mod gmail;
mod http;
mod kind;
mod llm;
mod mail;
mod mcp;
mod service;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use minijinja::Value as MjValue;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::config::{LlmDefaults, McpServerConfig};
use crate::redact::Redactor;
use crate::secrets::SecretStore;
use crate::tts::Speaker;

pub use ask::{AskConfig, Asked, DEFAULT_ASK_TIMEOUT, MAX_ASK_TIMEOUT, Questions, yes_or_no};
pub use basic::{
    ConditionConfig, DelayConfig, Level, LogConfig, NotifyConfig, SetConfig, SpeakConfig, Urgency,
};
pub use body::{ByteLimit, DEFAULT_MAX_BYTES, MAX_MAX_BYTES};
pub use calendar::{CalendarConfig, CalendarOp};
pub use client::HttpClient;
pub use control::{LoopConfig, WorkflowCallConfig};
pub use error::{ActionError, ControlError, FileError, LlmError};
pub use fields::{FieldInfo, KindInfo};
pub use file::{FileConfig, FileOp, resolve_in_root};
pub use gmail::{Accounts, AccountsFuture, GmailConfig, GmailOp};
pub use http::{AllowStatus, HttpConfig, ResponseKind};
pub use kind::{ActionKind, ConfigError, LeafKind};
pub use llm::LlmConfig;
pub use mail::{MailConfig, MailOp};
pub use mcp::{
    DEFAULT_MCP_TIMEOUT, McpCallConfig, McpClient, McpClientError, call_tool, connect, list_tools,
    result_text,
};
pub use service::{
    OpSpec, SERVICE_KINDS, ServiceAction, ServiceConfig, ServiceKind, ServiceOp, op, service_kind,
    service_kinds,
};

use kind::action_kinds;

// The registry: one line per kind, `leaf` (run by `execute`) or `control` (run by the engine).
// The order is the order of `KINDS`, which error messages list.
action_kinds! {
    leaf Http => http::Http,
    leaf Condition => basic::Condition,
    control Loop => control::Loop,
    leaf Delay => basic::Delay,
    leaf Set => basic::Set,
    leaf Log => basic::Log,
    leaf File => file::File,
    leaf Notify => basic::Notify,
    leaf Llm => llm::Llm,
    leaf Speak => basic::Speak,
    leaf Ask => ask::Ask,
    leaf Mcp => mcp::Mcp,
    leaf Mail => mail::Mail,
    leaf Gmail => gmail::Gmail,
    leaf Calendar => calendar::Calendar,
    control Workflow => control::WorkflowCall,
}

/// Everything shared that actions use: clients, stores, the speaker, limits.
#[derive(Clone)]
pub struct Services {
    /// HTTP client shared by `http` and `llm`, built on first use.
    pub http: HttpClient,
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
    /// The external MCP servers the `mcp` action may call, by name.
    pub mcp_servers: BTreeMap<String, McpServerConfig>,
    /// The integrations (`gmail`), when this runtime has them.
    pub accounts: Option<Arc<dyn Accounts>>,
    /// The open question of an `ask` action, which the voice loop answers.
    pub questions: Questions,
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

/// Runs a leaf action. `loop` and `workflow` are the engine's and are refused here
/// ([`ActionError::EngineOnly`]).
pub async fn execute(cfg: &ActionConfig, ctx: &ActionCtx<'_>) -> Result<Value, ActionError> {
    cfg.execute(ctx).await
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Services with nothing configured: a recording speaker, no secrets, no file roots.
    pub(crate) fn services() -> Services {
        Services {
            http: HttpClient::default(),
            speaker: Arc::new(crate::tts::RecordingSpeaker::default()),
            secrets: Arc::new(crate::secrets::MemorySecrets::default()),
            file_roots: Vec::new(),
            env: Default::default(),
            llm: LlmDefaults::default(),
            mcp_servers: Default::default(),
            accounts: None,
            questions: Questions::default(),
        }
    }

    #[test]
    fn the_registry_lists_every_kind_once_in_order() {
        assert_eq!(
            KINDS,
            [
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
                "ask",
                "mcp",
                "mail",
                "gmail",
                "calendar",
                "workflow"
            ]
        );
        // The service kinds come from their provider modules.
        assert_eq!(
            all_kinds()[KINDS.len()..],
            ["binance", "discord", "github", "notion", "slack", "spotify"]
        );
        let delay = ActionConfig::parse("delay", &serde_json::json!({"duration": "40d"})).unwrap();
        assert_eq!((delay.kind(), delay.doc()), ("delay", "Wait."));
        assert_eq!(delay.check()[0].field, "duration");
        let call = ActionConfig::parse("workflow", &serde_json::json!({"workflow": "x"})).unwrap();
        assert!(call.is_control() && !delay.is_control());
    }
}
