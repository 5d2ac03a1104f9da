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
//! Invariant: matching is deterministic (ties break by configuration order) and pure: no I/O, no
//! clock, no randomness. Boundary: this module knows nothing of audio, whisper or workflows beyond
//! their ids and phrases.

mod align;
mod contrast;
mod graph;
mod matcher;
mod normalize;
mod numbers;
mod phonetic;
mod prompt;
mod similarity;
mod template;

pub use matcher::{Candidate, Match, MatchOptions, MatchOutcome, Matcher, VoiceEntry};
pub use normalize::{
    DEFAULT_PREFIXES, DEFAULT_SKIP_WORDS, DEFAULT_SUFFIXES, content_words, normalize,
};
pub use numbers::parse_number;
pub use template::{IntentError, Node, SlotKind, Template, TemplateError, parse_template};

#[cfg(test)]
mod matcher_classes_tests;
#[cfg(test)]
mod matcher_props_tests;
#[cfg(test)]
mod matcher_tests;
