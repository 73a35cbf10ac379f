//! The monitor's clock: raw TSC ticks (through `quanta`, calibrated once against the OS clock),
//! cheaper than `Instant::now()`, converted to nanoseconds and wall time only when read.

use chrono::{DateTime, Utc};
use std::sync::LazyLock;

struct Anchor {
    clock: quanta::Clock,
    raw: u64,
    wall: DateTime<Utc>,
}

static ANCHOR: LazyLock<Anchor> = LazyLock::new(|| {
    let clock = quanta::Clock::new();
    let raw = clock.raw();
    Anchor { clock, raw, wall: Utc::now() }
});

/// Raw ticks now; only differences and [`to_wall`] give them meaning.
#[inline]
pub(crate) fn now() -> u64 {
    ANCHOR.clock.raw()
}

/// Nanoseconds between two raw readings (0 if `end` is before `start`).
#[inline]
pub(crate) fn nanos_between(start: u64, end: u64) -> u64 {
    if end <= start { 0 } else { ANCHOR.clock.delta_as_nanos(start, end) }
}

/// Wall-clock time of a raw reading.
pub(crate) fn to_wall(raw: u64) -> DateTime<Utc> {
    let anchor = &*ANCHOR;
    let offset = i64::try_from(nanos_between(anchor.raw, raw)).unwrap_or(i64::MAX);
    anchor.wall + chrono::Duration::nanoseconds(offset)
}

/// Whole seconds from the clock's anchor to a raw reading (the rate limiter's window).
#[inline]
pub(crate) fn seconds(raw: u64) -> u64 {
    nanos_between(ANCHOR.raw, raw) / 1_000_000_000
}
