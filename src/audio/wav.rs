//! WAV files in and out, through the `hound` crate.
//!
//! Reading accepts any sample rate and channel count and integer samples of 8 to 32 bits or
//! 32-bit float; [`read_wav_16k_mono`] then gives the one shape the rest of Atlas uses (mono f32
//! at 16 kHz). Writing is for tests, benchmarks and `atlas listen --speak-to`-style round trips.

use std::path::Path;

use super::{AudioError, resample};

/// A decoded WAV file: interleaved samples in `-1.0..=1.0` plus their layout.
#[derive(Debug, Clone, PartialEq)]
pub struct WavAudio {
    /// Interleaved samples (frame 0 channel 0, frame 0 channel 1, ...), scaled to `-1.0..=1.0`.
    pub samples: Vec<f32>,
    /// Frames per second.
    pub sample_rate: u32,
    /// Channels per frame.
    pub channels: u16,
}

impl WavAudio {
    /// Length of the audio in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        let frames = self.samples.len() as u64 / u64::from(self.channels.max(1));
        frames * 1000 / u64::from(self.sample_rate.max(1))
    }
}

/// Reads a WAV file as it is stored (no conversion beyond scaling samples to f32).
pub fn read_wav(path: &Path) -> Result<WavAudio, AudioError> {
    let reader = hound::WavReader::open(path).map_err(|source| AudioError::WavRead {
        path: path.to_path_buf(),
        source,
    })?;
    decode(reader, path)
}

/// Reads WAV bytes (an upload, say) as they are stored; errors name `origin` as the file.
pub fn read_wav_bytes(bytes: &[u8], origin: &Path) -> Result<WavAudio, AudioError> {
    let reader = hound::WavReader::new(std::io::Cursor::new(bytes)).map_err(|source| {
        AudioError::WavRead {
            path: origin.to_path_buf(),
            source,
        }
    })?;
    decode(reader, origin)
}

fn decode<R: std::io::Read>(
    mut reader: hound::WavReader<R>,
    path: &Path,
) -> Result<WavAudio, AudioError> {
    let read_err = |source| AudioError::WavRead {
        path: path.to_path_buf(),
        source,
    };
    let spec = reader.spec();
    if spec.channels == 0 || spec.sample_rate == 0 {
        return Err(AudioError::WavUnsupported {
            path: path.to_path_buf(),
            reason: format!(
                "header says {} channels at {} Hz",
                spec.channels, spec.sample_rate
            ),
        });
    }
    let samples: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => reader
            .samples::<f32>()
            .collect::<Result<_, _>>()
            .map_err(read_err)?,
        (hound::SampleFormat::Int, bits @ 1..=32) => {
            // Integer samples are signed (hound re-centres 8-bit unsigned data); full scale is
            // 2^(bits-1), so i16 -32768 maps to exactly -1.0.
            let scale = 1.0 / (1u64 << (bits - 1)) as f64;
            reader
                .samples::<i32>()
                .map(|s| s.map(|v| (f64::from(v) * scale) as f32))
                .collect::<Result<_, _>>()
                .map_err(read_err)?
        }
        (format, bits) => {
            return Err(AudioError::WavUnsupported {
                path: path.to_path_buf(),
                reason: format!(
                    "{bits}-bit {format:?} samples (supported: 8/16/24/32-bit integer, 32-bit float); \
                     convert it with `sox in.wav -b 16 out.wav`"
                ),
            });
        }
    };
    Ok(WavAudio {
        samples,
        sample_rate: spec.sample_rate,
        channels: spec.channels,
    })
}

/// Reads a WAV file and converts it to mono f32 at 16 kHz, the shape `stt` wants.
pub fn read_wav_16k_mono(path: &Path) -> Result<Vec<f32>, AudioError> {
    let wav = read_wav(path)?;
    resample::to_16k_mono(&wav.samples, wav.sample_rate, wav.channels)
}

/// [`read_wav_bytes`] converted to mono f32 at 16 kHz.
pub fn read_wav_bytes_16k_mono(bytes: &[u8], origin: &Path) -> Result<Vec<f32>, AudioError> {
    let wav = read_wav_bytes(bytes, origin)?;
    resample::to_16k_mono(&wav.samples, wav.sample_rate, wav.channels)
}

/// Writes mono or interleaved samples as a 32-bit float WAV file.
pub fn write_wav_f32(
    path: &Path,
    samples: &[f32],
    sample_rate: u32,
    channels: u16,
) -> Result<(), AudioError> {
    let spec = hound::WavSpec {
        channels,
        sample_rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    write_with(path, spec, |w| {
        samples.iter().try_for_each(|&s| w.write_sample(s))
    })
}

/// Writes mono or interleaved samples as a 16-bit PCM WAV file (what most players and `paplay`
/// expect). Samples outside `-1.0..=1.0` are clipped.
pub fn write_wav_i16(
    path: &Path,
    samples: &[f32],
    sample_rate: u32,
    channels: u16,
) -> Result<(), AudioError> {
    let spec = hound::WavSpec {
        channels,
        sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    write_with(path, spec, |w| {
        samples
            .iter()
            .try_for_each(|&s| w.write_sample((s.clamp(-1.0, 1.0) * 32767.0).round() as i16))
    })
}

fn write_with(
    path: &Path,
    spec: hound::WavSpec,
    body: impl FnOnce(
        &mut hound::WavWriter<std::io::BufWriter<std::fs::File>>,
    ) -> Result<(), hound::Error>,
) -> Result<(), AudioError> {
    let write_err = |source| AudioError::WavWrite {
        path: path.to_path_buf(),
        source,
    };
    if spec.channels == 0 || spec.sample_rate == 0 {
        return Err(AudioError::WavUnsupported {
            path: path.to_path_buf(),
            reason: "cannot write 0 channels or a 0 Hz rate".to_owned(),
        });
    }
    let mut writer = hound::WavWriter::create(path, spec).map_err(write_err)?;
    body(&mut writer).map_err(write_err)?;
    writer.finalize().map_err(write_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f32, rate: u32, secs: f32, amp: f32) -> Vec<f32> {
        let n = (rate as f32 * secs) as usize;
        (0..n)
            .map(|i| amp * (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin())
            .collect()
    }

    #[test]
    fn i16_round_trip_keeps_values_within_one_step() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        let s = sine(440.0, 16_000, 0.5, 0.5);
        write_wav_i16(&path, &s, 16_000, 1).unwrap();
        let back = read_wav(&path).unwrap();
        assert_eq!(back.sample_rate, 16_000);
        assert_eq!(back.channels, 1);
        assert_eq!(back.samples.len(), s.len());
        let max_err = s
            .iter()
            .zip(&back.samples)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(max_err < 1.0 / 16_000.0, "max error {max_err}");
        assert_eq!(back.duration_ms(), 500);
    }

    #[test]
    fn reads_24_bit_and_32_bit_integer_and_float_files() {
        let dir = tempfile::tempdir().unwrap();
        for (bits, format) in [
            (24u16, hound::SampleFormat::Int),
            (32, hound::SampleFormat::Int),
            (32, hound::SampleFormat::Float),
            (8, hound::SampleFormat::Int),
        ] {
            let path = dir.path().join(format!("{bits}-{format:?}.wav"));
            let spec = hound::WavSpec {
                channels: 1,
                sample_rate: 8_000,
                bits_per_sample: bits,
                sample_format: format,
            };
            let mut w = hound::WavWriter::create(&path, spec).unwrap();
            // Half of full scale, positive then negative.
            let half = 1i64 << (bits - 2);
            for v in [half, -half] {
                match format {
                    hound::SampleFormat::Float => w.write_sample(v.signum() as f32 * 0.5).unwrap(),
                    hound::SampleFormat::Int if bits == 8 => w.write_sample(v as i8).unwrap(),
                    hound::SampleFormat::Int => w.write_sample(v as i32).unwrap(),
                }
            }
            w.finalize().unwrap();
            let back = read_wav(&path).unwrap();
            assert_eq!(back.samples.len(), 2, "{bits} {format:?}");
            assert!(
                (back.samples[0] - 0.5).abs() < 1e-6,
                "{bits} {format:?}: {back:?}"
            );
            assert!(
                (back.samples[1] + 0.5).abs() < 1e-6,
                "{bits} {format:?}: {back:?}"
            );
        }
    }

    #[test]
    fn stereo_44k1_file_becomes_16k_mono_of_the_right_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stereo.wav");
        let mono = sine(300.0, 44_100, 1.0, 0.4);
        // Left carries the tone, right is silent: the mono mix is the tone at half amplitude.
        let interleaved: Vec<f32> = mono.iter().flat_map(|&s| [s, 0.0]).collect();
        write_wav_f32(&path, &interleaved, 44_100, 2).unwrap();
        let out = read_wav_16k_mono(&path).unwrap();
        assert!((out.len() as i64 - 16_000).abs() <= 2, "len {}", out.len());
        let peak = out.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!((peak - 0.2).abs() < 0.02, "downmixed peak {peak}");
    }

    #[test]
    fn missing_and_garbage_files_give_errors_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.wav");
        let err = read_wav(&missing).unwrap_err().to_string();
        assert!(err.contains("nope.wav"), "{err}");
        let garbage = dir.path().join("garbage.wav");
        std::fs::write(&garbage, b"this is not a wav file at all").unwrap();
        let err = read_wav(&garbage).unwrap_err();
        assert!(matches!(err, AudioError::WavRead { .. }), "{err}");
        assert!(err.to_string().contains("garbage.wav"));
    }
}
