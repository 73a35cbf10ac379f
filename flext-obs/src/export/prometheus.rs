//! Prometheus text format 0.0.4 and OpenMetrics 1.0, chosen by the scrape's `Accept` header.
//!
//! Every family gets `# HELP` and `# TYPE` (and `# UNIT` in OpenMetrics when its name ends in
//! a unit), counters end in `_total`, histograms have cumulative `_bucket{le}` lines up to
//! `+Inf` plus `_sum` and `_count`, summaries have `quantile` lines; label values and help text
//! are escaped; families come out whole, in name order, and the output ends with a newline
//! (OpenMetrics: `# EOF`). In OpenMetrics, `#[flext_monitor]` series carry exemplars with the
//! `trace_id` of a recent call.
//!
//! ```
//! use flext_obs::export::prometheus::{Format, render};
//! let obs = flext_obs::Observability::new(flext_obs::Config::default())?;
//! obs.store().counter("jobs_total", &[("queue", "a \"quoted\" name")])?.increment_by(2);
//! let text = render(&obs.snapshot(), Format::Text);
//! assert!(text.contains("# TYPE jobs_total counter\n"));
//! assert!(text.contains("jobs_total{queue=\"a \\\"quoted\\\" name\"} 2\n"));
//! # Ok::<(), flext_obs::Error>(())
//! ```

use crate::entity::{MetricKind, Span, SpanStatus};
use crate::monitor::{CALLS, DURATION};
use crate::store::{ExportSnapshot, Labels, SeriesValue, Snapshot, SummaryValue};
use crate::store::{ExportValue, counter_base, push_label_pair};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0 text (with `# UNIT`, exemplars and `# EOF`).
    OpenMetrics,
}

impl Format {
    /// The format a scrape asked for in its `Accept` header: OpenMetrics when it lists
    /// `application/openmetrics-text` (as Prometheus does), else the text format.
    ///
    /// ```
    /// use flext_obs::export::prometheus::Format;
    /// let prometheus = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    /// assert_eq!(Format::from_accept(Some(prometheus)), Format::OpenMetrics);
    /// assert_eq!(Format::from_accept(Some("text/plain")), Format::Text);
    /// assert_eq!(Format::from_accept(None), Format::Text);
    /// ```
    pub fn from_accept(accept: Option<&str>) -> Format {
        let wants_openmetrics = accept.is_some_and(|accept| {
            accept.split(',').any(|part| {
                let mut params = part.split(';').map(str::trim);
                let media = params.next().unwrap_or("");
                let refused = params.any(|p| p.strip_prefix("q=").is_some_and(|q| q.trim().parse::<f64>().is_ok_and(|q| q <= 0.0)));
                media.eq_ignore_ascii_case("application/openmetrics-text") && !refused
            })
        });
        if wants_openmetrics { Format::OpenMetrics } else { Format::Text }
    }

    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Renders `snapshot` in `format`, without exemplars.
pub fn render(snapshot: &Snapshot, format: Format) -> String {
    render_with_exemplars(snapshot, &[], format)
}

/// Renders `snapshot` in `format`; in OpenMetrics, `function_calls_*` series get an exemplar
/// from the most recent matching span in `spans` (see [`crate::trace::recent_spans`]).
pub fn render_with_exemplars(snapshot: &Snapshot, spans: &[Span], format: Format) -> String {
    let views = snapshot.series.iter().map(|s| View {
        name: &s.name,
        kind: s.kind,
        help: s.help.as_deref(),
        line: None,
        labels: Lbl::Map(&s.labels),
        value: match &s.value {
            SeriesValue::Counter { value } | SeriesValue::Gauge { value } => Val::Scalar(*value),
            SeriesValue::Histogram(h) => Val::Histogram { count: h.count, sum: h.sum, buckets: &h.buckets },
            SeriesValue::Summary(s) => Val::Summary(s),
        },
    });
    render_views(views, snapshot.series.len(), spans, format)
}

/// Renders an [`ExportSnapshot`] (what the HTTP endpoint serves): the same output as
/// [`render_with_exemplars`] without first copying every name and label into a [`Snapshot`].
///
/// ```
/// use flext_obs::export::prometheus::{Format, render_export};
/// let obs = flext_obs::Observability::new(flext_obs::Config::default())?;
/// obs.store().gauge("temperature_celsius", &[("room", "a")])?.set(21.5)?;
/// let text = render_export(&obs.store().export_snapshot(), &[], Format::Text);
/// assert!(text.contains("temperature_celsius{room=\"a\"} 21.5\n"));
/// # Ok::<(), flext_obs::Error>(())
/// ```
pub fn render_export(export: &ExportSnapshot, spans: &[Span], format: Format) -> String {
    let views = export.rows().map(|(name, labels, text, line, kind, help, value)| View {
        name,
        kind,
        help,
        line,
        labels: Lbl::Pairs(labels, text),
        value: match value {
            ExportValue::Scalar(v) => Val::Scalar(*v),
            ExportValue::Histogram { count, sum, buckets } => Val::Histogram { count: *count, sum: *sum, buckets },
            ExportValue::Summary(s) => Val::Summary(s),
        },
    });
    render_views(views, export.len(), spans, format)
}

/// One series as the renderer sees it, borrowed from either kind of snapshot.
struct View<'a> {
    name: &'a str,
    kind: MetricKind,
    help: Option<&'a str>,
    /// The whole sample prefix `name{labels}` of a counter or gauge, when cached.
    line: Option<&'a str>,
    labels: Lbl<'a>,
    value: Val<'a>,
}

#[derive(Clone, Copy)]
enum Lbl<'a> {
    Map(&'a BTreeMap<String, String>),
    /// A store label set, with its exposition text when already made.
    Pairs(&'a Labels, Option<&'a str>),
}

impl<'a> Lbl<'a> {
    fn is_empty(self) -> bool {
        match self {
            Lbl::Map(m) => m.is_empty(),
            Lbl::Pairs(p, _) => p.is_empty(),
        }
    }

    fn get(self, key: &str) -> Option<&'a str> {
        match self {
            Lbl::Map(m) => m.get(key).map(String::as_str),
            Lbl::Pairs(p, _) => p.get(key),
        }
    }

    fn for_each(self, mut f: impl FnMut(&str, &str)) {
        match self {
            Lbl::Map(m) => m.iter().for_each(|(k, v)| f(k, v)),
            Lbl::Pairs(p, _) => p.iter().for_each(|(k, v)| f(k, v)),
        }
    }
}

enum Val<'a> {
    Scalar(f64),
    Histogram { count: u64, sum: f64, buckets: &'a [(f64, u64)] },
    Summary(&'a SummaryValue),
}

fn render_views<'a>(views: impl Iterator<Item = View<'a>>, hint: usize, spans: &[Span], format: Format) -> String {
    let exemplars = if format == Format::OpenMetrics { Exemplars::from_spans(spans) } else { Exemplars::default() };
    let mut out = String::with_capacity(hint * 120 + 256);
    let mut family: Option<&str> = None;
    let mut bounds = Bounds::default();
    for view in views {
        if family != Some(view.name) {
            family = Some(view.name);
            write_family_header(&mut out, &view, format);
        }
        write_series(&mut out, &view, &exemplars, &mut bounds);
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

/// Units OpenMetrics may announce when the family name ends in them.
const UNITS: [&str; 8] = ["seconds", "bytes", "ratio", "celsius", "meters", "grams", "volts", "joules"];

fn write_family_header(out: &mut String, series: &View<'_>, format: Format) {
    let name = series.name;
    let (family, kind) = match (series.kind, format) {
        (MetricKind::Counter, Format::Text) => (name, "counter"),
        (MetricKind::Counter, Format::OpenMetrics) => (counter_base(name), "counter"),
        (MetricKind::Gauge, _) => (name, "gauge"),
        (MetricKind::Histogram, _) => (name, "histogram"),
        (MetricKind::Summary, _) => (name, "summary"),
    };
    let exposed_name = if series.kind == MetricKind::Counter { counter_base(name) } else { name };
    // The text format names a counter family by its samples' name (`..._total`).
    let header_name: std::borrow::Cow<'_, str> =
        if series.kind == MetricKind::Counter && format == Format::Text { format!("{exposed_name}_total").into() } else { family.into() };
    out.push_str("# HELP ");
    out.push_str(&header_name);
    out.push(' ');
    match series.help {
        Some(help) => escape_help(out, help, format),
        None => {
            let _ = write!(out, "The {} {kind}.", exposed_name.replace('_', " "));
        }
    }
    out.push('\n');
    out.push_str("# TYPE ");
    out.push_str(&header_name);
    out.push(' ');
    out.push_str(kind);
    out.push('\n');
    if format == Format::OpenMetrics {
        if let Some(unit) = UNITS
            .iter()
            .find(|u| family.len() > u.len() + 1 && family.ends_with(*u) && family.as_bytes()[family.len() - u.len() - 1] == b'_')
        {
            let _ = writeln!(out, "# UNIT {family} {unit}");
        }
    }
}

/// The `le` texts of the last bucket layout seen: a family's series share their bounds, so
/// each bound is formatted once per family, not once per line.
#[derive(Default)]
struct Bounds {
    values: Vec<f64>,
    texts: Vec<String>,
    /// Scratch space for a series' bucket-line prefix.
    prefix: String,
}

impl Bounds {
    fn texts(&mut self, buckets: &[(f64, u64)]) -> &[String] {
        let same = self.values.len() == buckets.len() && self.values.iter().zip(buckets).all(|(a, (b, _))| a.to_bits() == b.to_bits());
        if !same {
            self.values = buckets.iter().map(|(le, _)| *le).collect();
            self.texts = self
                .values
                .iter()
                .map(|&le| {
                    let mut text = String::new();
                    push_f64(&mut text, le);
                    text
                })
                .collect();
        }
        &self.texts
    }
}

fn write_series(out: &mut String, series: &View<'_>, exemplars: &Exemplars<'_>, bounds: &mut Bounds) {
    let name = series.name;
    match &series.value {
        Val::Scalar(value) if series.kind == MetricKind::Counter => {
            if let Some(line) = series.line {
                out.push_str(line);
            } else {
                out.push_str(counter_base(name));
                out.push_str("_total");
                write_labels(out, series, None);
            }
            out.push(' ');
            push_f64(out, *value);
            if let Some(span) = exemplars.for_counter(series) {
                write_exemplar(out, span, 1.0);
            }
            out.push('\n');
        }
        Val::Scalar(value) => {
            if let Some(line) = series.line {
                out.push_str(line);
            } else {
                out.push_str(name);
                write_labels(out, series, None);
            }
            out.push(' ');
            push_f64(out, *value);
            out.push('\n');
        }
        Val::Histogram { count, sum, buckets } => {
            let exemplar = exemplars.for_histogram(series);
            let exemplar_seconds = exemplar.and_then(Span::duration).map(|d| d.as_secs_f64());
            let mut exemplar_written = false;
            // `name_bucket{labels,le="` is the same on every bucket line: write it once.
            let mut prefix = std::mem::take(&mut bounds.prefix);
            prefix.clear();
            prefix.push_str(name);
            prefix.push_str("_bucket");
            let any = open_labels(&mut prefix, series);
            prefix.push_str(if any { ",le=\"" } else { "le=\"" });
            let texts = bounds.texts(buckets);
            for (&(le, cumulative), text) in buckets.iter().zip(texts) {
                out.push_str(&prefix);
                out.push_str(text);
                out.push_str("\"} ");
                push_u64(out, cumulative);
                if let (Some(span), Some(seconds)) = (exemplar, exemplar_seconds) {
                    if !exemplar_written && seconds <= le {
                        write_exemplar(out, span, seconds);
                        exemplar_written = true;
                    }
                }
                out.push('\n');
            }
            out.push_str(&prefix);
            out.push_str("+Inf\"} ");
            bounds.prefix = prefix;
            push_u64(out, *count);
            if let (Some(span), Some(seconds), false) = (exemplar, exemplar_seconds, exemplar_written) {
                write_exemplar(out, span, seconds);
            }
            out.push('\n');
            write_sum_count(out, series, *sum, *count);
        }
        Val::Summary(s) => {
            for &(q, v) in &s.quantiles {
                out.push_str(name);
                write_labels(out, series, Some(q));
                out.push(' ');
                push_f64(out, v);
                out.push('\n');
            }
            write_sum_count(out, series, s.sum, s.count);
        }
    }
}

fn write_sum_count(out: &mut String, series: &View<'_>, sum: f64, count: u64) {
    out.push_str(series.name);
    out.push_str("_sum");
    write_labels(out, series, None);
    out.push(' ');
    push_f64(out, sum);
    out.push('\n');
    out.push_str(series.name);
    out.push_str("_count");
    write_labels(out, series, None);
    out.push(' ');
    push_u64(out, count);
    out.push('\n');
}

/// Writes `{` and the series' labels, without the closing brace (using the cached text when
/// there is one); returns whether any label was written.
fn open_labels(out: &mut String, series: &View<'_>) -> bool {
    if let Lbl::Pairs(_, Some(text)) = series.labels {
        if let Some(open) = text.strip_suffix('}') {
            out.push_str(open);
            return true;
        }
        out.push('{');
        return false;
    }
    out.push('{');
    let mut any = false;
    series.labels.for_each(|k, v| push_label_pair(out, &mut any, k, v));
    any
}

/// `{labels}`, with `quantile` last on summary lines; nothing for no labels.
fn write_labels(out: &mut String, series: &View<'_>, quantile: Option<f64>) {
    if quantile.is_none() {
        if let Lbl::Pairs(_, Some(text)) = series.labels {
            out.push_str(text);
            return;
        }
        if series.labels.is_empty() {
            return;
        }
    }
    let any = open_labels(out, series);
    if let Some(q) = quantile {
        if any {
            out.push(',');
        }
        out.push_str("quantile=\"");
        push_f64(out, q);
        out.push('"');
    }
    out.push('}');
}

/// HELP escaping: backslash and newline in both formats; OpenMetrics also escapes `"`.
fn escape_help(out: &mut String, help: &str, format: Format) {
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if format == Format::OpenMetrics => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

fn push_f64(out: &mut String, value: f64) {
    // Whole numbers (counts, most counters) skip the float formatter; NaN fails both tests.
    let magnitude = value.abs();
    if magnitude < 9.0e15 {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)] // |value| < 2^53
        let whole = magnitude as u64;
        #[allow(clippy::cast_precision_loss, clippy::float_cmp)] // exact below 2^53: a whole number compares equal
        if whole as f64 == magnitude {
            if value < 0.0 {
                out.push('-');
            }
            push_u64(out, whole);
            return;
        }
    }
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{value}");
    }
}

/// Decimal digits of `value` (itoa: two digits per step, no formatting machinery).
fn push_u64(out: &mut String, value: u64) {
    out.push_str(itoa::Buffer::new().format(value));
}

/// ` # {trace_id="..."} value timestamp` (OpenMetrics exemplar).
fn write_exemplar(out: &mut String, span: &Span, value: f64) {
    let end = span.start() + chrono::Duration::from_std(span.duration().unwrap_or_default()).unwrap_or_default();
    #[allow(clippy::cast_precision_loss)]
    let timestamp = end.timestamp_micros() as f64 / 1e6;
    let _ = write!(out, " # {{trace_id=\"{}\"}} ", span.trace_id());
    push_f64(out, value);
    out.push(' ');
    push_f64(out, timestamp);
}

/// The most recent finished span of each function, overall and by outcome.
#[derive(Default)]
struct Exemplars<'a> {
    latest: HashMap<&'a str, &'a Span>,
    by_result: HashMap<(&'a str, &'static str), &'a Span>,
}

impl<'a> Exemplars<'a> {
    fn from_spans(spans: &'a [Span]) -> Self {
        let mut exemplars = Exemplars::default();
        let mut ordered: BTreeMap<_, &Span> = BTreeMap::new();
        for (i, span) in spans.iter().enumerate() {
            ordered.insert((span.start(), i), span);
        }
        for span in ordered.into_values() {
            let Some(function) = span.attributes().get("function") else { continue };
            let result = match span.status() {
                SpanStatus::Error | SpanStatus::Timeout => "error",
                _ => "ok",
            };
            exemplars.latest.insert(function.as_str(), span);
            exemplars.by_result.insert((function.as_str(), result), span);
        }
        exemplars
    }

    fn for_histogram(&self, series: &View<'_>) -> Option<&'a Span> {
        if series.name != DURATION || self.latest.is_empty() {
            return None;
        }
        self.latest.get(series.labels.get("function")?).copied()
    }

    fn for_counter(&self, series: &View<'_>) -> Option<&'a Span> {
        if series.name != CALLS || self.by_result.is_empty() {
            return None;
        }
        let function = series.labels.get("function")?;
        let result = match series.labels.get("result")? {
            "ok" => "ok",
            "error" => "error",
            _ => return None,
        };
        self.by_result.get(&(function, result)).copied()
    }
}
