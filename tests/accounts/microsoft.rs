//! Microsoft (Outlook mail and calendar through Graph) against the local fake of the identity
//! platform v2.0 and Graph ([`super::fake_microsoft`]): the public-client PKCE sign-in with a
//! tenant, refresh-token rotation across a restart, `invalid_grant` once, Graph's paging, plain
//! text bodies, send/reply/mark read, the delta watch across restarts, throttling with
//! `Retry-After`, Graph's error line. The calendar and the briefing are
//! [`super::microsoft_day`]'s.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use atlas::actions::{Accounts, MailOp};
use atlas::config::IntegrationsConfig;
use atlas::integrations::api::Request;
use atlas::integrations::microsoft::PROVIDER;
use atlas::integrations::outlook::NewMail;
use atlas::integrations::watch::Watch;
use atlas::integrations::{Announce, Integrations, Provider};
use atlas::secrets::{MemorySecrets, SecretStore};
use atlas::triggers::events::EventHub;
use serde_json::{Value, json};

use super::fake_auth::{FakeAuth, browse};
use super::fake_microsoft::FakeMicrosoft;

#[derive(Default)]
pub(super) struct Counting(AtomicUsize);

/// A log sink.
#[derive(Clone, Default)]
pub(super) struct Logs(pub(super) Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

impl Announce for Counting {
    fn needs_reauth(&self, _name: &str, _reason: &str) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

pub(super) struct Setup {
    pub(super) ms: FakeMicrosoft,
    pub(super) google: Option<FakeAuth>,
    pub(super) all: Arc<Integrations>,
    pub(super) config: IntegrationsConfig,
    pub(super) vault: Arc<MemorySecrets>,
    pub(super) announce: Arc<Counting>,
    pub(super) hub: EventHub,
    pub(super) dir: tempfile::TempDir,
}

impl Setup {
    /// The integrations again over the same keyring and data dir: a restart.
    pub(super) fn restart(&self) -> Arc<Integrations> {
        Arc::new(Integrations::new(
            self.config.clone(),
            &self.dir.path().join("config.toml"),
            self.dir.path(),
            self.vault.clone(),
            self.vault.clone(),
            self.announce.clone(),
            Some(self.hub.clone()),
        ))
    }

    fn stored(&self) -> Value {
        let text = self
            .vault
            .get("integration.microsoft.token")
            .unwrap()
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

/// Integrations of `config` over `vault` and `dir`, without a hub.
fn plain(
    dir: &tempfile::TempDir,
    vault: &Arc<MemorySecrets>,
    config: IntegrationsConfig,
) -> Integrations {
    Integrations::new(
        config,
        &dir.path().join("config.toml"),
        dir.path(),
        vault.clone(),
        vault.clone(),
        Arc::new(Counting::default()),
        None,
    )
}

pub(super) async fn setup(with_google: bool) -> Setup {
    let ms = FakeMicrosoft::start().await;
    let mut config = IntegrationsConfig::default().with("microsoft", ms.provider_config());
    let google = if with_google {
        let g = FakeAuth::start().await;
        config = config
            .with("gmail", g.provider_config(10))
            .with("calendar", g.provider_config(10));
        Some(g)
    } else {
        None
    };
    let dir = tempfile::tempdir().unwrap();
    let vault = Arc::new(MemorySecrets::default());
    let mut s = Setup {
        ms,
        google,
        all: Arc::new(plain(&dir, &vault, IntegrationsConfig::default())),
        config,
        vault,
        announce: Arc::new(Counting::default()),
        hub: EventHub::default(),
        dir,
    };
    s.all = s.restart();
    s
}

pub(super) async fn connect(s: &Setup) {
    s.all
        .connect(PROVIDER, browse)
        .await
        .expect("connect microsoft");
    if s.google.is_some() {
        s.all
            .connect(Provider::Gmail, browse)
            .await
            .expect("connect gmail");
        s.all
            .connect(Provider::Calendar, browse)
            .await
            .expect("connect calendar");
    }
}

fn me(s: &Setup) -> Request {
    Request::get(s.ms.url("/v1.0/me"))
}

#[tokio::test]
async fn a_public_client_signs_in_with_pkce_and_rotated_refresh_tokens_survive_a_restart() {
    let s = setup(false).await;
    connect(&s).await;
    let params = s.ms.get(|i| i.seen_auth_params[0].clone());
    assert_eq!(
        params["scope"],
        "offline_access User.Read Mail.ReadWrite Mail.Send Calendars.ReadWrite"
    );
    assert_eq!(params["code_challenge_method"], "S256");
    assert!(params["redirect_uri"].starts_with("http://127.0.0.1:"));
    assert_eq!(s.ms.get(|i| i.tenants.clone()), ["contoso.onmicrosoft.com"]);
    assert!(
        !s.ms.get(|i| i.secret_seen),
        "a public client sends no secret"
    );
    let first = s.stored()["refresh_token"].as_str().unwrap().to_owned();

    // The access token expires: Graph's 401, one refresh, a new refresh token in the keyring.
    s.ms.expire_access();
    s.all
        .call(PROVIDER, &me(&s))
        .await
        .expect("a call after a refresh");
    let second = s.stored()["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(
        first, second,
        "the rotated refresh token replaced the old one"
    );
    assert!(s.ms.get(|i| i.rotated.contains(&first)));

    // A restart: the new process reads the rotated token, and it still refreshes.
    let again = s.restart();
    s.ms.expire_access();
    again
        .call(PROVIDER, &me(&s))
        .await
        .expect("a call after a restart");
    assert_eq!(s.ms.get(|i| i.refreshes), 2);
    assert_eq!(again.status(PROVIDER).state, "connected");

    // Consent withdrawn: invalid_grant marks it needs_reauth, announced once, and no more
    // token requests.
    s.ms.revoke_grant();
    for _ in 0..2 {
        let err = again.call(PROVIDER, &me(&s)).await.unwrap_err().to_string();
        assert!(err.contains("sign in again"), "{err}");
    }
    assert_eq!(s.announce.0.load(Ordering::SeqCst), 1);
    assert_eq!(again.status(PROVIDER).state, "needs_reauth");
    assert!(
        again
            .status(PROVIDER)
            .reason
            .unwrap()
            .contains("invalid_grant"),
        "the reason names the OAuth error"
    );
}

#[tokio::test]
async fn the_tenant_defaults_to_common_and_a_missing_client_says_where_to_get_one() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Arc::new(MemorySecrets::default());
    let make = |c: IntegrationsConfig| plain(&dir, &vault, c);
    let client = atlas::config::ProviderConfig {
        client_id: Some("my-app".into()),
        ..Default::default()
    };
    let all = make(IntegrationsConfig::default().with("microsoft", client.clone()));
    let ep = all.account(PROVIDER).unwrap().endpoints().cloned().unwrap();
    assert_eq!(
        ep.auth_url,
        "https://login.microsoftonline.com/common/oauth2/v2.0/authorize"
    );
    assert!(ep.client_secret.is_none());
    let work = atlas::config::ProviderConfig {
        tenant: Some("contoso.onmicrosoft.com".into()),
        ..client
    };
    let all = make(IntegrationsConfig::default().with("microsoft", work));
    let ep = all.account(PROVIDER).unwrap().endpoints().cloned().unwrap();
    assert_eq!(
        ep.token_url,
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    );
    let none = make(IntegrationsConfig::default());
    let err = none
        .connect(PROVIDER, |_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[integrations.microsoft]") && err.contains("app registration"),
        "{err}"
    );
}

#[tokio::test]
async fn outlook_mail_counts_pages_reads_text_sends_replies_and_marks_read() {
    let s = setup(false).await;
    connect(&s).await;
    let unread = s.all.mail(MailOp::Unread { limit: 5 }).await.unwrap();
    assert_eq!(unread["count"], 2);
    assert_eq!(unread["important"], 1);
    assert_eq!(
        unread["accounts"],
        json!([{"account": "microsoft", "via": "Outlook", "count": 2}])
    );
    assert_eq!(unread["messages"][0]["from_name"], "Dana Kim");
    assert_eq!(
        unread["messages"][0]["via"],
        Value::Null,
        "one account: no source named"
    );
    // The whole inbox takes two pages of the fake (`@odata.nextLink` followed).
    let all = s
        .all
        .mail(MailOp::Search {
            query: String::new(),
            unread: false,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(all["count"], 3);
    assert_eq!(all["messages"][2]["from_name"], "billing@fabrikam.com");
    let found = s
        .all
        .mail(MailOp::Search {
            query: "lunch".into(),
            unread: false,
            limit: 5,
        })
        .await
        .unwrap();
    assert_eq!(found["count"], 1);
    assert_eq!(s.ms.get(|i| i.searches.clone()), ["\"lunch\""]);
    let id = found["messages"][0]["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("microsoft:AAMk"), "{id}");
    // Read: the plain text, asked for with the Prefer header.
    let one = s.all.mail(MailOp::Read { id: id.clone() }).await.unwrap();
    assert_eq!(one["body"], "Are you free for lunch on Friday?");
    assert_eq!(
        s.ms.get(|i| i.read_prefer.clone()),
        ["outlook.body-content-type=\"text\""]
    );
    let replied = s
        .all
        .mail(MailOp::Reply {
            id: id.clone(),
            body: "Friday works.".into(),
        })
        .await
        .unwrap();
    assert_eq!(replied["to_name"], "Ravi Patel");
    let replies = s.ms.get(|i| i.replies.clone());
    assert_eq!(replies[0].1, "Friday works.");
    assert!(
        replies[0].0.ends_with("fake2=="),
        "the id went through whole: {}",
        replies[0].0
    );
    s.all.mail(MailOp::MarkRead { id }).await.unwrap();
    let unread = s.all.mail(MailOp::Unread { limit: 5 }).await.unwrap();
    assert_eq!(unread["count"], 1);
    let sent = s
        .all
        .mail(MailOp::Send {
            to: "dana@contoso.com".into(),
            subject: "Numbers".into(),
            body: "Thanks, looks good.".into(),
            account: None,
        })
        .await
        .unwrap();
    assert_eq!(sent["via"], "Outlook");
    let body = s.ms.get(|i| i.sent[0].clone());
    assert_eq!(
        body["message"]["toRecipients"][0]["emailAddress"]["address"],
        "dana@contoso.com"
    );
    assert_eq!(body["message"]["body"]["contentType"], "Text");
    // An id of no message: Graph's error as one line, no JSON.
    let err = s
        .all
        .mail(MailOp::Read {
            id: "microsoft:AAMkNothing".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        err,
        "Microsoft Graph refused (ErrorItemNotFound, HTTP 404): The specified object was not found in the store."
    );
    let err = s
        .all
        .mail(MailOp::Read { id: "AAMk".into() })
        .await
        .unwrap_err();
    assert!(err.contains("ACCOUNT:ID"), "{err}");
}

#[tokio::test]
async fn throttled_graph_calls_wait_for_retry_after_on_429_and_503() {
    let s = setup(false).await;
    connect(&s).await;
    s.ms.set(|i| {
        i.throttle_next = 1;
        i.unavailable_next = 1;
        i.graph_calls = 0;
    });
    let started = std::time::Instant::now();
    let unread = s.all.mail(MailOp::Unread { limit: 1 }).await.unwrap();
    assert_eq!(unread["count"], 2);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "both waits were waited"
    );
    assert!(s.ms.get(|i| i.graph_calls) >= 4);
    // Throttled for longer than Atlas waits: a sentence, not a dump.
    s.ms.set(|i| i.throttle_next = 10);
    let err = s.all.mail(MailOp::Unread { limit: 1 }).await.unwrap_err();
    assert!(err.contains("rate-limiting"), "{err}");
    assert!(!err.contains('{'), "{err}");
}

#[tokio::test]
async fn new_outlook_mail_is_announced_once_through_the_delta_across_restarts() {
    let s = setup(false).await;
    connect(&s).await;
    let data = s.dir.path();
    let mut events = s.hub.subscribe();
    let watch = Watch::new(NewMail, s.all.clone(), s.hub.clone(), data);
    assert_eq!(
        watch.poll().await.unwrap(),
        0,
        "the first poll only records"
    );
    let arrive = |n: u32, subject: &str| {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        s.ms.set(|i| {
            i.deliver(json!({"id": format!("AAMkNew{n}=="), "subject": subject,
                "from": {"emailAddress": {"name": "Lee Chen", "address": "lee@contoso.com"}},
                "toRecipients": [], "receivedDateTime": now, "bodyPreview": "hi",
                "isRead": false, "importance": "normal", "body": {"text": "hi", "html": "hi"}}))
        });
    };
    arrive(1, "Standup moved");
    // An old message marked read elsewhere is in the delta too, and is not new.
    s.ms.set(|i| i.touch("AAMkADAwATM0MDAAMS1iNTcwLWI2NTEtMDACLTAwCgBGAAAD+fake3=="));
    assert_eq!(watch.poll().await.unwrap(), 1);
    let e = events.recv().await.unwrap();
    assert_eq!(
        (e.kind.as_str(), e.source.as_str()),
        ("mail.new", "microsoft")
    );
    assert_eq!(e.data["id"], "microsoft:AAMkNew1==");
    assert_eq!(e.data["subject"], "Standup moved");
    assert_eq!(watch.poll().await.unwrap(), 0, "nothing twice");
    // A restart: the delta link comes back from the state file.
    let again = Watch::new(NewMail, s.restart(), s.hub.clone(), data);
    assert_eq!(again.poll().await.unwrap(), 0);
    arrive(2, "Invoice");
    arrive(3, "Offsite plan");
    assert_eq!(
        again.poll().await.unwrap(),
        2,
        "two new ones over two delta pages"
    );
    let state =
        std::fs::read_to_string(data.join("integrations/microsoft-mail-watch.json")).unwrap();
    assert!(state.contains("$deltatoken="), "{state}");
    for tok in s.ms.get(|i| i.issued.clone()) {
        assert!(!state.contains(&tok));
    }
    // A delta link Graph no longer knows restarts from now, announcing nothing.
    let stale = state.replace("$deltatoken=T", "$deltatoken=X");
    std::fs::write(data.join("integrations/microsoft-mail-watch.json"), stale).unwrap();
    assert_eq!(again.poll().await.unwrap(), 0);
    arrive(4, "After the reset");
    assert_eq!(again.poll().await.unwrap(), 1);
}
