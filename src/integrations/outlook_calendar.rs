//! The Outlook calendar through Microsoft Graph, as a [`CalendarSource`]: `calendarView` for a
//! time range (expanded recurrences; `$orderby=start/dateTime`, `$top`, `@odata.nextLink`
//! followed), with the `Prefer: outlook.timezone` header so that Graph answers in the user's
//! zone ([`super::microsoft::zone`]); times come back as a wall-clock `dateTime` with its
//! `timeZone`, read here into RFC 3339. All-day events (`isAllDay`) become dates (end exclusive)
//! and never count as the next meeting; cancelled ones are left out. `create` posts an event
//! in the user's zone; free/busy is `getSchedule` of the signed-in user's own address
//! (`/me`, `mail` or `userPrincipalName`).

use chrono::{DateTime, FixedOffset, Local, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use serde_json::{Value, json};

use super::agenda::CalendarSource;
use super::api::Request;
use super::calendar::{CalEvent, MAX_EVENTS, spoken_day, spoken_time};
use super::mail::SourceError;
use super::microsoft::{GraphError, PROVIDER, call, pages, prefer_zone, url, zone};
use super::{BoxFuture, Integrations, Provider};

/// The Outlook calendar through `all`.
pub struct OutlookCalendar<'a> {
    all: &'a Integrations,
    tz: Tz,
}

impl<'a> OutlookCalendar<'a> {
    /// The client, in the user's time zone.
    pub fn new(all: &'a Integrations) -> OutlookCalendar<'a> {
        OutlookCalendar { all, tz: zone(all) }
    }

    /// Events overlapping `[from, to)`, in start order, at most `limit`.
    pub async fn between(
        &self,
        from: DateTime<FixedOffset>,
        to: DateTime<FixedOffset>,
        limit: usize,
    ) -> Result<Vec<CalEvent>, GraphError> {
        let limit = limit.clamp(1, MAX_EVENTS);
        let utc = |t: DateTime<FixedOffset>| {
            t.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        };
        let mut req = Request::get(url(self.all, "/me/calendarView"))
            .query("startDateTime", utc(from))
            .query("endDateTime", utc(to))
            .query("$orderby", "start/dateTime")
            .query("$top", limit.min(100).to_string())
            .query(
                "$select",
                "id,subject,start,end,isAllDay,isCancelled,location,showAs",
            );
        req.headers.push(prefer_zone(self.tz));
        let (items, _) = pages(self.all, req, |n| n >= limit).await?;
        let mut out: Vec<CalEvent> = items
            .iter()
            .filter(|v| v["isCancelled"] != Value::Bool(true))
            .map(|v| parse_event(v, self.tz))
            .collect();
        out.truncate(limit);
        Ok(out)
    }

    /// Creates `title` at `start` for `minutes`, in the user's zone.
    pub async fn create(
        &self,
        title: &str,
        start: DateTime<FixedOffset>,
        minutes: i64,
    ) -> Result<CalEvent, GraphError> {
        let title = title.trim();
        if title.is_empty() {
            return Err(GraphError::Input("an event needs a title".into()));
        }
        if !(1..=24 * 60).contains(&minutes) {
            return Err(GraphError::Input(
                "an event lasts between 1 minute and 24 hours".into(),
            ));
        }
        let end = start + chrono::Duration::minutes(minutes);
        let body = json!({
            "subject": title,
            "start": self.wall(start),
            "end": self.wall(end),
        });
        let mut req = Request::post(url(self.all, "/me/events"), body);
        req.headers.push(prefer_zone(self.tz));
        let v = call(self.all, &req).await?;
        Ok(parse_event(&v, self.tz))
    }

    /// Busy periods (busy, tentative, out of office, working elsewhere) in `[from, to)`.
    pub async fn free_busy(
        &self,
        from: DateTime<FixedOffset>,
        to: DateTime<FixedOffset>,
    ) -> Result<Vec<(String, String)>, GraphError> {
        let me = call(
            self.all,
            &Request::get(url(self.all, "/me")).query("$select", "mail,userPrincipalName"),
        )
        .await?;
        let address = me["mail"]
            .as_str()
            .or_else(|| me["userPrincipalName"].as_str())
            .ok_or(GraphError::Shape("mail"))?;
        let mut req = Request::post(
            url(self.all, "/me/calendar/getSchedule"),
            json!({
                "schedules": [address],
                "startTime": self.wall(from),
                "endTime": self.wall(to),
                "availabilityViewInterval": 30,
            }),
        );
        req.headers.push(prefer_zone(self.tz));
        let v = call(self.all, &req).await?;
        Ok(v["value"][0]["scheduleItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["status"] != "free")
            .filter_map(|i| {
                let s = instant(&i["start"], self.tz)?;
                let e = instant(&i["end"], self.tz)?;
                Some((s.to_rfc3339(), e.to_rfc3339()))
            })
            .collect())
    }

    /// Graph's `dateTimeTimeZone` of `t` in the user's zone.
    fn wall(&self, t: DateTime<FixedOffset>) -> Value {
        json!({
            "dateTime": t.with_timezone(&self.tz).naive_local().format("%Y-%m-%dT%H:%M:%S").to_string(),
            "timeZone": self.tz.name(),
        })
    }
}

/// A `dateTimeTimeZone` (`{"dateTime": "2026-12-07T09:00:00.0000000", "timeZone": "Europe/Paris"}`)
/// as an instant; a zone Atlas does not know is read as `tz`.
pub fn instant(v: &Value, tz: Tz) -> Option<DateTime<FixedOffset>> {
    let wall =
        NaiveDateTime::parse_from_str(v["dateTime"].as_str()?, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    let zone: Tz = v["timeZone"]
        .as_str()
        .and_then(|z| z.parse().ok())
        .unwrap_or(tz);
    zone.from_local_datetime(&wall)
        .earliest()
        .map(|t| t.fixed_offset())
}

/// Reads Graph's event resource.
pub fn parse_event(v: &Value, tz: Tz) -> CalEvent {
    let all_day = v["isAllDay"] == Value::Bool(true);
    let start = instant(&v["start"], tz);
    let end = instant(&v["end"], tz);
    let date = |t: Option<DateTime<FixedOffset>>| {
        t.map(|t| t.date_naive().format("%Y-%m-%d").to_string())
            .unwrap_or_default()
    };
    let (start_s, end_s) = if all_day {
        (date(start), date(end))
    } else {
        (
            start.map(|t| t.to_rfc3339()).unwrap_or_default(),
            end.map(|t| t.to_rfc3339()).unwrap_or_default(),
        )
    };
    let local = start.map(|t| t.with_timezone(&Local));
    CalEvent {
        id: v["id"].as_str().unwrap_or("").to_owned(),
        summary: v["subject"]
            .as_str()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or("(no title)")
            .to_owned(),
        start: start_s,
        end: end_s,
        all_day,
        time: match (all_day, &local) {
            (false, Some(t)) => spoken_time(t),
            _ => String::new(),
        },
        day: match (all_day, start) {
            (true, Some(t)) => spoken_day(t.date_naive()),
            (false, Some(_)) => local
                .map(|t| spoken_day(t.date_naive()))
                .unwrap_or_default(),
            _ => String::new(),
        },
        location: v["location"]["displayName"]
            .as_str()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned),
        account: PROVIDER.name().to_owned(),
        via: None,
    }
}

fn err(e: GraphError) -> SourceError {
    SourceError::of(e)
}

impl CalendarSource for OutlookCalendar<'_> {
    fn provider(&self) -> Provider {
        PROVIDER
    }

    fn label(&self) -> &'static str {
        "Outlook"
    }

    fn range(
        &self,
        from: DateTime<FixedOffset>,
        to: DateTime<FixedOffset>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<CalEvent>, SourceError>> {
        Box::pin(async move { self.between(from, to, limit).await.map_err(err) })
    }

    fn create<'a>(
        &'a self,
        title: &'a str,
        start: DateTime<FixedOffset>,
        minutes: i64,
    ) -> BoxFuture<'a, Result<CalEvent, SourceError>> {
        Box::pin(async move {
            OutlookCalendar::create(self, title, start, minutes)
                .await
                .map_err(err)
        })
    }

    fn free_busy(
        &self,
        from: DateTime<FixedOffset>,
        to: DateTime<FixedOffset>,
    ) -> BoxFuture<'_, Result<Vec<(String, String)>, SourceError>> {
        Box::pin(async move {
            OutlookCalendar::free_busy(self, from, to)
                .await
                .map_err(err)
        })
    }
}

/// Microsoft's calendar.
pub fn agenda(all: &Integrations) -> Box<dyn CalendarSource + '_> {
    Box::new(OutlookCalendar::new(all))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_clock_times_are_read_in_their_zone_and_all_day_events_become_dates() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let timed = json!({"id": "e1", "subject": "Standup", "isAllDay": false,
            "start": {"dateTime": "2026-12-07T09:30:00.0000000", "timeZone": "Europe/Paris"},
            "end": {"dateTime": "2026-12-07T09:45:00.0000000", "timeZone": "Europe/Paris"},
            "location": {"displayName": "Room 4"}});
        let e = parse_event(&timed, Tz::UTC);
        assert_eq!(e.start, "2026-12-07T09:30:00+01:00");
        assert_eq!(e.location.as_deref(), Some("Room 4"));
        assert!(!e.all_day);
        let all_day = json!({"id": "e2", "subject": "", "isAllDay": true,
            "start": {"dateTime": "2026-12-08T00:00:00.0000000", "timeZone": "Europe/Paris"},
            "end": {"dateTime": "2026-12-09T00:00:00.0000000", "timeZone": "Europe/Paris"}});
        let e = parse_event(&all_day, paris);
        assert_eq!(
            (e.start.as_str(), e.end.as_str()),
            ("2026-12-08", "2026-12-09")
        );
        assert!(e.all_day && e.time.is_empty());
        assert_eq!(e.summary, "(no title)");
        // A zone Graph names that Atlas does not know is read in the user's.
        let odd = json!({"dateTime": "2026-12-07T09:30:00", "timeZone": "W. Europe Standard Time"});
        assert_eq!(
            instant(&odd, paris).unwrap().to_rfc3339(),
            "2026-12-07T09:30:00+01:00"
        );
    }
}
