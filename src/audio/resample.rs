//! Channel downmixing and sample-rate conversion to whisper's 16 kHz mono.
//!
//! Resampling uses `rubato`'s synchronous FFT resampler: the ratio between a microphone's or
//! file's rate and 16 kHz is fixed, and for a fixed ratio the FFT resampler is both the fastest
//! and as clean as the sinc one (its anti-aliasing window removes everything above 8 kHz before
//! decimating, which is what speech recognition wants). Whole clips are converted at once with
//! `process_all`, which also trims the resampler's start-up delay so the output lines up with the
//! input.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

use super::{AudioError, SAMPLE_RATE};

/// Frames per FFT chunk: large enough to be efficient, small enough that a 1 s clip is a few
/// chunks. rubato rounds it up to a block size valid for the rate pair.
const CHUNK_FRAMES: usize = 1024;

/// Averages interleaved channels into one. One channel is returned as is; a trailing partial
/// frame is dropped.
pub fn downmix(interleaved: &[f32], channels: u16) -> Vec<f32> {
    let ch = usize::from(channels.max(1));
    if ch == 1 {
        return interleaved.to_vec();
    }
    let scale = 1.0 / ch as f32;
    interleaved
        .chunks_exact(ch)
        .map(|frame| frame.iter().sum::<f32>() * scale)
        .collect()
}

/// Converts mono samples from `from_rate` to `to_rate` Hz. The output has
/// `round(len * to_rate / from_rate)` samples (rubato's exact length for the ratio).
pub fn resample_mono(
    samples: &[f32],
    from_rate: u32,
    to_rate: u32,
) -> Result<Vec<f32>, AudioError> {
    let err = |reason: String| AudioError::Resample {
        from_rate,
        to_rate,
        reason,
    };
    if from_rate == 0 || to_rate == 0 {
        return Err(err("a sample rate of 0 Hz is not a rate".to_owned()));
    }
    if from_rate == to_rate || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    let mut resampler = Fft::<f32>::new(
        from_rate as usize,
        to_rate as usize,
        CHUNK_FRAMES,
        1,
        FixedSync::Input,
    )
    .map_err(|e| err(e.to_string()))?;
    let input = InterleavedSlice::new(samples, 1, samples.len()).map_err(|e| err(e.to_string()))?;
    let output = resampler
        .process_all(&input, samples.len(), None)
        .map_err(|e| err(e.to_string()))?;
    Ok(output.take_data())
}

/// Downmixes interleaved audio and converts it to 16 kHz: the one shape `stt` accepts.
pub fn to_16k_mono(
    interleaved: &[f32],
    sample_rate: u32,
    channels: u16,
) -> Result<Vec<f32>, AudioError> {
    let mono = downmix(interleaved, channels);
    resample_mono(&mono, sample_rate, SAMPLE_RATE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f32, rate: u32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| 0.5 * (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin())
            .collect()
    }

    /// Estimates a tone's frequency from its zero crossings.
    fn crossings_hz(s: &[f32], rate: u32) -> f32 {
        let z = s
            .windows(2)
            .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
            .count();
        z as f32 / 2.0 / (s.len() as f32 / rate as f32)
    }

    #[test]
    fn downmix_averages_channels() {
        let stereo = [1.0, 0.0, 0.5, 0.5, -1.0, 1.0, 0.25];
        assert_eq!(downmix(&stereo, 2), vec![0.5, 0.5, 0.0]);
        let quad = [1.0, 1.0, 1.0, 1.0];
        assert_eq!(downmix(&quad, 4), vec![1.0]);
        assert_eq!(downmix(&[0.3, 0.2], 1), vec![0.3, 0.2]);
    }

    #[test]
    fn common_rates_convert_with_the_right_length_and_pitch() {
        for rate in [8_000u32, 22_050, 44_100, 48_000, 96_000] {
            let input = sine(440.0, rate, rate as usize * 2);
            let out = resample_mono(&input, rate, SAMPLE_RATE).unwrap();
            assert!(
                (out.len() as i64 - 32_000).abs() <= 2,
                "{rate} Hz gave {} samples",
                out.len()
            );
            let hz = crossings_hz(&out[1000..31_000], SAMPLE_RATE);
            assert!(
                (hz - 440.0).abs() < 3.0,
                "{rate} Hz: tone came out at {hz} Hz"
            );
            let peak = out[1000..31_000].iter().fold(0.0f32, |m, s| m.max(s.abs()));
            assert!((peak - 0.5).abs() < 0.02, "{rate} Hz: peak {peak}");
        }
    }

    #[test]
    fn tones_above_8_khz_are_filtered_out_when_downsampling() {
        let input = sine(12_000.0, 48_000, 48_000);
        let out = resample_mono(&input, 48_000, SAMPLE_RATE).unwrap();
        let rms = (out[2000..14_000].iter().map(|s| s * s).sum::<f32>() / 12_000.0).sqrt();
        assert!(
            rms < 0.01,
            "a 12 kHz tone should not alias into 16 kHz audio (rms {rms})"
        );
    }

    #[test]
    fn empty_same_rate_and_zero_rate() {
        assert!(resample_mono(&[], 48_000, 16_000).unwrap().is_empty());
        assert_eq!(
            resample_mono(&[0.1, 0.2], 16_000, 16_000).unwrap(),
            vec![0.1, 0.2]
        );
        let err = resample_mono(&[0.1], 0, 16_000).unwrap_err();
        assert!(err.to_string().contains("0 Hz"), "{err}");
    }
}
