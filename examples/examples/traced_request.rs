//! One request, followed end to end: a client sends `GET /checkout/{sku}` with a W3C
//! `traceparent` header; the service's monitored handlers call each other (one of them fails for
//! an unknown SKU), write JSON log lines that carry the trace, span and correlation IDs, and their
//! spans are exported over OTLP/HTTP.
//!
//! The spans go to `OTEL_EXPORTER_OTLP_ENDPOINT` when it is set (an OpenTelemetry collector,
//! Jaeger, Tempo, ...). Otherwise the example starts a small collector of its own on 127.0.0.1,
//! decodes what arrives with the official protobuf definitions, and prints the trace.
//!
//! Run with `cargo run -p flext-obs-examples --example traced_request`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use flext_obs::context::{Context, FutureExt as _};
use flext_obs::export::otlp::OtlpExporter;
use flext_obs::{Config, flext_monitor};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span as OtlpSpan;
use prost::Message as _;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};

#[flext_monitor]
fn price_of(sku: u32) -> Result<u32, String> {
    if sku >= 1000 {
        return Err(format!("sku {sku} is not in the catalogue"));
    }
    Ok(1999 + sku)
}

#[flext_monitor]
async fn reserve_stock(sku: u32) -> Result<u32, String> {
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    let price = price_of(sku)?;
    flext_obs::log::info("stock reserved", &[("sku", sku.into())]).ok();
    Ok(price)
}

#[flext_monitor]
async fn checkout(sku: u32) -> Result<String, String> {
    flext_obs::log::info("checkout started", &[("sku", sku.into())]).ok();
    match reserve_stock(sku).await {
        Ok(price) => Ok(format!("sku {sku}: {price} cents\n")),
        Err(err) => {
            flext_obs::log::error("checkout failed", &[("sku", sku.into()), ("error.message", err.clone().into())]).ok();
            Err(err)
        }
    }
}

/// The HTTP handler: reads the caller's trace context, then runs the monitored handler in it.
async fn checkout_route(headers: HeaderMap, Path(sku): Path<u32>) -> (StatusCode, String) {
    // Lenient, as a service edge should be: a malformed header is dropped (and logged), the
    // well-formed one next to it is kept.
    let extracted = Context::extract(&headers);
    let cx = extracted.context;
    for err in &extracted.rejected {
        cx.run(|| flext_obs::log::warning("propagation header dropped", &[("error.message", err.to_string().into())])).ok();
    }
    match checkout(sku).with_context(cx).await {
        Ok(body) => (StatusCode::OK, body),
        Err(err) => (StatusCode::NOT_FOUND, format!("{err}\n")),
    }
}

/// What the built-in collector received.
type Received = Arc<Mutex<Vec<OtlpSpan>>>;

async fn collect(State(received): State<Received>, body: Bytes) -> StatusCode {
    match ExportTraceServiceRequest::decode(body) {
        Ok(request) => {
            let spans = request.resource_spans.into_iter().flat_map(|r| r.scope_spans).flat_map(|s| s.spans);
            received.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(spans);
            StatusCode::OK
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

/// Sends one request with a `traceparent` header, the way an upstream service or a browser
/// with tracing would, and returns the status line.
fn send(addr: SocketAddr, path: &str, traceparent: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\ntraceparent: {traceparent}\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response.lines().next().unwrap_or_default().to_owned())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, b| {
        use std::fmt::Write as _;
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Prints the spans of one trace as a tree, children under their parents.
fn print_tree(spans: &[OtlpSpan], parent: &[u8], depth: usize) {
    for span in spans.iter().filter(|s| s.parent_span_id == parent) {
        let micros = span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano) / 1000;
        let status = span.status.as_ref().map_or_else(String::new, |s| format!("  error: {}", s.message));
        println!("{:indent$}{} ({} µs) span {}{status}", "", span.name, micros, hex(&span.span_id), indent = 2 + depth * 2);
        print_tree(spans, &span.span_id, depth + 1);
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The environment's configuration, with a service name of our own unless it names one.
    let config = Config::from_lookup(|var| {
        std::env::var(var).ok().or_else(|| (var == "FLEXT_SERVICE_NAME").then(|| "checkout-service".to_owned()))
    })?;
    let obs = flext_obs::init(config)?;

    // The collector: the one configured, or our own on 127.0.0.1.
    let received: Received = Arc::default();
    let endpoint = if let Some(endpoint) = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok().filter(|e| !e.is_empty()) {
        endpoint
    } else {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = Router::new().route("/v1/traces", post(collect)).route("/v1/{signal}", post(|| async { StatusCode::OK }));
        tokio::spawn(axum::serve(listener, app.with_state(Arc::clone(&received))).into_future());
        format!("http://{addr}")
    };
    let exporter = OtlpExporter::new(&endpoint)?.install(obs.clone())?;

    // The service.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let service = listener.local_addr()?;
    tokio::spawn(axum::serve(listener, Router::new().route("/checkout/{sku}", get(checkout_route))).into_future());
    println!("checkout service on http://{service}, exporting spans to {endpoint}\n");

    // Two incoming requests from an upstream whose trace we join; the JSON log lines they write
    // appear below, each with trace.id, span.id and the correlation ID.
    let upstream_trace = flext_obs::TraceId::random();
    let upstream_span = flext_obs::SpanId::random();
    let traceparent = format!("00-{upstream_trace}-{upstream_span}-01");
    let addr = service;
    let statuses = tokio::task::spawn_blocking(move || -> std::io::Result<[String; 2]> {
        Ok([send(addr, "/checkout/42", &traceparent)?, send(addr, "/checkout/4242", &traceparent)?])
    })
    .await??;
    println!("\nGET /checkout/42   -> {}\nGET /checkout/4242 -> {}", statuses[0], statuses[1]);

    tokio::task::spawn_blocking(move || exporter.shutdown()).await??;
    let spans = received.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_none() {
        let joined = spans.iter().filter(|s| hex(&s.trace_id) == upstream_trace.to_string()).count();
        println!("\nthe collector received {} spans, {joined} of them in the upstream trace {upstream_trace}:", spans.len());
        println!("  (upstream span {upstream_span})");
        print_tree(&spans, &upstream_span.to_bytes(), 1);
        if joined != 6 {
            return Err(format!("expected 6 spans in the upstream trace, got {joined}").into());
        }
    }
    Ok(())
}
