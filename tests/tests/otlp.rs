//! OTLP/HTTP export, checked by a loopback receiver that decodes every request with the official
//! `opentelemetry-proto` messages: span fields, parent links, status and attributes, the
//! resource, metrics, logs, retries, surfaced errors, the bounded queue, and a trace that crosses
//! two processes through `traceparent`. The exporter is process-wide, so the tests take turns.

#![allow(clippy::float_cmp)] // exact counts are the point

use flext_obs::config::OtlpSettings;
use flext_obs::export::otlp::{OtlpExporter, OtlpHandle};
use flext_obs::{Config, CorrelationId, flext_monitor};
use flext_obs_tests::otlp_receiver::{ReceivedSpan, Receiver, string_attr};
use flext_obs_tests::{http, sum};
use opentelemetry_proto::tonic::metrics::v1::{AggregationTemporality, metric};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind as Kind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use std::process::Command;
use std::sync::{Mutex, MutexGuard, Once, PoisonError};
use std::time::Duration;

static TURN: Mutex<()> = Mutex::new(());
static INIT: Once = Once::new();

fn turn() -> MutexGuard<'static, ()> {
    INIT.call_once(|| {
        let config = Config::builder().service_name("otlp-caller").build_info("2.3.4", "abc1234").build().expect("valid config");
        flext_obs::init(config).expect("first init");
        flext_obs::log::set_writer(std::io::sink());
    });
    TURN.lock().unwrap_or_else(PoisonError::into_inner)
}

fn quick() -> OtlpSettings {
    OtlpSettings { schedule_delay: Duration::from_millis(50), ..OtlpSettings::default() }
}

/// An exporter of the process-wide instance to `receiver`.
fn start(receiver: &Receiver, settings: OtlpSettings, metrics: bool) -> OtlpHandle {
    OtlpExporter::new(&receiver.endpoint()).unwrap().settings(settings).metrics(metrics).install(flext_obs::global().clone()).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, b| {
        use std::fmt::Write as _;
        let _ = write!(out, "{b:02x}");
        out
    })
}

fn named<'a>(spans: &'a [ReceivedSpan], name: &str) -> Vec<&'a ReceivedSpan> {
    spans.iter().filter(|s| s.span.name == name).collect()
}

#[flext_monitor]
fn store_blob(size: usize) -> Result<usize, String> {
    if size > 10 {
        return Err(format!("disk full: {size} bytes refused"));
    }
    Ok(size)
}

#[flext_monitor]
fn upload(size: usize) -> usize {
    flext_obs::log::warning("uploading", &[("size", size.into())]).expect("log line");
    store_blob(size).unwrap_or(0)
}

#[flext_monitor]
fn explode() -> u32 {
    panic!("boom")
}

#[test]
fn spans_arrive_with_ids_parent_links_status_attributes_and_resource() {
    let _turn = turn();
    let receiver = Receiver::start();
    let handle = start(&receiver, quick(), true);
    let correlation = CorrelationId::new();
    flext_obs::context::with_correlation_id(correlation, || {
        assert_eq!(upload(50), 0);
        let _ = std::panic::catch_unwind(explode);
    });
    let manual = flext_obs::trace::start_trace("nightly_import").unwrap().finish(flext_obs::SpanStatus::Completed);
    handle.flush().unwrap();

    assert!(receiver.decode_errors().is_empty(), "{:?}", receiver.decode_errors());
    assert!(receiver.content_types().iter().all(|t| t == "application/x-protobuf"), "{:?}", receiver.content_types());
    let spans = receiver.spans();
    let (outer, inner, boom) = (named(&spans, "upload"), named(&spans, "store_blob"), named(&spans, "explode"));
    assert_eq!((outer.len(), inner.len(), boom.len()), (1, 1, 1), "{spans:#?}");
    let (outer, inner, boom) = (outer[0], inner[0], boom[0]);

    assert_eq!((outer.service.as_str(), outer.version.as_deref()), ("otlp-caller", Some("2.3.4")));
    assert_eq!(outer.span.trace_id.len(), 16);
    assert_eq!(outer.span.span_id.len(), 8);
    assert!(outer.span.parent_span_id.is_empty(), "upload is a root span");
    assert_eq!(inner.span.trace_id, outer.span.trace_id);
    assert_eq!(inner.span.parent_span_id, outer.span.span_id);
    assert!(inner.span.start_time_unix_nano >= outer.span.start_time_unix_nano);
    assert!(inner.span.end_time_unix_nano <= outer.span.end_time_unix_nano);
    let now = u64::try_from(chrono::Utc::now().timestamp_nanos_opt().unwrap()).unwrap();
    assert!(now - outer.span.start_time_unix_nano < 60_000_000_000, "start is wall-clock time");

    for span in [outer, inner, boom] {
        assert_eq!(span.attr("function").as_deref(), Some(span.span.name.as_str()));
        assert_eq!(span.attr("module").as_deref(), Some("otlp"));
        assert_eq!(span.attr("correlation_id"), Some(correlation.to_string()));
    }
    assert!(outer.span.status.is_none(), "a call that returned normally leaves the status unset");
    let status = inner.span.status.as_ref().expect("an error status");
    assert_eq!((status.code, status.message.as_str()), (i32::from(StatusCode::Error), "disk full: 50 bytes refused"));
    let status = boom.span.status.as_ref().expect("an error status");
    assert_eq!((status.code, status.message.as_str()), (i32::from(StatusCode::Error), "explode panicked: boom"));

    let manual_span = named(&spans, "nightly_import");
    assert_eq!(manual_span.len(), 1);
    assert_eq!(hex(&manual_span[0].span.trace_id), manual.trace_id().to_string());

    // The log line written inside `upload` carries that call's trace and span IDs.
    let records = receiver.log_records();
    let line =
        records.iter().find(|r| r.body.as_ref().and_then(|b| b.value.as_ref()).is_some_and(|v| format!("{v:?}").contains("uploading")));
    let line = line.expect("the log line was exported");
    assert_eq!((line.trace_id.as_slice(), line.span_id.as_slice()), (outer.span.trace_id.as_slice(), outer.span.span_id.as_slice()));
    assert_eq!(line.severity_text, "warning");
    assert_eq!(string_attr(&line.attributes, "correlation_id"), Some(correlation.to_string()));
    handle.shutdown().unwrap();
}

#[flext_monitor]
fn counted(n: u32) -> u32 {
    n
}

#[test]
fn metrics_are_exported_cumulatively_with_their_labels_and_buckets() {
    let _turn = turn();
    let receiver = Receiver::start();
    let handle = start(&receiver, quick(), true);
    for n in 0..7 {
        counted(n);
    }
    handle.flush().unwrap();
    let requests = receiver.metric_requests();
    let last = requests.last().expect("a metrics request");
    let metrics = &last.resource_metrics[0].scope_metrics[0].metrics;
    let calls = metrics.iter().find(|m| m.name == "function_calls_total").expect("the calls counter");
    let Some(metric::Data::Sum(sum_data)) = &calls.data else { panic!("a counter is a sum: {calls:?}") };
    assert!(sum_data.is_monotonic);
    assert_eq!(sum_data.aggregation_temporality, i32::from(AggregationTemporality::Cumulative));
    let point = sum_data
        .data_points
        .iter()
        .find(|p| {
            string_attr(&p.attributes, "function").as_deref() == Some("counted")
                && string_attr(&p.attributes, "result").as_deref() == Some("ok")
        })
        .expect("the point of counted");
    assert_eq!(point.value, Some(opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsDouble(7.0)));
    assert!(point.start_time_unix_nano <= point.time_unix_nano);

    let durations = metrics.iter().find(|m| m.name == "function_calls_duration_seconds").expect("the duration histogram");
    let Some(metric::Data::Histogram(histogram)) = &durations.data else { panic!("a histogram: {durations:?}") };
    let point = histogram
        .data_points
        .iter()
        .find(|p| string_attr(&p.attributes, "function").as_deref() == Some("counted"))
        .expect("counted's point");
    assert_eq!(point.count, 7);
    assert_eq!(point.bucket_counts.len(), point.explicit_bounds.len() + 1);
    assert_eq!(point.bucket_counts.iter().sum::<u64>(), 7, "per-bucket counts, not cumulative");
    assert!(point.explicit_bounds.windows(2).all(|w| w[0] < w[1]));
    assert!(!durations.description.is_empty());
    assert_eq!(sum(flext_obs::export::otlp::FAILURES_METRIC, &[("signal", "metrics")]), 0.0);
    handle.shutdown().unwrap();
}

#[flext_monitor]
fn parse_quantity(text: &str) -> Result<u32, std::num::ParseIntError> {
    text.parse()
}

#[flext_monitor]
fn parse_or_panic(text: &str) -> u32 {
    text.parse().expect("a number")
}

#[test]
fn failed_calls_durations_carry_error_type_in_otlp() {
    let _turn = turn();
    let receiver = Receiver::start();
    let handle = start(&receiver, quick(), true);
    for text in ["1", "2", "x", "y", "z"] {
        let _ = parse_quantity(text);
    }
    let _ = parse_or_panic("3");
    let _ = std::panic::catch_unwind(|| parse_or_panic("boom"));
    handle.flush().unwrap();
    let requests = receiver.metric_requests();
    let metrics = &requests.last().expect("a metrics request").resource_metrics[0].scope_metrics[0].metrics;
    let durations = metrics.iter().find(|m| m.name == "function_calls_duration_seconds").expect("the duration histogram");
    let Some(metric::Data::Histogram(histogram)) = &durations.data else { panic!("a histogram: {durations:?}") };
    let count = |function: &str, error_type: Option<&str>| -> Vec<u64> {
        histogram
            .data_points
            .iter()
            .filter(|p| string_attr(&p.attributes, "function").as_deref() == Some(function))
            .filter(|p| string_attr(&p.attributes, "error.type").as_deref() == error_type)
            .map(|p| p.count)
            .collect()
    };
    assert_eq!(count("parse_quantity", None), [2], "calls that did not fail: no error.type");
    assert_eq!(count("parse_quantity", Some("core::num::error::ParseIntError")), [3], "OpenTelemetry's error.type: the error's type");
    assert_eq!(count("parse_or_panic", None), [1]);
    assert_eq!(count("parse_or_panic", Some("panic")), [1]);
    assert!(
        histogram.data_points.iter().all(|p| string_attr(&p.attributes, "error_type").is_none()),
        "the attribute has its semantic-convention name in OTLP"
    );
    // The function's statistics still see every call's duration.
    let stats = flext_obs::monitor::function_stats(&flext_obs::global().snapshot());
    let parse = stats.iter().find(|s| s.function == "parse_quantity").unwrap();
    assert_eq!((parse.calls, parse.errors), (5, 3));
    assert!(parse.p99.is_some());
    handle.shutdown().unwrap();
}

#[flext_monitor]
fn flood(n: u32) -> u32 {
    n
}

#[test]
fn a_slow_collector_never_blocks_calls_drops_are_counted_and_retries_deliver() {
    let _turn = turn();
    let receiver = Receiver::start();
    let settings = OtlpSettings { max_queue_size: 4, max_export_batch_size: 1, ..quick() };
    let handle = start(&receiver, settings, false);
    let dropped_before = sum(flext_obs::export::otlp::DROPPED_METRIC, &[("signal", "spans")]);
    // The collector answers 503 three times: the exporter retries with backoff (~0.7 s) while
    // the calls below keep coming; the queue holds 4 spans and the rest are dropped.
    receiver.fail_next(503, 3);
    flood(0);
    std::thread::sleep(Duration::from_millis(50));
    for n in 1..=200 {
        assert_eq!(flood(n), n);
    }
    handle.flush().unwrap();
    let delivered = named(&receiver.spans(), "flood").len();
    let dropped = sum(flext_obs::export::otlp::DROPPED_METRIC, &[("signal", "spans")]) - dropped_before;
    assert!(delivered >= 1, "the first span got through after its retries");
    assert!(dropped > 0.0, "a queue of 4 cannot hold 200 spans while the collector stalls");
    #[allow(clippy::cast_precision_loss)]
    let total = delivered as f64 + dropped;
    assert_eq!(total, 201.0, "every span is either delivered or counted as dropped");
    assert_eq!(flext_obs_tests::calls("flood", "ok"), 201.0, "metrics are complete whatever the queue does");
    handle.shutdown().unwrap();
}

#[flext_monitor]
fn queued(n: u32) -> u32 {
    flext_obs::log::info("queued", &[("n", n.into())]).expect("log line");
    n
}

#[test]
fn dropping_the_exporter_sends_what_is_queued_and_the_final_metrics() {
    let _turn = turn();
    let receiver = Receiver::start();
    // Nothing would leave on a timer within this test: only the stop sends.
    let slow =
        OtlpSettings { schedule_delay: Duration::from_secs(600), metric_interval: Duration::from_secs(600), ..OtlpSettings::default() };
    let handle = start(&receiver, slow, true);
    for n in 0..3 {
        queued(n);
    }
    std::thread::sleep(Duration::from_millis(100));
    assert!(named(&receiver.spans(), "queued").is_empty(), "nothing is sent before the schedule delay");
    drop(handle);
    assert_eq!(named(&receiver.spans(), "queued").len(), 3, "the stop sent the queued spans");
    let lines = receiver.log_records().iter().filter(|r| format!("{:?}", r.body).contains("queued")).count();
    assert_eq!(lines, 3, "and the queued log lines");
    let metrics = receiver.metric_requests();
    assert_eq!(metrics.len(), 1, "and the final metrics, once");
    assert!(metrics[0].resource_metrics[0].scope_metrics[0].metrics.iter().any(|m| m.name == "function_calls_total"));
}

#[flext_monitor]
fn refused(n: u32) -> u32 {
    n
}

#[test]
fn a_collector_error_is_surfaced_with_its_status_and_message() {
    let _turn = turn();
    let receiver = Receiver::start();
    let handle = start(&receiver, quick(), false);
    let failures_before = sum(flext_obs::export::otlp::FAILURES_METRIC, &[("signal", "spans")]);
    handle.flush().unwrap();
    receiver.fail_next(400, 1);
    refused(1);
    let err = handle.flush().unwrap_err();
    assert!(err.to_string().contains("400"), "{err}");
    assert_eq!(handle.last_error().map(|e| e.to_string()), Some(err.to_string()));
    assert_eq!(sum(flext_obs::export::otlp::FAILURES_METRIC, &[("signal", "spans")]) - failures_before, 1.0);
    // A second exporter cannot run beside the first.
    let second = OtlpExporter::new(&receiver.endpoint()).unwrap().install(flext_obs::global().clone());
    assert!(second.unwrap_err().to_string().contains("already running"));
    handle.shutdown().unwrap();
}

#[test]
fn otlp_settings_come_from_the_environment_with_precise_errors() {
    let lookup =
        |pairs: Vec<(&'static str, &'static str)>| move |var: &str| pairs.iter().find(|(k, _)| *k == var).map(|(_, v)| (*v).to_owned());
    let config = Config::from_lookup(lookup(vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "10"),
        ("OTEL_BSP_SCHEDULE_DELAY", "250"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "1000"),
    ]))
    .unwrap();
    assert_eq!(
        config.otlp(),
        OtlpSettings {
            max_queue_size: 100,
            max_export_batch_size: 10,
            schedule_delay: Duration::from_millis(250),
            metric_interval: Duration::from_secs(1),
            ..OtlpSettings::default()
        }
    );
    assert_eq!(OtlpExporter::from_config(&config).unwrap().unwrap().traces_url(), Some("http://127.0.0.1:4318/v1/traces"));
    let err = Config::from_lookup(lookup(vec![("OTEL_BSP_SCHEDULE_DELAY", "soon")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"environment variable OTEL_BSP_SCHEDULE_DELAY="soon" is invalid: expected a whole number of milliseconds from 1 to 3600000 (1 hour)"#
    );
    let err = Config::from_lookup(lookup(vec![("OTEL_BSP_MAX_QUEUE_SIZE", "0")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"environment variable OTEL_BSP_MAX_QUEUE_SIZE="0" is invalid: expected a whole number from 1 to 1000000"#
    );
}

#[flext_monitor]
fn checkout(addr: std::net::SocketAddr, item: &str) -> Result<String, String> {
    let mut headers: Vec<(String, String)> = Vec::new();
    flext_obs::context::current().inject(&mut headers);
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let response = http::get(addr, &format!("/quote/{item}"), &headers).map_err(|e| e.to_string())?;
    if response.status == 200 { Ok(response.body) } else { Err(format!("quote service answered {}: {}", response.status, response.body)) }
}

#[test]
fn a_trace_crosses_two_processes_through_traceparent_and_both_export_into_it() {
    let _turn = turn();
    let receiver = Receiver::start();
    let handle = start(&receiver, quick(), true);
    let mut command = Command::new(env!("CARGO_BIN_EXE_otlp_peer"));
    command
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        .env("FLEXT_SERVICE_NAME", "quote-service")
        .env("FLEXT_SERVICE_VERSION", "9.9.9")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100");
    let (mut peer, addr) = flext_obs_tests::spawn_listening(command);

    let correlation = CorrelationId::new();
    let (ok, missing) = flext_obs::context::with_correlation_id(correlation, || (checkout(addr, "book"), checkout(addr, "unknown")));
    assert_eq!(ok.as_deref(), Ok("400"));
    assert_eq!(missing, Err("quote service answered 404: no price for unknown".to_owned()));
    assert_eq!(http::request(addr, "POST", "/stop", &[], "").unwrap().status, 200);
    assert!(peer.wait().unwrap().success(), "the peer flushed its exporter and exited cleanly");
    handle.flush().unwrap();

    let spans = receiver.spans();
    let callers = named(&spans, "checkout");
    let quotes = named(&spans, "price_quote");
    let lookups = named(&spans, "lookup_price");
    assert_eq!((callers.len(), quotes.len(), lookups.len()), (2, 2, 2), "{spans:#?}");
    for caller in callers {
        assert_eq!(caller.service, "otlp-caller");
        let quote = quotes.iter().find(|q| q.span.trace_id == caller.span.trace_id).expect("the peer's span is in the caller's trace");
        assert_eq!(quote.service, "quote-service");
        assert_eq!(quote.version.as_deref(), Some("9.9.9"));
        assert_eq!(quote.span.parent_span_id, caller.span.span_id, "the peer's root hangs under the caller's span");
        assert_eq!(quote.attr("correlation_id"), Some(correlation.to_string()), "x-correlation-id crossed too");
        let lookup = lookups.iter().find(|l| l.span.parent_span_id == quote.span.span_id).expect("the nested call");
        assert_eq!(lookup.span.trace_id, caller.span.trace_id);
        let failed = caller.span.status.is_some();
        assert_eq!(quote.span.status.is_some(), failed);
        assert_eq!(lookup.span.status.as_ref().map(|s| s.message.as_str()), failed.then_some("no price for unknown"));
        assert_eq!(lookup.attr("error.type").as_deref(), failed.then_some("alloc::string::String"), "error.type: the error's type");
        // Without the middleware: the call that injected its context by hand is the request's
        // client, the call made in the context extracted by hand its server (parent remote).
        for (span, kind, flags) in [(caller, Kind::Client, 0x100), (quote, Kind::Server, 0x300), (lookup, Kind::Internal, 0x100)] {
            assert_eq!(span.span.kind, i32::from(kind), "{} is {kind:?}", span.span.name);
            assert_eq!(span.span.flags & 0x300, flags, "{} remote-parent flags", span.span.name);
        }
    }
    // The peer's log line is in the same trace as its handler.
    let records = receiver.log_records();
    let quote_ids: Vec<_> = quotes.iter().map(|q| (q.span.trace_id.clone(), q.span.span_id.clone())).collect();
    assert!(records.iter().any(|r| quote_ids.contains(&(r.trace_id.clone(), r.span_id.clone()))), "{records:#?}");
    handle.shutdown().unwrap();
}
