//! The audio of one corpus item: espeak-ng's rendering (cached by text, voice and speed), padded
//! with the silence a press leaves around speech, and mixed with white or pink noise at the
//! item's signal-to-noise ratio; or silence and noise alone. Noise is seeded by the item's id,
//! so a corpus gives the same clips on every run.

use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

use atlas::audio::SAMPLE_RATE;

/// One utterance of the corpus manifest (written by scripts/accuracy-corpus.py).
#[derive(Debug, Clone, Deserialize)]
pub struct Item {
    /// Stable id within the corpus.
    pub id: String,
    /// in_grammar, paraphrase, off_topic, question or silence_noise.
    pub class: String,
    /// What is spoken (empty for silence and noise alone).
    pub text: String,
    /// espeak-ng voice.
    pub voice: Option<String>,
    /// espeak-ng words a minute.
    pub speed: Option<u32>,
    /// clean, white, pink or silence.
    pub noise: String,
    /// Speech to noise, in dB (noisy speech).
    pub snr_db: Option<f64>,
    /// Noise level in dBFS RMS (noise alone).
    pub level_dbfs: Option<f64>,
    /// Length of a clip without speech.
    pub seconds: Option<f64>,
    /// What must happen.
    pub expect: Expect,
}

/// What an item must start.
#[derive(Debug, Clone, Deserialize)]
pub struct Expect {
    /// The workflow, or none.
    pub workflow: Option<String>,
    /// Its slot values.
    #[serde(default)]
    pub slots: serde_json::Map<String, serde_json::Value>,
}

impl Item {
    /// The noise condition, e.g. "clean", "pink 10 dB", "silence", "white -40 dBFS".
    pub fn condition(&self) -> String {
        match (self.snr_db, self.level_dbfs) {
            (Some(snr), _) => format!("{} {snr} dB", self.noise),
            (None, Some(level)) => format!("{} {level} dBFS", self.noise),
            _ => self.noise.clone(),
        }
    }
}

/// Silence before and after speech, as a push-to-talk recording has.
const LEAD_S: f64 = 0.3;
const TAIL_S: f64 = 0.4;

/// The 16 kHz samples of `item`, rendering its speech into `wavs` when not cached yet.
pub fn clip(item: &Item, wavs: &Path) -> anyhow::Result<Vec<f32>> {
    let mut rng = Rng::seeded(&item.id);
    if item.text.is_empty() {
        let n = (item.seconds.unwrap_or(2.0) * SAMPLE_RATE as f64) as usize;
        return Ok(match item.level_dbfs {
            Some(level) => scaled(noise(&item.noise, n, &mut rng), 10f64.powf(level / 20.0)),
            None => vec![0.0; n],
        });
    }
    let speech = render(item, wavs)?;
    let pad = |s: f64| (s * SAMPLE_RATE as f64) as usize;
    let mut out = vec![0.0; pad(LEAD_S)];
    out.extend_from_slice(&speech);
    out.resize(out.len() + pad(TAIL_S), 0.0);
    if let Some(snr) = item.snr_db {
        let level = active_rms(&speech) / 10f64.powf(snr / 20.0);
        let n = scaled(noise(&item.noise, out.len(), &mut rng), level);
        for (s, x) in out.iter_mut().zip(n) {
            *s = (*s + x).clamp(-1.0, 1.0);
        }
    }
    Ok(out)
}

/// `seconds` of white or pink noise at `level_dbfs` RMS, its loudness swung by `swing_db` (peak
/// to trough) at 4 Hz, the rate of syllables: noise that rises and falls like speech, no pitch.
pub fn noise_clip(
    color: &str,
    seconds: f64,
    level_dbfs: f64,
    swing_db: f64,
    seed: &str,
) -> Vec<f32> {
    let n = (seconds * SAMPLE_RATE as f64) as usize;
    let mut rng = Rng::seeded(seed);
    let level = 10f64.powf(level_dbfs / 20.0);
    let depth = 1.0 - 10f64.powf(-swing_db / 20.0);
    noise(color, n, &mut rng)
        .into_iter()
        .enumerate()
        .map(|(i, x)| {
            let t = i as f64 / SAMPLE_RATE as f64;
            let swing = 1.0 - depth * (0.5 + 0.5 * (std::f64::consts::TAU * 4.0 * t).sin());
            (x as f64 * level * swing).clamp(-1.0, 1.0) as f32
        })
        .collect()
}

/// espeak-ng's rendering of the item's text, cached under `wavs` by text, voice and speed.
fn render(item: &Item, wavs: &Path) -> anyhow::Result<Vec<f32>> {
    let voice = item.voice.as_deref().unwrap_or("en-us");
    let speed = item.speed.unwrap_or(160).to_string();
    let key = Rng::seeded(&format!("{}\0{voice}\0{speed}", item.text)).0;
    let path = wavs.join(format!("{key:016x}.wav"));
    if !path.exists() {
        std::fs::create_dir_all(wavs)
            .with_context(|| format!("cannot create {}", wavs.display()))?;
        let tmp = path.with_extension("tmp.wav");
        let status = std::process::Command::new("espeak-ng")
            .args(["-v", voice, "-s", &speed, "-w"])
            .arg(&tmp)
            .arg(&item.text)
            .status()
            .context("espeak-ng is needed for the accuracy benchmark: apt-get install espeak-ng")?;
        anyhow::ensure!(status.success(), "espeak-ng failed on voice {voice}");
        std::fs::rename(&tmp, &path)?;
    }
    Ok(atlas::audio::read_wav_16k_mono(&path)?)
}

/// RMS over the 20 ms frames within 30 dB of the loudest: the level of the speech itself, not
/// of the pauses around and inside it.
fn active_rms(samples: &[f32]) -> f64 {
    let frames: Vec<f64> = samples
        .chunks(320)
        .map(|c| c.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / c.len() as f64)
        .collect();
    let loudest = frames.iter().copied().fold(0.0, f64::max);
    let active: Vec<f64> = frames
        .into_iter()
        .filter(|&e| e >= loudest * 1e-3)
        .collect();
    if active.is_empty() {
        return 0.0;
    }
    (active.iter().sum::<f64>() / active.len() as f64).sqrt()
}

/// `n` samples of white or pink noise with unit RMS.
fn noise(color: &str, n: usize, rng: &mut Rng) -> Vec<f32> {
    let white = (0..n).map(|_| rng.uniform() * 2.0 - 1.0);
    let raw: Vec<f64> = if color == "pink" {
        // Paul Kellet's filter: within 0.05 dB of -3 dB/octave above 9 Hz at 16 kHz.
        let mut b = [0.0f64; 7];
        white
            .map(|w| {
                b[0] = 0.99886 * b[0] + w * 0.0555179;
                b[1] = 0.99332 * b[1] + w * 0.0750759;
                b[2] = 0.96900 * b[2] + w * 0.1538520;
                b[3] = 0.86650 * b[3] + w * 0.3104856;
                b[4] = 0.55000 * b[4] + w * 0.5329522;
                b[5] = -0.7616 * b[5] - w * 0.0168980;
                let pink = b.iter().sum::<f64>() + w * 0.5362;
                b[6] = w * 0.115926;
                pink
            })
            .collect()
    } else {
        white.collect()
    };
    let rms = (raw.iter().map(|x| x * x).sum::<f64>() / n.max(1) as f64).sqrt();
    raw.iter()
        .map(|x| (x / rms.max(f64::MIN_POSITIVE)) as f32)
        .collect()
}

fn scaled(samples: Vec<f32>, level: f64) -> Vec<f32> {
    samples
        .into_iter()
        .map(|x| (x as f64 * level).clamp(-1.0, 1.0) as f32)
        .collect()
}

/// A small seeded generator (FNV-1a of a name, then splitmix64): the same clips every run.
struct Rng(u64);

impl Rng {
    fn seeded(name: &str) -> Rng {
        let mut h: u64 = 0xcbf29ce484222325;
        for b in name.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x100000001b3);
        }
        Rng(h)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rms(x: &[f32]) -> f64 {
        (x.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    #[test]
    fn noise_has_unit_rms_and_is_the_same_for_the_same_seed() {
        for color in ["white", "pink"] {
            let a = noise(color, 16000, &mut Rng::seeded("x"));
            let b = noise(color, 16000, &mut Rng::seeded("x"));
            let c = noise(color, 16000, &mut Rng::seeded("y"));
            assert!((rms(&a) - 1.0).abs() < 1e-6, "{color}");
            assert_eq!(a, b);
            assert_ne!(a, c);
        }
    }

    #[test]
    fn pink_noise_has_more_low_than_high_frequency_energy() {
        // First differences weigh high frequencies: white noise keeps about twice its energy
        // in them, pink noise far less.
        let diff = |x: &[f32]| rms(&x.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>());
        let white = noise("white", 32000, &mut Rng::seeded("w"));
        let pink = noise("pink", 32000, &mut Rng::seeded("p"));
        assert!(diff(&white) > 1.3, "{}", diff(&white));
        assert!(diff(&pink) < 0.8, "{}", diff(&pink));
    }

    #[test]
    fn speech_level_ignores_the_silence_around_it() {
        let mut x = vec![0.0f32; 16000];
        x.extend((0..16000).map(|i| if i % 2 == 0 { 0.5 } else { -0.5 }));
        assert!((active_rms(&x) - 0.5).abs() < 1e-6);
        assert_eq!(active_rms(&[0.0; 100]), 0.0);
    }
}
