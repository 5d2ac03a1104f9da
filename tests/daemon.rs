//! The daemon in-process, through the library's `Daemon::start` and `Daemon::run`, as the control
//! API will hold it: start-up facts, one daemon per data folder, runs through its engine, and a
//! shutdown future that stops it cleanly.

use std::path::Path;
use std::time::Duration;

use atlas::config::{AgentConfig, BackendChoice, Config, Paths, SpeakerConfig, VoiceConfig};
use atlas::engine::RunRequest;
use atlas::runtime::{Daemon, DaemonError};
use atlas::store::{RunStatus, Store};
use serde_json::Value;

/// A config on `dir` only: its own workflows, no bundled ones, silent speech, no tray, and the
/// voice on a model file that is not there (so the daemon says voice is off, whatever is
/// installed on this machine).
fn config(dir: &Path) -> (Config, Paths) {
    let config = Config {
        bundled_workflows: Some(dir.join("none")),
        speech: SpeakerConfig {
            backend: BackendChoice::None,
            ..SpeakerConfig::default()
        },
        voice: VoiceConfig {
            model: Some(dir.join("no-model.bin").display().to_string()),
            ..VoiceConfig::default()
        },
        agent: AgentConfig {
            tray: false,
            ..AgentConfig::default()
        },
        ..Config::default()
    };
    let paths = Paths {
        config_file: dir.join("config.toml"),
        data_dir: dir.join("data"),
        user_workflows: dir.join("wf"),
    };
    (config, paths)
}

fn status(data: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(data.join("status.json")).ok()?).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_process_daemon_runs_workflows_and_its_shutdown_future_stops_it_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("wf")).unwrap();
    std::fs::write(
        dir.path().join("wf/hello.yaml"),
        "id: hello\ntriggers: [{type: manual}]\nactions:\n  - {id: greet, type: set, config: {values: {text: 'hello {{ 6 * 7 }}'}}}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("wf/slow.yaml"),
        "id: slow\ntriggers: [{type: manual}]\nactions:\n  - {id: wait, type: delay, config: {duration: 60s}}\n",
    )
    .unwrap();
    let (cfg, paths) = config(dir.path());
    if std::env::var_os("ATLAS_MODEL").is_some() {
        // ATLAS_MODEL outranks the config file (as it does for users); the voice facts below
        // need the config's missing model.
        eprintln!("ATLAS_MODEL is set: the voice-is-off fact is not checked");
    }
    let data = paths.data_dir.clone();
    let daemon = Daemon::start(cfg.clone(), paths.clone()).await.unwrap();

    let started = daemon.started().clone();
    assert_eq!(started.workflows, 2, "{started:?}");
    assert_eq!((started.resumed, started.interrupted), (0, 0));
    assert_eq!(started.database, data.join("atlas.db"));
    assert_eq!(
        started.headless.is_some(),
        atlas::desktop::display_problem().is_some()
    );
    if std::env::var_os("ATLAS_MODEL").is_none() {
        assert!(
            started
                .problems
                .iter()
                .any(|p| p.starts_with("voice is off") && p.contains("no-model.bin")),
            "{:?}",
            started.problems
        );
    }
    crate::util::within(
        "the status file's idle state",
        Duration::from_secs(10),
        || status(&data).is_some_and(|s| s["state"] == "idle"),
    )
    .await;

    // One daemon per data folder: a second start is refused and names the first.
    match Daemon::start(cfg.clone(), paths.clone()).await {
        Err(DaemonError::Lock(e)) => assert!(e.to_string().contains("already running"), "{e}"),
        Err(e) => panic!("a second daemon failed for another reason: {e}"),
        Ok(_) => panic!("a second daemon started on the same data folder"),
    }

    // Runs go through its engine and are recorded in its database.
    let out = daemon
        .engine()
        .trigger(RunRequest::manual("hello"))
        .unwrap()
        .wait()
        .await;
    assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.error);
    assert_eq!(out.outputs["greet"]["text"], "hello 42");

    // The shutdown future ends it: the run in flight is recorded cancelled, the status file goes.
    let slow = daemon.engine().trigger(RunRequest::manual("slow")).unwrap();
    let engine = daemon.engine().clone();
    crate::util::within("the slow run to start", Duration::from_secs(10), || {
        engine
            .store()
            .get_run(&slow.id)
            .ok()
            .flatten()
            .is_some_and(|r| r.status == RunStatus::Running)
    })
    .await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(daemon.run(async {
        let _ = stopped.await;
    }));
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("the daemon stops within 30 s of its shutdown future")
        .unwrap();
    let slow = tokio::time::timeout(Duration::from_secs(5), slow.wait())
        .await
        .unwrap();
    assert_eq!(slow.status, RunStatus::Cancelled, "{:?}", slow.error);
    assert!(
        slow.error
            .as_deref()
            .is_some_and(|e| e.contains("the daemon was stopped")),
        "{:?}",
        slow.error
    );
    assert!(status(&data).is_none(), "the status file is removed");
    drop(engine);
    let store = Store::open(&data.join("atlas.db")).unwrap();
    let runs = store.list_runs(None, 10).unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(runs.iter().all(|r| r.status.is_final()), "{runs:?}");

    // The lock went with it: the next daemon starts, and finds nothing to recover.
    let again = Daemon::start(cfg, paths).await.unwrap();
    assert_eq!(
        (again.started().resumed, again.started().interrupted),
        (0, 0)
    );
    again.run(async {}).await;
}
