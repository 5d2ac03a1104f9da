//! `atlas bench accuracy --gate`: the speech gate alone on the corpus (its sample, or all). Speech it stops never
//! reaches whisper, and silence or noise it lets through may come back as an invented sentence,
//! so both shares are given per noise condition, beside the gate's cost per clip.

use std::path::Path;
use std::time::Instant;

use serde_json::{Map, Value, json};

use super::clips::{self, Item};
use super::{figure, round1};
use atlas::audio::{Vad, VadConfig};

/// Runs every item's clip through the default gate and gives the figures.
pub fn report(
    hash: &str,
    items: &[Item],
    wavs: &Path,
    started: Instant,
) -> anyhow::Result<Map<String, Value>> {
    let vad = Vad::new(VadConfig::default());
    // condition -> (clips, clips found to hold speech)
    let mut speech = std::collections::BTreeMap::<String, (usize, usize)>::new();
    let mut quiet = std::collections::BTreeMap::<String, (usize, usize)>::new();
    let mut cost_us = Vec::with_capacity(items.len());
    let mut missed = Vec::new();
    for item in items {
        let samples = clips::clip(item, wavs)?;
        let t = Instant::now();
        let found = vad.analyze(&samples).has_speech;
        cost_us.push(t.elapsed().as_secs_f64() * 1e6);
        let table = if item.text.is_empty() {
            &mut quiet
        } else {
            &mut speech
        };
        let entry = table.entry(item.condition()).or_default();
        entry.0 += 1;
        entry.1 += usize::from(found);
        if !item.text.is_empty() && !found && missed.len() < 10 {
            missed.push(
                json!({"id": item.id, "said": item.text, "voice": item.voice,
                "speed": item.speed, "condition": item.condition()}),
            );
        }
    }
    // Beyond the corpus's few noise clips: noise as loud as that under 5 dB speech, steady and
    // swinging like syllables, short and long, several seeds.
    let mut extra = 0;
    for color in ["white", "pink"] {
        for level in [-45.0, -35.0, -25.0, -15.0] {
            for swing in [0.0, 6.0, 12.0, 20.0] {
                for (k, seconds) in [1.0, 2.5, 5.0].into_iter().enumerate() {
                    let seed = format!("{color}{level}{swing}{k}");
                    let clip = clips::noise_clip(color, seconds, level, swing, &seed);
                    let condition = format!("{color} {level} dBFS, swing {swing} dB");
                    let entry = quiet.entry(condition).or_default();
                    entry.0 += 1;
                    entry.1 += usize::from(vad.analyze(&clip).has_speech);
                    extra += 1;
                }
            }
        }
    }
    let share = |table: &std::collections::BTreeMap<String, (usize, usize)>, passed: bool| {
        let mut by = Map::new();
        let (mut of, mut right) = (0, 0);
        for (condition, &(n, found)) in table {
            let ok = if passed { found } else { n - found };
            of += n;
            right += ok;
            by.insert(
                condition.clone(),
                json!({"of": n, "right": ok, "pct": pct(ok, n)}),
            );
        }
        (pct(right, of), Value::Object(by))
    };
    let (speech_pct, speech_by) = share(&speech, true);
    let (quiet_pct, quiet_by) = share(&quiet, false);
    let mut out = Map::new();
    out.insert("mode".into(), json!("gate"));
    out.insert("corpus".into(), json!(hash));
    out.insert("clips".into(), json!(items.len() + extra));
    out.insert("speech_found_pct".into(), speech_pct);
    out.insert("speech_found_by_condition".into(), speech_by);
    out.insert("no_speech_stopped_pct".into(), quiet_pct);
    out.insert("no_speech_stopped_by_condition".into(), quiet_by);
    out.insert("gate_p50_us".into(), figure(&cost_us, 0.5));
    out.insert("speech_missed".into(), Value::Array(missed));
    out.insert(
        "elapsed_s".into(),
        json!(round1(started.elapsed().as_secs_f64())),
    );
    Ok(out)
}

/// A share in percent, or null when nothing was counted.
fn pct(right: usize, of: usize) -> Value {
    if of == 0 {
        Value::Null
    } else {
        json!(round1(100.0 * right as f64 / of as f64))
    }
}
