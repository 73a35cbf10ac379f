//! Forwarding alerts to Prometheus Alertmanager (`POST /api/v2/alerts`).
//!
//! Every alert kept by [`crate::alert`] (raised through the API or by a monitored function
//! failing) is queued (bounded: drops are counted in `flext_alertmanager_dropped_total`), sent in
//! batches by a background thread, retried with exponential backoff on network errors and 5xx
//! answers, and posted again with `endsAt` when it is resolved. Alertmanager de-duplicates by
//! label set; the trace and correlation IDs travel as annotations so they do not split groups.
//!
//! ```no_run
//! let sink = flext_obs::export::alertmanager::AlertmanagerSink::new("http://127.0.0.1:9093")?;
//! let _installed = sink.install()?; // every alert from now on goes to Alertmanager
//! # Ok::<(), flext_obs::Error>(())
//! ```

use super::client;
use crate::alert::AlertSink;
use crate::entity::{Alert, AlertStatus};
use crate::error::{Error, Result};
use serde_json::{Map, Value, json};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

const SERVICE: &str = "Alertmanager";
/// Alerts waiting to be sent at most; beyond, new ones are dropped and counted.
pub const QUEUE_CAPACITY: usize = 10_000;
/// Name of the self-metric counting alerts dropped because the queue was full.
pub const DROPPED_METRIC: &str = "flext_alertmanager_dropped_total";

/// The Alertmanager sink.
#[derive(Debug)]
pub struct AlertmanagerSink {
    url: String,
    queue: Mutex<VecDeque<Value>>,
    wake: Condvar,
    dropped: AtomicU64,
    last_error: Mutex<Option<Error>>,
}

impl AlertmanagerSink {
    /// A sink for the Alertmanager at `url` (`http://host:port`).
    pub fn new(url: &str) -> Result<Arc<Self>> {
        Ok(Arc::new(AlertmanagerSink {
            url: format!("{}/api/v2/alerts", client::base_url(SERVICE, url)?),
            queue: Mutex::new(VecDeque::new()),
            wake: Condvar::new(),
            dropped: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }))
    }

    /// The sink `FLEXT_ALERTMANAGER_URL` asks for.
    pub fn from_config(config: &crate::Config) -> Result<Option<Arc<Self>>> {
        config.alertmanager_url().map(Self::new).transpose()
    }

    /// The Alertmanager body for `alerts`.
    pub fn payload(alerts: &[Alert]) -> Value {
        Value::Array(alerts.iter().map(to_json).collect())
    }

    /// Posts `alerts` now, in one request; an error status comes back with Alertmanager's
    /// message.
    pub fn post(&self, alerts: &[Alert]) -> Result<()> {
        self.post_json(&Self::payload(alerts))
    }

    fn post_json(&self, body: &Value) -> Result<()> {
        client::check(SERVICE, client::agent().post(&self.url).header("Content-Type", "application/json").send(body.to_string()))
    }

    /// Alerts dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The last error a batch ended with (after its retries), if any.
    pub fn last_error(&self) -> Option<Error> {
        self.last_error.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Starts the sender thread and registers the sink with [`crate::alert`]; both stop when the
    /// returned guard is dropped (after sending what is queued).
    pub fn install(self: &Arc<Self>) -> Result<Installed> {
        let sink = self.clone();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("flext-obs-alertmanager".into())
            .spawn(move || sink.run(&stop_rx))
            .map_err(|e| Error::invalid("AlertmanagerSink", "thread", e.to_string(), "the thread could not be started"))?;
        let id = crate::alert::add_sink(self.clone());
        Ok(Installed { sink: self.clone(), id, stop: Some(stop_tx), thread: Some(thread) })
    }

    fn run(&self, stop: &std::sync::mpsc::Receiver<()>) {
        loop {
            let stopping = !matches!(stop.try_recv(), Err(std::sync::mpsc::TryRecvError::Empty));
            let batch: Vec<Value> = {
                let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                if queue.is_empty() && !stopping {
                    queue = self.wake.wait_timeout(queue, Duration::from_millis(200)).unwrap_or_else(PoisonError::into_inner).0;
                }
                let n = queue.len().min(100);
                queue.drain(..n).collect()
            };
            if !batch.is_empty() {
                self.send_with_retries(&Value::Array(batch));
            }
            if stopping && self.queue.lock().unwrap_or_else(PoisonError::into_inner).is_empty() {
                return;
            }
        }
    }

    /// Sends one batch: up to 5 attempts, backing off 100 ms, 200 ms, ... on network errors
    /// and 5xx; a 4xx is final (the payload would not get better).
    fn send_with_retries(&self, batch: &Value) {
        let mut backoff = Duration::from_millis(100);
        for attempt in 1..=5 {
            match self.post_json(batch) {
                Ok(()) => return,
                Err(err) => {
                    let retry = matches!(err, Error::Transport { .. } | Error::Remote { status: 500..=599, .. });
                    if !retry || attempt == 5 {
                        eprintln!("flext-obs: alerts not delivered to Alertmanager: {err}");
                        *self.last_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(err);
                        return;
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}

impl AlertSink for AlertmanagerSink {
    fn notify(&self, alert: &Alert) {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if queue.len() >= QUEUE_CAPACITY {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            if let Ok(counter) = crate::global().store().counter(DROPPED_METRIC, &[]) {
                counter.increment();
            }
            return;
        }
        queue.push_back(to_json(alert));
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

/// Keeps the sink installed; dropping it flushes the queue and unregisters the sink.
#[derive(Debug)]
pub struct Installed {
    sink: Arc<AlertmanagerSink>,
    id: u64,
    stop: Option<std::sync::mpsc::Sender<()>>,
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
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.sink.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
