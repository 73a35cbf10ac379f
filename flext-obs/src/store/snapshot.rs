//! A point-in-time, serializable picture of the store. Exporters render from it, so no
//! formatting ever runs under the store's locks.

use super::family::Family;
use super::{DROPPED_SERIES_METRIC, SERIES_METRIC, Series, lock, read};
use crate::entity::{Metric, MetricKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Every series and the recent raw records, read at one moment.
///
/// ```
/// let obs = flext_obs::Observability::new(flext_obs::Config::default())?;
/// obs.store().counter("jobs_total", &[("queue", "mail")])?.increment_by(3);
/// let snap = obs.snapshot();
/// assert_eq!(snap.value("jobs_total", &[("queue", "mail")]), Some(3.0));
/// println!("{snap}"); // a readable table
/// # Ok::<(), flext_obs::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// When it was taken.
    pub taken_at: DateTime<Utc>,
    /// Every series, sorted by name, then labels.
    pub series: Vec<SeriesSnapshot>,
    /// The most recent raw records per metric name (see [`crate::Observability::record_metric`]).
    pub raw_records: BTreeMap<String, Vec<Metric>>,
}

/// One series in a [`Snapshot`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesSnapshot {
    /// Metric name.
    pub name: String,
    /// Metric kind.
    pub kind: MetricKind,
    /// Labels, sorted by name.
    pub labels: BTreeMap<String, String>,
    /// Help text, when the metric was described.
    pub help: Option<String>,
    /// The value.
    pub value: SeriesValue,
}

/// The value of one series, by kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SeriesValue {
    /// A counter's total.
    Counter {
        /// The total.
        value: f64,
    },
    /// A gauge's current value.
    Gauge {
        /// The value.
        value: f64,
    },
    /// A histogram's buckets.
    Histogram(HistogramValue),
    /// A summary's quantiles.
    Summary(SummaryValue),
}

impl SeriesValue {
    /// The single number of a counter or gauge; `None` for histograms and summaries.
    pub fn scalar(&self) -> Option<f64> {
        match self {
            SeriesValue::Counter { value } | SeriesValue::Gauge { value } => Some(*value),
            _ => None,
        }
    }
}

/// A histogram read: count, sum, cumulative buckets and quantile estimates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramValue {
    /// Number of observations (the `+Inf` bucket).
    pub count: u64,
    /// Sum of observations.
    pub sum: f64,
    /// `(upper bound, observations <= bound)` for each finite bound, ascending.
    pub buckets: Vec<(f64, u64)>,
    /// Estimated median, `None` without observations.
    pub p50: Option<f64>,
    /// Estimated 90th percentile.
    pub p90: Option<f64>,
    /// Estimated 99th percentile.
    pub p99: Option<f64>,
}

impl HistogramValue {
    pub(crate) fn new(count: u64, sum: f64, buckets: Vec<(f64, u64)>) -> Self {
        let mut value = HistogramValue { count, sum, buckets, p50: None, p90: None, p99: None };
        value.p50 = value.quantile(0.5);
        value.p90 = value.quantile(0.9);
        value.p99 = value.quantile(0.99);
        value
    }

    /// Estimates quantile `q` the way Prometheus' `histogram_quantile` does: linear
    /// interpolation inside the bucket holding the rank; the highest finite bound when the rank
    /// falls in `+Inf`.
    ///
    /// ```
    /// let obs = flext_obs::Observability::new(flext_obs::Config::default())?;
    /// obs.store().set_buckets("t_seconds", &[1.0, 2.0])?;
    /// let h = obs.store().histogram("t_seconds", &[])?;
    /// for _ in 0..10 { h.record(1.5)?; }
    /// assert_eq!(h.read().quantile(0.5), Some(1.5));
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    #[allow(clippy::cast_precision_loss)]
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = q * self.count as f64;
        let mut lower = (0.0f64, 0u64);
        for &(le, cumulative) in &self.buckets {
            if cumulative as f64 >= rank && cumulative > lower.1 {
                let start = if lower.0 > le { le.min(0.0) } else { lower.0 };
                let within = (rank - lower.1 as f64) / (cumulative - lower.1) as f64;
                return Some(start + (le - start) * within);
            }
            lower = (le, cumulative);
        }
        self.buckets.last().map(|&(le, _)| le)
    }
}

/// A summary read: count, sum and `(quantile, value)` over the recent window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryValue {
    /// Observations ever recorded.
    pub count: u64,
    /// Sum of every observation.
    pub sum: f64,
    /// `(q, value)` for q in 0.5, 0.9, 0.99; NaN while the window is empty.
    pub quantiles: Vec<(f64, f64)>,
}

impl Snapshot {
    /// The series named `name` with exactly `labels` (in any order).
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<&SeriesSnapshot> {
        self.series.iter().find(|s| {
            s.name == name && s.labels.len() == labels.len() && labels.iter().all(|(k, v)| s.labels.get(*k).is_some_and(|have| have == v))
        })
    }

    /// The value of a counter or gauge (the Python `get_metric_value`).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.get(name, labels).and_then(|s| s.value.scalar())
    }

    /// Every series named `name` whose labels include all of `subset` (other labels may have
    /// any value), as the `PromQL` selector `name{k="v"}` matches. An empty `subset` matches every
    /// series of the name.
    ///
    /// ```
    /// #[flext_obs::flext_monitor]
    /// fn place_order(qty: u32) -> Result<u32, String> { if qty == 0 { Err("empty".into()) } else { Ok(qty) } }
    /// let _ = place_order(1);
    /// let _ = place_order(0);
    /// let snapshot = flext_obs::global().snapshot();
    /// let failed = snapshot.series("function_calls_total", &[("function", "place_order"), ("result", "error")]);
    /// assert_eq!(failed.count(), 1); // one caller (none), one result
    /// ```
    pub fn series<'a>(&'a self, name: &'a str, subset: &'a [(&str, &str)]) -> impl Iterator<Item = &'a SeriesSnapshot> + 'a {
        self.series.iter().filter(move |s| s.name == name && subset.iter().all(|(k, v)| s.labels.get(*k).is_some_and(|have| have == v)))
    }

    /// The sum over [`Snapshot::series`]`(name, subset)`: counter and gauge values, and for
    /// histograms and summaries their observation counts (so `sum("function_calls_duration_seconds",
    /// ..)` is the number of timed calls). `0.0` when nothing matches.
    ///
    /// ```
    /// #[flext_obs::flext_monitor]
    /// fn ship(id: u32) -> Option<u32> { Some(id) }
    /// ship(1);
    /// ship(2);
    /// let snapshot = flext_obs::global().snapshot();
    /// assert_eq!(snapshot.sum("function_calls_total", &[("function", "ship")]), 2.0);
    /// assert_eq!(snapshot.sum("function_calls_total", &[("function", "ship"), ("result", "error")]), 0.0);
    /// assert_eq!(snapshot.sum("function_calls_duration_seconds", &[("function", "ship")]), 2.0);
    /// ```
    pub fn sum(&self, name: &str, subset: &[(&str, &str)]) -> f64 {
        #[allow(clippy::cast_precision_loss)] // observation counts well below 2^53
        self.series(name, subset)
            .map(|s| match &s.value {
                SeriesValue::Counter { value } | SeriesValue::Gauge { value } => *value,
                SeriesValue::Histogram(h) => h.count as f64,
                SeriesValue::Summary(sm) => sm.count as f64,
            })
            .sum()
    }
}

/// Renders the snapshot as an aligned text table, one row per series.
impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows: Vec<[String; 4]> = self
            .series
            .iter()
            .map(|s| {
                let labels = s.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect::<Vec<_>>().join(",");
                let value = match &s.value {
                    SeriesValue::Counter { value } | SeriesValue::Gauge { value } => format!("{value}"),
                    SeriesValue::Histogram(h) => format!(
                        "count={} sum={:.6} p50={} p99={}",
                        h.count,
                        h.sum,
                        h.p50.map_or_else(|| "-".into(), |v| format!("{v:.6}")),
                        h.p99.map_or_else(|| "-".into(), |v| format!("{v:.6}")),
                    ),
                    SeriesValue::Summary(sm) => {
                        let qs = sm.quantiles.iter().map(|(q, v)| format!("q{q}={v}")).collect::<Vec<_>>().join(" ");
                        format!("count={} sum={} {qs}", sm.count, sm.sum)
                    }
                };
                [s.name.clone(), s.kind.to_string(), labels, value]
            })
            .collect();
        let header = ["METRIC", "KIND", "LABELS", "VALUE"].map(String::from);
        let mut widths = header.clone().map(|h| h.len());
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for row in std::iter::once(&header).chain(&rows) {
            writeln!(f, "{:<w0$}  {:<w1$}  {:<w2$}  {}", row[0], row[1], row[2], row[3], w0 = widths[0], w1 = widths[1], w2 = widths[2])?;
        }
        let raw: usize = self.raw_records.values().map(Vec::len).sum();
        write!(f, "{} series, {raw} raw records, taken {}", self.series.len(), self.taken_at.to_rfc3339())
    }
}

impl super::Store {
    /// Reads every series (the locks are held only to collect the series list).
    pub fn snapshot(&self) -> Snapshot {
        let mut series: Vec<Arc<Series>> = Vec::new();
        for shard in &*self.registry.shards {
            series.extend(read(shard).iter().map(|entry| entry.0.clone()));
        }
        let families: Vec<(Arc<str>, Arc<Family>)> =
            read(&self.registry.families).by_name.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let help: HashMap<&str, &Family> = families.iter().map(|(k, v)| (&**k, &**v)).collect();
        let mut out: Vec<SeriesSnapshot> = series
            .iter()
            .map(|s| SeriesSnapshot {
                name: s.key.name().to_string(),
                kind: help.get(&**s.key.name()).map_or(MetricKind::Gauge, |f| f.kind),
                labels: s.key.labels.to_map(),
                help: help.get(&**s.key.name()).and_then(|f| f.help.get().map(ToString::to_string)),
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
                (SERIES_METRIC, MetricKind::Gauge, family.live_series() as f64, "Live series per metric."),
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
        let raw_records = lock(&self.registry.raw).all();
        Snapshot { taken_at: chrono::Utc::now(), series: out, raw_records }
    }
}
