//! Rendering text to audio with the `espeak-ng` program.
//!
//! [`Espeak`] runs `espeak-ng --stdout -v <voice> -s <rate>` once per piece of text, writes the
//! text to its standard input (never through a shell, and never as an argument that could be
//! mistaken for an option), and parses the WAV it prints into f32 samples. espeak-ng always
//! renders mono audio at [`ESPEAK_SAMPLE_RATE`]. Rendering blocks: call it from a blocking thread.

use std::io::{Cursor, Read, Write};
use std::process::{Command, Stdio};

use super::TtsError;
use crate::config::{DEFAULT_RATE, DEFAULT_VOICE, SpeakerConfig};

/// The sample rate of espeak-ng's output, in Hz.
pub const ESPEAK_SAMPLE_RATE: u32 = 22_050;

/// What to tell a user who has no espeak-ng.
const INSTALL_HINT: &str = "install espeak-ng: apt-get install espeak-ng";

/// Mono audio rendered from text.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedAudio {
    /// Samples in -1.0..=1.0, one channel.
    pub samples: Vec<f32>,
    /// Samples per second.
    pub sample_rate: u32,
}

impl RenderedAudio {
    /// How long the audio plays.
    pub fn duration(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(
            self.samples.len() as f64 / f64::from(self.sample_rate.max(1)),
        )
    }
}

/// An espeak-ng voice and speed, ready to render text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Espeak {
    program: String,
    voice: String,
    rate: u32,
}

impl Default for Espeak {
    fn default() -> Self {
        Self::new(DEFAULT_VOICE, DEFAULT_RATE)
    }
}

impl Espeak {
    /// The renderer `[speech]` describes (its voice and rate).
    pub fn from_config(cfg: &SpeakerConfig) -> Espeak {
        Espeak::new(&cfg.voice, cfg.rate)
    }

    /// A renderer using `voice` (e.g. `en-us`, `en-gb`, `en-us+f3`) at `rate` words per minute.
    /// espeak-ng accepts rates from 80 to 450; other values are clamped.
    pub fn new(voice: &str, rate: u32) -> Self {
        Self {
            program: "espeak-ng".to_owned(),
            voice: voice.to_owned(),
            rate: rate.clamp(80, 450),
        }
    }

    /// Uses another program path instead of `espeak-ng` from `PATH`.
    pub fn with_program(mut self, program: &str) -> Self {
        program.clone_into(&mut self.program);
        self
    }

    /// The voice name passed to `-v`.
    pub fn voice(&self) -> &str {
        &self.voice
    }

    /// The rate in words per minute passed to `-s`.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Checks that espeak-ng can be run, with an error that says how to install it.
    pub fn check_installed(&self) -> Result<(), TtsError> {
        match Command::new(&self.program)
            .arg("--version")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
        {
            Ok(status) if status.success() => Ok(()),
            Ok(status) => Err(unavailable(format!(
                "`{} --version` exited with {status}; {INSTALL_HINT}",
                self.program
            ))),
            Err(e) => Err(self.spawn_error(&e)),
        }
    }

    /// Renders `text` to audio. Blocks for the time espeak-ng takes (tens of milliseconds for a
    /// sentence). Empty text gives empty audio without running espeak-ng.
    pub fn render(&self, text: &str) -> Result<RenderedAudio, TtsError> {
        if text.trim().is_empty() {
            return Ok(RenderedAudio {
                samples: Vec::new(),
                sample_rate: ESPEAK_SAMPLE_RATE,
            });
        }
        let mut child = Command::new(&self.program)
            .arg("--stdout")
            .args(["-v", &self.voice])
            .args(["-s", &self.rate.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.spawn_error(&e))?;
        // Writing happens on its own thread so a large text cannot deadlock against a full
        // stdout pipe. espeak-ng reads until end of input; one line per piece keeps it one clause.
        let stdin = child.stdin.take();
        let input = text.replace(['\r', '\n'], " ");
        let writer = std::thread::spawn(move || {
            if let Some(mut stdin) = stdin {
                // A write error shows up below as espeak-ng's own failure or empty output.
                let _ = stdin.write_all(input.as_bytes());
            }
        });
        let mut wav = Vec::new();
        if let Some(mut stdout) = child.stdout.take() {
            stdout
                .read_to_end(&mut wav)
                .map_err(|e| TtsError::Failed(format!("reading espeak-ng output: {e}")))?;
        }
        let _ = writer.join();
        let output = child
            .wait_with_output()
            .map_err(|e| TtsError::Failed(format!("waiting for espeak-ng: {e}")))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(TtsError::Failed(format!(
                "espeak-ng -v {} exited with {}: {}",
                self.voice,
                output.status,
                stderr.trim()
            )));
        }
        let audio = parse_wav(&wav)?;
        tracing::trace!(
            voice = %self.voice,
            chars = text.len(),
            samples = audio.samples.len(),
            "espeak-ng rendered"
        );
        Ok(audio)
    }

    /// The error for a failed spawn: "not installed" when the program is missing.
    fn spawn_error(&self, e: &std::io::Error) -> TtsError {
        if e.kind() == std::io::ErrorKind::NotFound {
            unavailable(format!("`{}` was not found; {INSTALL_HINT}", self.program))
        } else {
            unavailable(format!("could not run `{}`: {e}", self.program))
        }
    }
}

/// An [`TtsError::Unavailable`] for espeak-ng.
fn unavailable(reason: String) -> TtsError {
    TtsError::Unavailable {
        backend: "espeak-ng",
        reason,
    }
}

/// Parses a 16-bit PCM WAV into mono f32 samples (channels are averaged).
///
/// espeak-ng writes a streaming header whose lengths say "about 2 GB"; the lengths are corrected
/// to the bytes actually present before parsing.
pub fn parse_wav(bytes: &[u8]) -> Result<RenderedAudio, TtsError> {
    let mut bytes = bytes.to_vec();
    fix_stream_lengths(&mut bytes);
    let reader = hound::WavReader::new(Cursor::new(bytes))
        .map_err(|e| TtsError::Failed(format!("espeak-ng printed no valid WAV: {e}")))?;
    let spec = reader.spec();
    if spec.sample_format != hound::SampleFormat::Int || spec.bits_per_sample != 16 {
        return Err(TtsError::Failed(format!(
            "espeak-ng printed {}-bit {:?} audio; expected 16-bit integer samples",
            spec.bits_per_sample, spec.sample_format
        )));
    }
    let channels = usize::from(spec.channels.max(1));
    let mut samples = Vec::new();
    let mut frame_sum = 0.0f32;
    for (i, sample) in reader.into_samples::<i16>().enumerate() {
        match sample {
            Ok(s) => {
                frame_sum += f32::from(s) / 32_768.0;
                if (i + 1) % channels == 0 {
                    samples.push(frame_sum / channels as f32);
                    frame_sum = 0.0;
                }
            }
            Err(e) => return Err(TtsError::Failed(format!("bad espeak-ng WAV data: {e}"))),
        }
    }
    Ok(RenderedAudio {
        samples,
        sample_rate: spec.sample_rate,
    })
}

/// Shrinks the RIFF and `data` chunk lengths of a WAV to what `bytes` really holds.
fn fix_stream_lengths(bytes: &mut [u8]) {
    fn read_u32(bytes: &[u8], at: usize) -> Option<usize> {
        let b = bytes.get(at..at + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }
    fn write_u32(bytes: &mut [u8], at: usize, value: usize) {
        let value = u32::try_from(value).unwrap_or(u32::MAX).to_le_bytes();
        if let Some(slot) = bytes.get_mut(at..at + 4) {
            slot.copy_from_slice(&value);
        }
    }
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return;
    }
    write_u32(bytes, 4, bytes.len() - 8);
    let mut at = 12;
    while let Some(size) = read_u32(bytes, at + 4) {
        let body = at + 8;
        if &bytes[at..at + 4] == b"data" {
            let present = bytes.len() - body;
            // Whole 16-bit samples only.
            write_u32(bytes, at + 4, size.min(present) & !1);
            return;
        }
        at = body + size + (size & 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::audio::test_support::rms;
    use crate::tts::test_support::espeak_present;

    #[test]
    fn renders_a_sentence_to_audible_samples() {
        if !espeak_present() {
            return;
        }
        let audio = Espeak::default()
            .render("Hello, this is Atlas speaking.")
            .expect("render");
        assert_eq!(audio.sample_rate, ESPEAK_SAMPLE_RATE);
        let secs = audio.duration().as_secs_f32();
        assert!((0.8..6.0).contains(&secs), "duration {secs}s");
        assert!(rms(&audio.samples) > 0.01, "rms {}", rms(&audio.samples));
        assert!(audio.samples.iter().all(|s| (-1.0..=1.0).contains(s)));
    }

    #[test]
    fn slower_rate_gives_longer_audio_and_options_in_text_are_spoken() {
        if !espeak_present() {
            return;
        }
        let text = "--version -v de the quick brown fox";
        let fast = Espeak::new("en-us", 300).render(text).expect("fast");
        let slow = Espeak::new("en-us", 100).render(text).expect("slow");
        // Text that looks like options is spoken, not obeyed: both renders hold speech.
        assert!(rms(&fast.samples) > 0.01);
        assert!(slow.samples.len() > fast.samples.len() * 3 / 2);
    }

    #[test]
    fn empty_text_renders_nothing() {
        let audio = Espeak::new("en-us", 175)
            .with_program("/nonexistent/espeak")
            .render("  ")
            .expect("empty text needs no program");
        assert!(audio.samples.is_empty());
    }

    #[test]
    fn missing_program_says_how_to_install() {
        let espeak = Espeak::default().with_program("/nonexistent/espeak-ng");
        let err = espeak.render("hello").expect_err("must fail");
        let msg = err.to_string();
        assert!(msg.contains("apt-get install espeak-ng"), "{msg}");
        assert!(matches!(
            espeak.check_installed(),
            Err(TtsError::Unavailable { .. })
        ));
    }
}
