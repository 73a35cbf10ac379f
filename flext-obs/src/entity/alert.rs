//! [`Alert`]: a condition someone should look at.

use super::validate;
use crate::entity::{AlertStatus, CorrelationId, Severity};
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A raised condition: what happened, how bad, where, and how many times (`count` grows when the
/// same alert is raised again instead of storing a copy).
///
/// ```
/// use flext_obs::{Alert, AlertStatus, Severity};
/// let mut alert = Alert::builder("payment failed", "card declined")
///     .severity(Severity::Critical)
///     .source_function("checkout::pay")
///     .label("team", "payments")
///     .build()?;
/// alert.set_status(AlertStatus::Resolved);
/// assert_eq!(alert.status(), AlertStatus::Resolved);
/// assert!(Alert::builder("", "m").build().is_err());
/// # Ok::<(), flext_obs::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "AlertFields")]
pub struct Alert(AlertFields);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct AlertFields {
    id: uuid::Uuid,
    title: String,
    message: String,
    severity: Severity,
    status: AlertStatus,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    source_function: Option<String>,
    correlation_id: Option<CorrelationId>,
    timestamp: DateTime<Utc>,
    count: u64,
    created_at: DateTime<Utc>,
}

impl TryFrom<AlertFields> for Alert {
    type Error = Error;
    fn try_from(f: AlertFields) -> Result<Self> {
        validate::text("Alert", "title", &f.title)?;
        validate::text("Alert", "message", &f.message)?;
        validate::labels("Alert", f.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
        if let Some(function) = &f.source_function {
            validate::text("Alert", "source_function", function)?;
        }
        if f.count == 0 {
            return Err(Error::invalid("Alert", "count", 0, "must be at least 1"));
        }
        Ok(Alert(f))
    }
}

impl Alert {
    /// Starts an alert: severity high, status active, count 1, now.
    pub fn builder(title: impl Into<String>, message: impl Into<String>) -> AlertBuilder {
        let now = Utc::now();
        AlertBuilder(AlertFields {
            id: uuid::Uuid::new_v4(),
            title: title.into(),
            message: message.into(),
            severity: Severity::High,
            status: AlertStatus::Active,
            labels: BTreeMap::new(),
            source_function: None,
            correlation_id: None,
            timestamp: now,
            count: 1,
            created_at: now,
        })
    }

    /// Moves the alert to `status` (acknowledge, resolve, suppress).
    pub fn set_status(&mut self, status: AlertStatus) {
        self.0.status = status;
    }

    /// Records that the same alert was raised `times` more times, at `at`.
    pub fn repeat(&mut self, times: u64, at: DateTime<Utc>) {
        self.0.count = self.0.count.saturating_add(times);
        self.0.timestamp = at;
    }

    /// Unique ID of this record.
    pub fn id(&self) -> uuid::Uuid {
        self.0.id
    }
    /// Short summary.
    pub fn title(&self) -> &str {
        &self.0.title
    }
    /// Details.
    pub fn message(&self) -> &str {
        &self.0.message
    }
    /// How urgent.
    pub fn severity(&self) -> Severity {
        self.0.severity
    }
    /// Where it stands.
    pub fn status(&self) -> AlertStatus {
        self.0.status
    }
    /// Labels (Prometheus label rules, so Alertmanager takes them as they are).
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.0.labels
    }
    /// The function that raised it, when known.
    pub fn source_function(&self) -> Option<&str> {
        self.0.source_function.as_deref()
    }
    /// The request it belongs to.
    pub fn correlation_id(&self) -> Option<CorrelationId> {
        self.0.correlation_id
    }
    /// When it was last raised.
    pub fn timestamp(&self) -> DateTime<Utc> {
        self.0.timestamp
    }
    /// How many times it was raised (at least 1).
    pub fn count(&self) -> u64 {
        self.0.count
    }
    /// When this record was created.
    pub fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// Builder for [`Alert`]; nothing is checked until [`build`](AlertBuilder::build).
#[derive(Debug, Clone)]
#[must_use]
pub struct AlertBuilder(AlertFields);

impl AlertBuilder {
    /// Sets the severity (default high).
    pub fn severity(mut self, severity: Severity) -> Self {
        self.0.severity = severity;
        self
    }
    /// Sets the status (default active).
    pub fn status(mut self, status: AlertStatus) -> Self {
        self.0.status = status;
        self
    }
    /// Adds a label (Prometheus label rules).
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.labels.insert(name.into(), value.into());
        self
    }
    /// Names the function that raised it.
    pub fn source_function(mut self, function: impl Into<String>) -> Self {
        self.0.source_function = Some(function.into());
        self
    }
    /// Ties the alert to a request.
    pub fn correlation_id(mut self, id: CorrelationId) -> Self {
        self.0.correlation_id = Some(id);
        self
    }
    /// Sets when it was raised (default: when the builder was made).
    pub fn timestamp(mut self, at: DateTime<Utc>) -> Self {
        self.0.timestamp = at;
        self
    }
    /// Sets how many times it was raised (at least 1; default 1).
    pub fn count(mut self, count: u64) -> Self {
        self.0.count = count;
        self
    }
    /// Checks every field and returns the alert, or the first rule broken.
    pub fn build(self) -> Result<Alert> {
        Alert::try_from(self.0)
    }
}
