//! A voice-activity gate: does a clip hold speech at all, and where does it start and end?
//!
//! Whisper invents text for silence and noise ("Thank you."), so every clip passes this gate
//! before `stt`. It is a small level + pitch + modulation detector on 30 ms frames, in pure Rust
//! (the well-known VADs need C (WebRTC) or an ONNX runtime (Silero), too heavy for this one
//! decision):
//!
//! 1. Per frame: level in dBFS (RMS), broadband and in the voice band (100-900 Hz, at 8 kHz),
//!    where voiced speech has most of its energy and white or pink noise only part of its own.
//! 2. Noise floor = the 10th percentile of frame levels; a frame is *loud* when it is above
//!    `max(abs_threshold_dbfs, floor + margin_db)`, or in the band above the band's own floor by
//!    `band_margin_db`. Relative to the floor, so quiet and loud recordings are judged alike; the
//!    absolute threshold keeps near-silence out.
//! 3. A loud frame is *voiced* when the band is periodic at a pitch between 60 and 400 Hz: the
//!    normalised autocorrelation of one of its 15 ms halves at some lag in that range reaches
//!    `min_periodicity`. Voiced
//!    speech keeps its pitch well under broadband noise (at 5 dB SNR); hiss, rumble, wind and
//!    noise that swells and fades like syllables have none. (A zero-crossing test did this
//!    before: it let loud noise drown speech and let low-pitched noise through.)
//! 4. Speech = at least `min_voiced_ms` of voiced frames **and** a level that moves: the standard
//!    deviation of frame levels (broadband or in the band, whichever moves more) between the
//!    first and last voiced frame must reach `min_modulation_db`. Syllables make speech rise and
//!    fall by 10 dB or more; steady sounds (hum, a tone that starts mid-clip) stay within a dB
//!    or two.
//!
//! Trimming keeps from the first to the last voiced frame, widened over adjacent loud frames
//! (so an unvoiced "s" at either end survives), plus `trim_margin_ms` on each side.

use super::SAMPLE_RATE;

/// Thresholds of the gate. The defaults were checked against espeak-ng speech (several voices,
/// speeds and levels, clean and with white or pink noise down to 5 dB SNR) and against digital
/// silence, white and pink noise from -65 to -15 dBFS, steady or swelling by up to 20 dB at the
/// rate of syllables, mains hum and noise bursts (see the tests and `atlas bench accuracy
/// --gate`).
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
    /// Least total voiced time for a clip to hold speech (120 ms: the vowel of a short "stop").
    pub min_voiced_ms: u32,
    /// Least standard deviation of frame levels across the voiced span (4 dB).
    pub min_modulation_db: f32,
    /// How far above the voice band's own floor a frame is loud in the band (6 dB).
    pub band_margin_db: f32,
    /// Least normalised autocorrelation at a pitch lag, over half a frame, for a loud frame to
    /// be voiced (0.8: the vowels of espeak-ng speech under 5 dB of noise reach it; noise, even
    /// swelling, stayed under 0.7 on `atlas bench accuracy --gate`'s 124 clips).
    pub min_periodicity: f32,
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
            min_voiced_ms: 120,
            min_modulation_db: 4.0,
            band_margin_db: 6.0,
            min_periodicity: 0.8,
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

/// [`Vad::own_head`]: a head sound must be loud within this many frames of the recording's
/// start (60 ms), sooner than anyone starts speaking after pressing a key.
pub const HEAD_ONSET_FRAMES: usize = 2;

/// [`Vad::own_head`]: the quiet frames (60 ms) that part Atlas's own sound from what follows.
pub const HEAD_GAP_FRAMES: usize = 2;

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
        let frames: Vec<f32> = samples.chunks(frame_len).map(frame_level).collect();
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
        (
            report.noise_floor_dbfs,
            report.peak_dbfs,
            report.threshold_dbfs,
        ) = self.levels(&frames);
        let loud = |level: &f32| *level > report.threshold_dbfs;
        let band = VoiceBand::of(samples, c, frames.len());
        let band_levels = band.levels();
        let (_, _, band_threshold) = self.levels_with(&band_levels, c.band_margin_db);
        let voiced: Vec<bool> = frames
            .iter()
            .enumerate()
            .map(|(i, level)| {
                (loud(level) || band_levels[i] > band_threshold)
                    && band.periodic(i, c.min_periodicity)
            })
            .collect();
        let n_voiced = voiced.iter().filter(|&&v| v).count();
        report.voiced_ms = (n_voiced as u32).saturating_mul(c.frame_ms);
        let (Some(first), Some(last)) = (
            voiced.iter().position(|&v| v),
            voiced.iter().rposition(|&v| v),
        ) else {
            return report;
        };
        report.modulation_db = std_dev(frames[first..=last].iter().copied())
            .max(std_dev(band_levels[first..=last].iter().copied()));
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
        self.levels_with(levels, self.config.margin_db)
    }

    fn levels_with(&self, levels: &[f32], margin_db: f32) -> (f32, f32, f32) {
        let mut sorted = levels.to_vec();
        sorted.sort_by(f32::total_cmp);
        let floor = sorted.get(sorted.len() / 10).copied().unwrap_or(SILENCE_DB);
        let peak = sorted.last().copied().unwrap_or(SILENCE_DB);
        (
            floor,
            peak,
            self.config.abs_threshold_dbfs.max(floor + margin_db),
        )
    }

    /// Whether anything loud (by the whole clip's threshold, voiced or not) comes at or after
    /// sample `from`. The live path asks this at release: a decode of the audio up to `from`
    /// may stand for the whole utterance only when nothing was heard after it; a frame that
    /// straddles `from` counts as after it.
    pub fn loud_after(&self, samples: &[f32], from: usize) -> bool {
        let loud = self.loud_frames(samples);
        loud[(from / self.frame_len()).min(loud.len())..]
            .iter()
            .any(|&l| l)
    }

    /// How many samples at the start of a recording hold only Atlas's own sound, to be left out
    /// of its decode: a sound already there as the recording opens (loud within its first
    /// [`HEAD_ONSET_FRAMES`] frames: the tail of speech the press cut short, still in the sound
    /// server's buffer) that falls quiet for [`HEAD_GAP_FRAMES`] frames before `own` samples
    /// (the span the agent knows its own sound may fill) and is followed by more sound. The
    /// user's speech does not start the instant the key goes down; when it runs on from that
    /// head without a gap, nothing is left out (0), as when the span is zero.
    ///
    /// Measured: whisper read a 250 ms tail of a story, cut short by the press, 100 ms before
    /// "Set the volume to low." as "I'll skip set the volume to low.", a statement.
    pub fn own_head(&self, samples: &[f32], own: usize) -> usize {
        let own_frames = own / self.frame_len();
        if own_frames == 0 {
            return 0;
        }
        let loud = self.loud_frames(samples);
        let Some(first) = loud.iter().take(HEAD_ONSET_FRAMES).position(|&l| l) else {
            return 0;
        };
        let gap = (first..own_frames.min(loud.len())).find(|&i| {
            loud.get(i..i + HEAD_GAP_FRAMES)
                .is_some_and(|w| !w.iter().any(|&l| l))
        });
        match gap {
            Some(i) if loud[i + HEAD_GAP_FRAMES..].iter().any(|&l| l) => i * self.frame_len(),
            _ => 0,
        }
    }

    /// Whether a sound is there as the recording opens (loud, by the whole clip's threshold,
    /// within its first [`HEAD_ONSET_FRAMES`] frames): sooner than the user starts speaking
    /// after a press, so Atlas's own when it played something then (see [`Vad::own_head`]).
    pub fn sound_at_start(&self, samples: &[f32]) -> bool {
        self.loud_frames(samples)
            .iter()
            .take(HEAD_ONSET_FRAMES)
            .any(|&l| l)
    }

    /// Which frames are loud by the whole clip's threshold (voiced or not).
    fn loud_frames(&self, samples: &[f32]) -> Vec<bool> {
        let levels: Vec<f32> = samples.chunks(self.frame_len()).map(frame_level).collect();
        if levels.is_empty() {
            return Vec::new();
        }
        let (_, _, threshold) = self.levels(&levels);
        levels.iter().map(|&l| l > threshold).collect()
    }

    /// Samples per analysis frame.
    pub fn frame_len(&self) -> usize {
        (self.config.sample_rate as usize * self.config.frame_ms as usize / 1000).max(1)
    }
}

/// Level of one frame: dBFS of its RMS (digital silence reads as -120).
pub fn frame_level(frame: &[f32]) -> f32 {
    let energy = frame.iter().map(|s| s * s).sum::<f32>() / frame.len().max(1) as f32;
    if energy > 0.0 {
        (10.0 * energy.log10()).max(SILENCE_DB)
    } else {
        SILENCE_DB
    }
}

/// The clip in the voice band (100-900 Hz) at half the rate, framed like the clip itself.
struct VoiceBand {
    samples: Vec<f32>,
    frame_len: usize,
    frames: usize,
    /// Pitch lags at the band's rate: 400 Hz down to 60 Hz.
    lags: std::ops::RangeInclusive<usize>,
}

impl VoiceBand {
    fn of(samples: &[f32], config: &VadConfig, frames: usize) -> VoiceBand {
        let rate = config.sample_rate;
        let half = rate as f32 / 2.0;
        let mut low = Biquad::low_pass(900.0, rate as f32);
        let mut high = Biquad::high_pass(100.0, rate as f32);
        let filtered: Vec<f32> = samples.iter().map(|&x| high.next(low.next(x))).collect();
        let samples = filtered.into_iter().step_by(2).collect();
        VoiceBand {
            samples,
            frame_len: ((half * config.frame_ms as f32 / 1000.0) as usize).max(1),
            frames,
            lags: (half / 400.0) as usize..=(half / 60.0) as usize,
        }
    }

    fn frame(&self, i: usize) -> &[f32] {
        let start = (i * self.frame_len).min(self.samples.len());
        &self.samples[start..(start + self.frame_len).min(self.samples.len())]
    }

    /// The band level of each frame, dBFS.
    fn levels(&self) -> Vec<f32> {
        (0..self.frames)
            .map(|i| frame_level(self.frame(i)))
            .collect()
    }

    /// Whether frame `i` is periodic at a pitch lag: the normalised autocorrelation (0 to 1) of
    /// one of its halves against the band shifted by the lag (later, or earlier where the clip
    /// ends) reaches `threshold`. Half frames, because a pitch that glides (a falling "stop")
    /// moves a strong first formant out of phase across a whole frame and its lag. The search
    /// stops at the first lag that reaches it.
    fn periodic(&self, i: usize, threshold: f32) -> bool {
        let n = (self.frame_len / 2).max(1);
        (0..2).any(|k| self.window_reaches(i * self.frame_len + k * n, n, f64::from(threshold)))
    }

    fn window_reaches(&self, start: usize, n: usize, threshold: f64) -> bool {
        let Some(x) = self.samples.get(start..start + n) else {
            return false;
        };
        let ex: f64 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        self.lags.clone().any(|lag| {
            let later = self.samples.get(start + lag..start + lag + n);
            let earlier = || start.checked_sub(lag).map(|s| &self.samples[s..s + n]);
            let Some(y) = later.or_else(earlier) else {
                return false;
            };
            let (mut xy, mut ey) = (0.0f64, 0.0f64);
            for (&a, &b) in x.iter().zip(y) {
                xy += f64::from(a) * f64::from(b);
                ey += f64::from(b) * f64::from(b);
            }
            // Below ~-120 dBFS there is nothing to correlate.
            ex * ey > 1e-24 * (n * n) as f64 && xy >= threshold * (ex * ey).sqrt()
        })
    }
}

/// A second-order Butterworth section (the audio EQ cookbook's form).
struct Biquad {
    b: [f32; 3],
    a: [f32; 2],
    x: [f32; 2],
    y: [f32; 2],
}

impl Biquad {
    fn low_pass(cutoff: f32, rate: f32) -> Biquad {
        let (cos, alpha) = Biquad::angle(cutoff, rate);
        Biquad::new(
            [(1.0 - cos) / 2.0, 1.0 - cos, (1.0 - cos) / 2.0],
            cos,
            alpha,
        )
    }

    fn high_pass(cutoff: f32, rate: f32) -> Biquad {
        let (cos, alpha) = Biquad::angle(cutoff, rate);
        Biquad::new(
            [(1.0 + cos) / 2.0, -(1.0 + cos), (1.0 + cos) / 2.0],
            cos,
            alpha,
        )
    }

    fn angle(cutoff: f32, rate: f32) -> (f32, f32) {
        let w = std::f32::consts::TAU * cutoff / rate;
        (w.cos(), w.sin() / (2.0 * std::f32::consts::FRAC_1_SQRT_2))
    }

    fn new(b: [f32; 3], cos: f32, alpha: f32) -> Biquad {
        let a0 = 1.0 + alpha;
        Biquad {
            b: b.map(|v| v / a0),
            a: [-2.0 * cos / a0, (1.0 - alpha) / a0],
            x: [0.0; 2],
            y: [0.0; 2],
        }
    }

    fn next(&mut self, x: f32) -> f32 {
        let y = self.b[0] * x + self.b[1] * self.x[0] + self.b[2] * self.x[1]
            - self.a[0] * self.y[0]
            - self.a[1] * self.y[1];
        self.x = [x, self.x[0]];
        self.y = [y, self.y[0]];
        y
    }
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
