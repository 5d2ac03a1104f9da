//! `atlas bench agent`: the resident agent's figures.
//!
//! - `press_to_recording_ms`: from `Recorder::start` (what a key press calls) to the first
//!   captured sample, on the warm input stream of the default device (median of 10 presses).
//! - `release_to_first_audio_p50_ms`: the agent's release path on a 2 s utterance: the instant of
//!   the release, `Recorder::stop` on a real 2 s recording (resampling included), then the voice
//!   loop (gate, whisper, match, run) until the first reply sample is ready for the daemon's own
//!   speaker chain (config's speech backend behind the hold gate and the meter). The recording
//!   itself holds what the device heard, so the utterance is espeak-ng's (as if it had been said).
//! - `schedule_lateness_p99_ms`: a schedule firing every second for 20 s; how late each run
//!   started after its due time.
//! - `daemon_idle_rss_mb`: resident memory of a real `atlas daemon` in this environment (with
//!   the tray, hotkey and warm microphone when there is a display and a sound server; headless
//!   otherwise), model unloaded, 5 s after start; `daemon_headless` says which.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{at_least, percentile, print_figures, round1};
use crate::agent::GatedSpeaker;
use crate::app::{Global, build, resolve_model};
use crate::audio::Recorder;
use crate::stt::{SttConfig, Transcriber};
use crate::triggers::Scheduler;
use crate::tts::{Speaker, WavFileSpeaker};
use crate::voice::{MeteredSpeaker, VoiceConfig, VoiceLoop};

/// The default input device with a warm stream, as the daemon opens it.
fn recorder() -> Option<Recorder> {
    let cfg = crate::audio::CaptureConfig {
        device: None,
        max_seconds: 10,
        keep_warm: true,
    };
    let rec = Recorder::open(&cfg)
        .map_err(|e| eprintln!("no microphone: {e}"))
        .ok()?;
    // Let the warm stream deliver before measuring, as in the daemon.
    rec.wait_for_audio(Duration::from_secs(5));
    Some(rec)
}

fn press_to_recording(rec: &mut Recorder) -> Option<f64> {
    let mut times = Vec::new();
    for _ in 0..10 {
        rec.start().ok()?;
        std::thread::sleep(Duration::from_millis(300));
        let r = rec.stop().ok()?;
        if let Some(d) = r.first_sample_after {
            times.push(d.as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(|a, b| a.total_cmp(b));
    (!times.is_empty()).then(|| percentile(&times, 0.5))
}

fn daemon_rss(global: &Global, dir: &Path) -> Option<f64> {
    let exe = std::env::current_exe().ok()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.env("ATLAS_DATA_DIR", dir.join("daemon"))
        .arg("daemon")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if let Some(c) = &global.config {
        cmd.env("ATLAS_CONFIG", c);
    }
    let mut child = cmd.spawn().ok()?;
    // Started: tray, hotkey, warm microphone, speech backend; the model stays unloaded until
    // the first press.
    std::thread::sleep(Duration::from_secs(5));
    let rss = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0);
    // SAFETY: SIGTERM to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    rss
}

/// Runs the agent benchmark and prints its figures.
pub async fn agent(global: &Global, model: Option<&str>, as_json: bool) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let (config, paths) =
        crate::config::load(global.config.as_deref(), global.data_dir.as_deref())?;
    let model = resolve_model(model, &config, &paths)?;
    let model_name = model.display().to_string();
    let (mut rec, press) = tokio::task::spawn_blocking(|| {
        let mut rec = recorder();
        let press = rec.as_mut().and_then(press_to_recording);
        (rec, press)
    })
    .await?;

    // The daemon's speaker chain; a WAV file when the machine has no speech output.
    let speech_cfg = config.speech.clone();
    let real = tokio::task::spawn_blocking(move || crate::tts::build_speaker(&speech_cfg)).await?;
    let real: Arc<dyn Speaker> = match real {
        Ok(s) if s.name() != "recorder" => s,
        _ => Arc::new(WavFileSpeaker::create(
            &tmp.path().join("reply.wav"),
            config.speech.espeak(),
        )?),
    };
    let speaker_name = real.name();
    let metered = MeteredSpeaker::new(real);
    let gated = GatedSpeaker::new(metered.clone());
    let bench_global = Global {
        data_dir: Some(tmp.path().join("data")),
        config: Some(tmp.path().join("none.toml")),
        workflows: Vec::new(),
    };
    let app = build(&bench_global, gated.clone())?;
    let sched_src = "id: tick\ntriggers: [{type: schedule, cron: '* * * * * *', missed: skip}]\nconcurrency: {mode: parallel, max: 100}\nactions:\n  - {id: a, type: log, config: {message: tick}}\n";
    let say_src = "id: weather\ntriggers: [{type: voice, phrases: [\"what's [the] weather [like] [today]\"]}]\nactions:\n  - {id: say, type: speak, config: {text: 'It is sunny and twenty degrees.'}}\n";
    let workflows = [sched_src, say_src]
        .iter()
        .map(|s| crate::workflow::load_str(s, Path::new("bench.yaml")).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    app.engine.set_workflows(workflows);
    let mut stt = SttConfig::new(model);
    stt.audio_ctx_floor = config.voice.audio_ctx_floor;
    let voice = VoiceLoop::new(
        app.engine.clone(),
        Transcriber::new(stt),
        metered,
        VoiceConfig::default(),
    )?;
    voice.transcriber().preload().await?;
    let wav_in = tmp.path().join("in.wav");
    let ok = std::process::Command::new("espeak-ng")
        .args(["-s", "160", "-w"])
        .arg(&wav_in)
        .arg("What's the weather like today?")
        .status()?;
    anyhow::ensure!(ok.success(), "espeak-ng failed");
    let clip = crate::audio::read_wav_16k_mono(&wav_in)?;
    let clip = at_least(clip, 2.0);
    let mut first_audio = Vec::new();
    let mut stop_ms = Vec::new();
    for i in 0..6 {
        // Hold the key for 2 s, release: stop the recorder, hand the utterance to the loop.
        if let Some(r) = rec.as_mut() {
            r.start()?;
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        let released = Instant::now();
        if let Some(r) = rec.as_mut() {
            r.stop()?;
            stop_ms.push(released.elapsed().as_secs_f64() * 1000.0);
        }
        let h = voice.handle(clip.clone(), released).await?;
        // The first one pays for warming the speech backend up; the daemon has done that.
        if i > 0
            && let Some(ms) = h.timings.release_to_first_audio_ms
        {
            first_audio.push(ms);
        }
    }
    drop(rec);
    first_audio.sort_by(|a, b| a.total_cmp(b));
    stop_ms.sort_by(|a, b| a.total_cmp(b));

    // Schedule lateness: every second for 20 s.
    let stop = CancellationToken::new();
    let task = tokio::spawn(Scheduler::new(app.engine.clone(), false).run(stop.clone()));
    tokio::time::sleep(Duration::from_secs(20)).await;
    stop.cancel();
    let _ = task.await;
    app.engine.store().flush().await?;
    let mut lateness: Vec<f64> = app
        .engine
        .store()
        .list_runs(Some("tick"), 100)?
        .iter()
        .filter_map(|r| {
            let due =
                chrono::DateTime::parse_from_rfc3339(r.trigger_data["scheduled_for"].as_str()?)
                    .ok()?;
            let fired = r.trigger_data["fired_at_ms"].as_i64()?;
            Some((fired - due.timestamp_millis()) as f64)
        })
        .collect();
    lateness.sort_by(|a, b| a.total_cmp(b));

    let rss = tokio::task::spawn_blocking({
        let (g, d) = (global.clone(), tmp.path().to_path_buf());
        move || daemon_rss(&g, &d)
    })
    .await?;
    let opt = |v: &[f64], q| (!v.is_empty()).then(|| round1(percentile(v, q)));
    let out = json!({
        "press_to_recording_ms": press.map(round1),
        "release_to_first_audio_p50_ms": opt(&first_audio, 0.5),
        "recorder_stop_p50_ms": opt(&stop_ms, 0.5),
        "speaker": speaker_name,
        "schedule_lateness_p50_ms": opt(&lateness, 0.5),
        "schedule_lateness_p99_ms": opt(&lateness, 0.99),
        "scheduled_runs": lateness.len(),
        "daemon_idle_rss_mb": rss.map(round1),
        "daemon_headless": crate::desktop::display_problem().is_some(),
        "model": model_name,
    });
    print_figures(&out, as_json)
}
