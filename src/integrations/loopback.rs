//! The loopback redirect listener of a sign-in (RFC 8252 section 7.3): `127.0.0.1` on a port the
//! system picks, answering `GET /callback?...` with a short page and handing the query to the
//! waiting sign-in. Requests to other paths (a browser's `/favicon.ico`) get 404 and do not end
//! the wait; each connection has a few seconds to send its request line, the whole wait its
//! limit.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::oauth::OAuthError;

/// How long one connection may take to send its request head.
const REQUEST_LIMIT: Duration = Duration::from_secs(5);

/// The most of a request head read.
const HEAD_LIMIT: usize = 16 * 1024;

/// The query of the redirect.
#[derive(Debug, Default, Clone)]
pub struct Callback {
    /// `code`.
    pub code: Option<String>,
    /// `state`.
    pub state: Option<String>,
    /// `error` (`access_denied` when the user said no).
    pub error: Option<String>,
    /// `error_description`.
    pub error_description: Option<String>,
}

/// A bound listener; see the module docs.
pub struct Loopback {
    listener: TcpListener,
    port: u16,
}

impl Loopback {
    /// Binds `127.0.0.1:0`.
    pub async fn bind() -> Result<Loopback, OAuthError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| OAuthError::Listen(e.to_string()))?;
        let port = listener
            .local_addr()
            .map_err(|e| OAuthError::Listen(e.to_string()))?
            .port();
        Ok(Loopback { listener, port })
    }

    /// The port bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits up to `limit` for a request to `/callback`; `check` decides whether it succeeded
    /// (the page shown says so either way) and the first callback ends the wait.
    pub async fn wait(
        self,
        limit: Duration,
        check: impl Fn(&Callback) -> Result<(), OAuthError>,
    ) -> Result<Callback, OAuthError> {
        let wait = async {
            loop {
                let Ok((stream, _)) = self.listener.accept().await else {
                    continue;
                };
                if let Some(result) = serve(stream, &check).await {
                    return result;
                }
            }
        };
        tokio::time::timeout(limit, wait)
            .await
            .map_err(|_| OAuthError::Timeout(limit.as_secs()))?
    }
}

/// Serves one connection: `None` when it was not a callback.
async fn serve(
    mut stream: TcpStream,
    check: &impl Fn(&Callback) -> Result<(), OAuthError>,
) -> Option<Result<Callback, OAuthError>> {
    let head = tokio::time::timeout(REQUEST_LIMIT, read_head(&mut stream))
        .await
        .ok()??;
    let target = head.lines().next()?.split(' ').nth(1)?.to_owned();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    if path != "/callback" {
        respond(&mut stream, "404 Not Found", "Not found.").await;
        return None;
    }
    let mut cb = Callback::default();
    for (k, v) in oauth2::url::form_urlencoded::parse(query.as_bytes()) {
        let v = Some(v.into_owned());
        match k.as_ref() {
            "code" => cb.code = v,
            "state" => cb.state = v,
            "error" => cb.error = v,
            "error_description" => cb.error_description = v,
            _ => {}
        }
    }
    let result = check(&cb);
    match &result {
        Ok(()) => {
            respond(
                &mut stream,
                "200 OK",
                "Atlas is signed in. You can close this tab.",
            )
            .await
        }
        Err(e) => {
            // The page shows Atlas's own words, never the provider's text (it could be HTML).
            let what = match e {
                OAuthError::StateMismatch => "the redirect did not match this sign-in",
                OAuthError::Denied { .. } => "access was not granted",
                _ => "the redirect carried no authorization code",
            };
            respond(
                &mut stream,
                "400 Bad Request",
                &format!("Atlas could not sign in: {what}. Go back to Atlas for details."),
            )
            .await
        }
    }
    Some(result.map(|()| cb))
}

async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() + n > HEAD_LIMIT {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(buf).ok()
}

async fn respond(stream: &mut TcpStream, status: &str, text: &str) {
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>Atlas</title><p>{}</p>",
        text
    );
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(resp.as_bytes()).await;
    let _ = stream.shutdown().await;
}
