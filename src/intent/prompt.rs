//! Whisper's initial prompt built from the user's voice phrases.
//!
//! Whisper conditions its decoding on the prompt, so feeding it the phrases a user is likely to
//! say nudges it towards their vocabulary ("briefing" rather than "breathing"). Phrased as short
//! sentences this helps; a comma-separated list tends to make whisper repeat itself instead.

use super::normalize::normalize;
use super::template::{Node, SlotKind, Template};

/// Words that make a sentence a question.
const QUESTION_WORDS: &[&str] = &[
    "what", "what's", "whats", "when", "where", "who", "which", "why", "how", "is", "are", "am",
    "was", "were", "do", "does", "did", "can", "could", "will", "would", "should", "shall",
];

/// One sentence for a template: first alternatives, optional parts included, numbers as "5",
/// list slots as their first option, free-text slots dropped. `None` if nothing is
/// left, or only one word once a free-text slot was dropped ("Play.").
pub(crate) fn sentence(template: &Template) -> Option<String> {
    let mut words = Vec::new();
    let dropped = collect(&template.root, &mut words);
    // "Play." says little once its song is dropped; a one-word template stays ("Hello.").
    if dropped && words.len() < 2 {
        return None;
    }
    let text = words.join(" ");
    let text = text.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'' && c != '?');
    let first_word = text.split_whitespace().next()?.to_lowercase();
    let mut chars = text.chars();
    let first = chars.next()?;
    let mut out: String = first.to_uppercase().chain(chars).collect();
    if out.ends_with(|c: char| c.is_alphanumeric()) {
        out.push(if QUESTION_WORDS.contains(&first_word.as_str()) {
            '?'
        } else {
            '.'
        });
    }
    Some(out)
}

/// Appends the words of `node` to `out`; returns true if a free-text slot was left out.
fn collect(node: &Node, out: &mut Vec<String>) -> bool {
    match node {
        Node::Text(text) => {
            out.extend(text.split_whitespace().map(str::to_string));
            false
        }
        Node::Sequence(parts) => parts
            .iter()
            .fold(false, |dropped, p| collect(p, out) | dropped),
        Node::Choice(branches) => {
            for branch in branches {
                let mut first = Vec::new();
                let dropped = collect(branch, &mut first);
                if !first.is_empty() {
                    out.extend(first);
                    return dropped;
                }
            }
            false
        }
        Node::Optional(inner) => collect(inner, out),
        Node::Slot { kind, .. } => match kind {
            SlotKind::Text => true,
            SlotKind::Number => {
                out.push("5".to_string());
                false
            }
            SlotKind::List(options) => {
                out.extend(options.first().cloned());
                false
            }
        },
    }
}

/// Joins one sentence per template, taking each workflow's first template, then each one's
/// second, and so on; skips duplicates (compared normalised) and sentences that would not fit
/// in `max_chars`.
pub(crate) fn build_prompt(per_workflow: &[Vec<&Template>], max_chars: usize) -> String {
    let mut out = String::new();
    let mut seen: Vec<String> = Vec::new();
    let rounds = per_workflow.iter().map(Vec::len).max().unwrap_or(0);
    for round in 0..rounds {
        for templates in per_workflow {
            let Some(sentence) = templates.get(round).and_then(|t| sentence(t)) else {
                continue;
            };
            let key = normalize(&sentence);
            if seen.contains(&key) {
                continue;
            }
            let extra = sentence.chars().count() + usize::from(!out.is_empty());
            if out.chars().count() + extra > max_chars {
                continue;
            }
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&sentence);
            seen.push(key);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::template::parse_template;

    fn sentence_of(s: &str) -> String {
        sentence(&parse_template(s).unwrap()).unwrap_or_default()
    }

    #[test]
    fn sentences_from_templates() {
        assert_eq!(sentence_of("morning briefing"), "Morning briefing.");
        assert_eq!(
            sentence_of("what's [the] weather [like] [today]"),
            "What's the weather like today?"
        );
        assert_eq!(sentence_of("(play|put on) {song}"), "");
        assert_eq!(sentence_of("play {song} by {artist}"), "Play by.");
        assert_eq!(sentence_of("hello"), "Hello.");
        assert_eq!(
            sentence_of("remind me in {m:number} minutes to {task}"),
            "Remind me in 5 minutes to."
        );
        assert_eq!(
            sentence_of("set volume to {level:low|high}"),
            "Set volume to low."
        );
        assert_eq!(sentence_of("(|please) stop"), "Please stop.");
        assert_eq!(sentence_of("is it raining?"), "Is it raining?");
    }

    #[test]
    fn prompt_is_capped_deduplicated_and_fair() {
        let a = [
            parse_template("morning briefing").unwrap(),
            parse_template("read my briefing").unwrap(),
        ];
        let b = [
            parse_template("what's the weather").unwrap(),
            parse_template("what is the weather").unwrap(),
        ];
        let per: Vec<Vec<&Template>> = vec![a.iter().collect(), b.iter().collect()];
        let prompt = build_prompt(&per, 200);
        assert_eq!(
            prompt,
            "Morning briefing. What's the weather? Read my briefing."
        );
        let short = build_prompt(&per, 40);
        assert!(short.chars().count() <= 40, "{short}");
        assert_eq!(short, "Morning briefing. What's the weather?");
    }
}
