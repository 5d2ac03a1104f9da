//! [`AutoSpeaker`]: an ordered list of speech backends, each given a bounded time to start, with
//! the next one taken when the current one stops answering; and [`SilentSpeaker`], the end of
//! every list, which never fails and says in each outcome why nothing was voiced.
//!
//! A backend that fails with [`TtsError::Unavailable`] (it did not answer, did not start
//! speaking, or its output stalled) is given up on for good: the reason is logged once and kept
//! in the [`SpeechReport`] that `atlas status` shows ("espeak-ng (speech-dispatcher did not
//! answer in 3 s)"), and the same text is said by the next backend. Other failures (a text the
//! service refused) are the request's own and are returned as they are.
//!
//! [`AutoSpeaker::start`] returns at once and picks the backend on a thread of its own, so a
//! daemon's engine, scheduler and status file never wait for a speech service; a request made
//! before the choice is made waits for it (the choice is bounded by the backends' own limits).

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use tokio::sync::watch;

use super::{Speaker, SpeechOutcome, TtsError};

/// Builds one backend, blocking for at most the backend's own start-up bound.
pub(crate) type Build = Box<dyn FnOnce() -> Result<Arc<dyn Speaker>, TtsError> + Send>;

/// What the speaker chose and why it did not choose the ones before.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SpeechReport {
    /// The backend in use: `"native"`, `"espeak-ng"`, `"none"`; `"starting"` before the choice.
    pub backend: String,
    /// Why earlier backends were given up, in order.
    pub given_up: Vec<String>,
}

impl fmt::Display for SpeechReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.backend)?;
        if !self.given_up.is_empty() {
            write!(f, " ({})", self.given_up.join("; "))?;
        }
        Ok(())
    }
}

/// A speaker for when nothing can make a sound: every request "succeeds" unvoiced, with the
/// reason in [`SpeechOutcome::unvoiced`], so callers can print what would have been said.
#[derive(Debug)]
pub struct SilentSpeaker {
    reason: String,
}

impl SilentSpeaker {
    /// A silent speaker that gives `reason` for its silence.
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

impl Speaker for SilentSpeaker {
    fn speak<'a>(&'a self, _text: &'a str) -> BoxFuture<'a, Result<SpeechOutcome, TtsError>> {
        let outcome = SpeechOutcome {
            backend: "none",
            completed: false,
            first_audio: None,
            unvoiced: Some(self.reason.clone()),
        };
        Box::pin(async move { Ok(outcome) })
    }

    fn stop(&self) {}

    fn name(&self) -> &'static str {
        "none"
    }
}

/// Backends in order of preference, switching to the next when one stops answering.
pub struct AutoSpeaker {
    inner: Arc<Inner>,
    /// Held while switching, so concurrent failures of the same backend switch once.
    switching: tokio::sync::Mutex<()>,
}

/// The state the choosing thread shares with the speaker.
struct Inner {
    /// The backend in use; `None` while one is being chosen.
    current: watch::Sender<Option<Arc<dyn Speaker>>>,
    /// The backends not tried yet, and the reasons the tried ones were given up.
    rest: Mutex<Rest>,
}

struct Rest {
    builds: VecDeque<(&'static str, Build)>,
    given_up: Vec<String>,
}

impl fmt::Debug for AutoSpeaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AutoSpeaker")
            .field("report", &self.inner.report())
            .finish()
    }
}

impl AutoSpeaker {
    /// Tries `builds` in order until one starts; blocks for at most the sum of their bounds.
    pub(crate) fn new(builds: Vec<(&'static str, Build)>) -> Self {
        let speaker = Self::unchosen(builds);
        speaker.inner.choose();
        speaker
    }

    /// Returns at once and makes the choice on a thread of its own; requests wait for it.
    pub(crate) fn start(builds: Vec<(&'static str, Build)>) -> Self {
        let speaker = Self::unchosen(builds);
        let chooser = Arc::clone(&speaker.inner);
        let spawned = std::thread::Builder::new()
            .name("atlas-speech-start".to_owned())
            .spawn(move || chooser.choose());
        if let Err(e) = spawned {
            speaker
                .inner
                .give_up_all(format!("cannot start the speech thread: {e}"));
        }
        speaker
    }

    fn unchosen(builds: Vec<(&'static str, Build)>) -> Self {
        Self {
            inner: Arc::new(Inner {
                current: watch::Sender::new(None),
                rest: Mutex::new(Rest {
                    builds: builds.into(),
                    given_up: Vec::new(),
                }),
            }),
            switching: tokio::sync::Mutex::new(()),
        }
    }

    /// The backend in use and why the ones before it were given up.
    pub fn report(&self) -> SpeechReport {
        self.inner.report()
    }

    /// Waits until a backend has been chosen (at most the backends' start-up bounds).
    pub async fn ready(&self) -> SpeechReport {
        self.current().await;
        self.report()
    }
}

impl Inner {
    fn report(&self) -> SpeechReport {
        let backend = match &*self.current.borrow() {
            Some(s) => s.name().to_owned(),
            None => "starting".to_owned(),
        };
        SpeechReport {
            backend,
            given_up: lock(&self.rest).given_up.clone(),
        }
    }

    /// Builds the remaining backends in order until one starts; the silent speaker when none
    /// does. Blocking.
    fn choose(&self) {
        loop {
            let next = lock(&self.rest).builds.pop_front();
            let Some((name, build)) = next else {
                let reason = self.silence_reason();
                tracing::warn!(reason = %reason, "no speech output; replies will only be printed");
                self.current
                    .send_replace(Some(Arc::new(SilentSpeaker::new(reason))));
                return;
            };
            match build() {
                Ok(speaker) => {
                    let report = {
                        self.current.send_replace(Some(speaker));
                        self.report()
                    };
                    tracing::info!(speech = %report, "speech ready");
                    return;
                }
                Err(e) => {
                    tracing::info!(backend = name, reason = %e, "speech backend unavailable; trying the next");
                    lock(&self.rest).given_up.push(short_reason(&e));
                }
            }
        }
    }

    fn give_up_all(&self, reason: String) {
        let mut rest = lock(&self.rest);
        rest.builds.clear();
        rest.given_up.push(reason.clone());
        drop(rest);
        self.current
            .send_replace(Some(Arc::new(SilentSpeaker::new(reason))));
    }

    fn silence_reason(&self) -> String {
        let mut rest = lock(&self.rest);
        if rest.given_up.is_empty() {
            rest.given_up
                .push("speech is off: speech.backend = \"none\"".to_owned());
        }
        rest.given_up.join("; ")
    }
}

impl AutoSpeaker {
    /// The backend in use, waiting for the choice if it is still being made.
    async fn current(&self) -> Arc<dyn Speaker> {
        let mut rx = self.inner.current.subscribe();
        loop {
            if let Some(s) = &*rx.borrow_and_update() {
                return Arc::clone(s);
            }
            if rx.changed().await.is_err() {
                // The sender lives in `self`: unreachable, but never wait on a closed channel.
                return Arc::new(SilentSpeaker::new("the speech output went away"));
            }
        }
    }

    /// Gives up `failed` (if it is still the one in use) and chooses the next backend.
    async fn switch_from(&self, failed: &Arc<dyn Speaker>, reason: String) {
        let _switching = self.switching.lock().await;
        let still_current = self
            .inner
            .current
            .borrow()
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, failed));
        if !still_current {
            return;
        }
        tracing::warn!(backend = failed.name(), reason = %reason, "speech backend stopped answering; trying the next");
        lock(&self.inner.rest).given_up.push(reason);
        self.inner.current.send_replace(None);
        // Building the next backend blocks (bounded by its own start-up limit).
        let inner = Arc::clone(&self.inner);
        if tokio::task::spawn_blocking(move || inner.choose())
            .await
            .is_err()
        {
            self.inner
                .give_up_all("the speech start-up task failed".to_owned());
        }
    }

    async fn speak_text(&self, text: &str) -> Result<SpeechOutcome, TtsError> {
        loop {
            let speaker = self.current().await;
            match speaker.speak(text).await {
                Err(e @ TtsError::Unavailable { .. }) => {
                    self.switch_from(&speaker, short_reason(&e)).await;
                }
                other => return other,
            }
        }
    }
}

impl Speaker for AutoSpeaker {
    fn speak<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Result<SpeechOutcome, TtsError>> {
        Box::pin(self.speak_text(text))
    }

    fn stop(&self) {
        if let Some(s) = &*self.inner.current.borrow() {
            s.stop();
        }
    }

    fn name(&self) -> &'static str {
        match &*self.inner.current.borrow() {
            Some(s) => s.name(),
            None => "starting",
        }
    }
}

/// The reason part of an error, for the report ("speech-dispatcher did not answer in 3 s").
fn short_reason(e: &TtsError) -> String {
    match e {
        TtsError::Unavailable { reason, .. } => reason.clone(),
        TtsError::Failed(reason) => reason.clone(),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::tts::RecordingSpeaker;

    /// A backend that answers its first `works` requests, then stops answering.
    struct Flaky {
        works: usize,
        calls: AtomicUsize,
    }

    impl Speaker for Flaky {
        fn speak<'a>(&'a self, _text: &'a str) -> BoxFuture<'a, Result<SpeechOutcome, TtsError>> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            let works = n < self.works;
            Box::pin(async move {
                if works {
                    Ok(SpeechOutcome::completed("flaky"))
                } else {
                    Err(TtsError::Unavailable {
                        backend: "flaky",
                        reason: "flaky did not start speaking in 5 s".to_owned(),
                    })
                }
            })
        }
        fn stop(&self) {}
        fn name(&self) -> &'static str {
            "flaky"
        }
    }

    fn failing(reason: &'static str) -> (&'static str, Build) {
        (
            "failing",
            Box::new(move || {
                Err(TtsError::Unavailable {
                    backend: "failing",
                    reason: reason.to_owned(),
                })
            }),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_backend_that_stops_answering_hands_over_to_the_next() {
        let recorder = Arc::new(RecordingSpeaker::default());
        let next = Arc::clone(&recorder);
        let speaker = AutoSpeaker::new(vec![
            failing("speech-dispatcher did not answer in 3 s"),
            (
                "flaky",
                Box::new(|| {
                    Ok(Arc::new(Flaky {
                        works: 1,
                        calls: AtomicUsize::new(0),
                    }) as Arc<dyn Speaker>)
                }),
            ),
            ("recorder", Box::new(move || Ok(next as Arc<dyn Speaker>))),
        ]);
        assert_eq!(
            speaker.report().to_string(),
            "flaky (speech-dispatcher did not answer in 3 s)"
        );
        let first = speaker.speak("one").await.expect("first");
        assert_eq!(first.backend, "flaky");
        let second = speaker.speak("two").await.expect("second");
        assert_eq!(second.backend, "recorder", "the same text went to the next");
        assert_eq!(recorder.said(), ["two"]);
        assert_eq!(
            speaker.report().given_up,
            [
                "speech-dispatcher did not answer in 3 s",
                "flaky did not start speaking in 5 s"
            ]
        );
    }

    #[tokio::test]
    async fn nothing_working_is_silence_with_every_reason() {
        let speaker = AutoSpeaker::new(vec![
            failing("speech-dispatcher did not answer in 3 s"),
            failing("the default audio output did not open in 5 s"),
        ]);
        let outcome = speaker.speak("hello").await.expect("silence never fails");
        assert_eq!(outcome.backend, "none");
        assert!(!outcome.completed);
        assert_eq!(
            outcome.unvoiced.as_deref(),
            Some(
                "speech-dispatcher did not answer in 3 s; \
                 the default audio output did not open in 5 s"
            )
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn start_returns_before_the_choice_and_requests_wait_for_it() {
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let recorder = Arc::new(RecordingSpeaker::default());
        let chosen = Arc::clone(&recorder);
        let speaker = AutoSpeaker::start(vec![(
            "slow",
            Box::new(move || {
                // Blocks until the test lets it go: `start` must have returned already.
                let _ = release_rx.recv();
                Ok(chosen as Arc<dyn Speaker>)
            }),
        )]);
        assert_eq!(speaker.report().backend, "starting");
        assert_eq!(speaker.name(), "starting");
        let speaker = Arc::new(speaker);
        let talking = {
            let speaker = Arc::clone(&speaker);
            tokio::spawn(async move { speaker.speak("waited").await })
        };
        tokio::task::yield_now().await;
        assert!(
            recorder.said().is_empty(),
            "nothing is said before the choice"
        );
        release_tx.send(()).expect("release");
        let outcome = talking.await.expect("join").expect("speak");
        assert_eq!(outcome.backend, "recorder");
        assert_eq!(recorder.said(), ["waited"]);
        assert_eq!(speaker.ready().await.backend, "recorder");
    }
}
