//! Pushing to a Prometheus Pushgateway, for batch jobs that end before a scrape would come.
//!
//! `PUT` (the default) replaces the whole group `job` (+ grouping labels) with what is pushed;
//! `POST` replaces only the metrics with the same names. [`Pusher::start`] pushes on an interval
//! and once more when stopped, so the last values of a job always arrive.
//!
//! Every push has a deadline ([`Pusher::timeout`], 5 s, connection included) and stopping the
//! background pusher has one as a whole ([`Pusher::stop_timeout`], 5 s, its final push
//! included), so a gateway that accepts and never answers holds nothing longer than that. Every
//! failed push is counted in `flext_push_failures_total{reason}` of the instance pushed, with
//! `reason` = `connect` (unreachable), `timeout` (no answer in time) or `status` (an error
//! status), so the next push that gets through carries the count.
//!
//! ```no_run
//! use flext_obs::export::push::Pusher;
//! let pusher = Pusher::new("http://127.0.0.1:9091", "nightly_import")?.grouping("instance", "db-1")?;
//! flext_obs::global().store().counter("rows_imported_total", &[])?.increment_by(1200);
//! pusher.push(flext_obs::global())?; // errors carry the gateway's message
//! # Ok::<(), flext_obs::Error>(())
//! ```

use super::client;
use crate::api::Observability;
use crate::entity::validate;
use crate::error::{Error, Result};
use crate::export::prometheus::{Format, render_export};
use client::Failure;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// Self-metric: pushes that failed, by `reason` (`connect`, `timeout`, `status`).
pub const FAILURES_METRIC: &str = "flext_push_failures_total";

/// How a push replaces what the group held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PushMethod {
    /// Replace every metric of the group.
    #[default]
    Put,
    /// Replace only metrics with the same names.
    Post,
}

/// Pushes the store's exposition to a Pushgateway group.
#[derive(Debug, Clone)]
pub struct Pusher {
    url: String,
    agent: ureq::Agent,
    auth: crate::config::HttpAuth,
    method: PushMethod,
    timeout: Duration,
    stop_timeout: Duration,
}

const SERVICE: &str = "Pushgateway";

impl Pusher {
    /// A pusher for group `job` on the gateway at `gateway` (`http://host:port`).
    pub fn new(gateway: &str, job: &str) -> Result<Self> {
        let base = client::base_url(SERVICE, gateway)?;
        validate::text("Pusher", "job", job)?;
        let defaults = crate::config::ExportTimeouts::default();
        Ok(Pusher {
            url: format!("{base}/metrics{}", segment("job", job)),
            agent: client::agent(),
            auth: crate::config::HttpAuth::None,
            method: PushMethod::Put,
            timeout: defaults.request,
            stop_timeout: defaults.push_stop,
        })
    }

    /// The pusher `PROMETHEUS_PUSH_GATEWAY` asks for, with the configured service name as job,
    /// the configured timeouts (`FLEXT_EXPORT_REQUEST_TIMEOUT_MS`,
    /// `FLEXT_PUSH_STOP_TIMEOUT_MS`) and access (`FLEXT_PUSH_GATEWAY_*`: TLS files, user and
    /// password or bearer token).
    pub fn from_config(config: &crate::Config) -> Result<Option<Self>> {
        let timeouts = config.export_timeouts();
        config
            .push_gateway()
            .map(|url| {
                Pusher::new(url, config.service_name())?
                    .timeout(timeouts.request)?
                    .stop_timeout(timeouts.push_stop)?
                    .access(config.push_access())
            })
            .transpose()
    }

    /// TLS files (for an `https://` gateway, cargo feature `tls`) and the authentication sent
    /// with every request. The files are read now: a missing or malformed one is an error.
    ///
    /// ```
    /// use flext_obs::config::{HttpAuth, PeerAccess};
    /// use flext_obs::export::push::Pusher;
    /// let access = PeerAccess { auth: HttpAuth::basic("ci", "secret")?, ..PeerAccess::default() };
    /// let pusher = Pusher::new("http://127.0.0.1:9091", "job")?.access(&access)?;
    /// let missing = PeerAccess { tls: flext_obs::config::TlsFiles { ca_certificate: Some("/nonexistent.pem".into()), ..Default::default() }, ..access };
    /// # #[cfg(feature = "tls")]
    /// assert!(pusher.access(&missing).is_err());
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn access(mut self, access: &crate::config::PeerAccess) -> Result<Self> {
        self.agent = client::agent_for(SERVICE, &access.tls)?;
        self.auth = access.auth.clone();
        Ok(self)
    }

    /// The longest one push may take, connection included (default 5 s; at most
    /// [`crate::config::MAX_WAIT`]).
    ///
    /// ```
    /// use flext_obs::export::push::Pusher;
    /// use std::time::Duration;
    /// let pusher = Pusher::new("http://127.0.0.1:9091", "job")?.timeout(Duration::from_secs(2))?;
    /// assert!(pusher.clone().timeout(Duration::MAX).is_err());
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Result<Self> {
        crate::config::check_wait("Pusher", "timeout", timeout)?;
        self.timeout = timeout;
        Ok(self)
    }

    /// The longest stopping the background pusher may take, its final push included (default
    /// 5 s; at most [`crate::config::MAX_WAIT`]).
    ///
    /// ```
    /// use flext_obs::export::push::Pusher;
    /// use std::time::Duration;
    /// let pusher = Pusher::new("http://127.0.0.1:9091", "job")?.stop_timeout(Duration::from_secs(1))?;
    /// assert!(pusher.stop_timeout(Duration::ZERO).is_err());
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn stop_timeout(mut self, timeout: Duration) -> Result<Self> {
        crate::config::check_wait("Pusher", "stop_timeout", timeout)?;
        self.stop_timeout = timeout;
        Ok(self)
    }

    /// Adds a grouping label (a Prometheus label name; any value, `/` included).
    pub fn grouping(mut self, name: &str, value: &str) -> Result<Self> {
        validate::label_name("Pusher", name)?;
        if name == "job" {
            return Err(Error::invalid("Pusher", "label name", name, "is the job itself; give it to Pusher::new"));
        }
        self.url.push_str(&segment(name, value));
        Ok(self)
    }

    /// Chooses PUT (default) or POST.
    #[must_use]
    pub fn method(mut self, method: PushMethod) -> Self {
        self.method = method;
        self
    }

    /// The group's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Pushes everything `obs` holds now, within the pusher's [`timeout`](Pusher::timeout); a
    /// failure is counted in `obs`'s `flext_push_failures_total{reason}`.
    pub fn push(&self, obs: &Observability) -> Result<()> {
        self.push_within(obs, self.timeout)
    }

    fn push_within(&self, obs: &Observability, timeout: Duration) -> Result<()> {
        let body = render_export(&obs.store().export_snapshot(), &[], Format::Text);
        let request = match self.method {
            PushMethod::Put => self.agent.put(&self.url),
            PushMethod::Post => self.agent.post(&self.url),
        };
        let request = client::with_auth(request.header("Content-Type", Format::Text.content_type()), &self.auth);
        let request = client::with_timeout(request, timeout);
        client::classify(SERVICE, request.send(body)).map_err(|(err, failure)| {
            count_failure(obs, failure);
            err
        })
    }

    /// Deletes the group from the gateway (within the pusher's timeout).
    pub fn delete(&self) -> Result<()> {
        let request = client::with_auth(self.agent.delete(&self.url), &self.auth);
        client::check(SERVICE, client::with_timeout(request, self.timeout).call())
    }

    /// Pushes `obs` every `interval` (greater than zero, at most [`crate::config::MAX_WAIT`]) on
    /// a background thread, and once more when the handle is stopped or dropped. Failed pushes
    /// are counted, reported on standard error and retried next time.
    pub fn start(self, obs: Observability, interval: Duration) -> Result<PushHandle> {
        crate::config::check_wait("Pusher", "interval", interval)?;
        obs.store().describe(FAILURES_METRIC, crate::MetricKind::Counter, "Pushgateway pushes that failed, by reason.")?;
        for failure in Failure::ALL {
            obs.store().counter(FAILURES_METRIC, &[("reason", failure.label())])?;
        }
        let stop_timeout = self.stop_timeout;
        let deadline = Arc::new(OnceLock::<Instant>::new());
        let final_push = Arc::new(Mutex::new(None));
        let (stop_at, outcome) = (Arc::clone(&deadline), Arc::clone(&final_push));
        let worker = crate::worker::Worker::spawn("flext-obs-push", move |stopped| {
            loop {
                if let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    if let Err(err) = self.push(&obs) {
                        eprintln!("flext-obs: push to {} failed: {err}", self.url);
                    }
                    continue;
                }
                // Stopping: one more push, in the time the stop has left.
                let left = stop_at.get().map_or(self.timeout, |at| at.saturating_duration_since(Instant::now())).min(self.timeout);
                let result = if left.is_zero() {
                    count_failure(&obs, Failure::Timeout);
                    Err(Error::Transport { service: SERVICE, message: "no time left for the final push before the stop's deadline".into() })
                } else {
                    self.push_within(&obs, left)
                };
                if let Err(err) = &result {
                    eprintln!("flext-obs: final push to {} failed: {err}", self.url);
                }
                *outcome.lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
                return;
            }
        })?;
        Ok(PushHandle { worker, stop_timeout, deadline, final_push })
    }
}

/// Counts a failed push in `obs`'s `flext_push_failures_total{reason}`.
fn count_failure(obs: &Observability, failure: Failure) {
    if let Ok(counter) = obs.store().counter(FAILURES_METRIC, &[("reason", failure.label())]) {
        counter.increment();
    }
}

/// `/name/value`, or `/name@base64/...` when the value has a `/` or is empty.
fn segment(name: &str, value: &str) -> String {
    if value.is_empty() || value.contains('/') {
        format!("/{name}@base64/{}", base64_url(value.as_bytes()))
    } else {
        format!("/{name}/{}", percent(value))
    }
}

fn percent(value: &str) -> String {
    value
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// RFC 4648 base64url with padding (the Pushgateway accepts both; `=` alone means empty).
fn base64_url(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "=".to_owned();
    }
    crate::config::base64_with(bytes, crate::config::BASE64_URL_SAFE)
}

/// Stops the background pusher (after a final push) when stopped or dropped, within the
/// pusher's [`stop_timeout`](Pusher::stop_timeout).
#[derive(Debug)]
pub struct PushHandle {
    worker: crate::worker::Worker,
    stop_timeout: Duration,
    /// When the stop must be over; set once, read by the thread for its final push.
    deadline: Arc<OnceLock<Instant>>,
    /// The final push's result, once made.
    final_push: Arc<Mutex<Option<Result<()>>>>,
}

impl PushHandle {
    /// Pushes once more and stops, within the stop timeout: the final push's result, or an error
    /// when the thread was still busy at the deadline (a push to a gateway that does not answer;
    /// the thread then ends on its own within the push timeout, and the failure is counted).
    pub fn stop(mut self) -> Result<()> {
        self.stop_bounded()
    }

    fn stop_bounded(&mut self) -> Result<()> {
        let _ = self.deadline.set(Instant::now() + self.stop_timeout);
        if !self.worker.stop_within(self.stop_timeout) {
            return Err(Error::Transport {
                service: SERVICE,
                message: format!("the pusher did not stop within {:?}; its last push is abandoned", self.stop_timeout),
            });
        }
        self.final_push.lock().unwrap_or_else(PoisonError::into_inner).take().unwrap_or(Ok(()))
    }
}

impl Drop for PushHandle {
    fn drop(&mut self) {
        let _ = self.stop_bounded();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping_values_with_slashes_use_base64() {
        assert_eq!(segment("path", "a/b"), "/path@base64/YS9i");
        assert_eq!(segment("path", ""), "/path@base64/=");
        assert_eq!(segment("instance", "db 1"), "/instance/db%201");
        assert_eq!(base64_url(b"ab"), "YWI=");
        assert_eq!(base64_url(b"\xfb\xff"), "-_8=");
    }
}
