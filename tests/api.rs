//! The control API and webhook triggers over real HTTP on 127.0.0.1: an in-process engine on a
//! real SQLite file, the API served on a free port, reqwest as the client. Every bad input gets
//! its status and starts nothing; the load test checks exactly one run per accepted delivery.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use atlas::api::{self, Api, ApiParts};
use atlas::config::{Config, Paths};
use atlas::engine::Engine;
use atlas::secrets::MemorySecrets;
use atlas::store::Store;
use atlas::triggers::signature::{Scheme, sign};
use atlas::tts::RecordingSpeaker;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::util::eventually;

const GH_SECRET: &str = "It's a Secret to Everybody";
const STD_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

const HOOKED: &str = "id: hooked\ntriggers:\n  - {type: webhook, path: /gh, scheme: github, secret: '{{ secrets.gh_key }}'}\nconcurrency: {mode: parallel, max: 100000}\nactions:\n  - {id: out, type: set, config: {values: {action: '{{ trigger.body.action }}', event: '{{ trigger.headers[\"x-github-event\"] | default(\"\") }}', q: '{{ trigger.query.x | default(\"\") }}'}}}\n";
const STANDARD: &str = "id: std\ntriggers:\n  - {type: webhook, path: /std, scheme: standard, secret: '{{ secrets.std_key }}'}\nconcurrency: {mode: parallel, max: 100}\nactions:\n  - {id: out, type: set, config: {values: {body: '{{ trigger.body }}'}}}\n";
const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const SLACKED: &str = "id: slacked\ntriggers:\n  - {type: webhook, path: /slack, scheme: slack, secret: '{{ secrets.slack_key }}'}\nconcurrency: {mode: parallel, max: 100}\nactions:\n  - {id: out, type: set, config: {values: {event: '{{ trigger.body.event.type }}'}}}\n";
const OPEN: &str = "id: open\ntriggers:\n  - {type: webhook, path: /open, scheme: none}\nconcurrency: {mode: parallel, max: 100}\nactions:\n  - {id: out, type: log, config: {message: '{{ trigger.body }}'}}\n";
const MANUAL: &str = "id: hello\ntriggers: [{type: manual}]\nvariables: {who: world}\nactions:\n  - {id: greet, type: set, config: {values: {text: 'hello {{ vars.who }}'}}}\n";
const SLOW: &str = "id: slow\ntriggers: [{type: manual}]\nactions:\n  - {id: first, type: delay, config: {duration: 300ms}}\n  - {id: wait, type: delay, config: {duration: 60s}}\n";

/// An engine and the API on 127.0.0.1:0 over `dir` (data and workflows), with the webhook keys
/// in a memory secret store.
struct Server {
    base: String,
    token: String,
    engine: Engine,
    speaker: Arc<RecordingSpeaker>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    flows: PathBuf,
}

impl Server {
    async fn start(dir: &Path, max_body: usize) -> Server {
        Server::start_full(dir, max_body, None).await
    }

    /// [`Server::start`] with a voice loop over the real whisper `model`.
    async fn start_full(dir: &Path, max_body: usize, model: Option<&Path>) -> Server {
        let flows = dir.join("flows");
        let empty = dir.join("no-bundled");
        std::fs::create_dir_all(&flows).unwrap();
        std::fs::create_dir_all(&empty).unwrap();
        let mut config = Config {
            bundled_workflows: Some(empty),
            workflows_dir: Some(flows.clone()),
            ..Config::default()
        };
        config.api.listen = "127.0.0.1:0".into();
        config.api.max_body_bytes = max_body;
        let paths = Paths {
            config_file: dir.join("config.toml"),
            data_dir: dir.join("data"),
            user_workflows: flows.clone(),
        };
        std::fs::create_dir_all(&paths.data_dir).unwrap();
        let store = Store::open(&paths.database()).unwrap();
        let speaker = Arc::new(RecordingSpeaker::default());
        let metered = atlas::voice::MeteredSpeaker::new(speaker.clone());
        let mut services = atlas::runtime::services(&config, &paths, metered.clone()).unwrap();
        let secrets = MemorySecrets::default();
        secrets.set("gh_key", GH_SECRET);
        secrets.set("std_key", STD_SECRET);
        secrets.set("slack_key", SLACK_SECRET);
        services.secrets = Arc::new(secrets);
        let engine = Engine::new(store, services);
        let report = atlas::workflow::load_sources(&config.workflow_dirs(&paths));
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        engine.set_workflows(report.workflows.iter().cloned());
        let voice = model.map(|m| {
            let stt = atlas::stt::Transcriber::new(atlas::stt::SttConfig::new(m.to_path_buf()));
            Arc::new(
                atlas::voice::VoiceLoop::new(engine.clone(), stt, metered, config.voice.clone())
                    .expect("voice loop"),
            )
        });
        let integrations = Arc::new(atlas::integrations::Integrations::new(
            config.integrations.clone(),
            &paths.config_file,
            &paths.data_dir,
            Arc::new(MemorySecrets::default()),
            Arc::new(MemorySecrets::default()),
            Arc::new(atlas::integrations::DesktopAnnounce),
            None,
        ));
        let a = Api::new(ApiParts {
            engine: engine.clone(),
            voice,
            config: config.clone(),
            paths,
            status: None,
            integrations: Some(integrations),
        })
        .unwrap();
        let listener = api::bind(&config.api).await.unwrap().unwrap();
        let stop = CancellationToken::new();
        let task = api::start(a.clone(), listener, stop.clone());
        Server {
            base: a.url().unwrap(),
            token: std::fs::read_to_string(dir.join("data/api-token")).unwrap(),
            engine,
            speaker,
            stop,
            task,
            flows,
        }
    }

    async fn with(dir: &Path, yamls: &[&str]) -> Server {
        std::fs::create_dir_all(dir.join("flows")).unwrap();
        for (i, y) in yamls.iter().enumerate() {
            std::fs::write(dir.join(format!("flows/w{i}.yaml")), y).unwrap();
        }
        Server::start(dir, 64 * 1024).await
    }

    /// One client for the whole test binary: building one loads the TLS roots.
    fn client() -> reqwest::Client {
        static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
        CLIENT
            .get_or_init(|| reqwest::Client::builder().no_proxy().build().unwrap())
            .clone()
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        Self::client()
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        Self::client()
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    async fn runs(&self) -> Vec<atlas::store::RunRecord> {
        self.engine.store().flush().await.unwrap();
        self.engine.store().list_runs(None, 100_000).unwrap()
    }

    /// Waits (10 s at most) until run `id` has `status` in the store.
    async fn wait_status(&self, id: &str, status: &str) {
        for _ in 0..200 {
            self.engine.store().flush().await.unwrap();
            let now = self.engine.store().get_run(id).unwrap();
            if now.as_ref().is_some_and(|r| r.status.as_str() == status) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("run {id} never became {status}");
    }

    async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
        self.engine.shutdown("test over").await;
    }
}

async fn json_of(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A signed delivery to `path`.
fn delivery(
    s: &Server,
    path: &str,
    scheme: Scheme,
    secret: &str,
    body: &[u8],
    id: &str,
    ts: i64,
) -> reqwest::RequestBuilder {
    let mut req = Server::client()
        .post(format!("{}/hooks{path}", s.base))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (k, v) in sign(scheme, secret, body, id, ts) {
        req = req.header(k, v);
    }
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_host_and_origin_guard_every_v1_route_and_refusals_start_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::with(dir.path(), &[MANUAL]).await;
    let mode = std::fs::metadata(dir.path().join("data/api-token")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );
    let url = format!("{}/v1/workflows/hello/run", s.base);
    let c = Server::client();
    let (st, body) = json_of(c.post(&url).send().await.unwrap()).await;
    assert_eq!(st, 401, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("atlas api token")
    );
    let (st, _) = json_of(c.post(&url).bearer_auth("wrong").send().await.unwrap()).await;
    assert_eq!(st, 401);
    let (st, body) = json_of(
        s.post("/v1/workflows/hello/run")
            .header("host", "evil.example:7077")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, 403, "{body}");
    let (st, body) = json_of(
        s.post("/v1/workflows/hello/run")
            .header("origin", "https://evil.example")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("evil.example")
    );
    // A loopback origin (a local dashboard) is fine.
    let (st, _) = json_of(
        s.get("/v1/status")
            .header("origin", "http://localhost:5173")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, 200);
    let (st, body) = json_of(
        s.post("/v1/workflows/hello/run")
            .body("{not json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 1"),
        "{body}"
    );
    let (st, body) = json_of(s.post("/v1/workflows/nope/run").send().await.unwrap()).await;
    assert_eq!(st, 404, "{body}");
    assert!(s.runs().await.is_empty(), "a refused request started a run");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_route_served_and_each_answers() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::with(dir.path(), &[MANUAL]).await;
    let (st, doc) = json_of(s.get("/v1/openapi.json").send().await.unwrap()).await;
    assert_eq!(st, 200);
    assert_eq!(doc, api::openapi());
    let routes = api::route_docs();
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert_eq!(
        documented,
        routes.len(),
        "the document has routes the table has not"
    );
    for r in &routes {
        let path = r.path.replace("{*path}", "{path}");
        assert!(
            doc["paths"][&path][r.method].is_object(),
            "{} {} is not documented",
            r.method,
            r.path
        );
        // Served: the router answers it (a handler's own 404 has a JSON error; axum's has none).
        let concrete = r.path.replace("{id}", "nope").replace("{*path}", "nope");
        let url = format!("{}{concrete}", s.base);
        let req = match r.method {
            "get" => Server::client().get(url),
            "post" => Server::client().post(url),
            "put" => Server::client().put(url),
            "delete" => Server::client().delete(url),
            m => panic!("method {m}"),
        };
        let resp = req.bearer_auth(&s.token).body("{}").send().await.unwrap();
        let status = resp.status().as_u16();
        if r.path == "/v1/events" {
            assert_eq!(status, 200);
            continue;
        }
        let text = resp.text().await.unwrap();
        assert_ne!(status, 405, "{} {} not served", r.method, r.path);
        assert!(
            status != 404 || text.contains("\"error\""),
            "{} {} not served",
            r.method,
            r.path
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflows_are_validated_written_reloaded_run_and_controlled_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::with(dir.path(), &[]).await;
    // Validation errors carry line and column; nothing is written.
    let bad = "id: bad\ntriggers: [{type: manual}]\nactions:\n  - {id: x, type: delay, config: {duration: 1parsec}}\n";
    let (st, v) = json_of(
        s.post("/v1/workflows/validate")
            .body(bad)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(v["ok"], false);
    assert_eq!(v["errors"][0]["line"], 4, "{v}");
    assert!(v["errors"][0]["column"].as_u64().is_some());
    let (st, _) = json_of(s.post("/v1/workflows").body(bad).send().await.unwrap()).await;
    assert_eq!(st, 400);
    assert!(!s.flows.join("bad.yaml").exists());
    // Create, then it runs without a restart.
    let (st, v) = json_of(s.post("/v1/workflows").body(MANUAL).send().await.unwrap()).await;
    assert_eq!(st, 201, "{v}");
    assert!(s.flows.join("hello.yaml").exists());
    let (st, _) = json_of(s.post("/v1/workflows").body(MANUAL).send().await.unwrap()).await;
    assert_eq!(st, 409);
    let (st, v) = json_of(s.get("/v1/workflows/hello").send().await.unwrap()).await;
    assert_eq!(st, 200);
    assert_eq!(v["definition"]["variables"]["who"], "world");
    assert_eq!(v["editable"], true);
    let (st, v) = json_of(
        s.post("/v1/workflows/hello/run")
            .json(&json!({"vars": {"who": "api"}, "wait": true}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["status"], "succeeded");
    assert_eq!(v["result"]["text"], "hello api");
    let run_id = v["run_id"].as_str().unwrap().to_owned();
    let (st, v) = json_of(s.get(&format!("/v1/runs/{run_id}")).send().await.unwrap()).await;
    assert_eq!(st, 200);
    assert_eq!(v["run"]["trigger_data"]["source"], "api");
    assert_eq!(v["actions"][0]["action_id"], "greet");
    let (_, v) = json_of(s.get("/v1/runs?workflow=hello").send().await.unwrap()).await;
    assert_eq!(v["runs"].as_array().unwrap().len(), 1);
    // Disabled: the file says so, a run is refused.
    let (st, _) = json_of(s.post("/v1/workflows/hello/disable").send().await.unwrap()).await;
    assert_eq!(st, 200);
    assert!(
        std::fs::read_to_string(s.flows.join("hello.yaml"))
            .unwrap()
            .contains("enabled: false")
    );
    let (st, v) = json_of(s.post("/v1/workflows/hello/run").send().await.unwrap()).await;
    assert_eq!(st, 409, "{v}");
    let (st, _) = json_of(s.post("/v1/workflows/hello/enable").send().await.unwrap()).await;
    assert_eq!(st, 200);
    // Replace with a body whose id is not the URL's: refused.
    let (st, _) = json_of(
        Server::client()
            .put(format!("{}/v1/workflows/other", s.base))
            .bearer_auth(&s.token)
            .body(MANUAL)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, 400);
    let (st, _) = json_of(
        Server::client()
            .put(format!("{}/v1/workflows/slow", s.base))
            .bearer_auth(&s.token)
            .body(SLOW)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, 200);
    // Pause, resume, cancel a run that would take a minute.
    let (st, v) = json_of(s.post("/v1/workflows/slow/run").send().await.unwrap()).await;
    assert_eq!(st, 202, "{v}");
    let id = v["run_id"].as_str().unwrap().to_owned();
    let (st, _) = json_of(
        s.post(&format!("/v1/runs/{id}/pause"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, 200);
    s.wait_status(&id, "paused").await;
    let (st, _) = json_of(
        s.post(&format!("/v1/runs/{id}/resume"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, 200);
    let (st, _) = json_of(
        s.post(&format!("/v1/runs/{id}/cancel"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, 200);
    s.wait_status(&id, "cancelled").await;
    let (st, v) = json_of(
        s.post(&format!("/v1/runs/{id}/cancel"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, 409, "{v}");
    // Delete: gone from the folder and the engine.
    let (st, _) = json_of(
        Server::client()
            .delete(format!("{}/v1/workflows/hello", s.base))
            .bearer_auth(&s.token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, 200);
    assert!(!s.flows.join("hello.yaml").exists());
    let (st, _) = json_of(s.post("/v1/workflows/hello/run").send().await.unwrap()).await;
    assert_eq!(st, 404);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_carries_run_events() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::with(dir.path(), &[MANUAL]).await;
    let mut events = s.get("/v1/events").send().await.unwrap();
    assert_eq!(events.status(), 200);
    let (st, _) = json_of(s.post("/v1/workflows/hello/run").send().await.unwrap()).await;
    assert_eq!(st, 202);
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains("event: run_finished") {
        let chunk = tokio::time::timeout_at(deadline, events.chunk())
            .await
            .expect("events in time")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: run_started"), "{seen}");
    assert!(seen.contains("\"workflow_id\":\"hello\""), "{seen}");
    drop(events);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_github_delivery_runs_once_with_its_body_headers_and_query_and_bad_ones_start_nothing()
 {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::with(dir.path(), &[HOOKED, OPEN]).await;
    let body = br#"{"action":"opened"}"#;
    let (st, v) = json_of(
        delivery(&s, "/gh?x=7", Scheme::Github, GH_SECRET, body, "d-1", now())
            .header("x-github-event", "issues")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, 202, "{v}");
    let run_id = v["run_id"].as_str().unwrap().to_owned();
    let outcome = loop {
        let r = s.runs().await;
        if let Some(r) = r.iter().find(|r| r.id == run_id && r.status.is_final()) {
            break r.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(outcome.trigger, "webhook");
    assert_eq!(
        outcome.result.as_ref().unwrap(),
        &json!({"action": "opened", "event": "issues", "q": "7"})
    );
    let row = serde_json::to_string(&outcome.trigger_data).unwrap();
    assert!(
        !row.contains("sha256="),
        "a signature reached the run row: {row}"
    );
    assert!(!row.contains(GH_SECRET));

    // Each bad delivery: its status, no run.
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (
            delivery(
                &s,
                "/gh",
                Scheme::Github,
                "wrong secret",
                body,
                "d-2",
                now(),
            ),
            401,
            "does not match",
        ),
        (
            Server::client()
                .post(format!("{}/hooks/gh", s.base))
                .body(body.to_vec()),
            401,
            "missing",
        ),
        (
            delivery(&s, "/gh", Scheme::Github, GH_SECRET, body, "d-1", now()),
            409,
            "already accepted",
        ),
        (
            delivery(
                &s,
                "/gh",
                Scheme::Github,
                GH_SECRET,
                &vec![b'x'; 70 * 1024],
                "d-3",
                now(),
            ),
            413,
            "bytes",
        ),
        (
            delivery(&s, "/gh", Scheme::Github, GH_SECRET, b"{oops", "d-4", now()),
            400,
            "does not parse",
        ),
        (
            delivery(&s, "/nobody", Scheme::Github, GH_SECRET, body, "d-5", now()),
            404,
            "no workflow",
        ),
        (
            delivery(&s, "/open", Scheme::None, "", body, "", now())
                .header("origin", "https://evil.example"),
            403,
            "evil.example",
        ),
    ];
    for (req, want, says) in cases {
        let (st, v) = json_of(req.send().await.unwrap()).await;
        assert_eq!(st, want, "{v}");
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(says), "{want}: {msg}");
        assert!(!msg.contains(GH_SECRET));
    }
    assert_eq!(s.runs().await.len(), 1, "a refused delivery started a run");
    // The malformed-JSON refusal released its id: the sender's fixed retry is accepted.
    let (st, _) = json_of(
        delivery(&s, "/gh", Scheme::Github, GH_SECRET, body, "d-4", now())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, 202);
    let (_, v) = json_of(s.get("/v1/deliveries").send().await.unwrap()).await;
    let list = v["deliveries"].as_array().unwrap();
    assert_eq!(list.iter().filter(|d| d["accepted"] == true).count(), 2);
    let refused: Vec<u64> = list
        .iter()
        .filter(|d| d["accepted"] == false)
        .map(|d| d["status"].as_u64().unwrap())
        .collect();
    assert_eq!(refused.len(), 7, "{v}");
    for code in [401, 409, 413, 400, 404, 403] {
        assert!(refused.contains(&code), "{code} not recorded: {v}");
    }
    assert!(
        list.iter()
            .all(|d| d["accepted"] == true || d["reason"].as_str().is_some_and(|r| !r.is_empty()))
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_webhooks_refuse_stale_timestamps_and_replays_even_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::with(dir.path(), &[STANDARD]).await;
    let body = br#"{"email":"test@example.com"}"#;
    let (st, v) = json_of(
        delivery(
            &s,
            "/std",
            Scheme::Standard,
            STD_SECRET,
            body,
            "msg_1",
            now() - 301,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(st, 401);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("timestamp"),
        "{v}"
    );
    let (st, v) = json_of(
        delivery(
            &s,
            "/std",
            Scheme::Standard,
            STD_SECRET,
            body,
            "msg_1",
            now(),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(st, 202, "{v}");
    let (st, _) = json_of(
        delivery(
            &s,
            "/std",
            Scheme::Standard,
            STD_SECRET,
            body,
            "msg_1",
            now(),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(st, 409);
    s.stop().await;

    // The same database, a new process's worth of state: the replay is still refused.
    let s = Server::start(dir.path(), 64 * 1024).await;
    let (st, v) = json_of(
        delivery(
            &s,
            "/std",
            Scheme::Standard,
            STD_SECRET,
            body,
            "msg_1",
            now(),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(st, 409, "{v}");
    let (st, _) = json_of(
        delivery(
            &s,
            "/std",
            Scheme::Standard,
            STD_SECRET,
            body,
            "msg_2",
            now(),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(st, 202);
    let runs = s.runs().await;
    assert_eq!(runs.len(), 2);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_signed_deliveries_from_sixteen_clients_give_exactly_one_run_each() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(Server::with(dir.path(), &[HOOKED]).await);
    const N: usize = 2000;
    const CLIENTS: usize = 16;
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut accepted = Vec::new();
            let mut replays = 0;
            for i in (c..N).step_by(CLIENTS) {
                let body = format!("{{\"action\":\"n{i}\"}}");
                // Every tenth delivery is sent twice: the copy must be refused.
                let copies = if i % 10 == 0 { 2 } else { 1 };
                for _ in 0..copies {
                    let r = delivery(
                        &s,
                        "/gh",
                        Scheme::Github,
                        GH_SECRET,
                        body.as_bytes(),
                        &format!("load-{i}"),
                        now(),
                    )
                    .send()
                    .await
                    .unwrap();
                    match r.status().as_u16() {
                        202 => {
                            accepted.push(json_of(r).await.1["run_id"].as_str().unwrap().to_owned())
                        }
                        409 => replays += 1,
                        other => panic!("delivery {i}: {other}"),
                    }
                }
            }
            (accepted, replays)
        }));
    }
    let mut accepted = Vec::new();
    let mut replays = 0;
    for t in tasks {
        let (a, r) = t.await.unwrap();
        accepted.extend(a);
        replays += r;
    }
    assert_eq!(accepted.len(), N, "every distinct delivery accepted once");
    assert_eq!(replays, N / 10, "every copy refused");
    let engine = s.engine.clone();
    eventually("every run ended", || engine.active_runs().is_empty()).await;
    let runs = s.runs().await;
    assert_eq!(runs.len(), N, "none lost, none doubled");
    let mut ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    ids.sort();
    let mut want: Vec<&str> = accepted.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(ids, want);
    let mut deliveries: Vec<String> = runs
        .iter()
        .map(|r| r.trigger_data["delivery"].as_str().unwrap().to_owned())
        .collect();
    deliveries.sort();
    deliveries.dedup();
    assert_eq!(deliveries.len(), N);
    let failed = runs.iter().find(|r| r.status.as_str() != "succeeded");
    assert!(failed.is_none(), "{failed:?}");
    match Arc::try_unwrap(s) {
        Ok(s) => s.stop().await,
        Err(_) => panic!("server still shared"),
    }
}

const VOLUME: &str = "id: volume\ntriggers: [{type: voice, phrases: ['(set|turn) [the] volume to {level:low|medium|high}']}]\nactions:\n  - {id: say, type: speak, config: {text: 'The volume is now {{ trigger.slots.level }}.'}}\n";

/// Sends `req` and reads its JSON answer.
async fn call(req: reqwest::RequestBuilder) -> (u16, Value) {
    json_of(req.send().await.unwrap()).await
}

/// A 16-bit WAV file's bytes: `samples` at `rate` Hz, mono.
fn wav_bytes(dir: &Path, samples: &[f32], rate: u32) -> Vec<u8> {
    let path = dir.join(format!("clip-{}.wav", samples.len()));
    atlas::audio::write_wav_i16(&path, samples, rate, 1).unwrap();
    std::fs::read(path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utterances_as_wav_or_text_run_like_speech_and_bad_recordings_start_nothing() {
    let Some(model) = crate::voice::model() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("flows")).unwrap();
    std::fs::write(dir.path().join("flows/volume.yaml"), VOLUME).unwrap();
    let s = Server::start_full(dir.path(), 64 * 1024, Some(&model)).await;

    // A recording as espeak-ng writes it (22,050 Hz mono), declared audio/wav.
    let spoken = dir.path().join("volume.wav");
    crate::voice::espeak("Set the volume to high.", "en-us", 160, &spoken);
    let (status, v) = call(
        s.post("/v1/utterance")
            .header("content-type", "audio/wav")
            .body(std::fs::read(&spoken).unwrap()),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["workflow"], "volume", "{v}");
    assert_eq!(v["slots"]["level"], "high", "{v}");
    assert!(v["timings"]["stt_ms"].as_u64().unwrap() > 0, "{v}");
    let run = v["run"]["id"].as_str().expect("a run id").to_owned();
    s.wait_status(&run, "succeeded").await;
    assert!(
        s.speaker
            .said()
            .iter()
            .any(|t| t == "The volume is now high."),
        "{:?}",
        s.speaker.said()
    );

    // A typed command through the same matcher.
    let (status, v) = call(
        s.post("/v1/utterance")
            .json(&json!({"text": "turn the volume to low"})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["workflow"], "volume", "{v}");
    assert_eq!(v["slots"]["level"], "low", "{v}");
    assert_eq!(v["timings"]["stt_ms"], 0, "{v}");
    let runs_before = s.runs().await.len();

    // Silence, sent with no content type (recognised by its RIFF/WAVE header): heard as
    // nothing, nothing runs.
    let silence = wav_bytes(dir.path(), &vec![0.0; 16_000], 16_000);
    let (status, v) = json_of(s.post("/v1/utterance").body(silence).send().await.unwrap()).await;
    assert_eq!(status, 200, "{v}");
    assert!(v["workflow"].is_null(), "{v}");
    assert_eq!(v["reason"], "no speech detected", "{v}");

    // Bytes declared audio/wav that are not a WAV file: 400 saying so.
    let (status, v) = call(
        s.post("/v1/utterance")
            .header("content-type", "audio/wav")
            .body("not a recording at all"),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("WAV"),
        "{v}"
    );

    // Longer than voice.max_seconds (30 s): 413 naming the limit, nothing transcribed.
    let long = wav_bytes(dir.path(), &vec![0.0; 8_000 * 40], 8_000);
    let (status, v) = call(
        s.post("/v1/utterance")
            .header("content-type", "audio/wav")
            .body(long),
    )
    .await;
    assert_eq!(status, 413, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_seconds"),
        "{v}"
    );

    // Speech that matches no workflow: heard, nothing runs.
    let (status, v) = call(
        s.post("/v1/utterance")
            .json(&json!({"text": "what a lovely afternoon for a walk"})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert!(v["workflow"].is_null(), "{v}");
    // Malformed JSON and an empty command: 400.
    for body in ["{\"text\": ", "{\"text\": \"  \"}", "{\"words\": \"hi\"}"] {
        let r = s
            .post("/v1/utterance")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
    }
    assert_eq!(
        s.runs().await.len(),
        runs_before,
        "a refused or unmatched command ran"
    );
    s.stop().await;
}

#[tokio::test]
async fn say_speaks_through_the_daemons_speaker_and_utterance_needs_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::with(dir.path(), &[MANUAL]).await;
    let (status, v) = call(
        s.post("/v1/say")
            .json(&json!({"text": "The kettle has boiled."})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["said"], "The kettle has boiled.");
    assert_eq!(s.speaker.said(), ["The kettle has boiled."]);
    for body in ["{\"text\": \"\"}", "not json", "{\"text\": 3}"] {
        let r = s.post("/v1/say").body(body).send().await.unwrap();
        assert_eq!(r.status(), 400, "{body}");
    }
    assert_eq!(s.speaker.said().len(), 1, "a refused say spoke");
    // Without a whisper model there is no voice loop: 503 with why, for text and audio alike.
    let (status, v) = call(s.post("/v1/utterance").json(&json!({"text": "hello"}))).await;
    assert_eq!(status, 503, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("whisper model"),
        "{v}"
    );
    assert!(s.runs().await.is_empty());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_deliveries_answer_the_url_challenge_run_signed_events_once_and_refuse_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::with(dir.path(), &[SLACKED]).await;
    let send = |body: &'static [u8], secret: &'static str, ts: i64| {
        delivery(&s, "/slack", Scheme::Slack, secret, body, "", ts)
    };
    // Saving the Events API URL: Slack sends a signed challenge and wants it back.
    let challenge = br#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let (st, v) = json_of(send(challenge, SLACK_SECRET, now()).send().await.unwrap()).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v["challenge"],
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );
    // An unsigned or wrongly signed challenge is refused like any delivery.
    let (st, _) = json_of(
        send(challenge, "another secret", now())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, 401);
    assert!(s.runs().await.is_empty(), "a challenge started a run");

    let event = br#"{"type":"event_callback","event":{"type":"app_mention","text":"hi"}}"#;
    let signed = send(event, SLACK_SECRET, now()).build().unwrap();
    let replay = signed.try_clone().unwrap();
    let (st, v) = json_of(Server::client().execute(signed).await.unwrap()).await;
    assert_eq!(st, 202, "{v}");
    s.wait_status(v["run_id"].as_str().unwrap(), "succeeded")
        .await;
    // The same signed request again (a replay, not Slack's retry, which is signed anew): 409.
    let (st, _) = json_of(Server::client().execute(replay).await.unwrap()).await;
    assert_eq!(st, 409);
    // A stale timestamp (over 5 minutes) and a wrong secret: 401.
    let (st, v) = json_of(send(event, SLACK_SECRET, now() - 600).send().await.unwrap()).await;
    assert_eq!(st, 401, "{v}");
    let (st, _) = json_of(send(event, "another secret", now()).send().await.unwrap()).await;
    assert_eq!(st, 401);
    let runs = s.runs().await;
    assert_eq!(runs.len(), 1, "only the signed event ran");
    let out = s.engine.store().run_actions(&runs[0].id).unwrap();
    assert_eq!(out[0].output.as_ref().unwrap()["event"], "app_mention");
    // Every delivery is on record: the challenge answered, the run, the refusals with why.
    let d = s.engine.store().deliveries(100).unwrap();
    assert_eq!(d.len(), 6, "{d:?}");
    assert_eq!(d.iter().filter(|d| d.accepted).count(), 1);
    assert!(d.iter().any(|d| {
        d.status == 200
            && d.reason
                .as_deref()
                .unwrap_or("")
                .contains("url_verification")
    }));
    s.stop().await;
}

#[tokio::test]
async fn integrations_are_listed_checked_and_refused_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::with(dir.path(), &[MANUAL]).await;
    let (st, v) = json_of(s.get("/v1/integrations").send().await.unwrap()).await;
    assert_eq!(st, 200);
    assert_eq!(v["integrations"][0]["name"], "gmail");
    assert_eq!(v["integrations"][0]["state"], "disconnected");
    assert_eq!(v["integrations"][1]["name"], "calendar");
    let (st, v) = json_of(s.get("/v1/integrations/outlook").send().await.unwrap()).await;
    assert_eq!(st, 404);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gmail, calendar, github, slack, discord, notion, spotify, binance"),
        "{v}"
    );
    let (st, v) = json_of(s.get("/v1/integrations/gmail").send().await.unwrap()).await;
    assert_eq!(
        (st, v["state"].as_str()),
        (200, Some("disconnected")),
        "{v}"
    );
    let (st, v) = json_of(
        Server::client()
            .post(format!("{}/v1/integrations/calendar/connect", s.base))
            .bearer_auth(&s.token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, 409, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("[integrations.calendar]"),
        "{v}"
    );
    // Without the token: refused like every /v1 route.
    let st = Server::client()
        .get(format!("{}/v1/integrations", s.base))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(st, 401);
}
