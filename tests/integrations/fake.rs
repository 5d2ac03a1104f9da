//! A local fake of the six services (named as such: the real ones cannot be reached from here),
//! one HTTP server on 127.0.0.1 with each provider under its own prefix (`/github`, `/slack`,
//! `/discord`, `/notion`, `/spotify`, `/binance`), speaking the documented shapes: GitHub's
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
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

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

fn reply(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap();
    if body.is_null() {
        return status.into_response();
    }
    (status, axum::Json(body)).into_response()
}

fn with_headers(mut r: Response, headers: &[(&str, String)]) -> Response {
    for (k, v) in headers {
        r.headers_mut().insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    r
}

fn query(uri: &Uri) -> HashMap<String, String> {
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
fn valid(st: &Inner, token: &str) -> bool {
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
    match provider {
        "github" => github(&mut st, &method, rest, &q, &h, &auth, &json_body),
        "slack" => slack(&mut st, rest, &q, &auth, &json_body),
        "discord" => discord(&mut st, &method, rest, &q, &auth, &json_body),
        "notion" => notion(&mut st, &method, rest, &h, &auth, &json_body),
        "spotify" => spotify(&mut st, &method, rest, &q, &h, &auth, &json_body),
        _ => binance(&mut st, rest, &uri, &h),
    }
}

fn bearer(auth: &str) -> &str {
    auth.strip_prefix("Bearer ").unwrap_or("")
}

fn github(
    st: &mut Inner,
    method: &Method,
    rest: &[&str],
    q: &HashMap<String, String>,
    h: &HeaderMap,
    auth: &str,
    body: &Value,
) -> Response {
    if !valid(st, bearer(auth)) {
        return reply(
            401,
            json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"}),
        );
    }
    match (method.as_str(), rest) {
        ("GET", ["user"]) => reply(200, json!({"login": "octocat", "id": 1})),
        ("GET", ["notifications"]) => {
            if h.get("if-modified-since").and_then(|v| v.to_str().ok())
                == Some(st.last_modified.as_str())
            {
                return reply(304, Value::Null);
            }
            let per: usize = q.get("per_page").and_then(|p| p.parse().ok()).unwrap_or(50);
            let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
            let all = &st.notifications;
            let items: Vec<Value> = all
                .iter()
                .skip((page - 1) * per)
                .take(per)
                .cloned()
                .collect();
            let mut r = reply(200, json!(items));
            let mut headers = vec![
                ("last-modified", st.last_modified.clone()),
                ("x-poll-interval", "60".to_owned()),
            ];
            if page * per < all.len() {
                headers.push((
                    "link",
                    format!(
                        "<{}/github/notifications?per_page={per}&page={}>; rel=\"next\"",
                        host(h),
                        page + 1
                    ),
                ));
            }
            r = with_headers(r, &headers);
            r
        }
        ("GET", ["search", "issues"]) => {
            let qs = q.get("q").cloned().unwrap_or_default();
            let items = if qs.contains("review-requested:@me") {
                st.review_prs.clone()
            } else if qs.contains("author:@me") {
                st.my_prs.clone()
            } else {
                Vec::new()
            };
            reply(
                200,
                json!({"total_count": items.len(), "incomplete_results": false, "items": items}),
            )
        }
        ("POST", ["repos", o, n, "issues"]) if *o == "octo-org" => {
            if body["title"].as_str().unwrap_or("").is_empty() {
                return reply(
                    422,
                    json!({"message": "Validation Failed", "errors": [{"resource": "Issue", "code": "missing_field", "field": "title"}]}),
                );
            }
            reply(
                201,
                json!({"number": 42, "html_url": format!("https://github.com/{o}/{n}/issues/42"), "title": body["title"]}),
            )
        }
        ("POST", ["repos", o, n, "issues", num, "comments"]) if *o == "octo-org" => reply(
            201,
            json!({"id": 9001, "html_url": format!("https://github.com/{o}/{n}/issues/{num}#issuecomment-9001")}),
        ),
        _ => reply(
            404,
            json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}),
        ),
    }
}

fn host(h: &HeaderMap) -> String {
    format!(
        "http://{}",
        h.get("host").and_then(|v| v.to_str().ok()).unwrap_or("")
    )
}

fn slack_err(e: &str) -> Response {
    reply(200, json!({"ok": false, "error": e}))
}

fn slack(
    st: &mut Inner,
    rest: &[&str],
    q: &HashMap<String, String>,
    auth: &str,
    body: &Value,
) -> Response {
    let token = bearer(auth).to_owned();
    if token.is_empty() {
        return slack_err("not_authed");
    }
    if !valid(st, &token) {
        return slack_err("invalid_auth");
    }
    let arg = |k: &str| {
        body[k]
            .as_str()
            .map(str::to_owned)
            .or_else(|| q.get(k).cloned())
            .unwrap_or_default()
    };
    match rest {
        ["auth.test"] => reply(
            200,
            json!({"ok": true, "url": "https://atlas-test.slack.com/", "team": "Atlas", "user": "me", "team_id": "T1", "user_id": "U0ME"}),
        ),
        ["chat.postMessage"] => {
            let channel = arg("channel");
            let Some(list) = st.slack.get_mut(&channel) else {
                return slack_err("channel_not_found");
            };
            let ts = format!("1733480000.{:06}", list.len() + 1);
            list.insert(
                0,
                json!({"type": "message", "user": "U0ME", "text": arg("text"), "ts": ts}),
            );
            reply(
                200,
                json!({"ok": true, "channel": channel, "ts": ts, "message": {"text": arg("text")}}),
            )
        }
        ["conversations.history"] => {
            let channel = arg("channel");
            let Some(list) = st.slack.get(&channel) else {
                return slack_err("channel_not_found");
            };
            let oldest: f64 = q.get("oldest").and_then(|o| o.parse().ok()).unwrap_or(0.0);
            let list: Vec<&Value> = list
                .iter()
                .filter(|m| {
                    m["ts"]
                        .as_str()
                        .and_then(|t| t.parse::<f64>().ok())
                        .unwrap_or(0.0)
                        >= oldest
                })
                .collect();
            // Pages of two, whatever the limit (Slack may return fewer than asked).
            let start: usize = q
                .get("cursor")
                .and_then(|c| c.strip_prefix("dXNlcjo"))
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100);
            let page: Vec<Value> = list
                .iter()
                .skip(start)
                .take(limit.min(2))
                .map(|v| (*v).clone())
                .collect();
            let next = if start + page.len() < list.len() {
                format!("dXNlcjo{}", start + page.len())
            } else {
                String::new()
            };
            reply(
                200,
                json!({"ok": true, "messages": page, "has_more": !next.is_empty(), "response_metadata": {"next_cursor": next}}),
            )
        }
        ["users.profile.set"] => {
            if token.starts_with("xoxb-") {
                return slack_err("not_allowed_token_type");
            }
            reply(200, json!({"ok": true, "profile": body["profile"]}))
        }
        _ => slack_err("unknown_method"),
    }
}

fn discord(
    st: &mut Inner,
    method: &Method,
    rest: &[&str],
    q: &HashMap<String, String>,
    auth: &str,
    body: &Value,
) -> Response {
    if let ["webhooks", id, token] = rest {
        return if *id == "111" && *token == "hook-token-secret" {
            reply(
                200,
                json!({"id": "5001", "content": body["content"], "webhook_id": id}),
            )
        } else {
            reply(404, json!({"message": "Unknown Webhook", "code": 10015}))
        };
    }
    let token = auth.strip_prefix("Bot ").unwrap_or("");
    if !valid(st, token) {
        return reply(401, json!({"message": "401: Unauthorized", "code": 0}));
    }
    let bucket = |r: Response, st: &Inner| match st.discord_reset_after {
        Some(after) => with_headers(
            r,
            &[
                ("x-ratelimit-limit", "5".into()),
                ("x-ratelimit-remaining", "0".into()),
                ("x-ratelimit-reset-after", after.to_string()),
                ("x-ratelimit-bucket", "abcd1234".into()),
            ],
        ),
        None => r,
    };
    match (method.as_str(), rest) {
        ("GET", ["users", "@me"]) => reply(
            200,
            json!({"id": "BOT1", "username": "atlas-bot", "bot": true}),
        ),
        ("POST", ["channels", id, "messages"]) => {
            let Some(list) = st.discord.get_mut(*id) else {
                return reply(404, json!({"message": "Unknown Channel", "code": 10003}));
            };
            let mid = format!("{}", 1_000_000 + list.len() + 1);
            list.insert(0, json!({"id": mid, "channel_id": id, "content": body["content"], "author": {"id": "BOT1", "username": "atlas-bot"}, "timestamp": "2026-12-06T10:00:00.000000+00:00", "mentions": [], "mention_everyone": false}));
            let r = reply(200, list[0].clone());
            bucket(r, st)
        }
        ("GET", ["channels", id, "messages"]) => {
            let Some(list) = st.discord.get(*id) else {
                return reply(404, json!({"message": "Unknown Channel", "code": 10003}));
            };
            let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(50);
            let after: u64 = q.get("after").and_then(|a| a.parse().ok()).unwrap_or(0);
            let page: Vec<Value> = list
                .iter()
                .filter(|m| {
                    m["id"]
                        .as_str()
                        .and_then(|i| i.parse::<u64>().ok())
                        .unwrap_or(0)
                        > after
                })
                .take(limit)
                .cloned()
                .collect();
            let r = reply(200, json!(page));
            bucket(r, st)
        }
        _ => reply(404, json!({"message": "404: Not Found", "code": 0})),
    }
}

fn notion_err(status: u16, code: &str, message: &str) -> Response {
    reply(
        status,
        json!({"object": "error", "status": status, "code": code, "message": message}),
    )
}

fn notion(
    st: &mut Inner,
    method: &Method,
    rest: &[&str],
    h: &HeaderMap,
    auth: &str,
    body: &Value,
) -> Response {
    if h.get("notion-version").is_none() {
        return notion_err(
            400,
            "missing_version",
            "Notion-Version header failed validation: Notion-Version header should be defined, instead was `undefined`.",
        );
    }
    if !valid(st, bearer(auth)) {
        return notion_err(401, "unauthorized", "API token is invalid.");
    }
    let page_of = |items: &[Value], body: &Value| {
        let start: usize = body["start_cursor"]
            .as_str()
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let size = body["page_size"].as_u64().unwrap_or(100).min(2) as usize;
        let page: Vec<Value> = items.iter().skip(start).take(size).cloned().collect();
        let more = start + page.len() < items.len();
        json!({"object": "list", "results": page, "has_more": more,
            "next_cursor": if more { json!((start + page.len()).to_string()) } else { Value::Null }})
    };
    match (method.as_str(), rest) {
        ("GET", ["users", "me"]) => {
            reply(200, json!({"object": "user", "id": "bot-1", "type": "bot"}))
        }
        ("POST", ["search"]) => {
            let q = body["query"].as_str().unwrap_or("").to_lowercase();
            let hits: Vec<Value> = st
                .notion_pages
                .iter()
                .filter(|p| p.to_string().to_lowercase().contains(&q))
                .cloned()
                .collect();
            reply(200, page_of(&hits, body))
        }
        ("PATCH", ["blocks", id, "children"]) => {
            if !st.notion_pages.iter().any(|p| p["id"] == *id) {
                return notion_err(
                    404,
                    "object_not_found",
                    &format!(
                        "Could not find block with ID: {id}. Make sure the relevant pages and databases are shared with your integration."
                    ),
                );
            }
            reply(200, json!({"object": "list", "results": body["children"]}))
        }
        ("GET", ["databases", "db1"]) => reply(
            200,
            json!({"object": "database", "id": "db1", "data_sources": [{"id": "ds1", "name": "Tasks"}]}),
        ),
        ("GET", ["data_sources", "ds1"]) => reply(
            200,
            json!({"object": "data_source", "id": "ds1", "properties": {"Status": {"id": "a", "type": "status"}, "Task": {"id": "title", "type": "title"}}}),
        ),
        ("POST", ["pages"]) => {
            if body["parent"]["data_source_id"] != "ds1" {
                return notion_err(
                    400,
                    "validation_error",
                    "body.parent.data_source_id should be a valid uuid",
                );
            }
            let n = st.notion_items.len() + 1;
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let item = json!({"object": "page", "id": format!("item-{n}"), "url": format!("https://www.notion.so/item-{n}"),
                "created_time": now, "last_edited_time": now, "properties": {"Task": {"type": "title", "title": [{"plain_text": body["properties"]["Task"]["title"][0]["text"]["content"]}]}}});
            st.notion_items.push(item.clone());
            reply(200, item)
        }
        ("POST", ["data_sources", "ds1", "query"]) => {
            let since = body["filter"]["last_edited_time"]["on_or_after"]
                .as_str()
                .unwrap_or("");
            let items: Vec<Value> = st
                .notion_items
                .iter()
                .filter(|i| i["last_edited_time"].as_str().unwrap_or("") >= since)
                .cloned()
                .collect();
            reply(200, page_of(&items, body))
        }
        _ => notion_err(404, "object_not_found", "Could not find the object."),
    }
}

fn spotify_err(status: u16, message: &str, reason: Option<&str>) -> Response {
    let mut e = json!({"status": status, "message": message});
    if let Some(r) = reason {
        e["reason"] = json!(r);
    }
    reply(status, json!({ "error": e }))
}

fn spotify(
    st: &mut Inner,
    method: &Method,
    rest: &[&str],
    q: &HashMap<String, String>,
    h: &HeaderMap,
    auth: &str,
    body: &Value,
) -> Response {
    if !valid(st, bearer(auth)) {
        return spotify_err(401, "The access token expired", None);
    }
    let control = |st: &mut Inner, what: String| {
        if !st.premium {
            return spotify_err(
                403,
                "Player command failed: Premium required",
                Some("PREMIUM_REQUIRED"),
            );
        }
        if !st.device {
            return spotify_err(
                404,
                "Player command failed: No active device found",
                Some("NO_ACTIVE_DEVICE"),
            );
        }
        st.player.push(what);
        reply(204, Value::Null)
    };
    match (method.as_str(), rest) {
        ("GET", ["me"]) => reply(
            200,
            json!({"id": "listener", "product": if st.premium { "premium" } else { "free" }}),
        ),
        ("GET", ["me", "player", "currently-playing"]) => match &st.playing {
            None => reply(204, Value::Null),
            Some(p) => reply(200, p.clone()),
        },
        ("PUT", ["me", "player", "play"]) => {
            let what = match body["context_uri"].as_str() {
                Some(u) => format!("play {u}"),
                None => "play".into(),
            };
            control(st, what)
        }
        ("PUT", ["me", "player", "pause"]) => control(st, "pause".into()),
        ("POST", ["me", "player", "next"]) => control(st, "next".into()),
        ("POST", ["me", "player", "previous"]) => control(st, "previous".into()),
        ("PUT", ["me", "player", "volume"]) => {
            let v = q.get("volume_percent").cloned().unwrap_or_default();
            control(st, format!("volume {v}"))
        }
        ("GET", ["me", "playlists"]) => {
            let offset: usize = q.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
            let items: Vec<Value> = st.playlists.iter().skip(offset).take(2).cloned().collect();
            let next = if offset + 2 < st.playlists.len() {
                json!(format!(
                    "{}/spotify/me/playlists?limit=2&offset={}",
                    host(h),
                    offset + 2
                ))
            } else {
                Value::Null
            };
            reply(
                200,
                json!({"items": items, "next": next, "total": st.playlists.len()}),
            )
        }
        _ => spotify_err(404, "Service not found", None),
    }
}

fn binance_err(status: u16, code: i64, msg: &str) -> Response {
    reply(status, json!({"code": code, "msg": msg}))
}

fn binance(st: &mut Inner, rest: &[&str], uri: &Uri, h: &HeaderMap) -> Response {
    let q = query(uri);
    let path = rest.join("/");
    let server_now = chrono::Utc::now().timestamp_millis() + st.skew_ms;
    match path.as_str() {
        "api/v3/time" => return reply(200, json!({"serverTime": server_now})),
        "api/v3/ticker/price" => {
            let wanted: Option<Vec<String>> = match (q.get("symbol"), q.get("symbols")) {
                (Some(s), _) => Some(vec![s.clone()]),
                (None, Some(list)) => serde_json::from_str(list).ok(),
                _ => None,
            };
            let list: Vec<Value> = match &wanted {
                None => st
                    .prices
                    .iter()
                    .map(|(s, p)| json!({"symbol": s, "price": p}))
                    .collect(),
                Some(w) => {
                    if w.iter().any(|s| !st.prices.contains_key(s)) {
                        return binance_err(400, -1121, "Invalid symbol.");
                    }
                    w.iter()
                        .map(|s| json!({"symbol": s, "price": st.prices[s]}))
                        .collect()
                }
            };
            if q.contains_key("symbol") {
                return reply(200, list[0].clone());
            }
            return reply(200, json!(list));
        }
        _ => {}
    }
    // Signed endpoints: the key, then the signature over the query as sent, then the window.
    let key = h
        .get("x-mbx-apikey")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(secret) = st
        .secrets
        .get(key)
        .filter(|_| st.tokens.contains(key))
        .cloned()
    else {
        return binance_err(
            401,
            -2015,
            "Invalid API-key, IP, or permissions for action.",
        );
    };
    let raw = uri.query().unwrap_or("");
    let Some((payload, sig)) = raw.rsplit_once("&signature=") else {
        return binance_err(
            400,
            -1102,
            "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.",
        );
    };
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(payload.as_bytes());
    if hex::encode(mac.finalize().into_bytes()) != sig {
        return binance_err(400, -1022, "Signature for this request is not valid.");
    }
    let ts: i64 = q.get("timestamp").and_then(|t| t.parse().ok()).unwrap_or(0);
    let window: i64 = q
        .get("recvWindow")
        .and_then(|t| t.parse().ok())
        .unwrap_or(5000);
    if ts > server_now + 1000 || server_now - ts > window {
        return binance_err(
            400,
            -1021,
            "Timestamp for this request is outside of the recvWindow.",
        );
    }
    match path.as_str() {
        "api/v3/account" => reply(
            200,
            json!({"makerCommission": 10, "canTrade": true, "accountType": "SPOT", "balances": st.balances, "permissions": ["SPOT"]}),
        ),
        "api/v3/openOrders" => reply(200, json!(st.orders)),
        _ => binance_err(404, -1000, "Not found"),
    }
}
