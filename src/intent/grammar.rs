//! The user's phrases as a decoding grammar: the sentences whisper may be guided towards.
//!
//! The grammar is GBNF text (the subset `stt::Grammar` reads) over whisper's raw output, which
//! looks like `" Turn on the kitchen lights."`: every word is preceded by a space (and may follow
//! a comma), letters match in either case, and the sentence may end in `.`, `!` or `?`. Around
//! any template it allows the matcher's skippable prefixes ("hey atlas", "can you") and suffixes
//! ("thanks"), and its filler words. Within a template:
//! - a word may also be said as the normaliser would expand it ("what's" or "what is", "ten" or
//!   "10"); a filler word is optional;
//! - a number slot is digits (`10`, `2.5`, `7:30`, `50%`) or number words (`twenty-five`);
//! - a list slot is one of its options;
//! - a free-text slot is any run of words without a sentence end, so a command with free text
//!   constrains only its fixed words.
//!
//! Boundary: this is text for `stt`; the module still knows nothing of whisper.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::matcher::Matcher;
use super::normalize::normalize;
use super::template::{Node, SlotKind};

/// Number words whisper may write out instead of digits.
const NUMBER_WORDS: &[&str] = &[
    "zero",
    "oh",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
    "thirty",
    "forty",
    "fifty",
    "sixty",
    "seventy",
    "eighty",
    "ninety",
    "hundred",
    "thousand",
    "million",
    "half",
    "a",
    "and",
    "point",
];

/// Shared rules: a word separator, the sentence end, numbers and free text.
const COMMON_RULES: &str = r#"s ::= [,;:]? " "
end ::= [.!?]*
digits ::= [0-9]+ ([.:,] [0-9]+)* "%"?
free ::= (s [^ .?!]+)+
"#;

impl Matcher {
    /// The GBNF grammar of every sentence the templates accept as written (see the module docs),
    /// or `None` without templates. Rule `root` is the start.
    pub fn decoding_grammar(&self) -> Option<String> {
        if self.templates.is_empty() {
            return None;
        }
        let mut out = String::from(COMMON_RULES);
        let mut numbers = String::new();
        for (i, word) in NUMBER_WORDS.iter().enumerate() {
            if i > 0 {
                numbers.push_str(" | ");
            }
            numbers.push_str(&literal(word));
        }
        let _ = writeln!(
            out,
            "numword ::= {numbers}\nnumber ::= s (digits | numword ([- ] numword)*)"
        );
        let mut rule = |name: &str, phrases: &[String]| match around(phrases) {
            Some(body) => {
                let _ = writeln!(out, "{name} ::= {body}");
                format!("{name}* ")
            }
            None => String::new(),
        };
        let lead = rule("lead", &self.options.prefixes);
        let tail = rule("tail", &self.options.suffixes);
        let filler = rule("filler", &self.options.skip_words);
        // Identical templates (one phrase in two workflows) need one rule.
        let bodies: BTreeSet<String> = self
            .templates
            .iter()
            .map(|t| node(&t.template.root))
            .filter(|b| !b.trim().is_empty())
            .collect();
        let mut names = Vec::new();
        for (i, body) in bodies.iter().enumerate() {
            let _ = writeln!(out, "p{i} ::= {body}");
            names.push(format!("p{i}"));
        }
        let _ = writeln!(
            out,
            "root ::= {filler}{lead}{filler}({}) {filler}{tail}end",
            names.join(" | ")
        );
        Some(out)
    }
}

/// Alternatives of `phrases`, each word preceded by a separator, for `lead`, `tail` and `filler`
/// (`None` when the list is empty).
fn around(phrases: &[String]) -> Option<String> {
    let alternatives: BTreeSet<String> = phrases
        .iter()
        .map(|p| words_of(p))
        .filter(|w| !w.is_empty())
        .map(|w| {
            w.iter()
                .map(|word| format!("s {}", literal(word)))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    (!alternatives.is_empty()).then(|| {
        format!(
            "({})",
            alternatives.into_iter().collect::<Vec<_>>().join(" | ")
        )
    })
}

/// The grammar expression of one template node.
fn node(n: &Node) -> String {
    match n {
        Node::Text(text) => words_of(text)
            .iter()
            .map(|w| word(w))
            .collect::<Vec<_>>()
            .join(" "),
        Node::Sequence(parts) => {
            let parts: Vec<String> = parts.iter().map(node).filter(|p| !p.is_empty()).collect();
            if parts.is_empty() {
                String::new()
            } else {
                format!("({})", parts.join(" "))
            }
        }
        Node::Choice(branches) => {
            let mut optional = false;
            let mut alternatives = BTreeSet::new();
            for b in branches {
                let b = node(b);
                if b.is_empty() {
                    optional = true;
                } else {
                    alternatives.insert(b);
                }
            }
            if alternatives.is_empty() {
                return String::new();
            }
            let group = format!(
                "({})",
                alternatives.into_iter().collect::<Vec<_>>().join(" | ")
            );
            if optional { format!("{group}?") } else { group }
        }
        Node::Optional(inner) => {
            let inner = node(inner);
            if inner.is_empty() {
                inner
            } else {
                format!("({inner})?")
            }
        }
        Node::Slot { kind, .. } => match kind {
            SlotKind::Text => "free".to_string(),
            SlotKind::Number => "number".to_string(),
            SlotKind::List(options) => {
                let options: BTreeSet<String> = options
                    .iter()
                    .map(|o| {
                        words_of(o)
                            .iter()
                            .map(|w| word(w))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .filter(|o| !o.is_empty())
                    .collect();
                if options.is_empty() {
                    return "free".to_string();
                }
                format!("({})", options.into_iter().collect::<Vec<_>>().join(" | "))
            }
        },
    }
}

/// One template word: as written, or as the normaliser expands it; optional when it is filler.
fn word(w: &str) -> String {
    let written = format!("s {}", literal(w));
    let expanded = normalize(w);
    if expanded.is_empty() {
        return format!("({written})?");
    }
    let expanded: Vec<&str> = expanded.split(' ').collect();
    if expanded == [w.to_lowercase().as_str()] {
        return written;
    }
    let other = expanded
        .iter()
        .map(|e| format!("s {}", literal(e)))
        .collect::<Vec<_>>()
        .join(" ");
    format!("({written} | {other})")
}

/// The words of template text as whisper would write them: split on spaces, without the
/// punctuation around them (apostrophes and hyphens inside a word stay).
fn words_of(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .replace('\u{2019}', "'")
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// A case-insensitive GBNF literal: each ASCII letter as a class of its two cases, every other
/// character quoted.
fn literal(word: &str) -> String {
    let mut parts = Vec::new();
    let mut quoted = String::new();
    let flush = |quoted: &mut String, parts: &mut Vec<String>| {
        if !quoted.is_empty() {
            parts.push(format!("\"{}\"", std::mem::take(quoted)));
        }
    };
    for c in word.chars() {
        if c.is_ascii_alphabetic() {
            flush(&mut quoted, &mut parts);
            parts.push(format!(
                "[{}{}]",
                c.to_ascii_lowercase(),
                c.to_ascii_uppercase()
            ));
        } else {
            match c {
                '"' => quoted.push_str("\\\""),
                '\\' => quoted.push_str("\\\\"),
                c => quoted.push(c),
            }
        }
    }
    flush(&mut quoted, &mut parts);
    if parts.len() == 1 {
        parts.pop().unwrap_or_default()
    } else {
        format!("({})", parts.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::{MatchOptions, VoiceEntry};

    fn matcher(phrases: &[(&str, &[&str])]) -> Matcher {
        let entries: Vec<VoiceEntry> = phrases
            .iter()
            .map(|(id, p)| VoiceEntry {
                workflow_id: id.to_string(),
                phrases: p.iter().map(|s| s.to_string()).collect(),
            })
            .collect();
        Matcher::new(&entries, MatchOptions::default()).unwrap()
    }

    #[test]
    fn literals_fold_case_and_quote_the_rest() {
        assert_eq!(literal("on"), "([oO] [nN])");
        assert_eq!(literal("a"), "[aA]");
        assert_eq!(literal("what's"), "([wW] [hH] [aA] [tT] \"'\" [sS])");
        assert_eq!(literal("10"), "\"10\"");
    }

    #[test]
    fn words_have_their_expanded_forms_and_fillers_are_optional() {
        assert!(word("what's").contains("[iI] [sS]"), "{}", word("what's"));
        assert!(word("please").ends_with(")?"), "{}", word("please"));
        assert_eq!(word("lights"), format!("s {}", literal("lights")));
        assert!(word("ten").contains("\"10\""), "{}", word("ten"));
    }

    #[test]
    fn the_grammar_has_a_root_and_one_rule_per_distinct_template() {
        let m = matcher(&[
            ("on", &["turn on the {room:kitchen|living room} lights"]),
            ("off", &["turn off the {room:kitchen|living room} lights"]),
            ("timer", &["set a timer for {n:number} minutes", "remind me to {task}"]),
            ("dup", &["turn on the {room:kitchen|living room} lights"]),
        ]);
        let g = m.decoding_grammar().unwrap();
        assert!(g.contains("\nroot ::= "), "{g}");
        assert_eq!(g.matches("\np").count(), 4, "{g}");
        assert!(g.contains("free"), "{g}");
        assert!(g.contains("number"), "{g}");
    }
}
