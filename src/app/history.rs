//! Run history retention: `atlas workflow prune`, and the daemon's periodic pruning by
//! `[history]` in config.toml.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::{Global, build};
use crate::config::HistoryConfig;
use crate::store::{Retention, Store, now_ms};
use crate::tts::RecordingSpeaker;
use crate::workflow::Dur;

/// How often the daemon applies retention (and once at start).
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// `atlas workflow prune [--older-than 30d] [--keep N]`: deletes finished runs; without either
/// option, by `[history]` in config.toml.
pub async fn prune(
    global: &Global,
    older_than: Option<&str>,
    keep: Option<u64>,
    as_json: bool,
) -> anyhow::Result<()> {
    let app = build(global, Arc::new(RecordingSpeaker::default()))?;
    let rule = match (older_than, keep) {
        (None, None) => app.config.history.rule(now_ms()),
        _ => {
            let before_ms = older_than
                .map(|s| Dur::parse(s).map_err(anyhow::Error::msg))
                .transpose()
                .context("`--older-than`")?
                .map(|d| now_ms().saturating_sub(d.0.as_millis().min(i64::MAX as u128) as i64));
            Retention { before_ms, keep }
        }
    };
    let pruned = app.engine.store().prune(rule).await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&pruned)?);
    } else {
        println!(
            "removed {} run(s) and {} action record(s)",
            pruned.runs, pruned.actions
        );
    }
    Ok(())
}

/// The daemon's retention: prunes by `config` now and every [`PRUNE_EVERY`] until `stop`.
pub async fn keep_history(store: Store, config: HistoryConfig, stop: CancellationToken) {
    let mut tick = tokio::time::interval(PRUNE_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        match store.prune(config.rule(now_ms())).await {
            Ok(p) if p.runs > 0 => {
                tracing::info!(
                    runs = p.runs,
                    actions = p.actions,
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
