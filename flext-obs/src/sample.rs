//! Span sampling: which finished spans are kept (in the recent-spans buffer, `/traces`) and
//! exported (OTLP). Metrics are never sampled: every call is counted and timed.
//!
//! The decision has three parts, as in OpenTelemetry's `ParentBased(TraceIdRatioBased)` plus
//! two rules of its own:
//! - **head decision** when a span starts: a span with a parent follows the parent's W3C sampled
//!   flag (parent based, the default) or, with parent-based off, the trace-ID ratio; a root span
//!   is sampled when its trace ID falls under the ratio. The ratio test reads only the trace ID,
//!   so every service that uses it makes the same decision for one trace;
//! - **keep errors**: a failed or panicking call is always kept, even when its trace was not
//!   sampled and beyond the rate limit;
//! - **rate limit**: at most N sampled spans per second per function are kept; the rest are
//!   dropped and counted in `flext_spans_dropped_total{function, reason="rate_limit"}`.
//!
//! The decision is carried in the span's sampled flag, so an outgoing `traceparent` header tells
//! the next service what was decided here.
//!
//! ```
//! use flext_obs::sample::Sampler;
//! let sampler = Sampler::builder().ratio(0.25).max_per_second(100).build()?;
//! assert_eq!(sampler.ratio(), 0.25);
//! assert!(Sampler::builder().ratio(1.5).build().is_err());
//! assert!(Sampler::builder().ratio(f64::NAN).build().is_err());
//! # Ok::<(), flext_obs::Error>(())
//! ```

use crate::entity::TraceId;
use crate::error::{Error, Result};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// The sampling rules. The default keeps everything: ratio 1, parent based, errors kept, no
/// rate limit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampler {
    ratio: f64,
    parent_based: bool,
    keep_errors: bool,
    max_per_second: Option<u32>,
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler { ratio: 1.0, parent_based: true, keep_errors: true, max_per_second: None }
    }
}

/// Builder for [`Sampler`]; [`build`](SamplerBuilder::build) validates.
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct SamplerBuilder(Sampler);

impl Sampler {
    /// Starts from the default (keep everything).
    pub fn builder() -> SamplerBuilder {
        SamplerBuilder(Sampler::default())
    }

    /// Share of new traces sampled, 0 to 1.
    pub fn ratio(&self) -> f64 {
        self.ratio
    }
    /// Whether a span with a parent follows the parent's sampled flag.
    pub fn parent_based(&self) -> bool {
        self.parent_based
    }
    /// Whether failed and panicking calls are kept whatever the trace's decision.
    pub fn keep_errors(&self) -> bool {
        self.keep_errors
    }
    /// Most spans kept per second per function, if limited.
    pub fn max_per_second(&self) -> Option<u32> {
        self.max_per_second
    }

    /// Makes these the rules every monitored call follows from now on (done by
    /// [`crate::init`] with the configuration's sampler). Rules installed here are kept when
    /// [`crate::global`] later builds the process-wide instance from the environment.
    ///
    /// ```
    /// use flext_obs::sample::{self, Sampler};
    /// Sampler::builder().ratio(0.5).build()?.install();
    /// let _ = flext_obs::global(); // built on first use: does not undo the choice above
    /// assert_eq!(sample::current().ratio(), 0.5);
    /// Sampler::default().install();
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn install(&self) {
        self.apply();
        CHOSEN.store(true, Ordering::Relaxed);
    }

    /// Installs the environment's rules when the process-wide instance is built on first use,
    /// unless rules were installed already (so that a program's own choice is not undone by
    /// whichever call happens to touch [`crate::global`] first).
    pub(crate) fn install_unless_chosen(&self) {
        if !CHOSEN.load(Ordering::Relaxed) {
            self.apply();
        }
    }

    fn apply(&self) {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // ratio is in [0, 1]: the product is in [0, 2^63]
        let threshold = (self.ratio * RATIO_SCALE) as u64;
        THRESHOLD.store(threshold, Ordering::Relaxed);
        PARENT_BASED.store(self.parent_based, Ordering::Relaxed);
        KEEP_ERRORS.store(self.keep_errors, Ordering::Relaxed);
        MAX_PER_SECOND.store(self.max_per_second.unwrap_or(0), Ordering::Relaxed);
        *CURRENT.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = *self;
    }
}

impl SamplerBuilder {
    /// Share of new traces sampled (default 1: all).
    pub fn ratio(mut self, ratio: f64) -> Self {
        self.0.ratio = ratio;
        self
    }
    /// Follow the parent's sampled flag (default true).
    pub fn parent_based(mut self, on: bool) -> Self {
        self.0.parent_based = on;
        self
    }
    /// Keep failed and panicking calls whatever the trace's decision (default true).
    pub fn keep_errors(mut self, on: bool) -> Self {
        self.0.keep_errors = on;
        self
    }
    /// Keep at most `spans` spans per second per function (default: no limit).
    pub fn max_per_second(mut self, spans: u32) -> Self {
        self.0.max_per_second = Some(spans);
        self
    }
    /// Checks the ratio (a number from 0 to 1) and the rate limit (at least 1).
    pub fn build(self) -> Result<Sampler> {
        if !(0.0..=1.0).contains(&self.0.ratio) {
            return Err(Error::invalid("Sampler", "ratio", self.0.ratio, "must be a number from 0 to 1"));
        }
        if self.0.max_per_second == Some(0) {
            return Err(Error::invalid("Sampler", "max_per_second", 0, "must be at least 1 (leave it unset for no limit)"));
        }
        Ok(self.0)
    }
}

/// The rules in force (see [`Sampler::install`]).
pub fn current() -> Sampler {
    *CURRENT.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether a trace is sampled by the ratio: its low 63 bits against the ratio's share of 2^63.
///
/// ```
/// use flext_obs::{TraceId, sample::{self, Sampler}};
/// let trace: TraceId = "4bf92f3577b34da6a3ce929d0e0e4736".parse()?;
/// assert!(sample::ratio_samples(trace)); // the default ratio is 1
/// Sampler::builder().ratio(0.0).build()?.install();
/// assert!(!sample::ratio_samples(trace));
/// Sampler::default().install();
/// # Ok::<(), flext_obs::Error>(())
/// ```
#[inline]
pub fn ratio_samples(trace_id: TraceId) -> bool {
    #[allow(clippy::cast_possible_truncation)] // the low 64 bits on purpose
    let low = trace_id.to_u128() as u64;
    (low >> 1) < THRESHOLD.load(Ordering::Relaxed)
}

const RATIO_SCALE: f64 = 9_223_372_036_854_775_808.0; // 2^63

/// Whether rules were installed explicitly ([`Sampler::install`], [`crate::init`]).
static CHOSEN: AtomicBool = AtomicBool::new(false);
static THRESHOLD: AtomicU64 = AtomicU64::new(1 << 63);
static PARENT_BASED: AtomicBool = AtomicBool::new(true);
static KEEP_ERRORS: AtomicBool = AtomicBool::new(true);
static MAX_PER_SECOND: AtomicU32 = AtomicU32::new(0);
static CURRENT: std::sync::Mutex<Sampler> =
    std::sync::Mutex::new(Sampler { ratio: 1.0, parent_based: true, keep_errors: true, max_per_second: None });

/// The head decision for a span in trace `trace_id` whose parent decided `parent` (`None` for a
/// root span).
#[inline]
pub(crate) fn head(trace_id: TraceId, parent: Option<bool>) -> bool {
    match parent {
        Some(decided) if PARENT_BASED.load(Ordering::Relaxed) => decided,
        _ => ratio_samples(trace_id),
    }
}

/// Why a finished span was not kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Keep,
    NotSampled,
    RateLimited,
}

/// Per-function rate limiter: the current second and the spans kept in it.
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    second: AtomicU64,
    kept: AtomicU32,
}

impl RateLimiter {
    /// Takes one of this second's places, if any is left. Racing threads may see a fresh second
    /// at once; each resets the count, which lets at most a few extra spans through at the turn
    /// of a second, never fewer than the limit.
    pub(crate) fn admit(&self, second: u64, limit: u32) -> bool {
        if self.second.load(Ordering::Relaxed) != second {
            self.second.store(second, Ordering::Relaxed);
            self.kept.store(0, Ordering::Relaxed);
        }
        self.kept.fetch_add(1, Ordering::Relaxed) < limit
    }
}

/// Whether a finished span is kept: a failure when errors are kept (always, whatever the rate),
/// else a sampled span within its function's rate. `end_raw` is the clock reading at the end of
/// the call.
#[inline]
pub(crate) fn keep(sampled: bool, failed: bool, limiter: &RateLimiter, end_raw: u64) -> Verdict {
    if failed && KEEP_ERRORS.load(Ordering::Relaxed) {
        return Verdict::Keep;
    }
    if !sampled {
        return Verdict::NotSampled;
    }
    let limit = MAX_PER_SECOND.load(Ordering::Relaxed);
    if limit == 0 || limiter.admit(crate::clock::seconds(end_raw), limit) { Verdict::Keep } else { Verdict::RateLimited }
}

/// [`keep`] without the rate limit.
#[inline]
pub(crate) fn keeps_unlimited(sampled: bool, failed: bool) -> bool {
    sampled || (failed && KEEP_ERRORS.load(Ordering::Relaxed))
}
