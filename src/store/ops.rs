//! The writes of the run database: the [`Op`]s callers send, and how the writer applies each in
//! its open transaction.
//!
//! Every statement here runs inside the writer's group-commit transaction; an error is the
//! writer's to classify (the whole database failing, so the transaction is kept and retried, or
//! this one write refused, so it alone is dropped). Outputs and results are stored as JSON text
//! cut at [`OUTPUT_CAP`].

use rusqlite::{Transaction, params};
use serde_json::Value;

use super::retention::{Pruned, Retention};
use super::{OUTPUT_CAP, RunStatus, StoreError};

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
    /// The webhook server answered a delivery (accepted or refused).
    Delivery(Delivery),
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

/// One webhook delivery the server answered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Delivery {
    /// The hook path (without `/hooks/`).
    pub hook: String,
    /// The workflow it was for, when one claims the path.
    pub workflow_id: Option<String>,
    /// The sender's delivery id, when the scheme has one.
    pub delivery_id: Option<String>,
    /// Whether a run was queued.
    pub accepted: bool,
    /// The HTTP status answered.
    pub status: u16,
    /// Why it was refused.
    pub reason: Option<String>,
    /// The run it started.
    pub run_id: Option<String>,
    /// Unix ms.
    pub at: i64,
}

impl Op {
    /// What the write is, for messages.
    pub(super) fn describe(&self) -> &'static str {
        match self {
            Op::CreateRun { .. } => "create run",
            Op::Status { .. } => "run status",
            Op::Progress { .. } => "run progress",
            Op::Finish { .. } => "run end",
            Op::ActionStarted { .. } => "action start",
            Op::ActionFinished { .. } => "action end",
            Op::ScheduleSeen { .. } => "schedule state",
            Op::Delivery(_) => "webhook delivery",
            Op::Flush(_) => "flush",
            Op::Prune { .. } => "prune",
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

/// Writes one op in the open transaction; `Flush` and `Prune` write nothing here (the writer
/// answers them once the transaction is committed).
pub(super) fn apply(tx: &Transaction<'_>, op: &Op) -> rusqlite::Result<()> {
    match op {
        Op::CreateRun { .. } => create_run(tx, op),
        Op::Status { .. } | Op::Progress { .. } => update_run(tx, op),
        Op::Finish { .. } => finish_run(tx, op),
        Op::ActionStarted { .. } | Op::ActionFinished { .. } => action_row(tx, op),
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
            Ok(())
        }
        Op::Delivery(d) => {
            // An accepted id seen twice (a replay that raced a restart) keeps the first row.
            tx.prepare_cached(
                "INSERT OR IGNORE INTO webhook_deliveries (hook, workflow_id, delivery_id, outcome, status, reason, run_id, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                d.hook,
                d.workflow_id,
                d.delivery_id,
                if d.accepted { "accepted" } else { "refused" },
                d.status,
                d.reason,
                d.run_id,
                d.at
            ])?;
            Ok(())
        }
        Op::Flush(_) | Op::Prune { .. } => Ok(()),
    }
}

/// `Op::CreateRun`: the run's row.
fn create_run(tx: &Transaction<'_>, op: &Op) -> rusqlite::Result<()> {
    let Op::CreateRun {
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
    } = op
    else {
        return Ok(());
    };
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
    Ok(())
}

/// `Op::Status` and `Op::Progress`: a run going on changes its row.
fn update_run(tx: &Transaction<'_>, op: &Op) -> rusqlite::Result<()> {
    match op {
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
        _ => {}
    }
    Ok(())
}

/// `Op::Finish`: the run's end, its actions still open, and its workflow's counters, in the
/// same transaction.
fn finish_run(tx: &Transaction<'_>, op: &Op) -> rusqlite::Result<()> {
    let Op::Finish {
        id,
        workflow_id,
        status,
        error,
        result,
        at,
    } = op
    else {
        return Ok(());
    };
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
    Ok(())
}

/// `Op::ActionStarted` and `Op::ActionFinished`: an action's row.
fn action_row(tx: &Transaction<'_>, op: &Op) -> rusqlite::Result<()> {
    match op {
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
        _ => {}
    }
    Ok(())
}
