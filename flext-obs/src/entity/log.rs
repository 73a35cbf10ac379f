//! [`LogEntry`]: one structured log line.

use super::validate;
use crate::entity::{CorrelationId, LogLevel, SpanId, TraceId};
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A structured log line with the IDs that tie it to a request and a trace.
///
/// ```
/// use flext_obs::{LogEntry, LogLevel};
/// let entry = LogEntry::builder("order stored", LogLevel::Info).field("order_id", 42).build()?;
/// assert_eq!(entry.fields()["order_id"], 42);
/// assert!(LogEntry::builder("", LogLevel::Info).build().is_err());
/// # Ok::<(), flext_obs::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "LogEntryFields")]
pub struct LogEntry(LogEntryFields);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct LogEntryFields {
    id: uuid::Uuid,
    message: String,
    level: LogLevel,
    #[serde(default)]
    fields: BTreeMap<String, serde_json::Value>,
    correlation_id: Option<CorrelationId>,
    trace_id: Option<TraceId>,
    span_id: Option<SpanId>,
    timestamp: DateTime<Utc>,
    created_at: DateTime<Utc>,
}

impl TryFrom<LogEntryFields> for LogEntry {
    type Error = Error;
    fn try_from(f: LogEntryFields) -> Result<Self> {
        validate::text("LogEntry", "message", &f.message)?;
        for key in f.fields.keys() {
            validate::text("LogEntry", "field name", key)?;
        }
        Ok(LogEntry(f))
    }
}

impl LogEntry {
    /// Starts a log entry, stamped now.
    pub fn builder(message: impl Into<String>, level: LogLevel) -> LogEntryBuilder {
        let now = Utc::now();
        LogEntryBuilder(LogEntryFields {
            id: uuid::Uuid::new_v4(),
            message: message.into(),
            level,
            fields: BTreeMap::new(),
            correlation_id: None,
            trace_id: None,
            span_id: None,
            timestamp: now,
            created_at: now,
        })
    }

    /// Unique ID of this record.
    pub fn id(&self) -> uuid::Uuid {
        self.0.id
    }
    /// What happened.
    pub fn message(&self) -> &str {
        &self.0.message
    }
    /// How important it is.
    pub fn level(&self) -> LogLevel {
        self.0.level
    }
    /// Structured fields.
    pub fn fields(&self) -> &BTreeMap<String, serde_json::Value> {
        &self.0.fields
    }
    /// The request it belongs to.
    pub fn correlation_id(&self) -> Option<CorrelationId> {
        self.0.correlation_id
    }
    /// The trace it belongs to.
    pub fn trace_id(&self) -> Option<TraceId> {
        self.0.trace_id
    }
    /// The span it was written in.
    pub fn span_id(&self) -> Option<SpanId> {
        self.0.span_id
    }
    /// When it happened.
    pub fn timestamp(&self) -> DateTime<Utc> {
        self.0.timestamp
    }
    /// When this record was created.
    pub fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// Builder for [`LogEntry`]; nothing is checked until [`build`](LogEntryBuilder::build).
#[derive(Debug, Clone)]
#[must_use]
pub struct LogEntryBuilder(LogEntryFields);

impl LogEntryBuilder {
    /// Adds a structured field (any JSON value).
    pub fn field(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.0.fields.insert(key.into(), value.into());
        self
    }
    /// Ties the entry to a request.
    pub fn correlation_id(mut self, id: CorrelationId) -> Self {
        self.0.correlation_id = Some(id);
        self
    }
    /// Ties the entry to a trace and span.
    pub fn trace(mut self, trace_id: TraceId, span_id: SpanId) -> Self {
        self.0.trace_id = Some(trace_id);
        self.0.span_id = Some(span_id);
        self
    }
    /// Sets when it happened (default: when the builder was made).
    pub fn timestamp(mut self, at: DateTime<Utc>) -> Self {
        self.0.timestamp = at;
        self
    }
    /// Checks every field and returns the entry, or the first rule broken.
    pub fn build(self) -> Result<LogEntry> {
        LogEntry::try_from(self.0)
    }
}
