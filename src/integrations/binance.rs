//! Binance (spot REST, `https://api.binance.com`): prices are public; balances and open orders
//! are signed requests with an API key and secret the user pastes
//! (`atlas integration connect binance --token`: the key, then the secret; a read-only key is
//! enough). A signed request carries `recvWindow` ([`RECV_WINDOW`] ms) and `timestamp` (ms) in
//! its query, then `signature`, the hex HMAC-SHA256 of that query under the secret ([`sign`],
//! checked against Binance's documented example); the key goes in `X-MBX-APIKEY`, the secret
//! never leaves the machine. A `-1021` (timestamp outside the window) resyncs with
//! `/api/v3/time` once; a 429 is waited out by its `Retry-After`, bounded; a 418 (an IP ban for
//! ignoring 429s) is never retried; a refused key (401, `-2015`, `-1022`) marks the account
//! `needs_reauth`. Operations of the `binance` action:
//!
//! - `price` (`symbols`, comma-separated pairs such as `BTCUSDT,ETHUSDT`): `{prices: {PAIR:
//!   number}, list: [{symbol, price}]}`.
//! - `balances`: `{balances: [{asset, free, locked, total}]}` (zero balances left out).
//! - `open_orders` (`symbol`): `{count, orders: [{symbol, side, type, price, quantity}]}`.
//! - `portfolio` (`quote`, default `USDT`): each balance valued in the quote asset through the
//!   spot prices: `{total, quote, assets: [{asset, amount, value}], unpriced: [asset]}`.
//!
//! The trigger: [`PriceAlerts`] polls the prices of `[integrations.binance] alerts` and
//! publishes `crypto.price` (`symbol`, `price`, `threshold`, `direction`) when one crosses its
//! threshold (not while it stays across).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;

use super::account::{Account, AccountError};
use super::api::{self, ApiError, Judged, MAX_RETRY_AFTER, RATE_RETRIES};
use super::services::{ServiceError, need, unknown_op};
use super::watch::Poller;
use super::{
    AuthHeader, BoxFuture, Health, IntegrationError, Integrations, Provider, Spec, TokenKind,
    WatchCtx,
};
use crate::actions::{ServiceKind, ServiceOp, op};
use crate::triggers::events::Event;

/// Binance's declaration in the registry.
pub const SPEC: Spec = Spec {
    name: "binance",
    title: "Binance",
    oauth: None,
    token: Some(TokenKind::KeySecret(
        "a Binance API key (read-only is enough) on the first line, its secret on the second",
    )),
    api_url: "https://api.binance.com",
    auth: AuthHeader::Signed,
    headers: &[],
    ok_field: false,
    health: Health::Own(health_boxed),
    run: Some(run_boxed),
    watch: Some(watches),
    mail: None,
    calendar: None,
};

const P: Provider = Provider::Binance;

/// The `recvWindow` of signed requests, in milliseconds (Binance's default).
pub const RECV_WINDOW: u64 = 5000;

/// Server time minus local time, in ms, learnt from `/api/v3/time` after a `-1021`.
static SKEW_MS: AtomicI64 = AtomicI64::new(0);

/// The hex HMAC-SHA256 of `payload` (the query string, then the body) under `secret`.
pub fn sign(secret: &str, payload: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any size");
    mac.update(payload.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// `params` as a query string, then `recvWindow` and `timestamp`, then the signature.
pub fn signed_query(secret: &str, params: &[(&str, String)], timestamp_ms: i64) -> String {
    let mut q: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", form(v)))
        .collect();
    q.push(format!("recvWindow={RECV_WINDOW}"));
    q.push(format!("timestamp={timestamp_ms}"));
    let q = q.join("&");
    let sig = sign(secret, &q);
    format!("{q}&signature={sig}")
}

/// Percent-encodes a query value (what Binance signs is the encoded query as sent).
fn form(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The `binance` action kind's operations (see the module docs).
#[linkme::distributed_slice(crate::actions::SERVICE_KINDS)]
static KIND: ServiceKind = ServiceKind {
    name: "binance",
    doc: "Binance: price (public), balances, open_orders, portfolio (atlas integration connect binance --token).",
    ops: &[
        op("price", &["symbols"], &[]),
        op("balances", &[], &[]),
        op("open_orders", &[], &["symbol"]),
        op("portfolio", &[], &["quote"]),
    ],
};

super::boxed_run!(run);

fn health_boxed<'a>(
    all: &'a Integrations,
    account: &'a Account,
) -> BoxFuture<'a, Result<(), ApiError>> {
    Box::pin(health(all, account))
}

fn watches(ctx: &WatchCtx<'_>) {
    ctx.spawn(PriceAlerts);
}

/// Carries out one operation; see the module docs.
pub async fn run(all: &Integrations, op: &ServiceOp) -> Result<Value, ServiceError> {
    match op.op.as_str() {
        "price" => {
            let symbols: Vec<String> = need(op, "symbols")?
                .split(',')
                .map(|s| s.trim().to_uppercase())
                .filter(|s| !s.is_empty())
                .collect();
            let prices = prices(all, Some(&symbols)).await?;
            let list: Vec<Value> = symbols
                .iter()
                .filter_map(|s| prices.get(s).map(|p| json!({ "symbol": s, "price": p })))
                .collect();
            Ok(json!({ "prices": prices, "list": list }))
        }
        "balances" => Ok(json!({ "balances": balances(all).await? })),
        "open_orders" => {
            let mut params = Vec::new();
            if let Some(s) = op.text("symbol") {
                params.push(("symbol", s.to_uppercase()));
            }
            let v = signed(all, "/api/v3/openOrders", &params).await?;
            let orders: Vec<Value> = v
                .as_array()
                .into_iter()
                .flatten()
                .map(|o| json!({ "symbol": o["symbol"], "side": o["side"], "type": o["type"],
                    "price": num(&o["price"]), "quantity": num(&o["origQty"]), "status": o["status"] }))
                .collect();
            Ok(json!({ "count": orders.len(), "orders": orders }))
        }
        "portfolio" => {
            let quote = op
                .text("quote")
                .unwrap_or_else(|| "USDT".into())
                .to_uppercase();
            portfolio(all, &quote).await
        }
        _ => Err(unknown_op("binance", op)),
    }
}

fn num(v: &Value) -> f64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| v.as_f64())
        .unwrap_or(0.0)
}

/// The non-zero balances.
async fn balances(all: &Integrations) -> Result<Vec<Value>, ServiceError> {
    let v = signed(
        all,
        "/api/v3/account",
        &[("omitZeroBalances", "true".into())],
    )
    .await?;
    Ok(v["balances"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| {
            let (free, locked) = (num(&b["free"]), num(&b["locked"]));
            json!({ "asset": b["asset"], "free": free, "locked": locked, "total": free + locked })
        })
        .filter(|b| b["total"].as_f64().unwrap_or(0.0) > 0.0)
        .collect())
}

async fn portfolio(all: &Integrations, quote: &str) -> Result<Value, ServiceError> {
    let held = balances(all).await?;
    let prices = prices(all, None).await?;
    let mut assets = Vec::new();
    let mut unpriced = Vec::new();
    let mut total = 0.0;
    for b in &held {
        let asset = b["asset"].as_str().unwrap_or_default();
        let amount = b["total"].as_f64().unwrap_or(0.0);
        let value = if asset == quote {
            Some(amount)
        } else if let Some(p) = prices.get(&format!("{asset}{quote}")) {
            Some(amount * p)
        } else {
            prices
                .get(&format!("{quote}{asset}"))
                .filter(|p| **p > 0.0)
                .map(|p| amount / p)
        };
        match value {
            Some(v) => {
                total += v;
                assets.push(json!({ "asset": asset, "amount": amount, "value": (v * 100.0).round() / 100.0 }));
            }
            None => unpriced.push(asset.to_owned()),
        }
    }
    Ok(
        json!({ "total": (total * 100.0).round() / 100.0, "quote": quote, "assets": assets, "unpriced": unpriced }),
    )
}

/// Spot prices of `symbols` (all when `None`), public.
pub async fn prices(
    all: &Integrations,
    symbols: Option<&[String]>,
) -> Result<BTreeMap<String, f64>, ServiceError> {
    let mut query = Vec::new();
    if let Some(s) = symbols {
        if s.len() == 1 {
            query.push(("symbol", s[0].clone()));
        } else {
            query.push(("symbols", serde_json::to_string(s).unwrap_or_default()));
        }
    }
    let v = request(all, "/api/v3/ticker/price", &query, None).await?;
    let list = match v {
        Value::Array(a) => a,
        one => vec![one],
    };
    Ok(list
        .iter()
        .filter_map(|p| Some((p["symbol"].as_str()?.to_owned(), num(&p["price"]))))
        .collect())
}

/// A signed GET of `path` with `params`.
async fn signed(
    all: &Integrations,
    path: &str,
    params: &[(&str, String)],
) -> Result<Value, ServiceError> {
    let account = all.account(P)?;
    Ok(signed_with(all, &account, path, params).await?)
}

async fn signed_with(
    all: &Integrations,
    account: &Account,
    path: &str,
    params: &[(&str, String)],
) -> Result<Value, ApiError> {
    // The access token is the API key; failing here means not connected or needing a new key.
    let key = account.access_token().await?;
    let secret = account
        .tokens()?
        .and_then(|t| t.secret)
        .ok_or_else(|| AccountError::NotConnected(P.name().to_owned()))?;
    match request(all, path, params, Some((&key, &secret))).await {
        Err(ServiceError::Call(IntegrationError::Api(ApiError::Http {
            status, reason, ..
        }))) if status == 401 || matches!(reason.as_deref(), Some("-2015" | "-2014" | "-1022")) => {
            // A pasted key cannot be refreshed: this marks it dead and says so once.
            Err(account
                .after_unauthorized(&key)
                .await
                .err()
                .map(ApiError::Account)
                .unwrap_or(ApiError::Http {
                    service: P.name().to_owned(),
                    status,
                    message: "the API key was refused".into(),
                    reason,
                }))
        }
        Err(ServiceError::Call(IntegrationError::Api(e))) => Err(e),
        Err(e) => Err(ApiError::Transport {
            service: P.name().to_owned(),
            reason: e.to_string(),
        }),
        Ok(v) => Ok(v),
    }
}

/// One GET of `path`: signed with `creds` (key, secret) when given. Rate limits and the clock
/// resync as in the module docs.
async fn request(
    all: &Integrations,
    path: &str,
    params: &[(&str, String)],
    creds: Option<(&str, &str)>,
) -> Result<Value, ServiceError> {
    let base = all.api_url(P);
    let service = P.name();
    let mut tries = 0;
    let mut resynced = false;
    loop {
        let query = match creds {
            Some((_, secret)) => {
                let ts = chrono::Utc::now().timestamp_millis() + SKEW_MS.load(Ordering::Relaxed);
                signed_query(secret, params, ts)
            }
            None => params
                .iter()
                .map(|(k, v)| format!("{k}={}", form(v)))
                .collect::<Vec<_>>()
                .join("&"),
        };
        let url = if query.is_empty() {
            format!("{base}{path}")
        } else {
            format!("{base}{path}?{query}")
        };
        let mut b = all.http().get(&url);
        if let Some((key, _)) = creds {
            b = b.header("X-MBX-APIKEY", key);
        }
        let resp = b.send().await.map_err(|e| ApiError::Transport {
            service: service.to_owned(),
            // Without the URL: it carries the signature.
            reason: e.without_url().to_string(),
        })?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.unwrap_or_default();
        if status.as_u16() == 418 {
            let wait = api::retry_after(&headers).unwrap_or(Duration::from_secs(120));
            return Err(api::rate_limited_for(service, wait).into());
        }
        match api::judge(service, false, status, &headers, &body) {
            Judged::Ok(v) => return Ok(v),
            Judged::RateLimited(wait) => {
                let wait = wait.unwrap_or(Duration::from_secs(1 << tries));
                if tries >= RATE_RETRIES || wait > MAX_RETRY_AFTER {
                    return Err(api::rate_limited_for(service, wait).into());
                }
                tries += 1;
                tracing::info!(
                    integration = service,
                    wait_s = wait.as_secs_f64(),
                    "rate-limited; waiting"
                );
                tokio::time::sleep(wait).await;
            }
            Judged::Failed(ApiError::Http {
                reason: Some(r), ..
            }) if r == "-1021" && !resynced && creds.is_some() => {
                resynced = true;
                let t = Box::pin(request(all, "/api/v3/time", &[], None)).await?;
                if let Some(server) = t["serverTime"].as_i64() {
                    let skew = server - chrono::Utc::now().timestamp_millis();
                    tracing::info!(
                        skew_ms = skew,
                        "Binance's clock differs; signing with its time"
                    );
                    SKEW_MS.store(skew, Ordering::Relaxed);
                }
            }
            Judged::Unauthorized(e) | Judged::Failed(e) => return Err(e.into()),
        }
    }
}

/// The health check: a signed account read.
pub(crate) async fn health(all: &Integrations, account: &Account) -> Result<(), ApiError> {
    signed_with(
        all,
        account,
        "/api/v3/account",
        &[("omitZeroBalances", "true".into())],
    )
    .await
    .map(drop)
}

/// The `crypto.price` trigger's source; see the module docs.
#[derive(Debug, Default)]
pub struct PriceAlerts;

/// What [`PriceAlerts`] remembers: for each alert, whether the price was across it last time.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct AlertsState {
    across: BTreeMap<String, bool>,
}

impl Poller for PriceAlerts {
    type State = AlertsState;
    const NAME: &'static str = "binance";
    const PROVIDER: Provider = P;
    const NEEDS_ACCOUNT: bool = false;

    async fn poll<'a>(
        &'a self,
        all: &'a Integrations,
        state: &'a mut AlertsState,
        _first: bool,
    ) -> Result<Vec<Event>, ServiceError> {
        let alerts = P
            .config(all.config())
            .and_then(|c| c.alerts.clone())
            .unwrap_or_default();
        if alerts.is_empty() {
            return Ok(Vec::new());
        }
        let mut symbols: Vec<String> = alerts.iter().map(|a| a.symbol.to_uppercase()).collect();
        symbols.sort();
        symbols.dedup();
        let prices = prices(all, Some(&symbols)).await?;
        let mut events = Vec::new();
        for a in &alerts {
            let symbol = a.symbol.to_uppercase();
            let Some(price) = prices.get(&symbol).copied() else {
                continue;
            };
            let sides = [("above", a.above), ("below", a.below)];
            for (direction, threshold) in sides {
                let Some(threshold) = threshold else { continue };
                let across = if direction == "above" {
                    price > threshold
                } else {
                    price < threshold
                };
                let key = format!("{symbol} {direction} {threshold}");
                // Announced on crossing: not at the first look, not while it stays across.
                let was = state.across.insert(key, across);
                if across && was == Some(false) {
                    events.push(Event::new(
                        "binance",
                        "crypto.price",
                        json!({ "symbol": symbol, "price": price, "threshold": threshold, "direction": direction }),
                    ));
                }
            }
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Binance's documented example (Spot API docs, "SIGNED endpoint examples", HMAC).
    #[test]
    fn the_signer_reproduces_binances_documented_example() {
        let secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
        let query = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559";
        assert_eq!(
            sign(secret, query),
            "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
        );
        let params = [
            ("symbol", "LTCBTC".to_owned()),
            ("side", "BUY".to_owned()),
            ("type", "LIMIT".to_owned()),
            ("timeInForce", "GTC".to_owned()),
            ("quantity", "1".to_owned()),
            ("price", "0.1".to_owned()),
        ];
        assert_eq!(
            signed_query(secret, &params, 1_499_827_319_559),
            format!(
                "{query}&signature=c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
            )
        );
        // Values are signed as sent: percent-encoded.
        assert!(
            signed_query(secret, &[("symbols", "[\"A\",\"B\"]".into())], 1)
                .starts_with("symbols=%5B%22A%22%2C%22B%22%5D&")
        );
    }
}
