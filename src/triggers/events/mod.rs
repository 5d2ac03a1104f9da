//! `event` triggers: what starts a workflow when something happens.
//!
//! Events reach one dispatcher task ([`EventTriggers::start`]) from two places: the engine's
//! bus (a run finished or failed: chaining across workflows) and the [`EventHub`], where every
//! other source publishes a typed [`Event`] (a source name, a type, JSON data): the agent's
//! stage changes, integrations (`mail.new`, `calendar.soon`), the file watcher (`files`) and the
//! desktop's D-Bus signals (`system`). For each event the dispatcher starts every enabled
//! workflow with an `event` trigger of that type whose filter (a minijinja expression over
//! `event`, `source`, `data`) is true. Templates see `trigger.event`, `trigger.source`,
//! `trigger.data`, `trigger.chain` and `trigger.depth`.
//!
//! **Invariant**: an event caused by a run carries the causation chain (the workflows whose runs
//! led to it, through child runs too), and `guard` refuses a start beyond [`MAX_CHAIN`] or of a
//! workflow already in the chain (unless its trigger says `allow_loop: true`); a refusal is
//! logged and kept ([`EventTriggers::refusals`]). Events from the hub carry the chain their
//! publisher gives (none for the desktop, files and agent stages).
//!
//! **Invariant**: a loop Atlas cannot see is still bounded. A workflow that writes into the folder
//! whose `file.created` starts it, or that toggles what a D-Bus signal reports, causes events
//! with no chain; so every workflow may be started by events from sources other than the engine
//! at most `events.max_starts_per_minute` times in any 60 s (default 120). A start over it is
//! refused with the reason, like the chain guard's.

pub mod files;
mod guard;
pub mod system;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub use guard::{MAX_CHAIN, Refusal};

use crate::engine::{Engine, EngineEvent, RunRequest, TriggerEvent};
use crate::template::{context, mj};
use crate::workflow::TriggerDef;

/// Something that happened, for `event` triggers.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Event {
    /// Who publishes it: `engine`, `agent`, `files`, `system`, or an integration's name (`gmail`).
    pub source: String,
    /// The event type, as triggers name it: `mail.new`, `file.created`, `network.down`.
    pub kind: String,
    /// What the source knows, seen by templates as `trigger.data`.
    pub data: Value,
    /// The workflows whose runs caused it, oldest first (empty when no run did).
    pub chain: Vec<String>,
}

impl Event {
    /// An event no run caused.
    pub fn new(source: impl Into<String>, kind: impl Into<String>, data: Value) -> Event {
        Event {
            source: source.into(),
            kind: kind.into(),
            data,
            chain: Vec::new(),
        }
    }

    /// The same event, caused by the runs of `chain` (a run that publishes one passes its
    /// `trigger.chain` plus its own workflow id).
    pub fn caused_by(mut self, chain: Vec<String>) -> Event {
        self.chain = chain;
        self
    }
}

/// Where sources publish events: a broadcast channel (publishing never blocks; with no
/// dispatcher listening an event is dropped). Clone it freely.
#[derive(Debug, Clone)]
pub struct EventHub {
    tx: broadcast::Sender<Event>,
    sources: Arc<Mutex<BTreeMap<String, String>>>,
}

impl Default for EventHub {
    fn default() -> Self {
        EventHub {
            tx: broadcast::channel(1024).0,
            sources: Arc::default(),
        }
    }
}

impl EventHub {
    /// Publishes an event to the dispatcher (dropped when none listens).
    pub fn publish(&self, event: Event) {
        tracing::debug!(source = %event.source, event = %event.kind, "event published");
        let _ = self.tx.send(event);
    }

    /// A subscription seeing events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// Records a source's state (`on`, or why it is unavailable), for status and the log.
    pub fn set_source(&self, name: &str, state: impl Into<String>) {
        let state = state.into();
        tracing::info!(source = name, state = %state, "event source");
        lock(&self.sources).insert(name.to_owned(), state);
    }

    /// Every source's state, by name.
    pub fn sources(&self) -> BTreeMap<String, String> {
        lock(&self.sources).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The window of `events.max_starts_per_minute`.
const RATE_WINDOW: Duration = Duration::from_secs(60);

/// How many refusals [`EventTriggers::refusals`] keeps (the oldest go first).
const KEPT_REFUSALS: usize = 100;
/// How many runs' causation the dispatcher remembers while they go (a run that never ends, as
/// when its daemon died, is forgotten first).
const KEPT_CHAINS: usize = 4096;

/// The dispatcher of `event` triggers; see the module docs.
#[derive(Debug, Clone)]
pub struct EventTriggers {
    hub: EventHub,
    refusals: Arc<Mutex<VecDeque<Refusal>>>,
}

impl EventTriggers {
    /// Starts the dispatcher task over `engine`'s bus and `hub` until `shutdown` is cancelled.
    /// Each workflow may be started at most `max_per_minute` times in any 60 s by events that
    /// are not the engine's (see the module docs).
    pub fn start(
        engine: Engine,
        hub: EventHub,
        max_per_minute: usize,
        shutdown: CancellationToken,
    ) -> EventTriggers {
        let me = EventTriggers {
            hub: hub.clone(),
            refusals: Arc::default(),
        };
        let mut runs = engine.subscribe();
        let mut events = hub.subscribe();
        let mut d = Dispatcher {
            engine,
            refusals: me.refusals.clone(),
            chains: HashMap::new(),
            order: VecDeque::new(),
            recent: HashMap::new(),
            max_per_minute: max_per_minute.max(1),
        };
        hub.set_source("engine", "on");
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    r = runs.recv() => match r {
                        Ok(e) => d.engine_event(e),
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!(missed = n, "event triggers fell behind the engine's bus; those run events started nothing");
                        }
                        Err(broadcast::error::RecvError::Closed) => break,
                    },
                    r = events.recv() => match r {
                        Ok(e) => d.dispatch(&e),
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!(missed = n, "event triggers fell behind the event hub; those events started nothing");
                        }
                        Err(broadcast::error::RecvError::Closed) => break,
                    },
                }
            }
        });
        me
    }

    /// The hub the sources publish on.
    pub fn hub(&self) -> &EventHub {
        &self.hub
    }

    /// The latest starts the loop guard or the engine refused, oldest first.
    pub fn refusals(&self) -> Vec<Refusal> {
        lock(&self.refusals).iter().cloned().collect()
    }
}

/// The dispatcher task's own state.
struct Dispatcher {
    engine: Engine,
    refusals: Arc<Mutex<VecDeque<Refusal>>>,
    /// Run id -> (the chain that caused the run, its workflow id), while the run goes.
    chains: HashMap<String, (Vec<String>, String)>,
    order: VecDeque<String>,
    /// Per workflow, when events from the hub started it within the last [`RATE_WINDOW`].
    recent: HashMap<String, VecDeque<Instant>>,
    max_per_minute: usize,
}

impl Dispatcher {
    fn remember(&mut self, run_id: String, chain: Vec<String>, workflow_id: String) {
        if self.order.len() >= KEPT_CHAINS
            && let Some(old) = self.order.pop_front()
        {
            self.chains.remove(&old);
        }
        self.order.push_back(run_id.clone());
        self.chains.insert(run_id, (chain, workflow_id));
    }

    fn engine_event(&mut self, e: EngineEvent) {
        match &e {
            // A child run (a `workflow` action) inherits its parent's causation.
            EngineEvent::RunStarted {
                run_id,
                workflow_id,
                parent_run: Some(parent),
                ..
            } => {
                if let Some((chain, parent_wf)) = self.chains.get(parent).cloned() {
                    let mut chain = chain;
                    chain.push(parent_wf);
                    self.remember(run_id.clone(), chain, workflow_id.clone());
                }
            }
            EngineEvent::RunFinished {
                run_id,
                workflow_id,
                status,
                error,
                result,
            } => {
                let mut chain = match self.chains.remove(run_id) {
                    Some((chain, _)) => chain,
                    None => Vec::new(),
                };
                self.order.retain(|r| r != run_id);
                chain.push(workflow_id.clone());
                let event = Event {
                    source: "engine".into(),
                    kind: e.kind().into(),
                    data: json!({
                        "run_id": run_id, "workflow_id": workflow_id, "status": status,
                        "error": error, "result": result,
                    }),
                    chain,
                };
                self.dispatch(&event);
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, event: &Event) {
        let workflows = self.engine.workflows();
        for wf in workflows.values().filter(|w| w.def.enabled) {
            for t in &wf.def.triggers {
                let TriggerDef::Event {
                    event: kind,
                    filter,
                    query,
                    allow_loop,
                } = t
                else {
                    continue;
                };
                if *kind != event.kind {
                    continue;
                }
                // Gmail evaluated the query: the watcher lists in `queries` those the message matches.
                if let Some(q) = query
                    && !event.data["queries"]
                        .as_array()
                        .is_some_and(|qs| qs.iter().any(|x| x.as_str() == Some(q.as_str())))
                {
                    continue;
                }
                if let Some(filter) = filter {
                    let ctx = context(BTreeMap::from([
                        ("event".to_owned(), mj(&event.kind)),
                        ("source".to_owned(), mj(&event.source)),
                        ("data".to_owned(), mj(&event.data)),
                    ]));
                    let verdict = crate::template::Expr::parse(filter)
                        .map_err(|why| why.to_string())
                        .and_then(|f| f.is_true(&ctx).map_err(|e| e.to_string()));
                    match verdict {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(e) => {
                            tracing::warn!(workflow = wf.id(), event = %event.kind, error = %e, "event filter failed; nothing started");
                            continue;
                        }
                    }
                }
                self.start(wf.id(), event, *allow_loop);
                // One run per event and workflow, however many of its triggers match.
                break;
            }
        }
    }

    fn start(&mut self, workflow_id: &str, event: &Event, allow_loop: bool) {
        if let Err(reason) = guard::check(&event.chain, workflow_id, allow_loop) {
            self.refuse(workflow_id, event, reason);
            return;
        }
        if event.source != "engine"
            && let Err(reason) = self.within_rate(workflow_id, Instant::now())
        {
            self.refuse(workflow_id, event, reason);
            return;
        }
        let req = RunRequest {
            workflow_id: workflow_id.to_owned(),
            trigger: TriggerEvent {
                kind: "event".into(),
                data: json!({
                    "event": event.kind, "source": event.source, "data": event.data,
                    "chain": event.chain, "depth": event.chain.len(),
                }),
            },
            vars: BTreeMap::new(),
            parent_run: None,
            depth: 0,
        };
        match self.engine.trigger(req) {
            Ok(handle) => {
                tracing::info!(workflow = workflow_id, run = %handle.id, event = %event.kind, depth = event.chain.len(), "event trigger started a run");
                self.remember(
                    handle.id.clone(),
                    event.chain.clone(),
                    workflow_id.to_owned(),
                );
            }
            Err(e) => self.refuse(workflow_id, event, e.to_string()),
        }
    }

    /// Counts a start of `workflow_id` by a hub event at `now`, or refuses it when the last
    /// [`RATE_WINDOW`] already has `max_per_minute` of them.
    fn within_rate(&mut self, workflow_id: &str, now: Instant) -> Result<(), String> {
        let times = self.recent.entry(workflow_id.to_owned()).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= RATE_WINDOW)
        {
            times.pop_front();
        }
        if times.len() >= self.max_per_minute {
            return Err(format!(
                "loop guard: events started `{workflow_id}` {} times in the last minute, the limit \
                 (events.max_starts_per_minute); a workflow that causes its own event (writing \
                 into the folder it watches, say) is stopped here",
                times.len()
            ));
        }
        times.push_back(now);
        Ok(())
    }

    fn refuse(&self, workflow_id: &str, event: &Event, reason: String) {
        tracing::warn!(workflow = workflow_id, event = %event.kind, chain = %event.chain.join(" -> "), reason = %reason, "event trigger refused");
        let mut kept = lock(&self.refusals);
        if kept.len() >= KEPT_REFUSALS {
            kept.pop_front();
        }
        kept.push_back(Refusal {
            workflow_id: workflow_id.to_owned(),
            event: event.kind.clone(),
            chain: event.chain.clone(),
            reason,
        });
    }
}
