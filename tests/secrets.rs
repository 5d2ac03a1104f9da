//! Secrets never leave the secret store: a secret used by every action kind, read from
//! `ATLAS_SECRET_*` by the real `atlas` binary, against real HTTP servers on 127.0.0.1 that echo
//! it back (an echo server and a local fake of an OpenAI-compatible chat server), must not
//! appear in the database file, its WAL, any log file, stdout or stderr; nor in engine events.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::RawQuery;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::util::{atlas_bin, engine_with, serve};

/// Contains characters a URL percent-encodes, so the encoded form is tested too.
const SECRET: &str = "s3cr3t-Atlas/7c1d+9e2f";
/// Its start: a secret cut in two (a truncated error body) must not leave this behind.
const SECRET_START: &str = "s3cr3t-Atlas";
const SECRET_URL: &str = "s3cr3t-Atlas%2F7c1d%2B9e2f";

fn auth(h: &HeaderMap) -> String {
    h.get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// The echo server and the fake chat server; `seen` records the Authorization headers received.
fn router(seen: Arc<Mutex<Vec<String>>>) -> Router {
    let (s1, s2, s3, s4) = (seen.clone(), seen.clone(), seen.clone(), seen);
    Router::new()
        .route(
            "/echo",
            get(move |h: HeaderMap, RawQuery(q): RawQuery| async move {
                s1.lock().unwrap().push(auth(&h));
                axum::Json(json!({ "auth": auth(&h), "query": q }))
            }),
        )
        .route(
            "/fail",
            get(move |h: HeaderMap| async move {
                s2.lock().unwrap().push(auth(&h));
                // Padded so the action's 300-character cut of the body falls inside the secret.
                let body = format!("{}denied: {}", "x".repeat(271), auth(&h));
                (StatusCode::UNAUTHORIZED, body)
            }),
        )
        .route(
            "/v1/chat/completions",
            post(
                move |h: HeaderMap, axum::Json(body): axum::Json<Value>| async move {
                    s3.lock().unwrap().push(auth(&h));
                    let prompt = body["messages"][0]["content"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned();
                    axum::Json(json!({
                        "model": "fake",
                        "choices": [{ "message": { "role": "assistant",
                            "content": format!("you said {prompt} with {}", auth(&h)) } }],
                    }))
                },
            ),
        )
        .route(
            "/bad/v1/chat/completions",
            post(move |h: HeaderMap| async move {
                s4.lock().unwrap().push(auth(&h));
                (
                    StatusCode::UNAUTHORIZED,
                    axum::Json(
                        json!({ "error": { "message": format!("invalid key {}", auth(&h)) } }),
                    ),
                )
            }),
        )
}

const PARENT: &str = r#"
id: leak
triggers: [{type: manual}]
actions:
  - id: echo
    type: http
    config:
      url: "{{ vars.base }}/echo"
      query: {key: "{{ secrets.token }}"}
      headers: {Authorization: "Bearer {{ secrets.token }}"}
  - id: refused
    type: http
    config:
      url: "{{ vars.base }}/fail"
      headers: {Authorization: "Bearer {{ secrets.token }}"}
    on_failure: ask
  - id: ask
    type: llm
    config: {prompt: "repeat {{ secrets.token }}"}
  - id: ask_bad
    type: llm
    config: {prompt: hi, base_url: "{{ vars.base }}/bad/v1"}
    on_failure: note
  - id: note
    type: log
    config: {message: "the token is {{ secrets.token }}", level: warn}
  - id: keep
    type: set
    config: {values: {tok: "{{ secrets.token }}"}}
  - id: say
    type: speak
    config: {text: "the token is {{ vars.tok }}"}
  - id: save
    type: file
    config: {op: write, path: tok.txt, content: "{{ secrets.token }}"}
  - id: load
    type: file
    config: {op: read, path: tok.txt}
  - id: ping
    type: notify
    config: {title: "token {{ secrets.token }}"}
  - id: check
    type: condition
    config: {if: "secrets.token | length > 3", then: each}
  - id: each
    type: loop
    config:
      items: "{{ [secrets.token, 'plain'] }}"
      body:
        - {id: inner, type: log, config: {message: "item {{ item }}", level: warn}}
  - id: child
    type: workflow
    config: {workflow: child, vars: {t: "{{ secrets.token }}"}}
  - id: last
    type: http
    config:
      url: "{{ vars.base }}/fail"
      headers: {Authorization: "Bearer {{ secrets.token }}"}
"#;

const CHILD: &str = r#"
id: child
triggers: [{type: manual}]
actions:
  - {id: hear, type: log, config: {message: "child got {{ vars.t }}", level: warn}}
  - {id: mine, type: set, config: {values: {again: "{{ vars.t }}", own: "{{ secrets.token }}"}}}
  - {id: tell, type: speak, config: {text: "child says {{ vars.t }}"}}
"#;

fn leaks(bytes: &[u8]) -> Vec<&'static str> {
    [SECRET, SECRET_START, SECRET_URL]
        .into_iter()
        .filter(|s| bytes.windows(s.len()).any(|w| w == s.as_bytes()))
        .collect()
}

fn assert_clean(what: &str, bytes: &[u8]) {
    let found = leaks(bytes);
    assert!(
        found.is_empty(),
        "{what} holds the secret ({found:?}):\n{}",
        String::from_utf8_lossy(bytes)
    );
}

/// Every file under `dir` but the `file` action's own folder (where the workflow wrote the
/// secret on purpose).
fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "files") {
                files_under(&p, out);
            }
        } else {
            out.push(p);
        }
    }
}

#[test]
fn a_secret_used_by_every_action_kind_reaches_no_record_no_log_and_no_output() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let addr = rt.block_on(serve(router(seen.clone())));
    let base = format!("http://{addr}");

    let home = tempfile::tempdir().unwrap();
    let wf = home.path().join("wf");
    let data = home.path().join("data");
    std::fs::create_dir_all(&wf).unwrap();
    std::fs::write(wf.join("leak.yaml"), PARENT).unwrap();
    std::fs::write(wf.join("child.yaml"), CHILD).unwrap();
    let config = home.path().join("config.toml");
    std::fs::write(
        &config,
        format!("[llm]\nbase_url = \"{base}/v1\"\nmodel = \"fake\"\napi_key_secret = \"token\"\n"),
    )
    .unwrap();
    let atlas = |args: &[&str]| -> Output {
        Command::new(atlas_bin())
            .env("ATLAS_DATA_DIR", &data)
            .env("ATLAS_CONFIG", &config)
            .env("ATLAS_BUNDLED_WORKFLOWS", home.path().join("no-bundled"))
            .env("ATLAS_SECRET_TOKEN", SECRET)
            .env("ATLAS_LOG", "debug")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .arg("--workflows")
            .arg(&wf)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };

    let base_var = format!("base={base}");
    let run_json = atlas(&[
        "workflow", "run", "leak", "--silent", "--json", "--var", &base_var,
    ]);
    let run_text = atlas(&["workflow", "run", "leak", "--silent", "--var", &base_var]);
    let v: Value =
        serde_json::from_slice(&run_json.stdout).unwrap_or_else(|e| panic!("{e}: {run_json:?}"));
    // The run went all the way, to the last action's refusal.
    assert_eq!(v["status"], "failed", "{v:#}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("action `last` failed: HTTP 401"),
        "{v:#}"
    );
    // The secret really went out (to the servers and the speaker), and came back masked.
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .filter(|a| *a == &format!("Bearer {SECRET}"))
            .count()
            >= 5,
        "{seen:?}"
    );
    assert_eq!(v["outputs"]["echo"]["body"]["auth"], "Bearer ***", "{v:#}");
    assert_eq!(v["outputs"]["echo"]["body"]["query"], "key=***", "{v:#}");
    assert_eq!(
        v["outputs"]["ask"]["text"],
        "you said repeat *** with Bearer ***"
    );
    assert_eq!(
        v["spoken"],
        json!(["the token is ***", "child says ***"]),
        "{v:#}"
    );
    assert_eq!(
        v["outputs"]["child"]["outputs"]["mine"]["again"], "***",
        "{v:#}"
    );
    assert_eq!(
        std::fs::read_to_string(data.join("files/tok.txt")).unwrap(),
        SECRET
    );
    let text = String::from_utf8_lossy(&run_text.stdout);
    assert!(text.contains("said: the token is ***"), "{text}");
    let logs = String::from_utf8_lossy(&run_text.stderr);
    assert!(
        logs.contains("the token is ***") && logs.contains("child got ***"),
        "{logs}"
    );

    let run_id = v["run_id"].as_str().unwrap().to_owned();
    let child_id = v["outputs"]["child"]["run_id"].as_str().unwrap().to_owned();
    let mut outputs = vec![("run --json", run_json), ("run", run_text)];
    for args in [
        vec!["workflow", "history", "--json"],
        vec!["workflow", "history"],
        vec!["workflow", "show-run", &run_id, "--json"],
        vec!["workflow", "show-run", &run_id],
        vec!["workflow", "show-run", &child_id, "--json"],
    ] {
        let o = atlas(&args);
        assert!(o.status.success(), "{args:?}: {o:?}");
        outputs.push(("a read command", o));
    }
    for (what, o) in &outputs {
        assert_clean(&format!("stdout of {what}"), &o.stdout);
        assert_clean(&format!("stderr of {what}"), &o.stderr);
    }

    // The database while a store has it open (the WAL not yet checkpointed), then every file.
    let store = atlas::store::Store::open(&data.join("atlas.db")).unwrap();
    let actions = store.run_actions(&run_id).unwrap();
    assert!(actions.len() >= 14, "{actions:?}");
    let mut files = Vec::new();
    files_under(&data, &mut files);
    assert!(files.iter().any(|f| f.ends_with("atlas.db")), "{files:?}");
    for f in &files {
        assert_clean(&f.display().to_string(), &std::fs::read(f).unwrap());
    }
    drop(store);
}

#[tokio::test]
async fn engine_events_and_the_outcome_never_carry_a_secret() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let addr = serve(router(seen)).await;
    let yaml = r#"
id: ev
triggers: [{type: manual}]
actions:
  - id: call
    type: http
    config: {url: "ADDR/fail", headers: {Authorization: "Bearer {{ secrets.token }}"}}
    on_failure: say
  - {id: say, type: speak, config: {text: "it is {{ secrets.token }}"}}
  - {id: boom, type: http, config: {url: "ADDR/fail?k={{ secrets.token | urlencode }}"}}
"#
    .replace("ADDR", &format!("http://{addr}"));
    let t = engine_with(&[&yaml]);
    t.secrets.set("token", SECRET);
    let mut events = t.engine.subscribe();
    let out = t.run("ev").await;
    assert_eq!(out.status, atlas::store::RunStatus::Failed);
    // The speaker said it aloud (it is the user's own speech); the records are masked.
    assert_eq!(t.speaker.said(), vec![format!("it is {SECRET}")]);
    assert_eq!(out.spoken, vec!["it is ***".to_owned()]);
    let mut all = Vec::new();
    while let Ok(e) = events.try_recv() {
        all.push(e);
    }
    assert!(
        all.iter()
            .any(|e| matches!(e, atlas::engine::EngineEvent::ActionFailed { .. })),
        "{all:?}"
    );
    let events_json = serde_json::to_vec(&all).unwrap();
    assert_clean("the events", &events_json);
    assert_clean("the outcome", &serde_json::to_vec(&*out).unwrap());
    let db = t.dir.path().join("atlas.db");
    for f in [db.clone(), db.with_extension("db-wal")] {
        if let Ok(bytes) = std::fs::read(&f) {
            assert_clean(&f.display().to_string(), &bytes);
        }
    }
}

#[test]
fn the_daemons_log_files_and_status_never_carry_a_secret() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let addr = rt.block_on(serve(router(seen.clone())));
    let home = tempfile::tempdir().unwrap();
    let wf = home.path().join("wf");
    let data = home.path().join("data");
    std::fs::create_dir_all(&wf).unwrap();
    // Fires every second; its failure is logged (and notified) with the echoed secret masked.
    std::fs::write(
        wf.join("tick.yaml"),
        r#"
id: tick
triggers: [{type: schedule, cron: "* * * * * *", missed: skip}]
actions:
  - {id: note, type: log, config: {message: "daemon sees {{ secrets.token }}", level: warn}}
  - {id: call, type: http, config: {url: "ADDR/fail", headers: {Authorization: "Bearer {{ secrets.token }}"}}}
"#
        .replace("ADDR", &format!("http://{addr}")),
    )
    .unwrap();
    let atlas = || {
        let mut c = Command::new(atlas_bin());
        c.env("ATLAS_DATA_DIR", &data)
            .env("ATLAS_CONFIG", home.path().join("config.toml"))
            .env("ATLAS_BUNDLED_WORKFLOWS", home.path().join("no-bundled"))
            .env("ATLAS_SECRET_TOKEN", SECRET)
            .env("ATLAS_SPEECH", "none")
            .env("ATLAS_LOG", "debug")
            .env_remove("DISPLAY")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .arg("--workflows")
            .arg(&wf)
            .stdin(Stdio::null());
        c
    };
    // To files, not pipes: a debug log fills a pipe nobody reads and would stall the daemon.
    let (out_path, err_path) = (home.path().join("out.txt"), home.path().join("err.txt"));
    let mut daemon = atlas()
        .env("ATLAS_API_LISTEN", "127.0.0.1:0")
        .arg("daemon")
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    // Up to 60 s for a scheduled run to fail (a debug build on a loaded machine starts slowly).
    let db = data.join("atlas.db");
    let mut failed = false;
    for _ in 0..600 {
        failed = db.exists()
            && atlas::store::Store::open(&db)
                .ok()
                .and_then(|s| s.list_runs(Some("tick"), 5).ok())
                .is_some_and(|runs| {
                    runs.iter()
                        .any(|r| r.status == atlas::store::RunStatus::Failed)
                });
        if failed {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let status = atlas().args(["status", "--json"]).output().unwrap();
    // SAFETY: sending SIGTERM to our own child process.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let _ = daemon.wait();
    let (stdout, stderr) = (
        std::fs::read(&out_path).unwrap(),
        std::fs::read(&err_path).unwrap(),
    );
    assert!(
        failed,
        "no scheduled run failed: {}",
        String::from_utf8_lossy(&stderr)
    );
    assert!(!seen.lock().unwrap().is_empty());
    let v: Value = serde_json::from_slice(&status.stdout).unwrap_or_default();
    assert_eq!(v["history"]["ok"], true, "{status:?}");
    assert_clean("the daemon's stdout", &stdout);
    assert_clean("the daemon's stderr", &stderr);
    assert_clean("atlas status", &status.stdout);
    let mut files = Vec::new();
    files_under(&data, &mut files);
    let logs: Vec<_> = files
        .iter()
        .filter(|f| f.to_string_lossy().contains("atlas.log"))
        .collect();
    assert!(!logs.is_empty(), "{files:?}");
    let mut all_logs = Vec::new();
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        assert_clean(&f.display().to_string(), &bytes);
        if logs.contains(&f) {
            all_logs.extend(bytes);
        }
    }
    let text = String::from_utf8_lossy(&all_logs);
    assert!(text.contains("daemon sees ***"), "{text}");
}
