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
    /// Whose turn it is: requests are said one at a time in call order (tokio's mutex is fair),
    /// and the hold gate is checked when a request's turn comes, so nothing queued behind the
    /// current speech starts while the key is down.
    turn: tokio::sync::Mutex<()>,
    speaking: watch::Sender<bool>,
}

impl GatedSpeaker {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Speaker>) -> Arc<GatedSpeaker> {
        Arc::new(GatedSpeaker {
            inner,
            held: watch::channel(false).0,
            turn: tokio::sync::Mutex::new(()),
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
            let _turn = self.turn.lock().await;
            let mut held = self.held.subscribe();
            // Never speak over the user: wait for the key to come up.
            while *held.borrow_and_update() {
                if held.changed().await.is_err() {
                    break;
                }
            }
            // One request speaks at a time (it holds the turn); a guard, so that a dropped
            // request (run cancelled mid-sentence) still ends "speaking".
            struct Speaking<'a>(&'a watch::Sender<bool>);
            impl Drop for Speaking<'_> {
                fn drop(&mut self) {
                    self.0.send_replace(false);
                }
            }
            self.speaking.send_replace(true);
            let _speaking = Speaking(&self.speaking);
            self.inner.speak(text).await
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

    /// Says one text at a time, each taking 100 ms.
    struct Slow(tokio::sync::Mutex<Vec<String>>);
    impl Speaker for Slow {
        fn speak<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Result<SpeechOutcome, TtsError>> {
            Box::pin(async move {
                let mut said = self.0.lock().await;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                said.push(text.to_owned());
                Ok(SpeechOutcome {
                    backend: "slow",
                    completed: true,
                    first_audio: None,
                    unvoiced: None,
                })
            })
        }
        fn stop(&self) {}
        fn name(&self) -> &'static str {
            "slow"
        }
    }

    #[tokio::test]
    async fn speech_queued_behind_the_current_one_waits_for_the_key_to_come_up() {
        let slow = Arc::new(Slow(Default::default()));
        let g = GatedSpeaker::new(slow.clone());
        let first = {
            let g = g.clone();
            tokio::spawn(async move { g.speak("one").await.map(|o| o.completed) })
        };
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        let second = {
            let g = g.clone();
            tokio::spawn(async move { g.speak("two").await.map(|o| o.completed) })
        };
        // The key goes down while "one" is being said; "one" ends at 100 ms.
        tokio::time::sleep(std::time::Duration::from_millis(40)).await;
        g.hold(true);
        assert!(first.await.unwrap().unwrap());
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert_eq!(
            *slow.0.lock().await,
            ["one"],
            "two waits while the key is down"
        );
        g.hold(false);
        assert!(second.await.unwrap().unwrap());
        assert_eq!(*slow.0.lock().await, ["one", "two"]);
    }

    #[tokio::test]
    async fn speaking_lasts_until_the_last_queued_request_ends() {
        let g = GatedSpeaker::new(Arc::new(Slow(Default::default())));
        let speaking = g.subscribe_speaking();
        let tasks: Vec<_> = ["one", "two"]
            .into_iter()
            .map(|t| {
                let g = g.clone();
                tokio::spawn(async move { g.speak(t).await.map(|o| o.completed) })
            })
            .collect();
        // At 150 ms the first has ended and the second is being said.
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        assert!(*speaking.borrow(), "still speaking the second request");
        for t in tasks {
            assert!(t.await.unwrap().unwrap());
        }
        assert!(!*speaking.borrow(), "quiet after both");
    }
}
