//! How alike two words are, for matching speech-to-text output that is close but not exact.
//!
//! Whisper's errors are mostly near-homophones ("briefing" -> "breathing", "lights" -> "light",
//! "weather" -> "whether"), so a word pair is compared two ways and the better counts:
//! - by spelling: normalised Levenshtein distance (edits) blended with Jaro-Winkler (shared
//!   letters in order, weighted towards a shared start), both from `strsim`;
//! - by sound: the edit distance of their phonetic keys (see `phonetic`), scaled by
//!   [`SOUND_WEIGHT`] so that sounding the same never equals being the same word. Only words with
//!   two consonant sounds or more that are not function words are compared by sound: short words
//!   and "the", "is", "to" sound like too many others, and off-topic speech must not gain from it.
//!
//! Words of one synonym class ("turn" / "switch", "start" / "begin", "song" / "music") score
//! [`SYNONYM_SIMILARITY`].
//!
//! Two words that differ only by a negating or opposing prefix ("pause" / "unpause", "increase" /
//! "decrease", "enable" / "disable", "activate" / "deactivate") are unrelated however alike they
//! look or sound: they ask for opposite things.

use super::normalize::is_function_word;
use super::phonetic::{Key, sound_similarity};

/// Similarity below which two different words count as unrelated.
const MIN_SIMILARITY: f32 = 0.6;
/// What sounding alike is worth against being spelt alike: identical sounds ("weather" /
/// "whether") score this, below an exact word.
const SOUND_WEIGHT: f32 = 0.95;
/// Prefixes that turn a word into its opposite or a contrasting word. A pair that differs only
/// by these (one may have none) is a contrast, not a mishearing.
const CONTRAST_PREFIXES: &[&str] = &[
    "un", "de", "dis", "in", "im", "il", "ir", "non", "anti", "en", "em", "ex",
];

/// What two words of one synonym class ([`synonym_class`]) score: below a mishearing that sounds
/// the same, above the threshold, so a command said with a common synonym ("switch on",
/// "begin the timer") still matches when the rest of it does.
const SYNONYM_SIMILARITY: f32 = 0.85;

/// The synonym class of a command word: words that ask for the same thing in assistant
/// commands. Kept to verbs and nouns whose sense does not change between domains; opposites are
/// never in one class, nor words already alike by spelling (they score higher on their own).
fn synonym_class(word: &str) -> Option<u8> {
    Some(match word {
        "turn" | "switch" | "flip" => 0,
        "enable" | "activate" => 1,
        "disable" | "deactivate" => 2,
        "start" | "begin" | "launch" => 3,
        "stop" | "end" | "halt" | "cancel" => 4,
        "call" | "phone" | "ring" | "dial" => 5,
        "show" | "display" => 6,
        "increase" | "raise" => 7,
        "decrease" | "lower" | "reduce" => 8,
        "remove" | "delete" | "erase" => 9,
        "set" | "change" => 10,
        "light" | "lamp" => 11,
        "lights" | "lamps" => 17,
        "music" | "song" | "track" | "tune" => 12,
        "price" | "cost" | "value" => 13,
        "louder" | "higher" => 14,
        "quieter" | "softer" => 15,
        "tell" | "give" => 16,
        _ => return None,
    })
}

/// What the quick rejection test needs to know about a word, computed once per word.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    /// Occurrences of each letter a..z; only meaningful when `letters` is set.
    counts: [u8; 26],
    /// Length in bytes.
    len: u8,
    /// First four bytes, for the Jaro-Winkler prefix bonus.
    head: [u8; 4],
    /// True when the word is made of ASCII letters a..z only.
    letters: bool,
    /// How the word sounds; compared only when `sounded` is set.
    key: Key,
    /// True when the word may be compared by sound (see the module doc).
    sounded: bool,
}

impl Shape {
    /// The shape of a normalised word.
    pub fn of(word: &str) -> Shape {
        let mut shape = Shape {
            counts: [0; 26],
            len: word.len().min(255) as u8,
            head: [0; 4],
            letters: !word.is_empty() && word.len() < 256,
            key: Key::of(word),
            sounded: false,
        };
        shape.sounded = shape.key.comparable() && !is_function_word(word);
        for (i, c) in word.bytes().enumerate() {
            if let Some(slot) = shape.head.get_mut(i) {
                *slot = c;
            }
            if c.is_ascii_lowercase() {
                let count = &mut shape.counts[usize::from(c - b'a')];
                *count = count.saturating_add(1);
            } else {
                shape.letters = false;
            }
        }
        shape
    }

    /// An upper bound of the similarity of two different letter-only words, from the letters
    /// they share; 1.0 when either word has other characters.
    fn bound(&self, other: &Shape) -> f32 {
        if !self.letters || !other.letters {
            return 1.0;
        }
        let shared: u32 = self
            .counts
            .iter()
            .zip(&other.counts)
            .map(|(a, b)| u32::from(*a.min(b)))
            .sum();
        let (la, lb, shared) = (f32::from(self.len), f32::from(other.len), shared as f32);
        // Levenshtein needs at least one edit per letter of the longer word that is not shared.
        let edits = shared / la.max(lb);
        // Jaro counts at most the shared letters; Winkler adds 0.1 per common prefix letter.
        let jaro = (shared / la + shared / lb + 1.0) / 3.0;
        let prefix = self
            .head
            .iter()
            .zip(&other.head)
            .take_while(|(x, y)| x == y && **x != 0);
        let winkler = jaro + prefix.count() as f32 * 0.1 * (1.0 - jaro);
        (edits + winkler) / 2.0
    }
}

/// How alike two normalised words are, from 0.0 (unrelated) to 1.0 (equal).
///
/// Numbers only equal themselves (so "15" is not "50"), and the articles "a", "an" and "the"
/// stand in for each other at 0.7 because speech-to-text swaps them often.
pub(crate) fn word_similarity(a: &str, b: &str) -> f32 {
    similarity_with_shapes(a, &Shape::of(a), b, &Shape::of(b))
}

/// [`word_similarity`] with the words' shapes already computed, which lets most unrelated pairs
/// skip the exact computation.
pub(crate) fn similarity_with_shapes(a: &str, shape_a: &Shape, b: &str, shape_b: &Shape) -> f32 {
    if a == b {
        return 1.0;
    }
    if synonym_class(a).is_some_and(|c| synonym_class(b) == Some(c)) {
        return SYNONYM_SIMILARITY;
    }
    let numeric = |s: &str| {
        s.bytes()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == b'-')
    };
    if numeric(a) || numeric(b) {
        return 0.0;
    }
    let article = |s: &str| matches!(s, "a" | "an" | "the");
    if article(a) && article(b) {
        return 0.7;
    }
    let spelled = if shape_a.bound(shape_b) >= MIN_SIMILARITY {
        let edits = strsim::normalized_levenshtein(a, b) as f32;
        let shared = strsim::jaro_winkler(a, b) as f32;
        (edits + shared) / 2.0
    } else {
        0.0
    };
    let reach = || shape_a.key.bound(&shape_b.key) * SOUND_WEIGHT;
    let sounded = if shape_a.sounded && shape_b.sounded && reach() >= MIN_SIMILARITY.max(spelled) {
        sound_similarity(&shape_a.key, &shape_b.key) * SOUND_WEIGHT
    } else {
        0.0
    };
    let similarity = spelled.max(sounded);
    if similarity >= MIN_SIMILARITY && contrast(a, b) {
        return 0.0;
    }
    similarity
}

/// True when `a` and `b` are the same stem with different contrasting prefixes (one may have
/// none): "lock" / "unlock", "increase" / "decrease", "enable" / "disable".
pub(crate) fn contrast(a: &str, b: &str) -> bool {
    let stems = |word: &str| -> [(usize, usize); 4] {
        // (prefix index, its length): first the word itself, then each contrasting prefix it
        // starts with (at most a few fit one word; unused entries stay at the first value).
        let mut out = [(usize::MAX, 0); 4];
        let mut k = 1;
        for (i, p) in CONTRAST_PREFIXES.iter().enumerate() {
            if k < out.len() && word.starts_with(p) {
                out[k] = (i, p.len());
                k += 1;
            }
        }
        out
    };
    let (fa, fb) = (stems(a), stems(b));
    fa.iter().enumerate().any(|(ka, &(pa, la))| {
        fb.iter().enumerate().any(|(kb, &(pb, lb))| {
            let used = (ka == 0 || pa != usize::MAX) && (kb == 0 || pb != usize::MAX);
            let (sa, sb) = (&a[la..], &b[lb..]);
            used && pa != pb && sa.len() >= 3 && sa == sb
        })
    })
}

/// Cost of hearing `b` where the template says `a`, given their similarity: 0 for equal words,
/// 1 (as bad as a missing word) for unrelated ones, and in between for near misses.
pub(crate) fn substitution_cost(similarity: f32) -> f32 {
    if similarity >= 1.0 {
        0.0
    } else if similarity < MIN_SIMILARITY {
        1.0
    } else {
        ((1.0 - similarity) * 1.5).min(1.0)
    }
}

/// Pairs of words that ask for opposite things without sharing a stem ("on" / "off"); pairs
/// that share one ("lock" / "unlock") are found by [`contrast`].
const OPPOSITES: &[(&str, &str)] = &[
    ("on", "off"),
    ("up", "down"),
    ("in", "out"),
    ("open", "close"),
    ("start", "stop"),
    ("next", "previous"),
    ("show", "hide"),
    ("yes", "no"),
    ("more", "less"),
    ("louder", "quieter"),
    ("higher", "lower"),
    ("raise", "lower"),
];

/// True when `a` and `b` ask for opposite things: a contrasting prefix or an opposite pair.
pub(crate) fn opposite(a: &str, b: &str) -> bool {
    contrast(a, b)
        || OPPOSITES
            .iter()
            .any(|&(x, y)| (a == x && b == y) || (a == y && b == x))
}

/// How alike two whole readings of one utterance are, 0..=1: the normalised Levenshtein
/// similarity of their matcher words (case, punctuation, contractions and spoken numbers aside),
/// letter by letter, so a word misheard as two ("light coin" / "litecoin") still counts as close.
pub fn reading_similarity(a: &str, b: &str) -> f32 {
    let join = |t: &str| super::normalize::content_words(t).join(" ");
    strsim::normalized_levenshtein(&join(a), &join(b)) as f32
}

/// True when the reading `b` puts a word in place of its opposite in `a` ("turn on" read as
/// "turn off"): a word of one that is absent from the other and opposes a word of the other
/// that is absent from the first.
pub fn swaps_an_opposite(a: &str, b: &str) -> bool {
    let (wa, wb) = (
        super::normalize::content_words(a),
        super::normalize::content_words(b),
    );
    let only_a: Vec<&String> = wa.iter().filter(|w| !wb.contains(w)).collect();
    let only_b: Vec<&String> = wb.iter().filter(|w| !wa.contains(w)).collect();
    only_a.iter().any(|x| only_b.iter().any(|y| opposite(x, y)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_is_an_upper_bound() {
        let words = [
            "briefing",
            "breathing",
            "on",
            "off",
            "the",
            "calendar",
            "play",
            "display",
            "a",
            "timer",
            "time",
            "stop",
            "pots",
            "weather",
            "whether",
            "x",
        ];
        for a in words {
            for b in words {
                let exact = ((strsim::normalized_levenshtein(a, b) + strsim::jaro_winkler(a, b))
                    / 2.0) as f32;
                assert!(Shape::of(a).bound(&Shape::of(b)) + 1e-6 >= exact, "{a} {b}");
            }
        }
    }

    #[test]
    fn near_misses_cost_less_than_unrelated_words_and_equal_words_nothing() {
        assert_eq!(
            substitution_cost(word_similarity("weather", "weather")),
            0.0
        );
        assert_eq!(substitution_cost(word_similarity("weather", "banana")), 1.0);
        for (a, b) in [
            ("medium", "medum"),
            ("slack", "slak"),
            ("briefing", "breathing"),
        ] {
            let cost = substitution_cost(word_similarity(a, b));
            assert!(cost > 0.0 && cost < 1.0, "{a} / {b}: {cost}");
        }
        // The cost never rises as the words get more alike.
        let costs: Vec<f32> = (0..=100)
            .map(|i| substitution_cost(i as f32 / 100.0))
            .collect();
        assert!(costs.windows(2).all(|w| w[1] <= w[0]), "{costs:?}");
    }

    #[test]
    fn sound_alikes_are_near_misses_but_contrasts_and_short_words_are_not() {
        // Spelt apart, sounding alike: a near miss, never as good as the word itself.
        for (a, b) in [
            ("brief", "breathe"),
            ("pause", "post"),
            ("weather", "whether"),
        ] {
            let similarity = word_similarity(a, b);
            assert!((0.6..1.0).contains(&similarity), "{a} / {b}: {similarity}");
        }
        // A contrasting prefix makes the opposite word, however alike they look.
        for (a, b) in [
            ("pause", "unpause"),
            ("increase", "decrease"),
            ("enable", "disable"),
            ("activate", "deactivate"),
            ("lock", "unlock"),
            ("include", "exclude"),
        ] {
            assert!(contrast(a, b) && contrast(b, a), "{a} / {b}");
            assert_eq!(word_similarity(a, b), 0.0, "{a} / {b}");
        }
        assert!(!contrast("lamp", "lamps") && !contrast("unit", "it"));
        // Function words and words of one consonant sound are compared by spelling only.
        assert_eq!(word_similarity("there", "dare"), 0.0);
        assert_eq!(word_similarity("it", "eat"), 0.0);
    }
}
