//! A local fake of the Microsoft identity platform v2.0 (`/{tenant}/oauth2/v2.0/authorize` and
//! `/token`) and of the Microsoft Graph routes Atlas uses, in their documented shapes. Strict
//! where it matters: the client is public (a `client_secret` is refused, AADSTS700025), codes
//! are single-use and bound to their PKCE S256 challenge and redirect URI, every refresh
//! rotates the refresh token (the old one then answers `invalid_grant`, as does a revoked
//! grant), access tokens can be expired server-side (Graph's 401 `InvalidAuthenticationToken`),
//! listings page with `@odata.nextLink` (`$skip`), the inbox has a delta query with
//! `@odata.deltaLink`, `calendarView` answers wall-clock times in the zone of `Prefer:
//! outlook.timezone` (and records the header), and the next calls can be made to answer 429 or
//! 503 with `Retry-After`. Every token it issues is recorded for the leak tests.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use chrono::{DateTime, FixedOffset};
use serde_json::{Value, json};
use sha2::Digest;

use super::fake_auth::rand_u32;
use super::fake_graph_calendar as cal;

pub const CLIENT_ID: &str = "00000000-atla-5000-test-000000000001";

/// An event: id, subject, start and end as instants, all day or not.
pub type FakeEvent = (
    String,
    String,
    DateTime<FixedOffset>,
    DateTime<FixedOffset>,
    bool,
);

#[derive(Debug, Default)]
pub struct Inner {
    /// code -> (challenge, redirect_uri).
    codes: HashMap<String, (String, String)>,
    used: HashSet<String>,
    pub last_code: Option<String>,
    /// Valid access tokens.
    pub access: HashSet<String>,
    /// Refresh tokens still valid.
    pub refresh: HashSet<String>,
    /// Refresh tokens that were rotated away (reusing one is `invalid_grant`).
    pub rotated: HashSet<String>,
    pub issued: Vec<String>,
    pub refreshes: usize,
    /// Whether a token request carried a client secret.
    pub secret_seen: bool,
    pub seen_auth_params: Vec<HashMap<String, String>>,
    /// The tenant in the path of each authorize request.
    pub tenants: Vec<String>,
    counter: u64,
    /// Answer the next N Graph calls with 429 (`Retry-After: 1`).
    pub throttle_next: usize,
    /// Answer the next N Graph calls with 503 (`Retry-After: 1`).
    pub unavailable_next: usize,
    pub graph_calls: usize,
    /// The inbox (Graph message resources with `body.text`/`body.html`), newest first.
    pub messages: Vec<Value>,
    /// Delta: (change number, message id) of each change; the token is the last number seen.
    pub changes: Vec<(u64, String)>,
    pub change_no: u64,
    /// Mail sent (`sendMail` bodies) and replies (`(id, comment)`).
    pub sent: Vec<Value>,
    pub replies: Vec<(String, String)>,
    /// The `Prefer` header of each message read.
    pub read_prefer: Vec<String>,
    /// The `$search` of each search.
    pub searches: Vec<String>,
    /// Events: id, subject, start and end as instants, all day or not.
    pub events: Vec<FakeEvent>,
    /// The `Prefer` header of each calendarView.
    pub view_prefer: Vec<String>,
    /// Events created (bodies).
    pub created: Vec<Value>,
}

impl Inner {
    fn token(&mut self, kind: &str) -> String {
        self.counter += 1;
        let t = format!("EwB{kind}.fake-ms-{}-{:08x}", self.counter, rand_u32());
        self.issued.push(t.clone());
        t
    }

    /// A new message arrives in the inbox (a delta change).
    pub fn deliver(&mut self, msg: Value) {
        self.change_no += 1;
        let id = msg["id"].as_str().unwrap_or_default().to_owned();
        self.changes.push((self.change_no, id));
        self.messages.insert(0, msg);
    }

    /// An old message changes (marked read elsewhere): in the delta, but not new.
    pub fn touch(&mut self, id: &str) {
        self.change_no += 1;
        self.changes.push((self.change_no, id.to_owned()));
    }
}

#[derive(Clone)]
pub struct FakeMicrosoft {
    pub inner: Arc<Mutex<Inner>>,
    pub addr: SocketAddr,
}

pub(super) type S = State<Arc<Mutex<Inner>>>;

impl FakeMicrosoft {
    pub async fn start() -> FakeMicrosoft {
        let inner = Arc::new(Mutex::new(Inner {
            messages: serde_json::from_str(include_str!("fixtures/outlook_messages.json"))
                .expect("the Outlook fixture"),
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/{tenant}/oauth2/v2.0/authorize", get(authorize))
            .route("/{tenant}/oauth2/v2.0/token", post(token))
            .route("/v1.0/me", get(me))
            .route("/v1.0/me/mailFolders/inbox", get(inbox))
            .route("/v1.0/me/mailFolders/inbox/messages", get(inbox_messages))
            .route("/v1.0/me/mailFolders/inbox/messages/delta", get(delta))
            .route("/v1.0/me/messages", get(search))
            .route("/v1.0/me/messages/{id}", get(read).patch(mark))
            .route("/v1.0/me/messages/{id}/reply", post(reply))
            .route("/v1.0/me/sendMail", post(send_mail))
            .route("/v1.0/me/calendarView", get(cal::calendar_view))
            .route("/v1.0/me/events", post(cal::create_event))
            .route("/v1.0/me/calendar/getSchedule", post(cal::get_schedule))
            .with_state(inner.clone());
        let addr = crate::util::serve(app).await;
        FakeMicrosoft { inner, addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set(&self, f: impl FnOnce(&mut Inner)) {
        f(&mut self.inner.lock().unwrap());
    }

    pub fn get<T>(&self, f: impl FnOnce(&Inner) -> T) -> T {
        f(&self.inner.lock().unwrap())
    }

    /// Every access token expires (Graph then answers 401).
    pub fn expire_access(&self) {
        self.set(|i| i.access.clear());
    }

    /// The user withdraws consent: every token dies.
    pub fn revoke_grant(&self) {
        self.set(|i| {
            i.refresh.clear();
            i.access.clear();
        });
    }

    /// `[integrations.microsoft]` pointing here, as config.toml has it.
    pub fn provider_toml(&self) -> String {
        format!(
            "[integrations.microsoft]\nclient_id = \"{CLIENT_ID}\"\nauth_url = \"{}\"\ntoken_url = \"{}\"\napi_url = \"{}\"\ntimezone = \"Europe/Paris\"\nredirect_timeout_secs = 20\n",
            self.url("/contoso.onmicrosoft.com/oauth2/v2.0/authorize"),
            self.url("/contoso.onmicrosoft.com/oauth2/v2.0/token"),
            self.url("/v1.0"),
        )
    }

    /// `[integrations.microsoft]` pointing here (a work tenant, a fixed zone).
    pub fn provider_config(&self) -> atlas::config::ProviderConfig {
        atlas::config::ProviderConfig {
            client_id: Some(CLIENT_ID.into()),
            auth_url: Some(self.url("/contoso.onmicrosoft.com/oauth2/v2.0/authorize")),
            token_url: Some(self.url("/contoso.onmicrosoft.com/oauth2/v2.0/token")),
            api_url: Some(self.url("/v1.0")),
            redirect_timeout_secs: Some(10),
            timezone: Some("Europe/Paris".into()),
            ..Default::default()
        }
    }
}

async fn authorize(
    State(s): S,
    Path(tenant): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut st = s.lock().unwrap();
    st.seen_auth_params.push(q.clone());
    st.tenants.push(tenant);
    let redirect = q.get("redirect_uri").cloned().unwrap_or_default();
    let scope = q.get("scope").cloned().unwrap_or_default();
    if q.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || q.get("code_challenge_method").map(String::as_str) != Some("S256")
        || q.get("response_type").map(String::as_str) != Some("code")
        || !scope.split(' ').any(|s| s == "offline_access")
    {
        return (StatusCode::BAD_REQUEST, "AADSTS900144: invalid request").into_response();
    }
    st.counter += 1;
    let code = format!("M.C507_BAY.2.U.fake-code-{}", st.counter);
    let challenge = q.get("code_challenge").cloned().unwrap_or_default();
    st.codes.insert(code.clone(), (challenge, redirect.clone()));
    st.last_code = Some(code.clone());
    let state = q.get("state").cloned().unwrap_or_default();
    Redirect::to(&format!("{redirect}?code={code}&state={state}")).into_response()
}

fn aad_error(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    (
        status,
        axum::Json(json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {description}\r\nTrace ID: 0000\r\nTimestamp: 2026-12-07 08:00:00Z"),
            "error_codes": [code], "timestamp": "2026-12-07 08:00:00Z",
            "trace_id": "0000", "correlation_id": "1111",
        })),
    )
        .into_response()
}

fn tokens(st: &mut Inner) -> Response {
    let access = st.token("access");
    let refresh = st.token("refresh");
    st.access.insert(access.clone());
    st.refresh.insert(refresh.clone());
    axum::Json(json!({
        "token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
        "scope": "https://graph.microsoft.com/Mail.ReadWrite https://graph.microsoft.com/Mail.Send https://graph.microsoft.com/Calendars.ReadWrite https://graph.microsoft.com/User.Read",
        "access_token": access, "refresh_token": refresh,
    }))
    .into_response()
}

async fn token(State(s): S, Form(f): Form<HashMap<String, String>>) -> Response {
    let mut st = s.lock().unwrap();
    if f.contains_key("client_secret") {
        st.secret_seen = true;
        return aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700025,
            "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
        );
    }
    if f.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            "Application not found.",
        );
    }
    match f.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let code = f.get("code").cloned().unwrap_or_default();
            if !st.used.insert(code.clone()) {
                return aad_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    54005,
                    "OAuth2 Authorization code was already redeemed.",
                );
            }
            let Some((challenge, redirect)) = st.codes.get(&code).cloned() else {
                return aad_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    70000,
                    "The provided authorization code is invalid.",
                );
            };
            let verifier = f.get("code_verifier").cloned().unwrap_or_default();
            let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sha2::Sha256::digest(verifier.as_bytes()));
            if computed != challenge {
                return aad_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
                );
            }
            if f.get("redirect_uri") != Some(&redirect) {
                return aad_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    50011,
                    "The redirect URI does not match the one of the authorization request.",
                );
            }
            tokens(&mut st)
        }
        Some("refresh_token") => {
            let rt = f.get("refresh_token").cloned().unwrap_or_default();
            if !st.refresh.remove(&rt) {
                return aad_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    700082,
                    "The refresh token has expired or was revoked.",
                );
            }
            // Rotation: the old refresh token dies with this answer.
            st.rotated.insert(rt);
            st.refreshes += 1;
            tokens(&mut st)
        }
        _ => aad_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        ),
    }
}

pub(super) fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"code": code, "message": message,
            "innerError": {"date": "2026-12-07T08:00:00", "request-id": "2222", "client-request-id": "3333"}}})),
    )
        .into_response()
}

/// The checks of every Graph call: throttling, then the token.
pub(super) fn gate(st: &mut Inner, h: &HeaderMap) -> Option<Response> {
    st.graph_calls += 1;
    if st.throttle_next > 0 {
        st.throttle_next -= 1;
        let mut r = graph_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Too many requests.",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, "1".parse().unwrap());
        return Some(r);
    }
    if st.unavailable_next > 0 {
        st.unavailable_next -= 1;
        let mut r = graph_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "The service is temporarily unavailable.",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, "1".parse().unwrap());
        return Some(r);
    }
    let token = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if st.access.contains(token) {
        return None;
    }
    Some(graph_error(
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
        "Lifetime validation failed, the token is expired.",
    ))
}

/// The Graph checks ([`gate`]) or the locked state.
macro_rules! gated {
    ($s:expr, $h:expr) => {{
        let mut st = $s.lock().unwrap();
        if let Some(r) = gate(&mut st, &$h) {
            return r;
        }
        st
    }};
}
pub(super) use gated;

/// A message as Graph lists it: the `$select`ed fields, no body.
fn listed(m: &Value) -> Value {
    let mut m = m.clone();
    if let Some(o) = m.as_object_mut() {
        o.remove("body");
    }
    m
}

/// One page of `items` from `$skip`, `$top` a page, with the next link when more remain.
pub(super) fn page(base: &str, items: Vec<Value>, q: &HashMap<String, String>) -> Value {
    let skip: usize = q.get("$skip").and_then(|s| s.parse().ok()).unwrap_or(0);
    let top: usize = q
        .get("$top")
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
        .min(2);
    let mut v = json!({ "value": items.iter().skip(skip).take(top).cloned().collect::<Vec<_>>() });
    if skip + top < items.len() {
        let mut next: Vec<(String, String)> = q
            .iter()
            .filter(|(k, _)| *k != "$skip")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        next.push(("$skip".into(), (skip + top).to_string()));
        let qs: Vec<String> = next
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect();
        let qs = qs.join("&");
        v["@odata.nextLink"] = json!(format!("{base}?{qs}"));
    }
    v
}

/// `path` on this server, as the request's `Host` names it.
pub(super) fn here(h: &HeaderMap, path: &str) -> String {
    let host = h
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    format!("http://{host}{path}")
}

/// Percent-encodes a query key or value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'$' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn me(State(s): S, h: HeaderMap) -> Response {
    let _st = gated!(s, h);
    axum::Json(json!({"id": "48d31887-5fad-4d73-a9f5-3c356e68a038", "mail": "me@contoso.com", "userPrincipalName": "me@contoso.com"})).into_response()
}

async fn inbox(State(s): S, h: HeaderMap) -> Response {
    let st = gated!(s, h);
    let unread = st.messages.iter().filter(|m| m["isRead"] == false).count();
    axum::Json(json!({"id": "AQMkAGI2inbox", "displayName": "Inbox", "unreadItemCount": unread, "totalItemCount": st.messages.len()})).into_response()
}

async fn inbox_messages(
    State(s): S,
    h: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let st = gated!(s, h);
    let unread_only = q.get("$filter").is_some_and(|f| f == "isRead eq false");
    let mut items: Vec<Value> = st
        .messages
        .iter()
        .filter(|m| !unread_only || m["isRead"] == false)
        .map(listed)
        .collect();
    if q.get("$orderby")
        .is_some_and(|o| o == "receivedDateTime desc")
    {
        items.sort_by(|a, b| {
            b["receivedDateTime"]
                .as_str()
                .cmp(&a["receivedDateTime"].as_str())
        });
    }
    let base = here(&h, "/v1.0/me/mailFolders/inbox/messages");
    axum::Json(page(&base, items, &q)).into_response()
}

async fn search(State(s): S, h: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut st = gated!(s, h);
    let Some(words) = q.get("$search") else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "This listing needs $search here.",
        );
    };
    st.searches.push(words.clone());
    let words = words.trim_matches('"').to_lowercase();
    let items: Vec<Value> = st
        .messages
        .iter()
        .filter(|m| {
            let hay = format!("{} {}", m["subject"], m["bodyPreview"]).to_lowercase();
            words.split_whitespace().all(|w| hay.contains(w))
        })
        .map(listed)
        .collect();
    let base = here(&h, "/v1.0/me/messages");
    axum::Json(page(&base, items, &q)).into_response()
}

fn find(st: &Inner, id: &str) -> Option<usize> {
    st.messages.iter().position(|m| m["id"] == id)
}

fn not_found() -> Response {
    graph_error(
        StatusCode::NOT_FOUND,
        "ErrorItemNotFound",
        "The specified object was not found in the store.",
    )
}

async fn read(State(s): S, h: HeaderMap, Path(id): Path<String>) -> Response {
    let mut st = gated!(s, h);
    let prefer = h
        .get("prefer")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    st.read_prefer.push(prefer.clone());
    let Some(i) = find(&st, &id) else {
        return not_found();
    };
    let m = &st.messages[i];
    let text = prefer.contains("outlook.body-content-type=\"text\"");
    let mut out = listed(m);
    out["body"] = json!({
        "contentType": if text { "text" } else { "html" },
        "content": if text { m["body"]["text"].clone() } else { m["body"]["html"].clone() },
    });
    axum::Json(out).into_response()
}

async fn mark(
    State(s): S,
    h: HeaderMap,
    Path(id): Path<String>,
    axum::Json(b): axum::Json<Value>,
) -> Response {
    let mut st = gated!(s, h);
    let Some(i) = find(&st, &id) else {
        return not_found();
    };
    if let Some(r) = b.get("isRead") {
        st.messages[i]["isRead"] = r.clone();
    }
    axum::Json(listed(&st.messages[i])).into_response()
}

async fn reply(
    State(s): S,
    h: HeaderMap,
    Path(id): Path<String>,
    axum::Json(b): axum::Json<Value>,
) -> Response {
    let mut st = gated!(s, h);
    if find(&st, &id).is_none() {
        return not_found();
    }
    let comment = b["comment"].as_str().unwrap_or_default().to_owned();
    st.replies.push((id, comment));
    StatusCode::ACCEPTED.into_response()
}

async fn send_mail(State(s): S, h: HeaderMap, axum::Json(b): axum::Json<Value>) -> Response {
    let mut st = gated!(s, h);
    if b["message"]["toRecipients"]
        .as_array()
        .is_none_or(|r| r.is_empty())
    {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidRecipients",
            "At least one recipient is not valid.",
        );
    }
    st.sent.push(b);
    StatusCode::ACCEPTED.into_response()
}

async fn delta(State(s): S, h: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    let st = gated!(s, h);
    let base = here(&h, "/v1.0/me/mailFolders/inbox/messages/delta");
    let from: u64 = match q.get("$deltatoken") {
        Some(t) => match t.strip_prefix("T").and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => {
                return graph_error(
                    StatusCode::GONE,
                    "SyncStateNotFound",
                    "The sync state generation is not found.",
                );
            }
        },
        // The first round: everything received since `$filter` (here: nothing older).
        None => st.change_no,
    };
    let mut items: Vec<Value> = Vec::new();
    let mut ids = HashSet::new();
    for (_, id) in st.changes.iter().filter(|(n, _)| *n > from) {
        if !ids.insert(id.clone()) {
            continue;
        }
        match find(&st, id) {
            Some(i) => items.push(listed(&st.messages[i])),
            None => items.push(json!({"id": id, "@removed": {"reason": "deleted"}})),
        }
    }
    // Two pages when there is more than one change: the first ends with a next link.
    let skip: usize = q
        .get("$skiptoken")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let rest: Vec<Value> = items.into_iter().skip(skip).collect();
    if rest.len() > 1 && skip == 0 {
        let token = q
            .get("$deltatoken")
            .cloned()
            .unwrap_or_else(|| format!("T{from}"));
        return axum::Json(json!({
            "value": [rest[0].clone()],
            "@odata.nextLink": format!("{base}?$deltatoken={token}&$skiptoken=1"),
        }))
        .into_response();
    }
    axum::Json(
        json!({"value": rest, "@odata.deltaLink": format!("{base}?$deltatoken=T{}", st.change_no)}),
    )
    .into_response()
}
