//! Tests of the voice-activity gate on real espeak-ng speech and on generated non-speech.

use super::*;
use crate::audio::test_support::{
    espeak_16k, hum, mix, padded, pink_noise, rms, silence, swelling, white_noise,
};

fn gate(samples: &[f32]) -> SpeechReport {
    Vad::new(VadConfig::default()).analyze(samples)
}

/// Scales a clip so that its RMS over the loud part is `dbfs`.
fn at_level(s: &[f32], dbfs: f32) -> Vec<f32> {
    let target = 10f32.powf(dbfs / 20.0);
    let k = target / rms(s).max(1e-9);
    s.iter().map(|x| x * k).collect()
}

fn with_silence(s: Vec<f32>, before: f32, mut after: Vec<f32>) -> Vec<f32> {
    let mut out = silence(before);
    out.extend(s);
    out.append(&mut after);
    out
}

#[test]
fn silence_and_steady_noise_are_not_speech() {
    let cases: Vec<(&str, Vec<f32>)> = vec![
        ("empty", Vec::new()),
        ("digital silence", silence(3.0)),
        (
            "white noise -65 dBFS",
            white_noise(3.0, 10f32.powf(-65.0 / 20.0), 1),
        ),
        (
            "white noise -45 dBFS",
            white_noise(3.0, 10f32.powf(-45.0 / 20.0), 2),
        ),
        (
            "white noise -25 dBFS",
            white_noise(3.0, 10f32.powf(-25.0 / 20.0), 3),
        ),
        ("hum 0.05", hum(3.0, 0.05)),
        (
            "hum 0.3 + noise",
            mix(&hum(3.0, 0.3), &white_noise(3.0, 0.01, 4)),
        ),
        // A fan or a hum that switches on mid-clip: loud against the silence before it.
        (
            "noise burst after silence",
            with_silence(white_noise(2.0, 0.05, 5), 1.0, silence(0.5)),
        ),
        (
            "hum after silence",
            with_silence(hum(2.0, 0.2), 1.0, silence(0.5)),
        ),
        ("click", with_silence(vec![0.9; 200], 1.0, silence(1.0))),
    ];
    for (name, clip) in cases {
        let r = gate(&clip);
        assert!(!r.has_speech, "{name} passed the gate: {r:?}");
        assert!(
            r.trim(&clip).is_empty(),
            "{name}: trim of non-speech must be empty"
        );
    }
}

#[test]
fn espeak_speech_passes_in_many_voices_levels_and_noise() {
    let text = "what is the weather like today";
    let mut cases: Vec<(String, Vec<f32>)> = Vec::new();
    for args in [
        &[][..],
        &["-v", "en-gb", "-s", "140"][..],
        &["-v", "en-us+f3", "-s", "190"][..],
    ] {
        let Some(speech) = espeak_16k(text, args) else {
            return;
        };
        let clip = padded(&speech, 0.5, 0.5);
        cases.push((format!("{args:?} as spoken"), clip.clone()));
        cases.push((format!("{args:?} quiet -45 dBFS"), at_level(&clip, -45.0)));
        cases.push((format!("{args:?} loud -8 dBFS"), at_level(&clip, -8.0)));
        // Moderate noise: white noise 10 dB under the speech's RMS, over the whole clip.
        let noise = white_noise(clip.len() as f32 / 16_000.0, rms(&speech) / 3.16, 9);
        cases.push((format!("{args:?} + noise at 10 dB SNR"), mix(&clip, &noise)));
        cases.push((
            format!("{args:?} + hum"),
            mix(
                &clip,
                &hum(clip.len() as f32 / 16_000.0, rms(&speech) / 3.0),
            ),
        ));
    }
    // A short command with no leading or trailing silence at all.
    if let Some(short) = espeak_16k("stop", &[]) {
        cases.push(("\"stop\" unpadded".into(), short));
    }
    for (name, clip) in cases {
        let r = gate(&clip);
        assert!(r.has_speech, "{name} was rejected: {r:?}");
    }
}

/// Broadband noise only 5 dB under the speech fills its pauses and buries its level; the pitch
/// in the voice band still stands out.
#[test]
fn speech_under_noise_only_5_db_below_it_passes() {
    let text = "turn off the kitchen lights";
    for args in [
        &[][..],
        &["-v", "en-gb", "-s", "190"][..],
        &["-v", "en-us+f3"][..],
    ] {
        let Some(speech) = espeak_16k(text, args) else {
            return;
        };
        let clip = padded(&speech, 0.3, 0.4);
        let secs = clip.len() as f32 / 16_000.0;
        let level = rms(&speech) / 10f32.powf(5.0 / 20.0);
        for (color, noise) in [
            ("white", white_noise(secs, level, 21)),
            ("pink", pink_noise(secs, level, 22)),
        ] {
            let r = gate(&mix(&clip, &noise));
            assert!(r.has_speech, "{args:?} under {color} noise at 5 dB: {r:?}");
        }
    }
}

/// Noise that swells and fades at the rate of syllables moves like speech but has no pitch.
/// (The zero-crossing test this gate had before let the pink kind through.)
#[test]
fn noise_swelling_like_syllables_is_not_speech() {
    for (color, noise) in [
        ("white", white_noise(3.0, 1.0, 31)),
        ("pink", pink_noise(3.0, 1.0, 32)),
    ] {
        for dbfs in [-35.0, -15.0] {
            for swing in [12.0, 20.0] {
                let clip = at_level(&swelling(&noise, swing, 4.0), dbfs);
                let r = gate(&clip);
                assert!(
                    !r.has_speech,
                    "{color} noise at {dbfs} dBFS swelling by {swing} dB passed: {r:?}"
                );
            }
        }
    }
}

#[test]
fn trimming_keeps_the_speech_and_a_small_margin() {
    let Some(speech) = espeak_16k("read my briefing", &[]) else {
        return;
    };
    // espeak-ng's own output has little silence at its ends; measure its speech span first.
    let own = gate(&speech);
    assert!(own.has_speech);
    let clip = padded(&speech, 1.5, 2.0);
    let r = gate(&clip);
    assert!(r.has_speech, "{r:?}");
    let kept = r.trim(&clip);
    let margin = 16 * 150;
    // Starts within the leading pad, a margin (and at most a frame) before the speech.
    let speech_start = 24_000 + own.keep.start + margin.min(own.keep.start);
    assert!(
        r.keep.start + margin >= speech_start.saturating_sub(480) && r.keep.start < speech_start,
        "trim starts at {} for speech at {speech_start}: {r:?}",
        r.keep.start
    );
    // Drops most of the 3.5 s of padding but keeps all of the speech.
    assert!(kept.len() >= own.trim(&speech).len(), "{r:?}");
    assert!(
        kept.len() <= speech.len() + 2 * margin + 2 * 480,
        "kept {} of {} samples",
        kept.len(),
        clip.len()
    );
}

#[test]
fn thresholds_can_be_tightened() {
    let Some(speech) = espeak_16k("what time is it", &[]) else {
        return;
    };
    let strict = Vad::new(VadConfig {
        min_voiced_ms: 60_000,
        ..VadConfig::default()
    });
    assert!(!strict.analyze(&speech).has_speech);
    assert_eq!(strict.config().min_voiced_ms, 60_000);
}

#[test]
fn the_tail_of_atlas_speech_at_the_head_of_a_recording_is_left_out() {
    let (Some(story), Some(command)) = (
        espeak_16k("three, four, five, six, seven", &[]),
        espeak_16k("Set the volume to low.", &[]),
    ) else {
        return;
    };
    let vad = Vad::new(VadConfig::default());
    // 250 ms from the middle of the story: what the sound server still played after the press.
    let mid = gate(&story).keep.start + 8_000;
    let tail = story[mid..mid + 4_000].to_vec();
    let own = 16 * 420;
    let floor = |n: usize, seed| white_noise(n as f32 / 16_000.0, 10f32.powf(-60.0 / 20.0), seed);
    let join = |parts: &[&[f32]]| {
        let clip: Vec<f32> = parts.concat();
        mix(&clip, &floor(clip.len(), 7))
    };
    let gap = silence(0.1);
    let clip = join(&[&tail, &gap, &command]);
    let cut = vad.own_head(&clip, own);
    // Cut where the tail falls quiet: within a frame or two of its end, before the command.
    assert!(
        cut + 960 >= tail.len() && cut <= tail.len() + gap.len(),
        "cut at {cut} for a tail of {} and a command from {}",
        tail.len(),
        tail.len() + gap.len()
    );
    // The command stays whole: the gate finds all of it after the cut.
    let rest = gate(&clip[cut..]);
    assert!(rest.has_speech, "{rest:?}");
    let whole = gate(&command);
    assert!(
        rest.trim(&clip[cut..]).len() >= whole.trim(&command).len(),
        "{rest:?}"
    );

    // Nothing is left out without a span, when nothing sounds as the recording opens, when the
    // head is all there is, or when the head ends after the span.
    assert_eq!(vad.own_head(&clip, 0), 0);
    let late = join(&[&silence(0.2), &command]);
    assert_eq!(vad.own_head(&late, own), 0);
    let alone = join(&[&tail, &silence(1.0)]);
    assert_eq!(vad.own_head(&alone, own), 0);
    let long_head = join(&[&hum(0.6, 0.2), &gap, &command]);
    assert_eq!(vad.own_head(&long_head, own), 0);
}
