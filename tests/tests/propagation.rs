//! W3C `tracestate` and `baggage` cross the service edge: checked against the official
//! OpenTelemetry propagators in both directions, carried by the context into monitored calls,
//! threads and tasks, put on the spans (kind SERVER for a call made in an extracted context),
//! and bounded by the specification's limits.

use flext_obs::SpanKind;
use flext_obs::config::Propagators;
use flext_obs::context::{self, BAGGAGE, Baggage, Context, FutureExt, MAX_BAGGAGE_MEMBERS, TRACESTATE, TraceState};
use opentelemetry::baggage::BaggageExt as _;
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{SpanContext as OtelSpanContext, TraceContextExt as _, TraceFlags, TraceState as OtelTraceState};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use std::collections::HashMap;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn upstream_headers() -> Vec<(&'static str, &'static str)> {
    vec![
        ("traceparent", TRACEPARENT),
        ("tracestate", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
        ("baggage", "userId=alice,serverNode=DF%2028;ttl=60"),
        ("baggage", "tenant=acme"),
    ]
}

#[test]
fn what_we_inject_the_official_propagators_read() {
    let cx = Context::extract(&upstream_headers()).context;
    let mut headers: HashMap<String, String> = HashMap::new();
    cx.inject(&mut headers);
    assert_eq!(headers[TRACESTATE], "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", "carried unchanged");

    let otel = TraceContextPropagator::new().extract(&headers);
    let span = otel.span().span_context().clone();
    assert_eq!(span.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(span.trace_state().get("rojo"), Some("00f067aa0ba902b7"));
    assert_eq!(span.trace_state().get("congo"), Some("t61rcWkgMzE"));
    let otel = BaggagePropagator::new().extract(&headers);
    let baggage = otel.baggage();
    assert_eq!(baggage.get("userId").map(ToString::to_string).as_deref(), Some("alice"));
    assert_eq!(baggage.get("serverNode").map(ToString::to_string).as_deref(), Some("DF 28"), "decoded by them");
    assert_eq!(baggage.get("tenant").map(ToString::to_string).as_deref(), Some("acme"), "both headers, one list");
    assert_eq!(baggage.len(), 3);
}

#[test]
fn what_the_official_propagators_inject_we_read() {
    let state = OtelTraceState::from_key_value([("vendor1", "v1"), ("tenant@sys", "x y")]).unwrap();
    let span = OtelSpanContext::new(
        opentelemetry::trace::TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
        opentelemetry::trace::SpanId::from_hex("00f067aa0ba902b7").unwrap(),
        TraceFlags::SAMPLED,
        true,
        state,
    );
    let otel_cx = opentelemetry::Context::new()
        .with_remote_span_context(span)
        .with_baggage([opentelemetry::KeyValue::new("note", "a,b;c=d ü"), opentelemetry::KeyValue::new("plan", "gold")]);
    let mut headers: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(&otel_cx, &mut headers);
    BaggagePropagator::new().inject_context(&otel_cx, &mut headers);

    let extracted = Context::extract(&headers);
    assert!(extracted.rejected.is_empty(), "{:?}", extracted.rejected);
    let cx = extracted.context;
    assert_eq!(cx.span().map(|s| s.trace_id.to_string()).as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    assert!(cx.is_remote());
    let tracestate = cx.tracestate().unwrap();
    assert_eq!((tracestate.get("vendor1"), tracestate.get("tenant@sys")), (Some("v1"), Some("x y")));
    let baggage = cx.baggage().unwrap();
    assert_eq!(baggage.get("note"), Some("a,b;c=d ü"), "their encoding, our decoding");
    assert_eq!(baggage.get("plan"), Some("gold"));
}

#[test]
fn a_bad_tracestate_is_dropped_whole_and_never_read_without_a_traceparent() {
    let extracted = Context::extract(&[("traceparent", TRACEPARENT), ("tracestate", "ok=1,Bad=2")]);
    assert!(extracted.context.span().is_some(), "the traceparent is kept");
    assert_eq!(extracted.context.tracestate(), None);
    assert_eq!(extracted.rejected.len(), 1);
    assert!(extracted.rejected[0].to_string().contains("tracestate"), "{}", extracted.rejected[0]);

    let extracted = Context::extract(&[("tracestate", "ok=1")]);
    assert_eq!(extracted.context.tracestate(), None, "W3C: no tracestate without a traceparent");
    assert!(extracted.rejected.is_empty());

    let too_many = (0..33).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join(",");
    let extracted = Context::extract(&[("traceparent", TRACEPARENT), ("tracestate", too_many.as_str())]);
    assert_eq!(extracted.context.tracestate(), None);
    assert_eq!(extracted.rejected.len(), 1);
}

#[test]
fn baggage_is_bounded_on_the_way_in_and_on_the_way_out() {
    let many = (0..100).map(|i| format!("k{i}=v{i}")).collect::<Vec<_>>().join(",");
    let extracted = Context::extract(&[(BAGGAGE, many.as_str())]);
    let baggage = extracted.context.baggage().unwrap();
    assert_eq!(baggage.len(), MAX_BAGGAGE_MEMBERS);
    assert_eq!(baggage.get("k63"), Some("v63"));
    assert_eq!(baggage.get("k64"), None);
    assert_eq!(extracted.rejected.len(), 1, "one error for the members past the limit");
    let huge = format!("big={}", "x".repeat(9000));
    let extracted = Context::extract(&[(BAGGAGE, huge.as_str()), ("x-correlation-id", "req-1")]);
    assert_eq!(extracted.context.baggage(), None);
    assert!(extracted.context.correlation_id().is_some(), "the rest of the request's context is kept");
    let mut headers: HashMap<String, String> = HashMap::new();
    Context::extract(&[(BAGGAGE, many.as_str())]).context.inject(&mut headers);
    assert!(headers[BAGGAGE].len() <= flext_obs::context::MAX_BAGGAGE_BYTES);
    assert_eq!(BaggagePropagator::new().extract(&headers).baggage().len(), MAX_BAGGAGE_MEMBERS, "and they read all of it");
}

#[test]
fn propagators_choose_what_is_read_and_written() {
    let none = Propagators { tracecontext: false, baggage: false };
    let cx = Context::extract_with(&upstream_headers(), none).context;
    assert_eq!((cx.span(), cx.tracestate(), cx.baggage()), (None, None, None));
    let full = Context::extract(&upstream_headers()).context;
    let mut headers: HashMap<String, String> = HashMap::new();
    full.inject_with(&mut headers, Propagators { tracecontext: false, baggage: true });
    assert!(!headers.contains_key("traceparent") && !headers.contains_key(TRACESTATE));
    assert!(headers.contains_key(BAGGAGE));
}

#[flext_obs::flext_monitor]
fn handle_request() -> Result<(HashMap<String, String>, Option<String>), std::fmt::Error> {
    let mut outgoing = HashMap::new();
    context::current().inject(&mut outgoing);
    Ok((outgoing, load_rows()))
}

#[flext_obs::flext_monitor]
fn load_rows() -> Option<String> {
    context::current().baggage().and_then(|b| b.get("tenant").map(str::to_owned))
}

#[test]
fn a_call_made_in_an_extracted_context_is_its_server_span_and_carries_the_tracestate() {
    let _ = flext_obs::global();
    let cx = Context::extract(&upstream_headers()).context;
    let (outgoing, tenant) = cx.run(handle_request).unwrap();
    assert_eq!(tenant.as_deref(), Some("acme"), "baggage reaches nested monitored calls");
    assert_eq!(outgoing[TRACESTATE], "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", "passed on unchanged");
    assert_eq!(BaggagePropagator::new().extract(&outgoing).baggage().len(), 3, "baggage passed on");
    assert!(outgoing["traceparent"].starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "same trace");
    assert!(!outgoing["traceparent"].contains("00f067aa0ba902b7"), "the call's own span is the parent downstream");

    let spans = flext_obs::trace::recent_spans();
    let server = spans
        .iter()
        .find(|s| s.name() == "handle_request" && s.parent_span_id().map(|p| p.to_string()).as_deref() == Some("00f067aa0ba902b7"));
    let server = server.expect("the request's span");
    assert_eq!(server.kind(), SpanKind::Server, "a call continuing an extracted context serves that request");
    assert_eq!(server.trace_state(), Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"));
    let child = spans.iter().find(|s| s.name() == "load_rows" && s.parent_span_id() == Some(server.span_id())).expect("its child");
    assert_eq!(child.kind(), SpanKind::Internal, "the parent of a nested call is local");
    assert_eq!(child.trace_state(), server.trace_state(), "the trace's tracestate stays with its spans");

    // Under a local span (with_span), a call that injects its context into a request is that
    // request's CLIENT; its nested call, which injects nothing, stays INTERNAL.
    let local_parent = flext_obs::SpanId::random();
    let local = Context::new().with_span(flext_obs::context::SpanContext { span_id: local_parent, ..cx.span().unwrap() });
    local.run(handle_request).unwrap();
    let spans = flext_obs::trace::recent_spans();
    let client = spans.iter().find(|s| s.name() == "handle_request" && s.parent_span_id() == Some(local_parent)).unwrap();
    assert_eq!(client.kind(), SpanKind::Client, "its context went out in a request");
    let nested = spans.iter().find(|s| s.name() == "load_rows" && s.parent_span_id() == Some(client.span_id())).unwrap();
    assert_eq!(nested.kind(), SpanKind::Internal);
}

#[test]
fn baggage_follows_work_into_threads_and_tasks() {
    let baggage = Baggage::new().with("tenant", "acme").unwrap();
    let cx = Context::new().with_baggage(baggage).with_tracestate("v=1".parse::<TraceState>().unwrap());
    let on_thread = std::thread::spawn(cx.clone().wrap(|| context::current().baggage().and_then(|b| b.get("tenant").map(str::to_owned))));
    assert_eq!(on_thread.join().unwrap().as_deref(), Some("acme"));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let seen = runtime.block_on(async {
        let task = cx.run(|| {
            async {
                tokio::task::yield_now().await;
                context::current().baggage().and_then(|b| b.get("tenant").map(str::to_owned))
            }
            .with_current_context()
        });
        tokio::spawn(task).await.unwrap()
    });
    assert_eq!(seen.as_deref(), Some("acme"));
    assert_eq!(context::current().baggage(), None, "and never leaks into the thread that spawned it");
    // Empty ones are no tracestate and no baggage: nothing is written for them.
    let empty = Context::new().with_tracestate(TraceState::default()).with_baggage(Baggage::new());
    assert_eq!(empty, Context::new());
    assert_eq!(context::current().tracestate(), None);
}
