//! The exporters' settings: OTLP batching and deadlines, the Pushgateway's and Alertmanager's
//! timeouts, each with an upper bound so that no value can make an exporter allocate without
//! limit or overflow a deadline.

use crate::error::{Error, Result};
use std::time::Duration;

/// How OTLP export batches and how long it may wait (the OpenTelemetry `OTEL_BSP_*` defaults,
/// plus a deadline for the shutdown as a whole).
///
/// Every field has an upper bound ([`MAX_QUEUE_SIZE`], [`MAX_WAIT`]) so that no setting can make
/// the exporter allocate without limit or overflow a deadline; [`check`](OtlpSettings::check)
/// (run by [`ConfigBuilder::build`](crate::config::ConfigBuilder::build) and by the exporter's
/// `install`) refuses the rest.
///
/// ```
/// use flext_obs::config::OtlpSettings;
/// use std::time::Duration;
/// let settings = OtlpSettings { schedule_delay: Duration::from_millis(500), ..OtlpSettings::default() };
/// let config = flext_obs::Config::builder().otlp(settings).build()?;
/// assert_eq!(config.otlp().max_queue_size, 2048);
/// assert_eq!(config.otlp().shutdown_timeout, Duration::from_secs(5));
/// assert!(flext_obs::Config::builder().otlp(OtlpSettings { max_queue_size: 0, ..settings }).build().is_err());
/// assert!(OtlpSettings { schedule_delay: Duration::MAX, ..settings }.check().is_err());
/// assert!(OtlpSettings { max_queue_size: usize::MAX, ..settings }.check().is_err());
/// # Ok::<(), flext_obs::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtlpSettings {
    /// Spans and log lines held for export, the batch in flight included; beyond it new ones are
    /// dropped and counted (default 2,048; at most [`MAX_QUEUE_SIZE`]).
    pub max_queue_size: usize,
    /// Spans per request (default 512; at most `max_queue_size`).
    pub max_export_batch_size: usize,
    /// Longest wait before queued spans are sent (default 5 s).
    pub schedule_delay: Duration,
    /// Metrics export interval (default 60 s).
    pub metric_interval: Duration,
    /// Longest one export may take, its retries included, and the longest a
    /// [`flush`](crate::export::otlp::OtlpHandle::flush) waits (`OTEL_BSP_EXPORT_TIMEOUT`,
    /// default 30 s as in OpenTelemetry).
    pub export_timeout: Duration,
    /// Longest one metrics export may take, its retries included (`OTEL_METRIC_EXPORT_TIMEOUT`,
    /// default 30 s as in OpenTelemetry).
    pub metric_export_timeout: Duration,
    /// Longest the shutdown (or dropping the handle) waits as a whole, however many exports are
    /// left: what is not sent by then is dropped and counted (default 5 s; OpenTelemetry leaves
    /// it to the SDK, and a service being stopped should not wait 30 s for a dead collector).
    pub shutdown_timeout: Duration,
}

impl Default for OtlpSettings {
    fn default() -> Self {
        OtlpSettings {
            max_queue_size: 2048,
            max_export_batch_size: 512,
            schedule_delay: Duration::from_secs(5),
            metric_interval: Duration::from_secs(60),
            export_timeout: Duration::from_secs(30),
            metric_export_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(5),
        }
    }
}

/// Most items the OTLP queue may hold (`OTEL_BSP_MAX_QUEUE_SIZE`): beyond a million spans the
/// queue would cost hundreds of megabytes, which no collector outage is worth.
pub const MAX_QUEUE_SIZE: usize = 1_000_000;

/// Longest interval or timeout any exporter setting accepts (1 hour): longer ones are refused,
/// so that no deadline computed from them can overflow.
pub const MAX_WAIT: Duration = Duration::from_secs(3600);

/// Checks that `value` is greater than zero and at most [`MAX_WAIT`].
pub(crate) fn check_wait(entity: &'static str, field: &'static str, value: Duration) -> Result<()> {
    if value.is_zero() || value > MAX_WAIT {
        return Err(Error::invalid(entity, field, format!("{value:?}"), "must be greater than zero and at most 1 hour"));
    }
    Ok(())
}

impl OtlpSettings {
    /// Checks every bound: queue size from 1 to [`MAX_QUEUE_SIZE`], batch size from 1 to the
    /// queue size, every interval and timeout greater than zero and at most [`MAX_WAIT`].
    pub fn check(&self) -> Result<()> {
        if self.max_queue_size == 0 || self.max_queue_size > MAX_QUEUE_SIZE {
            return Err(Error::invalid("OtlpSettings", "max_queue_size", self.max_queue_size, "must be from 1 to 1000000"));
        }
        if self.max_export_batch_size == 0 || self.max_export_batch_size > self.max_queue_size {
            return Err(Error::invalid(
                "OtlpSettings",
                "max_export_batch_size",
                self.max_export_batch_size,
                format!("must be from 1 to max_queue_size ({})", self.max_queue_size),
            ));
        }
        check_wait("OtlpSettings", "schedule_delay", self.schedule_delay)?;
        check_wait("OtlpSettings", "metric_interval", self.metric_interval)?;
        check_wait("OtlpSettings", "export_timeout", self.export_timeout)?;
        check_wait("OtlpSettings", "metric_export_timeout", self.metric_export_timeout)?;
        check_wait("OtlpSettings", "shutdown_timeout", self.shutdown_timeout)
    }
}

/// How long the Pushgateway pusher and the Alertmanager sink may wait on their peer.
///
/// ```
/// use flext_obs::config::ExportTimeouts;
/// use std::time::Duration;
/// let timeouts = ExportTimeouts { request: Duration::from_secs(2), ..ExportTimeouts::default() };
/// let config = flext_obs::Config::builder().export_timeouts(timeouts).build()?;
/// assert_eq!(config.export_timeouts().push_stop, Duration::from_secs(5));
/// assert!(flext_obs::Config::builder().export_timeouts(ExportTimeouts { request: Duration::MAX, ..timeouts }).build().is_err());
/// # Ok::<(), flext_obs::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportTimeouts {
    /// Longest one push, or one batch of alerts with its retries, may take, connection included
    /// (default 5 s; the connection itself gets at most 3 s of it).
    pub request: Duration,
    /// Longest stopping the pusher may take, its final push included (default 5 s).
    pub push_stop: Duration,
    /// Longest dropping the Alertmanager sink may take; what is still queued then is dropped and
    /// counted (default 5 s).
    pub alertmanager_stop: Duration,
}

impl Default for ExportTimeouts {
    fn default() -> Self {
        ExportTimeouts { request: Duration::from_secs(5), push_stop: Duration::from_secs(5), alertmanager_stop: Duration::from_secs(5) }
    }
}

impl ExportTimeouts {
    /// Checks that every timeout is greater than zero and at most [`MAX_WAIT`].
    pub fn check(&self) -> Result<()> {
        check_wait("ExportTimeouts", "request", self.request)?;
        check_wait("ExportTimeouts", "push_stop", self.push_stop)?;
        check_wait("ExportTimeouts", "alertmanager_stop", self.alertmanager_stop)
    }
}
