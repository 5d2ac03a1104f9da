//! Speculative decoding while the push-to-talk key is held.
//!
//! When the live watcher (`audio::live`) sees a pause after speech, the agent hands the
//! recording so far to [`VoiceLoop::speculate`], which decodes it in the background exactly as
//! the release would (gate trim, the same [`VoiceLoop::decode`]). At release,
//! [`VoiceLoop::handle_released`] asks the gate whether anything loud came after that snapshot
//! ([`crate::audio::Vad::loud_after`], by the whole recording's own threshold, voiced or not):
//!
//! - nothing: the speculative transcript stands for the utterance (already there, or the decode
//!   still running is awaited: it is the same decode a fresh one would be, started earlier);
//!   the whole recording is not put through the speech gate again, its snapshot passed it;
//! - something: the recording is decoded again. The new `transcribe` call supersedes the
//!   speculative one if it still runs (`stt` aborts it within milliseconds).
//!
//! **Invariant**: a speculative result starts nothing by itself. It is only ever a transcript,
//! read at release for a recording the user finished, and only when the audio after its snapshot
//! is quiet by the gate; a newer snapshot replaces an older one (the agent keeps one per
//! utterance, and the newer decode aborts the older).
//!
//! **Bound**: awaiting a speculation ends when its decode ends or is aborted (a newer decode,
//! the model unloaded, the worker gone); each of those answers the oneshot or drops it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::sync::oneshot;

use super::{Phase, VoiceLoop};
use crate::stt::{SttError, Transcript};

/// A decode of the recording up to a pause, started while the key was still held.
#[derive(Debug)]
pub struct Speculation {
    covered: usize,
    /// The snapshot passed the speech gate (so a decode was started).
    had_speech: bool,
    started: Instant,
    result: oneshot::Receiver<Option<Transcript>>,
}

impl Speculation {
    /// How many 16 kHz samples of the recording the snapshot held.
    pub fn covered(&self) -> usize {
        self.covered
    }

    /// When the decode was started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Waits for the decode: `None` when it found no speech, failed or was superseded.
    pub async fn transcript(self) -> Option<Transcript> {
        self.result.await.ok().flatten()
    }
}

impl VoiceLoop {
    /// Starts decoding `snapshot` (16 kHz mono, the recording so far) in the background; the
    /// result waits in the returned [`Speculation`]. `own_sound` is the start of the recording
    /// that may hold Atlas's own sound ([`Vad::own_head`](crate::audio::Vad::own_head)). Must
    /// be called on the tokio runtime.
    pub fn speculate(self: &Arc<Self>, snapshot: Vec<f32>, own_sound: Duration) -> Speculation {
        let covered = snapshot.len();
        let (tx, result) = oneshot::channel();
        let heard = self.users_part(&snapshot, own_sound);
        let report = self.vad.analyze(heard);
        if report.has_speech {
            let this = Arc::clone(self);
            let speech = report.trim(heard).to_vec();
            let mut decoding = async move {
                let heard = match this.decode(speech).await {
                    Ok(t) => Some(t),
                    Err(SttError::Aborted) => {
                        tracing::debug!("speculative decode superseded");
                        None
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "speculative decode failed");
                        None
                    }
                };
                let _ = tx.send(heard);
            }
            .boxed();
            // The first poll hands the job to whisper and takes its turn: a later snapshot's
            // decode (or the release's) is newer and aborts this one, whatever tasks run first.
            if (&mut decoding).now_or_never().is_none() {
                tokio::spawn(decoding);
            }
            tracing::info!(covered_ms = covered / 16, "speculative decode started");
        } else {
            let _ = tx.send(None);
        }
        Speculation {
            covered,
            had_speech: report.has_speech,
            started: Instant::now(),
            result,
        }
    }

    /// The transcript of a finished recording `samples`, and whether it is `speculation`'s:
    /// used when nothing was heard after its snapshot and it decoded something (the snapshot
    /// passed the speech gate, so the whole recording is not gated again); otherwise the
    /// recording goes through the gate and its speech part is decoded now. `None` when the gate
    /// finds no speech. `progress` hears `Transcribing` once there is speech to wait for.
    pub(super) async fn hear(
        &self,
        samples: &[f32],
        own_sound: Duration,
        speculation: Option<Speculation>,
        progress: &(dyn Fn(Phase) + Send + Sync),
    ) -> Result<Option<(Transcript, bool)>, SttError> {
        if let Some(s) = speculation {
            let covered = s.covered;
            if covered > samples.len() || self.vad.loud_after(samples, covered) {
                tracing::info!(
                    covered_ms = covered / 16,
                    audio_ms = samples.len() / 16,
                    "speech after the speculative snapshot: decoding again"
                );
            } else if s.had_speech {
                progress(Phase::Transcribing);
                if let Some(t) = s.transcript().await {
                    tracing::info!(covered_ms = covered / 16, "speculative transcript used");
                    return Ok(Some((t, true)));
                }
                tracing::info!("the speculative decode gave nothing: decoding again");
            }
        }
        let heard = self.users_part(samples, own_sound);
        let report = self.vad.analyze(heard);
        if !report.has_speech {
            tracing::info!(
                audio_ms = samples.len() / 16,
                voiced_ms = report.voiced_ms,
                "no speech in the recording"
            );
            return Ok(None);
        }
        progress(Phase::Transcribing);
        let speech = report.trim(heard).to_vec();
        Ok(Some((self.decode(speech).await?, false)))
    }

    /// `samples` without the head that holds only Atlas's own sound (the tail of speech a
    /// press cut short) within the recording's first `own_sound`.
    fn users_part<'a>(&self, samples: &'a [f32], own_sound: Duration) -> &'a [f32] {
        let own = own_sound.as_millis() as usize * crate::audio::SAMPLE_RATE as usize / 1000;
        let head = self.vad.own_head(samples, own);
        if head > 0 {
            tracing::info!(
                head_ms = head / 16,
                "left Atlas's own sound at the start of the recording out"
            );
        }
        &samples[head..]
    }
}

#[cfg(test)]
#[path = "speculative_tests.rs"]
mod tests;
