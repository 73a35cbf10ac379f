//! The export thread: takes items off the queue, batches them, sends them on the schedule, on
//! [`Command::Flush`] and at [`Command::Stop`], each request within its deadline, and settles
//! every item it took (counted as exported or dropped) so the queue's count stays exact.

use super::encode::{self, START};
use super::retry;
use super::transport::{Attempt, Channel, Rejected};
use super::{DROPPED_METRIC, EXPORTED_METRIC, FAILURES_METRIC, OtlpExporter, REJECTED_METRIC, SERVICE};
use crate::api::Observability;
use crate::entity::LogEntry;
use crate::error::{Error, Result};
use crate::outbox::{self, Item, Queue};
use crate::store::Counter;
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::trace::v1::{self as trace_v1, ResourceSpans, ScopeSpans};
use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// What the handle asks of the thread, with the deadline it must answer by.
pub(super) enum Command {
    Flush(SyncSender<Result<()>>, Instant),
    Stop(SyncSender<Result<()>>, Instant),
}

/// A retry with less time left than this is not made: it could not get an answer.
const MIN_ATTEMPT: Duration = Duration::from_millis(20);

const SIGNALS: [&str; 3] = ["spans", "metrics", "logs"];
/// The `reason` label of [`DROPPED_METRIC`].
const QUEUE_FULL: usize = 0;
const EXPORT_FAILED: usize = 1;
const SHUTDOWN: usize = 2;
const REASONS: [&str; 3] = ["queue_full", "export_failed", "shutdown"];

/// The self-metrics' handles, held for the exporter's life (a held handle is never swept).
struct SelfMetrics {
    exported: [Counter; 3],
    failures: [Counter; 3],
    /// Items the collector accepted the request of and rejected (`partial_success`).
    rejected: [Counter; 3],
    /// `[signal: spans, logs][reason]`.
    dropped: [[Counter; 3]; 2],
}

impl SelfMetrics {
    fn new(obs: &Observability) -> Result<Self> {
        let store = obs.store();
        store.describe(DROPPED_METRIC, crate::MetricKind::Counter, "Items not exported to the OTLP collector, by reason.")?;
        store.describe(EXPORTED_METRIC, crate::MetricKind::Counter, "Items sent to the OTLP collector.")?;
        store.describe(FAILURES_METRIC, crate::MetricKind::Counter, "OTLP requests that failed after their retries.")?;
        store.describe(REJECTED_METRIC, crate::MetricKind::Counter, "Items the OTLP collector rejected in a partial success.")?;
        let by_signal = |name: &str, signal: &str| store.counter(name, &[("signal", signal)]);
        let dropped = |signal: &str| -> Result<[Counter; 3]> {
            let one = |reason: &str| store.counter(DROPPED_METRIC, &[("signal", signal), ("reason", reason)]);
            Ok([one(REASONS[0])?, one(REASONS[1])?, one(REASONS[2])?])
        };
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
            rejected: [
                by_signal(REJECTED_METRIC, SIGNALS[0])?,
                by_signal(REJECTED_METRIC, SIGNALS[1])?,
                by_signal(REJECTED_METRIC, SIGNALS[2])?,
            ],
            dropped: [dropped("spans")?, dropped("logs")?],
        })
    }
}

/// The export thread's state.
pub(super) struct Run {
    exporter: OtlpExporter,
    obs: Observability,
    /// Spans, metrics, logs: `None` for a signal with no endpoint (or turned off).
    channels: [Option<Channel>; 3],
    queue: Arc<Queue>,
    spans: Vec<Item>,
    logs: Vec<LogEntry>,
    last_error: Arc<Mutex<Option<Error>>>,
    counters: SelfMetrics,
}

impl Run {
    /// The thread's state and the receiving end of a newly opened queue.
    pub(super) fn open(
        exporter: OtlpExporter,
        obs: Observability,
        last_error: Arc<Mutex<Option<Error>>>,
    ) -> Result<(Self, Receiver<Item>)> {
        LazyLock::force(&START);
        let counters = SelfMetrics::new(&obs)?;
        let on = [true, exporter.metrics, exporter.logs];
        let mut channels = [None, None, None];
        for (((slot, target), on), signal) in channels.iter_mut().zip(&exporter.targets).zip(on).zip(crate::config::Signal::ALL) {
            if let (Some(target), true) = (target, on) {
                *slot = Some(Channel::open(target.clone(), signal)?);
            }
        }
        let full = [counters.dropped[0][QUEUE_FULL].clone(), counters.dropped[1][QUEUE_FULL].clone()];
        let takes = [channels[0].is_some(), channels[2].is_some()];
        // The spans written before this exporter are not its to send.
        crate::trace::skip_pending_export();
        let (queue, items) = outbox::open(exporter.settings.max_queue_size, takes, full);
        let run = Run { exporter, obs, channels, queue, spans: Vec::new(), logs: Vec::new(), last_error, counters };
        Ok((run, items))
    }

    pub(super) fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    /// `flext_otlp_dropped_total{signal, reason="shutdown"}` for spans and logs.
    pub(super) fn shutdown_counters(&self) -> [Counter; 2] {
        [self.counters.dropped[0][SHUTDOWN].clone(), self.counters.dropped[1][SHUTDOWN].clone()]
    }

    pub(super) fn serve(&mut self, items: &Receiver<Item>, commands: &Receiver<Command>) {
        let settings = self.exporter.settings;
        let mut next_spans = Instant::now() + settings.schedule_delay;
        let mut next_metrics = Instant::now() + settings.metric_interval;
        let mut next_collect = Instant::now() + outbox::BATCH_DEADLINE / 2;
        loop {
            match commands.try_recv() {
                Ok(Command::Flush(reply, deadline)) => {
                    let _ = reply.send(self.flush_all(items, deadline));
                }
                Ok(Command::Stop(reply, deadline)) => {
                    // What is left unsettled at the deadline is counted by the handle's seal.
                    let _ = reply.send(self.flush_all(items, deadline));
                    return;
                }
                Err(TryRecvError::Disconnected) => return,
                Err(TryRecvError::Empty) => {}
            }
            match items.recv_timeout(Duration::from_millis(20)) {
                Ok(item) => self.take(item),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
            }
            let now = Instant::now();
            if now >= next_collect {
                // Spans waiting in threads' rings past their deadline (an idle thread's included).
                crate::trace::collect_for_export(&self.queue, false, crate::clock::now());
                next_collect = now + outbox::BATCH_DEADLINE / 2;
            }
            let batch = settings.max_export_batch_size;
            if self.spans.len() >= batch || self.logs.len() >= batch || now >= next_spans {
                let deadline = now + settings.export_timeout;
                let _ = self.send_spans(deadline);
                let _ = self.send_logs(deadline);
                next_spans = Instant::now() + settings.schedule_delay;
            }
            if self.channels[1].is_some() && now >= next_metrics {
                let _ = self.send_metrics(Instant::now() + settings.metric_export_timeout);
                next_metrics = Instant::now() + settings.metric_interval;
            }
        }
    }

    fn take(&mut self, item: Item) {
        match item {
            Item::Log(entry) => self.logs.push(*entry),
            span => self.spans.push(span),
        }
    }

    /// Drains the queue and sends everything by `deadline`; the first error wins. At most a
    /// queue's worth is drained, so that calls made meanwhile cannot keep a flush going forever.
    fn flush_all(&mut self, items: &Receiver<Item>, deadline: Instant) -> Result<()> {
        // The spans waiting in every thread's ring first, so that they are in the queue drained
        // below.
        crate::trace::collect_for_export(&self.queue, true, crate::clock::now());
        let mut first_error = None;
        let batch = self.exporter.settings.max_export_batch_size;
        for _ in 0..self.exporter.settings.max_queue_size {
            let Ok(item) = items.try_recv() else { break };
            self.take(item);
            if self.spans.len() >= batch {
                first_error = first_error.or(self.send_spans(deadline).err());
            }
            if self.logs.len() >= batch {
                first_error = first_error.or(self.send_logs(deadline).err());
            }
        }
        first_error = first_error.or(self.send_spans(deadline).err());
        first_error = first_error.or(self.send_logs(deadline).err());
        if self.channels[1].is_some() {
            let deadline = deadline.min(Instant::now() + self.exporter.settings.metric_export_timeout);
            first_error = first_error.or(self.send_metrics(deadline).err());
        }
        first_error.map_or(Ok(()), Err)
    }

    fn send_spans(&mut self, deadline: Instant) -> Result<()> {
        if self.spans.is_empty() {
            return Ok(());
        }
        let items = std::mem::take(&mut self.spans);
        let taken = items.len() as u64;
        let mut by_service: BTreeMap<String, Vec<trace_v1::Span>> = BTreeMap::new();
        for item in items {
            let (entity, error) = match item {
                Item::Call(record, error) => (crate::span_record::span_of(record), error),
                Item::Manual(span) => (Some(*span), None),
                Item::Log(_) => (None, None),
            };
            if let Some(entity) = entity {
                by_service.entry(entity.service().to_owned()).or_default().push(encode::to_proto_span(&entity, error.as_deref()));
            }
        }
        let count = by_service.values().map(Vec::len).sum::<usize>() as u64;
        let version = self.version();
        let request = ExportTraceServiceRequest {
            resource_spans: by_service
                .into_iter()
                .map(|(service, spans)| ResourceSpans {
                    resource: Some(encode::resource(&service, version.as_deref(), self.obs.config().resource_attributes())),
                    scope_spans: vec![ScopeSpans { scope: Some(encode::scope()), spans, schema_url: String::new() }],
                    schema_url: String::new(),
                })
                .collect(),
        };
        let result = self.post::<_, ExportTraceServiceResponse>(0, &request, deadline);
        self.settle(0, taken, count, result.as_ref().ok().copied());
        result.map(drop)
    }

    fn send_logs(&mut self, deadline: Instant) -> Result<()> {
        if self.logs.is_empty() {
            return Ok(());
        }
        let logs = std::mem::take(&mut self.logs);
        let count = logs.len() as u64;
        let service = self.obs.config().service_name().to_owned();
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(encode::resource(&service, self.version().as_deref(), self.obs.config().resource_attributes())),
                scope_logs: vec![ScopeLogs {
                    scope: Some(encode::scope()),
                    log_records: logs.iter().map(encode::to_log_record).collect(),
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        let result = self.post::<_, ExportLogsServiceResponse>(2, &request, deadline);
        self.settle(1, count, count, result.as_ref().ok().copied());
        result.map(drop)
    }

    fn send_metrics(&mut self, deadline: Instant) -> Result<()> {
        let snapshot = self.obs.snapshot();
        let metrics = encode::to_metrics(&snapshot);
        let count = metrics.len() as u64;
        let service = self.obs.config().service_name().to_owned();
        let request = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(encode::resource(&service, self.version().as_deref(), self.obs.config().resource_attributes())),
                scope_metrics: vec![ScopeMetrics { scope: Some(encode::scope()), metrics, schema_url: String::new() }],
                schema_url: String::new(),
            }],
        };
        let result = self.post::<_, ExportMetricsServiceResponse>(1, &request, deadline);
        if result.is_ok() {
            self.counters.exported[1].increment_by(count);
        }
        result.map(drop)
    }

    fn version(&self) -> Option<String> {
        self.exporter.service_version.clone().or_else(|| self.obs.build_version())
    }

    /// Settles `taken` items of `signal` (0 spans, 1 logs), `count` of which were in the request;
    /// `rejected` is `Some(n)` when the collector took the request and rejected `n` of them
    /// (counted in [`REJECTED_METRIC`]), `None` when the request failed. What was neither sent
    /// nor rejected counts as dropped, `export_failed`. Nothing is counted when a shutdown that
    /// gave up sealed the queue meanwhile: it counted them.
    fn settle(&self, signal: usize, taken: u64, count: u64, rejected: Option<u64>) {
        if self.queue.settle(signal, taken) {
            let exported = [0, 2][signal];
            let rejected = rejected.map(|r| r.min(count));
            let sent = rejected.map_or(0, |r| count - r);
            self.counters.exported[exported].increment_by(sent);
            self.counters.rejected[exported].increment_by(rejected.unwrap_or(0));
            self.counters.dropped[signal][EXPORT_FAILED].increment_by(taken - sent - rejected.unwrap_or(0));
        }
    }

    /// Posts `message` on `signal`'s channel (0 spans, 1 metrics, 2 logs) by `deadline`,
    /// retrying what the [`retry`] policy allows: each attempt gets at most the channel's request
    /// timeout and the time left; a wait (backoff or `Retry-After`) that would outlast the
    /// deadline ends the export with the last error. `Ok` holds the items the collector rejected.
    fn post<M: prost::Message + serde::Serialize, R: Rejected>(&self, signal: usize, message: &M, deadline: Instant) -> Result<u64> {
        let Some(channel) = &self.channels[signal] else { return Ok(0) };
        let result = Self::exchange(channel, message, deadline);
        match &result {
            Ok(answer) => {
                let (rejected, why) = channel.rejected::<R>(answer);
                if rejected > 0 && signal == 1 {
                    self.counters.rejected[1].increment_by(rejected);
                }
                if rejected > 0 || !why.is_empty() {
                    let error =
                        Error::Remote { service: SERVICE, status: 200, message: format!("partial success: {rejected} rejected: {why}") };
                    *self.last_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
                }
                Ok(rejected)
            }
            Err(err) => {
                self.counters.failures[signal].increment();
                *self.last_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(err.clone());
                Err(err.clone())
            }
        }
    }

    /// The attempts of one export; the 2xx answer's body.
    fn exchange<M: prost::Message + serde::Serialize>(channel: &Channel, message: &M, deadline: Instant) -> Result<Vec<u8>> {
        let body = channel.body(message)?;
        let mut last: Option<Error> = None;
        let mut retry = 0u32;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || (last.is_some() && left < MIN_ATTEMPT) {
                // No request was made: the items are dropped and counted by the caller.
                return Err(last.unwrap_or_else(|| Error::Transport {
                    service: SERVICE,
                    message: "no time left before the export's deadline".to_owned(),
                }));
            }
            match channel.attempt(&body, left.min(channel.request_timeout())) {
                Attempt::Accepted(answer) => return Ok(answer),
                Attempt::Failed { error, retry: false, .. } => return Err(error),
                Attempt::Failed { error, retry: true, after } => {
                    let wait = after.unwrap_or_else(|| retry::backoff(retry + 1));
                    if Instant::now() + wait + MIN_ATTEMPT > deadline {
                        return Err(error);
                    }
                    std::thread::sleep(wait);
                    last = Some(error);
                    retry += 1;
                }
            }
        }
    }
}
