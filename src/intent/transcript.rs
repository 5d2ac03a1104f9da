//! Guards against whisper's known failure modes before a transcript reaches the matcher.
//!
//! On near-silence whisper invents stock phrases ("Thank you.", "Thanks for watching!") or emits
//! annotations (`[BLANK_AUDIO]`, `(music)`); on some audio it loops ("What time is it? What time
//! is it? What time..."). [`is_noise_transcript`] spots the former, [`clean_transcript`] cuts the
//! latter.

use super::normalize::{DEFAULT_SKIP_WORDS, words};

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

/// A word of the original text: its byte span and its comparison key (lowercase letters/digits).
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
/// punctuation right after it: `"What time is it? What time is it? What time"` -> `"What time
/// is it?"`. Text without a loop comes back trimmed but otherwise unchanged.
pub fn clean_transcript(text: &str) -> String {
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

/// Removes bracketed annotations (`[BLANK_AUDIO]`, `(music)`, `*laughs*`) and music symbols.
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
pub fn is_noise_transcript(text: &str) -> bool {
    let cleaned = strip_annotations(&clean_transcript(text));
    let key: Vec<String> = words(&cleaned)
        .into_iter()
        .map(|t| t.text)
        .filter(|w| !DEFAULT_SKIP_WORDS.contains(&w.as_str()))
        .collect();
    let key = key.join(" ");
    key.is_empty() || NOISE_PHRASES.contains(&key.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_repeated_clauses() {
        assert_eq!(
            clean_transcript("What time is it? What time is it? What time"),
            "What time is it?"
        );
        assert_eq!(
            clean_transcript(" Turn on the lights. Turn on the lights."),
            "Turn on the lights."
        );
        assert_eq!(
            clean_transcript("play jazz play jazz play jazz play"),
            "play jazz"
        );
        assert_eq!(clean_transcript("No, no, no, no."), "No,");
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
            assert!(is_noise_transcript(text), "{text:?}");
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
            assert!(!is_noise_transcript(text), "{text:?}");
        }
    }
}
