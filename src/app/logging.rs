//! Logging: `tracing` to stderr, and for the daemon also to daily files, all through the
//! redacting writer.

use atlas::redact::RedactingLogs;

use super::Global;

/// How many log lines may wait for the file writer before new ones are dropped.
const LOG_QUEUE_LINES: usize = 4096;

/// Logs to stderr; the daemon also writes them to `<data dir>/logs/atlas.log.YYYY-MM-DD` (daily
/// files). Both pass through [`RedactingLogs`], so no secret a run read reaches a log line. The
/// returned guard flushes the file on drop.
pub fn init_tracing(
    daemon: bool,
    global: &Global,
) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer};
    let default = if daemon { "info" } else { "warn" };
    let filter =
        || EnvFilter::try_from_env("ATLAS_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(RedactingLogs(std::io::stderr))
        .with_filter(filter());
    let logs = daemon
        .then(|| super::load(global).ok())
        .flatten()
        .map(|(_, paths)| paths.logs())
        .filter(|dir| std::fs::create_dir_all(dir).is_ok());
    let (file, guard) = match logs {
        Some(dir) => {
            // The default queue holds 128,000 lines, preallocated: 4 MB resident for a daemon
            // that logs a few lines a minute. 4,096 lines still absorbs any burst a run makes.
            let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .buffered_lines_limit(LOG_QUEUE_LINES)
                .finish(tracing_appender::rolling::daily(dir, "atlas.log"));
            let layer = tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(RedactingLogs(writer))
                .with_filter(filter());
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .try_init();
    guard
}
