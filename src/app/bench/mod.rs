//! `atlas bench engine`: start latency, per-action overhead, persisted throughput, idle memory.
//!
//! Figures, on whatever machine runs it:
//! - `start_p50_us`/`start_p99_us`: from `Engine::trigger` to the first action started (seen on
//!   the event bus), over 2,000 runs of a one-action workflow.
//! - `action_overhead_p50_us`: per action of a 50-action workflow of no-op `set` actions.
//! - `runs_per_sec`: 3-action workflows, every run and action written to SQLite, flushed.
//! - `rss_mb`: resident memory of an engine with the bundled workflows loaded, idle.
//!
//! A figure with nothing measured is `null` (`runs_per_sec` with `--runs 0`), never 0; a
//! latency sample that should exist and is empty is an error.

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use crate::app::{Global, build};
use atlas::engine::{Engine, RunRequest};
use atlas::tts::RecordingSpeaker;
use atlas::workflow::load_str;

/// The `p` quantile (0 to 1, nearest rank) of `samples`, in any order; `None` for an empty
/// sample: nothing measured is not a measurement of zero.
pub(crate) fn percentile(samples: &[f64], p: f64) -> Option<f64> {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|x| !x.is_nan()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(|a, b| a.total_cmp(b));
    let idx = ((sorted.len() as f64 - 1.0) * p.clamp(0.0, 1.0)).round() as usize;
    Some(sorted[idx.min(sorted.len() - 1)])
}

/// A percentile as a JSON figure, rounded to 0.1: `null` when nothing was measured.
pub(crate) fn figure(samples: &[f64], p: f64) -> serde_json::Value {
    json!(percentile(samples, p).map(round1))
}

/// A percentile that must exist: an empty sample is an error naming what was not measured.
fn required(samples: &[f64], p: f64, what: &str) -> anyhow::Result<f64> {
    percentile(samples, p)
        .map(round1)
        .ok_or_else(|| anyhow::anyhow!("{what}: nothing was measured"))
}

/// Resident set size of this process in MiB (Linux; `None` where it cannot be read).
pub fn rss_mb() -> Option<f64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| round1(kb / 1024.0))
}

const NOOP: &str = "id: bench_one\ntriggers: [{type: manual}]\nconcurrency: {mode: parallel, max: 100000}\nactions:\n  - {id: a, type: set, config: {values: {}}}\n";
const THREE: &str = "id: bench_three\ntriggers: [{type: manual}]\nconcurrency: {mode: parallel, max: 100000}\nactions:\n  - {id: a, type: set, config: {values: {x: 1}}}\n  - {id: b, type: log, config: {message: step}}\n  - {id: c, type: set, config: {values: {y: 2}}}\n";

fn long_chain(n: usize) -> String {
    let mut s = String::from("id: bench_chain\ntriggers: [{type: manual}]\nactions:\n");
    for i in 0..n {
        s.push_str(&format!(
            "  - {{id: a{i}, type: set, config: {{values: {{}}}}}}\n"
        ));
    }
    s
}

/// Start latency, in µs: trigger to the first `ActionStarted` on the bus, 2,000 runs.
async fn start_latencies(engine: &Engine) -> anyhow::Result<Vec<f64>> {
    let mut events = engine.subscribe();
    let mut starts = Vec::new();
    for _ in 0..2000 {
        let t0 = Instant::now();
        let handle = engine.trigger(RunRequest::manual("bench_one"))?;
        // A start lost to lag is no sample (rather than a wait that never ends).
        if let Some(started) = atlas::engine::first_action_started(&mut events, &handle).await {
            starts.push((started - t0).as_secs_f64() * 1e6);
        }
        handle.wait().await;
    }
    Ok(starts)
}

/// Per-action overhead, in µs: a 50-action run minus a 1-action run, per action, 200 times.
async fn action_overheads(engine: &Engine) -> anyhow::Result<Vec<f64>> {
    let mut per_action = Vec::new();
    for _ in 0..200 {
        let t0 = Instant::now();
        engine.run(RunRequest::manual("bench_chain")).await?;
        let long = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        engine.run(RunRequest::manual("bench_one")).await?;
        let short = t1.elapsed().as_secs_f64();
        per_action.push(((long - short) / 49.0).max(0.0) * 1e6);
    }
    engine.store().flush().await?;
    Ok(per_action)
}

/// Throughput: `runs` 3-action runs, up to 256 in flight, all persisted; runs a second, or
/// `None` when no runs were asked for (not zero runs a second).
async fn throughput(engine: &Engine, runs: usize) -> anyhow::Result<Option<f64>> {
    let t0 = Instant::now();
    let mut handles = Vec::with_capacity(256);
    for _ in 0..runs {
        handles.push(engine.trigger(RunRequest::manual("bench_three"))?);
        if handles.len() == 256 {
            for h in handles.drain(..) {
                h.wait().await;
            }
        }
    }
    for h in handles {
        h.wait().await;
    }
    engine.store().flush().await?;
    let runs_per_sec = (runs > 0).then(|| (runs as f64 / t0.elapsed().as_secs_f64()).round());
    Ok(runs_per_sec)
}

/// Runs the engine benchmark and prints its figures.
pub async fn engine(global: &Global, runs: usize, as_json: bool) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let global = Global {
        data_dir: Some(
            global
                .data_dir
                .clone()
                .unwrap_or_else(|| tmp.path().to_path_buf()),
        ),
        config: Some(
            global
                .config
                .clone()
                .unwrap_or_else(|| tmp.path().join("none.toml")),
        ),
        workflows: global.workflows.clone(),
    };
    let app = build(&global, Arc::new(RecordingSpeaker::default()))?;
    // Idle memory first, with only the bundled workflows loaded.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let rss = rss_mb();
    let engine = app.engine.clone();
    let mut all: Vec<_> = engine.workflows().values().cloned().collect();
    for src in [NOOP.to_owned(), THREE.to_owned(), long_chain(50)] {
        let wf = load_str(&src, std::path::Path::new("bench.yaml"))
            .map_err(|e| anyhow::anyhow!("bench workflow: {:?}", e))?;
        all.push(Arc::new(wf));
    }
    engine.set_workflows(all);

    let starts = start_latencies(&engine).await?;
    let per_action = action_overheads(&engine).await?;
    let runs_per_sec = throughput(&engine, runs).await?;

    let figures = json!({
        "start_p50_us": required(&starts, 0.5, "start latency")?,
        "start_p99_us": required(&starts, 0.99, "start latency")?,
        "action_overhead_p50_us": required(&per_action, 0.5, "per-action overhead")?,
        "runs_per_sec": runs_per_sec,
        "rss_mb": rss,
        "runs": runs,
    });
    print_figures(&figures, as_json)
}

/// Pads (with silence) or keeps `samples` to at least `secs` seconds.
pub(crate) fn at_least(mut samples: Vec<f32>, secs: f64) -> Vec<f32> {
    let want = (secs * atlas::audio::SAMPLE_RATE as f64) as usize;
    if samples.len() < want {
        let pad = (want - samples.len()) / 2;
        let mut out = vec![0.0; pad];
        out.append(&mut samples);
        out.resize(want, 0.0);
        return out;
    }
    samples
}

/// Prints a benchmark's figures: pretty JSON, or one `name value` line each.
fn print_figures(out: &serde_json::Value, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        println!("{}", serde_json::to_string_pretty(out)?);
    } else {
        for (k, v) in out.as_object().into_iter().flatten() {
            println!("{k:<32} {v}");
        }
    }
    Ok(())
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

mod accuracy;
mod agent;
mod api;
mod keys;
mod voice;
pub use accuracy::{AccuracyOpts, accuracy};
pub use agent::agent;
pub use api::api;
pub use voice::voice;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_sample_has_no_percentile() {
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[f64::NAN], 0.5), None);
        assert_eq!(figure(&[], 0.99), serde_json::Value::Null);
        let err = required(&[], 0.5, "start latency").unwrap_err();
        assert_eq!(err.to_string(), "start latency: nothing was measured");
    }

    #[test]
    fn percentiles_are_nearest_rank_of_the_sorted_sample() {
        assert_eq!(percentile(&[7.0], 0.0), Some(7.0));
        assert_eq!(percentile(&[7.0], 0.99), Some(7.0));
        // Unsorted input; 0.0 is a real measurement, not "nothing".
        let xs = [5.0, 1.0, 4.0, 0.0, 3.0, 2.0, 10.0, 8.0, 9.0, 7.0, 6.0];
        assert_eq!(percentile(&xs, 0.0), Some(0.0));
        assert_eq!(percentile(&xs, 0.5), Some(5.0));
        assert_eq!(percentile(&xs, 0.99), Some(10.0));
        assert_eq!(percentile(&xs, 1.0), Some(10.0));
        assert_eq!(figure(&[0.04, 0.26], 1.0), json!(0.3));
        assert_eq!(required(&xs, 0.5, "x").unwrap(), 5.0);
    }
}
