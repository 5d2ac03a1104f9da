//! Client-side pacing, so Atlas stays inside a provider's published limits instead of learning
//! them from 429s: a minimum interval between calls with the same key (Slack's method tiers:
//! tier 2 is 20+ a minute, so one call every 3 s; `chat.postMessage` about one a second per
//! channel), and a key blocked until an instant the server named (Discord's buckets:
//! `X-RateLimit-Remaining: 0` with `X-RateLimit-Reset-After`).
//!
//! One [`Pacer`] per account; a std mutex is right here, as it is held only to read and update
//! the map, never across an `.await`. Every wait is bounded by the caller's limit: a longer one
//! is refused, so the call fails with "rate-limited, try again in N s" instead of hanging.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Per-key pacing; see the module docs.
#[derive(Debug, Default)]
pub struct Pacer {
    next: Mutex<HashMap<String, Instant>>,
}

impl Pacer {
    /// Waits until a call with `key` may go, then books the next slot `interval` later. Returns
    /// `Err(wait)` without waiting when the wait would exceed `limit`.
    pub async fn slot(
        &self,
        key: &str,
        interval: Duration,
        limit: Duration,
    ) -> Result<(), Duration> {
        let wait = self.book(key, interval, limit, Instant::now())?;
        if !wait.is_zero() {
            tracing::debug!(key, wait_ms = wait.as_millis() as u64, "pacing a call");
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }

    /// The booking behind [`Pacer::slot`] at `now`: the wait before the call may go.
    fn book(
        &self,
        key: &str,
        interval: Duration,
        limit: Duration,
        now: Instant,
    ) -> Result<Duration, Duration> {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let at = next.get(key).copied().unwrap_or(now).max(now);
        let wait = at - now;
        if wait > limit {
            return Err(wait);
        }
        next.insert(key.to_owned(), at + interval);
        Ok(wait)
    }

    /// No call with `key` before `after` from now (a bucket the server said is empty).
    pub fn block(&self, key: &str, after: Duration) {
        self.block_at(key, after, Instant::now());
    }

    fn block_at(&self, key: &str, after: Duration, now: Instant) {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let until = now + after;
        let e = next.entry(key.to_owned()).or_insert(until);
        *e = (*e).max(until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_with_one_key_are_spaced_and_a_blocked_key_waits() {
        let p = Pacer::default();
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let limit = s(60);
        let history = "conversations.history";
        // Three calls at once: the second waits one interval, the third two.
        let waits: Vec<Duration> = (0..3)
            .map(|_| p.book(history, s(3), limit, t0).unwrap())
            .collect();
        assert_eq!(waits, [s(0), s(3), s(6)]);
        // Later than the booked slot: no wait.
        assert_eq!(p.book(history, s(3), limit, t0 + s(20)).unwrap(), s(0));
        // Another key is not held up.
        assert_eq!(
            p.book("chat.postMessage:C1", s(1), limit, t0).unwrap(),
            s(0)
        );
        // A bucket the server emptied for 1.5 s.
        p.block_at("channels/C1", Duration::from_millis(1500), t0);
        assert_eq!(
            p.book("channels/C1", Duration::ZERO, limit, t0).unwrap(),
            Duration::from_millis(1500)
        );
        // A wait beyond the limit is refused (and books nothing).
        p.block_at("channels/C2", s(120), t0);
        assert_eq!(
            p.book("channels/C2", Duration::ZERO, limit, t0),
            Err(s(120))
        );
        assert_eq!(
            p.book("channels/C2", Duration::ZERO, limit, t0 + s(120)),
            Ok(s(0))
        );
    }
}
