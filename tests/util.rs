//! Helpers shared by the integration tests: a real engine over a real SQLite file in a temp dir,
//! and real HTTP servers on 127.0.0.1.

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use atlas::actions::Services;
use atlas::config::LlmDefaults;
use atlas::engine::{Engine, RunOutcome, RunRequest};
use atlas::secrets::MemorySecrets;
use atlas::store::{RunStatus, Store};
use atlas::tts::RecordingSpeaker;
use atlas::workflow::load_str;

/// An engine with its temp dir, speaker and secrets.
pub struct TestEngine {
    pub engine: Engine,
    pub dir: tempfile::TempDir,
    pub speaker: Arc<RecordingSpeaker>,
    pub secrets: Arc<MemorySecrets>,
}

impl TestEngine {
    /// The file root of the `file` action.
    pub fn files(&self) -> PathBuf {
        self.dir.path().join("files")
    }

    /// Runs a workflow to its end with variables.
    pub async fn run_with(&self, id: &str, vars: &[(&str, serde_json::Value)]) -> Arc<RunOutcome> {
        let mut req = RunRequest::manual(id);
        for (k, v) in vars {
            req.vars.insert((*k).to_owned(), v.clone());
        }
        let out = self.engine.run(req).await.expect("run admitted");
        self.engine.store().flush().await.expect("flush");
        out
    }

    /// Runs a workflow to its end.
    pub async fn run(&self, id: &str) -> Arc<RunOutcome> {
        self.run_with(id, &[]).await
    }
}

/// Builds an engine whose workflows are the given YAML texts (each must load).
pub fn engine_with(yamls: &[&str]) -> TestEngine {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("atlas.db")).expect("store");
    let speaker = Arc::new(RecordingSpeaker::default());
    let secrets = Arc::new(MemorySecrets::default());
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).expect("files dir");
    let services = Services {
        http: atlas::actions::HttpClient::default(),
        speaker: speaker.clone(),
        secrets: secrets.clone(),
        file_roots: vec![("files".into(), files)],
        env: [("ATLAS_TEST_ENV".to_owned(), "visible".to_owned())].into(),
        llm: LlmDefaults::default(),
        mcp_servers: Default::default(),
        accounts: None,
        questions: Default::default(),
    };
    let engine = Engine::new(store, services);
    let workflows = yamls.iter().map(|y| {
        Arc::new(
            load_str(y, Path::new("test.yaml"))
                .unwrap_or_else(|e| panic!("workflow does not load: {e:?}\n{y}")),
        )
    });
    engine.set_workflows(workflows);
    TestEngine {
        engine,
        dir,
        speaker,
        secrets,
    }
}

/// Serves `router` on 127.0.0.1 on a free port, for the rest of the test.
pub async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

/// Waits until `f` is true, polling every 100 ms, failing the test after `limit`.
pub async fn within(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let polls = limit.as_millis() / 100;
    for _ in 0..polls.max(1) {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

/// Waits (bounded) until `f` is true.
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    // A bound on something that must happen, not a speed check: generous, because two cores
    // running the whole suite (and a browser) can hold a task back for seconds.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// Asserts a run's status, printing its error otherwise.
pub fn assert_status(out: &Arc<RunOutcome>, status: RunStatus) {
    assert_eq!(
        out.status, status,
        "run ended {} with error {:?}",
        out.status, out.error
    );
}

/// The `atlas` binary built for these tests.
pub fn atlas_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_atlas"))
}

/// Runs `cmd` to its end, killed after `limit`.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let o = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out.read_to_end(&mut b);
        b
    });
    let e = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err.read_to_end(&mut b);
        b
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: o.join().unwrap(),
        stderr: e.join().unwrap(),
    }
}
