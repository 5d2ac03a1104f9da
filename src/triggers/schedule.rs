//! Cron schedules: fires `schedule` triggers on time, in their time zone, and deals with runs
//! missed while Atlas was not running or the machine slept.
//!
//! One task owns the scheduler. It sleeps until the earliest due time (on the monotonic clock, so
//! lateness is a timer's, a few milliseconds), fires every schedule that is due, records the fire in
//! the store (`schedule_state`), and goes back to sleep. It never sleeps longer than
//! [`MAX_NAP`]; on each wake it compares how far the wall clock moved with how far the monotonic
//! clock did, and a difference (suspend, clock change) is handled like a restart: each schedule
//! that missed a due time fires once (`missed: run_once`, the default) or not (`missed: skip`).
//! Next times come from the `cron` crate evaluated in the schedule's zone, which is what makes
//! them correct across daylight-saving changes (a 02:30 that does not exist is skipped that day,
//! one that happens twice fires once).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Local, TimeZone, Utc};
use serde::Serialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::engine::{Engine, RunRequest, TriggerEvent};
use crate::store::{Op, RunStatus, now_ms};
use crate::workflow::{MissedPolicy, Schedule, Workflow};

/// Longest sleep between checks of the wall clock.
pub const MAX_NAP: Duration = Duration::from_secs(5);

/// Tolerated disagreement between wall and monotonic clocks before a wake counts as a jump.
const JUMP: chrono::TimeDelta = chrono::TimeDelta::seconds(3);

/// The first time after `after` at which `s` fires, in UTC.
pub fn next_fire(s: &Schedule, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    fn next<Z: TimeZone>(s: &Schedule, after: DateTime<Z>) -> Option<DateTime<Utc>> {
        s.cron.after(&after).next().map(|t| t.with_timezone(&Utc))
    }
    match s.timezone {
        Some(tz) => next(s, after.with_timezone(&tz)),
        None => next(s, after.with_timezone(&Local)),
    }
}

/// A coming scheduled run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Upcoming {
    /// Workflow id.
    pub workflow_id: String,
    /// Workflow name.
    pub name: String,
    /// When, in UTC.
    pub at: DateTime<Utc>,
}

/// The wall clock the scheduler reads (tests move it to simulate a wake from sleep).
pub type WallClock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// How long a workflow that keeps failing on schedule stays quiet after its failure notification
/// (an alert every 15 minutes while the network is down would be a notification every 15 minutes).
pub const NOTIFY_QUIET: Duration = Duration::from_secs(3600);

/// Decides which scheduled failures get a desktop notification: a workflow's first failure after
/// a success (or since start), and then again only once [`NOTIFY_QUIET`] has passed.
#[derive(Debug, Default)]
pub struct FailureNotices {
    /// Per workflow: when it was last notified, while it keeps failing.
    failing: std::collections::HashMap<String, std::time::Instant>,
}

impl FailureNotices {
    /// Records a scheduled run's end; true when its failure should be shown.
    pub fn should_notify(&mut self, workflow: &str, failed: bool, now: std::time::Instant) -> bool {
        if !failed {
            self.failing.remove(workflow);
            return false;
        }
        match self.failing.get(workflow) {
            Some(&last) if now.duration_since(last) < NOTIFY_QUIET => false,
            _ => {
                self.failing.insert(workflow.to_owned(), now);
                true
            }
        }
    }
}

/// The scheduler over an engine's workflows.
#[derive(Clone)]
pub struct Scheduler {
    engine: Engine,
    notify_failures: bool,
    notices: Arc<std::sync::Mutex<FailureNotices>>,
    clock: WallClock,
}

impl Scheduler {
    /// A scheduler; `notify_failures` shows a desktop notification when a scheduled run fails.
    pub fn new(engine: Engine, notify_failures: bool) -> Scheduler {
        Scheduler::with_clock(engine, notify_failures, Arc::new(Utc::now))
    }

    /// A scheduler reading the wall clock from `clock`.
    pub fn with_clock(engine: Engine, notify_failures: bool, clock: WallClock) -> Scheduler {
        Scheduler {
            engine,
            notify_failures,
            notices: Default::default(),
            clock,
        }
    }

    fn schedules(&self) -> Vec<(Arc<Workflow>, Schedule)> {
        self.engine
            .workflows()
            .values()
            .filter(|w| w.def.enabled)
            .flat_map(|w| w.schedules.iter().map(move |s| (w.clone(), s.clone())))
            .collect()
    }

    /// The next `n` scheduled runs.
    pub fn upcoming(&self, n: usize) -> Vec<Upcoming> {
        let now = (self.clock)();
        let mut all: Vec<Upcoming> = self
            .schedules()
            .into_iter()
            .filter_map(|(w, s)| {
                Some(Upcoming {
                    workflow_id: w.id().to_owned(),
                    name: w.name().to_owned(),
                    at: next_fire(&s, now)?,
                })
            })
            .collect();
        all.sort_by(|a, b| a.at.cmp(&b.at).then(a.workflow_id.cmp(&b.workflow_id)));
        all.truncate(n);
        all
    }

    /// Fires what was missed since each schedule was last seen (at start, or after a clock jump).
    /// Returns the ids of the workflows caught up.
    pub fn catch_up(&self, now: DateTime<Utc>) -> Vec<String> {
        let mut fired = Vec::new();
        for (wf, s) in self.schedules() {
            let seen = self
                .engine
                .store()
                .schedule_seen(wf.id(), s.trigger)
                .ok()
                .flatten()
                .and_then(|ms| Utc.timestamp_millis_opt(ms).single());
            if let Some(seen) = seen
                && let Some(due) = next_fire(&s, seen)
                && due <= now
            {
                match s.missed {
                    MissedPolicy::RunOnce => {
                        tracing::info!(workflow = wf.id(), missed = %due, "catching up a missed scheduled run");
                        self.fire(&wf, &s, due, true);
                        fired.push(wf.id().to_owned());
                    }
                    MissedPolicy::Skip => {
                        tracing::info!(workflow = wf.id(), missed = %due, "skipping a missed scheduled run (missed: skip)")
                    }
                }
            }
            self.seen(&wf, &s, now);
        }
        fired
    }

    fn seen(&self, wf: &Workflow, s: &Schedule, at: DateTime<Utc>) {
        self.engine.store().send(Op::ScheduleSeen {
            workflow_id: wf.id().to_owned(),
            trigger: s.trigger,
            at: at.timestamp_millis(),
        });
    }

    fn fire(&self, wf: &Arc<Workflow>, s: &Schedule, due: DateTime<Utc>, catch_up: bool) {
        let req = RunRequest {
            workflow_id: wf.id().to_owned(),
            trigger: TriggerEvent {
                kind: "schedule".into(),
                data: json!({
                    "scheduled_for": due.to_rfc3339(),
                    "fired_at_ms": now_ms(),
                    "cron": s.expr,
                    "catch_up": catch_up,
                }),
            },
            vars: Default::default(),
            parent_run: None,
            depth: 0,
        };
        match self.engine.trigger(req) {
            Ok(handle) => {
                let notify = self.notify_failures;
                let notices = self.notices.clone();
                let (id, name) = (wf.id().to_owned(), wf.name().to_owned());
                tokio::spawn(async move {
                    let out = handle.wait().await;
                    let failed = out.status == RunStatus::Failed;
                    let show = notices
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .should_notify(&id, failed, std::time::Instant::now());
                    if failed && !show {
                        tracing::info!(workflow = %id, "scheduled run failed again: notification held back (already shown within the hour)");
                    }
                    if show && notify {
                        let body = format!(
                            "{}\nDetails: atlas workflow show-run {}",
                            out.error.as_deref().unwrap_or("failed"),
                            out.run_id
                        );
                        let summary = format!("Scheduled run of {name} failed");
                        let _ = tokio::task::spawn_blocking(move || {
                            notify_rust::Notification::new()
                                .appname("Atlas")
                                .summary(&summary)
                                .body(&body)
                                .show()
                        })
                        .await;
                    }
                });
            }
            Err(e) => tracing::warn!(workflow = wf.id(), error = %e, "scheduled run refused"),
        }
    }

    /// Runs until `shutdown` fires: catches up, then fires each schedule when due.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut now = (self.clock)();
        self.catch_up(now);
        loop {
            let next = self
                .schedules()
                .into_iter()
                .filter_map(|(w, s)| Some((next_fire(&s, now)?, w, s)))
                .min_by_key(|(at, _, _)| *at);
            let wait = next
                .as_ref()
                .map(|(at, _, _)| (*at - (self.clock)()).to_std().unwrap_or(Duration::ZERO))
                .unwrap_or(MAX_NAP)
                .min(MAX_NAP);
            let slept_from = ((self.clock)(), tokio::time::Instant::now());
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => return,
            }
            let wall = (self.clock)();
            let mono = chrono::TimeDelta::from_std(slept_from.1.elapsed()).unwrap_or_default();
            let wall_moved = wall - slept_from.0;
            if (wall_moved - mono).abs() > JUMP {
                tracing::info!(
                    wall_moved_s = wall_moved.num_seconds(),
                    monotonic_s = mono.num_seconds(),
                    "clock jump or wake from sleep: checking missed schedules"
                );
                self.catch_up(wall);
                now = wall;
                continue;
            }
            // Fire everything whose due time lies in (now, wall].
            for (wf, s) in self.schedules() {
                if let Some(due) = next_fire(&s, now)
                    && due <= wall
                {
                    tracing::info!(workflow = wf.id(), due = %due, "schedule due");
                    self.fire(&wf, &s, due, false);
                    self.seen(&wf, &s, due);
                }
            }
            now = wall;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::load_str;

    fn schedule(cron: &str, tz: &str) -> Schedule {
        let src = format!(
            "id: s\ntriggers: [{{type: schedule, cron: '{cron}', timezone: {tz}}}]\nactions:\n  - {{id: a, type: log, config: {{message: x}}}}\n"
        );
        load_str(&src, std::path::Path::new("s.yaml"))
            .unwrap()
            .schedules[0]
            .clone()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_workflow_that_keeps_failing_is_notified_once_an_hour_and_again_after_a_success() {
        let mut n = FailureNotices::default();
        let t0 = std::time::Instant::now();
        let at = |mins: u64| t0 + Duration::from_secs(mins * 60);
        assert!(n.should_notify("alert", true, at(0)), "first failure");
        assert!(!n.should_notify("alert", true, at(15)), "still failing");
        assert!(
            n.should_notify("other", true, at(15)),
            "each workflow on its own"
        );
        assert!(n.should_notify("alert", true, at(61)), "an hour later");
        assert!(
            !n.should_notify("alert", false, at(62)),
            "a success shows nothing"
        );
        assert!(
            n.should_notify("alert", true, at(63)),
            "failing again after a success"
        );
    }

    #[test]
    fn weekday_mornings_in_the_schedules_zone() {
        let s = schedule("0 7 * * Mon-Fri", "America/New_York");
        // Friday 2026-11-27 13:00 UTC is 08:00 in New York: next is Monday 07:00 EST = 12:00 UTC.
        assert_eq!(
            next_fire(&s, utc("2026-11-27T13:00:00Z")),
            Some(utc("2026-11-30T12:00:00Z"))
        );
    }

    #[test]
    fn daylight_saving_changes_keep_local_time() {
        let s = schedule("0 7 * * *", "Europe/Paris");
        // Before the spring change 07:00 is 06:00 UTC, after it 05:00 UTC.
        assert_eq!(
            next_fire(&s, utc("2026-03-28T12:00:00Z")),
            Some(utc("2026-03-29T05:00:00Z"))
        );
        assert_eq!(
            next_fire(&s, utc("2026-03-27T12:00:00Z")),
            Some(utc("2026-03-28T06:00:00Z"))
        );
        // 02:30 does not exist on 2026-03-29 in Paris: that day is skipped, nothing panics.
        let s = schedule("30 2 * * *", "Europe/Paris");
        let next = next_fire(&s, utc("2026-03-28T12:00:00Z")).unwrap();
        assert_eq!(next, utc("2026-03-30T00:30:00Z"));
        // 02:30 happens twice on 2026-10-25: it fires once.
        let first = next_fire(&s, utc("2026-10-24T12:00:00Z")).unwrap();
        let second = next_fire(&s, first).unwrap();
        assert_eq!(first, utc("2026-10-25T00:30:00Z"));
        assert_eq!(second, utc("2026-10-26T01:30:00Z"));
    }
}
