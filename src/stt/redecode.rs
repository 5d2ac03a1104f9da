//! A second decode of the clip whisper has just encoded, without encoding it again.
//!
//! whisper.cpp's `whisper_full` always runs the encoder. The grammar-guided pass that follows a
//! free one reads the same samples through the same window, so everything it needs is already in
//! the whisper state: the encoder's output (the cross-attention keys and values) and the decoder
//! prompt in the self-attention cache (sequence 0, positions `0..prompt_len`). [`decode_guided`]
//! drops the free pass's tokens from that cache, decodes the prompt's last token once more to get
//! the first step's logits, and then runs whisper's greedy loop itself: the same suppression of
//! special and non-speech tokens, in the same order around the logits filter, the same token
//! budget. Measured against a guided `whisper_full` on the same clip, the text is the same (see
//! the tests); what is saved is one encoder run and the prompt's decode.
//!
//! Only valid right after a `whisper_full` call on the same state, model and prompt that covered
//! the whole clip in one window (`decode_guided`'s callers check the last).

use whisper_rs::WhisperState;

use super::SttError;
use super::guide::{Guide, Vocab, log_sum_exp};

/// What the last `whisper_full` left in the state that the next decode starts from.
#[derive(Debug, Clone, Copy)]
pub(super) struct Encoded {
    /// Tokens of its decoder prompt (`[prev, prompt..., sot, (language, task,) notimestamps]`).
    pub prompt_len: usize,
    /// The prompt's last token, decoded again to get the first step's logits.
    pub prompt_last: i32,
}

/// Where a decode's logits come from: whisper's decoder on the state the last `whisper_full`
/// left ([`WhisperSteps`]), or a stand-in in tests.
pub(super) trait Steps {
    /// Decodes `token` at position `pos` of the decoder's sequence, dropping whatever the cache
    /// held from `pos` on, and returns the logits of the token that follows.
    fn step(&mut self, token: i32, pos: usize) -> Result<&[f32], SttError>;
}

/// [`Steps`] on a whisper state.
pub(super) struct WhisperSteps<'s> {
    pub state: &'s mut WhisperState,
    pub threads: usize,
}

impl Steps for WhisperSteps<'_> {
    fn step(&mut self, token: i32, pos: usize) -> Result<&[f32], SttError> {
        let infer = |e: whisper_rs::WhisperError| SttError::Inference(e.to_string());
        self.state
            .decode(&[token], pos, self.threads.max(1))
            .map_err(infer)?;
        self.state.get_logits().map_err(infer)
    }
}

/// How far the guided decode looks beyond whisper's greedy path.
pub(super) struct Search<'a> {
    /// Other readings to try (`SttConfig::guided_forks`): each takes, at the step where the model was least sure between
    /// the token it chose and the best other token the grammar allows, that other token, and
    /// goes on greedily from there (0: whisper's greedy decode alone).
    pub forks: usize,
    /// Whether a finished reading may be taken (in the grammar, long enough): the best-scoring
    /// acceptable reading is returned, else the greedy one.
    pub acceptable: &'a dyn Fn(&str) -> bool,
}

/// One reading the search found.
#[derive(Debug)]
pub(super) struct Decoded {
    /// whisper's raw text.
    pub raw: String,
    /// The last token chosen: the end-of-text, or the last text token when the budget of
    /// `max_tokens` ran out (as `whisper_full` counts it).
    pub last: Option<i32>,
    /// Mean log-probability of its tokens, as [`Guide::score`] counts it.
    pub score: Option<f32>,
    /// Readings decoded, the greedy one included.
    pub readings: usize,
}

/// A reading: its tokens and the model's log-probability of each.
struct Reading {
    ids: Vec<i32>,
    logprobs: Vec<f32>,
}

/// A step a reading could have taken otherwise: the token and how much less likely it was.
struct Fork {
    reading: usize,
    step: usize,
    token: i32,
    logprob: f32,
    behind: f32,
}

/// Decodes from `encoded` with every step's logits held to `guide` (whisper.cpp's greedy loop
/// and its suppression of special and non-speech tokens, in whisper's order around the filter),
/// then, with `search.forks`, up to that many other readings forking where the model was least
/// sure. Each fork decodes again only from its step: the self-attention cache holds the shared
/// prefix, and `whisper_decode` drops what lies beyond the position it is given.
pub(super) fn decode_guided(
    steps: &mut dyn Steps,
    vocab: &Vocab,
    guide: &Guide<'_>,
    encoded: Encoded,
    max_tokens: i32,
    aborted: &dyn Fn() -> bool,
    search: &Search<'_>,
) -> Result<Decoded, SttError> {
    let mut decoder = Decoder {
        steps,
        vocab,
        guide,
        encoded,
        // whisper.cpp ends a segment after the token of step `i >= max_tokens`: one more than
        // the budget, the end-of-text included.
        budget: usize::try_from(max_tokens.max(0)).unwrap_or(0) + 1,
        aborted,
        note_forks: search.forks > 0,
    };
    let mut forks = Vec::new();
    let mut readings = vec![decoder.run(Vec::new(), Vec::new(), 0, &mut forks)?];
    while readings.len() <= search.forks {
        let Some(best) =
            (0..forks.len()).min_by(|&a, &b| forks[a].behind.total_cmp(&forks[b].behind))
        else {
            break;
        };
        let fork = forks.swap_remove(best);
        let parent = &readings[fork.reading];
        let mut ids = parent.ids[..fork.step].to_vec();
        let mut logprobs = parent.logprobs[..fork.step].to_vec();
        ids.push(fork.token);
        logprobs.push(fork.logprob);
        let index = readings.len();
        readings.push(decoder.run(ids, logprobs, index, &mut forks)?);
    }
    let text = |r: &Reading| String::from_utf8_lossy(&vocab.text(&r.ids)).into_owned();
    let mean = |r: &Reading| {
        (!r.logprobs.is_empty()).then(|| r.logprobs.iter().sum::<f32>() / r.logprobs.len() as f32)
    };
    // A reading counts when it ended and is acceptable; the greedy one (first) stands unless
    // another such reading scores better.
    let counted: Vec<f32> = readings
        .iter()
        .map(|r| {
            let ended = r.ids.last() == Some(&vocab.eot());
            match mean(r) {
                Some(m) if ended && (search.acceptable)(&text(r)) => m,
                _ => f32::MIN,
            }
        })
        .collect();
    let best = (1..readings.len())
        .filter(|&i| counted[i] > counted[0])
        .max_by(|&a, &b| counted[a].total_cmp(&counted[b]))
        .unwrap_or(0);
    let chosen = &readings[best];
    Ok(Decoded {
        raw: text(chosen),
        last: chosen.ids.last().copied(),
        score: mean(chosen),
        readings: readings.len(),
    })
}

/// The fixed inputs of one guided decode's readings.
struct Decoder<'s, 'a> {
    steps: &'s mut dyn Steps,
    vocab: &'a Vocab,
    guide: &'a Guide<'a>,
    encoded: Encoded,
    budget: usize,
    aborted: &'a dyn Fn() -> bool,
    note_forks: bool,
}

impl Decoder<'_, '_> {
    /// Decodes greedily on from `ids` (whose last token, if any, is not decoded yet), noting in
    /// `forks` each step's best other token the grammar allows (as reading `index`).
    fn run(
        &mut self,
        mut ids: Vec<i32>,
        mut logprobs: Vec<f32>,
        index: usize,
        forks: &mut Vec<Fork>,
    ) -> Result<Reading, SttError> {
        // The prompt's last token sits at `first`, the reading's `k`th token at `first + 1 + k`.
        let first = self.encoded.prompt_len.saturating_sub(1);
        let mut logits: Vec<f32> = Vec::new();
        let mut other: Vec<f32> = Vec::new();
        while ids.len() < self.budget && ids.last() != Some(&self.vocab.eot()) {
            if (self.aborted)() {
                return Err(SttError::Aborted);
            }
            let next = ids.last().copied().unwrap_or(self.encoded.prompt_last);
            logits.clear();
            logits.extend_from_slice(self.steps.step(next, first + ids.len())?);
            self.vocab.suppress_special(&mut logits, ids.is_empty());
            let lse = log_sum_exp(&logits);
            if self.note_forks {
                other.clear();
                other.extend_from_slice(&logits);
            }
            // The filter only rules tokens out: the survivors keep their logits.
            self.guide.constrain(&ids, &mut logits);
            self.vocab.suppress_non_speech(&mut logits);
            let Some(token) = argmax(&logits) else { break };
            let logprob = logits[token as usize] - lse;
            if self.note_forks {
                // The best other token the grammar allows: the chosen one ruled out, the step
                // held to the grammar again.
                other[token as usize] = f32::NEG_INFINITY;
                self.guide.constrain(&ids, &mut other);
                self.vocab.suppress_non_speech(&mut other);
                if let Some(alt) = argmax(&other) {
                    let alt_logprob = other[alt as usize] - lse;
                    forks.push(Fork {
                        reading: index,
                        step: ids.len(),
                        token: alt,
                        logprob: alt_logprob,
                        behind: logprob - alt_logprob,
                    });
                }
            }
            ids.push(token);
            logprobs.push(logprob);
        }
        Ok(Reading { ids, logprobs })
    }
}

/// Scores given readings on the encoding the last `whisper_full` left: the model's mean
/// log-probability of each reading's tokens and the end-of-text after them, counted as
/// [`Guide::score`] counts a decode's (after the suppression of special tokens). Readings are
/// decoded token by token; one that shares its first tokens with the reading scored before it
/// decodes only from where they differ (the self-attention cache holds the shared prefix).
pub(super) struct Forced<'s, 'a> {
    steps: &'s mut dyn Steps,
    vocab: &'a Vocab,
    encoded: Encoded,
    /// The reading scored last and its tokens' log-probabilities (the end-of-text's last).
    last: Vec<i32>,
    logprobs: Vec<f32>,
    /// Decoder steps run so far.
    pub decoded: usize,
}

impl<'s, 'a> Forced<'s, 'a> {
    pub(super) fn new(steps: &'s mut dyn Steps, vocab: &'a Vocab, encoded: Encoded) -> Self {
        Forced {
            steps,
            vocab,
            encoded,
            last: Vec::new(),
            logprobs: Vec::new(),
            decoded: 0,
        }
    }

    /// The mean log-probability of `ids` then the end-of-text; `None` for an empty reading or
    /// one with a token whisper never emits there (a special token, the end-of-text first).
    pub(super) fn score(&mut self, ids: &[i32]) -> Result<Option<f32>, SttError> {
        if ids.is_empty() {
            return Ok(None);
        }
        let first = self.encoded.prompt_len.saturating_sub(1);
        // The log-probability of token k depends on the tokens before it alone.
        let shared = ids
            .iter()
            .zip(&self.last)
            .take_while(|(a, b)| a == b)
            .count()
            .min(self.logprobs.len());
        self.logprobs.truncate(shared);
        self.last.clear();
        self.last.extend_from_slice(ids);
        let mut logits: Vec<f32> = Vec::new();
        for k in shared..=ids.len() {
            let prev = if k == 0 {
                self.encoded.prompt_last
            } else {
                ids[k - 1]
            };
            logits.clear();
            logits.extend_from_slice(self.steps.step(prev, first + k)?);
            self.decoded += 1;
            self.vocab.suppress_special(&mut logits, k == 0);
            let want = ids.get(k).copied().unwrap_or(self.vocab.eot());
            let logit = usize::try_from(want)
                .ok()
                .and_then(|i| logits.get(i).copied())
                .filter(|l| l.is_finite());
            let Some(logit) = logit else {
                // Nothing after this token can be reused: the cache stops short of it.
                self.last.truncate(k);
                return Ok(None);
            };
            self.logprobs.push(logit - log_sum_exp(&logits));
        }
        Ok(Some(
            self.logprobs.iter().sum::<f32>() / self.logprobs.len() as f32,
        ))
    }
}

/// The first highest finite logit, as whisper.cpp's greedy sampler picks it.
fn argmax(logits: &[f32]) -> Option<i32> {
    let mut best: Option<(usize, f32)> = None;
    for (id, &l) in logits.iter().enumerate() {
        if l.is_finite() && best.is_none_or(|(_, b)| l > b) {
            best = Some((id, l));
        }
    }
    best.and_then(|(id, _)| i32::try_from(id).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stt::Grammar;

    const CALL: i32 = 0;
    const TIM: i32 = 1;
    const TOM: i32 = 2;
    const OTHY: i32 = 3;
    const STOP: i32 = 4;
    const THE: i32 = 5;
    const EOT: i32 = 6;

    /// Six text tokens, the end-of-text, one special token.
    fn vocab() -> Vocab {
        let tokens = [" Call", " Tim", " Tom", "othy", ".", " the"];
        Vocab::from_tokens(tokens.iter().map(|t| t.as_bytes().to_vec()).collect(), 8)
    }

    /// A decoder whose logits follow the reading so far; it checks that every step continues
    /// the sequence its cache holds.
    struct Table {
        first: usize,
        held: Vec<i32>,
        logits: Vec<f32>,
        decoded: usize,
    }

    impl Table {
        fn new(encoded: Encoded) -> Table {
            Table {
                first: encoded.prompt_len - 1,
                held: Vec::new(),
                logits: Vec::new(),
                decoded: 0,
            }
        }
    }

    impl Steps for Table {
        fn step(&mut self, token: i32, pos: usize) -> Result<&[f32], SttError> {
            let k = pos - self.first;
            assert!(
                k <= self.held.len(),
                "step at {pos} past the cache's {}",
                self.held.len()
            );
            self.held.truncate(k);
            self.held.push(token);
            self.decoded += 1;
            // The reading so far: what was decoded after the prompt's last token.
            let reading = &self.held[1..];
            let mut l = vec![0.0f32; 8];
            let mut set = |id: i32, v: f32| l[id as usize] = v;
            match reading {
                [] => set(CALL, 5.0),
                // Nearly a tie; "the" is likelier still but outside the grammar.
                [CALL] => {
                    set(TIM, 3.0);
                    set(TOM, 2.9);
                    set(THE, 4.0);
                }
                // After "Tim" the model wants what the grammar forbids: "othy" is unlikely.
                [CALL, TIM] => {
                    set(THE, 6.0);
                    set(STOP, 5.0);
                }
                [CALL, TIM, OTHY] | [CALL, TOM] => set(STOP, 5.0),
                [.., STOP] => set(EOT, 5.0),
                _ => {}
            }
            self.logits = l;
            Ok(&self.logits)
        }
    }

    fn search(forks: usize, acceptable: &dyn Fn(&str) -> bool) -> (Decoded, usize) {
        let vocab = vocab();
        let grammar = Grammar::parse("root ::= \" Call \" (\"Tom\" | \"Timothy\") \".\"").unwrap();
        let guide = Guide::guided(&vocab, &grammar);
        let encoded = Encoded {
            prompt_len: 4,
            prompt_last: 7,
        };
        let mut table = Table::new(encoded);
        let search = Search { forks, acceptable };
        let decoded =
            decode_guided(&mut table, &vocab, &guide, encoded, 10, &|| false, &search).unwrap();
        (decoded, table.decoded)
    }

    #[test]
    fn a_fork_at_the_least_sure_step_finds_the_likelier_reading_greedy_missed() {
        let (greedy, steps) = search(0, &|_| true);
        assert_eq!(greedy.raw, " Call Timothy.");
        assert_eq!((greedy.readings, steps), (1, 5));
        assert_eq!(greedy.last, Some(EOT));
        let (forked, steps) = search(3, &|_| true);
        assert_eq!(forked.raw, " Call Tom.");
        assert!(
            forked.score.unwrap() > greedy.score.unwrap() + 0.5,
            "{forked:?} {greedy:?}"
        );
        // The one fork the grammar leaves (Tom for Tim) decodes only from its step ("Tom", then
        // "."): two steps more, not a whole reading; no other step had a second token the
        // grammar allows.
        assert_eq!((forked.readings, steps), (2, 7));
    }

    #[test]
    fn a_fork_that_is_not_acceptable_never_stands() {
        let (decoded, _) = search(3, &|raw| !raw.contains("Tom"));
        assert_eq!(decoded.raw, " Call Timothy.");
        assert_eq!(decoded.readings, 2);
    }

    /// The log-probability of a token with logit `best` beside tokens with logits `others`.
    fn lp(best: f32, others: &[f32]) -> f32 {
        best - (best.exp() + others.iter().map(|o| o.exp()).sum::<f32>()).ln()
    }

    /// The mean log-probability of " Call Tom." and its end on [`Table`]: every step's logits
    /// are the chosen token's value and seven others at 0 (one is the special token, ruled out;
    /// at the first step the end-of-text too).
    fn call_tom_score() -> f32 {
        let expected = [
            lp(5.0, &[0.0; 5]),
            lp(2.9, &[3.0, 4.0, 0.0, 0.0, 0.0, 0.0]),
            lp(5.0, &[0.0; 6]),
            lp(5.0, &[0.0; 6]),
        ];
        expected.iter().sum::<f32>() / 4.0
    }

    #[test]
    fn the_score_is_the_mean_log_probability_of_the_chosen_tokens() {
        let (decoded, _) = search(3, &|_| true);
        let mean = call_tom_score();
        assert!(
            (decoded.score.unwrap() - mean).abs() < 1e-4,
            "{decoded:?} against {mean}"
        );
    }

    #[test]
    fn a_forced_reading_scores_its_tokens_and_the_end_decoding_only_what_it_does_not_share() {
        let vocab = vocab();
        let encoded = Encoded {
            prompt_len: 4,
            prompt_last: 7,
        };
        let mut table = Table::new(encoded);
        let mut forced = Forced::new(&mut table, &vocab, encoded);
        let tom = forced.score(&[CALL, TOM, STOP]).unwrap().unwrap();
        let mean = call_tom_score();
        assert!((tom - mean).abs() < 1e-4, "{tom} against {mean}");
        assert_eq!(forced.decoded, 4);
        // " Call Tim." shares " Call": it decodes from the step after it, three steps more.
        let tim = forced.score(&[CALL, TIM, STOP]).unwrap().unwrap();
        assert_eq!(forced.decoded, 7);
        let expected = [
            lp(5.0, &[0.0; 5]),
            lp(3.0, &[2.9, 4.0, 0.0, 0.0, 0.0, 0.0]),
            lp(5.0, &[6.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
            lp(5.0, &[0.0; 6]),
        ];
        let mean = expected.iter().sum::<f32>() / 4.0;
        assert!((tim - mean).abs() < 1e-4, "{tim} against {mean}");
        assert!(tom > tim);
        // The same reading again costs nothing but its end; an empty one is no reading.
        assert_eq!(forced.score(&[CALL, TIM, STOP]).unwrap(), Some(tim));
        assert_eq!(forced.decoded, 8);
        assert_eq!(forced.score(&[]).unwrap(), None);
        // A special token is never emitted: no score, and what follows scores as before.
        assert_eq!(forced.score(&[CALL, 7]).unwrap(), None);
        assert_eq!(forced.score(&[CALL, TOM, STOP]).unwrap(), Some(tom));
    }

    #[test]
    fn argmax_takes_the_first_best_finite_logit() {
        let inf = f32::INFINITY;
        assert_eq!(argmax(&[0.5, 2.0, 2.0, -1.0]), Some(1));
        assert_eq!(argmax(&[f32::NEG_INFINITY, -3.0, f32::NAN]), Some(1));
        assert_eq!(argmax(&[inf, 1.0]), Some(1));
        assert_eq!(argmax(&[f32::NEG_INFINITY; 3]), None);
        assert_eq!(argmax(&[]), None);
    }
}
