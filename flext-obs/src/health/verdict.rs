//! What a check says ([`Verdict`]), how it is run ([`CheckOptions`]) and what a run of every
//! check reports ([`HealthReport`], [`aggregate`]).

use crate::entity::{HealthCheck, HealthStatus};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Gauge holding each component's status: 0 healthy, 1 degraded, 2 unhealthy, 3 unknown.
pub const STATUS_GAUGE: &str = "flext_health_status";

/// The gauge value of a status (see [`STATUS_GAUGE`]).
pub const fn status_code(status: HealthStatus) -> f64 {
    match status {
        HealthStatus::Healthy => 0.0,
        HealthStatus::Degraded => 1.0,
        HealthStatus::Unhealthy => 2.0,
        HealthStatus::Unknown => 3.0,
    }
}

/// What a check says: a status, a message and details. Checks may also return
/// `Result<(), E: Display>` (ok: healthy; error: unhealthy with its message), a
/// [`HealthStatus`] or a `bool`.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub(super) status: HealthStatus,
    pub(super) message: String,
    pub(super) details: BTreeMap<String, serde_json::Value>,
}

impl Verdict {
    pub(super) fn with(status: HealthStatus, message: impl Into<String>) -> Self {
        Verdict { status, message: message.into(), details: BTreeMap::new() }
    }
    /// All good.
    pub fn healthy() -> Self {
        Self::with(HealthStatus::Healthy, "")
    }
    /// Working, but worse than it should.
    pub fn degraded(message: impl Into<String>) -> Self {
        Self::with(HealthStatus::Degraded, message)
    }
    /// Not working.
    pub fn unhealthy(message: impl Into<String>) -> Self {
        Self::with(HealthStatus::Unhealthy, message)
    }
    /// Could not tell.
    pub fn unknown(message: impl Into<String>) -> Self {
        Self::with(HealthStatus::Unknown, message)
    }
    /// Adds a reading behind the verdict.
    #[must_use]
    pub fn with_detail(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }
}

impl<E: fmt::Display> From<std::result::Result<(), E>> for Verdict {
    fn from(result: std::result::Result<(), E>) -> Self {
        match result {
            Ok(()) => Verdict::healthy(),
            Err(err) => Verdict::unhealthy(err.to_string()),
        }
    }
}

impl From<HealthStatus> for Verdict {
    fn from(status: HealthStatus) -> Self {
        Verdict::with(status, "")
    }
}

impl From<bool> for Verdict {
    fn from(ok: bool) -> Self {
        if ok { Verdict::healthy() } else { Verdict::unhealthy("the check returned false") }
    }
}

/// How a user check runs.
#[derive(Debug, Clone, Copy, PartialEq)]
#[must_use]
pub struct CheckOptions {
    pub(super) timeout: Duration,
    pub(super) critical: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl CheckOptions {
    /// Timeout 5 s, not critical.
    pub const fn new() -> Self {
        CheckOptions { timeout: Duration::from_secs(5), critical: false }
    }
    /// A check still running after `timeout` is reported unhealthy (its run goes on, on the
    /// registry's pool, and is not started again until it ends). At most [`MAX_CHECK_TIMEOUT`](super::MAX_CHECK_TIMEOUT):
    /// registration refuses more.
    ///
    /// ```
    /// use flext_obs::health::{CheckOptions, HealthRegistry};
    /// use std::time::Duration;
    /// let health = HealthRegistry::builder().build()?;
    /// let refused = health.register("db", CheckOptions::new().timeout(Duration::MAX), || true).unwrap_err();
    /// assert!(refused.to_string().contains("at most 300s"), "{refused}");
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// An unhealthy critical component makes the whole report unhealthy.
    pub const fn critical(mut self) -> Self {
        self.critical = true;
        self
    }
}

/// The result of one run of every check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthReport {
    /// The aggregated status.
    pub status: HealthStatus,
    /// When the run started.
    pub checked_at: chrono::DateTime<chrono::Utc>,
    /// How long the run took, in seconds.
    pub duration_seconds: f64,
    /// One result per component, in registration order (system components first).
    pub components: Vec<HealthCheck>,
}

impl HealthReport {
    /// The HTTP status to serve it with: 503 when unhealthy, else 200.
    pub fn http_status(&self) -> u16 {
        if self.status == HealthStatus::Unhealthy { 503 } else { 200 }
    }
}

/// Aggregates component statuses (with whether each is critical): none -> unknown; all healthy
/// -> healthy; a critical component unhealthy -> unhealthy; half or more unhealthy -> unhealthy;
/// otherwise (something degraded or unknown, or fewer than half unhealthy) -> degraded.
///
/// ```
/// use flext_obs::health::aggregate;
/// use flext_obs::HealthStatus::{Degraded, Healthy, Unhealthy, Unknown};
/// assert_eq!(aggregate([]), Unknown);
/// assert_eq!(aggregate([(Healthy, false), (Healthy, true)]), Healthy);
/// assert_eq!(aggregate([(Healthy, false), (Healthy, false), (Unhealthy, false)]), Degraded);
/// assert_eq!(aggregate([(Healthy, false), (Unhealthy, false)]), Unhealthy);
/// assert_eq!(aggregate([(Healthy, false), (Healthy, false), (Unhealthy, true)]), Unhealthy);
/// ```
pub fn aggregate(components: impl IntoIterator<Item = (HealthStatus, bool)>) -> HealthStatus {
    let (mut total, mut unhealthy, mut all_healthy) = (0usize, 0usize, true);
    for (status, critical) in components {
        total += 1;
        if status == HealthStatus::Unhealthy {
            if critical {
                return HealthStatus::Unhealthy;
            }
            unhealthy += 1;
        }
        all_healthy &= status == HealthStatus::Healthy;
    }
    if total == 0 {
        HealthStatus::Unknown
    } else if all_healthy {
        HealthStatus::Healthy
    } else if unhealthy * 2 >= total {
        HealthStatus::Unhealthy
    } else {
        HealthStatus::Degraded
    }
}

impl Verdict {
    pub(super) fn into_entry(self, component: &str, now: chrono::DateTime<chrono::Utc>) -> HealthCheck {
        entity(component, self, now, Duration::ZERO)
    }
}

/// The entity of one result; a component name the entity refuses cannot come from a
/// registered check (registration validated it), so the fallback only guards system names.
pub(super) fn entity(component: &str, verdict: Verdict, now: chrono::DateTime<chrono::Utc>, took: Duration) -> HealthCheck {
    let mut builder = HealthCheck::builder(component, verdict.status).message(verdict.message).checked_at(now).duration(took);
    for (key, value) in verdict.details {
        builder = builder.detail(key, value);
    }
    builder.build().unwrap_or_else(|err| {
        HealthCheck::builder("health", HealthStatus::Unknown)
            .message(err.to_string())
            .build()
            .unwrap_or_else(|_| unreachable!("a fixed, valid component name"))
    })
}
