//! A local fake of the six services (named as such: the real ones cannot be reached from here),
//! one HTTP server on 127.0.0.1 (routes in `fake_collab` and `fake_personal`) with each
//! provider under its own prefix (`/github`, `/slack`, `/discord`, `/notion`, `/spotify`,
//! `/binance`), speaking the documented shapes: GitHub's
//! `Link` paging, `Last-Modified`/304 and `x-ratelimit-*` 403s; Slack's 200 `{"ok": false}`
//! errors, cursors and 429 `ratelimited`; Discord's `Bot` auth, buckets and 429 `retry_after`;
//! Notion's required `Notion-Version`, cursors and `{"object": "error"}` bodies; Spotify's 204
//! and `NO_ACTIVE_DEVICE`/`PREMIUM_REQUIRED`; Binance's HMAC-SHA256 signature, `recvWindow`
//! and `-1021`/`-1022`/`-2015` codes. Credentials are checked against `tokens` (and, for OAuth
//! accounts, the access tokens the strict authorization fake issued).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// An error response the next call of a provider gets instead of its answer.
#[derive(Clone)]
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Value,
}

#[derive(Default)]
pub struct Inner {
    /// Credentials that work (tokens, Binance API keys).
    pub tokens: HashSet<String>,
    /// Binance: key -> secret.
    pub secrets: HashMap<String, String>,
    /// The strict OAuth fake's state, whose access tokens also work.
    pub oauth: Option<Arc<Mutex<crate::accounts::fake_auth::Inner>>>,
    /// Every request as `METHOD /path?query` (no credentials in it except Binance's signature).
    pub calls: Vec<String>,
    /// The `Authorization` header values seen.
    pub auth_seen: Vec<String>,
    /// Headers named here are recorded: (name, value).
    pub headers_seen: Vec<(String, String)>,
    /// Canned answers, by provider, served first (each once).
    pub canned: HashMap<&'static str, Vec<Canned>>,
    /// Every provider answers 503.
    pub down: bool,
    /// Bodies received, by provider.
    pub received: Vec<(&'static str, String, Value)>,
    pub notifications: Vec<Value>,
    pub last_modified: String,
    pub review_prs: Vec<Value>,
    pub my_prs: Vec<Value>,
    pub slack: BTreeMap<String, Vec<Value>>,
    pub discord: BTreeMap<String, Vec<Value>>,
    /// Discord: report the bucket empty for this long after each channel call.
    pub discord_reset_after: Option<f64>,
    pub notion_pages: Vec<Value>,
    pub notion_items: Vec<Value>,
    pub playing: Option<Value>,
    pub device: bool,
    pub premium: bool,
    pub player: Vec<String>,
    pub playlists: Vec<Value>,
    pub prices: BTreeMap<String, String>,
    pub balances: Vec<Value>,
    pub orders: Vec<Value>,
    /// Binance's clock minus ours, ms.
    pub skew_ms: i64,
    /// Bearer JWTs (oauth2-mock-server's access tokens) work too.
    pub accept_jwt: bool,
}

pub struct Fake {
    pub inner: Arc<Mutex<Inner>>,
    pub addr: SocketAddr,
}

impl Fake {
    pub async fn start() -> Fake {
        let inner = Arc::new(Mutex::new(Inner {
            device: true,
            premium: true,
            last_modified: "Thu, 03 Dec 2026 10:00:00 GMT".into(),
            ..Inner::default()
        }));
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let addr = crate::util::serve(app).await;
        Fake { inner, addr }
    }

    /// The API base of `provider` here.
    pub fn base(&self, provider: &str) -> String {
        format!("http://{}/{provider}", self.addr)
    }

    pub fn set(&self, f: impl FnOnce(&mut Inner)) {
        f(&mut self.inner.lock().unwrap());
    }

    pub fn get<T>(&self, f: impl FnOnce(&Inner) -> T) -> T {
        f(&self.inner.lock().unwrap())
    }

    /// Serves `c` to the next call of `provider`.
    pub fn can(&self, provider: &'static str, c: Canned) {
        self.set(|i| i.canned.entry(provider).or_default().push(c));
    }

    /// The calls made to `provider` (paths below its prefix).
    pub fn calls(&self, provider: &str) -> Vec<String> {
        let prefix = format!("/{provider}/");
        self.get(|i| {
            i.calls
                .iter()
                .filter_map(|c| {
                    let (m, rest) = c.split_once(' ')?;
                    rest.strip_prefix(&prefix).map(|r| format!("{m} /{r}"))
                })
                .collect()
        })
    }
}

type S = State<Arc<Mutex<Inner>>>;

pub(super) fn reply(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap();
    if body.is_null() {
        return status.into_response();
    }
    (status, axum::Json(body)).into_response()
}

pub(super) fn with_headers(mut r: Response, headers: &[(&str, String)]) -> Response {
    for (k, v) in headers {
        r.headers_mut().insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    r
}

pub(super) fn query(uri: &Uri) -> HashMap<String, String> {
    uri.query()
        .map(|q| {
            url_pairs(q)
                .into_iter()
                .collect::<HashMap<String, String>>()
        })
        .unwrap_or_default()
}

fn url_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((decode(k), decode(v)))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(h, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `token` works here.
pub(super) fn valid(st: &Inner, token: &str) -> bool {
    (st.accept_jwt && token.starts_with("eyJ"))
        || st.tokens.contains(token)
        || st.oauth.as_ref().is_some_and(|o| {
            o.lock().unwrap().access.contains(token) && !o.lock().unwrap().reject_all
        })
}

async fn handle(State(s): S, method: Method, uri: Uri, h: HeaderMap, body: Bytes) -> Response {
    let mut st = s.lock().unwrap();
    let path = uri.path().to_owned();
    st.calls.push(format!(
        "{method} {path}{}",
        uri.query().map(|q| format!("?{q}")).unwrap_or_default()
    ));
    if let Some(a) = h.get("authorization").and_then(|v| v.to_str().ok()) {
        st.auth_seen.push(a.to_owned());
    }
    for name in [
        "accept",
        "x-github-api-version",
        "notion-version",
        "user-agent",
        "x-mbx-apikey",
    ] {
        if let Some(v) = h.get(name).and_then(|v| v.to_str().ok()) {
            st.headers_seen.push((name.to_owned(), v.to_owned()));
        }
    }
    if st.down {
        return reply(503, Value::Null);
    }
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let provider: &'static str = match segs[0] {
        "github" => "github",
        "slack" => "slack",
        "discord" => "discord",
        "notion" => "notion",
        "spotify" => "spotify",
        "binance" => "binance",
        _ => return reply(404, Value::Null),
    };
    if let Some(list) = st.canned.get_mut(provider)
        && !list.is_empty()
    {
        let c = list.remove(0);
        return with_headers(reply(c.status, c.body), &c.headers);
    }
    let q = query(&uri);
    let json_body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if !json_body.is_null() {
        st.received
            .push((provider, path.clone(), json_body.clone()));
    }
    let rest = &segs[1..];
    let auth = h
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    use super::fake_collab::{discord, github, notion, slack};
    use super::fake_personal::{binance, spotify};
    match provider {
        "github" => github(&mut st, &method, rest, &q, &h, &auth, &json_body),
        "slack" => slack(&mut st, rest, &q, &auth, &json_body),
        "discord" => discord(&mut st, &method, rest, &q, &auth, &json_body),
        "notion" => notion(&mut st, &method, rest, &h, &auth, &json_body),
        "spotify" => spotify(&mut st, &method, rest, &q, &h, &auth, &json_body),
        _ => binance(&mut st, rest, &uri, &h),
    }
}

pub(super) fn host(h: &HeaderMap) -> String {
    format!(
        "http://{}",
        h.get("host").and_then(|v| v.to_str().ok()).unwrap_or("")
    )
}
