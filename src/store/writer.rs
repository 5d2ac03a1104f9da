//! The single writer thread: drains queued writes and commits them in one transaction.
//!
//! A commit that fails is never reported as done: its writes stay queued here, `flush()` waiters
//! get the error, the store's [`StoreHealth`] says what is wrong, and the writes are tried again
//! (at once, with a short bounded backoff, when SQLite says busy or locked; then every few seconds,
//! and whenever someone flushes). Once the database takes writes again nothing has been lost,
//! unless more than `max_pending` writes piled up meanwhile: past that bound new writes are
//! dropped and counted (`lost_writes`), so a broken disk costs history, never unbounded memory
//! or a stalled engine. A single write the database refuses for itself (a constraint) can never
//! succeed: it is dropped, logged, counted and reported to the next `flush()`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, TransactionBehavior};

use super::ops::{Op, apply};
use super::queue::{self, Empty, Receiver, Sender};
use super::retention::{self, Pruned, Retention};
use super::{StoreError, StoreHealth, StoreOptions, now_ms};

/// Starts the writer thread on `conn`; the returned sender is the only way to reach it, and
/// dropping it stops the thread once the queued writes are committed (or given up on).
pub(super) fn spawn(
    conn: Connection,
    opts: StoreOptions,
    health: Arc<Mutex<StoreHealth>>,
) -> Sender<Op> {
    let (tx, rx) = queue::bounded(opts.queue);
    let writer = Writer {
        conn,
        rx,
        health,
        opts,
        pending: Vec::new(),
        failing: None,
        retry_wait: Duration::ZERO,
        unreported_lost: 0,
    };
    let spawned = std::thread::Builder::new()
        .name("atlas-store-writer".into())
        .spawn(move || writer.run());
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the run database writer");
    }
    tx
}

/// New writes taken from the queue per transaction while healthy.
const BATCH: usize = 4096;

/// Capacity of the pending list kept after a commit.
const PENDING_KEPT: usize = 256;

/// Longest wait between two tries while the database keeps failing.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(30);

struct Writer {
    conn: Connection,
    rx: Receiver<Op>,
    health: Arc<Mutex<StoreHealth>>,
    opts: StoreOptions,
    /// Writes not yet committed, in the order they were sent.
    pending: Vec<Op>,
    /// While commits fail: when to try again.
    failing: Option<Instant>,
    retry_wait: Duration,
    /// Writes dropped (queue over `max_pending`) that no `flush()` has been told about yet.
    unreported_lost: u64,
}

/// Replies owed once the current writes are committed (or have failed).
#[derive(Default)]
struct Owed {
    flushes: Vec<tokio::sync::oneshot::Sender<Result<(), StoreError>>>,
    prunes: Vec<(
        Retention,
        tokio::sync::oneshot::Sender<Result<Pruned, StoreError>>,
    )>,
}

impl Writer {
    fn run(mut self) {
        let mut batch = Vec::new();
        loop {
            let mut owed = Owed::default();
            // Healthy, wait for the next write; failing, only until the next try is due.
            match self.rx.take(BATCH, self.failing, &mut batch) {
                Ok(()) | Err(Empty::Timeout) => {}
                Err(Empty::Closed) => {
                    if self.failing.is_some() {
                        // Every handle is gone: one last try, then the writes are lost.
                        self.attempt(owed);
                        if !self.pending.is_empty() {
                            tracing::error!(
                                writes = self.pending.len(),
                                "run database writer stopped with writes it could not commit"
                            );
                        }
                    }
                    return;
                }
            }
            for op in batch.drain(..) {
                self.take(op, &mut owed);
            }
            // While failing, new writes wait for the next try unless someone wants an answer.
            let due = self.failing.is_none_or(|at| Instant::now() >= at);
            if due || !owed.flushes.is_empty() || !owed.prunes.is_empty() {
                self.attempt(owed);
            }
        }
    }

    fn take(&mut self, op: Op, owed: &mut Owed) {
        match op {
            Op::Flush(w) => owed.flushes.push(w),
            Op::Prune { rule, reply } => owed.prunes.push((rule, reply)),
            op if self.pending.len() >= self.opts.max_pending => {
                self.unreported_lost += 1;
                let mut h = self.health();
                h.lost_writes += 1;
                if h.lost_writes == 1 || h.lost_writes.is_power_of_two() {
                    tracing::error!(
                        lost = h.lost_writes,
                        kept = self.pending.len(),
                        op = op.describe(),
                        "run history: too many writes waiting for the database; dropping new ones"
                    );
                }
            }
            op => self.pending.push(op),
        }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, StoreHealth> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Commits what is pending, answers what is owed, and records the outcome in the health.
    fn attempt(&mut self, owed: Owed) {
        match self.commit_with_retries() {
            Ok(refused) => self.committed(&refused, owed),
            Err(e) => self.failed(&e, owed),
        }
    }

    /// After a commit: health is good again, and flushes learn of writes refused or lost.
    fn committed(&mut self, refused: &[String], owed: Owed) {
        let recovered = self.failing.take().is_some();
        self.retry_wait = Duration::ZERO;
        {
            let mut h = self.health();
            if recovered {
                tracing::warn!(
                    error = h.error.as_deref().unwrap_or(""),
                    "run history writes work again; the writes kept meanwhile are committed"
                );
            }
            h.ok = true;
            h.error = None;
            h.failing_since_ms = None;
            h.pending_writes = 0;
            h.refused_writes += refused.len() as u64;
        }
        for r in refused {
            tracing::error!(error = %r, "run history write refused by the database and dropped");
        }
        let lost = if owed.flushes.is_empty() {
            0
        } else {
            std::mem::take(&mut self.unreported_lost)
        };
        for w in owed.flushes {
            let answer = match refused.first() {
                Some(first) => Err(StoreError::Refused {
                    count: refused.len(),
                    first: first.clone(),
                }),
                None if lost > 0 => Err(StoreError::Lost { count: lost }),
                None => Ok(()),
            };
            let _ = w.send(answer);
        }
        for (rule, reply) in owed.prunes {
            let _ = reply.send(self.prune(&rule));
        }
    }

    /// After a failed commit: the writes stay pending, the next try is scheduled, and everyone
    /// owed an answer gets the error.
    fn failed(&mut self, e: &rusqlite::Error, owed: Owed) {
        let cause = e.to_string();
        let kept = self.pending.len();
        self.retry_wait = (self.retry_wait * 2)
            .max(self.opts.retry_interval)
            .min(MAX_RETRY_WAIT.max(self.opts.retry_interval));
        let first_failure = self.failing.is_none();
        self.failing = Some(Instant::now() + self.retry_wait);
        {
            let mut h = self.health();
            h.ok = false;
            h.failing_since_ms.get_or_insert_with(now_ms);
            h.error = Some(cause.clone());
            h.pending_writes = kept;
        }
        if first_failure {
            tracing::error!(error = %cause, kept, "run history commit failed; the writes are kept and retried");
        } else {
            tracing::debug!(error = %cause, kept, retry_in_ms = self.retry_wait.as_millis() as u64, "run history commit failed again");
        }
        for w in owed.flushes {
            let _ = w.send(Err(StoreError::Write {
                cause: cause.clone(),
                kept,
            }));
        }
        for (_, reply) in owed.prunes {
            let _ = reply.send(Err(StoreError::Write {
                cause: cause.clone(),
                kept,
            }));
        }
    }

    /// Commits the pending writes, trying again with a short backoff while SQLite says busy.
    /// Returns the writes the database refused (dropped).
    fn commit_with_retries(&mut self) -> rusqlite::Result<Vec<String>> {
        let mut tries = 0;
        loop {
            match self.commit() {
                Err(e) if is_transient(&e) && tries < self.opts.busy_retries => {
                    let wait =
                        Duration::from_millis(10u64 << tries.min(6)).min(Duration::from_secs(1));
                    tracing::debug!(error = %e, tries, wait_ms = wait.as_millis() as u64, "run database busy; trying again");
                    std::thread::sleep(wait);
                    tries += 1;
                }
                r => return r,
            }
        }
    }

    fn commit(&mut self) -> rusqlite::Result<Vec<String>> {
        if self.pending.is_empty() {
            return Ok(Vec::new());
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut refused = Vec::new();
        for op in &self.pending {
            match apply(&tx, op) {
                Ok(()) => {}
                Err(e) if is_database_failure(&e) => return Err(e),
                Err(e) => refused.push(format!("{}: {e}", op.describe())),
            }
        }
        tx.commit()?;
        self.pending.clear();
        // A burst's worth of capacity is given back rather than kept for the life of the process.
        self.pending.shrink_to(PENDING_KEPT);
        Ok(refused)
    }

    fn prune(&mut self, rule: &Retention) -> Result<Pruned, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let pruned = retention::prune(&tx, rule)?;
        tx.commit()?;
        Ok(pruned)
    }
}

/// SQLite said another connection holds the lock: worth trying again shortly.
fn is_transient(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// The database as a whole cannot take writes now (as opposed to one write being invalid): the
/// transaction is abandoned and every write in it kept for the next try.
fn is_database_failure(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::DiskFull
                | ErrorCode::ReadOnly
                | ErrorCode::SystemIoFailure
                | ErrorCode::CannotOpen
                | ErrorCode::DatabaseCorrupt
                | ErrorCode::NotADatabase
                | ErrorCode::OutOfMemory
                | ErrorCode::FileLockingProtocolFailed
                | ErrorCode::PermissionDenied
                | ErrorCode::OperationInterrupted
                | ErrorCode::NoLargeFileSupport
        )
    )
}
