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

mod info;
mod key;
pub(crate) mod lane;
mod series;
mod snapshot;

pub use key::Labels;
pub(crate) use key::push_label_pair;
pub use series::{Counter, Gauge, Histogram, SUMMARY_QUANTILES, Summary};
pub use snapshot::{HistogramValue, SeriesSnapshot, SeriesValue, Snapshot, SummaryValue};

use crate::entity::{Metric, MetricKind, validate};
use crate::error::{Error, Result};
use key::{Key, PrehashedState};
use series::{CounterCore, GaugeCore, HistogramCore, SeriesData, SummaryCore, Switch};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock, Weak};
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
    /// Observations a summary's sliding window holds.
    pub summary_window: usize,
    /// Histogram bounds for metrics without their own ([`Store::set_buckets`]).
    pub default_buckets: Arc<[f64]>,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            max_series_per_metric: 2_000,
            retention: Some(Duration::from_secs(600)),
            raw_history: 1_000,
            summary_window: 1_024,
            default_buckets: DEFAULT_BUCKETS.into(),
        }
    }
}

/// Validates histogram bounds: at least one, finite, strictly increasing.
pub(crate) fn check_buckets(bounds: &[f64]) -> Result<()> {
    if bounds.is_empty() {
        return Err(Error::invalid("store", "buckets", bounds, "need at least one bound"));
    }
    if bounds.iter().any(|b| !b.is_finite()) {
        return Err(Error::invalid("store", "buckets", bounds, "every bound must be finite (+Inf is implied)"));
    }
    if bounds.windows(2).any(|w| w[0] >= w[1]) {
        return Err(Error::invalid("store", "buckets", bounds, "bounds must be strictly increasing"));
    }
    Ok(())
}

/// Per-metric-name facts: kind, help, buckets, how many series, how many refused.
struct Family {
    /// The metric name, shared by every series' key (so comparing names is mostly a pointer
    /// comparison).
    name: Arc<str>,
    kind: MetricKind,
    help: OnceLock<Arc<str>>,
    bounds: Arc<[f64]>,
    live: AtomicUsize,
    dropped: AtomicU64,
    overflow: OnceLock<Arc<Series>>,
}

/// A registered series and the sweeper's memory of it.
struct Series {
    key: Key,
    family: Arc<Family>,
    data: SeriesData,
    /// (last activity seen, when it last changed); only the sweeper touches it.
    idle: Mutex<(u64, Instant)>,
}

type Shard = RwLock<HashMap<Key, Arc<Series>, PrehashedState>>;

struct Registry {
    shards: Box<[Shard]>,
    families: RwLock<HashMap<Arc<str>, Arc<Family>>>,
    raw: Mutex<HashMap<String, VecDeque<Metric>>>,
    settings: StoreSettings,
    switch: Arc<Switch>,
    /// Bumped whenever a series is added or evicted, so the sorted series list can be reused
    /// by scrapes while the set of series is unchanged.
    generation: AtomicU64,
    sorted: Mutex<(u64, Arc<Sorted>)>,
    /// Info series (`build_info`), outside the series map.
    infos: info::Infos,
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
        let shards = (0..SHARDS).map(|_| RwLock::default()).collect();
        Ok(Store {
            registry: Arc::new(Registry {
                shards,
                families: RwLock::default(),
                raw: Mutex::default(),
                settings,
                switch: Switch::new(enabled),
                generation: AtomicU64::new(1),
                sorted: Mutex::new((0, Arc::new(Sorted::default()))),
                infos: info::Infos::default(),
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
    /// An invalid metric name or label, or a name a plain series already has.
    pub fn set_info(&self, name: &str, labels: &[(&str, &str)], help: &str) -> Result<()> {
        if read(&self.registry.families).contains_key(name) {
            return Err(Error::invalid("store", "name", name, "is already a metric of another kind"));
        }
        self.registry.infos.set(name, labels, help)
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
        match self.resolve(name, labels, MetricKind::Counter)? {
            SeriesData::Counter(core) => Ok(Counter::new(core, self.registry.switch.clone())),
            _ => unreachable_kind(name),
        }
    }

    /// Resolves the gauge `name{labels}`, creating it on first use.
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Result<Gauge> {
        match self.resolve(name, labels, MetricKind::Gauge)? {
            SeriesData::Gauge(core) => Ok(Gauge::new(core, self.registry.switch.clone())),
            _ => unreachable_kind(name),
        }
    }

    /// Resolves the histogram `name{labels}` (with the metric's buckets, see
    /// [`set_buckets`](Store::set_buckets)), creating it on first use.
    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Result<Histogram> {
        match self.resolve(name, labels, MetricKind::Histogram)? {
            SeriesData::Histogram(core) => Ok(Histogram::new(core, self.registry.switch.clone())),
            _ => unreachable_kind(name),
        }
    }

    /// Resolves the summary `name{labels}`, creating it on first use.
    pub fn summary(&self, name: &str, labels: &[(&str, &str)]) -> Result<Summary> {
        match self.resolve(name, labels, MetricKind::Summary)? {
            SeriesData::Summary(core) => Ok(Summary::new(core, self.registry.switch.clone())),
            _ => unreachable_kind(name),
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
        match families.get(name) {
            Some(family) if family.kind != MetricKind::Histogram => {
                Err(Error::KindMismatch { name: name.to_owned(), registered: family.kind, requested: MetricKind::Histogram })
            }
            Some(family) if *family.bounds == *bounds => Ok(()),
            Some(_) => Err(Error::invalid("store", "buckets", bounds, format!("histogram {name:?} already has series with other bounds"))),
            None => {
                let name: Arc<str> = name.into();
                families.insert(name.clone(), Arc::new(Family::new(name, MetricKind::Histogram, bounds.into())));
                Ok(())
            }
        }
    }

    /// Sets the help text exported for metric `name` (the first text given wins).
    pub fn describe(&self, name: &str, kind: MetricKind, help: &str) -> Result<()> {
        validate::metric_name("store", "name", name)?;
        let family = self.family(name, kind)?;
        if family.help.set(help.into()).is_ok() {
            // The scrape layout caches help texts.
            self.registry.generation.fetch_add(1, Ordering::Release);
        }
        Ok(())
    }

    /// Applies a [`Metric`] to its series (counter: add; gauge: set; histogram and summary:
    /// observe) and keeps it in the bounded raw history of its name.
    pub fn record_metric(&self, metric: &Metric) -> Result<()> {
        let labels: Vec<(&str, &str)> = metric.labels().iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        match metric.kind() {
            MetricKind::Counter => self.counter(metric.name(), &labels)?.add(metric.value())?,
            MetricKind::Gauge => self.gauge(metric.name(), &labels)?.set(metric.value())?,
            MetricKind::Histogram => self.histogram(metric.name(), &labels)?.record(metric.value())?,
            MetricKind::Summary => self.summary(metric.name(), &labels)?.record(metric.value())?,
        }
        let cap = self.registry.settings.raw_history;
        if cap > 0 {
            let mut raw = lock(&self.registry.raw);
            let ring = raw.entry(metric.name().to_owned()).or_default();
            if ring.len() == cap {
                ring.pop_front();
            }
            ring.push_back(metric.clone());
        }
        Ok(())
    }

    /// The most recent raw records of metric `name`, oldest first.
    pub fn raw_records(&self, name: &str) -> Vec<Metric> {
        lock(&self.registry.raw).get(name).map(|ring| ring.iter().cloned().collect()).unwrap_or_default()
    }

    /// How many series are live (overflow series included).
    pub fn series_count(&self) -> usize {
        self.registry.shards.iter().map(|shard| read(shard).len()).sum()
    }

    /// Evicts series that have no live handle and saw no record for the retention period.
    /// Returns how many were evicted. [`crate::Observability`] can run it on an interval.
    pub fn sweep(&self) -> usize {
        let Some(retention) = self.registry.settings.retention else { return 0 };
        self.sweep_older_than(retention, Instant::now())
    }

    fn sweep_older_than(&self, retention: Duration, now: Instant) -> usize {
        // The scrape layout holds every series' cells, which would count as a live handle: drop
        // it, and keep scrapes from rebuilding it until the sweep is done.
        let mut cache = lock(&self.registry.sorted);
        *cache = (0, Arc::new(Sorted::default()));
        let mut evicted = 0;
        for shard in &*self.registry.shards {
            let mut map = write(shard);
            map.retain(|_, series| {
                let mut idle = lock(&series.idle);
                let activity = series.data.activity();
                if series.data.has_handles() || activity != idle.0 {
                    *idle = (activity, now);
                    return true;
                }
                if now.duration_since(idle.1) < retention {
                    return true;
                }
                series.family.live.fetch_sub(1, Ordering::Relaxed);
                evicted += 1;
                false
            });
        }
        if evicted > 0 {
            self.registry.generation.fetch_add(1, Ordering::Release);
        }
        drop(cache);
        evicted
    }

    /// Starts a background thread that calls [`sweep`](Store::sweep) every `interval`. It stops
    /// when the returned guard is dropped or the store is gone.
    pub fn start_sweeper(&self, interval: Duration) -> Result<Sweeper> {
        if interval.is_zero() {
            return Err(Error::invalid("store", "sweep_interval", interval, "must be greater than zero"));
        }
        let weak: Weak<Registry> = Arc::downgrade(&self.registry);
        let worker = crate::worker::Worker::spawn("flext-obs-sweeper", move |stopped| {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                match weak.upgrade() {
                    Some(registry) => {
                        Store { registry }.sweep();
                    }
                    None => return,
                }
            }
        })?;
        Ok(Sweeper { _worker: worker })
    }

    /// Zeroes every series and clears the raw history; for tests. Handles stay valid. Records
    /// made while it runs may survive it.
    pub fn reset(&self) {
        for shard in &*self.registry.shards {
            for series in read(shard).values() {
                series.data.clear();
            }
        }
        for family in read(&self.registry.families).values() {
            family.dropped.store(0, Ordering::Relaxed);
        }
        lock(&self.registry.raw).clear();
    }

    /// Reads every series (the locks are held only to collect the series list).
    pub fn snapshot(&self) -> Snapshot {
        let mut series: Vec<Arc<Series>> = Vec::new();
        for shard in &*self.registry.shards {
            series.extend(read(shard).values().cloned());
        }
        let families: Vec<(Arc<str>, Arc<Family>)> = read(&self.registry.families).iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let help: HashMap<&str, &Family> = families.iter().map(|(k, v)| (&**k, &**v)).collect();
        let mut out: Vec<SeriesSnapshot> = series
            .iter()
            .map(|s| SeriesSnapshot {
                name: s.key.name.to_string(),
                kind: help.get(&*s.key.name).map_or(MetricKind::Gauge, |f| f.kind),
                labels: s.key.labels.to_map(),
                help: help.get(&*s.key.name).and_then(|f| f.help.get().map(ToString::to_string)),
                value: s.data.read(),
            })
            .collect();
        for (name, family) in &families {
            #[allow(clippy::cast_precision_loss)]
            let rows = [
                (
                    DROPPED_SERIES_METRIC,
                    MetricKind::Counter,
                    family.dropped.load(Ordering::Relaxed) as f64,
                    "Label sets refused by the cardinality limit.",
                ),
                (SERIES_METRIC, MetricKind::Gauge, family.live.load(Ordering::Relaxed) as f64, "Live series per metric."),
            ];
            for (self_name, kind, value, text) in rows {
                out.push(SeriesSnapshot {
                    name: self_name.to_owned(),
                    kind,
                    labels: BTreeMap::from([("metric".to_owned(), name.to_string())]),
                    help: Some(text.to_owned()),
                    value: if kind == MetricKind::Counter { SeriesValue::Counter { value } } else { SeriesValue::Gauge { value } },
                });
            }
        }
        for (name, info) in self.registry.infos.all() {
            out.push(SeriesSnapshot {
                name,
                kind: MetricKind::Gauge,
                labels: info.labels.to_map(),
                help: Some(info.help),
                value: SeriesValue::Gauge { value: 1.0 },
            });
        }
        out.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
        let raw_records = lock(&self.registry.raw).iter().map(|(k, ring)| (k.clone(), ring.iter().cloned().collect())).collect();
        Snapshot { taken_at: chrono::Utc::now(), series: out, raw_records }
    }

    /// Reads every series for an exporter: like [`snapshot`](Store::snapshot) but sharing the
    /// series' names and label sets instead of copying them, and without quantile estimates, so
    /// a scrape of 10,000 series allocates little. Sorted by name, then labels.
    pub fn export_snapshot(&self) -> ExportSnapshot {
        let sorted = self.sorted_series();
        let values = sorted.data.iter().map(SeriesData::export).collect();
        let families: Vec<Arc<Family>> = read(&self.registry.families).values().cloned().collect();
        let mut extra: Vec<ExportRow> = Vec::with_capacity(families.len() * 2);
        for family in &families {
            let labels = Labels::new(&[("metric", &*family.name)]).unwrap_or_default();
            #[allow(clippy::cast_precision_loss)]
            let dropped = family.dropped.load(Ordering::Relaxed) as f64;
            #[allow(clippy::cast_precision_loss)]
            let live = family.live.load(Ordering::Relaxed) as f64;
            extra.push(ExportRow {
                name: DROPPED_SERIES_METRIC.into(),
                labels: labels.clone(),
                kind: MetricKind::Counter,
                help: Some("Label sets refused by the cardinality limit.".into()),
                value: ExportValue::Scalar(dropped),
            });
            extra.push(ExportRow {
                name: SERIES_METRIC.into(),
                labels,
                kind: MetricKind::Gauge,
                help: Some("Live series per metric.".into()),
                value: ExportValue::Scalar(live),
            });
        }
        for (name, info) in self.registry.infos.all() {
            extra.push(ExportRow {
                name: name.into(),
                labels: info.labels,
                kind: MetricKind::Gauge,
                help: Some(info.help.into()),
                value: ExportValue::Scalar(1.0),
            });
        }
        extra.sort_unstable_by(|a, b| a.name.cmp(&b.name).then_with(|| a.labels.cmp(&b.labels)));
        ExportSnapshot { sorted, values, extra }
    }

    /// Every series sorted by name, then labels, laid out for a scrape; rebuilt only when series
    /// were added or evicted since the last call.
    fn sorted_series(&self) -> Arc<Sorted> {
        let generation = self.registry.generation.load(Ordering::Acquire);
        let mut cache = lock(&self.registry.sorted);
        if cache.0 == generation {
            return cache.1.clone();
        }
        let mut series: Vec<Arc<Series>> = Vec::new();
        for shard in &*self.registry.shards {
            series.extend(read(shard).values().cloned());
        }
        series.sort_unstable_by(|a, b| {
            let names = if Arc::ptr_eq(&a.key.name, &b.key.name) { std::cmp::Ordering::Equal } else { a.key.name.cmp(&b.key.name) };
            names.then_with(|| a.key.labels.cmp(&b.key.labels))
        });
        let sorted = Arc::new(Sorted::new(&series));
        *cache = (generation, sorted.clone());
        sorted
    }

    /// Label sets refused for metric `name` by the cardinality limit so far.
    pub fn dropped_series(&self, name: &str) -> u64 {
        read(&self.registry.families).get(name).map_or(0, |f| f.dropped.load(Ordering::Relaxed))
    }

    fn family(&self, name: &str, kind: MetricKind) -> Result<Arc<Family>> {
        if let Some(family) = read(&self.registry.families).get(name) {
            return check_kind(name, family, kind);
        }
        if self.registry.infos.contains(name) {
            return Err(Error::invalid("store", "name", name, "is an info series (set with Store::set_info)"));
        }
        let mut families = write(&self.registry.families);
        let family = families
            .entry(name.into())
            .or_insert_with_key(|name| Arc::new(Family::new(name.clone(), kind, self.registry.settings.default_buckets.clone())));
        check_kind(name, family, kind)
    }

    fn resolve(&self, name: &str, labels: &[(&str, &str)], kind: MetricKind) -> Result<SeriesData> {
        validate::metric_name("store", "name", name)?;
        let labels = Labels::new(labels)?;
        if labels.get(OVERFLOW_LABEL).is_some() {
            return Err(Error::invalid("store", "label name", OVERFLOW_LABEL, "is reserved for the overflow series"));
        }
        let family = self.family(name, kind)?;
        let key = Key::new(family.name.clone(), labels);
        let shard = &self.registry.shards[usize::try_from(key.hash64() % SHARDS as u64).unwrap_or(0)];
        if let Some(series) = read(shard).get(&key) {
            return Ok(series.data.clone());
        }
        let mut map = write(shard);
        if let Some(series) = map.get(&key) {
            return Ok(series.data.clone());
        }
        let limit = self.registry.settings.max_series_per_metric;
        let admitted = family.live.fetch_update(Ordering::AcqRel, Ordering::Acquire, |live| (live < limit).then_some(live + 1)).is_ok();
        if !admitted {
            drop(map);
            family.dropped.fetch_add(1, Ordering::Relaxed);
            return Ok(self.overflow(&family).data.clone());
        }
        let data = self.new_data(&family);
        map.insert(
            key.clone(),
            Arc::new(Series { key, family: family.clone(), data: data.clone(), idle: Mutex::new((0, Instant::now())) }),
        );
        self.registry.generation.fetch_add(1, Ordering::Release);
        Ok(data)
    }

    /// The metric's overflow series, created on first need; it does not count against the
    /// limit and is never evicted (the family holds it).
    fn overflow(&self, family: &Arc<Family>) -> Arc<Series> {
        family
            .overflow
            .get_or_init(|| {
                let labels = Labels::new(&[(OVERFLOW_LABEL, "true")]).unwrap_or_default();
                let key = Key::new(family.name.clone(), labels);
                let series = Arc::new(Series {
                    key: key.clone(),
                    family: family.clone(),
                    data: self.new_data(family),
                    idle: Mutex::new((0, Instant::now())),
                });
                let shard = &self.registry.shards[usize::try_from(key.hash64() % SHARDS as u64).unwrap_or(0)];
                write(shard).insert(key, series.clone());
                self.registry.generation.fetch_add(1, Ordering::Release);
                series
            })
            .clone()
    }

    fn new_data(&self, family: &Family) -> SeriesData {
        match family.kind {
            MetricKind::Counter => SeriesData::Counter(Arc::new(CounterCore::new())),
            MetricKind::Gauge => SeriesData::Gauge(Arc::new(GaugeCore::new())),
            MetricKind::Histogram => SeriesData::Histogram(Arc::new(HistogramCore::new(family.bounds.clone()))),
            MetricKind::Summary => SeriesData::Summary(Arc::new(SummaryCore::new(self.registry.settings.summary_window))),
        }
    }
}

impl Family {
    fn new(name: Arc<str>, kind: MetricKind, bounds: Arc<[f64]>) -> Self {
        Family {
            name,
            kind,
            help: OnceLock::new(),
            bounds,
            live: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            overflow: OnceLock::new(),
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

/// The series in exposition order, laid out so that a scrape reads memory in sequence: the
/// families' names and help, each series' family and label block (all label blocks in one
/// buffer), and the series' cells.
#[derive(Default)]
pub(crate) struct Sorted {
    families: Vec<(Arc<str>, MetricKind, Option<Arc<str>>)>,
    family_of: Vec<u32>,
    text: String,
    /// Per series: its label block, then (counters and gauges) its whole sample prefix
    /// `name{labels}`, as ranges of `text`.
    spans: Vec<(u32, u32, u32)>,
    /// The series' cells, read on every scrape without a hop through the series. They count
    /// as a handle, so the retention sweep drops this layout before it looks for idle series.
    data: Vec<SeriesData>,
    /// The series' label sets (shared, not copied), next to each other.
    labels: Vec<Labels>,
}

impl Sorted {
    fn new(series: &[Arc<Series>]) -> Self {
        let mut sorted = Sorted::default();
        for s in series {
            if sorted.families.last().is_none_or(|(name, _, _)| !Arc::ptr_eq(name, &s.family.name)) {
                sorted.families.push((s.family.name.clone(), s.family.kind, s.family.help.get().cloned()));
            }
            #[allow(clippy::cast_possible_truncation)] // fewer than 2^32 families and bytes
            {
                sorted.family_of.push((sorted.families.len() - 1) as u32);
                let labels = s.key.labels.exposition_text();
                let start = sorted.text.len();
                sorted.text.push_str(&labels);
                let prefix = sorted.text.len();
                match s.family.kind {
                    MetricKind::Counter => {
                        sorted.text.push_str(s.key.name.strip_suffix("_total").unwrap_or(&s.key.name));
                        sorted.text.push_str("_total");
                        sorted.text.push_str(&labels);
                    }
                    MetricKind::Gauge => {
                        sorted.text.push_str(&s.key.name);
                        sorted.text.push_str(&labels);
                    }
                    MetricKind::Histogram | MetricKind::Summary => {}
                }
                sorted.spans.push((start as u32, prefix as u32, sorted.text.len() as u32));
            }
            sorted.data.push(s.data.clone());
            sorted.labels.push(s.key.labels.clone());
        }
        sorted
    }
}

/// Every series read at one moment, for exporters ([`Store::export_snapshot`]): the store's
/// series (shared, not copied) with their values, and the store's self-metrics.
#[derive(Clone)]
pub struct ExportSnapshot {
    sorted: Arc<Sorted>,
    values: Vec<ExportValue>,
    extra: Vec<ExportRow>,
}

impl std::fmt::Debug for ExportSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportSnapshot").field("series", &self.len()).finish_non_exhaustive()
    }
}

impl ExportSnapshot {
    /// How many series it holds (self-metrics included).
    pub fn len(&self) -> usize {
        self.values.len() + self.extra.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every series in name, then label, order (see [`Row`]).
    pub(crate) fn rows(&self) -> Rows<'_> {
        Rows { export: self, stored: 0, extra: 0, ahead_family: None }
    }

    fn stored_row(&self, i: usize) -> Option<Row<'_>> {
        let sorted = &*self.sorted;
        let family = *sorted.family_of.get(i)? as usize;
        let (start, prefix, end) = sorted.spans[i];
        let (name, kind, help) = &sorted.families[family];
        let text = &sorted.text[start as usize..prefix as usize];
        let line = (end > prefix).then(|| &sorted.text[prefix as usize..end as usize]);
        Some((&**name, &sorted.labels[i], Some(text), line, *kind, help.as_deref(), &self.values[i]))
    }

    fn extra_row(&self, j: usize) -> Option<Row<'_>> {
        let r = self.extra.get(j)?;
        Some((&*r.name, &r.labels, None, None, r.kind, r.help.as_deref(), &r.value))
    }
}

/// The store's series merged with the self-metrics, both sorted by (name, labels). Names are
/// compared once per family, not once per row: while the stored rows stay in a family whose
/// name sorts before the next self-metric's, they are taken without a comparison (the
/// self-metrics' names only grow as they are taken).
pub(crate) struct Rows<'a> {
    export: &'a ExportSnapshot,
    stored: usize,
    extra: usize,
    /// A stored family known to sort before every remaining self-metric.
    ahead_family: Option<u32>,
}

/// `(name, labels, label block, sample prefix, kind, help, value)` of one series.
pub(crate) type Row<'a> = (&'a str, &'a Labels, Option<&'a str>, Option<&'a str>, MetricKind, Option<&'a str>, &'a ExportValue);

impl<'a> Iterator for Rows<'a> {
    type Item = Row<'a>;
    fn next(&mut self) -> Option<Row<'a>> {
        let export = self.export;
        let family = export.sorted.family_of.get(self.stored).copied();
        let take_stored = match (family, export.extra.get(self.extra)) {
            (Some(f), _) if self.ahead_family == Some(f) => true,
            (Some(f), Some(extra)) => {
                let name = &*export.sorted.families[f as usize].0;
                match name.cmp(&*extra.name) {
                    std::cmp::Ordering::Less => {
                        self.ahead_family = Some(f);
                        true
                    }
                    std::cmp::Ordering::Greater => false,
                    std::cmp::Ordering::Equal => export.sorted.labels[self.stored] <= extra.labels,
                }
            }
            (Some(_), None) => true,
            (None, _) => false,
        };
        if take_stored {
            self.stored += 1;
            export.stored_row(self.stored - 1)
        } else {
            self.extra += 1;
            export.extra_row(self.extra - 1)
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ExportRow {
    pub(crate) name: Arc<str>,
    pub(crate) labels: Labels,
    pub(crate) kind: MetricKind,
    pub(crate) help: Option<Arc<str>>,
    pub(crate) value: ExportValue,
}

#[derive(Debug, Clone)]
pub(crate) enum ExportValue {
    Scalar(f64),
    Histogram { count: u64, sum: f64, buckets: Vec<(f64, u64)> },
    Summary(SummaryValue),
}

/// Stops the background sweeper when dropped.
#[derive(Debug)]
pub struct Sweeper {
    _worker: crate::worker::Worker,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_series_without_handles_are_evicted_after_retention() {
        let store = Store::new(StoreSettings::default(), true).unwrap();
        store.counter("a_total", &[("k", "1")]).unwrap().increment();
        let held = store.counter("a_total", &[("k", "2")]).unwrap();
        held.increment();
        let t0 = Instant::now();
        assert_eq!(store.sweep_older_than(Duration::from_secs(60), t0), 0, "first sweep only notes activity");
        assert_eq!(store.sweep_older_than(Duration::from_secs(60), t0 + Duration::from_secs(30)), 0, "not idle long enough");
        assert_eq!(store.sweep_older_than(Duration::from_secs(60), t0 + Duration::from_secs(61)), 1, "the handle-less series goes");
        assert_eq!(store.series_count(), 1);
        assert_eq!(store.snapshot().value(SERIES_METRIC, &[("metric", "a_total")]), Some(1.0));
    }
}
