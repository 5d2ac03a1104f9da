//! The daemon's run-history retention: prunes by `[history]` in config.toml at start and every
//! [`PRUNE_EVERY`] after.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::HistoryConfig;
use crate::store::{Retention, Store, now_ms};

/// How often the daemon applies retention (and once at start).
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The daemon's retention: prunes by `config` now and every [`PRUNE_EVERY`] until `stop`.
pub async fn keep_history(store: Store, config: HistoryConfig, stop: CancellationToken) {
    let mut tick = tokio::time::interval(PRUNE_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        match store
            .prune(Retention::from_history(&config, now_ms()))
            .await
        {
            Ok(p) if p.runs > 0 || p.deliveries > 0 => {
                tracing::info!(
                    runs = p.runs,
                    actions = p.actions,
                    deliveries = p.deliveries,
                    keep_days = config.keep_days,
                    keep_runs = config.keep_runs,
                    "old run history removed"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "run history retention failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Op, RunStatus};

    #[tokio::test]
    async fn the_daemons_retention_prunes_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("atlas.db")).unwrap();
        let day = 86_400_000;
        for (id, at) in [("old", now_ms() - 10 * day), ("new", now_ms())] {
            store.send(Op::CreateRun {
                id: id.into(),
                workflow_id: "wf".into(),
                version: 1,
                trigger: "manual".into(),
                trigger_data: serde_json::json!({}),
                status: RunStatus::Running,
                vars: serde_json::json!({}),
                owner: "1:test".into(),
                parent_run: None,
                cursor: None,
                at,
            });
            store.send(Op::Finish {
                id: id.into(),
                workflow_id: "wf".into(),
                status: RunStatus::Succeeded,
                error: None,
                result: None,
                at,
            });
        }
        let stop = CancellationToken::new();
        let config = HistoryConfig {
            keep_days: 7,
            keep_runs: 0,
        };
        let task = tokio::spawn(keep_history(store.clone(), config, stop.clone()));
        // The prune is queued behind the writes above; wait (bounded) for it to be done.
        for _ in 0..500 {
            store.flush().await.unwrap();
            if store.list_runs(None, 10).unwrap().len() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let ids: Vec<String> = store
            .list_runs(None, 10)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["new"]);
        stop.cancel();
        task.await.unwrap();
    }
}
