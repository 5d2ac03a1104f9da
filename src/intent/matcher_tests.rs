//! Tests of the whole matcher on realistic, speech-to-text-like transcripts: what matches, what
//! does not, and why. Properties over every phrase and transcript (determinism, pruning, bounds)
//! and the speed check are in `matcher_props_tests.rs`, which shares this file's fixtures.

use serde_json::json;

use super::*;

pub(super) fn entry(id: &str, phrases: &[&str]) -> VoiceEntry {
    VoiceEntry {
        workflow_id: id.to_string(),
        phrases: phrases.iter().map(|p| p.to_string()).collect(),
    }
}

/// A matcher of these entries with the default options.
pub(super) fn matcher(entries: &[VoiceEntry]) -> Matcher {
    Matcher::new(entries, MatchOptions::default()).unwrap_or_else(|e| panic!("{e:?}"))
}

pub(super) fn assistant() -> Matcher {
    let entries = [
        entry("hello", &["hello", "say hello"]),
        entry(
            "weather",
            &["what's [the] weather [like] [today]", "weather forecast"],
        ),
        entry(
            "morning_briefing",
            &["morning briefing", "(read|give) me my [morning] briefing"],
        ),
        entry(
            "timer",
            &[
                "set a timer for {minutes:number} minutes",
                "(start|set) a {minutes:number} minute timer",
            ],
        ),
        entry(
            "reminder",
            &[
                "remind me in {minutes:number} minutes to {task}",
                "remind me to {task}",
            ],
        ),
        entry("music", &["(play|put on) {song}"]),
        entry("news", &["play the news", "what's in the news [today]"]),
        entry("volume", &["set [the] volume to {level:low|medium|high}"]),
        entry("lights_on", &["turn on the lights", "lights on"]),
        entry("lights_off", &["turn off the lights", "lights off"]),
        entry("time", &["what time is it", "what's the time"]),
        entry("call", &["call {name}"]),
        entry("slack_call", &["call {name} on slack"]),
        entry("todo", &["add {item} to my to do list"]),
        entry(
            "thermostat",
            &["set the temperature to {degrees:number} degrees"],
        ),
        entry(
            "room_lights",
            &["turn on the lights in the {room:living room|kitchen|bedroom}"],
        ),
    ];
    match Matcher::new(&entries, MatchOptions::default()) {
        Ok(m) => m,
        Err(errors) => panic!("fixture templates are valid: {errors:?}"),
    }
}

/// Asserts that `transcript` matches `workflow` and returns the match.
pub(super) fn expect(m: &Matcher, transcript: &str, workflow: &str) -> Match {
    let outcome = m.match_text(transcript);
    match outcome.best {
        Some(best) if best.workflow_id == workflow => best,
        _ => panic!(
            "{transcript:?} should match {workflow}\n{}",
            outcome.explain()
        ),
    }
}

fn expect_none(m: &Matcher, transcript: &str) -> String {
    let outcome = m.match_text(transcript);
    assert!(
        outcome.best.is_none(),
        "{transcript:?} should not match\n{}",
        outcome.explain()
    );
    outcome.reason.unwrap_or_default()
}

#[test]
fn exact_phrases_score_one() {
    let m = assistant();
    let best = expect(&m, "Morning briefing.", "morning_briefing");
    assert_eq!(best.score, 1.0);
    assert!(best.slots.is_empty());
    assert_eq!(expect(&m, "hello", "hello").score, 1.0);
}

#[test]
fn punctuation_case_and_contractions_do_not_matter() {
    let m = assistant();
    for t in [
        "What's the weather like today?",
        "WHAT IS THE WEATHER LIKE TODAY",
        "what\u{2019}s the weather like, today",
    ] {
        assert_eq!(expect(&m, t, "weather").score, 1.0, "{t}");
    }
    assert_eq!(expect(&m, "What's the time?", "time").score, 1.0);
}

#[test]
fn optional_words_may_be_missing() {
    let m = assistant();
    assert_eq!(expect(&m, "What's the weather?", "weather").score, 1.0);
    assert_eq!(expect(&m, "what is weather today", "weather").score, 1.0);
    assert_eq!(
        expect(&m, "give me my briefing", "morning_briefing").score,
        1.0
    );
}

#[test]
fn misheard_word_still_matches_with_lower_score() {
    let m = assistant();
    let best = expect(&m, "Morning breathing.", "morning_briefing");
    assert!(best.score < 1.0 && best.score >= 0.75, "{}", best.score);
    expect(&m, "Read me my morning breathing", "morning_briefing");
    expect(&m, "What's the whether like today?", "weather");
    // "of" for "off" is a near miss of "off" and far from "on".
    expect(&m, "Turn of the lights.", "lights_off");
    expect(&m, "Turn on the light.", "lights_on");
    expect(&m, "Set the timer for ten minutes", "timer");
    let best = expect(&m, "set a timer for 5 min", "timer");
    assert_eq!(best.slots["minutes"], json!(5));
}

#[test]
fn filler_words_and_wake_prefix_are_ignored() {
    let m = assistant();
    assert_eq!(expect(&m, "Um, what time is it, uh?", "time").score, 1.0);
    assert_eq!(expect(&m, "Hey Atlas, what time is it?", "time").score, 1.0);
    assert_eq!(
        expect(&m, "Okay so, what time is it please, thanks", "time").score,
        1.0
    );
    let outcome = m.match_text("Hey Atlas, um, morning briefing please");
    assert_eq!(outcome.normalized, "morning briefing");
    // Padding at the edges costs less than words in the middle.
    expect(&m, "Good morning, briefing please", "morning_briefing");
    expect(&m, "hello there", "hello");
    expect(&m, "What's the weather like in London today?", "weather");
    // Greetings and polite wrappers around a request cost nothing.
    assert_eq!(
        expect(
            &m,
            "Good morning Atlas, could you read me my briefing?",
            "morning_briefing"
        )
        .score,
        1.0
    );
    expect(
        &m,
        "Can you tell me what's the weather like today",
        "weather",
    );
    expect(&m, "I want you to set a timer for ten minutes", "timer");
}

#[test]
fn number_slots_take_words_or_digits() {
    let m = assistant();
    for (t, n) in [
        ("Set a timer for twenty five minutes.", 25),
        ("set a timer for 25 minutes", 25),
        ("Set a timer for twenty-five minutes", 25),
        ("Start a ten minute timer", 10),
        ("set a 10 minute timer please", 10),
        ("Set a timer for one hundred and five minutes", 105),
    ] {
        let best = expect(&m, t, "timer");
        assert_eq!(best.slots["minutes"], json!(n), "{t}");
        assert!(best.slots["minutes"].is_i64(), "{t}");
    }
    let best = expect(
        &m,
        "Remind me in two point five minutes to take the pizza out.",
        "reminder",
    );
    assert_eq!(best.slots["minutes"], json!(2.5));
    assert_eq!(best.slots["task"], json!("take the pizza out"));
    let best = expect(
        &m,
        "Set the temperature to minus five degrees",
        "thermostat",
    );
    assert_eq!(best.slots["degrees"], json!(-5));
}

#[test]
fn number_slot_rejects_words_that_are_not_numbers() {
    let m = assistant();
    let t = "set a timer for some minutes";
    expect_none(&m, t);
    // Why: the timer phrase was scored, but "some" did not fill its number slot.
    let outcome = m.match_text(t);
    let timer = outcome
        .candidates
        .iter()
        .find(|c| c.workflow_id == "timer")
        .unwrap_or_else(|| panic!("the timer phrase was not scored\n{}", outcome.explain()));
    assert!(
        !timer.slots.contains_key("minutes"),
        "{}",
        outcome.explain()
    );
    assert!(
        timer.why.contains("slot 'minutes' missing"),
        "{}",
        timer.why
    );
    assert!(timer.score < 1.0);
}

#[test]
fn free_text_slots_keep_heard_words_as_written() {
    let m = assistant();
    let best = expect(&m, "Play Bohemian Rhapsody by Queen.", "music");
    assert_eq!(best.slots["song"], json!("Bohemian Rhapsody by Queen"));
    // Contractions stay as said (the matcher compares their expansion).
    let best = expect(&m, "Put on Don't Stop Me Now", "music");
    assert_eq!(best.slots["song"], json!("Don't Stop Me Now"));
    let best = expect(&m, "Remind me to buy twelve eggs.", "reminder");
    assert_eq!(best.slots["task"], json!("buy twelve eggs"));
    // The courtesy suffix is not part of the slot.
    let best = expect(&m, "remind me to call the bank, thanks", "reminder");
    assert_eq!(best.slots["task"], json!("call the bank"));
}

#[test]
fn specific_phrase_beats_free_text_catch_all() {
    let m = assistant();
    expect(&m, "Play the news.", "news");
    let best = expect(&m, "Call mom on Slack", "slack_call");
    assert_eq!(best.slots["name"], json!("mom"));
    let best = expect(&m, "Call mom", "call");
    assert_eq!(best.slots["name"], json!("mom"));
}

#[test]
fn function_words_weigh_less_than_content_words() {
    let m = assistant();
    // "news" for "weather" is a worse miss than leaving out "in".
    expect(&m, "What's the news today?", "news");
    // "the lights on" is closer to "lights on" than "turn on the lights" is to the word order.
    expect(&m, "Turn the lights on", "lights_on");
}

#[test]
fn list_slots_accept_slight_misspellings() {
    let m = assistant();
    let best = expect(&m, "Set the volume to medum.", "volume");
    assert_eq!(best.slots["level"], json!("medium"));
    let best = expect(&m, "set volume to HIGH", "volume");
    assert_eq!(best.slots["level"], json!("high"));
    let best = expect(&m, "Turn on the lights in the living room", "room_lights");
    assert_eq!(best.slots["room"], json!("living room"));
    let best = expect(&m, "turn on the lights in the bedrom", "room_lights");
    assert_eq!(best.slots["room"], json!("bedroom"));
}

#[test]
fn list_slot_rejects_unrelated_value() {
    let m = assistant();
    let t = "set the volume to banana";
    expect_none(&m, t);
    // Why: the volume phrase was scored, but "banana" is none of its levels.
    let outcome = m.match_text(t);
    let volume = outcome
        .candidates
        .iter()
        .find(|c| c.workflow_id == "volume")
        .unwrap_or_else(|| panic!("the volume phrase was not scored\n{}", outcome.explain()));
    assert!(!volume.slots.contains_key("level"), "{}", outcome.explain());
    assert!(
        volume.why.contains("slot 'level' missing"),
        "{}",
        volume.why
    );
}

#[test]
fn words_run_together_still_match() {
    let m = assistant();
    let best = expect(&m, "Add milk to my todo list", "todo");
    assert_eq!(best.slots["item"], json!("milk"));
    assert!(best.score > 0.9, "{}", best.score);
}

#[test]
fn short_noise_does_not_match_long_templates() {
    let m = assistant();
    for t in [
        "Thank you.",
        "you",
        "the",
        "Thanks for watching!",
        "okay",
        "call",
        "play",
        "yellow",
    ] {
        expect_none(&m, t);
    }
}

#[test]
fn off_topic_sentences_are_rejected() {
    let m = assistant();
    for t in [
        "I think I'll go for a walk in the park later.",
        "How tall is Mount Everest?",
        "My sister is coming over for dinner tomorrow.",
        "The quick brown fox jumps over the lazy dog.",
    ] {
        let reason = expect_none(&m, t);
        assert!(reason.starts_with("below threshold"), "{t}: {reason}");
    }
}

#[test]
fn ambiguous_workflows_are_rejected_with_both_names() {
    let entries = [
        entry("party", &["start the party"]),
        entry("disco", &["start the (party|disco)"]),
    ];
    let m = Matcher::new(&entries, MatchOptions::default()).unwrap_or_else(|e| panic!("{e:?}"));
    let reason = expect_none(&m, "Start the party!");
    assert!(reason.starts_with("ambiguous between"), "{reason}");
    assert!(
        reason.contains("party") && reason.contains("disco"),
        "{reason}"
    );
    // The alternative only one of them has is not ambiguous.
    expect(&m, "start the disco", "disco");
}

#[test]
fn near_pair_within_margin_is_ambiguous() {
    let entries = [
        entry("lamp", &["turn on the lamp"]),
        entry("lamps", &["turn on the lamps"]),
    ];
    let m = Matcher::new(&entries, MatchOptions::default()).unwrap_or_else(|e| panic!("{e:?}"));
    expect_none(&m, "turn on the lamp");
    let loose = MatchOptions {
        margin: 0.02,
        ..Default::default()
    };
    let m = Matcher::new(&entries, loose).unwrap_or_else(|e| panic!("{e:?}"));
    expect(&m, "turn on the lamp", "lamp");
}

#[test]
fn threshold_is_configurable() {
    let entries = [entry("morning_briefing", &["morning briefing"])];
    let strict = MatchOptions {
        threshold: 0.95,
        ..Default::default()
    };
    let m = Matcher::new(&entries, strict).unwrap_or_else(|e| panic!("{e:?}"));
    let reason = expect_none(&m, "morning breathing");
    assert!(
        reason.contains("morning_briefing") && reason.contains("0.95"),
        "{reason}"
    );
}

#[test]
fn skip_words_and_prefixes_are_configurable() {
    let options = MatchOptions {
        skip_words: vec!["like".into()],
        prefixes: vec!["hey jarvis".into()],
        ..Default::default()
    };
    let m = Matcher::new(&[entry("time", &["what time is it"])], options)
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        expect(&m, "Hey Jarvis, like, what time is it", "time").score,
        1.0
    );
}

#[test]
fn candidates_explain_the_choice() {
    let m = assistant();
    let outcome = m.match_text("Morning breathing");
    assert!(outcome.candidates.len() > 1);
    assert!(
        outcome
            .candidates
            .windows(2)
            .all(|w| w[0].score >= w[1].score)
    );
    let top = &outcome.candidates[0];
    assert_eq!(top.workflow_id, "morning_briefing");
    assert!(
        top.why.contains("heard 'breathing' for 'briefing'"),
        "{}",
        top.why
    );
    assert!(outcome.explain().contains("matched: morning_briefing"));
    let exact = m.match_text("what time is it");
    assert_eq!(exact.candidates[0].why, "exact");
    let json = serde_json::to_value(&exact).unwrap_or_default();
    assert_eq!(json["best"]["workflow_id"], json!("time"));
}

#[test]
fn invalid_templates_are_all_reported() {
    let entries = [
        entry("ok", &["fine"]),
        entry("a", &["play (music", "in {m:nmber} minutes"]),
        entry("b", &["please", "um [uh]"]),
    ];
    let errors = Matcher::new(&entries, MatchOptions::default())
        .err()
        .unwrap_or_default();
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert_eq!(errors[0].workflow_id.as_deref(), Some("a"));
    assert_eq!(errors[0].column, 6);
    assert!(errors[1].message.starts_with("unknown slot type 'nmber'"));
    assert!(
        errors[2].message.contains("filler words"),
        "{}",
        errors[2].message
    );
    assert_eq!(errors[3].workflow_id.as_deref(), Some("b"));
}

#[test]
fn empty_transcript_has_a_reason() {
    let m = assistant();
    let reason = expect_none(&m, "Um... uh.");
    assert!(reason.contains("no words"), "{reason}");
}

#[test]
fn looped_transcript_matches_after_cleaning() {
    let m = assistant();
    let cleaned = crate::stt::clean_transcript("What time is it? What time is it? What time");
    assert_eq!(expect(&m, &cleaned, "time").score, 1.0);
}

#[test]
fn initial_prompt_lists_user_phrases() {
    let m = assistant();
    let prompt = m.initial_prompt(200);
    assert!(prompt.chars().count() <= 200, "{prompt}");
    // Complete sentences first: every workflow whose first phrase needs no free text is in.
    for sentence in [
        "Hello.",
        "What's the weather like today?",
        "Morning briefing.",
        "Set a timer for 5 minutes.",
        "What time is it?",
    ] {
        assert!(prompt.contains(sentence), "{sentence}: {prompt}");
    }
    assert!(
        prompt.starts_with("Hello. What's the weather like today?"),
        "{prompt}"
    );
    assert!(!prompt.contains(','), "{prompt}");
}

#[test]
fn nearest_readings_say_the_phrase_where_words_were_misheard() {
    let m = matcher(&[
        entry("lights", &["turn on [the] {room:kitchen|attic} lights"]),
        entry("dark", &["turn off [the] {room:kitchen|attic} lights"]),
        entry("coin", &["what is the price of {coin:monero|ripple}"]),
        entry("timer", &["set a timer for {minutes:number} minutes"]),
        entry("remind", &["remind me to {task}"]),
    ]);
    let texts = |said: &str, most: usize| -> Vec<String> {
        m.nearest_readings(said, most)
            .into_iter()
            .map(|r| r.text)
            .collect()
    };
    let first = |said: &str| texts(said, 2).into_iter().next();
    // Misheard words and list values as the phrase has them, extra words left out; a list
    // slot that got no words is read with each of its options.
    assert_eq!(
        first("um turn on the attic lice now").as_deref(),
        Some(" Turn on the attic lights.")
    );
    let unheard = texts("turn on the addict lice now", 2);
    let meanings: Vec<String> = m
        .nearest_readings("turn on the addict lice now", 2)
        .into_iter()
        .map(|r| r.meaning)
        .collect();
    assert_eq!(meanings, ["lights|kitchen", "lights|attic"]);
    assert_eq!(
        unheard[..2],
        [" Turn on the kitchen lights.", " Turn on the attic lights."],
        "{unheard:?}"
    );
    assert_eq!(
        first("what's the price of my narrow").as_deref(),
        Some(" What is the price of monero?")
    );
    assert_eq!(
        first("set a timer for twenty five minutes").as_deref(),
        Some(" Set a timer for 25 minutes.")
    );
    // Free text would read any words as its phrase: such phrases give no readings. Nor does a
    // statement become a request.
    for (said, not) in [
        ("remind me to call Sam", " Remind"),
        ("the kitchen lights are on", " Turn"),
    ] {
        let readings = texts(said, 4);
        assert!(
            !readings.iter().any(|r| r.starts_with(not)),
            "{said}: {readings:?}"
        );
    }

    assert_eq!(
        first("they set a timer for 5 minutes"),
        None,
        "{:?}",
        texts("they set a timer for 5 minutes", 4)
    );
    // At most `most`, best first, no duplicates; the phrases a question may not match are left
    // out, and a slot that got no words gives no reading.
    let two = texts("turn on the kitchen lights", 2);
    assert_eq!(two.len(), 2, "{two:?}");
    assert_eq!(two[0], " Turn on the kitchen lights.");
    assert_eq!(two[1], " Turn off the kitchen lights.");
    assert!(
        texts("is the kitchen light on", 4)
            .iter()
            .all(|r| r.ends_with('?'))
    );
    assert!(
        !texts("set a timer for minutes", 4)
            .iter()
            .any(|r| r.contains("timer"))
    );

    assert!(texts("", 3).is_empty());
    assert!(texts("turn on the kitchen lights", 0).is_empty());
}
