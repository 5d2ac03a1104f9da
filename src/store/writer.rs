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

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, Transaction, TransactionBehavior, params};
use serde_json::Value;

use super::retention::{self, Pruned, Retention};
use super::{OUTPUT_CAP, RunStatus, StoreError, StoreHealth, StoreOptions, now_ms};

/// A write to the run database.
#[derive(Debug)]
pub enum Op {
    /// A new run.
    CreateRun {
        /// Run id.
        id: String,
        /// Workflow id.
        workflow_id: String,
        /// Workflow version.
        version: u32,
        /// Trigger kind.
        trigger: String,
        /// Trigger data.
        trigger_data: Value,
        /// Initial status (queued or running).
        status: RunStatus,
        /// Initial variables.
        vars: Value,
        /// `pid:boot_id:start_time:instance` of the owner.
        owner: String,
        /// Parent run.
        parent_run: Option<String>,
        /// The first action to run.
        cursor: Option<String>,
        /// Unix ms.
        at: i64,
    },
    /// A run changed status without ending (running, paused, queued).
    Status {
        /// Run id.
        id: String,
        /// New status.
        status: RunStatus,
        /// Unix ms; sets `started_at` the first time a run is `running`.
        at: i64,
        /// New owner, when a process takes over a run to resume it.
        owner: Option<String>,
    },
    /// A top-level action completed: where to go on, with what variables.
    Progress {
        /// Run id.
        id: String,
        /// Next top-level action, `None` at the end.
        cursor: Option<String>,
        /// Variables now.
        vars: Value,
    },
    /// A run ended.
    Finish {
        /// Run id.
        id: String,
        /// Workflow id (for the stats).
        workflow_id: String,
        /// Final status.
        status: RunStatus,
        /// Error text.
        error: Option<String>,
        /// Result value.
        result: Option<Value>,
        /// Unix ms.
        at: i64,
    },
    /// An action started.
    ActionStarted {
        /// Run id.
        run_id: String,
        /// Order in the run.
        seq: u32,
        /// Action id.
        action_id: String,
        /// Position (`each[1].say`).
        path: String,
        /// Kind.
        kind: String,
        /// Unix ms.
        at: i64,
    },
    /// An action ended.
    ActionFinished {
        /// Run id.
        run_id: String,
        /// Order in the run.
        seq: u32,
        /// succeeded, failed, cancelled.
        status: &'static str,
        /// Tries made.
        attempts: u32,
        /// Output.
        output: Option<Value>,
        /// Error text.
        error: Option<String>,
        /// Unix ms.
        at: i64,
        /// Duration in microseconds.
        duration_us: i64,
    },
    /// A schedule fired (or was checked up to) `at`.
    ScheduleSeen {
        /// Workflow id.
        workflow_id: String,
        /// Index of the trigger in the workflow's `triggers`.
        trigger: u32,
        /// Unix ms.
        at: i64,
    },
    /// Answer once everything before this is committed (or say why it could not be).
    Flush(tokio::sync::oneshot::Sender<Result<(), StoreError>>),
    /// Delete finished runs (and their actions) that retention no longer keeps.
    Prune {
        /// Which runs to delete.
        rule: Retention,
        /// What was deleted.
        reply: tokio::sync::oneshot::Sender<Result<Pruned, StoreError>>,
    },
}

impl Op {
    fn describe(&self) -> &'static str {
        match self {
            Op::CreateRun { .. } => "create run",
            Op::Status { .. } => "run status",
            Op::Progress { .. } => "run progress",
            Op::Finish { .. } => "run end",
            Op::ActionStarted { .. } => "action start",
            Op::ActionFinished { .. } => "action end",
            Op::ScheduleSeen { .. } => "schedule state",
            Op::Flush(_) => "flush",
            Op::Prune { .. } => "prune",
        }
    }
}

pub(super) fn spawn(
    conn: Connection,
    opts: StoreOptions,
    health: Arc<Mutex<StoreHealth>>,
) -> SyncSender<Op> {
    let (tx, rx) = sync_channel(opts.queue.max(1));
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
        loop {
            let mut owed = Owed::default();
            let first = match self.failing {
                None => match self.rx.recv() {
                    Ok(op) => Some(op),
                    Err(_) => return,
                },
                Some(at) => match self
                    .rx
                    .recv_timeout(at.saturating_duration_since(Instant::now()))
                {
                    Ok(op) => Some(op),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => {
                        // Every handle is gone: one last try, then the writes are lost.
                        self.attempt(owed);
                        if !self.pending.is_empty() {
                            tracing::error!(
                                writes = self.pending.len(),
                                "run database writer stopped with writes it could not commit"
                            );
                        }
                        return;
                    }
                },
            };
            let mut taken = 0;
            if let Some(op) = first {
                self.take(op, &mut owed);
                taken += 1;
            }
            while taken < BATCH {
                match self.rx.try_recv() {
                    Ok(op) => {
                        self.take(op, &mut owed);
                        taken += 1;
                    }
                    Err(_) => break,
                }
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
            Ok(refused) => {
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
                for r in &refused {
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
            Err(e) => {
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

fn json_text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn capped(v: &Value) -> (String, bool) {
    let text = json_text(v);
    if text.len() <= OUTPUT_CAP {
        return (text, false);
    }
    // Keep a valid JSON string holding the start of the output.
    let mut cut = OUTPUT_CAP;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    (json_text(&Value::String(text[..cut].to_owned())), true)
}

fn apply(tx: &Transaction<'_>, op: &Op) -> rusqlite::Result<()> {
    match op {
        Op::CreateRun {
            id,
            workflow_id,
            version,
            trigger,
            trigger_data,
            status,
            vars,
            owner,
            parent_run,
            cursor,
            at,
        } => {
            let started = (*status == RunStatus::Running).then_some(*at);
            tx.prepare_cached(
                "INSERT INTO runs (id, workflow_id, workflow_version, trigger_kind, trigger_data, status, vars, owner, parent_run, created_at, started_at, cursor) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?
            .execute(params![
                id,
                workflow_id,
                version,
                trigger,
                json_text(trigger_data),
                status.as_str(),
                json_text(vars),
                owner,
                parent_run,
                at,
                started,
                cursor
            ])?;
        }
        Op::Status {
            id,
            status,
            at,
            owner,
        } => {
            tx.prepare_cached(
                "UPDATE runs SET status = ?2, started_at = CASE WHEN ?2 = 'running' THEN COALESCE(started_at, ?3) ELSE started_at END, owner = COALESCE(?4, owner) WHERE id = ?1",
            )?
            .execute(params![id, status.as_str(), at, owner])?;
        }
        Op::Progress { id, cursor, vars } => {
            tx.prepare_cached("UPDATE runs SET cursor = ?2, vars = ?3 WHERE id = ?1")?
                .execute(params![id, cursor, json_text(vars)])?;
        }
        Op::Finish {
            id,
            workflow_id,
            status,
            error,
            result,
            at,
        } => {
            let result = result.as_ref().map(|r| capped(r).0);
            tx.prepare_cached(
                "UPDATE runs SET status = ?2, error = ?3, result = ?4, finished_at = ?5 WHERE id = ?1",
            )?
            .execute(params![id, status.as_str(), error, result, at])?;
            // An action still open when its run ended (the run task panicked mid-action) ends
            // with the run: a finished run never shows an action `running`.
            let action_status = match status {
                RunStatus::Failed => "failed",
                RunStatus::Interrupted => "interrupted",
                _ => "cancelled",
            };
            tx.prepare_cached(
                "UPDATE run_actions SET status = ?2, error = COALESCE(error, ?3), finished_at = ?4
                 WHERE run_id = ?1 AND status = 'running'",
            )?
            .execute(params![
                id,
                action_status,
                error
                    .as_deref()
                    .unwrap_or("the run ended before this action did"),
                at
            ])?;
            let ok = (*status == RunStatus::Succeeded) as i64;
            let failed = (*status == RunStatus::Failed) as i64;
            tx.prepare_cached(
                "INSERT INTO workflow_stats (workflow_id, runs, successes, failures, last_run_at, last_status) VALUES (?1, 1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(workflow_id) DO UPDATE SET runs = runs + 1, successes = successes + ?2, failures = failures + ?3, last_run_at = ?4, last_status = ?5",
            )?
            .execute(params![workflow_id, ok, failed, at, status.as_str()])?;
        }
        Op::ActionStarted {
            run_id,
            seq,
            action_id,
            path,
            kind,
            at,
        } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO run_actions (run_id, seq, action_id, path, kind, status, attempts, started_at) VALUES (?1, ?2, ?3, ?4, ?5, 'running', 0, ?6)",
            )?
            .execute(params![run_id, seq, action_id, path, kind, at])?;
        }
        Op::ActionFinished {
            run_id,
            seq,
            status,
            attempts,
            output,
            error,
            at,
            duration_us,
        } => {
            let (output, truncated) = match output {
                Some(v) => {
                    let (t, cut) = capped(v);
                    (Some(t), cut)
                }
                None => (None, false),
            };
            tx.prepare_cached(
                "UPDATE run_actions SET status = ?3, attempts = ?4, output = ?5, output_truncated = ?6, error = ?7, finished_at = ?8, duration_us = ?9 WHERE run_id = ?1 AND seq = ?2",
            )?
            .execute(params![run_id, seq, status, attempts, output, truncated, error, at, duration_us])?;
        }
        Op::ScheduleSeen {
            workflow_id,
            trigger,
            at,
        } => {
            tx.prepare_cached(
                "INSERT INTO schedule_state (workflow_id, trigger, last_fire_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(workflow_id, trigger) DO UPDATE SET last_fire_at = MAX(last_fire_at, ?3)",
            )?
            .execute(params![workflow_id, trigger, at])?;
        }
        Op::Flush(_) | Op::Prune { .. } => {}
    }
    Ok(())
}
