//! A speaker wrapper that remembers when the first reply sample was ready, for the voice loop's
//! latency figures.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::future::BoxFuture;

use crate::tts::{Speaker, SpeechOutcome, TtsError};

/// Wraps a speaker and records the instant of the first audio since the last [`reset`].
///
/// [`reset`]: MeteredSpeaker::reset
pub struct MeteredSpeaker {
    inner: Arc<dyn Speaker>,
    first: Mutex<Option<Instant>>,
}

impl MeteredSpeaker {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Speaker>) -> Arc<MeteredSpeaker> {
        Arc::new(MeteredSpeaker {
            inner,
            first: Mutex::new(None),
        })
    }

    /// Forgets the last first-audio instant.
    pub fn reset(&self) {
        *self.first.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The instant of the first audio since the last reset.
    pub fn first_audio(&self) -> Option<Instant> {
        *self.first.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Milliseconds from `since` to the first audio after the last reset.
    pub fn first_audio_since(&self, since: Instant) -> Option<f64> {
        let first = (*self.first.lock().unwrap_or_else(|e| e.into_inner()))?;
        Some((first.saturating_duration_since(since).as_secs_f64() * 1e6).round() / 1e3)
    }
}

impl Speaker for MeteredSpeaker {
    fn speak<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Result<SpeechOutcome, TtsError>> {
        Box::pin(async move {
            let called = Instant::now();
            let outcome = self.inner.speak(text).await?;
            if let Some(after) = outcome.first_audio {
                let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
                first.get_or_insert(called + after);
            }
            Ok(outcome)
        })
    }

    fn stop(&self) {
        self.inner.stop();
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }
}
