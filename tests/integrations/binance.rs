//! Binance against the fake, which checks every signed request as Binance does (the key, the
//! HMAC-SHA256 over the query as sent, the `recvWindow` around its own clock): public prices
//! without a key, balances, open orders and the portfolio valued in USDT, a clock 10 s off
//! resynced, a wrong secret and a revoked key, 429 waited out, 418 never retried, the price
//! threshold trigger.

use std::sync::Arc;

use atlas::config::PriceAlert;
use atlas::integrations::binance::PriceAlerts;
use atlas::integrations::watch::Watch;
use atlas::integrations::{IntegrationError, Provider};
use atlas::secrets::SecretStore;
use serde_json::json;

use super::fake::Canned;
use super::harness::{Setup, setup, setup_with};

const KEY: &str = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
const SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";

fn market(s: &Setup) {
    s.fake.set(|i| {
        for (sym, p) in [("BTCUSDT", "101234.56000000"), ("ETHUSDT", "3850.10000000"), ("BNBBTC", "0.00620000"), ("USDTTRY", "34.20000000")] {
            i.prices.insert(sym.into(), p.into());
        }
        i.balances = vec![
            json!({"asset": "BTC", "free": "0.50000000", "locked": "0.00000000"}),
            json!({"asset": "ETH", "free": "2.00000000", "locked": "1.00000000"}),
            json!({"asset": "USDT", "free": "250.00000000", "locked": "0.00000000"}),
            json!({"asset": "NOPE", "free": "12.00000000", "locked": "0.00000000"}),
        ];
        i.orders = vec![json!({"symbol": "ETHUSDT", "orderId": 1, "price": "4000.00000000", "origQty": "1.00000000", "status": "NEW", "type": "LIMIT", "side": "SELL"})];
    });
}

#[tokio::test]
async fn prices_are_public_and_signed_reads_value_the_portfolio() {
    let s = setup().await;
    market(&s);
    // No key needed for prices.
    let v = s
        .op(
            "binance",
            "price",
            &[("symbols", json!("btcusdt, ETHUSDT"))],
        )
        .await
        .unwrap();
    assert_eq!(v["prices"]["BTCUSDT"], 101234.56);
    assert_eq!(v["list"][1]["symbol"], "ETHUSDT");
    let one = s
        .op("binance", "price", &[("symbols", json!("BTCUSDT"))])
        .await
        .unwrap();
    assert_eq!(one["list"][0]["price"], 101234.56);
    let err = s
        .op("binance", "price", &[("symbols", json!("DOGEXYZ"))])
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "binance answered HTTP 400: Invalid symbol."
    );
    let err = s.op("binance", "balances", &[]).await.unwrap_err();
    assert!(err.to_string().contains("not connected"), "{err}");

    s.paste(Provider::Binance, KEY, Some(SECRET)).await;
    assert_eq!(s.all.status(Provider::Binance).auth, "key and secret");
    let v = s.op("binance", "balances", &[]).await.unwrap();
    assert_eq!(
        v["balances"][1],
        json!({"asset": "ETH", "free": 2.0, "locked": 1.0, "total": 3.0})
    );
    let v = s
        .op("binance", "open_orders", &[("symbol", json!("ethusdt"))])
        .await
        .unwrap();
    assert_eq!(
        v["orders"][0],
        json!({"symbol": "ETHUSDT", "side": "SELL", "type": "LIMIT", "price": 4000.0, "quantity": 1.0, "status": "NEW"})
    );
    let v = s.op("binance", "portfolio", &[]).await.unwrap();
    // 0.5 BTC * 101234.56 + 3 ETH * 3850.10 + 250 USDT.
    assert_eq!(v["total"], 62417.58);
    assert_eq!(v["unpriced"], json!(["NOPE"]));
    // The key went in the header, the secret nowhere.
    let calls = s.fake.get(|i| i.calls.join("\n"));
    assert!(!calls.contains(SECRET));
    assert!(calls.contains("recvWindow=5000&timestamp="), "{calls}");
    assert!(s.fake.get(|i| {
        i.headers_seen
            .contains(&("x-mbx-apikey".into(), KEY.into()))
    }));
}

#[tokio::test]
async fn clock_skew_wrong_secrets_revoked_keys_and_rate_limits() {
    let s = setup().await;
    market(&s);
    // A wrong secret: -1022 at the connect check, nothing stored.
    s.fake.set(|i| {
        i.tokens.insert(KEY.into());
        i.secrets.insert(KEY.into(), SECRET.into());
    });
    let err = s
        .all
        .connect_token(Provider::Binance, KEY.into(), Some("not-the-secret".into()))
        .await
        .unwrap_err();
    assert!(matches!(err, IntegrationError::Refused { .. }), "{err}");
    assert!(s.vault.get("integration.binance.token").unwrap().is_none());
    // A key without its secret is refused before anything is sent.
    let err = s
        .all
        .connect_token(Provider::Binance, KEY.into(), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("secret on the next line"), "{err}");

    s.paste(Provider::Binance, KEY, Some(SECRET)).await;
    // Binance's clock 10 s ahead: -1021, one resync with /api/v3/time, then it works.
    s.fake.set(|i| i.skew_ms = 10_000);
    assert!(s.op("binance", "balances", &[]).await.is_ok());
    assert!(
        s.fake
            .calls("binance")
            .iter()
            .any(|c| c.starts_with("GET /api/v3/time"))
    );
    // 429 waited out; 418 (banned) never retried.
    s.fake.can(
        "binance",
        Canned {
            status: 429,
            headers: vec![("retry-after", "1".into())],
            body: json!({"code": -1003, "msg": "Too much request weight used."}),
        },
    );
    assert!(s.op("binance", "balances", &[]).await.is_ok());
    let before = s.fake.calls("binance").len();
    s.fake.can("binance", Canned { status: 418, headers: vec![("retry-after", "300".into())], body: json!({"code": -1003, "msg": "Way too much request weight used; IP banned until 1733480000000."}) });
    let err = s.op("binance", "balances", &[]).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "binance is rate-limiting Atlas: try again in 300 s"
    );
    assert_eq!(
        s.fake.calls("binance").len(),
        before + 1,
        "a 418 is not retried"
    );
    // The key deleted at Binance: -2015, needs_reauth.
    s.fake.set(|i| i.tokens.clear());
    let err = s.op("binance", "balances", &[]).await.unwrap_err();
    assert!(err.to_string().contains("sign in again"), "{err}");
    assert_eq!(s.state(Provider::Binance), "needs_reauth");
}

#[tokio::test]
async fn a_price_crossing_its_threshold_is_announced_once_per_crossing() {
    let s = setup_with(|c| {
        c.providers.get_mut("binance").unwrap().alerts = Some(vec![PriceAlert {
            symbol: "btcusdt".into(),
            above: Some(100_000.0),
            below: None,
        }]);
    })
    .await;
    let price = |p: &str| {
        s.fake.set(|i| {
            i.prices.insert("BTCUSDT".into(), p.into());
        })
    };
    price("99000.00");
    let mut events = s.hub.subscribe();
    let watch = Watch::new(PriceAlerts, Arc::clone(&s.all), s.hub.clone(), s.dir.path());
    assert_eq!(watch.poll().await.unwrap(), 0);
    price("101000.50");
    assert_eq!(watch.poll().await.unwrap(), 1);
    let e = events.recv().await.unwrap();
    assert_eq!(
        (e.source.as_str(), e.kind.as_str()),
        ("binance", "crypto.price")
    );
    assert_eq!(
        e.data,
        json!({"symbol": "BTCUSDT", "price": 101000.5, "threshold": 100000.0, "direction": "above"})
    );
    assert_eq!(
        watch.poll().await.unwrap(),
        0,
        "staying above is not a new crossing"
    );
    price("98000");
    assert_eq!(watch.poll().await.unwrap(), 0);
    price("100500");
    let again = Watch::new(PriceAlerts, Arc::clone(&s.all), s.hub.clone(), s.dir.path());
    assert_eq!(
        again.poll().await.unwrap(),
        1,
        "a new crossing, after a restart too"
    );
}
