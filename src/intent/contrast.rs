//! Comparing two close alignments on the words that tell them apart.
//!
//! Two phrases of different workflows often share most of their words ("turn on the living room
//! lights" / "turn off the living room lights", "increase the volume" / "decrease the volume").
//! Their overall scores then differ by little even when the transcript says one of them exactly,
//! because the shared words dilute the one word that differs. So close rivals are also scored on
//! the steps of their alignments that they do not share: a step is shared when the other
//! alignment explains the same heard words the same way (the same template word, the same slot
//! value, the same words left unexplained) or misses the same template word. What is left is the
//! contrast, and a clear win there decides.

use super::align::{PathStep, Step};
use super::graph::{Graph, SlotSpec};

/// What a path step says about the transcript, for finding the steps two paths share.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Sig {
    /// Heard words skipped as a prefix or suffix.
    Skip(usize, usize),
    /// Heard words left unexplained.
    Extra(usize, usize),
    /// A template word heard over these words.
    Word(u32, usize, usize),
    /// A template word not heard.
    Missing(u32),
    /// A slot of this kind not filled: 0 free text, 1 number, 2 list.
    MissingSlot(u8),
    /// A free-text or number slot filled by these words.
    Filled(u8, usize, usize),
    /// A list slot filled by these words with this value.
    Option(usize, usize, String),
}

/// One step of a path: its signature, cost (thousandths) and units (halves).
pub(super) type Signed = (Sig, u32, u16);

/// The signed steps of a path through `graph`.
pub(super) fn signed(path: &[PathStep], graph: &Graph) -> Vec<Signed> {
    path.iter()
        .filter_map(|p| {
            let sig = match p.step {
                Step::Start | Step::Empty => return None,
                Step::Skip => Sig::Skip(p.from, p.to),
                Step::Extra => Sig::Extra(p.from, p.to),
                Step::Word { id } if p.from == p.to => Sig::Missing(id),
                Step::Word { id } => Sig::Word(id, p.from, p.to),
                Step::Slot { slot, option } => {
                    let spec = &graph.slots[usize::from(slot)].1;
                    let kind = match spec {
                        SlotSpec::Text => 0,
                        SlotSpec::Number => 1,
                        SlotSpec::List(_) => 2,
                    };
                    match spec {
                        _ if p.from == p.to => Sig::MissingSlot(kind),
                        SlotSpec::List(options) => Sig::Option(
                            p.from,
                            p.to,
                            options
                                .get(usize::from(option))
                                .map(|o| o.value.clone())
                                .unwrap_or_default(),
                        ),
                        _ => Sig::Filled(kind, p.from, p.to),
                    }
                }
            };
            Some((sig, p.cost, p.units))
        })
        .collect()
}

/// The scores (0..=1) of two alignments over the steps they do not share; 1.0 for a side whose
/// every step is shared (nothing in it is wrong).
pub(super) fn contrast(a: &[Signed], b: &[Signed]) -> (f32, f32) {
    let mut used = vec![false; b.len()];
    let (mut cost_a, mut units_a) = (0u32, 0u32);
    for (sig, cost, units) in a {
        let twin = (0..b.len()).find(|&j| !used[j] && b[j].0 == *sig);
        match twin {
            Some(j) => used[j] = true,
            None => {
                cost_a += cost;
                units_a += u32::from(*units);
            }
        }
    }
    let (mut cost_b, mut units_b) = (0u32, 0u32);
    for ((_, cost, units), used) in b.iter().zip(&used) {
        if !used {
            cost_b += cost;
            units_b += u32::from(*units);
        }
    }
    (score(cost_a, units_a), score(cost_b, units_b))
}

/// `1 - cost / units` with cost in thousandths and units in halves, as `align` scores.
fn score(cost: u32, units: u32) -> f32 {
    if units == 0 {
        return if cost == 0 { 1.0 } else { 0.0 };
    }
    (1.0 - cost as f32 / 500.0 / units as f32).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_steps_do_not_count() {
        let word = |id, at| (Sig::Word(id, at, at + 1), 0, 2);
        // "turn on the lamp" against itself and against "turn off the lamp" heard as "on".
        let a = vec![word(1, 0), word(2, 1), word(3, 2)];
        let b = vec![word(1, 0), (Sig::Word(4, 1, 2), 1000, 2), word(3, 2)];
        assert_eq!(contrast(&a, &b), (1.0, 0.0));
        assert_eq!(contrast(&a, &a), (1.0, 1.0));
        // A half-heard distinguishing word scores half.
        let c = vec![word(1, 0), (Sig::Word(5, 1, 2), 500, 2), word(3, 2)];
        assert_eq!(contrast(&a, &c), (1.0, 0.5));
    }
}
