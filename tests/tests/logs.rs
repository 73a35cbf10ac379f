//! Structured JSON logs: ECS field names, correlation and trace IDs from the context (also for
//! `tracing` events through the layer), level filtering, reserved names, the bounded buffer.
//! One test function: the log output is process-wide.

use flext_obs::{Config, LogLevel, flext_monitor};
use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt;

#[flext_monitor]
fn handle_request(user: u32) -> Result<u32, String> {
    flext_obs::log::info("loading user", &[("user.id", user.into())]).map_err(|e| e.to_string())?;
    tracing::info!(user, cached = false, "user loaded");
    tracing::debug!("below the configured level");
    Ok(user)
}

fn parse(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

#[test]
fn json_lines_carry_ecs_fields_and_the_context_ids() {
    flext_obs::init(Config::builder().service_name("log-test").log_level(LogLevel::Info).build().unwrap()).unwrap();
    let captured = flext_obs::log::capture();
    let correlation = flext_obs::CorrelationId::new();
    let subscriber = tracing_subscriber::registry().with(flext_obs::log::JsonLayer::new());
    tracing::subscriber::with_default(subscriber, || {
        flext_obs::context::with_correlation_id(correlation, || handle_request(7)).unwrap();
    });
    let lines: Vec<Value> = captured.lines().iter().map(|l| parse(l)).collect();
    assert_eq!(lines.len(), 2, "the debug event is filtered out: {lines:?}");
    let span = flext_obs::trace::recent_spans().into_iter().find(|s| s.name() == "handle_request").unwrap();
    for line in &lines {
        assert_eq!(line["service.name"], "log-test");
        assert_eq!(line["trace.id"], span.trace_id().to_string(), "the monitored call's trace");
        assert_eq!(line["span.id"], span.span_id().to_string(), "the monitored call's span");
        assert_eq!(line["transaction.id"], correlation.to_string());
        assert_eq!(line["labels"]["correlation_id"], correlation.to_string());
        let stamp = line["@timestamp"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(stamp).is_ok() && stamp.ends_with('Z'), "{stamp}");
        assert_eq!(line["log.level"], "info");
    }
    assert_eq!((lines[0]["message"].as_str(), &lines[0]["user.id"]), (Some("loading user"), &Value::from(7)));
    assert_eq!(
        (lines[1]["message"].as_str(), &lines[1]["user"], &lines[1]["cached"]),
        (Some("user loaded"), &Value::from(7), &Value::from(false))
    );
    assert_eq!(lines[1]["log.logger"], "logs");

    // Outside any call: a fresh correlation ID, no trace; error fields and reserved names.
    let before = captured.lines().len();
    std::thread::spawn(|| {
        flext_obs::log::error(
            "payment failed",
            &[("error.type", "Declined".into()), ("error.message", "card declined".into()), ("message", "user text".into())],
        )
        .unwrap();
        flext_obs::log::debug("not written", &[]).unwrap();
        assert!(flext_obs::log::info(" ", &[]).is_err(), "an empty message is refused");
    })
    .join()
    .unwrap();
    let lines = captured.lines();
    assert_eq!(lines.len(), before + 1);
    let line = parse(&lines[before]);
    assert_eq!((line["error.type"].as_str(), line["error.message"].as_str()), (Some("Declined"), Some("card declined")));
    assert_eq!(line["message"], "payment failed");
    assert_eq!(line["field.message"], "user text", "a field named like an ECS field is moved aside");
    assert!(line["trace.id"].is_null());
    assert!(line["transaction.id"].is_string());

    // The buffer keeps the most recent entries only.
    for i in 0..1_010 {
        flext_obs::log::info(&format!("line {i}"), &[]).unwrap();
    }
    let recent = flext_obs::log::recent();
    assert_eq!(recent.len(), flext_obs::log::RECENT_LOGS);
    assert_eq!(recent.last().unwrap().message(), "line 1009");
}
