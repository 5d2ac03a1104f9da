//! Text normalisation shared by templates and transcripts, so both sides compare like with like.
//!
//! Steps, in order: unicode apostrophes become `'`; lowercase; split into words on punctuation
//! (keeping a decimal point between digits, joining "p.m." into "pm" and "1,000" into "1000");
//! expand contractions ("what's" -> "what is", "don't" -> "do not"); turn spoken numbers into
//! digits ("twenty five" -> "25"); drop filler words ("um", "uh", "please"). For transcripts the
//! normaliser also marks a leading wake/politeness prefix ("hey atlas", "okay so") and a trailing
//! courtesy ("thanks", "atlas") that the matcher may skip for free, and tells whether it asks a
//! question (see `questions`).

use std::collections::HashSet;
use std::sync::LazyLock;

use super::numbers::{find_numbers, format_number};
use super::questions::is_question;

/// Filler words dropped everywhere by default.
pub const DEFAULT_SKIP_WORDS: &[&str] = &[
    "um", "umm", "uh", "uhh", "uhm", "erm", "er", "hmm", "hm", "mm", "mmm", "ah", "eh", "please",
];

/// Words and phrases skipped for free at the start of a transcript by default.
pub const DEFAULT_PREFIXES: &[&str] = &[
    "hey atlas",
    "hi atlas",
    "okay atlas",
    "yo atlas",
    "atlas",
    "hey",
    "okay",
    "so",
    "well",
    "all right",
    "now",
    "and",
    "just",
    // Greetings before a request; a greeting on its own still matches `hello`-style phrases,
    // since a skippable prefix may also be matched.
    "good morning",
    "good afternoon",
    "good evening",
    // The ways a request is wrapped.
    "could you",
    "can you",
    "would you",
    "will you",
    "would you mind",
    "could you go ahead and",
    "go ahead and",
    "i want you to",
    "i need you to",
    "i would like you to",
    // A request with the speaker as subject ("can I get the weather", "I'd like to hear jazz").
    // Questions that happen to open this way ("can I go out today?") lose only these words; the
    // rest must still match a phrase on its own.
    "can i get",
    "could i get",
    "can i have",
    "could i have",
    "may i have",
    "can we get",
    "i want to",
    "i would like to",
    "i need to",
    "let us",
    // Asking to be told or shown ("tell me the weather forecast", "show me my next meeting").
    "tell me",
    "show me",
    "give me",
];

/// Words and phrases skipped for free at the end of a transcript by default.
pub const DEFAULT_SUFFIXES: &[&str] = &[
    "thank you",
    "thank you very much",
    "thanks",
    "atlas",
    "okay",
    // A tag that makes a request polite ("turn on the lights, will you?").
    "will you",
    "would you",
    "can you",
    "could you",
    // Softeners and time words that do not change what is asked.
    "a bit",
    "a little",
    "a little bit",
    "for me",
    "right now",
];

/// Common function words. They count half as much as other words when matching, so a missing
/// "the" or "in" costs less than a misheard "weather". Words that flip a request's meaning
/// ("on", "off", "up", "down", "not", "no", "all") are deliberately left out.
const FUNCTION_WORDS: &[&str] = &[
    "a", "an", "the", "is", "are", "am", "was", "were", "be", "been", "it", "this", "that", "to",
    "of", "in", "at", "for", "with", "by", "from", "into", "about", "me", "my", "i", "you", "your",
    "we", "our", "us", "what", "which", "who", "do", "does", "did", "can", "could", "will",
    "would", "should", "and", "or", "so", "some", "any", "there", "here", "just", "have", "has",
    "had", "let", "oh",
];

/// True for a normalised function word ("the", "is", "to"), weighted half when matching.
pub(crate) fn is_function_word(word: &str) -> bool {
    FUNCTION_WORDS.contains(&word)
}

/// One normalised word of a template or transcript.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    /// The normalised form used for comparison ("25", "what", "is").
    pub text: String,
    /// The form free-text slot values are built from: the word as written, case kept ("Sam",
    /// "I'll"); a number keeps the words it was spoken with ("twenty five" rather than "25");
    /// empty for the second part of an expanded contraction ("will" of "I'll").
    pub surface: String,
    /// The number this token stands for, when it is one.
    pub number: Option<f64>,
}

/// A normalised transcript: its words plus how many leading and trailing words are skippable.
#[derive(Debug, Clone, Default)]
pub(crate) struct Normalized {
    /// All words, filler removed.
    pub tokens: Vec<Token>,
    /// How many words at the start form a wake/politeness prefix.
    pub lead: usize,
    /// How many words at the end form a courtesy suffix.
    pub trail: usize,
    /// True when the transcript asks a question rather than making a request: its words (after
    /// the prefix) open with an interrogative ("is the lamp on", "which lights are on"), or it
    /// has a question mark that no polite wrapper ("can you ...?", "..., will you?", "please")
    /// explains.
    pub question: bool,
    /// True when the transcript, not a question, tells about its subject: its words (after the
    /// prefix) open with a subject pronoun ("I turned the volume up yesterday").
    pub statement: bool,
}

impl Normalized {
    /// The words between the skippable prefix and suffix, joined by spaces (all words when the
    /// prefix and suffix would cover everything).
    pub fn core_text(&self) -> String {
        let (start, end) = if self.lead + self.trail < self.tokens.len() {
            (self.lead, self.tokens.len() - self.trail)
        } else {
            (0, self.tokens.len())
        };
        let words: Vec<&str> = self.tokens[start..end]
            .iter()
            .map(|t| t.text.as_str())
            .collect();
        words.join(" ")
    }
}

/// The configured normaliser: filler words plus the phrases that may open or close a request.
#[derive(Debug, Clone)]
pub(crate) struct Normalizer {
    skip: HashSet<String>,
    prefixes: Vec<Vec<String>>,
    suffixes: Vec<Vec<String>>,
}

impl Default for Normalizer {
    fn default() -> Self {
        let own = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Normalizer::new(
            &own(DEFAULT_SKIP_WORDS),
            &own(DEFAULT_PREFIXES),
            &own(DEFAULT_SUFFIXES),
        )
    }
}

impl Normalizer {
    /// Builds a normaliser; the word lists are normalised themselves (so "Hey, Atlas!" works).
    pub fn new(skip: &[String], prefixes: &[String], suffixes: &[String]) -> Normalizer {
        let skip: HashSet<String> = skip.iter().flat_map(|w| words(w)).map(|t| t.text).collect();
        let phrase_list = |list: &[String]| {
            let mut out: Vec<Vec<String>> = list
                .iter()
                .map(|p| {
                    words(p)
                        .into_iter()
                        .map(|t| t.text)
                        .filter(|w| !skip.contains(w))
                        .collect()
                })
                .filter(|p: &Vec<String>| !p.is_empty())
                .collect();
            // Longest first, so "hey atlas" wins over "hey".
            out.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
            out.dedup();
            out
        };
        let prefixes = phrase_list(prefixes);
        let suffixes = phrase_list(suffixes);
        Normalizer {
            skip,
            prefixes,
            suffixes,
        }
    }

    /// Normalises template text: words without filler, no prefix handling.
    pub fn template_words(&self, text: &str) -> Vec<Token> {
        words(text)
            .into_iter()
            .filter(|t| !self.skip.contains(&t.text))
            .collect()
    }

    /// Normalises a transcript and marks its skippable prefix and suffix.
    pub fn transcript(&self, text: &str) -> Normalized {
        let tokens = self.template_words(text);
        let lead = repeated_affix(&tokens, &self.prefixes, false);
        let trail = repeated_affix(&tokens[lead..], &self.suffixes, true);
        let question = is_question(text, &tokens, lead, trail);
        let start = if lead + trail < tokens.len() { lead } else { 0 };
        let statement = !question
            && tokens
                .get(start)
                .is_some_and(|t| super::questions::opens_statement(&t.text));
        Normalized {
            tokens,
            lead,
            trail,
            question,
            statement,
        }
    }
}

/// How many words at one end of `tokens` are covered by a run of the given phrases.
fn repeated_affix(tokens: &[Token], phrases: &[Vec<String>], from_end: bool) -> usize {
    let mut covered = 0;
    'outer: loop {
        let rest = &tokens[..tokens.len() - if from_end { covered } else { 0 }];
        let rest = if from_end { rest } else { &tokens[covered..] };
        for phrase in phrases {
            if phrase.len() > rest.len() {
                continue;
            }
            let window = if from_end {
                &rest[rest.len() - phrase.len()..]
            } else {
                &rest[..phrase.len()]
            };
            if window.iter().zip(phrase).all(|(t, p)| t.text == *p) {
                covered += phrase.len();
                continue 'outer;
            }
        }
        return covered;
    }
}

/// Normalises `text` with the default filler words and prefixes and returns the words joined by
/// single spaces: `"Hey Atlas, what's the weather?"` -> `"what is the weather"`,
/// `"Set a timer for twenty-five minutes"` -> `"set a timer for 25 minutes"`.
pub fn normalize(text: &str) -> String {
    static DEFAULT: LazyLock<Normalizer> = LazyLock::new(Normalizer::default);
    DEFAULT.transcript(text).core_text()
}

/// The words of `text` as the matcher sees them (lowercase, contractions expanded, spoken numbers
/// folded), without the default filler words: `"Um, thank you."` -> `["thank", "you"]`.
pub fn content_words(text: &str) -> Vec<String> {
    words(text)
        .into_iter()
        .map(|t| t.text)
        .filter(|w| !DEFAULT_SKIP_WORDS.contains(&w.as_str()))
        .collect()
}

/// Splits raw text into lowercase words, expands contractions and folds spoken numbers.
/// Filler words are kept; see [`Normalizer`].
pub(crate) fn words(text: &str) -> Vec<Token> {
    let mut expanded: Vec<String> = Vec::new();
    let mut surfaces: Vec<String> = Vec::new();
    for (lower, written) in split_words(text) {
        let before = expanded.len();
        expand_contraction(&lower, &mut expanded);
        for k in before..expanded.len() {
            surfaces.push(if k == before {
                written.clone()
            } else {
                String::new()
            });
        }
    }
    let refs: Vec<&str> = expanded.iter().map(String::as_str).collect();
    let spans = find_numbers(&refs);
    let mut out = Vec::with_capacity(refs.len());
    let mut next = 0;
    let plain = |i: usize| Token {
        text: refs[i].to_string(),
        surface: surfaces[i].clone(),
        number: None,
    };
    for span in spans {
        out.extend((next..span.start).map(plain));
        out.push(Token {
            text: format_number(span.value),
            surface: refs[span.start..span.end].join(" "),
            number: Some(span.value),
        });
        next = span.end;
    }
    out.extend((next..refs.len()).map(plain));
    out
}

/// The words of `tokens` as written (see [`Token::surface`]), for a free-text slot's value; a
/// span that begins inside a contraction begins with its normalised word.
pub(crate) fn written(tokens: &[Token]) -> String {
    let mut out: Vec<&str> = Vec::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        match (i, t.surface.is_empty()) {
            (0, true) => out.push(&t.text),
            (_, true) => {}
            _ => out.push(&t.surface),
        }
    }
    out.join(" ")
}

/// True for the characters that can be apostrophes in whisper output or typed templates.
fn is_apostrophe(c: char) -> bool {
    matches!(
        c,
        '\'' | '\u{2019}' | '\u{2018}' | '\u{02BC}' | '\u{2032}' | '`' | '\u{00B4}'
    )
}

/// Splits on everything that is not part of a word: each word lowercased, and as written (case
/// kept, apostrophes made `'`).
fn split_words(text: &str) -> Vec<(String, String)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut word = String::new();
    let mut as_written = String::new();
    // Length of the current dot-separated segment, to join "p.m." into "pm".
    let mut segment = 0;
    let flush = |word: &mut String, as_written: &mut String, out: &mut Vec<(String, String)>| {
        let trimmed = word.trim_matches('\'');
        if !trimmed.is_empty() {
            out.push((
                trimmed.to_string(),
                as_written.trim_matches('\'').to_string(),
            ));
        }
        word.clear();
        as_written.clear();
    };
    let symbol = |s: &str| (s.to_string(), s.to_string());
    for (i, &c) in chars.iter().enumerate() {
        let prev = if i > 0 { chars[i - 1] } else { ' ' };
        let next = chars.get(i + 1).copied().unwrap_or(' ');
        if c.is_alphanumeric() {
            word.extend(c.to_lowercase());
            as_written.push(c);
            segment += 1;
        } else if is_apostrophe(c) && prev.is_alphanumeric() && next.is_alphanumeric() {
            word.push('\'');
            as_written.push('\'');
        } else if c == '.' && prev.is_ascii_digit() && next.is_ascii_digit() {
            word.push('.');
            as_written.push('.');
        } else if c == ',' && prev.is_ascii_digit() && next.is_ascii_digit() {
            // Thousands separator: "1,000".
        } else if c == '.' && prev.is_alphabetic() && next.is_alphabetic() && segment == 1 {
            segment = 0;
        } else if c == '-' && !prev.is_alphanumeric() && next.is_ascii_digit() {
            flush(&mut word, &mut as_written, &mut out);
            word.push('-');
            as_written.push('-');
            segment = 0;
        } else {
            flush(&mut word, &mut as_written, &mut out);
            segment = 0;
            match c {
                '%' => out.push(symbol("percent")),
                '&' => out.push(symbol("and")),
                '+' => out.push(symbol("plus")),
                _ => {}
            }
        }
    }
    flush(&mut word, &mut as_written, &mut out);
    out
}

/// Appends the expansion of one lowercase word (possibly a contraction) to `out`.
fn expand_contraction(word: &str, out: &mut Vec<String>) {
    let whole: Option<&[&str]> = match word {
        "won't" | "wont" => Some(&["will", "not"]),
        "can't" | "cant" | "cannot" => Some(&["can", "not"]),
        "shan't" => Some(&["shall", "not"]),
        "ain't" => Some(&["is", "not"]),
        "let's" => Some(&["let", "us"]),
        "y'all" => Some(&["you", "all"]),
        "gonna" => Some(&["going", "to"]),
        "wanna" => Some(&["want", "to"]),
        "gotta" => Some(&["got", "to"]),
        "o'clock" => Some(&["oclock"]),
        "ok" => Some(&["okay"]),
        "alright" => Some(&["all", "right"]),
        "whats" => Some(&["what", "is"]),
        "thats" => Some(&["that", "is"]),
        "dont" => Some(&["do", "not"]),
        "doesnt" => Some(&["does", "not"]),
        "didnt" => Some(&["did", "not"]),
        "isnt" => Some(&["is", "not"]),
        "im" => Some(&["i", "am"]),
        _ => None,
    };
    if let Some(parts) = whole {
        out.extend(parts.iter().map(|p| p.to_string()));
        return;
    }
    let Some(apostrophe) = word.rfind('\'') else {
        out.push(word.to_string());
        return;
    };
    let (stem, suffix) = (&word[..apostrophe], &word[apostrophe + 1..]);
    let clean = |s: &str| s.replace('\'', "");
    match suffix {
        "t" if stem.ends_with('n') => {
            out.push(clean(&stem[..stem.len() - 1]));
            out.push("not".to_string());
        }
        "s" if is_s_is(stem) => {
            out.push(clean(stem));
            out.push("is".to_string());
        }
        "re" | "ve" | "ll" | "d" | "m" => {
            out.push(clean(stem));
            out.push(
                match suffix {
                    "re" => "are",
                    "ve" => "have",
                    "ll" => "will",
                    "d" => "would",
                    _ => "am",
                }
                .to_string(),
            );
        }
        // Possessives and anything else: drop the apostrophe ("mom's" -> "moms").
        _ => out.push(clean(word)),
    }
}

/// Words whose "'s" means "is" rather than a possessive.
fn is_s_is(stem: &str) -> bool {
    matches!(
        stem,
        "what"
            | "it"
            | "that"
            | "there"
            | "here"
            | "who"
            | "where"
            | "how"
            | "when"
            | "why"
            | "he"
            | "she"
            | "this"
            | "everything"
            | "nothing"
            | "something"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str) -> Vec<String> {
        words(text).into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn lowercases_and_strips_punctuation() {
        assert_eq!(normalize("Morning Briefing!"), "morning briefing");
        assert_eq!(normalize("  What time is it?? "), "what time is it");
        assert_eq!(
            normalize("Turn on the lights, then..."),
            "turn on the lights then"
        );
    }

    #[test]
    fn expands_contractions_with_any_apostrophe() {
        assert_eq!(
            normalize("What's the weather like?"),
            "what is the weather like"
        );
        assert_eq!(
            normalize("What\u{2019}s the weather"),
            "what is the weather"
        );
        assert_eq!(
            normalize("I'm sure it's fine, don't worry"),
            "i am sure it is fine do not worry"
        );
        assert_eq!(
            normalize("You'll see, we've won, they're here"),
            "you will see we have won they are here"
        );
        assert_eq!(normalize("I won't, I can't"), "i will not i can not");
        assert_eq!(normalize("Call Mom's phone"), "call moms phone");
    }

    #[test]
    fn numbers_become_digits() {
        assert_eq!(
            normalize("Set a timer for twenty-five minutes"),
            "set a timer for 25 minutes"
        );
        assert_eq!(
            normalize("set a timer for 25 minutes."),
            "set a timer for 25 minutes"
        );
        assert_eq!(normalize("Volume to 2.5 please"), "volume to 2.5");
        assert_eq!(normalize("one hundred and five"), "105");
        assert_eq!(normalize("It is 1,000 steps"), "it is 1000 steps");
        assert_eq!(normalize("a dozen eggs"), "12 eggs");
        assert_eq!(normalize("minus five degrees"), "-5 degrees");
        assert_eq!(normalize("-5 degrees"), "-5 degrees");
        assert_eq!(normalize("50% battery"), "50 percent battery");
    }

    #[test]
    fn number_tokens_remember_their_words() {
        let tokens = words("in twenty five minutes");
        assert_eq!(tokens[1].text, "25");
        assert_eq!(tokens[1].surface, "twenty five");
        assert_eq!(tokens[1].number, Some(25.0));
    }

    #[test]
    fn abbreviations_join() {
        assert_eq!(texts("at 5 p.m."), ["at", "5", "pm"]);
        assert_eq!(texts("e.g. this"), ["eg", "this"]);
        assert_eq!(texts("end.Next"), ["end", "next"]);
    }

    #[test]
    fn filler_and_prefix_are_dropped() {
        assert_eq!(
            normalize("Um, what time is it, uh, please?"),
            "what time is it"
        );
        assert_eq!(normalize("Hey Atlas, what time is it?"), "what time is it");
        assert_eq!(normalize("Okay so what time is it"), "what time is it");
        assert_eq!(normalize("What time is it, thanks."), "what time is it");
        // Greetings and the ways a request is wrapped go too.
        assert_eq!(
            normalize("Good morning Atlas, could you tell me what time it is?"),
            "what time it is"
        );
        assert_eq!(
            normalize("I want you to go ahead and set a timer"),
            "set a timer"
        );
        assert_eq!(normalize("Can I get the weather?"), "the weather");
        assert_eq!(normalize("I'd like to hear some jazz"), "hear some jazz");
        assert_eq!(normalize("Let's play some music"), "play some music");
        // A transcript made only of prefix words keeps them.
        assert_eq!(normalize("Okay."), "okay");
        assert_eq!(normalize("Good morning, Atlas."), "good morning atlas");
        assert_eq!(normalize("Thank you."), "thank you");
    }

    #[test]
    fn normalizing_twice_changes_nothing() {
        for text in [
            "Hey Atlas, what's the weather like in twenty-five minutes?",
            "Set a timer for 2.5 hours, uh, please!",
            "I won't call Mom's phone at 5 p.m.",
            "one hundred and five",
        ] {
            let once = normalize(text);
            assert_eq!(normalize(&once), once, "{text}");
        }
    }

    #[test]
    fn custom_lists_apply() {
        let norm = Normalizer::new(&["like".to_string()], &["Hey, Jarvis!".to_string()], &[]);
        let n = norm.transcript("hey jarvis what is it like");
        assert_eq!(n.lead, 2);
        assert_eq!(n.core_text(), "what is it");
    }
}
