//! The calendar routes of the Graph fake ([`super::fake_microsoft`]): `calendarView` answering
//! wall-clock times in the zone of `Prefer: outlook.timezone` (recorded), `events` (create) and
//! `calendar/getSchedule`, in Graph's `dateTimeTimeZone` shape.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, FixedOffset, TimeZone};
use serde_json::{Value, json};

use super::fake_microsoft::{S, gate, gated, graph_error, here, page};

/// `Prefer: outlook.timezone="ZONE"` (UTC without one, as Graph does).
fn zone_of(h: &HeaderMap) -> (chrono_tz::Tz, String) {
    let prefer = h
        .get("prefer")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let zone = prefer
        .split("outlook.timezone=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .and_then(|z| z.parse().ok())
        .unwrap_or(chrono_tz::Tz::UTC);
    (zone, prefer)
}

fn wall(t: DateTime<FixedOffset>, tz: chrono_tz::Tz) -> Value {
    json!({"dateTime": t.with_timezone(&tz).naive_local().format("%Y-%m-%dT%H:%M:%S.0000000").to_string(), "timeZone": tz.name()})
}

pub(super) async fn calendar_view(
    State(s): S,
    h: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut st = gated!(s, h);
    let (tz, prefer) = zone_of(&h);
    st.view_prefer.push(prefer);
    let instant = |k: &str| q.get(k).and_then(|v| DateTime::parse_from_rfc3339(v).ok());
    let (Some(from), Some(to)) = (instant("startDateTime"), instant("endDateTime")) else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidParameter",
            "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.",
        );
    };
    let mut events = st.events.clone();
    events.sort_by_key(|e| e.2);
    let items: Vec<Value> = events
        .iter()
        .filter(|(_, _, s, e, _)| *s < to && *e > from)
        .map(|(id, subject, s, e, all_day)| {
            json!({"id": id, "subject": subject, "isAllDay": all_day, "isCancelled": false,
                "start": wall(*s, tz), "end": wall(*e, tz), "showAs": "busy",
                "location": {"displayName": if *all_day { "" } else { "Teams" }}})
        })
        .collect();
    let base = here(&h, "/v1.0/me/calendarView");
    axum::Json(page(&base, items, &q)).into_response()
}

/// A Graph `dateTimeTimeZone` read back.
fn read_wall(v: &Value) -> Option<DateTime<FixedOffset>> {
    let tz: chrono_tz::Tz = v["timeZone"].as_str()?.parse().ok()?;
    let naive =
        chrono::NaiveDateTime::parse_from_str(v["dateTime"].as_str()?, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()?;
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.fixed_offset())
}

pub(super) async fn create_event(
    State(s): S,
    h: HeaderMap,
    axum::Json(b): axum::Json<Value>,
) -> Response {
    let mut st = gated!(s, h);
    let (tz, _) = zone_of(&h);
    let (Some(start), Some(end)) = (read_wall(&b["start"]), read_wall(&b["end"])) else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidRequest",
            "start and end need dateTime and a known timeZone.",
        );
    };
    let id = format!("AAMkAGevent{}", st.created.len() + 1);
    let subject = b["subject"].as_str().unwrap_or("").to_owned();
    st.created.push(b);
    st.events
        .push((id.clone(), subject.clone(), start, end, false));
    (StatusCode::CREATED, axum::Json(json!({"id": id, "subject": subject, "isAllDay": false, "start": wall(start, tz), "end": wall(end, tz)}))).into_response()
}

pub(super) async fn get_schedule(
    State(s): S,
    h: HeaderMap,
    axum::Json(b): axum::Json<Value>,
) -> Response {
    let st = gated!(s, h);
    let (tz, _) = zone_of(&h);
    if b["schedules"][0] != "me@contoso.com" {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidRequest",
            "schedules must name mailboxes.",
        );
    }
    let (Some(from), Some(to)) = (read_wall(&b["startTime"]), read_wall(&b["endTime"])) else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidRequest",
            "startTime and endTime are required.",
        );
    };
    let items: Vec<Value> = st
        .events
        .iter()
        .filter(|(_, _, s, e, all_day)| !all_day && *s < to && *e > from)
        .map(|(_, subject, s, e, _)| json!({"isPrivate": false, "status": "busy", "subject": subject, "start": wall(*s, tz), "end": wall(*e, tz)}))
        .collect();
    axum::Json(json!({"value": [{"scheduleId": "me@contoso.com", "availabilityView": "", "scheduleItems": items}]})).into_response()
}
