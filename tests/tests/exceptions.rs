//! A failed monitored call writes an exception log record (OpenTelemetry's `exception.type`,
//! `exception.message`, `exception.stacktrace` for a panic with `RUST_BACKTRACE` set) tied to its
//! span, in the `/logs` buffer and OTLP logs (not as JSON lines on the console); the
//! per-function rate bounds them and counts, exactly, what it leaves out.

use flext_obs::export::otlp::OtlpExporter;
use flext_obs::{Config, flext_monitor};
use flext_obs_tests::otlp_receiver::{Receiver, string_attr};
use std::time::Duration;

#[flext_monitor]
fn parse_port(text: &str) -> Result<u16, std::num::ParseIntError> {
    text.parse()
}

#[flext_monitor]
fn must_parse(text: &str) -> u16 {
    text.parse().expect("a port number")
}

#[flext_monitor]
fn flaky(n: u32) -> Result<u32, String> {
    Err(format!("attempt {n} failed"))
}

fn field<'a>(line: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    line.get(key).and_then(serde_json::Value::as_str)
}

#[test]
fn failed_calls_write_exception_records_tied_to_their_spans_within_the_rate() {
    // Panics capture backtraces only when the environment asks, read once per process: the
    // test runs itself again with RUST_BACKTRACE=1.
    if std::env::var("RUST_BACKTRACE").as_deref() != Ok("1") {
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "failed_calls_write_exception_records_tied_to_their_spans_within_the_rate", "--nocapture"])
            .env("RUST_BACKTRACE", "1")
            .status()
            .unwrap();
        assert!(status.success(), "the run with RUST_BACKTRACE=1 failed");
        return;
    }
    let config = Config::builder().service_name("exceptions").exception_logs_per_second(5).build().unwrap();
    flext_obs::init(config).unwrap();
    let captured = flext_obs::log::capture();
    let receiver = Receiver::start();
    let settings = flext_obs::config::OtlpSettings { schedule_delay: Duration::from_millis(50), ..Default::default() };
    let handle =
        OtlpExporter::new(&receiver.endpoint()).unwrap().settings(settings).metrics(false).install(flext_obs::global().clone()).unwrap();

    assert_eq!(parse_port("8080"), Ok(8080), "a call that does not fail writes nothing");
    assert!(parse_port("80x").is_err());
    assert!(std::panic::catch_unwind(|| must_parse("nope")).is_err());
    handle.flush().unwrap();

    assert!(captured.lines().iter().all(|l| !l.contains("\"exception.type\"")), "not printed: {:?}", captured.lines());
    let lines: Vec<serde_json::Value> = flext_obs::log::recent()
        .iter()
        .map(|entry| serde_json::from_str(&flext_obs::log::to_json_line(entry, "exceptions")).unwrap())
        .collect();
    let exceptions: Vec<&serde_json::Value> = lines.iter().filter(|l| field(l, "event.name") == Some("exception")).collect();
    assert_eq!(exceptions.len(), 2, "{lines:#?}");
    let spans = flext_obs::trace::recent_spans();
    let parse_span = spans.iter().find(|s| s.name() == "parse_port" && s.status() == flext_obs::SpanStatus::Error).unwrap();
    let parse = exceptions[0];
    assert_eq!(field(parse, "exception.type"), Some("core::num::error::ParseIntError"));
    assert_eq!(field(parse, "exception.message"), Some("invalid digit found in string"));
    assert_eq!(field(parse, "log.level"), Some("error"));
    assert_eq!(field(parse, "trace.id"), Some(parse_span.trace_id().to_string().as_str()), "tied to the failed call's trace");
    assert_eq!(field(parse, "span.id"), Some(parse_span.span_id().to_string().as_str()), "and span");
    assert!(field(parse, "exception.stacktrace").is_none(), "an error value has no backtrace");
    let panic = exceptions[1];
    assert_eq!(field(panic, "exception.type"), Some("panic"));
    assert!(field(panic, "exception.message").is_some_and(|m| m.starts_with("a port number")), "{panic}");
    let stacktrace = field(panic, "exception.stacktrace").expect("RUST_BACKTRACE asked for one");
    assert!(stacktrace.contains("must_parse"), "the panic's own stack: {stacktrace}");

    let records = receiver.log_records();
    let exported: Vec<_> = records.iter().filter(|r| string_attr(&r.attributes, "event.name").as_deref() == Some("exception")).collect();
    assert_eq!(exported.len(), 2, "in OTLP logs too");
    assert_eq!(string_attr(&exported[0].attributes, "exception.type").as_deref(), Some("core::num::error::ParseIntError"));
    assert_eq!(exported[0].span_id, parse_span.span_id().to_bytes().to_vec());
    assert_eq!(exported[0].event_name, "exception", "OTLP's own event field");

    // The rate: at most 5 per second for `flaky`; the rest are counted, exactly.
    for n in 0..40 {
        let _ = flaky(n);
    }
    let written = flext_obs::log::recent()
        .iter()
        .filter(|entry| entry.fields().get("exception.type").and_then(serde_json::Value::as_str) == Some("alloc::string::String"))
        .count();
    let dropped = flext_obs::global()
        .snapshot()
        .series
        .iter()
        .filter(|s| s.name == flext_obs::monitor::EXCEPTION_LOGS_DROPPED && s.labels.get("function").map(String::as_str) == Some("flaky"))
        .map(|s| match s.value {
            flext_obs::store::SeriesValue::Counter { value } => value,
            _ => 0.0,
        })
        .sum::<f64>();
    assert!((5..=15).contains(&written), "the rate holds (a second may turn during the loop): {written}");
    #[allow(clippy::cast_precision_loss)]
    let total = written as f64 + dropped;
    assert!((total - 40.0).abs() < f64::EPSILON, "every failure written or counted: {written} + {dropped}");
    handle.shutdown().unwrap();
}
