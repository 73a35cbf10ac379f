//! `tracing` spans as flext-obs spans (`bridge::tracing::SpanLayer`) under a real
//! `tracing_subscriber::registry()`: `#[instrument]` around a monitored call around an
//! `#[instrument]` is one trace with the right parents both ways, fields (at creation and
//! recorded later) are attributes, `ERROR` events and `#[instrument(err)]` make the status
//! error, the monitored call's own `tracing` span (off by default, checked on too) is not recorded twice, and log lines inside an
//! entered span carry its IDs.

use flext_obs::bridge::tracing::SpanLayer;
use flext_obs::{Span, SpanStatus, flext_monitor};
use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt as _;

#[tracing::instrument(fields(order = 42, state = tracing::field::Empty))]
fn bridge_outer() -> u64 {
    tracing::Span::current().record("state", "checked");
    bridge_monitored() + 1
}

#[flext_monitor]
fn bridge_monitored() -> u64 {
    bridge_leaf(2)
}

#[tracing::instrument]
fn bridge_leaf(n: u64) -> u64 {
    flext_obs::log::info("inside the leaf", &[]).unwrap();
    n * 10
}

#[tracing::instrument(err)]
fn bridge_fails(n: u64) -> Result<u64, String> {
    if n > 1 { Err(format!("{n} is too many")) } else { Ok(n) }
}

#[tracing::instrument]
fn bridge_logs_an_error() {
    tracing::error!(code = 7, "the disk is gone");
}

fn spans_named(name: &str) -> Vec<Span> {
    flext_obs::trace::recent_spans().into_iter().filter(|s| s.name() == name).collect()
}

/// Runs `#[instrument]` around a monitored call around an `#[instrument]` once and checks the
/// one trace it makes (found by the new outer span: other tests in this file run at once).
fn check_nesting() {
    let before: Vec<_> = spans_named("bridge_outer").iter().map(Span::span_id).collect();
    let captured = flext_obs::log::capture();
    let subscriber = tracing_subscriber::registry().with(SpanLayer::new());
    let result = tracing::subscriber::with_default(subscriber, bridge_outer);
    assert_eq!(result, 21);

    let outer: Vec<Span> = spans_named("bridge_outer").into_iter().filter(|s| !before.contains(&s.span_id())).collect();
    assert_eq!(outer.len(), 1, "one new outer span");
    let outer = &outer[0];
    let in_trace = |name: &str| -> Vec<Span> { spans_named(name).into_iter().filter(|s| s.trace_id() == outer.trace_id()).collect() };
    let (monitored, leaf) = (in_trace("bridge_monitored"), in_trace("bridge_leaf"));
    assert_eq!((monitored.len(), leaf.len()), (1, 1), "one span each, none twice");
    let (monitored, leaf) = (&monitored[0], &leaf[0]);
    assert_eq!(outer.parent_span_id(), None, "a root");
    assert_eq!(monitored.parent_span_id(), Some(outer.span_id()), "the monitored call is the instrumented span's child");
    assert_eq!(leaf.parent_span_id(), Some(monitored.span_id()), "the instrumented leaf is the monitored call's child");
    assert_eq!(outer.attributes().get("order").map(String::as_str), Some("42"));
    assert_eq!(outer.attributes().get("state").map(String::as_str), Some("checked"), "recorded after creation");
    assert_eq!(leaf.attributes().get("n").map(String::as_str), Some("2"));
    assert_eq!(outer.status(), SpanStatus::Completed);

    // The log line written inside the leaf carries the leaf's IDs.
    let line: Value =
        captured.lines().iter().map(|l| serde_json::from_str::<Value>(l).unwrap()).find(|l| l["message"] == "inside the leaf").unwrap();
    assert_eq!(line["trace.id"], outer.trace_id().to_string());
    assert_eq!(line["span.id"], leaf.span_id().to_string());
}

#[test]
fn instrumented_and_monitored_calls_nest_in_one_trace_both_ways() {
    // The default: the monitored call opens no `tracing` span of its own; the layer finds it as
    // the thread's context between the two instrumented spans.
    assert!(!flext_obs::monitor::tracing_spans());
    check_nesting();
    // With the monitored call's own `tracing` span on, the same trace (that span not recorded).
    flext_obs::monitor::set_tracing_spans(true);
    check_nesting();
    flext_obs::monitor::set_tracing_spans(false);
}

#[test]
fn error_events_and_instrumented_errors_set_the_span_status() {
    let subscriber = tracing_subscriber::registry().with(SpanLayer::new());
    tracing::subscriber::with_default(subscriber, || {
        let _ = bridge_fails(1);
        let _ = bridge_fails(5);
        bridge_logs_an_error();
    });
    let mut statuses: Vec<SpanStatus> = spans_named("bridge_fails").iter().map(Span::status).collect();
    statuses.sort_by_key(|s| s.as_str());
    assert_eq!(statuses, [SpanStatus::Completed, SpanStatus::Error]);
    assert_eq!(spans_named("bridge_logs_an_error")[0].status(), SpanStatus::Error);
}

#[test]
fn without_the_layer_nothing_is_recorded_for_tracing_spans() {
    let subscriber = tracing_subscriber::registry();
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("bridge_unrecorded");
        let _entered = span.enter();
    });
    assert!(spans_named("bridge_unrecorded").is_empty());
}

#[flext_monitor]
fn bridge_panics() -> u32 {
    panic!("the ledger is corrupt")
}

#[flext_monitor]
fn bridge_fails_typed() -> Result<u32, std::num::ParseIntError> {
    "x".parse::<u32>()
}

#[test]
fn failed_and_panicking_calls_carry_error_type_and_their_code_location() {
    let _ = std::panic::catch_unwind(bridge_panics);
    let _ = bridge_fails_typed();
    let panicked = spans_named("bridge_panics");
    assert_eq!(panicked[0].attributes().get("error.type").map(String::as_str), Some("panic"));
    let failed = spans_named("bridge_fails_typed");
    assert_eq!(failed[0].attributes().get("error.type").map(String::as_str), Some("core::num::error::ParseIntError"));
    assert_eq!(failed[0].attributes().get("code.file.path").map(String::as_str), Some("tests/tests/bridge_tracing.rs"));
    assert_eq!(failed[0].attributes().get("code.function.name").map(String::as_str), Some("bridge_tracing::bridge_fails_typed"));
    assert!(failed[0].attributes().get("code.line.number").is_some_and(|l| l.parse::<u32>().is_ok_and(|l| l > 0)));
}
