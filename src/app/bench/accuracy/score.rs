//! Scoring the accuracy benchmark: what each item did against what it had to do, summed into
//! accuracy per class, false starts, word error rate and the most frequent confusions.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::clips::Item;

/// The classes whose items must start a workflow; the others must start nothing.
pub const COMMAND_CLASSES: [&str; 2] = ["in_grammar", "paraphrase"];
/// Every class, in report order.
pub const CLASSES: [&str; 5] = [
    "in_grammar",
    "paraphrase",
    "off_topic",
    "question",
    "silence_noise",
];

/// What one item did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The item.
    pub item: Item,
    /// What whisper heard.
    pub transcript: String,
    /// The workflow whose run started, if any.
    pub started: Option<String>,
    /// The slot values it got.
    pub slots: Map<String, Value>,
    /// Whisper's decode time, when it ran.
    pub stt_ms: Option<f64>,
}

impl Outcome {
    fn is_command(&self) -> bool {
        COMMAND_CLASSES.contains(&self.item.class.as_str())
    }

    /// Right workflow (or none, where none is expected) and, for a command, right slots.
    pub fn right(&self) -> bool {
        self.started == self.item.expect.workflow && (!self.is_command() || self.slots_right())
    }

    fn slots_right(&self) -> bool {
        self.item
            .expect
            .slots
            .iter()
            .all(|(k, want)| self.slots.get(k).is_some_and(|got| same_value(want, got)))
    }

    /// Word edits and reference words, for speech items.
    fn word_errors(&self) -> Option<(usize, usize)> {
        if self.item.text.is_empty() {
            return None;
        }
        let reference = atlas::intent::content_words(&self.item.text);
        let heard = atlas::intent::content_words(&self.transcript);
        Some((edit_distance(&reference, &heard), reference.len()))
    }
}

/// A slot value as expected: numbers by value, text by the matcher's words (case, punctuation
/// and spelled-out numbers aside).
fn same_value(want: &Value, got: &Value) -> bool {
    match (want.as_f64(), got.as_f64()) {
        (Some(a), Some(b)) => (a - b).abs() < 1e-9,
        _ => {
            let words = |v: &Value| atlas::intent::content_words(v.as_str().unwrap_or_default());
            words(want) == words(got)
        }
    }
}

/// Levenshtein distance over words.
pub fn edit_distance(a: &[String], b: &[String]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(x != y))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn pct(right: usize, of: usize) -> Value {
    if of == 0 {
        return Value::Null;
    }
    json!((right as f64 * 1000.0 / of as f64).round() / 10.0)
}

/// A rate over the outcomes that pass `filter`: `{"right", "of", "pct"}`.
fn rate(outcomes: &[Outcome], filter: impl Fn(&Outcome) -> bool, right: impl Fn(&Outcome) -> bool) -> Value {
    let of: Vec<&Outcome> = outcomes.iter().filter(|o| filter(o)).collect();
    let r = of.iter().filter(|o| right(o)).count();
    json!({"right": r, "of": of.len(), "pct": pct(r, of.len())})
}

/// Word error rate (percent) over the speech items that pass `filter`.
fn wer(outcomes: &[Outcome], filter: impl Fn(&Outcome) -> bool) -> Value {
    let (edits, words) = outcomes
        .iter()
        .filter(|o| filter(o))
        .filter_map(Outcome::word_errors)
        .fold((0, 0), |(e, w), (de, dw)| (e + de, w + dw));
    pct(edits, words)
}

/// The figures of a run. `nulls` gets a reason for every figure that is null.
pub fn figures(outcomes: &[Outcome], nulls: &mut Map<String, Value>) -> Map<String, Value> {
    let mut f = Map::new();
    let mut per_class = Map::new();
    for class in CLASSES {
        let r = rate(outcomes, |o| o.item.class == class, Outcome::right);
        if r["pct"].is_null() {
            nulls.insert(format!("{class}_pct"), json!("no item of this class in the sample"));
        }
        f.insert(format!("{class}_pct"), r["pct"].clone());
        per_class.insert(class.into(), r);
    }
    f.insert("accuracy".into(), Value::Object(per_class));
    let none = |o: &Outcome| !o.is_command();
    let nothing = rate(outcomes, none, |o| o.started.is_none());
    f.insert("nothing_started_pct".into(), nothing["pct"].clone());
    let intent = rate(outcomes, Outcome::is_command, |o| o.started == o.item.expect.workflow);
    f.insert("intent_pct".into(), intent["pct"].clone());
    let false_starts = outcomes.iter().filter(|o| none(o) && o.started.is_some()).count();
    f.insert("false_starts".into(), json!(false_starts));
    let wrong = outcomes
        .iter()
        .filter(|o| o.is_command() && o.started.is_some() && o.started != o.item.expect.workflow)
        .count();
    f.insert("wrong_workflow_starts".into(), json!(wrong));
    let missed = outcomes.iter().filter(|o| o.is_command() && o.started.is_none()).count();
    f.insert("commands_missed".into(), json!(missed));
    for (name, filter) in [
        ("wer_pct", &(|_: &Outcome| true) as &dyn Fn(&Outcome) -> bool),
        ("wer_clean_pct", &|o: &Outcome| o.item.noise == "clean"),
        ("wer_noisy_pct", &|o: &Outcome| o.item.snr_db.is_some()),
    ] {
        let w = wer(outcomes, filter);
        if w.is_null() {
            nulls.insert(name.into(), json!("no speech item of this kind in the sample"));
        }
        f.insert(name.into(), w);
    }
    f.insert("by_condition".into(), by_condition(outcomes));
    f.insert("confusions".into(), confusions(outcomes, 10));
    f
}

/// Command accuracy per noise condition.
fn by_condition(outcomes: &[Outcome]) -> Value {
    let mut conditions: Vec<String> = outcomes
        .iter()
        .filter(|o| o.is_command())
        .map(|o| o.item.condition())
        .collect();
    conditions.sort();
    conditions.dedup();
    let map: Map<String, Value> = conditions
        .into_iter()
        .map(|c| {
            let r = rate(outcomes, |o| o.is_command() && o.item.condition() == c, Outcome::right);
            (c, r)
        })
        .collect();
    Value::Object(map)
}

/// The most frequent (expected, started) pairs that differ, with one transcript each. A
/// command that started the right workflow with wrong slots is `(w, w)` with `"slots": true`.
fn confusions(outcomes: &[Outcome], top: usize) -> Value {
    let mut pairs: BTreeMap<(String, String), (usize, String)> = BTreeMap::new();
    let name = |w: &Option<String>| w.clone().unwrap_or_else(|| "(none)".into());
    for o in outcomes.iter().filter(|o| !o.right()) {
        let key = (name(&o.item.expect.workflow), name(&o.started));
        let e = pairs.entry(key).or_insert((0, o.transcript.clone()));
        e.0 += 1;
    }
    let mut list: Vec<_> = pairs.into_iter().collect();
    list.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(&b.0)));
    let rows: Vec<Value> = list
        .into_iter()
        .take(top)
        .map(|((expected, got), (count, heard))| {
            json!({"expected": expected, "started": got, "count": count,
                   "slots_only": expected == got, "example_heard": heard})
        })
        .collect();
    Value::Array(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn edit_distance_counts_word_substitutions_insertions_and_deletions() {
        assert_eq!(edit_distance(&words("a b c"), &words("a b c")), 0);
        assert_eq!(edit_distance(&words("a b c"), &words("a x c")), 1);
        assert_eq!(edit_distance(&words("a b c"), &words("a c")), 1);
        assert_eq!(edit_distance(&words("a b"), &words("a b c d")), 2);
        assert_eq!(edit_distance(&words(""), &words("a")), 1);
    }

    #[test]
    fn slot_values_compare_by_value_not_by_spelling() {
        assert!(same_value(&json!(25), &json!(25.0)));
        assert!(!same_value(&json!(25), &json!(15)));
        assert!(same_value(&json!("Oat milk"), &json!("oat milk.")));
        assert!(!same_value(&json!("oat milk"), &json!("oak milk")));
    }

    #[test]
    fn a_rate_with_nothing_measured_is_null() {
        assert_eq!(pct(0, 0), Value::Null);
        assert_eq!(pct(0, 4), json!(0.0));
        assert_eq!(pct(1, 3), json!(33.3));
    }
}
