//! GitHub (REST, `https://api.github.com`, API version 2022-11-28): a personal access token the
//! user pastes (`atlas integration connect github --token`; the notifications need a classic
//! token with the `notifications` scope, GitHub's docs say fine-grained tokens cannot read
//! them). Operations of the `github` action:
//!
//! - `notifications` (`limit`, `all`): `{count, notifications: [{id, repo, title, type, reason,
//!   unread, updated_at}]}`, pages followed through `Link: rel="next"`.
//! - `my_prs`, `review_requests` (`limit`): the search API (`is:pr is:open author:@me`,
//!   `review-requested:@me`): `{count, prs: [{number, title, repo, url, draft, updated_at}]}`,
//!   `count` being GitHub's `total_count`.
//! - `create_issue` (`repo` as `owner/name`, `title`, `body`): `{number, url}`.
//! - `comment` (`repo`, `number`, `body`): `{id, url}`.
//!
//! The trigger: [`Notifications`] polls `/notifications` with `If-Modified-Since` (a 304 costs
//! nothing against the rate limit) and publishes `github.notification` per new or updated
//! thread. Rate limits (403/429 with `x-ratelimit-remaining: 0` or `retry-after`) are waited out
//! by [`super::api`], bounded.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::services::{self, ServiceError, need, segment, unknown_op};
use super::watch::Poller;
use super::{AuthHeader, Health, Integrations, Provider, Spec, TokenKind, WatchCtx};
use crate::actions::{ServiceKind, ServiceOp, op};
use crate::triggers::events::Event;

/// GitHub's declaration in the registry.
pub const SPEC: Spec = Spec {
    name: "github",
    title: "GitHub",
    oauth: None,
    token: Some(TokenKind::Token(
        "a GitHub personal access token (classic with the notifications and repo scopes for notifications; fine-grained works for pull requests and issues)",
    )),
    api_url: "https://api.github.com",
    auth: AuthHeader::Bearer,
    headers: &[
        ("Accept", "application/vnd.github+json"),
        ("X-GitHub-Api-Version", "2022-11-28"),
    ],
    ok_field: false,
    health: Health::Get("/user"),
    run: Some(run_boxed),
    watch: Some(watches),
    mail: None,
    calendar: None,
};

const P: Provider = Provider::GitHub;

/// The most items one operation reads.
const MAX_ITEMS: usize = 100;

/// The `github` action kind's operations (see the module docs).
#[linkme::distributed_slice(crate::actions::SERVICE_KINDS)]
static KIND: ServiceKind = ServiceKind {
    name: "github",
    doc: "GitHub: notifications, my_prs, review_requests, create_issue, comment (atlas integration connect github --token).",
    ops: &[
        op("notifications", &[], &["limit", "all"]),
        op("my_prs", &[], &["limit"]),
        op("review_requests", &[], &["limit"]),
        op("create_issue", &["repo", "title"], &["body"]),
        op("comment", &["repo", "number", "body"], &[]),
    ],
};

super::boxed_run!(run);

fn watches(ctx: &WatchCtx<'_>) {
    // GitHub notifications are announced unless `watch = false`.
    if P.config(ctx.all.config())
        .and_then(|c| c.watch)
        .unwrap_or(true)
    {
        ctx.spawn(Notifications);
    }
}

/// Carries out one operation; see the module docs.
pub async fn run(all: &Integrations, op: &ServiceOp) -> Result<Value, ServiceError> {
    match op.op.as_str() {
        "notifications" => {
            let all_too = op.args.get("all").and_then(Value::as_bool).unwrap_or(false);
            let list = notifications(all, op.limit(20, MAX_ITEMS), all_too, None)
                .await?
                .0;
            Ok(json!({ "count": list.len(), "notifications": list }))
        }
        "my_prs" => {
            prs(
                all,
                "is:pr is:open author:@me archived:false",
                op.limit(10, MAX_ITEMS),
            )
            .await
        }
        "review_requests" => {
            prs(
                all,
                "is:pr is:open review-requested:@me archived:false",
                op.limit(10, MAX_ITEMS),
            )
            .await
        }
        "create_issue" => {
            let repo = repo(&need(op, "repo")?)?;
            let body =
                json!({ "title": need(op, "title")?, "body": op.text("body").unwrap_or_default() });
            let req = P
                .request(
                    Method::POST,
                    services::url(all, P, &format!("/repos/{repo}/issues")),
                )
                .json(body);
            let v = services::call(all, P, &req).await?;
            Ok(json!({ "number": v["number"], "url": v["html_url"] }))
        }
        "comment" => {
            let repo = repo(&need(op, "repo")?)?;
            let number: u64 = need(op, "number")?
                .trim_start_matches('#')
                .parse()
                .map_err(|_| ServiceError::Input("`number` is not an issue number".into()))?;
            let req = P
                .request(
                    Method::POST,
                    services::url(all, P, &format!("/repos/{repo}/issues/{number}/comments")),
                )
                .json(json!({ "body": need(op, "body")? }));
            let v = services::call(all, P, &req).await?;
            Ok(json!({ "id": v["id"], "url": v["html_url"] }))
        }
        _ => Err(unknown_op("github", op)),
    }
}

/// `owner/name`, each part a safe path segment.
fn repo(s: &str) -> Result<String, ServiceError> {
    match s.split_once('/') {
        Some((o, n)) if segment(o) && segment(n) => Ok(format!("{o}/{n}")),
        _ => Err(ServiceError::Input(format!(
            "`{s}` is not a repository: write it as owner/name"
        ))),
    }
}

/// One notification thread, as operations and events give it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Notification {
    /// The thread id.
    pub id: String,
    /// `owner/name`.
    pub repo: String,
    /// The subject's title.
    pub title: String,
    /// `PullRequest`, `Issue`, `Release`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// `review_requested`, `mention`, `assign`, ...
    pub reason: String,
    /// Whether unread.
    pub unread: bool,
    /// When it last changed (RFC 3339).
    pub updated_at: String,
}

fn notification(v: &Value) -> Notification {
    let s = |x: &Value| x.as_str().unwrap_or_default().to_owned();
    Notification {
        id: s(&v["id"]),
        repo: s(&v["repository"]["full_name"]),
        title: s(&v["subject"]["title"]),
        kind: s(&v["subject"]["type"]),
        reason: s(&v["reason"]),
        unread: v["unread"].as_bool().unwrap_or(false),
        updated_at: s(&v["updated_at"]),
    }
}

/// Up to `limit` notifications (pages followed), and the answer's `Last-Modified`; `None` when
/// GitHub says nothing changed since `since` (304).
async fn notifications(
    all: &Integrations,
    limit: usize,
    all_too: bool,
    since: Option<&str>,
) -> Result<(Vec<Notification>, Option<String>), ServiceError> {
    let mut out = Vec::new();
    let mut url = services::url(all, P, "/notifications");
    let mut first = true;
    let mut last_modified = None;
    loop {
        let mut req = P.request(Method::GET, url.clone());
        if first {
            req = req
                .query("per_page", limit.min(50).to_string())
                .query("all", all_too.to_string());
            if let Some(s) = since {
                req.headers.push(("If-Modified-Since".into(), s.to_owned()));
            }
        }
        let answer = match services::call_full(all, P, &req).await {
            Err(e) if e.api().and_then(|a| a.status()) == Some(304) => {
                return Ok((Vec::new(), since.map(str::to_owned)));
            }
            other => other?,
        };
        if first {
            last_modified = answer
                .headers
                .get("last-modified")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
        }
        first = false;
        for v in answer.body.as_array().into_iter().flatten() {
            if out.len() < limit {
                out.push(notification(v));
            }
        }
        match answer.next_link() {
            Some(next) if out.len() < limit && next.starts_with(&all.api_url(P)) => url = next,
            _ => return Ok((out, last_modified)),
        }
    }
}

async fn prs(all: &Integrations, q: &str, limit: usize) -> Result<Value, ServiceError> {
    let req = P
        .request(Method::GET, services::url(all, P, "/search/issues"))
        .query("q", q)
        .query("sort", "updated")
        .query("per_page", limit.to_string());
    let v = services::call(all, P, &req).await?;
    let prs: Vec<Value> = v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .take(limit)
        .map(|i| {
            let repo = i["repository_url"]
                .as_str()
                .and_then(|u| u.split("/repos/").nth(1))
                .unwrap_or_default();
            json!({ "number": i["number"], "title": i["title"], "repo": repo, "url": i["html_url"],
                "draft": i["draft"].as_bool().unwrap_or(false), "updated_at": i["updated_at"] })
        })
        .collect();
    Ok(json!({ "count": v["total_count"].as_u64().unwrap_or(prs.len() as u64), "prs": prs }))
}

/// The `github.notification` trigger's source; see the module docs.
#[derive(Debug, Default)]
pub struct Notifications;

/// What [`Notifications`] remembers.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct NotificationsState {
    last_modified: Option<String>,
    /// `id@updated_at` of the threads announced lately.
    seen: Vec<String>,
}

/// How many announced threads are remembered.
const SEEN_KEPT: usize = 500;

impl Poller for Notifications {
    type State = NotificationsState;
    const NAME: &'static str = "github";
    const PROVIDER: Provider = P;

    async fn poll<'a>(
        &'a self,
        all: &'a Integrations,
        state: &'a mut NotificationsState,
        first: bool,
    ) -> Result<Vec<Event>, ServiceError> {
        let (list, last_modified) =
            notifications(all, 50, false, state.last_modified.as_deref()).await?;
        state.last_modified = last_modified;
        let mut events = Vec::new();
        for n in list {
            let key = format!("{}@{}", n.id, n.updated_at);
            if state.seen.contains(&key) {
                continue;
            }
            state.seen.push(key);
            if !first {
                events.push(Event::new("github", "github.notification", json!(n)));
            }
        }
        let excess = state.seen.len().saturating_sub(SEEN_KEPT);
        state.seen.drain(..excess);
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_are_owner_and_name_and_nothing_else() {
        assert_eq!(
            repo("octo-org/hello.world").unwrap(),
            "octo-org/hello.world"
        );
        for bad in ["octo", "a/b/c", "../x", "a/..", "a/b?x=1", "a b/c", "/b"] {
            assert!(repo(bad).is_err(), "{bad}");
        }
    }
}
