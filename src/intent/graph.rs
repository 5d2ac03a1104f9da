//! Templates compiled to graphs, and the vocabulary of all their words.
//!
//! A template compiles to a small acyclic graph whose edges are words, slots or empty steps
//! (alternatives and optional parts); node ids are in topological order, so the aligner can sweep
//! them in order. Every word gets a number in a shared [`Vocab`] so a heard word is compared with
//! each distinct template word at most once per transcript.

use std::collections::HashMap;

use super::normalize::{Normalizer, is_function_word};
use super::similarity::Shape;
use super::template::{Node, SlotKind};

/// All words of all templates, numbered so heard words can be compared once per call.
#[derive(Debug, Clone, Default)]
pub(crate) struct Vocab {
    ids: HashMap<String, u32>,
    words: Vec<String>,
    shapes: Vec<Shape>,
}

impl Vocab {
    fn intern(&mut self, word: &str) -> u32 {
        if let Some(&id) = self.ids.get(word) {
            return id;
        }
        let id = self.words.len() as u32;
        self.ids.insert(word.to_string(), id);
        self.words.push(word.to_string());
        self.shapes.push(Shape::of(word));
        id
    }

    /// The id of `word`, if some template uses it.
    pub fn get(&self, word: &str) -> Option<u32> {
        self.ids.get(word).copied()
    }

    /// How many distinct words there are.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// The shape of the word with this id (ids come from this vocabulary, so it exists).
    pub fn shape(&self, id: u32) -> &Shape {
        &self.shapes[id as usize]
    }

    /// The word with this id.
    pub fn word(&self, id: u32) -> &str {
        self.words.get(id as usize).map_or("", String::as_str)
    }
}

/// What an edge of the template graph stands for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Label {
    Empty,
    /// A template word; `words` is 2 for the joined form of two adjacent words ("todo").
    /// `weight` is in half units: 1 for a function word, 2 for any other word (summed for pairs).
    Word {
        id: u32,
        words: u8,
        weight: u8,
    },
    Slot(u16),
}

#[derive(Debug, Clone)]
pub(crate) struct Edge {
    pub to: u32,
    pub label: Label,
}

/// One option of a list slot: its canonical value and its normalised words.
#[derive(Debug, Clone)]
pub(crate) struct ListOption {
    pub value: String,
    pub words: Vec<u32>,
}

/// A slot of a compiled template.
#[derive(Debug, Clone)]
pub(crate) enum SlotSpec {
    Text,
    Number,
    List(Vec<ListOption>),
}

/// A compiled template: an acyclic graph whose node ids are already in topological order.
#[derive(Debug, Clone)]
pub(crate) struct Graph {
    /// Outgoing edges per node.
    pub out: Vec<Vec<Edge>>,
    /// Slot names and kinds, indexed by `Label::Slot`.
    pub slots: Vec<(String, SlotSpec)>,
    /// The most half units any path from start to end can count (see `align`).
    pub max_units: u16,
    /// Per node, the template words that can come right before it.
    pub before: Vec<Vec<u32>>,
}

impl Graph {
    /// Compiles a parsed template; `None` when, after normalisation, it could match silence.
    pub fn compile(root: &Node, normalizer: &Normalizer, vocab: &mut Vocab) -> Option<Graph> {
        let mut graph = Graph {
            out: vec![Vec::new()],
            slots: Vec::new(),
            max_units: 0,
            before: Vec::new(),
        };
        graph.add(root, 0, normalizer, vocab);
        graph.add_joined_pairs(vocab);
        graph.max_units = graph.longest_path();
        graph.before = graph.words_before();
        (graph.min_words() > 0).then_some(graph)
    }

    fn new_node(&mut self) -> u32 {
        self.out.push(Vec::new());
        (self.out.len() - 1) as u32
    }

    fn edge(&mut self, from: u32, to: u32, label: Label) {
        self.out[from as usize].push(Edge { to, label });
    }

    /// Adds `node` starting at graph node `from`; returns the node where it ends.
    fn add(&mut self, node: &Node, from: u32, normalizer: &Normalizer, vocab: &mut Vocab) -> u32 {
        match node {
            Node::Text(text) => normalizer
                .template_words(text)
                .iter()
                .fold(from, |at, token| {
                    let to = self.new_node();
                    let weight = if is_function_word(&token.text) { 1 } else { 2 };
                    self.edge(
                        at,
                        to,
                        Label::Word {
                            id: vocab.intern(&token.text),
                            words: 1,
                            weight,
                        },
                    );
                    to
                }),
            Node::Sequence(parts) => parts
                .iter()
                .fold(from, |at, part| self.add(part, at, normalizer, vocab)),
            Node::Choice(branches) => {
                let ends: Vec<u32> = branches
                    .iter()
                    .map(|b| self.add(b, from, normalizer, vocab))
                    .collect();
                let to = self.new_node();
                for end in ends {
                    self.edge(end, to, Label::Empty);
                }
                to
            }
            Node::Optional(inner) => {
                let end = self.add(inner, from, normalizer, vocab);
                let to = self.new_node();
                self.edge(end, to, Label::Empty);
                self.edge(from, to, Label::Empty);
                to
            }
            Node::Slot { name, kind } => {
                let spec = match kind {
                    SlotKind::Text => SlotSpec::Text,
                    SlotKind::Number => SlotSpec::Number,
                    SlotKind::List(options) => SlotSpec::List(
                        options
                            .iter()
                            .map(|o| ListOption {
                                value: o.clone(),
                                words: normalizer
                                    .template_words(o)
                                    .iter()
                                    .map(|t| vocab.intern(&t.text))
                                    .collect(),
                            })
                            .filter(|o| !o.words.is_empty())
                            .collect(),
                    ),
                };
                self.slots.push((name.clone(), spec));
                let to = self.new_node();
                self.edge(from, to, Label::Slot((self.slots.len() - 1) as u16));
                to
            }
        }
    }

    /// For two words in a row ("to" then "do") adds a shortcut edge for their joined form, so a
    /// transcript that runs them together ("todo") still matches.
    fn add_joined_pairs(&mut self, vocab: &mut Vocab) {
        let mut incoming = vec![0usize; self.out.len()];
        for edges in &self.out {
            for e in edges {
                incoming[e.to as usize] += 1;
            }
        }
        let mut shortcuts = Vec::new();
        for (from, edges) in self.out.iter().enumerate() {
            for first in edges {
                let Label::Word {
                    id: a,
                    words: 1,
                    weight: wa,
                } = first.label
                else {
                    continue;
                };
                let middle = first.to as usize;
                if incoming[middle] != 1 || self.out[middle].len() != 1 {
                    continue;
                }
                let second = &self.out[middle][0];
                let Label::Word {
                    id: b,
                    words: 1,
                    weight: wb,
                } = second.label
                else {
                    continue;
                };
                let (a, b) = (vocab.word(a), vocab.word(b));
                let digit = |w: &str| w.bytes().any(|c| c.is_ascii_digit());
                if !digit(a) && !digit(b) {
                    shortcuts.push((from as u32, second.to, format!("{a}{b}"), wa + wb));
                }
            }
        }
        for (from, to, joined, weight) in shortcuts {
            let id = vocab.intern(&joined);
            self.edge(
                from,
                to,
                Label::Word {
                    id,
                    words: 2,
                    weight,
                },
            );
        }
    }

    /// The most half units on any path: a word counts its weight, a slot 2, a list slot twice
    /// its longest option plus one (an extra word inside the option).
    fn longest_path(&self) -> u16 {
        let mut most = vec![0u16; self.out.len()];
        for (node, edges) in self.out.iter().enumerate() {
            for e in edges {
                let units = match e.label {
                    Label::Empty => 0,
                    Label::Word { weight, .. } => u16::from(weight),
                    Label::Slot(slot) => match &self.slots[usize::from(slot)].1 {
                        SlotSpec::List(options) => {
                            let longest = options.iter().map(|o| o.words.len()).max().unwrap_or(0);
                            2 * (longest as u16 + 1)
                        }
                        _ => 2,
                    },
                };
                let to = e.to as usize;
                most[to] = most[to].max(most[node].saturating_add(units));
            }
        }
        most.last().copied().unwrap_or(0)
    }

    /// For each node, the words on edges into it, seen through empty edges.
    fn words_before(&self) -> Vec<Vec<u32>> {
        let mut before: Vec<Vec<u32>> = vec![Vec::new(); self.out.len()];
        // Node ids are topological: a node's incoming edges all come from earlier nodes.
        for node in 0..self.out.len() {
            for e in &self.out[node] {
                let to = e.to as usize;
                let words = match e.label {
                    Label::Empty => before[node].clone(),
                    Label::Word { id, words: 1, .. } => vec![id],
                    _ => continue,
                };
                for w in words {
                    if !before[to].contains(&w) {
                        before[to].push(w);
                    }
                }
            }
        }
        before
    }

    /// The words a path can begin with (slots and later words not included).
    pub fn first_words(&self) -> Vec<u32> {
        let mut reached = vec![false; self.out.len()];
        reached[0] = true;
        let mut words = Vec::new();
        // Node ids are topological, so one sweep follows every chain of empty edges.
        for node in 0..self.out.len() {
            if !reached[node] {
                continue;
            }
            for e in &self.out[node] {
                match e.label {
                    Label::Empty => reached[e.to as usize] = true,
                    Label::Word { id, words: 1, .. } => words.push(id),
                    _ => {}
                }
            }
        }
        words
    }

    /// The fewest words and slots on any path from start to end.
    fn min_words(&self) -> usize {
        let mut best = vec![usize::MAX; self.out.len()];
        best[0] = 0;
        for (node, edges) in self.out.iter().enumerate() {
            if best[node] == usize::MAX {
                continue;
            }
            for e in edges {
                let step = usize::from(!matches!(e.label, Label::Empty));
                let to = e.to as usize;
                best[to] = best[to].min(best[node] + step);
            }
        }
        best.last().copied().unwrap_or(0)
    }
}
