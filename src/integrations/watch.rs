//! The polling triggers on one loop: a [`Poller`] looks at its provider (new GitHub
//! notifications, Discord mentions, Notion database items, Binance prices crossing a threshold)
//! and returns the events to publish; [`Watch`] keeps its state in
//! `integrations/NAME-watch.json` across restarts, polls every `poll_secs`, and publishes on the
//! event hub, where `event` triggers pick them up.
//!
//! **Invariant**: nothing is announced twice, across restarts too: the state is written before
//! the events are published (a crash between the two loses them rather than repeating them),
//! and the first poll of a new watch only records where things stand. A poll that fails is
//! logged and tried again at the next interval; a provider that is not connected is not asked.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use super::services::ServiceError;
use super::{Integrations, Provider};
use crate::triggers::events::{Event, EventHub};

/// One polling trigger's source.
pub trait Poller: Send + Sync + 'static {
    /// What it remembers between polls.
    type State: Serialize + DeserializeOwned + Default + Send + Sync;
    /// Its name (the state file is `NAME-watch.json`).
    const NAME: &'static str;
    /// The integration it asks.
    const PROVIDER: Provider;
    /// Whether it needs the integration connected (Binance prices are public).
    const NEEDS_ACCOUNT: bool = true;

    /// Looks once; `first` when there is no state yet (record, announce nothing).
    fn poll<'a>(
        &'a self,
        all: &'a Integrations,
        state: &'a mut Self::State,
        first: bool,
    ) -> impl Future<Output = Result<Vec<Event>, ServiceError>> + Send + 'a;
}

/// A poller with its state file and hub.
pub struct Watch<P: Poller> {
    all: Arc<Integrations>,
    hub: EventHub,
    file: PathBuf,
    poller: P,
}

impl<P: Poller> Watch<P> {
    /// `poller` over `all`, publishing on `hub`, its state under `data_dir/integrations`.
    pub fn new(poller: P, all: Arc<Integrations>, hub: EventHub, data_dir: &Path) -> Watch<P> {
        Watch {
            all,
            hub,
            file: data_dir.join(format!("integrations/{}-watch.json", P::NAME)),
            poller,
        }
    }

    fn load(&self) -> Option<P::State> {
        serde_json::from_slice(&std::fs::read(&self.file).ok()?).ok()
    }

    fn save(&self, s: &P::State) -> Result<(), std::io::Error> {
        let tmp = self.file.with_extension("json.tmp");
        if let Some(dir) = self.file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&tmp, serde_json::to_vec(s).unwrap_or_default())?;
        std::fs::rename(&tmp, &self.file)
    }

    /// One poll: the number of events published.
    pub async fn poll(&self) -> Result<usize, ServiceError> {
        if P::NEEDS_ACCOUNT && !self.all.is_connected(P::PROVIDER) {
            return Ok(0);
        }
        let (mut state, first) = match self.load() {
            Some(s) => (s, false),
            None => (P::State::default(), true),
        };
        let events = self.poller.poll(&self.all, &mut state, first).await?;
        if let Err(e) = self.save(&state) {
            // Without its state a watch would announce again: announce nothing this time.
            tracing::warn!(watch = P::NAME, file = %self.file.display(), error = %e, "cannot record the watch state; not announcing");
            return Ok(0);
        }
        let n = events.len();
        for e in events {
            self.hub.publish(e);
        }
        Ok(n)
    }

    /// Polls every `every` until `shutdown`.
    pub async fn run(self, every: Duration, shutdown: CancellationToken) {
        loop {
            if let Err(e) = self.poll().await {
                tracing::warn!(watch = P::NAME, error = %e, "poll failed");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
}
