//! Notion against the fake: search across cursors, appending paragraphs, a database item in the
//! database's data source under its title property, the required `Notion-Version`, Notion's
//! error bodies, `rate_limited`, a refused token, and the database trigger.

use std::sync::Arc;

use atlas::integrations::Provider;
use atlas::integrations::notion::DatabaseItems;
use atlas::integrations::watch::Watch;
use serde_json::json;

use super::fake::Canned;
use super::harness::{setup, setup_with};

fn page(id: &str, title: &str) -> serde_json::Value {
    json!({"object": "page", "id": id, "url": format!("https://www.notion.so/{id}"), "last_edited_time": "2026-12-05T10:00:00.000Z",
        "properties": {"Name": {"id": "title", "type": "title", "title": [{"type": "text", "plain_text": title}]}}})
}

#[tokio::test]
async fn notion_searches_appends_and_adds_database_items() {
    let s = setup().await;
    s.paste(Provider::Notion, "ntn_fakeNotionSecret01", None)
        .await;
    s.fake.set(|i| {
        i.notion_pages = vec![
            page("p1", "Meeting notes"),
            page("p2", "Meeting agenda"),
            page("p3", "Meeting ideas"),
            page("p4", "Groceries"),
        ];
    });
    let v = s
        .op(
            "notion",
            "search",
            &[("query", json!("meeting")), ("limit", json!(10))],
        )
        .await
        .unwrap();
    assert_eq!(v["count"], 3);
    assert_eq!(v["results"][2]["title"], "Meeting ideas");
    let searches: Vec<String> = s
        .fake
        .calls("notion")
        .into_iter()
        .filter(|c| c.contains("/search"))
        .collect();
    assert_eq!(searches.len(), 2, "two pages of two");
    assert!(s.fake.get(|i| {
        i.received
            .iter()
            .any(|(_, p, b)| p.ends_with("/search") && b["start_cursor"] == "2")
    }));
    assert!(s.fake.get(|i| {
        i.headers_seen
            .contains(&("notion-version".into(), "2025-09-03".into()))
    }));

    let v = s
        .op(
            "notion",
            "append",
            &[
                ("page", json!("p1")),
                ("text", json!("Call the bank\n\nBook the flights")),
            ],
        )
        .await
        .unwrap();
    assert_eq!(v["added"], 2);
    let sent = s.fake.get(|i| i.received.last().unwrap().2.clone());
    assert_eq!(
        sent["children"][1]["paragraph"]["rich_text"][0]["text"]["content"],
        "Book the flights"
    );
    let err = s
        .op(
            "notion",
            "append",
            &[("page", json!("p9")), ("text", json!("x"))],
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("HTTP 404: Could not find block with ID: p9"),
        "{err}"
    );

    let v = s
        .op(
            "notion",
            "add_item",
            &[
                ("database", json!("db1")),
                ("title", json!("Renew the passport")),
            ],
        )
        .await
        .unwrap();
    assert_eq!(v["id"], "item-1");
    let created = s.fake.get(|i| i.received.last().unwrap().2.clone());
    assert_eq!(
        created["parent"],
        json!({"type": "data_source_id", "data_source_id": "ds1"})
    );
    assert_eq!(
        created["properties"]["Task"]["title"][0]["text"]["content"],
        "Renew the passport"
    );
}

#[tokio::test]
async fn notion_rate_limits_and_a_refused_token() {
    let s = setup().await;
    s.paste(Provider::Notion, "ntn_fakeNotionSecret02", None)
        .await;
    s.fake.set(|i| i.notion_pages = vec![page("p1", "Notes")]);
    s.fake.can("notion", Canned { status: 429, headers: vec![("retry-after", "1".into())],
        body: json!({"object": "error", "status": 429, "code": "rate_limited", "message": "You have been rate limited. Please try again in a few minutes."}) });
    assert_eq!(s.op("notion", "search", &[]).await.unwrap()["count"], 1);
    s.fake.can("notion", Canned { status: 529, headers: vec![],
        body: json!({"object": "error", "status": 529, "code": "service_overload", "message": "Notion is overloaded."}) });
    let err = s.op("notion", "search", &[]).await.unwrap_err();
    assert_eq!(err.api().and_then(|e| e.reason()), Some("service_overload"));
    s.fake.set(|i| i.tokens.clear());
    let err = s.op("notion", "search", &[]).await.unwrap_err();
    assert!(
        err.to_string().contains("sign in again") && err.to_string().contains("refused the token"),
        "{err}"
    );
    assert_eq!(s.state(Provider::Notion), "needs_reauth");
}

#[tokio::test]
async fn new_database_items_are_announced_once() {
    let s =
        setup_with(|c| c.providers.get_mut("notion").unwrap().database = Some("db1".into())).await;
    s.paste(Provider::Notion, "ntn_fakeNotionSecret03", None)
        .await;
    let mut events = s.hub.subscribe();
    let watch = Watch::new(
        DatabaseItems,
        Arc::clone(&s.all),
        s.hub.clone(),
        s.dir.path(),
    );
    assert_eq!(
        watch.poll().await.unwrap(),
        0,
        "the first poll records the time"
    );
    s.op(
        "notion",
        "add_item",
        &[
            ("database", json!("db1")),
            ("title", json!("Water the plants")),
        ],
    )
    .await
    .unwrap();
    assert_eq!(watch.poll().await.unwrap(), 1);
    let e = events.recv().await.unwrap();
    assert_eq!(e.kind, "notion.item");
    assert_eq!(e.data["title"], "Water the plants");
    assert_eq!(e.data["new"], true);
    assert_eq!(watch.poll().await.unwrap(), 0, "seen once");
}
