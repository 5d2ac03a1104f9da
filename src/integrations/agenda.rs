//! Calendars as a capability: [`CalendarSource`] is what an account with a calendar does (events
//! of a time range, the next meeting, create an event, free/busy), implemented by Google
//! Calendar ([`super::calendar`]) and Outlook ([`super::outlook_calendar`]); a provider offers
//! it through [`super::Spec::calendar`]. The `calendar` action's operations ([`run`]) go to every
//! calendar account that is connected (chosen as for mail: [`super::mail::sources`]): events are
//! merged in time order, free/busy periods joined, and when two accounts answer each event says
//! where it came from (`via`). `create` goes to the first connected calendar unless `account`
//! names one.

use chrono::{DateTime, FixedOffset, Local, NaiveDate, TimeZone};
use serde_json::{Value, json};

use super::calendar::{CalEvent, day_bounds, start_from_slots};
use super::mail::{SourceError, sources};
use super::{BoxFuture, Integrations, PROVIDERS, Provider};
use crate::actions::CalendarOp;

/// What an account with a calendar does.
pub trait CalendarSource: Send + Sync {
    /// The provider.
    fn provider(&self) -> Provider;
    /// Its name for people (`Google Calendar`, `Outlook`).
    fn label(&self) -> &'static str;
    /// Events overlapping `[from, to)`, in start order, at most `limit`.
    fn range(
        &self,
        from: DateTime<FixedOffset>,
        to: DateTime<FixedOffset>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<CalEvent>, SourceError>>;
    /// Creates `title` at `start` for `minutes`.
    fn create<'a>(
        &'a self,
        title: &'a str,
        start: DateTime<FixedOffset>,
        minutes: i64,
    ) -> BoxFuture<'a, Result<CalEvent, SourceError>>;
    /// Busy periods in `[from, to)`, as RFC 3339 `(start, end)` pairs.
    fn free_busy(
        &self,
        from: DateTime<FixedOffset>,
        to: DateTime<FixedOffset>,
    ) -> BoxFuture<'_, Result<Vec<(String, String)>, SourceError>>;
    /// The next timed event starting after now, within a week.
    fn next(&self) -> BoxFuture<'_, Result<Option<CalEvent>, SourceError>> {
        Box::pin(async move {
            let now = Local::now().fixed_offset();
            let events = self.range(now, now + chrono::Duration::days(7), 50).await?;
            Ok(next_of(events, now))
        })
    }
}

/// A provider's calendar capability: its [`CalendarSource`] over the integrations.
pub type CalendarFn = for<'a> fn(&'a Integrations) -> Box<dyn CalendarSource + 'a>;

/// The calendars to ask (see [`sources`]).
pub fn calendars(all: &Integrations) -> Vec<Box<dyn CalendarSource + '_>> {
    sources(all, |s| s.calendar.is_some())
        .into_iter()
        .filter_map(|p| p.spec().calendar.map(|make| make(all)))
        .collect()
}

/// The first timed event of `events` starting at or after `now`.
pub fn next_of(events: Vec<CalEvent>, now: DateTime<FixedOffset>) -> Option<CalEvent> {
    events
        .into_iter()
        .find(|e| !e.all_day && DateTime::parse_from_rfc3339(&e.start).is_ok_and(|s| s >= now))
}

/// When `e` starts, as a Unix time (an all-day event at local midnight of its day).
pub fn start_key(e: &CalEvent) -> i64 {
    if let Ok(t) = DateTime::parse_from_rfc3339(&e.start) {
        return t.timestamp();
    }
    NaiveDate::parse_from_str(&e.start, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|t| Local.from_local_datetime(&t).earliest())
        .map_or(i64::MAX, |t| t.timestamp())
}

/// Asks every calendar with `ask`: the events merged in time order with their source, and what
/// the failed ones said (all failing: the first error).
pub async fn merged<'a, F>(
    cals: &'a [Box<dyn CalendarSource + 'a>],
    ask: F,
) -> Result<(Vec<CalEvent>, Vec<Value>), SourceError>
where
    F: Fn(&'a dyn CalendarSource) -> BoxFuture<'a, Result<Vec<CalEvent>, SourceError>>,
{
    let results = futures::future::join_all(cals.iter().map(|c| ask(c.as_ref()))).await;
    let several = cals.len() > 1;
    let mut events = Vec::new();
    let mut skipped = Vec::new();
    let mut first = None;
    for (c, r) in cals.iter().zip(results) {
        match r {
            Ok(es) => events.extend(es.into_iter().map(|e| mark(e, c.as_ref(), several))),
            Err(e) => {
                skipped.push(
                    json!({ "account": c.provider().name(), "via": c.label(), "error": e.0 }),
                );
                first.get_or_insert(e);
            }
        }
    }
    if events.is_empty()
        && skipped.len() == cals.len()
        && let Some(e) = first
    {
        return Err(e);
    }
    events.sort_by_key(start_key);
    Ok((events, skipped))
}

fn mark(mut e: CalEvent, src: &dyn CalendarSource, several: bool) -> CalEvent {
    e.account = src.provider().name().to_owned();
    e.via = several.then(|| src.label().to_owned());
    e
}

/// Carries out one `calendar` operation over the connected calendars; see the module docs.
pub async fn run(all: &Integrations, op: CalendarOp) -> Result<Value, SourceError> {
    let cals = calendars(all);
    let several = cals.len() > 1;
    Ok(match op {
        CalendarOp::Today { limit } => {
            let (from, to) = day_bounds(Local::now().date_naive());
            let (mut events, skipped) = merged(&cals, |c| c.range(from, to, limit)).await?;
            events.truncate(limit);
            let first = events.iter().find(|e| !e.all_day).cloned();
            json!({ "count": events.len(), "events": events, "first": first, "several": several, "skipped": skipped })
        }
        CalendarOp::Next => {
            let now = Local::now().fixed_offset();
            let (events, skipped) = merged(&cals, |c| {
                Box::pin(async move { Ok(c.next().await?.into_iter().collect()) })
            })
            .await?;
            json!({ "next": next_of(events, now), "skipped": skipped })
        }
        CalendarOp::Create {
            title,
            day,
            time,
            minutes,
            account,
        } => {
            let start = start_from_slots(&day, &time, Local::now()).map_err(SourceError::of)?;
            let cal = match account.as_deref().filter(|a| !a.is_empty()) {
                Some(a) => {
                    let p = Provider::parse(a).map_err(SourceError::of)?;
                    let make = p.spec().calendar.ok_or_else(|| {
                        SourceError(format!("{a} has no calendar: use {}", calendar_names()))
                    })?;
                    make(all)
                }
                None => cals
                    .into_iter()
                    .next()
                    .ok_or_else(|| SourceError("no calendar is connected".into()))?,
            };
            let made = cal.create(&title, start, minutes).await?;
            json!(mark(made, cal.as_ref(), several))
        }
        CalendarOp::FreeBusy { hours } => {
            let now = Local::now().fixed_offset();
            let to = now + chrono::Duration::hours(hours);
            let results =
                futures::future::join_all(cals.iter().map(|c| c.free_busy(now, to))).await;
            let mut busy: Vec<(String, String)> = Vec::new();
            let mut first = None;
            let mut answered = 0;
            for r in results {
                match r {
                    Ok(b) => {
                        answered += 1;
                        busy.extend(b);
                    }
                    Err(e) => {
                        first.get_or_insert(e);
                    }
                }
            }
            if answered == 0
                && let Some(e) = first
            {
                return Err(e);
            }
            busy.sort_by_key(|(s, _)| {
                DateTime::parse_from_rfc3339(s).map_or(i64::MAX, |t| t.timestamp())
            });
            let busy: Vec<Value> = busy
                .into_iter()
                .map(|(s, e)| json!({ "start": s, "end": e }))
                .collect();
            json!({ "busy": busy, "free": busy.is_empty() })
        }
    })
}

/// The providers with a calendar, for messages.
pub fn calendar_names() -> String {
    PROVIDERS
        .iter()
        .filter(|p| p.spec().calendar.is_some())
        .map(|p| p.name())
        .collect::<Vec<_>>()
        .join(" or ")
}
