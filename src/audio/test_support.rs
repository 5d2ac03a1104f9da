//! Test signals shared by the `audio`, `stt` and `tts` unit tests: real speech from espeak-ng,
//! noise generators and measures. The sound server they are played through is
//! [`crate::test_pulse`]'s.

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

/// Pink noise (-3 dB an octave, Paul Kellet's filter over white noise) with the given RMS level.
pub(crate) fn pink_noise(secs: f32, rms_level: f32, seed: u64) -> Vec<f32> {
    let mut b = [0.0f32; 7];
    let pink: Vec<f32> = white_noise(secs, 1.0, seed)
        .into_iter()
        .map(|w| {
            b[0] = 0.99886 * b[0] + w * 0.0555179;
            b[1] = 0.99332 * b[1] + w * 0.0750759;
            b[2] = 0.96900 * b[2] + w * 0.153_852;
            b[3] = 0.86650 * b[3] + w * 0.3104856;
            b[4] = 0.55000 * b[4] + w * 0.5329522;
            b[5] = -0.7616 * b[5] - w * 0.0168980;
            let out = b.iter().sum::<f32>() + w * 0.5362;
            b[6] = w * 0.115926;
            out
        })
        .collect();
    let k = rms_level / rms(&pink).max(1e-9);
    pink.into_iter().map(|x| x * k).collect()
}

/// `noise` swelling and fading by `swing_db` (peak to trough) at `hz`: loudness that moves like
/// syllables, without a pitch.
pub(crate) fn swelling(noise: &[f32], swing_db: f32, hz: f32) -> Vec<f32> {
    let depth = 1.0 - 10f32.powf(-swing_db / 20.0);
    noise
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let t = i as f32 / SAMPLE_RATE as f32;
            x * (1.0 - depth * (0.5 + 0.5 * (std::f32::consts::TAU * hz * t).sin()))
        })
        .collect()
}
