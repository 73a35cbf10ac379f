//! Entities are built valid or not at all, and each rule has its own precise error.

#![allow(clippy::float_cmp)] // exact totals are the point: no lost or invented increments

use flext_obs::{
    Alert, AlertStatus, CorrelationId, Error, HealthCheck, HealthStatus, LogEntry, LogLevel, MAX_CORRELATION_ID_LEN, Metric, MetricKind,
    Severity, Span, SpanId, SpanStatus, TraceId,
};

fn message(result: Result<impl std::fmt::Debug, Error>) -> String {
    result.expect_err("must be refused").to_string()
}

#[test]
fn metric_names_follow_prometheus_rules() {
    assert_eq!(message(Metric::new("", 1.0, MetricKind::Gauge)), r#"invalid Metric.name "": must not be empty"#);
    assert_eq!(message(Metric::new("1abc", 1.0, MetricKind::Gauge)), r#"invalid Metric.name "1abc": must match [a-zA-Z_:][a-zA-Z0-9_:]*"#);
    assert_eq!(message(Metric::new("a-b", 1.0, MetricKind::Gauge)), r#"invalid Metric.name "a-b": must match [a-zA-Z_:][a-zA-Z0-9_:]*"#);
    assert!(message(Metric::new("x".repeat(300), 1.0, MetricKind::Gauge)).contains("must be at most 256 bytes"));
    for ok in ["a", "_a", ":a", "a:b_c9", "http_requests_total"] {
        Metric::new(ok, 1.0, MetricKind::Gauge).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

#[test]
fn label_rules() {
    let build = |k: &str, v: &str| Metric::builder("m", 1.0).label(k, v).build();
    assert_eq!(message(build("__x", "v")), r#"invalid Metric.label name "__x": must not start with "__" (reserved for Prometheus)"#);
    assert_eq!(message(build("a:b", "v")), r#"invalid Metric.label name "a:b": must match [a-zA-Z_][a-zA-Z0-9_]*"#);
    assert_eq!(message(build("", "v")), r#"invalid Metric.label name "": must not be empty"#);
    assert_eq!(message(build("k", &"v".repeat(5000))), r#"invalid Metric.label value "k=<5000 bytes>": must be at most 4096 bytes"#);
    let many = Metric::builder("m", 1.0).labels((0..33).map(|i| (format!("l{i}"), "v"))).build();
    assert_eq!(message(many), r#"invalid Metric.labels "<33 labels>": at most 32 labels are allowed"#);
    let fine = build("_ok", "quotes \" backslash \\ newline \n ünïcode").unwrap();
    assert_eq!(fine.labels()["_ok"], "quotes \" backslash \\ newline \n ünïcode");
}

#[test]
fn metric_values_must_be_finite_and_counters_non_negative() {
    assert_eq!(message(Metric::new("m", f64::NAN, MetricKind::Gauge)), "invalid Metric.value NaN: must be finite (not NaN or infinite)");
    assert_eq!(
        message(Metric::new("m", f64::INFINITY, MetricKind::Gauge)),
        "invalid Metric.value inf: must be finite (not NaN or infinite)"
    );
    assert_eq!(message(Metric::new("m", -1.0, MetricKind::Counter)), "invalid Metric.value -1.0: a counter value must not be negative");
    assert_eq!(Metric::new("m", -1.0, MetricKind::Gauge).unwrap().value(), -1.0);
    assert_eq!(
        message(Metric::builder("m", 1.0).unit("milli seconds").build()),
        r#"invalid Metric.unit "milli seconds": must be at most 64 characters of [a-zA-Z0-9_]"#
    );
}

#[test]
fn alert_health_and_log_text_must_not_be_empty() {
    assert_eq!(message(Alert::builder("", "m").build()), r#"invalid Alert.title "": must not be empty"#);
    assert_eq!(message(Alert::builder("t", "  ").build()), r#"invalid Alert.message "  ": must not be empty"#);
    assert_eq!(message(Alert::builder("t", "m").count(0).build()), "invalid Alert.count 0: must be at least 1");
    assert_eq!(message(HealthCheck::builder("", HealthStatus::Healthy).build()), r#"invalid HealthCheck.component "": must not be empty"#);
    assert_eq!(message(LogEntry::builder("", LogLevel::Info).build()), r#"invalid LogEntry.message "": must not be empty"#);
    assert_eq!(message(Span::builder("", "svc").build()), r#"invalid Span.name "": must not be empty"#);
}

#[test]
fn trace_and_span_ids_are_checked() {
    let rule32 = "must be 32 lower-case hex digits, not all zero";
    assert_eq!(message("abc".parse::<TraceId>()), format!(r#"invalid TraceId.value "abc": {rule32}"#));
    assert_eq!(message("0".repeat(32).parse::<TraceId>()), format!(r#"invalid TraceId.value "{}": {rule32}"#, "0".repeat(32)));
    assert!("4BF92F3577B34DA6A3CE929D0E0E4736".parse::<TraceId>().is_err(), "upper case is not W3C");
    assert!("4bf92f3577b34da6a3ce929d0e0e473g".parse::<TraceId>().is_err());
    assert_eq!(
        message("00f067aa0ba902b".parse::<SpanId>()),
        r#"invalid SpanId.value "00f067aa0ba902b": must be 16 lower-case hex digits, not all zero"#
    );
    assert!("0000000000000000".parse::<SpanId>().is_err());
    let ids: Vec<TraceId> = (0..1000).map(|_| TraceId::random()).collect();
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), 1000);
}

#[test]
fn unknown_enumeration_strings_list_the_valid_ones() {
    assert_eq!(
        message("error".parse::<Severity>()),
        r#"unknown severity "error": expected one of "low", "medium", "high", "critical", "emergency""#
    );
    assert_eq!(
        message("ok".parse::<HealthStatus>()),
        r#"unknown health status "ok": expected one of "healthy", "degraded", "unhealthy", "unknown""#
    );
    assert_eq!(
        message("closed".parse::<AlertStatus>()),
        r#"unknown alert status "closed": expected one of "active", "acknowledged", "resolved", "suppressed""#
    );
    assert_eq!(
        message("done".parse::<SpanStatus>()),
        r#"unknown span status "done": expected one of "pending", "completed", "error", "timeout""#
    );
    assert_eq!(
        message("meter".parse::<MetricKind>()),
        r#"unknown metric kind "meter": expected one of "counter", "gauge", "histogram", "summary""#
    );
    assert_eq!(
        message("warn".parse::<LogLevel>()),
        r#"unknown log level "warn": expected one of "debug", "info", "warning", "error", "critical""#
    );
    for s in Severity::ALL {
        assert_eq!(s.as_str().parse::<Severity>().unwrap(), *s);
    }
}

#[test]
fn entities_round_trip_through_json() {
    let metric = Metric::builder("latency_seconds", 0.25).kind(MetricKind::Histogram).unit("seconds").label("route", "/a").build().unwrap();
    let json = serde_json::to_value(&metric).unwrap();
    assert_eq!(json["kind"], "histogram");
    assert_eq!(json["labels"]["route"], "/a");
    assert_eq!(serde_json::from_value::<Metric>(json).unwrap(), metric);

    let root = Span::builder("root", "svc").build().unwrap();
    let mut child = Span::builder("child", "svc").child_of(&root).attribute("k", "v").build().unwrap();
    child.finish(SpanStatus::Error);
    let json = serde_json::to_value(&child).unwrap();
    assert_eq!(json["status"], "error");
    assert_eq!(json["trace_id"], root.trace_id().to_string());
    assert!(json["duration"].as_f64().unwrap() >= 0.0);
    assert_eq!(serde_json::from_value::<Span>(json).unwrap(), child);

    let alert = Alert::builder("t", "m").severity(Severity::Emergency).label("team", "a").build().unwrap();
    let json = serde_json::to_value(&alert).unwrap();
    assert_eq!(json["severity"], "emergency");
    assert_eq!(json["status"], "active");
    assert_eq!(serde_json::from_value::<Alert>(json).unwrap(), alert);

    let check = HealthCheck::builder("db", HealthStatus::Degraded).detail("lag", 3).build().unwrap();
    assert_eq!(serde_json::from_value::<HealthCheck>(serde_json::to_value(&check).unwrap()).unwrap(), check);
    let entry = LogEntry::builder("hello", LogLevel::Warning).field("n", 1).trace(TraceId::random(), SpanId::random()).build().unwrap();
    assert_eq!(serde_json::from_value::<LogEntry>(serde_json::to_value(&entry).unwrap()).unwrap(), entry);
}

#[test]
fn deserializing_an_invalid_entity_fails_with_the_constructor_error() {
    let metric = Metric::new("ok_name", 1.0, MetricKind::Counter).unwrap();
    let mut json = serde_json::to_value(&metric).unwrap();
    json["name"] = "bad name".into();
    let err = serde_json::from_value::<Metric>(json.clone()).unwrap_err().to_string();
    assert!(err.contains(r#"invalid Metric.name "bad name": must match"#), "{err}");
    json["name"] = "ok_name".into();
    json["value"] = (-3.0).into();
    let err = serde_json::from_value::<Metric>(json.clone()).unwrap_err().to_string();
    assert!(err.contains("a counter value must not be negative"), "{err}");
    json["value"] = 1.0.into();
    json["labels"] = serde_json::json!({"__reserved": "x"});
    assert!(serde_json::from_value::<Metric>(json).unwrap_err().to_string().contains(r#"must not start with "__""#));

    let alert = Alert::builder("t", "m").build().unwrap();
    let mut json = serde_json::to_value(&alert).unwrap();
    json["severity"] = "error".into();
    let err = serde_json::from_value::<Alert>(json.clone()).unwrap_err().to_string();
    assert!(err.contains(r#"unknown severity "error": expected one of"#), "{err}");
    json["severity"] = "low".into();
    json["title"] = "".into();
    assert!(serde_json::from_value::<Alert>(json).unwrap_err().to_string().contains(r#"invalid Alert.title "": must not be empty"#));

    let span = Span::builder("s", "svc").build().unwrap();
    let mut json = serde_json::to_value(&span).unwrap();
    json["trace_id"] = "0".repeat(32).into();
    assert!(serde_json::from_value::<Span>(json.clone()).unwrap_err().to_string().contains("invalid TraceId.value"));
    json["trace_id"] = span.trace_id().to_string().into();
    json["parent_span_id"] = span.span_id().to_string().into();
    assert!(serde_json::from_value::<Span>(json).unwrap_err().to_string().contains("a span cannot be its own parent"));

    let check = HealthCheck::builder("db", HealthStatus::Healthy).build().unwrap();
    let mut json = serde_json::to_value(&check).unwrap();
    json["component"] = "".into();
    assert!(serde_json::from_value::<HealthCheck>(json).is_err());
    let entry = LogEntry::builder("x", LogLevel::Info).build().unwrap();
    let mut json = serde_json::to_value(&entry).unwrap();
    json["level"] = "fatal".into();
    assert!(serde_json::from_value::<LogEntry>(json).unwrap_err().to_string().contains(r#"unknown log level "fatal""#));
}

#[test]
fn correlation_ids_are_the_tokens_proxies_send_kept_exactly() {
    let longest = "x".repeat(MAX_CORRELATION_ID_LEN);
    for token in [
        "req-42",
        "a",
        "0af7651916cd43dd8448eb211c80319c",         // nginx $request_id
        "Root=1-5759e988-bd862e3fe1be46a994272793", // AWS X-Amzn-Trace-Id
        "67E55044-10B1-426F-9247-BB680E5FE0C8",
        "!~\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}",
        longest.as_str(),
    ] {
        let id: CorrelationId = token.parse().unwrap_or_else(|e| panic!("{token}: {e}"));
        assert_eq!(id.to_string(), token, "Display is the exact token");
        assert_eq!(id.as_str(), token);
        assert_eq!(serde_json::to_value(id).unwrap(), serde_json::Value::String(token.to_owned()));
        assert_eq!(serde_json::from_value::<CorrelationId>(serde_json::Value::String(token.to_owned())).unwrap(), id);
    }
    assert_eq!("req-42".parse::<CorrelationId>().unwrap().to_uuid(), None);
    assert_eq!(
        "67E55044-10B1-426F-9247-BB680E5FE0C8".parse::<CorrelationId>().unwrap().to_uuid().map(|u| u.as_u128()),
        Some(0x67e5_5044_10b1_426f_9247_bb68_0e5f_e0c8)
    );
    assert_ne!("ABC".parse::<CorrelationId>().unwrap(), "abc".parse::<CorrelationId>().unwrap(), "compared as written");
}

#[test]
fn correlation_ids_refuse_what_is_not_a_token_with_the_rule() {
    let printable = "must be printable ASCII (0x21..=0x7E)";
    assert_eq!(message("".parse::<CorrelationId>()), r#"invalid CorrelationId.value "": must not be empty"#);
    assert_eq!(
        message("has space".parse::<CorrelationId>()),
        format!(r#"invalid CorrelationId.value "has space": {printable}: byte 0x20 at index 3 is not"#)
    );
    assert_eq!(
        message(" req-42".parse::<CorrelationId>()),
        format!(r#"invalid CorrelationId.value " req-42": {printable}: byte 0x20 at index 0 is not"#)
    );
    assert_eq!(
        message("a\tb".parse::<CorrelationId>()),
        format!(r#"invalid CorrelationId.value "a\tb": {printable}: byte 0x09 at index 1 is not"#)
    );
    assert_eq!(
        message("a\u{7f}".parse::<CorrelationId>()),
        format!(r#"invalid CorrelationId.value "a\u{{7f}}": {printable}: byte 0x7f at index 1 is not"#)
    );
    assert_eq!(
        message("é".parse::<CorrelationId>()),
        format!(r#"invalid CorrelationId.value "é": {printable}: byte 0xc3 at index 0 is not"#)
    );
    let too_long = "x".repeat(MAX_CORRELATION_ID_LEN + 1);
    assert_eq!(
        message(too_long.parse::<CorrelationId>()),
        format!(r#"invalid CorrelationId.value "{too_long}": must be at most 64 bytes long, not 65"#)
    );
    assert_eq!(
        message("00000000-0000-0000-0000-000000000000".parse::<CorrelationId>()),
        r#"invalid CorrelationId.value "00000000-0000-0000-0000-000000000000": must not be the nil UUID, which means no correlation ID"#
    );
    let err = serde_json::from_value::<CorrelationId>(serde_json::json!("has space")).unwrap_err().to_string();
    assert!(err.contains("byte 0x20 at index 3"), "{err}");
}

#[test]
fn new_correlation_ids_are_canonical_v4_uuids_and_order_like_their_tokens() {
    let ids: Vec<CorrelationId> = (0..1000).map(|_| CorrelationId::new()).collect();
    for id in &ids {
        let uuid = id.to_uuid().expect("a new ID is a UUID");
        assert_eq!(uuid.get_version_num(), 4);
        assert_eq!(id.to_string(), uuid.hyphenated().to_string(), "canonical: hyphenated, lower case");
        assert_eq!(CorrelationId::from_uuid(uuid), Some(*id));
    }
    assert_eq!(ids.iter().collect::<std::collections::HashSet<_>>().len(), ids.len());
    let mut sorted = ids.clone();
    sorted.sort();
    let mut by_text: Vec<String> = ids.iter().map(ToString::to_string).collect();
    by_text.sort();
    assert_eq!(sorted.iter().map(ToString::to_string).collect::<Vec<_>>(), by_text);
    let (short, long): (CorrelationId, CorrelationId) = ("ab".parse().unwrap(), "abc".parse().unwrap());
    assert!(short < long);
}
