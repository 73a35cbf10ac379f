//! Pushing to a Prometheus Pushgateway, for batch jobs that end before a scrape would come.
//!
//! `PUT` (the default) replaces the whole group `job` (+ grouping labels) with what is pushed;
//! `POST` replaces only the metrics with the same names. [`Pusher::start`] pushes on an interval
//! and once more when stopped, so the last values of a job always arrive.
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
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

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
    method: PushMethod,
}

const SERVICE: &str = "Pushgateway";

impl Pusher {
    /// A pusher for group `job` on the gateway at `gateway` (`http://host:port`).
    pub fn new(gateway: &str, job: &str) -> Result<Self> {
        let base = client::base_url(SERVICE, gateway)?;
        validate::text("Pusher", "job", job)?;
        Ok(Pusher { url: format!("{base}/metrics{}", segment("job", job)), method: PushMethod::Put })
    }

    /// The pusher `PROMETHEUS_PUSH_GATEWAY` asks for, with the configured service name as job.
    pub fn from_config(config: &crate::Config) -> Result<Option<Self>> {
        config.push_gateway().map(|url| Pusher::new(url, config.service_name())).transpose()
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

    /// Pushes everything `obs` holds now.
    pub fn push(&self, obs: &Observability) -> Result<()> {
        let body = render_export(&obs.store().export_snapshot(), &[], Format::Text);
        let agent = client::agent();
        let request = match self.method {
            PushMethod::Put => agent.put(&self.url),
            PushMethod::Post => agent.post(&self.url),
        };
        client::check(SERVICE, request.header("Content-Type", Format::Text.content_type()).send(body))
    }

    /// Deletes the group from the gateway.
    pub fn delete(&self) -> Result<()> {
        client::check(SERVICE, client::agent().delete(&self.url).call())
    }

    /// Pushes `obs` every `interval` on a background thread, and once more when the handle is
    /// stopped or dropped. Failed pushes are reported on standard error and retried next time.
    pub fn start(self, obs: Observability, interval: Duration) -> Result<PushHandle> {
        if interval.is_zero() {
            return Err(Error::invalid("Pusher", "interval", interval, "must be greater than zero"));
        }
        let worker = crate::worker::Worker::spawn("flext-obs-push", move |stopped| {
            loop {
                let last = !matches!(stopped.recv_timeout(interval), Err(RecvTimeoutError::Timeout));
                if let Err(err) = self.push(&obs) {
                    eprintln!("flext-obs: push to {} failed: {err}", self.url);
                }
                if last {
                    return;
                }
            }
        })?;
        Ok(PushHandle { worker })
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
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    if bytes.is_empty() {
        return "=".to_owned();
    }
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Stops the background pusher (after a final push) when stopped or dropped.
#[derive(Debug)]
pub struct PushHandle {
    worker: crate::worker::Worker,
}

impl PushHandle {
    /// Pushes once more and stops.
    pub fn stop(mut self) {
        self.worker.stop();
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
