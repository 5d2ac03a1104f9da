//! OAuth against the strict local fake ([`super::fake_auth`]): the full sign-in (PKCE S256,
//! loopback redirect on 127.0.0.1, state), every failure the issue names (state mismatch, denied
//! consent, a reused code, a redirect that never comes, expired and revoked refresh tokens),
//! refresh before expiry, refresh on 401 once under a lock with concurrent callers, no refresh
//! loop, 429 with `Retry-After`, disconnect with revocation, and the events.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atlas::config::IntegrationsConfig;
use atlas::integrations::api::{ApiError, Request};
use atlas::integrations::{Announce, IntegrationError, Integrations, OAuthError, Provider, State};
use atlas::secrets::{MemorySecrets, SecretStore};
use atlas::triggers::events::EventHub;

use super::fake_auth::{Consent, FakeAuth, browse};

/// The next event, within 5 s.
async fn recv(
    events: &mut tokio::sync::broadcast::Receiver<atlas::triggers::events::Event>,
) -> atlas::triggers::events::Event {
    tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("an event within 5 s")
        .expect("the hub is open")
}

#[derive(Default)]
struct Counting {
    calls: AtomicUsize,
    reasons: Mutex<Vec<String>>,
}

impl Announce for Counting {
    fn needs_reauth(&self, _name: &str, reason: &str) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.reasons.lock().unwrap().push(reason.to_owned());
    }
}

pub(super) struct Setup {
    pub(super) fake: FakeAuth,
    pub(super) all: Arc<Integrations>,
    vault: Arc<MemorySecrets>,
    announce: Arc<Counting>,
    pub(super) hub: EventHub,
    pub(super) _dir: tempfile::TempDir,
}

pub(super) async fn setup(redirect_timeout_secs: u64) -> Setup {
    let fake = FakeAuth::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = IntegrationsConfig::default()
        .with("gmail", fake.provider_config(redirect_timeout_secs))
        .with("calendar", fake.provider_config(redirect_timeout_secs));
    let vault = Arc::new(MemorySecrets::default());
    let announce = Arc::new(Counting::default());
    let hub = EventHub::default();
    let all = Arc::new(Integrations::new(
        config,
        &dir.path().join("config.toml"),
        dir.path(),
        vault.clone(),
        vault.clone(),
        announce.clone(),
        Some(hub.clone()),
    ));
    Setup {
        fake,
        all,
        vault,
        announce,
        hub,
        _dir: dir,
    }
}

pub(super) async fn connect(s: &Setup) -> Result<(), IntegrationError> {
    s.all.connect(Provider::Gmail, browse).await.map(|_| ())
}

fn profile_req(s: &Setup) -> Request {
    Request::get(s.fake.url("/api/users/me/profile"))
}

fn stored_token(s: &Setup) -> serde_json::Value {
    let text = s.vault.get("integration.gmail.token").unwrap().unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn a_sign_in_uses_pkce_s256_a_loopback_redirect_and_stores_the_tokens() {
    let s = setup(10).await;
    let mut events = s.hub.subscribe();
    let mut url_seen = String::new();
    let done = s
        .all
        .connect(Provider::Gmail, |url| {
            url_seen = url.to_owned();
            browse(url);
        })
        .await
        .expect("connect");
    assert!(done.took < Duration::from_secs(10));
    let params = s.fake.get(|i| i.seen_auth_params[0].clone());
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["access_type"], "offline");
    assert!(
        params["redirect_uri"].starts_with("http://127.0.0.1:"),
        "{params:?}"
    );
    assert!(params["redirect_uri"].ends_with("/callback"));
    assert!(params["state"].len() >= 16);
    assert_eq!(
        params["scope"],
        "https://www.googleapis.com/auth/gmail.modify"
    );
    assert!(url_seen.contains("code_challenge="));
    let t = stored_token(&s);
    assert!(
        t["access_token"]
            .as_str()
            .unwrap()
            .starts_with("ya29.fake-access")
    );
    assert!(
        t["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("ya29.fake-refresh")
    );
    assert!(t["expires_at"].as_i64().unwrap() > chrono::Utc::now().timestamp() + 3000);
    let st = s.all.status(Provider::Gmail);
    assert_eq!(st.state, "connected");
    let e = recv(&mut events).await;
    assert_eq!(
        (e.source.as_str(), e.kind.as_str()),
        ("gmail", "integration.connected")
    );
    // The status file holds no token.
    let status_file =
        std::fs::read_to_string(s._dir.path().join("integrations/gmail.json")).unwrap();
    for tok in s.fake.get(|i| i.issued.clone()) {
        assert!(!status_file.contains(&tok));
    }
    // The health check passes with the token.
    let checked = s.all.check(Provider::Gmail).await;
    assert_eq!(checked.state, "connected");
    assert!(checked.last_check.is_some());
}

#[tokio::test]
async fn a_redirect_with_the_wrong_state_stores_nothing() {
    let s = setup(10).await;
    s.fake.set(|i| i.consent = Some(Consent::WrongState));
    let err = connect(&s).await.unwrap_err();
    assert!(
        matches!(
            &err,
            IntegrationError::Connect {
                source: OAuthError::StateMismatch,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("wrong `state`"), "{err}");
    assert_eq!(
        s.fake.get(|i| i.token_requests),
        0,
        "the code must not be exchanged"
    );
    assert!(s.vault.get("integration.gmail.token").unwrap().is_none());
    assert_eq!(s.all.status(Provider::Gmail).state, "disconnected");
}

#[tokio::test]
async fn denied_consent_is_reported_with_the_providers_reason() {
    let s = setup(10).await;
    s.fake.set(|i| i.consent = Some(Consent::Deny));
    let err = connect(&s).await.unwrap_err().to_string();
    assert!(err.contains("sign-in was refused: access_denied"), "{err}");
    assert!(s.vault.get("integration.gmail.token").unwrap().is_none());
}

#[tokio::test]
async fn a_reused_authorization_code_is_refused_by_the_token_endpoint() {
    let s = setup(10).await;
    connect(&s).await.expect("first sign-in");
    let first = stored_token(&s);
    s.fake.set(|i| i.consent = Some(Consent::ReuseCode));
    let err = connect(&s).await.unwrap_err().to_string();
    assert!(err.contains("invalid_grant"), "{err}");
    // The earlier tokens are untouched.
    assert_eq!(stored_token(&s), first);
}

#[tokio::test]
async fn a_redirect_that_never_comes_ends_at_the_configured_limit() {
    let s = setup(1).await;
    s.fake.set(|i| i.consent = Some(Consent::Never));
    let started = std::time::Instant::now();
    let err = connect(&s).await.unwrap_err().to_string();
    assert!(
        err.contains("no sign-in redirect arrived within 1 s"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn a_token_near_expiry_is_refreshed_before_use() {
    let s = setup(10).await;
    s.fake.set(|i| i.expires_in = 60);
    connect(&s).await.unwrap();
    let old = stored_token(&s)["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let account = s.all.account(Provider::Gmail).unwrap();
    let fresh = account.access_token().await.unwrap();
    assert_ne!(fresh, old);
    assert_eq!(s.fake.get(|i| i.refreshes), 1);
    // The refresh token survives a refresh that returns none.
    assert!(stored_token(&s)["refresh_token"].as_str().is_some());
    s.fake.set(|i| i.expires_in = 3600);
    account.access_token().await.unwrap();
    // 60 s tokens are always near expiry: each call refreshes; with 3600 s the next does not.
    let n = s.fake.get(|i| i.refreshes);
    account.access_token().await.unwrap();
    assert_eq!(s.fake.get(|i| i.refreshes), n);
}

#[tokio::test]
async fn concurrent_calls_after_a_401_refresh_once_and_all_succeed() {
    let s = setup(10).await;
    connect(&s).await.unwrap();
    // The server forgets the access token (expired early, as Google may).
    s.fake.set(|i| i.access.clear());
    let mut calls = Vec::new();
    for _ in 0..6 {
        let all = s.all.clone();
        let req = profile_req(&s);
        calls.push(tokio::spawn(async move {
            all.call(Provider::Gmail, &req).await
        }));
    }
    for c in calls {
        let v = c.await.unwrap().expect("call after refresh");
        assert_eq!(v["emailAddress"], "me@example.com");
    }
    assert_eq!(
        s.fake.get(|i| i.refreshes),
        1,
        "one refresh for all callers"
    );
}

#[tokio::test]
async fn a_second_401_after_the_refresh_fails_without_a_loop() {
    let s = setup(10).await;
    connect(&s).await.unwrap();
    s.fake.set(|i| i.reject_all = true);
    let err = s
        .all
        .call(Provider::Gmail, &profile_req(&s))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("HTTP 401"), "{err}");
    assert!(
        err.to_string()
            .contains("invalid authentication credentials"),
        "{err}"
    );
    assert_eq!(s.fake.get(|i| i.refreshes), 1);
    assert_eq!(s.fake.get(|i| i.api_calls), 2);
}

async fn dead_grant(kind: &str) {
    let s = setup(10).await;
    let mut events = s.hub.subscribe();
    connect(&s).await.unwrap();
    let _connected = recv(&mut events).await;
    // Revoked outside Atlas, or expired (Google says the same for both).
    s.fake.revoke_grant();
    let err = s
        .all
        .call(Provider::Gmail, &profile_req(&s))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, IntegrationError::Api(ApiError::Account(_))),
        "{kind}: {err}"
    );
    assert!(
        err.to_string().contains("needs you to sign in again"),
        "{err}"
    );
    assert!(
        err.to_string().contains("atlas integration connect gmail"),
        "{err}"
    );
    let st = s.all.status(Provider::Gmail);
    assert_eq!(st.state, "needs_reauth");
    assert!(st.reason.unwrap().contains("invalid_grant"));
    let e = recv(&mut events).await;
    assert_eq!(e.kind, "integration.needs_reauth");
    assert_eq!(e.data["integration"], "gmail");
    let tokens_asked = s.fake.get(|i| i.token_requests);
    // Later calls and checks fail at once: no refresh, no API call, no second announcement.
    for _ in 0..5 {
        assert!(s.all.call(Provider::Gmail, &profile_req(&s)).await.is_err());
        assert_eq!(s.all.check(Provider::Gmail).await.state, "needs_reauth");
    }
    assert_eq!(s.fake.get(|i| i.token_requests), tokens_asked);
    assert_eq!(s.announce.calls.load(Ordering::SeqCst), 1);
    assert!(events.try_recv().is_err(), "one event only");
    // A new sign-in clears it.
    connect(&s).await.unwrap();
    assert_eq!(s.all.status(Provider::Gmail).state, "connected");
    s.all.call(Provider::Gmail, &profile_req(&s)).await.unwrap();
}

#[tokio::test]
async fn a_revoked_refresh_token_marks_needs_reauth_once_and_never_loops() {
    dead_grant("revoked").await;
}

#[tokio::test]
async fn an_expired_refresh_token_before_use_marks_needs_reauth() {
    let s = setup(10).await;
    s.fake.set(|i| i.expires_in = 30);
    connect(&s).await.unwrap();
    s.fake.set(|i| {
        for r in i.refresh.values_mut() {
            *r = true;
        }
    });
    // The access token is near expiry, so the refresh happens before the call and fails.
    let err = s
        .all
        .account(Provider::Gmail)
        .unwrap()
        .access_token()
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("Token has been expired or revoked"),
        "{err}"
    );
    assert_eq!(s.all.status(Provider::Gmail).state, "needs_reauth");
    assert_eq!(s.fake.get(|i| i.api_calls), 0);
    dead_grant("expired").await;
}

#[tokio::test]
async fn rate_limits_are_waited_out_by_retry_after_then_given_up() {
    let s = setup(10).await;
    connect(&s).await.unwrap();
    s.fake.set(|i| i.rate_limit_next = 1);
    let v = s.all.call(Provider::Gmail, &profile_req(&s)).await.unwrap();
    assert_eq!(v["historyId"], "424242");
    assert_eq!(s.fake.get(|i| i.api_calls), 2);
    s.fake.set(|i| i.rate_limit_next = 10);
    let err = s
        .all
        .call(Provider::Gmail, &profile_req(&s))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("rate-limiting"), "{err}");
    // The first try and three retries.
    assert_eq!(s.fake.get(|i| i.api_calls), 6);
}

#[tokio::test]
async fn disconnect_revokes_the_grant_and_forgets_the_tokens() {
    let s = setup(10).await;
    connect(&s).await.unwrap();
    let refresh = stored_token(&s)["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let note = s.all.disconnect(Provider::Gmail).await.unwrap();
    assert_eq!(note, None);
    assert_eq!(
        s.fake.get(|i| i.revoked_via_endpoint.clone()),
        vec![refresh]
    );
    assert!(s.vault.get("integration.gmail.token").unwrap().is_none());
    assert_eq!(s.all.status(Provider::Gmail).state, "disconnected");
    let err = s
        .all
        .call(Provider::Gmail, &profile_req(&s))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("gmail is not connected"), "{err}");
}

#[tokio::test]
async fn an_integration_without_a_client_says_what_to_add() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Arc::new(MemorySecrets::default());
    let all = Integrations::new(
        IntegrationsConfig::default(),
        &dir.path().join("config.toml"),
        dir.path(),
        vault.clone(),
        vault,
        Arc::new(Counting::default()),
        None,
    );
    let err = all
        .connect(Provider::Calendar, |_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[integrations.calendar]") && err.contains("client_id"),
        "{err}"
    );
    assert_eq!(all.status(Provider::Calendar).state, "disconnected");
    assert!(!all.status(Provider::Calendar).configured);
    assert!(
        Provider::parse("outlook")
            .unwrap_err()
            .to_string()
            .contains("the integrations are gmail, calendar, github")
    );
    // A status check of a disconnected integration contacts nothing and stays disconnected.
    assert_eq!(all.check(Provider::Calendar).await.state, "disconnected");
    let _ = State::Connected;
}
