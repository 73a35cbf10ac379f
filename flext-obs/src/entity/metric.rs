//! [`Metric`]: one measured value with its name, kind, unit and labels.

use super::validate;
use crate::entity::MetricKind;
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One measurement: `name{labels} = value`, of a [`MetricKind`], in a unit, at a time.
///
/// Built with [`Metric::builder`] (or [`Metric::new`]); both refuse invalid names, labels and
/// values, and so does deserialization.
///
/// ```
/// use flext_obs::{Metric, MetricKind};
/// let m = Metric::builder("http_requests_total", 3.0)
///     .kind(MetricKind::Counter)
///     .label("method", "GET")
///     .build()?;
/// assert_eq!(m.labels()["method"], "GET");
///
/// let err = Metric::builder("http_requests_total", -1.0).kind(MetricKind::Counter).build().unwrap_err();
/// assert!(err.to_string().contains("a counter value must not be negative"));
/// # Ok::<(), flext_obs::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "MetricFields")]
pub struct Metric(MetricFields);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct MetricFields {
    id: uuid::Uuid,
    name: String,
    value: f64,
    #[serde(default)]
    unit: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    kind: MetricKind,
    timestamp: DateTime<Utc>,
    created_at: DateTime<Utc>,
}

impl TryFrom<MetricFields> for Metric {
    type Error = Error;
    fn try_from(f: MetricFields) -> Result<Self> {
        validate::metric_name("Metric", "name", &f.name)?;
        validate::finite("Metric", "value", f.value)?;
        if f.kind == MetricKind::Counter && f.value < 0.0 {
            return Err(Error::invalid("Metric", "value", f.value, "a counter value must not be negative"));
        }
        if f.unit.len() > 64 || !f.unit.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(Error::invalid("Metric", "unit", &f.unit, "must be at most 64 characters of [a-zA-Z0-9_]"));
        }
        validate::labels("Metric", f.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
        Ok(Metric(f))
    }
}

impl Metric {
    /// A metric of `kind` with no unit and no labels, stamped now.
    ///
    /// ```
    /// let m = flext_obs::Metric::new("queue_depth", 7.0, flext_obs::MetricKind::Gauge)?;
    /// assert_eq!(m.value(), 7.0);
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn new(name: impl Into<String>, value: f64, kind: MetricKind) -> Result<Self> {
        Self::builder(name, value).kind(kind).build()
    }

    /// Starts a metric (a gauge unless [`MetricBuilder::kind`] says otherwise).
    pub fn builder(name: impl Into<String>, value: f64) -> MetricBuilder {
        let now = Utc::now();
        MetricBuilder(MetricFields {
            id: uuid::Uuid::new_v4(),
            name: name.into(),
            value,
            unit: String::new(),
            labels: BTreeMap::new(),
            kind: MetricKind::Gauge,
            timestamp: now,
            created_at: now,
        })
    }

    /// Unique ID of this record.
    pub fn id(&self) -> uuid::Uuid {
        self.0.id
    }
    /// Prometheus-style metric name.
    pub fn name(&self) -> &str {
        &self.0.name
    }
    /// The measured value (finite; not negative for counters).
    pub fn value(&self) -> f64 {
        self.0.value
    }
    /// Unit (`seconds`, `bytes`, ...), empty when none was given.
    pub fn unit(&self) -> &str {
        &self.0.unit
    }
    /// Labels (Prometheus label names, any UTF-8 values), sorted by name.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.0.labels
    }
    /// What the value measures.
    pub fn kind(&self) -> MetricKind {
        self.0.kind
    }
    /// When the value was measured.
    pub fn timestamp(&self) -> DateTime<Utc> {
        self.0.timestamp
    }
    /// When this record was created.
    pub fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// Builder for [`Metric`]; nothing is checked until [`build`](MetricBuilder::build).
#[derive(Debug, Clone)]
#[must_use]
pub struct MetricBuilder(MetricFields);

impl MetricBuilder {
    /// Sets the kind (default gauge).
    pub fn kind(mut self, kind: MetricKind) -> Self {
        self.0.kind = kind;
        self
    }
    /// Sets the unit (`[a-zA-Z0-9_]`, at most 64 characters).
    pub fn unit(mut self, unit: impl Into<String>) -> Self {
        self.0.unit = unit.into();
        self
    }
    /// Adds a label; a second label with the same name replaces the first.
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.labels.insert(name.into(), value.into());
        self
    }
    /// Adds several labels.
    pub fn labels<K: Into<String>, V: Into<String>>(mut self, labels: impl IntoIterator<Item = (K, V)>) -> Self {
        self.0.labels.extend(labels.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }
    /// Sets when the value was measured (default: when the builder was made).
    pub fn timestamp(mut self, at: DateTime<Utc>) -> Self {
        self.0.timestamp = at;
        self
    }
    /// Checks every field and returns the metric, or the first rule broken.
    pub fn build(self) -> Result<Metric> {
        Metric::try_from(self.0)
    }
}
