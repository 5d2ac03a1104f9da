//! The small leaf kinds: `condition`, `delay`, `set`, `log`, `notify`, `speak`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{ActionCtx, ActionError, ActionKind, LeafKind};
use crate::spec::{Dur, MAX_TIMEOUT, Problem, too_long};
use crate::template::{Expr, TValue, Tmpl};

/// The `condition` kind.
pub struct Condition;

impl ActionKind for Condition {
    const NAME: &'static str = "condition";
    const DOC: &'static str = "Branch on an expression.";
    type Config = ConditionConfig;
}

impl LeafKind for Condition {
    async fn execute(c: &ConditionConfig, ctx: &ActionCtx<'_>) -> Result<Value, ActionError> {
        Ok(json!({ "result": c.condition.is_true(ctx.scope)? }))
    }
}

/// Config of `condition`: evaluates `if`; the engine then follows `then` or `else`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionConfig {
    /// The expression, e.g. `price.body.price | float > vars.threshold`.
    #[serde(rename = "if")]
    pub condition: Expr,
    /// Action to run when true; without it, the next action in the list.
    #[serde(default)]
    pub then: Option<String>,
    /// Action to run when false; without it, the next action in the list.
    #[serde(default, rename = "else")]
    pub otherwise: Option<String>,
}

/// Config of `delay`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelayConfig {
    /// How long to wait.
    pub duration: Dur,
}

/// The `delay` kind.
pub struct Delay;

impl ActionKind for Delay {
    const NAME: &'static str = "delay";
    const DOC: &'static str = "Wait.";
    type Config = DelayConfig;

    /// A delay is at most [`MAX_TIMEOUT`] (30 days).
    fn check(c: &DelayConfig) -> Vec<Problem> {
        match c.duration.0 > MAX_TIMEOUT {
            true => vec![Problem::new(
                "duration",
                too_long("a duration of", c.duration.0, MAX_TIMEOUT, "30 days"),
            )],
            false => Vec::new(),
        }
    }
}

impl LeafKind for Delay {
    async fn execute(c: &DelayConfig, ctx: &ActionCtx<'_>) -> Result<Value, ActionError> {
        tokio::select! {
            _ = tokio::time::sleep(c.duration.0) => Ok(json!({ "waited_ms": c.duration.0.as_millis() as u64 })),
            _ = ctx.cancel.cancelled() => Err(ActionError::Cancelled),
        }
    }
}

/// Config of `set`: new values for run variables (`vars.NAME`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetConfig {
    /// Variable name to value; values may be typed templates.
    pub values: BTreeMap<String, TValue>,
}

/// The `set` kind (the engine merges its output into the run's `vars`).
pub struct Set;

impl ActionKind for Set {
    const NAME: &'static str = "set";
    const DOC: &'static str = "Set run variables.";
    type Config = SetConfig;
}

impl LeafKind for Set {
    async fn execute(c: &SetConfig, ctx: &ActionCtx<'_>) -> Result<Value, ActionError> {
        let mut out = serde_json::Map::new();
        for (k, v) in &c.values {
            out.insert(k.clone(), v.render(ctx.scope)?);
        }
        Ok(Value::Object(out))
    }
}

/// Log level of a `log` action.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Informational.
    #[default]
    Info,
    /// Something to look at.
    Warn,
    /// Something went wrong.
    Error,
}

/// Config of `log`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// The message.
    pub message: Tmpl,
    /// Its level.
    #[serde(default)]
    pub level: Level,
}

/// The `log` kind.
pub struct Log;

impl ActionKind for Log {
    const NAME: &'static str = "log";
    const DOC: &'static str = "Write to the log (and the run history).";
    type Config = LogConfig;
}

impl LeafKind for Log {
    async fn execute(c: &LogConfig, ctx: &ActionCtx<'_>) -> Result<Value, ActionError> {
        let message = c.message.render(ctx.scope)?;
        // The output is redacted by the engine with everything else; the log line is written here.
        let logged = ctx.redactor.text(&message);
        match c.level {
            Level::Info => {
                tracing::info!(target: "atlas::workflow", message = %logged, "log action")
            }
            Level::Warn => {
                tracing::warn!(target: "atlas::workflow", message = %logged, "log action")
            }
            Level::Error => {
                tracing::error!(target: "atlas::workflow", message = %logged, "log action")
            }
        }
        Ok(json!({ "message": message }))
    }
}

/// Config of `notify`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Headline.
    pub title: Tmpl,
    /// Text under it.
    #[serde(default)]
    pub body: Tmpl,
    /// `low`, `normal` (default) or `critical`.
    #[serde(default)]
    pub urgency: Urgency,
}

/// How urgent a notification is (the freedesktop levels).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Urgency {
    /// Shown quietly.
    Low,
    /// The usual.
    #[default]
    Normal,
    /// Stays until dismissed.
    Critical,
}

/// The `notify` kind.
pub struct Notify;

impl ActionKind for Notify {
    const NAME: &'static str = "notify";
    const DOC: &'static str = "Desktop notification.";
    type Config = NotifyConfig;
}

impl LeafKind for Notify {
    async fn execute(c: &NotifyConfig, ctx: &ActionCtx<'_>) -> Result<Value, ActionError> {
        notify(c, ctx).await
    }
}

async fn notify(c: &NotifyConfig, ctx: &ActionCtx<'_>) -> Result<Value, ActionError> {
    let title = c.title.render(ctx.scope)?;
    let body = c.body.render(ctx.scope)?;
    let urgency = match c.urgency {
        Urgency::Low => notify_rust::Urgency::Low,
        Urgency::Normal => notify_rust::Urgency::Normal,
        Urgency::Critical => notify_rust::Urgency::Critical,
    };
    let (t, b) = (title.clone(), body.clone());
    let shown = tokio::task::spawn_blocking(move || {
        notify_rust::Notification::new()
            .appname("Atlas")
            .summary(&t)
            .body(&b)
            .urgency(urgency)
            .show()
            .map(|h| h.id())
    })
    .await
    .map_err(|source| ActionError::Task {
        task: "notification",
        source,
    })?;
    Ok(match shown {
        Ok(id) => json!({ "delivered": true, "id": id, "title": title, "body": body }),
        // No session bus or no notification daemon: the run goes on, and the result says so.
        Err(e) => json!({
            "delivered": false,
            "reason": format!("no desktop notification service reachable on the session bus: {e}"),
            "title": title,
            "body": body,
        }),
    })
}

/// Config of `speak`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeakConfig {
    /// What to say.
    pub text: Tmpl,
}

/// The `speak` kind (the engine adds what it said to the run's `spoken`).
pub struct Speak;

impl ActionKind for Speak {
    const NAME: &'static str = "speak";
    const DOC: &'static str = "Say something.";
    type Config = SpeakConfig;
}

impl LeafKind for Speak {
    async fn execute(c: &SpeakConfig, ctx: &ActionCtx<'_>) -> Result<Value, ActionError> {
        speak(c, ctx).await
    }
}

async fn speak(c: &SpeakConfig, ctx: &ActionCtx<'_>) -> Result<Value, ActionError> {
    // Templates spread over YAML lines leave runs of spaces and newlines: speak it as one text.
    let text = c
        .text
        .render(ctx.scope)?
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let speaker = &ctx.services.speaker;
    // Stops the speech if this future is dropped mid-sentence (run cancelled or timed out).
    struct StopOnDrop<'a>(&'a dyn crate::tts::Speaker, bool);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            if !self.1 {
                self.0.stop();
            }
        }
    }
    let mut guard = StopOnDrop(speaker.as_ref(), false);
    let outcome = speaker.speak(&text).await;
    guard.1 = true;
    let outcome = outcome?;
    let mut out =
        json!({ "text": text, "backend": outcome.backend, "completed": outcome.completed });
    if let Some(why) = outcome.unvoiced {
        // Not a failure of the run: what would have been said is in its result and history.
        tracing::warn!(reason = %why, "speak: nothing was voiced");
        out["unvoiced"] = Value::String(why);
    }
    Ok(out)
}
