//! Voice-trigger matching: which workflow a transcript asks for, and the values it names.
//!
//! A workflow's `voice` trigger lists phrase templates (see [`parse_template`] for the syntax).
//! After speech-to-text, [`Matcher::match_text`] normalises the transcript ([`normalize`]),
//! aligns it fuzzily against every template, and accepts the best one only when it is both good
//! enough and clearly better than any other workflow's; the [`MatchOutcome`] explains the choice.
//! Around the matcher: [`Matcher::initial_prompt`] biases whisper towards the user's phrases, and
//! [`content_words`] gives `stt`'s silence check the words the matcher would see. Whisper's own
//! artefacts (annotations, loops, silence phrases) are `stt`'s business, removed before a
//! transcript gets here.
//!
//! Scoring, in order:
//! - **Words**: a heard word costs 0 against the same template word and up to 1 (as bad as a
//!   missing word) against another, by the better of spelling similarity and sound similarity
//!   (phonetic keys, `phonetic`); only words of two consonant sounds or more that are not
//!   function words are compared by sound, and sounding the same scores below being the same.
//!   Words that differ only by a contrasting prefix ("lock" / "unlock", "increase" /
//!   "decrease") are unrelated. Function words and fillers weigh half.
//! - **Templates**: the cheapest alignment gives `1 - cost / units` (see `align`). Free text
//!   costs nothing but never begins with a filler, a copula or a question opening ("what is"),
//!   nor with the template word right before it, and among equal costs the parse with the
//!   fewest free-text words wins.
//! - **Questions**: a transcript that asks a question (an interrogative first word after the
//!   wake/polite prefix, or a question mark no polite wrapper such as "can you ...?" or
//!   "please" explains) can only match templates that ask one.
//! - **Decision**: the best workflow needs [`MatchOptions::threshold`] and a lead of
//!   [`MatchOptions::margin`] over every other workflow. Within the margin it still wins over
//!   a rival that only swallows words in free text, and over a rival it beats on the steps
//!   their alignments do not share (`contrast`: the distinguishing words) by
//!   [`MatchOptions::contrast_margin`], its own distinguishing steps scoring at least the
//!   threshold. So "turn on the lights" said exactly wins over "turn off the lights", while a
//!   transcript that leaves out or garbles the word telling them apart stays ambiguous.
//!
//! Invariant: matching is deterministic (ties break by configuration order) and pure: no I/O, no
//! clock, no randomness. Boundary: this module knows nothing of audio, whisper or workflows beyond
//! their ids and phrases.

mod align;
mod contrast;
mod grammar;
mod graph;
mod matcher;
mod normalize;
mod numbers;
mod phonetic;
mod prompt;
mod questions;
mod similarity;
mod template;
mod unordered;

pub use matcher::{Candidate, Match, MatchOptions, MatchOutcome, Matcher, VoiceEntry};
pub use normalize::{
    DEFAULT_PREFIXES, DEFAULT_SKIP_WORDS, DEFAULT_SUFFIXES, content_words, normalize,
};
pub use numbers::parse_number;
pub use similarity::{reading_similarity, swaps_an_opposite};
pub use template::{IntentError, Node, SlotKind, Template, TemplateError, parse_template};

#[cfg(test)]
mod matcher_classes_tests;
#[cfg(test)]
mod matcher_props_tests;
#[cfg(test)]
mod matcher_tests;
