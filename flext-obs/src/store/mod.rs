//! The metrics store: a sharded registry of series, handles that record without locks, a
//! cardinality limit per metric, idle-series retention and a raw record history.
//!
//! ```
//! use flext_obs::{Config, Observability};
//! let obs = Observability::new(Config::default())?;
//! let store = obs.store();
//! let requests = store.counter("requests_total", &[("route", "/orders")])?; // resolve once
//! let latency = store.histogram("request_duration_seconds", &[("route", "/orders")])?;
//! requests.increment();                                                   // then record freely
//! latency.record(0.012)?;
//! assert_eq!(obs.snapshot().value("requests_total", &[("route", "/orders")]), Some(1.0));
//! # Ok::<(), flext_obs::Error>(())
//! ```
//!
//! Names and labels are checked when a series is first resolved: a name that would expose what
//! another metric exposes (a counter `x` is sampled as `x_total`; a histogram `h` writes
//! `h_count`), a label the exposition writes itself (`le` on a histogram, `quantile` on a
//! summary) and a negative observation are refused, and change nothing:
//!
//! ```
//! let store = flext_obs::store::Store::new(Default::default(), true)?;
//! store.counter("jobs", &[])?.increment();
//! assert!(store.counter("jobs_total", &[]).is_err());           // both would be `jobs_total`
//! store.histogram("wait_seconds", &[])?;
//! assert!(store.gauge("wait_seconds_count", &[]).is_err());
//! assert!(store.histogram("size_bytes", &[("le", "1")]).is_err());
//! assert!(store.histogram("wait_seconds", &[])?.record(-1.0).is_err());
//! # Ok::<(), flext_obs::Error>(())
//! ```
//!
//! Modules: `family` (families and the names they claim), `sweep` (retention), `export` (the
//! scrape layout), `raw` (the raw record history), `series` (the cells), `key` (series identity),
//! `info` (info series), `lane` (per-thread write lanes), `cells` (the lane-major words series
//! record into), `handle` (how a handle reaches its series' core), `snapshot` (what readers get).

mod buckets;
mod cells;
mod export;
mod family;
mod handle;
mod info;
mod key;
pub(crate) mod lane;
mod raw;
mod series;
mod snapshot;
mod sweep;

pub use export::ExportSnapshot;
pub(crate) use export::ExportValue;
pub(crate) use family::counter_base;
pub use key::Labels;
pub(crate) use key::push_label_pair;
pub use lane::{MAX_LANES, lane_count};
pub use series::{Counter, Gauge, Histogram, SUMMARY_QUANTILES, Summary};
pub use snapshot::{HistogramValue, SeriesSnapshot, SeriesValue, Snapshot, SummaryValue};

use crate::entity::{Metric, MetricKind, validate};
use crate::error::{Error, Result};
pub(crate) use family::check_buckets;
use family::{Families, Family, RETIRED, check_reserved_labels};
use handle::Core;
pub(crate) use key::Series;
use key::{Entry, Key, PrehashedState, Query};
use series::{CounterCore, GaugeCore, HistogramCore, SeriesData, SummaryCore, Switch};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// Default histogram bounds in seconds: 1 µs to 10 s, a superset of the Autometrics
/// specification's list so its latency thresholds stay bucket bounds.
pub const DEFAULT_BUCKETS: &[f64] = &[
    0.000_001,
    0.000_002_5,
    0.000_005,
    0.000_01,
    0.000_025,
    0.000_05,
    0.000_1,
    0.000_25,
    0.000_5,
    0.001,
    0.002_5,
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
];

/// The label that marks a metric's overflow series once its cardinality limit is reached.
pub const OVERFLOW_LABEL: &str = "flext_overflow";

/// Name of the self-metric counting label sets refused by the cardinality limit.
pub const DROPPED_SERIES_METRIC: &str = "flext_obs_dropped_series_total";
/// Name of the self-metric holding the number of live series per metric.
pub const SERIES_METRIC: &str = "flext_obs_series";

const SHARDS: usize = 16;
/// Lookups of a name a resolution makes at most when sweeps keep retiring its family.
const RESOLVE_ATTEMPTS: usize = 4;

/// Limits and defaults of a [`Store`] (set through [`crate::Config`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StoreSettings {
    /// Most series one metric name may have before records go to its overflow series.
    pub max_series_per_metric: usize,
    /// Series with no live handle and no new record for this long are evicted by
    /// [`Store::sweep`]; `None` keeps them forever.
    pub retention: Option<Duration>,
    /// Raw records kept per metric name by [`Store::record_metric`].
    pub raw_history: usize,
    /// Metric names with a raw history at most; a new name takes the place of the name recorded
    /// least recently (default 256).
    pub raw_history_names: usize,
    /// Most ordinary series in the whole store (every metric together), `None` for no cap
    /// (default). Past it, new label sets go to their metric's overflow series and are counted
    /// in [`DROPPED_SERIES_METRIC`], as past the per-metric limit; each metric's one overflow
    /// series is kept outside the cap, so a refused record always lands somewhere visible.
    pub max_series: Option<usize>,
    /// Observations a summary's sliding window holds.
    pub summary_window: usize,
    /// Histogram bounds for metrics without their own ([`Store::set_buckets`]).
    pub default_buckets: Arc<[f64]>,
    /// Write lanes per series (1 to [`MAX_LANES`]), `None` for the default: twice the cores,
    /// rounded up to a power of two, from 4 to 64. Lanes are one count for the whole process (a
    /// thread's lane is its lane in every series), fixed when its first series or span buffer
    /// is made, so a store asking for a count after that, and another than the one fixed, is
    /// refused. More lanes let more threads record without a locked instruction; a lane
    /// costs memory only in the parts of the store it writes (8 KiB chunks; see the README's
    /// memory figures), so a 64-core service whose threads each write a few series can ask
    /// for fewer, and a small machine can measure what 64 cost.
    ///
    /// ```
    /// use flext_obs::store::{Store, StoreSettings, lane_count};
    /// let fixed = lane_count();
    /// let same = StoreSettings { lanes: Some(fixed), ..StoreSettings::default() };
    /// assert!(Store::new(same, true).is_ok());
    /// let other = StoreSettings { lanes: Some(if fixed == 8 { 16 } else { 8 }), ..StoreSettings::default() };
    /// assert!(Store::new(other, true).is_err(), "the count is fixed for the process");
    /// assert!(Store::new(StoreSettings { lanes: Some(65), ..StoreSettings::default() }, true).is_err());
    /// ```
    pub lanes: Option<usize>,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            max_series_per_metric: 2_000,
            retention: Some(Duration::from_secs(600)),
            raw_history: 1_000,
            raw_history_names: 256,
            max_series: None,
            summary_window: 1_024,
            default_buckets: DEFAULT_BUCKETS.into(),
            lanes: None,
        }
    }
}

type Shard = RwLock<HashSet<Entry, PrehashedState>>;

struct Registry {
    shards: Box<[Shard]>,
    families: RwLock<Families>,
    raw: Mutex<raw::RawHistory>,
    /// Ordinary series in the whole store, for [`StoreSettings::max_series`].
    total_live: AtomicUsize,
    settings: StoreSettings,
    switch: Arc<Switch>,
    /// Bumped whenever a series is added or evicted, so the sorted series list can be reused
    /// by scrapes while the set of series is unchanged.
    generation: AtomicU64,
    sorted: Mutex<(u64, Arc<export::Sorted>)>,
    /// Info series (`build_info`), outside the series map.
    infos: info::Infos,
    /// What series' idle times count from.
    epoch: Instant,
}

impl Registry {
    /// Nanoseconds from the epoch to `at` (0 before it).
    #[allow(clippy::cast_possible_truncation)] // 584 years of nanoseconds fit
    fn since_epoch(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_nanos() as u64
    }
}

/// The metrics store. Cloning is cheap and shares the same series.
#[derive(Clone)]
pub struct Store {
    registry: Arc<Registry>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("settings", &self.registry.settings).field("series", &self.series_count()).finish_non_exhaustive()
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}
fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}
fn lock<T>(lock: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    lock.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Store {
    /// A new, empty store; recording starts switched `enabled`.
    pub fn new(settings: StoreSettings, enabled: bool) -> Result<Self> {
        check_buckets(&settings.default_buckets)?;
        if settings.max_series_per_metric == 0 {
            return Err(Error::invalid("store", "max_series_per_metric", 0, "must be at least 1"));
        }
        if settings.max_series == Some(0) {
            return Err(Error::invalid("store", "max_series", 0, "must be at least 1 (or None for no cap)"));
        }
        if let Some(lanes) = settings.lanes {
            lane::fix_count(lanes)?;
        }
        let shards = (0..SHARDS).map(|_| RwLock::default()).collect();
        Ok(Store {
            registry: Arc::new(Registry {
                shards,
                families: RwLock::new(Families::new()),
                raw: Mutex::new(raw::RawHistory::new(settings.raw_history, settings.raw_history_names)),
                total_live: AtomicUsize::new(0),
                settings,
                switch: Switch::new(enabled),
                generation: AtomicU64::new(1),
                sorted: Mutex::new((0, Arc::new(export::Sorted::default()))),
                infos: info::Infos::default(),
                epoch: Instant::now(),
            }),
        })
    }

    /// Sets info series `name` (a gauge that always reads 1, such as `build_info`) to `labels`,
    /// replacing its previous labels at once: every reader sees exactly one series of that name.
    ///
    /// ```
    /// let store = flext_obs::store::Store::new(Default::default(), true)?;
    /// store.set_info("build_info", &[("version", "1.0.0")], "Build information.")?;
    /// store.set_info("build_info", &[("version", "1.0.1")], "Build information.")?;
    /// let snapshot = store.snapshot();
    /// let infos: Vec<_> = snapshot.series("build_info", &[]).collect();
    /// assert_eq!(infos.len(), 1);
    /// assert_eq!(infos[0].labels["version"], "1.0.1");
    /// assert_eq!(infos[0].value.scalar(), Some(1.0));
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    ///
    /// # Errors
    /// An invalid metric name or label, or a name another metric already exposes.
    pub fn set_info(&self, name: &str, labels: &[(&str, &str)], help: &str) -> Result<()> {
        let labels = info::Infos::check(name, labels)?;
        let mut families = write(&self.registry.families);
        families.claim_info(name)?;
        self.registry.infos.set(name, labels, help);
        Ok(())
    }

    /// The limits this store was built with.
    pub fn settings(&self) -> &StoreSettings {
        &self.registry.settings
    }

    /// Switches recording on or off for every handle of this store (one relaxed load per record).
    pub fn set_enabled(&self, on: bool) {
        self.registry.switch.set(on);
    }

    /// Whether recording is on.
    pub fn is_enabled(&self) -> bool {
        self.registry.switch.is_on()
    }

    /// Resolves the counter `name{labels}`, creating it on first use.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> Result<Counter> {
        let series = self.resolve(name, labels, MetricKind::Counter)?;
        if matches!(series.data, SeriesData::Counter(_)) {
            Ok(Counter::new(Core::new(series), self.registry.switch.clone()))
        } else {
            unreachable_kind(name)
        }
    }

    /// Resolves the gauge `name{labels}`, creating it on first use.
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Result<Gauge> {
        let series = self.resolve(name, labels, MetricKind::Gauge)?;
        if matches!(series.data, SeriesData::Gauge(_)) {
            Ok(Gauge::new(Core::new(series), self.registry.switch.clone()))
        } else {
            unreachable_kind(name)
        }
    }

    /// Resolves the histogram `name{labels}` (with the metric's buckets, see
    /// [`set_buckets`](Store::set_buckets)), creating it on first use.
    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Result<Histogram> {
        let series = self.resolve(name, labels, MetricKind::Histogram)?;
        if matches!(series.data, SeriesData::Histogram(_)) {
            Ok(Histogram::new(Core::new(series), self.registry.switch.clone()))
        } else {
            unreachable_kind(name)
        }
    }

    /// Resolves the summary `name{labels}`, creating it on first use.
    pub fn summary(&self, name: &str, labels: &[(&str, &str)]) -> Result<Summary> {
        let series = self.resolve(name, labels, MetricKind::Summary)?;
        if matches!(series.data, SeriesData::Summary(_)) {
            Ok(Summary::new(Core::new(series), self.registry.switch.clone()))
        } else {
            unreachable_kind(name)
        }
    }

    /// Gives histogram `name` its own bucket bounds. Call it before the metric's first series
    /// exists; changing the bounds of a live metric is an error.
    ///
    /// ```
    /// let obs = flext_obs::Observability::new(flext_obs::Config::default())?;
    /// obs.store().set_buckets("batch_rows", &[10.0, 100.0, 1000.0])?;
    /// assert!(obs.store().set_buckets("other", &[2.0, 1.0]).is_err());
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn set_buckets(&self, name: &str, bounds: &[f64]) -> Result<()> {
        validate::metric_name("store", "name", name)?;
        check_buckets(bounds)?;
        let mut families = write(&self.registry.families);
        match families.by_name.get(name) {
            Some(family) if family.kind != MetricKind::Histogram => {
                Err(Error::KindMismatch { name: name.to_owned(), registered: family.kind, requested: MetricKind::Histogram })
            }
            Some(family) if *family.bounds == *bounds => {
                family.declared.store(true, Ordering::Release);
                Ok(())
            }
            Some(_) => Err(Error::invalid("store", "buckets", bounds, format!("histogram {name:?} already has series with other bounds"))),
            None => {
                let family = families.insert(name, MetricKind::Histogram, bounds.into())?;
                family.declared.store(true, Ordering::Release);
                Ok(())
            }
        }
    }

    /// Sets the help text exported for metric `name` (the first text given wins).
    pub fn describe(&self, name: &str, kind: MetricKind, help: &str) -> Result<()> {
        validate::metric_name("store", "name", name)?;
        let family = self.family(name, kind)?;
        family.declared.store(true, Ordering::Release);
        if family.help.set(help.into()).is_ok() {
            // The scrape layout caches help texts.
            self.registry.generation.fetch_add(1, Ordering::Release);
        }
        Ok(())
    }

    /// Applies a [`Metric`] to its series (counter: add; gauge: set; histogram and summary:
    /// observe) and keeps it in the bounded raw history of its name. A value its series would
    /// refuse (a negative counter increment or observation) is refused before anything is
    /// registered or kept.
    pub fn record_metric(&self, metric: &Metric) -> Result<()> {
        match metric.kind() {
            MetricKind::Counter => series::check_increment(metric.value())?,
            MetricKind::Histogram => series::check_observation("Histogram", metric.value())?,
            MetricKind::Summary => series::check_observation("Summary", metric.value())?,
            MetricKind::Gauge => {}
        }
        let labels: Vec<(&str, &str)> = metric.labels().iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        match metric.kind() {
            MetricKind::Counter => self.counter(metric.name(), &labels)?.add(metric.value())?,
            MetricKind::Gauge => self.gauge(metric.name(), &labels)?.set(metric.value())?,
            MetricKind::Histogram => self.histogram(metric.name(), &labels)?.record(metric.value())?,
            MetricKind::Summary => self.summary(metric.name(), &labels)?.record(metric.value())?,
        }
        lock(&self.registry.raw).push(metric);
        Ok(())
    }

    /// The most recent raw records of metric `name`, oldest first.
    pub fn raw_records(&self, name: &str) -> Vec<Metric> {
        lock(&self.registry.raw).get(name)
    }

    /// How many metric names have a raw history (at most [`StoreSettings::raw_history_names`]).
    ///
    /// ```
    /// let store = flext_obs::store::Store::new(Default::default(), true)?;
    /// store.record_metric(&flext_obs::Metric::builder("queue_depth", 3.0).build()?)?;
    /// assert_eq!(store.raw_history_names(), 1);
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn raw_history_names(&self) -> usize {
        lock(&self.registry.raw).names()
    }

    /// How many metric names the store holds (self-metrics and info series not included).
    ///
    /// ```
    /// let store = flext_obs::store::Store::new(Default::default(), true)?;
    /// store.gauge("a", &[("k", "1")])?;
    /// store.gauge("a", &[("k", "2")])?;
    /// assert_eq!(store.family_count(), 1);
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn family_count(&self) -> usize {
        read(&self.registry.families).by_name.len()
    }

    /// How many series are live (overflow series included).
    pub fn series_count(&self) -> usize {
        self.registry.shards.iter().map(|shard| read(shard).len()).sum()
    }

    /// Zeroes every series and clears the raw history; for tests. Handles stay valid. Records
    /// made while it runs may survive it.
    pub fn reset(&self) {
        for shard in &*self.registry.shards {
            for Entry(series) in read(shard).iter() {
                series.data.clear();
            }
        }
        for family in read(&self.registry.families).by_name.values() {
            family.dropped.store(0, Ordering::Relaxed);
        }
        lock(&self.registry.raw).clear();
    }

    /// Label sets refused for metric `name` by the cardinality limit so far.
    pub fn dropped_series(&self, name: &str) -> u64 {
        read(&self.registry.families).by_name.get(name).map_or(0, |f| f.dropped.load(Ordering::Relaxed))
    }

    /// The family of `name`, registered (and its exposed names claimed) on first use.
    fn family(&self, name: &str, kind: MetricKind) -> Result<Arc<Family>> {
        if let Some(family) = read(&self.registry.families).by_name.get(name) {
            return check_kind(name, family, kind);
        }
        let mut families = write(&self.registry.families);
        if let Some(family) = families.by_name.get(name) {
            return check_kind(name, family, kind);
        }
        families.insert(name, kind, self.registry.settings.default_buckets.clone())
    }

    fn resolve(&self, name: &str, labels: &[(&str, &str)], kind: MetricKind) -> Result<Arc<Series>> {
        validate::metric_name("store", "name", name)?;
        let labels = Labels::new(labels)?;
        check_reserved_labels(kind, &labels)?;
        // A family retired by a concurrent sweep is looked up (and registered) again; a sweep
        // retires only families with no series, so a second attempt practically always holds.
        for _ in 0..RESOLVE_ATTEMPTS {
            let family = self.family(name, kind)?;
            if let Some(data) = self.resolve_in(&family, &labels) {
                return Ok(data);
            }
        }
        Err(Error::invalid("store", "name", name, "was removed by concurrent retention sweeps while being registered; try again"))
    }

    /// The series of `labels` in `family`, created when the limits allow, else the family's
    /// overflow series; `None` when the family was retired meanwhile.
    fn resolve_in(&self, family: &Arc<Family>, labels: &Labels) -> Option<Arc<Series>> {
        let query = Query::new(Key::new(family.clone(), labels.clone()));
        let shard = &self.registry.shards[usize::try_from(query.hash64() % SHARDS as u64).unwrap_or(0)];
        if let Some(Entry(series)) = read(shard).get(query.lookup()) {
            return Some(series.clone());
        }
        let mut map = write(shard);
        if let Some(Entry(series)) = map.get(query.lookup()) {
            return Some(series.clone());
        }
        let limit = self.registry.settings.max_series_per_metric;
        let admitted = match family.live.fetch_update(Ordering::AcqRel, Ordering::Acquire, |live| (live < limit).then(|| live + 1)) {
            Ok(_) => self.admit_in_store(family),
            Err(RETIRED) => return None,
            Err(_) => false,
        };
        if !admitted {
            drop(map);
            return self.overflow(family).inspect(|_| {
                family.dropped.fetch_add(1, Ordering::Relaxed);
            });
        }
        let series = Arc::new(Series::new(query.key, self.new_data(family), &self.registry));
        map.insert(Entry(series.clone()));
        self.registry.generation.fetch_add(1, Ordering::Release);
        Some(series)
    }

    /// Counts a new series of `family` against the store-wide cap; when the cap is full the
    /// family's count is given back and the caller uses the overflow series.
    fn admit_in_store(&self, family: &Family) -> bool {
        let total = &self.registry.total_live;
        let admitted = match self.registry.settings.max_series {
            None => {
                total.fetch_add(1, Ordering::AcqRel);
                true
            }
            Some(cap) => total.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < cap).then(|| n + 1)).is_ok(),
        };
        if !admitted {
            family.live.fetch_sub(1, Ordering::AcqRel);
        }
        admitted
    }

    /// The metric's overflow series, created on first need; it does not count against the
    /// limits and is never evicted (the family holds it). It is made under the families' read
    /// lock, so the sweep (which retires under the write lock) cannot remove the family while
    /// it gets its overflow series; `None` when the family was retired first.
    fn overflow(&self, family: &Arc<Family>) -> Option<Arc<Series>> {
        if let Some(series) = family.overflow.get() {
            return Some(series.clone());
        }
        let families = read(&self.registry.families);
        if family.live.load(Ordering::Acquire) == RETIRED {
            return None;
        }
        let series = family
            .overflow
            .get_or_init(|| {
                let labels = Labels::new(&[(OVERFLOW_LABEL, "true")]).unwrap_or_default();
                let query = Query::new(Key::new(family.clone(), labels));
                let shard = &self.registry.shards[usize::try_from(query.hash64() % SHARDS as u64).unwrap_or(0)];
                let series = Arc::new(Series::new(query.key, self.new_data(family), &self.registry));
                write(shard).insert(Entry(series.clone()));
                self.registry.generation.fetch_add(1, Ordering::Release);
                series
            })
            .clone();
        drop(families);
        Some(series)
    }

    fn new_data(&self, family: &Family) -> SeriesData {
        match family.kind {
            MetricKind::Counter => SeriesData::Counter(CounterCore::new()),
            MetricKind::Gauge => SeriesData::Gauge(Box::new(GaugeCore::new())),
            MetricKind::Histogram => SeriesData::Histogram(Box::new(HistogramCore::new(family.histogram_bounds.clone()))),
            MetricKind::Summary => SeriesData::Summary(Box::new(SummaryCore::new(self.registry.settings.summary_window))),
        }
    }
}

fn check_kind(name: &str, family: &Arc<Family>, requested: MetricKind) -> Result<Arc<Family>> {
    if family.kind == requested {
        Ok(family.clone())
    } else {
        Err(Error::KindMismatch { name: name.to_owned(), registered: family.kind, requested })
    }
}

/// `resolve` returns data of the family's kind and the family's kind was checked; this cannot
/// be reached, but answering with an error keeps the store panic-free even so.
#[cold]
fn unreachable_kind<T>(name: &str) -> Result<T> {
    Err(Error::invalid("store", "name", name, "internal error: series of an unexpected kind"))
}

/// Stops the background sweeper when dropped.
#[derive(Debug)]
pub struct Sweeper {
    _worker: crate::worker::Worker,
}

#[cfg(test)]
mod tests;
