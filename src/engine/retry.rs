//! Waits between the tries of an action: exponential backoff with a cap and jitter, lengthened
//! to what a server asked for (`Retry-After`), computed so that no policy can overflow.

use std::time::Duration;

use rand::Rng;

use crate::workflow::{MAX_RETRY_DELAY, RetryDef};

/// The wait before retry number `attempt + 1`: `delay * backoff^(attempt-1)`, capped at
/// `max_delay`, jittered, and never more than [`MAX_RETRY_DELAY`]. Saturating throughout: no
/// `RetryDef`, valid or not, overflows or makes NaN here.
pub(crate) fn backoff(r: &RetryDef, attempt: u32) -> Duration {
    let ceiling = MAX_RETRY_DELAY.as_secs_f64();
    let cap = r
        .max_delay
        .map_or(ceiling, |m| m.0.as_secs_f64().min(ceiling));
    let delay = r.delay.0.as_secs_f64();
    let factor = if r.backoff.is_finite() && r.backoff > 1.0 {
        // Past 1024 doublings any factor above 1 has long passed every cap.
        r.backoff.powi(attempt.saturating_sub(1).min(1024) as i32)
    } else {
        1.0
    };
    // `0 * inf` is NaN: a zero delay stays zero whatever the factor.
    let grown = if delay == 0.0 { 0.0 } else { delay * factor };
    let capped = if grown.is_finite() {
        grown.min(cap)
    } else {
        cap
    };
    let jitter = if r.jitter.is_finite() {
        r.jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let varied = if jitter > 0.0 {
        capped * (1.0 + rand::rng().random_range(-jitter..=jitter))
    } else {
        capped
    };
    Duration::try_from_secs_f64(varied.clamp(0.0, ceiling)).unwrap_or(MAX_RETRY_DELAY)
}

/// The wait before the next try: the backoff, or longer when the server asked for it
/// (`Retry-After`), but never more than `max_delay` (or [`MAX_RETRY_DELAY`]).
pub(crate) fn retry_wait(r: &RetryDef, attempt: u32, asked: Option<Duration>) -> Duration {
    let wait = backoff(r, attempt);
    match asked {
        Some(asked) if asked > wait => {
            let cap = r
                .max_delay
                .map_or(MAX_RETRY_DELAY, |m| m.0.min(MAX_RETRY_DELAY));
            asked.min(cap).max(wait)
        }
        _ => wait,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::Dur;

    #[test]
    fn backoff_grows_and_is_capped() {
        let r = RetryDef {
            attempts: 5,
            delay: Dur(Duration::from_millis(100)),
            backoff: 2.0,
            max_delay: Some(Dur(Duration::from_millis(300))),
            jitter: 0.0,
        };
        let waits: Vec<u128> = (1..=4).map(|a| backoff(&r, a).as_millis()).collect();
        assert_eq!(waits, vec![100, 200, 300, 300]);
        let j = RetryDef { jitter: 0.5, ..r };
        for _ in 0..50 {
            let w = backoff(&j, 1).as_millis();
            assert!((50..=150).contains(&w), "{w}");
        }
    }

    #[test]
    fn backoff_never_overflows_whatever_the_policy() {
        // The file: `0 * 1e300^k` made NaN and `Duration::from_secs_f64` panicked.
        let r = RetryDef {
            attempts: 4,
            delay: Dur(Duration::ZERO),
            backoff: 1.0e300,
            max_delay: None,
            jitter: 0.0,
        };
        for attempt in [1, 2, 3, 4, u32::MAX] {
            assert_eq!(backoff(&r, attempt), Duration::ZERO);
        }
        // A real delay grown past every bound is held at the ceiling, also with jitter,
        // infinite or NaN factors, and attempt counts beyond `i32`.
        let big = RetryDef {
            delay: Dur(Duration::from_secs(1)),
            jitter: 1.0,
            ..r.clone()
        };
        for attempt in [3, 1000, u32::MAX / 2 + 7, u32::MAX] {
            assert!(backoff(&big, attempt) <= MAX_RETRY_DELAY);
        }
        for factor in [f64::INFINITY, f64::NAN, -3.0] {
            let odd = RetryDef {
                backoff: factor,
                jitter: f64::NAN,
                ..big.clone()
            };
            assert_eq!(backoff(&odd, 9), Duration::from_secs(1), "{factor}");
        }
    }

    #[test]
    fn retry_after_lengthens_the_wait_up_to_the_cap() {
        let r = RetryDef {
            attempts: 3,
            delay: Dur(Duration::from_millis(10)),
            backoff: 1.0,
            max_delay: Some(Dur(Duration::from_secs(5))),
            jitter: 0.0,
        };
        let secs = Duration::from_secs;
        assert_eq!(retry_wait(&r, 1, None), Duration::from_millis(10));
        assert_eq!(retry_wait(&r, 1, Some(secs(2))), secs(2));
        assert_eq!(
            retry_wait(&r, 1, Some(secs(600))),
            secs(5),
            "max_delay caps it"
        );
        let uncapped = RetryDef {
            max_delay: None,
            ..r.clone()
        };
        assert_eq!(
            retry_wait(&uncapped, 1, Some(secs(86_400))),
            MAX_RETRY_DELAY
        );
        // A server asking for less than the backoff does not shorten it.
        assert_eq!(
            retry_wait(&r, 1, Some(Duration::ZERO)),
            Duration::from_millis(10)
        );
    }
}
