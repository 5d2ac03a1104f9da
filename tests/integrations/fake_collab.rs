//! The fake's GitHub, Slack, Discord and Notion (see [`super::fake`]).

use std::collections::HashMap;

use axum::http::{HeaderMap, Method};
use axum::response::Response;
use serde_json::{Value, json};

use super::fake::{Inner, host, reply, valid, with_headers};

pub(super) fn bearer(auth: &str) -> &str {
    auth.strip_prefix("Bearer ").unwrap_or("")
}

pub(super) fn github(
    st: &mut Inner,
    method: &Method,
    rest: &[&str],
    q: &HashMap<String, String>,
    h: &HeaderMap,
    auth: &str,
    body: &Value,
) -> Response {
    if !valid(st, bearer(auth)) {
        return reply(
            401,
            json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"}),
        );
    }
    match (method.as_str(), rest) {
        ("GET", ["user"]) => reply(200, json!({"login": "octocat", "id": 1})),
        ("GET", ["notifications"]) => {
            if h.get("if-modified-since").and_then(|v| v.to_str().ok())
                == Some(st.last_modified.as_str())
            {
                return reply(304, Value::Null);
            }
            let per: usize = q.get("per_page").and_then(|p| p.parse().ok()).unwrap_or(50);
            let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
            let all = &st.notifications;
            let items: Vec<Value> = all
                .iter()
                .skip((page - 1) * per)
                .take(per)
                .cloned()
                .collect();
            let mut r = reply(200, json!(items));
            let mut headers = vec![
                ("last-modified", st.last_modified.clone()),
                ("x-poll-interval", "60".to_owned()),
            ];
            if page * per < all.len() {
                headers.push((
                    "link",
                    format!(
                        "<{}/github/notifications?per_page={per}&page={}>; rel=\"next\"",
                        host(h),
                        page + 1
                    ),
                ));
            }
            r = with_headers(r, &headers);
            r
        }
        ("GET", ["search", "issues"]) => {
            let qs = q.get("q").cloned().unwrap_or_default();
            let items = if qs.contains("review-requested:@me") {
                st.review_prs.clone()
            } else if qs.contains("author:@me") {
                st.my_prs.clone()
            } else {
                Vec::new()
            };
            reply(
                200,
                json!({"total_count": items.len(), "incomplete_results": false, "items": items}),
            )
        }
        ("POST", ["repos", o, n, "issues"]) if *o == "octo-org" => {
            if body["title"].as_str().unwrap_or("").is_empty() {
                return reply(
                    422,
                    json!({"message": "Validation Failed", "errors": [{"resource": "Issue", "code": "missing_field", "field": "title"}]}),
                );
            }
            reply(
                201,
                json!({"number": 42, "html_url": format!("https://github.com/{o}/{n}/issues/42"), "title": body["title"]}),
            )
        }
        ("POST", ["repos", o, n, "issues", num, "comments"]) if *o == "octo-org" => reply(
            201,
            json!({"id": 9001, "html_url": format!("https://github.com/{o}/{n}/issues/{num}#issuecomment-9001")}),
        ),
        _ => reply(
            404,
            json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}),
        ),
    }
}

fn slack_err(e: &str) -> Response {
    reply(200, json!({"ok": false, "error": e}))
}

pub(super) fn slack(
    st: &mut Inner,
    rest: &[&str],
    q: &HashMap<String, String>,
    auth: &str,
    body: &Value,
) -> Response {
    let token = bearer(auth).to_owned();
    if token.is_empty() {
        return slack_err("not_authed");
    }
    if !valid(st, &token) {
        return slack_err("invalid_auth");
    }
    let arg = |k: &str| {
        body[k]
            .as_str()
            .map(str::to_owned)
            .or_else(|| q.get(k).cloned())
            .unwrap_or_default()
    };
    match rest {
        ["auth.test"] => reply(
            200,
            json!({"ok": true, "url": "https://atlas-test.slack.com/", "team": "Atlas", "user": "me", "team_id": "T1", "user_id": "U0ME"}),
        ),
        ["chat.postMessage"] => {
            let channel = arg("channel");
            let Some(list) = st.slack.get_mut(&channel) else {
                return slack_err("channel_not_found");
            };
            let ts = format!("1733480000.{:06}", list.len() + 1);
            list.insert(
                0,
                json!({"type": "message", "user": "U0ME", "text": arg("text"), "ts": ts}),
            );
            reply(
                200,
                json!({"ok": true, "channel": channel, "ts": ts, "message": {"text": arg("text")}}),
            )
        }
        ["conversations.history"] => {
            let channel = arg("channel");
            let Some(list) = st.slack.get(&channel) else {
                return slack_err("channel_not_found");
            };
            let oldest: f64 = q.get("oldest").and_then(|o| o.parse().ok()).unwrap_or(0.0);
            let list: Vec<&Value> = list
                .iter()
                .filter(|m| {
                    m["ts"]
                        .as_str()
                        .and_then(|t| t.parse::<f64>().ok())
                        .unwrap_or(0.0)
                        >= oldest
                })
                .collect();
            // Pages of two, whatever the limit (Slack may return fewer than asked).
            let start: usize = q
                .get("cursor")
                .and_then(|c| c.strip_prefix("dXNlcjo"))
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100);
            let page: Vec<Value> = list
                .iter()
                .skip(start)
                .take(limit.min(2))
                .map(|v| (*v).clone())
                .collect();
            let next = if start + page.len() < list.len() {
                format!("dXNlcjo{}", start + page.len())
            } else {
                String::new()
            };
            reply(
                200,
                json!({"ok": true, "messages": page, "has_more": !next.is_empty(), "response_metadata": {"next_cursor": next}}),
            )
        }
        ["users.profile.set"] => {
            if token.starts_with("xoxb-") {
                return slack_err("not_allowed_token_type");
            }
            reply(200, json!({"ok": true, "profile": body["profile"]}))
        }
        _ => slack_err("unknown_method"),
    }
}

pub(super) fn discord(
    st: &mut Inner,
    method: &Method,
    rest: &[&str],
    q: &HashMap<String, String>,
    auth: &str,
    body: &Value,
) -> Response {
    if let ["webhooks", id, token] = rest {
        return if *id == "111" && *token == "hook-token-secret" {
            reply(
                200,
                json!({"id": "5001", "content": body["content"], "webhook_id": id}),
            )
        } else {
            reply(404, json!({"message": "Unknown Webhook", "code": 10015}))
        };
    }
    let token = auth.strip_prefix("Bot ").unwrap_or("");
    if !valid(st, token) {
        return reply(401, json!({"message": "401: Unauthorized", "code": 0}));
    }
    let bucket = |r: Response, st: &Inner| match st.discord_reset_after {
        Some(after) => with_headers(
            r,
            &[
                ("x-ratelimit-limit", "5".into()),
                ("x-ratelimit-remaining", "0".into()),
                ("x-ratelimit-reset-after", after.to_string()),
                ("x-ratelimit-bucket", "abcd1234".into()),
            ],
        ),
        None => r,
    };
    match (method.as_str(), rest) {
        ("GET", ["users", "@me"]) => reply(
            200,
            json!({"id": "BOT1", "username": "atlas-bot", "bot": true}),
        ),
        ("POST", ["channels", id, "messages"]) => {
            let Some(list) = st.discord.get_mut(*id) else {
                return reply(404, json!({"message": "Unknown Channel", "code": 10003}));
            };
            let mid = format!("{}", 1_000_000 + list.len() + 1);
            list.insert(0, json!({"id": mid, "channel_id": id, "content": body["content"], "author": {"id": "BOT1", "username": "atlas-bot"}, "timestamp": "2026-12-06T10:00:00.000000+00:00", "mentions": [], "mention_everyone": false}));
            let r = reply(200, list[0].clone());
            bucket(r, st)
        }
        ("GET", ["channels", id, "messages"]) => {
            let Some(list) = st.discord.get(*id) else {
                return reply(404, json!({"message": "Unknown Channel", "code": 10003}));
            };
            let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(50);
            let after: u64 = q.get("after").and_then(|a| a.parse().ok()).unwrap_or(0);
            let page: Vec<Value> = list
                .iter()
                .filter(|m| {
                    m["id"]
                        .as_str()
                        .and_then(|i| i.parse::<u64>().ok())
                        .unwrap_or(0)
                        > after
                })
                .take(limit)
                .cloned()
                .collect();
            let r = reply(200, json!(page));
            bucket(r, st)
        }
        _ => reply(404, json!({"message": "404: Not Found", "code": 0})),
    }
}

fn notion_err(status: u16, code: &str, message: &str) -> Response {
    reply(
        status,
        json!({"object": "error", "status": status, "code": code, "message": message}),
    )
}

pub(super) fn notion(
    st: &mut Inner,
    method: &Method,
    rest: &[&str],
    h: &HeaderMap,
    auth: &str,
    body: &Value,
) -> Response {
    if h.get("notion-version").is_none() {
        return notion_err(
            400,
            "missing_version",
            "Notion-Version header failed validation: Notion-Version header should be defined, instead was `undefined`.",
        );
    }
    if !valid(st, bearer(auth)) {
        return notion_err(401, "unauthorized", "API token is invalid.");
    }
    let page_of = |items: &[Value], body: &Value| {
        let start: usize = body["start_cursor"]
            .as_str()
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let size = body["page_size"].as_u64().unwrap_or(100).min(2) as usize;
        let page: Vec<Value> = items.iter().skip(start).take(size).cloned().collect();
        let more = start + page.len() < items.len();
        json!({"object": "list", "results": page, "has_more": more,
            "next_cursor": if more { json!((start + page.len()).to_string()) } else { Value::Null }})
    };
    match (method.as_str(), rest) {
        ("GET", ["users", "me"]) => {
            reply(200, json!({"object": "user", "id": "bot-1", "type": "bot"}))
        }
        ("POST", ["search"]) => {
            let q = body["query"].as_str().unwrap_or("").to_lowercase();
            let hits: Vec<Value> = st
                .notion_pages
                .iter()
                .filter(|p| p.to_string().to_lowercase().contains(&q))
                .cloned()
                .collect();
            reply(200, page_of(&hits, body))
        }
        ("PATCH", ["blocks", id, "children"]) => {
            if !st.notion_pages.iter().any(|p| p["id"] == *id) {
                return notion_err(
                    404,
                    "object_not_found",
                    &format!(
                        "Could not find block with ID: {id}. Make sure the relevant pages and databases are shared with your integration."
                    ),
                );
            }
            reply(200, json!({"object": "list", "results": body["children"]}))
        }
        ("GET", ["databases", "db1"]) => reply(
            200,
            json!({"object": "database", "id": "db1", "data_sources": [{"id": "ds1", "name": "Tasks"}]}),
        ),
        ("GET", ["data_sources", "ds1"]) => reply(
            200,
            json!({"object": "data_source", "id": "ds1", "properties": {"Status": {"id": "a", "type": "status"}, "Task": {"id": "title", "type": "title"}}}),
        ),
        ("POST", ["pages"]) => {
            if body["parent"]["data_source_id"] != "ds1" {
                return notion_err(
                    400,
                    "validation_error",
                    "body.parent.data_source_id should be a valid uuid",
                );
            }
            let n = st.notion_items.len() + 1;
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let item = json!({"object": "page", "id": format!("item-{n}"), "url": format!("https://www.notion.so/item-{n}"),
                "created_time": now, "last_edited_time": now, "properties": {"Task": {"type": "title", "title": [{"plain_text": body["properties"]["Task"]["title"][0]["text"]["content"]}]}}});
            st.notion_items.push(item.clone());
            reply(200, item)
        }
        ("POST", ["data_sources", "ds1", "query"]) => {
            let since = body["filter"]["last_edited_time"]["on_or_after"]
                .as_str()
                .unwrap_or("");
            let items: Vec<Value> = st
                .notion_items
                .iter()
                .filter(|i| i["last_edited_time"].as_str().unwrap_or("") >= since)
                .cloned()
                .collect();
            reply(200, page_of(&items, body))
        }
        _ => notion_err(404, "object_not_found", "Could not find the object."),
    }
}
