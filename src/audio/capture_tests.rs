//! Capture tests against a real PulseAudio server whose null-sink monitor is the microphone.
//!
//! cpal reaches PulseAudio through ALSA's `pulse` plugin, which finds the server only through
//! the process environment. Changing this process's environment while other tests run (and C
//! libraries may call `getenv`) is unsound, so the outer test starts a private server and re-runs
//! this test binary for the inner, ignored test with the server's address in the child's
//! environment.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::*;
use crate::audio::test_support::{espeak_wav, rms};
use crate::audio::{LiveConfig, LiveEvent, Vad, VadConfig, read_wav_16k_mono};
use crate::test_pulse::PulseServer;
use crate::test_skip::{Need, require_programs};

/// Set in the child's environment to the private server's runtime directory.
const CHILD_ENV: &str = "ATLAS_TEST_PULSE_RUNTIME_DIR";

#[test]
fn records_speech_played_into_a_virtual_microphone() {
    // Checked here, not only in the child, so that a skip is this test's (the child's own
    // early return would look like a pass from here).
    if !require_programs(Need::Desktop, &[("espeak-ng", "espeak-ng")]) {
        return;
    }
    let Some(server) = PulseServer::start() else {
        return;
    };
    // The inner test's name relative to the crate root, the way the test harness spells it.
    let module = module_path!().split_once("::").map_or("", |(_, rest)| rest);
    let inner = format!("{module}::virtual_microphone_session");
    let exe = std::env::current_exe().unwrap();
    let out = server
        .cmd(exe.to_str().unwrap())
        .args([
            inner.as_str(),
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, server.runtime_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "inner capture test failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("1 passed"),
        "inner test did not run:\n{stdout}"
    );
}

#[test]
#[ignore = "run by records_speech_played_into_a_virtual_microphone with a private PulseAudio server"]
fn virtual_microphone_session() {
    let Some(runtime_dir) = std::env::var_os(CHILD_ENV) else {
        eprintln!("skipping: {CHILD_ENV} is not set (run the outer test instead)");
        return;
    };
    let paplay = |wav: &Path| {
        let mut cmd = Command::new("paplay");
        cmd.env("XDG_RUNTIME_DIR", &runtime_dir).arg(wav);
        cmd
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(speech_wav) = espeak_wav(dir.path(), "cmd", "what is the weather like today", &[])
    else {
        return;
    };
    let speech_ms = read_wav_16k_mono(&speech_wav).unwrap().len() as u64 / 16;

    // Devices: the default input exists, and a wrong name lists the real ones.
    let devices = list_input_devices().unwrap();
    assert!(!devices.is_empty(), "no input devices under PulseAudio");
    let err = Recorder::open(&CaptureConfig {
        device: Some("no such microphone".into()),
        ..CaptureConfig::default()
    })
    .unwrap_err();
    match &err {
        AudioError::DeviceNotFound { name, available } => {
            assert_eq!(name, "no such microphone");
            assert!(!available.is_empty());
        }
        other => panic!("expected DeviceNotFound, got {other}"),
    }
    assert!(err.to_string().contains("available input devices"), "{err}");

    // Warm push-to-talk: nothing played -> silence. (How much of the second arrives depends
    // on the server's buffering: that is not this test's business.)
    let mut rec = Recorder::open(&CaptureConfig::default()).unwrap();
    assert!(
        rec.wait_for_audio(Duration::from_secs(5)),
        "the null sink monitor delivered nothing"
    );
    let quiet = rec.record_for(Duration::from_millis(1000)).unwrap();
    assert!(
        quiet.duration_ms > 0 && !quiet.truncated,
        "1 s recording: {} ms, truncated {}",
        quiet.duration_ms,
        quiet.truncated
    );
    assert!(
        rms(&quiet.samples) < 1e-4,
        "null sink monitor should be silent"
    );
    eprintln!(
        "capture: device {:?} {:?}, first sample {:?} after start()",
        rec.device_name(),
        rec.device_format(),
        quiet.first_sample_after
    );

    // Speech played while recording comes through, not silent, about as long as played.
    rec.start().unwrap();
    assert!(matches!(rec.start(), Err(AudioError::AlreadyRecording)));
    let played = paplay(&speech_wav).status().unwrap();
    assert!(played.success(), "paplay failed");
    std::thread::sleep(Duration::from_millis(300));
    let got = rec.stop().unwrap();
    assert!(matches!(rec.stop(), Err(AudioError::NotRecording)));
    assert!(
        rms(&got.samples) > 0.01,
        "recording is silent: rms {}",
        rms(&got.samples)
    );
    // paplay returned before stop(): all of the speech was played while recording.
    assert!(
        got.duration_ms >= speech_ms * 8 / 10,
        "recorded {} ms for {speech_ms} ms of speech",
        got.duration_ms
    );
    assert!(
        Vad::new(VadConfig::default())
            .analyze(&got.samples)
            .has_speech
    );
    assert!(!got.truncated);

    // While it records, a live watcher sees the pause after the speech and hands over the
    // recording so far; its tap ends with the recording.
    rec.start().unwrap();
    let (tx, events) = std::sync::mpsc::channel();
    let live = LiveConfig {
        pause: Duration::from_millis(200),
        silence_stop: Duration::from_millis(600),
        poll: Duration::from_millis(40),
        own_sound: Duration::ZERO,
    };
    let watch = super::super::live::watch(rec.live_tap(), live, move |e| tx.send(e).is_ok());
    assert!(paplay(&speech_wav).status().unwrap().success());
    let first = events
        .recv_timeout(Duration::from_secs(5))
        .expect("a pause");
    let second = events
        .recv_timeout(Duration::from_secs(5))
        .expect("the silence");
    let got = rec.stop().unwrap();
    let LiveEvent::Pause(snapshot) = first else {
        panic!("the pause comes first: {first:?}");
    };
    assert_eq!(second, LiveEvent::Silence);
    assert!(Vad::default().analyze(&snapshot).has_speech);
    assert!(snapshot.len() <= got.samples.len());
    assert!(!Vad::default().loud_after(&got.samples, snapshot.len()));
    let mut tap = rec.live_tap();
    rec.start().unwrap();
    rec.stop().unwrap();
    assert!(
        !tap.read_new(&mut Vec::new()),
        "a tap reads only its own recording"
    );
    drop(watch);
    drop(rec);

    // Cold stream (started on start()) and a maximum length that cuts the recording.
    let mut cold = Recorder::open(&CaptureConfig {
        keep_warm: false,
        max_seconds: 1,
        device: None,
    })
    .unwrap();
    cold.start().unwrap();
    assert!(
        cold.wait_for_audio(Duration::from_secs(5)),
        "cold stream delivered nothing"
    );
    let mut player = paplay(&speech_wav).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1800));
    let cut = cold.stop().unwrap();
    let _ = player.wait();
    assert!(cut.truncated, "1 s cap should cut a 1.8 s recording");
    assert!(cut.duration_ms <= 1000, "kept {} ms", cut.duration_ms);
    assert!(rms(&cut.samples) > 0.005, "cold recording is silent");
}
