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

/// Joins one sentence per template in at most `max_chars`: first one sentence for every
/// workflow (its first template whose sentence is complete, else its first), then each one's
/// next templates in turn while they fit. When not every workflow's first sentence fits,
/// complete sentences go before fragments and short before long, so as many workflows as possible are in the prompt and none is left
/// out only for coming late in the list (they keep the list's order in the text). Duplicates
/// (compared normalised) are skipped.
pub(crate) fn build_prompt(per_workflow: &[Vec<&Template>], max_chars: usize) -> String {
    let sentences: Vec<Vec<(String, bool)>> = per_workflow
        .iter()
        .map(|ts| {
            ts.iter()
                .filter_map(|t| sentence_and_completeness(t))
                .collect()
        })
        .collect();
    let mut seen: Vec<String> = Vec::new();
    let mut used = 0usize;
    let fits = |used: usize, s: &str| used + s.chars().count() + usize::from(used > 0) <= max_chars;
    // Round one: a sentence a workflow, the complete one first.
    let mut firsts: Vec<(usize, usize)> = Vec::new();
    for (w, ss) in sentences.iter().enumerate() {
        if let Some(i) = ss
            .iter()
            .position(|(_, complete)| *complete)
            .or((!ss.is_empty()).then_some(0))
        {
            firsts.push((w, i));
        }
    }
    let mut by_length = firsts.clone();
    // Complete sentences before fragments ("Call on slack." once its name is cut), then short
    // before long.
    by_length.sort_by_key(|&(w, i)| (!sentences[w][i].1, sentences[w][i].0.chars().count()));
    let mut chosen: Vec<(usize, usize)> = Vec::new();
    for (w, i) in by_length {
        let text = &sentences[w][i].0;
        let key = normalize(text);
        if seen.contains(&key) || !fits(used, text) {
            continue;
        }
        used += text.chars().count() + usize::from(used > 0);
        seen.push(key);
        chosen.push((w, i));
    }
    chosen.sort_unstable();
    let mut out: Vec<&str> = chosen
        .iter()
        .map(|&(w, i)| sentences[w][i].0.as_str())
        .collect();
    // Then the other sentences, a workflow at a time, while they fit.
    let rounds = sentences.iter().map(Vec::len).max().unwrap_or(0);
    for round in 0..rounds {
        for (w, ss) in sentences.iter().enumerate() {
            let Some((text, _)) = ss.get(round) else {
                continue;
            };
            let key = normalize(text);
            if chosen.contains(&(w, round)) || seen.contains(&key) || !fits(used, text) {
                continue;
            }
            used += text.chars().count() + usize::from(used > 0);
            seen.push(key);
            out.push(text);
        }
    }
    out.join(" ")
}

/// A template's sentence, and whether it is complete (no free-text slot was left out of it).
fn sentence_and_completeness(template: &Template) -> Option<(String, bool)> {
    let dropped = collect(&template.root, &mut Vec::new());
    sentence(template).map(|s| (s, !dropped))
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

    #[test]
    fn every_workflow_gets_a_sentence_before_any_gets_two_and_overflow_drops_the_longest() {
        let t = |s: &str| parse_template(s).unwrap();
        let add = [
            t("add {title} at {time} to my calendar"),
            t("schedule a meeting"),
        ];
        let long = [t("read me the whole of my morning briefing please")];
        let weather = [t("what's the weather"), t("weather report")];
        let per: Vec<Vec<&Template>> = vec![
            add.iter().collect(),
            long.iter().collect(),
            weather.iter().collect(),
        ];
        // The complete sentence stands for a workflow before one with its free text cut out.
        assert_eq!(
            build_prompt(&per, 200),
            "Schedule a meeting. Read me the whole of my morning briefing please. What's the weather? Add at to my calendar. Weather report."
        );
        // Short of room, the longest first sentence goes, not the one that comes last.
        assert_eq!(
            build_prompt(&per, 45),
            "Schedule a meeting. What's the weather?"
        );
    }
}
