//! The new-mail trigger's source: polls Gmail's history (`history.list` since the last history id,
//! 2 quota units a poll) and publishes one `mail.new` event per message added to the inbox, with
//! `id`, `thread_id`, `from`, `from_name`, `subject`, `snippet`, `unread`, `labels` as its data.
//! Workflows pick messages with an `event` trigger's `filter`.
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

/// The new-mail watcher of one data dir.
pub struct MailWatch {
    all: Arc<Integrations>,
    hub: EventHub,
    file: PathBuf,
}

impl MailWatch {
    /// Watches Gmail of `all`, publishing on `hub`, its state under `data_dir/integrations`.
    pub fn new(all: Arc<Integrations>, hub: EventHub, data_dir: &Path) -> MailWatch {
        MailWatch {
            all,
            hub,
            file: data_dir.join("integrations/gmail-watch.json"),
        }
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
        let mut published = 0;
        for id in history.added {
            if state.seen.contains(&id) {
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
            self.hub.publish(Event::new(
                "gmail",
                "mail.new",
                json!({
                    "id": m.id, "thread_id": m.thread_id, "from": m.from, "from_name": m.from_name,
                    "subject": m.subject, "snippet": m.snippet, "unread": m.unread, "labels": m.labels,
                }),
            ));
            published += 1;
            state.seen.push(id);
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
