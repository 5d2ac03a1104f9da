//! The daemon's HTTP server: the local control API under `/v1` and webhook triggers under
//! `/hooks/<path>`, on one axum server bound to loopback by default (`[api]` in config.toml).
//!
//! [`Api`] holds what the handlers need (the engine, the voice loop when there is one, config
//! and paths, the bearer token, the runtime's status); [`start`] serves the router on a listener
//! until a shutdown token is cancelled. The runtime composes it into the daemon; tests and
//! `atlas bench api` run it on `127.0.0.1:0` around an in-process runtime.
//!
//! - `guard`: every `/v1` request needs `Authorization: Bearer <token>` (the token is made at
//!   first start, `token`), and a loopback `Host`; any request with an `Origin` that is not
//!   loopback is refused (DNS rebinding: a web page must not reach the daemon).
//! - `routes`: the route table, from which the router *and* the OpenAPI document
//!   (`/v1/openapi.json`) are built, so the document lists exactly what is served.
//! - `workflows`, `runs`, `agent`, `integrations`: the handlers; `hooks`: webhook deliveries.
//! - `dashboard`: the built front end under `/dashboard/` and its one-time login, whose
//!   session cookie the guard accepts in place of the token (from the daemon's own origin).
//!
//! **Boundary**: only `api` (and later `mcp`) knows HTTP and JSON wire types; below it the
//! engine, store and voice loop are called as they are by the CLI. **Invariant**: a refused
//! request starts nothing: every check happens before `Engine::trigger`.

mod agent;
pub mod dashboard;
mod error;
mod guard;
mod hooks;
mod integrations;
mod routes;
mod runs;
pub mod token;
mod workflows;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub use error::ApiError;
pub use routes::{RouteDoc, openapi, route_docs};

use crate::config::{Config, Paths};
use crate::engine::Engine;
use crate::voice::VoiceLoop;

/// What the runtime tells `GET /v1/status` (agent stage, model, problems, next schedules).
pub type StatusFn = Arc<dyn Fn() -> Value + Send + Sync>;

/// What the API serves from.
pub struct ApiParts {
    /// The engine (workflows, runs, the store, the event bus).
    pub engine: Engine,
    /// The voice loop, when a model is installed (`/v1/utterance` needs it).
    pub voice: Option<Arc<VoiceLoop>>,
    /// The config (workflow folders, `[api]`).
    pub config: Config,
    /// The paths (data dir for the token, the user's workflows folder).
    pub paths: Paths,
    /// The runtime's status, when it has one (a daemon does).
    pub status: Option<StatusFn>,
    /// The integrations, when they run here (a daemon's).
    pub integrations: Option<Arc<crate::integrations::Integrations>>,
}

/// The API's shared state.
pub struct Api {
    engine: Engine,
    voice: Option<Arc<VoiceLoop>>,
    config: Config,
    paths: Paths,
    token: String,
    status: Option<StatusFn>,
    integrations: Option<Arc<crate::integrations::Integrations>>,
    agent_events: broadcast::Sender<Value>,
    hooks: hooks::Seen,
    /// Serialises writes to the user's workflows folder and the reloads after them.
    writes: tokio::sync::Mutex<()>,
    url: Mutex<Option<String>>,
    /// Dashboard login codes and sessions.
    logins: dashboard::Logins,
    /// The last utterances handled through `/v1/utterance` (or heard by the agent), newest last.
    utterances: Mutex<std::collections::VecDeque<Value>>,
    /// Cancelled when the server stops: ends the event streams, which would hold it open.
    stop: CancellationToken,
}

impl Api {
    /// The API over `parts`; reads (or makes, at first start) the token in the data dir.
    pub fn new(parts: ApiParts) -> Result<Arc<Api>, ApiError> {
        let token = token::load_or_create(&parts.paths.data_dir)?;
        Ok(Arc::new(Api {
            engine: parts.engine,
            voice: parts.voice,
            config: parts.config,
            paths: parts.paths,
            token,
            status: parts.status,
            integrations: parts.integrations,
            agent_events: broadcast::channel(256).0,
            hooks: hooks::Seen::default(),
            writes: tokio::sync::Mutex::new(()),
            url: Mutex::new(None),
            logins: dashboard::Logins::default(),
            utterances: Mutex::new(std::collections::VecDeque::new()),
            stop: CancellationToken::new(),
        }))
    }

    /// Publishes an agent event (a stage change) to `/v1/events` subscribers.
    pub fn publish_agent(&self, event: Value) {
        let _ = self.agent_events.send(event);
    }

    /// The URL the server listens on (`http://127.0.0.1:7077`), once [`start`] was given a
    /// listener.
    pub fn url(&self) -> Option<String> {
        self.url.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// A request's media type (`Content-Type` without parameters, lowercase), if it has one.
fn media_type(headers: &axum::http::HeaderMap) -> Option<String> {
    let ct = headers.get("content-type")?.to_str().ok()?;
    Some(
        ct.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

/// Binds `[api] listen`: `None` when it is `off`. An address other than loopback is allowed
/// (explicit config) with a warning in the log.
pub async fn bind(
    config: &crate::config::ApiConfig,
) -> Result<Option<tokio::net::TcpListener>, ApiError> {
    if config.listen.trim() == "off" {
        return Ok(None);
    }
    let addr: SocketAddr = config
        .listen
        .parse()
        .map_err(|_| ApiError::BadListen(config.listen.clone()))?;
    if !addr.ip().is_loopback() {
        tracing::warn!(listen = %addr, "the API and webhooks listen beyond loopback (api.listen): other machines can reach the webhooks; the API still needs its token");
    }
    tokio::net::TcpListener::bind(addr)
        .await
        .map(Some)
        .map_err(|source| ApiError::Bind { addr, source })
}

/// Serves the API on `listener` until `shutdown` is cancelled, on a task of its own; the URL
/// is known ([`Api::url`]) when this returns.
pub fn start(
    api: Arc<Api>,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    if let Ok(addr) = listener.local_addr() {
        let url = format!("http://{addr}");
        tracing::info!(url = %url, "control API listening");
        *api.url.lock().unwrap_or_else(|e| e.into_inner()) = Some(url);
    }
    let stop = api.stop.clone();
    let app = routes::router(api);
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                shutdown.cancelled().await;
                stop.cancel();
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the control API stopped");
        }
    })
}
