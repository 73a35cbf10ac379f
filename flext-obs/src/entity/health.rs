//! [`HealthCheck`]: the verdict on one component.

use super::{duration_seconds, validate};
use crate::entity::HealthStatus;
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The result of checking one component: status, a message, details, when and how long.
///
/// ```
/// use flext_obs::{HealthCheck, HealthStatus};
/// let check = HealthCheck::builder("database", HealthStatus::Degraded)
///     .message("replica lag 4 s")
///     .detail("lag_seconds", 4)
///     .build()?;
/// assert_eq!(check.details()["lag_seconds"], 4);
/// assert!(HealthCheck::builder(" ", HealthStatus::Healthy).build().is_err());
/// # Ok::<(), flext_obs::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "HealthCheckFields")]
pub struct HealthCheck(HealthCheckFields);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct HealthCheckFields {
    id: uuid::Uuid,
    component: String,
    status: HealthStatus,
    #[serde(default)]
    message: String,
    #[serde(default)]
    details: BTreeMap<String, serde_json::Value>,
    checked_at: DateTime<Utc>,
    #[serde(with = "duration_seconds", default)]
    duration: Option<Duration>,
    created_at: DateTime<Utc>,
}

impl TryFrom<HealthCheckFields> for HealthCheck {
    type Error = Error;
    fn try_from(f: HealthCheckFields) -> Result<Self> {
        validate::text("HealthCheck", "component", &f.component)?;
        if f.message.len() > validate::MAX_TEXT_LEN {
            return Err(Error::invalid(
                "HealthCheck",
                "message",
                format!("<{} bytes>", f.message.len()),
                format!("must be at most {} bytes", validate::MAX_TEXT_LEN),
            ));
        }
        Ok(HealthCheck(f))
    }
}

impl HealthCheck {
    /// Starts a check result for `component`, checked now.
    pub fn builder(component: impl Into<String>, status: HealthStatus) -> HealthCheckBuilder {
        let now = Utc::now();
        HealthCheckBuilder(HealthCheckFields {
            id: uuid::Uuid::new_v4(),
            component: component.into(),
            status,
            message: String::new(),
            details: BTreeMap::new(),
            checked_at: now,
            duration: None,
            created_at: now,
        })
    }

    /// Unique ID of this record.
    pub fn id(&self) -> uuid::Uuid {
        self.0.id
    }
    /// What was checked.
    pub fn component(&self) -> &str {
        &self.0.component
    }
    /// The verdict.
    pub fn status(&self) -> HealthStatus {
        self.0.status
    }
    /// Why, in words (may be empty).
    pub fn message(&self) -> &str {
        &self.0.message
    }
    /// Readings behind the verdict.
    pub fn details(&self) -> &BTreeMap<String, serde_json::Value> {
        &self.0.details
    }
    /// When it was checked.
    pub fn checked_at(&self) -> DateTime<Utc> {
        self.0.checked_at
    }
    /// How long the check took, when measured.
    pub fn duration(&self) -> Option<Duration> {
        self.0.duration
    }
    /// When this record was created.
    pub fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// Builder for [`HealthCheck`]; nothing is checked until [`build`](HealthCheckBuilder::build).
#[derive(Debug, Clone)]
#[must_use]
pub struct HealthCheckBuilder(HealthCheckFields);

impl HealthCheckBuilder {
    /// Sets the message.
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.0.message = message.into();
        self
    }
    /// Adds a detail (any JSON value).
    pub fn detail(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.0.details.insert(key.into(), value.into());
        self
    }
    /// Sets when it was checked (default: when the builder was made).
    pub fn checked_at(mut self, at: DateTime<Utc>) -> Self {
        self.0.checked_at = at;
        self
    }
    /// Sets how long the check took.
    pub fn duration(mut self, duration: Duration) -> Self {
        self.0.duration = Some(duration);
        self
    }
    /// Checks every field and returns the result, or the first rule broken.
    pub fn build(self) -> Result<HealthCheck> {
        HealthCheck::try_from(self.0)
    }
}
