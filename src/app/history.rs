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
