//! The meeting-reminder trigger's source: polls every connected calendar (Google, Outlook: the
//! [`super::agenda::CalendarSource`]s; the next `lead` minutes) and publishes one `calendar.soon`
//! event per timed event about to start, with `id`, `summary`, `start`, `time` (as spoken),
//! `minutes` (until it starts), `location`, `account` and `via` (the calendar's name when there
//! are two) as its data. A calendar that fails is logged; the others are still announced.
//!
//! **Invariant**: an event is announced once per start time, across restarts too: the announced
//! `(id, start)` pairs are kept in `integrations/calendar-watch.json` (a moved meeting is announced
//! again at its new time); pairs a day past their start are dropped.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Local};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::agenda::CalendarSource;
use super::calendar::CalendarError;
use super::{Integrations, PROVIDERS};
use crate::triggers::events::{Event, EventHub};

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct WatchState {
    /// `(event id, start)` already announced.
    announced: Vec<(String, String)>,
}

/// The meeting watcher of one data dir.
pub struct CalendarWatch {
    all: Arc<Integrations>,
    hub: EventHub,
    file: PathBuf,
    lead: chrono::Duration,
}

impl CalendarWatch {
    /// Announces events starting within `lead_minutes`, publishing on `hub`.
    pub fn new(
        all: Arc<Integrations>,
        hub: EventHub,
        data_dir: &Path,
        lead_minutes: i64,
    ) -> CalendarWatch {
        CalendarWatch {
            all,
            hub,
            file: data_dir.join("integrations/calendar-watch.json"),
            lead: chrono::Duration::minutes(lead_minutes.clamp(1, 24 * 60)),
        }
    }

    fn load(&self) -> WatchState {
        std::fs::read(&self.file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn save(&self, s: &WatchState) {
        let tmp = self.file.with_extension("json.tmp");
        let written = self
            .file
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&tmp, serde_json::to_vec(s).unwrap_or_default()))
            .and_then(|()| std::fs::rename(&tmp, &self.file));
        if let Err(e) = written {
            tracing::warn!(file = %self.file.display(), error = %e, "cannot record the calendar watch state");
        }
    }

    /// One poll at `now`: the number of `calendar.soon` events published. Nothing happens while
    /// the calendar is not connected.
    pub async fn poll_at(&self, now: DateTime<Local>) -> Result<usize, CalendarError> {
        let cals: Vec<Box<dyn CalendarSource + '_>> = PROVIDERS
            .iter()
            .filter(|p| self.all.is_connected(**p))
            .filter_map(|p| p.spec().calendar.map(|make| make(&self.all)))
            .collect();
        if cals.is_empty() {
            return Ok(0);
        }
        let now = now.fixed_offset();
        let several = cals.len() > 1;
        let mut events = Vec::new();
        for c in &cals {
            match c.range(now, now + self.lead, 50).await {
                Ok(es) => events.extend(es.into_iter().map(|e| (c.as_ref(), e))),
                Err(e) if cals.len() == 1 => return Err(CalendarError::Input(e.0)),
                Err(e) => {
                    tracing::warn!(integration = c.provider().name(), error = %e, "calendar poll failed");
                }
            }
        }
        let mut state = self.load();
        state.announced.retain(|(_, start)| {
            DateTime::parse_from_rfc3339(start).is_ok_and(|s| s + chrono::Duration::days(1) > now)
        });
        let mut published = 0;
        for (cal, e) in events {
            let Ok(start) = DateTime::parse_from_rfc3339(&e.start) else {
                continue;
            };
            // Timed events that have not started yet; all-day ones are no meetings.
            if e.all_day || start < now {
                continue;
            }
            // Google's ids as before; another calendar's qualified by its account.
            let account = cal.provider().name();
            let id = if account == "calendar" {
                e.id.clone()
            } else {
                format!("{account}:{}", e.id)
            };
            let key = (id, e.start.clone());
            if state.announced.contains(&key) {
                continue;
            }
            let minutes = ((start - now).num_seconds() + 59) / 60;
            self.hub.publish(Event::new(
                account,
                "calendar.soon",
                json!({
                    "id": e.id, "summary": e.summary, "start": e.start, "time": e.time,
                    "minutes": minutes, "location": e.location, "account": account,
                    "via": several.then(|| cal.label()),
                }),
            ));
            published += 1;
            state.announced.push(key);
            self.save(&state);
        }
        self.save(&state);
        Ok(published)
    }

    /// Polls every `every` until `shutdown`; a failed poll is logged and tried again next time.
    pub async fn run(self, every: Duration, shutdown: CancellationToken) {
        loop {
            if let Err(e) = self.poll_at(Local::now()).await {
                tracing::warn!(error = %e, "calendar poll failed");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
}
