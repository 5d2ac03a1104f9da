//! A local fake of Google's OAuth endpoints and of one authorised API route, strict where
//! oauth2-mock-server is lax: codes are single-use and bound to their PKCE challenge (S256) and
//! redirect URI, refresh tokens can be revoked or expired (`invalid_grant`, Google's
//! wording), access tokens expire and can be revoked server-side (the API answers 401 with
//! Google's error body), and the API can be made to answer 429 with `Retry-After`. Every token
//! it issues is recorded so a test can look for it where it must not be.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::json;
use sha2::Digest;

/// What `/authorize` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    /// Redirects with a fresh code and the state.
    Grant,
    /// Redirects with another state.
    WrongState,
    /// Redirects with `error=access_denied`.
    Deny,
    /// Redirects with the code it gave last time (already used).
    ReuseCode,
    /// Shows a page and never redirects.
    Never,
}

#[derive(Debug, Default)]
pub struct Inner {
    pub consent: Option<Consent>,
    /// code -> (challenge, redirect_uri).
    codes: HashMap<String, (String, String)>,
    used: HashSet<String>,
    last_code: Option<String>,
    /// Valid access tokens.
    pub access: HashSet<String>,
    /// refresh token -> revoked?
    pub refresh: HashMap<String, bool>,
    /// `expires_in` of new access tokens.
    pub expires_in: i64,
    /// Every token ever issued.
    pub issued: Vec<String>,
    pub refreshes: usize,
    pub token_requests: usize,
    pub api_calls: usize,
    /// Answer the next N API calls with 429 (`Retry-After: 1`).
    pub rate_limit_next: usize,
    /// The API rejects every token.
    pub reject_all: bool,
    pub revoked_via_endpoint: Vec<String>,
    /// Client id expected.
    pub client_id: String,
    pub seen_auth_params: Vec<HashMap<String, String>>,
    counter: u64,
    /// Gmail: the mailbox (Gmail's `format=full` resources), from the fixture.
    pub gmail: Vec<serde_json::Value>,
    /// Gmail: the `q` of each search.
    pub queries: Vec<String>,
    /// Gmail: sent messages, `raw` decoded, with their `threadId`.
    pub sent: Vec<(String, Option<String>)>,
    /// Gmail: (history id, message id) of each message added.
    pub history: Vec<(u64, String)>,
    /// Gmail: the mailbox's history id now.
    pub history_id: u64,
    /// Gmail: history ids below this are too old (404).
    pub history_floor: u64,
    /// Calendar: the primary calendar's events (Calendar's event resources).
    pub calendar: Vec<serde_json::Value>,
    /// Calendar: the query of each events listing.
    pub calendar_queries: Vec<HashMap<String, String>>,
    /// Calendar: the bodies of events created.
    pub created: Vec<serde_json::Value>,
}

impl Inner {
    /// Adds a message to the inbox as a new arrival (a history record).
    pub fn deliver(&mut self, mut msg: serde_json::Value) {
        self.history_id += 1;
        msg["historyId"] = json!(self.history_id.to_string());
        let id = msg["id"].as_str().unwrap_or_default().to_owned();
        self.history.push((self.history_id, id));
        self.gmail.insert(0, msg);
    }
}

impl Inner {
    fn token(&mut self, kind: &str) -> String {
        self.counter += 1;
        let t = format!("ya29.fake-{kind}-{}-{:08x}", self.counter, rand_u32());
        self.issued.push(t.clone());
        t
    }
}

pub(crate) fn rand_u32() -> u32 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(7)
}

#[derive(Clone)]
pub struct FakeAuth {
    pub inner: Arc<Mutex<Inner>>,
    pub addr: SocketAddr,
}

impl FakeAuth {
    pub async fn start() -> FakeAuth {
        let inner = Arc::new(Mutex::new(Inner {
            consent: Some(Consent::Grant),
            expires_in: 3600,
            client_id: "atlas-test-client.apps.googleusercontent.com".into(),
            gmail: serde_json::from_str(include_str!("fixtures/gmail_messages.json"))
                .expect("the Gmail fixture"),
            history_id: 424242,
            history_floor: 424000,
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/revoke", post(revoke))
            .route("/api/users/me/profile", get(profile))
            .route("/api/users/me/calendarList", get(profile))
            .route("/api/users/me/messages", get(gmail_list))
            .route("/api/users/me/messages/send", post(gmail_send))
            .route("/api/users/me/messages/{id}", get(gmail_get))
            .route("/api/users/me/messages/{id}/modify", post(gmail_modify))
            .route("/api/users/me/labels/INBOX", get(gmail_inbox))
            .route("/api/users/me/history", get(gmail_history))
            .route(
                "/api/calendars/primary/events",
                get(cal_list).post(cal_create),
            )
            .route("/api/freeBusy", post(cal_freebusy))
            .with_state(inner.clone());
        let addr = crate::util::serve(app).await;
        FakeAuth { inner, addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set(&self, f: impl FnOnce(&mut Inner)) {
        f(&mut self.inner.lock().unwrap());
    }

    /// Revokes the grant behind Atlas's back (as the user can at myaccount.google.com, or as
    /// Google does when a refresh token expires): every refresh token dies, access tokens too.
    pub fn revoke_grant(&self) {
        self.set(|i| {
            for r in i.refresh.values_mut() {
                *r = true;
            }
            i.access.clear();
        });
    }

    pub fn get<T>(&self, f: impl FnOnce(&Inner) -> T) -> T {
        f(&self.inner.lock().unwrap())
    }

    /// `[integrations.NAME]` pointing here.
    pub fn provider_toml(&self, name: &str, redirect_timeout_secs: u64) -> String {
        format!(
            "[integrations.{name}]\nclient_id = \"atlas-test-client.apps.googleusercontent.com\"\nclient_secret = \"GOCSPX-not-so-secret\"\nauth_url = \"{}\"\ntoken_url = \"{}\"\nrevoke_url = \"{}\"\napi_url = \"{}\"\nredirect_timeout_secs = {redirect_timeout_secs}\n",
            self.url("/authorize"),
            self.url("/token"),
            self.url("/revoke"),
            self.url("/api"),
        )
    }

    pub fn provider_config(&self, redirect_timeout_secs: u64) -> atlas::config::ProviderConfig {
        atlas::config::ProviderConfig {
            client_id: Some("atlas-test-client.apps.googleusercontent.com".into()),
            client_secret: Some("GOCSPX-not-so-secret".into()),
            auth_url: Some(self.url("/authorize")),
            token_url: Some(self.url("/token")),
            revoke_url: Some(self.url("/revoke")),
            api_url: Some(self.url("/api")),
            redirect_timeout_secs: Some(redirect_timeout_secs),
            ..Default::default()
        }
    }
}

type S = State<Arc<Mutex<Inner>>>;

async fn authorize(State(s): S, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut st = s.lock().unwrap();
    st.seen_auth_params.push(q.clone());
    let redirect = q.get("redirect_uri").cloned().unwrap_or_default();
    let state = q.get("state").cloned().unwrap_or_default();
    if q.get("client_id") != Some(&st.client_id)
        || q.get("code_challenge_method").map(String::as_str) != Some("S256")
        || q.get("response_type").map(String::as_str) != Some("code")
    {
        return (StatusCode::BAD_REQUEST, "Error 400: invalid_request").into_response();
    }
    let code = match st.consent.unwrap_or(Consent::Grant) {
        Consent::Never => return "Choose an account (this page never redirects)".into_response(),
        Consent::Deny => {
            return Redirect::to(&format!(
                "{redirect}?error=access_denied&error_description=The+user+denied+%3Cb%3Eaccess%3C%2Fb%3E&state={state}"
            ))
            .into_response();
        }
        Consent::ReuseCode => st.last_code.clone().unwrap_or_default(),
        Consent::Grant | Consent::WrongState => {
            st.counter += 1;
            let code = format!("4/fake-code-{}", st.counter);
            st.codes.insert(
                code.clone(),
                (
                    q.get("code_challenge").cloned().unwrap_or_default(),
                    redirect.clone(),
                ),
            );
            st.last_code = Some(code.clone());
            code
        }
    };
    let state = if st.consent == Some(Consent::WrongState) {
        "forged-state".to_owned()
    } else {
        state
    };
    let code = code.replace('/', "%2F");
    Redirect::to(&format!("{redirect}?code={code}&state={state}&scope=x")).into_response()
}

fn oauth_error(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

async fn token(State(s): S, Form(f): Form<HashMap<String, String>>) -> Response {
    let mut st = s.lock().unwrap();
    st.token_requests += 1;
    if f.get("client_id") != Some(&st.client_id)
        || f.get("client_secret").map(String::as_str) != Some("GOCSPX-not-so-secret")
    {
        return oauth_error("invalid_client", "The OAuth client was not found.");
    }
    match f.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let code = f.get("code").cloned().unwrap_or_default();
            if st.used.contains(&code) {
                return oauth_error("invalid_grant", "Malformed auth code.");
            }
            let Some((challenge, redirect)) = st.codes.get(&code).cloned() else {
                return oauth_error("invalid_grant", "Malformed auth code.");
            };
            st.used.insert(code);
            let verifier = f.get("code_verifier").cloned().unwrap_or_default();
            let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sha2::Sha256::digest(verifier.as_bytes()));
            if computed != challenge {
                return oauth_error("invalid_grant", "Invalid code verifier.");
            }
            if f.get("redirect_uri") != Some(&redirect) {
                return oauth_error("redirect_uri_mismatch", "Bad Request");
            }
            let access = st.token("access");
            let refresh = st.token("refresh");
            st.access.insert(access.clone());
            st.refresh.insert(refresh.clone(), false);
            let expires_in = st.expires_in;
            axum::Json(json!({
                "access_token": access, "refresh_token": refresh, "expires_in": expires_in,
                "token_type": "Bearer", "scope": "https://www.googleapis.com/auth/gmail.modify",
            }))
            .into_response()
        }
        Some("refresh_token") => {
            let rt = f.get("refresh_token").cloned().unwrap_or_default();
            match st.refresh.get(&rt) {
                Some(false) => {}
                _ => return oauth_error("invalid_grant", "Token has been expired or revoked."),
            }
            st.refreshes += 1;
            let access = st.token("access");
            st.access.insert(access.clone());
            let expires_in = st.expires_in;
            axum::Json(json!({
                "access_token": access, "expires_in": expires_in, "token_type": "Bearer",
                "scope": "https://www.googleapis.com/auth/gmail.modify",
            }))
            .into_response()
        }
        _ => oauth_error("unsupported_grant_type", "Invalid grant_type."),
    }
}

async fn revoke(State(s): S, Form(f): Form<HashMap<String, String>>) -> Response {
    let mut st = s.lock().unwrap();
    let t = f.get("token").cloned().unwrap_or_default();
    st.revoked_via_endpoint.push(t.clone());
    if let Some(r) = st.refresh.get_mut(&t) {
        *r = true;
        st.access.clear();
        return StatusCode::OK.into_response();
    }
    if st.access.remove(&t) {
        return StatusCode::OK.into_response();
    }
    oauth_error("invalid_token", "Token expired or revoked")
}

async fn profile(State(s): S, h: HeaderMap) -> Response {
    let mut st = s.lock().unwrap();
    st.api_calls += 1;
    if st.rate_limit_next > 0 {
        st.rate_limit_next -= 1;
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            axum::Json(json!({"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED",
                "errors": [{"message": "Resource has been exhausted (e.g. check quota).", "domain": "global", "reason": "rateLimitExceeded"}]}})),
        )
            .into_response();
    }
    if let Some(refused) = unauthorized(&st, &h) {
        return refused;
    }
    let history_id = st.history_id.to_string();
    axum::Json(json!({"emailAddress": "me@example.com", "messagesTotal": 1234, "threadsTotal": 987, "historyId": history_id}))
        .into_response()
}

/// Google's 401 for a token it does not know (or when told to reject all).
fn unauthorized(st: &Inner, h: &HeaderMap) -> Option<Response> {
    let token = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !st.reject_all && st.access.contains(token) {
        return None;
    }
    Some(
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"")],
            axum::Json(json!({"error": {"code": 401,
                "message": "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
                "errors": [{"message": "Invalid Credentials", "domain": "global", "reason": "authError", "location": "Authorization", "locationType": "header"}],
                "status": "UNAUTHENTICATED"}})),
        )
            .into_response(),
    )
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"error": {"code": 404, "message": "Requested entity was not found.",
            "errors": [{"message": "Requested entity was not found.", "domain": "global", "reason": "notFound"}],
            "status": "NOT_FOUND"}})),
    )
        .into_response()
}

/// Pages of at most 2, so that every listing pages.
const PAGE: usize = 2;

/// The part of Gmail's search syntax the fixtures need: `is:unread`, `in:inbox`,
/// `from:WORD`, `subject:WORD` and bare words (subject or snippet), all of them required,
/// case-insensitive. Other operators match everything.
fn gmail_matches(m: &serde_json::Value, query: &str) -> bool {
    let header = |name: &str| {
        m["payload"]["headers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|h| h["name"].as_str() == Some(name))
            .and_then(|h| h["value"].as_str())
            .unwrap_or_default()
            .to_lowercase()
    };
    let labels = |l: &str| {
        m["labelIds"]
            .as_array()
            .is_some_and(|ls| ls.iter().any(|x| x == l))
    };
    query.split_whitespace().all(|term| {
        let term = term.to_lowercase();
        match term.split_once(':') {
            Some(("is", "unread")) => labels("UNREAD"),
            Some(("in", "inbox")) => labels("INBOX"),
            Some(("from", who)) => header("From").contains(who),
            Some(("subject", what)) => header("Subject").contains(what),
            Some(_) => true,
            None => {
                header("Subject").contains(&term)
                    || m["snippet"]
                        .as_str()
                        .unwrap_or_default()
                        .to_lowercase()
                        .contains(&term)
            }
        }
    })
}

async fn gmail_list(
    State(s): S,
    h: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut st = s.lock().unwrap();
    st.api_calls += 1;
    if let Some(r) = unauthorized(&st, &h) {
        return r;
    }
    let query = q.get("q").cloned().unwrap_or_default();
    st.queries.push(query.clone());
    let max: usize = q
        .get("maxResults")
        .and_then(|m| m.parse().ok())
        .unwrap_or(100);
    let start: usize = q
        .get("pageToken")
        .and_then(|p| p.strip_prefix("page-")?.parse().ok())
        .unwrap_or(0);
    let matching: Vec<&serde_json::Value> = st
        .gmail
        .iter()
        .filter(|m| gmail_matches(m, &query))
        .collect();
    let take = max.min(PAGE);
    let page: Vec<_> = matching
        .iter()
        .skip(start)
        .take(take)
        .map(|m| json!({"id": m["id"], "threadId": m["threadId"]}))
        .collect();
    let mut v = json!({"messages": page, "resultSizeEstimate": matching.len()});
    if start + take < matching.len() {
        v["nextPageToken"] = json!(format!("page-{}", start + take));
    }
    if matching.is_empty() {
        v = json!({"resultSizeEstimate": 0});
    }
    axum::Json(v).into_response()
}

async fn gmail_get(
    State(s): S,
    h: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let mut st = s.lock().unwrap();
    st.api_calls += 1;
    if let Some(r) = unauthorized(&st, &h) {
        return r;
    }
    match st.gmail.iter().find(|m| m["id"] == id.as_str()) {
        Some(m) => axum::Json(m.clone()).into_response(),
        None => not_found(),
    }
}

async fn gmail_inbox(State(s): S, h: HeaderMap) -> Response {
    let mut st = s.lock().unwrap();
    st.api_calls += 1;
    if let Some(r) = unauthorized(&st, &h) {
        return r;
    }
    let unread = st
        .gmail
        .iter()
        .filter(|m| {
            m["labelIds"]
                .as_array()
                .is_some_and(|l| l.iter().any(|x| x == "UNREAD"))
        })
        .count();
    axum::Json(json!({"id": "INBOX", "name": "INBOX", "type": "system", "messagesTotal": st.gmail.len(), "messagesUnread": unread, "threadsUnread": unread}))
        .into_response()
}

async fn gmail_send(
    State(s): S,
    h: HeaderMap,
    axum::Json(body): axum::Json<serde_json::Value>,
) -> Response {
    let mut st = s.lock().unwrap();
    st.api_calls += 1;
    if let Some(r) = unauthorized(&st, &h) {
        return r;
    }
    let Some(raw) = body["raw"].as_str() else {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": {"code": 400, "message": "'raw' RFC822 payload message string or uploading message via /upload/* URL required", "status": "INVALID_ARGUMENT"}}))).into_response();
    };
    // Gmail accepts base64url (it rejects the standard alphabet's + and /).
    let Ok(bytes) =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw.trim_end_matches('='))
    else {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": {"code": 400, "message": "Invalid value for ByteString", "status": "INVALID_ARGUMENT"}}))).into_response();
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let thread = body["threadId"].as_str().map(str::to_owned);
    st.sent.push((text, thread.clone()));
    let n = st.sent.len();
    axum::Json(json!({"id": format!("sent-{n}"), "threadId": thread.unwrap_or_else(|| format!("sent-{n}")), "labelIds": ["SENT"]}))
        .into_response()
}

async fn gmail_modify(
    State(s): S,
    h: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
    axum::Json(body): axum::Json<serde_json::Value>,
) -> Response {
    let mut st = s.lock().unwrap();
    st.api_calls += 1;
    if let Some(r) = unauthorized(&st, &h) {
        return r;
    }
    let Some(m) = st.gmail.iter_mut().find(|m| m["id"] == id.as_str()) else {
        return not_found();
    };
    let mut labels: Vec<String> = m["labelIds"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.as_str().map(str::to_owned))
        .collect();
    for r in body["removeLabelIds"].as_array().into_iter().flatten() {
        labels.retain(|l| Some(l.as_str()) != r.as_str());
    }
    for a in body["addLabelIds"].as_array().into_iter().flatten() {
        if let Some(a) = a.as_str()
            && !labels.iter().any(|l| l == a)
        {
            labels.push(a.to_owned());
        }
    }
    m["labelIds"] = json!(labels);
    axum::Json(json!({"id": id, "labelIds": labels})).into_response()
}

async fn gmail_history(
    State(s): S,
    h: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut st = s.lock().unwrap();
    st.api_calls += 1;
    if let Some(r) = unauthorized(&st, &h) {
        return r;
    }
    let Some(start) = q.get("startHistoryId").and_then(|v| v.parse::<u64>().ok()) else {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": {"code": 400, "message": "Invalid startHistoryId", "status": "INVALID_ARGUMENT"}}))).into_response();
    };
    if start < st.history_floor {
        return not_found();
    }
    let skip: usize = q
        .get("pageToken")
        .and_then(|p| p.strip_prefix("h-")?.parse().ok())
        .unwrap_or(0);
    let newer: Vec<&(u64, String)> = st.history.iter().filter(|(h, _)| *h > start).collect();
    let page: Vec<_> = newer
        .iter()
        .skip(skip)
        .take(1)
        .map(|(h, id)| json!({"id": h.to_string(), "messagesAdded": [{"message": {"id": id, "threadId": id, "labelIds": ["UNREAD", "INBOX"]}}]}))
        .collect();
    let mut v = json!({"historyId": st.history_id.to_string()});
    if !page.is_empty() {
        v["history"] = json!(page);
    }
    if skip + 1 < newer.len() {
        v["nextPageToken"] = json!(format!("h-{}", skip + 1));
    }
    axum::Json(v).into_response()
}

/// Follows the sign-in URL as a browser would (redirects included), in the background.
pub fn browse(url: &str) {
    let url = url.to_owned();
    tokio::spawn(async move {
        let _ = reqwest::Client::new().get(&url).send().await;
    });
}

fn bad_request(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": {"code": 400, "message": message,
            "errors": [{"domain": "global", "reason": "badRequest", "message": message}]}})),
    )
        .into_response()
}

/// An event's span: timed from `dateTime`, all-day from `date` (midnight to midnight in the
/// query's offset, as Google reads an all-day event in the calendar's zone).
fn span(
    ev: &serde_json::Value,
    offset: chrono::FixedOffset,
) -> Option<(
    chrono::DateTime<chrono::FixedOffset>,
    chrono::DateTime<chrono::FixedOffset>,
)> {
    use chrono::TimeZone;
    let at = |side: &str| -> Option<chrono::DateTime<chrono::FixedOffset>> {
        if let Some(t) = ev[side]["dateTime"].as_str() {
            return chrono::DateTime::parse_from_rfc3339(t).ok();
        }
        let d = chrono::NaiveDate::parse_from_str(ev[side]["date"].as_str()?, "%Y-%m-%d").ok()?;
        offset
            .from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
            .single()
    };
    Some((at("start")?, at("end")?))
}

async fn cal_list(State(s): S, h: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut st = s.lock().unwrap();
    st.api_calls += 1;
    if let Some(r) = unauthorized(&st, &h) {
        return r;
    }
    st.calendar_queries.push(q.clone());
    if q.get("orderBy").map(String::as_str) == Some("startTime")
        && q.get("singleEvents").map(String::as_str) != Some("true")
    {
        return bad_request("The requested ordering is not available for the particular query.");
    }
    let parse = |k: &str| {
        q.get(k)
            .and_then(|v| chrono::DateTime::parse_from_rfc3339(v).ok())
    };
    let (Some(min), Some(max)) = (parse("timeMin"), parse("timeMax")) else {
        return bad_request("Bad Request");
    };
    let mut hits: Vec<(chrono::DateTime<chrono::FixedOffset>, serde_json::Value)> = st
        .calendar
        .iter()
        .filter_map(|e| {
            let (a, b) = span(e, *min.offset())?;
            (a < max && b > min).then(|| (a, e.clone()))
        })
        .collect();
    hits.sort_by_key(|(a, _)| *a);
    let start: usize = q
        .get("pageToken")
        .and_then(|p| p.strip_prefix("c-")?.parse().ok())
        .unwrap_or(0);
    let max_results: usize = q
        .get("maxResults")
        .and_then(|m| m.parse().ok())
        .unwrap_or(250);
    let take = max_results.min(PAGE);
    let items: Vec<_> = hits
        .iter()
        .skip(start)
        .take(take)
        .map(|(_, e)| e.clone())
        .collect();
    let mut v = json!({"kind": "calendar#events", "summary": "me@example.com", "timeZone": "Europe/Paris", "items": items});
    if start + take < hits.len() {
        v["nextPageToken"] = json!(format!("c-{}", start + take));
    }
    axum::Json(v).into_response()
}

async fn cal_create(
    State(s): S,
    h: HeaderMap,
    axum::Json(body): axum::Json<serde_json::Value>,
) -> Response {
    let mut st = s.lock().unwrap();
    st.api_calls += 1;
    if let Some(r) = unauthorized(&st, &h) {
        return r;
    }
    if body["start"]["dateTime"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .is_none()
    {
        return bad_request("Invalid start time.");
    }
    st.created.push(body.clone());
    let mut ev = body;
    ev["id"] = json!(format!("created{}", st.created.len()));
    ev["status"] = json!("confirmed");
    st.calendar.push(ev.clone());
    axum::Json(ev).into_response()
}

async fn cal_freebusy(
    State(s): S,
    h: HeaderMap,
    axum::Json(body): axum::Json<serde_json::Value>,
) -> Response {
    let mut st = s.lock().unwrap();
    st.api_calls += 1;
    if let Some(r) = unauthorized(&st, &h) {
        return r;
    }
    let parse = |k: &str| {
        body[k]
            .as_str()
            .and_then(|v| chrono::DateTime::parse_from_rfc3339(v).ok())
    };
    let (Some(min), Some(max)) = (parse("timeMin"), parse("timeMax")) else {
        return bad_request("Bad Request");
    };
    let busy: Vec<_> = st
        .calendar
        .iter()
        .filter(|e| e["start"]["dateTime"].is_string() && e["transparency"] != "transparent")
        .filter_map(|e| span(e, *min.offset()))
        .filter(|(a, b)| *a < max && *b > min)
        .map(|(a, b)| json!({"start": a.to_rfc3339(), "end": b.to_rfc3339()}))
        .collect();
    axum::Json(json!({"kind": "calendar#freeBusy", "timeMin": min.to_rfc3339(), "timeMax": max.to_rfc3339(),
        "calendars": {"primary": {"busy": busy}}}))
        .into_response()
}
