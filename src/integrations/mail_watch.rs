//! The new-mail trigger's source: polls Gmail's history (`history.list` since the last history id,
//! 2 quota units a poll) and publishes one `mail.new` event per message added to the inbox, with
//! `id`, `thread_id`, `from`, `from_name`, `subject`, `snippet`, `unread`, `labels` as its data.
//! Workflows pick messages with an `event` trigger's `filter`, or with its `query` (Gmail's own
//! search syntax): the watcher asks Gmail which of the new messages each query of the loaded
//! workflows matches (one search a query, only in a poll that found new mail) and lists them in
//! the event's `queries`.
//!
//! **Invariant**: no message is announced twice, across restarts too: the history id and the ids
//! announced lately are kept in `integrations/gmail-watch.json`, written after each message. The
//! first poll (no file yet) only records where the mailbox is: old mail is not announced. A
//! history id Gmail no longer has (after about a week offline) restarts from now, with a warning.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::gmail::{Gmail, GmailError};
use super::{Integrations, Provider};
use crate::triggers::events::{Event, EventHub};

/// How many announced ids are remembered.
const SEEN_KEPT: usize = 500;

/// What the watcher remembers between polls and restarts.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
struct WatchState {
    history_id: String,
    seen: Vec<String>,
}

/// The Gmail queries of the loaded workflows' `mail.new` triggers, asked for at each poll.
pub type Queries = Arc<dyn Fn() -> Vec<String> + Send + Sync>;

/// How many of a query's newest results are compared with the new messages, beyond their count.
const QUERY_SLACK: usize = 20;

/// The new-mail watcher of one data dir.
pub struct MailWatch {
    all: Arc<Integrations>,
    hub: EventHub,
    file: PathBuf,
    queries: Queries,
}

impl MailWatch {
    /// Watches Gmail of `all`, publishing on `hub`, its state under `data_dir/integrations`.
    pub fn new(all: Arc<Integrations>, hub: EventHub, data_dir: &Path) -> MailWatch {
        MailWatch {
            all,
            hub,
            file: data_dir.join("integrations/gmail-watch.json"),
            queries: Arc::new(Vec::new),
        }
    }

    /// Checks new messages against the queries `queries` gives (the `query` of `mail.new`
    /// triggers).
    pub fn with_queries(mut self, queries: Queries) -> MailWatch {
        self.queries = queries;
        self
    }

    /// Which of `queries` each of the new messages `ids` matches, by Gmail's search: new mail
    /// is the newest, so it is among a query's first results when it matches.
    async fn matches(
        &self,
        gmail: &Gmail<'_>,
        ids: &[String],
    ) -> Result<Vec<Vec<String>>, GmailError> {
        let mut out = vec![Vec::new(); ids.len()];
        if ids.is_empty() {
            return Ok(out);
        }
        let mut queries = (self.queries)();
        queries.sort();
        queries.dedup();
        for q in queries {
            let found = gmail.search(&q, ids.len() + QUERY_SLACK).await?;
            for (i, id) in ids.iter().enumerate() {
                if found.contains(id) {
                    out[i].push(q.clone());
                }
            }
        }
        Ok(out)
    }

    fn load(&self) -> Option<WatchState> {
        serde_json::from_slice(&std::fs::read(&self.file).ok()?).ok()
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
            tracing::warn!(file = %self.file.display(), error = %e, "cannot record the Gmail watch state");
        }
    }

    /// One poll: the number of `mail.new` events published. Nothing happens while Gmail is not
    /// connected.
    pub async fn poll(&self) -> Result<usize, GmailError> {
        if !self.all.is_connected(Provider::Gmail) {
            return Ok(0);
        }
        let gmail = Gmail::new(&self.all);
        let Some(mut state) = self.load() else {
            let history_id = gmail.history_id().await?;
            self.save(&WatchState {
                history_id,
                seen: Vec::new(),
            });
            return Ok(0);
        };
        let history = match gmail.history_since(&state.history_id).await {
            Ok(h) => h,
            Err(GmailError::StaleHistory) => {
                tracing::warn!(since = %state.history_id, "Gmail no longer has this history: mail since then is not announced");
                state.history_id = gmail.history_id().await?;
                self.save(&state);
                return Ok(0);
            }
            Err(e) => return Err(e),
        };
        let mut fresh: Vec<super::gmail::Message> = Vec::new();
        for id in history.added {
            if state.seen.contains(&id) || fresh.iter().any(|m| m.id == id) {
                continue;
            }
            let m = match gmail.message(&id).await {
                Ok(m) => m,
                // Deleted between the history and now: nothing to announce.
                Err(GmailError::Call(super::IntegrationError::Api(e)))
                    if e.status() == Some(404) =>
                {
                    continue;
                }
                Err(e) => return Err(e),
            };
            fresh.push(m);
        }
        let ids: Vec<String> = fresh.iter().map(|m| m.id.clone()).collect();
        let matches = self.matches(&gmail, &ids).await?;
        let mut published = 0;
        for (m, queries) in fresh.into_iter().zip(matches) {
            self.hub.publish(Event::new(
                "gmail",
                "mail.new",
                json!({
                    "id": m.id, "thread_id": m.thread_id, "from": m.from, "from_name": m.from_name,
                    "subject": m.subject, "snippet": m.snippet, "unread": m.unread, "labels": m.labels,
                    "queries": queries,
                }),
            ));
            published += 1;
            state.seen.push(m.id);
            if state.seen.len() > SEEN_KEPT {
                state.seen.remove(0);
            }
            self.save(&state);
        }
        state.history_id = history.history_id;
        self.save(&state);
        Ok(published)
    }

    /// Polls every `every` until `shutdown`; a failed poll is logged and tried again next time.
    pub async fn run(self, every: Duration, shutdown: CancellationToken) {
        loop {
            if let Err(e) = self.poll().await {
                tracing::warn!(error = %e, "Gmail poll failed");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
}
