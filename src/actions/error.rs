//! Why an action failed: [`ActionError`], with [`FileError`] for what the `file` sandbox refuses
//! and [`LlmError`] for an `llm` answer that is not a chat completion.
//!
//! Whether trying again can help is the error's to say ([`ActionError::is_retryable`]): the
//! engine's retry loop asks it and knows nothing of the kinds.

use std::path::PathBuf;
use std::time::Duration;

use crate::template::RenderError;

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
        retry_after: Option<Duration>,
    },
    /// An `http` action's `method` is not an HTTP method.
    #[error(
        "`{method}` is not an HTTP method: expected GET, POST, PUT, PATCH, DELETE or HEAD in the action's `method`"
    )]
    Method {
        /// The method as written.
        method: String,
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
    /// A file operation was refused by the sandbox or is incomplete.
    #[error(transparent)]
    File(#[from] FileError),
    /// Reading or writing a file (inside its root) failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A file that should be text is not UTF-8.
    #[error("{what} is not UTF-8 text")]
    NotText {
        /// The file, as the action named it (`` file `notes.txt` ``).
        what: String,
    },
    /// The LLM server answered, but not with a chat completion, or the call could not be made.
    #[error("LLM call failed: {0}")]
    Llm(#[from] LlmError),
    /// Speaking failed.
    #[error(transparent)]
    Speak(#[from] crate::tts::TtsError),
    /// An `ask` could not be asked (another question is waiting for its answer).
    #[error("{0}")]
    Ask(String),
    /// An integration's call failed (not connected, needs a new sign-in, the API refused).
    #[error("{0}")]
    Integration(String),
    /// A blocking task the action ran on another thread died (a bug or a panic in a library).
    #[error("{task} task failed: {source}")]
    Task {
        /// What the task did, e.g. `notification`.
        task: &'static str,
        /// Why it ended.
        source: tokio::task::JoinError,
    },
    /// One attempt took longer than the action's timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The run was cancelled while the action was in flight.
    #[error("cancelled")]
    Cancelled,
    /// A control kind (`loop`, `workflow`) was given to `actions::execute`; the engine runs these.
    #[error("control actions are run by the engine: `{kind}` cannot run through actions::execute")]
    EngineOnly {
        /// The kind's name.
        kind: &'static str,
    },
    /// A control action (`loop`, `workflow`) run by the engine failed.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// An MCP server could not be reached, or did not answer in time.
    #[error(transparent)]
    Mcp(#[from] super::mcp::McpClientError),
    /// An `mcp` action's arguments or secret are not usable.
    #[error("mcp action: {0}")]
    McpArguments(String),
    /// The tool ran and reported an error.
    #[error("MCP tool `{tool}` of server `{server}` failed: {message}")]
    McpToolFailed {
        /// The tool.
        tool: String,
        /// The server.
        server: String,
        /// The text it returned.
        message: String,
    },
}

/// Why a control action the engine runs (`loop`, `workflow`) failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// `loop`'s `items` rendered to something that is not a list, a map or nothing.
    #[error("loop `items` must be a list, got {got}")]
    NotAList {
        /// What it rendered to, as JSON text.
        got: String,
    },
    /// `loop`'s `items` has more entries than its `max_iterations`.
    #[error("loop has {items} items, more than its `max_iterations` ({max})")]
    TooManyItems {
        /// How many items.
        items: usize,
        /// The bound.
        max: u32,
    },
    /// An iteration of a `loop`'s body failed the run's way (an action without `on_failure`).
    #[error("iteration {index}: {reason}")]
    Iteration {
        /// Which iteration, from 0.
        index: usize,
        /// Why it failed, as the run records it.
        reason: String,
    },
    /// The engine refused to start the `workflow` action's child run.
    #[error("{reason}")]
    NotStarted {
        /// The workflow asked for.
        workflow: String,
        /// The engine's refusal (unknown workflow, nested too deep, the queue full).
        reason: String,
    },
    /// The child run ended without succeeding.
    #[error("workflow `{workflow}` (run {run}) {status}: {reason}")]
    ChildFailed {
        /// The workflow called.
        workflow: String,
        /// The child run's id.
        run: String,
        /// How it ended (`failed`, `cancelled`).
        status: String,
        /// Its error.
        reason: String,
    },
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
            | ActionError::EngineOnly { .. }
            | ActionError::McpArguments(_)
            | ActionError::McpToolFailed { .. }
            // The integration's client already waited out rate limits and refreshed once.
            | ActionError::Integration(_)
            | ActionError::Ask(_)
            | ActionError::Mcp(super::mcp::McpClientError::UnknownServer { .. })
            | ActionError::Mcp(super::mcp::McpClientError::BadEntry(_))
            | ActionError::Cancelled => false,
            _ => true,
        }
    }

    /// How long the server asked to wait before the next try, if it said (`Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ActionError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// What the `file` action refuses: a path outside its root, a root that is not configured, a
/// write without content.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// `file_roots` is empty.
    #[error("no file roots are configured (`file_roots` in config.toml)")]
    NoRoots,
    /// The action's `root` names no configured root.
    #[error("no file root named `{name}`; configured roots: {}", known.join(", "))]
    UnknownRoot {
        /// The name asked for.
        name: String,
        /// The names configured.
        known: Vec<String>,
    },
    /// The root itself cannot be resolved (missing, unreadable).
    #[error("file root {} is not usable: {source}", root.display())]
    RootUnusable {
        /// The root as configured.
        root: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The path has a `..` component.
    #[error("path `{path}` uses `..`: paths must stay inside the root")]
    ParentDir {
        /// The path as rendered.
        path: String,
    },
    /// The path is absolute.
    #[error("path `{path}` is absolute: give a path relative to the root {}", root.display())]
    Absolute {
        /// The path as rendered.
        path: String,
        /// The root it should be relative to.
        root: PathBuf,
    },
    /// The part of the path that exists cannot be resolved.
    #[error("path `{path}` cannot be resolved: {source}")]
    Unresolvable {
        /// The path as rendered.
        path: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// The path resolves (through a symlink) to somewhere outside its root.
    #[error("path `{path}` leads outside the root {} (through a symlink)", root.display())]
    OutsideRoot {
        /// The path as rendered.
        path: String,
        /// The root it must stay in.
        root: PathBuf,
    },
    /// `write` or `append` without `content`.
    #[error("`content` is required to write: add `content:` to the action's config")]
    NoContent,
}

/// Why an `llm` action could not get a chat completion (besides HTTP errors and refusals, which
/// are [`ActionError::Http`] and [`ActionError::Status`]).
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// Neither `prompt` nor `messages` is given.
    #[error("give `prompt` or `messages`")]
    NoPrompt,
    /// The configured API key secret cannot be read.
    #[error("{0}")]
    Secret(#[from] crate::secrets::SecretError),
    /// The answer is JSON but has no message text.
    #[error("no choices[0].message.content in {answer}")]
    NoContent {
        /// The answer, as JSON text.
        answer: String,
    },
}
