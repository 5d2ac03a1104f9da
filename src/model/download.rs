//! Downloading a model file over HTTP: resumable, retried, and verified before it is installed.
//!
//! Bytes stream into `<file>.part`. A broken connection is retried a few times, each retry asking
//! for the rest with `Range: bytes=N-`; a server that ignores the range (HTTP 200) is handled by
//! starting over, and HTTP 416 on a resume means the partial file is already whole. When the
//! transfer ends, the size and the SHA-1 over the whole file are checked; only then is the file
//! synced and renamed to its final name. A corrupt download is deleted (resuming it would only
//! reproduce the corruption); a merely interrupted one is kept so the next run resumes it.
//!
//! Progress goes to a callback `(downloaded, total)`, so the CLI can draw a bar and the desktop
//! UI a percentage without this module knowing either.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, RANGE};
use sha1::{Digest, Sha1};
use tokio::io::AsyncWriteExt;
use tracing::{debug, info, warn};

use super::ModelError;
use super::catalog::{CatalogEntry, lookup};
use super::convert::sync_dir;

/// Where whisper.cpp's ggml files are published.
pub const DEFAULT_BASE_URL: &str = "https://huggingface.co/ggerganov/whisper.cpp/resolve/main";

/// How many times one download is attempted before giving up.
const MAX_ATTEMPTS: u32 = 5;
/// Wait before the first retry; it doubles for each further one (0.5, 1, 2, 4 s).
const RETRY_DELAY: Duration = Duration::from_millis(if cfg!(test) { 10 } else { 500 });

/// Progress callback: bytes on disk so far, and the total when known.
pub type Progress<'a> = &'a (dyn Fn(u64, Option<u64>) + Send + Sync);

/// Downloads the catalog model called `name` (e.g. `"base.en"`) into `models_dir`.
/// See [`download_model`].
pub async fn download(
    name: &str,
    base_url: &str,
    models_dir: &Path,
    progress: Progress<'_>,
) -> Result<PathBuf, ModelError> {
    download_model(lookup(name)?, base_url, models_dir, progress).await
}

/// Downloads `entry` from `<base_url>/<file name>` into `models_dir` and returns its path.
///
/// If the file is already there with the right size and checksum, nothing is downloaded.
/// The directory is created if needed.
pub async fn download_model(
    entry: &CatalogEntry,
    base_url: &str,
    models_dir: &Path,
    progress: Progress<'_>,
) -> Result<PathBuf, ModelError> {
    tokio::fs::create_dir_all(models_dir)
        .await
        .map_err(|e| ModelError::io("create", models_dir, e))?;
    let dest = models_dir.join(entry.file_name);
    if let Ok(meta) = tokio::fs::metadata(&dest).await
        && meta.len() == entry.size
        && sha1_of(&dest).await? == entry.sha1
    {
        info!(model = entry.name, path = %dest.display(), "model already installed and verified");
        progress(entry.size, Some(entry.size));
        return Ok(dest);
    }
    let url = format!("{}/{}", base_url.trim_end_matches('/'), entry.file_name);
    download_file(&url, &dest, entry.sha1, Some(entry.size), progress).await?;
    Ok(dest)
}

/// Asks once, within `limit`, whether `url` can be downloaded (a HEAD request answered with a
/// success status). Never retries: it is meant for choosing between sources quickly.
pub async fn probe(url: &str, limit: Duration) -> Result<(), ModelError> {
    let failed = |reason: String| ModelError::Network {
        url: url.to_owned(),
        attempts: 1,
        reason,
    };
    let client = reqwest::Client::builder()
        .connect_timeout(limit)
        .timeout(limit)
        .user_agent(concat!("atlas/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| failed(format!("cannot start an HTTP client: {e}")))?;
    let response = client.head(url).send().await.map_err(|e| {
        failed(if e.is_timeout() {
            format!("no answer in {} s", limit.as_secs_f64())
        } else {
            format!("unreachable: {e}")
        })
    })?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(failed(format!("answered {}", response.status())))
    }
}

/// Downloads `url` to `dest`, checking the SHA-1 (lowercase or uppercase hex) and, if given,
/// the size. An existing `dest.part` is resumed. On success `dest` is replaced atomically.
pub async fn download_file(
    url: &str,
    dest: &Path,
    expected_sha1: &str,
    expected_size: Option<u64>,
    progress: Progress<'_>,
) -> Result<(), ModelError> {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(20))
        .read_timeout(Duration::from_secs(60))
        .user_agent(concat!("atlas/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ModelError::Network {
            url: url.to_owned(),
            attempts: 0,
            reason: format!("cannot start an HTTP client: {e}"),
        })?;
    let part = part_path(dest);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match fetch_once(&client, url, &part, expected_size, progress).await {
            Ok(()) => break,
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Retry(reason)) if attempt < MAX_ATTEMPTS => {
                let wait = RETRY_DELAY * (1 << (attempt - 1).min(4));
                warn!(url, attempt, %reason, wait_ms = wait.as_millis() as u64, "download interrupted; resuming");
                tokio::time::sleep(wait).await;
            }
            Err(Failure::Retry(reason)) => {
                return Err(ModelError::Network {
                    url: url.to_owned(),
                    attempts: attempt,
                    reason,
                });
            }
        }
    }
    verify_and_install(&part, dest, expected_sha1, expected_size).await?;
    info!(url, path = %dest.display(), "download verified and installed");
    Ok(())
}

/// `<dest>.part`.
fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

/// Why one attempt stopped.
enum Failure {
    /// Worth another attempt (network trouble, a 5xx answer, a short body).
    Retry(String),
    /// Not worth retrying (404, a local write error, a wrong size).
    Fatal(ModelError),
}

/// Describes a reqwest error with its causes ("error sending request: connection refused").
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The total size in a `Content-Range: bytes a-b/total` header, with its start offset.
fn content_range(resp: &reqwest::Response) -> Option<(u64, Option<u64>)> {
    let value = resp.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    let rest = value.strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let start = range.split_once('-')?.0.trim().parse().ok()?;
    Some((start, total.trim().parse().ok()))
}

/// One request: continue `part` from its current length to the end of the body.
async fn fetch_once(
    client: &reqwest::Client,
    url: &str,
    part: &Path,
    expected_size: Option<u64>,
    progress: Progress<'_>,
) -> Result<(), Failure> {
    let mut offset = match tokio::fs::metadata(part).await {
        Ok(m) => m.len(),
        Err(_) => 0,
    };
    if expected_size.is_some_and(|size| offset > size) {
        debug!(part = %part.display(), offset, "partial file is longer than the model; restarting");
        offset = 0;
    }
    if offset > 0 && expected_size == Some(offset) {
        return Ok(()); // Already whole; the checksum decides.
    }
    let mut request = client.get(url);
    if offset > 0 {
        request = request.header(RANGE, format!("bytes={offset}-"));
    }
    let resp = request
        .send()
        .await
        .map_err(|e| Failure::Retry(describe(&e)))?;
    let (offset, total) = match body_range(&resp, url, part, offset).await? {
        Body::Complete => return Ok(()),
        Body::From { offset, total } => (offset, total),
    };
    if let (Some(want), Some(got)) = (expected_size, total)
        && want != got
    {
        return Err(Failure::Fatal(ModelError::UnexpectedSize {
            url: url.to_owned(),
            expected: want,
            actual: got,
        }));
    }
    append_body(resp, part, offset, total.or(expected_size), progress).await
}

/// What a response's status says about the body that follows.
enum Body {
    /// Nothing to fetch: the range asked for starts at the end (the partial file is whole).
    Complete,
    /// The body is the file from byte `offset`; the whole file has `total` bytes when known.
    From { offset: u64, total: Option<u64> },
}

/// Reads the status of the answer to a request for the file from byte `offset`: where the body
/// starts, or why there is none (retry later, or give up).
async fn body_range(
    resp: &reqwest::Response,
    url: &str,
    part: &Path,
    offset: u64,
) -> Result<Body, Failure> {
    match resp.status() {
        StatusCode::RANGE_NOT_SATISFIABLE if offset > 0 => Ok(Body::Complete),
        StatusCode::NOT_FOUND => Err(Failure::Fatal(ModelError::NotFound {
            url: url.to_owned(),
        })),
        StatusCode::PARTIAL_CONTENT => match content_range(resp) {
            Some((start, total)) if start == offset => Ok(Body::From {
                offset,
                total: total.or_else(|| resp.content_length().map(|n| n + offset)),
            }),
            _ => {
                // A range we did not ask for: drop what we have and start over next attempt.
                let _ = tokio::fs::remove_file(part).await;
                Err(Failure::Retry(format!(
                    "server resumed at the wrong offset (asked for byte {offset})"
                )))
            }
        },
        StatusCode::OK => {
            if offset > 0 {
                info!(
                    url,
                    offset, "server ignored the range request; restarting from zero"
                );
            }
            Ok(Body::From {
                offset: 0,
                total: resp.content_length(),
            })
        }
        s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
            Err(Failure::Retry(format!("HTTP {}", s.as_u16())))
        }
        s => Err(Failure::Fatal(ModelError::HttpStatus {
            url: url.to_owned(),
            status: s.as_u16(),
        })),
    }
}

/// Writes the body to `part` from byte `offset` (appending, or truncating when 0), reporting
/// progress. What arrived is kept even when the connection breaks, so the next attempt resumes
/// from it; a body shorter than `total` is a retry.
async fn append_body(
    mut resp: reqwest::Response,
    part: &Path,
    mut offset: u64,
    total: Option<u64>,
    progress: Progress<'_>,
) -> Result<(), Failure> {
    let fatal_io = |action, e| Failure::Fatal(ModelError::io(action, part, e));
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(offset > 0)
        .truncate(offset == 0)
        .open(part)
        .await
        .map_err(|e| fatal_io("open", e))?;
    progress(offset, total);
    let outcome = loop {
        match resp.chunk().await {
            Ok(Some(bytes)) => {
                file.write_all(&bytes)
                    .await
                    .map_err(|e| fatal_io("write", e))?;
                offset += bytes.len() as u64;
                progress(offset, total);
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(Failure::Retry(describe(&e))),
        }
    };
    file.flush().await.map_err(|e| fatal_io("write", e))?;
    file.sync_all().await.map_err(|e| fatal_io("sync", e))?;
    outcome?;
    match total {
        Some(t) if offset < t => Err(Failure::Retry(format!(
            "connection closed after {offset} of {t} bytes"
        ))),
        _ => Ok(()),
    }
}

/// Checks size and SHA-1 of `part`, then renames it to `dest`. A bad file is deleted.
async fn verify_and_install(
    part: &Path,
    dest: &Path,
    expected_sha1: &str,
    expected_size: Option<u64>,
) -> Result<(), ModelError> {
    let size = tokio::fs::metadata(part)
        .await
        .map_err(|e| ModelError::io("inspect", part, e))?
        .len();
    if let Some(expected) = expected_size
        && size != expected
    {
        let _ = tokio::fs::remove_file(part).await;
        return Err(ModelError::SizeMismatch {
            path: part.to_owned(),
            expected,
            actual: size,
        });
    }
    let actual = sha1_of(part).await?;
    let expected = expected_sha1.to_ascii_lowercase();
    if actual != expected {
        let _ = tokio::fs::remove_file(part).await;
        return Err(ModelError::ChecksumMismatch {
            path: part.to_owned(),
            expected,
            actual,
        });
    }
    tokio::fs::rename(part, dest)
        .await
        .map_err(|e| ModelError::io("rename into", dest, e))?;
    if let Some(dir) = dest.parent() {
        let dir = dir.to_owned();
        let _ = tokio::task::spawn_blocking(move || sync_dir(&dir)).await;
    }
    Ok(())
}

/// SHA-1 of a file as lowercase hex, computed off the async runtime.
pub async fn sha1_of(path: &Path) -> Result<String, ModelError> {
    let owned = path.to_owned();
    tokio::task::spawn_blocking(move || sha1_file(&owned))
        .await
        .map_err(|e| ModelError::io("hash", path, std::io::Error::other(e)))?
}

/// SHA-1 of a file as lowercase hex (blocking).
pub fn sha1_file(path: &Path) -> Result<String, ModelError> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| ModelError::io("open", path, e))?;
    let mut hasher = Sha1::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| ModelError::io("read", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
#[path = "download_tests.rs"]
mod tests;
