//! [`WavFileSpeaker`]: speech rendered by espeak-ng and appended to one WAV file.
//!
//! Used by `atlas listen --speak-to OUT.wav` and `atlas say TEXT --out WAV`, and by tests that
//! want to hear what Atlas said. The file is 16-bit mono at espeak-ng's rate; its header is
//! rewritten after every request, so the file is a valid WAV whenever `speak` has returned.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use futures::future::BoxFuture;

use super::espeak::{ESPEAK_SAMPLE_RATE, Espeak};
use super::text::{normalise_for_speech, split_sentences};
use super::{Speaker, SpeechOutcome, TtsError};

/// The backend name in outcomes and logs.
const NAME: &str = "wav-file";

type Writer = hound::WavWriter<BufWriter<File>>;

/// Appends spoken text to a WAV file.
pub struct WavFileSpeaker {
    espeak: Espeak,
    path: PathBuf,
    /// The open file; held for a whole request, so requests are written one after another.
    writer: Arc<tokio::sync::Mutex<Writer>>,
    /// The interrupt flag of the request being written, if any.
    current: std::sync::Mutex<Option<Arc<AtomicBool>>>,
}

impl std::fmt::Debug for WavFileSpeaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavFileSpeaker")
            .field("espeak", &self.espeak)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl WavFileSpeaker {
    /// Creates (or truncates) `path` as an empty WAV and checks that espeak-ng runs.
    pub fn create(path: &Path, espeak: Espeak) -> Result<Self, TtsError> {
        espeak.check_installed()?;
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: ESPEAK_SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::create(path, spec).map_err(|e| file_error(path, &e))?;
        writer.flush().map_err(|e| file_error(path, &e))?;
        Ok(Self {
            espeak,
            path: path.to_owned(),
            writer: Arc::new(tokio::sync::Mutex::new(writer)),
            current: std::sync::Mutex::new(None),
        })
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn speak_text(&self, text: &str) -> Result<SpeechOutcome, TtsError> {
        let called = Instant::now();
        let sentences = split_sentences(&normalise_for_speech(text));
        let mut writer = Arc::clone(&self.writer).lock_owned().await;
        let interrupted = Arc::new(AtomicBool::new(false));
        *lock(&self.current) = Some(Arc::clone(&interrupted));
        let espeak = self.espeak.clone();
        let path = self.path.clone();
        let flag = Arc::clone(&interrupted);
        let result = tokio::task::spawn_blocking(move || {
            let mut first_audio = None;
            for sentence in sentences {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let audio = espeak.render(&sentence)?;
                if audio.sample_rate != ESPEAK_SAMPLE_RATE {
                    return Err(TtsError::Failed(format!(
                        "espeak-ng rendered {} Hz audio but {} is {ESPEAK_SAMPLE_RATE} Hz",
                        audio.sample_rate,
                        path.display()
                    )));
                }
                for sample in audio.samples {
                    let value = (sample * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16;
                    writer
                        .write_sample(value)
                        .map_err(|e| file_error(&path, &e))?;
                }
                first_audio.get_or_insert_with(|| called.elapsed());
            }
            // Rewrites the header so the file is complete as it stands.
            writer.flush().map_err(|e| file_error(&path, &e))?;
            Ok(first_audio)
        })
        .await
        .map_err(|e| TtsError::Failed(format!("the WAV writer task failed: {e}")));
        *lock(&self.current) = None;
        let first_audio = result??;
        let completed = !interrupted.load(Ordering::SeqCst);
        Ok(SpeechOutcome {
            backend: NAME,
            completed,
            first_audio,
            unvoiced: None,
        })
    }
}

/// A file error naming the file.
fn file_error(path: &Path, e: &hound::Error) -> TtsError {
    TtsError::Failed(format!("cannot write speech to {}: {e}", path.display()))
}

/// Locks a std mutex, ignoring poisoning (the data is a plain flag handle).
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Speaker for WavFileSpeaker {
    fn speak<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Result<SpeechOutcome, TtsError>> {
        Box::pin(self.speak_text(text))
    }

    fn stop(&self) {
        if let Some(flag) = lock(&self.current).as_ref() {
            flag.store(true, Ordering::SeqCst);
        }
    }

    fn name(&self) -> &'static str {
        NAME
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::test_support::rms;
    use crate::tts::test_support::espeak_present;

    fn read(path: &Path) -> (hound::WavSpec, Vec<f32>) {
        let reader = hound::WavReader::open(path).expect("valid WAV");
        let spec = reader.spec();
        let samples = reader
            .into_samples::<i16>()
            .map(|s| f32::from(s.expect("sample")) / 32_768.0)
            .collect();
        (spec, samples)
    }

    #[tokio::test]
    async fn file_is_valid_and_grows_with_each_request() {
        if !espeak_present() {
            return;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("out.wav");
        let speaker = WavFileSpeaker::create(&path, Espeak::default()).expect("create");
        let (_, empty) = read(&path);
        assert!(empty.is_empty(), "a new file is a valid, empty WAV");

        let first = speaker.speak("Hello there.").await.expect("first");
        let (spec, once) = read(&path);
        assert!(first.completed && first.first_audio.is_some());
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (1, 22_050, 16)
        );
        assert!(rms(&once) > 0.01);

        speaker
            .speak("And a second, longer sentence follows.")
            .await
            .expect("second");
        let (_, twice) = read(&path);
        assert!(
            twice.len() > once.len() * 2,
            "{} then {}",
            once.len(),
            twice.len()
        );
        assert_eq!(&twice[..once.len()], &once[..], "earlier speech is kept");
    }

    #[test]
    fn unwritable_path_names_the_file() {
        if !espeak_present() {
            return;
        }
        let err = WavFileSpeaker::create(Path::new("/nonexistent/dir/out.wav"), Espeak::default())
            .expect_err("cannot create");
        assert!(
            err.to_string().contains("/nonexistent/dir/out.wav"),
            "{err}"
        );
    }
}
