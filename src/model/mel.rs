//! The mel filterbank a ggml whisper file carries: librosa's Slaney-style filters for 16 kHz audio
//! and a 400-point FFT, which is what OpenAI's Whisper ships as `mel_filters.npz`.
//!
//! A CTranslate2 model does not contain the filters (faster-whisper computes them at run time), so
//! the converter computes them here: `n_mels` triangles spaced evenly on the Slaney mel scale
//! (linear below 1 kHz, logarithmic above) from 0 Hz to 8 kHz, each scaled to unit area
//! (`norm="slaney"`). Arithmetic is in f64 and the result is rounded to f32 once, as librosa does.

/// Sample rate Whisper works at.
pub(crate) const SAMPLE_RATE: f64 = 16_000.0;
/// FFT length Whisper uses (25 ms at 16 kHz).
pub(crate) const N_FFT: usize = 400;
/// Frequency bins of that FFT: `N_FFT / 2 + 1`.
pub(crate) const N_FREQS: usize = N_FFT / 2 + 1;

/// Width of one mel in the linear part of the Slaney scale, in Hz.
const F_SP: f64 = 200.0 / 3.0;
/// Where the Slaney scale turns logarithmic, in Hz.
const MIN_LOG_HZ: f64 = 1000.0;
/// The mel value at [`MIN_LOG_HZ`].
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

fn log_step() -> f64 {
    6.4f64.ln() / 27.0
}

/// Hz to mel on the Slaney scale.
pub(crate) fn hz_to_mel(hz: f64) -> f64 {
    if hz >= MIN_LOG_HZ {
        MIN_LOG_MEL + (hz / MIN_LOG_HZ).ln() / log_step()
    } else {
        hz / F_SP
    }
}

/// Mel to Hz on the Slaney scale.
pub(crate) fn mel_to_hz(mel: f64) -> f64 {
    if mel >= MIN_LOG_MEL {
        MIN_LOG_HZ * (log_step() * (mel - MIN_LOG_MEL)).exp()
    } else {
        F_SP * mel
    }
}

/// The filterbank, `n_mels` rows of [`N_FREQS`] weights, row-major.
pub(crate) fn filterbank(n_mels: usize) -> Vec<f32> {
    let fmax = SAMPLE_RATE / 2.0;
    let fft_freqs: Vec<f64> = (0..N_FREQS)
        .map(|k| k as f64 * SAMPLE_RATE / N_FFT as f64)
        .collect();
    // n_mels + 2 edges evenly spaced in mel: each filter spans three consecutive edges.
    let (mel_lo, mel_hi) = (hz_to_mel(0.0), hz_to_mel(fmax));
    let edges: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(mel_lo + (mel_hi - mel_lo) * i as f64 / (n_mels + 1) as f64))
        .collect();
    let mut weights = Vec::with_capacity(n_mels * N_FREQS);
    for i in 0..n_mels {
        let (left, centre, right) = (edges[i], edges[i + 1], edges[i + 2]);
        let norm = 2.0 / (right - left);
        for &f in &fft_freqs {
            let rising = (f - left) / (centre - left);
            let falling = (right - f) / (right - centre);
            let w = rising.min(falling).max(0.0);
            weights.push((w * norm) as f32);
        }
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(bank: &[f32], i: usize) -> &[f32] {
        &bank[i * N_FREQS..(i + 1) * N_FREQS]
    }

    fn peak(r: &[f32]) -> usize {
        let mut best = 0;
        for (k, &v) in r.iter().enumerate() {
            if v > r[best] {
                best = k;
            }
        }
        best
    }

    #[test]
    fn scale_is_linear_below_1khz_and_invertible() {
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-12);
        assert!((hz_to_mel(200.0) - 3.0).abs() < 1e-12);
        for hz in [0.0, 123.0, 999.0, 1000.0, 4321.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-9, "{hz}");
        }
    }

    // Reference values read from OpenAI Whisper's shipped `mel_filters.npz` (key `mel_80`):
    // (row, peak bin, value at the peak, row sum, first and last non-zero bin).
    const MEL80: [(usize, usize, f32, f32, usize, usize); 6] = [
        (0, 1, 0.024_862_595, 0.024_862_595, 1, 1),
        (1, 2, 0.022_871_772, 0.024_862_594, 1, 2),
        (10, 10, 0.019_908_218, 0.024_862_593, 10, 11),
        (39, 41, 0.011_486_922, 0.023_394_938, 40, 43),
        (40, 43, 0.014_735_567, 0.026_664_86, 42, 44),
        (79, 192, 0.003_164_712, 0.024_925_34, 186, 199),
    ];

    #[test]
    fn mel80_matches_whisper_assets() {
        let bank = filterbank(80);
        assert_eq!(bank.len(), 80 * 201);
        for (i, pk, pv, sum, first, last) in MEL80 {
            let r = row(&bank, i);
            assert_eq!(peak(r), pk, "peak of row {i}");
            assert!((r[pk] - pv).abs() < 1e-8, "row {i}: {} vs {pv}", r[pk]);
            let s: f32 = r.iter().sum();
            assert!((s - sum).abs() < 1e-7, "sum of row {i}: {s} vs {sum}");
            let nz: Vec<usize> = (0..N_FREQS).filter(|&k| r[k] != 0.0).collect();
            assert_eq!(
                (nz[0], nz[nz.len() - 1]),
                (first, last),
                "support of row {i}"
            );
        }
        let total: f64 = bank.iter().map(|&v| f64::from(v)).sum();
        assert!((total - 1.999_024_092).abs() < 1e-6, "{total}");
        // The DC bin and the Nyquist bin carry no weight in any filter.
        assert!((0..80).all(|i| row(&bank, i)[0] == 0.0 && row(&bank, i)[200] == 0.0));
    }

    #[test]
    fn mel128_matches_whisper_assets() {
        // Reference from `mel_128` (large-v3): rows 0, 40 and 127.
        let bank = filterbank(128);
        let r0 = row(&bank, 0);
        assert_eq!(peak(r0), 1);
        assert!((r0[1] - 0.012_373_987).abs() < 1e-8);
        let r40 = row(&bank, 40);
        assert_eq!(peak(r40), 24);
        assert!((r40[24] - 0.040_376_365).abs() < 1e-8);
        let r127 = row(&bank, 127);
        assert_eq!(peak(r127), 195);
        assert!((r127[195] - 0.005_041_601_6).abs() < 1e-8);
        let total: f64 = bank.iter().map(|&v| f64::from(v)).sum();
        assert!((total - 3.190_985_541).abs() < 1e-6, "{total}");
    }
}
