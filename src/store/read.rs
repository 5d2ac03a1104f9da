//! The queries behind the store's read methods, on its own reader connection (never the
//! writer's): runs, their actions, schedule state and workflow counters.

use rusqlite::{OptionalExtension, params};
use serde_json::Value;

use super::{ActionRecord, Delivery, RunRecord, RunStatus, Store, StoreError, WorkflowStats};

impl Store {
    /// Runs, newest first, optionally of one workflow.
    pub fn list_runs(
        &self,
        workflow: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RunRecord>, StoreError> {
        self.read(|c| {
            let sql = format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE (?1 IS NULL OR workflow_id = ?1) ORDER BY created_at DESC, id DESC LIMIT ?2"
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![workflow, limit as i64], run_row)?;
            rows.collect()
        })
    }

    /// One run.
    pub fn get_run(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.read(|c| {
            let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1");
            c.prepare_cached(&sql)?.query_row([id], run_row).optional()
        })
    }

    /// The actions of a run, in order.
    pub fn run_actions(&self, run_id: &str) -> Result<Vec<ActionRecord>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, action_id, path, kind, status, attempts, output, output_truncated, error, started_at, finished_at, duration_us FROM run_actions WHERE run_id = ?1 ORDER BY seq",
            )?;
            let rows = stmt.query_map([run_id], |r| {
                Ok(ActionRecord {
                    seq: r.get(0)?,
                    action_id: r.get(1)?,
                    path: r.get(2)?,
                    kind: r.get(3)?,
                    status: r.get(4)?,
                    attempts: r.get(5)?,
                    output: json_col(r.get(6)?),
                    output_truncated: r.get(7)?,
                    error: r.get(8)?,
                    started_at: r.get(9)?,
                    finished_at: r.get(10)?,
                    duration_us: r.get(11)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Runs not yet finished (queued, running, paused), oldest first.
    pub fn unfinished_runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        self.read(|c| {
            let sql = format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE status IN ('queued', 'running', 'paused') ORDER BY created_at"
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map([], run_row)?;
            rows.collect()
        })
    }

    /// When schedule trigger `trigger` of `workflow` last fired or was last checked, Unix ms.
    pub fn schedule_seen(&self, workflow: &str, trigger: u32) -> Result<Option<i64>, StoreError> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT last_fire_at FROM schedule_state WHERE workflow_id = ?1 AND trigger = ?2",
            )?
            .query_row(params![workflow, trigger], |r| r.get(0))
            .optional()
        })
    }

    /// Whether a delivery with this id was accepted on `hook` (committed writes only).
    pub fn delivery_accepted(&self, hook: &str, delivery_id: &str) -> Result<bool, StoreError> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT 1 FROM webhook_deliveries WHERE hook = ?1 AND delivery_id = ?2 AND outcome = 'accepted'",
            )?
            .query_row(params![hook, delivery_id], |_| Ok(()))
            .optional()
            .map(|r| r.is_some())
        })
    }

    /// Webhook deliveries, newest first.
    pub fn deliveries(&self, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT hook, workflow_id, delivery_id, outcome, status, reason, run_id, at FROM webhook_deliveries ORDER BY seq DESC LIMIT ?1",
            )?;
            let rows = stmt.query_map([limit as i64], |r| {
                Ok(Delivery {
                    hook: r.get(0)?,
                    workflow_id: r.get(1)?,
                    delivery_id: r.get(2)?,
                    accepted: r.get::<_, String>(3)? == "accepted",
                    status: r.get(4)?,
                    reason: r.get(5)?,
                    run_id: r.get(6)?,
                    at: r.get(7)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Counters for every workflow that has run.
    pub fn stats(&self) -> Result<Vec<WorkflowStats>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT workflow_id, runs, successes, failures, last_run_at, last_status FROM workflow_stats ORDER BY workflow_id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(WorkflowStats {
                    workflow_id: r.get(0)?,
                    runs: r.get::<_, i64>(1)? as u64,
                    successes: r.get::<_, i64>(2)? as u64,
                    failures: r.get::<_, i64>(3)? as u64,
                    last_run_at: r.get(4)?,
                    last_status: r.get(5)?,
                })
            })?;
            rows.collect()
        })
    }
}

const RUN_COLUMNS: &str = "id, workflow_id, workflow_version, trigger_kind, trigger_data, status, error, result, vars, cursor, owner, parent_run, created_at, started_at, finished_at";

fn json_col(s: Option<String>) -> Option<Value> {
    s.map(|s| serde_json::from_str(&s).unwrap_or(Value::String(s)))
}

fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        id: r.get(0)?,
        workflow_id: r.get(1)?,
        workflow_version: r.get(2)?,
        trigger: r.get(3)?,
        trigger_data: json_col(r.get(4)?).unwrap_or(Value::Null),
        status: RunStatus::parse(&r.get::<_, String>(5)?),
        error: r.get(6)?,
        result: json_col(r.get(7)?),
        vars: json_col(r.get(8)?),
        cursor: r.get(9)?,
        owner: r.get(10)?,
        parent_run: r.get(11)?,
        created_at: r.get(12)?,
        started_at: r.get(13)?,
        finished_at: r.get(14)?,
    })
}
