//! What the exporter sends, in OTLP form: the official `opentelemetry-proto` messages built from
//! spans, log entries and a store snapshot (pure functions, no I/O).

use crate::config::ResourceAttributes;
use crate::entity::{LogEntry, LogLevel, Span, SpanKind, SpanStatus};
use crate::store::{SeriesValue, Snapshot};
use chrono::{DateTime, Utc};
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, SeverityNumber};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, Sum, Summary, SummaryDataPoint, metric,
    number_data_point, summary_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{self as trace_v1, Status, span, status};
use std::sync::LazyLock;

/// When the process started exporting: the start time of cumulative metric points.
pub(super) static START: LazyLock<DateTime<Utc>> = LazyLock::new(Utc::now);

/// The resource of `service`: `service.name`, `service.version` when known (else the one of
/// `extra`, if any), the SDK's name, language and version, then the other `extra` attributes
/// (`OTEL_RESOURCE_ATTRIBUTES`; `service.name` and the SDK's own are ours whatever they say).
pub(super) fn resource(service: &str, version: Option<&str>, extra: &ResourceAttributes) -> Resource {
    let mut attributes = vec![
        kv("service.name", service),
        kv("telemetry.sdk.name", "flext-obs"),
        kv("telemetry.sdk.language", "rust"),
        kv("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
    ];
    if let Some(version) = version.or_else(|| extra.get("service.version")) {
        attributes.insert(1, kv("service.version", version));
    }
    for (key, value) in extra.iter() {
        if !attributes.iter().any(|a| a.key == key) {
            attributes.push(kv(key, value));
        }
    }
    Resource { attributes, ..Resource::default() }
}

pub(super) fn scope() -> InstrumentationScope {
    InstrumentationScope { name: "flext-obs".to_owned(), version: env!("CARGO_PKG_VERSION").to_owned(), ..InstrumentationScope::default() }
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue { key: key.to_owned(), value: Some(text(value)), ..KeyValue::default() }
}

fn text(value: &str) -> AnyValue {
    AnyValue { value: Some(any_value::Value::StringValue(value.to_owned())) }
}

fn unix_nanos(at: DateTime<Utc>) -> u64 {
    at.timestamp_nanos_opt().and_then(|n| u64::try_from(n).ok()).unwrap_or(0)
}

/// Whether the parent is remote (OTLP's `SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE` and `_IS_REMOTE`
/// bits): a server span's parent came in with the request; every other span's parent is in
/// this process. The W3C trace-flag bits are left 0: a failed call kept by `keep_errors` was
/// not sampled, and the entity does not say which.
fn span_flags(entity: &Span) -> u32 {
    const HAS_IS_REMOTE: u32 = 0x100;
    const IS_REMOTE: u32 = 0x200;
    let remote = entity.kind() == SpanKind::Server && entity.parent_span_id().is_some();
    HAS_IS_REMOTE | if remote { IS_REMOTE } else { 0 }
}

/// One span in OTLP form.
pub(super) fn to_proto_span(entity: &Span, error: Option<&str>) -> trace_v1::Span {
    let start = unix_nanos(entity.start());
    let duration = entity.duration().map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let mut attributes: Vec<KeyValue> = entity.attributes().iter().map(|(k, v)| kv(k, v)).collect();
    if let (Some(id), false) = (entity.correlation_id(), entity.attributes().contains_key("correlation_id")) {
        attributes.push(kv("correlation_id", &id.to_string()));
    }
    let status = match entity.status() {
        SpanStatus::Error => {
            Some(Status { code: status::StatusCode::Error.into(), message: error.unwrap_or("the call failed").to_owned() })
        }
        SpanStatus::Timeout => Some(Status { code: status::StatusCode::Error.into(), message: "cancelled before it completed".to_owned() }),
        SpanStatus::Completed | SpanStatus::Pending => None,
    };
    trace_v1::Span {
        trace_id: entity.trace_id().to_bytes().to_vec(),
        span_id: entity.span_id().to_bytes().to_vec(),
        parent_span_id: entity.parent_span_id().map(|p| p.to_bytes().to_vec()).unwrap_or_default(),
        name: entity.name().to_owned(),
        kind: match entity.kind() {
            SpanKind::Server => span::SpanKind::Server,
            SpanKind::Client => span::SpanKind::Client,
            SpanKind::Internal => span::SpanKind::Internal,
        }
        .into(),
        flags: span_flags(entity),
        start_time_unix_nano: start,
        end_time_unix_nano: start.saturating_add(duration),
        attributes,
        status,
        trace_state: entity.trace_state().unwrap_or_default().to_owned(),
        ..trace_v1::Span::default()
    }
}

fn severity(level: LogLevel) -> SeverityNumber {
    match level {
        LogLevel::Debug => SeverityNumber::Debug,
        LogLevel::Info => SeverityNumber::Info,
        LogLevel::Warning => SeverityNumber::Warn,
        LogLevel::Error => SeverityNumber::Error,
        LogLevel::Critical => SeverityNumber::Fatal,
    }
}

fn json_value(value: &serde_json::Value) -> AnyValue {
    use any_value::Value as V;
    let value = match value {
        serde_json::Value::Null => None,
        serde_json::Value::Bool(b) => Some(V::BoolValue(*b)),
        serde_json::Value::Number(n) => Some(n.as_i64().map_or_else(|| V::DoubleValue(n.as_f64().unwrap_or(f64::NAN)), V::IntValue)),
        serde_json::Value::String(s) => Some(V::StringValue(s.clone())),
        serde_json::Value::Array(items) => Some(V::ArrayValue(ArrayValue { values: items.iter().map(json_value).collect() })),
        serde_json::Value::Object(map) => Some(V::KvlistValue(KeyValueList {
            values: map.iter().map(|(k, v)| KeyValue { key: k.clone(), value: Some(json_value(v)), ..KeyValue::default() }).collect(),
        })),
    };
    AnyValue { value }
}

/// One log entry in OTLP form.
pub(super) fn to_log_record(entry: &LogEntry) -> LogRecord {
    let mut attributes: Vec<KeyValue> =
        entry.fields().iter().map(|(k, v)| KeyValue { key: k.clone(), value: Some(json_value(v)), ..KeyValue::default() }).collect();
    if let Some(id) = entry.correlation_id() {
        attributes.push(kv("correlation_id", &id.to_string()));
    }
    let at = unix_nanos(entry.timestamp());
    LogRecord {
        time_unix_nano: at,
        observed_time_unix_nano: at,
        severity_number: severity(entry.level()).into(),
        severity_text: entry.level().as_str().to_owned(),
        body: Some(text(entry.message())),
        attributes,
        trace_id: entry.trace_id().map(|t| t.to_bytes().to_vec()).unwrap_or_default(),
        span_id: entry.span_id().map(|s| s.to_bytes().to_vec()).unwrap_or_default(),
        // An event (an exception record says `event.name = exception`) also gets OTLP's own
        // field, where backends look for it.
        event_name: entry.fields().get("event.name").and_then(serde_json::Value::as_str).unwrap_or_default().to_owned(),
        ..LogRecord::default()
    }
}

/// A store label as its OpenTelemetry attribute: the semantic-convention attributes our series
/// carry under Prometheus-valid names (`error_type`, the HTTP server metric's labels) get their
/// dotted names back; every other label is sent as it is.
fn semconv_key(label: &str) -> &str {
    match label {
        "error_type" => "error.type",
        "http_request_method" => "http.request.method",
        "http_route" => "http.route",
        "http_response_status_code" => "http.response.status_code",
        other => other,
    }
}

/// The store as OTLP metrics: one metric per name, one point per series, cumulative.
pub(super) fn to_metrics(snapshot: &Snapshot) -> Vec<Metric> {
    let start = unix_nanos(*START);
    let now = unix_nanos(snapshot.taken_at);
    let mut metrics: Vec<Metric> = Vec::new();
    for series in &snapshot.series {
        let attributes: Vec<KeyValue> = series.labels.iter().map(|(k, v)| kv(semconv_key(k), v)).collect();
        let number = |value: f64| NumberDataPoint {
            attributes: attributes.clone(),
            start_time_unix_nano: start,
            time_unix_nano: now,
            value: Some(number_data_point::Value::AsDouble(value)),
            ..NumberDataPoint::default()
        };
        let cumulative = AggregationTemporality::Cumulative.into();
        let data = match &series.value {
            SeriesValue::Counter { value } => {
                metric::Data::Sum(Sum { data_points: vec![number(*value)], aggregation_temporality: cumulative, is_monotonic: true })
            }
            SeriesValue::Gauge { value } => metric::Data::Gauge(Gauge { data_points: vec![number(*value)] }),
            SeriesValue::Histogram(h) => {
                let mut below = 0;
                let mut bucket_counts: Vec<u64> = h
                    .buckets
                    .iter()
                    .map(|&(_, cumulative)| {
                        let in_bucket = cumulative.saturating_sub(below);
                        below = cumulative;
                        in_bucket
                    })
                    .collect();
                bucket_counts.push(h.count.saturating_sub(below));
                metric::Data::Histogram(Histogram {
                    data_points: vec![HistogramDataPoint {
                        attributes: attributes.clone(),
                        start_time_unix_nano: start,
                        time_unix_nano: now,
                        count: h.count,
                        sum: Some(h.sum),
                        bucket_counts,
                        explicit_bounds: h.buckets.iter().map(|&(le, _)| le).collect(),
                        ..HistogramDataPoint::default()
                    }],
                    aggregation_temporality: cumulative,
                })
            }
            SeriesValue::Summary(s) => metric::Data::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    attributes: attributes.clone(),
                    start_time_unix_nano: start,
                    time_unix_nano: now,
                    count: s.count,
                    sum: s.sum,
                    quantile_values: s
                        .quantiles
                        .iter()
                        .filter(|(_, v)| !v.is_nan())
                        .map(|&(quantile, value)| summary_data_point::ValueAtQuantile { quantile, value })
                        .collect(),
                    ..SummaryDataPoint::default()
                }],
            }),
        };
        match metrics.last_mut() {
            Some(last) if last.name == series.name => merge(last, data),
            _ => metrics.push(Metric {
                name: series.name.clone(),
                description: series.help.clone().unwrap_or_default(),
                data: Some(data),
                ..Metric::default()
            }),
        }
    }
    metrics
}

/// Adds the points of `data` to `metric` (same name, so same kind).
fn merge(metric: &mut Metric, data: metric::Data) {
    use metric::Data as D;
    match (metric.data.as_mut(), data) {
        (Some(D::Sum(a)), D::Sum(b)) => a.data_points.extend(b.data_points),
        (Some(D::Gauge(a)), D::Gauge(b)) => a.data_points.extend(b.data_points),
        (Some(D::Histogram(a)), D::Histogram(b)) => a.data_points.extend(b.data_points),
        (Some(D::Summary(a)), D::Summary(b)) => a.data_points.extend(b.data_points),
        _ => {}
    }
}
