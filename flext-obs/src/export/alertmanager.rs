//! Forwarding alerts to Prometheus Alertmanager (`POST /api/v2/alerts`).
//!
//! Every alert kept by [`crate::alert`] (raised through the API or by a monitored function
//! failing) is queued (bounded: [`QUEUE_CAPACITY`]), sent in batches of up to 100 by a
//! background thread, retried with exponential backoff on network errors and 5xx answers, and
//! posted again with `endsAt` when it is resolved. Alertmanager de-duplicates by label set; the
//! trace and correlation IDs travel as annotations so they do not split groups.
//!
//! **Deadlines and counts.** One batch, its retries included, takes at most the request timeout
//! ([`AlertmanagerSink::timeout`], 5 s; the connection at most 3 s of it), and dropping the
//! [`Installed`] guard takes at most the stop timeout ([`AlertmanagerSink::stop_timeout`], 5 s)
//! however many alerts are queued and whatever the peer does. Every alert handed to the sink is,
//! at every moment, queued (in flight included), counted in `flext_alertmanager_sent_total`, or
//! counted in `flext_alertmanager_dropped_total{reason}` with `reason` = `queue_full`,
//! `send_failed` (its batch failed after its retries) or `shutdown` (not sent by the stop's
//! deadline). Failed batches are counted in
//! `flext_alertmanager_send_failures_total{reason="connect|timeout|status"}`.
//!
//! ```no_run
//! let sink = flext_obs::export::alertmanager::AlertmanagerSink::new("http://127.0.0.1:9093")?;
//! let _installed = sink.install()?; // every alert from now on goes to Alertmanager
//! # Ok::<(), flext_obs::Error>(())
//! ```

use super::client::{self, Failure};
use crate::alert::AlertSink;
use crate::entity::{Alert, AlertStatus};
use crate::error::{Error, Result};
use crate::store::Counter;
use serde_json::{Map, Value, json};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const SERVICE: &str = "Alertmanager";
/// Alerts waiting to be sent at most (the batch in flight included); beyond, new ones are
/// dropped and counted. The queue grows as alerts arrive: nothing is allocated up front.
pub const QUEUE_CAPACITY: usize = 10_000;
/// Alerts per request at most.
const BATCH: usize = 100;
/// Name of the self-metric counting alerts not delivered, by `reason`.
pub const DROPPED_METRIC: &str = "flext_alertmanager_dropped_total";
/// Name of the self-metric counting alerts Alertmanager accepted.
pub const SENT_METRIC: &str = "flext_alertmanager_sent_total";
/// Name of the self-metric counting batches that failed after their retries, by `reason`.
pub const FAILURES_METRIC: &str = "flext_alertmanager_send_failures_total";

/// The `reason` of a drop: index into [`Counters::dropped`] and [`AlertmanagerSink::dropped`].
const QUEUE_FULL: usize = 0;
const SEND_FAILED: usize = 1;
const SHUTDOWN: usize = 2;
const DROP_REASONS: [&str; 3] = ["queue_full", "send_failed", "shutdown"];

/// What the sender thread and the notifying threads share, under one lock so that a stop that
/// gives up counts exactly what the thread had not settled.
#[derive(Debug, Default)]
struct Queue {
    waiting: VecDeque<Value>,
    /// Alerts taken by the thread and not yet settled (its batch in flight).
    in_flight: usize,
    /// When the stop must be over, once stopping.
    stop_by: Option<Instant>,
    /// Set by a stop that gave up: nothing more is queued, sent or counted.
    sealed: bool,
}

/// How a batch ended.
enum Sent {
    Delivered,
    /// Its last attempt failed (counted, kept as the last error).
    Failed,
    /// Not attempted: the stop's deadline had passed.
    NoTime,
}

/// The store handles of the self-metrics (of the process-wide instance).
#[derive(Debug)]
struct Counters {
    sent: Counter,
    dropped: [Counter; 3],
    failures: [Counter; 3],
}

impl Counters {
    fn new() -> Result<Self> {
        let store = crate::global().store();
        store.describe(DROPPED_METRIC, crate::MetricKind::Counter, "Alerts not delivered to Alertmanager, by reason.")?;
        store.describe(SENT_METRIC, crate::MetricKind::Counter, "Alerts Alertmanager accepted.")?;
        store.describe(FAILURES_METRIC, crate::MetricKind::Counter, "Alertmanager requests that failed after their retries.")?;
        let dropped = |i: usize| store.counter(DROPPED_METRIC, &[("reason", DROP_REASONS[i])]);
        let failed = |f: Failure| store.counter(FAILURES_METRIC, &[("reason", f.label())]);
        Ok(Counters {
            sent: store.counter(SENT_METRIC, &[])?,
            dropped: [dropped(0)?, dropped(1)?, dropped(2)?],
            failures: [failed(Failure::ALL[0])?, failed(Failure::ALL[1])?, failed(Failure::ALL[2])?],
        })
    }
}

/// The Alertmanager sink.
#[derive(Debug)]
pub struct AlertmanagerSink {
    url: String,
    agent: ureq::Agent,
    auth: crate::config::HttpAuth,
    queue: Mutex<Queue>,
    wake: Condvar,
    timeout: Duration,
    stop_timeout: Duration,
    /// Alerts dropped so far, by reason (also in the store once installed).
    dropped: [AtomicU64; 3],
    sent: AtomicU64,
    counters: OnceLock<Counters>,
    last_error: Mutex<Option<Error>>,
}

impl AlertmanagerSink {
    /// A sink for the Alertmanager at `url` (`http://host:port`), with the default timeouts.
    pub fn new(url: &str) -> Result<Arc<Self>> {
        Self::with_timeouts(url, crate::config::ExportTimeouts::default())
    }

    /// A sink for the Alertmanager at `url` whose batches take at most `timeouts.request` and
    /// whose stop takes at most `timeouts.alertmanager_stop`.
    ///
    /// ```
    /// use flext_obs::config::ExportTimeouts;
    /// use flext_obs::export::alertmanager::AlertmanagerSink;
    /// use std::time::Duration;
    /// let quick = ExportTimeouts { request: Duration::from_secs(1), alertmanager_stop: Duration::from_secs(2), ..ExportTimeouts::default() };
    /// let sink = AlertmanagerSink::with_timeouts("http://127.0.0.1:9093", quick)?;
    /// assert_eq!((sink.timeout(), sink.stop_timeout()), (Duration::from_secs(1), Duration::from_secs(2)));
    /// let forever = ExportTimeouts { alertmanager_stop: Duration::MAX, ..quick };
    /// assert!(AlertmanagerSink::with_timeouts("http://127.0.0.1:9093", forever).is_err());
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn with_timeouts(url: &str, timeouts: crate::config::ExportTimeouts) -> Result<Arc<Self>> {
        Self::with_access(url, timeouts, &crate::config::PeerAccess::default())
    }

    /// Like [`with_timeouts`](AlertmanagerSink::with_timeouts), with TLS files (for an
    /// `https://` Alertmanager, cargo feature `tls`) and the authentication sent with every
    /// request. The files are read now: a missing or malformed one is an error.
    ///
    /// ```
    /// use flext_obs::config::{ExportTimeouts, HttpAuth, PeerAccess};
    /// use flext_obs::export::alertmanager::AlertmanagerSink;
    /// let access = PeerAccess { auth: HttpAuth::bearer("t0ken")?, ..PeerAccess::default() };
    /// let sink = AlertmanagerSink::with_access("http://127.0.0.1:9093", ExportTimeouts::default(), &access)?;
    /// assert_eq!(sink.stop_timeout(), ExportTimeouts::default().alertmanager_stop);
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn with_access(url: &str, timeouts: crate::config::ExportTimeouts, access: &crate::config::PeerAccess) -> Result<Arc<Self>> {
        timeouts.check()?;
        Ok(Arc::new(AlertmanagerSink {
            url: format!("{}/api/v2/alerts", client::base_url(SERVICE, url)?),
            agent: client::agent_for(SERVICE, &access.tls)?,
            auth: access.auth.clone(),
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            timeout: timeouts.request,
            stop_timeout: timeouts.alertmanager_stop,
            dropped: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
            sent: AtomicU64::new(0),
            counters: OnceLock::new(),
            last_error: Mutex::new(None),
        }))
    }

    /// The sink `FLEXT_ALERTMANAGER_URL` asks for, with the configured timeouts
    /// (`FLEXT_EXPORT_REQUEST_TIMEOUT_MS`, `FLEXT_ALERTMANAGER_STOP_TIMEOUT_MS`) and access
    /// (`FLEXT_ALERTMANAGER_*`: TLS files, user and password or bearer token).
    pub fn from_config(config: &crate::Config) -> Result<Option<Arc<Self>>> {
        config.alertmanager_url().map(|url| Self::with_access(url, config.export_timeouts(), config.alertmanager_access())).transpose()
    }

    /// The longest one batch may take, its retries included.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The longest dropping the [`Installed`] guard may take.
    pub fn stop_timeout(&self) -> Duration {
        self.stop_timeout
    }

    /// The Alertmanager body for `alerts`.
    pub fn payload(alerts: &[Alert]) -> Value {
        Value::Array(alerts.iter().map(to_json).collect())
    }

    /// Posts `alerts` now, in one request (within the request timeout); an error status comes
    /// back with Alertmanager's message.
    pub fn post(&self, alerts: &[Alert]) -> Result<()> {
        self.post_json(&Self::payload(alerts), self.timeout).map_err(|(err, _)| err)
    }

    fn post_json(&self, body: &Value, timeout: Duration) -> std::result::Result<(), (Error, Failure)> {
        let request = client::with_auth(self.agent.post(&self.url).header("Content-Type", "application/json"), &self.auth);
        client::classify(SERVICE, client::with_timeout(request, timeout).send(body.to_string()))
    }

    /// Alerts dropped so far, whatever the reason (queue full, send failed, shutdown).
    pub fn dropped(&self) -> u64 {
        self.dropped.iter().map(|d| d.load(Ordering::Relaxed)).sum()
    }

    /// Alerts Alertmanager accepted so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Alerts queued or in flight now.
    pub fn queued(&self) -> usize {
        let queue = self.lock();
        if queue.sealed { 0 } else { queue.waiting.len() + queue.in_flight }
    }

    /// The last error a batch ended with (after its retries), if any.
    pub fn last_error(&self) -> Option<Error> {
        self.last_error.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn count_dropped(&self, reason: usize, n: usize) {
        if n == 0 {
            return;
        }
        self.dropped[reason].fetch_add(n as u64, Ordering::Relaxed);
        if let Some(counters) = self.counters.get() {
            counters.dropped[reason].increment_by(n as u64);
        }
    }

    /// Starts the sender thread and registers the sink with [`crate::alert`]; both stop when the
    /// returned guard is dropped (after sending what is queued, within the stop timeout).
    pub fn install(self: &Arc<Self>) -> Result<Installed> {
        let counters = Counters::new()?;
        let _ = self.counters.set(counters);
        let sink = self.clone();
        let (done_tx, done) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("flext-obs-alertmanager".into())
            .spawn(move || {
                sink.run();
                drop(done_tx);
            })
            .map_err(|e| Error::invalid("AlertmanagerSink", "thread", e.to_string(), "the thread could not be started"))?;
        let id = crate::alert::add_sink(self.clone());
        Ok(Installed { sink: self.clone(), id, done, thread: Some(thread) })
    }

    fn run(&self) {
        loop {
            let (batch, deadline) = {
                let mut queue = self.lock();
                if queue.waiting.is_empty() && queue.stop_by.is_none() {
                    queue = self.wake.wait_timeout(queue, Duration::from_millis(200)).unwrap_or_else(PoisonError::into_inner).0;
                }
                if queue.sealed {
                    return;
                }
                let now = Instant::now();
                if queue.stop_by.is_some_and(|by| now >= by || queue.waiting.is_empty()) {
                    // Stopping, and nothing more can or need be sent.
                    let left = queue.waiting.len();
                    queue.waiting.clear();
                    drop(queue);
                    self.count_dropped(SHUTDOWN, left);
                    return;
                }
                let n = queue.waiting.len().min(BATCH);
                let batch: Vec<Value> = queue.waiting.drain(..n).collect();
                queue.in_flight = n;
                let deadline = queue.stop_by.map_or(now + self.timeout, |by| by.min(now + self.timeout));
                (batch, deadline)
            };
            if !batch.is_empty() {
                let n = batch.len();
                let delivered = self.send_with_retries(&Value::Array(batch), deadline);
                let mut queue = self.lock();
                if queue.sealed {
                    return; // the stop gave up and counted this batch
                }
                queue.in_flight = 0;
                drop(queue);
                match delivered {
                    Sent::Delivered => {
                        self.sent.fetch_add(n as u64, Ordering::Relaxed);
                        if let Some(counters) = self.counters.get() {
                            counters.sent.increment_by(n as u64);
                        }
                    }
                    Sent::Failed => self.count_dropped(SEND_FAILED, n),
                    Sent::NoTime => self.count_dropped(SHUTDOWN, n),
                }
            }
        }
    }

    /// Sends one batch by `deadline`: up to 5 attempts, backing off 100 ms, 200 ms, ... on
    /// network errors and 5xx, each attempt within the time left; a 4xx is final (the payload
    /// would not get better).
    fn send_with_retries(&self, batch: &Value, deadline: Instant) -> Sent {
        let mut backoff = Duration::from_millis(100);
        let mut last = None;
        for attempt in 1..=5 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || (last.is_some() && left < Duration::from_millis(20)) {
                break; // no time, or too little for a retry to get an answer
            }
            match self.post_json(batch, left) {
                Ok(()) => return Sent::Delivered,
                Err((err, failure)) => {
                    let retry = matches!(err, Error::Transport { .. } | Error::Remote { status: 500..=599, .. });
                    last = Some((err, failure));
                    if !retry {
                        break;
                    }
                }
            }
            if attempt < 5 {
                std::thread::sleep(backoff.min(deadline.saturating_duration_since(Instant::now())));
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
        // No attempt at all: the stop's deadline had passed; the batch counts as a shutdown drop.
        let Some((err, failure)) = last else { return Sent::NoTime };
        eprintln!("flext-obs: alerts not delivered to Alertmanager: {err}");
        if let Some(counters) = self.counters.get() {
            counters.failures[Failure::ALL.iter().position(|f| *f == failure).unwrap_or(0)].increment();
        }
        *self.last_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(err);
        Sent::Failed
    }
}

impl AlertSink for AlertmanagerSink {
    fn notify(&self, alert: &Alert) {
        let body = to_json(alert);
        let mut queue = self.lock();
        let refused = if queue.sealed || queue.stop_by.is_some() {
            Some(SHUTDOWN)
        } else {
            (queue.waiting.len() + queue.in_flight >= QUEUE_CAPACITY).then_some(QUEUE_FULL)
        };
        if let Some(reason) = refused {
            drop(queue);
            self.count_dropped(reason, 1);
            return;
        }
        queue.waiting.push_back(body);
        drop(queue);
        self.wake.notify_one();
    }
}

/// Labels `alertname`, `severity`, `service`, `function` plus the alert's own labels (its
/// `trace_id` moves to the annotations); annotations `summary`, `description`,
/// `correlation_id`, `trace_id`, `count`; `endsAt` once resolved.
fn to_json(alert: &Alert) -> Value {
    let mut labels = Map::new();
    let mut annotations = Map::new();
    for (k, v) in alert.labels() {
        if k == "trace_id" {
            annotations.insert("trace_id".into(), Value::String(v.clone()));
        } else {
            labels.insert(k.clone(), Value::String(v.clone()));
        }
    }
    labels.insert("alertname".into(), Value::String(alert.title().to_owned()));
    labels.insert("severity".into(), Value::String(alert.severity().to_string()));
    let service = alert.labels().get("service_name").cloned().unwrap_or_else(|| crate::global().config().service_name().to_owned());
    labels.insert("service".into(), Value::String(service));
    if let Some(function) = alert.source_function() {
        labels.insert("function".into(), Value::String(function.to_owned()));
    }
    annotations.insert("summary".into(), Value::String(alert.title().to_owned()));
    annotations.insert("description".into(), Value::String(alert.message().to_owned()));
    annotations.insert("count".into(), Value::String(alert.count().to_string()));
    if let Some(id) = alert.correlation_id() {
        annotations.insert("correlation_id".into(), Value::String(id.to_string()));
    }
    let mut body = json!({ "labels": labels, "annotations": annotations, "startsAt": alert.created_at().to_rfc3339() });
    if alert.status() == AlertStatus::Resolved {
        body["endsAt"] = Value::String(chrono::Utc::now().to_rfc3339());
    }
    body
}

/// Keeps the sink installed; dropping it sends what is queued, within the sink's stop timeout,
/// and unregisters the sink. What is not sent by then is dropped and counted.
#[derive(Debug)]
pub struct Installed {
    sink: Arc<AlertmanagerSink>,
    id: u64,
    /// Disconnected once the sender thread has returned.
    done: std::sync::mpsc::Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

impl Installed {
    /// The installed sink.
    pub fn sink(&self) -> &Arc<AlertmanagerSink> {
        &self.sink
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        crate::alert::remove_sink(self.id);
        let timeout = self.sink.stop_timeout;
        self.sink.lock().stop_by = Some(Instant::now() + timeout);
        self.sink.wake.notify_all();
        // The thread bounds its own requests by the deadline; the grace covers its last steps.
        let finished = matches!(self.done.recv_timeout(timeout + Duration::from_millis(250)), Err(RecvTimeoutError::Disconnected));
        if finished {
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
            return;
        }
        // Still busy (a request that outlived its timeout): count what it holds and leave it.
        let mut queue = self.sink.lock();
        let left = queue.waiting.len() + queue.in_flight;
        queue.waiting.clear();
        queue.in_flight = 0;
        queue.sealed = true;
        drop(queue);
        self.sink.count_dropped(SHUTDOWN, left);
    }
}
