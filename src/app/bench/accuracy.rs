//! `atlas bench accuracy`: how often the voice loop does the right thing, on a corpus far broader
//! than the tests.
//!
//! The corpus (bench/accuracy/) is every bundled workflow plus test workflows built on contrastive
//! pairs (on/off, lock/unlock, increase/decrease, pause/unpause, start/stop, enable/disable), list
//! slots with rare names, numbers and free text; its phrasings are in-grammar commands,
//! paraphrases, off-topic speech and questions about the same subjects.
//! scripts/accuracy-corpus.py expands them into a manifest: each utterance rendered by several
//! espeak-ng English voices at several speeds, clean or mixed with white or pink noise at 20, 10
//! and 5 dB SNR, plus silence and noise alone. The manifest and the rendered WAVs are cached
//! under `~/.cache/atlas/accuracy/<hash of the corpus>/`.
//!
//! Each item goes through the voice loop as the daemon runs it (speech gate, whisper with the
//! matcher's initial prompt, matcher, run), over stand-ins of the workflows that keep their voice
//! phrases and do nothing but succeed. Figures: accuracy per class (right workflow and slots; for
//! the classes that must start nothing, nothing started), `intent_pct` (right workflow whatever
//! the slots), false starts, wrong-workflow starts, word error rate of the transcript against the
//! spoken text (over the matcher's words: case, punctuation and spelled-out numbers aside), the
//! accuracy per noise condition and the most frequent confusions. A figure with nothing measured
//! is null and `nulls` says why.

mod clips;
mod gate;
mod score;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{figure, print_figures, round1};
use crate::app::{Global, build, resolve_model};
use atlas::config::WorkflowSource;
use atlas::stt::{SttConfig, Transcriber};
use atlas::tts::RecordingSpeaker;
use atlas::voice::{MeteredSpeaker, VoiceLoop};
use atlas::workflow::{TriggerDef, Workflow};
use clips::Item;
use score::Outcome;

/// Options of `atlas bench accuracy`.
pub struct AccuracyOpts {
    /// `--model`.
    pub model: Option<String>,
    /// How many items to run (a sample spread over the classes).
    pub limit: usize,
    /// Run the whole corpus.
    pub full: bool,
    /// The corpus folder (default: the source tree's bench/accuracy).
    pub corpus: Option<PathBuf>,
    /// Where the manifest and WAVs are cached (default: ~/.cache/atlas/accuracy).
    pub cache: Option<PathBuf>,
    /// `--json`.
    pub json: bool,
    /// `--text`: each distinct text typed, no whisper.
    pub text: bool,
    /// `--dump`: every outcome as a JSON line.
    pub dump: Option<PathBuf>,
    /// `--gate`: only the speech gate, on the whole corpus.
    pub gate: bool,
}

/// The manifest scripts/accuracy-corpus.py writes.
#[derive(Deserialize)]
struct Manifest {
    hash: String,
    voices: Vec<String>,
    voices_skipped: Vec<Value>,
    items: Vec<Item>,
}

/// What share of a sample each class gets (the rest of the corpus is mostly commands).
const SHARES: [(&str, f64); 5] = [
    ("in_grammar", 0.4),
    ("paraphrase", 0.2),
    ("off_topic", 0.15),
    ("question", 0.15),
    ("silence_noise", 0.1),
];

/// Runs the accuracy benchmark and prints its figures.
pub async fn accuracy(global: &Global, opts: AccuracyOpts) -> anyhow::Result<()> {
    let started = Instant::now();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = opts
        .corpus
        .clone()
        .unwrap_or_else(|| root.join("bench/accuracy"));
    let cache = opts.cache.clone().unwrap_or_else(default_cache);
    let manifest_path = generate(&root.join("scripts/accuracy-corpus.py"), &corpus, &cache)?;
    let manifest: Manifest = serde_json::from_slice(
        &std::fs::read(&manifest_path)
            .with_context(|| format!("cannot read {}", manifest_path.display()))?,
    )
    .with_context(|| format!("{} is not a corpus manifest", manifest_path.display()))?;
    let wavs = manifest_path.with_file_name("wav");
    let items = if opts.text {
        distinct_texts(&manifest.items)
    } else if opts.full {
        manifest.items.clone()
    } else {
        sample(&manifest.items, opts.limit)
    };
    if opts.gate {
        let out = gate::report(&manifest.hash, &items, &wavs, started)?;
        return print_figures(&Value::Object(out), opts.json);
    }

    let (config, paths) =
        atlas::config::load(global.config.as_deref(), global.data_dir.as_deref())?;
    // Typed, whisper never loads: no model is needed.
    let model = if opts.text {
        PathBuf::new()
    } else {
        resolve_model(opts.model.as_deref(), &config, &paths)?
    };
    let tmp = tempfile::tempdir()?;
    let speaker = MeteredSpeaker::new(Arc::new(RecordingSpeaker::default()));
    let bench_global = Global {
        data_dir: Some(tmp.path().join("data")),
        config: Some(tmp.path().join("none.toml")),
        workflows: Vec::new(),
    };
    let app = build(&bench_global, speaker.clone())?;
    let ids = stand_ins(&app.engine, &corpus.join("workflows"))?;
    if let Some(missing) = items
        .iter()
        .filter_map(|i| i.expect.workflow.as_ref())
        .find(|w| !ids.contains(w))
    {
        anyhow::bail!(
            "the corpus expects workflow `{missing}`, which neither the bundled workflows nor {} define",
            corpus.display()
        );
    }
    let transcriber = Transcriber::new(SttConfig::for_voice(model.clone(), &config.voice));
    if !opts.text {
        transcriber.preload().await?;
    }
    let mut voice_cfg = config.voice.clone();
    // An LLM's answer is not a start, and would only make the benchmark slow and networked.
    voice_cfg.llm_fallback = false;
    let voice = VoiceLoop::new(app.engine.clone(), transcriber, speaker, voice_cfg)?;

    let mut dump = match &opts.dump {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot write {}", p.display()))?,
        )),
        None => None,
    };
    let mut outcomes = Vec::with_capacity(items.len());
    for (n, item) in items.iter().enumerate() {
        let h = if opts.text {
            voice.handle_text(&item.text).await
        } else {
            let samples = clips::clip(item, &wavs)?;
            voice.handle(samples, Instant::now()).await?
        };
        if !opts.json && (n + 1) % 25 == 0 {
            eprintln!("{}/{} utterances", n + 1, items.len());
        }
        let outcome = Outcome {
            item: item.clone(),
            started: h.run.as_ref().and(h.workflow.clone()),
            slots: h.slots,
            stt_ms: (!opts.text && !h.transcript.is_empty()).then_some(h.timings.stt_ms as f64),
            transcript: h.transcript,
        };
        if let Some(out) = dump.as_mut() {
            use std::io::Write as _;
            let d = h.decode.as_ref();
            let alt = d.and_then(|d| d.alternative.as_ref());
            let line = json!({"id": item.id, "class": item.class, "said": item.text,
                "voice": item.voice, "speed": item.speed, "condition": item.condition(),
                "expected": item.expect.workflow, "expected_slots": item.expect.slots,
                "heard": outcome.transcript, "free": d.map(|d| &d.text),
                "guided_won": d.map(|d| d.guided), "overruled": d.and_then(|d| d.overruled.as_ref()),
                "alternative": alt.map(|a| &a.text),
                "lost_by": alt.map(|a| a.lost_by), "started": outcome.started,
                "slots": outcome.slots, "right": outcome.right()});
            writeln!(out, "{line}")?;
        }
        outcomes.push(outcome);
    }
    let out = report(&opts, &manifest, &model, &outcomes, started);
    print_figures(&Value::Object(out), opts.json)
}

/// The figures, with what was measured on what.
fn report(
    opts: &AccuracyOpts,
    manifest: &Manifest,
    model: &Path,
    outcomes: &[Outcome],
    started: Instant,
) -> Map<String, Value> {
    let mut nulls = Map::new();
    let mut out = Map::new();
    out.insert(
        "model".into(),
        if opts.text { Value::Null } else { json!(model) },
    );
    out.insert("corpus".into(), json!(manifest.hash));
    out.insert("corpus_items".into(), json!(manifest.items.len()));
    out.insert("utterances".into(), json!(outcomes.len()));
    out.insert("full".into(), json!(opts.full));
    out.insert(
        "mode".into(),
        json!(if opts.text { "typed" } else { "spoken" }),
    );
    out.extend(score::figures(outcomes, &mut nulls));
    if opts.text {
        for k in ["wer_pct", "wer_clean_pct", "wer_noisy_pct"] {
            out.insert(k.into(), Value::Null);
            nulls.insert(k.into(), json!("typed: nothing was transcribed"));
        }
    }
    let stt: Vec<f64> = outcomes.iter().filter_map(|o| o.stt_ms).collect();
    let stt_p50 = figure(&stt, 0.5);
    if stt_p50.is_null() {
        nulls.insert(
            "stt_p50_ms".into(),
            json!("whisper ran on no item of the sample"),
        );
    }
    out.insert("stt_p50_ms".into(), stt_p50);
    out.insert("voices".into(), json!(manifest.voices));
    out.insert(
        "voices_skipped".into(),
        json!(manifest.voices_skipped.len()),
    );
    // Up to 15 of each class, so a class with few misses is seen beside one with many.
    let mut per_class = std::collections::HashMap::<&str, usize>::new();
    let misses: Vec<Value> = outcomes
        .iter()
        .filter(|o| !o.right())
        .filter(|o| {
            let n = per_class.entry(o.item.class.as_str()).or_default();
            *n += 1;
            *n <= 15
        })
        .map(|o| {
            json!({"id": o.item.id, "class": o.item.class, "said": o.item.text,
                   "voice": o.item.voice, "speed": o.item.speed, "condition": o.item.condition(),
                   "heard": o.transcript, "expected": o.item.expect.workflow,
                   "expected_slots": o.item.expect.slots, "started": o.started, "slots": o.slots})
        })
        .collect();
    out.insert("misses".into(), Value::Array(misses));
    out.insert(
        "elapsed_s".into(),
        json!(round1(started.elapsed().as_secs_f64())),
    );
    out.insert("nulls".into(), Value::Object(nulls));
    out
}

/// ~/.cache/atlas/accuracy (or under `XDG_CACHE_HOME`).
fn default_cache() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("atlas/accuracy")
}

/// Runs the corpus generator; the manifest's path.
fn generate(script: &Path, corpus: &Path, cache: &Path) -> anyhow::Result<PathBuf> {
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg("--corpus")
        .arg(corpus)
        .arg("--out")
        .arg(cache)
        .output()
        .context("python3 is needed to generate the accuracy corpus")?;
    anyhow::ensure!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// One item per distinct spoken text (the first of its renderings), for `--text`.
fn distinct_texts(items: &[Item]) -> Vec<Item> {
    let mut seen = std::collections::HashSet::new();
    items
        .iter()
        .filter(|i| !i.text.is_empty() && seen.insert(i.text.clone()))
        .cloned()
        .collect()
}

/// `limit` items spread over the classes by [`SHARES`] (largest remainder, so a sample of 3
/// has one in-grammar command, one paraphrase and one item that must start nothing). The
/// manifest is in a seeded random order, so each class's first items are a fair sample.
fn sample(items: &[Item], limit: usize) -> Vec<Item> {
    let raw: Vec<f64> = SHARES.iter().map(|(_, s)| s * limit as f64).collect();
    let mut quota: Vec<usize> = raw.iter().map(|x| x.floor() as usize).collect();
    let mut order: Vec<usize> = (0..SHARES.len()).collect();
    // Stable sort: equal remainders keep the order of SHARES.
    order.sort_by(|&a, &b| (raw[b] - raw[b].floor()).total_cmp(&(raw[a] - raw[a].floor())));
    let short = limit.saturating_sub(quota.iter().sum());
    for &i in order.iter().take(short) {
        quota[i] += 1;
    }
    let mut out = Vec::with_capacity(limit);
    for ((class, _), want) in SHARES.iter().zip(quota) {
        out.extend(
            items
                .iter()
                .filter(|i| i.class == *class)
                .take(want)
                .cloned(),
        );
    }
    out
}

/// Replaces the engine's workflows with the bundled ones and the corpus's, each reduced to its
/// voice phrases and one action that succeeds at once; their ids.
fn stand_ins(engine: &atlas::engine::Engine, dir: &Path) -> anyhow::Result<Vec<String>> {
    let report = atlas::workflow::load_sources(&[
        WorkflowSource::Embedded,
        WorkflowSource::Dir(dir.to_path_buf()),
    ]);
    if let Some(e) = report.errors.first() {
        anyhow::bail!("a corpus workflow does not load: {e}");
    }
    let mut all = Vec::new();
    for w in &report.workflows {
        let phrases: Vec<&String> = w
            .def
            .triggers
            .iter()
            .filter_map(|t| match t {
                TriggerDef::Voice { phrases, .. } => Some(phrases),
                _ => None,
            })
            .flatten()
            .collect();
        if phrases.is_empty() {
            continue;
        }
        let src = format!(
            "id: {}\ntriggers: [{{type: voice, phrases: {}}}]\nactions:\n  - {{id: done, type: set, config: {{values: {{done: true}}}}}}\n",
            w.id(),
            serde_json::to_string(&phrases)?
        );
        let stand_in: Workflow = atlas::workflow::load_str(&src, Path::new("bench-accuracy.yaml"))
            .map_err(|e| anyhow::anyhow!("stand-in of {}: {e:?}", w.id()))?;
        all.push(Arc::new(stand_in));
    }
    let ids = all.iter().map(|w| w.id().to_owned()).collect();
    engine.set_workflows(all);
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: usize, class: &str) -> Item {
        serde_json::from_value(json!({"id": format!("x{id}"), "class": class, "text": "",
            "noise": "silence", "expect": {"workflow": null}}))
        .unwrap()
    }

    #[test]
    fn a_sample_spreads_over_the_classes_by_their_shares() {
        let items: Vec<Item> = (0..100)
            .flat_map(|i| SHARES.iter().map(move |(c, _)| item(i, c)))
            .collect();
        let count = |s: &[Item], c: &str| s.iter().filter(|i| i.class == c).count();
        let three = sample(&items, 3);
        assert_eq!(three.len(), 3);
        assert_eq!(count(&three, "in_grammar"), 1);
        assert_eq!(count(&three, "paraphrase"), 1);
        let hundred = sample(&items, 100);
        assert_eq!(hundred.len(), 100);
        assert_eq!(count(&hundred, "in_grammar"), 40);
        assert_eq!(count(&hundred, "silence_noise"), 10);
        // A class with fewer items than its quota gives what it has.
        assert_eq!(sample(&items[..5], 100).len(), 5);
    }
}
