//! Atlas as an MCP server: the tools and resources an AI client (Claude Desktop, an IDE, the
//! MCP Inspector) uses to list and run workflows, read runs and history, speak, and send a typed
//! command, served over stdio (`atlas mcp`) and over streamable HTTP at the daemon's `/mcp`
//! (mounted by `api`, behind the API token).
//!
//! [`AtlasMcp`] implements rmcp's `ServerHandler` by hand rather than with its `#[tool]`
//! macros: the `run_workflow` tool's argument schema is made from the loaded workflows'
//! variables at each `tools/list`, which the static macro schemas cannot express.
//! - `tools`: the tool table, each tool's input schema and its handler.
//! - `resources`: `atlas://workflows/{id}` (a workflow's YAML) and `atlas://runs/recent`.
//!
//! **Invariant**: a call with an unknown tool or arguments that do not fit its schema is an MCP
//! error (`-32602`, with a message that says what was wrong) and starts nothing: arguments are
//! checked before `Engine::trigger`. A tool whose work fails (a run that failed, the speaker that
//! could not speak) answers a result marked `isError` with the reason. Nothing here panics on
//! input. **Boundary**: only `mcp` (and `api`) know MCP's wire types.

mod resources;
mod tools;

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, InitializeResult, ListResourcesResult,
    ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
    ServerCapabilities,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};

use crate::config::VoiceConfig;
use crate::engine::Engine;
use crate::voice::VoiceLoop;

pub use tools::TOOL_NAMES;

/// Why the MCP server stopped.
#[derive(Debug, thiserror::Error)]
pub enum McpServeError {
    /// The stdio session could not start (the client sent no valid `initialize`, stdin closed).
    #[error("the MCP session over stdio did not start: {0}")]
    Start(String),
    /// The session ended abnormally.
    #[error("the MCP session over stdio ended: {0}")]
    Session(String),
}

/// The MCP server over an engine (and the voice loop, when there is one).
#[derive(Clone)]
pub struct AtlasMcp {
    engine: Engine,
    voice: Option<Arc<VoiceLoop>>,
    voice_config: VoiceConfig,
}

impl AtlasMcp {
    /// A server over `engine`; `voice` handles `command` when there is one, else commands are
    /// only matched (dry: nothing runs) with the matcher `voice_config` configures.
    pub fn new(
        engine: Engine,
        voice: Option<Arc<VoiceLoop>>,
        voice_config: VoiceConfig,
    ) -> AtlasMcp {
        AtlasMcp {
            engine,
            voice,
            voice_config,
        }
    }

    /// Serves one client on stdin and stdout until it disconnects.
    pub async fn serve_stdio(self) -> Result<(), McpServeError> {
        let running = self
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| McpServeError::Start(e.to_string()))?;
        running
            .waiting()
            .await
            .map(|_| ())
            .map_err(|e| McpServeError::Session(e.to_string()))
    }
}

/// The streamable HTTP service for `/mcp` (sessions in memory, ended by `stop`). The caller
/// guards it (token, Host, Origin): rmcp's own Host check is off so that one guard decides.
pub fn http_service(
    server: AtlasMcp,
    stop: tokio_util::sync::CancellationToken,
) -> rmcp::transport::StreamableHttpService<
    AtlasMcp,
    rmcp::transport::streamable_http_server::session::local::LocalSessionManager,
> {
    let config = rmcp::transport::StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .with_cancellation_token(stop);
    rmcp::transport::StreamableHttpService::new(
        move || Ok(server.clone()),
        Default::default(),
        config,
    )
}

impl ServerHandler for AtlasMcp {
    fn get_info(&self) -> InitializeResult {
        let caps = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .build();
        InitializeResult::new(caps)
            .with_server_info(Implementation::new("atlas", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Atlas runs local workflows. list_workflows shows them with the arguments each \
                 takes; run_workflow runs one; get_run and history read runs; say speaks; \
                 command handles a typed command as if it had been spoken.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools::list(self)))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = request.arguments.unwrap_or_default();
        tools::call(self, &request.name, args)
            .await
            .map(CallToolResponse::Complete)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(resources::list(self)))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        resources::read(self, &request.uri).map(ReadResourceResponse::Complete)
    }
}
