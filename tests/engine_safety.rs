//! Runs that cannot break the engine: numbers bounded at load, child runs that stop with their
//! parent, crash recovery that is not fooled by a reused pid, HTTP statuses that are not worth
//! retrying, and answers and files larger than their cap.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use atlas::engine::RunRequest;
use atlas::store::{Op, RunStatus, now_ms};
use atlas::workflow::load_str;
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde_json::json;

use crate::util::{TestEngine, assert_status, engine_with, eventually, serve};

// --- Bounds at load ------------------------------------------------------------------------------

fn load_errors(yaml: &str) -> Vec<atlas::workflow::LoadError> {
    load_str(yaml, Path::new("bounds.yaml")).expect_err("the file must not load")
}

#[test]
fn an_overflowing_retry_policy_is_a_load_error_naming_file_line_and_field() {
    // The issue's file: it used to load, then panic the run in its backoff.
    let errs = load_errors(
        "id: w\ntriggers: [{type: manual}]\nactions:\n  - id: call\n    type: log\n    config: {message: x}\n    retry: {attempts: 4, delay: 0ms, backoff: 1.0e300}\n",
    );
    assert_eq!(errs.len(), 1, "{errs:?}");
    let e = &errs[0];
    assert_eq!(e.field, "actions[0].retry.backoff");
    assert_eq!(e.line, Some(7));
    let shown = e.to_string();
    assert!(
        shown.starts_with("bounds.yaml:7:")
            && shown.contains("1e300 is out of range: expected 1 (fixed delay) to 10"),
        "{shown}"
    );
}

#[test]
fn every_bounded_number_says_what_it_expects() {
    let errs = load_errors(
        "id: w\ntriggers: [{type: manual}]\ntimeout: 0ms\nmax_steps: 0\nactions:\n  - id: a\n    type: delay\n    config: {duration: 365d}\n    retry: {attempts: 1000000, delay: 2h, max_delay: 3h, jitter: 2}\n    timeout: 400d\n    max_visits: 0\n",
    );
    let by_field = |f: &str| {
        errs.iter()
            .find(|e| e.field == f)
            .unwrap_or_else(|| panic!("no error for `{f}` in {errs:#?}"))
            .clone()
    };
    assert!(by_field("timeout").message.contains("more than 0"));
    assert!(
        by_field("max_steps")
            .message
            .contains("expected 1 to 1000000")
    );
    assert!(
        by_field("actions[0].retry.attempts")
            .message
            .contains("expected 1 (no retry) to 100")
    );
    assert!(
        by_field("actions[0].retry.delay")
            .message
            .contains("at most 1 hour")
    );
    assert!(
        by_field("actions[0].retry.max_delay")
            .message
            .contains("at most 1 hour")
    );
    assert!(
        by_field("actions[0].retry.jitter")
            .message
            .contains("between 0 and 1")
    );
    assert!(
        by_field("actions[0].timeout")
            .message
            .contains("at most 30 days")
    );
    assert!(
        by_field("actions[0].max_visits")
            .message
            .contains("expected 1 to")
    );
    let d = by_field("actions[0].config.duration");
    assert!(d.message.contains("at most 30 days"), "{d}");
    assert_eq!(d.line, Some(8), "{d}");
}

#[test]
fn a_size_cap_above_the_maximum_is_a_load_error() {
    let errs = load_errors(
        "id: w\ntriggers: [{type: manual}]\nactions:\n  - id: get\n    type: http\n    config: {url: 'http://127.0.0.1:1/', max_bytes: 1024MiB}\n",
    );
    assert_eq!(errs[0].field, "actions[0].config.max_bytes", "{errs:?}");
    assert!(errs[0].message.contains("256 MiB"), "{errs:?}");
}

// --- Child runs stop with their parent -------------------------------------------------------------

const CHILD: &str = "id: child\ntriggers: [{type: manual}]\nconcurrency: {mode: parallel, max: 10}\nactions:\n  - {id: wait, type: delay, config: {duration: 60s}}\n";

fn parent(extra: &str) -> String {
    format!(
        "id: parent\ntriggers: [{{type: manual}}]\n{extra}actions:\n  - {{id: call, type: workflow, config: {{workflow: child}}}}\n"
    )
}

/// The child runs of `parent_run`, once none is active any more, as stored.
async fn children_after_the_end(t: &TestEngine, parent_run: &str) -> Vec<atlas::store::RunRecord> {
    eventually("every run ended", || t.engine.active_runs().is_empty()).await;
    t.engine.store().flush().await.expect("flush");
    t.engine
        .store()
        .list_runs(Some("child"), 100)
        .expect("list")
        .into_iter()
        .filter(|r| r.parent_run.as_deref() == Some(parent_run))
        .collect()
}

async fn child_started(t: &TestEngine) {
    eventually("the child run started", || {
        t.engine.active_runs().len() >= 2
    })
    .await;
}

#[tokio::test]
async fn cancelling_a_parent_cancels_its_child_run() {
    let t = engine_with(&[CHILD, &parent("")]);
    let p = t.engine.trigger(RunRequest::manual("parent")).unwrap();
    child_started(&t).await;
    t.engine.cancel(&p.id).unwrap();
    assert_status(&p.clone().wait().await, RunStatus::Cancelled);
    let children = children_after_the_end(&t, &p.id).await;
    assert_eq!(children.len(), 1);
    assert_eq!(children[0].status, RunStatus::Cancelled);
    let why = children[0].error.as_deref().unwrap_or_default();
    assert!(why.contains("parent run") && why.contains(&p.id), "{why}");
}

#[tokio::test]
async fn a_parent_timing_out_cancels_its_child_run() {
    let t = engine_with(&[CHILD, &parent("timeout: 300ms\n")]);
    let p = t.engine.trigger(RunRequest::manual("parent")).unwrap();
    let out = p.clone().wait().await;
    assert_status(&out, RunStatus::Failed);
    assert!(out.error.as_deref().unwrap().contains("timed out"));
    let children = children_after_the_end(&t, &p.id).await;
    assert_eq!(children.len(), 1);
    assert_eq!(
        children[0].status,
        RunStatus::Cancelled,
        "{:?}",
        children[0].error
    );
    assert!(
        children[0]
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("parent run"),
        "{:?}",
        children[0].error
    );
}

#[tokio::test]
async fn a_restart_replacing_a_parent_cancels_its_child_run() {
    let t = engine_with(&[CHILD, &parent("concurrency: {mode: restart}\n")]);
    let first = t.engine.trigger(RunRequest::manual("parent")).unwrap();
    child_started(&t).await;
    let second = t.engine.trigger(RunRequest::manual("parent")).unwrap();
    assert_status(&first.clone().wait().await, RunStatus::Cancelled);
    // Stop the second parent (and so its child) so that every run ends.
    t.engine.cancel(&second.id).unwrap();
    let children = children_after_the_end(&t, &first.id).await;
    assert_eq!(children.len(), 1);
    assert_eq!(children[0].status, RunStatus::Cancelled);
    assert!(
        children[0]
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("replaced by run"),
        "{:?}",
        children[0].error
    );
}

// --- Crash recovery and reused pids -------------------------------------------------------------

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .expect("boot id")
        .trim()
        .to_owned()
}

fn start_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let rest = &stat[stat.rfind(')').expect("comm") + 1..];
    rest.split_whitespace()
        .nth(19)
        .expect("field 22")
        .parse()
        .expect("ticks")
}

fn record_running(t: &TestEngine, id: &str, owner: String) {
    t.engine.store().send(Op::CreateRun {
        id: id.into(),
        workflow_id: "long".into(),
        version: 1,
        trigger: "manual".into(),
        trigger_data: json!({}),
        status: RunStatus::Running,
        vars: json!({}),
        owner,
        parent_run: None,
        cursor: Some("wait".into()),
        at: now_ms(),
    });
}

#[tokio::test]
async fn recovery_is_not_fooled_by_a_live_process_that_reused_the_pid() {
    let t = engine_with(&[
        "id: long\ntriggers: [{type: manual}]\nactions:\n  - {id: wait, type: delay, config: {duration: 60s}}\n",
    ]);
    // A live process stands in for "whatever has that pid now".
    let mut other = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let pid = other.id();
    let (boot, start) = (boot_id(), start_ticks(pid));
    record_running(&t, "alive", format!("{pid}:{boot}:{start}:a"));
    // Same pid, another start time: the recorded process ended and the pid was reused.
    record_running(&t, "reused", format!("{pid}:{boot}:{}:b", start + 7));
    // Same pid and start time, before a reboot.
    record_running(
        &t,
        "rebooted",
        format!("{pid}:00000000-0000-4000-8000-000000000000:{start}:c"),
    );
    t.engine.store().flush().await.unwrap();
    let (resumed, mut interrupted) = t.engine.recover().await.unwrap();
    interrupted.sort();
    assert!(resumed.is_empty());
    assert_eq!(interrupted, ["rebooted", "reused"]);
    let row = |id: &str| t.engine.store().get_run(id).unwrap().unwrap();
    assert_eq!(row("reused").status, RunStatus::Interrupted);
    assert_eq!(row("rebooted").status, RunStatus::Interrupted);
    assert_eq!(row("alive").status, RunStatus::Running, "its owner lives");
    other.kill().unwrap();
    other.wait().unwrap();
}

// --- HTTP statuses and Retry-After ----------------------------------------------------------------

fn retrying_get(addr: std::net::SocketAddr, path: &str, retry: &str) -> String {
    format!(
        "id: r\ntriggers: [{{type: manual}}]\nactions:\n  - id: call\n    type: http\n    config: {{url: 'http://{addr}{path}'}}\n    retry: {retry}\n"
    )
}

#[tokio::test]
async fn a_4xx_is_not_retried() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let addr = serve(Router::new().route(
        "/missing",
        get(move || {
            h.fetch_add(1, Ordering::SeqCst);
            async { (StatusCode::NOT_FOUND, "no such thing") }
        }),
    ))
    .await;
    let t = engine_with(&[&retrying_get(addr, "/missing", "{attempts: 5, delay: 1ms}")]);
    let out = t.run("r").await;
    assert_status(&out, RunStatus::Failed);
    assert!(out.error.as_deref().unwrap().contains("HTTP 404"));
    assert_eq!(hits.load(Ordering::SeqCst), 1, "a 404 is asked once");
    assert_eq!(
        t.engine.store().run_actions(&out.run_id).unwrap()[0].attempts,
        1
    );
}

#[tokio::test]
async fn a_429_is_retried_after_the_wait_the_server_asks_for() {
    // The server refuses a retry that comes sooner than its Retry-After: the run can only
    // succeed if the engine waited as asked (the retry policy's own delay is 1 ms).
    let first = Arc::new(std::sync::Mutex::new(None::<std::time::Instant>));
    let hits = Arc::new(AtomicUsize::new(0));
    let (f, h) = (first.clone(), hits.clone());
    let addr = serve(Router::new().route(
        "/busy",
        get(move || {
            h.fetch_add(1, Ordering::SeqCst);
            let mut first = f.lock().unwrap();
            let reply = match *first {
                None => {
                    *first = Some(std::time::Instant::now());
                    None
                }
                Some(t0) if t0.elapsed() >= Duration::from_millis(950) => Some("{\"ok\": true}"),
                Some(_) => None,
            };
            async move {
                let mut headers = HeaderMap::new();
                headers.insert("retry-after", "1".parse().unwrap());
                match reply {
                    Some(body) => (StatusCode::OK, headers, body),
                    None => (StatusCode::TOO_MANY_REQUESTS, headers, "slow down"),
                }
            }
        }),
    ))
    .await;
    let t = engine_with(&[&retrying_get(addr, "/busy", "{attempts: 2, delay: 1ms}")]);
    let out = t.run("r").await;
    assert_status(&out, RunStatus::Succeeded);
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

// --- Size caps ------------------------------------------------------------------------------------

/// A body that never ends: 64 KiB chunks forever.
fn endless() -> axum::body::Body {
    let chunk = axum::body::Bytes::from(vec![b'x'; 64 * 1024]);
    axum::body::Body::from_stream(futures::stream::repeat_with(move || {
        Ok::<_, std::io::Error>(chunk.clone())
    }))
}

#[tokio::test]
async fn an_http_answer_beyond_its_cap_fails_without_being_read_whole() {
    let addr = serve(
        Router::new()
            .route("/endless", get(|| async { endless() }))
            .route("/big", get(|| async { "y".repeat(2000) }))
            .route("/small", get(|| async { "y".repeat(100) })),
    )
    .await;
    let wf = |path: &str, cap: &str| {
        format!(
            "id: {}\ntriggers: [{{type: manual}}]\nactions:\n  - {{id: get, type: http, config: {{url: 'http://{addr}/{path}'{cap}}}}}\n",
            path
        )
    };
    let t = engine_with(&[
        &wf("endless", ""),
        &wf("big", ", max_bytes: 1KiB"),
        &wf("small", ", max_bytes: 1KiB"),
    ]);
    // Without a cap this read would never end (or end the process); with the default one it
    // stops at 10 MiB.
    let out = t.run("endless").await;
    assert_status(&out, RunStatus::Failed);
    let e = out.error.as_deref().unwrap();
    assert!(
        e.contains("larger than the cap of 10 MiB") && e.contains("max_bytes"),
        "{e}"
    );
    let out = t.run("big").await;
    assert_status(&out, RunStatus::Failed);
    assert!(
        out.error.as_deref().unwrap().contains("1 KiB"),
        "{:?}",
        out.error
    );
    assert_status(&t.run("small").await, RunStatus::Succeeded);
}

#[tokio::test]
async fn an_llm_answer_beyond_its_cap_fails() {
    let addr =
        serve(Router::new().route("/v1/chat/completions", post(|| async { endless() }))).await;
    let t = engine_with(&[&format!(
        "id: ask\ntriggers: [{{type: manual}}]\nactions:\n  - {{id: q, type: llm, config: {{prompt: hi, base_url: 'http://{addr}/v1', max_bytes: 100KiB}}}}\n"
    )]);
    let out = t.run("ask").await;
    assert_status(&out, RunStatus::Failed);
    let e = out.error.as_deref().unwrap();
    assert!(e.contains("larger than the cap of 100 KiB"), "{e}");
}

#[tokio::test]
async fn an_llm_server_refusing_with_a_4xx_is_asked_once_whatever_its_body() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let addr = serve(Router::new().route(
        "/v1/chat/completions",
        post(move || {
            h.fetch_add(1, Ordering::SeqCst);
            async { (StatusCode::UNAUTHORIZED, "<html>no key</html>") }
        }),
    ))
    .await;
    let t = engine_with(&[&format!(
        "id: ask\ntriggers: [{{type: manual}}]\nactions:\n  - id: q\n    type: llm\n    config: {{prompt: hi, base_url: 'http://{addr}/v1'}}\n    retry: {{attempts: 3, delay: 1ms}}\n"
    )]);
    let out = t.run("ask").await;
    assert_status(&out, RunStatus::Failed);
    let e = out.error.as_deref().unwrap();
    assert!(e.contains("HTTP 401") && e.contains("no key"), "{e}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_file_read_beyond_its_cap_fails() {
    let t = engine_with(&[
        "id: small_cap\ntriggers: [{type: manual}]\nactions:\n  - {id: r, type: file, config: {op: read, path: notes.txt, max_bytes: 1000}}\n",
        "id: default_cap\ntriggers: [{type: manual}]\nactions:\n  - {id: r, type: file, config: {op: read, path: huge.txt}}\n",
    ]);
    std::fs::write(t.files().join("notes.txt"), "z".repeat(1001)).unwrap();
    std::fs::write(t.files().join("huge.txt"), vec![b'z'; 10 * 1024 * 1024 + 1]).unwrap();
    let out = t.run("small_cap").await;
    assert_status(&out, RunStatus::Failed);
    let e = out.error.as_deref().unwrap();
    assert!(e.contains("notes.txt") && e.contains("1000 bytes"), "{e}");
    let out = t.run("default_cap").await;
    assert_status(&out, RunStatus::Failed);
    assert!(
        out.error.as_deref().unwrap().contains("10 MiB"),
        "{:?}",
        out.error
    );
    // At the cap exactly, it reads.
    std::fs::write(t.files().join("notes.txt"), "z".repeat(1000)).unwrap();
    let out = t.run("small_cap").await;
    assert_status(&out, RunStatus::Succeeded);
    assert_eq!(out.result.as_ref().unwrap()["bytes"], json!(1000));
}
