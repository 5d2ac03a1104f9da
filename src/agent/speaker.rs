//! The agent's speaker: every reply and alert goes through it. It holds speech back while the
//! push-to-talk key is down, lets a key press interrupt what is being said, and reports when
//! speech starts and ends so the tray can show it.

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::watch;

use crate::tts::{Speaker, SpeechOutcome, TtsError};

/// Wraps a speaker with a hold gate and a "speaking" signal.
pub struct GatedSpeaker {
    inner: Arc<dyn Speaker>,
    held: watch::Sender<bool>,
    speaking: watch::Sender<bool>,
}

impl GatedSpeaker {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Speaker>) -> Arc<GatedSpeaker> {
        Arc::new(GatedSpeaker {
            inner,
            held: watch::channel(false).0,
            speaking: watch::channel(false).0,
        })
    }

    /// While held, new speech waits (the user is talking to Atlas).
    pub fn hold(&self, held: bool) {
        self.held.send_replace(held);
    }

    /// True while something is being said.
    pub fn subscribe_speaking(&self) -> watch::Receiver<bool> {
        self.speaking.subscribe()
    }
}

impl Speaker for GatedSpeaker {
    fn speak<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Result<SpeechOutcome, TtsError>> {
        Box::pin(async move {
            let mut held = self.held.subscribe();
            // Never speak over the user: wait for the key to come up.
            while *held.borrow_and_update() {
                if held.changed().await.is_err() {
                    break;
                }
            }
            self.speaking.send_replace(true);
            let out = self.inner.speak(text).await;
            self.speaking.send_replace(false);
            out
        })
    }

    fn stop(&self) {
        self.inner.stop();
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tts::RecordingSpeaker;

    #[tokio::test]
    async fn speech_waits_while_the_key_is_held() {
        let rec = Arc::new(RecordingSpeaker::default());
        let g = GatedSpeaker::new(rec.clone());
        g.hold(true);
        let g2 = g.clone();
        let task = tokio::spawn(async move { g2.speak("alert").await.map(|o| o.completed) });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(rec.said().is_empty(), "nothing is said while held");
        g.hold(false);
        assert!(task.await.unwrap().unwrap());
        assert_eq!(rec.said(), ["alert"]);
    }
}
