//! Grammar-guided decoding and scoring, through whisper.cpp's logits filter.
//!
//! At every decoding step whisper.cpp hands the filter the tokens chosen so far and the next
//! token's logits. [`Guide`] does two things there:
//! - it **scores**: it keeps the model's own log-probability of every token the decoder chose
//!   (taken before any grammar penalty), so a free and a guided decode of one clip can be
//!   compared on the same footing ([`Guide::score`]);
//! - with a [`Grammar`], it **guides**: decoding is greedy, so it is enough that the best token
//!   that keeps the text in the grammar has the highest logit. The step's tokens are tried from
//!   the best down, each read through the grammar, and every one that would leave it is ruled out
//!   (end-of-text is ruled out while the grammar is not yet satisfied). Tokens whose first byte
//!   the grammar cannot read next are ruled out first, in one pass; of the rest usually one of
//!   the first few fits; after [`MAX_CANDIDATES`] misses the guide walks the whole vocabulary in
//!   byte order instead (tokens sharing a prefix share the work) and rules out all that leave
//!   the grammar.

use std::ffi::{c_int, c_void};
use std::sync::Mutex;

use whisper_rs::{WhisperContext, WhisperTokenData};

use super::gbnf::Grammar;

/// The model's text tokens as bytes, and the same ids sorted by their bytes.
pub(crate) struct Vocab {
    bytes: Vec<Vec<u8>>,
    sorted: Vec<u32>,
    /// The end-of-text token; text tokens are the ids below it.
    eot: i32,
    /// Logits per step (the whole vocabulary, special tokens included).
    n_logits: usize,
    /// The lone space, which may not open a transcript (whisper's `suppress_blank`).
    space: Option<usize>,
    /// Tokens of symbols that are not speech (whisper's `suppress_nst` list).
    non_speech: Vec<usize>,
}

/// whisper.cpp's non-speech symbols (`non_speech_tokens`), each also suppressed after a space.
const NON_SPEECH: [&str; 54] = [
    "\"",
    "#",
    "(",
    ")",
    "*",
    "+",
    "/",
    ":",
    ";",
    "<",
    "=",
    ">",
    "@",
    "[",
    "\\",
    "]",
    "^",
    "_",
    "`",
    "{",
    "|",
    "}",
    "~",
    "「",
    "」",
    "『",
    "』",
    "<<",
    ">>",
    "<<<",
    ">>>",
    "--",
    "---",
    "-(",
    "-[",
    "('",
    "(\"",
    "((",
    "))",
    "(((",
    ")))",
    "[[",
    "]]",
    "{{",
    "}}",
    "♪♪",
    "♪♪♪",
    "♩",
    "♪",
    "♫",
    "♬",
    "♭",
    "♮",
    "♯",
];

impl Vocab {
    /// Reads the vocabulary of a loaded model.
    pub(crate) fn load(ctx: &WhisperContext) -> Vocab {
        let bytes: Vec<Vec<u8>> = (0..ctx.token_eot())
            .map(|id| {
                ctx.token_to_bytes(id)
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default()
            })
            .collect();
        Vocab::from_tokens(bytes, usize::try_from(ctx.n_vocab()).unwrap_or(0))
    }

    /// A vocabulary of these text tokens (ids in order), the end-of-text right after them, and
    /// `n_logits` logits a step in all.
    pub(crate) fn from_tokens(bytes: Vec<Vec<u8>>, n_logits: usize) -> Vocab {
        let eot = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
        let mut sorted: Vec<u32> = (0..bytes.len() as u32).collect();
        sorted.sort_by(|&a, &b| bytes[a as usize].cmp(&bytes[b as usize]));
        let mut suppressed: std::collections::HashSet<Vec<u8>> = NON_SPEECH
            .iter()
            .flat_map(|s| [s.as_bytes().to_vec(), format!(" {s}").into_bytes()])
            .collect();
        // Hyphens and apostrophes may join words but not begin one.
        suppressed.extend([b" -".to_vec(), b" '".to_vec()]);
        let non_speech = (0..bytes.len())
            .filter(|&id| suppressed.contains(&bytes[id]))
            .collect();
        Vocab {
            space: bytes.iter().position(|b| b == b" "),
            non_speech,
            bytes,
            sorted,
            eot,
            n_logits,
        }
    }

    /// What whisper.cpp does to a step's logits before its filter sees them, with timestamps
    /// off: every special token is ruled out but the end-of-text, and at the first step the
    /// end-of-text and the lone space too.
    pub(crate) fn suppress_special(&self, logits: &mut [f32], first: bool) {
        let eot = self.eot as usize;
        for l in logits.iter_mut().skip(eot + 1) {
            *l = f32::NEG_INFINITY;
        }
        if first {
            for id in std::iter::once(eot).chain(self.space) {
                if let Some(l) = logits.get_mut(id) {
                    *l = f32::NEG_INFINITY;
                }
            }
        }
    }

    /// What whisper.cpp does after its filter: rules out the non-speech symbols.
    pub(crate) fn suppress_non_speech(&self, logits: &mut [f32]) {
        for &id in &self.non_speech {
            if let Some(l) = logits.get_mut(id) {
                *l = f32::NEG_INFINITY;
            }
        }
    }

    /// The end-of-text token.
    pub(crate) fn eot(&self) -> i32 {
        self.eot
    }

    /// The text of `tokens` (special tokens skipped), as bytes.
    pub(crate) fn text(&self, tokens: &[i32]) -> Vec<u8> {
        tokens
            .iter()
            .filter(|&&id| id >= 0 && id < self.eot)
            .flat_map(|&id| self.bytes[id as usize].iter().copied())
            .collect()
    }

    /// Marks in `allowed` the text tokens that keep the grammar alive from `set`.
    fn allowed(&self, grammar: &Grammar, set: &[u32], allowed: &mut [bool]) {
        // sets[d]: the grammar states after the first d bytes of the current token.
        let mut sets: Vec<Vec<u32>> = vec![set.to_vec()];
        let mut prev: &[u8] = &[];
        for &id in &self.sorted {
            let bytes = &self.bytes[id as usize];
            let common = prev.iter().zip(bytes).take_while(|(a, b)| a == b).count();
            sets.truncate(common.min(sets.len() - 1) + 1);
            while sets.len() <= bytes.len() && sets.last().is_some_and(|s| !s.is_empty()) {
                let mut next = Vec::new();
                grammar.step(&sets[sets.len() - 1], bytes[sets.len() - 1], &mut next);
                sets.push(next);
            }
            allowed[id as usize] = sets.len() == bytes.len() + 1 && !sets[bytes.len()].is_empty();
            prev = bytes;
        }
    }
}

/// How many of a step's best tokens the guide checks against the grammar before it walks the
/// whole vocabulary instead.
const MAX_CANDIDATES: usize = 64;

/// What the filter keeps between steps.
#[derive(Default)]
struct Record {
    /// The last step's logits before any penalty, and their log-sum-exp.
    last: Vec<f32>,
    last_lse: f32,
    /// The model's log-probability of each chosen token so far.
    logprobs: Vec<f32>,
    allowed: Vec<bool>,
}

/// One decode's logits filter: scores it, and guides it when it has a grammar.
pub(crate) struct Guide<'a> {
    vocab: &'a Vocab,
    grammar: Option<&'a Grammar>,
    record: Mutex<Record>,
}

impl<'a> Guide<'a> {
    /// A filter that only scores.
    pub(crate) fn scoring(vocab: &'a Vocab) -> Self {
        Guide {
            vocab,
            grammar: None,
            record: Mutex::default(),
        }
    }

    /// A filter that holds the decode to `grammar`.
    pub(crate) fn guided(vocab: &'a Vocab, grammar: &'a Grammar) -> Self {
        Guide {
            grammar: Some(grammar),
            ..Guide::scoring(vocab)
        }
    }

    fn record(&self) -> std::sync::MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The mean log-probability the model gave the decoded tokens; `last` is the final token
    /// (the end-of-text, or the last text token when the budget ran out), which no later step
    /// saw being chosen. `None` when nothing was decoded.
    pub(crate) fn score(&self, last: Option<i32>) -> Option<f32> {
        let r = self.record();
        let mut lps = r.logprobs.clone();
        if let Some(lp) = last.and_then(|id| logprob(&r.last, r.last_lse, id)) {
            lps.push(lp);
        }
        (!lps.is_empty()).then(|| lps.iter().sum::<f32>() / lps.len() as f32)
    }

    /// One decoding step, given the tokens chosen so far: see the module docs.
    pub(crate) fn filter(&self, tokens: &[i32], logits: &mut [f32]) {
        let mut r = self.record();
        if let Some(lp) = tokens
            .last()
            .and_then(|&id| logprob(&r.last, r.last_lse, id))
        {
            r.logprobs.push(lp);
        }
        r.last.clear();
        r.last.extend_from_slice(logits);
        r.last_lse = log_sum_exp(logits);
        drop(r);
        self.constrain(tokens, logits);
    }

    /// Holds one step's logits to the grammar (nothing without one), given the tokens chosen
    /// so far: every token above the best one that keeps the text in the grammar is ruled out,
    /// so that one is the highest; the logits left keep their values. Records nothing.
    pub(crate) fn constrain(&self, tokens: &[i32], logits: &mut [f32]) {
        let Some(grammar) = self.grammar else {
            return;
        };
        let set = grammar.advance(&grammar.start(), &self.vocab.text(tokens));
        if set.is_empty() {
            // Cannot happen while every step is guided; nothing is left to hold the text to.
            return;
        }
        // Greedy decoding takes the highest logit: rule out every token above the best one that
        // keeps the text in the grammar. First every token whose first byte the grammar cannot
        // read next goes (one pass over the logits), with the special tokens, and the
        // end-of-text unless the grammar is satisfied; then the best of the rest are read
        // through the grammar from the top down, so a step costs a pass and a partial sort of
        // the logits, not a walk of the vocabulary.
        let eot = self.vocab.eot as usize;
        let next = grammar.next_bytes(&set);
        let ends = grammar.accepts_in(&set);
        for (id, logit) in logits.iter_mut().enumerate() {
            let possible = match id.cmp(&eot) {
                std::cmp::Ordering::Less => self.vocab.bytes[id]
                    .first()
                    .is_some_and(|&b| next.contains(b)),
                std::cmp::Ordering::Equal => ends,
                std::cmp::Ordering::Greater => false,
            };
            if !possible {
                *logit = f32::NEG_INFINITY;
            }
        }
        let mut best: Vec<(usize, f32)> = logits
            .iter()
            .enumerate()
            .filter(|(_, l)| l.is_finite())
            .map(|(id, &l)| (id, l))
            .collect();
        let by_logit = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1);
        let read_all = best.len() <= MAX_CANDIDATES;
        if !read_all {
            best.select_nth_unstable_by(MAX_CANDIDATES - 1, by_logit);
            best.truncate(MAX_CANDIDATES);
        }
        best.sort_unstable_by(by_logit);
        for (id, _) in &best {
            let fits = *id == eot || !grammar.advance(&set, &self.vocab.bytes[*id]).is_empty();
            if fits {
                return;
            }
            logits[*id] = f32::NEG_INFINITY;
        }
        if read_all {
            // Every token left was read and none fits: nothing can be said next.
            return;
        }
        // Rarely the grammar's next token is far down the list: rule out every token leaving it.
        let mut r = self.record();
        let mut allowed = std::mem::take(&mut r.allowed);
        allowed.clear();
        allowed.resize(eot, false);
        self.vocab.allowed(grammar, &set, &mut allowed);
        for (id, logit) in logits.iter_mut().enumerate() {
            let ok = if id == eot {
                ends
            } else {
                allowed.get(id).copied().unwrap_or(false)
            };
            if !ok {
                *logit = f32::NEG_INFINITY;
            }
        }
        r.allowed = allowed;
    }

    /// Installs this guide as the logits filter of `params`; it must outlive the `full` call.
    pub(crate) fn install(&self, params: &mut whisper_rs::FullParams<'_, '_>) {
        // SAFETY: the trampoline only reads `self` through a shared reference, and the caller
        // keeps `self` alive for the whole `full` call these params are used in.
        unsafe {
            params.set_filter_logits_callback(Some(filter_trampoline));
            params.set_filter_logits_callback_user_data(
                std::ptr::from_ref(self).cast_mut().cast::<c_void>(),
            );
        }
    }
}

fn logprob(logits: &[f32], lse: f32, id: i32) -> Option<f32> {
    let l = *logits.get(usize::try_from(id).ok()?)?;
    l.is_finite().then_some(l - lse)
}

pub(super) fn log_sum_exp(logits: &[f32]) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return max;
    }
    let sum: f32 = logits
        .iter()
        .filter(|l| l.is_finite())
        .map(|l| (l - max).exp())
        .sum();
    max + sum.ln()
}

/// whisper.cpp's logits filter callback: hands the step to the [`Guide`] in `user_data`.
unsafe extern "C" fn filter_trampoline(
    _ctx: *mut whisper_rs::WhisperSysContext,
    _state: *mut whisper_rs::WhisperSysState,
    tokens: *const WhisperTokenData,
    n_tokens: c_int,
    logits: *mut f32,
    user_data: *mut c_void,
) {
    if user_data.is_null() || logits.is_null() {
        return;
    }
    // SAFETY: `user_data` is the `Guide` installed next to this callback, alive for the whole
    // `full` call; whisper.cpp passes its current token sequence and the step's logits (one per
    // vocabulary entry), both valid for the duration of this call.
    let guide = unsafe { &*user_data.cast::<Guide<'_>>() };
    let tokens: &[WhisperTokenData] = match usize::try_from(n_tokens) {
        Ok(n) if n > 0 && !tokens.is_null() => unsafe { std::slice::from_raw_parts(tokens, n) },
        _ => &[],
    };
    let ids: Vec<i32> = tokens.iter().map(|t| t.id).collect();
    let logits = unsafe { std::slice::from_raw_parts_mut(logits, guide.vocab.n_logits) };
    guide.filter(&ids, logits);
}
