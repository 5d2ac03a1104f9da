//! `atlas bench voice`: the voice loop on a 2 s and a 6 s utterance spoken by espeak-ng.
//!
//! - `model_load_ms`: loading the model from the page cache.
//! - `stt_p50_ms`: whisper's decode time, per utterance.
//! - `match_us`: matching a transcript against the bundled workflows' phrases.
//! - `release_to_workflow_p50_ms`: end of audio to the matched workflow's first action started.
//! - `release_to_first_audio_p50_ms`: end of audio to the first reply sample rendered and ready
//!   for the speaker (espeak-ng rendering, through the same speak action the agent uses).
//! - `rss_idle_mb` (model unloaded) and `rss_active_mb` (model loaded, after decoding).
//! - `live`, per utterance: the key held through the utterance and 700 ms after it. The pause
//!   detector the agent uses (`audio::PauseDetector`, default `[voice]` settings) is fed the
//!   recording as it would arrive; at its last pause a speculative decode starts, the release
//!   comes when the rest of the recording would have arrived (real time), and the utterance is
//!   handled with it. `speculative` has the release -> workflow and release -> first audio p50s
//!   of the repetitions whose speculative transcript was used, `speculative_used` how many of
//!   `reps` that was, and `fresh` the same recording decoded at release without speculation.
//!   A pass with nothing to measure (no pause found, nothing used) is `null`.
//!
//! A figure with nothing measured is `null`, never 0: an utterance that matched no workflow has
//! no `release_to_workflow_p50_ms` (and its first audio is the "not understood" reply's, which
//! `matched: false` says).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use serde_json::json;

use super::{at_least, figure, print_figures, round1, rss_mb};
use crate::app::{Global, build, resolve_model};
use atlas::config::VoiceConfig;
use atlas::runtime::Runtime;
use atlas::stt::{SttConfig, Transcriber};
use atlas::tts::espeak::Espeak;
use atlas::tts::{Speaker, WavFileSpeaker};
use atlas::voice::{MeteredSpeaker, VoiceLoop};

const SHORT: &str = "What's the weather like today?";
const LONG: &str = "Good morning Atlas. Could you please read me my daily briefing now, with the weather and the news?";

fn speak_to_wav(text: &str, out: &Path) -> anyhow::Result<Vec<f32>> {
    let status = std::process::Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "160", "-w"])
        .arg(out)
        .arg(text)
        .status()
        .context("espeak-ng is needed for the voice benchmark: apt-get install espeak-ng")?;
    anyhow::ensure!(status.success(), "espeak-ng failed");
    Ok(atlas::audio::read_wav_16k_mono(out)?)
}

/// A runtime on a scratch data folder in `dir` with the bundled workflows, where a local
/// stand-in with the same phrases replaces the weather workflows (they need the network).
fn stand_in_runtime(dir: &Path, speaker: Arc<MeteredSpeaker>) -> anyhow::Result<Runtime> {
    let bench_global = Global {
        data_dir: Some(dir.join("data")),
        config: Some(dir.join("none.toml")),
        workflows: Vec::new(),
    };
    let app = build(&bench_global, speaker)?;
    let stand_in = atlas::workflow::load_str(
        "id: weather\ntriggers: [{type: voice, phrases: [\"what's [the] weather [like] [today]\", \"[read] [me] [my] (morning|daily) briefing [now]\"]}]\nactions:\n  - {id: say, type: speak, config: {text: 'It is sunny and twenty degrees. Enjoy your day.'}}\n",
        Path::new("bench.yaml"),
    )
    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut all: Vec<_> = app
        .engine
        .workflows()
        .values()
        .filter(|w| w.id() != "weather" && w.id() != "morning_briefing")
        .cloned()
        .collect();
    all.push(Arc::new(stand_in));
    app.engine.set_workflows(all);
    Ok(app)
}

/// One clip through the voice loop `reps` times after a warm-up: what it heard and matched,
/// and the p50 of each stage.
async fn measure_clip(
    voice: &VoiceLoop,
    label: &str,
    clip: &[f32],
    reps: usize,
) -> anyhow::Result<serde_json::Value> {
    let mut stt = Vec::new();
    let mut to_wf = Vec::new();
    let mut to_audio = Vec::new();
    let mut matched = None;
    // One warm-up run, then the measured ones.
    for i in 0..=reps {
        let released = Instant::now();
        let h = voice.handle(clip.to_vec(), released).await?;
        if i == 0 {
            matched = Some((h.transcript.clone(), h.workflow.clone()));
            continue;
        }
        stt.push(h.timings.stt_ms as f64);
        if let Some(ms) = h.timings.release_to_workflow_ms {
            to_wf.push(ms);
        }
        if let Some(ms) = h.timings.release_to_first_audio_ms {
            to_audio.push(ms);
        }
    }
    let (transcript, workflow) = matched.unwrap_or_default();
    if workflow.is_none() {
        eprintln!(
            "the {label} utterance matched no workflow (heard {transcript:?}): it has no \
             release-to-workflow figure, and its first audio is the not-understood reply"
        );
    }
    Ok(json!({
        "transcript": transcript,
        "workflow": workflow,
        "matched": workflow.is_some(),
        "stt_p50_ms": figure(&stt, 0.5),
        "release_to_workflow_p50_ms": figure(&to_wf, 0.5),
        "release_to_first_audio_p50_ms": figure(&to_audio, 0.5),
    }))
}

/// The last pause the agent's detector finds in `clip` fed in 40 ms pieces: the snapshot.
fn last_pause(clip: &[f32]) -> Option<Vec<f32>> {
    let cfg = atlas::agent::live_config(&VoiceConfig::default());
    let mut detector = atlas::audio::PauseDetector::new(cfg, atlas::audio::SAMPLE_RATE, 1);
    let mut last = None;
    for piece in clip.chunks(640) {
        for e in detector.push(piece) {
            if let atlas::audio::LiveEvent::Pause(s) = e {
                last = Some(s);
            }
        }
    }
    last
}

/// `clip` with the key held 700 ms after it, `reps` times with a speculative decode from its
/// last pause and `reps` times without.
async fn measure_live(
    voice: &Arc<VoiceLoop>,
    clip: &[f32],
    reps: usize,
) -> anyhow::Result<serde_json::Value> {
    let mut recording = clip.to_vec();
    recording.extend(std::iter::repeat_n(0.0, 700 * 16));
    let Some(snapshot) = last_pause(&recording) else {
        eprintln!("the pause detector found no pause in the utterance: no speculative figures");
        return Ok(serde_json::Value::Null);
    };
    let rest = std::time::Duration::from_millis(((recording.len() - snapshot.len()) / 16) as u64);
    let never = tokio_util::sync::CancellationToken::new();
    let (mut used, mut spec_wf, mut spec_audio) = (0, Vec::new(), Vec::new());
    let (mut fresh_wf, mut fresh_audio) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let speculation = voice.speculate(snapshot.clone(), std::time::Duration::ZERO);
        tokio::time::sleep(rest).await;
        let released = Instant::now();
        let h = voice
            .handle_released(
                recording.clone(),
                released,
                &|_| {},
                &never,
                Some(speculation),
                std::time::Duration::ZERO,
            )
            .await?;
        if h.timings.speculative {
            used += 1;
            spec_wf.extend(h.timings.release_to_workflow_ms);
            spec_audio.extend(h.timings.release_to_first_audio_ms);
        }
        let h = voice.handle(recording.clone(), Instant::now()).await?;
        fresh_wf.extend(h.timings.release_to_workflow_ms);
        fresh_audio.extend(h.timings.release_to_first_audio_ms);
    }
    Ok(json!({
        "speculative_used": used,
        "reps": reps,
        "speculative": {
            "release_to_workflow_p50_ms": figure(&spec_wf, 0.5),
            "release_to_first_audio_p50_ms": figure(&spec_audio, 0.5),
        },
        "fresh": {
            "release_to_workflow_p50_ms": figure(&fresh_wf, 0.5),
            "release_to_first_audio_p50_ms": figure(&fresh_audio, 0.5),
        },
    }))
}

/// Runs the voice benchmark and prints its figures.
pub async fn voice(
    global: &Global,
    model: Option<&str>,
    reps: usize,
    as_json: bool,
) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let (config, paths) =
        atlas::config::load(global.config.as_deref(), global.data_dir.as_deref())?;
    let model = resolve_model(model, &config, &paths)?;
    let short = at_least(speak_to_wav(SHORT, &tmp.path().join("short.wav"))?, 2.0);
    let long = at_least(speak_to_wav(LONG, &tmp.path().join("long.wav"))?, 6.0);

    let wav: Arc<dyn Speaker> = Arc::new(WavFileSpeaker::create(
        &tmp.path().join("reply.wav"),
        Espeak::from_config(&config.speech),
    )?);
    let speaker = MeteredSpeaker::new(wav);
    let app = stand_in_runtime(tmp.path(), speaker.clone())?;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let rss_idle = rss_mb();
    let transcriber = Transcriber::new(SttConfig::for_voice(model.clone(), &config.voice));
    let load = transcriber.preload().await?;
    let voice = Arc::new(VoiceLoop::new(
        app.engine.clone(),
        transcriber.clone(),
        speaker,
        VoiceConfig::default(),
    )?);

    let mut figures = serde_json::Map::new();
    for (label, clip) in [("2s", &short), ("6s", &long)] {
        let mut f = measure_clip(&voice, label, clip, reps).await?;
        f["live"] = measure_live(&voice, clip, reps).await?;
        figures.insert(label.into(), f);
    }
    let rss_active = rss_mb();
    let mut match_times = Vec::new();
    for _ in 0..2000 {
        let t0 = Instant::now();
        std::hint::black_box(voice.match_text("what's the weather like today"));
        match_times.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    transcriber.unload();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let rss_unloaded = rss_mb();
    let out = json!({
        "model": model,
        "model_load_ms": round1(load.as_secs_f64() * 1000.0),
        "match_us": figure(&match_times, 0.5),
        "utterances": figures,
        "stt_p50_ms": figures["2s"]["stt_p50_ms"],
        "release_to_workflow_p50_ms": figures["2s"]["release_to_workflow_p50_ms"],
        "release_to_first_audio_p50_ms": figures["2s"]["release_to_first_audio_p50_ms"],
        "speculative_release_to_workflow_p50_ms": figures["2s"]["live"]["speculative"]["release_to_workflow_p50_ms"],
        "speculative_release_to_first_audio_p50_ms": figures["2s"]["live"]["speculative"]["release_to_first_audio_p50_ms"],
        "rss_idle_mb": rss_idle,
        "rss_active_mb": rss_active,
        "rss_after_unload_mb": rss_unloaded,
        "reps": reps,
    });
    print_figures(&out, as_json)
}
