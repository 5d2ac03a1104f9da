//! The [`Matcher`]: picks the workflow a transcript asks for and pulls out its slot values.
//!
//! Every template of every workflow is aligned against the normalised transcript (see `align`).
//! The best template wins if it scores at least [`MatchOptions::threshold`] and beats the best
//! template of every other workflow by [`MatchOptions::margin`]. One exception keeps specific
//! phrases usable next to catch-alls: when the rivals within the margin only explain some heard
//! words through a free-text slot, the template that explains the most words literally wins
//! ("call mom on slack" picks `call {name} on slack` over `call {name}`). Another keeps
//! contrasting phrases usable side by side: the best also wins when it beats each close rival by
//! [`MatchOptions::contrast_margin`] on the steps their alignments do not share (see `contrast`),
//! so "turn off the living room lights" said exactly is not refused for its "on" twin. A
//! transcript that asks a question only matches templates that ask one, and one that makes a
//! statement ("I turned the volume up yesterday") only templates that make one ("I'm home").
//! When nothing is decided in order, the order-free pass (see `unordered`) looks for a phrase's
//! words in another order ("lights on in the attic").

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::align::{Aligner, PathStep, Step};
use super::contrast::{contrast, signed};
use super::graph::{Graph, SlotSpec, Vocab};
use super::normalize::{
    DEFAULT_PREFIXES, DEFAULT_SKIP_WORDS, DEFAULT_SUFFIXES, Normalized, Normalizer, Token,
};
use super::prompt::build_prompt;
use super::questions::{is_question_phrase, opens_statement};
use super::template::{Template, TemplateError, parse_template};
use super::unordered::{Bag, BagMatch, ORDER_FREE_MARGIN, STATEMENT_WORDS};

/// The voice phrases of one workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VoiceEntry {
    /// The workflow's id, e.g. `"morning_briefing"`.
    pub workflow_id: String,
    /// Its phrase templates, e.g. `"(play|put on) {song}"`.
    pub phrases: Vec<String>,
}

/// Tuning of the matcher. Build with `MatchOptions { threshold: 0.8, ..Default::default() }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MatchOptions {
    /// Lowest score (0..=1) a match needs; 1.0 means word-perfect after normalisation.
    pub threshold: f32,
    /// How far the best workflow must score above every other workflow, unless it wins on the
    /// words that tell them apart (see [`MatchOptions::contrast_margin`]).
    pub margin: f32,
    /// How far the best workflow must score above a close rival on the steps their alignments
    /// do not share (the distinguishing words), to win although the overall scores are within
    /// `margin`. Its own distinguishing steps must also score at least `threshold`.
    pub contrast_margin: f32,
    /// Filler words dropped from templates and transcripts ("um", "uh", "please").
    pub skip_words: Vec<String>,
    /// Phrases skipped for free at the start of a transcript ("hey atlas", "okay").
    pub prefixes: Vec<String>,
    /// Phrases skipped for free at the end of a transcript ("thanks", "atlas").
    pub suffixes: Vec<String>,
    /// How many candidates an outcome lists for explanation.
    pub max_candidates: usize,
}

impl Default for MatchOptions {
    fn default() -> Self {
        let own = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
        MatchOptions {
            threshold: 0.75,
            margin: 0.1,
            contrast_margin: 0.25,
            skip_words: own(DEFAULT_SKIP_WORDS),
            prefixes: own(DEFAULT_PREFIXES),
            suffixes: own(DEFAULT_SUFFIXES),
            max_candidates: 5,
        }
    }
}

/// The accepted match for a transcript.
///
/// Slot values: a number slot gives a JSON integer when whole (`"twenty five"` -> `25`) and a
/// float otherwise; a list slot gives its option as written in the template; a free-text slot
/// gives the heard words normalised (lowercase, no punctuation, contractions expanded, filler
/// removed) except that numbers stay as they were heard, in words or digits ("buy twelve eggs").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Match {
    /// The workflow to run.
    pub workflow_id: String,
    /// The template that matched, as written.
    pub phrase: String,
    /// How well it matched, 0..=1.
    pub score: f32,
    /// Slot values by slot name.
    pub slots: Map<String, Value>,
}

/// One scored template, for explaining a decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// The template's workflow.
    pub workflow_id: String,
    /// The template as written.
    pub phrase: String,
    /// How well it matched, 0..=1.
    pub score: f32,
    /// Slot values the alignment found (see [`Match`]).
    pub slots: Map<String, Value>,
    /// What the alignment did: "exact", or notes such as "heard 'breathing' for 'briefing'".
    pub why: String,
}

/// The result of matching one transcript.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatchOutcome {
    /// The transcript as given.
    pub transcript: String,
    /// The transcript after normalisation, wake prefix and courtesy suffix removed.
    pub normalized: String,
    /// The accepted match, if any.
    pub best: Option<Match>,
    /// The best-scoring templates, best first: at most [`MatchOptions::max_candidates`],
    /// leaving out those scoring below half of `threshold - margin` (the best is always listed).
    pub candidates: Vec<Candidate>,
    /// Why nothing matched, when `best` is `None`.
    pub reason: Option<String>,
}

impl MatchOutcome {
    /// A few lines for a `--explain` flag: the decision, then one line per candidate.
    pub fn explain(&self) -> String {
        let mut out = format!(
            "heard: {:?}\nnormalised: {:?}\n",
            self.transcript, self.normalized
        );
        match (&self.best, &self.reason) {
            (Some(m), _) => out.push_str(&format!(
                "matched: {} ({:.2}) via \"{}\" {}\n",
                m.workflow_id,
                m.score,
                m.phrase,
                Value::Object(m.slots.clone())
            )),
            (None, Some(reason)) => out.push_str(&format!("no match: {reason}\n")),
            (None, None) => out.push_str("no match\n"),
        }
        for c in &self.candidates {
            out.push_str(&format!(
                "  {:.2}  {:<20} \"{}\" {} [{}]\n",
                c.score,
                c.workflow_id,
                c.phrase,
                Value::Object(c.slots.clone()),
                c.why
            ));
        }
        out
    }
}

/// A compiled template with the workflow it belongs to.
#[derive(Debug, Clone)]
pub(super) struct Compiled {
    pub(super) workflow: usize,
    pub(super) template: Template,
    pub(super) graph: Graph,
    /// True when the template asks a question ("what's the weather"); only such templates may
    /// match a transcript that asks one.
    pub(super) question: bool,
    /// True when the template tells about its speaker ("I'm home"); only such templates may
    /// match a transcript that makes a statement.
    pub(super) statement: bool,
    /// The template as a bag of words for the order-free pass (`None`: never out of order).
    pub(super) bag: Option<Bag>,
}

/// A template's score for one transcript.
#[derive(Debug, Clone, Copy)]
struct Scored {
    index: usize,
    pub(super) workflow: usize,
    score: f32,
    coverage: u16,
    captured: u16,
    /// True when the transcript asks a question and the template does not, or makes a statement
    /// and the template does not: it cannot win.
    blocked: bool,
}

/// A sentence the user may have said, as [`Matcher::nearest_readings`] writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// As whisper writes a sentence: " Turn on the attic lights."
    pub text: String,
    /// What it asks for: the workflow and its slot values; readings of one meaning ask for the
    /// same thing in other words.
    pub meaning: String,
}

/// Most readings one phrase gives [`Matcher::nearest_readings`] (one per option of a list slot
/// that got no words).
const READINGS_PER_PHRASE: usize = 16;

/// Matches transcripts against the voice phrases of all workflows. Cheap to share; matching
/// takes `&self`.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub(super) options: MatchOptions,
    pub(super) normalizer: Normalizer,
    pub(super) vocab: Vocab,
    pub(super) workflows: Vec<String>,
    pub(super) templates: Vec<Compiled>,
}

impl Matcher {
    /// Parses and compiles every phrase; returns all template errors at once if any phrase is
    /// invalid. Entries sharing a workflow id are merged.
    pub fn new(
        entries: &[VoiceEntry],
        options: MatchOptions,
    ) -> Result<Matcher, Vec<TemplateError>> {
        let normalizer = Normalizer::new(&options.skip_words, &options.prefixes, &options.suffixes);
        let mut vocab = Vocab::default();
        let mut workflows: Vec<String> = Vec::new();
        let mut index_of: HashMap<&str, usize> = HashMap::new();
        let mut templates = Vec::new();
        let mut errors = Vec::new();
        for entry in entries {
            let workflow = *index_of
                .entry(entry.workflow_id.as_str())
                .or_insert_with(|| {
                    workflows.push(entry.workflow_id.clone());
                    workflows.len() - 1
                });
            for phrase in &entry.phrases {
                let mut fail = |mut error: TemplateError| {
                    error.workflow_id = Some(entry.workflow_id.clone());
                    errors.push(error);
                };
                match parse_template(phrase) {
                    Ok(template) => match Graph::compile(&template.root, &normalizer, &mut vocab) {
                        Some(graph) => {
                            let firsts = graph.first_words();
                            let firsts: Vec<&str> = firsts.iter().map(|&w| vocab.word(w)).collect();
                            let question = is_question_phrase(&template.source, &firsts);
                            let statement = firsts.iter().any(|w| opens_statement(w));
                            let bag = Bag::compile(&template.root, &normalizer);
                            templates.push(Compiled {
                                workflow,
                                template,
                                graph,
                                question,
                                statement,
                                bag,
                            });
                        }
                        None => fail(TemplateError {
                            column: 1,
                            message: "only filler words are required (they are ignored when \
                                      matching); add a word that must be said"
                                .to_string(),
                            phrase: phrase.clone(),
                            workflow_id: None,
                        }),
                    },
                    Err(error) => fail(error),
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Matcher {
            options,
            normalizer,
            vocab,
            workflows,
            templates,
        })
    }

    /// The options this matcher was built with.
    pub fn options(&self) -> &MatchOptions {
        &self.options
    }

    /// Scores every template against `transcript` and decides which workflow, if any, it asks for.
    pub fn match_text(&self, transcript: &str) -> MatchOutcome {
        self.match_with(transcript, true)
    }

    /// [`Matcher::match_text`] aligning every template, to check that pruning changes nothing.
    #[cfg(test)]
    pub(crate) fn match_text_exhaustive(&self, transcript: &str) -> MatchOutcome {
        self.match_with(transcript, false)
    }

    fn match_with(&self, transcript: &str, prune: bool) -> MatchOutcome {
        let normalized = self.normalizer.transcript(transcript);
        let mut outcome = MatchOutcome {
            transcript: transcript.to_string(),
            normalized: normalized.core_text(),
            best: None,
            candidates: Vec::new(),
            reason: None,
        };
        if normalized.tokens.is_empty() {
            outcome.reason =
                Some("nothing to match: no words left after removing filler words".into());
            return outcome;
        }
        let tokens = &normalized.tokens;
        let mut aligner = Aligner::new(&self.vocab, tokens, normalized.lead, normalized.trail);
        let mood = Mood::of(&normalized);
        let scored = self.score(&mut aligner, prune, mood);
        let decision = self.decide(&mut aligner, &scored, mood);
        let mut built: Vec<(usize, Candidate)> = Vec::new();
        let listed_floor = (self.options.threshold - self.options.margin) / 2.0;
        let listed = scored
            .iter()
            .enumerate()
            .filter(|(i, s)| *i == 0 || s.score >= listed_floor);
        for (_, s) in listed.take(self.options.max_candidates) {
            built.push((s.index, self.candidate(&mut aligner, s, tokens, mood)));
        }
        // Nothing decided in order (too low, or a tie the order hides: "turn the kitchen lights
        // on" beside "turn on/off the kitchen lights"): maybe a phrase's words in another order.
        let order_free = match &decision {
            Err(_) => self.order_free(&normalized, &outcome.normalized),
            Ok(_) => None,
        };
        let decision =
            decision.map(
                |winner| match built.iter().find(|(i, _)| *i == winner.index) {
                    Some((_, c)) => c.clone(),
                    None => self.candidate(&mut aligner, &winner, tokens, mood),
                },
            );
        outcome.candidates = built.into_iter().map(|(_, c)| c).collect();
        let decision = match order_free {
            Some(c) => {
                outcome.candidates.insert(0, c.clone());
                outcome
                    .candidates
                    .truncate(self.options.max_candidates.max(1));
                Ok(c)
            }
            None => decision,
        };
        match decision {
            Ok(c) => {
                tracing::debug!(workflow = %c.workflow_id, score = c.score, phrase = %c.phrase, "voice phrase matched");
                outcome.best = Some(Match {
                    workflow_id: c.workflow_id,
                    phrase: c.phrase,
                    score: c.score,
                    slots: c.slots,
                });
            }
            Err(reason) => {
                tracing::debug!(reason = %reason, "no voice phrase matched");
                outcome.reason = Some(reason);
            }
        }
        outcome
    }

    /// Scores templates, best first. With `prune`, templates are aligned in order of an upper
    /// bound of their score and the search stops once no remaining template can change the
    /// decision or enter the listed candidates (templates that cannot reach half the acceptance
    /// floor are not listed). The scores returned are exact either way, and the best is always
    /// among them.
    fn score(&self, aligner: &mut Aligner<'_>, prune: bool, mood: Mood) -> Vec<Scored> {
        let mut order: Vec<(f32, usize)> = self
            .templates
            .iter()
            .enumerate()
            .map(|(i, t)| {
                (
                    if prune {
                        aligner.upper_bound(&t.graph)
                    } else {
                        1.0
                    },
                    i,
                )
            })
            .collect();
        order.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let keep = self.options.max_candidates.max(1);
        let floor = self.options.threshold - self.options.margin;
        let mut scored: Vec<Scored> = Vec::new();
        // The `keep` best exact scores so far, best first.
        let mut leaders: Vec<f32> = Vec::new();
        for (bound, index) in order {
            // Below `floor` a template cannot change the decision. It is still aligned while it
            // could be one of the `keep` best (to list it), unless it cannot reach half the floor.
            let full = leaders.len() >= keep && leaders.last().is_some_and(|&l| bound < l);
            let hopeless = bound < floor / 2.0 && leaders.first().is_some_and(|&l| bound < l);
            if bound < floor && (full || hopeless) {
                break;
            }
            let compiled = &self.templates[index];
            let a = aligner.align(&compiled.graph, false);
            let at = leaders.partition_point(|&l| l >= a.score);
            if at < keep {
                leaders.insert(at, a.score);
                leaders.truncate(keep);
            }
            scored.push(Scored {
                index,
                workflow: compiled.workflow,
                score: a.score,
                coverage: a.coverage,
                captured: a.captured,
                blocked: mood.blocks(compiled),
            });
        }
        scored.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(b.coverage.cmp(&a.coverage))
                .then(a.captured.cmp(&b.captured))
                .then(a.index.cmp(&b.index))
        });
        scored
    }

    /// Applies the threshold, margin and contrast rules to scores sorted best first.
    fn decide(
        &self,
        aligner: &mut Aligner<'_>,
        scored: &[Scored],
        mood: Mood,
    ) -> Result<Scored, String> {
        let mut seen = vec![false; self.workflows.len()];
        let mut per_workflow: Vec<Scored> = Vec::new();
        for s in scored.iter().filter(|s| !s.blocked) {
            if !std::mem::replace(&mut seen[s.workflow], true) {
                per_workflow.push(*s);
            }
        }
        let describe = |s: &Scored| {
            format!(
                "{} (\"{}\", {:.2})",
                self.workflows[s.workflow], self.templates[s.index].template.source, s.score
            )
        };
        let blocked = scored.iter().find(|s| s.blocked);
        let question = |s: &Scored| {
            format!(
                "{} does not start a command: best was {}, which is not one",
                mood.what(),
                describe(s)
            )
        };
        let Some(&top) = per_workflow.first() else {
            return Err(match (blocked, scored.first()) {
                (Some(s), _) if s.score >= self.options.threshold => question(s),
                (_, Some(_)) => {
                    format!("below threshold: no phrase that is {} matched", mood.what())
                }
                (_, None) => "no voice phrases are configured".into(),
            });
        };
        if top.score < self.options.threshold {
            if let Some(s) = blocked.filter(|s| s.score >= self.options.threshold) {
                return Err(question(s));
            }
            return Err(format!(
                "below threshold: best was {}, needs {:.2}",
                describe(&top),
                self.options.threshold
            ));
        }
        let close: Vec<Scored> = per_workflow
            .iter()
            .copied()
            .filter(|s| top.score - s.score < self.options.margin)
            .collect();
        if close.len() == 1 {
            return Ok(top);
        }
        // A template that explains more heard words literally beats rivals that only swallow
        // those words in a free-text slot.
        let most = close.iter().map(|s| s.coverage).max().unwrap_or(0);
        let leaders: Vec<&Scored> = close.iter().filter(|s| s.coverage == most).collect();
        if let [leader] = leaders.as_slice()
            && leader.score >= self.options.threshold
            && close
                .iter()
                .all(|s| s.index == leader.index || s.captured > 0)
        {
            return Ok(**leader);
        }
        // The best beats each close rival on the words that tell them apart.
        let steps = |this: &Self, aligner: &mut Aligner<'_>, s: &Scored| {
            let graph = &this.templates[s.index].graph;
            signed(&aligner.align(graph, true).path, graph)
        };
        let mine = steps(self, aligner, &top);
        let mut rival_left = None;
        for rival in &close[1..] {
            let (own, theirs) = contrast(&mine, &steps(self, aligner, rival));
            let wins =
                own >= self.options.threshold && own - theirs >= self.options.contrast_margin;
            if !wins {
                rival_left = Some((rival, own, theirs));
                break;
            }
        }
        let Some((rival, own, theirs)) = rival_left else {
            return Ok(top);
        };
        Err(format!(
            "ambiguous between {} and {} (on the words that differ: {own:.2} / {theirs:.2}); \
             make their phrases more distinct",
            describe(&top),
            describe(rival)
        ))
    }

    /// The order-free pass (see `unordered`): the best phrase found as a bag of words, when it
    /// reaches the threshold and beats every other workflow's by the margin.
    fn order_free(&self, normalized: &Normalized, core: &str) -> Option<Candidate> {
        let n = normalized.tokens.len();
        let tokens = if normalized.lead + normalized.trail < n {
            &normalized.tokens[normalized.lead..n - normalized.trail]
        } else {
            &normalized.tokens[..]
        };
        let mut best: Option<(usize, BagMatch)> = None;
        // Each workflow's nearest score, missing words counted.
        let mut near = vec![0.0f32; self.workflows.len()];
        for (index, t) in self.templates.iter().enumerate() {
            let Some(bag) = t.bag.as_ref().filter(|_| !Mood::of(normalized).blocks(t)) else {
                continue;
            };
            let n = &mut near[t.workflow];
            *n = n.max(bag.near(tokens, normalized.question));
            let Some(m) = bag.best(tokens, normalized.question) else {
                continue;
            };
            if best.as_ref().is_none_or(|(_, b)| m.score > b.score) {
                best = Some((index, m));
            }
        }
        let (index, top) = best?;
        let workflow = self.templates[index].workflow;
        let runner_up = near
            .iter()
            .enumerate()
            .filter(|&(w, _)| w != workflow)
            .map(|(_, &s)| s)
            .fold(0.0, f32::max);
        if top.score < self.options.threshold || top.score - runner_up < ORDER_FREE_MARGIN {
            return None;
        }
        let compiled = &self.templates[index];
        Some(Candidate {
            workflow_id: self.workflows[compiled.workflow].clone(),
            phrase: compiled.template.source.clone(),
            score: top.score,
            slots: top.slots.clone(),
            why: format!("its words in another order: \"{core}\""),
        })
    }

    /// Realigns one scored template with its path to read slot values and explain the score.
    fn candidate(
        &self,
        aligner: &mut Aligner<'_>,
        s: &Scored,
        tokens: &[Token],
        mood: Mood,
    ) -> Candidate {
        let compiled = &self.templates[s.index];
        let alignment = aligner.align(&compiled.graph, true);
        let mut slots = Map::new();
        let mut notes = Vec::new();
        for PathStep { step, from, to, .. } in alignment.path.iter().copied() {
            let heard = || super::normalize::written(&tokens[from..to]);
            match step {
                Step::Skip => notes.push(format!("skipped '{}'", heard())),
                Step::Extra => notes.push(format!("extra '{}'", heard())),
                Step::Word { id } if from == to => {
                    notes.push(format!("missing '{}'", self.vocab.word(id)));
                }
                Step::Word { id } => {
                    let similarity = aligner.similarity(id, from, to);
                    if similarity < 1.0 || to - from > 1 {
                        let word = self.vocab.word(id);
                        notes.push(format!(
                            "heard '{}' for '{word}' ({similarity:.2})",
                            heard()
                        ));
                    }
                }
                Step::Slot { slot, option } => {
                    let (name, spec) = &compiled.graph.slots[usize::from(slot)];
                    if from == to {
                        notes.push(format!("slot '{name}' missing"));
                        continue;
                    }
                    let value = match spec {
                        SlotSpec::Text => Value::String(heard()),
                        SlotSpec::Number => number_value(tokens[from].number.unwrap_or_default()),
                        SlotSpec::List(options) => {
                            let chosen = options.get(usize::from(option)).map(|o| o.value.clone());
                            let value = chosen.unwrap_or_default();
                            if !heard().eq_ignore_ascii_case(&value) {
                                notes.push(format!("heard '{}' for option '{value}'", heard()));
                            }
                            Value::String(value)
                        }
                    };
                    slots.insert(name.clone(), value);
                }
                _ => {}
            }
        }
        let mut why = match (notes.is_empty(), alignment.score >= 1.0) {
            (true, _) => "exact".to_string(),
            (false, true) => format!("exact; {}", notes.join("; ")),
            (false, false) => notes.join("; "),
        };
        if s.blocked {
            why.push_str(&format!(
                "; the transcript is {}, the phrase is not",
                mood.what()
            ));
        }
        Candidate {
            workflow_id: self.workflows[compiled.workflow].clone(),
            phrase: compiled.template.source.clone(),
            score: alignment.score,
            slots,
            why,
        }
    }

    /// The phrases nearest to `transcript`, written as whisper writes a sentence (" Turn on the
    /// attic lights."): for each of the `most` best-scoring templates the transcript's mood
    /// allows (a question only those that ask one) whose slots all got words, the path its
    /// alignment took, with the template's words where words were misheard or missing, extra
    /// words left out, a list slot as the option chosen, numbers and free text as heard. The
    /// readings whisper scores on the audio (`stt::Readings`).
    pub fn nearest_readings(&self, transcript: &str, most: usize) -> Vec<Reading> {
        let normalized = self.normalizer.transcript(transcript);
        if normalized.tokens.is_empty() || most == 0 {
            return Vec::new();
        }
        let tokens = &normalized.tokens;
        let mut aligner = Aligner::new(&self.vocab, tokens, normalized.lead, normalized.trail);
        let mood = Mood::of(&normalized);
        let stating: Vec<&str> = tokens
            .iter()
            .map(|t| t.text.as_str())
            .filter(|w| STATEMENT_WORDS.contains(w))
            .collect();
        let mut out: Vec<Reading> = Vec::new();
        for s in self.score(&mut aligner, true, mood) {
            if out.len() >= most {
                break;
            }
            // Free text reads any words as the phrase, so a phrase with it has no reading.
            let free_text = self.templates[s.index]
                .graph
                .slots
                .iter()
                .any(|(_, spec)| matches!(spec, SlotSpec::Text));
            if s.blocked || free_text {
                continue;
            }
            for reading in self.readings(&mut aligner, &s, tokens) {
                // A reading does not make a statement a request: every copula and subject
                // pronoun heard is in it ("The kitchen lights are on." is not "Turn the kitchen
                // lights on.").
                let words = super::normalize::words(&reading.text);
                let keeps = |w: &&str| words.iter().any(|t| t.text == **w);
                if stating.iter().all(keeps) && !out.iter().any(|r| r.text == reading.text) {
                    out.push(reading);
                }
            }
        }
        out
    }

    /// The template of `s` as said along its alignment (see [`Matcher::nearest_readings`]): one
    /// reading, or one per option of a list slot that got no words (at most
    /// [`READINGS_PER_PHRASE`]); none when a number or free-text slot got no words.
    fn readings(&self, aligner: &mut Aligner<'_>, s: &Scored, tokens: &[Token]) -> Vec<Reading> {
        let compiled = &self.templates[s.index];
        let alignment = aligner.align(&compiled.graph, true);
        // Each reading so far: its words and its meaning (the workflow, then each slot value).
        let mut texts: Vec<(String, String)> =
            vec![(String::new(), self.workflows[compiled.workflow].clone())];
        let push = |texts: &mut Vec<(String, String)>, words: &[&str], slot: bool| {
            let mut out = Vec::with_capacity(texts.len() * words.len());
            for (t, meaning) in texts.iter() {
                for w in words {
                    let text = if t.is_empty() {
                        (*w).to_owned()
                    } else {
                        format!("{t} {w}")
                    };
                    let meaning = if slot {
                        format!("{meaning}|{w}")
                    } else {
                        meaning.clone()
                    };
                    out.push((text, meaning));
                }
            }
            out.truncate(READINGS_PER_PHRASE);
            *texts = out;
        };
        for PathStep { step, from, to, .. } in alignment.path.iter().copied() {
            match step {
                Step::Word { id } => push(&mut texts, &[self.vocab.word(id)], false),
                Step::Slot { slot, option } => {
                    let (_, spec) = &compiled.graph.slots[usize::from(slot)];
                    match spec {
                        SlotSpec::List(options) if from == to => {
                            let all: Vec<&str> = options.iter().map(|o| o.value.as_str()).collect();
                            push(&mut texts, &all, true);
                        }
                        SlotSpec::List(options) => match options.get(usize::from(option)) {
                            Some(o) => push(&mut texts, &[o.value.as_str()], true),
                            None => return Vec::new(),
                        },
                        _ if from == to => return Vec::new(),
                        SlotSpec::Number => push(&mut texts, &[tokens[from].text.as_str()], true),
                        SlotSpec::Text => {
                            let heard = super::normalize::written(&tokens[from..to]);
                            push(&mut texts, &[&heard], true);
                        }
                    }
                }
                _ => {}
            }
        }
        let end = if compiled.question { '?' } else { '.' };
        texts
            .into_iter()
            .filter_map(|(text, meaning)| {
                let mut chars = text.chars();
                let first = chars.next()?;
                Some(Reading {
                    text: format!(" {}{}{end}", first.to_uppercase(), chars.as_str()),
                    meaning,
                })
            })
            .collect()
    }

    /// A whisper initial prompt made of short sentences from the templates (first alternative,
    /// optional words included, number slots as "5", list slots as their first option,
    /// free-text slots dropped, and skipped if that leaves one word), one sentence per template
    /// taking workflows in turn, without duplicates and at most `max_chars` characters long.
    pub fn initial_prompt(&self, max_chars: usize) -> String {
        let mut per_workflow: Vec<Vec<&Template>> = vec![Vec::new(); self.workflows.len()];
        for compiled in &self.templates {
            per_workflow[compiled.workflow].push(&compiled.template);
        }
        build_prompt(&per_workflow, max_chars)
    }
}

/// What a transcript does: asks, tells, or requests. A question matches only templates that ask
/// one, a statement only templates that make one ("I'm home"); a request any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mood {
    Request,
    Question,
    Statement,
}

impl Mood {
    fn of(normalized: &Normalized) -> Mood {
        if normalized.question {
            Mood::Question
        } else if normalized.statement {
            Mood::Statement
        } else {
            Mood::Request
        }
    }

    /// Whether a transcript of this mood may not match `template`.
    fn blocks(self, template: &Compiled) -> bool {
        match self {
            Mood::Request => false,
            Mood::Question => !template.question,
            Mood::Statement => !template.statement,
        }
    }

    /// The transcript's kind, for reasons: "a question", "a statement".
    fn what(self) -> &'static str {
        match self {
            Mood::Request => "a request",
            Mood::Question => "a question",
            Mood::Statement => "a statement",
        }
    }
}

/// A number as JSON: an integer when whole, else a float.
pub(super) fn number_value(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        Value::from(value as i64)
    } else {
        serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number)
    }
}
