//! The dashboard: the built front end (`dashboard/` in the source tree, built by
//! `scripts/build-dashboard.sh`) served from a folder found at run time under `/dashboard/`, and
//! the login that lets a browser use the control API without ever seeing the token.
//!
//! Login: a client holding the token (`atlas dashboard`, the tray's "Open dashboard") asks
//! `POST /v1/dashboard/login` for a link; the link carries a one-time code (random, valid 60 s,
//! used once) which `GET /dashboard/login` exchanges for a session cookie (`HttpOnly`,
//! `SameSite=Strict`, valid 12 h) and a redirect to the dashboard. The guard then accepts that
//! cookie in place of the bearer token, only from the daemon's own origin. Codes and sessions
//! live in memory only (a restart logs the browser out), keyed by their SHA-256.
//!
//! **Invariant**: the API token never appears in a URL, a page or a cookie; the pages served are
//! static files (no data is rendered into them), so what a page shows comes from the API, whose
//! answers are redacted as for any client.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Api, ApiError};

/// How long a login link works.
pub const CODE_TTL: Duration = Duration::from_secs(60);
/// How long a dashboard session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// The session cookie's name.
pub const COOKIE: &str = "atlas_session";
/// At most this many unused codes and live sessions are kept (the oldest goes first).
const MAX_CODES: usize = 16;
const MAX_SESSIONS: usize = 64;

type Key = [u8; 32];

fn key(secret: &str) -> Key {
    Sha256::digest(secret.as_bytes()).into()
}

/// The one-time codes and the sessions they became.
#[derive(Default)]
pub(super) struct Logins {
    state: Mutex<LoginState>,
}

#[derive(Default)]
struct LoginState {
    codes: HashMap<Key, Instant>,
    sessions: HashMap<Key, Instant>,
}

/// Drops expired entries, then the oldest ones over `max`.
fn prune(map: &mut HashMap<Key, Instant>, now: Instant, max: usize) {
    map.retain(|_, until| *until > now);
    while map.len() >= max {
        let Some(oldest) = map.iter().min_by_key(|(_, t)| **t).map(|(k, _)| *k) else {
            break;
        };
        map.remove(&oldest);
    }
}

impl Logins {
    fn state(&self) -> std::sync::MutexGuard<'_, LoginState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new one-time code, valid for [`CODE_TTL`].
    pub(super) fn mint_code(&self) -> String {
        let code = hex::encode(rand::random::<[u8; 32]>());
        let now = Instant::now();
        let mut s = self.state();
        prune(&mut s.codes, now, MAX_CODES);
        s.codes.insert(key(&code), now + CODE_TTL);
        code
    }

    /// Uses up `code`: a new session id when the code was valid and unused.
    pub(super) fn redeem(&self, code: &str) -> Option<String> {
        let now = Instant::now();
        let mut s = self.state();
        let until = s.codes.remove(&key(code))?;
        if until <= now {
            return None;
        }
        let session = hex::encode(rand::random::<[u8; 32]>());
        prune(&mut s.sessions, now, MAX_SESSIONS);
        s.sessions.insert(key(&session), now + SESSION_TTL);
        Some(session)
    }

    /// Whether `session` is a live session.
    pub(super) fn valid(&self, session: &str) -> bool {
        self.state()
            .sessions
            .get(&key(session))
            .is_some_and(|until| *until > Instant::now())
    }

    fn end(&self, session: &str) {
        self.state().sessions.remove(&key(session));
    }
}

/// The session cookie's value in a request, if it has one.
pub(super) fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE).then_some(value)
        })
}

impl Api {
    /// A one-time dashboard login link (valid [`CODE_TTL`], used once), once the server has an
    /// address; what `atlas dashboard` prints and the tray's "Open dashboard" opens.
    pub fn login_url(&self) -> Option<String> {
        let base = browser_base(&self.url()?);
        Some(format!(
            "{base}/dashboard/login?code={}",
            self.logins.mint_code()
        ))
    }
}

/// The address a browser on this machine opens: a server listening on every interface
/// (`0.0.0.0`, `[::]`) is reached as 127.0.0.1, which the Host guard accepts.
fn browser_base(url: &str) -> String {
    let Some(addr) = url
        .strip_prefix("http://")
        .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
    else {
        return url.to_owned();
    };
    if addr.ip().is_unspecified() {
        format!("http://127.0.0.1:{}", addr.port())
    } else {
        url.to_owned()
    }
}

/// `POST /v1/dashboard/login`: a one-time login link to open in a browser.
pub(super) async fn login_link(State(api): State<Arc<Api>>) -> Result<Json<Value>, ApiError> {
    let url = api
        .login_url()
        .ok_or_else(|| ApiError::Unavailable("the API has no address yet".into()))?;
    Ok(Json(
        json!({ "url": url, "expires_in_secs": CODE_TTL.as_secs() }),
    ))
}

#[derive(Debug, Deserialize)]
pub(super) struct LoginQuery {
    code: Option<String>,
}

/// Headers every dashboard answer carries: no referrer (a login link must not travel on), no
/// framing, no sniffing, and a policy that allows only the daemon's own scripts and requests.
fn page_headers(headers: &mut HeaderMap) {
    let fixed = [
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

/// A small HTML page for what the dashboard cannot show (a used link, an unbuilt dashboard).
fn notice(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Atlas: {title}</title></head><body><main><h1>{title}</h1><p>{body}</p></main></body></html>"
    );
    let mut r = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response();
    page_headers(r.headers_mut());
    r
}

/// `GET /dashboard/login?code=...`: the code becomes a session cookie and a redirect.
pub(super) async fn login(State(api): State<Arc<Api>>, Query(q): Query<LoginQuery>) -> Response {
    let Some(session) = q.code.as_deref().and_then(|c| api.logins.redeem(c)) else {
        tracing::info!("a dashboard login link was refused (used, expired or unknown)");
        return notice(
            StatusCode::UNAUTHORIZED,
            "This login link does not work",
            "A login link works once and for 60 seconds. Run <code>atlas dashboard</code> (or the tray's <em>Open dashboard</em>) for a new one.",
        );
    };
    tracing::info!("dashboard session opened");
    let cookie = format!(
        "{COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_TTL.as_secs()
    );
    let mut r = Redirect::to("/dashboard/").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    page_headers(r.headers_mut());
    r
}

/// `POST /dashboard/logout`: ends the session and clears the cookie.
pub(super) async fn logout(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    if let Some(s) = session_cookie(&headers) {
        api.logins.end(s);
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("atlas_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}

/// The folders the built dashboard is looked for in, in order.
pub fn dashboard_dirs(config: &crate::config::ApiConfig) -> Vec<PathBuf> {
    if let Some(d) = &config.dashboard_dir {
        return vec![d.clone()];
    }
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        dirs.push(dir.join("dashboard"));
    }
    dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard/dist"));
    dirs
}

/// The first of [`dashboard_dirs`] that holds a built dashboard (an `index.html`).
fn built_dir(api: &Api) -> Result<PathBuf, Vec<PathBuf>> {
    let dirs = dashboard_dirs(&api.config.api);
    dirs.iter()
        .find(|d| d.join("index.html").is_file())
        .cloned()
        .ok_or(dirs)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// `GET /dashboard/{*path}`: a file of the built dashboard; a path without a file extension is
/// a page of the app, answered with `index.html`.
pub(super) async fn asset(State(api): State<Arc<Api>>, UrlPath(path): UrlPath<String>) -> Response {
    serve(&api, &path)
}

/// `GET /dashboard/`.
pub(super) async fn index(State(api): State<Arc<Api>>) -> Response {
    serve(&api, "")
}

/// `GET /`: to the dashboard.
pub(super) async fn root() -> Redirect {
    Redirect::to("/dashboard/")
}

fn serve(api: &Api, path: &str) -> Response {
    let dir = match built_dir(api) {
        Ok(d) => d,
        Err(looked) => {
            let list: Vec<String> = looked.iter().map(|d| d.display().to_string()).collect();
            return notice(
                StatusCode::SERVICE_UNAVAILABLE,
                "The dashboard is not built",
                &format!(
                    "Build it from the Atlas source folder with <code>bash scripts/build-dashboard.sh</code> (it needs node and npm; <code>scripts/start.sh</code> runs it), or set <code>[api] dashboard_dir</code> in config.toml to a built copy. Looked in: {}.",
                    html_escape(&list.join(", "))
                ),
            );
        }
    };
    let rel = Path::new(path);
    // Only plain names below the folder: no `..`, no absolute path, no hidden file.
    let plain = rel.components().all(|c| match c {
        Component::Normal(n) => !n.to_string_lossy().starts_with('.'),
        _ => false,
    });
    if !plain {
        return notice(StatusCode::NOT_FOUND, "Not found", "No such file.");
    }
    let file = if path.is_empty() || rel.extension().is_none() {
        dir.join("index.html")
    } else {
        dir.join(rel)
    };
    match std::fs::read(&file) {
        Ok(bytes) => {
            let mut r = (StatusCode::OK, bytes).into_response();
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(content_type(&file)),
            );
            // Vite names built assets by their hash; the page itself must be re-read.
            let cache = if path.starts_with("assets/") {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
            page_headers(h);
            r
        }
        Err(_) => notice(StatusCode::NOT_FOUND, "Not found", "No such file."),
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_works_once_and_its_session_is_valid() {
        let l = Logins::default();
        let code = l.mint_code();
        assert!(l.redeem("nope").is_none());
        let s = l.redeem(&code).expect("first use");
        assert!(l.redeem(&code).is_none(), "a code is single-use");
        assert!(l.valid(&s));
        assert!(!l.valid(&code));
        l.end(&s);
        assert!(!l.valid(&s));
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; atlas_session=abc; b=2"),
        );
        assert_eq!(session_cookie(&h), Some("abc"));
        assert_eq!(session_cookie(&HeaderMap::new()), None);
    }

    #[test]
    fn a_link_names_an_address_the_browser_may_use() {
        assert_eq!(browser_base("http://0.0.0.0:7077"), "http://127.0.0.1:7077");
        assert_eq!(browser_base("http://[::]:7077"), "http://127.0.0.1:7077");
        assert_eq!(
            browser_base("http://127.0.0.1:7077"),
            "http://127.0.0.1:7077"
        );
        assert_eq!(
            browser_base("http://192.168.1.5:7077"),
            "http://192.168.1.5:7077"
        );
    }

    #[test]
    fn codes_and_sessions_are_bounded() {
        let l = Logins::default();
        let codes: Vec<String> = (0..MAX_CODES + 5).map(|_| l.mint_code()).collect();
        assert!(l.state().codes.len() <= MAX_CODES);
        assert!(l.redeem(codes.last().expect("codes")).is_some());
    }
}
