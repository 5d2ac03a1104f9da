//! Criterion benches for the hot paths: loading a workflow, rendering templates, matching a
//! transcript, and a full 3-action run, durable in SQLite (flushed) before the next.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use atlas::actions::Services;
use atlas::config::LlmDefaults;
use atlas::engine::{Engine, RunRequest};
use atlas::intent::{MatchOptions, Matcher, VoiceEntry};
use atlas::secrets::MemorySecrets;
use atlas::store::Store;
use atlas::template::{TValue, mj};
use atlas::tts::RecordingSpeaker;
use atlas::workflow::load_str;
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

const WEATHER: &str = include_str!("../workflows/weather.yaml");
const THREE: &str = "id: three\ntriggers: [{type: manual}]\nconcurrency: {mode: parallel, max: 1000}\nactions:\n  - {id: a, type: set, config: {values: {x: 1}}}\n  - {id: b, type: log, config: {message: 'x is {{ vars.x }}'}}\n  - {id: c, type: set, config: {values: {y: '{{ vars.x + 1 }}'}}}\n";

fn load(c: &mut Criterion) {
    c.bench_function("load_weather_workflow", |b| {
        b.iter(|| load_str(black_box(WEATHER), Path::new("weather.yaml")).is_ok())
    });
}

fn templates(c: &mut Criterion) {
    let v = TValue::new(json!({"sum": "{{ vars.a + vars.b }}", "text": "hello {{ vars.name }}"}))
        .unwrap();
    let ctx = mj(json!({"vars": {"a": 1, "b": 2, "name": "Ada"}}));
    c.bench_function("render_typed_and_text_templates", |b| {
        b.iter(|| v.render(black_box(&ctx)).unwrap())
    });
}

fn matching(c: &mut Criterion) {
    let entries: Vec<VoiceEntry> = (0..50)
        .map(|i| VoiceEntry {
            workflow_id: format!("wf{i}"),
            phrases: vec![
                format!("run task number {i} [now]"),
                format!("(start|begin) job {i}"),
                "remind me in {minutes:number} minutes to {task}"
                    .replace("remind", &format!("remind{i}")),
            ],
        })
        .collect();
    let m = Matcher::new(&entries, MatchOptions::default()).unwrap();
    c.bench_function("match_transcript_150_phrases", |b| {
        b.iter(|| m.match_text(black_box("please start job 42")))
    });
}

fn run(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("bench.db")).unwrap();
    let services = Services {
        http: atlas::actions::HttpClient::default(),
        speaker: Arc::new(RecordingSpeaker::default()),
        secrets: Arc::new(MemorySecrets::default()),
        file_roots: vec![("files".into(), dir.path().to_path_buf())],
        env: Default::default(),
        llm: LlmDefaults::default(),
        mcp_servers: Default::default(),
        accounts: None,
        questions: Default::default(),
    };
    let engine = rt.block_on(async { Engine::new(store, services) });
    engine.set_workflows([Arc::new(load_str(THREE, Path::new("three.yaml")).unwrap())]);
    // Persisted means durable: each iteration waits until the run's rows are committed.
    c.bench_function("persisted_three_action_run", |b| {
        b.iter(|| {
            rt.block_on(async {
                let outcome = engine.run(RunRequest::manual("three")).await.unwrap();
                engine.store().flush().await.unwrap();
                outcome
            })
        })
    });
}

criterion_group!(benches, load, templates, matching, run);
criterion_main!(benches);
