//! Typed commands: a text goes through the same matcher and run as a transcript would, with no
//! gate and no whisper (`atlas listen --text`, and later the control API).

use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::{Handled, Said, Timings, VoiceLoop};

impl VoiceLoop {
    /// Handles one typed command as if whisper had heard `text`: the matcher picks a workflow
    /// (with the same normaliser, threshold and margin as speech), the workflow runs, and its
    /// reply is spoken through the engine's speaker. Nothing matched is not an error: the
    /// [`Handled`] has no `workflow`, its `reason` says why, and the "not understood" reply (or
    /// the LLM fallback, when configured) is given as for speech. Timings count from the call;
    /// `audio_ms` and `stt_ms` are 0.
    pub async fn handle_text(&self, text: &str) -> Handled {
        let released = Instant::now();
        let never = CancellationToken::new();
        let mut handled = Handled::new(text.trim().to_owned(), Timings::default());
        if handled.transcript.is_empty() {
            handled.reason = Some("the command is empty".into());
            return handled;
        }
        if handled.answers(&self.engine.services().questions) {
            return handled;
        }
        let t0 = Instant::now();
        let outcome = self.matcher().matcher.match_text(&handled.transcript);
        handled.timings.match_us = t0.elapsed().as_micros() as u64;
        tracing::info!(text = %handled.transcript, best = ?outcome.best.as_ref().map(|b| (&b.workflow_id, b.score)), "typed command matched");
        let said = Said {
            released,
            superseded: &never,
        };
        let heard = handled.transcript.clone();
        self.act_on(&mut handled, outcome, &heard, &said).await;
        handled
    }
}
