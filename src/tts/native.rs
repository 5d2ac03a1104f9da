//! [`NativeSpeaker`]: the platform's speech service through the `tts` crate (speech-dispatcher on
//! Linux, which renders with its espeak-ng module and plays through PulseAudio or PipeWire).
//!
//! The `tts` handle is not meant to move between threads, so one thread owns it and serves a
//! closed set of messages: requests from the speaker and utterance events from the service's
//! callbacks, on the same channel. A request resolves when the service reports the utterance's
//! end (or its cancellation). The time to first audio is taken from the "utterance began" event.
//!
//! Every wait is bounded: connecting (a service that accepts the connection and never answers is
//! given up on after the start-up limit, its thread left blocked), the start of each utterance
//! ([`FIRST_AUDIO_LIMIT`]) and its end (a limit that grows with the text). A bound that runs out
//! is reported as [`TtsError::Unavailable`], so a caller with a fallback moves on.

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ::tts::{Tts, UtteranceId};
use futures::future::BoxFuture;
use tokio::sync::oneshot;

use super::text::{normalise_for_speech, split_sentences};
use super::{Speaker, SpeechOutcome, TtsError};

/// The backend name in outcomes and logs.
const NAME: &str = "native";

/// What to tell a user whose speech service cannot be reached.
const INSTALL_HINT: &str = "install it with `apt-get install speech-dispatcher \
     speech-dispatcher-espeak-ng`, and make sure XDG_RUNTIME_DIR is set so it can start";

/// How long the service may take to start speaking an utterance.
pub const FIRST_AUDIO_LIMIT: Duration = Duration::from_secs(5);

/// How a finished utterance ended.
#[derive(Debug)]
struct Ended {
    completed: bool,
    began: Option<Instant>,
}

/// Messages for the thread that owns the `tts` handle.
enum Msg {
    Speak {
        request: u64,
        text: String,
        began: oneshot::Sender<()>,
        reply: oneshot::Sender<Result<Ended, TtsError>>,
    },
    /// Stop `request` if it is the one being spoken.
    Stop {
        request: u64,
    },
    Began(UtteranceId),
    Ended(UtteranceId),
    Cancelled(UtteranceId),
    Shutdown,
}

/// Speaks through the operating system's speech service.
#[derive(Debug)]
pub struct NativeSpeaker {
    messages: mpsc::Sender<Msg>,
    /// Held for a whole request, so requests are spoken one after another.
    turn: tokio::sync::Mutex<u64>,
    /// The request being spoken, if any.
    current: std::sync::Mutex<Option<u64>>,
}

impl NativeSpeaker {
    /// Connects to the speech service (starting speech-dispatcher if needed) and sets the voice
    /// and rate. `voice` is matched against the service's voice names and languages (`en-us`
    /// picks an `en-US` voice); no match keeps the service's default. `rate` is in words per
    /// minute, like espeak-ng's, and is mapped onto the service's -100..=100 scale (175 is 0).
    /// Blocks while connecting, at most `limit`: a service that has not answered by then is
    /// given up on ("did not answer in 3 s") and its connecting thread is left to itself.
    pub fn connect(voice: &str, rate: u32, limit: Duration) -> Result<Self, TtsError> {
        let (messages, inbox) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let events = messages.clone();
        let voice = voice.to_owned();
        std::thread::Builder::new()
            .name("atlas-native-tts".to_owned())
            .spawn(move || match open(&voice, rate, &events) {
                Ok(tts) => {
                    // Nobody waits any more when the connection came too late: close it.
                    if ready_tx.send(Ok(())).is_ok() {
                        serve(tts, &inbox);
                    }
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| unavailable(format!("cannot start the speech thread: {e}")))?;
        match ready_rx.recv_timeout(limit) {
            Ok(Ok(())) => Ok(Self {
                messages,
                turn: tokio::sync::Mutex::new(0),
                current: std::sync::Mutex::new(None),
            }),
            Ok(Err(e)) => Err(e),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(unavailable(format!(
                "speech-dispatcher did not answer in {}",
                super::secs(limit)
            ))),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(unavailable(
                "the speech thread ended while connecting".to_owned(),
            )),
        }
    }

    async fn speak_text(&self, text: &str) -> Result<SpeechOutcome, TtsError> {
        let called = Instant::now();
        // The service splits sentences itself; splitting here only tidies line breaks.
        let text = split_sentences(&normalise_for_speech(text)).join(" ");
        let mut turn = self.turn.lock().await;
        if text.is_empty() {
            return Ok(SpeechOutcome::completed(NAME));
        }
        *turn += 1;
        let request = *turn;
        *lock(&self.current) = Some(request);
        let (reply, ended) = oneshot::channel();
        let (began_tx, began) = oneshot::channel();
        let sent = self.messages.send(Msg::Speak {
            request,
            text: text.clone(),
            began: began_tx,
            reply,
        });
        let result = match sent {
            Err(_) => Err(unavailable("the speech thread has stopped".to_owned())),
            Ok(()) => self.await_utterance(request, &text, began, ended).await,
        };
        *lock(&self.current) = None;
        let ended = result?;
        Ok(SpeechOutcome {
            backend: NAME,
            completed: ended.completed,
            first_audio: ended.began.map(|at| at.saturating_duration_since(called)),
            unvoiced: None,
        })
    }
}

impl NativeSpeaker {
    /// Waits, with bounds, for the utterance to begin and then to end. A bound that runs out
    /// stops the utterance and reports the service as unavailable.
    async fn await_utterance(
        &self,
        request: u64,
        text: &str,
        began: oneshot::Receiver<()>,
        mut ended: oneshot::Receiver<Result<Ended, TtsError>>,
    ) -> Result<Ended, TtsError> {
        let gone = || unavailable("the speech thread has stopped".to_owned());
        // Either the start, or an end that came first (an empty or refused utterance).
        tokio::select! {
            biased;
            result = &mut ended => return result.map_err(|_| gone())?,
            started = tokio::time::timeout(FIRST_AUDIO_LIMIT, began) => {
                if started.is_err() {
                    let _ = self.messages.send(Msg::Stop { request });
                    return Err(unavailable(format!(
                        "speech-dispatcher did not start speaking in {}",
                        super::secs(FIRST_AUDIO_LIMIT)
                    )));
                }
            }
        }
        // Generous: far longer than the slowest voice needs for this text.
        let limit = Duration::from_secs(15) + Duration::from_millis(200) * text.len() as u32;
        match tokio::time::timeout(limit, ended).await {
            Ok(result) => result.map_err(|_| gone())?,
            Err(_) => {
                let _ = self.messages.send(Msg::Stop { request });
                Err(unavailable(format!(
                    "speech-dispatcher did not report the end of speech in {}; check \
                     `spd-say -w test` and its log",
                    super::secs(limit)
                )))
            }
        }
    }
}

impl Drop for NativeSpeaker {
    fn drop(&mut self) {
        // The callbacks hold senders too, so the thread needs telling.
        let _ = self.messages.send(Msg::Shutdown);
    }
}

/// An [`TtsError::Unavailable`] for the native backend.
fn unavailable(reason: String) -> TtsError {
    TtsError::Unavailable {
        backend: NAME,
        reason,
    }
}

/// Locks a std mutex, ignoring poisoning (the data is a plain request number).
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Connects, installs the utterance callbacks and applies voice and rate.
fn open(voice: &str, rate: u32, events: &mpsc::Sender<Msg>) -> Result<Tts, TtsError> {
    let mut tts = Tts::default().map_err(|e| {
        unavailable(format!(
            "cannot reach the speech service ({e}); {INSTALL_HINT}"
        ))
    })?;
    let features = tts.supported_features();
    if !features.utterance_callbacks {
        return Err(unavailable(
            "the speech service does not report when speech ends".to_owned(),
        ));
    }
    let callback = |wrap: fn(UtteranceId) -> Msg| -> Option<Box<dyn FnMut(UtteranceId)>> {
        let events = events.clone();
        Some(Box::new(move |id| {
            let _ = events.send(wrap(id));
        }))
    };
    let installed = tts
        .on_utterance_begin(callback(Msg::Began))
        .and_then(|()| tts.on_utterance_end(callback(Msg::Ended)))
        .and_then(|()| tts.on_utterance_stop(callback(Msg::Cancelled)));
    installed.map_err(|e| unavailable(format!("cannot watch the speech service: {e}")))?;
    if features.rate
        && let Err(e) = tts.set_rate(service_rate(rate, &tts))
    {
        tracing::warn!(error = %e, rate, "could not set the native speech rate");
    }
    if features.voice {
        choose_voice(&mut tts, voice);
    }
    Ok(tts)
}

/// Maps words per minute (espeak-ng's scale, 80..=450, normal 175) onto the service's scale.
fn service_rate(wpm: u32, tts: &Tts) -> f32 {
    let wpm = wpm.clamp(80, 450) as f32;
    let (min, normal, max) = (tts.min_rate(), tts.normal_rate(), tts.max_rate());
    let rate = if wpm >= 175.0 {
        normal + (max - normal) * (wpm - 175.0) / (450.0 - 175.0)
    } else {
        normal - (normal - min) * (175.0 - wpm) / (175.0 - 80.0)
    };
    rate.clamp(min, max)
}

/// Picks the first voice whose name or language matches `wanted`, case-insensitively.
fn choose_voice(tts: &mut Tts, wanted: &str) {
    let voices = match tts.voices() {
        Ok(voices) => voices,
        Err(e) => {
            tracing::debug!(error = %e, "the speech service lists no voices");
            return;
        }
    };
    let found = voices
        .iter()
        .find(|v| v.name().eq_ignore_ascii_case(wanted))
        .or_else(|| {
            voices
                .iter()
                .find(|v| v.language().as_str().eq_ignore_ascii_case(wanted))
        });
    match found {
        Some(voice) => {
            if let Err(e) = tts.set_voice(voice) {
                tracing::warn!(error = %e, voice = %voice.name(), "could not set the native voice");
            }
        }
        None => tracing::info!(
            voice = wanted,
            "no matching native voice; using the default"
        ),
    }
}

/// An utterance being spoken.
struct Pending {
    request: u64,
    began_tx: Option<oneshot::Sender<()>>,
    reply: oneshot::Sender<Result<Ended, TtsError>>,
    began: Option<Instant>,
}

/// Serves messages until shutdown.
fn serve(mut tts: Tts, inbox: &mpsc::Receiver<Msg>) {
    let mut pending: HashMap<UtteranceId, Pending> = HashMap::new();
    while let Ok(msg) = inbox.recv() {
        match msg {
            Msg::Speak {
                request,
                text,
                began,
                reply,
            } => match tts.speak(text, false) {
                Ok(Some(id)) => {
                    pending.insert(
                        id,
                        Pending {
                            request,
                            began_tx: Some(began),
                            reply,
                            began: None,
                        },
                    );
                }
                Ok(None) => {
                    let _ = reply.send(Err(TtsError::Failed(
                        "the speech service gave no utterance id, so its end cannot be awaited"
                            .to_owned(),
                    )));
                }
                Err(e) => {
                    let _ = reply.send(Err(TtsError::Failed(format!(
                        "the speech service refused the text: {e}"
                    ))));
                }
            },
            Msg::Stop { request } => {
                if pending.values().any(|p| p.request == request) {
                    if let Err(e) = tts.stop() {
                        tracing::warn!(error = %e, "could not stop native speech");
                    }
                    // Answer now rather than wait for the service's cancel event.
                    finish_where(&mut pending, |p| p.request == request, false);
                }
            }
            Msg::Began(id) => {
                if let Some(p) = pending.get_mut(&id) {
                    p.began.get_or_insert_with(Instant::now);
                    if let Some(tx) = p.began_tx.take() {
                        let _ = tx.send(());
                    }
                }
            }
            Msg::Ended(id) => {
                if let Some(p) = pending.remove(&id) {
                    answer(p, true);
                }
            }
            Msg::Cancelled(id) => {
                if let Some(p) = pending.remove(&id) {
                    answer(p, false);
                }
            }
            Msg::Shutdown => break,
        }
    }
    if !pending.is_empty() {
        let _ = tts.stop();
        finish_where(&mut pending, |_| true, false);
        // Late events for the cancelled speech would find no callbacks once the handle is gone.
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = tts.on_utterance_begin(None);
    let _ = tts.on_utterance_end(None);
    let _ = tts.on_utterance_stop(None);
}

/// Answers and forgets every pending utterance that matches.
fn finish_where(
    pending: &mut HashMap<UtteranceId, Pending>,
    matches: impl Fn(&Pending) -> bool,
    completed: bool,
) {
    let ids: Vec<UtteranceId> = pending
        .iter()
        .filter(|(_, p)| matches(p))
        .map(|(id, _)| *id)
        .collect();
    for id in ids {
        if let Some(p) = pending.remove(&id) {
            answer(p, completed);
        }
    }
}

/// Tells the waiting request how its utterance ended.
fn answer(p: Pending, completed: bool) {
    let _ = p.reply.send(Ok(Ended {
        completed,
        began: p.began,
    }));
}

impl Speaker for NativeSpeaker {
    fn speak<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Result<SpeechOutcome, TtsError>> {
        Box::pin(self.speak_text(text))
    }

    fn stop(&self) {
        if let Some(request) = *lock(&self.current) {
            let _ = self.messages.send(Msg::Stop { request });
        }
    }

    fn name(&self) -> &'static str {
        NAME
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::audio::test_support::rms;
    use crate::test_pulse::{VirtualSpeaker, with_env_var};
    use crate::tts::test_support::require;

    fn speaker() -> Option<(VirtualSpeaker, NativeSpeaker)> {
        if !(require(
            "speech-dispatcher",
            "speech-dispatcher speech-dispatcher-espeak-ng",
        ) && require("espeak-ng", "espeak-ng"))
        {
            return None;
        }
        let vs = VirtualSpeaker::start()?;
        // Generous: starting speech-dispatcher on a loaded test machine can take seconds.
        let speaker =
            NativeSpeaker::connect("en-us", 175, Duration::from_secs(30)).expect("native speaker");
        Some((vs, speaker))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn speaks_through_speech_dispatcher() {
        let Some((vs, speaker)) = speaker() else {
            return;
        };
        let recording = vs.record();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let outcome = speaker
            .speak("Hello from the native speech service.")
            .await
            .expect("speak");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let recorded = recording.finish();
        assert!(outcome.completed, "the utterance-end event resolves speak");
        assert_eq!(outcome.backend, "native");
        assert!(outcome.first_audio.is_some(), "the begin event was seen");
        assert!(rms(&recorded) > 0.01, "recorded rms {}", rms(&recorded));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stop_interrupts_native_speech() {
        let Some((_vs, speaker)) = speaker() else {
            return;
        };
        let speaker = Arc::new(speaker);
        let talking = {
            let speaker = Arc::clone(&speaker);
            tokio::spawn(async move {
                speaker
                    .speak("This is a long sentence that the native service will not finish,                             because the test stops it after a moment, well before its end.")
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(1500)).await;
        speaker.stop();
        let outcome = talking.await.expect("join").expect("speak");
        assert!(!outcome.completed);
        let next = speaker.speak("Done.").await.expect("speak again");
        assert!(next.completed, "a request after stop still speaks");
    }

    #[test]
    fn unreachable_service_is_unavailable_with_a_reason() {
        if !require("speech-dispatcher", "speech-dispatcher") {
            return;
        }
        // A socket path the server refuses to serve: neither a connection nor an auto-start.
        let result = with_env_var(
            "SPEECHD_ADDRESS",
            "unix_socket:/nonexistent/atlas.sock",
            || NativeSpeaker::connect("en-us", 175, Duration::from_secs(5)),
        );
        match result {
            Err(TtsError::Unavailable { backend, reason }) => {
                assert_eq!(backend, "native");
                assert!(
                    reason.contains("apt-get install speech-dispatcher"),
                    "{reason}"
                );
            }
            Err(other) => panic!("expected Unavailable, got {other}"),
            Ok(_) => panic!("connected to a socket that does not exist"),
        }
    }
}
