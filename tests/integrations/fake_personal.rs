//! The fake's Spotify and Binance (see [`super::fake`]).

use std::collections::HashMap;

use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

use super::fake::{Inner, host, query, reply, valid};
use super::fake_collab::bearer;

fn spotify_err(status: u16, message: &str, reason: Option<&str>) -> Response {
    let mut e = json!({"status": status, "message": message});
    if let Some(r) = reason {
        e["reason"] = json!(r);
    }
    reply(status, json!({ "error": e }))
}

pub(super) fn spotify(
    st: &mut Inner,
    method: &Method,
    rest: &[&str],
    q: &HashMap<String, String>,
    h: &HeaderMap,
    auth: &str,
    body: &Value,
) -> Response {
    if !valid(st, bearer(auth)) {
        return spotify_err(401, "The access token expired", None);
    }
    let control = |st: &mut Inner, what: String| {
        if !st.premium {
            return spotify_err(
                403,
                "Player command failed: Premium required",
                Some("PREMIUM_REQUIRED"),
            );
        }
        if !st.device {
            return spotify_err(
                404,
                "Player command failed: No active device found",
                Some("NO_ACTIVE_DEVICE"),
            );
        }
        st.player.push(what);
        reply(204, Value::Null)
    };
    match (method.as_str(), rest) {
        ("GET", ["me"]) => reply(
            200,
            json!({"id": "listener", "product": if st.premium { "premium" } else { "free" }}),
        ),
        ("GET", ["me", "player", "currently-playing"]) => match &st.playing {
            None => reply(204, Value::Null),
            Some(p) => reply(200, p.clone()),
        },
        ("PUT", ["me", "player", "play"]) => {
            let what = match body["context_uri"].as_str() {
                Some(u) => format!("play {u}"),
                None => "play".into(),
            };
            control(st, what)
        }
        ("PUT", ["me", "player", "pause"]) => control(st, "pause".into()),
        ("POST", ["me", "player", "next"]) => control(st, "next".into()),
        ("POST", ["me", "player", "previous"]) => control(st, "previous".into()),
        ("PUT", ["me", "player", "volume"]) => {
            let v = q.get("volume_percent").cloned().unwrap_or_default();
            control(st, format!("volume {v}"))
        }
        ("GET", ["me", "playlists"]) => {
            let offset: usize = q.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
            let items: Vec<Value> = st.playlists.iter().skip(offset).take(2).cloned().collect();
            let next = if offset + 2 < st.playlists.len() {
                json!(format!(
                    "{}/spotify/me/playlists?limit=2&offset={}",
                    host(h),
                    offset + 2
                ))
            } else {
                Value::Null
            };
            reply(
                200,
                json!({"items": items, "next": next, "total": st.playlists.len()}),
            )
        }
        _ => spotify_err(404, "Service not found", None),
    }
}

fn binance_err(status: u16, code: i64, msg: &str) -> Response {
    reply(status, json!({"code": code, "msg": msg}))
}

pub(super) fn binance(st: &mut Inner, rest: &[&str], uri: &Uri, h: &HeaderMap) -> Response {
    let q = query(uri);
    let path = rest.join("/");
    let server_now = chrono::Utc::now().timestamp_millis() + st.skew_ms;
    match path.as_str() {
        "api/v3/time" => return reply(200, json!({"serverTime": server_now})),
        "api/v3/ticker/price" => {
            let wanted: Option<Vec<String>> = match (q.get("symbol"), q.get("symbols")) {
                (Some(s), _) => Some(vec![s.clone()]),
                (None, Some(list)) => serde_json::from_str(list).ok(),
                _ => None,
            };
            let list: Vec<Value> = match &wanted {
                None => st
                    .prices
                    .iter()
                    .map(|(s, p)| json!({"symbol": s, "price": p}))
                    .collect(),
                Some(w) => {
                    if w.iter().any(|s| !st.prices.contains_key(s)) {
                        return binance_err(400, -1121, "Invalid symbol.");
                    }
                    w.iter()
                        .map(|s| json!({"symbol": s, "price": st.prices[s]}))
                        .collect()
                }
            };
            if q.contains_key("symbol") {
                return reply(200, list[0].clone());
            }
            return reply(200, json!(list));
        }
        _ => {}
    }
    // Signed endpoints: the key, then the signature over the query as sent, then the window.
    let key = h
        .get("x-mbx-apikey")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(secret) = st
        .secrets
        .get(key)
        .filter(|_| st.tokens.contains(key))
        .cloned()
    else {
        return binance_err(
            401,
            -2015,
            "Invalid API-key, IP, or permissions for action.",
        );
    };
    let raw = uri.query().unwrap_or("");
    let Some((payload, sig)) = raw.rsplit_once("&signature=") else {
        return binance_err(
            400,
            -1102,
            "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.",
        );
    };
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(payload.as_bytes());
    if hex::encode(mac.finalize().into_bytes()) != sig {
        return binance_err(400, -1022, "Signature for this request is not valid.");
    }
    let ts: i64 = q.get("timestamp").and_then(|t| t.parse().ok()).unwrap_or(0);
    let window: i64 = q
        .get("recvWindow")
        .and_then(|t| t.parse().ok())
        .unwrap_or(5000);
    if ts > server_now + 1000 || server_now - ts > window {
        return binance_err(
            400,
            -1021,
            "Timestamp for this request is outside of the recvWindow.",
        );
    }
    match path.as_str() {
        "api/v3/account" => reply(
            200,
            json!({"makerCommission": 10, "canTrade": true, "accountType": "SPOT", "balances": st.balances, "permissions": ["SPOT"]}),
        ),
        "api/v3/openOrders" => reply(200, json!(st.orders)),
        _ => binance_err(404, -1000, "Not found"),
    }
}
