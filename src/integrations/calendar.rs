//! The Google Calendar REST v3 client over [`Integrations::call`]: events between two instants
//! (`singleEvents=true&orderBy=startTime`, `timeMin`/`timeMax` in RFC 3339 with the local offset,
//! `nextPageToken` followed), today's events in the machine's time zone, the next meeting, an
//! event created from slots (a title, a start, a length), and free/busy.
//!
//! All-day events have `start.date` (end exclusive) and no time: they are kept, marked
//! `all_day`, and never count as "the next meeting".

use chrono::{DateTime, Duration as Span, FixedOffset, Local, NaiveDate, TimeZone};
use serde::Serialize;
use serde_json::{Value, json};

use super::agenda::CalendarSource;
use super::api::Request;
use super::mail::SourceError;
use super::{BoxFuture, IntegrationError, Integrations, Provider};

/// The most events one listing returns.
pub const MAX_EVENTS: usize = 250;

/// What went wrong with the calendar.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CalendarError {
    /// The call failed.
    #[error(transparent)]
    Call(#[from] IntegrationError),
    /// Bad input (a start that is not a time, an empty title, ...).
    #[error("{0}")]
    Input(String),
}

/// One event as Atlas uses it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CalEvent {
    /// The event id.
    pub id: String,
    /// Its title (`(no title)` when it has none).
    pub summary: String,
    /// Start: RFC 3339 for a timed event, `yyyy-mm-dd` for an all-day one.
    pub start: String,
    /// End, the same way (exclusive for all-day events).
    pub end: String,
    /// Whether it lasts whole days.
    pub all_day: bool,
    /// The start in local time as people say it (`9:30 AM`), empty for all-day events.
    pub time: String,
    /// The start's day as people say it: `today`, `tomorrow`, or `Monday 7 December`.
    pub day: String,
    /// Where, if given.
    pub location: Option<String>,
    /// The account it is in (`calendar`, `microsoft`).
    pub account: String,
    /// Where it came from, for people, when more than one calendar answered.
    pub via: Option<String>,
}

/// Calendar through `all`, on the user's primary calendar.
pub struct Calendar<'a> {
    all: &'a Integrations,
}

impl<'a> Calendar<'a> {
    /// The client.
    pub fn new(all: &'a Integrations) -> Calendar<'a> {
        Calendar { all }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.all.api_url(Provider::Calendar))
    }

    async fn call(&self, req: Request) -> Result<Value, CalendarError> {
        Ok(self.all.call(Provider::Calendar, &req).await?)
    }

    /// Events overlapping `[from, to)`, in start order, at most `limit`.
    pub async fn between(
        &self,
        from: DateTime<FixedOffset>,
        to: DateTime<FixedOffset>,
        limit: usize,
    ) -> Result<Vec<CalEvent>, CalendarError> {
        let limit = limit.clamp(1, MAX_EVENTS);
        let mut out = Vec::new();
        let mut page: Option<String> = None;
        loop {
            let mut req = Request::get(self.url("/calendars/primary/events"))
                .query("singleEvents", "true")
                .query("orderBy", "startTime")
                .query("timeMin", from.to_rfc3339())
                .query("timeMax", to.to_rfc3339())
                .query("maxResults", limit.to_string());
            if let Some(p) = &page {
                req = req.query("pageToken", p.clone());
            }
            let v = self.call(req).await?;
            for item in v["items"].as_array().into_iter().flatten() {
                if item["status"] == "cancelled" {
                    continue;
                }
                out.push(parse_event(item));
            }
            page = v["nextPageToken"].as_str().map(str::to_owned);
            if page.is_none() || out.len() >= limit {
                out.truncate(limit);
                return Ok(out);
            }
        }
    }

    /// Today's events, midnight to midnight in the machine's time zone.
    pub async fn today(&self, limit: usize) -> Result<Vec<CalEvent>, CalendarError> {
        let (from, to) = day_bounds(Local::now().date_naive());
        self.between(from, to, limit).await
    }

    /// The next timed event starting after now, within a week.
    pub async fn next_meeting(&self) -> Result<Option<CalEvent>, CalendarError> {
        let now = Local::now().fixed_offset();
        let events = self.between(now, now + Span::days(7), 50).await?;
        Ok(events
            .into_iter()
            .find(|e| !e.all_day && DateTime::parse_from_rfc3339(&e.start).is_ok_and(|s| s >= now)))
    }

    /// Creates an event `title` at `start` lasting `minutes`.
    pub async fn create(
        &self,
        title: &str,
        start: DateTime<FixedOffset>,
        minutes: i64,
    ) -> Result<CalEvent, CalendarError> {
        let title = title.trim();
        if title.is_empty() {
            return Err(CalendarError::Input("an event needs a title".into()));
        }
        if !(1..=24 * 60).contains(&minutes) {
            return Err(CalendarError::Input(
                "an event lasts between 1 minute and 24 hours".into(),
            ));
        }
        let end = start + Span::minutes(minutes);
        let v = self
            .call(Request::post(
                self.url("/calendars/primary/events"),
                json!({
                    "summary": title,
                    "start": { "dateTime": start.to_rfc3339() },
                    "end": { "dateTime": end.to_rfc3339() },
                }),
            ))
            .await?;
        Ok(parse_event(&v))
    }

    /// Busy periods of the primary calendar in `[from, to)`, as `(start, end)` RFC 3339 pairs.
    pub async fn free_busy(
        &self,
        from: DateTime<FixedOffset>,
        to: DateTime<FixedOffset>,
    ) -> Result<Vec<(String, String)>, CalendarError> {
        let v = self
            .call(Request::post(
                self.url("/freeBusy"),
                json!({
                    "timeMin": from.to_rfc3339(),
                    "timeMax": to.to_rfc3339(),
                    "items": [{ "id": "primary" }],
                }),
            ))
            .await?;
        Ok(v["calendars"]["primary"]["busy"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|b| {
                Some((
                    b["start"].as_str()?.to_owned(),
                    b["end"].as_str()?.to_owned(),
                ))
            })
            .collect())
    }
}

const PROVIDER_NAME: &str = "calendar";

impl CalendarSource for Calendar<'_> {
    fn provider(&self) -> Provider {
        Provider::Calendar
    }

    fn label(&self) -> &'static str {
        "Google Calendar"
    }

    fn range(
        &self,
        from: DateTime<FixedOffset>,
        to: DateTime<FixedOffset>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<CalEvent>, SourceError>> {
        Box::pin(async move { self.between(from, to, limit).await.map_err(SourceError::of) })
    }

    fn create<'a>(
        &'a self,
        title: &'a str,
        start: DateTime<FixedOffset>,
        minutes: i64,
    ) -> BoxFuture<'a, Result<CalEvent, SourceError>> {
        Box::pin(async move {
            Calendar::create(self, title, start, minutes)
                .await
                .map_err(SourceError::of)
        })
    }

    fn free_busy(
        &self,
        from: DateTime<FixedOffset>,
        to: DateTime<FixedOffset>,
    ) -> BoxFuture<'_, Result<Vec<(String, String)>, SourceError>> {
        Box::pin(async move {
            Calendar::free_busy(self, from, to)
                .await
                .map_err(SourceError::of)
        })
    }
}

fn agenda(all: &Integrations) -> Box<dyn CalendarSource + '_> {
    Box::new(Calendar::new(all))
}

/// Midnight to midnight of `day` in the machine's time zone (a day of 23 or 25 hours across a
/// daylight-saving change).
pub fn day_bounds(day: NaiveDate) -> (DateTime<FixedOffset>, DateTime<FixedOffset>) {
    let at = |d: NaiveDate| {
        let midnight = d.and_hms_opt(0, 0, 0).unwrap_or_default();
        Local
            .from_local_datetime(&midnight)
            .earliest()
            .unwrap_or_else(|| Local.from_utc_datetime(&midnight))
            .fixed_offset()
    };
    (at(day), at(day.succ_opt().unwrap_or(day)))
}

/// Reads Calendar's event resource.
pub fn parse_event(v: &Value) -> CalEvent {
    let all_day = v["start"]["dateTime"].is_null() && v["start"]["date"].is_string();
    let field = |side: &str| {
        v[side]["dateTime"]
            .as_str()
            .or_else(|| v[side]["date"].as_str())
            .unwrap_or("")
            .to_owned()
    };
    let start = field("start");
    let local_day = if all_day {
        NaiveDate::parse_from_str(&start, "%Y-%m-%d").ok()
    } else {
        DateTime::parse_from_rfc3339(&start)
            .ok()
            .map(|t| t.with_timezone(&Local).date_naive())
    };
    let day = local_day.map(spoken_day).unwrap_or_default();
    let time = if all_day {
        String::new()
    } else {
        DateTime::parse_from_rfc3339(&start)
            .map(|t| spoken_time(&t.with_timezone(&Local)))
            .unwrap_or_default()
    };
    CalEvent {
        id: v["id"].as_str().unwrap_or("").to_owned(),
        summary: v["summary"]
            .as_str()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or("(no title)")
            .to_owned(),
        start,
        end: field("end"),
        all_day,
        time,
        day,
        location: v["location"].as_str().map(str::to_owned),
        account: PROVIDER_NAME.to_owned(),
        via: None,
    }
}

/// `today`, `tomorrow`, else `Monday 7 December`.
pub fn spoken_day(d: NaiveDate) -> String {
    let today = Local::now().date_naive();
    if d == today {
        "today".into()
    } else if Some(d) == today.succ_opt() {
        "tomorrow".into()
    } else {
        d.format("%A %-d %B").to_string()
    }
}

/// `9:30 AM`, `12 PM`.
pub fn spoken_time<T: TimeZone>(t: &DateTime<T>) -> String
where
    T::Offset: std::fmt::Display,
{
    use chrono::Timelike;
    let (pm, h) = t.hour12();
    let suffix = if pm { "PM" } else { "AM" };
    if t.minute() == 0 {
        format!("{h} {suffix}")
    } else {
        format!("{h}:{:02} {suffix}", t.minute())
    }
}

/// A start from voice slots: `day` (`today`, `tomorrow`, a weekday name, or `yyyy-mm-dd`) and
/// `time` (`noon`, `midnight`, `9`, `9:30`, `9am`, `3:15 pm`, `15:00`), in local time after
/// `now`.
pub fn start_from_slots(
    day: &str,
    time: &str,
    now: DateTime<Local>,
) -> Result<DateTime<FixedOffset>, CalendarError> {
    let today = now.date_naive();
    let day = day.trim().to_ascii_lowercase();
    let date = match day.as_str() {
        "" | "today" => today,
        "tomorrow" => today.succ_opt().unwrap_or(today),
        d => match weekday(d) {
            Some(w) => {
                use chrono::Datelike;
                let ahead = (7 + w.num_days_from_monday() as i64
                    - today.weekday().num_days_from_monday() as i64)
                    % 7;
                today + Span::days(if ahead == 0 { 7 } else { ahead })
            }
            None => NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
                CalendarError::Input(format!(
                    "`{d}` is not a day: say today, tomorrow, a weekday or a date like 2026-12-24"
                ))
            })?,
        },
    };
    let (h, m) = clock(time)?;
    let naive = date
        .and_hms_opt(h, m, 0)
        .ok_or_else(|| CalendarError::Input(format!("`{time}` is not a time of day")))?;
    Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.fixed_offset())
        .ok_or_else(|| {
            CalendarError::Input(format!("{naive} does not exist here (a clock change)"))
        })
}

fn weekday(d: &str) -> Option<chrono::Weekday> {
    use chrono::Weekday::*;
    let name = d.trim_start_matches("next ").trim_start_matches("on ");
    [
        ("monday", Mon),
        ("tuesday", Tue),
        ("wednesday", Wed),
        ("thursday", Thu),
        ("friday", Fri),
        ("saturday", Sat),
        ("sunday", Sun),
    ]
    .iter()
    .find(|(n, _)| *n == name)
    .map(|(_, w)| *w)
}

fn clock(time: &str) -> Result<(u32, u32), CalendarError> {
    let t = time.trim().to_ascii_lowercase().replace('.', "");
    let bad = || {
        CalendarError::Input(format!(
            "`{time}` is not a time: say noon, 9, 9:30, 3 pm or 15:00"
        ))
    };
    match t.as_str() {
        "noon" | "midday" => return Ok((12, 0)),
        "midnight" => return Ok((0, 0)),
        _ => {}
    }
    let (digits, pm) = if let Some(x) = t.strip_suffix("pm") {
        (x.trim(), Some(true))
    } else if let Some(x) = t.strip_suffix("am") {
        (x.trim(), Some(false))
    } else {
        (t.as_str(), None)
    };
    let (h, m) = match digits.split_once(':') {
        Some((h, m)) => (
            h.parse::<u32>().map_err(|_| bad())?,
            m.parse::<u32>().map_err(|_| bad())?,
        ),
        None => (digits.parse::<u32>().map_err(|_| bad())?, 0),
    };
    if m > 59 {
        return Err(bad());
    }
    let h = match pm {
        Some(true) if (1..=12).contains(&h) => h % 12 + 12,
        Some(false) if (1..=12).contains(&h) => h % 12,
        Some(_) => return Err(bad()),
        // A bare 1..7 is afternoon in speech ("at 3"), 8..23 as said.
        None if (1..=7).contains(&h) => h + 12,
        None if h <= 23 => h,
        None => return Err(bad()),
    };
    Ok((h, m))
}

/// Google Calendar's declaration in the registry.
pub const SPEC: super::Spec = super::google(
    "calendar",
    "Google Calendar",
    &[
        "https://www.googleapis.com/auth/calendar.events",
        "https://www.googleapis.com/auth/calendar.freebusy",
    ],
    "https://www.googleapis.com/calendar/v3",
    "/users/me/calendarList?maxResults=1",
    None,
    Some(agenda),
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voice_slots_become_a_local_start() {
        let now = Local.with_ymd_and_hms(2026, 12, 4, 9, 0, 0).unwrap(); // a Friday
        let at =
            |d: &str, t: &str| start_from_slots(d, t, now).map(|s| s.naive_local().to_string());
        assert_eq!(at("tomorrow", "noon").unwrap(), "2026-12-05 12:00:00");
        assert_eq!(at("today", "3:15 pm").unwrap(), "2026-12-04 15:15:00");
        assert_eq!(at("monday", "9am").unwrap(), "2026-12-07 09:00:00");
        assert_eq!(at("friday", "9").unwrap(), "2026-12-11 09:00:00");
        assert_eq!(at("", "3").unwrap(), "2026-12-04 15:00:00");
        assert_eq!(at("2026-12-24", "18:30").unwrap(), "2026-12-24 18:30:00");
        assert!(
            at("someday", "noon")
                .unwrap_err()
                .to_string()
                .contains("not a day")
        );
        assert!(
            at("today", "25:00")
                .unwrap_err()
                .to_string()
                .contains("not a time")
        );
        assert!(at("today", "13 pm").is_err());
    }

    #[test]
    fn all_day_and_timed_events_are_read() {
        let all_day = parse_event(
            &json!({"id": "a", "summary": "Holiday", "start": {"date": "2026-12-25"}, "end": {"date": "2026-12-26"}}),
        );
        assert!(all_day.all_day);
        assert_eq!(
            (all_day.start.as_str(), all_day.time.as_str()),
            ("2026-12-25", "")
        );
        let timed = parse_event(
            &json!({"id": "b", "start": {"dateTime": "2026-12-04T09:30:00Z"}, "end": {"dateTime": "2026-12-04T10:00:00Z"}}),
        );
        assert!(!timed.all_day);
        assert_eq!(timed.summary, "(no title)");
        assert!(
            timed.time.ends_with("AM") || timed.time.ends_with("PM"),
            "{}",
            timed.time
        );
    }
}
