//! Schedules against a real engine and database: a due schedule fires once; missed runs are caught
//! up once with `run_once` and not at all with `skip`.

use std::time::Duration;

use atlas::store::Op;
use atlas::triggers::Scheduler;
use chrono::{Timelike, Utc};
use tokio_util::sync::CancellationToken;

use crate::util::{TestEngine, engine_with, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_due_in_a_few_seconds_fires_once_and_speaks() {
    let due = Utc::now() + chrono::TimeDelta::seconds(2);
    let cron = format!("{} {} {} * * *", due.second(), due.minute(), due.hour());
    let t = engine_with(&[&format!(
        "id: soon\ntriggers: [{{type: schedule, cron: '{cron}', timezone: UTC}}]\nactions:\n  - {{id: say, type: speak, config: {{text: 'Your tea is ready.'}}}}\n"
    )]);
    let scheduler = Scheduler::new(t.engine.clone(), false);
    assert_eq!(scheduler.upcoming(1)[0].workflow_id, "soon");
    let stop = CancellationToken::new();
    let task = tokio::spawn(scheduler.run(stop.clone()));
    let store = t.engine.store().clone();
    eventually("the scheduled run", || {
        !store.list_runs(Some("soon"), 5).unwrap().is_empty()
    })
    .await;
    // Well past the due second: still exactly one run.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.cancel();
    task.await.unwrap();
    t.engine.store().flush().await.unwrap();
    let runs = t.engine.store().list_runs(Some("soon"), 5).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].trigger, "schedule");
    assert_eq!(runs[0].trigger_data["catch_up"], false);
    let scheduled = chrono::DateTime::parse_from_rfc3339(
        runs[0].trigger_data["scheduled_for"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(scheduled.timestamp(), due.timestamp());
    assert_eq!(t.speaker.said(), ["Your tea is ready."]);
}

/// `catchup` (`missed: run_once`) ran once as a catch-up; `skipper` (`missed: skip`) never ran.
async fn assert_caught_up_once(t: &TestEngine) {
    t.engine.store().flush().await.unwrap();
    let runs = t.engine.store().list_runs(Some("catchup"), 10).unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].trigger_data["catch_up"], true);
    let skipped = t.engine.store().list_runs(Some("skipper"), 10).unwrap();
    assert!(skipped.is_empty(), "missed: skip ran: {skipped:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_runs_are_caught_up_once_with_run_once_and_not_with_skip() {
    let t = engine_with(&[
        "id: catchup\ntriggers: [{type: schedule, cron: '*/10 * * * *', missed: run_once}]\nactions:\n  - {id: a, type: log, config: {message: x}}\n",
        "id: skipper\ntriggers: [{type: schedule, cron: '*/10 * * * *', missed: skip}]\nactions:\n  - {id: a, type: log, config: {message: x}}\n",
        "id: fresh\ntriggers: [{type: schedule, cron: '*/10 * * * *'}]\nactions:\n  - {id: a, type: log, config: {message: x}}\n",
    ]);
    // Atlas last saw these schedules an hour ago: six due times were missed.
    let an_hour_ago = Utc::now().timestamp_millis() - 3_600_000;
    for wf in ["catchup", "skipper"] {
        t.engine.store().send(Op::ScheduleSeen {
            workflow_id: wf.into(),
            trigger: 0,
            at: an_hour_ago,
        });
    }
    t.engine.store().flush().await.unwrap();
    let scheduler = Scheduler::new(t.engine.clone(), false);
    let fired = scheduler.catch_up(Utc::now());
    assert_eq!(
        fired,
        ["catchup"],
        "one catch-up run; none for skip; none for a schedule never seen"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_caught_up_once(&t).await;
    // A second start right after has nothing to catch up.
    assert!(scheduler.catch_up(Utc::now()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_wake_from_sleep_missed_runs_are_caught_up_once_or_skipped() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};

    let t = engine_with(&[
        "id: catchup\ntriggers: [{type: schedule, cron: '*/10 * * * *', missed: run_once}]\nactions:\n  - {id: a, type: log, config: {message: x}}\n",
        "id: skipper\ntriggers: [{type: schedule, cron: '*/10 * * * *', missed: skip}]\nactions:\n  - {id: a, type: log, config: {message: x}}\n",
    ]);
    // The machine "sleeps": the wall clock jumps an hour ahead while the monotonic clock (what
    // the scheduler's nap is measured in) moves only seconds, as after a suspend.
    let offset_ms = Arc::new(AtomicI64::new(0));
    let clock = {
        let offset_ms = offset_ms.clone();
        Arc::new(move || {
            Utc::now() + chrono::TimeDelta::milliseconds(offset_ms.load(Ordering::SeqCst))
        })
    };
    let scheduler = Scheduler::with_clock(t.engine.clone(), false, clock);
    let stop = CancellationToken::new();
    let task = tokio::spawn(scheduler.run(stop.clone()));
    // At start both are seen for the first time: nothing to catch up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    t.engine.store().flush().await.unwrap();
    assert!(t.engine.store().list_runs(None, 10).unwrap().is_empty());
    offset_ms.store(3_600_000, Ordering::SeqCst);
    let store = t.engine.store().clone();
    // The scheduler notices at the end of its current nap (at most MAX_NAP).
    let mut caught = false;
    for _ in 0..150 {
        caught = !store.list_runs(Some("catchup"), 5).unwrap().is_empty();
        if caught {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(caught, "no catch-up run after the wake");
    // Another nap: nothing more is caught up.
    tokio::time::sleep(atlas::triggers::schedule::MAX_NAP + Duration::from_secs(1)).await;
    stop.cancel();
    task.await.unwrap();
    assert_caught_up_once(&t).await;
}
