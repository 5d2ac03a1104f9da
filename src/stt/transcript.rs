//! Whisper's artefacts, removed or recognised before a transcript leaves `stt`.
//!
//! Whisper marks non-speech with annotations (`[BLANK_AUDIO]`, `(music)`), sometimes loops ("What
//! time is it? What time is it? What time..."), and on near-silence invents stock phrases
//! ("Thank you.", "Thanks for watching!"). [`clean_transcript`] is the one cleaning step: the
//! worker applies it to whisper's raw text, so every [`Transcript`](super::Transcript) is already
//! clean. [`is_noise_transcript`] recognises the silence inventions; it judges the words the
//! matcher would see, so the caller hands it the matcher's word normaliser.

/// Normalised transcripts whisper produces on silence or noise.
const NOISE_PHRASES: &[&str] = &[
    "you",
    "thank you",
    "thanks",
    "thank you so much",
    "thank you very much",
    "thank you for watching",
    "thanks for watching",
    "thank you for listening",
    "thanks for listening",
    "please subscribe",
    "like and subscribe",
    "subtitles by the amara org community",
    "bye",
    "so",
    "the",
    "oh",
    "i",
    "a",
];

/// Turns whisper's raw segment text into a transcript: drops bracketed non-speech annotations
/// such as `[BLANK_AUDIO]` or `(music)`, collapses whitespace, cuts the text at the first sentence
/// that repeats an earlier one ("What time is it? What time is it?" -> "What time is it?"), then
/// at the first word loop ("play jazz play jazz play jazz"): cheap guards against the decoder looping.
pub fn clean_transcript(raw: &str) -> String {
    cut_word_loops(&cut_repeated_sentence(&without_brackets(raw)))
}

/// True when whisper's raw text repeats itself (a sentence said again, or a word loop): the
/// cleaning step cuts something beyond annotations and whitespace.
pub(crate) fn has_loop(raw: &str) -> bool {
    let plain = without_brackets(raw);
    clean_transcript(raw) != plain.trim()
}

/// `raw` without bracketed annotations, whitespace collapsed.
fn without_brackets(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut depth = 0usize;
    for c in raw.chars() {
        match c {
            '[' | '(' => depth += 1,
            ']' | ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Cuts `text` before the first sentence (ended by `.`, `?` or `!`) that repeats an earlier one,
/// or before a trailing fragment that starts an earlier sentence again.
fn cut_repeated_sentence(text: &str) -> String {
    let mut seen: Vec<String> = Vec::new();
    let mut end = 0;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if matches!(c, '.' | '?' | '!') {
            let sentence_end = i + c.len_utf8();
            let key = sentence_key(&text[start..sentence_end]);
            if !key.is_empty() {
                if seen.contains(&key) {
                    return text[..end].trim().to_owned();
                }
                seen.push(key);
            }
            end = sentence_end;
            start = sentence_end;
        }
    }
    let tail = sentence_key(&text[start..]);
    if !tail.is_empty()
        && seen
            .iter()
            .any(|s| *s == tail || s.starts_with(&format!("{tail} ")))
    {
        // A trailing fragment that starts an earlier sentence again is the loop being cut off.
        return text[..end].trim().to_owned();
    }
    text.trim().to_owned()
}

/// A sentence's comparison key: lowercase letters, digits and single spaces.
fn sentence_key(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A word of the original text: its byte end and its comparison key (lowercase letters/digits).
struct Word {
    end: usize,
    key: String,
}

fn split(text: &str) -> Vec<Word> {
    let mut out = Vec::new();
    let mut key = String::new();
    let mut last_end = 0;
    for (i, c) in text.char_indices() {
        if c.is_alphanumeric() {
            key.extend(c.to_lowercase());
            last_end = i + c.len_utf8();
        } else if c == '\'' || c == '\u{2019}' {
            // Apostrophes stay inside words ("what's").
        } else if !key.is_empty() {
            out.push(Word {
                end: last_end,
                key: std::mem::take(&mut key),
            });
        }
    }
    if !key.is_empty() {
        out.push(Word { end: last_end, key });
    }
    out
}

/// Cuts a transcript at its first repetition loop: a run of three or more words said twice in a
/// row, or one or two words said three times in a row. Keeps the first occurrence and the
/// punctuation right after it: `"play jazz play jazz play jazz play"` -> `"play jazz"`. Text
/// without a loop comes back trimmed but otherwise unchanged.
fn cut_word_loops(text: &str) -> String {
    let words = split(text);
    let n = words.len().min(400);
    let same =
        |a: usize, b: usize, len: usize| (0..len).all(|k| words[a + k].key == words[b + k].key);
    for start in 0..n {
        for len in 1..=(n - start) / 2 {
            let repeats_needed = if len >= 3 { 2 } else { 3 };
            if start + len * repeats_needed > n {
                continue;
            }
            if (1..repeats_needed).all(|r| same(start, start + r * len, len)) {
                let mut cut = words[start + len - 1].end;
                for c in text[cut..].chars() {
                    if c.is_whitespace() || c.is_alphanumeric() || matches!(c, '(' | '[' | '"') {
                        break;
                    }
                    cut += c.len_utf8();
                }
                return text[..cut].trim().to_string();
            }
        }
    }
    text.trim().to_string()
}

/// Removes annotations (`[BLANK_AUDIO]`, `(music)`, `*laughs*`) and music symbols. Stricter
/// than [`clean_transcript`]'s bracket removal (which leaves `*...*` and music symbols in the
/// transcript the user sees): here only the words that could carry a request count.
fn strip_annotations(text: &str) -> String {
    let mut out = String::new();
    let mut closing: Vec<char> = Vec::new();
    for c in text.chars() {
        match c {
            '[' => closing.push(']'),
            '(' => closing.push(')'),
            '*' if closing.last() == Some(&'*') => {
                closing.pop();
            }
            '*' => closing.push('*'),
            c if closing.last() == Some(&c) => {
                closing.pop();
            }
            '\u{266A}' | '\u{266B}' | '\u{266C}' | '\u{1F3B5}' | '\u{1F3B6}' => {}
            c if closing.is_empty() => out.push(c),
            _ => {}
        }
    }
    out
}

/// True for transcripts that are almost surely whisper hallucinating on silence or noise:
/// empty text, only annotations (`[BLANK_AUDIO]`, `(music)`, `[ Silence ]`), only filler words,
/// or a stock phrase such as "Thank you.", "Thanks for watching!" or "you" (also when looped).
///
/// `words` is the matcher's normalisation without filler words (the voice loop passes
/// `intent::content_words`), so "only filler" means what it means to the matcher; `stt` itself
/// knows nothing of intents.
pub fn is_noise_transcript(text: &str, words: impl Fn(&str) -> Vec<String>) -> bool {
    let cleaned = strip_annotations(&cut_word_loops(text));
    let key = words(&cleaned).join(" ");
    key.is_empty() || NOISE_PHRASES.contains(&key.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::content_words;

    #[test]
    fn transcripts_lose_annotations_and_repeats() {
        assert_eq!(
            clean_transcript(" What is the weather like today?"),
            "What is the weather like today?"
        );
        assert_eq!(clean_transcript("[BLANK_AUDIO]"), "");
        assert_eq!(clean_transcript(" (music) Play   it. "), "Play it.");
        assert_eq!(
            clean_transcript("What time is it? What time is it? What time"),
            "What time is it?"
        );
        assert_eq!(clean_transcript("Stop. Stop. Stop."), "Stop.");
        // Different sentences are kept.
        assert_eq!(
            clean_transcript("Note that. Read it back."),
            "Note that. Read it back."
        );
        // A fragment that is not a restart is kept.
        assert_eq!(
            clean_transcript("Open the door. And the window"),
            "Open the door. And the window"
        );
    }

    #[test]
    fn cuts_repeated_clauses() {
        for cut in [cut_word_loops, clean_transcript] {
            assert_eq!(
                cut("What time is it? What time is it? What time"),
                "What time is it?"
            );
            assert_eq!(
                cut(" Turn on the lights. Turn on the lights."),
                "Turn on the lights."
            );
            assert_eq!(cut("play jazz play jazz play jazz play"), "play jazz");
            assert_eq!(cut("No, no, no, no."), "No,");
        }
    }

    #[test]
    fn loops_are_told_apart_from_plain_text() {
        assert!(has_loop(" Turn on the lights. Turn on the lights. Turn on"));
        assert!(has_loop(" breathe me breathe me breathe me"));
        assert!(!has_loop(" [BLANK_AUDIO] Turn on the   lights. "));
        assert!(!has_loop(" Note that. Read it back."));
    }

    #[test]
    fn leaves_normal_text_alone() {
        for text in [
            "What time is it?",
            "Thank you, thank you.",
            "Set a timer for ten minutes.",
            "Very very good",
            "Remind me to call mom and call dad",
        ] {
            assert_eq!(cut_word_loops(text), text);
            assert_eq!(clean_transcript(text), text);
        }
    }

    #[test]
    fn detects_noise() {
        for text in [
            "",
            "   ",
            "Thank you.",
            " Thanks for watching!",
            "you",
            "[BLANK_AUDIO]",
            "(music)",
            "[ Silence ]",
            "♪♪",
            "Um...",
            "Thank you. Thank you. Thank you.",
            "(upbeat music) Thank you.",
        ] {
            assert!(is_noise_transcript(text, content_words), "{text:?}");
        }
    }

    #[test]
    fn real_requests_are_not_noise() {
        for text in [
            "What time is it?",
            "Thank you for the briefing",
            "(laughs) turn on the lights",
            "Play some music",
        ] {
            assert!(!is_noise_transcript(text, content_words), "{text:?}");
        }
    }
}
