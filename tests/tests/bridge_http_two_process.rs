//! The HTTP middleware across two processes over real HTTP, decoded from OTLP: a request to this
//! process's axum server (under `HttpLayer`) -> its monitored handler call -> the client call
//! made by `outgoing()` -> the second process's request (under `HttpLayer`, `otlp_peer` with
//! `FLEXT_PEER_MIDDLEWARE=1`) -> its monitored calls: one trace, each span the previous one's
//! child, the correlation ID, the W3C `tracestate` and `baggage` carried end to end.

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use flext_obs::bridge::http::{HttpLayer, outgoing};
use flext_obs::export::http::serve_router;
use flext_obs::export::otlp::OtlpExporter;
use flext_obs::{Config, flext_monitor};
use flext_obs_tests::http;
use flext_obs_tests::otlp_receiver::{ReceivedSpan, Receiver};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

/// Where `checkout_through_peer`'s attribute is (the line after this constant).
const CHECKOUT_LINE: u32 = line!() + 1;
#[flext_monitor]
fn checkout_through_peer(peer: SocketAddr, item: &str) -> Result<String, String> {
    let mut request = axum::http::Request::get(format!("http://{peer}/served/{item}")).body(()).map_err(|e| e.to_string())?;
    let mut client = outgoing(&mut request);
    let headers: Vec<(String, String)> =
        request.headers().iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned())).collect();
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let answer = http::get(peer, &format!("/served/{item}"), &headers).map_err(|e| e.to_string())?;
    if answer.status != 200 {
        if let Some(client) = client.as_mut() {
            client.mark_error(format_args!("peer answered {}", answer.status));
        }
        return Err(answer.body);
    }
    Ok(answer.body)
}

async fn checkout(State(peer): State<SocketAddr>, Path(item): Path<String>) -> String {
    tokio::task::spawn_blocking({
        let context = flext_obs::context::current();
        move || context.run(|| checkout_through_peer(peer, &item))
    })
    .await
    .map_or_else(|e| e.to_string(), |r| r.unwrap_or_else(|e| e))
}

fn one<'a>(spans: &'a [ReceivedSpan], name: &str) -> &'a ReceivedSpan {
    let found: Vec<&ReceivedSpan> = spans.iter().filter(|s| s.span.name == name).collect();
    assert_eq!(found.len(), 1, "one {name}: {spans:#?}");
    found[0]
}

#[test]
fn one_trace_crosses_two_services_under_the_middleware() {
    let config = Config::builder().service_name("checkout-service").build().unwrap();
    flext_obs::init(config).unwrap();
    flext_obs::log::set_writer(std::io::sink());
    let receiver = Receiver::start();
    let settings = flext_obs::config::OtlpSettings { schedule_delay: Duration::from_millis(50), ..Default::default() };
    let handle =
        OtlpExporter::new(&receiver.endpoint()).unwrap().settings(settings).metrics(false).install(flext_obs::global().clone()).unwrap();

    let mut command = Command::new(env!("CARGO_BIN_EXE_otlp_peer"));
    command
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        .env("FLEXT_SERVICE_NAME", "quote-service")
        .env("FLEXT_PEER_MIDDLEWARE", "1")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100");
    let (mut peer, peer_addr) = flext_obs_tests::spawn_listening(command);

    let app =
        Router::new().route("/checkout/{item}", get(checkout)).with_state(peer_addr).layer(HttpLayer::new(flext_obs::global().clone()));
    let server = serve_router("127.0.0.1:0".parse().unwrap(), app).unwrap();
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let tracestate = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";
    let headers = [
        ("traceparent", traceparent),
        ("tracestate", tracestate),
        ("baggage", "tenant=acme%20corp,plan=gold"),
        ("x-correlation-id", "order-77"),
    ];
    let answer = http::get(server.local_addr(), "/checkout/book", &headers).unwrap();
    assert_eq!((answer.status, answer.body.as_str()), (200, "400"), "{answer:?}");
    assert_eq!(answer.headers["x-correlation-id"], "order-77");
    assert_eq!(http::request(peer_addr, "POST", "/stop", &[], "").unwrap().status, 200);
    assert!(peer.wait().unwrap().success(), "the peer flushed its exporter and exited cleanly");
    handle.flush().unwrap();
    server.shutdown();

    let spans = receiver.spans();
    let request = one(&spans, "GET /checkout/{item}");
    let handler = one(&spans, "checkout_through_peer");
    let client = one(&spans, "GET 127.0.0.1");
    let peer_request = one(&spans, "GET /served/{item}");
    let quote = one(&spans, "price_quote");
    let lookup = one(&spans, "lookup_price");
    let trace = hex(&request.span.trace_id);
    assert_eq!(trace, "0af7651916cd43dd8448eb211c80319c", "the caller's trace");
    assert_eq!(hex(&request.span.parent_span_id), "b7ad6b7169203331");
    for (child, parent) in [(handler, request), (client, handler), (peer_request, client), (quote, peer_request), (lookup, quote)] {
        assert_eq!(child.span.trace_id, request.span.trace_id, "{} in the trace", child.span.name);
        assert_eq!(child.span.parent_span_id, parent.span.span_id, "{} under {}", child.span.name, parent.span.name);
    }
    assert_eq!((request.service.as_str(), peer_request.service.as_str()), ("checkout-service", "quote-service"));
    for span in [request, handler, client, peer_request, quote] {
        assert_eq!(span.attr("correlation_id").as_deref(), Some("order-77"), "{} carries the correlation ID", span.span.name);
    }
    assert_eq!(peer_request.attr("http.route").as_deref(), Some("/served/{item}"));
    // The caller's tracestate on every span of both services, unchanged, and its baggage read by
    // the second service's monitored code (decoded).
    for span in [request, handler, client, peer_request, quote, lookup] {
        assert_eq!(span.span.trace_state, tracestate, "{} carries the tracestate", span.span.name);
    }
    assert_eq!(quote.attr("tenant").as_deref(), Some("acme corp"), "baggage crossed the hop");
    // Kinds: each request's span is a server, the outgoing call a client, the rest internal;
    // the servers' parents are remote (OTLP flags HAS_IS_REMOTE | IS_REMOTE), the others' not.
    for (span, kind, remote) in [
        (request, SpanKind::Server, true),
        (handler, SpanKind::Internal, false),
        (client, SpanKind::Client, false),
        (peer_request, SpanKind::Server, true),
        (quote, SpanKind::Internal, false),
        (lookup, SpanKind::Internal, false),
    ] {
        assert_eq!(span.span.kind, i32::from(kind), "{} is {kind:?}", span.span.name);
        assert_eq!(span.span.flags & 0x300, if remote { 0x300 } else { 0x100 }, "{} remote parent: {remote}", span.span.name);
    }
    assert_eq!(handler.attr("code.function.name").as_deref(), Some("bridge_http_two_process::checkout_through_peer"));
    assert_eq!(handler.attr("code.file.path").as_deref(), Some("tests/tests/bridge_http_two_process.rs"));
    assert_eq!(handler.attr("code.line.number").as_deref(), Some(CHECKOUT_LINE.to_string().as_str()), "the attribute's line");
    handle.shutdown().unwrap();
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, b| {
        use std::fmt::Write as _;
        let _ = write!(out, "{b:02x}");
        out
    })
}
