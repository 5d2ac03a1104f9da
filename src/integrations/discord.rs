//! Discord (REST v10, `https://discord.com/api/v10`): a bot token the user pastes
//! (`atlas integration connect discord --token`), sent as `Authorization: Bot ..`. Every call
//! is paced per route (`channels/ID`): a bucket Discord reports empty
//! (`X-RateLimit-Remaining: 0`, `X-RateLimit-Reset-After`) holds the next call back, and a 429
//! is waited out by its `retry_after`, bounded ([`super::api`]). Operations of the `discord`
//! action:
//!
//! - `send` (`channel`, `text`): `{id, channel}`.
//! - `recent` (`channel`, `limit` up to 100): `{count, messages: [{id, author, text, time}]}`,
//!   newest first.
//! - `webhook` (`url`, `text`, `username`): posts through a channel's webhook URL (no bot token;
//!   the URL is itself a secret, so write it as `{{ secrets.NAME }}`). Only URLs under the API's
//!   `/webhooks/` are taken. `{id}`; a deleted webhook (404) says so.
//!
//! The trigger: [`Mentions`] polls the channels of `[integrations.discord] channels` for
//! messages after the last one seen that mention the bot (or everyone) and publishes
//! `discord.mention` with `channel`, `id`, `author`, `text`.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::api::{self, Request};
use super::services::{self, ServiceError, need, segment, unknown_op};
use super::watch::Poller;
use super::{AuthHeader, Health, Integrations, Provider, Spec, TokenKind, WatchCtx};
use crate::actions::{ServiceKind, ServiceOp, op};
use crate::triggers::events::Event;

/// Discord's declaration in the registry.
pub const SPEC: Spec = Spec {
    name: "discord",
    title: "Discord",
    oauth: None,
    token: Some(TokenKind::Token(
        "a bot token (Discord developer portal, Bot, Reset Token), the bot invited to your server",
    )),
    api_url: "https://discord.com/api/v10",
    auth: AuthHeader::Bot,
    headers: &[(
        "User-Agent",
        concat!(
            "DiscordBot (https://localhost/atlas, ",
            env!("CARGO_PKG_VERSION"),
            ")"
        ),
    )],
    ok_field: false,
    health: Health::Get("/users/@me"),
    run: Some(run_boxed),
    watch: Some(watches),
    mail: None,
    calendar: None,
};

const P: Provider = Provider::Discord;

/// The `discord` action kind's operations (see the module docs).
#[linkme::distributed_slice(crate::actions::SERVICE_KINDS)]
static KIND: ServiceKind = ServiceKind {
    name: "discord",
    doc: "Discord: send, recent, webhook (atlas integration connect discord --token; webhook needs no token).",
    ops: &[
        op("send", &["channel", "text"], &[]),
        op("recent", &["channel"], &["limit"]),
        op("webhook", &["url", "text"], &["username"]),
    ],
};

super::boxed_run!(run);

fn watches(ctx: &WatchCtx<'_>) {
    ctx.spawn(Mentions);
}

/// Carries out one operation; see the module docs.
pub async fn run(all: &Integrations, op: &ServiceOp) -> Result<Value, ServiceError> {
    match op.op.as_str() {
        "send" => {
            let channel = channel(op)?;
            let req = route(all, Method::POST, &channel, "/messages")
                .json(json!({ "content": need(op, "text")? }));
            let v = services::call(all, P, &req).await?;
            Ok(json!({ "id": v["id"], "channel": channel }))
        }
        "recent" => {
            let channel = channel(op)?;
            let list = messages(all, &channel, None, op.limit(10, 100)).await?;
            Ok(json!({ "count": list.len(), "messages": list }))
        }
        "webhook" => webhook(all, op).await,
        _ => Err(unknown_op("discord", op)),
    }
}

fn channel(op: &ServiceOp) -> Result<String, ServiceError> {
    let c = need(op, "channel")?;
    if segment(&c) {
        Ok(c)
    } else {
        Err(ServiceError::Input(format!("`{c}` is not a channel id")))
    }
}

/// A request on `channels/CHANNEL{rest}`, paced by its bucket (the channel is the route's major
/// parameter).
fn route(all: &Integrations, method: Method, channel: &str, rest: &str) -> Request {
    P.request(
        method,
        services::url(all, P, &format!("/channels/{channel}{rest}")),
    )
    .paced(format!("channels/{channel}"), Duration::ZERO)
}

async fn messages(
    all: &Integrations,
    channel: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<Value>, ServiceError> {
    let mut req =
        route(all, Method::GET, channel, "/messages").query("limit", limit.min(100).to_string());
    if let Some(a) = after {
        req = req.query("after", a);
    }
    let v = services::call(all, P, &req).await?;
    Ok(v.as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            json!({ "id": m["id"], "author": m["author"]["username"], "text": m["content"],
                "time": m["timestamp"], "mentions": m["mentions"], "mention_everyone": m["mention_everyone"] })
        })
        .collect())
}

async fn webhook(all: &Integrations, op: &ServiceOp) -> Result<Value, ServiceError> {
    let url = need(op, "url")?;
    let base = format!("{}/webhooks/", all.api_url(P));
    // The legacy host still serves webhooks too.
    let legacy = "https://discordapp.com/api/webhooks/";
    if !(url.starts_with(&base) || url.starts_with(legacy)) {
        return Err(ServiceError::Input(format!(
            "a Discord webhook URL starts with {base}"
        )));
    }
    crate::redact::process().add(&url);
    let mut body = json!({ "content": need(op, "text")? });
    if let Some(u) = op.text("username") {
        body["username"] = json!(u);
    }
    let resp = all
        .http()
        .post(&url)
        .query(&[("wait", "true")])
        .json(&body)
        .send()
        .await
        .map_err(|e| {
            ServiceError::Provider(format!("Discord could not be reached: {}", e.without_url()))
        })?;
    let status = resp.status();
    let bytes = resp.bytes().await.unwrap_or_default();
    if status.as_u16() == 404 {
        return Err(ServiceError::Provider(
            "the Discord webhook no longer exists (404): make a new one and update the secret"
                .into(),
        ));
    }
    if !status.is_success() {
        return Err(api::http_error("discord", status, &bytes).into());
    }
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok(json!({ "id": v["id"] }))
}

/// The `discord.mention` trigger's source; see the module docs.
#[derive(Debug, Default)]
pub struct Mentions;

/// What [`Mentions`] remembers: the last message id seen per channel.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct MentionsState {
    after: BTreeMap<String, String>,
}

impl Poller for Mentions {
    type State = MentionsState;
    const NAME: &'static str = "discord";
    const PROVIDER: Provider = P;

    async fn poll<'a>(
        &'a self,
        all: &'a Integrations,
        state: &'a mut MentionsState,
        _first: bool,
    ) -> Result<Vec<Event>, ServiceError> {
        let channels = P
            .config(all.config())
            .and_then(|c| c.channels.clone())
            .unwrap_or_default();
        if channels.is_empty() {
            return Ok(Vec::new());
        }
        let me = services::call(
            all,
            P,
            &P.request(Method::GET, services::url(all, P, "/users/@me")),
        )
        .await?;
        let me = me["id"].as_str().unwrap_or_default().to_owned();
        let mut events = Vec::new();
        for channel in channels.iter().filter(|c| segment(c)) {
            let after = state.after.get(channel).cloned();
            // A channel seen for the first time: only where it stands.
            let list = messages(
                all,
                channel,
                after.as_deref(),
                if after.is_some() { 50 } else { 1 },
            )
            .await?;
            // Newest first: the first is where to continue from.
            if let Some(newest) = list.first().and_then(|m| m["id"].as_str()) {
                state.after.insert(channel.clone(), newest.to_owned());
            }
            if after.is_none() {
                continue;
            }
            for m in list.iter().rev() {
                let mentioned = m["mention_everyone"].as_bool().unwrap_or(false)
                    || m["mentions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|u| u["id"].as_str() == Some(&me));
                if mentioned {
                    events.push(Event::new(
                        "discord",
                        "discord.mention",
                        json!({ "channel": channel, "id": m["id"], "author": m["author"], "text": m["text"] }),
                    ));
                }
            }
        }
        Ok(events)
    }
}
