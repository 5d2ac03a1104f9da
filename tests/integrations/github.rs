//! GitHub against the fake: a pasted token checked at connect (and refused ones not stored),
//! notifications across `Link` pages, pull requests and review requests from the search API,
//! issues and comments, the notification trigger with `If-Modified-Since`, the primary rate
//! limit waited out, a long `retry-after` refused at once, and a revoked token.

use std::sync::Arc;

use atlas::integrations::github::Notifications;
use atlas::integrations::watch::Watch;
use atlas::integrations::{IntegrationError, Provider};
use atlas::secrets::SecretStore;
use serde_json::{Value, json};

use super::fake::Canned;
use super::harness::setup;

fn notification(i: usize) -> Value {
    json!({"id": format!("{i}"), "unread": true, "reason": if i.is_multiple_of(2) { "review_requested" } else { "mention" },
        "updated_at": "2026-12-06T09:00:00Z",
        "subject": {"title": format!("Thread {i}"), "url": "https://api.github.com/repos/octo-org/app/pulls/1", "type": "PullRequest"},
        "repository": {"full_name": "octo-org/app"}})
}

fn pr(n: u64, title: &str) -> Value {
    json!({"number": n, "title": title, "html_url": format!("https://github.com/octo-org/app/pull/{n}"),
        "repository_url": "https://api.github.com/repos/octo-org/app", "draft": false, "updated_at": "2026-12-06T08:00:00Z",
        "pull_request": {"url": "x"}})
}

#[tokio::test]
async fn a_token_connects_and_notifications_prs_and_reviews_are_read_across_pages() {
    let s = setup().await;
    s.paste(Provider::GitHub, "ghp_fakeGitHubToken0001", None)
        .await;
    let st = s.all.status(Provider::GitHub);
    assert_eq!(
        (st.state.as_str(), st.auth.as_str()),
        ("connected", "token")
    );
    s.fake.set(|i| {
        i.notifications = (1..=60).map(notification).collect();
        i.review_prs = vec![pr(7, "Fix the parser"), pr(9, "Bump deps")];
        i.my_prs = vec![pr(3, "Add the tray icon")];
    });
    let v = s
        .op("github", "notifications", &[("limit", json!(55))])
        .await
        .unwrap();
    assert_eq!(v["count"], 55);
    assert_eq!(v["notifications"][0]["title"], "Thread 1");
    assert_eq!(v["notifications"][0]["repo"], "octo-org/app");
    assert_eq!(v["notifications"][54]["title"], "Thread 55");
    // Two pages: the second through the `Link` header.
    let calls: Vec<String> = s
        .fake
        .calls("github")
        .into_iter()
        .filter(|c| c.contains("/notifications"))
        .collect();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls[1].contains("page=2"), "{calls:?}");

    let v = s.op("github", "review_requests", &[]).await.unwrap();
    assert_eq!(v["count"], 2);
    assert_eq!(v["prs"][0]["title"], "Fix the parser");
    assert_eq!(v["prs"][0]["repo"], "octo-org/app");
    let v = s.op("github", "my_prs", &[]).await.unwrap();
    assert_eq!(v["prs"][0]["number"], 3);
    let search = s
        .fake
        .calls("github")
        .into_iter()
        .find(|c| c.contains("review-requested"))
        .unwrap();
    assert!(
        search.contains("is%3Apr") || search.contains("is:pr"),
        "{search}"
    );
    // The documented headers went with every call.
    let headers = s.fake.get(|i| i.headers_seen.clone());
    assert!(headers.contains(&("accept".into(), "application/vnd.github+json".into())));
    assert!(headers.contains(&("x-github-api-version".into(), "2022-11-28".into())));
    assert!(s.fake.get(|i| {
        i.auth_seen
            .iter()
            .all(|a| a == "Bearer ghp_fakeGitHubToken0001")
    }));
}

#[tokio::test]
async fn issues_and_comments_are_created_and_bad_input_never_leaves() {
    let s = setup().await;
    s.paste(Provider::GitHub, "ghp_fakeGitHubToken0002", None)
        .await;
    let v = s
        .op(
            "github",
            "create_issue",
            &[
                ("repo", json!("octo-org/app")),
                ("title", json!("The tray icon is blurry")),
                ("body", json!("At 200%.")),
            ],
        )
        .await
        .unwrap();
    assert_eq!(v["number"], 42);
    assert_eq!(v["url"], "https://github.com/octo-org/app/issues/42");
    let sent = s.fake.get(|i| i.received.last().unwrap().2.clone());
    assert_eq!(
        sent,
        json!({"title": "The tray icon is blurry", "body": "At 200%."})
    );
    let v = s
        .op(
            "github",
            "comment",
            &[
                ("repo", json!("octo-org/app")),
                ("number", json!("#42")),
                ("body", json!("Fixed in #43.")),
            ],
        )
        .await
        .unwrap();
    assert_eq!(v["id"], 9001);
    let before = s.fake.calls("github").len();
    let err = s
        .op(
            "github",
            "create_issue",
            &[("repo", json!("../../user")), ("title", json!("x"))],
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("write it as owner/name"), "{err}");
    assert_eq!(
        s.fake.calls("github").len(),
        before,
        "a bad repository is not sent"
    );
    // GitHub's 404 body, read.
    let err = s
        .op(
            "github",
            "create_issue",
            &[("repo", json!("someone/else")), ("title", json!("x"))],
        )
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "github answered HTTP 404: Not Found");
}

#[tokio::test]
async fn a_refused_token_is_not_stored() {
    let s = setup().await;
    let err = s
        .all
        .connect_token(Provider::GitHub, "ghp_notKnownAnywhere".into(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, IntegrationError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("refused the credential"), "{err}");
    assert!(s.vault.get("integration.github.token").unwrap().is_none());
    assert_eq!(s.state(Provider::GitHub), "disconnected");
    // A token with a line break in it is refused before anything is sent.
    let err = s
        .all
        .connect_token(Provider::GitHub, "ghp_a\nghp_b".into(), None)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("no spaces or line breaks"),
        "{err}"
    );
    // GitHub signs in with a token only.
    let err = s.all.connect(Provider::GitHub, |_| {}).await.unwrap_err();
    assert!(err.to_string().contains("--token"), "{err}");
}

#[tokio::test]
async fn rate_limits_are_waited_out_bounded_and_a_revoked_token_needs_a_new_one() {
    let s = setup().await;
    s.paste(Provider::GitHub, "ghp_fakeGitHubToken0003", None)
        .await;
    s.fake.set(|i| i.review_prs = vec![pr(7, "Fix the parser")]);
    // The primary limit: 403, remaining 0, reset in a second.
    let reset = chrono::Utc::now().timestamp() + 1;
    s.fake.can("github", Canned {
        status: 403,
        headers: vec![("x-ratelimit-remaining", "0".into()), ("x-ratelimit-reset", reset.to_string()), ("x-ratelimit-limit", "5000".into())],
        body: json!({"message": "API rate limit exceeded for user ID 1.", "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}),
    });
    let v = s.op("github", "review_requests", &[]).await.unwrap();
    assert_eq!(v["count"], 1);
    // A secondary limit asking for two minutes: refused at once, with the wait.
    s.fake.can(
        "github",
        Canned {
            status: 403,
            headers: vec![("retry-after", "120".into())],
            body: json!({"message": "You have exceeded a secondary rate limit."}),
        },
    );
    let err = s.op("github", "review_requests", &[]).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "github is rate-limiting Atlas: try again in 120 s"
    );
    // Down: the status says so.
    s.fake.set(|i| i.down = true);
    let err = s.op("github", "my_prs", &[]).await.unwrap_err();
    assert!(err.to_string().contains("HTTP 503"), "{err}");
    let checked = s.all.check(Provider::GitHub).await;
    assert_eq!(checked.state, "error");
    s.fake.set(|i| i.down = false);
    assert_eq!(s.all.check(Provider::GitHub).await.state, "connected");
    // Revoked at GitHub: 401, needs_reauth, and no further calls.
    s.fake.set(|i| i.tokens.clear());
    let err = s.op("github", "my_prs", &[]).await.unwrap_err();
    assert!(err.to_string().contains("sign in again"), "{err}");
    assert_eq!(s.state(Provider::GitHub), "needs_reauth");
    let calls = s.fake.calls("github").len();
    let err = s.op("github", "my_prs", &[]).await.unwrap_err();
    assert!(err.to_string().contains("sign in again"), "{err}");
    assert_eq!(
        s.fake.calls("github").len(),
        calls,
        "no call with a dead token"
    );
}

#[tokio::test]
async fn new_notifications_are_announced_once_across_restarts() {
    let s = setup().await;
    s.paste(Provider::GitHub, "ghp_fakeGitHubToken0004", None)
        .await;
    s.fake.set(|i| i.notifications = vec![notification(1)]);
    let mut events = s.hub.subscribe();
    let watch = Watch::new(
        Notifications,
        Arc::clone(&s.all),
        s.hub.clone(),
        s.dir.path(),
    );
    assert_eq!(
        watch.poll().await.unwrap(),
        0,
        "the first poll only records"
    );
    // Nothing changed: GitHub answers 304 to If-Modified-Since.
    assert_eq!(watch.poll().await.unwrap(), 0);
    let last = s.fake.calls("github").pop().unwrap();
    assert!(last.starts_with("GET /notifications"), "{last}");
    s.fake.set(|i| {
        i.notifications.insert(0, notification(2));
        i.last_modified = "Sun, 06 Dec 2026 10:00:00 GMT".into();
    });
    assert_eq!(watch.poll().await.unwrap(), 1);
    let e = events.recv().await.unwrap();
    assert_eq!(
        (e.source.as_str(), e.kind.as_str()),
        ("github", "github.notification")
    );
    assert_eq!(e.data["title"], "Thread 2");
    assert_eq!(e.data["reason"], "review_requested");
    let again = Watch::new(
        Notifications,
        Arc::clone(&s.all),
        s.hub.clone(),
        s.dir.path(),
    );
    s.fake
        .set(|i| i.last_modified = "Sun, 06 Dec 2026 10:05:00 GMT".into());
    assert_eq!(
        again.poll().await.unwrap(),
        0,
        "nothing twice after a restart"
    );
}
