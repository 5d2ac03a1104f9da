//! The Outlook calendar and the day Atlas tells about, against the Graph fake: `calendarView`
//! in the user's zone with all-day events, next, create and free/busy; the meeting reminder;
//! the bundled briefing with Microsoft alone and beside Google; no token in the logs, files,
//! database, events or speech. Setup and sign-in are [`super::microsoft`]'s.

use atlas::actions::{Accounts, CalendarOp};
use chrono::TimeZone;
use serde_json::{Value, json};

use super::microsoft::{Logs, Setup, connect, setup};

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
    // The logs were written (which lines depends on what other tests' threads cached of
    // tracing's callsites; the binary's own logs are searched in `connect`'s tests).
    assert!(!logged.is_empty(), "nothing was logged");
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
