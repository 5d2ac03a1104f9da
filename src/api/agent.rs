//! `/v1/utterance`, `/v1/say`, `/v1/status`, `/v1/events`: the voice loop's typed entry, the
//! speaker, the runtime's status and the event stream.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
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

/// A typed command through `VoiceLoop::handle_text`: what matched, the run, the reply.
pub(super) async fn utterance(
    State(api): State<Arc<Api>>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let TextBody { text } = json_body(&body)?;
    if text.trim().is_empty() {
        return Err(ApiError::BadRequest("`text` is empty".into()));
    }
    let voice = api.voice.as_ref().ok_or_else(|| {
        ApiError::Unavailable(
            "voice is off (no whisper model is installed, see GET /v1/status): typed commands use the voice loop's matcher".into(),
        )
    })?;
    let handled = voice.handle_text(&text).await;
    Ok(Json(json!(handled)))
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
