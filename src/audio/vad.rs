//! A voice-activity gate: does a clip hold speech at all, and where does it start and end?
//!
//! Whisper invents text for silence and noise ("Thank you."), so every clip passes this gate
//! before `stt`. It is a small energy + zero-crossing detector on 30 ms frames, in pure Rust (the
//! well-known VADs need C (WebRTC) or an ONNX runtime (Silero), too heavy for this one decision):
//!
//! 1. Per frame: level in dBFS (RMS) and zero-crossing rate (crossings per sample).
//! 2. Noise floor = the 10th percentile of frame levels; a frame is *loud* when it is above
//!    `max(abs_threshold_dbfs, floor + margin_db)`. Relative to the floor, so quiet and loud
//!    recordings are judged alike; the absolute threshold keeps near-silence out.
//! 3. A loud frame is *voiced* when its zero-crossing rate is at most `max_zcr`: hiss and
//!    broadband noise cross zero about every other sample (ZCR ~0.5), voiced speech far less.
//! 4. Speech = at least `min_voiced_ms` of voiced frames **and** a level that moves: the standard
//!    deviation of frame levels between the first and last voiced frame must reach
//!    `min_modulation_db`. Syllables make speech rise and fall by 10 dB or more; steady sounds
//!    (hum, a fan, a tone that starts mid-clip) stay within a dB or two.
//!
//! Trimming keeps from the first to the last voiced frame, widened over adjacent loud frames
//! (so an unvoiced "s" at either end survives), plus `trim_margin_ms` on each side.

use super::SAMPLE_RATE;

/// Thresholds of the gate. The defaults were checked against espeak-ng speech (several voices,
/// speeds and levels, clean and with white noise at 10 dB SNR) and against digital silence,
/// low white noise, mains hum and noise bursts (see the tests).
#[derive(Debug, Clone, PartialEq)]
pub struct VadConfig {
    /// Sample rate of the clips analysed (16 kHz in Atlas).
    pub sample_rate: u32,
    /// Frame length in milliseconds (30).
    pub frame_ms: u32,
    /// Frames quieter than this never count as speech (-55 dBFS: well under quiet speech on a
    /// laptop microphone, ~-40 dBFS, and above digital near-silence).
    pub abs_threshold_dbfs: f32,
    /// How far above the noise floor a frame must be to be loud (9 dB).
    pub margin_db: f32,
    /// Highest zero-crossing rate (per sample) of a voiced frame (0.3; white noise is ~0.5).
    pub max_zcr: f32,
    /// Least total voiced time for a clip to hold speech (180 ms: about one stressed syllable).
    pub min_voiced_ms: u32,
    /// Least standard deviation of frame levels across the voiced span (4 dB).
    pub min_modulation_db: f32,
    /// Silence kept before and after the speech when trimming (150 ms).
    pub trim_margin_ms: u32,
}

impl Default for VadConfig {
    fn default() -> Self {
        Self {
            sample_rate: SAMPLE_RATE,
            frame_ms: 30,
            abs_threshold_dbfs: -55.0,
            margin_db: 9.0,
            max_zcr: 0.3,
            min_voiced_ms: 180,
            min_modulation_db: 4.0,
            trim_margin_ms: 150,
        }
    }
}

/// What the gate found in one clip.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeechReport {
    /// The verdict: true when the clip holds speech.
    pub has_speech: bool,
    /// Estimated noise floor (10th percentile of frame levels), dBFS.
    pub noise_floor_dbfs: f32,
    /// Loudest frame, dBFS.
    pub peak_dbfs: f32,
    /// Level a frame had to exceed to be loud, dBFS.
    pub threshold_dbfs: f32,
    /// Total duration of voiced frames, ms.
    pub voiced_ms: u32,
    /// Standard deviation of frame levels across the voiced span, dB.
    pub modulation_db: f32,
    /// Sample range to keep (speech plus margins); empty when there is no speech.
    pub keep: std::ops::Range<usize>,
}

impl SpeechReport {
    /// The speech part of `samples` (the clip this report was made from), margins included.
    /// Returns an empty slice when the clip holds no speech.
    pub fn trim<'a>(&self, samples: &'a [f32]) -> &'a [f32] {
        let end = self.keep.end.min(samples.len());
        let start = self.keep.start.min(end);
        &samples[start..end]
    }
}

/// The gate itself; cheap to build, holds only its configuration.
#[derive(Debug, Clone, Default)]
pub struct Vad {
    config: VadConfig,
}

/// Level of digital silence, so that `log10(0)` never appears.
const SILENCE_DB: f32 = -120.0;

impl Vad {
    /// A gate with the given thresholds.
    pub fn new(config: VadConfig) -> Self {
        Self { config }
    }

    /// The gate's thresholds.
    pub fn config(&self) -> &VadConfig {
        &self.config
    }

    /// Analyses a mono clip at `config.sample_rate`.
    pub fn analyze(&self, samples: &[f32]) -> SpeechReport {
        let c = &self.config;
        let frame_len = self.frame_len();
        let frames: Vec<(f32, f32)> = samples.chunks(frame_len).map(frame_features).collect();
        let mut report = SpeechReport {
            has_speech: false,
            noise_floor_dbfs: SILENCE_DB,
            peak_dbfs: SILENCE_DB,
            threshold_dbfs: c.abs_threshold_dbfs,
            voiced_ms: 0,
            modulation_db: 0.0,
            keep: 0..0,
        };
        if frames.is_empty() {
            return report;
        }
        let levels: Vec<f32> = frames.iter().map(|f| f.0).collect();
        (report.noise_floor_dbfs, report.peak_dbfs, report.threshold_dbfs) = self.levels(&levels);
        let loud = |f: &(f32, f32)| f.0 > report.threshold_dbfs;
        let voiced: Vec<bool> = frames.iter().map(|f| loud(f) && f.1 <= c.max_zcr).collect();
        let n_voiced = voiced.iter().filter(|&&v| v).count();
        report.voiced_ms = (n_voiced as u32).saturating_mul(c.frame_ms);
        let (Some(first), Some(last)) = (
            voiced.iter().position(|&v| v),
            voiced.iter().rposition(|&v| v),
        ) else {
            return report;
        };
        report.modulation_db = std_dev(frames[first..=last].iter().map(|f| f.0));
        report.has_speech =
            report.voiced_ms >= c.min_voiced_ms && report.modulation_db >= c.min_modulation_db;
        if !report.has_speech {
            return report;
        }
        // Widen over adjacent loud (possibly unvoiced) frames, then add the margin.
        let mut start = first;
        while start > 0 && loud(&frames[start - 1]) {
            start -= 1;
        }
        let mut end = last + 1;
        while end < frames.len() && loud(&frames[end]) {
            end += 1;
        }
        let margin = c.sample_rate as usize * c.trim_margin_ms as usize / 1000;
        report.keep = (start * frame_len).saturating_sub(margin)
            ..(end * frame_len + margin).min(samples.len());
        report
    }
}

impl Vad {
    /// Noise floor, peak and loudness threshold of a clip whose frames have these levels (at
    /// least one): the floor is their 10th percentile, and a frame is loud above
    /// `max(abs_threshold_dbfs, floor + margin_db)`.
    pub fn levels(&self, levels: &[f32]) -> (f32, f32, f32) {
        let mut sorted = levels.to_vec();
        sorted.sort_by(f32::total_cmp);
        let floor = sorted.get(sorted.len() / 10).copied().unwrap_or(SILENCE_DB);
        let peak = sorted.last().copied().unwrap_or(SILENCE_DB);
        let c = &self.config;
        (floor, peak, c.abs_threshold_dbfs.max(floor + c.margin_db))
    }

    /// Whether anything loud (by the whole clip's threshold, voiced or not) comes at or after
    /// sample `from`. The live path asks this at release: a decode of the audio up to `from`
    /// may stand for the whole utterance only when nothing was heard after it; a frame that
    /// straddles `from` counts as after it.
    pub fn loud_after(&self, samples: &[f32], from: usize) -> bool {
        let frame_len = self.frame_len();
        let levels: Vec<f32> = samples.chunks(frame_len).map(frame_level).collect();
        if levels.is_empty() {
            return false;
        }
        let (_, _, threshold) = self.levels(&levels);
        levels[(from / frame_len).min(levels.len())..]
            .iter()
            .any(|&l| l > threshold)
    }

    /// Samples per analysis frame.
    pub fn frame_len(&self) -> usize {
        (self.config.sample_rate as usize * self.config.frame_ms as usize / 1000).max(1)
    }
}

/// Level of one frame: dBFS of its RMS (digital silence reads as -120).
pub fn frame_level(frame: &[f32]) -> f32 {
    frame_features(frame).0
}

/// Level (dBFS of the RMS) and zero-crossing rate of one frame.
fn frame_features(frame: &[f32]) -> (f32, f32) {
    let energy = frame.iter().map(|s| s * s).sum::<f32>() / frame.len().max(1) as f32;
    let db = if energy > 0.0 {
        (10.0 * energy.log10()).max(SILENCE_DB)
    } else {
        SILENCE_DB
    };
    let crossings = frame
        .windows(2)
        .filter(|w| (w[0] >= 0.0) != (w[1] >= 0.0))
        .count();
    (db, crossings as f32 / frame.len().max(1) as f32)
}

fn std_dev(values: impl Iterator<Item = f32> + Clone) -> f32 {
    let n = values.clone().count();
    if n < 2 {
        return 0.0;
    }
    let mean = values.clone().sum::<f32>() / n as f32;
    (values.map(|v| (v - mean).powi(2)).sum::<f32>() / n as f32).sqrt()
}

#[cfg(test)]
#[path = "vad_tests.rs"]
mod tests;
