//! What a scrape reads: the series in exposition order, laid out once per change of the series
//! set, merged with the store's self-metrics ([`ExportSnapshot`]).

use super::family::{Family, counter_base};
use super::key::Labels;
use super::series::counter_value_at;
use super::snapshot::SummaryValue;
use super::{DROPPED_SERIES_METRIC, SERIES_METRIC, Series, Store, lock, read};
use crate::entity::MetricKind;
use std::sync::Arc;
use std::sync::atomic::Ordering;

impl Store {
    /// Reads every series for an exporter: like [`snapshot`](Store::snapshot) but sharing the
    /// series' names and label sets instead of copying them, and without quantile estimates, so
    /// a scrape of 10,000 series allocates little. Sorted by name, then labels.
    pub fn export_snapshot(&self) -> ExportSnapshot {
        let sorted = self.sorted_series();
        let values = sorted
            .data
            .iter()
            .zip(&sorted.counter_bases)
            .map(|(series, &base)| if base == NO_COUNTER { series.data().export() } else { ExportValue::Scalar(counter_value_at(base)) })
            .collect();
        let families: Vec<Arc<Family>> = read(&self.registry.families).by_name.values().cloned().collect();
        let mut extra: Vec<ExportRow> = Vec::with_capacity(families.len() * 2);
        for family in &families {
            let labels = Labels::new(&[("metric", &*family.name)]).unwrap_or_default();
            #[allow(clippy::cast_precision_loss)]
            let dropped = family.dropped.load(Ordering::Relaxed) as f64;
            #[allow(clippy::cast_precision_loss)]
            let live = family.live_series() as f64;
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
            series.extend(read(shard).iter().map(|entry| entry.0.clone()));
        }
        series.sort_unstable_by(|a, b| {
            let names = if Arc::ptr_eq(a.key.name(), b.key.name()) { std::cmp::Ordering::Equal } else { a.key.name().cmp(b.key.name()) };
            names.then_with(|| a.key.labels.cmp(&b.key.labels))
        });
        let sorted = Arc::new(Sorted::new(&series));
        *cache = (generation, sorted.clone());
        sorted
    }
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
    /// The series, read on every scrape (counters straight from the arena, see
    /// `counter_bases`; label sets through the series, only by readers that want the pairs
    /// rather than the label block). They count as handles, so the retention sweep drops this
    /// layout before it looks for idle series.
    data: Vec<Arc<Series>>,
    /// Per series, where a counter's words start in the store's arena (read there directly,
    /// without a hop through the series; `data` keeps them alive), else [`NO_COUNTER`].
    counter_bases: Vec<u32>,
}

/// Not a counter with an arena range: read through its series.
const NO_COUNTER: u32 = u32::MAX;

impl Sorted {
    /// Every per-series column is made at its final size (the layout is kept between scrapes,
    /// so growth slack would be memory held per series).
    fn new(series: &[Arc<Series>]) -> Self {
        let n = series.len();
        let mut sorted = Sorted {
            families: Vec::new(),
            family_of: Vec::with_capacity(n),
            text: String::new(),
            spans: Vec::with_capacity(n),
            data: Vec::with_capacity(n),
            counter_bases: Vec::with_capacity(n),
        };
        for s in series {
            if sorted.families.last().is_none_or(|(name, _, _)| !Arc::ptr_eq(name, &s.family().name)) {
                sorted.families.push((s.family().name.clone(), s.family().kind, s.family().help.get().cloned()));
            }
            #[allow(clippy::cast_possible_truncation)] // fewer than 2^32 families and bytes
            {
                sorted.family_of.push((sorted.families.len() - 1) as u32);
                let labels = s.key.labels.exposition_text();
                let start = sorted.text.len();
                sorted.text.push_str(&labels);
                let prefix = sorted.text.len();
                match s.family().kind {
                    MetricKind::Counter => {
                        sorted.text.push_str(counter_base(s.key.name()));
                        sorted.text.push_str("_total");
                        sorted.text.push_str(&labels);
                    }
                    MetricKind::Gauge => {
                        sorted.text.push_str(s.key.name());
                        sorted.text.push_str(&labels);
                    }
                    MetricKind::Histogram | MetricKind::Summary => {}
                }
                sorted.spans.push((start as u32, prefix as u32, sorted.text.len() as u32));
            }
            sorted.counter_bases.push(s.data.counter_base().unwrap_or(NO_COUNTER));
            sorted.data.push(s.clone());
        }
        sorted.text.shrink_to_fit();
        sorted.families.shrink_to_fit();
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
        Some((&**name, &sorted.data[i].key.labels, Some(text), line, *kind, help.as_deref(), &self.values[i]))
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
                    std::cmp::Ordering::Equal => export.sorted.data[self.stored].key.labels <= extra.labels,
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
