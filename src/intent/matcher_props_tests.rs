//! Properties of the matcher over the whole fixture: it is deterministic, pruning changes no
//! decision, the upper bound holds, and every phrase matches its own workflow when said plainly
//! or sloppily; plus a throwaway speed check. The fixtures are `matcher_tests.rs`'s.

use super::align::Aligner;
use super::matcher_tests::{assistant, expect};
use super::*;

#[test]
fn matching_is_deterministic() {
    let m = assistant();
    for t in [
        "morning breathing",
        "start the party",
        "set a timer for ten minutes",
        "blah",
    ] {
        assert_eq!(m.match_text(t), m.match_text(t));
        assert_eq!(m.match_text(t), assistant().match_text(t));
    }
}

/// Transcripts for the pruning checks: matches, near misses, noise and off-topic speech.
const VARIED: &[&str] = &[
    "morning breathing",
    "Hey Atlas, what's the weather like today?",
    "set a timer for twenty five minutes",
    "Remind me in 5 minutes to take the pizza out",
    "play the news",
    "call mom on slak",
    "set the volume to medum",
    "turn of the lights",
    "add milk to my todo list",
    "thank you",
    "How tall is Mount Everest?",
    "the the the",
    "lights",
    "turn on the lights in the kitchen please and then play some music",
];

#[test]
fn pruning_changes_no_decision_and_no_listed_score() {
    let m = assistant();
    for t in VARIED {
        let pruned = m.match_text(t);
        let full = m.match_text_exhaustive(t);
        assert_eq!(pruned.best, full.best, "{t}");
        assert_eq!(pruned.reason, full.reason, "{t}");
        // Every listed candidate is exact and in the same order as the exhaustive list.
        let n = pruned.candidates.len();
        assert!(n >= 1, "{t}");
        assert_eq!(pruned.candidates[..], full.candidates[..n], "{t}");
    }
}

#[test]
fn upper_bound_is_never_below_the_score() {
    let m = assistant();
    for t in VARIED {
        let normalized = m.normalizer.transcript(t);
        let mut aligner = Aligner::new(
            &m.vocab,
            &normalized.tokens,
            normalized.lead,
            normalized.trail,
        );
        for compiled in &m.templates {
            let bound = aligner.upper_bound(&compiled.graph);
            let exact = aligner.align(&compiled.graph, false).score;
            assert!(
                bound + 1e-4 >= exact,
                "{t} / {}: {bound} < {exact}",
                compiled.template.source
            );
        }
    }
}

/// Says a template the simplest way: first alternatives, optional parts included, slots filled.
fn say(node: &Node, out: &mut Vec<String>) {
    match node {
        Node::Text(text) => out.push(text.clone()),
        Node::Sequence(parts) => parts.iter().for_each(|p| say(p, out)),
        Node::Choice(branches) => {
            if let Some(first) = branches.first() {
                say(first, out);
            }
        }
        Node::Optional(inner) => say(inner, out),
        Node::Slot { kind, .. } => out.push(match kind {
            SlotKind::Text => "something nice".to_string(),
            SlotKind::Number => "seven".to_string(),
            SlotKind::List(options) => options.first().cloned().unwrap_or_default(),
        }),
    }
}

/// Drops one letter from the middle of the longest word of six letters or more.
fn misspell(sentence: &str) -> Option<String> {
    let longest = sentence
        .split(' ')
        .filter(|w| w.len() >= 6 && w.chars().all(|c| c.is_ascii_alphabetic()))
        .max_by_key(|w| w.len())?;
    let mut broken = longest.to_string();
    broken.remove(longest.len() / 2);
    Some(sentence.replacen(longest, &broken, 1))
}

#[test]
fn every_phrase_matches_its_own_workflow_when_said_plainly_or_sloppily() {
    let m = assistant();
    let mut sloppy_checked = 0;
    for compiled in &m.templates {
        let workflow = &m.workflows[compiled.workflow];
        let mut words = Vec::new();
        say(&compiled.template.root, &mut words);
        let plain = words.join(" ");
        let best = expect(&m, &plain, workflow);
        assert_eq!(best.score, 1.0, "{plain}");
        expect(&m, &format!("Um, {}!", plain.to_uppercase()), workflow);
        expect(&m, &format!("hey atlas {plain} please"), workflow);
        if let Some(sloppy) = misspell(&plain) {
            expect(&m, &sloppy, workflow);
            sloppy_checked += 1;
        }
    }
    // Phrases without a long word have no misspelling; most do (not a vacuous loop).
    assert!(m.templates.len() >= 20, "{} templates", m.templates.len());
    assert!(
        sloppy_checked * 2 >= m.templates.len(),
        "only {sloppy_checked} of {} phrases were said sloppily",
        m.templates.len()
    );
}

/// Times `match_text` over a few transcripts and prints the mean.
fn time_matches(label: &str, m: &Matcher, transcripts: &[&str]) {
    let runs = 300;
    for t in transcripts {
        let start = std::time::Instant::now();
        for _ in 0..runs {
            std::hint::black_box(m.match_text(t));
        }
        println!("{label} {t:?}: {:?} per match", start.elapsed() / runs);
    }
}

/// Throwaway speed check, 50 workflows x 5 templates:
/// `cargo test --release --lib -- --ignored --nocapture speed`. Figures are in the report; the
/// "shared" set, where every workflow uses the same words, is the worst case for pruning.
#[test]
#[ignore]
fn speed_of_fifty_workflows() {
    let topics = [
        "lights", "music", "timer", "weather", "news", "calendar", "email", "notes", "volume",
        "door",
    ];
    let shared: Vec<VoiceEntry> = (0..50)
        .map(|i| {
            let t = topics[i % topics.len()];
            VoiceEntry {
                workflow_id: format!("wf{i}"),
                phrases: vec![
                    format!("(open|show) [the] {t} number {i}"),
                    format!("turn (on|off) the {t} in room {i}"),
                    format!("set {t} {i} to {{level:low|medium|high}}"),
                    format!("what's the {t} [like] [today] for {{who}}"),
                    format!("remind me about {t} in {{minutes:number}} minutes"),
                ],
            }
        })
        .collect();
    let m = Matcher::new(&shared, MatchOptions::default()).unwrap_or_else(|e| panic!("{e:?}"));
    let probes = [
        "Turn on the lights in room twelve.",
        "what's the weather like today for mom",
        "morning breathing",
    ];
    time_matches("shared", &m, &probes);
    let words = [
        "garden",
        "kettle",
        "printer",
        "window",
        "garage",
        "laptop",
        "backup",
        "invoice",
        "podcast",
        "recipe",
        "grocery",
        "workout",
        "meeting",
        "traffic",
        "battery",
        "coffee",
        "shower",
        "heater",
        "camera",
        "doorbell",
        "vacuum",
        "sprinkler",
        "alarm",
        "journal",
        "budget",
        "flight",
        "package",
        "stocks",
        "commute",
        "playlist",
        "audiobook",
        "translate",
        "weather",
        "briefing",
        "lights",
        "timer",
        "music",
        "news",
        "calendar",
        "email",
        "notes",
        "volume",
    ];
    let verbs = [
        "start", "stop", "check", "open", "show", "read", "clean", "record", "book", "find",
    ];
    let realistic: Vec<VoiceEntry> = (0..50)
        .map(|i| {
            let w = |k: usize| words[(i * 7 + k * 13) % words.len()];
            let v = |k: usize| verbs[(i * 3 + k) % verbs.len()];
            VoiceEntry {
                workflow_id: format!("wf{i}"),
                phrases: vec![
                    format!("{} [the] {}", v(0), w(0)),
                    format!("({}|{}) my {} {}", v(1), v(2), w(1), w(2)),
                    format!("{} {} for {{minutes:number}} minutes", v(3), w(3)),
                    format!("what's [the] {} [like] [today]", w(4)),
                    format!("{} {} to {{level:low|medium|high}}", v(4), w(0)),
                ],
            }
        })
        .collect();
    let m = Matcher::new(&realistic, MatchOptions::default()).unwrap_or_else(|e| panic!("{e:?}"));
    time_matches(
        "distinct",
        &m,
        &[
            "open the garden",
            "check my kettle printer please",
            "what's the flight like today",
            "hey atlas record the budget for ten minutes",
            "how tall is mount everest",
        ],
    );
}
