//! The checks every request passes before a handler sees it: a loopback `Host` (for `/v1`),
//! no foreign `Origin` (everywhere), and the bearer token (for `/v1`), compared in constant time.
//!
//! DNS rebinding: a web page whose name resolves to 127.0.0.1 sends its own name as `Host` and
//! its origin as `Origin`, so both are refused unless loopback. Webhook senders (GitHub, Slack)
//! send no `Origin`, and their `Host` is whatever tunnel forwards them, so `/hooks` checks only
//! `Origin`; the signature authenticates them.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::{Api, ApiError};

/// Whether `host` (a `Host` header or an origin's host, port allowed) names this machine.
pub(super) fn loopback_host(host: &str, extra: Option<&str>) -> bool {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                host
            }
        })
    };
    let name = name.to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
        || extra.is_some_and(|e| e == name)
}

/// Whether an `Origin` value is this machine (`http://localhost:7077`, `http://127.0.0.1`).
fn loopback_origin(origin: &str, extra: Option<&str>) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    (scheme == "http" || scheme == "https") && loopback_host(rest.trim_end_matches('/'), extra)
}

/// The listen address's IP when it is not loopback: requests naming it are the user's own.
fn listen_ip(api: &Api) -> Option<String> {
    let addr: std::net::SocketAddr = api.config.api.listen.parse().ok()?;
    (!addr.ip().is_loopback() && !addr.ip().is_unspecified()).then(|| addr.ip().to_string())
}

fn origin_problem(headers: &HeaderMap, extra: Option<&str>) -> Option<String> {
    let origin = headers.get("origin")?;
    let text = origin.to_str().unwrap_or("");
    (!loopback_origin(text, extra))
        .then(|| format!("requests from the web origin `{text}` are refused: only this machine's own clients may call Atlas"))
}

/// The 403 for a request whose `Host` is not this machine (`how`: the way to call it instead)
/// or whose `Origin` is a foreign web page.
fn site_refusal(api: &Api, headers: &HeaderMap, how: &str) -> Option<Response> {
    let extra = listen_ip(api);
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !loopback_host(host, extra.as_deref()) {
        return Some(
            ApiError::Forbidden(format!("the Host `{host}` is not this machine: {how}"))
                .into_response(),
        );
    }
    origin_problem(headers, extra.as_deref()).map(|p| ApiError::Forbidden(p).into_response())
}

/// `/v1`: loopback `Host`, no foreign `Origin`, the bearer token.
pub(super) async fn api_guard(State(api): State<Arc<Api>>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    if let Some(refused) = site_refusal(&api, headers, "call the API as http://127.0.0.1:PORT") {
        return refused;
    }
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or("");
    if bool::from(given.as_bytes().ct_eq(api.token.as_bytes())) {
        return next.run(req).await;
    }
    // No token: the dashboard's session cookie, from the daemon's own pages only.
    if given.is_empty()
        && let Some(session) = super::dashboard::session_cookie(headers)
        && api.logins.valid(session)
    {
        if let Some(problem) = cross_origin(headers, req.method(), host) {
            return ApiError::Forbidden(problem).into_response();
        }
        return next.run(req).await;
    }
    ApiError::Unauthorized.into_response()
}

/// A cookie-authenticated request must come from the daemon's own origin: a page of another
/// local server (another port of localhost, which is the same *site*) must not ride on the
/// dashboard's cookie. A request that changes something must say its origin.
fn cross_origin(headers: &HeaderMap, method: &axum::http::Method, host: &str) -> Option<String> {
    let own = format!("http://{host}");
    match headers.get("origin").and_then(|o| o.to_str().ok()) {
        Some(origin) if origin == own => None,
        Some(origin) => Some(format!(
            "the dashboard session works only from {own}, not from `{origin}`"
        )),
        None if method == axum::http::Method::GET || method == axum::http::Method::HEAD => None,
        None => Some(
            "a dashboard request that changes something must carry its Origin (send the token instead)"
                .into(),
        ),
    }
}

/// The dashboard's pages: loopback `Host`, no foreign `Origin` (no token: the pages are static
/// files and the login exchanges its own code).
pub(super) async fn page_guard(State(api): State<Arc<Api>>, req: Request, next: Next) -> Response {
    if let Some(refused) = site_refusal(
        &api,
        req.headers(),
        "open the dashboard as http://127.0.0.1:PORT/dashboard/",
    ) {
        return refused;
    }
    next.run(req).await
}

/// `/hooks`: no foreign `Origin` (the signature is checked by the handler).
pub(super) async fn hook_guard(State(api): State<Arc<Api>>, req: Request, next: Next) -> Response {
    if let Some(problem) = origin_problem(req.headers(), listen_ip(&api).as_deref()) {
        let path = req.uri().path().to_owned();
        api.hooks
            .record_refused(&api, super::hooks::hook_of(&path), 403, &problem);
        return ApiError::Forbidden(problem).into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_machine_is_loopback() {
        for ok in [
            "127.0.0.1:7077",
            "localhost",
            "LOCALHOST:1",
            "[::1]:7077",
            "127.1.2.3",
            "app.localhost:80",
        ] {
            assert!(loopback_host(ok, None), "{ok}");
        }
        for bad in [
            "evil.com",
            "evil.com:7077",
            "127.0.0.1.evil.com",
            "localhost.evil.com",
            "[::2]:1",
            "",
        ] {
            assert!(!loopback_host(bad, None), "{bad}");
        }
        assert!(loopback_host("192.168.1.5:7077", Some("192.168.1.5")));
        assert!(loopback_origin("http://localhost:3000", None));
        assert!(!loopback_origin("null", None));
        assert!(!loopback_origin("https://evil.com", None));
    }
}
