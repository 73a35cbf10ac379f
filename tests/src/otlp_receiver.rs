//! A loopback OTLP/HTTP receiver: accepts `POST` on any path whose last segment names a signal
//! (`/v1/traces`, `/v1/metrics`, `/v1/logs`, or a per-signal URL such as `/custom/traces`),
//! decodes each body with the official `opentelemetry-proto` messages (protobuf, or the
//! specification's JSON mapping through the same messages' serde form for `application/json`;
//! gunzipped first for `Content-Encoding: gzip`; a body that does not decode is answered 400 and
//! remembered as an error), and keeps what it received, with each request's path, headers and
//! arrival time.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::Method;
use axum::http::Uri;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use std::collections::VecDeque;
use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Request {
    /// When it arrived.
    pub at: Instant,
    /// Its path.
    pub path: String,
    /// Its headers (names lower-case).
    pub headers: Vec<(String, String)>,
    /// Its body as sent (still compressed if it was).
    pub body: Vec<u8>,
}

impl Request {
    /// The value of header `name` (lower-case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Received {
    traces: Vec<ExportTraceServiceRequest>,
    metrics: Vec<ExportMetricsServiceRequest>,
    logs: Vec<ExportLogsServiceRequest>,
    content_types: Vec<String>,
    requests: Vec<Request>,
    decode_errors: Vec<String>,
    /// Status and `Retry-After` seconds of the next answers.
    fail_next: VecDeque<(u16, Option<u32>)>,
    /// Spans the next trace answers say were rejected (`partial_success`).
    reject_next: VecDeque<(i64, String)>,
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
                let app = Router::new().fallback(dispatch).with_state(state);
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
        lock(&self.received).fail_next.extend(std::iter::repeat_n((status, None), n));
    }

    /// Answers the next `n` requests with `status` and `Retry-After: <seconds>`.
    pub fn fail_next_retry_after(&self, status: u16, n: usize, seconds: u32) {
        lock(&self.received).fail_next.extend(std::iter::repeat_n((status, Some(seconds)), n));
    }

    /// Takes the next trace request and answers that `rejected` of its spans were rejected.
    pub fn reject_next(&self, rejected: i64, message: &str) {
        lock(&self.received).reject_next.push_back((rejected, message.to_owned()));
    }

    /// Every request that arrived (answered or refused), in order.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.received).requests.clone()
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

/// Notes the request; `Some((status, retry_after))` when it must be refused.
fn admit(received: &Shared, path: &str, headers: &HeaderMap, body: &Bytes) -> Option<(StatusCode, Option<u32>)> {
    let mut received = lock(received);
    received.content_types.push(headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned());
    let headers = headers.iter().map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect();
    received.requests.push(Request { at: Instant::now(), path: path.to_owned(), headers, body: body.to_vec() });
    received.fail_next.pop_front().map(|(code, after)| (StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), after))
}

/// The body as sent: gunzipped when `Content-Encoding: gzip` (at most 64 MiB).
fn plain_body(headers: &HeaderMap, body: &Bytes) -> Result<Vec<u8>, String> {
    match headers.get("content-encoding").and_then(|v| v.to_str().ok()) {
        None | Some("identity") => Ok(body.to_vec()),
        Some("gzip") => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(body.as_ref()).take(64 << 20).read_to_end(&mut out).map_err(|e| format!("gzip: {e}"))?;
            Ok(out)
        }
        Some(other) => Err(format!("unknown content-encoding {other}")),
    }
}

/// Decodes one request as `R` (protobuf, or JSON for `application/json`), keeps it with `keep`
/// and answers with `answer` in the same encoding; a refused request gets its status, a body
/// that does not decode a 400 (and is remembered).
fn receive<R, A>(received: &Shared, headers: &HeaderMap, body: &Bytes, what: &str, keep: fn(&mut Received, R), answer: &A) -> Response
where
    R: Message + Default + serde::de::DeserializeOwned,
    A: Message + serde::Serialize,
{
    let json = headers.get("content-type").and_then(|v| v.to_str().ok()) == Some("application/json");
    let decoded = plain_body(headers, body).and_then(|plain| {
        if json {
            serde_json::from_slice::<R>(&plain).map_err(|e| e.to_string())
        } else {
            R::decode(plain.as_slice()).map_err(|e| e.to_string())
        }
    });
    match decoded {
        Ok(request) => {
            keep(&mut lock(received), request);
            let bytes = if json { serde_json::to_vec(answer).unwrap_or_default() } else { answer.encode_to_vec() };
            (StatusCode::OK, bytes).into_response()
        }
        Err(err) => {
            lock(received).decode_errors.push(format!("{what}: {err}"));
            (StatusCode::BAD_REQUEST, format!("{what}: {err}").into_bytes()).into_response()
        }
    }
}

async fn dispatch(State(received): State<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_owned();
    if method != Method::POST {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    if let Some((status, after)) = admit(&received, &path, &headers, &body) {
        let mut response = status.into_response();
        if let Some(seconds) = after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(seconds));
        }
        return response;
    }
    let last = path.rsplit('/').next().unwrap_or("");
    if last.contains("trace") {
        let reject = lock(&received).reject_next.pop_front();
        let answer = ExportTraceServiceResponse {
            partial_success: reject.map(|(rejected_spans, error_message)| ExportTracePartialSuccess { rejected_spans, error_message }),
        };
        receive::<ExportTraceServiceRequest, _>(&received, &headers, &body, "traces", |r, req| r.traces.push(req), &answer)
    } else if last.contains("metric") {
        receive::<ExportMetricsServiceRequest, _>(
            &received,
            &headers,
            &body,
            "metrics",
            |r, req| r.metrics.push(req),
            &ExportMetricsServiceResponse::default(),
        )
    } else if last.contains("log") {
        receive::<ExportLogsServiceRequest, _>(
            &received,
            &headers,
            &body,
            "logs",
            |r, req| r.logs.push(req),
            &ExportLogsServiceResponse::default(),
        )
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}
