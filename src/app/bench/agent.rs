//! `atlas bench agent`: the resident agent's figures.
//!
//! The voice figures go through the daemon's own pieces: the agent task (`agent::run`) with the
//! global hotkey on `$DISPLAY`, the warm default microphone, the chimes, and the daemon's speaker
//! chain (config's speech backend behind the hold gate and the meter). Keys are pressed for real
//! with XTest (`keys`), and the utterance (espeak-ng) is played on the default output while the
//! key is held, so the microphone must hear the output (as under `scripts/bench.sh`: a PulseAudio
//! null sink whose monitor is the default source).
//!
//! - `press_to_recording_p50_ms`: from the XTest key press through the X server, global-hotkey's
//!   thread and the agent (`Recorder::start`) to the first sample recorded.
//! - `release_to_first_audio_p50_ms`: from the XTest key release through the agent's release
//!   path (recorder stop, chime, gate, whisper, match, run) to the first reply sample, with the
//!   default `[voice]` settings (speculative decoding on) and the key released 300 ms after
//!   the utterance has played.
//! - `live`: the same presses in three passes: speculative decoding on with the key released
//!   300 ms and 700 ms after the utterance, and off (300 ms). Each pass gives
//!   `release_to_workflow_p50_ms` (XTest release to the run's first action) and
//!   `release_to_first_audio_p50_ms`, over all its presses and split into the presses whose
//!   transcript was the speculative one (`speculative`) and the others (`fresh`), and
//!   `speculative_used` of `presses`. A split with no press is `null`.
//! - `schedule_lateness_p50_ms`/`_p99_ms`: a schedule firing every second for 20 s; when each
//!   run's first action started, minus its due time.
//! - `daemon_idle_rss_mb`: resident memory of a real `atlas daemon` in this environment (with
//!   the tray, hotkey and warm microphone when there is a display and a sound server; headless
//!   otherwise), model unloaded, 5 s after start; `daemon_headless` says which.
//!   `tray_helper_idle_rss_mb` is its tray helper process's (`atlas-tray`, `null` when none
//!   runs), `service_idle_rss_mb` the sum of both, and `service_idle_pss_mb` the sum of their
//!   proportional set sizes (shared pages such as libc's counted once between them; the
//!   benchmark process maps the same `atlas` binary, so it takes a share of the daemon's code
//!   pages too, and a daemon on its own has a PSS some 8 MB higher).
//!   `memory_target` names the figure the < 50 MB target is judged on: the sum of RSS, which
//!   counts the libraries both processes map twice, so it is the stricter of the two.
//!
//! Anything not measured is `null`, and `agent_path_problem` says why (no display, no
//! microphone, the hotkey taken, ...).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::keys::{HOTKEY, Keyboard};
use super::{figure, print_figures, round1};
use crate::app::{Global, build, resolve_model};
use atlas::agent::{self, GatedSpeaker, Msg, Parts, Stage};
use atlas::audio::Recorder;
use atlas::config::{AgentConfig, Config, PttMode, VoiceConfig};
use atlas::desktop::{Desktop, DesktopConfig, DesktopEvent};
use atlas::engine::Engine;
use atlas::runtime::Runtime;
use atlas::stt::{SttConfig, Transcriber};
use atlas::triggers::Scheduler;
use atlas::tts::espeak::Espeak;
use atlas::tts::{AudioPlayer, Speaker, WavFileSpeaker};
use atlas::voice::{MeteredSpeaker, VoiceLoop};

/// Presses measured after one warm-up press.
const PRESSES: usize = 5;

/// What presses and releases through the agent measured.
#[derive(Default)]
struct AgentPath {
    press_ms: Vec<f64>,
    presses: Vec<Press>,
}

/// One measured press: from the XTest release, when the run's first action started and the
/// first reply sample played, and whether the speculative transcript was used.
struct Press {
    workflow_ms: Option<f64>,
    first_audio_ms: Option<f64>,
    speculative: bool,
}

impl AgentPath {
    /// The p50s of the presses `pick` keeps.
    fn split(&self, pick: impl Fn(&Press) -> bool) -> serde_json::Value {
        let kept: Vec<&Press> = self.presses.iter().filter(|p| pick(p)).collect();
        let wf: Vec<f64> = kept.iter().filter_map(|p| p.workflow_ms).collect();
        let audio: Vec<f64> = kept.iter().filter_map(|p| p.first_audio_ms).collect();
        json!({
            "presses": kept.len(),
            "release_to_workflow_p50_ms": figure(&wf, 0.5),
            "release_to_first_audio_p50_ms": figure(&audio, 0.5),
        })
    }

    fn report(&self) -> serde_json::Value {
        let mut all = self.split(|_| true);
        all["speculative_used"] = json!(self.presses.iter().filter(|p| p.speculative).count());
        all["speculative"] = self.split(|p| p.speculative);
        all["fresh"] = self.split(|p| !p.speculative);
        all
    }

    fn first_audio_ms(&self) -> Vec<f64> {
        self.presses
            .iter()
            .filter_map(|p| p.first_audio_ms)
            .collect()
    }
}

/// One pass of presses: the watcher's settings and how long the key stays down after the
/// utterance has played.
struct Pass {
    name: &'static str,
    live: atlas::audio::LiveConfig,
    hold_after: Duration,
}

/// Idle memory of a real `atlas daemon` and of its tray helper (a child process), in MiB.
#[derive(Default)]
struct ServiceMemory {
    daemon_rss: Option<f64>,
    daemon_pss: Option<f64>,
    /// `None` when no helper runs (headless, or the tray off).
    helper_rss: Option<f64>,
    helper_pss: Option<f64>,
}

impl ServiceMemory {
    /// The service's total: the daemon plus its helper, when one runs.
    fn total(daemon: Option<f64>, helper: Option<f64>) -> Option<f64> {
        daemon.map(|d| d + helper.unwrap_or(0.0))
    }
}

/// A `kB` field of a `/proc/PID/...` file, in MiB.
fn proc_mb(pid: u32, file: &str, field: &str) -> Option<f64> {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .ok()?
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
}

/// The tray helper among `pid`'s children.
fn tray_helper_of(pid: u32) -> Option<u32> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok())
                .collect::<Vec<_>>()
        })
        .find(|child| {
            std::fs::read_to_string(format!("/proc/{child}/comm"))
                .is_ok_and(|c| c.trim() == atlas::desktop::protocol::HELPER_NAME)
        })
}

fn daemon_memory(global: &Global, dir: &Path) -> ServiceMemory {
    let Ok(exe) = std::env::current_exe() else {
        return ServiceMemory::default();
    };
    let mut cmd = std::process::Command::new(exe);
    cmd.env("ATLAS_DATA_DIR", dir.join("daemon"))
        .arg("daemon")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if let Some(c) = &global.config {
        cmd.env("ATLAS_CONFIG", c);
    }
    let Ok(mut child) = cmd.spawn() else {
        return ServiceMemory::default();
    };
    // Started: tray (its helper), hotkey, warm microphone, speech backend; the model stays
    // unloaded until the first press.
    std::thread::sleep(Duration::from_secs(5));
    let pid = child.id();
    let helper = tray_helper_of(pid);
    let memory = ServiceMemory {
        daemon_rss: proc_mb(pid, "status", "VmRSS:"),
        daemon_pss: proc_mb(pid, "smaps_rollup", "Pss:"),
        helper_rss: helper.and_then(|h| proc_mb(h, "status", "VmRSS:")),
        helper_pss: helper.and_then(|h| proc_mb(h, "smaps_rollup", "Pss:")),
    };
    // SAFETY: SIGTERM to our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let _ = child.wait();
    memory
}

/// Waits (bounded) for the agent to publish `want`.
async fn stage(stages: &mut mpsc::UnboundedReceiver<Stage>, want: Stage) -> anyhow::Result<()> {
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(s) = stages.recv().await {
            if s == want {
                return Ok(());
            }
        }
        anyhow::bail!("the agent task ended")
    })
    .await
    .with_context(|| format!("the agent did not reach {want:?} within 60 s"))?
}

/// Waits (bounded) until the recording that began after `pressed` has its first sample.
async fn first_sample(probe: &atlas::audio::FirstSampleProbe, pressed: Instant) -> Option<f64> {
    let deadline = pressed + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Some(t) = probe.first_sample_at().filter(|t| *t >= pressed) {
            return Some((t - pressed).as_secs_f64() * 1000.0);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    None
}

/// The warm microphone (delivering audio), the chime player, and a second output that plays
/// the utterance into the microphone.
async fn open_audio() -> anyhow::Result<(Recorder, Option<AudioPlayer>, AudioPlayer)> {
    let capture = atlas::audio::CaptureConfig {
        device: None,
        max_seconds: 10,
        keep_warm: true,
    };
    let recorder = tokio::task::spawn_blocking(move || {
        let rec = atlas::audio::Recorder::open(&capture)?;
        // The daemon opens its warm stream well before the first press; so does the bench.
        let live = rec.wait_for_audio(Duration::from_secs(5));
        Ok::<_, atlas::audio::AudioError>((rec, live))
    })
    .await?;
    let (recorder, live) = recorder.context("no microphone")?;
    anyhow::ensure!(live, "the microphone delivered no audio in 5 s");
    let chimes = tokio::task::spawn_blocking(AudioPlayer::open_default).await?;
    let mouth = tokio::task::spawn_blocking(AudioPlayer::open_default)
        .await?
        .context("no audio output to play the utterance on")?;
    Ok((recorder, chimes.ok(), mouth))
}

/// The global hotkey alone (no tray), its presses forwarded to the agent on `tx`.
fn hotkey_desktop(tx: &mpsc::UnboundedSender<Msg>) -> anyhow::Result<Desktop> {
    let (dtx, mut drx) = mpsc::unbounded_channel::<DesktopEvent>();
    let desktop = Desktop::start(
        &DesktopConfig {
            hotkey: HOTKEY.into(),
            tray: false,
        },
        dtx,
    )?;
    if let Some(problem) = desktop.hotkey_problem() {
        anyhow::bail!("push-to-talk is off: {problem}");
    }
    let tx = tx.clone();
    tokio::spawn(async move {
        while let Some(e) = drx.recv().await {
            if tx.send(Msg::Desktop(e)).is_err() {
                break;
            }
        }
    });
    Ok(desktop)
}

/// Presses and releases the hotkey for real, `PRESSES + 1` times, on an agent set up as the
/// daemon sets it up; the utterance in `wav` is played while the key is down.
async fn through_the_agent(
    engine: Engine,
    voice: Arc<VoiceLoop>,
    metered: Arc<MeteredSpeaker>,
    gated: Arc<GatedSpeaker>,
    wav: &Path,
    pass: &Pass,
) -> anyhow::Result<AgentPath> {
    if let Some(reason) = atlas::desktop::display_problem() {
        anyhow::bail!("no display ({reason}): no key to press");
    }
    let keyboard = Keyboard::connect()?;
    let (recorder, chimes, mouth) = open_audio().await?;
    let probe = recorder.first_sample_probe();
    let (tx, rx) = mpsc::unbounded_channel::<Msg>();
    let desktop = hotkey_desktop(&tx)?;
    let (stage_tx, mut stages) = mpsc::unbounded_channel();
    let (handled_tx, mut handled) = mpsc::unbounded_channel();
    let parts = Parts {
        engine,
        voice: Some(voice),
        recorder: Some(recorder),
        speaker: gated,
        player: chimes,
        tray: None,
        on_stage: Box::new(move |s| {
            let _ = stage_tx.send(s);
        }),
        workflows_dir: std::env::temp_dir(),
        max_recording: Duration::from_secs(10),
        live: pass.live,
        on_handled: Some(Box::new(move |h, released| {
            let _ = handled_tx.send((h.timings.clone(), released));
        })),
        dashboard_link: None,
    };
    let cfg = AgentConfig {
        hotkey: HOTKEY.into(),
        mode: PttMode::Hold,
        tray: false,
        chimes: true,
        ..AgentConfig::default()
    };
    let task = tokio::spawn(agent::run(cfg, parts, tx.clone(), rx));
    stage(&mut stages, Stage::Idle).await?;

    let mut path = AgentPath::default();
    let measured = async {
        for i in 0..=PRESSES {
            metered.reset();
            let pressed = keyboard.press()?;
            let press_ms = first_sample(&probe, pressed).await;
            stage(&mut stages, Stage::Listening).await?;
            let mut playback = mouth.play_wav_file(wav)?;
            playback.finished().await;
            tokio::time::sleep(pass.hold_after).await;
            while stages.try_recv().is_ok() {}
            while handled.try_recv().is_ok() {}
            let released = keyboard.release()?;
            stage(&mut stages, Stage::Idle).await?;
            // The first press pays for warming the speech backend up; the daemon has done that.
            if i == 0 {
                continue;
            }
            path.press_ms.extend(press_ms);
            let ms = |t: Instant| (t.saturating_duration_since(released)).as_secs_f64() * 1000.0;
            let timings = handled.try_recv().ok();
            path.presses.push(Press {
                // The agent's own release instant plus its release -> workflow figure.
                workflow_ms: timings.as_ref().and_then(|(t, agent_released)| {
                    Some(ms(*agent_released) + t.release_to_workflow_ms?)
                }),
                first_audio_ms: metered.first_audio().filter(|t| *t >= released).map(ms),
                speculative: timings.is_some_and(|(t, _)| t.speculative),
            });
        }
        anyhow::Ok(())
    }
    .await;
    let _ = tx.send(Msg::Desktop(DesktopEvent::Quit));
    let _ = task.await;
    desktop.shutdown();
    measured?;
    Ok(path)
}

/// Milliseconds from each `tick` run's due time to its first action's start.
fn schedule_lateness(engine: &Engine) -> anyhow::Result<Vec<f64>> {
    let store = engine.store();
    let mut late = Vec::new();
    for run in store.list_runs(Some("tick"), 100)? {
        let Some(due) = run.trigger_data["scheduled_for"]
            .as_str()
            .and_then(|d| chrono::DateTime::parse_from_rfc3339(d).ok())
        else {
            continue;
        };
        let first = store
            .run_actions(&run.id)?
            .iter()
            .map(|a| a.started_at)
            .min();
        if let Some(started) = first {
            late.push((started - due.timestamp_millis()) as f64);
        }
    }
    Ok(late)
}

/// A runtime on a scratch data folder in `dir` with two workflows: `tick` every second (for
/// schedule lateness) and a local `weather` that answers the spoken question.
fn bench_runtime(dir: &Path, gated: Arc<GatedSpeaker>) -> anyhow::Result<Runtime> {
    let bench_global = Global {
        data_dir: Some(dir.join("data")),
        config: Some(dir.join("none.toml")),
        workflows: Vec::new(),
    };
    let app = build(&bench_global, gated)?;
    let sched_src = "id: tick\ntriggers: [{type: schedule, cron: '* * * * * *', missed: skip}]\nconcurrency: {mode: parallel, max: 100}\nactions:\n  - {id: a, type: log, config: {message: tick}}\n";
    let say_src = "id: weather\ntriggers: [{type: voice, phrases: [\"what's [the] weather [like] [today]\"]}]\nactions:\n  - {id: say, type: speak, config: {text: 'It is sunny and twenty degrees.'}}\n";
    let workflows = [sched_src, say_src]
        .iter()
        .map(|s| atlas::workflow::load_str(s, Path::new("bench.yaml")).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    app.engine.set_workflows(workflows);
    Ok(app)
}

/// The daemon's speaker chain; a WAV file in `dir` when the machine has no speech output.
async fn speaker_chain(config: &Config, dir: &Path) -> anyhow::Result<Arc<dyn Speaker>> {
    let speech_cfg = config.speech.clone();
    let real = tokio::task::spawn_blocking(move || atlas::tts::build_speaker(&speech_cfg)).await?;
    let real: Arc<dyn Speaker> = match real {
        Ok(s) if s.name() != "recorder" => s,
        _ => Arc::new(WavFileSpeaker::create(
            &dir.join("reply.wav"),
            Espeak::from_config(&config.speech),
        )?),
    };
    Ok(real)
}

/// Runs the agent benchmark and prints its figures.
pub async fn agent(global: &Global, model: Option<&str>, as_json: bool) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let (config, paths) =
        atlas::config::load(global.config.as_deref(), global.data_dir.as_deref())?;
    let model = resolve_model(model, &config, &paths)?;
    let model_name = model.display().to_string();

    let real = speaker_chain(&config, tmp.path()).await?;
    let speaker_name = real.name();
    let metered = MeteredSpeaker::new(real);
    let gated = GatedSpeaker::new(metered.clone());
    let app = bench_runtime(tmp.path(), gated.clone())?;
    let stt = SttConfig::for_voice(model, &config.voice);
    let voice = Arc::new(VoiceLoop::new(
        app.engine.clone(),
        Transcriber::new(stt),
        metered.clone(),
        VoiceConfig::default(),
    )?);
    voice.transcriber().preload().await?;
    let wav_in = tmp.path().join("in.wav");
    let ok = std::process::Command::new("espeak-ng")
        .args(["-s", "160", "-w"])
        .arg(&wav_in)
        .arg("What's the weather like today?")
        .status()
        .context("espeak-ng is needed for the agent benchmark: apt-get install espeak-ng")?;
    anyhow::ensure!(ok.success(), "espeak-ng failed");

    let on = atlas::agent::live_config(&VoiceConfig::default());
    let off = atlas::audio::LiveConfig {
        pause: Duration::ZERO,
        ..on
    };
    let passes = [
        ("speculation_on_release_300ms", on, 300),
        ("speculation_on_release_700ms", on, 700),
        ("speculation_off_release_300ms", off, 300),
    ];
    let mut live = serde_json::Map::new();
    let mut default_path = None;
    let mut problem = None;
    for (i, (name, live_cfg, hold)) in passes.into_iter().enumerate() {
        let pass = Pass {
            name,
            live: live_cfg,
            hold_after: Duration::from_millis(hold),
        };
        let (engine, voice, metered, gated) = (
            app.engine.clone(),
            voice.clone(),
            metered.clone(),
            gated.clone(),
        );
        match through_the_agent(engine, voice, metered, gated, &wav_in, &pass).await {
            Ok(p) => {
                live.insert(pass.name.into(), p.report());
                // The top-level figures are the default settings' (the first pass).
                if i == 0 {
                    default_path = Some(p);
                }
            }
            Err(e) => {
                eprintln!(
                    "the agent's key path ({}) was not measured: {e:#}",
                    pass.name
                );
                live.insert(pass.name.into(), serde_json::Value::Null);
                problem.get_or_insert(format!("{e:#}"));
            }
        }
    }
    let path = default_path.unwrap_or_default();
    app.engine.store().flush().await?;
    let heard = app.engine.store().list_runs(Some("weather"), 100)?.len();

    // Schedule lateness: every second for 20 s.
    let stop = CancellationToken::new();
    let task = tokio::spawn(Scheduler::new(app.engine.clone(), false).run(stop.clone()));
    tokio::time::sleep(Duration::from_secs(20)).await;
    stop.cancel();
    let _ = task.await;
    app.engine.store().flush().await?;
    let lateness = schedule_lateness(&app.engine)?;

    let mem = tokio::task::spawn_blocking({
        let (g, d) = (global.clone(), tmp.path().to_path_buf());
        move || daemon_memory(&g, &d)
    })
    .await?;
    let out = json!({
        "press_to_recording_p50_ms": figure(&path.press_ms, 0.5),
        "release_to_first_audio_p50_ms": figure(&path.first_audio_ms(), 0.5),
        "presses": path.press_ms.len(),
        "live": live,
        "utterances_matched": heard,
        "agent_path_problem": problem,
        "speaker": speaker_name,
        "schedule_lateness_p50_ms": figure(&lateness, 0.5),
        "schedule_lateness_p99_ms": figure(&lateness, 0.99),
        "scheduled_runs": lateness.len(),
        "daemon_idle_rss_mb": mem.daemon_rss.map(round1),
        "tray_helper_idle_rss_mb": mem.helper_rss.map(round1),
        "service_idle_rss_mb": ServiceMemory::total(mem.daemon_rss, mem.helper_rss).map(round1),
        "service_idle_pss_mb": ServiceMemory::total(mem.daemon_pss, mem.helper_pss).map(round1),
        "memory_target": "service_idle_rss_mb < 50",
        "daemon_headless": atlas::desktop::display_problem().is_some(),
        "model": model_name,
    });
    print_figures(&out, as_json)
}
