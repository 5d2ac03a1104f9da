//! Tests of the downloader against a real HTTP/1.1 server on 127.0.0.1 written here with tokio:
//! it serves one fake "model", honours `Range`, and can be told to cut the first response short,
//! to ignore ranges, or to answer 404.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::model::catalog::Language;

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Normal,
    /// The first response announces the whole file but closes after this many body bytes.
    DropFirstAfter(usize),
    /// Answers every request with 200 and the whole file, as a server without range support.
    IgnoreRange,
    NotFound,
}

struct Server {
    addr: SocketAddr,
    /// The `Range` start of each request received (None when it had no range).
    ranges: Arc<Mutex<Vec<Option<u64>>>>,
}

impl Server {
    fn url(&self) -> String {
        format!("http://{}/ggml-fake.bin", self.addr)
    }

    fn ranges(&self) -> Vec<Option<u64>> {
        self.ranges.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

async fn serve(body: Vec<u8>, mode: Mode) -> std::io::Result<Server> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let seen = ranges.clone();
    let body = Arc::new(body);
    tokio::spawn(async move {
        let mut first = true;
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match sock.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
            let range: Option<u64> = text
                .lines()
                .find_map(|l| l.strip_prefix("range: bytes="))
                .and_then(|r| r.trim().trim_end_matches('-').parse().ok());
            if let Ok(mut r) = seen.lock() {
                r.push(range);
            }
            let len = body.len();
            let (status, extra, slice) = match (mode, range) {
                (Mode::NotFound, _) => ("404 Not Found", String::new(), &b"not found"[..]),
                (Mode::IgnoreRange, _) | (_, None) => ("200 OK", String::new(), &body[..]),
                (_, Some(start)) if start as usize >= len => (
                    "416 Range Not Satisfiable",
                    format!("Content-Range: bytes */{len}\r\n"),
                    &b""[..],
                ),
                (_, Some(start)) => (
                    "206 Partial Content",
                    format!("Content-Range: bytes {start}-{}/{len}\r\n", len - 1),
                    &body[start as usize..],
                ),
            };
            let header = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
                slice.len()
            );
            let cut = match mode {
                Mode::DropFirstAfter(n) if first => n.min(slice.len()),
                _ => slice.len(),
            };
            first = false;
            let _ = sock.write_all(header.as_bytes()).await;
            let _ = sock.write_all(&slice[..cut]).await;
            let _ = sock.shutdown().await;
        }
    });
    Ok(Server { addr, ranges })
}

/// 300 kB of varied bytes, and its SHA-1.
fn fake_model() -> (Vec<u8>, String) {
    let body: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let sum = hex::encode(Sha1::digest(&body));
    (body, sum)
}

/// Every `(downloaded, total)` progress call, in order.
type Calls = Arc<Mutex<Vec<(u64, Option<u64>)>>>;

/// A progress callback that records every call.
fn recorder() -> (Calls, impl Fn(u64, Option<u64>) + Send + Sync) {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let sink = calls.clone();
    (calls, move |done, total| {
        if let Ok(mut c) = sink.lock() {
            c.push((done, total));
        }
    })
}

fn last(calls: &Mutex<Vec<(u64, Option<u64>)>>) -> Option<(u64, Option<u64>)> {
    calls.lock().ok().and_then(|c| c.last().copied())
}

#[tokio::test]
async fn full_download_is_verified_and_installed() -> TestResult {
    let (body, sum) = fake_model();
    let server = serve(body.clone(), Mode::Normal).await?;
    let dir = tempfile::tempdir()?;
    let dest = dir.path().join("ggml-fake.bin");
    let (calls, progress) = recorder();
    download_file(
        &server.url(),
        &dest,
        &sum,
        Some(body.len() as u64),
        &progress,
    )
    .await?;
    assert_eq!(std::fs::read(&dest)?, body);
    assert!(!part_path(&dest).exists());
    assert_eq!(last(&calls), Some((300_000, Some(300_000))));
    assert_eq!(server.ranges(), [None]);
    Ok(())
}

#[tokio::test]
async fn a_dropped_connection_is_resumed_with_a_range_request() -> TestResult {
    let (body, sum) = fake_model();
    let server = serve(body.clone(), Mode::DropFirstAfter(100_000)).await?;
    let dir = tempfile::tempdir()?;
    let dest = dir.path().join("ggml-fake.bin");
    let (calls, progress) = recorder();
    download_file(
        &server.url(),
        &dest,
        &sum,
        Some(body.len() as u64),
        &progress,
    )
    .await?;
    assert_eq!(std::fs::read(&dest)?, body);
    assert_eq!(server.ranges(), [None, Some(100_000)]);
    assert_eq!(last(&calls), Some((300_000, Some(300_000))));
    Ok(())
}

#[tokio::test]
async fn a_server_ignoring_ranges_restarts_the_file() -> TestResult {
    let (body, sum) = fake_model();
    let server = serve(body.clone(), Mode::IgnoreRange).await?;
    let dir = tempfile::tempdir()?;
    let dest = dir.path().join("ggml-fake.bin");
    // A stale partial file: appending the full body to it would corrupt the download.
    std::fs::write(part_path(&dest), &body[..50_000])?;
    download_file(
        &server.url(),
        &dest,
        &sum,
        Some(body.len() as u64),
        &|_, _| {},
    )
    .await?;
    assert_eq!(std::fs::read(&dest)?, body);
    assert_eq!(server.ranges(), [Some(50_000)]);
    Ok(())
}

#[tokio::test]
async fn range_not_satisfiable_means_the_partial_file_is_whole() -> TestResult {
    let (body, sum) = fake_model();
    let server = serve(body.clone(), Mode::Normal).await?;
    let dir = tempfile::tempdir()?;
    let dest = dir.path().join("ggml-fake.bin");
    std::fs::write(part_path(&dest), &body)?;
    // Without a known size the downloader must ask; the server answers 416.
    download_file(&server.url(), &dest, &sum, None, &|_, _| {}).await?;
    assert_eq!(std::fs::read(&dest)?, body);
    assert_eq!(server.ranges(), [Some(300_000)]);
    Ok(())
}

#[tokio::test]
async fn a_wrong_checksum_deletes_the_download() -> TestResult {
    let (body, _) = fake_model();
    let server = serve(body.clone(), Mode::Normal).await?;
    let dir = tempfile::tempdir()?;
    let dest = dir.path().join("ggml-fake.bin");
    let wrong = "0000000000000000000000000000000000000000";
    let err = download_file(&server.url(), &dest, wrong, None, &|_, _| {}).await;
    let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        msg.contains("checksum mismatch") && msg.contains(wrong),
        "{msg}"
    );
    assert!(msg.contains(&hex::encode(Sha1::digest(&body))), "{msg}");
    assert!(!dest.exists() && !part_path(&dest).exists());
    Ok(())
}

#[tokio::test]
async fn not_found_is_a_clear_error_without_retries() -> TestResult {
    let server = serve(Vec::new(), Mode::NotFound).await?;
    let dir = tempfile::tempdir()?;
    let dest = dir.path().join("ggml-fake.bin");
    let err = download_file(&server.url(), &dest, "00", None, &|_, _| {})
        .await
        .err();
    assert!(
        matches!(&err, Some(ModelError::NotFound { url }) if url.ends_with("/ggml-fake.bin")),
        "{err:?}"
    );
    let msg = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("HTTP 404"), "{msg}");
    assert_eq!(server.ranges().len(), 1);
    assert!(!dest.exists());
    Ok(())
}

#[tokio::test]
async fn a_size_other_than_the_catalog_is_refused_before_downloading() -> TestResult {
    let (body, sum) = fake_model();
    let server = serve(body, Mode::Normal).await?;
    let dir = tempfile::tempdir()?;
    let dest = dir.path().join("ggml-fake.bin");
    let err = download_file(&server.url(), &dest, &sum, Some(12), &|_, _| {})
        .await
        .err();
    assert!(matches!(
        err,
        Some(ModelError::UnexpectedSize {
            expected: 12,
            actual: 300_000,
            ..
        })
    ));
    assert!(!dest.exists());
    Ok(())
}

#[tokio::test]
async fn an_unreachable_server_fails_after_retries() -> TestResult {
    // Bind and drop a listener so the port is (almost certainly) closed.
    let addr = TcpListener::bind("127.0.0.1:0").await?.local_addr()?;
    let dir = tempfile::tempdir()?;
    let url = format!("http://{addr}/ggml-fake.bin");
    let err = download_file(&url, &dir.path().join("x.bin"), "00", None, &|_, _| {})
        .await
        .err();
    assert!(
        matches!(
            err,
            Some(ModelError::Network {
                attempts: MAX_ATTEMPTS,
                ..
            })
        ),
        "{err:?}"
    );
    Ok(())
}

fn leak_entry(sha1: String, size: u64) -> &'static CatalogEntry {
    Box::leak(Box::new(CatalogEntry {
        name: "fake",
        file_name: "ggml-fake.bin",
        size,
        size_exact: true,
        language: Language::English,
        sha1: Box::leak(sha1.into_boxed_str()),
        quantized: false,
    }))
}

#[tokio::test]
async fn download_model_uses_the_base_url_and_skips_a_verified_file() -> TestResult {
    let (body, sum) = fake_model();
    let server = serve(body.clone(), Mode::Normal).await?;
    let dir = tempfile::tempdir()?;
    let models = dir.path().join("models");
    let entry = leak_entry(sum, body.len() as u64);
    let base = format!("http://{}/", server.addr);
    let path = download_model(entry, &base, &models, &|_, _| {}).await?;
    assert_eq!(path, models.join("ggml-fake.bin"));
    assert_eq!(std::fs::read(&path)?, body);
    // Second call: already installed and verified, so no request is made.
    download_model(entry, &base, &models, &|_, _| {}).await?;
    assert_eq!(server.ranges().len(), 1);
    Ok(())
}

#[tokio::test]
async fn unknown_catalog_names_are_refused() {
    let err = download(
        "huge",
        DEFAULT_BASE_URL,
        Path::new("/nonexistent"),
        &|_, _| {},
    )
    .await;
    assert!(matches!(err, Err(ModelError::UnknownModel { .. })));
}
