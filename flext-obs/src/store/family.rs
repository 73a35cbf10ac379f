//! Metric families and the names they expose.
//!
//! The store keys series by the name the program gave, but a scrape shows other names: a counter
//! `x` is sampled as `x_total` (and in OpenMetrics its family is `x`, with `x_created`), a
//! histogram `h` writes `h_bucket`, `h_count` and `h_sum`, a summary `s` writes `s_count` and
//! `s_sum`. Two families whose exposed names meet would give Prometheus two `# TYPE` lines for one
//! name (it keeps one and silently drops the other) or two identical series. So every family
//! claims all the names it can expose, in both formats, in one per-store map, checked once when a
//! name is first registered (never per record); a name that would meet another family's is
//! refused with an error naming both.

use crate::entity::MetricKind;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use super::Series;
use super::series::HistogramBounds;
use super::{DROPPED_SERIES_METRIC, OVERFLOW_LABEL, SERIES_METRIC};

/// The value of [`Family::live`] once the sweep has removed the family: no series may join it,
/// a resolution that finds it looks the name up again.
pub(super) const RETIRED: usize = usize::MAX;

/// Per-metric-name facts: kind, help, buckets, how many series, how many refused.
pub(super) struct Family {
    /// The metric name, shared by every series' key (so comparing names is mostly a pointer
    /// comparison).
    pub(super) name: Arc<str>,
    pub(super) kind: MetricKind,
    pub(super) help: OnceLock<Arc<str>>,
    pub(super) bounds: Arc<[f64]>,
    /// The bounds as the histogram series use them (shared by every series of the family).
    pub(super) histogram_bounds: Arc<HistogramBounds>,
    /// Ordinary series of this family (the overflow series is not counted), or [`RETIRED`].
    pub(super) live: AtomicUsize,
    pub(super) dropped: AtomicU64,
    pub(super) overflow: OnceLock<Arc<Series>>,
    /// Set by [`super::Store::set_buckets`] and [`super::Store::describe`]: the program declared
    /// this family, so the sweep keeps it (and its buckets and help) while it has no series.
    pub(super) declared: AtomicBool,
}

impl Family {
    pub(super) fn new(name: Arc<str>, kind: MetricKind, bounds: Arc<[f64]>) -> Self {
        Family {
            name,
            kind,
            help: OnceLock::new(),
            histogram_bounds: HistogramBounds::new(&bounds),
            bounds,
            live: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            overflow: OnceLock::new(),
            declared: AtomicBool::new(false),
        }
    }

    /// Ordinary series of this family now (0 once retired).
    pub(super) fn live_series(&self) -> usize {
        match self.live.load(Ordering::Relaxed) {
            RETIRED => 0,
            live => live,
        }
    }

    /// Whether `series` is this family's overflow series (which the sweep never evicts).
    pub(super) fn is_overflow(&self, series: &Arc<Series>) -> bool {
        self.overflow.get().is_some_and(|overflow| Arc::ptr_eq(overflow, series))
    }
}

/// Who claims an exposed name.
#[derive(Clone, Debug)]
struct Claimant {
    /// The name the claimant was registered under.
    name: Arc<str>,
    /// What it is: `counter`, `gauge`, `histogram`, `summary`, `info series` or the store's own
    /// self-metric.
    what: &'static str,
}

/// Every family by name, and every exposed name by the family that claims it.
#[derive(Default)]
pub(super) struct Families {
    pub(super) by_name: HashMap<Arc<str>, Arc<Family>>,
    claims: HashMap<Box<str>, Claimant>,
}

const SELF_METRIC: &str = "flext-obs self-metric";

impl Families {
    /// A registry with the store's own self-metrics' names already claimed: their series are
    /// written by the store, one per family, so no user series may take them.
    pub(super) fn new() -> Self {
        let mut families = Families::default();
        for (name, kind) in [(SERIES_METRIC, MetricKind::Gauge), (DROPPED_SERIES_METRIC, MetricKind::Counter)] {
            let owner = Claimant { name: name.into(), what: SELF_METRIC };
            for exposed in exposed_names(kind, name) {
                families.claims.insert(exposed.into(), owner.clone());
            }
        }
        families
    }

    /// Registers family `name` of `kind`, claiming its exposed names, unless one of them is
    /// already claimed by another family.
    pub(super) fn insert(&mut self, name: &str, kind: MetricKind, bounds: Arc<[f64]>) -> Result<Arc<Family>> {
        self.claim(name, kind_name(kind), &exposed_names(kind, name))?;
        let name: Arc<str> = name.into();
        let family = Arc::new(Family::new(name.clone(), kind, bounds));
        self.by_name.insert(name, family.clone());
        Ok(family)
    }

    /// Claims info series `name` (a gauge whose name is all it exposes); claiming it again is
    /// fine.
    pub(super) fn claim_info(&mut self, name: &str) -> Result<()> {
        if self.claims.get(name).is_some_and(|c| c.what == INFO && *c.name == *name) {
            return Ok(());
        }
        self.claim(name, INFO, &[name.to_owned()])
    }

    fn claim(&mut self, name: &str, what: &'static str, exposed: &[String]) -> Result<()> {
        if let Some((taken, owner)) = exposed.iter().find_map(|e| self.claims.get(e.as_str()).map(|owner| (e, owner))) {
            let rule = if owner.what == SELF_METRIC {
                format!("{what} {name:?} would expose {taken:?}, a name of the {SELF_METRIC} {:?}", owner.name)
            } else if *owner.name == *name {
                format!("is already the {} {name:?}; it cannot also be a {what}", owner.what)
            } else {
                format!(
                    "{what} {name:?} would expose {taken:?}, which {} {:?} already exposes (counters are exposed with _total; histograms and summaries with _count, _sum{})",
                    owner.what,
                    owner.name,
                    if what == "histogram" || owner.what == "histogram" { ", _bucket" } else { "" }
                )
            };
            return Err(Error::invalid("store", "name", name, rule));
        }
        let owner = Claimant { name: name.into(), what };
        for e in exposed {
            self.claims.insert(e.as_str().into(), owner.clone());
        }
        Ok(())
    }

    /// Removes family `name` and releases its names.
    pub(super) fn remove(&mut self, name: &str) {
        if let Some(family) = self.by_name.remove(name) {
            for exposed in exposed_names(family.kind, name) {
                self.claims.remove(exposed.as_str());
            }
        }
    }
}

const INFO: &str = "info series";

fn kind_name(kind: MetricKind) -> &'static str {
    match kind {
        MetricKind::Counter => "counter",
        MetricKind::Gauge => "gauge",
        MetricKind::Histogram => "histogram",
        MetricKind::Summary => "summary",
    }
}

/// The name a counter's family has without its `_total` (OpenMetrics' family name; samples add
/// `_total` back). A counter named just `_total` keeps its name, so the family name is never empty.
pub(crate) fn counter_base(name: &str) -> &str {
    match name.strip_suffix("_total") {
        Some(base) if !base.is_empty() => base,
        _ => name,
    }
}

/// Every name a family of `kind` called `name` may expose, in the text format or OpenMetrics.
fn exposed_names(kind: MetricKind, name: &str) -> Vec<String> {
    match kind {
        MetricKind::Counter => {
            let base = counter_base(name);
            vec![base.to_owned(), format!("{base}_total"), format!("{base}_created")]
        }
        MetricKind::Gauge => vec![name.to_owned()],
        MetricKind::Histogram => ["", "_bucket", "_count", "_sum", "_created"].iter().map(|s| format!("{name}{s}")).collect(),
        MetricKind::Summary => ["", "_count", "_sum", "_created"].iter().map(|s| format!("{name}{s}")).collect(),
    }
}

/// Refuses the labels the exposition writes itself: the overflow marker on any kind, `le` on
/// histograms (the bucket bound) and `quantile` on summaries. A series carrying one would
/// duplicate the exposition's own label, and Prometheus then marks the whole target down.
pub(super) fn check_reserved_labels(kind: MetricKind, labels: &super::Labels) -> Result<()> {
    if labels.get(OVERFLOW_LABEL).is_some() {
        return Err(Error::invalid("store", "label name", OVERFLOW_LABEL, "is reserved for the overflow series"));
    }
    let reserved = match kind {
        MetricKind::Histogram => Some("le"),
        MetricKind::Summary => Some("quantile"),
        MetricKind::Counter | MetricKind::Gauge => None,
    };
    if let Some(label) = reserved.filter(|label| labels.get(label).is_some()) {
        return Err(Error::invalid(
            "store",
            "label name",
            label,
            format!("is reserved on a {}: the exposition writes it on every sample", kind_name(kind)),
        ));
    }
    Ok(())
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
