//! The observability entities: [`Metric`], [`Span`], [`Alert`], [`HealthCheck`], [`LogEntry`].
//!
//! They are plain data that serialize with serde, and they can only exist valid: every
//! constructor and builder returns [`Result`](crate::Result), and deserializing runs the same
//! checks, so a JSON document cannot smuggle in what a constructor would refuse.

mod alert;
mod enums;
mod health;
pub(crate) mod ids;
mod log;
mod metric;
mod span;
pub(crate) mod tracestate;
pub(crate) mod validate;

pub use validate::{MAX_LABEL_VALUE_LEN, MAX_LABELS, MAX_NAME_LEN, MAX_TEXT_LEN};

pub use alert::{Alert, AlertBuilder};
pub use enums::{AlertStatus, HealthStatus, LogLevel, MetricKind, Severity, SpanKind, SpanStatus};
pub use health::{HealthCheck, HealthCheckBuilder};
pub use ids::{CorrelationId, MAX_CORRELATION_ID_LEN, SpanId, TraceId};
pub use log::{LogEntry, LogEntryBuilder};
pub use metric::{Metric, MetricBuilder};
pub use span::{Span, SpanBuilder};

/// Serializes an optional [`std::time::Duration`] as fractional seconds, the unit Prometheus and
/// OpenTelemetry readers expect.
mod duration_seconds {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    #[allow(clippy::ref_option)] // serde's `with` hands us `&Option<T>`
    pub(crate) fn serialize<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<f64>::deserialize(d)? {
            None => Ok(None),
            Some(secs) => Duration::try_from_secs_f64(secs).map(Some).map_err(|_| {
                serde::de::Error::custom(format!("invalid duration {secs}: must be a finite, non-negative number of seconds"))
            }),
        }
    }
}
