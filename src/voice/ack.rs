//! The spoken acknowledgement of a voice trigger (`ack: "On it."`): said as soon as the run it
//! started begins, so a slow workflow is heard to have been understood long before its reply.
//!
//! The ack is queued on the speaker *before* the run is triggered (its request takes its turn in
//! the speaker's queue on the first poll), so a run whose first action speaks at once is still
//! heard after it; the rest of the speaking goes on in its own task beside the run.

use futures::FutureExt;
use tokio::task::JoinHandle;

use super::{Said, VoiceLoop};
use crate::workflow::TriggerDef;

/// An acknowledgement being said.
pub(super) struct Ack {
    text: String,
    task: JoinHandle<()>,
}

impl Ack {
    /// Waits (bounded by the speaker: a press stops it) until the ack has been said; returns
    /// its text for the utterance's record.
    pub(super) async fn said(self) -> String {
        let _ = self.task.await;
        self.text
    }
}

impl VoiceLoop {
    /// The `ack` of the voice trigger of `workflow` whose phrases hold `phrase`.
    fn ack_for(&self, workflow: &str, phrase: &str) -> Option<String> {
        let wf = self.engine.workflow(workflow)?;
        wf.def.triggers.iter().find_map(|t| match t {
            TriggerDef::Voice { phrases, ack } if phrases.iter().any(|p| p == phrase) => {
                ack.clone()
            }
            _ => None,
        })
    }

    /// Starts saying the acknowledgement of the trigger that matched, when it has one and the
    /// utterance is still current; call it just before triggering the run.
    pub(super) fn acknowledge(&self, workflow: &str, phrase: &str, said: &Said<'_>) -> Option<Ack> {
        if said.superseded.is_cancelled() {
            return None;
        }
        let text = self.ack_for(workflow, phrase)?;
        let speaker = self.engine.services().speaker.clone();
        let spoken = text.clone();
        let mut speaking = async move {
            if let Err(e) = speaker.speak(&spoken).await {
                tracing::warn!(error = %e, "could not say the acknowledgement");
            }
        }
        .boxed();
        // The first poll takes the ack's place in the speaker's queue, ahead of the run.
        let task = match (&mut speaking).now_or_never() {
            Some(()) => tokio::spawn(async {}),
            None => tokio::spawn(speaking),
        };
        Some(Ack { text, task })
    }
}

/// `ack` followed by what the run said.
pub(super) fn with_ack(ack: Option<String>, reply: Option<String>) -> Option<String> {
    match (ack, reply) {
        (Some(a), Some(r)) => Some(format!("{a} {r}")),
        (a, r) => a.or(r),
    }
}
