//! The database schema, as append-only migrations applied in order (`PRAGMA user_version`).
//!
//! Tables:
//! - `runs`: one row per run. `status` is one of queued, running, paused, succeeded, failed,
//!   cancelled, interrupted. `cursor` is the id of the next top-level action to run and `vars` the
//!   run's variables after the last completed action: together they let a run resume after a crash.
//!   `owner` is `pid:boot_id:start_time:instance` of the process running it (older rows:
//!   `pid:instance`), so a second process never takes over a live run and a reused pid is not
//!   taken for its owner. Times are Unix milliseconds.
//! - `run_actions`: one row per executed action (a loop body's actions once per iteration),
//!   numbered by `seq` within the run; `path` places body actions (`each[2].notify`).
//! - `workflow_stats`: counters per workflow, updated in the same transaction as a run's end.
//! - `schedule_state`: when each schedule trigger (workflow, index in `triggers`) last fired or
//!   was last seen by a running scheduler, so missed runs can be caught up after downtime.
//! - `webhook_deliveries`: every delivery the webhook server answered, accepted or refused:
//!   the hook path, the sender's delivery id (when the scheme has one), `outcome` (`accepted` or
//!   `refused`), the HTTP status, why it was refused, and the run it started. The accepted
//!   delivery ids are what refuses a replay, also after a restart. Never a secret, a signature
//!   or a body.

/// Migrations, oldest first. Never edit one that has shipped: append a new one.
pub const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE runs (
    id               TEXT PRIMARY KEY,
    workflow_id      TEXT NOT NULL,
    workflow_version INTEGER NOT NULL,
    trigger_kind     TEXT NOT NULL,
    trigger_data     TEXT NOT NULL,
    status           TEXT NOT NULL,
    error            TEXT,
    result           TEXT,
    vars             TEXT,
    cursor           TEXT,
    owner            TEXT NOT NULL,
    parent_run       TEXT,
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER
);
CREATE INDEX runs_by_workflow ON runs (workflow_id, created_at DESC);
CREATE INDEX runs_by_time ON runs (created_at DESC);
CREATE INDEX runs_unfinished ON runs (status) WHERE status IN ('queued', 'running', 'paused');
CREATE TABLE run_actions (
    run_id           TEXT NOT NULL,
    seq              INTEGER NOT NULL,
    action_id        TEXT NOT NULL,
    path             TEXT NOT NULL,
    kind             TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    output           TEXT,
    output_truncated INTEGER NOT NULL DEFAULT 0,
    error            TEXT,
    started_at       INTEGER NOT NULL,
    finished_at      INTEGER,
    duration_us      INTEGER,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE workflow_stats (
    workflow_id  TEXT PRIMARY KEY,
    runs         INTEGER NOT NULL DEFAULT 0,
    successes    INTEGER NOT NULL DEFAULT 0,
    failures     INTEGER NOT NULL DEFAULT 0,
    last_run_at  INTEGER,
    last_status  TEXT
);
"#,
    r#"
CREATE TABLE schedule_state (
    workflow_id  TEXT NOT NULL,
    trigger      INTEGER NOT NULL,
    last_fire_at INTEGER NOT NULL,
    PRIMARY KEY (workflow_id, trigger)
) WITHOUT ROWID;
"#,
    r#"
CREATE TABLE webhook_deliveries (
    seq          INTEGER PRIMARY KEY,
    hook         TEXT NOT NULL,
    workflow_id  TEXT,
    delivery_id  TEXT,
    outcome      TEXT NOT NULL,
    status       INTEGER NOT NULL,
    reason       TEXT,
    run_id       TEXT,
    at           INTEGER NOT NULL
);
CREATE UNIQUE INDEX webhook_accepted ON webhook_deliveries (hook, delivery_id)
    WHERE outcome = 'accepted' AND delivery_id IS NOT NULL;
CREATE INDEX webhook_by_time ON webhook_deliveries (at DESC);
"#,
];

/// Applies the migrations the database has not seen yet. The version is read inside a write
/// transaction, so two processes opening a new database at once cannot both migrate it.
pub fn migrate(conn: &mut rusqlite::Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
    }
    tx.commit()
}
