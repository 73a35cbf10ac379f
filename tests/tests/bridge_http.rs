//! The HTTP middleware (`bridge::http`) on a real axum server over loopback HTTP: the caller's
//! `traceparent` is continued (request call -> monitored handler calls, one trace), the
//! correlation ID is taken or made and echoed, the route template (never the raw path) names
//! the series (1,000 distinct paths, one series), 5xx are errors with `error_type`, the
//! in-flight gauge comes back to zero, and the client side injects the current context.

#![allow(clippy::float_cmp)] // exact counts are the point

use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use flext_obs::bridge::http::{ACTIVE_REQUESTS, HttpLayer, REQUEST_DURATION, outgoing};
use flext_obs::export::http::serve_router;
use flext_obs::store::SeriesValue;
use flext_obs::{context, flext_monitor};
use flext_obs_tests::{calls, http::get as http_get};

#[flext_monitor]
fn load_order(id: u64) -> Result<u64, String> {
    Ok(id * 2)
}

async fn order(Path(id): Path<u64>) -> String {
    let doubled = load_order(id).unwrap_or(0);
    let span = context::current().span().map(|s| format!("{}-{}", s.trace_id, s.span_id)).unwrap_or_default();
    format!("{doubled} {} {span}", context::correlation_id())
}

fn app() -> Router {
    Router::new()
        .route("/orders/{id}", get(order))
        .route("/fail", get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down") }))
        .layer(HttpLayer::new(flext_obs::global().clone()))
}

fn histogram_series(route: &str) -> Vec<(std::collections::BTreeMap<String, String>, u64)> {
    flext_obs::global()
        .snapshot()
        .series
        .into_iter()
        .filter(|s| s.name == REQUEST_DURATION && s.labels.get("http_route").is_some_and(|r| r == route))
        .filter_map(|s| match s.value {
            SeriesValue::Histogram(h) => Some((s.labels, h.count)),
            _ => None,
        })
        .collect()
}

#[test]
fn requests_continue_the_callers_trace_and_are_measured_per_route_template() {
    let server = serve_router("127.0.0.1:0".parse().unwrap(), app()).unwrap();
    let addr = server.local_addr();

    // A caller's trace and correlation ID are continued and echoed.
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let answer = http_get(addr, "/orders/21", &[("traceparent", traceparent), ("x-correlation-id", "req-900")]).unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.headers["x-correlation-id"], "req-900");
    let parts: Vec<&str> = answer.body.split(' ').collect();
    assert_eq!(parts[..2], ["42", "req-900"], "{}", answer.body);
    let (trace, handler_span) = parts[2].split_once('-').expect("the handler ran in a span");
    assert_eq!(trace, "4bf92f3577b34da6a3ce929d0e0e4736", "the caller's trace");
    let spans = &flext_obs::trace::traces()[&trace.parse().unwrap()];
    let request = spans.iter().find(|s| s.name() == "GET /orders/{id}").expect("the request's span");
    assert_eq!(request.parent_span_id().map(|p| p.to_string()).as_deref(), Some("00f067aa0ba902b7"));
    assert_eq!(request.span_id().to_string(), handler_span);
    assert_eq!(request.attributes().get("http.route").map(String::as_str), Some("/orders/{id}"));
    assert_eq!(request.attributes().get("http.response.status_code").map(String::as_str), Some("200"));
    assert_eq!(request.kind(), flext_obs::SpanKind::Server);
    let handler = spans.iter().find(|s| s.name() == "load_order").expect("the monitored handler call");
    assert_eq!(handler.kind(), flext_obs::SpanKind::Internal);
    assert_eq!(handler.parent_span_id(), Some(request.span_id()), "the handler's call is the request's child");

    // Without a correlation ID one is made, and echoed.
    let made = http_get(addr, "/orders/1", &[]).unwrap();
    let echoed = &made.headers["x-correlation-id"];
    assert!(!echoed.is_empty());
    assert!(made.body.contains(echoed.as_str()), "the handler saw the made ID: {}", made.body);

    // 1,000 distinct paths of one route: one series.
    for id in 0..1_000 {
        assert_eq!(http_get(addr, &format!("/orders/{id}"), &[]).unwrap().status, 200);
    }
    let series = histogram_series("/orders/{id}");
    assert_eq!(series.len(), 1, "{series:?}");
    assert_eq!(series[0].1, 1_002);
    assert_eq!(series[0].0["http_request_method"], "GET");
    assert_eq!(series[0].0["http_response_status_code"], "200");
    assert_eq!(calls("GET /orders/{id}", "ok"), 1_002.0);

    // A 5xx is an error, with error_type; an unknown path is `unmatched`, never its raw path.
    assert_eq!(http_get(addr, "/fail", &[]).unwrap().status, 503);
    let failed = histogram_series("/fail");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0["error_type"], "503");
    assert_eq!(calls("GET /fail", "error"), 1.0);
    // The request call's own duration: a failure without a type of its own is `_OTHER`.
    let call_duration = flext_obs::global()
        .snapshot()
        .series
        .iter()
        .filter(|s| s.name == "function_calls_duration_seconds" && s.labels.get("function").map(String::as_str) == Some("GET /fail"))
        .map(|s| s.labels.get("error_type").cloned())
        .collect::<Vec<_>>();
    assert_eq!(call_duration, [Some("_OTHER".to_owned()), None], "the failed call's series, labelled _OTHER (beside the route's own)");
    assert_eq!(http_get(addr, "/no/such/path", &[]).unwrap().status, 404);
    assert_eq!(histogram_series("unmatched").len(), 1);
    assert!(flext_obs::global().snapshot().series.iter().all(|s| !s.labels.values().any(|v| v.contains("no/such"))));
    // Nothing is in flight once every response is out.
    let active: f64 =
        flext_obs::global().snapshot().series.iter().filter(|s| s.name == ACTIVE_REQUESTS).filter_map(|s| s.value.scalar()).sum();
    assert_eq!(active, 0.0);
    server.shutdown();
}

#[flext_monitor]
fn call_inventory() -> (Option<String>, Option<String>, String) {
    let mut request = axum::http::Request::get("http://inventory.internal/stock/7").body(()).unwrap();
    let client_call = outgoing(&mut request);
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let ours = context::current().span().map(|s| s.trace_id.to_string()).unwrap();
    drop(client_call);
    (header("traceparent"), header("x-correlation-id"), ours)
}

#[test]
fn outgoing_requests_carry_the_current_trace_and_correlation_id() {
    let id: flext_obs::CorrelationId = "req-client".parse().unwrap();
    let (traceparent, correlation, trace) = context::with_correlation_id(id, call_inventory);
    let traceparent = traceparent.expect("a traceparent header");
    assert!(traceparent.starts_with(&format!("00-{trace}-")), "{traceparent} continues {trace}");
    assert_eq!(correlation.as_deref(), Some("req-client"));
    assert_eq!(calls("GET inventory.internal", "ok"), 1.0);
}
