//! The order-free pass: a request that says a phrase's words in another order ("lights on in
//! the attic" for `turn on the {room} lights`, "turn bluetooth on" for `turn on bluetooth`).
//!
//! The aligner scores words in the order the phrase gives them, so a reordered request loses a
//! word for each one it moves. When no phrase reaches the threshold in order, the matcher tries
//! each phrase as a bag of words: every path through the phrase (its alternatives and optional
//! parts) is a list of elements that must each be found somewhere in the transcript, a distinct
//! word each: words by spelling, sound or synonym ([`word_similarity`] at least
//! [`MIN_WORD_SIMILARITY`]), a list slot as one of its options said as a run of words, a number
//! slot as a number. Function words and light verbs ("turn", "set", "put") may be missing at
//! half weight; every other element must be there, and a path needs two such elements, so a
//! phrase of one word is never matched out of order. Words of the transcript that no element
//! explains cost a quarter (function words) or one (others). The score is the weight found over
//! the weight wanted plus the extras, times [`ORDER_FREE_FACTOR`]: a request said in another
//! order never outscores one said in order. The winner must beat every other workflow by
//! [`ORDER_FREE_MARGIN`], the rivals scored with their missing elements counted as missing.
//!
//! Guards, because a bag of words is looser than a sequence: a phrase with a free-text slot is
//! never matched out of order (free text has no place without an order); a transcript with a
//! copula or a subject pronoun the path does not have ("the kitchen lights are on", "I left the
//! lights on") is a statement, not a request, unless it asks a question; and the question rule
//! of the matcher applies (a question matches only phrases that ask one).

use serde_json::{Map, Value};

use super::normalize::{Normalizer, Token, is_function_word};
use super::similarity::word_similarity;
use super::template::{Node, SlotKind};

/// Paths a phrase may expand to; a phrase with more is not matched out of order.
const MAX_PATHS: usize = 256;
/// How alike a heard word must be to a phrase's word to stand for it here (a synonym scores
/// 0.85).
pub(super) const MIN_WORD_SIMILARITY: f32 = 0.85;
/// What a bag-of-words match is worth against the same words in order.
pub(super) const ORDER_FREE_FACTOR: f32 = 0.95;
/// How far the winner of the order-free pass must score above every other workflow's phrases
/// scored with their missing words counted (not ruled out): wider than the in-order margin,
/// because out of order nothing tells which word a missing light verb stood for ("the garage
/// speaker" is neither "show" nor "hide the garage speaker").
pub(super) const ORDER_FREE_MARGIN: f32 = 0.15;
/// Verbs that carry little of a request's sense; like function words they may be left out.
const LIGHT_VERBS: &[&str] = &[
    "turn", "switch", "set", "put", "make", "get", "give", "tell", "show",
];
/// Verbs said in one word or as "turn" with a particle ("enable bluetooth", "turn bluetooth
/// on"): the verb and its particle. Opposites have opposite particles; "switch" is "turn" by
/// synonym, and the other verbs of a synonym class ("activate", "lower") by the same.
const PHRASAL: &[(&str, &str)] = &[
    ("enable", "on"),
    ("activate", "on"),
    ("disable", "off"),
    ("deactivate", "off"),
    ("increase", "up"),
    ("raise", "up"),
    ("decrease", "down"),
    ("lower", "down"),
    ("reduce", "down"),
];
/// Words that make a transcript a statement about things rather than a request, unless the
/// phrase has them too.
pub(super) const STATEMENT_WORDS: &[&str] = &[
    "is", "are", "was", "were", "am", "been", "be", "i", "we", "they", "he", "she",
];

/// One element a path needs.
#[derive(Debug, Clone)]
enum Elem {
    Word(String),
    /// A list slot: its name and its options (value as written, normalised words).
    List(String, Vec<(String, Vec<String>)>),
    /// A number slot's name.
    Number(String),
}

/// A phrase as the paths of elements the order-free pass looks for.
#[derive(Debug, Clone)]
pub(super) struct Bag {
    paths: Vec<Vec<Elem>>,
}

/// A phrase found out of order: its score and slot values.
#[derive(Debug, Clone)]
pub(super) struct BagMatch {
    pub score: f32,
    pub slots: Map<String, Value>,
}

impl Bag {
    /// The phrase `root` as a bag, or `None` when it cannot be matched out of order (a free-text
    /// slot, too many paths).
    pub(super) fn compile(root: &Node, normalizer: &Normalizer) -> Option<Bag> {
        let mut paths = expand(root, normalizer)?;
        let variants: Vec<Vec<Elem>> = paths
            .iter()
            .map(Vec::as_slice)
            .filter_map(phrasal_variant)
            .collect();
        paths.extend(
            variants
                .into_iter()
                .take(MAX_PATHS.saturating_sub(paths.len())),
        );
        let paths: Vec<Vec<Elem>> = paths
            .into_iter()
            .filter(|p| p.iter().filter(|e| !skippable(e)).count() >= 2)
            .collect();
        (!paths.is_empty()).then_some(Bag { paths })
    }

    /// The best path's match against the transcript's words (prefix and suffix removed);
    /// `question`: the transcript asks one (its subject pronouns and copulas are no statement).
    pub(super) fn best(&self, tokens: &[Token], question: bool) -> Option<BagMatch> {
        self.paths
            .iter()
            .filter_map(|p| score_path(p, tokens, question, true))
            .max_by(|a, b| a.score.total_cmp(&b.score))
    }

    /// [`Bag::best`]'s score with missing elements counted as missing rather than ruling a
    /// path out: how near a rival comes, for the margin the winner must keep.
    pub(super) fn near(&self, tokens: &[Token], question: bool) -> f32 {
        self.paths
            .iter()
            .filter_map(|p| score_path(p, tokens, question, false))
            .map(|m| m.score)
            .fold(0.0, f32::max)
    }
}

/// Every path through `node`, or `None` for a free-text slot or more than [`MAX_PATHS`].
fn expand(node: &Node, normalizer: &Normalizer) -> Option<Vec<Vec<Elem>>> {
    let words = |text: &str| -> Vec<String> {
        normalizer
            .template_words(text)
            .into_iter()
            .map(|t| t.text)
            .collect()
    };
    let paths = match node {
        Node::Text(text) => vec![words(text).into_iter().map(Elem::Word).collect()],
        Node::Sequence(parts) => {
            let mut out: Vec<Vec<Elem>> = vec![Vec::new()];
            for part in parts {
                let tails = expand(part, normalizer)?;
                if out.len() * tails.len() > MAX_PATHS {
                    return None;
                }
                out = out
                    .iter()
                    .flat_map(|head| {
                        tails.iter().map(move |tail| {
                            let mut p = head.clone();
                            p.extend(tail.iter().cloned());
                            p
                        })
                    })
                    .collect();
            }
            out
        }
        Node::Choice(branches) => {
            let mut out = Vec::new();
            for b in branches {
                out.extend(expand(b, normalizer)?);
            }
            out
        }
        Node::Optional(inner) => {
            let mut out = vec![Vec::new()];
            out.extend(expand(inner, normalizer)?);
            out
        }
        Node::Slot { name, kind } => match kind {
            SlotKind::Text => return None,
            SlotKind::Number => vec![vec![Elem::Number(name.clone())]],
            SlotKind::List(options) => vec![vec![Elem::List(
                name.clone(),
                options.iter().map(|o| (o.clone(), words(o))).collect(),
            )]],
        },
    };
    (paths.len() <= MAX_PATHS).then_some(paths)
}

/// The path said with its verb the other way ([`PHRASAL`]): a one-word verb as "turn" and its
/// particle, or "turn"/"switch" and a particle as the one-word verb; `None` when it has neither.
fn phrasal_variant(path: &[Elem]) -> Option<Vec<Elem>> {
    fn word(e: &Elem) -> Option<&str> {
        match e {
            Elem::Word(w) => Some(w),
            _ => None,
        }
    }
    if let Some((at, particle)) = path.iter().enumerate().find_map(|(i, e)| {
        let w = word(e)?;
        PHRASAL.iter().find(|(v, _)| *v == w).map(|(_, p)| (i, *p))
    }) {
        let mut out = path.to_vec();
        out[at] = Elem::Word("turn".into());
        out.insert(at + 1, Elem::Word(particle.into()));
        return Some(out);
    }
    let light = path
        .iter()
        .position(|e| matches!(word(e), Some("turn" | "switch")))?;
    let (particle_at, verb) = path.iter().enumerate().find_map(|(i, e)| {
        let w = word(e)?;
        PHRASAL.iter().find(|(_, p)| *p == w).map(|(v, _)| (i, *v))
    })?;
    let mut out = path.to_vec();
    out[light] = Elem::Word(verb.into());
    out.remove(particle_at);
    Some(out)
}

/// Whether an element may be missing (a function word or a light verb).
fn skippable(e: &Elem) -> bool {
    matches!(e, Elem::Word(w) if is_function_word(w) || LIGHT_VERBS.contains(&w.as_str()))
}

/// One path against the transcript's words; `None` when a needed element is missing or the
/// transcript (not a question) states rather than requests.
fn score_path(path: &[Elem], tokens: &[Token], question: bool, strict: bool) -> Option<BagMatch> {
    let has_word = |w: &str| path.iter().any(|e| matches!(e, Elem::Word(p) if p == w));
    if !question
        && tokens
            .iter()
            .any(|t| STATEMENT_WORDS.contains(&t.text.as_str()) && !has_word(&t.text))
    {
        return None;
    }
    let mut used = vec![false; tokens.len()];
    let mut slots = Map::new();
    let (mut wanted, mut found) = (0.0f32, 0.0f32);
    // The strongest evidence first: slots, then words that must be there, then the rest.
    let rank = |e: &Elem| match e {
        Elem::List(..) | Elem::Number(_) => 0,
        e if !skippable(e) => 1,
        _ => 2,
    };
    let mut order: Vec<&Elem> = path.iter().collect();
    order.sort_by_key(|e| rank(e));
    for e in order {
        match e {
            Elem::Word(w) => {
                let weight = if skippable(e) { 0.5 } else { 1.0 };
                wanted += weight;
                let best = (0..tokens.len())
                    .filter(|&i| !used[i])
                    .map(|i| (i, word_similarity(w, &tokens[i].text)))
                    .filter(|&(_, s)| s >= MIN_WORD_SIMILARITY)
                    .max_by(|a, b| a.1.total_cmp(&b.1));
                match best {
                    Some((i, s)) => {
                        used[i] = true;
                        found += weight * s;
                    }
                    None if skippable(e) || !strict => {}
                    None => return None,
                }
            }
            Elem::List(name, options) => {
                wanted += 1.5;
                let Some((value, at, len, s)) = best_option(options, tokens, &used) else {
                    if strict {
                        return None;
                    }
                    continue;
                };
                used[at..at + len].iter_mut().for_each(|u| *u = true);
                found += 1.5 * s;
                slots.insert(name.clone(), Value::String(value.to_owned()));
            }
            Elem::Number(name) => {
                wanted += 1.0;
                let Some(i) = (0..tokens.len()).find(|&i| !used[i] && tokens[i].number.is_some())
                else {
                    if strict {
                        return None;
                    }
                    continue;
                };
                used[i] = true;
                found += 1.0;
                slots.insert(
                    name.clone(),
                    super::matcher::number_value(tokens[i].number.unwrap_or_default()),
                );
            }
        }
    }
    let extra: f32 = tokens
        .iter()
        .zip(&used)
        .filter(|(_, u)| !**u)
        .map(|(t, _)| if is_function_word(&t.text) { 0.25 } else { 1.0 })
        .sum();
    Some(BagMatch {
        score: found / (wanted + extra) * ORDER_FREE_FACTOR,
        slots,
    })
}

/// The option of a list slot said best as a run of unused words: its value, where, how many
/// words and their mean similarity. Longer options win ties ("living room" over "room").
fn best_option<'a>(
    options: &'a [(String, Vec<String>)],
    tokens: &[Token],
    used: &[bool],
) -> Option<(&'a str, usize, usize, f32)> {
    let mut best: Option<(&str, usize, usize, f32)> = None;
    for (value, words) in options {
        let n = words.len();
        if n == 0 || n > tokens.len() {
            continue;
        }
        for at in 0..=tokens.len() - n {
            if used[at..at + n].iter().any(|&u| u) {
                continue;
            }
            let sims: Vec<f32> = words
                .iter()
                .zip(&tokens[at..at + n])
                .map(|(w, t)| word_similarity(w, &t.text))
                .collect();
            if sims.iter().any(|&s| s < MIN_WORD_SIMILARITY) {
                continue;
            }
            let s = sims.iter().sum::<f32>() / n as f32;
            let better = best.is_none_or(|(_, _, bn, bs)| (n, s) > (bn, bs));
            if better {
                best = Some((value, at, n, s));
            }
        }
    }
    best
}
