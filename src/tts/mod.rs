//! Speaking: the [`Speaker`] interface every part of Atlas talks through, and its backends.
//!
//! The engine's `speak` action, the voice loop's replies and scheduled alerts all go through one
//! `Arc<dyn Speaker>`. A backend turns text into sound (or, for [`RecordingSpeaker`], into a list of
//! what would have been said, which is what the CLI prints when no voice is wanted).
//!
//! Backends:
//! - [`NativeSpeaker`]: the platform's speech service through the `tts` crate (speech-dispatcher
//!   on Linux), owned by one thread.
//! - [`EspeakSpeaker`]: `espeak-ng` renders sentence by sentence ([`espeak`]) and
//!   [`player::AudioPlayer`] plays them, the first while the next renders.
//! - [`WavFileSpeaker`]: the same rendering appended to a WAV file.
//! - [`RecordingSpeaker`]: no sound at all, by choice (`--silent`, `backend = "none"`, tests).
//! - [`SilentSpeaker`]: no sound because nothing works; every outcome says why.
//!
//! [`default_speaker`] builds an [`AutoSpeaker`] from a [`SpeakerConfig`](crate::config::SpeakerConfig): the backends to try in
//! order, each given a bounded time to start, the next one tried when one stops answering, and
//! a [`SpeechReport`] of the choice and its reasons for `atlas status`. Text goes through
//! [`text::normalise_for_speech`] and [`text::split_sentences`] in every sound-making backend.
//!
//! **Invariant:** a speaker says one request at a time; concurrent `speak` calls queue in call
//! order, and `stop` interrupts only the request being spoken.

use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;

mod auto;
mod config;
pub mod espeak;
mod espeak_speaker;
mod native;
pub mod player;
#[cfg(test)]
mod test_support;
pub mod text;
mod wav_speaker;

pub use auto::{AutoSpeaker, SilentSpeaker, SpeechReport};
pub use config::{build_speaker, default_speaker, start_speaker};
pub use espeak_speaker::EspeakSpeaker;
pub use native::NativeSpeaker;
pub use player::{AudioPlayer, ChimeKind};
pub use wav_speaker::WavFileSpeaker;

/// What became of one request to speak.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SpeechOutcome {
    /// The backend that handled the text, e.g. `"recorder"`, `"espeak-ng"`, `"native"`.
    pub backend: &'static str,
    /// False when the speech was interrupted before its end.
    pub completed: bool,
    /// Time from the `speak` call to the first sample handed to the output (for the native
    /// backend: to the service's "speech started" event). `None` when nothing was played or the
    /// backend cannot tell. Serialised as milliseconds, `first_audio_ms`.
    #[serde(rename = "first_audio_ms", serialize_with = "as_millis")]
    pub first_audio: Option<Duration>,
    /// Set when nothing was voiced because no speech output works: why (e.g. "speech-dispatcher
    /// did not answer in 3 s; the default audio output did not open in 5 s").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unvoiced: Option<String>,
}

impl SpeechOutcome {
    /// A request that was said to its end, with no timing.
    pub fn completed(backend: &'static str) -> Self {
        Self {
            backend,
            completed: true,
            first_audio: None,
            unvoiced: None,
        }
    }

    /// A request that [`Speaker::stop`] cut short, with no timing.
    pub fn interrupted(backend: &'static str) -> Self {
        Self {
            backend,
            completed: false,
            first_audio: None,
            unvoiced: None,
        }
    }

    /// The same outcome with the time to first audio set.
    pub fn with_first_audio(mut self, first_audio: Option<Duration>) -> Self {
        self.first_audio = first_audio;
        self
    }
}

/// A duration for messages: "3 s", "2.5 s".
pub(crate) fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

/// Serialises an optional duration as (fractional) milliseconds.
fn as_millis<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&(d.as_secs_f64() * 1000.0)),
        None => s.serialize_none(),
    }
}

/// Errors a speaker can report.
#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    /// The backend could not be started or reached.
    #[error("speech backend {backend} is unavailable: {reason}")]
    Unavailable {
        /// The backend's name.
        backend: &'static str,
        /// Why, in words a user can act on.
        reason: String,
    },
    /// The backend failed while speaking.
    #[error("speech failed: {0}")]
    Failed(String),
}

/// Something that can say text out loud (or pretend to).
pub trait Speaker: Send + Sync + 'static {
    /// Speaks `text` and resolves when it has been said or was interrupted by [`Speaker::stop`].
    fn speak<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Result<SpeechOutcome, TtsError>>;
    /// Interrupts whatever is being said now; queued and later requests still speak.
    fn stop(&self);
    /// A short name for logs and results.
    fn name(&self) -> &'static str;
}

/// A speaker that only records what it was asked to say. The CLI prints the record; tests read it.
#[derive(Debug, Default)]
pub struct RecordingSpeaker {
    said: Mutex<Vec<String>>,
}

impl RecordingSpeaker {
    /// Everything said so far, oldest first.
    pub fn said(&self) -> Vec<String> {
        self.said.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Speaker for RecordingSpeaker {
    fn speak<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Result<SpeechOutcome, TtsError>> {
        self.said
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(text.to_owned());
        Box::pin(async { Ok(SpeechOutcome::completed("recorder")) })
    }

    fn stop(&self) {}

    fn name(&self) -> &'static str {
        "recorder"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn recording_speaker_keeps_what_was_said() {
        let speaker = RecordingSpeaker::default();
        let outcome = speaker.speak("hello").await.expect("speak");
        speaker.speak("world").await.expect("speak");
        assert_eq!(outcome, SpeechOutcome::completed("recorder"));
        assert_eq!(speaker.said(), ["hello", "world"]);
    }

    #[test]
    fn outcome_serialises_first_audio_in_milliseconds() {
        let outcome = SpeechOutcome::interrupted("espeak-ng")
            .with_first_audio(Some(Duration::from_micros(12_500)));
        let json = serde_json::to_value(&outcome).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"backend": "espeak-ng", "completed": false, "first_audio_ms": 12.5})
        );
    }
}
