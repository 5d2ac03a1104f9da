//! Test helpers shared by the `audio` and `stt` unit tests: real speech from espeak-ng, noise
//! generators, and a private PulseAudio server with a null sink that serves as a virtual
//! microphone (its monitor source) on a headless machine.

use std::path::{Path, PathBuf};
use std::process::Command;

use rand::{Rng, SeedableRng};

use super::{SAMPLE_RATE, read_wav_16k_mono};
use crate::test_skip::{Need, require_programs};

/// Speaks `text` with espeak-ng into `dir/name.wav` (22,050 Hz mono) and returns the path, or
/// `None` when espeak-ng is not installed: the test is then skipped (see [`crate::test_skip`]),
/// a failure under `ATLAS_REQUIRE_DESKTOP=1`.
pub(crate) fn espeak_wav(dir: &Path, name: &str, text: &str, args: &[&str]) -> Option<PathBuf> {
    if !require_programs(Need::Desktop, &[("espeak-ng", "espeak-ng")]) {
        return None;
    }
    let path = dir.join(format!("{name}.wav"));
    let status = Command::new("espeak-ng")
        .args(args)
        .arg("-w")
        .arg(&path)
        .arg(text)
        .status()
        .expect("run espeak-ng");
    assert!(status.success(), "espeak-ng failed for {text:?}");
    Some(path)
}

/// espeak-ng speech as 16 kHz mono samples.
pub(crate) fn espeak_16k(text: &str, args: &[&str]) -> Option<Vec<f32>> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = espeak_wav(dir.path(), "speech", text, args)?;
    Some(read_wav_16k_mono(&path).expect("read espeak-ng WAV"))
}

/// `secs` seconds of silence at 16 kHz.
pub(crate) fn silence(secs: f32) -> Vec<f32> {
    vec![0.0; (SAMPLE_RATE as f32 * secs) as usize]
}

/// White noise with the given RMS level, seeded for repeatability.
pub(crate) fn white_noise(secs: f32, rms: f32, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    // Uniform noise in [-a, a] has RMS a/sqrt(3).
    let a = rms * 3f32.sqrt();
    (0..(SAMPLE_RATE as f32 * secs) as usize)
        .map(|_| rng.random_range(-a..=a))
        .collect()
}

/// Mains hum: 50 Hz plus its odd harmonics, with the given peak amplitude.
pub(crate) fn hum(secs: f32, amp: f32) -> Vec<f32> {
    let rate = SAMPLE_RATE as f32;
    (0..(rate * secs) as usize)
        .map(|i| {
            let t = i as f32 / rate;
            let w = 2.0 * std::f32::consts::PI * 50.0 * t;
            amp * (0.7 * w.sin() + 0.2 * (3.0 * w).sin() + 0.1 * (5.0 * w).sin())
        })
        .collect()
}

/// RMS of a clip.
pub(crate) fn rms(s: &[f32]) -> f32 {
    if s.is_empty() {
        return 0.0;
    }
    (s.iter().map(|x| x * x).sum::<f32>() / s.len() as f32).sqrt()
}

/// Pads `speech` with silence before and after.
pub(crate) fn padded(speech: &[f32], before: f32, after: f32) -> Vec<f32> {
    let mut out = silence(before);
    out.extend_from_slice(speech);
    out.extend(silence(after));
    out
}

/// Adds `noise` onto `signal` (noise is cycled if shorter).
pub(crate) fn mix(signal: &[f32], noise: &[f32]) -> Vec<f32> {
    signal
        .iter()
        .zip(noise.iter().cycle())
        .map(|(s, n)| s + n)
        .collect()
}

/// A private PulseAudio server (own `XDG_RUNTIME_DIR`) with a null sink `vsink` at 48 kHz whose
/// monitor is the default source: what is played to it can be recorded as a microphone.
/// Dropping it kills that server (by its own pid file) and removes the directory.
pub(crate) struct PulseServer {
    dir: tempfile::TempDir,
}

impl PulseServer {
    /// Starts the server; `None` when PulseAudio, its tools or the ALSA plugin cpal reaches it
    /// through are absent: the test is then skipped (a failure under `ATLAS_REQUIRE_DESKTOP=1`).
    pub(crate) fn start() -> Option<Self> {
        if !require_programs(
            Need::Desktop,
            &[
                ("pulseaudio", "pulseaudio"),
                ("pactl", "pulseaudio-utils"),
                ("paplay", "pulseaudio-utils"),
            ],
        ) {
            return None;
        }
        let dir = tempfile::tempdir().expect("runtime dir");
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .expect("chmod runtime dir");
        let server = Self { dir };
        let status = server
            .command("pulseaudio")
            .args([
                "-n",
                "--daemonize=yes",
                "--exit-idle-time=-1",
                "--disallow-exit",
                "-L",
                "module-native-protocol-unix auth-anonymous=1",
                "-L",
                "module-null-sink sink_name=vsink rate=48000",
            ])
            .status()
            .expect("run pulseaudio");
        assert!(status.success(), "pulseaudio did not start");
        for args in [
            ["set-default-sink", "vsink"],
            ["set-default-source", "vsink.monitor"],
        ] {
            let status = server.command("pactl").args(args).status().expect("pactl");
            assert!(status.success(), "pactl {args:?} failed");
        }
        Some(server)
    }

    /// The runtime directory clients must see as `XDG_RUNTIME_DIR`.
    pub(crate) fn runtime_dir(&self) -> &Path {
        self.dir.path()
    }

    /// A command that talks to this server.
    pub(crate) fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("XDG_RUNTIME_DIR", self.dir.path())
            .env("PULSE_SERVER", self.server_address());
        cmd
    }

    /// `unix:<dir>/pulse/native`, the server's socket.
    pub(crate) fn server_address(&self) -> String {
        format!("unix:{}/pulse/native", self.dir.path().display())
    }
}

impl Drop for PulseServer {
    fn drop(&mut self) {
        // `--kill` reads this server's pid file under our XDG_RUNTIME_DIR: it ends only ours.
        let _ = self.command("pulseaudio").arg("--kill").status();
    }
}
