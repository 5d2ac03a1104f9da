//! What asks and what fills: telling a question from a request, and which words may begin the
//! value of a free-text slot.
//!
//! A transcript asks a question when its words after the wake/polite prefix open with an
//! interrogative ("is the lamp on", "which lights are on", "how do I..."), or when it has a
//! question mark that no polite wrapper explains ("can you ...?", "..., will you?", "please").
//! Free text never begins with a filler ("like", "okay"), a copula ("is") or a question opening
//! ("what is", "where are").

use super::normalize::{Token, words};

/// Words that open a question ("is the lamp on", "which lights are on", "can it rain").
/// Polite wrappers ("can you", "could you") are prefixes and skipped before this is asked.
const QUESTION_OPENERS: &[&str] = &[
    "is", "are", "am", "was", "were", "which", "what", "who", "whom", "whose", "when", "where",
    "why", "how", "do", "does", "did", "can", "could", "should", "would", "will", "shall", "may",
    "might", "must", "has", "have", "had", "isnt",
];

/// Words that ask (the "wh" words); with an auxiliary after them they open a question.
const WH_WORDS: &[&str] = &[
    "what", "which", "who", "whom", "whose", "when", "where", "why", "how",
];

/// Auxiliaries and copulas: "is", "do", "can"... After a wh word they make a question, and a
/// copula never begins a name or a task.
const AUXILIARIES: &[&str] = &[
    "is", "are", "am", "was", "were", "do", "does", "did", "can", "could", "should", "would",
    "will", "shall", "has", "have", "had",
];

/// Discourse fillers that are not skip words (they can be real words elsewhere) but never begin
/// the value of a free-text slot.
const FILLERS: &[&str] = &[
    "like",
    "well",
    "oh",
    "okay",
    "yeah",
    "actually",
    "basically",
    "literally",
];

/// True when a sentence opening with `word` (then `next`) asks a question: an interrogative or
/// auxiliary word first ("is the lamp on", "which lights are on", "how do I..."), except the
/// negative imperative "do not ...".
pub(crate) fn opens_question(word: &str, next: Option<&str>) -> bool {
    QUESTION_OPENERS.contains(&word) && !(matches!(word, "do" | "does") && next == Some("not"))
}

/// True for a discourse filler ("like", "well", "okay"): weighed half when left unexplained.
pub(crate) fn is_filler(word: &str) -> bool {
    FILLERS.contains(&word)
}

/// True when a free-text slot may begin with `word` (followed by `next`): not with a filler, not
/// with a copula ("is", "are"), and not with a question opening ("what is", "where do").
pub(crate) fn opens_free_text(word: &str, next: Option<&str>) -> bool {
    let copula = matches!(word, "is" | "are" | "am" | "was" | "were");
    let question = WH_WORDS.contains(&word) && next.is_some_and(|n| AUXILIARIES.contains(&n));
    !(copula || question || FILLERS.contains(&word))
}

/// See [`Normalized::question`].
pub(crate) fn is_question(text: &str, tokens: &[Token], lead: usize, trail: usize) -> bool {
    let start = if lead + trail < tokens.len() { lead } else { 0 };
    let Some(first) = tokens.get(start) else {
        return false;
    };
    let next = tokens.get(start + 1).map(|t| t.text.as_str());
    if opens_question(&first.text, next) {
        return true;
    }
    if !text.contains('?') {
        return false;
    }
    let wrapped = tokens[..start]
        .iter()
        .chain(&tokens[tokens.len() - trail..])
        .any(|t| QUESTION_OPENERS.contains(&t.text.as_str()));
    // "please" is a skip word, so it is looked for in the raw words.
    !wrapped && !words(text).iter().any(|t| t.text == "please")
}

/// Subject pronouns: a sentence that opens with one tells ("I turned the volume up yesterday",
/// "we set the thermostat to 20") unless it is a phrase of the user's own ("I'm home").
const SUBJECT_PRONOUNS: &[&str] = &["i", "we", "they", "he", "she"];

/// True when a sentence opening with `word` is a statement about its subject.
pub(crate) fn opens_statement(word: &str) -> bool {
    SUBJECT_PRONOUNS.contains(&word)
}

/// True when a template asks a question: a question mark in it, or a first word that opens one
/// (or "any": "any review requests" is "are there any review requests?" cut short).
pub(crate) fn is_question_phrase(source: &str, first_words: &[&str]) -> bool {
    source.contains('?')
        || first_words
            .iter()
            .any(|w| opens_question(w, None) || *w == "any")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_are_told_from_requests() {
        let norm = super::super::normalize::Normalizer::default();
        for asked in [
            "Is the lamp on?",
            "which lights are on",
            "How do I turn on the lights",
            "lights on?",
            "Hey Atlas, are the lights on?",
        ] {
            assert!(norm.transcript(asked).question, "{asked}");
        }
        for request in [
            "Turn on the lights.",
            "Can you turn on the lights?",
            "Could you please turn on the lights?",
            "turn on the lights, will you?",
            "Please turn on the lights?",
            "Do not disturb",
        ] {
            assert!(!norm.transcript(request).question, "{request}");
        }
    }

    #[test]
    fn free_text_does_not_open_with_a_filler_or_a_question() {
        for (word, next) in [("like", Some("jazz")), ("is", None), ("what", Some("is"))] {
            assert!(!opens_free_text(word, next), "{word} {next:?}");
        }
        for (word, next) in [
            ("what", Some("a")),
            ("call", Some("mom")),
            ("the", Some("news")),
        ] {
            assert!(opens_free_text(word, next), "{word} {next:?}");
        }
    }
}
