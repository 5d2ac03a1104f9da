//! The pause detector on real espeak-ng speech, silence and noise, fed as a microphone would
//! feed it: in 40 ms pieces.

use super::*;
use crate::audio::test_support::{espeak_16k, hum, padded, silence, white_noise};

const MS: usize = 16; // samples per millisecond at 16 kHz

fn config() -> LiveConfig {
    LiveConfig {
        pause: Duration::from_millis(200),
        silence_stop: Duration::from_millis(1200),
        poll: Duration::from_millis(40),
        own_sound: Duration::ZERO,
    }
}

/// Feeds `clip` (16 kHz mono unless `rate`/`channels` say otherwise) in 40 ms pieces; returns
/// each event with the number of samples fed when it came.
fn feed(config: LiveConfig, clip: &[f32], rate: u32, channels: u16) -> Vec<(usize, LiveEvent)> {
    let mut d = PauseDetector::new(config, rate, channels);
    let piece = rate as usize * usize::from(channels) * 40 / 1000;
    let mut fed = 0;
    let mut out = Vec::new();
    for chunk in clip.chunks(piece) {
        fed += chunk.len();
        out.extend(d.push(chunk).into_iter().map(|e| (fed, e)));
    }
    out
}

/// Where the speech in `clip` ends, by the gate (its kept range without the margin).
fn speech_end(clip: &[f32]) -> usize {
    Vad::default().analyze(clip).keep.end - 150 * MS
}

fn pauses(events: &[(usize, LiveEvent)]) -> Vec<&Vec<f32>> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            LiveEvent::Pause(s) => Some(s),
            LiveEvent::Silence => None,
        })
        .collect()
}

fn silence_at(events: &[(usize, LiveEvent)]) -> Option<usize> {
    events
        .iter()
        .find(|(_, e)| *e == LiveEvent::Silence)
        .map(|(at, _)| *at)
}

#[test]
fn speech_then_quiet_gives_one_pause_holding_the_speech_then_the_silence() {
    let Some(speech) = espeak_16k("set the volume to high", &[]) else {
        return;
    };
    let clip = padded(&speech, 0.3, 2.0);
    let events = feed(config(), &clip, SAMPLE_RATE, 1);
    let p = pauses(&events);
    assert_eq!(p.len(), 1, "one pause: {} events", events.len());
    let speech_end = speech_end(&clip);
    assert!(
        p[0].len() >= speech_end + 150 * MS,
        "the snapshot holds the speech"
    );
    assert!(p[0].len() < speech_end + 500 * MS, "taken at the pause");
    assert!(Vad::default().analyze(p[0]).has_speech);
    // Silence comes once, only after `silence_stop` of quiet, and after the pause.
    let at = silence_at(&events).expect("the silence after speech");
    assert!(
        at >= speech_end + 1200 * MS,
        "not before the quiet lasted: {at}"
    );
    assert!(at < speech_end + 1500 * MS, "soon after: {at}");
    assert_eq!(
        events
            .iter()
            .filter(|(_, e)| *e == LiveEvent::Silence)
            .count(),
        1
    );
    assert!(matches!(events[0].1, LiveEvent::Pause(_)));
}

#[test]
fn speech_after_a_pause_gives_a_second_longer_snapshot() {
    let (Some(a), Some(b)) = (espeak_16k("set the volume", &[]), espeak_16k("to low", &[])) else {
        return;
    };
    let mut clip = padded(&a, 0.3, 0.8);
    clip.extend(padded(&b, 0.0, 0.6));
    let events = feed(config(), &clip, SAMPLE_RATE, 1);
    let p = pauses(&events);
    assert_eq!(p.len(), 2, "a pause after each part");
    assert!(p[1].len() > p[0].len() + b.len());
    // The second part is loud after the first snapshot, by the gate's own rule.
    assert!(Vad::default().loud_after(p[1], p[0].len()));
    assert!(!Vad::default().loud_after(p[0], p[0].len() - 150 * MS));
}

#[test]
fn silence_noise_and_hum_give_no_event() {
    let quiet = silence(3.0);
    let noise = white_noise(3.0, 0.02, 7);
    let mains = padded(&hum(1.0, 0.2), 0.5, 1.5);
    for (name, clip) in [("silence", &quiet), ("noise", &noise), ("hum", &mains)] {
        let events = feed(config(), clip, SAMPLE_RATE, 1);
        assert!(events.is_empty(), "{name}: {} events", events.len());
    }
}

#[test]
fn each_event_can_be_turned_off() {
    let Some(speech) = espeak_16k("what time is it", &[]) else {
        return;
    };
    let clip = padded(&speech, 0.2, 2.0);
    let no_pause = LiveConfig {
        pause: Duration::ZERO,
        ..config()
    };
    let events = feed(no_pause, &clip, SAMPLE_RATE, 1);
    assert!(pauses(&events).is_empty());
    assert!(silence_at(&events).is_some(), "the silence still ends it");
    let no_stop = LiveConfig {
        silence_stop: Duration::ZERO,
        ..config()
    };
    let events = feed(no_stop, &clip, SAMPLE_RATE, 1);
    assert_eq!(pauses(&events).len(), 1);
    assert!(silence_at(&events).is_none());
}

#[test]
fn a_stereo_48k_microphone_gives_16k_snapshots() {
    let Some(speech) = espeak_16k("turn on the lights", &[]) else {
        return;
    };
    let clip16 = padded(&speech, 0.3, 1.0);
    let clip48 = resample::resample_mono(&clip16, SAMPLE_RATE, 48_000).unwrap();
    let stereo: Vec<f32> = clip48.iter().flat_map(|&s| [s, s]).collect();
    let events = feed(config(), &stereo, 48_000, 2);
    let p = pauses(&events);
    assert_eq!(p.len(), 1);
    // At 16 kHz: about as long as the 16 kHz clip up to the pause.
    let speech_end = speech_end(&clip16);
    assert!(p[0].len() >= speech_end + 150 * MS && p[0].len() < speech_end + 500 * MS);
    assert!(Vad::default().analyze(p[0]).has_speech);
}

#[test]
fn loud_after_sees_a_short_word_said_after_the_cut() {
    let (Some(a), Some(b)) = (espeak_16k("turn the lights", &[]), espeak_16k("off", &[])) else {
        return;
    };
    let first = padded(&a, 0.3, 0.5);
    let cut = first.len();
    let mut clip = first.clone();
    clip.extend(padded(&b, 0.0, 0.3));
    assert!(Vad::default().loud_after(&clip, cut));
    assert!(!Vad::default().loud_after(&first, cut - 200 * MS));
    assert!(!Vad::default().loud_after(&silence(1.0), 0));
}

/// Sound of Atlas's own at the start (the listening chime as the microphone hears it back; here
/// a spoken word, which surely passes the gate): with `own_sound` covering it, it is not the
/// user's speech (no pause, no silence stop), and speech after it still is. Without `own_sound`
/// the same sound alone would end a toggle recording.
#[test]
fn atlas_own_sound_at_the_start_is_not_speech_and_speech_after_it_is() {
    let (Some(own_word), Some(speech)) = (
        espeak_16k("hello", &[]),
        espeak_16k("set the volume to high", &[]),
    ) else {
        return;
    };
    // As the chime does: a little after the recording opens.
    let own_word = padded(&own_word, 0.1, 0.0);
    let own_len = Duration::from_millis((own_word.len() / MS) as u64);
    let mut quiet = own_word.clone();
    quiet.extend(silence(2.0));
    let plain = feed(config(), &quiet, SAMPLE_RATE, 1);
    assert!(silence_at(&plain).is_some(), "the word alone is speech");
    let own = LiveConfig {
        own_sound: own_len + Duration::from_millis(100),
        ..config()
    };
    let events = feed(own, &quiet, SAMPLE_RATE, 1);
    assert!(
        events.is_empty(),
        "{} events from Atlas's own sound",
        events.len()
    );
    let mut spoken = own_word.clone();
    spoken.extend(silence(0.4));
    spoken.extend(&speech);
    spoken.extend(silence(1.5));
    let events = feed(own, &spoken, SAMPLE_RATE, 1);
    assert_eq!(pauses(&events).len(), 1, "speech after Atlas's own sound");
    assert!(silence_at(&events).is_some());
    // The snapshot holds the whole recording, the first sound included.
    assert!(pauses(&events)[0].len() >= own_word.len() + speech.len());
}
