//! Engine tests that need a hook only a test build has: an action that panics.

use std::path::Path;
use std::sync::Arc;

use super::{Engine, RunRequest};
use crate::actions::Services;
use crate::config::LlmDefaults;
use crate::secrets::MemorySecrets;
use crate::store::{RunStatus, Store};
use crate::tts::RecordingSpeaker;
use crate::workflow::load_str;

/// An action with this id panics when it runs (test builds only; see `executor::dispatch`).
pub(super) const PANICKING_ACTION: &str = "test_panics_here";

fn engine(yaml: &str) -> (Engine, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("atlas.db")).expect("store");
    let services = Services {
        http: crate::actions::HttpClient::default(),
        speaker: Arc::new(RecordingSpeaker::default()),
        secrets: Arc::new(MemorySecrets::default()),
        file_roots: Vec::new(),
        env: Default::default(),
        llm: LlmDefaults::default(),
        mcp_servers: Default::default(),
        accounts: None,
        questions: Default::default(),
    };
    let engine = Engine::new(store, services);
    let wf = load_str(yaml, Path::new("test.yaml")).expect("workflow loads");
    engine.set_workflows([Arc::new(wf)]);
    (engine, dir)
}

#[tokio::test]
async fn a_panicking_run_ends_failed_and_frees_its_slot() {
    let (engine, _dir) = engine(&format!(
        "id: boom\ntriggers: [{{type: manual}}]\nconcurrency: {{mode: single}}\nactions:\n  - {{id: {PANICKING_ACTION}, type: log, config: {{message: x}}}}\n"
    ));
    let out = engine
        .run(RunRequest::manual("boom"))
        .await
        .expect("admitted");
    assert_eq!(out.status, RunStatus::Failed);
    let error = out.error.as_deref().unwrap_or_default();
    assert!(error.contains("panicked"), "{error}");
    engine.store().flush().await.expect("flush");
    let row = engine
        .store()
        .get_run(&out.run_id)
        .expect("read")
        .expect("row");
    assert_eq!(row.status, RunStatus::Failed);
    assert!(row.error.unwrap_or_default().contains("panicked"));
    let actions = engine.store().run_actions(&out.run_id).expect("actions");
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert_eq!(
        actions[0].status, "failed",
        "the action in flight ends with its run"
    );
    assert!(
        actions[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("panicked"))
    );
    assert!(
        engine.active_runs().is_empty(),
        "the run left the active set"
    );
    // Its `single` slot was released: the next run is admitted (and panics the same way).
    let again = engine
        .run(RunRequest::manual("boom"))
        .await
        .expect("admitted again");
    assert_eq!(again.status, RunStatus::Failed);
}

#[tokio::test]
async fn waiting_for_a_first_action_ends_with_the_run_even_when_lag_lost_its_events() {
    let (engine, _dir) = engine(
        "id: quick\ntriggers: [{type: manual}]\nactions:\n  - {id: a, type: log, config: {message: x}}\n",
    );
    let mut events = engine.subscribe();
    let handle = engine
        .trigger(RunRequest::manual("quick"))
        .expect("admitted");
    handle.clone().wait().await;
    // More events than the bus holds: the run's ActionStarted and RunFinished are lost.
    for i in 0..3000 {
        engine.bus().publish(super::EngineEvent::RunPaused {
            run_id: format!("other{i}"),
        });
    }
    // The old loop waited here for a RunFinished that never came; the guard turns a hang into a
    // failure (it is not a timing assertion: the wait must end at once, the run being over).
    let started = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        super::first_action_started(&mut events, &handle),
    )
    .await
    .expect("the wait ended with the run");
    assert_eq!(started, None, "the start was lost with the flood");
}
