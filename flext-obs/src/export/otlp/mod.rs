//! OTLP/HTTP export of spans, metrics and logs to an OpenTelemetry collector
//! (`OTEL_EXPORTER_OTLP_ENDPOINT` and the rest of the `OTEL_EXPORTER_OTLP_*` variables, see
//! [`crate::config::OtlpTransports`]). The messages are the official ones from
//! `opentelemetry-proto`, encoded by `prost` (`http/protobuf`) or in the specification's JSON
//! mapping (`http/json`), gzip-compressed when asked; requests go out with `ureq` from one
//! background thread, over rustls for `https://` (cargo feature `tls`), with the configured
//! headers. With the cargo feature `otlp-grpc`, `grpc` sends the same protobuf requests as
//! unary calls of the collector services through tonic.
//!
//! - **Spans**: every span the [sampler](crate::sample) keeps (monitored calls and manual spans)
//!   is offered to a bounded queue without waiting; a full queue drops the span and counts it in
//!   `flext_otlp_dropped_total{signal="spans", reason="queue_full"}`. A monitored call's span
//!   is taken from its thread's span ring in batches of up to 32 (by the thread once it wrote
//!   32, by the export thread within about 30 ms, and on flush and shutdown;
//!   [`OtlpHandle::queued`] counts the spans waiting in the rings). Batches of
//!   `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` spans leave at least every `OTEL_BSP_SCHEDULE_DELAY`, and
//!   everything queued leaves on [`flush`](OtlpHandle::flush) and on shutdown. A span carries its parent, status (error with
//!   the error's message), and the attributes `function`, `module` and `correlation_id`.
//! - **Metrics**: the whole store, cumulative, every `OTEL_METRIC_EXPORT_INTERVAL` and on
//!   shutdown (counters as monotonic sums, gauges, histograms with explicit bounds, summaries).
//! - **Logs**: every line [`crate::log`] writes, with its trace and span IDs.
//!
//! The resource carries `service.name` (the span's service) and `service.version` (the
//! configuration's, else `build_info`'s version) and `OTEL_RESOURCE_ATTRIBUTES`.
//!
//! **Retries**, as the specification says: network errors and the statuses 429, 502, 503 and
//! 504 only (not 500 or 4xx), after an exponential backoff with jitter (100 ms doubling to 5 s)
//! or the server's `Retry-After` (seconds or HTTP-date), as long as the export's deadline allows;
//! each attempt takes at most `OTEL_EXPORTER_OTLP_TIMEOUT` (10 s). What still fails is counted in
//! `flext_otlp_export_failures_total{signal}` and kept as [`OtlpHandle::last_error`]. Items a
//! collector rejects in a `partial_success` are counted in `flext_otlp_rejected_total{signal}`
//! (spans, log records; data points for metrics) and its message kept as the last error.
//!
//! **Deadlines.** One export, its retries included, takes at most `export_timeout`
//! (`OTEL_BSP_EXPORT_TIMEOUT`, 30 s), and so does a [`flush`](OtlpHandle::flush);
//! [`shutdown`](OtlpHandle::shutdown) and dropping the handle take at most `shutdown_timeout`
//! (5 s) as a whole, even while a 30 s export is in flight. Every span or log entry that was
//! accepted is, at every moment, either queued (in flight included), counted in
//! `flext_otlp_exported_total{signal}`, counted in `flext_otlp_rejected_total{signal}`, or
//! counted in `flext_otlp_dropped_total{signal, reason}`
//! with `reason` = `queue_full`, `export_failed` (its request failed after its retries) or
//! `shutdown` (not sent by the shutdown's deadline). A shutdown that gives up on an export still
//! in flight leaves that request to end on its own, within `export_timeout`, on a thread that
//! counts nothing more.
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
use crate::config::{OtlpSettings, OtlpTarget, OtlpTransports, Signal};
use crate::error::{Error, Result};
use crate::outbox;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod encode;
#[cfg(feature = "otlp-grpc")]
mod grpc;
mod retry;
mod run;
mod transport;

use run::{Command, Run};

const SERVICE: &str = "OTLP collector";
/// Self-metric: items not exported, by signal and reason (`queue_full`, `export_failed`,
/// `shutdown`).
pub const DROPPED_METRIC: &str = "flext_otlp_dropped_total";
/// Self-metric: items sent, by signal.
pub const EXPORTED_METRIC: &str = "flext_otlp_exported_total";
/// Self-metric: requests that failed after their retries, by signal.
pub const FAILURES_METRIC: &str = "flext_otlp_export_failures_total";
/// Self-metric: items a collector took the request of and rejected (`partial_success`), by
/// signal (data points for metrics).
pub const REJECTED_METRIC: &str = "flext_otlp_rejected_total";

/// How long the caller of a flush or a shutdown waits beyond the export thread's own deadline
/// for its answer (the thread checks its deadline between requests, so it answers within
/// milliseconds of it unless a request is stuck).
const ANSWER_GRACE: Duration = Duration::from_millis(250);

/// Where and how to export. [`install`](OtlpExporter::install) starts it.
#[derive(Debug, Clone)]
pub struct OtlpExporter {
    /// Spans, metrics, logs: where each goes, `None` for a signal not exported.
    targets: [Option<OtlpTarget>; 3],
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
    /// assert_eq!(exporter.traces_url(), Some("http://127.0.0.1:4318/v1/traces"));
    /// assert!(OtlpExporter::new("127.0.0.1:4318").is_err());
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn new(endpoint: &str) -> Result<Self> {
        let base = client::base_url(SERVICE, endpoint)?;
        let transports = OtlpTransports {
            generic: crate::config::OtlpTransport { endpoint: Some(base), ..crate::config::OtlpTransport::default() },
            ..OtlpTransports::default()
        };
        Ok(Self::to(&transports))
    }

    /// An exporter to where `transports` (already checked) say, with the default settings.
    fn to(transports: &OtlpTransports) -> Self {
        OtlpExporter {
            targets: Signal::ALL.map(|signal| transports.target(signal)),
            settings: OtlpSettings::default(),
            service_version: None,
            metrics: true,
            logs: true,
        }
    }

    /// The exporter the `OTEL_EXPORTER_OTLP_*` variables ask for (each signal with an endpoint
    /// of its own or a generic one is exported), with the configuration's batching; `None` when
    /// no endpoint is set or `OTEL_SDK_DISABLED=true`.
    ///
    /// ```
    /// use flext_obs::export::otlp::OtlpExporter;
    /// use flext_obs::config::Signal;
    /// let config = flext_obs::Config::from_lookup(|var| {
    ///     (var == "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").then(|| "http://127.0.0.1:4318/custom/traces".to_owned())
    /// })?;
    /// let exporter = OtlpExporter::from_config(&config)?.unwrap();
    /// assert_eq!(exporter.url(Signal::Traces), Some("http://127.0.0.1:4318/custom/traces"));
    /// assert_eq!(exporter.url(Signal::Metrics), None);
    /// let off = flext_obs::Config::builder().otlp_endpoint("http://127.0.0.1:4318").sdk_disabled(true).build()?;
    /// assert!(OtlpExporter::from_config(&off)?.is_none());
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn from_config(config: &crate::Config) -> Result<Option<Self>> {
        if config.sdk_disabled() || !config.otlp_transports().any_endpoint() {
            return Ok(None);
        }
        config.otlp_transports().check()?;
        let mut exporter = Self::to(config.otlp_transports()).settings(config.otlp());
        exporter.service_version = config.version().map(str::to_owned);
        Ok(Some(exporter))
    }

    /// Where each signal goes and how (see [`OtlpTransports`]): a signal with no endpoint, its
    /// own or the generic one, is not exported.
    ///
    /// ```
    /// use flext_obs::config::{OtlpCompression, OtlpTransport, OtlpTransports, Signal};
    /// use flext_obs::export::otlp::OtlpExporter;
    /// let transports = OtlpTransports {
    ///     generic: OtlpTransport {
    ///         endpoint: Some("http://127.0.0.1:4318".into()),
    ///         headers: Some(vec![("x-api-key".into(), "secret".into())]),
    ///         compression: Some(OtlpCompression::Gzip),
    ///         ..OtlpTransport::default()
    ///     },
    ///     ..OtlpTransports::default()
    /// };
    /// let exporter = OtlpExporter::new("http://127.0.0.1:4318")?.transports(&transports)?;
    /// assert_eq!(exporter.url(Signal::Logs), Some("http://127.0.0.1:4318/v1/logs"));
    /// let bad = OtlpTransports { generic: OtlpTransport { endpoint: Some("http://127.0.0.1:4317".into()), ..OtlpTransport::default() }, ..transports };
    /// assert!(OtlpExporter::new("http://127.0.0.1:4318")?.transports(&bad).unwrap_err().to_string().contains("port 4317 is OTLP/gRPC"));
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn transports(mut self, transports: &OtlpTransports) -> Result<Self> {
        transports.check()?;
        self.targets = Signal::ALL.map(|signal| transports.target(signal));
        Ok(self)
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

    /// The URL spans are posted to, if they are exported.
    pub fn traces_url(&self) -> Option<&str> {
        self.url(Signal::Traces)
    }

    /// The URL `signal` is posted to, if it is exported.
    pub fn url(&self, signal: Signal) -> Option<&str> {
        let index = Signal::ALL.iter().position(|&s| s == signal).unwrap_or(0);
        self.targets[index].as_ref().map(|t| t.url.as_str())
    }

    /// Starts exporting what `obs` records, on a background thread. One exporter at a time:
    /// installing a second one while the first runs is an error, and so are settings that
    /// [`OtlpSettings::check`] refuses.
    ///
    /// ```
    /// use flext_obs::config::OtlpSettings;
    /// use flext_obs::export::otlp::OtlpExporter;
    /// let huge = OtlpSettings { max_queue_size: usize::MAX, ..OtlpSettings::default() };
    /// let exporter = OtlpExporter::new("http://127.0.0.1:4318")?.settings(huge);
    /// assert!(exporter.install(flext_obs::global().clone()).unwrap_err().to_string().contains("max_queue_size"));
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn install(self, obs: Observability) -> Result<OtlpHandle> {
        self.settings.check()?;
        let mut running = RUNNING.lock().unwrap_or_else(PoisonError::into_inner);
        if *running {
            return Err(Error::invalid("OtlpExporter", "install", "a second exporter", "an OTLP exporter is already running"));
        }
        let (control, commands) = mpsc::channel();
        let last_error = Arc::new(Mutex::new(None));
        let settings = self.settings;
        let (mut run, items) = Run::open(self, obs, Arc::clone(&last_error))?;
        let queue = Arc::clone(run.queue());
        let dropped_at_shutdown = run.shutdown_counters();
        let thread =
            std::thread::Builder::new().name("flext-otlp".to_owned()).spawn(move || run.serve(&items, &commands)).map_err(|e| {
                outbox::close();
                Error::invalid("OtlpExporter", "thread", e.to_string(), "the export thread could not be started")
            })?;
        *running = true;
        Ok(OtlpHandle { control, thread: Some(thread), last_error, settings, queue, dropped_at_shutdown })
    }
}

static RUNNING: Mutex<bool> = Mutex::new(false);

/// A running exporter. Dropping it stops the export after sending what is queued, within the
/// shutdown timeout.
#[derive(Debug)]
pub struct OtlpHandle {
    control: Sender<Command>,
    thread: Option<JoinHandle<()>>,
    last_error: Arc<Mutex<Option<Error>>>,
    settings: OtlpSettings,
    queue: Arc<outbox::Queue>,
    /// `flext_otlp_dropped_total{signal, reason="shutdown"}` for spans and logs.
    dropped_at_shutdown: [crate::store::Counter; 2],
}

impl OtlpHandle {
    /// Sends everything queued (spans, logs) and the current metrics now, and waits until the
    /// collector answered, at most `export_timeout`; the error is the first request that failed
    /// (what failed is dropped and counted).
    pub fn flush(&self) -> Result<()> {
        let deadline = Instant::now() + self.settings.export_timeout;
        let (reply, answer) = mpsc::sync_channel(1);
        self.control.send(Command::Flush(reply, deadline)).map_err(|_| stopped())?;
        answer.recv_timeout(self.settings.export_timeout + ANSWER_GRACE).map_err(|e| match e {
            mpsc::RecvTimeoutError::Timeout => deadline_passed("flush", self.settings.export_timeout),
            mpsc::RecvTimeoutError::Disconnected => stopped(),
        })?
    }

    /// Stops queueing, sends what is queued and the final metrics, and ends the thread, all
    /// within `shutdown_timeout`: what is not sent by then is dropped and counted, and the error
    /// says so.
    pub fn shutdown(mut self) -> Result<()> {
        self.stop()
    }

    /// The last error an export ended with (after its retries), if any.
    pub fn last_error(&self) -> Option<Error> {
        self.last_error.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Spans and log entries accepted and not yet sent or dropped (queued or in flight).
    ///
    /// ```no_run
    /// let handle = flext_obs::export::otlp::OtlpExporter::new("http://127.0.0.1:4318")?.install(flext_obs::global().clone())?;
    /// let (spans, logs) = handle.queued();
    /// assert!(spans <= 2048 && logs <= 2048);
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn queued(&self) -> (u64, u64) {
        let [spans, logs] = self.queue.held();
        // With the monitored calls' spans still waiting in their threads' rings.
        (spans + crate::trace::pending_export(), logs)
    }

    fn stop(&mut self) -> Result<()> {
        let Some(thread) = self.thread.take() else { return Ok(()) };
        outbox::close();
        let timeout = self.settings.shutdown_timeout;
        let deadline = Instant::now() + timeout;
        let (reply, answer) = mpsc::sync_channel(1);
        let result = match self.control.send(Command::Stop(reply, deadline)) {
            Ok(()) => answer.recv_timeout(timeout + ANSWER_GRACE).map_err(|_| deadline_passed("shutdown", timeout)),
            Err(_) => Err(stopped()),
        };
        // Whatever the thread did not settle by now is dropped, counted here; a thread still
        // stuck in a request finds the queue sealed and counts nothing more.
        let [spans, logs] = self.queue.seal();
        // With the spans still waiting in threads' rings (finished during the shutdown).
        let spans = spans + crate::trace::skip_pending_export();
        self.dropped_at_shutdown[0].increment_by(spans);
        self.dropped_at_shutdown[1].increment_by(logs);
        if result.is_ok() || thread.is_finished() {
            let _ = thread.join();
        }
        *RUNNING.lock().unwrap_or_else(PoisonError::into_inner) = false;
        result.and_then(|answer| answer)
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

fn deadline_passed(what: &str, timeout: Duration) -> Error {
    Error::Transport {
        service: SERVICE,
        message: format!("the {what} did not finish within {timeout:?}; what was not sent is dropped and counted"),
    }
}
