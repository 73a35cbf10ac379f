//! What the `/ui` page shows, read from the store and the recent-span, alert and log buffers in
//! one pass: per-function rows (totals, quantiles, buckets, in flight, objective status), caller
//! edges, recent traces as span trees, alerts and a log tail. The page computes rates and
//! sparklines from successive reads; everything here is a total or a current value, so two
//! reads of an idle service are equal (and the endpoint answers the second with 304).

use crate::api::Observability;
use crate::monitor::{CALLS, CONCURRENT, DURATION, PANICS};
use crate::store::{SeriesSnapshot, SeriesValue};
use crate::{Alert, LogEntry, Span, SpanKind, SpanStatus};
use serde::Serialize;
use std::collections::BTreeMap;

/// Traces the page shows (the most recent ones).
pub const MAX_TRACES: usize = 20;
/// Spans shown per trace (the earliest ones; the rest are counted in
/// [`TraceView::spans_left_out`]).
pub const MAX_SPANS_PER_TRACE: usize = 64;
/// Log lines in the tail.
pub const MAX_LOGS: usize = 50;
/// Alerts shown (the most recent ones).
pub const MAX_ALERTS: usize = 20;
/// Function rows (the most called ones; the rest are counted in [`UiData::functions_left_out`]).
pub const MAX_FUNCTIONS: usize = 500;
/// Caller edges (the busiest ones).
pub const MAX_EDGES: usize = 500;

/// One read of everything the page shows.
///
/// ```
/// #[flext_obs::flext_monitor]
/// fn lookup(id: u32) -> Result<u32, String> { if id == 0 { Err("no id 0".into()) } else { Ok(id) } }
/// let _ = lookup(1);
/// let _ = lookup(0);
/// let data = flext_obs::export::http::ui::UiData::collect(flext_obs::global());
/// let row = data.functions.iter().find(|f| f.function == "lookup").unwrap();
/// assert_eq!((row.calls, row.errors), (2, 1));
/// assert_eq!(row.buckets.last().map(|b| b.1), Some(2)); // the last finite bucket holds both calls
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UiData {
    /// The service's name.
    pub service: String,
    /// One row per monitored function that was called, most called first.
    pub functions: Vec<FunctionRow>,
    /// Rows not shown (past [`MAX_FUNCTIONS`]).
    pub functions_left_out: usize,
    /// Who calls whom, busiest first.
    pub callers: Vec<CallerEdge>,
    /// The recent traces, newest first.
    pub traces: Vec<TraceView>,
    /// The recent alerts, newest first.
    pub alerts: Vec<Alert>,
    /// The recent log entries, oldest first.
    pub logs: Vec<LogEntry>,
}

/// A monitored function's totals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionRow {
    /// The `function` label (`Type::method` for methods).
    pub function: String,
    /// The `module` label.
    pub module: String,
    /// Calls, every result.
    pub calls: u64,
    /// Calls that returned an error or panicked.
    pub errors: u64,
    /// Calls that panicked.
    pub panics: u64,
    /// Calls running now.
    pub in_flight: i64,
    /// Estimated quantiles of the duration, in seconds (`None` before the first call ends).
    pub p50: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Calls whose duration was recorded (those that ended).
    pub duration_count: u64,
    /// Sum of the durations, in seconds.
    pub duration_sum: f64,
    /// `(upper bound in seconds, calls at most that long)`, cumulative, finite bounds only.
    pub buckets: Vec<(f64, u64)>,
    /// The objective the function counts toward, with how it stands.
    pub objective: Option<ObjectiveStatus>,
}

/// How a function stands against its objective, over every call since start.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectiveStatus {
    /// The `objective_name` label.
    pub name: String,
    /// The success-rate target as a fraction (`0.999`), when the objective has one.
    pub success_target: Option<f64>,
    /// The share of calls that ended well.
    pub success: Option<f64>,
    /// The latency threshold in seconds, when the objective has one.
    pub latency_threshold: Option<f64>,
    /// The share of calls that must be at most that long.
    pub latency_target: Option<f64>,
    /// The share of calls that were.
    pub latency: Option<f64>,
    /// Every target with data is met.
    pub met: bool,
}

/// Calls from one function to another.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallerEdge {
    /// The calling function (`caller_function`).
    pub caller_function: String,
    /// Its module (`caller_module`).
    pub caller_module: String,
    /// The called function.
    pub function: String,
    /// Its module.
    pub module: String,
    /// Calls along the edge.
    pub calls: u64,
}

/// One trace as a list of spans, parents before children.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceView {
    /// The W3C trace ID (32 hex digits).
    pub trace_id: String,
    /// When its first span started, in milliseconds since the Unix epoch.
    pub start_ms: i64,
    /// The spans, earliest first.
    pub spans: Vec<SpanView>,
    /// Spans not shown (past [`MAX_SPANS_PER_TRACE`]).
    pub spans_left_out: usize,
}

/// One span of a [`TraceView`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpanView {
    /// Its span ID (16 hex digits).
    pub span_id: String,
    /// Its parent's span ID, when it has one.
    pub parent_span_id: Option<String>,
    /// The span's name.
    pub name: String,
    /// Start, in microseconds after the trace's first span started.
    pub offset_us: i64,
    /// Duration in microseconds (`None` while pending).
    pub duration_us: Option<u64>,
    /// `completed`, `error`, `timeout` or `pending`.
    pub status: SpanStatus,
    /// `internal`, `server` or `client`.
    pub kind: SpanKind,
    /// The span's attributes.
    pub attributes: BTreeMap<String, String>,
}

impl UiData {
    /// Reads `obs`'s store and the process's recent spans, alerts and logs.
    pub fn collect(obs: &Observability) -> UiData {
        let snapshot = obs.snapshot();
        let (mut functions, callers) = function_rows(&snapshot.series);
        functions.sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.function.cmp(&b.function)));
        let functions_left_out = functions.len().saturating_sub(MAX_FUNCTIONS);
        functions.truncate(MAX_FUNCTIONS);
        let mut alerts = crate::alert::recent();
        alerts.reverse();
        alerts.truncate(MAX_ALERTS);
        let mut logs = crate::log::recent();
        logs.drain(..logs.len().saturating_sub(MAX_LOGS));
        UiData {
            service: obs.config().service_name().to_owned(),
            functions,
            functions_left_out,
            callers,
            traces: trace_views(crate::trace::recent_spans()),
            alerts,
            logs,
        }
    }
}

/// A float count (the store keeps counters as `f64`) as whole calls.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // counts of whole calls, never negative
fn whole(value: f64) -> u64 {
    value.max(0.0) as u64
}

fn label<'a>(series: &'a SeriesSnapshot, name: &str) -> &'a str {
    series.labels.get(name).map_or("", String::as_str)
}

/// Sums of the series of one function, before they become a [`FunctionRow`].
#[derive(Default)]
struct Totals {
    calls: u64,
    errors: u64,
    panics: u64,
    in_flight: f64,
    count: u64,
    sum: f64,
    buckets: Vec<(f64, u64)>,
    objective: Option<String>,
    success_target: Option<f64>,
    latency_threshold: Option<f64>,
    latency_target: Option<f64>,
    /// Of the calls counted toward the latency objective: `(at most the threshold, all)`.
    within_threshold: (u64, u64),
}

impl Totals {
    fn add_buckets(&mut self, buckets: &[(f64, u64)]) {
        if self.buckets.is_empty() {
            self.buckets = buckets.to_vec();
        } else if self.buckets.len() == buckets.len() && self.buckets.iter().zip(buckets).all(|(a, b)| a.0.to_bits() == b.0.to_bits()) {
            for (total, added) in self.buckets.iter_mut().zip(buckets) {
                total.1 += added.1;
            }
        }
        // Series of one function with other bounds (a changed configuration) are left out of the
        // plot, not mixed into it; their counts still add to the totals.
    }

    fn into_row(self, function: String, module: String) -> FunctionRow {
        #[allow(clippy::cast_precision_loss)] // a share of calls
        let share = |part: u64, all: u64| (all > 0).then(|| part as f64 / all as f64);
        let histogram = crate::store::HistogramValue::new(self.count, self.sum, self.buckets.clone());
        let objective = self.objective.map(|name| {
            let success = self.success_target.and(share(self.calls - self.errors.min(self.calls), self.calls));
            let latency = self.latency_threshold.and(share(self.within_threshold.0, self.within_threshold.1));
            let met = self.success_target.zip(success).is_none_or(|(target, actual)| actual >= target)
                && self.latency_target.zip(latency).is_none_or(|(target, actual)| actual >= target);
            ObjectiveStatus {
                name,
                success_target: self.success_target,
                success,
                latency_threshold: self.latency_threshold,
                latency_target: self.latency_target,
                latency,
                met,
            }
        });
        #[allow(clippy::cast_possible_truncation)] // a gauge of calls running now
        let in_flight = self.in_flight.round() as i64;
        FunctionRow {
            function,
            module,
            calls: self.calls,
            errors: self.errors,
            panics: self.panics,
            in_flight,
            p50: histogram.p50,
            p90: histogram.p90,
            p99: histogram.p99,
            duration_count: self.count,
            duration_sum: self.sum,
            buckets: self.buckets,
            objective,
        }
    }
}

/// Percentile labels (`"99.9"`) as fractions.
fn fraction(label: &str) -> Option<f64> {
    label.parse::<f64>().ok().filter(|p| (0.0..=100.0).contains(p)).map(|p| p / 100.0)
}

fn function_rows(series: &[SeriesSnapshot]) -> (Vec<FunctionRow>, Vec<CallerEdge>) {
    let mut totals: BTreeMap<(String, String), Totals> = BTreeMap::new();
    let mut edges: BTreeMap<(String, String, String, String), u64> = BTreeMap::new();
    for s in series {
        let (function, module) = (label(s, "function"), label(s, "module"));
        if function.is_empty() || !matches!(s.name.as_str(), CALLS | PANICS | CONCURRENT | DURATION) {
            continue;
        }
        let entry = totals.entry((function.to_owned(), module.to_owned())).or_default();
        if let Some(name) = s.labels.get("objective_name") {
            entry.objective.get_or_insert_with(|| name.clone());
        }
        match (s.name.as_str(), &s.value) {
            (CALLS, SeriesValue::Counter { value }) => {
                let n = whole(*value);
                entry.calls += n;
                if label(s, "result") == "error" {
                    entry.errors += n;
                }
                if let Some(target) = s.labels.get("objective_percentile").and_then(|p| fraction(p)) {
                    entry.success_target = Some(target);
                }
                let caller = label(s, "caller_function");
                if !caller.is_empty() && n > 0 {
                    let key = (caller.to_owned(), label(s, "caller_module").to_owned(), function.to_owned(), module.to_owned());
                    *edges.entry(key).or_default() += n;
                }
            }
            (PANICS, SeriesValue::Counter { value }) => entry.panics += whole(*value),
            (CONCURRENT, SeriesValue::Gauge { value }) => entry.in_flight += value,
            (DURATION, SeriesValue::Histogram(h)) => {
                entry.count += h.count;
                entry.sum += h.sum;
                entry.add_buckets(&h.buckets);
                let threshold = s.labels.get("objective_latency_threshold").and_then(|t| t.parse::<f64>().ok());
                if let Some(threshold) = threshold {
                    entry.latency_threshold = Some(threshold);
                    entry.latency_target = s.labels.get("objective_percentile").and_then(|p| fraction(p));
                    // The threshold is one of the bucket bounds (the objective's buckets are added
                    // to the function's); the nearest bound at or under it, to be safe.
                    let within = h.buckets.iter().rev().find(|(bound, _)| *bound <= threshold * (1.0 + 1e-9)).map_or(0, |b| b.1);
                    entry.within_threshold.0 += within;
                    entry.within_threshold.1 += h.count;
                }
            }
            _ => {}
        }
    }
    let rows = totals.into_iter().filter(|(_, t)| t.calls > 0).map(|((function, module), t)| t.into_row(function, module)).collect();
    let mut callers: Vec<CallerEdge> = edges
        .into_iter()
        .map(|((caller_function, caller_module, function, module), calls)| CallerEdge {
            caller_function,
            caller_module,
            function,
            module,
            calls,
        })
        .collect();
    callers.sort_by_key(|edge| std::cmp::Reverse(edge.calls));
    callers.truncate(MAX_EDGES);
    (rows, callers)
}

/// The [`MAX_TRACES`] most recent traces of `spans` (sorted by start, as
/// [`crate::trace::recent_spans`] gives them).
fn trace_views(spans: Vec<Span>) -> Vec<TraceView> {
    let mut by_trace: BTreeMap<String, Vec<Span>> = BTreeMap::new();
    for span in spans {
        by_trace.entry(span.trace_id().to_string()).or_default().push(span);
    }
    let mut traces: Vec<(chrono::DateTime<chrono::Utc>, TraceView)> = by_trace
        .into_iter()
        .filter_map(|(trace_id, spans)| {
            let start = spans.iter().map(Span::start).min()?;
            let spans_left_out = spans.len().saturating_sub(MAX_SPANS_PER_TRACE);
            let spans = spans
                .into_iter()
                .take(MAX_SPANS_PER_TRACE)
                .map(|span| SpanView {
                    span_id: span.span_id().to_string(),
                    parent_span_id: span.parent_span_id().map(|p| p.to_string()),
                    name: span.name().to_owned(),
                    offset_us: (span.start() - start).num_microseconds().unwrap_or(i64::MAX),
                    duration_us: span.duration().map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
                    status: span.status(),
                    kind: span.kind(),
                    attributes: span.attributes().clone(),
                })
                .collect();
            Some((start, TraceView { trace_id, start_ms: start.timestamp_millis(), spans, spans_left_out }))
        })
        .collect();
    // Newest first, by the exact start (many traces share a millisecond).
    traces.sort_by_key(|(start, _)| std::cmp::Reverse(*start));
    traces.into_iter().take(MAX_TRACES).map(|(_, trace)| trace).collect()
}
