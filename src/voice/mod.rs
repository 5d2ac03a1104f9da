//! The voice loop: one utterance goes audio -> speech gate -> whisper -> trigger match -> workflow
//! run -> spoken reply.
//!
//! [`VoiceLoop::handle`] takes 16 kHz mono samples whose recording has just ended (a file, the
//! microphone, or later the push-to-talk key) and returns a [`Handled`] record with timings. The
//! agent reuses it unchanged. Silence and noise are stopped by the gate before whisper runs, and
//! whisper's near-silence inventions ("Thank you.") are dropped after it, so neither can start a
//! workflow. The matcher is built from the loaded workflows' `voice` triggers, and its phrases
//! also become whisper's initial prompt so decoding leans towards the user's own vocabulary.
//!
//! **Boundary**: imports `audio`, `stt`, `intent`, `engine`, `tts`; never the desktop.

mod ack;
mod metered;
mod speculative;
mod text;

#[cfg(test)]
mod agree_tests;
#[cfg(test)]
mod grammar_tests;

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

pub use metered::MeteredSpeaker;
pub use speculative::Speculation;

use crate::audio::{Vad, VadConfig};
use crate::config::VoiceConfig;
use crate::engine::{Engine, RunRequest, TriggerEvent};
use crate::intent::{MatchOptions, MatchOutcome, Matcher, VoiceEntry};
use crate::stt::{Alternative, Grammar, Hints, Readings, SttError, Transcriber, Transcript};
use crate::template::Tmpl;
use crate::workflow::TriggerDef;

/// Errors of the voice loop.
#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    /// Transcription failed.
    #[error(transparent)]
    Stt(#[from] SttError),
    /// A voice phrase does not parse (the workflow loader reports these first).
    #[error("invalid voice phrases: {0}")]
    Phrases(String),
}

/// The run a matched utterance started.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    /// Run id.
    pub id: String,
    /// Its final status.
    pub status: String,
    /// Its error, if any.
    pub error: Option<String>,
}

/// Timings of one utterance, in milliseconds from the end of the audio.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    /// Audio length.
    pub audio_ms: u64,
    /// Whisper's decode time.
    pub stt_ms: u64,
    /// Model load paid by this utterance (0 when warm).
    pub load_ms: u64,
    /// Matching, in microseconds.
    pub match_us: u64,
    /// End of audio to the workflow's first action started.
    pub release_to_workflow_ms: Option<f64>,
    /// End of audio to the first reply sample ready for the speaker.
    pub release_to_first_audio_ms: Option<f64>,
    /// The transcript is a speculative decode's, made while the key was still held (nothing
    /// was heard after its snapshot), so no decode ran after the release.
    pub speculative: bool,
}

/// What became of one utterance (the `atlas listen --json` contract).
#[derive(Debug, Clone, Serialize)]
pub struct Handled {
    /// What whisper heard (empty when the gate found no speech).
    pub transcript: String,
    /// The matched workflow's id.
    pub workflow: Option<String>,
    /// Slot values.
    pub slots: Map<String, Value>,
    /// Match score.
    pub score: Option<f32>,
    /// The run started.
    pub run: Option<RunInfo>,
    /// What was said back.
    pub reply: Option<String>,
    /// Why nothing ran, when nothing did.
    pub reason: Option<String>,
    /// Timings.
    pub timings: Timings,
    /// The question of a waiting `ask` action this utterance answered (it matched nothing then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answered: Option<String>,
    /// The question the started run asked and now waits on: the next utterance answers it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asked: Option<String>,
    /// The match's candidates and scores (for `--explain`).
    #[serde(skip)]
    pub outcome: Option<MatchOutcome>,
    /// How whisper decoded it: the free transcript, and the grammar-guided one beside it (for
    /// `atlas bench accuracy --dump`).
    #[serde(skip)]
    pub decode: Option<DecodeInfo>,
}

/// Whisper's two readings of an utterance, as [`Handled::decode`] keeps them.
#[derive(Debug, Clone)]
pub struct DecodeInfo {
    /// What whisper heard (the guided text when it won on its score).
    pub text: String,
    /// The text is the guided decode's.
    pub guided: bool,
    /// The guided decode that lost on score, if one ran.
    pub alternative: Option<crate::stt::Alternative>,
    /// The free decode, when the guided one won.
    pub overruled: Option<String>,
}

impl Handled {
    /// Nothing heard yet: the record an utterance starts from.
    fn new(transcript: String, timings: Timings) -> Handled {
        Handled {
            transcript,
            workflow: None,
            slots: Map::new(),
            score: None,
            run: None,
            reply: None,
            reason: None,
            answered: None,
            asked: None,
            timings,
            outcome: None,
            decode: None,
        }
    }

    /// Hands the utterance to the question an `ask` action waits on, if one does: true when it
    /// was an answer (and so is not a command).
    fn answers(&mut self, questions: &crate::actions::Questions) -> bool {
        let Some(asked) = questions.answer(&self.transcript) else {
            return false;
        };
        tracing::info!(answer = %self.transcript, run = %asked.run_id, "the utterance answers a question");
        self.reason = Some(format!("answered the question `{}`", asked.question));
        self.answered = Some(asked.question);
        true
    }
}

/// How far [`VoiceLoop::handle_reporting`] has got with an utterance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The gate found speech; whisper is decoding it.
    Transcribing,
    /// The transcript matched (or did not); the workflow or the reply is running.
    Running,
}

/// The voice loop over an engine.
pub struct VoiceLoop {
    engine: Engine,
    transcriber: Transcriber,
    speaker: Arc<MeteredSpeaker>,
    matcher: RwLock<Arc<Phrases>>,
    vad: Vad,
    config: VoiceConfig,
}

impl VoiceLoop {
    /// A voice loop over `engine`; `speaker` must be in the chain of the engine's speaker (so
    /// replies can be timed).
    pub fn new(
        engine: Engine,
        transcriber: Transcriber,
        speaker: Arc<MeteredSpeaker>,
        config: VoiceConfig,
    ) -> Result<VoiceLoop, VoiceError> {
        let matcher = build_matcher(&engine, &config)?;
        Ok(VoiceLoop {
            engine,
            transcriber,
            speaker,
            matcher: RwLock::new(Arc::new(matcher)),
            vad: Vad::new(VadConfig::default()),
            config,
        })
    }

    /// Rebuilds the matcher after the workflows changed.
    pub fn reload(&self) -> Result<(), VoiceError> {
        let m = build_matcher(&self.engine, &self.config)?;
        *self.matcher.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(m);
        Ok(())
    }

    /// The transcriber (for preloading when the key goes down).
    pub fn transcriber(&self) -> &Transcriber {
        &self.transcriber
    }

    fn matcher(&self) -> Arc<Phrases> {
        self.matcher
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Matches a transcript without running anything (for benchmarks and `--explain`).
    pub fn match_text(&self, text: &str) -> MatchOutcome {
        self.matcher().matcher.match_text(text)
    }

    /// Handles one utterance whose audio ended at `released`.
    pub async fn handle(
        &self,
        samples: Vec<f32>,
        released: Instant,
    ) -> Result<Handled, VoiceError> {
        let never = CancellationToken::new();
        self.handle_reporting(samples, released, &|_| {}, &never)
            .await
    }

    /// [`VoiceLoop::handle`], telling `progress` when each [`Phase`] begins (the agent's state
    /// machine follows it). Once `superseded` is cancelled (a newer press), the utterance does
    /// nothing more: its workflow does not start, a run it started is cancelled, and no reply
    /// is spoken.
    pub async fn handle_reporting(
        &self,
        samples: Vec<f32>,
        released: Instant,
        progress: &(dyn Fn(Phase) + Send + Sync),
        superseded: &CancellationToken,
    ) -> Result<Handled, VoiceError> {
        self.handle_released(
            samples,
            released,
            progress,
            superseded,
            None,
            Duration::ZERO,
        )
        .await
    }

    /// [`VoiceLoop::handle_reporting`] for a recording that `speculation` decoded while the key
    /// was held: its transcript stands for the whole recording when nothing was heard after its
    /// snapshot ([`Timings::speculative`]); otherwise the recording is decoded again.
    /// `own_sound`: the start of the recording that may hold Atlas's own sound (the tail of
    /// speech the press cut short), left out of the decode when it is apart from what follows.
    pub async fn handle_released(
        &self,
        samples: Vec<f32>,
        released: Instant,
        progress: &(dyn Fn(Phase) + Send + Sync),
        superseded: &CancellationToken,
        speculation: Option<Speculation>,
        own_sound: Duration,
    ) -> Result<Handled, VoiceError> {
        let audio_ms = (samples.len() as u64 * 1000) / crate::audio::SAMPLE_RATE as u64;
        let mut handled = Handled::new(
            String::new(),
            Timings {
                audio_ms,
                ..Timings::default()
            },
        );
        let matcher = self.matcher();
        let own_at_start = !own_sound.is_zero() && self.vad.sound_at_start(&samples);
        let Some(transcript) = self
            .hear(&samples, own_sound, speculation, progress)
            .await?
        else {
            handled.reason = Some("no speech detected".into());
            return Ok(handled);
        };
        handled.timings.speculative = transcript.1;
        let transcript = transcript.0;
        handled.timings.stt_ms = transcript.stt_ms;
        handled.timings.load_ms = transcript.load_ms.unwrap_or(0);
        handled.decode = Some(DecodeInfo {
            text: transcript.text.clone(),
            guided: transcript.guided,
            alternative: transcript.alternative.clone(),
            overruled: transcript.overruled.clone(),
        });
        let text = transcript.text;
        handled.transcript = text.clone();
        if crate::stt::is_noise_transcript(&text, crate::intent::content_words) {
            tracing::info!(transcript = %text, "ignored a near-silence transcript");
            handled.reason = Some(format!(
                "ignored `{text}`: whisper's usual output on near-silence"
            ));
            return Ok(handled);
        }
        if handled.answers(&self.engine.services().questions) {
            return Ok(handled);
        }
        let t0 = Instant::now();
        let mut outcome = matcher.matcher.match_text(&text);
        let mut text = text;
        if let Some((alt, alt_outcome)) = agreeing_alternative(
            &matcher.matcher,
            &outcome,
            transcript.alternative.as_ref(),
            self.config.agree_margin,
        ) {
            tracing::info!(free = %text, guided = %alt.text, lost_by = alt.lost_by,
                "the guided transcript stands: its workflow is the free text's nearest");
            text = alt.text.clone();
            handled.transcript = text.clone();
            outcome = alt_outcome;
        }
        if outcome.best.is_none()
            && own_at_start
            && let Some((rest, rest_outcome)) = without_first_word(&matcher.matcher, &text)
        {
            tracing::info!(heard = %text, kept = %rest,
                "the first word was Atlas's own sound at the start of the recording: left out");
            text = rest;
            handled.transcript = text.clone();
            outcome = rest_outcome;
        }
        handled.timings.match_us = t0.elapsed().as_micros() as u64;
        if superseded.is_cancelled() {
            handled.reason = Some(SUPERSEDED.into());
            handled.outcome = Some(outcome);
            return Ok(handled);
        }
        progress(Phase::Running);
        tracing::info!(transcript = %text, best = ?outcome.best.as_ref().map(|b| (&b.workflow_id, b.score)), "utterance matched");
        let said = Said {
            released,
            superseded,
        };
        self.act_on(&mut handled, outcome, &text, &said).await;
        Ok(handled)
    }

    /// Whisper on the speech part of an utterance, with the user's phrases as its prompt and
    /// their grammar as a guide (see [`Hints`]): the decode after the release and the
    /// speculative one while the key is held both go here.
    /// While an `ask` action waits, the question is the prompt and nothing guides the decode:
    /// the answer is free speech, not one of the phrases.
    async fn decode(&self, speech: Vec<f32>) -> Result<Transcript, SttError> {
        let phrases = self.matcher();
        let hints = match self.engine.services().questions.open_question() {
            Some(asked) => Hints {
                prompt: Some(asked.question),
                ..Hints::default()
            },
            None => {
                let most = self.config.readings;
                let nearest = Arc::clone(&phrases);
                Hints {
                    prompt: (!phrases.prompt.is_empty()).then(|| phrases.prompt.clone()),
                    grammar: phrases.grammar.clone(),
                    readings: (most > 0).then(|| {
                        Readings(Arc::new(move |free: &str| {
                            let readings = nearest.matcher.nearest_readings(free, most);
                            readings.into_iter().map(|r| (r.text, r.meaning)).collect()
                        }))
                    }),
                }
            }
        };
        self.transcriber.transcribe_with(speech, hints).await
    }

    /// Runs the workflow `outcome` matched, or says that nothing was understood; the outcome is
    /// kept in `handled`. Speech and typed commands both end here.
    async fn act_on(
        &self,
        handled: &mut Handled,
        outcome: MatchOutcome,
        heard: &str,
        said: &Said<'_>,
    ) {
        match outcome.best.clone() {
            Some(m) => {
                handled.workflow = Some(m.workflow_id.clone());
                handled.slots = m.slots.clone();
                handled.score = Some(m.score);
                self.run_matched(handled, &m.workflow_id, &m.phrase, said)
                    .await;
            }
            None => {
                handled.reason = outcome.reason.clone();
                self.not_understood(handled, heard, said).await;
            }
        }
        handled.outcome = Some(outcome);
    }

    async fn run_matched(
        &self,
        handled: &mut Handled,
        workflow: &str,
        phrase: &str,
        said: &Said<'_>,
    ) {
        let released = said.released;
        let mut events = self.engine.subscribe();
        self.speaker.reset();
        let req = RunRequest {
            workflow_id: workflow.to_owned(),
            trigger: TriggerEvent {
                kind: "voice".into(),
                data: json!({
                    "transcript": handled.transcript,
                    "phrase": phrase,
                    "slots": handled.slots,
                    "score": handled.score,
                }),
            },
            vars: Default::default(),
            parent_run: None,
            depth: 0,
        };
        let ack = self.acknowledge(workflow, phrase, said);
        let handle = match self.engine.trigger(req) {
            Ok(h) => h,
            Err(e) => {
                handled.reason = Some(e.to_string());
                self.say(handled, &format!("Sorry, I can't run that now: {e}"), said)
                    .await;
                return;
            }
        };
        // Bounded by the run's end even when lag loses its events (the handle says when).
        let run_id = handle.id.clone();
        let started = tokio::select! {
            started = crate::engine::first_action_started(&mut events, &handle) => started,
            _ = said.superseded.cancelled() => None,
        };
        handled.timings.release_to_workflow_ms = started.map(|t| ms(t - released));
        let mut asked = self.engine.services().questions.subscribe();
        let wait = handle.wait();
        tokio::pin!(wait);
        let outcome = tokio::select! {
            outcome = &mut wait => outcome,
            _ = said.superseded.cancelled() => {
                // A newer press: this run's speech was stopped; the run itself goes too.
                let _ = self.engine.cancel_with(&run_id, SUPERSEDED.to_owned());
                wait.await
            }
            question = async {
                asked.wait_for(|q| q.as_ref().is_some_and(|q| q.run_id == run_id)).await.ok().and_then(|q| q.clone())
            } => {
                // The run asks something and waits: the utterance is done, the run goes on
                // without it, and the next utterance is the answer (a newer press must not
                // cancel the run it is meant to answer).
                let question = question.map(|q| q.question);
                handled.run = Some(RunInfo { id: run_id, status: "running".into(), error: None });
                handled.reply = question.clone();
                handled.asked = question;
                handled.timings.release_to_first_audio_ms = self.speaker.first_audio_since(released);
                return;
            }
        };
        handled.run = Some(RunInfo {
            id: outcome.run_id.clone(),
            status: outcome.status.to_string(),
            error: outcome.error.clone(),
        });
        if !outcome.spoken.is_empty() {
            handled.reply = Some(outcome.spoken.join(" "));
        }
        if let Some(ack) = ack {
            handled.reply = ack::with_ack(Some(ack.said().await), handled.reply.take());
        }
        if outcome.status != crate::store::RunStatus::Succeeded {
            let name = self
                .engine
                .workflow(workflow)
                .map(|w| w.name().to_owned())
                .unwrap_or_else(|| workflow.to_owned());
            self.say(handled, &format!("Sorry, {name} did not work."), said)
                .await;
        }
        handled.timings.release_to_first_audio_ms = self.speaker.first_audio_since(released);
    }

    async fn not_understood(&self, handled: &mut Handled, text: &str, said: &Said<'_>) {
        self.speaker.reset();
        if self.config.llm_fallback {
            match self.ask_llm(text).await {
                Ok(answer) => {
                    self.say(handled, &answer, said).await;
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "LLM fallback failed"),
            }
        }
        let sorry = self.config.not_understood.clone();
        self.say(handled, &sorry, said).await;
    }

    async fn ask_llm(&self, text: &str) -> Result<String, crate::actions::ActionError> {
        // The transcript goes in through the scope, never as template source: a `{{` whisper
        // heard is text to send, not a template to render.
        let cfg = crate::actions::LlmConfig {
            system: Some(Tmpl::new(
                "You are Atlas, a voice assistant. Answer in one or two short spoken sentences.",
            )),
            prompt: Some(Tmpl::new("{{ transcript }}")),
            ..Default::default()
        };
        let scope = minijinja::Value::from(std::collections::BTreeMap::from([(
            "transcript".to_owned(),
            minijinja::Value::from(text),
        )]));
        let cancel = tokio_util::sync::CancellationToken::new();
        let redactor = crate::redact::Redactor::default();
        let ctx = crate::actions::ActionCtx {
            scope: &scope,
            services: self.engine.services(),
            cancel: &cancel,
            redactor: &redactor,
        };
        let out = crate::actions::execute(&crate::actions::ActionConfig::Llm(cfg), &ctx).await?;
        Ok(out["text"].as_str().unwrap_or_default().to_owned())
    }

    async fn say(&self, handled: &mut Handled, text: &str, said: &Said<'_>) {
        if said.superseded.is_cancelled() {
            tracing::info!(reply = %text, "reply not spoken: {SUPERSEDED}");
            return;
        }
        let released = said.released;
        // Through the engine's speaker, so replies queue with (and are gated like) other speech.
        if let Err(e) = self.engine.services().speaker.speak(text).await {
            tracing::warn!(error = %e, "could not speak the reply");
        }
        // Said aloud as it is, but recorded (printed, logged) without any secret read so far.
        let text = crate::redact::process().text(text);
        handled.reply = Some(match handled.reply.take() {
            Some(r) => format!("{r} {text}"),
            None => text,
        });
        handled.timings.release_to_first_audio_ms = self.speaker.first_audio_since(released);
    }
}

/// Why a superseded utterance stopped (its run's error, its `reason`).
pub const SUPERSEDED: &str = "superseded by a newer utterance";

/// Where an utterance's replies are timed from, and whether a newer press replaced it.
struct Said<'a> {
    released: Instant,
    superseded: &'a CancellationToken,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// What the enabled workflows' voice phrases give the loop.
struct Phrases {
    matcher: Matcher,
    /// Whisper's initial prompt: the phrases as short sentences.
    prompt: String,
    /// The phrases as a decoding grammar (`None` without phrases, or with
    /// `voice.grammar = false`).
    grammar: Option<Arc<Grammar>>,
}

/// The default of `voice.agree_margin`: how much lower (mean log-probability per token) a
/// grammar-guided transcript may score than the free one and still stand, when the free text's
/// nearest phrase agrees with it.
pub const AGREE_MARGIN: f32 = crate::config::DEFAULT_AGREE_MARGIN;

/// The least score the free text's nearest phrase must have to count as agreeing.
pub const AGREE_FLOOR: f32 = 0.5;

/// How alike the guided and free readings must be (see [`crate::intent::reading_similarity`])
/// for the guided one to stand on that alone, and by how much (a share of `voice.agree_margin`)
/// it may then have lost: a close reading ("Turn off the habit lights." / "Turn off the attic
/// lights.") up to 1.4 times the margin, a fair one up to 0.4 times. On `atlas bench accuracy`
/// (200 utterances) every guided reading this close was the one said and every wrong one was
/// further (at most 0.65); measured, not a guarantee.
pub const READINGS: [(f32, f32); 2] = [(0.7, 1.4), (0.5, 0.4)];

/// The guided transcript and its match, when it should stand for the free one: the free text
/// matched nothing and either its best-scoring phrase (at least [`AGREE_FLOOR`]) belongs to the
/// very workflow the guided text matches and the guided decode lost by at most `margin`, or the
/// two readings are alike letter by letter and the guided one lost by little ([`READINGS`]).
/// A number slot must have a number somewhere in the free text, and the guided reading must not
/// put a word in place of its opposite ("on" read as "off"). Two independent signals then
/// agree: what whisper heard freely points at the guided reading (its nearest phrase, or its
/// letters) as the audio's fit to that workflow's phrases does. Off-topic speech rarely passes:
/// its guided decode loses by more, and its reading and nearest phrase are elsewhere.
fn agreeing_alternative<'a>(
    matcher: &Matcher,
    free: &MatchOutcome,
    alternative: Option<&'a Alternative>,
    margin: f32,
) -> Option<(&'a Alternative, MatchOutcome)> {
    let alt = alternative?;
    if free.best.is_some() || margin <= 0.0 {
        return None;
    }
    let guided = matcher.match_text(&alt.text);
    let m = guided.best.as_ref()?;
    if crate::intent::swaps_an_opposite(&free.transcript, &alt.text) {
        return None;
    }
    let nearest_agrees = free
        .candidates
        .first()
        .is_some_and(|c| c.score >= AGREE_FLOOR && c.workflow_id == m.workflow_id)
        && alt.lost_by <= margin;
    let alike = crate::intent::reading_similarity(&free.transcript, &alt.text);
    let reading_agrees = READINGS
        .iter()
        .any(|&(similar, share)| alike >= similar && alt.lost_by <= margin * share);
    if !(nearest_agrees || reading_agrees) {
        return None;
    }
    // The guided decode may correct words, not invent a number: a number slot needs a number
    // somewhere in what was heard freely ("to hiding" must not become "to 90").
    let invents_number = m.slots.values().any(Value::is_number)
        && !free
            .normalized
            .split_whitespace()
            .any(|w| crate::intent::parse_number(w).is_some());
    (!invents_number).then_some((alt, guided))
}

/// `text` without its first word, and its match, when that matches a workflow. For a recording
/// that opened on Atlas's own sound (the tail of speech the press cut short, running on into
/// the command without a pause [`crate::audio::Vad::own_head`] could cut at): whisper writes
/// that sound as a word before the command ("I set the volume to low.", measured on the
/// desktop test), which makes the command a statement. Only one word, and only when the rest
/// is a command by itself.
fn without_first_word(matcher: &Matcher, text: &str) -> Option<(String, MatchOutcome)> {
    let mut words = text.split_whitespace();
    words.next()?;
    let rest = words.collect::<Vec<_>>().join(" ");
    if rest.is_empty() {
        return None;
    }
    let outcome = matcher.match_text(&rest);
    outcome.best.is_some().then_some((rest, outcome))
}

/// Matches `text` against the enabled workflows' voice phrases with the matcher `config`
/// configures, without a voice loop (no whisper model): nothing runs and nothing is said.
pub fn dry_match(
    engine: &Engine,
    config: &VoiceConfig,
    text: &str,
) -> Result<MatchOutcome, VoiceError> {
    Ok(build_matcher(engine, config)?.matcher.match_text(text))
}

/// Builds the matcher, whisper's initial prompt and the decoding grammar from the enabled
/// workflows' voice phrases.
fn build_matcher(engine: &Engine, config: &VoiceConfig) -> Result<Phrases, VoiceError> {
    let entries: Vec<VoiceEntry> = engine
        .workflows()
        .values()
        .filter(|w| w.def.enabled)
        .filter_map(|w| {
            let phrases: Vec<String> = w
                .def
                .triggers
                .iter()
                .filter_map(|t| match t {
                    TriggerDef::Voice { phrases, .. } => Some(phrases.clone()),
                    _ => None,
                })
                .flatten()
                .collect();
            (!phrases.is_empty()).then(|| VoiceEntry {
                workflow_id: w.id().to_owned(),
                phrases,
            })
        })
        .collect();
    let options = MatchOptions {
        threshold: config.threshold,
        margin: config.margin,
        ..MatchOptions::default()
    };
    let matcher = Matcher::new(&entries, options).map_err(|errs| {
        VoiceError::Phrases(
            errs.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let prompt = matcher.initial_prompt(config.prompt_chars);
    let grammar = match matcher.decoding_grammar().filter(|_| config.grammar) {
        // The grammar is generated from phrases that parsed: failing here is a bug in the
        // generator, which must not take voice commands down with it.
        Some(text) => match Grammar::parse(&text) {
            Ok(g) => Some(Arc::new(g)),
            Err(e) => {
                tracing::error!(error = %e, "the phrases' decoding grammar is invalid; decoding unguided");
                None
            }
        },
        None => None,
    };
    Ok(Phrases {
        matcher,
        prompt,
        grammar,
    })
}
