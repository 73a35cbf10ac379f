//! The simple API mirrors the Python factory functions; the global instance is configured once.

#![allow(clippy::float_cmp)] // exact totals are the point: no lost or invented increments

use flext_obs::context::{self, Context, SpanContext};
use flext_obs::{CorrelationId, HealthStatus, LogLevel, Metric, MetricKind, Severity, SpanId, TraceId};

#[test]
fn factories_build_valid_entities_carrying_the_context() {
    let id = CorrelationId::new();
    let parent = SpanContext { trace_id: TraceId::random(), span_id: SpanId::random(), sampled: true };
    Context::new().with_correlation_id(id).with_span(parent).run(|| {
        let span = flext_obs::create_trace("user_request", "order_processing").unwrap();
        assert_eq!(span.trace_id(), parent.trace_id);
        assert_eq!(span.parent_span_id(), Some(parent.span_id));
        assert_eq!(span.correlation_id(), Some(id));
        let alert = flext_obs::create_alert("high_error_rate", "5 %", Severity::Medium).unwrap();
        assert_eq!(alert.correlation_id(), Some(id));
        let entry = flext_obs::create_log_entry("hello", LogLevel::Debug).unwrap();
        assert_eq!((entry.trace_id(), entry.span_id(), entry.correlation_id()), (Some(parent.trace_id), Some(parent.span_id), Some(id)));
    });
    let metric = flext_obs::create_metric("response_time", 150.5, "milliseconds").unwrap();
    assert_eq!((metric.kind(), metric.unit(), metric.value()), (MetricKind::Gauge, "milliseconds", 150.5));
    assert!(flext_obs::create_metric("response time", 1.0, "ms").is_err());
    assert!(flext_obs::create_alert("", "m", Severity::Low).is_err());
    assert_eq!(flext_obs::create_health_check("db", HealthStatus::Unhealthy, "down").unwrap().message(), "down");
    assert!(flext_obs::create_health_check("", HealthStatus::Healthy, "").is_err());
    assert!(flext_obs::create_log_entry(" ", LogLevel::Info).is_err());
    let root = context::with_correlation_id(id, || flext_obs::create_trace("root", "svc").unwrap());
    assert_eq!(root.parent_span_id(), None);
}

#[test]
fn the_global_instance_is_configured_once_and_records() {
    // this test binary has one process-wide instance; `init` may be called once
    let config = flext_obs::Config::builder().service_name("api-test").build().unwrap();
    let obs = flext_obs::init(config).unwrap();
    assert_eq!(obs.config().service_name(), "api-test");
    assert!(matches!(flext_obs::init(flext_obs::Config::default()), Err(flext_obs::Error::AlreadyInitialized)));
    flext_obs::record_metric(&Metric::new("api_calls_total", 2.0, MetricKind::Counter).unwrap()).unwrap();
    flext_obs::record_metric(&Metric::new("api_calls_total", 3.0, MetricKind::Counter).unwrap()).unwrap();
    assert_eq!(flext_obs::global().metric_value("api_calls_total", &[]), Some(5.0));
    assert_eq!(flext_obs::global().raw_records("api_calls_total").len(), 2);
}
