//! `/v1/utterance`, `/v1/say`, `/v1/status`, `/v1/events`: the voice loop's typed entry, the
//! speaker, the runtime's status and the event stream.

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::error::json_body;
use super::{Api, ApiError};

/// `{"text": ...}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TextBody {
    text: String,
}

/// A command for the voice loop: a WAV recording (`Content-Type: audio/wav`, or a body that
/// starts as a RIFF/WAVE file) is gated, transcribed and matched as a push-to-talk recording is;
/// `{"text": ...}` is matched as a typed command. Either way: what matched, the run, the reply.
pub(super) async fn utterance(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let voice = api.voice.as_ref().ok_or_else(|| {
        ApiError::Unavailable(
            "voice is off (no whisper model is installed, see GET /v1/status): commands use the voice loop's matcher".into(),
        )
    })?;
    if is_wav(&headers, &body) {
        let samples = crate::audio::read_wav_bytes_16k_mono(&body, Path::new("the request body"))
            .map_err(|e| {
            ApiError::BadRequest(format!(
                "the body is not a WAV recording Atlas can read: {e}"
            ))
        })?;
        let seconds = samples.len() as f64 / f64::from(crate::audio::SAMPLE_RATE);
        let limit = api.config.voice.max_seconds;
        if seconds > f64::from(limit) {
            return Err(ApiError::TooLarge(format!(
                "the recording is {seconds:.1} s long; the voice loop takes at most {limit} s (voice.max_seconds)"
            )));
        }
        let handled = voice
            .handle(samples, Instant::now())
            .await
            .map_err(|e| ApiError::Unavailable(format!("could not transcribe it: {e}")))?;
        api.record_utterance(&handled, "api");
        return Ok(Json(json!(handled)));
    }
    let TextBody { text } = json_body(&body)?;
    if text.trim().is_empty() {
        return Err(ApiError::BadRequest("`text` is empty".into()));
    }
    let handled = voice.handle_text(&text).await;
    let record = api.record_utterance(&handled, "typed");
    let mut answer = json!(handled);
    answer["candidates"] = record["candidates"].clone();
    Ok(Json(answer))
}

/// How many handled utterances `GET /v1/utterances` keeps.
const KEPT_UTTERANCES: usize = 20;

impl Api {
    /// Keeps a handled utterance for `GET /v1/utterances` (with its match candidates and
    /// scores, as `atlas listen --explain` shows them) and publishes it on `/v1/events` as
    /// `utterance`; redacted like every answer. The record is returned.
    pub fn record_utterance(&self, handled: &crate::voice::Handled, source: &str) -> Value {
        let mut v = json!(handled);
        v["source"] = json!(source);
        v["at"] = json!(chrono::Utc::now().timestamp_millis());
        if let Some(o) = &handled.outcome {
            v["normalized"] = json!(o.normalized);
            v["candidates"] = json!(o.candidates);
        } else {
            v["candidates"] = json!([]);
        }
        let v = crate::redact::process().json(&v);
        {
            let mut kept = self.utterances.lock().unwrap_or_else(|e| e.into_inner());
            if kept.len() >= KEPT_UTTERANCES {
                kept.pop_front();
            }
            kept.push_back(v.clone());
        }
        self.publish_agent(json!({"type": "utterance", "utterance": v}));
        v
    }
}

/// `GET /v1/utterances`: the last utterances handled, newest first.
pub(super) async fn utterances(State(api): State<Arc<Api>>) -> Json<Value> {
    let kept = api.utterances.lock().unwrap_or_else(|e| e.into_inner());
    let list: Vec<Value> = kept.iter().rev().cloned().collect();
    Json(json!({ "utterances": list }))
}

/// `GET /v1/action-kinds`: every action kind with its one-line doc and its config's fields.
pub(super) async fn action_kinds() -> Json<Value> {
    Json(json!({ "kinds": crate::actions::kind_infos() }))
}

/// Whether a body is a WAV recording: declared so, or shaped so when nothing is declared.
fn is_wav(headers: &HeaderMap, body: &[u8]) -> bool {
    let declared = super::media_type(headers);
    match declared.as_deref() {
        // audio/wav, audio/x-wav, audio/wave, ...: the decoder says if it is not a WAV file.
        Some(ct) if ct.starts_with("audio/") => true,
        None | Some("application/octet-stream") => {
            body.len() >= 12 && &body[..4] == b"RIFF" && &body[8..12] == b"WAVE"
        }
        Some(_) => false,
    }
}

/// Says the text through the engine's speaker.
pub(super) async fn say(State(api): State<Arc<Api>>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let TextBody { text } = json_body(&body)?;
    if text.trim().is_empty() {
        return Err(ApiError::BadRequest("`text` is empty".into()));
    }
    let speaker = api.engine.services().speaker.clone();
    match speaker.speak(&text).await {
        Ok(outcome) => Ok(Json(json!({"said": text, "outcome": outcome}))),
        Err(e) => Err(ApiError::Unavailable(format!("could not say it: {e}"))),
    }
}

/// What the runtime knows, plus the API's own facts.
pub(super) async fn status(State(api): State<Arc<Api>>) -> Json<Value> {
    let mut v = api.status.as_ref().map_or_else(|| json!({}), |f| f());
    if !v.is_object() {
        v = json!({ "runtime": v });
    }
    v["api_url"] = json!(api.url());
    v["workflows"] = json!(api.engine.workflows().len());
    v["active_runs"] = json!(api.engine.active_runs());
    v["voice"] = json!(api.voice.is_some());
    v["history"] = json!(api.engine.store().health());
    Json(v)
}

/// Server-sent events: every engine event (`event:` its `type`), agent stage changes
/// (`agent_stage`), and `lagged` when this subscriber fell behind and lost some (re-read
/// `/v1/runs` then).
pub(super) async fn events(
    State(api): State<Arc<Api>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let engine = api.engine.subscribe();
    let agent = api.agent_events.subscribe();
    let stop = api.stop.clone();
    let stream = futures::stream::unfold(
        (engine, agent, stop),
        |(mut engine, mut agent, stop)| async move {
            let item = tokio::select! {
                _ = stop.cancelled() => return None,
                e = engine.recv() => match e {
                    Ok(ev) => json!(ev),
                    Err(RecvError::Lagged(n)) => json!({"type": "lagged", "missed": n}),
                    Err(RecvError::Closed) => return None,
                },
                a = agent.recv() => match a {
                    Ok(v) => v,
                    Err(RecvError::Lagged(n)) => json!({"type": "lagged", "missed": n}),
                    Err(RecvError::Closed) => return None,
                },
            };
            let name = item["type"].as_str().unwrap_or("event").to_owned();
            let event = Event::default().event(name).data(item.to_string());
            Some((Ok(event), (engine, agent, stop)))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
