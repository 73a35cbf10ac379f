//! When an OTLP request is tried again, and after how long, as the OTLP/HTTP specification says:
//! only network errors and the statuses 429, 502, 503 and 504 are retryable (a 500 or a 400 is
//! not: sending the same data again would fail again); the wait doubles from 100 ms up to 5 s,
//! with jitter (a uniform pick in its upper half, so that many exporters that failed together
//! do not come back together), unless the server's `Retry-After` says how long; and the whole
//! is bounded by the export's deadline (the caller gives up when the wait would outlast it).

use chrono::{DateTime, Utc};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The first wait.
const FIRST: Duration = Duration::from_millis(100);
/// The longest computed wait (a `Retry-After` may ask for more, within the deadline).
const LONGEST: Duration = Duration::from_secs(5);

/// Whether an answer with `status` may be retried.
pub(super) fn retryable_status(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// The wait before retry number `retry` (1 for the first retry): `100 ms * 2^(retry-1)`, at
/// most 5 s, then a uniform pick in `[wait/2, wait]`.
pub(super) fn backoff(retry: u32) -> Duration {
    let full = FIRST.saturating_mul(1 << retry.saturating_sub(1).min(16)).min(LONGEST);
    let nanos = u64::try_from(full.as_nanos()).unwrap_or(u64::MAX);
    let half = nanos / 2;
    Duration::from_nanos(half + random() % (nanos - half + 1))
}

/// A `Retry-After` value: delay-seconds (`120`) or an HTTP-date (`Wed, 21 Oct 2015 07:28:00
/// GMT`, counted from `now`; a date in the past means at once). `None` when it is neither.
pub(super) fn retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    Some((at.with_timezone(&Utc) - now).to_std().unwrap_or(Duration::ZERO))
}

/// A cheap pseudo-random number for the jitter (splitmix64 over a counter seeded by the clock):
/// the jitter needs spread, not secrecy.
fn random() -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let clock = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| u64::from(d.subsec_nanos()));
    let mut z = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed).wrapping_add(clock);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_specification_s_statuses_are_retried() {
        for status in [429, 502, 503, 504] {
            assert!(retryable_status(status), "{status}");
        }
        for status in [400, 401, 403, 404, 413, 500, 501, 505] {
            assert!(!retryable_status(status), "{status}");
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_stays_bounded() {
        for _ in 0..200 {
            let first = backoff(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100), "{first:?}");
            let third = backoff(3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400), "{third:?}");
            let late = backoff(40);
            assert!(late >= Duration::from_millis(2500) && late <= LONGEST, "{late:?}");
        }
        let picks: std::collections::HashSet<Duration> = (0..50).map(|_| backoff(4)).collect();
        assert!(picks.len() > 10, "jitter spreads the waits: {picks:?}");
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = DateTime::parse_from_rfc2822("Wed, 21 Oct 2015 07:28:00 GMT").unwrap().with_timezone(&Utc);
        assert_eq!(retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now), Some(Duration::from_secs(30)));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-1", now), None);
    }
}
