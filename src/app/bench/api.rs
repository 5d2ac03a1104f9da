//! `atlas bench api`: webhook deliveries through the real HTTP server on loopback.
//!
//! An engine on a temporary SQLite file and the API on `127.0.0.1:0`; 16 clients send 2,000
//! GitHub-signed deliveries (each a distinct delivery id) to a one-action workflow. Figures:
//! - `deliveries_per_sec`: accepted deliveries over the wall time of sending them all;
//! - `accept_p50_ms` / `accept_p99_ms`: from sending a delivery to its 202 (the run queued,
//!   not ended);
//! - `runs_recorded`: runs in the database once every run ended (should equal `accepted`).
//!
//! A figure with nothing measured is `null`, never 0.

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use super::{figure, print_figures, rss_mb};
use atlas::api::{self, Api, ApiParts};
use atlas::config::{Config, Paths};
use atlas::engine::Engine;
use atlas::secrets::MemorySecrets;
use atlas::store::Store;
use atlas::triggers::signature::{Scheme, sign};
use atlas::tts::RecordingSpeaker;

const HOOK: &str = "id: bench_hook\ntriggers:\n  - {type: webhook, path: /bench, scheme: github, secret: '{{ secrets.bench_key }}'}\nconcurrency: {mode: parallel, max: 100000}\nactions:\n  - {id: out, type: set, config: {values: {n: '{{ trigger.body.n }}'}}}\n";
const KEY: &str = "bench secret, not a real one";

/// Runs the API benchmark: `deliveries` from `clients` concurrent clients.
pub async fn api(deliveries: usize, clients: usize, as_json: bool) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let flows = tmp.path().join("flows");
    let empty = tmp.path().join("bundled");
    std::fs::create_dir_all(&flows)?;
    std::fs::create_dir_all(&empty)?;
    std::fs::write(flows.join("bench_hook.yaml"), HOOK)?;
    let mut config = Config {
        bundled_workflows: Some(empty),
        workflows_dir: Some(flows.clone()),
        ..Config::default()
    };
    config.api.listen = "127.0.0.1:0".into();
    let paths = Paths {
        config_file: tmp.path().join("none.toml"),
        data_dir: tmp.path().join("data"),
        user_workflows: flows,
    };
    std::fs::create_dir_all(&paths.data_dir)?;
    let store = Store::open(&paths.database())?;
    let mut services =
        atlas::runtime::services(&config, &paths, Arc::new(RecordingSpeaker::default()))?;
    let secrets = MemorySecrets::default();
    secrets.set("bench_key", KEY);
    services.secrets = Arc::new(secrets);
    let engine = Engine::new(store, services);
    let report = atlas::workflow::load_sources(&config.workflow_dirs(&paths));
    engine.set_workflows(report.workflows.iter().cloned());
    let server = Api::new(ApiParts {
        engine: engine.clone(),
        voice: None,
        config: config.clone(),
        paths,
        status: None,
        integrations: None,
    })?;
    let listener = api::bind(&config.api)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the API did not bind"))?;
    let stop = tokio_util::sync::CancellationToken::new();
    let task = api::start(server.clone(), listener, stop.clone());
    let url = format!(
        "{}/hooks/bench",
        server.url().ok_or_else(|| anyhow::anyhow!("no API URL"))?
    );
    let client = reqwest::Client::builder().no_proxy().build()?;

    let clients = clients.max(1);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut refused = 0usize;
            for i in (c..deliveries).step_by(clients) {
                let body = format!("{{\"n\":{i}}}");
                let now = chrono::Utc::now().timestamp();
                let mut req = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone());
                for (k, v) in sign(Scheme::Github, KEY, body.as_bytes(), &format!("b-{i}"), now) {
                    req = req.header(k, v);
                }
                let sent = Instant::now();
                match req.send().await {
                    Ok(r) if r.status().as_u16() == 202 => {
                        latencies.push(sent.elapsed().as_secs_f64() * 1e3)
                    }
                    _ => refused += 1,
                }
            }
            (latencies, refused)
        }));
    }
    let mut latencies = Vec::new();
    let mut refused = 0;
    for t in tasks {
        let (l, r) = t.await?;
        latencies.extend(l);
        refused += r;
    }
    let wall = t0.elapsed().as_secs_f64();
    while !engine.active_runs().is_empty() {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    engine.store().flush().await?;
    let recorded = engine
        .store()
        .list_runs(Some("bench_hook"), deliveries + 1)?
        .len();
    let accepted = latencies.len();
    let figures = json!({
        "deliveries": deliveries,
        "clients": clients,
        "accepted": accepted,
        "refused": refused,
        "runs_recorded": recorded,
        "deliveries_per_sec": (accepted > 0).then(|| (accepted as f64 / wall).round()),
        "accept_p50_ms": figure(&latencies, 0.5),
        "accept_p99_ms": figure(&latencies, 0.99),
        "rss_mb": rss_mb(),
        "build": if cfg!(debug_assertions) { "debug" } else { "release" },
    });
    stop.cancel();
    let _ = task.await;
    engine.shutdown("benchmark over").await;
    print_figures(&figures, as_json)
}
