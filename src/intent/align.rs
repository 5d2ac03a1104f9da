//! Fuzzy alignment of a transcript against one compiled template.
//!
//! Alignment is a shortest-path search over (graph node, transcript position): a word edge may
//! match a heard word (cost by similarity), be missing (cost 1), or match two heard words run
//! together; a shortcut edge for two template words may match one heard word ("to do" / "todo");
//! any heard word may be extra (cost 0.8, or 0.5 before or after the template's words); slots
//! consume what they accept. The score is `1 - cost / units`, where units count the template
//! words, slots and extra words on the path, so an exact match scores 1.0 and optional parts are
//! free. Function words ("the", "is", "to") weigh half a unit and their costs half as much.
//!
//! Speed: a cell's cost, units, captured and covered word counts are packed into one `u64` whose
//! integer order is the preference order, so relaxing an edge is one add and one compare.

use super::graph::{Graph, Label, SlotSpec, Vocab};
use super::normalize::{Token, is_function_word};
use super::questions::{is_filler, opens_free_text};
use super::similarity::{Shape, similarity_with_shapes, substitution_cost, word_similarity};

/// Cost of a template word (or slot) that was not heard, in thousandths.
const MISSING_COST: u32 = 1000;
/// Cost of a heard word the template does not explain, in thousandths.
const EXTRA_COST: u32 = 800;
/// Cost of an unexplained heard word before or after everything the template says ("good
/// morning, briefing"): people pad requests at the edges more than in the middle.
const EDGE_EXTRA_COST: u32 = 500;
/// Highest cost at which two template words may match one heard word run together, or one
/// template word two heard words ("to do" / "todo"); higher would make it a cheap deletion.
const JOINED_MAX_COST: u32 = 225;
/// A list slot is accepted only when its option matches at least this well (cost per unit).
const LIST_MAX_COST_RATIO: f32 = 0.5;
/// Most heard words aligned; whisper produces far fewer per utterance.
pub(crate) const MAX_TOKENS: usize = 500;

/// One step of the best alignment, covering heard words `from..to` (see [`PathStep`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Step {
    /// The start of the template (internal to the search).
    Start,
    /// An empty edge: an alternative or optional part taken or left out (internal).
    Empty,
    /// Heard words skipped as a wake/politeness prefix or courtesy suffix.
    Skip,
    /// A heard word the template does not explain.
    Extra,
    /// A template word: heard exactly or nearly, or missing (no heard words).
    Word { id: u32 },
    /// A slot: `option` is the list option chosen; no heard words means the slot is missing.
    Slot { slot: u16, option: u16 },
}

/// A step of the best path with the heard words it covers and what it cost.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PathStep {
    pub step: Step,
    pub from: usize,
    pub to: usize,
    /// Cost of the step in thousandths (already weighted, as summed into the score).
    pub cost: u32,
    /// Units of the step in half units.
    pub units: u16,
}

/// The outcome of aligning one template.
#[derive(Debug, Clone, Default)]
pub(crate) struct Alignment {
    pub score: f32,
    /// Heard words explained by template words, numbers or list options (not by free text).
    pub coverage: u16,
    /// Heard words captured by free-text slots.
    pub captured: u16,
    /// The path, when asked for.
    pub path: Vec<PathStep>,
}

/// Packed cell value, most significant first: cost (32 bits, thousandths), 4095 - half units (12),
/// captured words (10), 1023 - covered words (10). Smaller is better: lower cost, then more
/// units (a higher score), then less free text captured, then more words explained literally.
type Key = u64;

/// Where an edge is taken from: cell (`node`, `pos`) holding path `here`, towards node `to`.
#[derive(Clone, Copy)]
struct EdgeStart {
    node: usize,
    pos: usize,
    here: Key,
    to: usize,
}
const UNREACHED: Key = u64::MAX;
const START: Key = (4095 << 20) | 1023;

/// The packed change of a step; added with wrapping arithmetic, every field stays in range
/// because units, captured and covered counts are bounded by the template and [`MAX_TOKENS`].
fn delta(cost: u32, units: u16, captured: u16, coverage: u16) -> Key {
    (u64::from(cost) << 32)
        .wrapping_sub(u64::from(units) << 20)
        .wrapping_add(u64::from(captured) << 10)
        .wrapping_sub(u64::from(coverage))
}

fn unpack(key: Key) -> (u32, u16, u16, u16) {
    let cost = (key >> 32) as u32;
    let units = 4095 - ((key >> 20) & 0xFFF) as u16;
    let captured = ((key >> 10) & 0x3FF) as u16;
    let coverage = 1023 - (key & 0x3FF) as u16;
    (cost, units, captured, coverage)
}

/// Where a cell's best value came from, kept only when a path is wanted.
#[derive(Debug, Clone, Copy)]
struct Back {
    node: u32,
    pos: u16,
    step: Step,
}

/// Aligns one transcript against many templates, remembering word costs between them.
pub(crate) struct Aligner<'a> {
    vocab: &'a Vocab,
    tokens: &'a [Token],
    lead: usize,
    trail: usize,
    /// Exact vocabulary id of each heard word, if any template uses it.
    exact: Vec<Option<u32>>,
    /// Shape of each heard word, for quick rejection of unrelated words.
    shapes: Vec<Shape>,
    /// Cost (thousandths) of (vocabulary word, heard word); `u16::MAX` until computed.
    costs: Vec<u16>,
    /// Cost of (vocabulary word, two heard words run together); `u16::MAX` until computed.
    joined: Vec<u16>,
    /// Lowest cost of each vocabulary word against any heard word; `u16::MAX` until computed.
    lowest: Vec<u16>,
    /// Weight in half units of each heard word: 1 for a function word, else 2.
    weights: Vec<u8>,
    /// Whether any heard word is a number.
    has_number: bool,
    /// Whether a free-text slot may begin at each heard word (see `normalize::opens_free_text`).
    opens_text: Vec<bool>,
    /// Scratch space of [`Aligner::upper_bound`].
    cheapest: Vec<u32>,
    cells: Vec<Key>,
    backs: Vec<Back>,
    want_path: bool,
}

impl<'a> Aligner<'a> {
    /// Prepares to align `tokens` (at most [`MAX_TOKENS`] are used), whose first `lead` and last
    /// `trail` words may be skipped for free.
    pub fn new(vocab: &'a Vocab, tokens: &'a [Token], lead: usize, trail: usize) -> Aligner<'a> {
        // A courtesy suffix past the cut is gone, so nothing at the new end is skippable.
        let trail = if tokens.len() > MAX_TOKENS { 0 } else { trail };
        let tokens = &tokens[..tokens.len().min(MAX_TOKENS)];
        let size = vocab.len() * tokens.len();
        Aligner {
            vocab,
            tokens,
            lead: lead.min(tokens.len()),
            trail: trail.min(tokens.len() - lead.min(tokens.len())),
            exact: tokens.iter().map(|t| vocab.get(&t.text)).collect(),
            shapes: tokens.iter().map(|t| Shape::of(&t.text)).collect(),
            weights: tokens
                .iter()
                .map(|t| u8::from(!is_function_word(&t.text) && !is_filler(&t.text)) + 1)
                .collect(),
            costs: vec![u16::MAX; size],
            joined: vec![u16::MAX; size],
            lowest: vec![u16::MAX; vocab.len()],
            has_number: tokens.iter().any(|t| t.number.is_some()),
            opens_text: (0..tokens.len())
                .map(|i| {
                    opens_free_text(&tokens[i].text, tokens.get(i + 1).map(|t| t.text.as_str()))
                })
                .collect(),
            cheapest: Vec::new(),
            cells: Vec::new(),
            backs: Vec::new(),
            want_path: false,
        }
    }

    /// Cost of hearing token `pos` for vocabulary word `id`, in thousandths.
    fn word_cost(&mut self, id: u32, pos: usize) -> u32 {
        if self.exact[pos] == Some(id) {
            return 0;
        }
        let slot = id as usize * self.tokens.len() + pos;
        if self.costs[slot] == u16::MAX {
            let similarity = similarity_with_shapes(
                self.vocab.word(id),
                self.vocab.shape(id),
                &self.tokens[pos].text,
                &self.shapes[pos],
            );
            self.costs[slot] = thousandths(substitution_cost(similarity));
        }
        u32::from(self.costs[slot])
    }

    /// Cost of hearing tokens `pos` and `pos + 1` run together for vocabulary word `id`.
    fn joined_cost(&mut self, id: u32, pos: usize) -> u32 {
        let slot = id as usize * self.tokens.len() + pos;
        if self.joined[slot] == u16::MAX {
            self.joined[slot] = thousandths(substitution_cost(self.joined_similarity(id, pos)));
        }
        u32::from(self.joined[slot])
    }

    fn joined_similarity(&self, id: u32, pos: usize) -> f32 {
        let word = self.vocab.word(id);
        let (a, b) = (&self.tokens[pos].text, &self.tokens[pos + 1].text);
        let close_length = (a.len() + b.len()).abs_diff(word.len()) <= 1;
        if close_length && a.len() < word.len() && word.starts_with(a.as_str()) {
            word_similarity(word, &format!("{a}{b}"))
        } else {
            0.0
        }
    }

    /// Lowest cost of vocabulary word `id` against any heard word (alone or run together with
    /// the next), or of leaving it out.
    fn lowest_cost(&mut self, id: u32) -> u32 {
        if self.lowest[id as usize] == u16::MAX {
            let n = self.tokens.len();
            let mut best = MISSING_COST;
            for pos in 0..n {
                best = best.min(self.word_cost(id, pos));
                if pos + 1 < n {
                    best = best.min(self.joined_cost(id, pos));
                }
            }
            self.lowest[id as usize] = best as u16;
        }
        u32::from(self.lowest[id as usize])
    }

    /// An upper bound of the score [`Aligner::align`] would give `graph`, in time linear in its
    /// edges: the cheapest path with each word at its lowest cost anywhere in the transcript,
    /// over the most units a path can count, with extra words at their best ratio.
    pub fn upper_bound(&mut self, graph: &Graph) -> f32 {
        let has_number = self.has_number;
        let mut cheapest = std::mem::take(&mut self.cheapest);
        cheapest.clear();
        cheapest.resize(graph.out.len(), u32::MAX);
        cheapest[0] = 0;
        for node in 0..graph.out.len() {
            if cheapest[node] == u32::MAX {
                continue;
            }
            for edge in &graph.out[node] {
                let cost = match edge.label {
                    Label::Empty => 0,
                    Label::Word { id, weight, .. } => self.lowest_cost(id) * u32::from(weight) / 2,
                    Label::Slot(slot) => match &graph.slots[usize::from(slot)].1 {
                        SlotSpec::Text => 0,
                        SlotSpec::Number => {
                            if has_number {
                                0
                            } else {
                                MISSING_COST
                            }
                        }
                        SlotSpec::List(options) => options
                            .iter()
                            .map(|o| o.words.iter().map(|&w| self.lowest_cost(w)).sum::<u32>())
                            .min()
                            .unwrap_or(0)
                            .min(MISSING_COST),
                    },
                };
                let to = edge.to as usize;
                cheapest[to] = cheapest[to].min(cheapest[node] + cost);
            }
        }
        let cost = cheapest.last().copied().unwrap_or(0) as f32 / 1000.0;
        self.cheapest = cheapest;
        let units = f32::from(graph.max_units.max(1)) / 2.0;
        // Extra words add at most one unit each, at a cost of at least half their units.
        let extra = self.tokens.len() as f32;
        let edge = EDGE_EXTRA_COST as f32 / 1000.0;
        let ratio = (cost / units).min((cost + extra * edge) / (units + extra));
        // Allow for the rounding of exact scores.
        1.0 - ratio + 0.001
    }

    /// Word-level alignment cost of a list option against heard words `pos..pos + len`:
    /// (cost in thousandths, units).
    fn option_cost(&mut self, option: &[u32], pos: usize, len: usize) -> (u32, u16) {
        let (m, k) = (option.len(), len);
        let width = k + 1;
        // Options are short; longer ones fall back to the heap.
        let mut stack = [0u32; 64];
        let mut heap = Vec::new();
        let table: &mut [u32] = if (m + 1) * width <= stack.len() {
            &mut stack[..(m + 1) * width]
        } else {
            heap.resize((m + 1) * width, 0);
            &mut heap
        };
        for i in 0..=m {
            for j in 0..=k {
                table[i * width + j] = if i == 0 {
                    j as u32 * EXTRA_COST
                } else if j == 0 {
                    i as u32 * MISSING_COST
                } else {
                    let sub = self.word_cost(option[i - 1], pos + j - 1);
                    (table[(i - 1) * width + j - 1] + sub)
                        .min(table[(i - 1) * width + j] + MISSING_COST)
                        .min(table[i * width + j - 1] + EXTRA_COST)
                };
            }
        }
        (table[m * width + k], 2 * m.max(k) as u16)
    }

    /// Aligns the transcript against `graph`; fills `path` only when `want_path` is set.
    pub fn align(&mut self, graph: &Graph, want_path: bool) -> Alignment {
        let n = self.tokens.len();
        let width = n + 1;
        let nodes = graph.out.len();
        self.want_path = want_path;
        self.cells.clear();
        self.cells.resize(nodes * width, UNREACHED);
        if want_path {
            self.backs.clear();
            self.backs.resize(
                nodes * width,
                Back {
                    node: 0,
                    pos: 0,
                    step: Step::Start,
                },
            );
        }
        self.cells[..=self.lead].fill(START);
        for node in 0..nodes {
            let base = node * width;
            let cost = if node == 0 || node == nodes - 1 {
                EDGE_EXTRA_COST
            } else {
                EXTRA_COST
            };
            for pos in 0..n {
                let here = self.cells[base + pos];
                if here != UNREACHED {
                    let weight = self.weights[pos];
                    let extra = delta(cost * u32::from(weight) / 2, u16::from(weight), 0, 0);
                    self.relax(node, pos, here, node, pos + 1, extra, Step::Extra);
                }
            }
            for edge in &graph.out[node] {
                for pos in 0..=n {
                    let here = self.cells[base + pos];
                    if here != UNREACHED {
                        self.relax_edge(graph, edge.label, node, pos, here, edge.to as usize);
                    }
                }
            }
        }
        let end = nodes - 1;
        let first_end = (n - self.trail).max(self.lead);
        let mut best_pos = n;
        for pos in first_end..=n {
            if self.cells[end * width + pos] < self.cells[end * width + best_pos] {
                best_pos = pos;
            }
        }
        let best = self.cells[end * width + best_pos];
        if best == UNREACHED {
            return Alignment::default();
        }
        let (cost, units, captured, coverage) = unpack(best);
        let score = if units > 0 {
            // Rounded to thousandths so that scores print cleanly and compare as printed.
            ((1.0 - cost as f32 / 500.0 / f32::from(units)).max(0.0) * 1000.0).round() / 1000.0
        } else {
            0.0
        };
        let path = if want_path {
            self.trace(end, best_pos, width)
        } else {
            Vec::new()
        };
        Alignment {
            score,
            coverage,
            captured,
            path,
        }
    }

    /// Offers every way of taking the edge `label` from (`node`, `pos`) to node `to`.
    fn relax_edge(
        &mut self,
        graph: &Graph,
        label: Label,
        node: usize,
        pos: usize,
        here: Key,
        to: usize,
    ) {
        let from = EdgeStart {
            node,
            pos,
            here,
            to,
        };
        match label {
            Label::Empty => self.relax(node, pos, here, to, pos, 0, Step::Empty),
            Label::Word { id, words, weight } => self.relax_word(from, id, words, weight),
            Label::Slot(slot) => self.relax_slot(graph, from, slot),
        }
    }

    /// A template word: missing, heard as one token, or (a single word) heard split in two.
    fn relax_word(&mut self, from: EdgeStart, id: u32, words: u8, weight: u8) {
        let (n, pos) = (self.tokens.len(), from.pos);
        let step = Step::Word { id };
        let (w, units) = (u32::from(weight), u16::from(weight));
        let offer = |this: &mut Self, to_pos: usize, change: Key| {
            this.relax(from.node, pos, from.here, from.to, to_pos, change, step);
        };
        if words == 1 {
            offer(self, pos, delta(MISSING_COST * w / 2, units, 0, 0));
        }
        if pos < n {
            let cost = self.word_cost(id, pos);
            // One heard word for two template words must be about as long as both together:
            // "heater" alone is not "heater on".
            let long_enough = || {
                self.vocab
                    .word(id)
                    .len()
                    .abs_diff(self.tokens[pos].text.len())
                    <= 1
            };
            if words == 1 || (cost <= JOINED_MAX_COST && long_enough()) {
                offer(self, pos + 1, delta(cost * w / 2, units, 0, 1));
            }
        }
        if words == 1 && pos + 1 < n {
            let cost = self.joined_cost(id, pos);
            if cost <= JOINED_MAX_COST {
                offer(self, pos + 2, delta(cost * w / 2, units, 0, 2));
            }
        }
    }

    /// A slot: missing, or filled by the tokens its kind accepts.
    fn relax_slot(&mut self, graph: &Graph, from: EdgeStart, slot: u16) {
        let (n, pos) = (self.tokens.len(), from.pos);
        let offer = |this: &mut Self, to_pos: usize, change: Key, step: Step| {
            this.relax(from.node, pos, from.here, from.to, to_pos, change, step);
        };
        let missing = Step::Slot { slot, option: 0 };
        offer(self, pos, delta(MISSING_COST, 2, 0, 0), missing);
        match &graph.slots[usize::from(slot)].1 {
            // Free text does not begin with a filler or a question, nor with the template word
            // right before it (which would leave that word missing to swallow what says it).
            SlotSpec::Text
                if pos < n
                    && self.opens_text[pos]
                    && !self.exact[pos].is_some_and(|w| graph.before[from.node].contains(&w)) =>
            {
                for end in pos + 1..=n {
                    offer(self, end, delta(0, 2, (end - pos) as u16, 0), missing);
                }
            }
            SlotSpec::Text => {}
            SlotSpec::Number => {
                if pos < n && self.tokens[pos].number.is_some() {
                    offer(self, pos + 1, delta(0, 2, 0, 1), missing);
                }
            }
            SlotSpec::List(options) => {
                for (index, option) in options.iter().enumerate() {
                    let longest = (option.words.len() + 1).min(n - pos);
                    for len in 1..=longest {
                        let (cost, units) = self.option_cost(&option.words, pos, len);
                        if cost as f32 / 500.0 <= LIST_MAX_COST_RATIO * f32::from(units) {
                            let step = Step::Slot {
                                slot,
                                option: index as u16,
                            };
                            offer(self, pos + len, delta(cost, units, 0, len as u16), step);
                        }
                    }
                }
            }
        }
    }

    /// Offers the path through (`from`, `from_pos`) plus `change` to cell (`to`, `to_pos`).
    #[allow(clippy::too_many_arguments)]
    fn relax(
        &mut self,
        from: usize,
        from_pos: usize,
        here: Key,
        to: usize,
        to_pos: usize,
        change: Key,
        step: Step,
    ) {
        let candidate = here.wrapping_add(change);
        let index = to * (self.tokens.len() + 1) + to_pos;
        if candidate < self.cells[index] {
            self.cells[index] = candidate;
            if self.want_path {
                self.backs[index] = Back {
                    node: from as u32,
                    pos: from_pos as u16,
                    step,
                };
            }
        }
    }

    /// Follows the back pointers from the end cell to the start.
    fn trace(&self, end: usize, end_pos: usize, width: usize) -> Vec<PathStep> {
        let mut path = Vec::new();
        let n = self.tokens.len();
        if end_pos < n {
            path.push(PathStep {
                step: Step::Skip,
                from: end_pos,
                to: n,
                cost: 0,
                units: 0,
            });
        }
        let (mut node, mut pos) = (end, end_pos);
        // Each step moves to an earlier node or position, so the walk ends; the bound is a guard.
        for _ in 0..self.backs.len() {
            let back = self.backs[node * width + pos];
            match back.step {
                Step::Start => {
                    if pos > 0 {
                        path.push(PathStep {
                            step: Step::Skip,
                            from: 0,
                            to: pos,
                            cost: 0,
                            units: 0,
                        });
                    }
                    break;
                }
                Step::Empty => {}
                step => {
                    let (after, _, _, _) = unpack(self.cells[node * width + pos]);
                    let before = self.cells[back.node as usize * width + usize::from(back.pos)];
                    let (cost, units_before, _, _) = unpack(before);
                    let units = unpack(self.cells[node * width + pos]).1 - units_before;
                    path.push(PathStep {
                        step,
                        from: usize::from(back.pos),
                        to: pos,
                        cost: after - cost,
                        units,
                    });
                }
            }
            (node, pos) = (back.node as usize, usize::from(back.pos));
        }
        path.reverse();
        path
    }

    /// Similarity of template word `id` to heard words `from..to` (one word, or two run together),
    /// for explanations.
    pub fn similarity(&self, id: u32, from: usize, to: usize) -> f32 {
        match to - from {
            1 => word_similarity(self.vocab.word(id), &self.tokens[from].text),
            2 => self.joined_similarity(id, from),
            _ => 0.0,
        }
    }
}

/// A cost between 0 and 1 in thousandths.
fn thousandths(cost: f32) -> u16 {
    (cost.clamp(0.0, 1.0) * 1000.0).round() as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_keys_order_and_unpack() {
        let a = START.wrapping_add(delta(500, 2, 0, 2));
        assert_eq!(unpack(a), (500, 2, 0, 2));
        let b = a.wrapping_add(delta(0, 1, 3, 0));
        assert_eq!(unpack(b), (500, 3, 3, 2));
        // Same cost, more units: better.
        assert!(b < a);
        // Lower cost beats everything else.
        assert!(START.wrapping_add(delta(100, 0, 0, 0)) < a);
        // Same cost and units, fewer captured words: better.
        let c = a.wrapping_add(delta(0, 1, 1, 1));
        assert!(c < b);
    }
}
