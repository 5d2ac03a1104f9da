//! A core that never hangs: a stalled speech service and no sound server must not stop a
//! workflow run, the daemon's start-up or its schedules; a superseded utterance does nothing
//! more; shutdown starts no run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use atlas::engine::{EngineError, RunRequest};
use atlas::store::Store;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::test_speechd::StalledSpeechd;
use crate::util::{atlas_bin, engine_with, eventually};
use crate::voice::{espeak, model};

/// The environment of a machine whose speech service is stalled and that has no sound server.
fn broken_sound(cmd: &mut Command, dir: &Path, speechd: &StalledSpeechd) {
    std::fs::write(
        dir.join("config.toml"),
        "[speech]\nstart_timeout_ms = 1000\n",
    )
    .expect("config");
    cmd.env("SPEECHD_ADDRESS", speechd.address())
        .env(
            "PULSE_SERVER",
            format!("unix:{}", dir.join("no-pulse").display()),
        )
        .env("XDG_RUNTIME_DIR", dir.join("runtime"))
        .env("XDG_CONFIG_HOME", dir.join("xdg-config"))
        .env("ATLAS_CONFIG", dir.join("config.toml"))
        .env("ATLAS_DATA_DIR", dir.join("data"))
        .env_remove("ATLAS_SPEECH")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .stdin(Stdio::null());
    std::fs::create_dir_all(dir.join("runtime")).expect("runtime dir");
}

/// Runs `cmd` to its end, failing the test (and killing it) if it takes longer than `limit`.
fn bounded(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn atlas");
    let started = std::time::Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "atlas hung for more than {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

#[test]
fn workflow_run_with_a_stalled_speech_service_prints_what_it_would_say_and_succeeds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let speechd = StalledSpeechd::start();
    // The bundled `hello` workflow, from the copy built into the binary.
    let mut cmd = Command::new(atlas_bin());
    broken_sound(&mut cmd, dir.path(), &speechd);
    cmd.env_remove("ATLAS_BUNDLED_WORKFLOWS")
        .args(["workflow", "run", "hello"]);
    let out = bounded(cmd, Duration::from_secs(60));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("said: ") && stdout.contains("Atlas is ready"),
        "{stdout}"
    );
    assert!(stdout.contains("succeeded"), "{stdout}");
    assert!(
        stderr.contains("speech: none (speech-dispatcher did not answer in 1 s;"),
        "the silence is explained: {stderr}"
    );

    // `--json` says the same, and the history records the speak action as not voiced.
    let mut cmd = Command::new(atlas_bin());
    broken_sound(&mut cmd, dir.path(), &speechd);
    cmd.env_remove("ATLAS_BUNDLED_WORKFLOWS")
        .args(["workflow", "run", "hello", "--json"]);
    let out = bounded(cmd, Duration::from_secs(60));
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["status"], "succeeded");
    let speech = v["speech"].as_str().expect("speech report");
    assert!(
        speech.starts_with("none (speech-dispatcher did not answer in 1 s"),
        "{speech}"
    );
    let spoke = v["outputs"]
        .as_object()
        .expect("outputs")
        .values()
        .find(|o| o.get("unvoiced").is_some())
        .expect("a speak action's output");
    assert_eq!(spoke["completed"], false, "{spoke}");

    // `atlas say` says plainly that nothing was said, and fails.
    let mut cmd = Command::new(atlas_bin());
    broken_sound(&mut cmd, dir.path(), &speechd);
    cmd.args(["say", "hello"]);
    let out = bounded(cmd, Duration::from_secs(60));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("nothing was said: speech-dispatcher did not answer in 1 s"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_comes_up_and_runs_schedules_while_the_speech_service_is_stalled() {
    let dir = tempfile::tempdir().expect("temp dir");
    let speechd = StalledSpeechd::start();
    std::fs::create_dir_all(dir.path().join("wf")).expect("wf");
    std::fs::write(
        dir.path().join("wf/tick.yaml"),
        "id: tick\ntriggers: [{type: schedule, cron: '*/2 * * * * *', missed: skip}]\nactions:\n  - {id: say, type: speak, config: {text: 'Tick.'}}\n",
    )
    .expect("workflow");
    let data = dir.path().join("data");
    let mut cmd = Command::new(atlas_bin());
    broken_sound(&mut cmd, dir.path(), &speechd);
    cmd.env("ATLAS_MODEL", dir.path().join("no-model.bin"))
        .env("ATLAS_BUNDLED_WORKFLOWS", dir.path().join("none"))
        .arg("--workflows")
        .arg(dir.path().join("wf"))
        .env("ATLAS_API_LISTEN", "127.0.0.1:0")
        .arg("daemon")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("daemon");
    let daemon = KillOnDrop(Some(child));
    let status = || -> Option<Value> {
        serde_json::from_slice(&std::fs::read(data.join("status.json")).ok()?).ok()
    };
    wait_for("the status file", || status().is_some()).await;
    assert!(data.join("atlas.db").exists(), "the database is open");
    wait_for("a scheduled run to succeed", || {
        Store::open(&data.join("atlas.db"))
            .and_then(|s| s.list_runs(Some("tick"), 10))
            .is_ok_and(|runs| {
                runs.iter()
                    .any(|r| r.status == atlas::store::RunStatus::Succeeded)
            })
    })
    .await;
    wait_for("the speech choice in the status", || {
        status().is_some_and(|s| s["speech_backend"] != "starting")
    })
    .await;
    let s = status().expect("status");
    let speech = s["speech"].as_str().expect("speech");
    assert!(
        speech.contains("speech-dispatcher did not answer in 1 s"),
        "{speech}"
    );

    // `atlas status` shows it, and reading the status never takes the daemon's lock.
    let mut cmd = Command::new(atlas_bin());
    broken_sound(&mut cmd, dir.path(), &speechd);
    cmd.arg("status");
    let out = bounded(cmd, Duration::from_secs(30));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("atlas daemon running"), "{text}");
    assert!(
        text.contains("speech: ") && text.contains("(speech-dispatcher did not answer in 1 s"),
        "{text}"
    );

    let out = daemon.stop();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The daemon process, killed if the test fails before stopping it.
struct KillOnDrop(Option<std::process::Child>);

impl KillOnDrop {
    fn stop(mut self) -> Output {
        let child = self.0.take().expect("child");
        // SAFETY: SIGTERM to our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        child.wait_with_output().expect("output")
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn wait_for(what: &str, f: impl FnMut() -> bool) {
    crate::util::within(what, Duration::from_secs(60), f).await;
}

#[tokio::test]
async fn once_shutdown_begins_no_run_starts() {
    let t = engine_with(&[
        "id: slow\ntriggers: [{type: manual}]\nactions:\n  - {id: wait, type: delay, config: {duration: 30s}}\n",
    ]);
    let running = t.engine.trigger(RunRequest::manual("slow")).expect("start");
    t.engine.shutdown("the daemon was stopped").await;
    let outcome = running.wait().await;
    assert_eq!(outcome.status, atlas::store::RunStatus::Cancelled);
    assert!(matches!(
        t.engine.trigger(RunRequest::manual("slow")),
        Err(EngineError::ShuttingDown)
    ));
}

/// A voice loop over a real model whose workflow waits before it speaks.
fn lamp_voice(model: PathBuf) -> (crate::util::TestEngine, Arc<atlas::voice::VoiceLoop>) {
    let t = engine_with(&[
        "id: lamp\ntriggers: [{type: voice, phrases: ['turn on the lights']}]\nactions:\n  - {id: wait, type: delay, config: {duration: 20s}}\n  - {id: say, type: speak, config: {text: 'The lights are on.'}}\n",
    ]);
    let stt = atlas::stt::Transcriber::new(atlas::stt::SttConfig::new(model));
    let metered = atlas::voice::MeteredSpeaker::new(t.speaker.clone());
    let voice = atlas::voice::VoiceLoop::new(
        t.engine.clone(),
        stt,
        metered,
        atlas::config::VoiceConfig::default(),
    )
    .expect("voice loop");
    (t, Arc::new(voice))
}

fn lamp_command(dir: &Path) -> Vec<f32> {
    let wav = dir.join("lights.wav");
    espeak("Turn on the lights.", "en-us", 150, &wav);
    atlas::audio::read_wav_16k_mono(&wav).expect("wav")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_superseded_utterance_starts_nothing_and_its_run_is_cancelled() {
    let Some(model) = model() else { return };
    let (t, voice) = lamp_voice(model);
    let samples = lamp_command(t.dir.path());

    // Replaced before it was matched: no workflow starts, nothing is said.
    let superseded = CancellationToken::new();
    superseded.cancel();
    let handled = voice
        .handle_reporting(
            samples.clone(),
            std::time::Instant::now(),
            &|_| {},
            &superseded,
        )
        .await
        .expect("handled");
    assert_eq!(handled.reason.as_deref(), Some(atlas::voice::SUPERSEDED));
    assert!(handled.run.is_none());
    t.engine.store().flush().await.expect("flush");
    assert!(
        t.engine
            .store()
            .list_runs(None, 10)
            .expect("runs")
            .is_empty()
    );

    // Replaced while its run is going: the run is cancelled, its reply never spoken.
    let superseded = CancellationToken::new();
    let handling = {
        let (voice, superseded) = (voice.clone(), superseded.clone());
        tokio::spawn(async move {
            voice
                .handle_reporting(samples, std::time::Instant::now(), &|_| {}, &superseded)
                .await
        })
    };
    let engine = t.engine.clone();
    for _ in 0..600 {
        if !engine.active_runs().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(engine.active_runs().len(), 1, "the lights run started");
    superseded.cancel();
    let handled = handling.await.expect("join").expect("handled");
    let run = handled.run.expect("the run it started");
    assert_eq!(run.status, "cancelled");
    assert_eq!(run.error.as_deref(), Some(atlas::voice::SUPERSEDED));
    assert!(t.speaker.said().is_empty(), "said {:?}", t.speaker.said());
    eventually("the history to record the cancellation", || {
        t.engine
            .store()
            .get_run(&run.id)
            .ok()
            .flatten()
            .is_some_and(|r| r.status == atlas::store::RunStatus::Cancelled)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_probe_asks_once_and_gives_up_within_its_bound() {
    // A host that accepts connections and never answers (what start.sh must not wait on).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_url = format!("http://{}", silent.local_addr().expect("addr"));
    let accepted = std::thread::spawn(move || {
        let mut held = Vec::new();
        silent.set_nonblocking(false).expect("blocking");
        if let Ok((conn, _)) = silent.accept() {
            held.push(conn);
        }
        std::thread::sleep(Duration::from_secs(3));
        held.len()
    });
    let mut cmd = Command::new(atlas_bin());
    cmd.env("ATLAS_CONFIG", "/nonexistent/config.toml")
        .args([
            "model",
            "probe",
            "base.en",
            "--timeout-secs",
            "1",
            "--base-url",
        ])
        .arg(&silent_url);
    let out = bounded(cmd, Duration::from_secs(20));
    assert!(
        !out.status.success(),
        "a host that never answers is not usable"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("base.en: ") && text.contains("no answer in 1 s"),
        "{text}"
    );
    assert_eq!(accepted.join().expect("join"), 1, "it asked exactly once");

    // A host that has the file: reachable, with one HEAD request.
    let heads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = heads.clone();
    let app = axum::Router::new().route(
        "/ggml-base.en.bin",
        axum::routing::head(move || {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { "" }
        }),
    );
    let addr = crate::util::serve(app).await;
    let mut cmd = Command::new(atlas_bin());
    cmd.env("ATLAS_CONFIG", "/nonexistent/config.toml")
        .args(["model", "probe", "base.en", "--base-url"])
        .arg(format!("http://{addr}"));
    let out = tokio::task::spawn_blocking(move || bounded(cmd, Duration::from_secs(20)))
        .await
        .expect("join");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "base.en: reachable"
    );
    assert_eq!(heads.load(std::sync::atomic::Ordering::SeqCst), 1);
}
