//! The Calendar client and the `calendar` action against the local fake Calendar (`fake_auth`:
//! `singleEvents`/`orderBy` checked as Google does, pages of two, all-day events by `date`):
//! today's events in local time with all-day ones marked, the next meeting, an event created from
//! voice-like slots, free/busy.

use atlas::integrations::calendar::Calendar;
use chrono::{Duration, Local, TimeZone};
use serde_json::json;

use super::oauth::{connect, setup};

/// A timed event at `hour:minute` local time, `day_offset` days from today, lasting 30 minutes.
fn at(id: &str, summary: &str, day_offset: i64, hour: u32, minute: u32) -> serde_json::Value {
    let day = Local::now().date_naive() + Duration::days(day_offset);
    let start = Local
        .from_local_datetime(&day.and_hms_opt(hour, minute, 0).unwrap())
        .earliest()
        .unwrap()
        .fixed_offset();
    let end = start + Duration::minutes(30);
    json!({"id": id, "status": "confirmed", "summary": summary,
        "start": {"dateTime": start.to_rfc3339()}, "end": {"dateTime": end.to_rfc3339()}})
}

fn all_day(id: &str, summary: &str, day_offset: i64) -> serde_json::Value {
    let day = Local::now().date_naive() + Duration::days(day_offset);
    let next = day + Duration::days(1);
    json!({"id": id, "status": "confirmed", "summary": summary,
        "start": {"date": day.to_string()}, "end": {"date": next.to_string()}})
}

fn fill(s: &super::oauth::Setup) {
    s.fake.set(|i| {
        i.calendar = vec![
            at("standup", "Standup", 0, 9, 30),
            all_day("holiday", "Company holiday", 0),
            at("lunch", "Lunch with Sam", 0, 12, 0),
            at("review", "Design review", 0, 16, 15),
            at("tomorrow", "Dentist", 1, 8, 0),
            json!({"id": "gone", "status": "cancelled", "start": {"dateTime": "2026-01-01T00:00:00Z"}, "end": {"dateTime": "2030-01-01T00:00:00Z"}}),
        ];
    });
}

#[tokio::test]
async fn today_lists_timed_and_all_day_events_in_local_time_across_pages() {
    let s = setup(10).await;
    connect(&s).await.unwrap();
    fill(&s);
    // The calendar account is another integration with the same client: connect it too.
    s.all
        .connect(
            atlas::integrations::Provider::Calendar,
            super::fake_auth::browse,
        )
        .await
        .unwrap();
    let cal = Calendar::new(&s.all);
    let today = cal.today(20).await.unwrap();
    let names: Vec<&str> = today.iter().map(|e| e.summary.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "Company holiday",
            "Standup",
            "Lunch with Sam",
            "Design review"
        ],
        "{today:?}"
    );
    assert!(today[0].all_day && today[0].time.is_empty());
    assert_eq!(today[1].time, "9:30 AM");
    assert_eq!(today[2].time, "12 PM");
    assert_eq!(today[3].time, "4:15 PM");
    let q = s.fake.get(|i| i.calendar_queries.clone());
    assert!(q.len() >= 2, "paged: {q:?}");
    assert_eq!(q[0]["singleEvents"], "true");
    assert_eq!(q[0]["orderBy"], "startTime");
    // RFC 3339 with the local offset, from local midnight.
    assert!(q[0]["timeMin"].contains("T00:00:00"), "{q:?}");
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(&q[0]["timeMin"])
            .unwrap()
            .offset(),
        Local::now().offset()
    );
}

#[tokio::test]
async fn the_calendar_action_gives_the_next_meeting_creates_from_slots_and_finds_busy_time() {
    let s = setup(10).await;
    s.all
        .connect(
            atlas::integrations::Provider::Calendar,
            super::fake_auth::browse,
        )
        .await
        .unwrap();
    s.fake.set(|i| {
        i.calendar = vec![
            all_day("holiday", "Company holiday", 0),
            {
                let start = Local::now().fixed_offset() - Duration::hours(2);
                json!({"id": "past", "status": "confirmed", "summary": "Already over",
                    "start": {"dateTime": start.to_rfc3339()},
                    "end": {"dateTime": (start + Duration::minutes(30)).to_rfc3339()}})
            },
            at("soon", "Planning", 1, 10, 0),
        ];
    });
    let next = Calendar::new(&s.all).next_meeting().await.unwrap().unwrap();
    assert_eq!(next.summary, "Planning");

    const FLOW: &str = r#"
id: add_event
triggers:
  - type: voice
    phrases: ["add {title} [to my calendar] {day} at {time}"]
  - type: manual
variables: {title: "", day: "", time: ""}
actions:
  - id: made
    type: calendar
    config: {op: create, title: "{{ vars.title }}", day: "{{ vars.day }}", time: "{{ vars.time }}", minutes: 45}
  - id: next
    type: calendar
    config: {op: next}
  - id: busy
    type: calendar
    config: {op: free_busy, hours: 48}
  - id: say
    type: speak
    config: {text: "Added {{ made.summary }} at {{ made.time }}. Next: {{ next.next.summary }}."}
"#;
    use std::sync::Arc;
    let speaker = Arc::new(atlas::tts::RecordingSpeaker::default());
    let services = atlas::actions::Services {
        http: atlas::actions::HttpClient::default(),
        speaker: speaker.clone(),
        secrets: Arc::new(atlas::secrets::MemorySecrets::default()),
        file_roots: Vec::new(),
        env: Default::default(),
        llm: Default::default(),
        mcp_servers: Default::default(),
        accounts: Some(s.all.clone()),
        questions: Default::default(),
    };
    let dir = tempfile::tempdir().unwrap();
    let engine = atlas::engine::Engine::new(
        atlas::store::Store::open(&dir.path().join("atlas.db")).unwrap(),
        services,
    );
    let wf = atlas::workflow::load_str(FLOW, std::path::Path::new("add.yaml")).unwrap();
    engine.set_workflows([Arc::new(wf)]);
    let mut req = atlas::engine::RunRequest::manual("add_event");
    req.vars.insert("title".into(), json!("lunch with Sam"));
    req.vars.insert("day".into(), json!("tomorrow"));
    req.vars.insert("time".into(), json!("noon"));
    let out = engine.run(req).await.unwrap();
    assert_eq!(
        out.status,
        atlas::store::RunStatus::Succeeded,
        "{:?}",
        out.error
    );
    let created = s.fake.get(|i| i.created[0].clone());
    assert_eq!(created["summary"], "lunch with Sam");
    let start =
        chrono::DateTime::parse_from_rfc3339(created["start"]["dateTime"].as_str().unwrap())
            .unwrap();
    let end =
        chrono::DateTime::parse_from_rfc3339(created["end"]["dateTime"].as_str().unwrap()).unwrap();
    let tomorrow = Local::now().date_naive() + Duration::days(1);
    assert_eq!(
        start.with_timezone(&Local).naive_local(),
        tomorrow.and_hms_opt(12, 0, 0).unwrap()
    );
    assert_eq!(end - start, Duration::minutes(45));
    assert_eq!(
        speaker.said(),
        vec!["Added lunch with Sam at 12 PM. Next: Planning."]
    );
    let busy = out.outputs["busy"]["busy"].as_array().unwrap();
    assert_eq!(busy.len(), 2, "planning and the new lunch: {busy:?}");
    assert_eq!(out.outputs["busy"]["free"], false);

    // Bad slots are a clear failure, and nothing is created.
    let mut req = atlas::engine::RunRequest::manual("add_event");
    req.vars.insert("title".into(), json!("x"));
    req.vars.insert("day".into(), json!("someday"));
    req.vars.insert("time".into(), json!("noon"));
    let out = engine.run(req).await.unwrap();
    assert!(
        out.error.as_deref().unwrap().contains("is not a day"),
        "{:?}",
        out.error
    );
    assert_eq!(s.fake.get(|i| i.created.len()), 1);
}

#[tokio::test]
async fn meetings_are_announced_once_before_they_start_and_the_bundled_reminder_speaks() {
    use atlas::integrations::calendar_watch::CalendarWatch;
    use std::sync::Arc;
    let s = setup(10).await;
    s.all
        .connect(
            atlas::integrations::Provider::Calendar,
            super::fake_auth::browse,
        )
        .await
        .unwrap();
    let now = Local::now();
    let timed = |id: &str, summary: &str, minutes: i64| {
        let start = now.fixed_offset() + Duration::minutes(minutes);
        json!({"id": id, "status": "confirmed", "summary": summary, "location": "Room 4",
            "start": {"dateTime": start.to_rfc3339()},
            "end": {"dateTime": (start + Duration::minutes(30)).to_rfc3339()}})
    };
    s.fake.set(|i| {
        i.calendar = vec![
            timed("sync", "Team sync", 5),
            timed("later", "Retro", 45),
            all_day("holiday", "Company holiday", 0),
        ];
    });
    // The bundled meeting reminder, started by the event dispatcher.
    let speaker = Arc::new(atlas::tts::RecordingSpeaker::default());
    let services = atlas::actions::Services {
        http: atlas::actions::HttpClient::default(),
        speaker: speaker.clone(),
        secrets: Arc::new(atlas::secrets::MemorySecrets::default()),
        file_roots: Vec::new(),
        env: Default::default(),
        llm: Default::default(),
        mcp_servers: Default::default(),
        accounts: Some(s.all.clone()),
        questions: Default::default(),
    };
    let dir = tempfile::tempdir().unwrap();
    let engine = atlas::engine::Engine::new(
        atlas::store::Store::open(&dir.path().join("atlas.db")).unwrap(),
        services,
    );
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/meeting-reminder.yaml"),
    )
    .unwrap();
    let wf =
        atlas::workflow::load_str(&text, std::path::Path::new("meeting-reminder.yaml")).unwrap();
    engine.set_workflows([Arc::new(wf)]);
    let stop = tokio_util::sync::CancellationToken::new();
    let _triggers =
        atlas::triggers::EventTriggers::start(engine.clone(), s.hub.clone(), 120, stop.clone());

    let data = s._dir.path();
    let watch = CalendarWatch::new(s.all.clone(), s.hub.clone(), data, 10);
    assert_eq!(watch.poll_at(now).await.unwrap(), 1);
    crate::util::within(
        "the reminder to be spoken",
        std::time::Duration::from_secs(10),
        || !speaker.said().is_empty(),
    )
    .await;
    assert_eq!(
        speaker.said(),
        vec!["Team sync starts in 5 minutes, at Room 4."]
    );
    assert_eq!(watch.poll_at(now + Duration::minutes(2)).await.unwrap(), 0);
    // A restart announces nothing twice.
    let again = CalendarWatch::new(s.all.clone(), s.hub.clone(), data, 10);
    assert_eq!(again.poll_at(now + Duration::minutes(3)).await.unwrap(), 0);
    // The retro comes into range later; a moved sync is announced at its new time.
    assert_eq!(again.poll_at(now + Duration::minutes(36)).await.unwrap(), 1);
    s.fake
        .set(|i| i.calendar[0] = timed("sync", "Team sync", 50));
    assert_eq!(again.poll_at(now + Duration::minutes(42)).await.unwrap(), 1);
    stop.cancel();
}
