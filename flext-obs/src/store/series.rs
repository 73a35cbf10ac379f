//! Series handles: [`Counter`], [`Gauge`], [`Histogram`], [`Summary`].
//!
//! A handle is resolved once (hashing, maybe locking) and then records with no lock and no
//! allocation: counters and histograms write into the calling thread's lane
//! ([`super::lane`]), gauges into one atomic word. Every record first reads the store's
//! on/off switch with one relaxed load.

use super::buckets::BucketIndex;
use super::cells::Cells;
use super::handle::Core;
use super::lane;
use super::snapshot::{HistogramValue, SeriesValue, SummaryValue};
use crate::entity::validate;
use crate::error::{Error, Result};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The store-wide recording switch (`FLEXT_OBSERVABILITY_ENABLED`).
#[derive(Debug)]
pub(crate) struct Switch(AtomicBool);

impl Switch {
    pub(crate) fn new(on: bool) -> Arc<Self> {
        Arc::new(Switch(AtomicBool::new(on)))
    }
    #[inline]
    pub(crate) fn is_on(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
    pub(crate) fn set(&self, on: bool) {
        self.0.store(on, Ordering::Relaxed);
    }
}

/// Counter cells: word 0 counts whole increments, word 1 holds fractional ones as `f64` bits.
pub(crate) struct CounterCore(Cells);
const COUNTER_INT: usize = 0;
const COUNTER_FLOAT: usize = 1;

/// A monotonic counter. Whole increments are one plain add in the thread's own lane.
///
/// ```
/// let obs = flext_obs::Observability::new(flext_obs::Config::default())?;
/// let hits = obs.store().counter("cache_hits_total", &[("cache", "users")])?;
/// hits.increment();
/// hits.add(0.5)?;
/// assert!(hits.add(-1.0).is_err());
/// assert_eq!(hits.value(), 1.5);
/// # Ok::<(), flext_obs::Error>(())
/// ```
#[derive(Clone)]
pub struct Counter {
    core: Core<CounterCore>,
    switch: Arc<Switch>,
}

impl Counter {
    pub(crate) fn new(core: Core<CounterCore>, switch: Arc<Switch>) -> Self {
        Counter { core, switch }
    }

    /// Adds one.
    #[inline]
    pub fn increment(&self) {
        self.increment_by(1);
    }

    /// Adds `n`.
    #[inline]
    pub fn increment_by(&self, n: u64) {
        if self.switch.is_on() {
            self.core.0.add(lane::current(), COUNTER_INT, n);
        }
    }

    /// Adds one in `lane`, without the switch check (the monitor checks its own switch).
    #[inline]
    pub(crate) fn increment_in(&self, lane: lane::Lane) {
        self.core.0.add(lane, COUNTER_INT, 1);
    }

    /// Adds a fractional amount; negative, NaN and infinite amounts are refused.
    pub fn add(&self, amount: f64) -> Result<()> {
        check_increment(amount)?;
        if self.switch.is_on() {
            self.core.0.add_f64(lane::current(), COUNTER_FLOAT, amount);
        }
        Ok(())
    }

    /// The current total.
    pub fn value(&self) -> f64 {
        self.core.value()
    }
}

impl CounterCore {
    pub(crate) fn new() -> Self {
        CounterCore(Cells::new(2))
    }
    #[allow(clippy::cast_precision_loss)] // counts above 2^53 lose precision in f64, as in Prometheus
    fn value(&self) -> f64 {
        self.0.sum(COUNTER_INT) as f64 + self.0.sum_f64(COUNTER_FLOAT)
    }
}

/// A gauge core: a base value (`f64` bits) set or adjusted by [`Gauge::set`] and [`Gauge::add`],
/// plus whole-number deltas in per-thread lanes for [`Gauge::increment`]/[`Gauge::decrement`],
/// so in-flight counts taken on every call do not bounce one cache line between threads.
pub(crate) struct GaugeCore {
    base: AtomicU64,
    deltas: Cells,
}

/// A value that goes up and down (queue depth, temperature, in-flight requests).
///
/// ```
/// let obs = flext_obs::Observability::new(flext_obs::Config::default())?;
/// let depth = obs.store().gauge("queue_depth", &[])?;
/// depth.set(10.0)?;
/// depth.add(-3.0)?;
/// depth.increment();
/// depth.decrement();
/// assert!(depth.set(f64::NAN).is_err());
/// assert_eq!(depth.value(), 7.0);
/// # Ok::<(), flext_obs::Error>(())
/// ```
#[derive(Clone)]
pub struct Gauge {
    core: Core<GaugeCore>,
    switch: Arc<Switch>,
}

impl Gauge {
    pub(crate) fn new(core: Core<GaugeCore>, switch: Arc<Switch>) -> Self {
        Gauge { core, switch }
    }

    /// Sets the value; NaN and infinities are refused.
    pub fn set(&self, value: f64) -> Result<()> {
        validate::finite("Gauge", "value", value)?;
        if self.switch.is_on() {
            self.core.base.store((value - self.core.delta()).to_bits(), Ordering::Relaxed);
        }
        Ok(())
    }

    /// Adds `delta` (negative to subtract); NaN and infinities are refused.
    pub fn add(&self, delta: f64) -> Result<()> {
        validate::finite("Gauge", "delta", delta)?;
        if self.switch.is_on() {
            let _ =
                self.core.base.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| Some((f64::from_bits(bits) + delta).to_bits()));
        }
        Ok(())
    }

    /// Adds one, in the calling thread's lane (no locked instruction).
    #[inline]
    pub fn increment(&self) {
        if self.switch.is_on() {
            self.core.deltas.add(lane::current(), 0, 1);
        }
    }

    /// Adds `delta` (+1 or -1 as `u64` wrapping) in `lane`, without the switch check.
    #[inline]
    pub(crate) fn step_in(&self, lane: lane::Lane, delta: u64) {
        self.core.deltas.add(lane, 0, delta);
    }

    /// Subtracts one, in the calling thread's lane.
    #[inline]
    pub fn decrement(&self) {
        if self.switch.is_on() {
            self.core.deltas.add(lane::current(), 0, u64::MAX);
        }
    }

    /// The current value.
    pub fn value(&self) -> f64 {
        self.core.value()
    }
}

impl GaugeCore {
    pub(crate) fn new() -> Self {
        GaugeCore { base: AtomicU64::new(0f64.to_bits()), deltas: Cells::new(1) }
    }
    /// The lanes' whole-number deltas, summed with wrap-around so `+1` and `-1` recorded on
    /// different threads cancel.
    #[allow(clippy::cast_possible_wrap, clippy::cast_precision_loss)]
    fn delta(&self) -> f64 {
        self.deltas.sum(0) as i64 as f64
    }
    fn value(&self) -> f64 {
        f64::from_bits(self.base.load(Ordering::Relaxed)) + self.delta()
    }
}

/// A counter increment: finite and not negative.
pub(crate) fn check_increment(amount: f64) -> Result<()> {
    validate::finite("Counter", "increment", amount)?;
    if amount < 0.0 {
        return Err(Error::invalid("Counter", "increment", amount, "a counter only goes up; use a gauge for values that fall"));
    }
    Ok(())
}

/// A histogram or summary observation: finite and not negative. OpenMetrics treats their
/// `_sum` as a counter, which may not be negative (its parsers refuse the whole exposition
/// otherwise), and every value the library itself observes is a duration; so a negative value
/// is refused here, where the caller can be told, rather than hidden by dropping `_sum`.
#[inline]
pub(crate) fn check_observation(entity: &'static str, value: f64) -> Result<()> {
    // One integer comparison on the way every accepted value takes: the bits of a positive
    // finite `f64` (or `+0.0`) are below those of `+Inf`; negatives, NaN and `-0.0` have the
    // sign bit or an all-ones exponent and take the slow path.
    if value.to_bits() < f64::INFINITY.to_bits() {
        return Ok(());
    }
    refuse_observation(entity, value)
}

/// The error for a refused observation (or `-0.0`, accepted), out of line so the accepting path
/// stays small.
#[cold]
#[inline(never)]
fn refuse_observation(entity: &'static str, value: f64) -> Result<()> {
    validate::finite(entity, "observation", value)?;
    if value < 0.0 {
        return Err(Error::invalid(
            entity,
            "observation",
            value,
            "must not be negative (its _sum is a counter in OpenMetrics); record magnitudes, or use a gauge",
        ));
    }
    Ok(())
}

/// A histogram metric's bucket bounds, in seconds and in whole nanoseconds (for durations);
/// one per family, shared by its series.
#[derive(Debug)]
pub(crate) struct HistogramBounds {
    index: BucketIndex,
}

impl HistogramBounds {
    pub(crate) fn new(secs: &[f64]) -> Arc<Self> {
        let ns: Vec<i64> = secs.iter().map(|&b| to_nanos(b)).collect();
        Arc::new(HistogramBounds { index: BucketIndex::new(secs, &ns) })
    }
    #[inline]
    fn len(&self) -> usize {
        self.index.len()
    }
}

/// Histogram cells: words `0..=bounds.len()` count observations per bucket (the last is
/// `+Inf`), the word after holds the sum as `f64` bits. The count is the buckets' total.
pub(crate) struct HistogramCore {
    bounds: Arc<HistogramBounds>,
    cells: Cells,
}

/// A distribution of observations over fixed buckets (latencies, sizes).
///
/// ```
/// use std::time::Duration;
/// let obs = flext_obs::Observability::new(flext_obs::Config::default())?;
/// let latency = obs.store().histogram("request_duration_seconds", &[("route", "/")])?;
/// latency.record(0.003)?;
/// latency.record_duration(Duration::from_micros(40));
/// assert!(latency.record(f64::NAN).is_err());
/// let value = latency.read();
/// assert_eq!(value.count, 2);
/// # Ok::<(), flext_obs::Error>(())
/// ```
#[derive(Clone)]
pub struct Histogram {
    core: Core<HistogramCore>,
    switch: Arc<Switch>,
}

impl Histogram {
    pub(crate) fn new(core: Core<HistogramCore>, switch: Arc<Switch>) -> Self {
        Histogram { core, switch }
    }

    /// Records one observation; NaN, infinities and negative values are refused (OpenMetrics
    /// treats `_sum` as a counter, which may not go negative).
    ///
    /// ```
    /// let store = flext_obs::store::Store::new(Default::default(), true)?;
    /// let sizes = store.histogram("batch_size", &[])?;
    /// assert!(sizes.record(-1.0).is_err());
    /// assert_eq!(sizes.read().count, 0);
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    #[inline]
    pub fn record(&self, value: f64) -> Result<()> {
        check_observation("Histogram", value)?;
        if self.switch.is_on() {
            self.core.observe(value);
        }
        Ok(())
    }

    /// Records a duration, in seconds.
    #[inline]
    pub fn record_duration(&self, duration: Duration) {
        if self.switch.is_on() {
            self.core.observe(duration.as_secs_f64());
        }
    }

    /// Records a duration given in nanoseconds, in seconds. The bucket is found from the
    /// duration's bit length and at most a few integer comparisons, whatever the duration.
    #[inline]
    pub fn record_nanos(&self, nanos: u64) {
        if self.switch.is_on() {
            self.core.observe_nanos(lane::current(), nanos);
        }
    }

    /// [`record_nanos`](Histogram::record_nanos) in `lane`, without the switch check.
    #[inline]
    pub(crate) fn record_nanos_in(&self, lane: lane::Lane, nanos: u64) {
        self.core.observe_nanos(lane, nanos);
    }

    /// Count, sum, cumulative buckets and estimated p50/p90/p99.
    pub fn read(&self) -> HistogramValue {
        self.core.read()
    }
}

impl HistogramCore {
    pub(crate) fn new(bounds: Arc<HistogramBounds>) -> Self {
        let words = bounds.len() + 2;
        HistogramCore { bounds, cells: Cells::new(words) }
    }

    #[inline]
    fn observe_nanos(&self, lane: lane::Lane, nanos: u64) {
        let bucket = self.bounds.index.bucket_of_nanos(nanos);
        #[allow(clippy::cast_precision_loss)] // sub-nanosecond precision is lost only past 104 days
        self.cells.observe(lane, bucket, self.bounds.len() + 1, nanos as f64 * 1e-9);
    }

    // Always inlined: a record is a handful of loads and stores, and a call of its own (with
    // its register saves) cost about a third of it in the store benchmark.
    #[allow(clippy::inline_always)] // measured: see above
    #[inline(always)]
    fn observe(&self, value: f64) {
        let bucket = self.bounds.index.bucket_of_secs(value);
        self.cells.observe(lane::current(), bucket, self.bounds.len() + 1, value);
    }

    fn count(&self) -> u64 {
        (0..=self.bounds.len()).map(|b| self.cells.sum(b)).fold(0, u64::wrapping_add)
    }

    /// Count, sum and cumulative buckets, without quantile estimates.
    pub(crate) fn read_buckets(&self) -> (u64, f64, Vec<(f64, u64)>) {
        let mut cumulative = 0u64;
        let buckets: Vec<(f64, u64)> = self
            .bounds
            .index
            .secs()
            .iter()
            .enumerate()
            .map(|(i, &le)| {
                cumulative += self.cells.sum(i);
                (le, cumulative)
            })
            .collect();
        let count = cumulative + self.cells.sum(self.bounds.len());
        (count, self.cells.sum_f64(self.bounds.len() + 1), buckets)
    }

    pub(crate) fn read(&self) -> HistogramValue {
        let (count, sum, buckets) = self.read_buckets();
        HistogramValue::new(count, sum, buckets)
    }
}

/// A bound in seconds as whole nanoseconds: `ns <= to_nanos(b)` exactly when `ns * 1e-9 <= b`,
/// also where `b * 1e9` lands a hair off an integer through rounding.
#[allow(clippy::cast_possible_truncation)] // `as` saturates at the i64 range
fn to_nanos(bound: f64) -> i64 {
    let ns = bound * 1e9;
    let whole = if (ns - ns.round()).abs() < 1e-6 * ns.abs().max(1.0) { ns.round() } else { ns.floor() };
    whole as i64
}

/// Sliding-window state of a summary.
struct SummaryState {
    window: VecDeque<f64>,
    count: u64,
    sum: f64,
}

pub(crate) struct SummaryCore {
    capacity: usize,
    state: Mutex<SummaryState>,
}

/// Exact quantiles (0.5, 0.9, 0.99) over the most recent observations (a bounded window),
/// plus the all-time count and sum. Records take a short lock: use a [`Histogram`] on hot paths.
///
/// ```
/// let obs = flext_obs::Observability::new(flext_obs::Config::default())?;
/// let sizes = obs.store().summary("payload_bytes", &[])?;
/// for size in 1..=100 {
///     sizes.record(f64::from(size))?;
/// }
/// let value = sizes.read();
/// assert_eq!(value.count, 100);
/// assert_eq!(value.quantiles[0], (0.5, 50.0));
/// # Ok::<(), flext_obs::Error>(())
/// ```
#[derive(Clone)]
pub struct Summary {
    core: Core<SummaryCore>,
    switch: Arc<Switch>,
}

impl Summary {
    pub(crate) fn new(core: Core<SummaryCore>, switch: Arc<Switch>) -> Self {
        Summary { core, switch }
    }

    /// Records one observation; NaN, infinities and negative values are refused (OpenMetrics
    /// treats `_sum` as a counter, which may not go negative).
    pub fn record(&self, value: f64) -> Result<()> {
        check_observation("Summary", value)?;
        if self.switch.is_on() {
            let mut state = self.core.state.lock().unwrap_or_else(PoisonError::into_inner);
            if state.window.len() == self.core.capacity {
                state.window.pop_front();
            }
            state.window.push_back(value);
            state.count += 1;
            state.sum += value;
        }
        Ok(())
    }

    /// Count, sum and quantiles over the window.
    pub fn read(&self) -> SummaryValue {
        self.core.read()
    }
}

/// The quantiles every summary reports.
pub const SUMMARY_QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];

impl SummaryCore {
    pub(crate) fn new(capacity: usize) -> Self {
        SummaryCore { capacity: capacity.max(1), state: Mutex::new(SummaryState { window: VecDeque::new(), count: 0, sum: 0.0 }) }
    }

    pub(crate) fn read(&self) -> SummaryValue {
        let (mut window, count, sum) = {
            let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            (Vec::from(state.window.clone()), state.count, state.sum)
        };
        window.sort_unstable_by(f64::total_cmp);
        let quantiles = SUMMARY_QUANTILES
            .iter()
            .map(|&q| {
                // Nearest rank: the smallest value with at least q of the window at or below it.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
                let rank = ((q * window.len() as f64).ceil() as usize).clamp(1, window.len().max(1)) - 1;
                (q, window.get(rank).copied().unwrap_or(f64::NAN))
            })
            .collect();
        SummaryValue { count, sum, quantiles }
    }

    fn clear(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.window.clear();
        state.count = 0;
        state.sum = 0.0;
    }
}

/// The value of the counter whose words start at `base` ([`SeriesData::counter_base`]; its
/// series must still be alive), read from the arena without a hop through the series.
#[allow(clippy::cast_precision_loss)] // as `CounterCore::value`
pub(crate) fn counter_value_at(base: u32) -> f64 {
    let (whole, fraction) = super::cells::sum_pair_at(base, COUNTER_INT, COUNTER_FLOAT);
    whole as f64 + fraction
}

/// What the registry keeps per series, inside the series. A counter's core (16 bytes: where
/// its words are) sits in the series' one allocation; the other kinds' cores are boxed so that
/// this stays 16 bytes for counters, the kind a process has most of.
pub(crate) enum SeriesData {
    Counter(CounterCore),
    Gauge(Box<GaugeCore>),
    Histogram(Box<HistogramCore>),
    Summary(Box<SummaryCore>),
}

impl SeriesData {
    /// Where a counter's words start in the store's arena, for the scrape layout to read its
    /// value directly ([`counter_value_at`]); `None` for other kinds.
    pub(crate) fn counter_base(&self) -> Option<u32> {
        match self {
            SeriesData::Counter(c) => c.0.base(),
            _ => None,
        }
    }

    /// The value for an exporter (no quantile estimates for histograms).
    pub(crate) fn export(&self) -> super::ExportValue {
        match self {
            SeriesData::Counter(c) => super::ExportValue::Scalar(c.value()),
            SeriesData::Gauge(c) => super::ExportValue::Scalar(c.value()),
            SeriesData::Histogram(c) => {
                let (count, sum, buckets) = c.read_buckets();
                super::ExportValue::Histogram { count, sum, buckets }
            }
            SeriesData::Summary(c) => super::ExportValue::Summary(c.read()),
        }
    }

    pub(crate) fn read(&self) -> SeriesValue {
        match self {
            SeriesData::Counter(c) => SeriesValue::Counter { value: c.value() },
            SeriesData::Gauge(c) => SeriesValue::Gauge { value: c.value() },
            SeriesData::Histogram(c) => SeriesValue::Histogram(c.read()),
            SeriesData::Summary(c) => SeriesValue::Summary(c.read()),
        }
    }

    pub(crate) fn clear(&self) {
        match self {
            SeriesData::Counter(c) => c.0.clear(),
            SeriesData::Gauge(c) => {
                c.base.store(0f64.to_bits(), Ordering::Relaxed);
                c.deltas.clear();
            }
            SeriesData::Histogram(c) => c.cells.clear(),
            SeriesData::Summary(c) => c.clear(),
        }
    }
}

impl std::fmt::Debug for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counter").field("value", &self.value()).finish_non_exhaustive()
    }
}
impl std::fmt::Debug for Gauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gauge").field("value", &self.value()).finish_non_exhaustive()
    }
}
impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram").field("bounds", &self.core.bounds.len()).field("count", &self.core.count()).finish_non_exhaustive()
    }
}
impl std::fmt::Debug for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Summary").field("capacity", &self.core.capacity).finish_non_exhaustive()
    }
}
