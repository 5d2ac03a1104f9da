//! The whisper.cpp transcriber: one model, one worker thread, a cloneable async handle.
//!
//! [`Transcriber`] is a handle (an `Arc` inside) to a worker thread that is the only owner of the
//! `WhisperContext` and its `WhisperState`. The model loads on first use or on [`Transcriber::preload`]
//! (the voice loop calls it when the push-to-talk key goes down, so loading overlaps speaking),
//! stays loaded between utterances, and is dropped (context and state, so the memory really goes
//! back) after `idle_unload` without use or on [`Transcriber::unload`].
//!
//! **Newest utterance wins.** Every [`Transcriber::transcribe`] call takes the next number of a
//! shared generation counter. whisper.cpp polls an abort callback during encoding and decoding;
//! ours returns true as soon as the counter has moved past the call's own number, so a decode that
//! a newer utterance superseded stops within milliseconds and its caller gets
//! [`SttError::Aborted`]. A superseded request still waiting in the queue is answered the same way
//! without running.

use std::ffi::c_int;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};

use super::SttError;
use super::gbnf::Grammar;
use super::guide::{Guide, Vocab};
use super::redecode::{Encoded, Forced, Search, WhisperSteps, decode_guided};
use super::text::{audio_ctx_for, max_tokens_for, retry_audio_ctx, sanitize_prompt};
use super::transcript::{clean_transcript, has_loop};
use crate::audio::SAMPLE_RATE;

/// How to run whisper.
#[derive(Debug, Clone, PartialEq)]
pub struct SttConfig {
    /// The ggml model file (e.g. `ggml-tiny.en.bin`).
    pub model_path: PathBuf,
    /// Inference threads; 0 means one per available core.
    pub threads: usize,
    /// Unload the model after this long without use; `Duration::ZERO` keeps it loaded.
    pub idle_unload: Duration,
    /// Smallest encoder window in frames of 20 ms (0: none; the window is sized to the clip).
    pub audio_ctx_floor: i32,
    /// Frames of the window beyond the speech (192, 3.8 s: smaller margins make tiny models
    /// repeat themselves on 1-2 s clips; a repeat is decoded again with 256 more).
    pub audio_ctx_margin: i32,
    /// Initial prompt used when a call gives none (e.g. the user's trigger phrases as short
    /// sentences: "Morning briefing. What's the weather like today?").
    pub initial_prompt: Option<String>,
    /// Use whisper.cpp's flash attention (measured slightly faster with Q8_0 models).
    pub flash_attn: bool,
    /// How much lower (in mean log-probability per token) a guided transcript may score than the
    /// free one and still be taken; it must also have at least two thirds of the free one's
    /// letters.
    pub guided_margin: f32,
    /// Readings the guided decode tries besides whisper's greedy one, each forking where the
    /// model was least sure between two tokens the grammar allows (0: greedy alone).
    pub guided_forks: usize,
}

impl SttConfig {
    /// The tuned defaults for `model_path`: all cores, unload after 5 minutes idle, no window
    /// floor, a margin of 192 frames, no prompt, flash attention.
    pub fn new(model_path: impl Into<PathBuf>) -> Self {
        Self {
            model_path: model_path.into(),
            threads: 0,
            idle_unload: Duration::from_secs(300),
            audio_ctx_floor: 0,
            audio_ctx_margin: 192,
            initial_prompt: None,
            flash_attn: true,
            guided_margin: GUIDED_MARGIN,
            guided_forks: 0,
        }
    }

    /// [`SttConfig::new`] with what `[voice]` sets: unloading, the window floor and the guided
    /// decode's forks.
    pub fn for_voice(model_path: impl Into<PathBuf>, voice: &crate::config::VoiceConfig) -> Self {
        Self {
            idle_unload: Duration::from_secs(voice.idle_unload_secs),
            audio_ctx_floor: voice.audio_ctx_floor,
            guided_forks: voice.guided_forks,
            ..SttConfig::new(model_path)
        }
    }

    fn thread_count(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism().map_or(2, usize::from)
        }
    }
}

/// What one transcription produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    /// The recognised text, cleaned by [`clean_transcript`]
    /// (annotations like `[BLANK_AUDIO]` and looping repeats cut).
    pub text: String,
    /// Length of the audio, ms.
    pub audio_ms: u64,
    /// Time whisper took for this clip (not counting a model load), ms.
    pub stt_ms: u64,
    /// Time spent loading the model first, when this call had to load it, ms.
    pub load_ms: Option<u64>,
    /// The encoder window of the decode that gave the text, in 20 ms frames.
    pub audio_ctx: i32,
    /// The first decode repeated itself, so the clip was decoded again with a wider window.
    pub retried: bool,
    /// The text is the grammar-guided decode's (the free one was outside the grammar and the
    /// guided one scored close enough to it).
    pub guided: bool,
    /// The grammar-guided decode, when one ran and lost: the caller may still take it when
    /// other evidence agrees (the voice loop does when the free text's nearest phrase is of the
    /// same workflow).
    pub alternative: Option<Alternative>,
    /// The free decode's text, cleaned, when the guided one won and stands in `text`.
    pub overruled: Option<String>,
}

/// A grammar-guided transcript that did not win on its score alone.
#[derive(Debug, Clone, PartialEq)]
pub struct Alternative {
    /// Its cleaned text (inside the grammar, with at least two thirds of the free text's letters).
    pub text: String,
    /// How much lower its mean log-probability per token was than the free transcript's.
    pub lost_by: f32,
}

/// What to bias one transcription towards.
#[derive(Debug, Clone, Default)]
pub struct Hints {
    /// Initial prompt (overrides the configured one).
    pub prompt: Option<String>,
    /// A grammar of the sentences the user is likely to say (see [`Grammar`]). A free decode
    /// runs first; when its text is outside the grammar, a guided decode runs too and wins only
    /// when the model finds it nearly as likely, so speech outside the grammar stays free.
    pub grammar: Option<Arc<Grammar>>,
    /// Sentences to score on the audio beside the guided decode (see [`Readings`]).
    pub readings: Option<Readings>,
}

/// Where readings to score come from: given the free transcript (cleaned), sentences the user
/// may have said instead, written as whisper writes ("Turn on the attic lights."), e.g. the
/// phrases nearest to it. When the free text is outside the grammar, each reading that is in it
/// (and covers the free text as a guided one must) is scored on the same encoding; the
/// likeliest stands for the free text when it beats the guided decode, is within
/// `guided_margin` of the free text and is 2 nats likelier in total than every reading
/// of another meaning. Greedy guided decoding commits at its first token and cannot recover
/// from a wrong one; a whole sentence scored at once can.
#[derive(Clone)]
pub struct Readings(pub Arc<ReadingsFn>);

/// What [`Readings`] calls: the free transcript in, the readings to score out.
/// Each reading is its text and its meaning: readings of one meaning ask for the same thing.
pub type ReadingsFn = dyn Fn(&str) -> Vec<(String, String)> + Send + Sync;

impl std::fmt::Debug for Readings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Readings(..)")
    }
}

/// State the handle and the worker share.
struct Shared {
    /// Bumped by each `transcribe` and by `unload`; a running decode aborts when it moves.
    generation: AtomicU64,
    /// Whether the worker holds a loaded model.
    loaded: AtomicBool,
}

enum Job {
    Preload {
        reply: oneshot::Sender<Result<Duration, SttError>>,
    },
    Transcribe {
        samples: Vec<f32>,
        hints: Hints,
        generation: u64,
        reply: oneshot::Sender<Result<Transcript, SttError>>,
    },
    Unload,
}

struct Inner {
    jobs: mpsc::Sender<Job>,
    shared: Arc<Shared>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: abort any decode; the worker exits when the channel closes.
        self.shared.generation.fetch_add(1, Ordering::SeqCst);
    }
}

/// A cloneable, `Send + Sync` handle to the speech recogniser. See the module docs.
#[derive(Clone)]
pub struct Transcriber {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Transcriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transcriber")
            .field("loaded", &self.is_loaded())
            .finish_non_exhaustive()
    }
}

impl Transcriber {
    /// Creates the handle and its (idle) worker thread. Nothing is loaded yet.
    pub fn new(cfg: SttConfig) -> Self {
        let shared = Arc::new(Shared {
            generation: AtomicU64::new(0),
            loaded: AtomicBool::new(false),
        });
        let (jobs, rx) = mpsc::channel();
        let worker = Worker {
            cfg,
            shared: Arc::clone(&shared),
            model: None,
            last_used: Instant::now(),
        };
        // If the thread cannot start, `rx` is dropped with the closure and every request
        // answers `WorkerGone`.
        if let Err(e) = std::thread::Builder::new()
            .name("atlas-stt".to_owned())
            .spawn(move || worker.run(rx))
        {
            tracing::error!(error = %e, "cannot start the speech recognition thread");
        }
        Self {
            inner: Arc::new(Inner { jobs, shared }),
        }
    }

    /// Loads the model now if it is not loaded; returns the load time (zero when it already was).
    pub async fn preload(&self) -> Result<Duration, SttError> {
        let (reply, rx) = oneshot::channel();
        self.send(Job::Preload { reply })?;
        rx.await.map_err(|_| SttError::WorkerGone)?
    }

    /// Transcribes 16 kHz mono audio, loading the model first if needed. `prompt` overrides the
    /// configured initial prompt for this call. Supersedes (aborts) any earlier call still queued
    /// or running, which then returns [`SttError::Aborted`].
    pub async fn transcribe(
        &self,
        samples_16k_mono: Vec<f32>,
        prompt: Option<String>,
    ) -> Result<Transcript, SttError> {
        let hints = Hints {
            prompt,
            ..Hints::default()
        };
        self.transcribe_with(samples_16k_mono, hints).await
    }

    /// [`Transcriber::transcribe`] with every hint: the prompt and a grammar of likely sentences.
    pub async fn transcribe_with(
        &self,
        samples_16k_mono: Vec<f32>,
        hints: Hints,
    ) -> Result<Transcript, SttError> {
        let generation = self.inner.shared.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let (reply, rx) = oneshot::channel();
        self.send(Job::Transcribe {
            samples: samples_16k_mono,
            hints,
            generation,
            reply,
        })?;
        rx.await.map_err(|_| SttError::WorkerGone)?
    }

    /// Whether the model is loaded right now.
    pub fn is_loaded(&self) -> bool {
        self.inner.shared.loaded.load(Ordering::SeqCst)
    }

    /// Aborts any running transcription and drops the model (context and state). Returns at once;
    /// [`Transcriber::is_loaded`] turns false when the worker has let go of it (milliseconds).
    pub fn unload(&self) {
        self.inner.shared.generation.fetch_add(1, Ordering::SeqCst);
        // A closed channel means the worker is gone, and with it the model.
        let _ = self.inner.jobs.send(Job::Unload);
    }

    fn send(&self, job: Job) -> Result<(), SttError> {
        self.inner.jobs.send(job).map_err(|_| SttError::WorkerGone)
    }
}

/// The loaded model; the state is declared first so it drops before the context.
struct Model {
    state: WhisperState,
    ctx: WhisperContext,
    english_only: bool,
    vocab: Vocab,
}

impl Model {
    fn load(path: &Path, flash_attn: bool) -> Result<Model, whisper_rs::WhisperError> {
        let mut params = WhisperContextParameters::default();
        params.flash_attn(flash_attn);
        let ctx = WhisperContext::new_with_params(path, params)?;
        // One state for the process: created once here, reused by every decode.
        let state = ctx.create_state()?;
        Ok(Model {
            state,
            english_only: !ctx.is_multilingual(),
            vocab: Vocab::load(&ctx),
            ctx,
        })
    }

    /// The decoder prompt `whisper_full` builds with no earlier context and no timestamps:
    /// `[prev, the last tokens of the initial prompt (at most half the text context less one)]`
    /// when there is a prompt, then `sot`, the language and task on a multilingual model, and
    /// `notimestamps`.
    fn encoded(&self, prompt: Option<&str>) -> Result<Encoded, SttError> {
        let prompt_tokens = match prompt {
            // A token is at least one byte: this many always suffice (whisper-rs mishandles a
            // buffer too small).
            Some(p) => self
                .ctx
                .tokenize(p, p.len() + 8)
                .map_err(|e| SttError::Inference(e.to_string()))?
                .len(),
            None => 0,
        };
        let max_prompt = usize::try_from(self.ctx.n_text_ctx() / 2 - 1).unwrap_or(0);
        let past = match prompt_tokens.min(max_prompt) {
            0 => 0,
            n => 1 + n,
        };
        let task = if self.ctx.is_multilingual() { 2 } else { 0 };
        Ok(Encoded {
            prompt_len: past + 1 + task + 1,
            prompt_last: self.ctx.token_not(),
        })
    }
}

/// The worker thread: sole owner of the model.
struct Worker {
    cfg: SttConfig,
    shared: Arc<Shared>,
    model: Option<Model>,
    last_used: Instant,
}

impl Worker {
    fn run(mut self, jobs: mpsc::Receiver<Job>) {
        whisper_rs::install_logging_hooks();
        loop {
            let idle = self.cfg.idle_unload;
            let job = if self.model.is_some() && !idle.is_zero() {
                let left = idle.saturating_sub(self.last_used.elapsed());
                match jobs.recv_timeout(left) {
                    Ok(job) => job,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        self.unload("idle");
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match jobs.recv() {
                    Ok(job) => job,
                    Err(_) => break,
                }
            };
            match job {
                Job::Preload { reply } => {
                    let _ = reply.send(self.ensure_loaded().map(|d| d.unwrap_or_default()));
                }
                Job::Transcribe {
                    samples,
                    hints,
                    generation,
                    reply,
                } => {
                    let result = self.transcribe(&samples, hints, generation);
                    let _ = reply.send(result);
                }
                Job::Unload => self.unload("requested"),
            }
        }
        self.unload("shutdown");
    }

    /// Loads the model if needed; `Some(load time)` when it loaded now.
    fn ensure_loaded(&mut self) -> Result<Option<Duration>, SttError> {
        self.last_used = Instant::now();
        if self.model.is_some() {
            return Ok(None);
        }
        let path = &self.cfg.model_path;
        check_model_file(path)?;
        let started = Instant::now();
        let load_err = |e: whisper_rs::WhisperError| SttError::ModelLoad {
            path: path.clone(),
            reason: e.to_string(),
        };
        self.model = Some(Model::load(path, self.cfg.flash_attn).map_err(load_err)?);
        self.shared.loaded.store(true, Ordering::SeqCst);
        let took = started.elapsed();
        self.last_used = Instant::now();
        tracing::info!(model = %path.display(), load_ms = took.as_millis() as u64, "whisper model loaded");
        Ok(Some(took))
    }

    fn unload(&mut self, why: &'static str) {
        if self.model.take().is_none() {
            return;
        }
        self.shared.loaded.store(false, Ordering::SeqCst);
        release_freed_memory();
        tracing::info!(reason = why, "whisper model unloaded");
    }

    fn transcribe(
        &mut self,
        samples: &[f32],
        hints: Hints,
        generation: u64,
    ) -> Result<Transcript, SttError> {
        let superseded = || self.shared.generation.load(Ordering::SeqCst) != generation;
        if superseded() {
            return Err(SttError::Aborted);
        }
        if samples.is_empty() {
            return Err(SttError::EmptyAudio);
        }
        let load = self.ensure_loaded()?;
        let model = self.model.as_mut().ok_or(SttError::WorkerGone)?;
        let prompt = hints
            .prompt
            .or_else(|| self.cfg.initial_prompt.clone())
            .as_deref()
            .and_then(sanitize_prompt);
        let run = Run {
            cfg: &self.cfg,
            samples,
            prompt: prompt.as_deref(),
            max_tokens: max_tokens_for(samples.len()),
            abort: AbortWhen {
                shared: Arc::clone(&self.shared),
                generation,
            },
        };
        let started = Instant::now();
        let result = run.decide(model, hints.grammar.as_deref(), hints.readings.as_ref());
        let stt = started.elapsed();
        self.last_used = Instant::now();
        if self.shared.generation.load(Ordering::SeqCst) != generation {
            tracing::debug!(
                stt_ms = stt.as_millis() as u64,
                "transcription aborted by a newer one"
            );
            return Err(SttError::Aborted);
        }
        let chosen = result?;
        let text = clean_transcript(&chosen.pass.raw);
        let audio_ms = samples.len() as u64 * 1000 / u64::from(SAMPLE_RATE);
        tracing::info!(
            audio_ms,
            stt_ms = stt.as_millis() as u64,
            audio_ctx = chosen.pass.audio_ctx,
            max_tokens = run.max_tokens,
            retried = chosen.retried,
            guided = chosen.guided,
            read = chosen.read,
            passes = chosen.passes,
            prompt = prompt.is_some(),
            chars = text.len(),
            "transcribed"
        );
        Ok(Transcript {
            text,
            audio_ms,
            stt_ms: stt.as_millis() as u64,
            load_ms: load.map(|d| d.as_millis() as u64),
            audio_ctx: chosen.pass.audio_ctx,
            retried: chosen.retried,
            guided: chosen.guided,
            alternative: chosen.alternative.map(|(raw, lost_by)| Alternative {
                text: clean_transcript(&raw),
                lost_by,
            }),
            overruled: chosen.overruled.map(|raw| clean_transcript(&raw)),
        })
    }
}

/// Letters and digits in whisper's raw text.
fn letter_count(raw: &str) -> usize {
    raw.chars().filter(|c| c.is_alphanumeric()).count()
}

/// Mean log-probability per token a guided transcript may lose against the free one and still
/// be taken (see [`SttConfig::guided_margin`]).
pub const GUIDED_MARGIN: f32 = 0.6;

/// How much likelier in total (natural log) the likeliest reading must be than every reading
/// that asks for something else (see [`Readings`]).
const READING_GAP: f32 = 2.0;

/// 16 kHz samples per encoder frame (20 ms).
const SAMPLES_PER_FRAME: usize = 320;
/// The shortest clip whose encoding a guided pass reuses (200 ms).
const MIN_REUSED_SAMPLES: usize = 3200;

/// One transcription's fixed inputs.
struct Run<'a> {
    cfg: &'a SttConfig,
    samples: &'a [f32],
    prompt: Option<&'a str>,
    max_tokens: i32,
    abort: AbortWhen,
}

/// One decode of the clip.
#[derive(Debug)]
struct Pass {
    /// whisper's text, before cleaning.
    raw: String,
    /// Mean log-probability of its tokens (see `guide`).
    score: Option<f32>,
    /// It ended without an end-of-text: the token budget ran out.
    out_of_tokens: bool,
    audio_ctx: i32,
}

/// The pass whose text is used, and how it was reached.
struct Chosen {
    pass: Pass,
    retried: bool,
    guided: bool,
    passes: u32,
    /// The guided pass that lost on its score, and by how much.
    alternative: Option<(String, f32)>,
    /// The free pass's text, when the guided one won.
    overruled: Option<String>,
    /// The guided text that won is one of the offered readings (see [`Readings`]).
    read: bool,
}

impl Run<'_> {
    /// Free decode; once more with a wider window if it repeated itself; then, with a grammar
    /// the free text is not in, a guided decode that wins when it scores close enough.
    fn decide(
        &self,
        model: &mut Model,
        grammar: Option<&Grammar>,
        readings: Option<&Readings>,
    ) -> Result<Chosen, SttError> {
        let window = audio_ctx_for(
            self.samples.len(),
            self.cfg.audio_ctx_floor,
            self.cfg.audio_ctx_margin,
        );
        let mut free = self.pass(model, window, None)?;
        let mut passes = 1;
        let retried =
            (free.out_of_tokens || has_loop(&free.raw)) && retry_audio_ctx(window) > window;
        if retried {
            free = self.pass(model, retry_audio_ctx(window), None)?;
            passes += 1;
        }
        let mut chosen = Chosen {
            pass: free,
            retried,
            guided: false,
            passes,
            alternative: None,
            overruled: None,
            read: false,
        };
        let Some(grammar) = grammar.filter(|g| !g.accepts(&chosen.pass.raw)) else {
            return Ok(chosen);
        };
        let free_letters = letter_count(&chosen.pass.raw);
        // A mean per token favours a guided decode that stops early: a short phrase ("Call
        // Siobhan.", "What needs me?") must not stand for a longer sentence that is none of the
        // phrases ("Is the not disturb on?"). Measured in letters, not words: whisper splits a
        // word it does not know into several ("Connect blue to f-" for "Connect bluetooth.").
        let covers = |raw: &str| 3 * letter_count(raw) >= 2 * free_letters;
        let acceptable = |raw: &str| covers(raw) && grammar.accepts(raw);
        let guided = self.guided_pass(model, chosen.pass.audio_ctx, grammar, &acceptable)?;
        chosen.passes += 1;
        let free_score = chosen.pass.score;
        let margin = self.cfg.guided_margin;
        let close_enough = |p: &Pass| match (p.score, free_score) {
            (Some(g), Some(f)) => g >= f - margin,
            _ => false,
        };
        if let Some(readings) = readings {
            let offered = (readings.0)(&clean_transcript(&chosen.pass.raw));
            let (read, _) = self.read(model, chosen.pass.audio_ctx, &offered, &acceptable)?;
            // A reading stands on its score alone: it is made from the free text's nearest
            // phrases, so that nearness is no second signal for it (see `Transcript::alternative`).
            let better = |r: &Pass| {
                !acceptable(&guided.raw)
                    || r.score.unwrap_or(f32::MIN) > guided.score.unwrap_or(f32::MIN)
            };
            if let Some(read) = read.filter(|r| better(r) && close_enough(r)) {
                tracing::debug!(free = %chosen.pass.raw, free_score = ?free_score, read = %read.raw,
                    read_score = ?read.score, "a reading stands");
                chosen.guided = true;
                chosen.read = true;
                let free = std::mem::replace(&mut chosen.pass, read);
                chosen.overruled = Some(free.raw);
                return Ok(chosen);
            }
        }
        let close_enough = close_enough(&guided);
        tracing::debug!(free = %chosen.pass.raw, free_score = ?chosen.pass.score,
            guided = %guided.raw, guided_score = ?guided.score, "free and guided decodes");
        if acceptable(&guided.raw) {
            if close_enough {
                chosen.guided = true;
                let free = std::mem::replace(&mut chosen.pass, guided);
                chosen.overruled = Some(free.raw);
            } else if let (Some(g), Some(f)) = (guided.score, chosen.pass.score) {
                chosen.alternative = Some((guided.raw, f - g));
            }
        }
        Ok(chosen)
    }

    /// The likeliest of `offered` that is `acceptable`, scored on the encoding the free pass
    /// left (with window `audio_ctx`), and how many were scored; nothing when that encoding
    /// cannot be reused (see [`Run::guided_pass`]).
    fn read(
        &self,
        model: &mut Model,
        audio_ctx: i32,
        offered: &[(String, String)],
        acceptable: &dyn Fn(&str) -> bool,
    ) -> Result<(Option<Pass>, usize), SttError> {
        if !self.encoding_reusable(audio_ctx) {
            return Ok((None, 0));
        }
        let mut candidates: Vec<(Vec<i32>, &str, &str)> = Vec::new();
        for (text, meaning) in offered.iter().filter(|(t, _)| acceptable(t)) {
            let ids = model
                .ctx
                .tokenize(text, text.len() + 8)
                .map_err(|e| SttError::Inference(e.to_string()))?;
            if ids.len() < usize::try_from(self.max_tokens).unwrap_or(0) {
                candidates.push((ids, text.as_str(), meaning.as_str()));
            }
        }
        // In token order, so a reading shares as much as it can with the one before it.
        candidates.sort();
        candidates.dedup_by(|a, b| a.0 == b.0);
        let encoded = model.encoded(self.prompt)?;
        let mut steps = WhisperSteps {
            state: &mut model.state,
            threads: self.cfg.thread_count(),
        };
        let mut forced = Forced::new(&mut steps, &model.vocab, encoded);
        // Each reading's mean and total log-probability.
        let mut scored: Vec<(f32, f32, &str, &str)> = Vec::new();
        for (ids, text, meaning) in &candidates {
            if self.abort.fired() {
                return Err(SttError::Aborted);
            }
            if let Some(mean) = forced.score(ids)? {
                scored.push((mean, mean * (ids.len() + 1) as f32, text, meaning));
            }
        }
        let Some(&(mean, total, text, meaning)) = scored.iter().max_by(|a, b| a.0.total_cmp(&b.0))
        else {
            return Ok((None, candidates.len()));
        };
        // The likeliest reading must also be clearly likelier than every reading that asks for
        // something else: compared in total, the tokens they share cancel out and what tells
        // them apart is weighed ("Pause" / "Unpause the podcast.").
        let rival = scored
            .iter()
            .filter(|r| r.3 != meaning)
            .map(|r| r.1)
            .fold(f32::NEG_INFINITY, f32::max);
        let gap = total - rival;
        tracing::debug!(
            offered = offered.len(),
            scored = scored.len(),
            best = text,
            gap,
            "the likeliest reading"
        );
        let pass = (gap >= READING_GAP).then(|| Pass {
            raw: text.to_owned(),
            score: Some(mean),
            out_of_tokens: false,
            audio_ctx,
        });
        Ok((pass, candidates.len()))
    }

    /// Whether the encoding a pass with window `audio_ctx` leaves in the state can be decoded
    /// again: the window held the whole clip, and whisper_full encoded it (it encodes nothing
    /// for a clip under 110 ms).
    fn encoding_reusable(&self, audio_ctx: i32) -> bool {
        let window_samples = usize::try_from(audio_ctx).unwrap_or(0) * SAMPLES_PER_FRAME;
        self.samples.len() <= window_samples && self.samples.len() >= MIN_REUSED_SAMPLES
    }

    /// The guided decode after a free one with window `audio_ctx`: on the free pass's encoding
    /// when that window held the whole clip (with [`SttConfig::guided_forks`] other readings,
    /// the best `acceptable` one taken), else a whole guided `whisper_full` again.
    fn guided_pass(
        &self,
        model: &mut Model,
        audio_ctx: i32,
        grammar: &Grammar,
        acceptable: &dyn Fn(&str) -> bool,
    ) -> Result<Pass, SttError> {
        if !self.encoding_reusable(audio_ctx) {
            return self.pass(model, audio_ctx, Some(grammar));
        }
        let encoded = model.encoded(self.prompt)?;
        let guide = Guide::guided(&model.vocab, grammar);
        let search = Search {
            forks: self.cfg.guided_forks,
            acceptable,
        };
        let mut steps = WhisperSteps {
            state: &mut model.state,
            threads: self.cfg.thread_count(),
        };
        let decoded = decode_guided(
            &mut steps,
            &model.vocab,
            &guide,
            encoded,
            self.max_tokens,
            &|| self.abort.fired(),
            &search,
        )?;
        tracing::debug!(readings = decoded.readings, "guided decode");
        Ok(Pass {
            score: decoded.score,
            out_of_tokens: decoded.last != Some(model.vocab.eot()),
            raw: decoded.raw,
            audio_ctx,
        })
    }

    /// One decode with window `audio_ctx`, guided by `grammar` when given.
    fn pass(
        &self,
        model: &mut Model,
        audio_ctx: i32,
        grammar: Option<&Grammar>,
    ) -> Result<Pass, SttError> {
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        tune_for_commands(&mut params, self.cfg.thread_count(), model.english_only);
        params.set_audio_ctx(audio_ctx);
        params.set_max_tokens(self.max_tokens);
        if let Some(p) = self.prompt {
            params.set_initial_prompt(p);
        }
        let guide = match grammar {
            Some(g) => Guide::guided(&model.vocab, g),
            None => Guide::scoring(&model.vocab),
        };
        guide.install(&mut params);
        full_until_aborted(&mut model.state, params, self.samples, &self.abort)
            .map_err(|e| SttError::Inference(e.to_string()))?;
        if self.abort.fired() {
            return Err(SttError::Aborted);
        }
        let mut raw = String::new();
        let mut last = None;
        for segment in model.state.as_iter() {
            if let Ok(text) = segment.to_str_lossy() {
                raw.push_str(&text);
            }
            let n = segment.n_tokens();
            last = (n > 0)
                .then(|| segment.get_token(n - 1).map(|t| t.token_id()))
                .flatten()
                .or(last);
        }
        Ok(Pass {
            score: guide.score(last),
            out_of_tokens: last != Some(model.vocab.eot()),
            raw,
            audio_ctx,
        })
    }
}

/// Whisper's settings for short spoken commands that do not depend on the clip: greedy, one
/// segment, no context from earlier calls, no timestamps, no temperature fallback, no printing.
pub(super) fn tune_for_commands(
    params: &mut FullParams<'_, '_>,
    threads: usize,
    english_only: bool,
) {
    params.set_n_threads(threads.min(c_int::MAX as usize) as c_int);
    params.set_translate(false);
    params.set_language(Some(if english_only { "en" } else { "auto" }));
    params.set_no_context(true);
    params.set_no_timestamps(true);
    params.set_single_segment(true);
    params.set_suppress_blank(true);
    params.set_suppress_nst(true);
    params.set_temperature(0.0);
    params.set_temperature_inc(0.0);
    params.set_print_special(false);
    params.set_print_progress(false);
    params.set_print_realtime(false);
    params.set_print_timestamps(false);
}

/// Runs whisper on `samples`, stopping early once `abort` sees a newer generation.
///
/// whisper-rs 0.16's `set_abort_callback_safe` hands whisper.cpp a pointer to a boxed trait
/// object but reads it back as the concrete closure, so its callback returns garbage (every
/// encode "aborts" with -6). The raw setter with our own trampoline avoids that; `abort` is
/// borrowed for the whole `full` call.
fn full_until_aborted(
    state: &mut WhisperState,
    mut params: FullParams<'_, '_>,
    samples: &[f32],
    abort: &AbortWhen,
) -> Result<(), whisper_rs::WhisperError> {
    // SAFETY: the trampoline only reads `abort`, which outlives the `full` call below, and
    // `AbortWhen` is `Sync` (an `Arc` of atomics and a `u64`), so ggml threads may read it.
    unsafe {
        params.set_abort_callback(Some(abort_trampoline));
        params.set_abort_callback_user_data(
            std::ptr::from_ref(abort)
                .cast_mut()
                .cast::<std::ffi::c_void>(),
        );
    }
    state.full(params, samples)
}

/// What the abort callback compares: the call's own generation against the shared counter.
struct AbortWhen {
    shared: Arc<Shared>,
    generation: u64,
}

impl AbortWhen {
    /// True once a newer generation exists.
    fn fired(&self) -> bool {
        self.shared.generation.load(Ordering::Relaxed) != self.generation
    }
}

/// whisper.cpp's abort callback: true (abort) once a newer generation exists.
unsafe extern "C" fn abort_trampoline(data: *mut std::ffi::c_void) -> bool {
    if data.is_null() {
        return false;
    }
    // SAFETY: `data` is the `AbortWhen` set next to this callback in `full_until_aborted`, alive
    // for the whole `full` call during which whisper.cpp may call us.
    let abort = unsafe { &*data.cast::<AbortWhen>() };
    abort.fired()
}

/// The 4-byte magic every whisper.cpp ggml model starts with (`0x67676d6c`, little-endian).
const GGML_MAGIC: u32 = 0x6767_6d6c;

/// Checks, before whisper.cpp sees it, that the file exists and starts like a ggml model, so the
/// user gets a precise message instead of a generic load failure.
fn check_model_file(path: &Path) -> Result<(), SttError> {
    use std::io::Read;
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SttError::ModelMissing {
                path: path.to_path_buf(),
            });
        }
        Err(e) => {
            return Err(SttError::ModelLoad {
                path: path.to_path_buf(),
                reason: e.to_string(),
            });
        }
    };
    // The magic, then 11 i32 hyper-parameters (n_vocab, n_audio_ctx, n_audio_state, n_audio_head,
    // n_audio_layer, n_text_ctx, n_text_state, n_text_head, n_text_layer, n_mels, ftype).
    let mut header = [0u8; 48];
    let not_a_model = |reason: String| SttError::NotAModel {
        path: path.to_path_buf(),
        reason,
    };
    if file.read_exact(&mut header[..4]).is_err() {
        return Err(not_a_model("the file is shorter than 4 bytes".to_owned()));
    }
    let magic = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    if &header[..4] == b"GGUF" {
        return Err(not_a_model(
            "it is a GGUF file (an LLM format), not a whisper ggml file".to_owned(),
        ));
    }
    if magic != GGML_MAGIC {
        return Err(not_a_model(format!(
            "it starts with 0x{magic:08x}, not the ggml magic 0x{GGML_MAGIC:08x}"
        )));
    }
    // whisper.cpp reads a short header as zeros and "loads" an empty model that fails later, so
    // the header is checked here.
    if file.read_exact(&mut header[4..]).is_err() {
        return Err(not_a_model(
            "its header is cut short (an interrupted download?)".to_owned(),
        ));
    }
    let hp: Vec<i32> = header[4..]
        .chunks_exact(4)
        .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let n_mels = hp[9];
    if hp[..9].iter().any(|&v| v <= 0) || !(n_mels == 80 || n_mels == 128) {
        return Err(not_a_model(format!(
            "its header holds implausible hyper-parameters {hp:?}"
        )));
    }
    Ok(())
}

/// Hands memory freed by the model back to the operating system, so that unloading really
/// lowers the resident size (glibc otherwise keeps freed heap pages for reuse).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free pages of the allocator's own heap.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
#[path = "whisper_tests.rs"]
mod tests;
