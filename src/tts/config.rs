//! Choosing a speaker: the [`SpeakerConfig`] users write, and the policy that turns it into a
//! running [`Speaker`].
//!
//! `auto` prefers the platform's speech service, then espeak-ng with Atlas's own audio output,
//! and finally a [`SilentSpeaker`] so Atlas still runs (and says why it is silent). Each backend
//! has [`SpeakerConfig::start_timeout_ms`] to answer before the next one is tried.

use std::sync::Arc;
use std::time::Duration;

use super::auto::Build;
use super::espeak::Espeak;
use super::{AutoSpeaker, EspeakSpeaker, NativeSpeaker, RecordingSpeaker, Speaker, TtsError};
use crate::config::{BackendChoice, SpeakerConfig};

/// Builds exactly the backend `cfg` asks for (for `auto`: the first that works), or says why
/// it cannot. Blocks while connecting to the speech service or opening the audio device, each
/// bounded, so call it at start-up or from a blocking task.
pub fn build_speaker(cfg: &SpeakerConfig) -> Result<Arc<dyn Speaker>, TtsError> {
    if cfg.backend == BackendChoice::None {
        return Ok(Arc::new(RecordingSpeaker::default()));
    }
    let mut errors = Vec::new();
    for (_, build) in backends(cfg) {
        match build() {
            Ok(speaker) => return Ok(speaker),
            Err(e) => errors.push(e),
        }
    }
    if errors.len() == 1 {
        return Err(errors.remove(0));
    }
    Err(TtsError::Unavailable {
        backend: "auto",
        reason: errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
    })
}

/// The speaker Atlas uses: the backends `cfg` allows, in order, then a [`super::SilentSpeaker`] that
/// says why nothing is voiced. Blocks while choosing (each backend bounded), so call it from a
/// blocking task; [`start_speaker`] does not block.
pub fn default_speaker(cfg: &SpeakerConfig) -> Arc<AutoSpeaker> {
    Arc::new(AutoSpeaker::new(backends(cfg)))
}

/// [`default_speaker`] without the wait: returns at once and chooses on a thread of its own, so
/// nothing that does not speak waits for a speech service.
pub fn start_speaker(cfg: &SpeakerConfig) -> Arc<AutoSpeaker> {
    Arc::new(AutoSpeaker::start(backends(cfg)))
}

/// The backends `cfg` allows, in order of preference.
fn backends(cfg: &SpeakerConfig) -> Vec<(&'static str, Build)> {
    let limit = Duration::from_millis(cfg.start_timeout_ms.max(1));
    let (voice, rate, espeak) = (cfg.voice.clone(), cfg.rate, Espeak::from_config(cfg));
    let native: (&'static str, Build) = (
        "native",
        Box::new(move || {
            NativeSpeaker::connect(&voice, rate, limit).map(|s| Arc::new(s) as Arc<dyn Speaker>)
        }),
    );
    let espeak: (&'static str, Build) = (
        "espeak-ng",
        Box::new(move || EspeakSpeaker::new(espeak).map(|s| Arc::new(s) as Arc<dyn Speaker>)),
    );
    match cfg.backend {
        BackendChoice::Auto => vec![native, espeak],
        BackendChoice::Native => vec![native],
        BackendChoice::Espeak => vec![espeak],
        BackendChoice::None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_pulse::VirtualSpeaker;
    use crate::test_speechd::StalledSpeechd;
    use crate::tts::test_support::{espeak_present, require};

    #[test]
    fn config_defaults_and_parses() {
        let cfg: SpeakerConfig = serde_json::from_str("{}").expect("empty config");
        assert_eq!(cfg, SpeakerConfig::default());
        assert_eq!(cfg.backend, BackendChoice::Auto);
        assert_eq!((cfg.voice.as_str(), cfg.rate), ("en-us", 175));
        let cfg: SpeakerConfig =
            serde_json::from_str(r#"{"backend":"espeak","voice":"en-gb","rate":200}"#)
                .expect("full config");
        assert_eq!(cfg.backend, BackendChoice::Espeak);
        assert_eq!(Espeak::from_config(&cfg), Espeak::new("en-gb", 200));
        let err = serde_json::from_str::<SpeakerConfig>(r#"{"backend":"loud"}"#)
            .expect_err("unknown backend");
        assert!(err.to_string().contains("native"), "{err}");
        assert!(serde_json::from_str::<SpeakerConfig>(r#"{"volume":3}"#).is_err());
    }

    #[tokio::test]
    async fn none_backend_is_silent_and_says_so() {
        let cfg = SpeakerConfig {
            backend: BackendChoice::None,
            ..SpeakerConfig::default()
        };
        let speaker = default_speaker(&cfg);
        assert_eq!(speaker.name(), "none");
        let outcome = speaker.speak("hello").await.expect("speak");
        assert!(
            !outcome.completed,
            "nothing was said, so it did not complete"
        );
        assert_eq!(
            outcome.unvoiced.as_deref(),
            Some("speech is off: speech.backend = \"none\"")
        );
        assert_eq!(build_speaker(&cfg).expect("none").name(), "recorder");
    }

    #[test]
    fn a_stalled_speech_service_is_given_up_within_its_bound() {
        if !(espeak_present() && require("speech-dispatcher", "speech-dispatcher")) {
            return;
        }
        let Some(mut vs) = VirtualSpeaker::start() else {
            return;
        };
        let stalled = StalledSpeechd::start();
        vs.set_var("SPEECHD_ADDRESS", &stalled.address());
        let cfg = SpeakerConfig {
            start_timeout_ms: 1000,
            ..SpeakerConfig::default()
        };
        let speaker = default_speaker(&cfg);
        assert_eq!(
            speaker.report().to_string(),
            "espeak-ng (speech-dispatcher did not answer in 1 s)"
        );
        assert!(stalled.connections() >= 1, "the service was really asked");
    }

    #[test]
    fn auto_prefers_the_native_service() {
        if !(espeak_present() && require("speech-dispatcher", "speech-dispatcher")) {
            return;
        }
        let Some(_vs) = VirtualSpeaker::start() else {
            return;
        };
        // Generous: starting speech-dispatcher on a loaded test machine can take seconds.
        let cfg = SpeakerConfig {
            start_timeout_ms: 30_000,
            ..SpeakerConfig::default()
        };
        assert_eq!(default_speaker(&cfg).name(), "native");
    }

    #[test]
    fn auto_falls_back_to_espeak_when_the_service_is_unreachable() {
        if !(espeak_present() && require("speech-dispatcher", "speech-dispatcher")) {
            return;
        }
        let Some(mut vs) = VirtualSpeaker::start() else {
            return;
        };
        vs.set_var("SPEECHD_ADDRESS", "unix_socket:/nonexistent/atlas.sock");
        assert_eq!(
            default_speaker(&SpeakerConfig::default()).name(),
            "espeak-ng"
        );
        let strict = SpeakerConfig {
            backend: BackendChoice::Native,
            ..SpeakerConfig::default()
        };
        assert!(matches!(
            build_speaker(&strict),
            Err(TtsError::Unavailable {
                backend: "native",
                ..
            })
        ));
    }
}
