//! [`EspeakSpeaker`]: espeak-ng renders, rodio plays, sentence by sentence and overlapped.
//!
//! A reply is normalised and split into sentences. A blocking task renders them in order with
//! espeak-ng and hands each one over as soon as it is ready; the first is queued for playback at
//! once and the rest follow while it plays, so speech starts after one sentence's rendering, not
//! the whole reply's. At most [`MAX_QUEUED`] rendered sentences wait ahead of the one playing.
//!
//! Requests are served one at a time in call order (a fair async mutex). [`Speaker::stop`] wakes
//! the request being spoken, empties the player's queue and ends the renderer; the request then
//! resolves with `completed: false`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::sync::{mpsc, watch};

use super::espeak::{Espeak, RenderedAudio};
use super::player::{AudioPlayer, Playback};
use super::text::{normalise_for_speech, split_sentences};
use super::{Speaker, SpeechOutcome, TtsError};

/// The backend name in outcomes and logs.
const NAME: &str = "espeak-ng";

/// How many rendered sentences may wait in the player's queue (beyond the one being rendered).
const MAX_QUEUED: usize = 3;

/// How long the output may take to play the first sample of a request.
const FIRST_AUDIO_LIMIT: Duration = Duration::from_secs(3);

/// How long one sentence may take to render.
const RENDER_LIMIT: Duration = Duration::from_secs(10);

/// How much longer than its length a sentence may take to play.
const PLAY_SLACK: Duration = Duration::from_secs(3);

/// Speaks through espeak-ng and the default audio output.
#[derive(Debug)]
pub struct EspeakSpeaker {
    espeak: Espeak,
    player: AudioPlayer,
    /// Held for the whole of one request, so requests never overlap.
    turn: tokio::sync::Mutex<()>,
    /// The stop signal of the request being spoken, if any.
    current: std::sync::Mutex<Option<watch::Sender<bool>>>,
}

impl EspeakSpeaker {
    /// Checks that espeak-ng runs and opens the default output device. Blocks briefly (device
    /// open), so call it at start-up or from a blocking task.
    pub fn new(espeak: Espeak) -> Result<Self, TtsError> {
        espeak.check_installed()?;
        Ok(Self::with_player(espeak, AudioPlayer::open_default()?))
    }

    /// A speaker playing through an already open output (e.g. one that also plays chimes).
    pub fn with_player(espeak: Espeak, player: AudioPlayer) -> Self {
        Self {
            espeak,
            player,
            turn: tokio::sync::Mutex::new(()),
            current: std::sync::Mutex::new(None),
        }
    }

    /// The output this speaker plays on, for chimes and other sounds.
    pub fn player(&self) -> &AudioPlayer {
        &self.player
    }

    /// Waits, at most [`FIRST_AUDIO_LIMIT`], for the output to take `playback`'s first sample
    /// (the renderer goes on with the next sentence meanwhile); a stop ends the wait.
    async fn first_sample(
        &self,
        playback: &mut Playback,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<FirstSample, TtsError> {
        tokio::select! {
            biased;
            _ = stop.changed() => Ok(FirstSample::Stopped),
            at = playback.first_sample() => Ok(FirstSample::At(at)),
            _ = tokio::time::sleep(FIRST_AUDIO_LIMIT) => {
                self.player.stop();
                Err(stalled(format!(
                    "the audio output did not start playing in {}",
                    super::secs(FIRST_AUDIO_LIMIT)
                )))
            }
        }
    }

    async fn speak_text(&self, text: &str) -> Result<SpeechOutcome, TtsError> {
        let called = Instant::now();
        let sentences = split_sentences(&normalise_for_speech(text));
        let _turn = self.turn.lock().await;
        if sentences.is_empty() {
            return Ok(SpeechOutcome::completed(NAME));
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        *lock(&self.current) = Some(stop_tx);
        // Clears the stop signal and, if this future is dropped half-way, silences the player.
        let mut guard = TurnGuard {
            speaker: self,
            finished: false,
        };
        tracing::debug!(sentences = sentences.len(), chars = text.len(), "speaking");

        let (rendered_tx, rendered) = mpsc::channel(1);
        let espeak = self.espeak.clone();
        let renderer_stop = stop_rx.clone();
        tokio::task::spawn_blocking(move || {
            render_all(&espeak, sentences, &renderer_stop, &rendered_tx)
        });
        let (completed, first_audio) = self.play_all(rendered, stop_rx, called).await?;
        if !completed {
            // A sentence queued in the same instant as the stop could have slipped past it.
            self.player.stop();
        }
        guard.finished = true;
        tracing::debug!(
            completed,
            first_audio_ms = first_audio.map(|d| d.as_millis() as u64),
            "spoken"
        );
        Ok(SpeechOutcome {
            backend: NAME,
            completed,
            first_audio,
            unvoiced: None,
        })
    }

    /// Plays the sentences as they are rendered, at most [`MAX_QUEUED`] ahead, until all are
    /// played (`true`) or a stop comes (`false`); also returns when the first sample was heard,
    /// counted from `called`.
    async fn play_all(
        &self,
        mut rendered: mpsc::Receiver<Result<RenderedAudio, TtsError>>,
        mut stop_rx: watch::Receiver<bool>,
        called: Instant,
    ) -> Result<(bool, Option<Duration>), TtsError> {
        let mut queued: VecDeque<(Playback, Duration)> = VecDeque::new();
        let mut first_audio = None;
        let mut rendering_done = false;
        // Nothing may wait without a bound: each step (a sentence rendered, the output starting,
        // the sentence at the front ending) must happen before `stall_at`, or the output (or
        // espeak-ng) is taken as stuck and the request fails.
        let mut stall_at = Instant::now() + RENDER_LIMIT;
        let completed = loop {
            if rendering_done && queued.is_empty() {
                break true;
            }
            let take_more = !rendering_done && queued.len() <= MAX_QUEUED;
            tokio::select! {
                biased;
                _ = stop_rx.changed() => break false,
                next = rendered.recv(), if take_more => match next {
                    Some(Ok(audio)) => {
                        let length = audio.duration();
                        let mut playback = self.player.play(audio)?;
                        if first_audio.is_none() {
                            match self.first_sample(&mut playback, &mut stop_rx).await? {
                                FirstSample::Stopped => break false,
                                FirstSample::At(at) => {
                                    first_audio = at.map(|at| at.saturating_duration_since(called));
                                }
                            }
                        }
                        if queued.is_empty() {
                            stall_at = Instant::now() + length + PLAY_SLACK;
                        }
                        queued.push_back((playback, length));
                    }
                    Some(Err(e)) => {
                        self.player.stop();
                        return Err(e);
                    }
                    None => rendering_done = true,
                },
                done = wait_front(&mut queued), if !queued.is_empty() => {
                    queued.pop_front();
                    if !done {
                        // The output dropped it: stopped by someone else or the device went away.
                        break false;
                    }
                    stall_at = Instant::now()
                        + queued.front().map_or(RENDER_LIMIT, |(_, length)| *length + PLAY_SLACK);
                }
                _ = tokio::time::sleep_until(stall_at.into()) => {
                    self.player.stop();
                    return Err(stalled(if queued.is_empty() {
                        format!("espeak-ng did not render a sentence in {}", super::secs(RENDER_LIMIT))
                    } else {
                        "the audio output stopped playing".to_owned()
                    }));
                }
            }
        };
        Ok((completed, first_audio))
    }
}

/// How the wait for a request's first sample ended.
enum FirstSample {
    /// A stop came first.
    Stopped,
    /// The output took it (when the playback knows the moment).
    At(Option<Instant>),
}

/// Waits for the oldest queued playback to end.
async fn wait_front(queued: &mut VecDeque<(Playback, Duration)>) -> bool {
    match queued.front_mut() {
        Some((playback, _)) => playback.finished().await,
        None => std::future::pending().await,
    }
}

/// Renders sentences in order, handing each over, until done, stopped or the receiver is gone.
fn render_all(
    espeak: &Espeak,
    sentences: Vec<String>,
    stop: &watch::Receiver<bool>,
    out: &mpsc::Sender<Result<RenderedAudio, TtsError>>,
) {
    for sentence in sentences {
        if *stop.borrow() {
            return;
        }
        let result = espeak.render(&sentence);
        let failed = result.is_err();
        if out.blocking_send(result).is_err() || failed {
            return;
        }
    }
}

/// The output (or espeak-ng) stopped answering: unavailable, so a caller with a fallback moves on.
fn stalled(reason: String) -> TtsError {
    TtsError::Unavailable {
        backend: NAME,
        reason,
    }
}

/// Locks a std mutex, ignoring poisoning (the data is a plain signal handle).
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Ends a turn: forgets its stop signal; if the request was abandoned mid-way, stops playback.
struct TurnGuard<'a> {
    speaker: &'a EspeakSpeaker,
    finished: bool,
}

impl Drop for TurnGuard<'_> {
    fn drop(&mut self) {
        let mut current = lock(&self.speaker.current);
        *current = None;
        if !self.finished {
            self.speaker.player.stop();
        }
    }
}

impl Speaker for EspeakSpeaker {
    fn speak<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Result<SpeechOutcome, TtsError>> {
        Box::pin(self.speak_text(text))
    }

    fn stop(&self) {
        // Holding the lock across both steps keeps the next request from queueing audio between
        // them (it must take this lock before it plays).
        let current = lock(&self.current);
        if let Some(signal) = current.as_ref() {
            signal.send_replace(true);
            self.player.stop();
        }
    }

    fn name(&self) -> &'static str {
        NAME
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::audio::test_support::rms;
    use crate::test_pulse::VirtualSpeaker;
    use crate::tts::test_support::espeak_present;

    const LONG_TEXT: &str = "This is the first sentence of a long reply. The second sentence \
        follows it closely. A third sentence keeps the speaker busy for a while. The fourth \
        sentence is here too. And the fifth sentence ends the reply.";

    fn speaker() -> Option<(VirtualSpeaker, EspeakSpeaker)> {
        if !espeak_present() {
            return None;
        }
        let vs = VirtualSpeaker::start()?;
        let speaker = EspeakSpeaker::new(Espeak::default()).expect("espeak speaker");
        Some((vs, speaker))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn speaks_audibly_on_the_default_output() {
        let Some((vs, speaker)) = speaker() else {
            return;
        };
        let recording = vs.record();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let outcome = speaker
            .speak("Hello from Atlas. This is a test.")
            .await
            .expect("speak");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let recorded = recording.finish();
        assert!(outcome.completed);
        assert_eq!(outcome.backend, "espeak-ng");
        assert!(outcome.first_audio.is_some(), "first audio time measured");
        assert!(rms(&recorded) > 0.01, "recorded rms {}", rms(&recorded));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stop_interrupts_and_later_requests_still_speak() {
        let Some((_vs, speaker)) = speaker() else {
            return;
        };
        let speaker = Arc::new(speaker);
        let talking = {
            let speaker = Arc::clone(&speaker);
            tokio::spawn(async move { speaker.speak(LONG_TEXT).await })
        };
        tokio::time::sleep(Duration::from_millis(800)).await;
        speaker.stop();
        let outcome = talking.await.expect("join").expect("speak");
        assert!(
            !outcome.completed,
            "stopped speech must report completed=false"
        );
        assert!(
            outcome.first_audio.is_some(),
            "speech had started before the stop"
        );
        let next = speaker.speak("Still here.").await.expect("speak again");
        assert!(next.completed);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_queue_instead_of_overlapping() {
        let Some((_vs, speaker)) = speaker() else {
            return;
        };
        let order = std::sync::Mutex::new(Vec::new());
        // `join!` polls the long request first, so it takes the first turn; the short one,
        // asked while the long one speaks, must wait for it instead of finishing first.
        let (long, short) = tokio::join!(
            async {
                let outcome = speaker
                    .speak("The first request is a longer one. It has two sentences.")
                    .await;
                order.lock().expect("order").push("long");
                outcome
            },
            async {
                let outcome = speaker.speak("Short.").await;
                order.lock().expect("order").push("short");
                outcome
            }
        );
        assert!(long.expect("long").completed && short.expect("short").completed);
        assert_eq!(*order.lock().expect("order"), ["long", "short"]);
    }

    #[tokio::test]
    async fn empty_text_completes_without_sound() {
        let Some((_vs, speaker)) = speaker() else {
            return;
        };
        let outcome = speaker.speak("  \n ** ").await.expect("speak");
        assert!(outcome.completed);
        assert_eq!(outcome.first_audio, None);
    }
}
