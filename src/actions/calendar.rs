//! The `calendar` kind: the calendars of every connected account (Google Calendar, Outlook),
//! merged in time order, its operation chosen by `op`: `today`
//! (today's events in local time, all-day ones marked, and the first timed one), `next` (the
//! next meeting within a week), `create` (from voice slots: `title`, `day`, `time`, `minutes`),
//! `free_busy` (busy periods in the next `hours`). Like `gmail`, it reaches the integrations
//! through [`super::Accounts`].

use serde::Deserialize;
use serde_json::Value;

use super::{ActionCtx, ActionError, ActionKind, LeafKind};
use crate::spec::Problem;
use crate::template::Tmpl;

/// One Calendar operation, its template fields rendered.
#[derive(Debug, Clone, PartialEq)]
pub enum CalendarOp {
    /// Today's events, at most `limit`.
    Today {
        /// How many.
        limit: usize,
    },
    /// The next timed event.
    Next,
    /// A new event.
    Create {
        /// Its title.
        title: String,
        /// `today`, `tomorrow`, a weekday or `yyyy-mm-dd`.
        day: String,
        /// `noon`, `9:30`, `3 pm`, ...
        time: String,
        /// How long.
        minutes: i64,
        /// The calendar's account (`calendar`, `microsoft`; default: the first connected).
        account: Option<String>,
    },
    /// Busy periods in the next `hours`.
    FreeBusy {
        /// How far ahead.
        hours: i64,
    },
}

/// Which operation.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// See [`CalendarOp::Today`].
    Today,
    /// See [`CalendarOp::Next`].
    Next,
    /// See [`CalendarOp::Create`].
    Create,
    /// See [`CalendarOp::FreeBusy`].
    FreeBusy,
}

/// Config of a `calendar` action.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarConfig {
    /// The operation.
    pub op: Op,
    /// `today`: how many events (default 10, at most 50).
    #[serde(default)]
    pub limit: Option<usize>,
    /// `create`: the title.
    #[serde(default)]
    pub title: Option<Tmpl>,
    /// `create`: the day.
    #[serde(default)]
    pub day: Option<Tmpl>,
    /// `create`: the time.
    #[serde(default)]
    pub time: Option<Tmpl>,
    /// `create`: minutes (default 60).
    #[serde(default)]
    pub minutes: Option<i64>,
    /// `free_busy`: hours ahead (default 8, at most 168).
    #[serde(default)]
    pub hours: Option<i64>,
    /// `create`: the account whose calendar gets it (`calendar`, `microsoft`).
    #[serde(default)]
    pub account: Option<Tmpl>,
}

/// The `calendar` kind.
pub struct Calendar;

impl ActionKind for Calendar {
    const NAME: &'static str = "calendar";
    const DOC: &'static str =
        "Calendars of every connected account (Google, Outlook): today, next, create, free_busy.";
    type Config = CalendarConfig;

    fn check(c: &CalendarConfig) -> Vec<Problem> {
        let mut problems = Vec::new();
        if c.op == Op::Create {
            for (field, present) in [("title", c.title.is_some()), ("time", c.time.is_some())] {
                if !present {
                    problems.push(Problem::new(field, "creating an event needs it"));
                }
            }
        }
        if c.limit.is_some_and(|l| l == 0 || l > 50) {
            problems.push(Problem::new("limit", "between 1 and 50"));
        }
        if c.minutes.is_some_and(|m| !(1..=1440).contains(&m)) {
            problems.push(Problem::new("minutes", "between 1 and 1440"));
        }
        if c.hours.is_some_and(|h| !(1..=168).contains(&h)) {
            problems.push(Problem::new("hours", "between 1 and 168"));
        }
        problems
    }
}

impl LeafKind for Calendar {
    async fn execute(c: &CalendarConfig, ctx: &ActionCtx<'_>) -> Result<Value, ActionError> {
        let render = |t: &Option<Tmpl>| -> Result<String, ActionError> {
            Ok(match t {
                Some(t) => t.render(ctx.scope)?,
                None => String::new(),
            })
        };
        let op = match c.op {
            Op::Today => CalendarOp::Today {
                limit: c.limit.unwrap_or(10).clamp(1, 50),
            },
            Op::Next => CalendarOp::Next,
            Op::Create => CalendarOp::Create {
                title: render(&c.title)?,
                day: render(&c.day)?,
                time: render(&c.time)?,
                minutes: c.minutes.unwrap_or(60),
                account: Some(render(&c.account)?).filter(|a| !a.trim().is_empty()),
            },
            Op::FreeBusy => CalendarOp::FreeBusy {
                hours: c.hours.unwrap_or(8),
            },
        };
        let Some(accounts) = &ctx.services.accounts else {
            return Err(ActionError::Integration(
                "no integrations here (run it with `atlas workflow run` or in the daemon)".into(),
            ));
        };
        accounts
            .calendar(op)
            .await
            .map_err(ActionError::Integration)
    }
}
