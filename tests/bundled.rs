//! The bundled workflows, run against local servers that speak Open-Meteo's and Binance's
//! documented response shapes (the real services are unreachable here).

use std::path::PathBuf;
use std::sync::Arc;

use atlas::engine::RunRequest;
use atlas::store::RunStatus;
use atlas::workflow::load_dirs;
use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use serde_json::{Value, json};

use crate::util::{assert_status, engine_with, serve};

fn bundled_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("workflows")
}

#[test]
fn every_bundled_workflow_loads() {
    let report = load_dirs(&[bundled_dir()]);
    assert!(report.errors.is_empty(), "{:#?}", report.errors);
    let ids: Vec<&str> = report.workflows.iter().map(|w| w.id()).collect();
    for id in [
        "hello",
        "weather",
        "crypto_alert",
        "morning_briefing",
        "email_digest",
        "meeting_reminder",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
}

fn engine_with_bundled() -> crate::util::TestEngine {
    let t = engine_with(&[]);
    let report = load_dirs(&[bundled_dir()]);
    t.engine.set_workflows(report.workflows.iter().cloned());
    t
}

async fn fake_open_meteo() -> String {
    let app = Router::new().route(
        "/v1/forecast",
        get(|Query(q): Query<std::collections::HashMap<String, String>>| async move {
            // Open-Meteo's documented shape for `current=` requests.
            assert!(q.contains_key("latitude") && q.contains_key("longitude"));
            assert!(q["current"].contains("temperature_2m"));
            axum::Json(json!({
                "latitude": 48.86, "longitude": 2.35, "timezone": "Europe/Paris",
                "current_units": {"temperature_2m": "°C", "apparent_temperature": "°C", "weather_code": "wmo code", "wind_speed_10m": "km/h"},
                "current": {"time": "2026-11-25T07:00", "interval": 900, "temperature_2m": 11.6, "apparent_temperature": 9.2, "weather_code": 61, "wind_speed_10m": 14.8}
            }))
        }),
    );
    format!("http://{}", serve(app).await)
}

#[tokio::test]
async fn weather_speaks_the_current_conditions() {
    let base = fake_open_meteo().await;
    let t = engine_with_bundled();
    let out = t
        .run_with(
            "weather",
            &[("api_base", json!(base)), ("place", json!("Lyon"))],
        )
        .await;
    assert_status(&out, RunStatus::Succeeded);
    assert_eq!(
        out.spoken,
        [
            "In Lyon it is 12 degrees with light rain, feeling like 9, and wind at 15 kilometres per hour."
        ]
    );
}

async fn fake_binance(price: &'static str) -> String {
    let app = Router::new().route(
        "/api/v3/ticker/price",
        get(
            move |Query(q): Query<std::collections::HashMap<String, String>>| async move {
                // Binance's documented shape: the price is a decimal string.
                axum::Json(
                    json!({"symbol": q.get("symbol").cloned().unwrap_or_default(), "price": price}),
                )
            },
        ),
    );
    format!("http://{}", serve(app).await)
}

#[tokio::test]
async fn crypto_alert_speaks_only_across_the_threshold() {
    let base = fake_binance("101234.56000000").await;
    let t = engine_with_bundled();
    let out = t
        .run_with(
            "crypto_alert",
            &[
                ("api_base", json!(base.clone())),
                ("threshold", json!(100000)),
            ],
        )
        .await;
    assert_status(&out, RunStatus::Succeeded);
    assert_eq!(
        out.spoken,
        ["Alert: Bitcoin is at 101235 dollars, above your threshold of 100000."]
    );
    assert_eq!(out.outputs["done"]["alerted"], json!(true));

    let out = t
        .run_with(
            "crypto_alert",
            &[
                ("api_base", json!(base.clone())),
                ("threshold", json!(150000)),
            ],
        )
        .await;
    assert_status(&out, RunStatus::Succeeded);
    assert!(out.spoken.is_empty());
    assert_eq!(out.outputs["done"]["alerted"], json!(false));
    assert_eq!(out.outputs["done"]["price"], json!(101234.56));

    let out = t
        .run_with(
            "crypto_alert",
            &[
                ("api_base", json!(base)),
                ("threshold", json!(150000)),
                ("direction", json!("below")),
            ],
        )
        .await;
    assert_eq!(
        out.spoken,
        ["Alert: Bitcoin is at 101235 dollars, below your threshold of 150000."]
    );
}

#[tokio::test]
async fn morning_briefing_greets_dates_and_reads_the_weather() {
    let base = fake_open_meteo().await;
    let t = engine_with_bundled();
    let out = t
        .run_with(
            "morning_briefing",
            &[("weather_api", json!(base)), ("name", json!("Sam"))],
        )
        .await;
    assert_status(&out, RunStatus::Succeeded);
    assert_eq!(out.spoken.len(), 5, "{:?}", out.spoken);
    assert!(
        out.spoken[0].starts_with("Good ")
            && out.spoken[0].contains(", Sam.")
            && out.spoken[0].contains("Today is "),
        "{:?}",
        out.spoken
    );
    assert!(out.spoken[1].contains("degrees with light rain"));
    // No integrations in this engine: the calendar and mail parts are skipped, each said once.
    assert_eq!(
        out.spoken[2],
        "The calendar is not connected, so I skipped it."
    );
    assert_eq!(out.spoken[3], "Email is not connected, so I skipped it.");
    assert_eq!(out.spoken[4], "That's your briefing. Have a good day.");
}

#[tokio::test]
async fn morning_briefing_goes_on_when_the_weather_is_unreachable() {
    let t = engine_with_bundled();
    let out = t
        .run_with(
            "morning_briefing",
            &[("weather_api", json!("http://127.0.0.1:9"))],
        )
        .await;
    assert_status(&out, RunStatus::Succeeded);
    assert!(
        out.spoken
            .contains(&"I could not reach the weather service.".to_owned()),
        "{:?}",
        out.spoken
    );
}

#[tokio::test]
async fn hello_greets() {
    let t = engine_with_bundled();
    let out = t.engine.run(RunRequest::manual("hello")).await.unwrap();
    assert_status(&out, RunStatus::Succeeded);
    let said: Vec<String> = t.speaker.said();
    assert_eq!(said.len(), 1);
    assert!(said[0].ends_with("Atlas is ready."), "{said:?}");
    let _: Arc<Value> = Arc::new(json!(null));
}
