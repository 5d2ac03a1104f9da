//! Webhook signatures: the three schemes senders use, checked on the raw body bytes before
//! anything parses them.
//!
//! - **GitHub**: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`; no timestamp,
//!   the delivery id is `X-GitHub-Delivery` (kept on redelivery, so a replay is seen).
//! - **Slack**: `X-Slack-Signature: v0=<hex HMAC-SHA256(secret, "v0:{ts}:{body}")>` with
//!   `X-Slack-Request-Timestamp: {ts}`.
//! - **Standard Webhooks**: `webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{ts}.{body}")>`
//!   (several space-separated, any may match), `webhook-id`, `webhook-timestamp`; the key is the
//!   base64 after `whsec_`.
//!
//! Comparisons are constant-time, length included. A timestamp more than [`TOLERANCE_SECS`] away
//! from now, either way, is refused: a captured request cannot be replayed later.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far a signed timestamp may be from now, in seconds (Slack's and Standard Webhooks' 5 min).
pub const TOLERANCE_SECS: i64 = 300;

pub use crate::spec::Scheme;

/// What a valid signature established.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verified {
    /// The sender's delivery id, when the scheme has one: the key for refusing replays.
    pub delivery: Option<String>,
}

/// Why a delivery was refused. The texts name headers, never the secret or a signature value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A header the scheme needs is absent.
    #[error("the {0} header is missing")]
    Missing(&'static str),
    /// A header is present but not in the scheme's form.
    #[error("the {header} header is malformed: expected {expected}")]
    Malformed {
        /// Which header.
        header: &'static str,
        /// Its expected form.
        expected: &'static str,
    },
    /// The signature does not match the body.
    #[error("the signature does not match the body")]
    Mismatch,
    /// The signed timestamp is too far from now.
    #[error("the signed timestamp is {age} s from now (at most {TOLERANCE_SECS} s is accepted)")]
    Stale {
        /// Seconds between the timestamp and now (positive: in the past).
        age: i64,
    },
    /// The secret is not usable for the scheme (a Standard Webhooks key that is not base64).
    #[error("the configured secret is not a valid {0} key")]
    BadSecret(&'static str),
}

/// Checks `body` against the signature headers of `scheme`. `header` looks a header up by its
/// lowercase name; `now` is the current Unix time in seconds.
pub fn verify(
    scheme: Scheme,
    secret: &str,
    header: impl Fn(&str) -> Option<String>,
    body: &[u8],
    now: i64,
) -> Result<Verified, Refusal> {
    match scheme {
        Scheme::None => Ok(Verified::default()),
        Scheme::Github => {
            let given = required(&header, "x-hub-signature-256")?;
            let hex_sig = given.strip_prefix("sha256=").ok_or(Refusal::Malformed {
                header: "x-hub-signature-256",
                expected: "sha256=<hex>",
            })?;
            let given = decode_hex(hex_sig, "x-hub-signature-256")?;
            matches(&hmac(secret.as_bytes(), &[body]), &given)?;
            Ok(Verified {
                delivery: header("x-github-delivery"),
            })
        }
        Scheme::Slack => {
            let ts = required(&header, "x-slack-request-timestamp")?;
            fresh(parse_ts(&ts, "x-slack-request-timestamp")?, now)?;
            let given = required(&header, "x-slack-signature")?;
            let hex_sig = given.strip_prefix("v0=").ok_or(Refusal::Malformed {
                header: "x-slack-signature",
                expected: "v0=<hex>",
            })?;
            let given = decode_hex(hex_sig, "x-slack-signature")?;
            let base = format!("v0:{ts}:");
            matches(&hmac(secret.as_bytes(), &[base.as_bytes(), body]), &given)?;
            Ok(Verified::default())
        }
        Scheme::Standard => standard(secret, &header, body, now),
    }
}

/// Standard Webhooks: any `v1,` signature in the list may match.
fn standard(
    secret: &str,
    header: &impl Fn(&str) -> Option<String>,
    body: &[u8],
    now: i64,
) -> Result<Verified, Refusal> {
    let id = required(header, "webhook-id")?;
    let ts = required(header, "webhook-timestamp")?;
    fresh(parse_ts(&ts, "webhook-timestamp")?, now)?;
    let signatures = required(header, "webhook-signature")?;
    let key = BASE64
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|_| Refusal::BadSecret("Standard Webhooks"))?;
    let prefix = format!("{id}.{ts}.");
    let expected = hmac(&key, &[prefix.as_bytes(), body]);
    let mut any_v1 = false;
    for candidate in signatures.split_whitespace() {
        let Some(b64) = candidate.strip_prefix("v1,") else {
            continue;
        };
        any_v1 = true;
        if let Ok(given) = BASE64.decode(b64)
            && matches(&expected, &given).is_ok()
        {
            return Ok(Verified { delivery: Some(id) });
        }
    }
    if any_v1 {
        Err(Refusal::Mismatch)
    } else {
        Err(Refusal::Malformed {
            header: "webhook-signature",
            expected: "one or more space-separated v1,<base64>",
        })
    }
}

/// A header that must be present.
fn required(
    header: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<String, Refusal> {
    header(name).ok_or(Refusal::Missing(name))
}

/// HMAC-SHA256 of the concatenated parts.
fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any size");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// Constant-time equality, length included.
fn matches(expected: &[u8], given: &[u8]) -> Result<(), Refusal> {
    if bool::from(expected.ct_eq(given)) {
        Ok(())
    } else {
        Err(Refusal::Mismatch)
    }
}

fn decode_hex(text: &str, header: &'static str) -> Result<Vec<u8>, Refusal> {
    hex::decode(text.trim()).map_err(|_| Refusal::Malformed {
        header,
        expected: "a hex digest",
    })
}

fn parse_ts(text: &str, header: &'static str) -> Result<i64, Refusal> {
    text.trim().parse().map_err(|_| Refusal::Malformed {
        header,
        expected: "Unix seconds",
    })
}

fn fresh(ts: i64, now: i64) -> Result<(), Refusal> {
    let age = now.saturating_sub(ts);
    if age.abs() > TOLERANCE_SECS {
        Err(Refusal::Stale { age })
    } else {
        Ok(())
    }
}

/// Signs `body` the way a sender of `scheme` would: the headers to send. For tests, benchmarks
/// and `atlas webhook sign`.
pub fn sign(
    scheme: Scheme,
    secret: &str,
    body: &[u8],
    id: &str,
    now: i64,
) -> Vec<(String, String)> {
    let pair = |k: &str, v: String| (k.to_string(), v);
    match scheme {
        Scheme::None => vec![],
        Scheme::Github => vec![
            pair(
                "x-hub-signature-256",
                format!("sha256={}", hex::encode(hmac(secret.as_bytes(), &[body]))),
            ),
            pair("x-github-delivery", id.to_string()),
        ],
        Scheme::Slack => {
            let base = format!("v0:{now}:");
            let mac = hmac(secret.as_bytes(), &[base.as_bytes(), body]);
            vec![
                pair("x-slack-request-timestamp", now.to_string()),
                pair("x-slack-signature", format!("v0={}", hex::encode(mac))),
            ]
        }
        Scheme::Standard => {
            let key = BASE64
                .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
                .unwrap_or_else(|_| secret.as_bytes().to_vec());
            let prefix = format!("{id}.{now}.");
            let mac = hmac(&key, &[prefix.as_bytes(), body]);
            vec![
                pair("webhook-id", id.to_string()),
                pair("webhook-timestamp", now.to_string()),
                pair("webhook-signature", format!("v1,{}", BASE64.encode(mac))),
            ]
        }
    }
}

#[cfg(test)]
#[path = "signature_tests.rs"]
mod tests;
