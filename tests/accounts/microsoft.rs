//! Microsoft (Outlook mail and calendar through Graph) against the local fake of the identity
//! platform v2.0 and Graph ([`super::fake_microsoft`]): the public-client PKCE sign-in with a
//! tenant, refresh-token rotation across a restart, `invalid_grant` once, Graph's paging, plain
//! text bodies, send/reply/mark read, the delta watch across restarts, `calendarView` in the
//! user's zone, all-day events, create, free/busy, throttling with `Retry-After`, Graph's error
//! line; the bundled briefing with Microsoft alone and beside Google; and no token in the
//! logs, files, database, events or speech.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use atlas::actions::{Accounts, CalendarOp, MailOp};
use atlas::config::IntegrationsConfig;
use atlas::integrations::api::Request;
use atlas::integrations::microsoft::PROVIDER;
use atlas::integrations::outlook::NewMail;
use atlas::integrations::watch::Watch;
use atlas::integrations::{Announce, Integrations, Provider};
use atlas::secrets::{MemorySecrets, SecretStore};
use atlas::triggers::events::EventHub;
use chrono::TimeZone;
use serde_json::{Value, json};

use super::fake_auth::{FakeAuth, browse};
use super::fake_microsoft::FakeMicrosoft;

#[derive(Default)]
struct Counting(AtomicUsize);

/// A log sink.
#[derive(Clone, Default)]
struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

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

struct Setup {
    ms: FakeMicrosoft,
    google: Option<FakeAuth>,
    all: Arc<Integrations>,
    config: IntegrationsConfig,
    vault: Arc<MemorySecrets>,
    announce: Arc<Counting>,
    hub: EventHub,
    dir: tempfile::TempDir,
}

impl Setup {
    /// The integrations again over the same keyring and data dir: a restart.
    fn restart(&self) -> Arc<Integrations> {
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

async fn setup(with_google: bool) -> Setup {
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

async fn connect(s: &Setup) {
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

/// A timed event `minutes` from now, lasting half an hour, as the fake keeps it.
fn timed(
    id: &str,
    subject: &str,
    start: chrono::DateTime<chrono::FixedOffset>,
) -> super::fake_microsoft::FakeEvent {
    (
        id.into(),
        subject.into(),
        start,
        start + chrono::Duration::minutes(30),
        false,
    )
}

fn local_at(day: chrono::NaiveDate, h: u32, m: u32) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::Local
        .from_local_datetime(&day.and_hms_opt(h, m, 0).unwrap())
        .earliest()
        .unwrap()
        .fixed_offset()
}

#[tokio::test]
async fn the_outlook_calendar_answers_in_the_users_zone_with_all_day_next_create_and_free_busy() {
    let s = setup(false).await;
    connect(&s).await;
    let now = chrono::Local::now().fixed_offset();
    let today = chrono::Local::now().date_naive();
    let paris = chrono_tz::Europe::Paris;
    let midnight = |d: chrono::NaiveDate| {
        paris
            .from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap())
            .earliest()
            .unwrap()
            .fixed_offset()
    };
    s.ms.set(|i| {
        i.events = vec![
            (
                "h".into(),
                "Team offsite".into(),
                midnight(today),
                midnight(today.succ_opt().unwrap()),
                true,
            ),
            timed("soon", "Design review", now + chrono::Duration::minutes(20)),
            timed("later", "1:1 with Dana", now + chrono::Duration::days(2)),
        ];
    });
    let next = s.all.calendar(CalendarOp::Next).await.unwrap();
    assert_eq!(next["next"]["summary"], "Design review");
    assert_eq!(next["next"]["location"], "Teams");
    assert_eq!(next["next"]["account"], "microsoft");
    let start =
        chrono::DateTime::parse_from_rfc3339(next["next"]["start"].as_str().unwrap()).unwrap();
    assert_eq!(
        start.timestamp(),
        (now + chrono::Duration::minutes(20)).timestamp(),
        "a wall-clock time in Paris read back to the same instant"
    );
    assert_eq!(
        s.ms.get(|i| i.view_prefer[0].clone()),
        "outlook.timezone=\"Europe/Paris\""
    );
    let day = s
        .all
        .calendar(CalendarOp::Today { limit: 10 })
        .await
        .unwrap();
    let events = day["events"].as_array().unwrap();
    let offsite = events
        .iter()
        .find(|e| e["summary"] == "Team offsite")
        .expect("the all-day event");
    assert_eq!(offsite["all_day"], true);
    assert_eq!(offsite["start"], today.to_string());
    assert_ne!(
        day["first"]["summary"], "Team offsite",
        "an all-day event is no meeting"
    );
    // Create from voice slots: tomorrow at noon local, sent as a Paris wall-clock time.
    let made = s
        .all
        .calendar(CalendarOp::Create {
            title: "Lunch with Sam".into(),
            day: "tomorrow".into(),
            time: "noon".into(),
            minutes: 60,
            account: None,
        })
        .await
        .unwrap();
    assert_eq!(made["summary"], "Lunch with Sam");
    let body = s.ms.get(|i| i.created[0].clone());
    assert_eq!(body["start"]["timeZone"], "Europe/Paris");
    let noon = local_at(today.succ_opt().unwrap(), 12, 0);
    assert_eq!(
        body["start"]["dateTime"],
        noon.with_timezone(&paris)
            .naive_local()
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string()
    );
    let busy = s
        .all
        .calendar(CalendarOp::FreeBusy { hours: 8 })
        .await
        .unwrap();
    assert_eq!(busy["free"], false);
    let b =
        chrono::DateTime::parse_from_rfc3339(busy["busy"][0]["start"].as_str().unwrap()).unwrap();
    assert_eq!(
        b.timestamp(),
        (now + chrono::Duration::minutes(20)).timestamp()
    );
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

fn briefing_engine(s: &Setup) -> (atlas::engine::Engine, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let engine = super::gmail::bundled_engine(Some(s.all.clone()), dir.path());
    (engine, dir)
}

async fn brief(engine: &atlas::engine::Engine) -> Vec<String> {
    let mut req = atlas::engine::RunRequest::manual("morning_briefing");
    req.vars
        .insert("weather_api".into(), json!("http://127.0.0.1:9"));
    let out = engine.run(req).await.unwrap();
    assert_eq!(
        out.status,
        atlas::store::RunStatus::Succeeded,
        "{:?}",
        out.error
    );
    out.spoken.clone()
}

#[tokio::test]
async fn the_morning_briefing_reads_an_outlook_only_day() {
    let s = setup(false).await;
    connect(&s).await;
    let today = chrono::Local::now().date_naive();
    s.ms.set(|i| i.events = vec![timed("d", "Design review", local_at(today, 10, 0))]);
    let (engine, _db) = briefing_engine(&s);
    let spoken = brief(&engine).await;
    assert!(
        spoken.contains(
            &"You have 1 event today. The first meeting is Design review at 10 AM.".to_owned()
        ),
        "{spoken:?}"
    );
    assert!(
        spoken.contains(
            &"You have 2 unread emails, 1 important. From Dana Kim: Quarterly numbers. From Ravi Patel: Lunch on Friday?."
                .to_owned()
        ),
        "{spoken:?}"
    );
    assert_eq!(
        spoken.last().unwrap(),
        "That's your briefing. Have a good day."
    );
    // The same words a Gmail user hears: no provider named when there is one.
    assert!(
        !spoken
            .iter()
            .any(|l| l.contains("Gmail") || l.contains("Outlook"))
    );
    // Consent withdrawn: one sentence naming Outlook, and the briefing goes on.
    s.ms.revoke_grant();
    let spoken = brief(&engine).await;
    assert!(
        spoken.contains(&"Outlook needs you to sign in again, so I skipped your email.".to_owned()),
        "{spoken:?}"
    );
}

#[tokio::test]
async fn the_morning_briefing_merges_google_and_microsoft_and_says_where_each_is_from() {
    // Everything logged on this (the test's only) thread, at debug level, is kept to be searched.
    let logs = Logs::default();
    let _logging = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .finish(),
    );
    let s = setup(true).await;
    let mut seen = s.hub.subscribe();
    connect(&s).await;
    // A refresh (and its rotation) happens during the briefing.
    s.ms.expire_access();
    let today = chrono::Local::now().date_naive();
    let google = s.google.as_ref().unwrap();
    google.set(|i| {
        let start = local_at(today, 9, 30);
        i.calendar = vec![json!({"id": "s", "status": "confirmed", "summary": "Standup",
            "start": {"dateTime": start.to_rfc3339()}, "end": {"dateTime": (start + chrono::Duration::minutes(15)).to_rfc3339()}})];
    });
    s.ms.set(|i| i.events = vec![timed("d", "Design review", local_at(today, 10, 0))]);
    let (engine, _db) = briefing_engine(&s);
    let spoken = brief(&engine).await;
    assert!(
        spoken.contains(
            &"You have 2 events today. The first meeting is Standup at 9:30 AM (Google Calendar)."
                .to_owned()
        ),
        "{spoken:?}"
    );
    let mail = spoken
        .iter()
        .find(|l| l.contains("unread email"))
        .expect("the mail line");
    assert!(
        mail.starts_with("You have 4 unread emails (2 in Gmail, 2 in Outlook)"),
        "{mail}"
    );
    // Newest first across both: Outlook's two, then Gmail's newest.
    assert!(
        mail.contains("From Dana Kim in Outlook: Quarterly numbers. From Ravi Patel in Outlook: Lunch on Friday?. From CI Robot in Gmail:"),
        "{mail}"
    );
    // The digest counts both too; one account failing leaves the other's mail.
    s.ms.revoke_grant();
    let mut digest = atlas::engine::RunRequest::manual("email_digest");
    digest.vars.clear();
    let out = engine.run(digest).await.unwrap();
    assert!(
        out.spoken[0].starts_with("You have 2 unread emails (2 in Gmail)"),
        "{:?}",
        out.spoken
    );
    assert!(
        out.spoken[0].ends_with("I could not read Outlook."),
        "{:?}",
        out.spoken
    );

    // No token reached the database, the data dir, an event or what was said.
    let mut issued = s.ms.get(|i| i.issued.clone());
    issued.extend(google.get(|i| i.issued.clone()));
    assert!(issued.len() >= 6);
    let mut texts = Vec::new();
    for dir in [s.dir.path(), _db.path()] {
        let mut files = Vec::new();
        super::connect::files_under(dir, &mut files);
        for f in files {
            texts.push(String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned());
        }
    }
    texts.extend(spoken);
    texts.extend(out.spoken.clone());
    let runs = engine.store().list_runs(None, 50).unwrap();
    texts.push(format!("{runs:?}"));
    while let Ok(e) = seen.try_recv() {
        texts.push(format!("{e:?}"));
    }
    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        logged.contains("refreshing the access token") && logged.contains("connected"),
        "the logs were written: {logged}"
    );
    texts.push(logged);
    for tok in &issued {
        for t in &texts {
            assert!(!t.contains(tok.as_str()), "a token leaked");
        }
    }
}

#[tokio::test]
async fn outlook_meetings_are_announced_once_before_they_start() {
    use atlas::integrations::calendar_watch::CalendarWatch;
    let s = setup(false).await;
    connect(&s).await;
    let now = chrono::Local::now();
    s.ms.set(|i| {
        i.events = vec![
            timed(
                "m1",
                "Design review",
                now.fixed_offset() + chrono::Duration::minutes(5),
            ),
            timed(
                "m2",
                "Far away",
                now.fixed_offset() + chrono::Duration::hours(3),
            ),
        ]
    });
    let mut events = s.hub.subscribe();
    let watch = CalendarWatch::new(s.all.clone(), s.hub.clone(), s.dir.path(), 10);
    assert_eq!(watch.poll_at(now).await.unwrap(), 1);
    let e = events.recv().await.unwrap();
    assert_eq!(
        (e.kind.as_str(), e.source.as_str()),
        ("calendar.soon", "microsoft")
    );
    assert_eq!(e.data["summary"], "Design review");
    assert_eq!(e.data["minutes"], 5);
    assert_eq!(e.data["location"], "Teams");
    assert_eq!(e.data["via"], Value::Null, "one calendar: not named");
    // Once, across a restart too.
    assert_eq!(watch.poll_at(now).await.unwrap(), 0);
    let again = CalendarWatch::new(s.restart(), s.hub.clone(), s.dir.path(), 10);
    assert_eq!(again.poll_at(now).await.unwrap(), 0);
}
