//! Engine semantics: edges, retries, timeouts, run modes, pause/resume/cancel, templates, loops,
//! conditions, the file sandbox, secrets, llm, sub-workflows, events, and the reference guide's
//! own engine tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use atlas::engine::{EngineEvent, RunRequest};
use atlas::store::RunStatus;
use atlas::workflow::load_str;
use axum::Router;
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::util::{assert_status, engine_with, eventually, serve};

// --- The reference guide's engine tests --------------------------------------------------------

#[test]
fn guide_creates_a_valid_workflow() {
    let wf = load_str(
        "id: test\nname: Test Workflow\ndescription: A test workflow\nversion: 1\ntriggers: [{type: manual}]\nactions:\n  - {id: action1, type: delay, name: Wait, config: {duration: 100ms}}\nentry: action1\n",
        std::path::Path::new("t.yaml"),
    )
    .expect("valid workflow loads");
    assert_eq!(wf.name(), "Test Workflow");
    assert_eq!(wf.graph.nodes.len(), 1);
}

#[test]
fn guide_rejects_a_workflow_without_entry_action() {
    let errs = load_str(
        "id: t\ntriggers: [{type: manual}]\nactions: []\n",
        std::path::Path::new("t.yaml"),
    )
    .unwrap_err();
    assert!(errs[0].message.contains("entry action"), "{errs:?}");
    let errs = load_str(
        "id: t\ntriggers: [{type: manual}]\nentry: ghost\nactions:\n  - {id: a, type: log, config: {message: x}}\n",
        std::path::Path::new("t.yaml"),
    )
    .unwrap_err();
    assert!(
        errs[0]
            .message
            .contains("entry action `ghost` does not exist"),
        "{errs:?}"
    );
}

#[tokio::test]
async fn guide_executes_a_simple_workflow() {
    let t = engine_with(&[
        "id: simple\ntriggers: [{type: manual}]\nactions:\n  - {id: delay1, type: delay, config: {duration: 10ms}}\n",
    ]);
    let out = t.run("simple").await;
    assert_status(&out, RunStatus::Succeeded);
    let run = t.engine.store().get_run(&out.run_id).unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    let actions = t.engine.store().run_actions(&out.run_id).unwrap();
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0].status, "succeeded");
    let stats = t.engine.store().stats().unwrap();
    assert_eq!((stats[0].runs, stats[0].successes), (1, 1));
}

#[tokio::test]
async fn guide_respects_concurrent_run_limits() {
    let t = engine_with(&[
        "id: limited\ntriggers: [{type: manual}]\nconcurrency: {mode: parallel, max: 1}\nactions:\n  - {id: long, type: delay, config: {duration: 10s}}\n",
    ]);
    let first = t.engine.trigger(RunRequest::manual("limited")).unwrap();
    let err = t.engine.trigger(RunRequest::manual("limited")).unwrap_err();
    assert!(err.to_string().contains("Maximum concurrent runs"), "{err}");
    t.engine.cancel(&first.id).unwrap();
    assert_status(&first.wait().await, RunStatus::Cancelled);
}

// --- Edges and conditions ----------------------------------------------------------------------

#[tokio::test]
async fn edges_branch_on_success_failure_and_conditions() {
    let addr = serve(Router::new().route(
        "/fail",
        get(|| async { (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
    ))
    .await;
    let t = engine_with(&[&format!(
        r#"
id: edges
triggers: [{{type: manual}}]
variables: {{n: 7}}
actions:
  - id: start
    type: condition
    config: {{if: "vars.n > 5", then: big, else: small}}
  - id: small
    type: set
    config: {{values: {{size: small}}}}
  - id: big
    type: set
    config: {{values: {{size: big}}}}
    on_success: call
  - id: skipped
    type: set
    config: {{values: {{skipped: true}}}}
  - id: call
    type: http
    config: {{url: "http://{addr}/fail"}}
    on_failure: recover
  - id: unreachable
    type: set
    config: {{values: {{bad: true}}}}
  - id: recover
    type: log
    config: {{message: "recovered from {{{{ call.error }}}}"}}
"#
    )]);
    let out = t.run("edges").await;
    assert_status(&out, RunStatus::Succeeded);
    let ran: Vec<String> = t
        .engine
        .store()
        .run_actions(&out.run_id)
        .unwrap()
        .into_iter()
        .map(|a| a.action_id)
        .collect();
    assert_eq!(ran, ["start", "big", "call", "recover"]);
    assert!(
        out.outputs["recover"]["message"]
            .as_str()
            .unwrap()
            .contains("HTTP 500"),
        "{:?}",
        out.outputs
    );

    let out = t.run_with("edges", &[("n", json!(1))]).await;
    let ran: Vec<String> = t
        .engine
        .store()
        .run_actions(&out.run_id)
        .unwrap()
        .into_iter()
        .map(|a| a.action_id)
        .collect();
    // No edge on `small`: the next action in the list runs.
    assert_eq!(&ran[..3], ["start", "small", "big"]);
}

#[tokio::test]
async fn a_failure_without_on_failure_fails_the_run_and_names_the_action() {
    let t = engine_with(&[
        "id: f\ntriggers: [{type: manual}]\nactions:\n  - {id: read, type: file, config: {op: read, path: missing.txt}}\n  - {id: after, type: log, config: {message: never}}\n",
    ]);
    let out = t.run("f").await;
    assert_status(&out, RunStatus::Failed);
    assert!(
        out.error
            .as_deref()
            .unwrap()
            .starts_with("action `read` failed"),
        "{:?}",
        out.error
    );
    assert_eq!(t.engine.store().run_actions(&out.run_id).unwrap().len(), 1);
}

// --- Retries and timeouts ----------------------------------------------------------------------

#[tokio::test]
async fn retries_with_backoff_until_success() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let addr = serve(Router::new().route(
        "/flaky",
        get(move || {
            let n = h.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 2 {
                    (
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        "later".to_owned(),
                    )
                } else {
                    (axum::http::StatusCode::OK, "{\"ok\":true}".to_owned())
                }
            }
        }),
    ))
    .await;
    let t = engine_with(&[&format!(
        "id: r\ntriggers: [{{type: manual}}]\nactions:\n  - id: call\n    type: http\n    config: {{url: 'http://{addr}/flaky'}}\n    retry: {{attempts: 4, delay: 20ms, backoff: 2, max_delay: 50ms, jitter: 0.1}}\n"
    )]);
    let out = t.run("r").await;
    assert_status(&out, RunStatus::Succeeded);
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    let a = &t.engine.store().run_actions(&out.run_id).unwrap()[0];
    assert_eq!(a.attempts, 3);
    assert_eq!(out.result.as_ref().unwrap()["body"]["ok"], json!(true));

    // Out of attempts: failed, with every attempt counted.
    hits.store(0, Ordering::SeqCst);
    let t2 = engine_with(&[&format!(
        "id: r\ntriggers: [{{type: manual}}]\nactions:\n  - id: call\n    type: http\n    config: {{url: 'http://{addr}/flaky'}}\n    retry: {{attempts: 2, delay: 10ms}}\n"
    )]);
    let out = t2.run("r").await;
    assert_status(&out, RunStatus::Failed);
    assert_eq!(
        t2.engine.store().run_actions(&out.run_id).unwrap()[0].attempts,
        2
    );
    assert!(out.error.as_deref().unwrap().contains("HTTP 503"));
}

#[tokio::test]
async fn action_timeout_stops_the_request_in_flight() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let d = dropped.clone();
    let addr = serve(Router::new().route(
        "/slow",
        get(move || {
            let guard = DropFlag(d.clone());
            async move {
                let _g = guard;
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }
        }),
    ))
    .await;
    // Long enough for the request to reach the server on a loaded machine (a fresh-clone run
    // with 200 ms once timed out before the handler ever started), far under the handler's 30 s.
    let t = engine_with(&[&format!(
        "id: slow\ntriggers: [{{type: manual}}]\nactions:\n  - {{id: call, type: http, timeout: 2s, config: {{url: 'http://{addr}/slow'}}}}\n"
    )]);
    let out = t.run("slow").await;
    assert_status(&out, RunStatus::Failed);
    assert!(
        out.error.as_deref().unwrap().contains("timed out"),
        "{:?}",
        out.error
    );
    // The server saw the client go away: the request was really stopped, not left running.
    eventually("server handler dropped", || {
        dropped.load(Ordering::SeqCst) == 1
    })
    .await;
}

struct DropFlag(Arc<AtomicUsize>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn workflow_timeout_stops_the_action_in_flight() {
    let t = engine_with(&[
        "id: w\ntriggers: [{type: manual}]\ntimeout: 200ms\nactions:\n  - {id: wait, type: delay, config: {duration: 60s}}\n",
    ]);
    let out = t.run("w").await;
    assert_status(&out, RunStatus::Failed);
    assert!(
        out.error.as_deref().unwrap().contains("timed out"),
        "{:?}",
        out.error
    );
    let action = &t.engine.store().run_actions(&out.run_id).unwrap()[0];
    assert_eq!(action.status, "failed");
    assert!(action.error.as_deref().unwrap().contains("timed out"));
}

// --- Run modes ----------------------------------------------------------------------------------

fn mode_workflow(mode: &str, max: u32, delay_ms: u64) -> String {
    format!(
        "id: m\ntriggers: [{{type: manual}}]\nconcurrency: {{mode: {mode}, max: {max}}}\nactions:\n  - {{id: wait, type: delay, config: {{duration: {delay_ms}ms}}}}\n"
    )
}

#[tokio::test]
async fn single_mode_refuses_a_second_run() {
    let t = engine_with(&[&mode_workflow("single", 1, 300)]);
    let first = t.engine.trigger(RunRequest::manual("m")).unwrap();
    let err = t
        .engine
        .trigger(RunRequest::manual("m"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("already running") && err.contains(&first.id),
        "{err}"
    );
    assert_status(&first.wait().await, RunStatus::Succeeded);
    // Once it is done, a new run is admitted.
    assert_status(&t.run("m").await, RunStatus::Succeeded);
}

#[tokio::test]
async fn queued_mode_runs_one_at_a_time_in_order() {
    let t = engine_with(&[&mode_workflow("queued", 2, 100)]);
    let mut events = t.engine.subscribe();
    let a = t.engine.trigger(RunRequest::manual("m")).unwrap();
    let b = t.engine.trigger(RunRequest::manual("m")).unwrap();
    let c = t.engine.trigger(RunRequest::manual("m")).unwrap();
    let err = t
        .engine
        .trigger(RunRequest::manual("m"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("queue") && err.contains("full"), "{err}");
    for h in [a.clone(), b.clone(), c.clone()] {
        assert_status(&h.wait().await, RunStatus::Succeeded);
    }
    // Starts and ends alternate: never two running at once, and in trigger order.
    let mut seq = Vec::new();
    while let Ok(e) = events.try_recv() {
        match e {
            EngineEvent::RunStarted { run_id, .. } => seq.push(format!("start {run_id}")),
            EngineEvent::RunFinished { run_id, .. } => seq.push(format!("end {run_id}")),
            _ => {}
        }
    }
    let expected: Vec<String> = [&a.id, &b.id, &c.id]
        .iter()
        .flat_map(|id| [format!("start {id}"), format!("end {id}")])
        .collect();
    assert_eq!(seq, expected);
}

#[tokio::test]
async fn restart_mode_cancels_the_running_run() {
    let t = engine_with(&[&mode_workflow("restart", 1, 5_000)]);
    let first = t.engine.trigger(RunRequest::manual("m")).unwrap();
    eventually("first run started", || t.engine.active_runs().len() == 1).await;
    let second = t.engine.trigger(RunRequest::manual("m")).unwrap();
    let o1 = first.wait().await;
    assert_status(&o1, RunStatus::Cancelled);
    assert!(
        o1.error
            .as_deref()
            .unwrap()
            .contains(&format!("replaced by run {}", second.id))
    );
    t.engine.cancel(&second.id).unwrap();
    assert_status(&second.wait().await, RunStatus::Cancelled);
}

#[tokio::test]
async fn parallel_mode_runs_side_by_side_up_to_max() {
    let t = engine_with(&[&mode_workflow("parallel", 3, 400)]);
    let handles: Vec<_> = (0..3)
        .map(|_| t.engine.trigger(RunRequest::manual("m")).unwrap())
        .collect();
    assert_eq!(t.engine.active_runs().len(), 3);
    let err = t
        .engine
        .trigger(RunRequest::manual("m"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("Maximum concurrent runs (3)"), "{err}");
    for h in handles {
        assert_status(&h.wait().await, RunStatus::Succeeded);
    }
}

// --- Pause, resume, cancel -----------------------------------------------------------------------

#[tokio::test]
async fn pause_then_resume_continues_where_it_stopped() {
    let t = engine_with(&[
        "id: p\ntriggers: [{type: manual}]\nactions:\n  - {id: a, type: set, config: {values: {count: 1}}}\n  - {id: b, type: delay, config: {duration: 300ms}}\n  - {id: c, type: set, config: {values: {count: \"{{ vars.count + 1 }}\"}}}\n",
    ]);
    let mut events = t.engine.subscribe();
    let h = t.engine.trigger(RunRequest::manual("p")).unwrap();
    loop {
        if let Ok(EngineEvent::ActionStarted { action_id, .. }) = events.recv().await
            && action_id == "b"
        {
            break;
        }
    }
    t.engine.pause(&h.id).unwrap();
    loop {
        if let Ok(EngineEvent::RunPaused { .. }) = events.recv().await {
            break;
        }
    }
    t.engine.store().flush().await.unwrap();
    let store = t.engine.store();
    assert_eq!(
        store.get_run(&h.id).unwrap().unwrap().status,
        RunStatus::Paused
    );
    let done: Vec<String> = store
        .run_actions(&h.id)
        .unwrap()
        .into_iter()
        .map(|a| a.action_id)
        .collect();
    assert_eq!(done, ["a", "b"], "paused after b, before c");
    t.engine.resume(&h.id).unwrap();
    let out = h.wait().await;
    assert_status(&out, RunStatus::Succeeded);
    t.engine.store().flush().await.unwrap();
    let ran: Vec<String> = store
        .run_actions(&out.run_id)
        .unwrap()
        .into_iter()
        .map(|a| a.action_id)
        .collect();
    assert_eq!(ran, ["a", "b", "c"], "resumed from c, not from the start");
    assert_eq!(out.outputs["c"]["count"], json!(2));
}

#[tokio::test]
async fn cancel_stops_the_action_in_flight() {
    let t = engine_with(&[
        "id: c\ntriggers: [{type: manual}]\nactions:\n  - {id: wait, type: delay, config: {duration: 60s}}\n  - {id: after, type: log, config: {message: never}}\n",
    ]);
    let h = t.engine.trigger(RunRequest::manual("c")).unwrap();
    eventually("run active", || !t.engine.active_runs().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    t.engine.cancel(&h.id).unwrap();
    let out = h.wait().await;
    assert_status(&out, RunStatus::Cancelled);
    assert_eq!(out.error.as_deref(), Some("cancelled by the user"));
    t.engine.store().flush().await.unwrap();
    let actions = t.engine.store().run_actions(&out.run_id).unwrap();
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0].status, "cancelled");
}

#[tokio::test]
async fn a_paused_run_can_be_cancelled() {
    let t = engine_with(&[
        "id: pc\ntriggers: [{type: manual}]\nactions:\n  - {id: a, type: delay, config: {duration: 100ms}}\n  - {id: b, type: log, config: {message: never}}\n",
    ]);
    let h = t.engine.trigger(RunRequest::manual("pc")).unwrap();
    t.engine.pause(&h.id).unwrap();
    let mut events = t.engine.subscribe();
    loop {
        if let Ok(EngineEvent::RunPaused { .. }) = events.recv().await {
            break;
        }
    }
    t.engine.cancel(&h.id).unwrap();
    assert_status(&h.wait().await, RunStatus::Cancelled);
}

// --- Templates, variables, secrets ------------------------------------------------------------------

#[tokio::test]
async fn templates_yield_typed_values_and_see_every_scope() {
    let t = engine_with(&[r#"
id: tpl
triggers: [{type: manual}]
variables: {base: 21, names: [ada, bob]}
actions:
  - id: first
    type: set
    config:
      values:
        doubled: "{{ vars.base * 2 }}"
        list: "{{ vars.names | map('upper') | list }}"
        text: "base is {{ vars.base }}"
        obj: "{{ {'k': vars.base} }}"
        from_env: "{{ env.ATLAS_TEST_ENV }}"
        from_trigger: "{{ trigger.kind | default('none') }}"
        run_wf: "{{ run.workflow }}"
  - id: second
    type: set
    config:
      values:
        chained: "{{ first.doubled + 1 }}"
        by_actions: "{{ actions.first.list[1] }}"
        var_updated: "{{ vars.doubled }}"
"#]);
    let out = t.run("tpl").await;
    assert_status(&out, RunStatus::Succeeded);
    let f = &out.outputs["first"];
    assert_eq!(f["doubled"], json!(42));
    assert_eq!(f["list"], json!(["ADA", "BOB"]));
    assert_eq!(f["text"], json!("base is 21"));
    assert_eq!(f["obj"], json!({"k": 21}));
    assert_eq!(f["from_env"], json!("visible"));
    assert_eq!(f["run_wf"], json!("tpl"));
    let s = &out.outputs["second"];
    assert_eq!(s["chained"], json!(43));
    assert_eq!(s["by_actions"], json!("BOB"));
    assert_eq!(
        s["var_updated"],
        json!(42),
        "`set` updates vars for later actions"
    );
}

#[tokio::test]
async fn an_undefined_value_fails_the_action_with_the_template_named() {
    let t = engine_with(&[
        "id: u\ntriggers: [{type: manual}]\nactions:\n  - {id: say, type: speak, config: {text: 'Hi {{ vars.nobody.name }}'}}\n",
    ]);
    let out = t.run("u").await;
    assert_status(&out, RunStatus::Failed);
    let err = out.error.clone().unwrap();
    assert!(err.contains("Hi {{ vars.nobody.name }}"), "{err}");
}

#[tokio::test]
async fn secrets_reach_requests_but_never_history() {
    let seen = Arc::new(std::sync::Mutex::new(String::new()));
    let s = seen.clone();
    let addr = serve(Router::new().route(
        "/echo",
        get(move |headers: axum::http::HeaderMap| {
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            *s.lock().unwrap() = auth.clone();
            async move { axum::Json(json!({ "you_sent": auth })) }
        }),
    ))
    .await;
    let t = engine_with(&[&format!(
        "id: sec\ntriggers: [{{type: manual}}]\nactions:\n  - id: call\n    type: http\n    config:\n      url: 'http://{addr}/echo'\n      headers: {{Authorization: 'Bearer {{{{ secrets.api_token }}}}'}}\n  - {{id: oops, type: log, config: {{message: 'token={{{{ secrets.api_token }}}}'}}}}\n"
    )]);
    t.secrets.set("api_token", "s3cr3t-value-123");
    let out = t.run("sec").await;
    assert_status(&out, RunStatus::Succeeded);
    assert_eq!(*seen.lock().unwrap(), "Bearer s3cr3t-value-123");
    // The echo and the log line are stored masked.
    let actions = t.engine.store().run_actions(&out.run_id).unwrap();
    let stored = serde_json::to_string(&actions).unwrap();
    assert!(!stored.contains("s3cr3t-value-123"), "{stored}");
    assert!(stored.contains("Bearer ***"));
    let db = std::fs::read(t.dir.path().join("atlas.db")).unwrap();
    let wal = std::fs::read(t.dir.path().join("atlas.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(
            !bytes.windows(16).any(|w| w == b"s3cr3t-value-123"),
            "secret found in the database files"
        );
    }
}

// --- Loops -------------------------------------------------------------------------------------------

#[tokio::test]
async fn loops_run_their_body_per_item_and_collect_outputs() {
    let t = engine_with(&[r#"
id: each
triggers: [{type: manual}]
variables: {cities: [Paris, Oslo, Lima]}
actions:
  - id: visit
    type: loop
    config:
      items: "{{ vars.cities }}"
      as: city
      body:
        - id: label
          type: set
          config: {values: {label: "{{ loop.index }}/{{ loop.length }} {{ city }}"}}
        - id: is_long
          type: condition
          config: {if: "city | length > 4", then: shout}
        - id: whisper
          type: log
          config: {message: "{{ city | lower }}"}
          on_success: end
        - id: shout
          type: log
          config: {message: "{{ city | upper }}"}
        - id: end
          type: set
          config: {values: {}}
  - id: after
    type: set
    config: {values: {n: "{{ visit.count }}"}}
"#]);
    let out = t.run("each").await;
    assert_status(&out, RunStatus::Succeeded);
    let results = out.outputs["visit"]["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["label"]["label"], json!("1/3 Paris"));
    assert_eq!(results[0]["shout"]["message"], json!("PARIS"));
    assert_eq!(results[1]["whisper"]["message"], json!("oslo"));
    assert!(
        results[1].get("shout").is_none(),
        "outputs do not leak between iterations"
    );
    assert_eq!(out.outputs["after"]["n"], json!(3));
    let paths: Vec<String> = t
        .engine
        .store()
        .run_actions(&out.run_id)
        .unwrap()
        .into_iter()
        .map(|a| a.path)
        .collect();
    assert!(
        paths.contains(&"visit[0].shout".to_owned())
            && paths.contains(&"visit[2].whisper".to_owned()),
        "{paths:?}"
    );
}

#[tokio::test]
async fn loops_are_bounded() {
    let t = engine_with(&[
        "id: big\ntriggers: [{type: manual}]\nactions:\n  - id: l\n    type: loop\n    config:\n      items: \"{{ range(10) | list }}\"\n      max_iterations: 5\n      body: [{id: x, type: log, config: {message: '{{ item }}'}}]\n",
    ]);
    let out = t.run("big").await;
    assert_status(&out, RunStatus::Failed);
    assert!(
        out.error
            .clone()
            .unwrap()
            .contains("more than its `max_iterations` (5)")
    );
}

#[tokio::test]
async fn cycles_with_max_visits_are_bounded_at_run_time() {
    let t = engine_with(&[
        "id: cyc\ntriggers: [{type: manual}]\nactions:\n  - {id: a, type: log, config: {message: a}, max_visits: 3}\n  - {id: b, type: log, config: {message: b}, on_success: a}\n",
    ]);
    let out = t.run("cyc").await;
    assert_status(&out, RunStatus::Failed);
    assert!(
        out.error
            .clone()
            .unwrap()
            .contains("more than its `max_visits` (3)")
    );
    assert_eq!(t.engine.store().run_actions(&out.run_id).unwrap().len(), 6);
}

// --- Files ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_file_action_works_inside_its_root_and_refuses_escapes() {
    let t = engine_with(&[
        r#"
id: files
triggers: [{type: manual}]
actions:
  - {id: w, type: file, config: {op: write, path: notes/today.txt, content: "first"}}
  - {id: a, type: file, config: {op: append, path: notes/today.txt, content: " second"}}
  - {id: r, type: file, config: {op: read, path: notes/today.txt}}
  - {id: e, type: file, config: {op: exists, path: notes/nope.txt}}
  - {id: l, type: file, config: {op: list, path: notes}}
"#,
        "id: escape\ntriggers: [{type: manual}]\nvariables: {p: ../outside.txt}\nactions:\n  - {id: w, type: file, config: {op: write, path: '{{ vars.p }}', content: x}}\n",
    ]);
    let out = t.run("files").await;
    assert_status(&out, RunStatus::Succeeded);
    assert_eq!(out.outputs["r"]["content"], json!("first second"));
    assert_eq!(out.outputs["e"]["exists"], json!(false));
    assert_eq!(
        out.outputs["l"]["entries"],
        json!([{"name": "today.txt", "dir": false}])
    );
    assert_eq!(
        std::fs::read_to_string(t.files().join("notes/today.txt")).unwrap(),
        "first second"
    );

    for (path, why) in [
        ("../outside.txt", "`..`"),
        ("/etc/passwd", "absolute"),
        ("link/secret.txt", "outside the root"),
    ] {
        std::os::unix::fs::symlink(t.dir.path(), t.files().join("link")).ok();
        let out = t.run_with("escape", &[("p", json!(path))]).await;
        assert_status(&out, RunStatus::Failed);
        assert!(
            out.error.as_deref().unwrap().contains(why),
            "{path}: {:?}",
            out.error
        );
    }
    assert!(!t.dir.path().join("outside.txt").exists());
    assert!(!t.dir.path().join("secret.txt").exists());
}

// --- LLM, speak, notify, sub-workflows -------------------------------------------------------------------

#[tokio::test]
async fn llm_calls_an_openai_compatible_server() {
    // A local fake of the OpenAI chat-completions protocol (the real service is unreachable here).
    let addr = serve(Router::new().route(
        "/v1/chat/completions",
        post(|headers: axum::http::HeaderMap, axum::Json(body): axum::Json<Value>| async move {
            let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
            if auth != "Bearer sk-test-key" {
                return (axum::http::StatusCode::UNAUTHORIZED, axum::Json(json!({"error": {"message": "bad key"}})));
            }
            let question = body["messages"][1]["content"].as_str().unwrap_or("").to_owned();
            (axum::http::StatusCode::OK, axum::Json(json!({
                "id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": format!("You asked: {question}")}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
            })))
        }),
    ))
    .await;
    let t = engine_with(&[&format!(
        "id: ask\ntriggers: [{{type: manual}}]\nactions:\n  - id: q\n    type: llm\n    config:\n      base_url: 'http://{addr}/v1'\n      model: tiny\n      api_key: '{{{{ secrets.openai }}}}'\n      system: Be brief.\n      prompt: 'What is {{{{ 2 + 2 }}}}?'\n  - {{id: say, type: speak, config: {{text: '{{{{ q.text }}}}'}}}}\n"
    )]);
    t.secrets.set("openai", "sk-test-key");
    let out = t.run("ask").await;
    assert_status(&out, RunStatus::Succeeded);
    assert_eq!(out.outputs["q"]["text"], json!("You asked: What is 4?"));
    assert_eq!(out.outputs["q"]["usage"]["total_tokens"], json!(8));
    assert_eq!(t.speaker.said(), ["You asked: What is 4?"]);
    assert_eq!(out.spoken, ["You asked: What is 4?"]);

    t.secrets.set("openai", "wrong");
    let out = t.run("ask").await;
    assert_status(&out, RunStatus::Failed);
    assert!(out.error.clone().unwrap().contains("HTTP 401"));
}

#[tokio::test]
async fn workflow_action_runs_a_child_and_uses_its_result() {
    let t = engine_with(&[
        "id: child\ntriggers: [{type: manual}]\nvariables: {x: 1}\nactions:\n  - {id: say, type: speak, config: {text: 'child got {{ vars.x }}'}}\n  - {id: out, type: set, config: {values: {y: '{{ vars.x * 10 }}'}}}\n",
        "id: parent\ntriggers: [{type: manual}]\nactions:\n  - {id: call, type: workflow, config: {workflow: child, vars: {x: 4}}}\n  - {id: use, type: set, config: {values: {got: '{{ call.result.y }}'}}}\n",
        "id: loopy\ntriggers: [{type: manual}]\nconcurrency: {mode: parallel, max: 20}\nactions:\n  - {id: again, type: workflow, config: {workflow: loopy}}\n",
    ]);
    let out = t.run("parent").await;
    assert_status(&out, RunStatus::Succeeded);
    assert_eq!(out.outputs["use"]["got"], json!(40));
    assert_eq!(out.spoken, ["child got 4"]);
    let child_run = out.outputs["call"]["run_id"].as_str().unwrap().to_owned();
    let child = t.engine.store().get_run(&child_run).unwrap().unwrap();
    assert_eq!(child.parent_run.as_deref(), Some(out.run_id.as_str()));
    // A workflow that calls itself is stopped by the nesting bound, not by running out of memory.
    let out = t.run("loopy").await;
    assert_status(&out, RunStatus::Failed);
    assert!(out.error.clone().unwrap().contains("nested more than"));
}

#[tokio::test]
async fn events_are_published_for_runs_and_actions() {
    let t = engine_with(&[
        "id: ev\ntriggers: [{type: manual}]\nactions:\n  - {id: ok, type: log, config: {message: x}}\n  - {id: bad, type: file, config: {op: read, path: none.txt}}\n",
    ]);
    let mut rx = t.engine.subscribe();
    let out = t.run("ev").await;
    let mut kinds = Vec::new();
    while let Ok(e) = rx.try_recv() {
        kinds.push(e.kind());
    }
    assert_eq!(
        kinds,
        [
            "run.started",
            "action.started",
            "action.finished",
            "action.started",
            "action.failed",
            "run.failed"
        ]
    );
    assert_status(&out, RunStatus::Failed);
}
