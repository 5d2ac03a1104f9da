//! File events: a `notify` watcher on the allow-listed folders of `[events] watch`, debounced,
//! publishing `file.created`, `file.modified` and `file.removed` (data: `path`, `name`,
//! `folder`) on the [`EventHub`].
//!
//! The watcher's callback runs on notify's own thread and only hands paths to a bounded channel
//! (a burst past 4,096 pending changes is dropped, with a warning); one task owns the pending
//! set and publishes a path once it has been quiet for the debounce time. A file created and then
//! written is one `file.created`; a file moved or renamed into a watched folder is
//! `file.created`, one moved out `file.removed`; a change of metadata alone (chmod, chown,
//! touch) is nothing. A path outside every watched folder is never published.
//! **Boundary**: the only filesystem watcher of Atlas.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use notify::{EventKind, RecursiveMode, Watcher};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Event, EventHub};

/// Why the file watcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// A watched folder does not exist or cannot be resolved.
    #[error(
        "watched folder {path} cannot be used: {source}; create it or remove it from `[events] watch`"
    )]
    Folder {
        /// The folder as configured.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The operating system's watcher refused.
    #[error("the file watcher could not start: {0}")]
    Notify(#[from] notify::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Created,
    Modified,
    Removed,
}

impl Change {
    fn kind(self) -> &'static str {
        match self {
            Change::Created => "file.created",
            Change::Modified => "file.modified",
            Change::Removed => "file.removed",
        }
    }

    /// What two changes within one quiet period amount to.
    fn then(self, next: Change) -> Change {
        match (self, next) {
            (Change::Created, Change::Modified) => Change::Created,
            (_, n) => n,
        }
    }
}

/// What a notify event means per path. A file moved in (or renamed to its final name, as
/// downloads and editors do) is created, one moved out is removed; a change of metadata alone
/// (permissions, owner, times) is nothing.
fn changes(ev: notify::Event) -> Vec<(PathBuf, Change)> {
    use notify::event::{ModifyKind, RenameMode};
    let all = |paths: Vec<PathBuf>, c: Change| paths.into_iter().map(|p| (p, c)).collect();
    match ev.kind {
        EventKind::Create(_) => all(ev.paths, Change::Created),
        EventKind::Remove(_) => all(ev.paths, Change::Removed),
        EventKind::Modify(ModifyKind::Name(RenameMode::To)) => all(ev.paths, Change::Created),
        EventKind::Modify(ModifyKind::Name(RenameMode::From)) => all(ev.paths, Change::Removed),
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
            let mut paths = ev.paths.into_iter();
            let from = paths.next().map(|p| (p, Change::Removed));
            let to = paths.next().map(|p| (p, Change::Created));
            from.into_iter().chain(to).collect()
        }
        EventKind::Modify(ModifyKind::Name(_)) => ev
            .paths
            .into_iter()
            .map(|p| {
                let c = if p.exists() {
                    Change::Created
                } else {
                    Change::Removed
                };
                (p, c)
            })
            .collect(),
        // inotify reports chmod, chown and touch alike (IN_ATTRIB): none changes the content.
        EventKind::Modify(ModifyKind::Metadata(_)) => Vec::new(),
        EventKind::Modify(_) => all(ev.paths, Change::Modified),
        _ => Vec::new(),
    }
}

/// Watches `folders` (with their subfolders) until `shutdown`; see the module docs.
pub fn watch(
    folders: &[PathBuf],
    debounce: Duration,
    hub: EventHub,
    shutdown: CancellationToken,
) -> Result<(), WatchError> {
    let roots = folders
        .iter()
        .map(|f| {
            std::fs::canonicalize(f).map_err(|source| WatchError::Folder {
                path: f.clone(),
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (tx, mut rx) = mpsc::channel::<(PathBuf, Change)>(4096);
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else { return };
        for (path, change) in changes(ev) {
            if tx.try_send((path, change)).is_err() {
                tracing::warn!(
                    "file events arrive faster than they are handled; some were dropped"
                );
            }
        }
    })?;
    for root in &roots {
        watcher.watch(root, RecursiveMode::Recursive)?;
    }
    let names = roots
        .iter()
        .map(|r| r.display().to_string())
        .collect::<Vec<_>>();
    hub.set_source("files", format!("on: {}", names.join(", ")));
    tokio::spawn(async move {
        // The watcher lives as long as this task.
        let _watcher = watcher;
        let mut pending: HashMap<PathBuf, (Change, Instant)> = HashMap::new();
        let mut tick = tokio::time::interval(Duration::from_millis(50).min(debounce));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                got = rx.recv() => match got {
                    Some((path, change)) => {
                        let merged = match pending.get(&path) {
                            Some((before, _)) => before.then(change),
                            None => change,
                        };
                        pending.insert(path, (merged, Instant::now()));
                    }
                    None => break,
                },
                _ = tick.tick() => {
                    let now = Instant::now();
                    let due: Vec<PathBuf> = pending
                        .iter()
                        .filter(|(_, (_, at))| now.duration_since(*at) >= debounce)
                        .map(|(p, _)| p.clone())
                        .collect();
                    for path in due {
                        if let Some((change, _)) = pending.remove(&path) {
                            publish(&hub, &roots, &path, change);
                        }
                    }
                }
            }
        }
    });
    Ok(())
}

fn publish(hub: &EventHub, roots: &[PathBuf], path: &Path, change: Change) {
    // notify reports paths under the folder it was given; anything else is not ours to tell.
    let Some(root) = roots.iter().find(|r| path.starts_with(r)) else {
        return;
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    hub.publish(Event::new(
        "files",
        change.kind(),
        json!({"path": path, "name": name, "folder": root}),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_file_written_to_stays_created() {
        assert_eq!(Change::Created.then(Change::Modified), Change::Created);
        assert_eq!(Change::Created.then(Change::Removed), Change::Removed);
        assert_eq!(Change::Modified.then(Change::Modified), Change::Modified);
    }

    #[tokio::test]
    async fn a_missing_folder_is_an_error_naming_it() {
        let err = watch(
            &[PathBuf::from("/nonexistent/atlas-watch")],
            Duration::from_millis(50),
            EventHub::default(),
            CancellationToken::new(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/atlas-watch"),
            "{err}"
        );
    }
}
