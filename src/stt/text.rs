//! Decoding budgets and prompt hygiene: small pure functions around whisper's inputs, kept apart
//! from the model plumbing so they are easy to test (its outputs are cleaned in `transcript`).

/// Encoder frames per second of audio (whisper's mel hop of 10 ms, halved by the conv stride).
const FRAMES_PER_SECOND: f64 = 50.0;
/// Most encoder frames whisper has: 30 s.
pub(crate) const MAX_AUDIO_CTX: i32 = 1500;

/// The encoder window for a clip of `samples` at 16 kHz: 50 frames a second plus `margin`,
/// rounded up to a multiple of 64, at least `floor` and at most 1500 (whisper's full 30 s).
/// A window sized to the clip is what makes short commands fast (the encoder dominates); the
/// margin of silence after the speech is what keeps the decoder from repeating itself (measured
/// on 24 espeak-ng commands of 1.3-2.3 s: 8 repeated with a 64-frame margin, 1 with 192, none
/// with 256).
pub(crate) fn audio_ctx_for(samples: usize, floor: i32, margin: i32) -> i32 {
    let seconds = samples as f64 / f64::from(crate::audio::SAMPLE_RATE);
    let raw = (seconds * FRAMES_PER_SECOND + f64::from(margin.max(0))).ceil() as i64;
    let rounded = (raw + 63) / 64 * 64;
    (rounded.min(i64::from(MAX_AUDIO_CTX)) as i32)
        .max(floor)
        .min(MAX_AUDIO_CTX)
}

/// The wider window of the one retry after a repeat: `first` plus 256 frames (5 s), capped.
pub(crate) fn retry_audio_ctx(first: i32) -> i32 {
    (first + 256).min(MAX_AUDIO_CTX)
}

/// The token budget for a clip: 4 tokens per second of audio plus 6. Speech runs at ~2-3 tokens
/// a second, so this only cuts decoding that has started to repeat itself.
pub(crate) fn max_tokens_for(samples: usize) -> i32 {
    let seconds = samples as f64 / f64::from(crate::audio::SAMPLE_RATE);
    (seconds * 4.0).ceil() as i32 + 6
}

/// Makes a prompt safe to hand to whisper (which takes a C string): drops NUL bytes and
/// surrounding whitespace. Returns `None` for an empty prompt.
pub(crate) fn sanitize_prompt(prompt: &str) -> Option<String> {
    let clean: String = prompt.chars().filter(|&c| c != '\0').collect();
    let clean = clean.trim();
    (!clean.is_empty()).then(|| clean.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_ctx_is_sized_to_the_clip_with_floor_and_cap() {
        // 2.15 s -> 107.5 + 64 = 171.5 -> 192 (the notes' measured value), floor lifts it to 512.
        assert_eq!(audio_ctx_for(34_400, 0, 64), 192);
        assert_eq!(audio_ctx_for(34_400, 512, 64), 512);
        // With the default margin of 192 frames: 299.5 -> 320.
        assert_eq!(audio_ctx_for(34_400, 0, 192), 320);
        // 12 s -> 664 -> 704, above the floor.
        assert_eq!(audio_ctx_for(12 * 16_000, 512, 64), 704);
        // Longer than 30 s is capped at the model's full window.
        assert_eq!(audio_ctx_for(40 * 16_000, 512, 64), 1500);
        assert_eq!(audio_ctx_for(0, 512, 64), 512);
        assert_eq!(audio_ctx_for(0, 0, 192), 192);
        assert_eq!(audio_ctx_for(16_000, 4000, 64), 1500);
        assert_eq!(retry_audio_ctx(320), 576);
        assert_eq!(retry_audio_ctx(1400), 1500);
    }

    #[test]
    fn token_budget_scales_with_length() {
        assert_eq!(max_tokens_for(32_000), 14);
        assert_eq!(max_tokens_for(6 * 16_000), 30);
        assert_eq!(max_tokens_for(1), 7);
    }

    #[test]
    fn prompts_lose_nul_bytes_and_blank_ones_vanish() {
        assert_eq!(
            sanitize_prompt(" Morning\0 briefing. ").as_deref(),
            Some("Morning briefing.")
        );
        assert_eq!(sanitize_prompt(" \0 "), None);
    }
}
