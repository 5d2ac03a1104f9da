//! The store against real SQLite files: failed commits are reported and kept, retention deletes
//! only what it should.

use std::time::Duration;

use rusqlite::Connection;
use serde_json::json;

use super::*;

fn create(id: &str, at: i64, data: serde_json::Value) -> Op {
    Op::CreateRun {
        id: id.into(),
        workflow_id: "wf".into(),
        version: 1,
        trigger: "manual".into(),
        trigger_data: data,
        status: RunStatus::Running,
        vars: json!({}),
        owner: "1:test".into(),
        parent_run: None,
        cursor: None,
        at,
    }
}

fn finish(id: &str, at: i64) -> Op {
    Op::Finish {
        id: id.into(),
        workflow_id: "wf".into(),
        status: RunStatus::Succeeded,
        error: None,
        result: None,
        at,
    }
}

fn action(run: &str, seq: u32) -> Op {
    Op::ActionStarted {
        run_id: run.into(),
        seq,
        action_id: "a".into(),
        path: "a".into(),
        kind: "log".into(),
        at: 0,
    }
}

/// Options that give up on a busy database quickly, so the tests do not wait seconds.
fn quick() -> StoreOptions {
    StoreOptions {
        busy_timeout: Duration::from_millis(20),
        busy_retries: 2,
        retry_interval: Duration::from_millis(10),
        ..StoreOptions::default()
    }
}

#[tokio::test]
async fn a_busy_database_fails_the_flush_and_loses_nothing_once_it_is_free() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("atlas.db");
    let store = Store::open_with(&path, quick()).unwrap();
    let blocker = Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();

    store.send(create("r1", 1, json!({})));
    let err = store.flush().await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Write { kept: 1, .. }) && err.to_string().contains("locked"),
        "{err}"
    );
    let health = store.health();
    assert!(!health.ok && health.pending_writes == 1, "{health:?}");
    assert!(health.summary().starts_with("failing: database is locked"));
    assert!(store.get_run("r1").unwrap().is_none());

    blocker.execute_batch("COMMIT").unwrap();
    store.send(finish("r1", 2));
    store.flush().await.unwrap();
    let run = store.get_run("r1").unwrap().expect("kept write committed");
    assert_eq!(run.status, RunStatus::Succeeded);
    assert!(store.health().ok, "{:?}", store.health());
}

#[tokio::test]
async fn a_full_disk_fails_the_flush_and_loses_nothing_once_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("atlas.db");
    let mut wconn = open_conn(&path).unwrap();
    schema::migrate(&mut wconn).unwrap();
    // Space the test frees later: a filler row, then a database that may not grow.
    wconn
        .execute_batch(
            "CREATE TABLE filler (b BLOB); INSERT INTO filler VALUES (zeroblob(4000000));",
        )
        .unwrap();
    let pages: i64 = wconn
        .pragma_query_value(None, "page_count", |r| r.get(0))
        .unwrap();
    wconn.pragma_update(None, "max_page_count", pages).unwrap();
    let reader = open_conn(&path).unwrap();
    let store = Store::start(wconn, reader, &path, quick());

    // Each run is larger than a page, so even the first alone needs pages the file may not add
    // (a smaller one fits in the table's empty root page and commits if the writer takes it
    // before the rest are sent, as it did on a CI machine).
    let big = json!({ "text": "x".repeat(10_000) });
    for i in 0..50 {
        store.send(create(&format!("r{i:02}"), i, big.clone()));
    }
    let err = store.flush().await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Write { kept: 50, .. }) && err.to_string().contains("full"),
        "{err}"
    );
    assert!(!store.health().ok);
    assert!(store.list_runs(None, 100).unwrap().is_empty());

    open_conn(&path)
        .unwrap()
        .execute_batch("DELETE FROM filler")
        .unwrap();
    store.flush().await.unwrap();
    assert_eq!(store.list_runs(None, 100).unwrap().len(), 50);
    assert!(store.health().ok);
}

#[tokio::test]
async fn a_write_the_database_refuses_is_reported_not_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("atlas.db")).unwrap();
    store.send(create("same", 1, json!({})));
    store.send(create("same", 2, json!({})));
    store.send(create("other", 3, json!({})));
    let err = store.flush().await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Refused { count: 1, .. })
            && err.to_string().contains("create run"),
        "{err}"
    );
    // The rest of the batch is committed; the next flush has nothing to report.
    assert!(store.get_run("other").unwrap().is_some());
    store.flush().await.unwrap();
    assert_eq!(store.health().refused_writes, 1);
}

#[tokio::test]
async fn writes_past_max_pending_while_failing_are_counted_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("atlas.db");
    let store = Store::open_with(
        &path,
        StoreOptions {
            max_pending: 3,
            ..quick()
        },
    )
    .unwrap();
    let blocker = Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    for i in 0..5 {
        store.send(create(&format!("r{i}"), i, json!({})));
    }
    assert!(store.flush().await.is_err());
    assert_eq!(store.health().lost_writes, 2);
    blocker.execute_batch("COMMIT").unwrap();
    let err = store.flush().await.unwrap_err();
    assert!(matches!(err, StoreError::Lost { count: 2 }), "{err}");
    store.flush().await.unwrap();
    let ids: Vec<String> = store
        .list_runs(None, 10)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["r2", "r1", "r0"]);
}

#[tokio::test]
async fn a_tiny_queue_blocks_senders_but_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(
        &dir.path().join("atlas.db"),
        StoreOptions {
            queue: 1,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    for i in 0..500 {
        store.send(create(&format!("r{i:03}"), i, json!({})));
    }
    store.flush().await.unwrap();
    assert_eq!(store.list_runs(None, 1000).unwrap().len(), 500);
}

#[tokio::test]
async fn prune_deletes_old_finished_runs_and_their_actions_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("atlas.db")).unwrap();
    // r0..r4 finished at times 0..4 with two actions each; r5 (oldest of all) still running.
    for i in 0..5 {
        let id = format!("r{i}");
        store.send(create(&id, 100 + i, json!({})));
        store.send(action(&id, 0));
        store.send(action(&id, 1));
        store.send(finish(&id, 100 + i));
    }
    store.send(create("r5", 1, json!({})));
    store.send(action("r5", 0));
    let nothing = store.prune(Retention::default()).await.unwrap();
    assert_eq!(nothing, Pruned::default());

    let old = store
        .prune(Retention {
            before_ms: Some(102),
            keep: None,
        })
        .await
        .unwrap();
    assert_eq!(
        old,
        Pruned {
            runs: 2,
            actions: 4,
            deliveries: 0
        }
    );
    let over = store
        .prune(Retention {
            before_ms: None,
            keep: Some(2),
        })
        .await
        .unwrap();
    // Newest two are r4 and r3; r2 goes; r5 is running and stays whatever its age.
    assert_eq!(
        over,
        Pruned {
            runs: 1,
            actions: 2,
            deliveries: 0
        }
    );
    let mut ids: Vec<String> = store
        .list_runs(None, 10)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    ids.sort();
    assert_eq!(ids, ["r3", "r4", "r5"]);
    assert_eq!(store.run_actions("r5").unwrap().len(), 1);
    assert_eq!(
        store.stats().unwrap()[0].runs,
        5,
        "counters are not history"
    );
}

fn delivery(id: Option<&str>, accepted: bool, at: i64) -> Op {
    Op::Delivery(crate::store::Delivery {
        hook: "gh".into(),
        workflow_id: Some("wf".into()),
        delivery_id: id.map(str::to_owned),
        accepted,
        status: if accepted { 202 } else { 401 },
        reason: (!accepted).then(|| "bad signature".into()),
        run_id: None,
        at,
    })
}

#[tokio::test]
async fn prune_ages_out_deliveries_and_caps_refused_ones_keeping_recent_replay_ids() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("atlas.db")).unwrap();
    store.send(delivery(Some("old"), true, 10));
    store.send(delivery(Some("new"), true, 1_000));
    store.send(delivery(None, false, 10));
    let n = super::retention::REFUSED_DELIVERIES_KEPT as usize;
    for _ in 0..n + 5 {
        store.send(delivery(None, false, 1_000));
    }
    let p = store
        .prune(Retention {
            before_ms: Some(500),
            keep: None,
        })
        .await
        .unwrap();
    // The old accepted and old refused rows by age, then the 5 refused over the cap.
    assert_eq!(p.deliveries, 2 + 5, "{p:?}");
    assert!(!store.delivery_accepted("gh", "old").unwrap());
    assert!(
        store.delivery_accepted("gh", "new").unwrap(),
        "a recent id still refuses its replay"
    );
    let left = store.deliveries(100_000).unwrap();
    assert_eq!(left.len(), n + 1);
    assert_eq!(left.iter().filter(|d| !d.accepted).count(), n);
}
