//! The single writer thread: drains queued writes and commits them in one transaction.

use std::sync::mpsc::{Receiver, Sender, channel};

use rusqlite::{Connection, Transaction, params};
use serde_json::Value;

use super::{OUTPUT_CAP, RunStatus};

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
    /// Answer once everything before this is committed.
    Flush(tokio::sync::oneshot::Sender<()>),
}

pub(super) fn spawn(conn: Connection) -> Sender<Op> {
    let (tx, rx) = channel();
    let spawned = std::thread::Builder::new()
        .name("atlas-store-writer".into())
        .spawn(move || run(conn, rx));
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the run database writer");
    }
    tx
}

const BATCH: usize = 4096;

fn run(mut conn: Connection, rx: Receiver<Op>) {
    while let Ok(first) = rx.recv() {
        let mut batch = Vec::with_capacity(64);
        batch.push(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let mut waiters = Vec::new();
        let result = conn.transaction().and_then(|tx| {
            for op in batch {
                match op {
                    Op::Flush(w) => waiters.push(w),
                    op => {
                        if let Err(e) = apply(&tx, op) {
                            tracing::error!(error = %e, "run history write failed");
                        }
                    }
                }
            }
            tx.commit()
        });
        if let Err(e) = result {
            tracing::error!(error = %e, "run history commit failed");
        }
        for w in waiters {
            let _ = w.send(());
        }
    }
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

fn apply(tx: &Transaction<'_>, op: Op) -> rusqlite::Result<()> {
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
            let started = (status == RunStatus::Running).then_some(at);
            tx.prepare_cached(
                "INSERT INTO runs (id, workflow_id, workflow_version, trigger_kind, trigger_data, status, vars, owner, parent_run, created_at, started_at, cursor) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?
            .execute(params![
                id,
                workflow_id,
                version,
                trigger,
                json_text(&trigger_data),
                status.as_str(),
                json_text(&vars),
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
                .execute(params![id, cursor, json_text(&vars)])?;
        }
        Op::Finish {
            id,
            workflow_id,
            status,
            error,
            result,
            at,
        } => {
            let result = result.map(|r| capped(&r).0);
            tx.prepare_cached(
                "UPDATE runs SET status = ?2, error = ?3, result = ?4, finished_at = ?5 WHERE id = ?1",
            )?
            .execute(params![id, status.as_str(), error, result, at])?;
            let ok = (status == RunStatus::Succeeded) as i64;
            let failed = (status == RunStatus::Failed) as i64;
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
                    let (t, cut) = capped(&v);
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
        Op::Flush(_) => {}
    }
    Ok(())
}
