//! The phrases' decoding grammar as `stt` reads it: it parses, takes whisper's raw text of the
//! phrases (case, punctuation, wake words, spoken or written numbers) and nothing else.

use crate::intent::{MatchOptions, Matcher, VoiceEntry};
use crate::stt::Grammar;

fn grammar(phrases: &[(&str, &[&str])]) -> Grammar {
    let entries: Vec<VoiceEntry> = phrases
        .iter()
        .map(|(id, p)| VoiceEntry {
            workflow_id: id.to_string(),
            phrases: p.iter().map(|s| s.to_string()).collect(),
        })
        .collect();
    let text = Matcher::new(&entries, MatchOptions::default())
        .unwrap()
        .decoding_grammar()
        .unwrap();
    Grammar::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn the_grammar_takes_whispers_text_of_the_phrases_and_nothing_else() {
    let g = grammar(&[
        ("lights", &["turn (on|off) the {room:kitchen|living room} lights"]),
        ("timer", &["set a timer for {minutes:number} minutes"]),
        ("remind", &["remind me to {task}"]),
        ("weather", &["what's [the] weather [like] [today]"]),
        ("coin", &["what is the price of {coin:solana|chainlink}"]),
    ]);
    for heard in [
        " Turn on the kitchen lights.",
        " turn off the Living Room lights",
        " Hey Atlas, turn on the kitchen lights, please.",
        " Can you turn off the kitchen lights?",
        " Set a timer for 10 minutes.",
        " Set a timer for twenty-five minutes.",
        " Set a timer for 2.5 minutes!",
        " Remind me to buy milk and eggs.",
        " What's the weather like today?",
        " What is the weather?",
        " What is the price of Solana?",
        " Um, what is the price of chainlink? Thanks.",
    ] {
        assert!(g.accepts(heard), "{heard:?} should be in the grammar");
    }
    for heard in [
        " Turn on the bedroom lights.",
        " What is the price of bitcoin?",
        " Set a timer for minutes.",
        " Remind me to.",
        " I love the weather.",
        " Thank you.",
        "",
    ] {
        assert!(!g.accepts(heard), "{heard:?} should not be in the grammar");
    }
}
