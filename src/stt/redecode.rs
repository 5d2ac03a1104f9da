//! A second decode of the clip whisper has just encoded, without encoding it again.
//!
//! whisper.cpp's `whisper_full` always runs the encoder. The grammar-guided pass that follows a
//! free one reads the same samples through the same window, so everything it needs is already in
//! the whisper state: the encoder's output (the cross-attention keys and values) and the decoder
//! prompt in the self-attention cache (sequence 0, positions `0..prompt_len`). [`decode_again`]
//! drops the free pass's tokens from that cache, decodes the prompt's last token once more to get
//! the first step's logits, and then runs whisper's greedy loop itself: the same suppression of
//! special and non-speech tokens, in the same order around the logits filter, the same token
//! budget. Measured against a guided `whisper_full` on the same clip, the text is the same (see
//! the tests); what is saved is one encoder run and the prompt's decode.
//!
//! Only valid right after a `whisper_full` call on the same state, model and prompt that covered
//! the whole clip in one window (`decode_again`'s callers check the last).

use whisper_rs::WhisperState;

use super::SttError;
use super::guide::{Guide, Vocab};

/// What the last `whisper_full` left in the state that the next decode starts from.
#[derive(Debug, Clone, Copy)]
pub(super) struct Encoded {
    /// Tokens of its decoder prompt (`[prev, prompt..., sot, (language, task,) notimestamps]`).
    pub prompt_len: usize,
    /// The prompt's last token, decoded again to get the first step's logits.
    pub prompt_last: i32,
}

/// Greedy decode from `encoded`, every step's logits handed to `guide` as whisper.cpp hands them
/// to its filter. Returns whisper's raw text and the last token chosen (the end-of-text, or the
/// last text token when the budget of `max_tokens` ran out, as `whisper_full` counts it).
pub(super) fn decode_again(
    state: &mut WhisperState,
    vocab: &Vocab,
    guide: &Guide<'_>,
    encoded: Encoded,
    max_tokens: i32,
    threads: usize,
    aborted: &dyn Fn() -> bool,
) -> Result<(String, Option<i32>), SttError> {
    let infer = |e: whisper_rs::WhisperError| SttError::Inference(e.to_string());
    let mut ids: Vec<i32> = Vec::new();
    let mut logits: Vec<f32> = Vec::new();
    let mut next = encoded.prompt_last;
    let first = encoded.prompt_len.saturating_sub(1);
    // whisper.cpp ends a segment after the token of step `i >= max_tokens`: one more than the
    // budget, the end-of-text included.
    let steps = usize::try_from(max_tokens.max(0)).unwrap_or(0) + 1;
    for pos in first..first + steps {
        if aborted() {
            return Err(SttError::Aborted);
        }
        state.decode(&[next], pos, threads.max(1)).map_err(infer)?;
        logits.clear();
        logits.extend_from_slice(state.get_logits().map_err(infer)?);
        vocab.suppress_special(&mut logits, ids.is_empty());
        guide.filter(&ids, &mut logits);
        vocab.suppress_non_speech(&mut logits);
        let Some(token) = argmax(&logits) else { break };
        ids.push(token);
        if token == vocab.eot() {
            break;
        }
        next = token;
    }
    Ok((
        String::from_utf8_lossy(&vocab.text(&ids)).into_owned(),
        ids.last().copied(),
    ))
}

/// The first highest finite logit, as whisper.cpp's greedy sampler picks it.
fn argmax(logits: &[f32]) -> Option<i32> {
    let mut best: Option<(usize, f32)> = None;
    for (id, &l) in logits.iter().enumerate() {
        if l.is_finite() && best.is_none_or(|(_, b)| l > b) {
            best = Some((id, l));
        }
    }
    best.and_then(|(id, _)| i32::try_from(id).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_best_finite_logit() {
        let inf = f32::INFINITY;
        assert_eq!(argmax(&[0.5, 2.0, 2.0, -1.0]), Some(1));
        assert_eq!(argmax(&[f32::NEG_INFINITY, -3.0, f32::NAN]), Some(1));
        assert_eq!(argmax(&[inf, 1.0]), Some(1));
        assert_eq!(argmax(&[f32::NEG_INFINITY; 3]), None);
        assert_eq!(argmax(&[]), None);
    }
}
