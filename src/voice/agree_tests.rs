//! When the guided transcript stands for the free one: only when the free text matched nothing,
//! its nearest phrase is of the workflow the guided text matches or the two readings are alike,
//! no opposite is swapped, and the guided decode lost by little enough.

use super::{AGREE_MARGIN, agreeing_alternative, without_first_word};
use crate::intent::{MatchOptions, Matcher, VoiceEntry};
use crate::stt::Alternative;

fn matcher() -> Matcher {
    let entries: Vec<VoiceEntry> = [
        (
            "coin_price",
            &["what is the price of {coin:cardano|monero|chainlink}"][..],
        ),
        (
            "door_unlock",
            &["unlock [the] {door:front|back|patio} door"],
        ),
        ("door_lock", &["lock [the] {door:front|back|patio} door"]),
        ("hello", &["(hello|hi) [there]"]),
        (
            "thermostat",
            &["set the (thermostat|temperature) to {degrees:number} [degrees]"],
        ),
        ("weather", &["what's [the] weather [like] [today]"]),
    ]
    .iter()
    .map(|(id, p)| VoiceEntry {
        workflow_id: id.to_string(),
        phrases: p.iter().map(|s| s.to_string()).collect(),
    })
    .collect();
    Matcher::new(&entries, MatchOptions::default()).unwrap()
}

fn alt(text: &str, lost_by: f32) -> Alternative {
    Alternative {
        text: text.into(),
        lost_by,
    }
}

#[test]
fn a_guided_text_of_the_free_texts_nearest_workflow_stands_when_it_lost_by_little() {
    let m = matcher();
    for (free, guided, workflow, slot) in [
        (
            "What is the price of cationo?",
            "What is the price of cardano?",
            "coin_price",
            "cardano",
        ),
        (
            "Unlock the map door.",
            "Unlock the back door.",
            "door_unlock",
            "back",
        ),
    ] {
        let outcome = m.match_text(free);
        assert!(outcome.best.is_none(), "{free} matched on its own");
        let a = alt(guided, 1.3);
        let (_, took) = agreeing_alternative(&m, &outcome, Some(&a), AGREE_MARGIN)
            .unwrap_or_else(|| panic!("{free} -> {guided} did not stand"));
        let best = took.best.expect("the guided text matches");
        assert_eq!(best.workflow_id, workflow);
        assert!(best.slots.values().any(|v| v == slot), "{:?}", best.slots);
        // The same pair, lost by more than the margin allows even a reading this close: the
        // free text stays.
        let far = alt(guided, AGREE_MARGIN * 1.5);
        assert!(agreeing_alternative(&m, &outcome, Some(&far), AGREE_MARGIN).is_none());
        // `voice.agree_margin = 0` turns the second chance off.
        assert!(agreeing_alternative(&m, &outcome, Some(&a), 0.0).is_none());
    }
}

#[test]
fn off_topic_speech_a_disagreeing_workflow_or_a_match_keeps_the_free_text() {
    let m = matcher();
    // Off-topic: its nearest phrase scores below the floor, or is not hello's.
    let off = m.match_text("The children are playing in the garden.");
    assert!(off.best.is_none());
    assert!(
        agreeing_alternative(&m, &off, Some(&alt("Hello there.", 0.5)), AGREE_MARGIN).is_none()
    );
    // The free text is nearest to unlocking, the guided text locks: they disagree.
    let near_unlock = m.match_text("Unlock the map door.");
    assert!(
        agreeing_alternative(
            &m,
            &near_unlock,
            Some(&alt("Lock the back door.", 0.5)),
            AGREE_MARGIN
        )
        .is_none()
    );
    // A free text that matched is never replaced.
    let matched = m.match_text("Unlock the patio door.");
    assert!(matched.best.is_some());
    assert!(
        agreeing_alternative(
            &m,
            &matched,
            Some(&alt("Unlock the back door.", 0.1)),
            AGREE_MARGIN
        )
        .is_none()
    );
    // A number the free text never had is not taken from the guided one; a misheard one is.
    let no_number = m.match_text("Set the temperature to hiding.");
    assert!(no_number.best.is_none());
    assert!(
        agreeing_alternative(
            &m,
            &no_number,
            Some(&alt("Set the temperature to 90 degrees.", 0.6)),
            AGREE_MARGIN
        )
        .is_none()
    );
    let misheard = m.match_text("Set the firm of touch at 23 degrees.");
    assert!(misheard.best.is_none());
    let (_, took) = agreeing_alternative(
        &m,
        &misheard,
        Some(&alt("Set the thermostat to 23 degrees.", 1.7)),
        AGREE_MARGIN,
    )
    .expect("a misheard carrier phrase with its number heard");
    assert_eq!(took.best.unwrap().slots["degrees"], 23);
    // No guided decode, nothing to take.
    assert!(agreeing_alternative(&m, &near_unlock, None, AGREE_MARGIN).is_none());
}

#[test]
fn a_close_reading_stands_unless_it_swaps_an_opposite_or_lost_by_too_much() {
    let m = Matcher::new(
        &[
            VoiceEntry {
                workflow_id: "lights_off".into(),
                phrases: vec!["turn off the {room:attic|bedroom} lights".into()],
            },
            VoiceEntry {
                workflow_id: "lights_on".into(),
                phrases: vec!["turn on the {room:attic|bedroom} lights".into()],
            },
            VoiceEntry {
                workflow_id: "next_meeting".into(),
                phrases: vec!["what's my next meeting".into()],
            },
        ],
        MatchOptions::default(),
    )
    .unwrap();
    // One word misheard as a commoner one: the guided reading is a small edit of the free one.
    let free = m.match_text("Turn off the habit lights.");
    assert!(free.best.is_none(), "{}", free.explain());
    let close = alt("Turn off the attic lights.", AGREE_MARGIN * 1.2);
    let (_, took) = agreeing_alternative(&m, &free, Some(&close), AGREE_MARGIN)
        .expect("a close reading stands");
    let best = took.best.unwrap();
    assert_eq!(
        (best.workflow_id.as_str(), &best.slots["room"]),
        ("lights_off", &"attic".into())
    );
    // Lost by more than its share of the margin, it does not.
    let far = alt("Turn off the attic lights.", AGREE_MARGIN * 1.5);
    assert!(agreeing_alternative(&m, &free, Some(&far), AGREE_MARGIN).is_none());
    // "on" heard, "off" guided: the guided reading would reverse the request.
    let on = m.match_text("Turn on the habit lights.");
    assert!(on.best.is_none());
    let reversed = alt("Turn off the attic lights.", 0.3);
    assert!(agreeing_alternative(&m, &on, Some(&reversed), AGREE_MARGIN).is_none());
    // A reading nothing like what was heard needs the nearest phrase to agree.
    let never = m.match_text("Never mind.");
    let unlike = alt("What's my next meeting?", 0.3);
    assert!(crate::intent::reading_similarity("Never mind.", &unlike.text) < 0.5);
    assert!(agreeing_alternative(&m, &never, Some(&unlike), AGREE_MARGIN).is_none());
}

#[test]
fn a_first_word_made_of_atlas_own_sound_is_left_out_only_for_a_command() {
    let m = matcher();
    // "I" before the command: a statement, refused as it stands; the rest is the command.
    assert!(m.match_text("I set the thermostat to 21.").best.is_none());
    let (rest, outcome) =
        without_first_word(&m, "I set the thermostat to 21.").expect("the rest is a command");
    assert_eq!(rest, "set the thermostat to 21.");
    let best = outcome.best.expect("a match");
    assert_eq!(best.workflow_id, "thermostat");
    assert_eq!(best.slots["degrees"], 21);
    // Nothing when the rest is no command, is empty, or still asks a question.
    assert!(without_first_word(&m, "I turned the heating up yesterday.").is_none());
    assert!(without_first_word(&m, "Hello").is_none());
    assert!(without_first_word(&m, "").is_none());
    assert!(without_first_word(&m, "Who unlocked the front door?").is_none());
}
