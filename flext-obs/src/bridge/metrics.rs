//! The `metrics` facade's recorder: every `metrics::counter!`, `gauge!` and `histogram!` of the
//! process (the user's and every library's: tokio-metrics, metrics-process, database drivers)
//! lands in the flext-obs store, so it is on `/metrics`, in OTLP, on the Pushgateway and in
//! `snapshot()` with the rest.
//!
//! A key is turned into a store series once: its name made valid (`.` and other characters
//! Prometheus refuses become `_`), its labels checked, the histogram's bounds chosen by the
//! first [`Matcher`] that takes its name (else the store's defaults). The recorder keeps the
//! store handle, so `counter!` with the same key finds it with one hash lookup (the key's own
//! precomputed hash) and a handle the caller holds records straight into the store's atomics.
//! The store's limits apply as to any series: past `max_series_per_metric` label sets go to
//! the overflow series; a key neither recorded nor held for the retention period is let go, so
//! the store's sweep can evict it.
//!
//! What cannot be recorded never panics and never blocks: a name or label the store refuses, a
//! name already used by another kind, a NaN or a negative histogram value is dropped and counted
//! in `flext_bridge_refused_total{bridge="metrics", reason}`: `registration` per refused key,
//! `value` per dropped record (a record through a refused key is one too).
//!
//! ```
//! let obs = flext_obs::Observability::new(flext_obs::Config::default())?;
//! let recorder = flext_obs::bridge::metrics::Recorder::builder(obs.clone())
//!     .buckets_for(flext_obs::bridge::metrics::Matcher::Suffix("_bytes".into()), &[1024.0, 65536.0])?
//!     .build();
//! metrics::with_local_recorder(&recorder, || {
//!     metrics::counter!("http.requests", "method" => "GET").increment(2);
//!     metrics::gauge!("queue.depth").set(7.0);
//!     metrics::histogram!("body_bytes").record(2000.0);
//! });
//! assert_eq!(obs.metric_value("http_requests", &[("method", "GET")]), Some(2.0)); // http_requests_total on /metrics
//! assert_eq!(obs.metric_value("queue_depth", &[]), Some(7.0));
//! # Ok::<(), flext_obs::Error>(())
//! ```

use crate::api::Observability;
use crate::entity::MetricKind;
use crate::error::{Error, Result};
use crate::store::{Counter as StoreCounter, Gauge as StoreGauge, Histogram as StoreHistogram, check_buckets};
use metrics::{Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, SharedString, Unit};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

/// Keys of one kind the recorder keeps a handle for. Past it, a new key is registered with the
/// store at every use instead of cached (slower, still counted, the store's own limits apply),
/// so label sets made from unbounded values cannot grow the recorder without bound.
pub const MAX_KEYS: usize = 65_536;

/// The self-metric counting what the bridges could not record.
pub const REFUSED: &str = "flext_bridge_refused_total";

/// How often (at most) a registration looks for keys to let go (or every retention period,
/// when that is shorter).
const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Which metric names a histogram bucket choice applies to.
///
/// ```
/// use flext_obs::bridge::metrics::Matcher;
/// assert!(Matcher::Prefix("db_".into()).matches("db_query_seconds"));
/// assert!(Matcher::Suffix("_bytes".into()).matches("body_bytes"));
/// assert!(Matcher::Full("latency".into()).matches("latency"));
/// assert!(!Matcher::Full("latency".into()).matches("latency_seconds"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// The whole (valid, exposed) name.
    Full(String),
    /// The name starts with it.
    Prefix(String),
    /// The name ends with it.
    Suffix(String),
}

impl Matcher {
    /// Whether `name` (already made valid, as the store sees it) is matched.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Matcher::Full(full) => name == full,
            Matcher::Prefix(prefix) => name.starts_with(prefix.as_str()),
            Matcher::Suffix(suffix) => name.ends_with(suffix.as_str()),
        }
    }
}

/// Builds a [`Recorder`]: the instance it records into and the histogram bounds per name.
#[derive(Debug)]
pub struct RecorderBuilder {
    obs: Observability,
    buckets: Vec<(Matcher, Arc<[f64]>)>,
}

impl RecorderBuilder {
    /// Histograms whose name `matcher` takes get `bounds` (first match wins, in the order
    /// given); refused unless the bounds are finite and strictly increasing.
    ///
    /// ```
    /// use flext_obs::bridge::metrics::{Matcher, Recorder};
    /// let builder = Recorder::builder(flext_obs::global().clone());
    /// assert!(builder.buckets_for(Matcher::Prefix("db_".into()), &[0.01, 0.001]).is_err());
    /// ```
    pub fn buckets_for(mut self, matcher: Matcher, bounds: &[f64]) -> Result<Self> {
        check_buckets(bounds)?;
        self.buckets.push((matcher, bounds.into()));
        Ok(self)
    }

    /// The recorder, for `metrics::with_local_recorder` or [`install`](RecorderBuilder::install).
    pub fn build(self) -> Recorder {
        let _ = self.obs.store().describe(
            REFUSED,
            MetricKind::Counter,
            "Registrations and records the bridges could not make, by bridge and reason.",
        );
        Recorder {
            inner: Arc::new(Inner {
                obs: self.obs,
                buckets: self.buckets,
                counters: RwLock::default(),
                gauges: RwLock::default(),
                histograms: RwLock::default(),
                descriptions: Mutex::default(),
                next_trim: AtomicU64::new(0),
            }),
        }
    }

    /// Makes the recorder the process's `metrics` recorder; an error if one is already set.
    ///
    /// ```
    /// let installed = flext_obs::bridge::metrics::Recorder::builder(flext_obs::global().clone()).install();
    /// # let _ = installed;
    /// ```
    pub fn install(self) -> Result<()> {
        metrics::set_global_recorder(self.build())
            .map_err(|_| Error::invalid("bridge::metrics", "recorder", "install", "another metrics recorder is already installed"))
    }
}

/// Makes the global instance ([`crate::global`]) the process's `metrics` recorder, with the
/// store's default histogram bounds.
///
/// ```no_run
/// flext_obs::bridge::metrics::install()?;
/// metrics::counter!("jobs.done").increment(1); // on /metrics as jobs_done_total
/// # Ok::<(), flext_obs::Error>(())
/// ```
pub fn install() -> Result<()> {
    Recorder::builder(crate::global().clone()).install()
}

/// A `metrics::Recorder` over a flext-obs store (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

impl Recorder {
    /// A builder recording into `obs`.
    pub fn builder(obs: Observability) -> RecorderBuilder {
        RecorderBuilder { obs, buckets: Vec::new() }
    }

    /// Keys the recorder holds a store handle for (counters, gauges and histograms).
    pub fn key_count(&self) -> usize {
        fn len<T>(map: &RwLock<Handles<T>>) -> usize {
            map.read().unwrap_or_else(PoisonError::into_inner).len()
        }
        len(&self.inner.counters) + len(&self.inner.gauges) + len(&self.inner.histograms)
    }
}

/// A `metrics::Key`'s hash is computed once, when the key is made; this hasher passes it on.
#[derive(Default)]
struct KeyHash(u64);

impl Hasher for KeyHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Never called for `Key` (its `Hash` writes one u64); a fallback that still hashes.
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }
}

type Handles<T> = HashMap<Key, Arc<T>, BuildHasherDefault<KeyHash>>;

#[derive(Debug)]
struct Inner {
    obs: Observability,
    buckets: Vec<(Matcher, Arc<[f64]>)>,
    counters: RwLock<Handles<CounterCell>>,
    gauges: RwLock<Handles<GaugeCell>>,
    histograms: RwLock<Handles<HistogramCell>>,
    /// HELP texts described before (or after) their first registration, by valid name.
    descriptions: Mutex<HashMap<String, (MetricKind, String)>>,
    /// When (in `seconds_now`) the next registration looks for keys to let go.
    next_trim: AtomicU64,
}

/// Whole seconds on the monitor's clock, for "last used": every `counter!` registers its key
/// again, and the TSC read behind this is several times cheaper than `Instant::elapsed`.
fn seconds_now() -> u64 {
    crate::clock::seconds(crate::clock::now())
}

#[derive(Debug)]
struct CounterCell {
    counter: Option<StoreCounter>,
    /// Serializes `absolute` calls (a collector's, rarely hot): each reads the total and adds
    /// what is missing, so two of them never add the same difference twice.
    absolute: Mutex<()>,
    refused: Option<StoreCounter>,
    last_used: AtomicU64,
}

#[derive(Debug)]
struct GaugeCell {
    gauge: Option<StoreGauge>,
    refused: Option<StoreCounter>,
    last_used: AtomicU64,
}

#[derive(Debug)]
struct HistogramCell {
    histogram: Option<StoreHistogram>,
    refused: Option<StoreCounter>,
    last_used: AtomicU64,
}

fn count_refused(refused: Option<&StoreCounter>) {
    if let Some(refused) = refused {
        refused.increment();
    }
}

impl CounterFn for CounterCell {
    fn increment(&self, value: u64) {
        match &self.counter {
            Some(counter) => counter.increment_by(value),
            None => count_refused(self.refused.as_ref()),
        }
    }
    fn absolute(&self, value: u64) {
        let Some(counter) = &self.counter else { return count_refused(self.refused.as_ref()) };
        let _one_at_a_time = self.absolute.lock().unwrap_or_else(PoisonError::into_inner);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // a counter's whole total
        let total = counter.value().max(0.0) as u64;
        if value > total {
            counter.increment_by(value - total);
        }
    }
}

impl GaugeFn for GaugeCell {
    fn increment(&self, value: f64) {
        let Some(gauge) = &self.gauge else { return count_refused(self.refused.as_ref()) };
        if gauge.add(value).is_err() {
            count_refused(self.refused.as_ref());
        }
    }
    fn decrement(&self, value: f64) {
        self.increment(-value);
    }
    fn set(&self, value: f64) {
        let Some(gauge) = &self.gauge else { return count_refused(self.refused.as_ref()) };
        if gauge.set(value).is_err() {
            count_refused(self.refused.as_ref());
        }
    }
}

impl HistogramFn for HistogramCell {
    fn record(&self, value: f64) {
        let Some(histogram) = &self.histogram else { return count_refused(self.refused.as_ref()) };
        if histogram.record(value).is_err() {
            count_refused(self.refused.as_ref());
        }
    }
}

/// `name` as a valid Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*` (every other character
/// becomes `_`, a leading digit gets a `_` before it).
///
/// ```
/// use flext_obs::bridge::metrics::metric_name;
/// assert_eq!(metric_name("http.server.duration"), "http_server_duration");
/// assert_eq!(metric_name("9lives"), "_9lives");
/// assert_eq!(metric_name("ok_name:sub"), "ok_name:sub");
/// ```
pub fn metric_name(name: &str) -> String {
    let mut out: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == ':' { c } else { '_' }).collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// `name` as a valid label name: like [`metric_name`] without `:`.
///
/// ```
/// assert_eq!(flext_obs::bridge::metrics::label_name("http.method"), "http_method");
/// ```
pub fn label_name(name: &str) -> String {
    metric_name(name).replace(':', "_")
}

impl Inner {
    fn refused(&self, reason: &str) -> Option<StoreCounter> {
        self.obs.store().counter(REFUSED, &[("bridge", "metrics"), ("reason", reason)]).ok()
    }

    fn labels(key: &Key) -> Vec<(String, String)> {
        key.labels().map(|l| (label_name(l.key()), l.value().to_owned())).collect()
    }

    fn describe(&self, name: &str, kind: MetricKind) {
        let described = self.descriptions.lock().unwrap_or_else(PoisonError::into_inner).get(name).filter(|(k, _)| *k == kind).cloned();
        if let Some((kind, help)) = described {
            let _ = self.obs.store().describe(name, kind, &help);
        }
    }

    /// The store series of `key` as `kind` (made by `make` from the valid name and labels),
    /// described when a description came first; `None`, counted, when the store refuses it.
    fn register<H>(&self, key: &Key, kind: MetricKind, make: impl FnOnce(&str, &[(&str, &str)]) -> Result<H>) -> Option<H> {
        let name = metric_name(key.name());
        if kind == MetricKind::Histogram {
            self.choose_buckets(&name);
        }
        let labels = Self::labels(key);
        let borrowed: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let handle = make(&name, &borrowed).ok();
        if handle.is_some() {
            self.describe(&name, kind);
        } else {
            count_refused(self.refused("registration").as_ref());
        }
        handle
    }

    fn new_counter(&self, key: &Key) -> CounterCell {
        CounterCell {
            counter: self.register(key, MetricKind::Counter, |name, labels| self.obs.store().counter(name, labels)),
            absolute: Mutex::new(()),
            refused: self.refused("value"),
            last_used: AtomicU64::new(seconds_now()),
        }
    }

    fn new_gauge(&self, key: &Key) -> GaugeCell {
        GaugeCell {
            gauge: self.register(key, MetricKind::Gauge, |name, labels| self.obs.store().gauge(name, labels)),
            refused: self.refused("value"),
            last_used: AtomicU64::new(seconds_now()),
        }
    }

    /// The first matching bucket choice for histogram `name`, set before its family exists
    /// (refused once it has series with other bounds: the first choice stays).
    fn choose_buckets(&self, name: &str) {
        if let Some((_, bounds)) = self.buckets.iter().find(|(matcher, _)| matcher.matches(name)) {
            let _ = self.obs.store().set_buckets(name, bounds);
        }
    }

    fn new_histogram(&self, key: &Key) -> HistogramCell {
        HistogramCell {
            histogram: self.register(key, MetricKind::Histogram, |name, labels| self.obs.store().histogram(name, labels)),
            refused: self.refused("value"),
            last_used: AtomicU64::new(seconds_now()),
        }
    }

    /// The cell of `key` in `map`, made by `make` on first use.
    fn cell<T>(&self, map: &RwLock<Handles<T>>, key: &Key, used: impl Fn(&T) -> &AtomicU64, make: impl FnOnce() -> T) -> Arc<T> {
        let now = seconds_now();
        if now >= self.next_trim.load(Ordering::Relaxed) {
            self.trim(now);
        }
        if let Some(cell) = map.read().unwrap_or_else(PoisonError::into_inner).get(key) {
            used(cell).store(now, Ordering::Relaxed);
            return Arc::clone(cell);
        }
        let mut write = map.write().unwrap_or_else(PoisonError::into_inner);
        if write.len() >= MAX_KEYS && !write.contains_key(key) {
            drop(write);
            return Arc::new(make());
        }
        Arc::clone(write.entry(key.clone()).or_insert_with(|| Arc::new(make())))
    }

    /// Lets go of keys nobody holds and nobody registered for the retention period, so the
    /// store's sweep can evict their series (at most every [`TRIM_EVERY`]).
    fn trim(&self, now: u64) {
        let Some(retention) = self.obs.config().store().retention else {
            self.next_trim.store(u64::MAX, Ordering::Relaxed);
            return;
        };
        let every = TRIM_EVERY.min(retention).as_secs().max(1);
        let due = self.next_trim.load(Ordering::Relaxed);
        // One registration does the trim; the others go on.
        if now < due || self.next_trim.compare_exchange(due, now + every, Ordering::AcqRel, Ordering::Relaxed).is_err() {
            return;
        }
        let horizon = now.saturating_sub(retention.as_secs());
        let idle = |cell_used: u64, strong: usize| strong == 1 && cell_used < horizon;
        self.counters
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, c| !idle(c.last_used.load(Ordering::Relaxed), Arc::strong_count(c)));
        self.gauges
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, c| !idle(c.last_used.load(Ordering::Relaxed), Arc::strong_count(c)));
        self.histograms
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, c| !idle(c.last_used.load(Ordering::Relaxed), Arc::strong_count(c)));
    }

    fn remember(&self, key: &KeyName, kind: MetricKind, unit: Option<Unit>, description: &SharedString) {
        let name = metric_name(key.as_str());
        let help = match unit {
            Some(unit) if !description.is_empty() => format!("{description} ({})", unit.as_str()),
            Some(unit) => format!("({})", unit.as_str()),
            None => description.to_string(),
        };
        self.descriptions.lock().unwrap_or_else(PoisonError::into_inner).insert(name.clone(), (kind, help.clone()));
        // Applies now (a name of another kind is left alone); a histogram's bounds come first,
        // since describing makes its family.
        if kind == MetricKind::Histogram {
            self.choose_buckets(&name);
        }
        let _ = self.obs.store().describe(&name, kind, &help);
    }
}

impl metrics::Recorder for Recorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.remember(&key, MetricKind::Counter, unit, &description);
    }
    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.remember(&key, MetricKind::Gauge, unit, &description);
    }
    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.remember(&key, MetricKind::Histogram, unit, &description);
    }
    fn register_counter(&self, key: &Key, _metadata: &Metadata<'_>) -> Counter {
        let inner = &self.inner;
        Counter::from_arc(inner.cell(&inner.counters, key, |c| &c.last_used, || inner.new_counter(key)))
    }
    fn register_gauge(&self, key: &Key, _metadata: &Metadata<'_>) -> Gauge {
        let inner = &self.inner;
        Gauge::from_arc(inner.cell(&inner.gauges, key, |c| &c.last_used, || inner.new_gauge(key)))
    }
    fn register_histogram(&self, key: &Key, _metadata: &Metadata<'_>) -> Histogram {
        let inner = &self.inner;
        Histogram::from_arc(inner.cell(&inner.histograms, key, |c| &c.last_used, || inner.new_histogram(key)))
    }
}
