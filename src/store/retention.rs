//! Run history retention: which finished runs are deleted, and the deleting.
//!
//! A run is deleted when it is finished (never queued, running or paused) and either older than
//! the cutoff or not among the newest `keep` runs. Its actions go with it, in the same
//! transaction. `workflow_stats` and `schedule_state` are kept: counters and schedule times are
//! not history. Deletion runs on the writer thread like every other write.
//!
//! Webhook deliveries (`webhook_deliveries`) older than the cutoff go too. An accepted
//! delivery's id is what refuses a replay, so accepted rows are bounded by age only; refused rows
//! (which anyone who can reach the port can cause) are also capped at the newest
//! [`REFUSED_DELIVERIES_KEPT`].

use rusqlite::{Transaction, params};
use serde::{Deserialize, Serialize};

use crate::config::HistoryConfig;

/// Which runs to delete. A rule with neither bound deletes nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Delete finished runs created before this (Unix ms).
    pub before_ms: Option<i64>,
    /// Keep at most this many runs, newest first; older finished ones are deleted.
    pub keep: Option<u64>,
}

impl Retention {
    /// The rule `[history]` describes, as of `now_ms` (Unix ms).
    pub fn from_history(history: &HistoryConfig, now_ms: i64) -> Retention {
        Retention {
            before_ms: (history.keep_days > 0)
                .then(|| now_ms - i64::from(history.keep_days) * 86_400_000),
            keep: (history.keep_runs > 0).then_some(history.keep_runs),
        }
    }
}

/// How many refused webhook deliveries are kept, newest first.
pub const REFUSED_DELIVERIES_KEPT: i64 = 10_000;

/// What a prune deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pruned {
    /// Runs deleted.
    pub runs: u64,
    /// Action rows deleted with them.
    pub actions: u64,
    /// Webhook delivery records deleted.
    #[serde(default)]
    pub deliveries: u64,
}

/// The finished runs the rule deletes (SQL shared by the two deletes, same transaction).
const DOOMED: &str = "SELECT id FROM runs WHERE status NOT IN ('queued', 'running', 'paused') AND ((?1 IS NOT NULL AND created_at < ?1) OR (?2 IS NOT NULL AND id NOT IN (SELECT id FROM runs ORDER BY created_at DESC, id DESC LIMIT ?2)))";

pub(super) fn prune(tx: &Transaction<'_>, rule: &Retention) -> rusqlite::Result<Pruned> {
    if rule.before_ms.is_none() && rule.keep.is_none() {
        return Ok(Pruned::default());
    }
    let keep = rule.keep.map(|k| k.min(i64::MAX as u64) as i64);
    let actions = tx.execute(
        &format!("DELETE FROM run_actions WHERE run_id IN ({DOOMED})"),
        params![rule.before_ms, keep],
    )?;
    let runs = tx.execute(
        &format!("DELETE FROM runs WHERE id IN ({DOOMED})"),
        params![rule.before_ms, keep],
    )?;
    let old = tx.execute(
        "DELETE FROM webhook_deliveries WHERE ?1 IS NOT NULL AND at < ?1",
        params![rule.before_ms],
    )?;
    let refused = tx.execute(
        "DELETE FROM webhook_deliveries WHERE outcome != 'accepted' AND seq NOT IN \
         (SELECT seq FROM webhook_deliveries WHERE outcome != 'accepted' ORDER BY seq DESC LIMIT ?1)",
        params![REFUSED_DELIVERIES_KEPT],
    )?;
    Ok(Pruned {
        runs: runs as u64,
        actions: actions as u64,
        deliveries: (old + refused) as u64,
    })
}
