//! `event` triggers end to end: a real engine over a real SQLite file, the dispatcher, the
//! notify watcher on a real temp folder, and real D-Bus signals on a private session bus.

use std::time::Duration;

use atlas::store::{RunRecord, RunStatus};
use atlas::triggers::events::files;
use atlas::triggers::events::system::{self, Buses};
use atlas::triggers::{Event, EventHub, EventTriggers};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::test_dbus::SessionBus;
use crate::util::{TestEngine, engine_with};

/// Runs of `workflow` in the store (flushed first), oldest first.
async fn runs(t: &TestEngine, workflow: &str) -> Vec<RunRecord> {
    t.engine.store().flush().await.expect("flush");
    let mut r = t
        .engine
        .store()
        .list_runs(Some(workflow), 100)
        .expect("list");
    r.reverse();
    r
}

/// Waits (at most 10 s) until `workflow` has `n` finished runs, and returns them.
async fn finished(t: &TestEngine, workflow: &str, n: usize) -> Vec<RunRecord> {
    for _ in 0..100 {
        let r = runs(t, workflow).await;
        if r.iter().filter(|r| r.status != RunStatus::Running).count() >= n
            && t.engine.active_runs().is_empty()
        {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{workflow} did not reach {n} finished runs in 10 s");
}

fn start(t: &TestEngine) -> (EventTriggers, CancellationToken) {
    start_bounded(t, 120)
}

fn start_bounded(t: &TestEngine, per_minute: usize) -> (EventTriggers, CancellationToken) {
    let stop = CancellationToken::new();
    let triggers = EventTriggers::start(
        t.engine.clone(),
        EventHub::default(),
        per_minute,
        stop.clone(),
    );
    (triggers, stop)
}

const A: &str = "id: a\ntriggers: [{type: manual}]\nactions:\n  - {id: out, type: set, config: {values: {answer: 42}}}\n";

#[tokio::test]
async fn a_finished_run_chains_into_another_workflow_with_its_data() {
    let t = engine_with(&[
        A,
        "id: b\ntriggers:\n  - type: event\n    event: run.finished\n    filter: data.workflow_id == 'a' and data.status == 'succeeded'\nactions:\n  - {id: got, type: log, config: {message: \"{{ trigger.event }} of {{ trigger.data.workflow_id }}: {{ trigger.data.result.answer }} (depth {{ trigger.depth }})\"}}\n",
    ]);
    let (_triggers, _stop) = start(&t);
    t.run("a").await;
    let b = finished(&t, "b", 1).await;
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!(b[0].status, RunStatus::Succeeded, "{:?}", b[0].error);
    assert_eq!(b[0].trigger, "event");
    assert_eq!(
        b[0].result,
        Some(json!({"message": "run.finished of a: 42 (depth 1)"}))
    );
    assert_eq!(b[0].trigger_data["chain"], json!(["a"]));
}

#[tokio::test]
async fn a_filter_that_does_not_match_starts_nothing() {
    let t = engine_with(&[
        A,
        "id: b\ntriggers:\n  - {type: event, event: run.finished, filter: \"data.workflow_id == 'other'\"}\n  - {type: event, event: run.failed}\nactions:\n  - {id: x, type: log, config: {message: x}}\n",
    ]);
    let (triggers, _stop) = start(&t);
    t.run("a").await;
    // A marker run after a's: once the dispatcher has handled the marker's end it has long
    // handled a's (one task, in bus order), so "nothing" is known, not guessed.
    let marker = "id: marker\ntriggers: [{type: manual}]\nactions:\n  - {id: x, type: log, config: {message: x}}\n";
    let mut all: Vec<_> = t.engine.workflows().values().cloned().collect();
    all.push(std::sync::Arc::new(
        atlas::workflow::load_str(marker, std::path::Path::new("m.yaml")).unwrap(),
    ));
    t.engine.set_workflows(all);
    t.run("marker").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(runs(&t, "b").await.is_empty(), "the filter was false");
    assert!(triggers.refusals().is_empty(), "{:?}", triggers.refusals());
}

#[tokio::test]
async fn a_self_loop_is_stopped_by_the_guard_with_a_recorded_reason() {
    let t = engine_with(&[
        "id: a\ntriggers:\n  - {type: manual}\n  - {type: event, event: run.finished, filter: \"data.workflow_id == 'a'\"}\nactions:\n  - {id: x, type: log, config: {message: x}}\n",
        // b -> c -> b with allow_loop: bounded by the depth, not by membership.
        "id: b\ntriggers:\n  - {type: manual}\n  - {type: event, event: run.finished, filter: \"data.workflow_id == 'c'\", allow_loop: true}\nactions:\n  - {id: x, type: log, config: {message: x}}\n",
        "id: c\ntriggers:\n  - {type: event, event: run.finished, filter: \"data.workflow_id == 'b'\", allow_loop: true}\nactions:\n  - {id: x, type: log, config: {message: x}}\n",
    ]);
    let (triggers, _stop) = start(&t);
    t.run("a").await;
    let mut refused = Vec::new();
    for _ in 0..100 {
        refused = triggers.refusals();
        if !refused.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(runs(&t, "a").await.len(), 1, "a ran once: by hand");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].workflow_id, "a");
    assert_eq!(refused[0].chain, vec!["a".to_owned()]);
    assert!(
        refused[0].reason.contains("`a` is already in"),
        "{refused:?}"
    );

    // The opted-in ping-pong runs until the chain is 8 deep, then is refused.
    t.run("b").await;
    let mut deep = None;
    for _ in 0..100 {
        deep = triggers
            .refusals()
            .into_iter()
            .find(|r| r.reason.contains("runs deep"));
        if deep.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deep = deep.expect("the depth bound refused a start");
    assert_eq!(deep.chain.len(), 8, "{deep:?}");
    let b = finished(&t, "b", 4).await;
    let c = finished(&t, "c", 4).await;
    // b by hand, then c, b, c, b, c, b, c: eight runs, the ninth refused.
    assert_eq!((b.len(), c.len()), (4, 4), "{b:?} {c:?}");
}

#[tokio::test]
async fn an_integration_event_published_through_the_hub_starts_a_run() {
    let t = engine_with(&[
        "id: mail\ntriggers:\n  - {type: event, event: mail.new, filter: \"'invoice' in data.subject\"}\nactions:\n  - {id: x, type: log, config: {message: \"{{ trigger.source }}: {{ trigger.data.subject }}\"}}\n",
    ]);
    let (triggers, _stop) = start(&t);
    let hub = triggers.hub().clone();
    hub.publish(Event::new(
        "gmail",
        "mail.new",
        json!({"subject": "lunch?", "from": "x@example.com"}),
    ));
    hub.publish(Event::new(
        "gmail",
        "mail.new",
        json!({"subject": "invoice 7", "from": "y@example.com"}),
    ));
    let r = finished(&t, "mail", 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r2 = runs(&t, "mail").await;
    assert_eq!(r2.len(), 1, "only the matching mail started a run: {r:?}");
    assert_eq!(r2[0].result, Some(json!({"message": "gmail: invoice 7"})));
}

#[tokio::test]
async fn a_file_created_in_the_watched_folder_starts_a_run_and_one_outside_does_not() {
    let t = engine_with(&[
        "id: inbox\ntriggers:\n  - {type: event, event: file.created}\nactions:\n  - {id: x, type: log, config: {message: \"{{ trigger.data.name }}\"}}\n",
    ]);
    let (triggers, stop) = start(&t);
    let watched = t.dir.path().join("watched");
    let outside = t.dir.path().join("outside");
    std::fs::create_dir_all(&watched).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    files::watch(
        std::slice::from_ref(&watched),
        Duration::from_millis(100),
        triggers.hub().clone(),
        stop.clone(),
    )
    .expect("watch");
    std::fs::write(outside.join("other.txt"), "no").unwrap();
    std::fs::write(watched.join("report.txt"), "part 1").unwrap();
    std::fs::write(watched.join("report.txt"), "part 1 and 2").unwrap();
    let r = finished(&t, "inbox", 1).await;
    // Past the debounce again: a second event would have started a second run by now.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let r = if r.len() == 1 {
        runs(&t, "inbox").await
    } else {
        r
    };
    assert_eq!(r.len(), 1, "one debounced event, none from outside: {r:?}");
    assert_eq!(r[0].result, Some(json!({"message": "report.txt"})));
    assert_eq!(r[0].trigger_data["source"], "files");
}

#[tokio::test]
async fn a_screen_lock_signal_on_a_private_session_bus_starts_a_run() {
    let Some(bus) = SessionBus::start() else {
        return;
    };
    let t = engine_with(&[
        "id: locked\ntriggers:\n  - {type: event, event: session.locked}\nactions:\n  - {id: x, type: log, config: {message: \"{{ trigger.event }} {{ trigger.data.signal }}\"}}\n",
    ]);
    let (triggers, stop) = start(&t);
    let buses = Buses {
        session: Some(bus.address().to_owned()),
        // The same private bus stands for the system bus: logind and NetworkManager are absent.
        system: Some(bus.address().to_owned()),
    };
    tokio::time::timeout(
        Duration::from_secs(10),
        system::listen(buses, triggers.hub().clone(), stop.clone()),
    )
    .await
    .expect("listening is bounded");
    let sources = triggers.hub().sources();
    assert!(sources["system.session"].starts_with("on"), "{sources:?}");
    for value in ["boolean:false", "boolean:true"] {
        let sent = bus
            .cmd("dbus-send")
            .args([
                "--session",
                "--type=signal",
                "/org/freedesktop/ScreenSaver",
                "org.freedesktop.ScreenSaver.ActiveChanged",
                value,
            ])
            .status()
            .expect("dbus-send");
        assert!(sent.success());
    }
    let r = finished(&t, "locked", 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = if r.len() == 1 {
        runs(&t, "locked").await
    } else {
        r
    };
    assert_eq!(r.len(), 1, "unlock starts nothing here: {r:?}");
    assert_eq!(
        r[0].result,
        Some(json!({"message": "session.locked org.freedesktop.ScreenSaver.ActiveChanged"}))
    );
}

#[tokio::test]
async fn a_workflow_writing_into_the_folder_it_watches_is_stopped_by_the_rate_bound() {
    // Each run writes a new file where the watcher looks: a loop with no causation chain.
    let t = engine_with(&[
        "id: echo\ntriggers:\n  - {type: event, event: file.created}\nactions:\n  - {id: w, type: file, config: {op: write, path: 'x{{ trigger.data.name }}', content: again}}\n",
    ]);
    let (triggers, stop) = start_bounded(&t, 5);
    files::watch(
        &[t.files()],
        Duration::from_millis(50),
        triggers.hub().clone(),
        stop.clone(),
    )
    .expect("watch");
    std::fs::write(t.files().join("seed.txt"), "go").unwrap();
    let r = finished(&t, "echo", 5).await;
    // Well past the debounce: without the bound the chain would have gone on.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = if r.len() == 5 {
        runs(&t, "echo").await
    } else {
        r
    };
    assert_eq!(r.len(), 5, "{r:?}");
    let refused = triggers.refusals();
    assert!(!refused.is_empty(), "the sixth start was not refused");
    assert!(
        refused[0].reason.contains("max_starts_per_minute"),
        "{refused:?}"
    );
    assert_eq!(refused[0].workflow_id, "echo");
    stop.cancel();
}

#[tokio::test]
async fn a_file_moved_in_is_created_one_moved_out_is_removed_and_a_chmod_is_nothing() {
    let t = engine_with(&[
        "id: seen\ntriggers:\n  - {type: event, event: file.created}\n  - {type: event, event: file.removed}\n  - {type: event, event: file.modified}\nconcurrency: {mode: parallel, max: 10}\nactions:\n  - {id: x, type: log, config: {message: \"{{ trigger.event }} {{ trigger.data.name }}\"}}\n",
    ]);
    let (triggers, stop) = start(&t);
    let watched = t.dir.path().join("inbox");
    let outside = t.dir.path().join("elsewhere");
    std::fs::create_dir_all(&watched).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("report.pdf"), "pdf").unwrap();
    std::fs::write(watched.join("old.txt"), "old").unwrap();
    files::watch(
        std::slice::from_ref(&watched),
        Duration::from_millis(100),
        triggers.hub().clone(),
        stop.clone(),
    )
    .expect("watch");
    // A download finishing: moved in from outside.
    std::fs::rename(outside.join("report.pdf"), watched.join("report.pdf")).unwrap();
    // Moved out of the folder.
    std::fs::rename(watched.join("old.txt"), outside.join("old.txt")).unwrap();
    let r = finished(&t, "seen", 2).await;
    // A permissions change alone: nothing, even past the debounce.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        watched.join("report.pdf"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let r = if r.len() == 2 {
        runs(&t, "seen").await
    } else {
        r
    };
    let mut said: Vec<String> = r
        .iter()
        .map(|r| {
            r.result.as_ref().unwrap()["message"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    said.sort();
    assert_eq!(
        said,
        ["file.created report.pdf", "file.removed old.txt"],
        "{r:?}"
    );
    stop.cancel();
}
