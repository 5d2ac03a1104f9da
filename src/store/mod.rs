//! Durable run history in SQLite: every run and every action as it happens.
//!
//! **Invariant**: only this module knows SQL. **One writer**: all writes go through a queue to a
//! single thread (`writer`) that drains whatever has queued up and commits it in one
//! transaction (group commit). Callers do not wait on a write, which keeps the engine's hot path at
//! microseconds, yet every write is committed within a few milliseconds; [`Store::flush`] waits for
//! everything sent so far and reports a commit that failed. The queue is bounded
//! ([`StoreOptions::queue`]): a sender blocks only while the writer is that far behind. Failed
//! commits are kept and retried (see `writer`); [`Store::health`] says whether writes work. The
//! database runs in WAL mode, so a killed process loses at most the writes of the last unfinished
//! transaction, never a committed one, and readers never block the writer. Reads (`read`) use
//! their own connection. Old runs are deleted by [`Store::prune`] (`retention`).

mod ops;
mod queue;
mod read;
mod retention;
mod schema;
#[cfg(test)]
mod tests;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use serde::Serialize;
use serde_json::Value;

pub use ops::{Delivery, Op};
pub use retention::{Pruned, Retention};
pub use schema::MIGRATIONS;

/// Largest action output kept in history, in bytes of JSON; larger ones are cut and flagged.
pub const OUTPUT_CAP: usize = 64 * 1024;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or migrated.
    #[error("cannot open the run database {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// SQLite's reason.
        source: rusqlite::Error,
    },
    /// A query failed.
    #[error("run database query failed: {0}")]
    Query(#[from] rusqlite::Error),
    /// The writer thread has stopped.
    #[error("the run database writer has stopped")]
    WriterGone,
    /// Writes could not be committed; they are kept and tried again.
    #[error(
        "the run history could not be written: {cause}; {kept} write(s) are kept and retried (`atlas status` shows when writes work again)"
    )]
    Write {
        /// SQLite's reason (busy, disk full, read-only, ...).
        cause: String,
        /// Writes waiting to be committed.
        kept: usize,
    },
    /// Writes the database refused for themselves; they were dropped.
    #[error(
        "{count} run history write(s) were refused by the database and dropped, first: {first}"
    )]
    Refused {
        /// How many.
        count: usize,
        /// The first one and why.
        first: String,
    },
    /// Writes dropped because too many piled up while the database failed.
    #[error(
        "{count} run history write(s) were dropped while the database failed (more were waiting than `max_pending`)"
    )]
    Lost {
        /// How many.
        count: u64,
    },
}

/// How the store's writer copes with load and failure; [`Store::open`] uses the defaults.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Writes the queue holds before [`Store::send`] blocks its caller (back-pressure).
    pub queue: usize,
    /// How long one write transaction waits for another connection's lock.
    pub busy_timeout: Duration,
    /// When SQLite still says busy or locked, tries again this many times at once (backoff from
    /// 10 ms, doubling, at most 1 s) before the commit counts as failed.
    pub busy_retries: u32,
    /// First wait before failed writes are tried again; it doubles up to 30 s while they fail.
    pub retry_interval: Duration,
    /// Most writes kept while the database fails; newer ones are dropped and counted.
    pub max_pending: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            queue: 16 * 1024,
            busy_timeout: Duration::from_secs(2),
            busy_retries: 5,
            retry_interval: Duration::from_secs(1),
            max_pending: 200_000,
        }
    }
}

/// Whether run history writes work, for `atlas status` and the daemon's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct StoreHealth {
    /// The last commit succeeded.
    pub ok: bool,
    /// Why the last commit failed.
    pub error: Option<String>,
    /// Since when commits fail (Unix ms).
    pub failing_since_ms: Option<i64>,
    /// Writes kept for the next try.
    pub pending_writes: usize,
    /// Writes dropped because too many were waiting, since the store opened.
    pub lost_writes: u64,
    /// Writes the database refused for themselves, since the store opened.
    pub refused_writes: u64,
}

impl Default for StoreHealth {
    fn default() -> Self {
        StoreHealth {
            ok: true,
            error: None,
            failing_since_ms: None,
            pending_writes: 0,
            lost_writes: 0,
            refused_writes: 0,
        }
    }
}

impl StoreHealth {
    /// One line for people: `ok`, or what fails since when and what it costs.
    pub fn summary(&self) -> String {
        let mut out = match (&self.error, self.ok) {
            (Some(e), false) => format!(
                "failing: {e} ({} write(s) kept and retried)",
                self.pending_writes
            ),
            _ => "ok".to_owned(),
        };
        if self.lost_writes > 0 {
            out.push_str(&format!(", {} write(s) lost", self.lost_writes));
        }
        if self.refused_writes > 0 {
            out.push_str(&format!(", {} write(s) refused", self.refused_writes));
        }
        out
    }
}

/// The status of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Waiting for its turn (`queued` mode).
    Queued,
    /// Executing.
    Running,
    /// Paused by a user; resumes where it stopped.
    Paused,
    /// Finished well.
    Succeeded,
    /// Finished with an error.
    Failed,
    /// Stopped by a user (or replaced, in `restart` mode).
    Cancelled,
    /// Its process died mid-run.
    Interrupted,
}

impl RunStatus {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Paused => "paused",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Interrupted => "interrupted",
        }
    }

    /// Parses the stored text.
    pub fn parse(s: &str) -> RunStatus {
        match s {
            "queued" => RunStatus::Queued,
            "running" => RunStatus::Running,
            "paused" => RunStatus::Paused,
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            "cancelled" => RunStatus::Cancelled,
            _ => RunStatus::Interrupted,
        }
    }

    /// Whether the run is over.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            RunStatus::Queued | RunStatus::Running | RunStatus::Paused
        )
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A run as stored.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    /// Run id.
    pub id: String,
    /// Workflow id.
    pub workflow_id: String,
    /// Workflow version at the time.
    pub workflow_version: u32,
    /// Trigger kind.
    pub trigger: String,
    /// Trigger data.
    pub trigger_data: Value,
    /// Status.
    pub status: RunStatus,
    /// Error, for failed runs.
    pub error: Option<String>,
    /// The run's result (the last action's output).
    pub result: Option<Value>,
    /// Variables after the last completed action.
    pub vars: Option<Value>,
    /// Next top-level action to run, for resumption.
    pub cursor: Option<String>,
    /// `pid:boot_id:start_time:instance` of the process that runs it (see `engine::recovery`).
    pub owner: String,
    /// The run that started this one (`workflow` action).
    pub parent_run: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub started_at: Option<i64>,
    /// Unix ms.
    pub finished_at: Option<i64>,
}

/// One executed action as stored.
#[derive(Debug, Clone, Serialize)]
pub struct ActionRecord {
    /// Order within the run, from 0.
    pub seq: u32,
    /// The action's id.
    pub action_id: String,
    /// Where it ran (`fetch`, `each[1].say`).
    pub path: String,
    /// Its kind.
    pub kind: String,
    /// running, succeeded, failed, cancelled.
    pub status: String,
    /// Tries made.
    pub attempts: u32,
    /// Its output (possibly cut to [`OUTPUT_CAP`]).
    pub output: Option<Value>,
    /// Whether the output was cut.
    pub output_truncated: bool,
    /// Its error.
    pub error: Option<String>,
    /// Unix ms.
    pub started_at: i64,
    /// Unix ms.
    pub finished_at: Option<i64>,
    /// Microseconds.
    pub duration_us: Option<i64>,
}

/// Counters of one workflow.
#[derive(Debug, Clone, Serialize)]
pub struct WorkflowStats {
    /// Workflow id.
    pub workflow_id: String,
    /// Runs finished.
    pub runs: u64,
    /// Runs succeeded.
    pub successes: u64,
    /// Runs failed.
    pub failures: u64,
    /// Unix ms of the last run's end.
    pub last_run_at: Option<i64>,
    /// The last run's status.
    pub last_status: Option<String>,
}

/// Handle to the run database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    tx: queue::Sender<Op>,
    reader: Mutex<Connection>,
    path: PathBuf,
    health: Arc<Mutex<StoreHealth>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish()
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn open_conn(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // In WAL mode NORMAL keeps every committed transaction across a process crash; only a power
    // loss can roll back the last ones.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

impl Store {
    /// Opens (creating and migrating) the database at `path` and starts its writer thread.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_with(path, StoreOptions::default())
    }

    /// [`Store::open`] with options.
    pub fn open_with(path: &Path, opts: StoreOptions) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let mut wconn = open_conn(path).map_err(open_err)?;
        schema::migrate(&mut wconn).map_err(open_err)?;
        wconn.busy_timeout(opts.busy_timeout).map_err(open_err)?;
        let reader = open_conn(path).map_err(open_err)?;
        Ok(Store::start(wconn, reader, path, opts))
    }

    /// Starts the writer on an opened, migrated connection.
    fn start(wconn: Connection, reader: Connection, path: &Path, opts: StoreOptions) -> Store {
        let health = Arc::new(Mutex::new(StoreHealth::default()));
        let tx = writer::spawn(wconn, opts, health.clone());
        Store {
            inner: Arc::new(Inner {
                tx,
                reader: Mutex::new(reader),
                path: path.to_path_buf(),
                health,
            }),
        }
    }

    /// Whether writes work now.
    pub fn health(&self) -> StoreHealth {
        self.inner
            .health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Queues a write. Returns at once unless [`StoreOptions::queue`] writes are already waiting;
    /// then it blocks until the writer has taken some (it keeps taking them even while the
    /// database fails, see [`StoreOptions::max_pending`]), which is the back-pressure that bounds
    /// memory. Called from async code it may so block a runtime thread for as long as one commit
    /// takes; the writer is its own thread, so this cannot deadlock.
    pub fn send(&self, op: Op) {
        if self.inner.tx.send(op).is_err() {
            tracing::error!("run database writer has stopped; a history write was lost");
        }
    }

    /// Waits until everything sent so far is committed; an error says why it is not (the
    /// writes are kept and retried: a later flush succeeds once the database takes writes).
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.inner
            .tx
            .send(Op::Flush(tx))
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Like [`Store::flush`], for code outside the async runtime.
    pub fn flush_blocking(&self) -> Result<(), StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.inner
            .tx
            .send(Op::Flush(tx))
            .map_err(|_| StoreError::WriterGone)?;
        rx.blocking_recv().map_err(|_| StoreError::WriterGone)?
    }

    /// Deletes the finished runs `rule` no longer keeps, with their actions, after everything
    /// sent before it is committed.
    pub async fn prune(&self, rule: Retention) -> Result<Pruned, StoreError> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.inner
            .tx
            .send(Op::Prune { rule, reply })
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        // A std mutex is right here: the critical section is one short SQLite read with no await.
        let conn = self.inner.reader.lock().unwrap_or_else(|e| e.into_inner());
        Ok(f(&conn)?)
    }
}
