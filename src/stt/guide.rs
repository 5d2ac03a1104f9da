//! Grammar-guided decoding and scoring, through whisper.cpp's logits filter.
//!
//! At every decoding step whisper.cpp hands the filter the tokens chosen so far and the next
//! token's logits. [`Guide`] does two things there:
//! - it **scores**: it keeps the model's own log-probability of every token the decoder chose
//!   (taken before any grammar penalty), so a free and a guided decode of one clip can be
//!   compared on the same footing ([`Guide::score`]);
//! - with a [`Grammar`], it **guides**: every token that would take the text out of the grammar
//!   loses `penalty` from its logit, and end-of-text loses it while the grammar is not yet
//!   satisfied. Which tokens keep the text inside is found by walking the vocabulary in byte order,
//!   so tokens sharing a prefix share the work and a dead prefix rules out all its tokens at once.
//!   Once the text has left the grammar anyway (possible with a small penalty), the guide stops
//!   penalising and says so ([`Guide::left_grammar`]).

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
}

impl Vocab {
    /// Reads the vocabulary of a loaded model.
    pub(crate) fn load(ctx: &WhisperContext) -> Vocab {
        let eot = ctx.token_eot();
        let bytes: Vec<Vec<u8>> = (0..eot)
            .map(|id| ctx.token_to_bytes(id).map(<[u8]>::to_vec).unwrap_or_default())
            .collect();
        let mut sorted: Vec<u32> = (0..eot as u32).collect();
        sorted.sort_by(|&a, &b| bytes[a as usize].cmp(&bytes[b as usize]));
        Vocab {
            bytes,
            sorted,
            eot,
            n_logits: usize::try_from(ctx.n_vocab()).unwrap_or(0),
        }
    }

    /// The end-of-text token.
    pub(crate) fn eot(&self) -> i32 {
        self.eot
    }

    /// The text of `tokens` (special tokens skipped), as bytes.
    fn text(&self, tokens: &[WhisperTokenData]) -> Vec<u8> {
        tokens
            .iter()
            .filter(|t| t.id >= 0 && t.id < self.eot)
            .flat_map(|t| self.bytes[t.id as usize].iter().copied())
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

/// What the filter keeps between steps.
#[derive(Default)]
struct Record {
    /// The last step's logits before any penalty, and their log-sum-exp.
    last: Vec<f32>,
    last_lse: f32,
    /// The model's log-probability of each chosen token so far.
    logprobs: Vec<f32>,
    left_grammar: bool,
    allowed: Vec<bool>,
}

/// One decode's logits filter: scores it, and guides it when it has a grammar.
pub(crate) struct Guide<'a> {
    vocab: &'a Vocab,
    grammar: Option<(&'a Grammar, f32)>,
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

    /// A filter that holds the decode to `grammar`, taking `penalty` from the logit of any
    /// token that leaves it.
    pub(crate) fn guided(vocab: &'a Vocab, grammar: &'a Grammar, penalty: f32) -> Self {
        Guide {
            grammar: Some((grammar, penalty)),
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

    /// True when the decoded text left the grammar despite the penalty.
    pub(crate) fn left_grammar(&self) -> bool {
        self.record().left_grammar
    }

    /// One decoding step: see the module docs.
    fn filter(&self, tokens: &[WhisperTokenData], logits: &mut [f32]) {
        let mut r = self.record();
        if let Some(lp) = tokens
            .last()
            .and_then(|t| logprob(&r.last, r.last_lse, t.id))
        {
            r.logprobs.push(lp);
        }
        r.last.clear();
        r.last.extend_from_slice(logits);
        r.last_lse = log_sum_exp(logits);
        let Some((grammar, penalty)) = self.grammar else {
            return;
        };
        let set = grammar.advance(&grammar.start(), &self.vocab.text(tokens));
        if set.is_empty() {
            r.left_grammar = true;
            return;
        }
        let eot = self.vocab.eot as usize;
        let mut allowed = std::mem::take(&mut r.allowed);
        allowed.clear();
        allowed.resize(eot, false);
        self.vocab.allowed(grammar, &set, &mut allowed);
        for (logit, ok) in logits.iter_mut().zip(&allowed) {
            if !ok {
                *logit -= penalty;
            }
        }
        if !grammar.accepts_in(&set) {
            if let Some(l) = logits.get_mut(eot) {
                *l -= penalty;
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

fn log_sum_exp(logits: &[f32]) -> f32 {
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
    let tokens = match usize::try_from(n_tokens) {
        Ok(n) if n > 0 && !tokens.is_null() => unsafe { std::slice::from_raw_parts(tokens, n) },
        _ => &[],
    };
    let logits = unsafe { std::slice::from_raw_parts_mut(logits, guide.vocab.n_logits) };
    guide.filter(tokens, logits);
}
