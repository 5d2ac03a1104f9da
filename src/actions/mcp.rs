//! The `mcp` kind: calls a tool of an external MCP server configured in config.toml
//! (`[mcp.servers.NAME]`, a program over stdio or a streamable HTTP URL), and the client
//! functions `atlas mcp tools` shares with it ([`connect`], [`list_tools`]).
//!
//! Each call connects, calls the one tool and disconnects: a stdio server is a child process
//! started for the call and killed when it ends (or when the run is cancelled or times out,
//! which drops the future). The whole call is bounded by the action's `timeout` (default 30 s).
//! The output is the tool's result: `text` (its text content joined), `content` (every block
//! as MCP sent it) and `structured` (its structured content, when it has one). A result the
//! server marks as an error fails the action, with the server's text.

use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock, Tool};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ActionCtx, ActionError, ActionKind, LeafKind};
use crate::config::McpServerConfig;
use crate::spec::{Dur, MAX_TIMEOUT, Problem, too_long};
use crate::template::{TValue, Tmpl};

/// The default bound on one call (connect, call, answer).
pub const DEFAULT_MCP_TIMEOUT: Duration = Duration::from_secs(30);

/// Config of an `mcp` action.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpCallConfig {
    /// The server's name in `[mcp.servers]`.
    pub server: String,
    /// The tool to call.
    pub tool: Tmpl,
    /// Its arguments (a JSON object; templates allowed).
    #[serde(default)]
    pub arguments: Option<TValue>,
    /// The bound on the whole call (default 30 s).
    #[serde(default)]
    pub timeout: Option<Dur>,
}

/// The `mcp` kind.
pub struct Mcp;

impl ActionKind for Mcp {
    const NAME: &'static str = "mcp";
    const DOC: &'static str =
        "Call a tool of an external MCP server ([mcp.servers] in config.toml).";
    type Config = McpCallConfig;

    fn check(c: &McpCallConfig) -> Vec<Problem> {
        let mut problems = Vec::new();
        if c.server.trim().is_empty() {
            problems.push(Problem::new("server", "name a server of [mcp.servers]"));
        }
        if let Some(t) = c.timeout
            && t.0 > MAX_TIMEOUT
        {
            problems.push(Problem::new(
                "timeout",
                too_long("a timeout of", t.0, MAX_TIMEOUT, "30 days"),
            ));
        }
        problems
    }
}

/// Why an MCP server could not be used.
#[derive(Debug, thiserror::Error)]
pub enum McpClientError {
    /// The server is not in `[mcp.servers]`.
    #[error("no MCP server `{name}` in [mcp.servers] of config.toml; configured: {}", if known.is_empty() { "none".to_owned() } else { known.join(", ") })]
    UnknownServer {
        /// The name asked for.
        name: String,
        /// The configured names.
        known: Vec<String>,
    },
    /// The server's entry has both or neither of `command` and `url`.
    #[error("MCP server `{0}` needs exactly one of `command` (stdio) and `url` (HTTP)")]
    BadEntry(String),
    /// Starting the program or reaching the URL failed, or the handshake did.
    #[error("cannot connect to MCP server `{name}`: {reason}")]
    Connect {
        /// The server.
        name: String,
        /// Why.
        reason: String,
    },
    /// The server answered the request with an error, or the connection broke.
    #[error("MCP server `{name}`: {reason}")]
    Call {
        /// The server.
        name: String,
        /// What it said.
        reason: String,
    },
    /// No answer within the bound.
    #[error("MCP server `{name}` did not answer within {after:?}")]
    Timeout {
        /// The server.
        name: String,
        /// The bound.
        after: Duration,
    },
}

/// A connected client; dropping it closes the connection (and kills a stdio server).
pub type McpClient = RunningService<RoleClient, ()>;

/// Connects to `server` (named `name`, for messages); `bearer` is sent to an HTTP server.
pub async fn connect(
    name: &str,
    server: &McpServerConfig,
    bearer: Option<String>,
) -> Result<McpClient, McpClientError> {
    let failed = |reason: String| McpClientError::Connect {
        name: name.to_owned(),
        reason,
    };
    match (&server.command, &server.url) {
        (Some(command), None) => {
            let mut cmd = tokio::process::Command::new(command);
            cmd.args(&server.args)
                .envs(&server.env)
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true);
            let transport = TokioChildProcess::new(cmd)
                .map_err(|e| failed(format!("cannot start `{command}`: {e}")))?;
            ().serve(transport).await.map_err(|e| failed(e.to_string()))
        }
        (None, Some(url)) => {
            let mut cfg =
                rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
                    url.as_str(),
                );
            if let Some(token) = bearer {
                cfg = cfg.auth_header(token);
            }
            let transport = StreamableHttpClientTransport::from_config(cfg);
            ().serve(transport).await.map_err(|e| failed(e.to_string()))
        }
        _ => Err(McpClientError::BadEntry(name.to_owned())),
    }
}

/// The tools `server` offers, within `timeout`.
pub async fn list_tools(
    name: &str,
    server: &McpServerConfig,
    bearer: Option<String>,
    timeout: Duration,
) -> Result<Vec<Tool>, McpClientError> {
    bounded(name, timeout, async {
        let client = connect(name, server, bearer).await?;
        let tools = client
            .list_all_tools()
            .await
            .map_err(|e| McpClientError::Call {
                name: name.to_owned(),
                reason: e.to_string(),
            });
        let _ = client.cancel().await;
        tools
    })
    .await
}

/// Calls `tool` of `server` with `arguments`, within `timeout`.
pub async fn call_tool(
    name: &str,
    server: &McpServerConfig,
    bearer: Option<String>,
    tool: &str,
    arguments: serde_json::Map<String, Value>,
    timeout: Duration,
) -> Result<CallToolResult, McpClientError> {
    bounded(name, timeout, async {
        let client = connect(name, server, bearer).await?;
        let result = client
            .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
            .await
            .map_err(|e| McpClientError::Call {
                name: name.to_owned(),
                reason: e.to_string(),
            });
        let _ = client.cancel().await;
        result
    })
    .await
}

async fn bounded<T>(
    name: &str,
    timeout: Duration,
    fut: impl Future<Output = Result<T, McpClientError>>,
) -> Result<T, McpClientError> {
    tokio::time::timeout(timeout, fut)
        .await
        .unwrap_or_else(|_| {
            Err(McpClientError::Timeout {
                name: name.to_owned(),
                after: timeout,
            })
        })
}

/// The text of a result's text blocks, joined by newlines.
pub fn result_text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| match c {
            ContentBlock::Text(t) => Some(t.text.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl LeafKind for Mcp {
    async fn execute(c: &McpCallConfig, ctx: &ActionCtx<'_>) -> Result<Value, ActionError> {
        let servers = &ctx.services.mcp_servers;
        let server = servers.get(&c.server).ok_or_else(|| {
            ActionError::Mcp(McpClientError::UnknownServer {
                name: c.server.clone(),
                known: servers.keys().cloned().collect(),
            })
        })?;
        let tool = c.tool.render(ctx.scope)?;
        let arguments = match &c.arguments {
            None => serde_json::Map::new(),
            Some(t) => match t.render(ctx.scope)? {
                Value::Object(m) => m,
                Value::Null => serde_json::Map::new(),
                other => {
                    return Err(ActionError::McpArguments(format!(
                        "`arguments` must be a JSON object, got {other}"
                    )));
                }
            },
        };
        let bearer = match &server.bearer_secret {
            Some(secret) => Some(
                ctx.secret(secret)
                    .map_err(|e| ActionError::McpArguments(e.to_string()))?
                    .ok_or_else(|| {
                        ActionError::McpArguments(format!(
                            "the secret `{secret}` (bearer_secret of MCP server `{}`) is not set",
                            c.server
                        ))
                    })?,
            ),
            None => None,
        };
        let timeout = c.timeout.map_or(DEFAULT_MCP_TIMEOUT, |d| d.0);
        let call = call_tool(&c.server, server, bearer, &tool, arguments, timeout);
        let result = tokio::select! {
            r = call => r?,
            _ = ctx.cancel.cancelled() => return Err(ActionError::Cancelled),
        };
        let text = result_text(&result);
        if result.is_error == Some(true) {
            return Err(ActionError::McpToolFailed {
                tool,
                server: c.server.clone(),
                message: text,
            });
        }
        Ok(json!({
            "server": c.server,
            "tool": tool,
            "text": text,
            "content": result.content,
            "structured": result.structured_content,
        }))
    }
}
