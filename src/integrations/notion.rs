//! Notion (REST, `https://api.notion.com/v1`, `Notion-Version: 2025-09-03`, where a database
//! holds data sources): an internal integration token the user pastes
//! (`atlas integration connect notion --token`; share the pages and databases with the
//! integration in Notion). Paging: `start_cursor`/`page_size` (at most 100) in, `has_more` and
//! `next_cursor` out. Errors come as `{"object": "error", "code", "message"}`; `rate_limited`
//! (429, `Retry-After`) is waited out ([`super::api`]). Operations of the `notion` action:
//!
//! - `search` (`query`, `limit`): `{count, results: [{id, title, url, type, edited}]}`.
//! - `append` (`page`, `text`): one paragraph block per line (split at Notion's 2,000
//!   characters), `{page, added}`.
//! - `add_item` (`database`, `title`, `properties`): a page in the database's first data
//!   source, the title in its title property, `properties` (Notion's property JSON) as given:
//!   `{id, url}`.
//!
//! The trigger: [`DatabaseItems`] queries the data source of `[integrations.notion] database`
//! for items edited since the last poll and publishes `notion.item` (`id`, `title`, `url`,
//! `edited`, `new`) once per edit.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::services::{self, ServiceError, need, segment, unknown_op};
use super::watch::Poller;
use super::{AuthHeader, Health, Integrations, Provider, Spec, TokenKind, WatchCtx};
use crate::actions::{ServiceKind, ServiceOp, op};
use crate::triggers::events::Event;

/// Notion's declaration in the registry.
pub const SPEC: Spec = Spec {
    name: "notion",
    title: "Notion",
    oauth: None,
    token: Some(TokenKind::Token(
        "an internal integration secret (notion.so/my-integrations), with your pages shared with it",
    )),
    api_url: "https://api.notion.com/v1",
    auth: AuthHeader::Bearer,
    headers: &[("Notion-Version", "2025-09-03")],
    ok_field: false,
    health: Health::Get("/users/me"),
    run: Some(run_boxed),
    watch: Some(watches),
    mail: None,
    calendar: None,
};

const P: Provider = Provider::Notion;

/// Notion's limit on one text object.
const TEXT_MAX: usize = 2000;

/// The `notion` action kind's operations (see the module docs).
#[linkme::distributed_slice(crate::actions::SERVICE_KINDS)]
static KIND: ServiceKind = ServiceKind {
    name: "notion",
    doc: "Notion: search, append, add_item (atlas integration connect notion --token).",
    ops: &[
        op("search", &[], &["query", "limit"]),
        op("append", &["page", "text"], &[]),
        op("add_item", &["database", "title"], &["properties"]),
    ],
};

super::boxed_run!(run);

fn watches(ctx: &WatchCtx<'_>) {
    ctx.spawn(DatabaseItems);
}

/// Carries out one operation; see the module docs.
pub async fn run(all: &Integrations, op: &ServiceOp) -> Result<Value, ServiceError> {
    match op.op.as_str() {
        "search" => {
            let limit = op.limit(10, 100);
            let mut body = json!({ "page_size": limit });
            if let Some(q) = op.text("query") {
                body["query"] = json!(q);
            }
            let results: Vec<Value> = paged(all, "/search", body, limit)
                .await?
                .iter()
                .map(summary)
                .collect();
            Ok(json!({ "count": results.len(), "results": results }))
        }
        "append" => {
            let page = id(&need(op, "page")?)?;
            let children: Vec<Value> = need(op, "text")?
                .lines()
                .filter(|l| !l.trim().is_empty())
                .flat_map(chunks)
                .map(|t| {
                    json!({ "object": "block", "type": "paragraph",
                    "paragraph": { "rich_text": [{ "type": "text", "text": { "content": t } }] } })
                })
                .collect();
            let added = children.len();
            let req = P
                .request(
                    Method::PATCH,
                    services::url(all, P, &format!("/blocks/{page}/children")),
                )
                .json(json!({ "children": children }));
            services::call(all, P, &req).await?;
            Ok(json!({ "page": page, "added": added }))
        }
        "add_item" => {
            let database = id(&need(op, "database")?)?;
            let source = data_source(all, &database).await?;
            let title_prop = title_property(all, &source).await?;
            let mut properties = match op.args.get("properties") {
                Some(Value::Object(m)) => Value::Object(m.clone()),
                Some(Value::String(s)) if !s.trim().is_empty() => serde_json::from_str(s)
                    .map_err(|e| ServiceError::Input(format!("`properties` is not JSON: {e}")))?,
                _ => json!({}),
            };
            properties[&title_prop] =
                json!({ "title": [{ "type": "text", "text": { "content": need(op, "title")? } }] });
            let req = P
                .request(Method::POST, services::url(all, P, "/pages"))
                .json(json!({
                    "parent": { "type": "data_source_id", "data_source_id": source },
                    "properties": properties,
                }));
            let v = services::call(all, P, &req).await?;
            Ok(json!({ "id": v["id"], "url": v["url"] }))
        }
        _ => Err(unknown_op("notion", op)),
    }
}

/// A Notion id (with or without dashes), checked as one path segment.
fn id(s: &str) -> Result<String, ServiceError> {
    // A pasted page URL ends with its id.
    let s = s
        .rsplit(['/', '-'])
        .next()
        .filter(|t| t.len() == 32)
        .unwrap_or(s);
    if segment(s) {
        Ok(s.to_owned())
    } else {
        Err(ServiceError::Input(format!("`{s}` is not a Notion id")))
    }
}

fn chunks(line: &str) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    chars.chunks(TEXT_MAX).map(|c| c.iter().collect()).collect()
}

/// POSTs `body` to `path`, following `next_cursor` until `limit` results.
async fn paged(
    all: &Integrations,
    path: &str,
    body: Value,
    limit: usize,
) -> Result<Vec<Value>, ServiceError> {
    let mut out = Vec::new();
    let mut body = body;
    loop {
        let req = P
            .request(Method::POST, services::url(all, P, path))
            .json(body.clone());
        let v = services::call(all, P, &req).await?;
        out.extend(v["results"].as_array().into_iter().flatten().cloned());
        match v["next_cursor"].as_str() {
            Some(c) if v["has_more"] == json!(true) && out.len() < limit => {
                body["start_cursor"] = json!(c)
            }
            _ => {
                out.truncate(limit);
                return Ok(out);
            }
        }
    }
}

/// The plain text of a rich-text array.
fn plain(v: &Value) -> String {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["plain_text"].as_str())
        .collect()
}

/// A page's title: its property of type `title`.
fn page_title(page: &Value) -> String {
    page["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .find(|(_, p)| p["type"] == "title")
        .map(|(_, p)| plain(&p["title"]))
        .unwrap_or_default()
}

fn summary(r: &Value) -> Value {
    let title = if r["object"] == "page" {
        page_title(r)
    } else {
        plain(&r["title"])
    };
    json!({ "id": r["id"], "title": title, "url": r["url"], "type": r["object"], "edited": r["last_edited_time"] })
}

/// The first data source of `database`.
async fn data_source(all: &Integrations, database: &str) -> Result<String, ServiceError> {
    let req = P.request(
        Method::GET,
        services::url(all, P, &format!("/databases/{database}")),
    );
    let v = services::call(all, P, &req).await?;
    v["data_sources"][0]["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| {
            ServiceError::Provider(format!("the Notion database {database} has no data source"))
        })
}

/// The name of the data source's title property.
async fn title_property(all: &Integrations, source: &str) -> Result<String, ServiceError> {
    let req = P.request(
        Method::GET,
        services::url(all, P, &format!("/data_sources/{source}")),
    );
    let v = services::call(all, P, &req).await?;
    v["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .find(|(_, p)| p["type"] == "title")
        .map(|(name, _)| name.clone())
        .ok_or_else(|| ServiceError::Provider("the Notion database has no title property".into()))
}

/// The `notion.item` trigger's source; see the module docs.
#[derive(Debug, Default)]
pub struct DatabaseItems;

/// What [`DatabaseItems`] remembers.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ItemsState {
    /// Items edited at or after this instant are asked for (RFC 3339).
    since: String,
    /// `id@last_edited_time` of the items announced lately.
    seen: Vec<String>,
}

impl Poller for DatabaseItems {
    type State = ItemsState;
    const NAME: &'static str = "notion";
    const PROVIDER: Provider = P;

    async fn poll<'a>(
        &'a self,
        all: &'a Integrations,
        state: &'a mut ItemsState,
        first: bool,
    ) -> Result<Vec<Event>, ServiceError> {
        let Some(database) = P.config(all.config()).and_then(|c| c.database.clone()) else {
            return Ok(Vec::new());
        };
        let now = chrono::Utc::now();
        if first || state.since.is_empty() {
            state.since = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            return Ok(Vec::new());
        }
        let source = data_source(all, &id(&database)?).await?;
        let body = json!({
            "filter": { "timestamp": "last_edited_time", "last_edited_time": { "on_or_after": state.since } },
            "sorts": [{ "timestamp": "last_edited_time", "direction": "ascending" }],
            "page_size": 100,
        });
        let items = paged(all, &format!("/data_sources/{source}/query"), body, 500).await?;
        let mut events = Vec::new();
        for item in &items {
            let edited = item["last_edited_time"].as_str().unwrap_or_default();
            let key = format!("{}@{edited}", item["id"].as_str().unwrap_or_default());
            if state.seen.contains(&key) {
                continue;
            }
            state.seen.push(key);
            events.push(Event::new(
                "notion",
                "notion.item",
                json!({ "id": item["id"], "title": page_title(item), "url": item["url"], "edited": edited,
                    "new": item["created_time"] == item["last_edited_time"] }),
            ));
        }
        // Notion's edit times have minute precision: keep asking from a minute back, and let
        // `seen` drop the repeats.
        state.since = (now - chrono::Duration::minutes(1))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let excess = state.seen.len().saturating_sub(500);
        state.seen.drain(..excess);
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_bare_or_from_a_pasted_url() {
        assert_eq!(
            id("59833787-2cf9-4fdf-8782-e53db20768a5").unwrap(),
            "59833787-2cf9-4fdf-8782-e53db20768a5"
        );
        assert_eq!(
            id("https://www.notion.so/team/Meeting-notes-1429989fe8ac4effbc8f57f56486db54")
                .unwrap(),
            "1429989fe8ac4effbc8f57f56486db54"
        );
        assert!(id("../../pages").is_err());
        let long: String = "x".repeat(4100);
        assert_eq!(
            chunks(&long)
                .iter()
                .map(|c| c.chars().count())
                .collect::<Vec<_>>(),
            [2000, 2000, 100]
        );
    }
}
