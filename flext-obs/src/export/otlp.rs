//! OTLP/HTTP export (protobuf) of spans, metrics and logs to an OpenTelemetry collector
//! (`OTEL_EXPORTER_OTLP_ENDPOINT`). The messages are the official ones from
//! `opentelemetry-proto`, encoded by `prost`; requests go out with `ureq` from one background
//! thread.
//!
//! - **Spans**: every span the [sampler](crate::sample) keeps (monitored calls and manual spans)
//!   is offered to a bounded queue without waiting; a full queue drops the span and counts it in
//!   `flext_otlp_dropped_total{signal="spans"}`. Batches of `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`
//!   spans leave at least every `OTEL_BSP_SCHEDULE_DELAY`, and everything queued leaves on
//!   [`flush`](OtlpHandle::flush) and on shutdown. A span carries its parent, status (error with
//!   the error's message), and the attributes `function`, `module` and `correlation_id`.
//! - **Metrics**: the whole store, cumulative, every `OTEL_METRIC_EXPORT_INTERVAL` and on
//!   shutdown (counters as monotonic sums, gauges, histograms with explicit bounds, summaries).
//! - **Logs**: every line [`crate::log`] writes, with its trace and span IDs.
//!
//! The resource carries `service.name` (the span's service) and `service.version` (the
//! configuration's, else `build_info`'s version). Failed requests are retried 3 times with
//! backoff on network errors, 429 and 5xx; what still fails is counted in
//! `flext_otlp_export_failures_total{signal}` and kept as [`OtlpHandle::last_error`].
//!
//! ```no_run
//! use flext_obs::export::otlp::OtlpExporter;
//! let exporter = OtlpExporter::new("http://127.0.0.1:4318")?;
//! let handle = exporter.install(flext_obs::global().clone())?;
//! // ... monitored calls ...
//! handle.shutdown()?; // sends what is queued
//! # Ok::<(), flext_obs::Error>(())
//! ```

use super::client;
use crate::api::Observability;
use crate::config::OtlpSettings;
use crate::entity::{LogEntry, LogLevel, Span, SpanStatus};
use crate::error::{Error, Result};
use crate::outbox::{self, Item};
use crate::store::{Counter, SeriesValue, Snapshot};
use chrono::{DateTime, Utc};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint, metric, number_data_point, summary_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{self as trace_v1, ResourceSpans, ScopeSpans, Status, span, status};
use prost::Message as _;
use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const SERVICE: &str = "OTLP collector";
/// Self-metric: items dropped because the export queue was full, by signal.
pub const DROPPED_METRIC: &str = "flext_otlp_dropped_total";
/// Self-metric: items sent, by signal.
pub const EXPORTED_METRIC: &str = "flext_otlp_exported_total";
/// Self-metric: requests that failed after their retries, by signal.
pub const FAILURES_METRIC: &str = "flext_otlp_export_failures_total";

/// When the process started exporting: the start time of cumulative metric points.
static START: LazyLock<DateTime<Utc>> = LazyLock::new(Utc::now);

/// Where and how to export. [`install`](OtlpExporter::install) starts it.
#[derive(Debug, Clone)]
pub struct OtlpExporter {
    traces_url: String,
    metrics_url: String,
    logs_url: String,
    settings: OtlpSettings,
    service_version: Option<String>,
    metrics: bool,
    logs: bool,
}

impl OtlpExporter {
    /// An exporter to the collector at `endpoint` (`http://host:4318`): requests go to
    /// `/v1/traces`, `/v1/metrics` and `/v1/logs` under it, as `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// asks.
    ///
    /// ```
    /// use flext_obs::export::otlp::OtlpExporter;
    /// let exporter = OtlpExporter::new("http://127.0.0.1:4318/")?;
    /// assert_eq!(exporter.traces_url(), "http://127.0.0.1:4318/v1/traces");
    /// assert!(OtlpExporter::new("127.0.0.1:4318").is_err());
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn new(endpoint: &str) -> Result<Self> {
        let base = client::base_url(SERVICE, endpoint)?;
        Ok(OtlpExporter {
            traces_url: format!("{base}/v1/traces"),
            metrics_url: format!("{base}/v1/metrics"),
            logs_url: format!("{base}/v1/logs"),
            settings: OtlpSettings::default(),
            service_version: None,
            metrics: true,
            logs: true,
        })
    }

    /// The exporter `OTEL_EXPORTER_OTLP_ENDPOINT` asks for, with the configuration's batching.
    pub fn from_config(config: &crate::Config) -> Result<Option<Self>> {
        config
            .otlp_endpoint()
            .map(|endpoint| {
                let mut exporter = Self::new(endpoint)?.settings(config.otlp());
                exporter.service_version = config.version().map(str::to_owned);
                Ok(exporter)
            })
            .transpose()
    }

    /// Batching and intervals (default: OpenTelemetry's).
    #[must_use]
    pub fn settings(mut self, settings: OtlpSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Exports metrics too (default true).
    #[must_use]
    pub fn metrics(mut self, on: bool) -> Self {
        self.metrics = on;
        self
    }

    /// Exports log lines too (default true).
    #[must_use]
    pub fn logs(mut self, on: bool) -> Self {
        self.logs = on;
        self
    }

    /// The URL spans are posted to.
    pub fn traces_url(&self) -> &str {
        &self.traces_url
    }

    /// Starts exporting what `obs` records, on a background thread. One exporter at a time:
    /// installing a second one while the first runs is an error.
    pub fn install(self, obs: Observability) -> Result<OtlpHandle> {
        let mut running = RUNNING.lock().unwrap_or_else(PoisonError::into_inner);
        if *running {
            return Err(Error::invalid("OtlpExporter", "install", "a second exporter", "an OTLP exporter is already running"));
        }
        let (control, commands) = mpsc::channel();
        let last_error = Arc::new(Mutex::new(None));
        let mut run = Run::new(self, obs, Arc::clone(&last_error))?;
        let queue = outbox::open(run.exporter.settings.max_queue_size);
        let thread =
            std::thread::Builder::new().name("flext-otlp".to_owned()).spawn(move || run.serve(&queue, &commands)).map_err(|e| {
                outbox::close();
                Error::invalid("OtlpExporter", "thread", e.to_string(), "the export thread could not be started")
            })?;
        *running = true;
        Ok(OtlpHandle { control, thread: Some(thread), last_error })
    }
}

static RUNNING: Mutex<bool> = Mutex::new(false);

enum Command {
    Flush(mpsc::SyncSender<Result<()>>),
    Stop(mpsc::SyncSender<Result<()>>),
}

/// A running exporter. Dropping it stops the export after sending what is queued.
#[derive(Debug)]
pub struct OtlpHandle {
    control: Sender<Command>,
    thread: Option<JoinHandle<()>>,
    last_error: Arc<Mutex<Option<Error>>>,
}

impl OtlpHandle {
    /// Sends everything queued (spans, logs) and the current metrics now, and waits until the
    /// collector answered; the error is the first request that failed.
    pub fn flush(&self) -> Result<()> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.control.send(Command::Flush(reply)).map_err(|_| stopped())?;
        answer.recv().map_err(|_| stopped())?
    }

    /// Stops queueing, sends what is queued and the final metrics, and ends the thread.
    pub fn shutdown(mut self) -> Result<()> {
        self.stop()
    }

    /// The last error an export ended with (after its retries), if any.
    pub fn last_error(&self) -> Option<Error> {
        self.last_error.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn stop(&mut self) -> Result<()> {
        let Some(thread) = self.thread.take() else { return Ok(()) };
        outbox::close();
        let (reply, answer) = mpsc::sync_channel(1);
        let result = match self.control.send(Command::Stop(reply)) {
            Ok(()) => answer.recv().unwrap_or_else(|_| Err(stopped())),
            Err(_) => Err(stopped()),
        };
        let _ = thread.join();
        *RUNNING.lock().unwrap_or_else(PoisonError::into_inner) = false;
        result
    }
}

impl Drop for OtlpHandle {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn stopped() -> Error {
    Error::invalid("OtlpExporter", "thread", "stopped", "the export thread is no longer running")
}

/// The export thread's state.
struct Run {
    exporter: OtlpExporter,
    obs: Observability,
    agent: ureq::Agent,
    spans: Vec<Item>,
    logs: Vec<LogEntry>,
    last_error: Arc<Mutex<Option<Error>>>,
    counters: SelfMetrics,
    dropped_seen: (u64, u64),
}

struct SelfMetrics {
    exported: [Counter; 3],
    failures: [Counter; 3],
    dropped: [Counter; 2],
}

const SIGNALS: [&str; 3] = ["spans", "metrics", "logs"];

impl SelfMetrics {
    fn new(obs: &Observability) -> Result<Self> {
        let store = obs.store();
        store.describe(DROPPED_METRIC, crate::MetricKind::Counter, "Items not exported because the OTLP queue was full.")?;
        store.describe(EXPORTED_METRIC, crate::MetricKind::Counter, "Items sent to the OTLP collector.")?;
        store.describe(FAILURES_METRIC, crate::MetricKind::Counter, "OTLP requests that failed after their retries.")?;
        let by_signal = |name: &str, signal: &str| store.counter(name, &[("signal", signal)]);
        Ok(SelfMetrics {
            exported: [
                by_signal(EXPORTED_METRIC, SIGNALS[0])?,
                by_signal(EXPORTED_METRIC, SIGNALS[1])?,
                by_signal(EXPORTED_METRIC, SIGNALS[2])?,
            ],
            failures: [
                by_signal(FAILURES_METRIC, SIGNALS[0])?,
                by_signal(FAILURES_METRIC, SIGNALS[1])?,
                by_signal(FAILURES_METRIC, SIGNALS[2])?,
            ],
            dropped: [by_signal(DROPPED_METRIC, "spans")?, by_signal(DROPPED_METRIC, "logs")?],
        })
    }
}

impl Run {
    fn new(exporter: OtlpExporter, obs: Observability, last_error: Arc<Mutex<Option<Error>>>) -> Result<Self> {
        LazyLock::force(&START);
        let counters = SelfMetrics::new(&obs)?;
        Ok(Run {
            exporter,
            obs,
            agent: client::agent(),
            spans: Vec::new(),
            logs: Vec::new(),
            last_error,
            counters,
            dropped_seen: outbox::dropped(),
        })
    }

    fn serve(&mut self, queue: &Receiver<Item>, commands: &Receiver<Command>) {
        let settings = self.exporter.settings;
        let mut next_spans = Instant::now() + settings.schedule_delay;
        let mut next_metrics = Instant::now() + settings.metric_interval;
        loop {
            match commands.try_recv() {
                Ok(Command::Flush(reply)) => {
                    let _ = reply.send(self.flush_all(queue));
                }
                Ok(Command::Stop(reply)) => {
                    let _ = reply.send(self.flush_all(queue));
                    return;
                }
                Err(TryRecvError::Disconnected) => {
                    let _ = self.flush_all(queue);
                    return;
                }
                Err(TryRecvError::Empty) => {}
            }
            let received = queue.recv_timeout(Duration::from_millis(20));
            match received {
                Ok(item) => self.take(item),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
            }
            let now = Instant::now();
            if self.spans.len() >= settings.max_export_batch_size || self.logs.len() >= settings.max_export_batch_size || now >= next_spans
            {
                let _ = self.send_spans();
                let _ = self.send_logs();
                next_spans = now + settings.schedule_delay;
            }
            if self.exporter.metrics && now >= next_metrics {
                let _ = self.send_metrics();
                next_metrics = now + settings.metric_interval;
            }
        }
    }

    fn take(&mut self, item: Item) {
        match item {
            Item::Log(entry) if self.exporter.logs => self.logs.push(*entry),
            Item::Log(_) => {}
            span => self.spans.push(span),
        }
    }

    /// Drains the queue and sends everything; the first error wins. At most a queue's worth is
    /// drained, so that calls made meanwhile cannot keep a flush going forever.
    fn flush_all(&mut self, queue: &Receiver<Item>) -> Result<()> {
        let mut first_error = None;
        for _ in 0..self.exporter.settings.max_queue_size {
            let item = queue.try_recv();
            match item {
                Ok(item) => {
                    self.take(item);
                    if self.spans.len() >= self.exporter.settings.max_export_batch_size {
                        first_error = first_error.or(self.send_spans().err());
                    }
                }
                Err(_) => break,
            }
        }
        first_error = first_error.or(self.send_spans().err());
        first_error = first_error.or(self.send_logs().err());
        if self.exporter.metrics {
            first_error = first_error.or(self.send_metrics().err());
        }
        first_error.map_or(Ok(()), Err)
    }

    fn resource(&self, service: &str) -> Resource {
        let version = self.exporter.service_version.clone().or_else(|| self.obs.build_version());
        let mut attributes = vec![
            kv("service.name", service),
            kv("telemetry.sdk.name", "flext-obs"),
            kv("telemetry.sdk.language", "rust"),
            kv("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
        ];
        if let Some(version) = version {
            attributes.insert(1, kv("service.version", &version));
        }
        Resource { attributes, ..Resource::default() }
    }

    fn send_spans(&mut self) -> Result<()> {
        self.mirror_drops();
        if self.spans.is_empty() {
            return Ok(());
        }
        let items = std::mem::take(&mut self.spans);
        let mut by_service: BTreeMap<String, Vec<trace_v1::Span>> = BTreeMap::new();
        for item in items {
            let (entity, error) = match item {
                Item::Call(record, error) => (crate::span_record::span_of(record), error),
                Item::Manual(span) => (Some(*span), None),
                Item::Log(_) => (None, None),
            };
            if let Some(entity) = entity {
                by_service.entry(entity.service().to_owned()).or_default().push(to_proto_span(&entity, error.as_deref()));
            }
        }
        let count: usize = by_service.values().map(Vec::len).sum();
        let request = ExportTraceServiceRequest {
            resource_spans: by_service
                .into_iter()
                .map(|(service, spans)| ResourceSpans {
                    resource: Some(self.resource(&service)),
                    scope_spans: vec![ScopeSpans { scope: Some(scope()), spans, schema_url: String::new() }],
                    schema_url: String::new(),
                })
                .collect(),
        };
        self.post(0, &self.exporter.traces_url.clone(), &request.encode_to_vec(), count)
    }

    fn send_logs(&mut self) -> Result<()> {
        self.mirror_drops();
        if self.logs.is_empty() {
            return Ok(());
        }
        let logs = std::mem::take(&mut self.logs);
        let count = logs.len();
        let service = self.obs.config().service_name().to_owned();
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(self.resource(&service)),
                scope_logs: vec![ScopeLogs {
                    scope: Some(scope()),
                    log_records: logs.iter().map(to_log_record).collect(),
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        self.post(2, &self.exporter.logs_url.clone(), &request.encode_to_vec(), count)
    }

    fn send_metrics(&mut self) -> Result<()> {
        self.mirror_drops();
        let snapshot = self.obs.snapshot();
        let metrics = to_metrics(&snapshot);
        let count = metrics.len();
        let service = self.obs.config().service_name().to_owned();
        let request = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(self.resource(&service)),
                scope_metrics: vec![ScopeMetrics { scope: Some(scope()), metrics, schema_url: String::new() }],
                schema_url: String::new(),
            }],
        };
        self.post(1, &self.exporter.metrics_url.clone(), &request.encode_to_vec(), count)
    }

    /// Brings the dropped-item counters up to the queue's own counts.
    fn mirror_drops(&mut self) {
        let (spans, logs) = outbox::dropped();
        self.counters.dropped[0].increment_by(spans - self.dropped_seen.0);
        self.counters.dropped[1].increment_by(logs - self.dropped_seen.1);
        self.dropped_seen = (spans, logs);
    }

    /// Posts one request, retrying network errors, 429 and 5xx up to 3 times with backoff.
    fn post(&self, signal: usize, url: &str, body: &[u8], items: usize) -> Result<()> {
        let mut delay = Duration::from_millis(100);
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            let sent = self.agent.post(url).header("Content-Type", "application/x-protobuf").send(body);
            let result = client::check(SERVICE, sent);
            let retry = match &result {
                Err(Error::Transport { .. }) => true,
                Err(Error::Remote { status, .. }) => *status == 429 || *status >= 500,
                _ => false,
            };
            if !retry || attempt == 4 {
                break result;
            }
            std::thread::sleep(delay);
            delay *= 2;
        };
        match &result {
            Ok(()) => self.counters.exported[signal].increment_by(items as u64),
            Err(err) => {
                self.counters.failures[signal].increment();
                *self.last_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(err.clone());
            }
        }
        result
    }
}

fn scope() -> InstrumentationScope {
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

/// One span in OTLP form.
fn to_proto_span(entity: &Span, error: Option<&str>) -> trace_v1::Span {
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
        kind: span::SpanKind::Internal.into(),
        start_time_unix_nano: start,
        end_time_unix_nano: start.saturating_add(duration),
        attributes,
        status,
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
fn to_log_record(entry: &LogEntry) -> LogRecord {
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
        ..LogRecord::default()
    }
}

/// The store as OTLP metrics: one metric per name, one point per series, cumulative.
fn to_metrics(snapshot: &Snapshot) -> Vec<Metric> {
    let start = unix_nanos(*START);
    let now = unix_nanos(snapshot.taken_at);
    let mut metrics: Vec<Metric> = Vec::new();
    for series in &snapshot.series {
        let attributes: Vec<KeyValue> = series.labels.iter().map(|(k, v)| kv(k, v)).collect();
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
