//! Every failure mode, for each of the six providers in turn: a working call, a rate limit
//! asking for longer than Atlas waits (refused at once, with the wait), the provider down (the
//! call fails saying so, the health check records `error`, and `connected` again when it is
//! back), then every credential revoked (each integration `needs_reauth`, said as what to do).

use atlas::integrations::Provider;
use serde_json::{Value, json};

use super::fake::Canned;
use super::harness::setup;

/// A provider, its action kind, an operation and its arguments.
type Case = (
    Provider,
    &'static str,
    &'static str,
    Vec<(&'static str, Value)>,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_provider_reports_rate_limits_outages_and_revocation() {
    let s = setup().await;
    s.fake.set(|i| {
        i.slack.insert("C1".into(), Vec::new());
        i.discord.insert("900".into(), Vec::new());
    });
    s.paste(Provider::GitHub, "ghp_failureModes01", None).await;
    s.sign_in(Provider::Slack).await;
    s.paste(Provider::Discord, "MTAfailure.modes.01", None)
        .await;
    s.paste(Provider::Notion, "ntn_failureModes01", None).await;
    s.sign_in(Provider::Spotify).await;
    s.paste(
        Provider::Binance,
        "failureModesKey01",
        Some("failureModesSecret01"),
    )
    .await;
    let cases: [Case; 6] = [
        (Provider::GitHub, "github", "my_prs", vec![]),
        (
            Provider::Slack,
            "slack",
            "latest",
            vec![("channel", json!("C1"))],
        ),
        (
            Provider::Discord,
            "discord",
            "recent",
            vec![("channel", json!("900"))],
        ),
        (Provider::Notion, "notion", "search", vec![]),
        (Provider::Spotify, "spotify", "now_playing", vec![]),
        (Provider::Binance, "binance", "balances", vec![]),
    ];
    for (p, kind, op, args) in &cases {
        s.op(kind, op, args)
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        s.fake.can(
            kind,
            Canned {
                status: 429,
                headers: vec![("retry-after", "120".into())],
                body: json!({"message": "slow down"}),
            },
        );
        let err = s.op(kind, op, args).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{kind} is rate-limiting Atlas: try again in 120 s")
        );
        s.fake.set(|i| i.down = true);
        let err = s.op(kind, op, args).await.unwrap_err();
        assert!(err.to_string().contains("HTTP 503"), "{kind}: {err}");
        let checked = s.all.check(*p).await;
        assert_eq!(checked.state, "error", "{kind}: {checked:?}");
        assert!(checked.reason.unwrap().contains("503"), "{kind}");
        s.fake.set(|i| i.down = false);
        assert_eq!(s.all.check(*p).await.state, "connected", "{kind}");
    }
    s.fake.set(|i| i.tokens.clear());
    s.auth.revoke_grant();
    for (p, kind, op, args) in &cases {
        let err = s.op(kind, op, args).await.unwrap_err();
        assert!(err.to_string().contains("sign in again"), "{kind}: {err}");
        assert!(
            err.to_string()
                .contains(&format!("atlas integration connect {kind}")),
            "{kind}: {err}"
        );
        assert_eq!(s.state(*p), "needs_reauth", "{kind}");
    }
}
