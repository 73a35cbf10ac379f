//! The `log` facade's logger (`bridge::log`): `log::info!` and friends, from the test and from
//! inside monitored calls, become flext-obs log entries with the context's IDs, their
//! key-values, target and origin; below `FLEXT_LOG_LEVEL` nothing is written; the entries are
//! in the `/logs` buffer. One logger per process: one test installs it.

use flext_obs::{LogLevel, flext_monitor};
use serde_json::Value;

#[flext_monitor]
fn charge(order: u64) -> Result<u64, String> {
    log::warn!(order = order, retry = true; "card declined, retrying");
    Ok(order)
}

#[test]
fn log_records_become_ecs_lines_with_the_context_ids_in_the_log_buffer() {
    let captured = flext_obs::log::capture();
    flext_obs::bridge::log::install().expect("the first logger of the process");
    assert!(flext_obs::bridge::log::install().is_err(), "a second install is refused");
    assert_eq!(log::max_level(), flext_obs::bridge::log::level_filter(flext_obs::global().config().log_level()));

    let request: flext_obs::CorrelationId = "req-77".parse().unwrap();
    flext_obs::context::with_correlation_id(request, || charge(42)).unwrap();
    log::debug!("below the default level: not written");
    log::error!(target: "payments::gateway", "gateway unreachable after {} tries", 3);

    let lines: Vec<Value> = captured.lines().iter().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let warn = &lines[0];
    assert_eq!(warn["log.level"], "warning");
    assert_eq!(warn["message"], "card declined, retrying");
    assert_eq!(warn["order"], 42);
    assert_eq!(warn["retry"], true);
    assert_eq!(warn["labels"]["correlation_id"], "req-77");
    assert_eq!(warn["log.logger"], module_path!());
    assert_eq!(warn["log.origin.file.line"], 11);
    assert!(warn["log.origin.file.name"].as_str().is_some_and(|f| f.ends_with("bridge_log.rs")), "{warn}");
    // Inside the monitored call: the call's span IDs.
    let trace_id = warn["trace.id"].as_str().expect("a trace ID inside a monitored call");
    assert_eq!(trace_id.len(), 32);
    assert!(warn["span.id"].as_str().is_some_and(|s| s.len() == 16));
    let error = &lines[1];
    assert_eq!((error["log.level"].as_str(), error["log.logger"].as_str()), (Some("error"), Some("payments::gateway")));
    assert_eq!(error["message"], "gateway unreachable after 3 tries");

    let recent = flext_obs::log::recent();
    let kept = recent.iter().find(|e| e.message() == "card declined, retrying").expect("in the /logs buffer");
    assert_eq!(kept.level(), LogLevel::Warning);
    assert_eq!(kept.trace_id().map(|t| t.to_string()).as_deref(), Some(trace_id));
}
