//! Slack and Discord against the fake. Slack: the OAuth sign-in with the strict authorization
//! fake, posts and channel reads across cursors, mentions, its 200 `{"ok": false}` errors, a
//! bot token refused for a status, `ratelimited` with `Retry-After`, an expired access token
//! refreshed once and a revoked grant. Discord: `Bot` auth, send and read, webhook posting
//! (no token; only Discord URLs), an emptied bucket and a 429 waited out, the mention trigger.

use std::sync::Arc;

use atlas::integrations::Provider;
use atlas::integrations::discord::Mentions;
use atlas::integrations::watch::Watch;
use serde_json::json;

use super::fake::Canned;
use super::harness::{setup, setup_with};

fn slack_msg(ts: &str, text: &str) -> serde_json::Value {
    json!({"type": "message", "user": "U0SAM", "text": text, "ts": ts})
}

#[tokio::test]
async fn slack_signs_in_posts_reads_across_cursors_and_finds_mentions() {
    let s = setup_with(|c| {
        c.providers.get_mut("slack").unwrap().channels = Some(vec!["C0TEAM".into()])
    })
    .await;
    s.sign_in(Provider::Slack).await;
    let st = s.all.status(Provider::Slack);
    assert_eq!(
        (st.state.as_str(), st.auth.as_str()),
        ("connected", "oauth or token")
    );
    let asked = s.auth.get(|i| i.seen_auth_params[0].clone());
    assert_eq!(
        asked["scope"],
        "chat:write,channels:history,groups:history,channels:read"
    );
    assert_eq!(asked["code_challenge_method"], "S256");
    let now = chrono::Utc::now().timestamp();
    s.fake.set(|i| {
        i.slack.insert(
            "C0TEAM".into(),
            vec![
                slack_msg(
                    &format!("{}.000100", now - 60),
                    "<@U0ME> can you look at the deploy?",
                ),
                slack_msg(&format!("{}.000200", now - 120), "lunch?"),
                slack_msg(&format!("{}.000300", now - 180), "standup notes are up"),
                slack_msg(
                    &format!("{}.000400", now - 240),
                    "ping <@U0ME> about the review",
                ),
                slack_msg(&format!("{}.000500", now - 3 * 86400), "<@U0ME> old news"),
            ],
        );
    });
    let v = s
        .op(
            "slack",
            "latest",
            &[("channel", json!("C0TEAM")), ("limit", json!(3))],
        )
        .await
        .unwrap();
    assert_eq!(v["count"], 3);
    assert_eq!(
        v["messages"][0]["text"],
        "<@U0ME> can you look at the deploy?"
    );
    let history: Vec<String> = s
        .fake
        .calls("slack")
        .into_iter()
        .filter(|c| c.contains("conversations.history"))
        .collect();
    assert_eq!(history.len(), 2, "two pages: {history:?}");
    assert!(history[1].contains("cursor="), "{history:?}");

    let v = s
        .op("slack", "mentions", &[("hours", json!(24))])
        .await
        .unwrap();
    assert_eq!(v["count"], 2, "{v}");
    assert_eq!(v["mentions"][1]["text"], "ping <@U0ME> about the review");
    assert_eq!(v["mentions"][0]["channel"], "C0TEAM");

    let v = s
        .op(
            "slack",
            "post",
            &[
                ("channel", json!("C0TEAM")),
                ("text", json!("I'm running late")),
            ],
        )
        .await
        .unwrap();
    assert_eq!(v["channel"], "C0TEAM");
    assert!(v["ts"].as_str().unwrap().starts_with("1733480000."));
    // Paced to one a second per channel: the second post still goes.
    s.op(
        "slack",
        "post",
        &[("channel", json!("C0TEAM")), ("text", json!("10 minutes"))],
    )
    .await
    .unwrap();
    assert_eq!(
        s.fake.get(|i| i.slack["C0TEAM"][0]["text"].clone()),
        "10 minutes"
    );
    let err = s
        .op(
            "slack",
            "post",
            &[("channel", json!("C0NOPE")), ("text", json!("x"))],
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "slack answered HTTP 200: channel_not_found"
    );
}

#[tokio::test]
async fn slack_errors_rate_limits_expiry_and_revocation() {
    let s = setup().await;
    s.sign_in(Provider::Slack).await;
    s.fake.set(|i| {
        i.slack
            .insert("C0TEAM".into(), vec![slack_msg("1733480000.000001", "hi")]);
    });
    // Mentions need channels.
    let err = s.op("slack", "mentions", &[]).await.unwrap_err();
    assert!(err.to_string().contains("name the channels"), "{err}");
    // `ratelimited`: 429 with Retry-After, waited out once.
    s.fake.can(
        "slack",
        Canned {
            status: 429,
            headers: vec![("retry-after", "1".into())],
            body: json!({"ok": false, "error": "ratelimited"}),
        },
    );
    let v = s
        .op("slack", "latest", &[("channel", json!("C0TEAM"))])
        .await
        .unwrap();
    assert_eq!(v["count"], 1);
    // The access token stops working (expired): Slack's `invalid_auth`, one refresh, the retry.
    let refreshes = s.auth.get(|i| i.refreshes);
    s.auth.set(|i| i.access.clear());
    let v = s
        .op("slack", "latest", &[("channel", json!("C0TEAM"))])
        .await
        .unwrap();
    assert_eq!(v["count"], 1);
    assert_eq!(s.auth.get(|i| i.refreshes), refreshes + 1);
    // Revoked: the refresh is refused, needs_reauth, and no loop.
    s.auth.revoke_grant();
    let err = s
        .op("slack", "latest", &[("channel", json!("C0TEAM"))])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("sign in again"), "{err}");
    assert_eq!(s.state(Provider::Slack), "needs_reauth");
    let asked = s.auth.get(|i| i.token_requests);
    assert!(
        s.op("slack", "latest", &[("channel", json!("C0TEAM"))])
            .await
            .is_err()
    );
    assert_eq!(s.auth.get(|i| i.token_requests), asked);
    // A bot token pasted instead: it cannot set a status, and says how to.
    s.paste(Provider::Slack, "xoxb-fake-bot-token", None).await;
    let err = s
        .op(
            "slack",
            "set_status",
            &[
                ("text", json!("In a meeting")),
                ("emoji", json!(":calendar:")),
            ],
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("user token"), "{err}");
    s.paste(Provider::Slack, "xoxp-fake-user-token", None).await;
    let v = s
        .op(
            "slack",
            "set_status",
            &[
                ("text", json!("In a meeting")),
                ("emoji", json!(":calendar:")),
                ("minutes", json!(30)),
            ],
        )
        .await
        .unwrap();
    assert_eq!(v["text"], "In a meeting");
    let sent = s.fake.get(|i| i.received.last().unwrap().2.clone());
    assert_eq!(sent["profile"]["status_emoji"], ":calendar:");
    assert!(
        sent["profile"]["status_expiration"].as_i64().unwrap() > chrono::Utc::now().timestamp()
    );
}

#[tokio::test]
async fn discord_sends_reads_posts_through_webhooks_and_keeps_to_its_buckets() {
    let s = setup().await;
    s.paste(Provider::Discord, "MTAfake.bot.token", None).await;
    assert!(
        s.fake
            .get(|i| i.auth_seen.iter().all(|a| a == "Bot MTAfake.bot.token"))
    );
    assert!(s.fake.get(|i| {
        i.headers_seen
            .iter()
            .any(|(k, v)| k == "user-agent" && v.starts_with("DiscordBot ("))
    }));
    s.fake.set(|i| {
        i.discord.insert("900".into(), Vec::new());
        i.discord_reset_after = Some(0.3);
    });
    let v = s
        .op(
            "discord",
            "send",
            &[
                ("channel", json!("900")),
                ("text", json!("the build is green")),
            ],
        )
        .await
        .unwrap();
    assert_eq!(v["channel"], "900");
    // The bucket is now empty for 0.3 s: the next call waits for it rather than getting a 429.
    let v = s
        .op(
            "discord",
            "recent",
            &[("channel", json!("900")), ("limit", json!(5))],
        )
        .await
        .unwrap();
    assert_eq!(v["count"], 1);
    assert_eq!(v["messages"][0]["text"], "the build is green");
    // A 429 with Discord's body and header, waited out.
    s.fake.can("discord", Canned { status: 429, headers: vec![("retry-after", "1".into()), ("x-ratelimit-scope", "user".into())],
        body: json!({"message": "You are being rate limited.", "retry_after": 0.4, "global": false}) });
    assert!(
        s.op("discord", "recent", &[("channel", json!("900"))])
            .await
            .is_ok()
    );
    let err = s
        .op(
            "discord",
            "send",
            &[("channel", json!("404")), ("text", json!("x"))],
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "discord answered HTTP 404: Unknown Channel"
    );
    // Webhooks: no bot token, only Discord's webhook URLs, a deleted one said so.
    let hook = format!("{}/webhooks/111/hook-token-secret", s.fake.base("discord"));
    let before = s.fake.get(|i| i.auth_seen.len());
    let v = s
        .op(
            "discord",
            "webhook",
            &[("url", json!(hook)), ("text", json!("deployed"))],
        )
        .await
        .unwrap();
    assert_eq!(v["id"], "5001");
    assert_eq!(
        s.fake.get(|i| i.auth_seen.len()),
        before,
        "a webhook post carries no token"
    );
    let gone = format!("{}/webhooks/111/old", s.fake.base("discord"));
    let err = s
        .op(
            "discord",
            "webhook",
            &[("url", json!(gone)), ("text", json!("x"))],
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no longer exists"), "{err}");
    let err = s
        .op(
            "discord",
            "webhook",
            &[
                ("url", json!("https://evil.example/webhooks/1/2")),
                ("text", json!("x")),
            ],
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("a Discord webhook URL starts with"),
        "{err}"
    );
}

#[tokio::test]
async fn discord_mentions_are_announced_once() {
    let s =
        setup_with(|c| c.providers.get_mut("discord").unwrap().channels = Some(vec!["900".into()]))
            .await;
    s.paste(Provider::Discord, "MTAfake.bot.token2", None).await;
    let msg = |id: u64, text: &str, mentions: serde_json::Value| {
        json!({"id": id.to_string(), "channel_id": "900", "content": text,
        "author": {"id": "7", "username": "sam"}, "timestamp": "2026-12-06T10:00:00+00:00", "mentions": mentions, "mention_everyone": false})
    };
    s.fake.set(|i| {
        i.discord.insert(
            "900".into(),
            vec![msg(100, "old <@BOT1>", json!([{"id": "BOT1"}]))],
        );
    });
    let mut events = s.hub.subscribe();
    let watch = Watch::new(Mentions, Arc::clone(&s.all), s.hub.clone(), s.dir.path());
    assert_eq!(
        watch.poll().await.unwrap(),
        0,
        "the first poll records where the channel is"
    );
    s.fake.set(|i| {
        let list = i.discord.get_mut("900").unwrap();
        list.insert(0, msg(101, "nothing for the bot", json!([])));
        list.insert(
            0,
            msg(
                102,
                "<@BOT1> is the build green?",
                json!([{"id": "BOT1", "username": "atlas-bot"}]),
            ),
        );
    });
    assert_eq!(watch.poll().await.unwrap(), 1);
    let e = events.recv().await.unwrap();
    assert_eq!(e.kind, "discord.mention");
    assert_eq!(e.data["text"], "<@BOT1> is the build green?");
    assert_eq!(e.data["author"], "sam");
    assert_eq!(watch.poll().await.unwrap(), 0);
    let last = s
        .fake
        .calls("discord")
        .into_iter()
        .rev()
        .find(|c| c.contains("/messages"))
        .unwrap();
    assert!(last.contains("after=102"), "{last}");
}
