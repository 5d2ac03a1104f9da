//! Run history retention: `atlas workflow prune`, and the daemon's periodic pruning by
//! `[history]` in config.toml.

use std::sync::Arc;

use anyhow::Context;

use super::{Global, build};
use atlas::store::{Retention, now_ms};
use atlas::tts::RecordingSpeaker;
use atlas::workflow::Dur;

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
        (None, None) => Retention::from_history(&app.config.history, now_ms()),
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
        let deliveries = if pruned.deliveries > 0 {
            format!(" and {} webhook delivery record(s)", pruned.deliveries)
        } else {
            String::new()
        };
        println!(
            "removed {} run(s) and {} action record(s){deliveries}",
            pruned.runs, pruned.actions
        );
    }
    Ok(())
}
