//! Slack (Web API, `https://slack.com/api`): OAuth 2.0 v2 with the user's own Slack app (a bot
//! token; `client_secret` required), or a pasted bot (`xoxb-`) or user (`xoxp-`) token. Slack
//! answers errors as HTTP 200 `{"ok": false, "error": ..}`; [`super::api`] turns
//! `invalid_auth`/`token_revoked`/... into the 401 path and `ratelimited` (with 429 and
//! `Retry-After`) into a bounded wait. Calls are paced to the method's tier: tier 3 (50+ a
//! minute, so 1.2 s apart) for the reads and `users.profile.set`, and `chat.postMessage` one a
//! second per channel. Operations of the `slack` action:
//!
//! - `post` (`channel`, `text`, `thread`): `{channel, ts}`.
//! - `latest` (`channel`, `limit`): `{count, messages: [{user, text, ts}]}`, newest first,
//!   `response_metadata.next_cursor` followed up to the limit.
//! - `set_status` (`text`, `emoji`, `minutes`): needs a user token (`users.profile:write`);
//!   `{text, emoji, expires}`.
//! - `mentions` (`channels`, comma-separated ids, default `[integrations.slack] channels`;
//!   `hours`, default 24; `limit`): messages in those channels naming the connected identity
//!   (`<@U..>` of `auth.test`): `{count, mentions: [{channel, user, text, ts}]}`.
//!
//! Slack's events come the other way: the Events API posts to Atlas's webhook receiver (a
//! `webhook` trigger with `scheme: slack`, signature and `url_verification` handled there).

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::services::{self, ServiceError, need, unknown_op};
use super::{AuthHeader, Health, Integrations, OAuthSpec, Provider, Spec, TokenKind};
use crate::actions::{ServiceKind, ServiceOp, op};

/// Slack's declaration in the registry.
pub const SPEC: Spec = Spec {
    name: "slack",
    title: "Slack",
    oauth: Some(OAuthSpec {
        auth_url: "https://slack.com/oauth/v2/authorize",
        token_url: "https://slack.com/api/oauth.v2.access",
        revoke_url: Some("https://slack.com/api/auth.revoke"),
        // Slack separates scopes with commas.
        scopes: &["chat:write,channels:history,groups:history,channels:read"],
        extra: &[],
        client_hint: "your Slack app's client id, and its client_secret, with http://127.0.0.1 as a redirect URL",
    }),
    token: Some(TokenKind::Token(
        "a Slack bot (xoxb-) or user (xoxp-) token",
    )),
    api_url: "https://slack.com/api",
    auth: AuthHeader::Bearer,
    headers: &[],
    ok_field: true,
    health: Health::Get("/auth.test"),
    run: Some(run_boxed),
    watch: None,
    mail: None,
    calendar: None,
};

const P: Provider = Provider::Slack;

/// Tier 3: 50+ calls a minute.
const TIER_3: Duration = Duration::from_millis(1200);
/// `chat.postMessage`: about one a second per channel.
const POST_EVERY: Duration = Duration::from_secs(1);

/// The `slack` action kind's operations (see the module docs).
#[linkme::distributed_slice(crate::actions::SERVICE_KINDS)]
static KIND: ServiceKind = ServiceKind {
    name: "slack",
    doc: "Slack: post, latest, set_status, mentions (atlas integration connect slack).",
    ops: &[
        op("post", &["channel", "text"], &["thread"]),
        op("latest", &["channel"], &["limit"]),
        op("set_status", &["text"], &["emoji", "minutes"]),
        op("mentions", &[], &["channels", "hours", "limit"]),
    ],
};

super::boxed_run!(run);

/// Carries out one operation; see the module docs.
pub async fn run(all: &Integrations, op: &ServiceOp) -> Result<Value, ServiceError> {
    match op.op.as_str() {
        "post" => {
            let channel = need(op, "channel")?;
            let mut body = json!({ "channel": channel, "text": need(op, "text")? });
            if let Some(t) = op.text("thread") {
                body["thread_ts"] = json!(t);
            }
            let req = P
                .request(Method::POST, services::url(all, P, "/chat.postMessage"))
                .json(body)
                .paced(format!("chat.postMessage:{channel}"), POST_EVERY);
            let v = services::call(all, P, &req).await?;
            Ok(json!({ "channel": v["channel"], "ts": v["ts"] }))
        }
        "latest" => {
            let channel = need(op, "channel")?;
            let messages = history(all, &channel, None, op.limit(10, 100)).await?;
            Ok(json!({ "count": messages.len(), "messages": messages }))
        }
        "set_status" => {
            let minutes = op.number("minutes").unwrap_or(0.0).max(0.0) as i64;
            let expires = if minutes > 0 {
                chrono::Utc::now().timestamp() + minutes * 60
            } else {
                0
            };
            let text = need(op, "text")?;
            let emoji = op.text("emoji").unwrap_or_default();
            let req = P
                .request(Method::POST, services::url(all, P, "/users.profile.set"))
                .json(json!({ "profile": { "status_text": text, "status_emoji": emoji, "status_expiration": expires } }))
                .paced("users.profile.set", TIER_3);
            match services::call(all, P, &req).await {
                Err(e) if e.api().and_then(|a| a.reason()) == Some("not_allowed_token_type") => {
                    Err(ServiceError::Provider(
                        "Slack sets a status only with a user token (xoxp-, scope users.profile:write): connect slack with --token".into(),
                    ))
                }
                r => r.map(|_| json!({ "text": text, "emoji": emoji, "expires": expires })),
            }
        }
        "mentions" => mentions(all, op).await,
        _ => Err(unknown_op("slack", op)),
    }
}

/// Up to `limit` messages of `channel` (newest first), since `oldest` (Unix seconds) if given.
async fn history(
    all: &Integrations,
    channel: &str,
    oldest: Option<i64>,
    limit: usize,
) -> Result<Vec<Value>, ServiceError> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut req = P
            .request(Method::GET, services::url(all, P, "/conversations.history"))
            .query("channel", channel)
            .query("limit", (limit - out.len()).min(200).to_string())
            .paced("conversations.history", TIER_3);
        if let Some(o) = oldest {
            req = req.query("oldest", o.to_string());
        }
        if let Some(c) = &cursor {
            req = req.query("cursor", c.clone());
        }
        let v = services::call(all, P, &req).await?;
        for m in v["messages"].as_array().into_iter().flatten() {
            if out.len() < limit {
                out.push(json!({ "user": m["user"], "text": m["text"], "ts": m["ts"] }));
            }
        }
        cursor = v["response_metadata"]["next_cursor"]
            .as_str()
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        if cursor.is_none() || out.len() >= limit {
            return Ok(out);
        }
    }
}

async fn mentions(all: &Integrations, op: &ServiceOp) -> Result<Value, ServiceError> {
    // Who "me" is; this also fails first when Slack is not connected.
    let me = services::call(
        all,
        P,
        &P.request(Method::GET, services::url(all, P, "/auth.test")),
    )
    .await?;
    let channels: Vec<String> = match op.text("channels") {
        Some(list) => list
            .split(',')
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .collect(),
        None => P
            .config(all.config())
            .and_then(|c| c.channels.clone())
            .unwrap_or_default(),
    };
    if channels.is_empty() {
        return Err(ServiceError::Input(
            "name the channels to look in (`channels`, or `channels = [..]` in [integrations.slack])".into(),
        ));
    }
    let tag = format!("<@{}>", me["user_id"].as_str().unwrap_or_default());
    let hours = op.number("hours").unwrap_or(24.0).clamp(1.0, 24.0 * 7.0);
    let oldest = chrono::Utc::now().timestamp() - (hours * 3600.0) as i64;
    let limit = op.limit(20, 100);
    let mut found = Vec::new();
    for channel in &channels {
        for m in history(all, channel, Some(oldest), 200).await? {
            if m["text"].as_str().is_some_and(|t| t.contains(&tag)) && found.len() < limit {
                let mut m = m;
                m["channel"] = json!(channel);
                found.push(m);
            }
        }
    }
    Ok(json!({ "count": found.len(), "mentions": found }))
}
