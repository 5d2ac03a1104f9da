//! Choosing a speaker: the [`SpeakerConfig`] users write, and the policy that turns it into a
//! running [`Speaker`].
//!
//! `auto` prefers the platform's speech service, then espeak-ng with Atlas's own audio output,
//! and finally a silent [`RecordingSpeaker`] so Atlas still runs (and says why it is silent).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::espeak::{DEFAULT_RATE, DEFAULT_VOICE, Espeak};
use super::{EspeakSpeaker, NativeSpeaker, RecordingSpeaker, Speaker, TtsError};

/// Which speech backend to use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// The platform's speech service if it answers, else espeak-ng, else silence.
    #[default]
    Auto,
    /// The platform's speech service (speech-dispatcher on Linux).
    Native,
    /// espeak-ng rendering played by Atlas itself.
    Espeak,
    /// No sound: replies are only recorded (and printed by the CLI).
    None,
}

/// Speech settings, e.g. in `config.toml`:
///
/// ```toml
/// [speech]
/// backend = "auto"   # auto | native | espeak | none
/// voice = "en-us"    # espeak-ng voice, e.g. en-gb, en-us+f3
/// rate = 175         # words per minute, 80..=450
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpeakerConfig {
    /// Which backend to use.
    pub backend: BackendChoice,
    /// The voice: an espeak-ng voice name, or a native voice name or language.
    pub voice: String,
    /// Speaking rate in words per minute.
    pub rate: u32,
}

impl Default for SpeakerConfig {
    fn default() -> Self {
        Self {
            backend: BackendChoice::Auto,
            voice: DEFAULT_VOICE.to_owned(),
            rate: DEFAULT_RATE,
        }
    }
}

impl SpeakerConfig {
    /// The espeak-ng renderer these settings describe.
    pub fn espeak(&self) -> Espeak {
        Espeak::new(&self.voice, self.rate)
    }
}

/// Builds exactly the backend `cfg` asks for (for `auto`: the first that works), or says why
/// it cannot. Blocks while connecting to the speech service or opening the audio device, so call
/// it at start-up or from a blocking task.
pub fn build_speaker(cfg: &SpeakerConfig) -> Result<Arc<dyn Speaker>, TtsError> {
    match cfg.backend {
        BackendChoice::Native => Ok(Arc::new(NativeSpeaker::new(&cfg.voice, cfg.rate)?)),
        BackendChoice::Espeak => Ok(Arc::new(EspeakSpeaker::new(cfg.espeak())?)),
        BackendChoice::None => Ok(Arc::new(RecordingSpeaker::default())),
        BackendChoice::Auto => match NativeSpeaker::new(&cfg.voice, cfg.rate) {
            Ok(native) => Ok(Arc::new(native)),
            Err(native_err) => {
                tracing::info!(reason = %native_err, "native speech unavailable; trying espeak-ng");
                EspeakSpeaker::new(cfg.espeak())
                    .map(|s| Arc::new(s) as Arc<dyn Speaker>)
                    .map_err(|espeak_err| TtsError::Unavailable {
                        backend: "auto",
                        reason: format!("{native_err}; {espeak_err}"),
                    })
            }
        },
    }
}

/// The speaker Atlas uses: [`build_speaker`], or, when that fails, a silent
/// [`RecordingSpeaker`] with a warning that says what to install. Blocks like
/// [`build_speaker`].
pub fn default_speaker(cfg: &SpeakerConfig) -> Arc<dyn Speaker> {
    match build_speaker(cfg) {
        Ok(speaker) => {
            tracing::info!(backend = speaker.name(), "speech ready");
            speaker
        }
        Err(e) => {
            tracing::warn!(error = %e, "no speech output; replies will only be printed");
            Arc::new(RecordingSpeaker::default())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tts::test_support::{VirtualSpeaker, espeak_present, require};

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
        assert_eq!(cfg.espeak(), Espeak::new("en-gb", 200));
        let err = serde_json::from_str::<SpeakerConfig>(r#"{"backend":"loud"}"#)
            .expect_err("unknown backend");
        assert!(err.to_string().contains("native"), "{err}");
        assert!(serde_json::from_str::<SpeakerConfig>(r#"{"volume":3}"#).is_err());
    }

    #[test]
    fn none_backend_is_silent_recorder() {
        let cfg = SpeakerConfig {
            backend: BackendChoice::None,
            ..SpeakerConfig::default()
        };
        assert_eq!(default_speaker(&cfg).name(), "recorder");
    }

    #[test]
    fn auto_prefers_the_native_service() {
        if !(espeak_present() && require("speech-dispatcher", "speech-dispatcher")) {
            return;
        }
        let Some(_vs) = VirtualSpeaker::start() else {
            return;
        };
        assert_eq!(default_speaker(&SpeakerConfig::default()).name(), "native");
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
