//! A loopback OTLP/HTTP receiver: accepts `POST /v1/traces`, `/v1/metrics` and `/v1/logs`,
//! decodes each body with the official `opentelemetry-proto` messages (a body that does not
//! decode is answered 400 and remembered as an error), and keeps what it received.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Default)]
struct Received {
    traces: Vec<ExportTraceServiceRequest>,
    metrics: Vec<ExportMetricsServiceRequest>,
    logs: Vec<ExportLogsServiceRequest>,
    content_types: Vec<String>,
    decode_errors: Vec<String>,
    fail_next: VecDeque<u16>,
}

type Shared = Arc<Mutex<Received>>;

/// A running receiver; stops when dropped.
#[derive(Debug)]
pub struct Receiver {
    addr: SocketAddr,
    received: Shared,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Received").field("traces", &self.traces.len()).finish_non_exhaustive()
    }
}

/// A span as received, with its resource's service name and version.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    /// `service.name` of the resource.
    pub service: String,
    /// `service.version` of the resource, if sent.
    pub version: Option<String>,
    /// The span.
    pub span: Span,
}

impl ReceivedSpan {
    /// A string attribute of the span.
    pub fn attr(&self, key: &str) -> Option<String> {
        string_attr(&self.span.attributes, key)
    }
}

/// A string attribute among `attributes`.
pub fn string_attr(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        other => Some(format!("{other:?}")),
    })
}

fn lock(received: &Shared) -> std::sync::MutexGuard<'_, Received> {
    received.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Receiver {
    /// Starts a receiver on a free 127.0.0.1 port.
    ///
    /// # Panics
    /// When no port or runtime can be had.
    pub fn start() -> Self {
        let received: Shared = Arc::default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let addr = listener.local_addr().expect("local address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = Arc::clone(&received);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                let app = Router::new()
                    .route("/v1/traces", post(traces))
                    .route("/v1/metrics", post(metrics))
                    .route("/v1/logs", post(logs))
                    .with_state(state);
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        Receiver { addr, received, stop: Some(stop), thread: Some(thread) }
    }

    /// `http://127.0.0.1:<port>`, the value for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers the next `n` requests with `status` (and no body).
    pub fn fail_next(&self, status: u16, n: usize) {
        lock(&self.received).fail_next.extend(std::iter::repeat_n(status, n));
    }

    /// Every span received, in arrival order.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        let received = lock(&self.received);
        let mut out = Vec::new();
        for request in &received.traces {
            for resource in &request.resource_spans {
                let attributes = resource.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or_default();
                let service = string_attr(attributes, "service.name").unwrap_or_default();
                let version = string_attr(attributes, "service.version");
                for scope in &resource.scope_spans {
                    out.extend(scope.spans.iter().map(|span| ReceivedSpan {
                        service: service.clone(),
                        version: version.clone(),
                        span: span.clone(),
                    }));
                }
            }
        }
        out
    }

    /// Every trace request received.
    pub fn trace_requests(&self) -> Vec<ExportTraceServiceRequest> {
        lock(&self.received).traces.clone()
    }

    /// Every metrics request received.
    pub fn metric_requests(&self) -> Vec<ExportMetricsServiceRequest> {
        lock(&self.received).metrics.clone()
    }

    /// Every log record received.
    pub fn log_records(&self) -> Vec<LogRecord> {
        lock(&self.received)
            .logs
            .iter()
            .flat_map(|r| r.resource_logs.iter())
            .flat_map(|r| r.scope_logs.iter())
            .flat_map(|s| s.log_records.iter().cloned())
            .collect()
    }

    /// The `Content-Type` of every request, in order.
    pub fn content_types(&self) -> Vec<String> {
        lock(&self.received).content_types.clone()
    }

    /// Bodies that did not decode.
    pub fn decode_errors(&self) -> Vec<String> {
        lock(&self.received).decode_errors.clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Notes the request; `Some(status)` when it must be refused.
fn admit(received: &Shared, headers: &HeaderMap) -> Option<StatusCode> {
    let mut received = lock(received);
    received.content_types.push(headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned());
    received.fail_next.pop_front().map(|code| StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
}

/// Decodes one request as `R`, keeps it with `keep` and answers with an empty `A`; a refused
/// request gets its status, a body that does not decode a 400 (and is remembered).
fn receive<R: Message + Default, A: Message + Default>(
    received: &Shared,
    headers: &HeaderMap,
    body: Bytes,
    what: &str,
    keep: fn(&mut Received, R),
) -> (StatusCode, Vec<u8>) {
    if let Some(status) = admit(received, headers) {
        return (status, Vec::new());
    }
    match R::decode(body) {
        Ok(request) => {
            keep(&mut lock(received), request);
            (StatusCode::OK, A::default().encode_to_vec())
        }
        Err(err) => {
            lock(received).decode_errors.push(format!("{what}: {err}"));
            (StatusCode::BAD_REQUEST, format!("{what}: {err}").into_bytes())
        }
    }
}

async fn traces(State(received): State<Shared>, headers: HeaderMap, body: Bytes) -> (StatusCode, Vec<u8>) {
    receive::<ExportTraceServiceRequest, ExportTraceServiceResponse>(&received, &headers, body, "traces", |r, req| r.traces.push(req))
}

async fn metrics(State(received): State<Shared>, headers: HeaderMap, body: Bytes) -> (StatusCode, Vec<u8>) {
    receive::<ExportMetricsServiceRequest, ExportMetricsServiceResponse>(&received, &headers, body, "metrics", |r, req| r.metrics.push(req))
}

async fn logs(State(received): State<Shared>, headers: HeaderMap, body: Bytes) -> (StatusCode, Vec<u8>) {
    receive::<ExportLogsServiceRequest, ExportLogsServiceResponse>(&received, &headers, body, "logs", |r, req| r.logs.push(req))
}
