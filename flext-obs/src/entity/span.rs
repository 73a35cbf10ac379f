//! [`Span`]: one timed operation inside a trace.

use super::{duration_seconds, validate};
use crate::entity::{CorrelationId, SpanId, SpanKind, SpanStatus, TraceId};
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// One operation in a trace: which trace, which parent, how long it took and how it ended.
///
/// ```
/// use flext_obs::{Span, SpanStatus};
/// let root = Span::builder("handle_order", "shop").build()?;
/// let mut child = Span::builder("charge_card", "shop")
///     .child_of(&root)
///     .attribute("card.kind", "visa")
///     .build()?;
/// child.finish(SpanStatus::Completed);
/// assert_eq!(child.trace_id(), root.trace_id());
/// assert_eq!(child.parent_span_id(), Some(root.span_id()));
/// assert!(child.duration().is_some());
/// # Ok::<(), flext_obs::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "SpanFields")]
pub struct Span(SpanFields);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SpanFields {
    id: uuid::Uuid,
    trace_id: TraceId,
    span_id: SpanId,
    parent_span_id: Option<SpanId>,
    name: String,
    service: String,
    start: DateTime<Utc>,
    #[serde(with = "duration_seconds", default)]
    duration: Option<Duration>,
    status: SpanStatus,
    #[serde(default)]
    kind: SpanKind,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    /// The W3C `tracestate` the span was made under, as its header value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trace_state: Option<String>,
    correlation_id: Option<CorrelationId>,
    created_at: DateTime<Utc>,
}

impl TryFrom<SpanFields> for Span {
    type Error = Error;
    fn try_from(f: SpanFields) -> Result<Self> {
        validate::text("Span", "name", &f.name)?;
        validate::text("Span", "service", &f.service)?;
        if f.parent_span_id == Some(f.span_id) {
            return Err(Error::invalid("Span", "parent_span_id", f.span_id.to_string(), "a span cannot be its own parent"));
        }
        for (key, value) in &f.attributes {
            validate::text("Span", "attribute key", key)?;
            validate::label_value("Span", key, value)?;
        }
        Ok(Span(f))
    }
}

impl Span {
    /// Starts a span named `name` in `service`: a new trace unless [`SpanBuilder::trace_id`]
    /// or [`SpanBuilder::child_of`] says otherwise; status pending; started now.
    pub fn builder(name: impl Into<String>, service: impl Into<String>) -> SpanBuilder {
        let now = Utc::now();
        SpanBuilder(SpanFields {
            id: uuid::Uuid::new_v4(),
            trace_id: TraceId::random(),
            span_id: SpanId::random(),
            parent_span_id: None,
            name: name.into(),
            service: service.into(),
            start: now,
            duration: None,
            status: SpanStatus::Pending,
            kind: SpanKind::Internal,
            attributes: BTreeMap::new(),
            trace_state: None,
            correlation_id: None,
            created_at: now,
        })
    }

    /// Ends the span now: sets its status and its duration since [`start`](Span::start).
    pub fn finish(&mut self, status: SpanStatus) {
        self.0.status = status;
        self.0.duration = Some((Utc::now() - self.0.start).to_std().unwrap_or_default());
    }

    /// Sets the kind of a built span (a monitored call found to serve a remote caller).
    pub(crate) fn set_kind(&mut self, kind: SpanKind) {
        self.0.kind = kind;
    }

    /// Sets the `tracestate` of a built span (already checked as a [`crate::context::TraceState`]).
    pub(crate) fn set_trace_state(&mut self, header: &str) {
        self.0.trace_state = Some(header.to_owned());
    }

    /// The W3C `tracestate` the span was made under (its header value), exported as OTLP's
    /// `trace_state`.
    ///
    /// ```
    /// let state: flext_obs::context::TraceState = "rojo=00f067aa0ba902b7".parse()?;
    /// let span = flext_obs::Span::builder("load", "svc").trace_state(&state).build()?;
    /// assert_eq!(span.trace_state(), Some("rojo=00f067aa0ba902b7"));
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn trace_state(&self) -> Option<&str> {
        self.0.trace_state.as_deref()
    }

    /// Adds or replaces an attribute on a built span, with the same checks as the builder.
    ///
    /// ```
    /// let mut span = flext_obs::Span::builder("load", "svc").build()?;
    /// span.set_attribute("rows", "12")?;
    /// assert!(span.set_attribute("", "x").is_err());
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn set_attribute(&mut self, key: impl Into<String>, value: impl Into<String>) -> Result<()> {
        let (key, value) = (key.into(), value.into());
        validate::text("Span", "attribute key", &key)?;
        validate::label_value("Span", &key, &value)?;
        self.0.attributes.insert(key, value);
        Ok(())
    }

    /// Unique ID of this record.
    pub fn id(&self) -> uuid::Uuid {
        self.0.id
    }
    /// The trace this span belongs to.
    pub fn trace_id(&self) -> TraceId {
        self.0.trace_id
    }
    /// This span's own ID.
    pub fn span_id(&self) -> SpanId {
        self.0.span_id
    }
    /// The enclosing span, `None` for a trace's root.
    pub fn parent_span_id(&self) -> Option<SpanId> {
        self.0.parent_span_id
    }
    /// The operation's name.
    pub fn name(&self) -> &str {
        &self.0.name
    }
    /// The service that ran it.
    pub fn service(&self) -> &str {
        &self.0.service
    }
    /// When it started.
    pub fn start(&self) -> DateTime<Utc> {
        self.0.start
    }
    /// How long it took; `None` until finished.
    pub fn duration(&self) -> Option<Duration> {
        self.0.duration
    }
    /// How it ended (pending while running).
    pub fn status(&self) -> SpanStatus {
        self.0.status
    }
    /// Free-form attributes, sorted by key.
    pub fn attributes(&self) -> &BTreeMap<String, String> {
        &self.0.attributes
    }
    /// The request this span was part of.
    pub fn correlation_id(&self) -> Option<CorrelationId> {
        self.0.correlation_id
    }
    /// When this record was created.
    pub fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Its role in the trace (internal unless it is a request's server or client side).
    ///
    /// ```
    /// let span = flext_obs::Span::builder("GET /orders/{id}", "shop").kind(flext_obs::SpanKind::Server).build()?;
    /// assert_eq!(span.kind(), flext_obs::SpanKind::Server);
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn kind(&self) -> SpanKind {
        self.0.kind
    }
}

/// Builder for [`Span`]; nothing is checked until [`build`](SpanBuilder::build).
#[derive(Debug, Clone)]
#[must_use]
pub struct SpanBuilder(SpanFields);

impl SpanBuilder {
    /// Puts the span into an existing trace.
    pub fn trace_id(mut self, trace_id: TraceId) -> Self {
        self.0.trace_id = trace_id;
        self
    }
    /// Sets the span's own ID (default: random).
    pub fn span_id(mut self, span_id: SpanId) -> Self {
        self.0.span_id = span_id;
        self
    }
    /// Sets the parent span.
    pub fn parent_span_id(mut self, parent: SpanId) -> Self {
        self.0.parent_span_id = Some(parent);
        self
    }
    /// Makes the span a child of `parent`: same trace, same correlation ID, parent link set.
    pub fn child_of(mut self, parent: &Span) -> Self {
        self.0.trace_id = parent.trace_id();
        self.0.parent_span_id = Some(parent.span_id());
        self.0.correlation_id = self.0.correlation_id.or(parent.correlation_id());
        self
    }
    /// Sets the start time (default: when the builder was made).
    pub fn start(mut self, at: DateTime<Utc>) -> Self {
        self.0.start = at;
        self
    }
    /// Sets the duration of an already finished operation.
    pub fn duration(mut self, duration: Duration) -> Self {
        self.0.duration = Some(duration);
        self
    }
    /// Sets the status (default pending).
    pub fn status(mut self, status: SpanStatus) -> Self {
        self.0.status = status;
        self
    }
    /// Adds an attribute (non-empty key, value at most 4 KiB).
    pub fn attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.attributes.insert(key.into(), value.into());
        self
    }
    /// The W3C `tracestate` the span carries (see [`Span::trace_state`]).
    pub fn trace_state(mut self, state: &super::tracestate::TraceState) -> Self {
        self.0.trace_state = (!state.is_empty()).then(|| state.to_string());
        self
    }
    /// Sets its role in the trace (default internal).
    pub fn kind(mut self, kind: SpanKind) -> Self {
        self.0.kind = kind;
        self
    }
    /// Ties the span to a request.
    pub fn correlation_id(mut self, id: CorrelationId) -> Self {
        self.0.correlation_id = Some(id);
        self
    }
    /// Checks every field and returns the span, or the first rule broken.
    pub fn build(self) -> Result<Span> {
        Span::try_from(self.0)
    }
}
