//! HTTP middleware for axum and hyper servers ([`HttpLayer`], a `tower` layer) and the client
//! side ([`outgoing`]), so a request's trace and correlation ID cross service edges without
//! code in every handler.
//!
//! For every request the layer reads `traceparent` and `x-correlation-id` (a request without a
//! correlation ID gets a new one, echoed in the response), opens a monitored call named
//! `METHOD route` (the route template from axum's `MatchedPath`, never the raw path: one series
//! per route however many paths hit it; `unmatched` when no route matched) whose span continues
//! the caller's trace, runs the handler in that call's context (so monitored calls and log lines
//! below carry the IDs), and records OpenTelemetry's HTTP server metrics:
//! `http_server_request_duration_seconds` (`http.server.request.duration`: labels
//! `http_request_method`, `http_route`, `http_response_status_code`, and `error_type` for 5xx)
//! and the in-flight gauge `http_server_active_requests`. A 5xx response is an error of the
//! call (its alert and `result="error"`); a request dropped before its response (the client went
//! away) is counted as cancelled.
//!
//! ```
//! use axum::{Router, routing::get};
//! let app: Router = Router::new()
//!     .route("/orders/{id}", get(|| async { "order" }))
//!     .layer(flext_obs::bridge::http::HttpLayer::new(flext_obs::global().clone()));
//! # let _ = app;
//! ```

use crate::api::Observability;
use crate::context::{CORRELATION_ID, Context, FutureExt as _, WithContext};
use crate::entity::CorrelationId;
use crate::monitor::Call;
use crate::store::{Gauge, Histogram};
use axum::http::{HeaderValue, Method, Request, Response};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

/// `http.server.request.duration` as Prometheus names it.
pub const REQUEST_DURATION: &str = "http_server_request_duration_seconds";
/// `http.server.active_requests`.
pub const ACTIVE_REQUESTS: &str = "http_server_active_requests";
/// The route label of requests no route matched.
pub const UNMATCHED: &str = "unmatched";
/// The bounds OpenTelemetry's semantic conventions advise for `http.server.request.duration`.
pub const DURATION_BOUNDS: [f64; 14] = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];

/// The `tower` layer (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct HttpLayer {
    obs: Observability,
}

impl HttpLayer {
    /// A layer recording the HTTP metrics into `obs` (the spans and the monitored calls go
    /// where every monitored call goes).
    pub fn new(obs: Observability) -> Self {
        // Refused only when the name already has other bounds: those stay.
        let _ = obs.store().set_buckets(REQUEST_DURATION, &DURATION_BOUNDS);
        HttpLayer { obs }
    }
}

impl<S> tower_layer::Layer<S> for HttpLayer {
    type Service = HttpService<S>;
    fn layer(&self, inner: S) -> HttpService<S> {
        HttpService { inner, obs: self.obs.clone() }
    }
}

/// The service [`HttpLayer`] wraps around a handler.
#[derive(Debug, Clone)]
pub struct HttpService<S> {
    inner: S,
    obs: Observability,
}

/// `method` as the `http.request.method` convention writes it: the known methods, else `_OTHER`
/// (a client cannot make series with made-up methods).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "_OTHER",
    }
}

impl<S, B, R> tower_service::Service<Request<B>> for HttpService<S>
where
    S: tower_service::Service<Request<B>, Response = Response<R>>,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let method = method_label(request.method());
        let route: String =
            request.extensions().get::<axum::extract::MatchedPath>().map_or_else(|| UNMATCHED.to_owned(), |p| p.as_str().to_owned());
        let incoming = Context::extract(request.headers()).context;
        let correlation = incoming.correlation_id().unwrap_or_default() /* a new one */;
        let incoming = incoming.with_correlation_id(correlation);
        // The call starts in the caller's context: its span is the caller's child.
        let mut call = incoming.run(|| crate::monitor::call_async(&format!("{method} {route}")).ok());
        let context = call.as_ref().map_or(incoming, Call::context);
        if let Some(call) = call.as_mut() {
            call.record_field("http.request.method", &method);
            call.record_field("http.route", &route);
        }
        let labels = [("http_request_method", method), ("http_route", route.as_str())];
        let active = self.obs.store().gauge(ACTIVE_REQUESTS, &labels).ok();
        if let Some(active) = &active {
            active.increment();
        }
        // The handler's synchronous part runs in the context too.
        let inner = context.run(|| self.inner.call(request));
        ResponseFuture {
            inner: inner.with_context(context),
            state: Some(InFlight { call, active, obs: self.obs.clone(), method, route, correlation, start: Instant::now() }),
        }
    }
}

/// What a request in flight carries until its response.
struct InFlight {
    call: Option<Call>,
    active: Option<Gauge>,
    obs: Observability,
    method: &'static str,
    route: String,
    correlation: CorrelationId,
    start: Instant,
}

impl InFlight {
    fn duration(&self, status: &str, error_type: Option<&str>) -> Option<Histogram> {
        let mut labels =
            vec![("http_request_method", self.method), ("http_route", self.route.as_str()), ("http_response_status_code", status)];
        if let Some(error_type) = error_type {
            labels.push(("error_type", error_type));
        }
        self.obs.store().histogram(REQUEST_DURATION, &labels).ok()
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(active) = &self.active {
            active.decrement();
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`HttpService`]: the handler's, polled in the request's context.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: WithContext<F>,
        state: Option<InFlight>,
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, R, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<R>, E>>,
{
    type Output = Result<Response<R>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        let Some(mut state) = this.state.take() else { return Poll::Ready(result) };
        let elapsed = state.start.elapsed();
        if let Ok(response) = &result {
            let status = response.status();
            let code = status.as_str().to_owned();
            let failed = status.is_server_error();
            if let Some(histogram) = state.duration(&code, failed.then_some(code.as_str())) {
                histogram.record_duration(elapsed);
            }
            if let Some(call) = state.call.as_mut() {
                call.record_field("http.response.status_code", &code);
                if failed {
                    call.mark_error(format_args!("{} {} answered {status}", state.method, state.route));
                }
            }
        } else {
            if let Some(histogram) = state.duration("", Some("_OTHER")) {
                histogram.record_duration(elapsed);
            }
            if let Some(call) = state.call.as_mut() {
                call.mark_error(format_args!("{} {} failed before a response", state.method, state.route));
            }
        }
        let correlation = state.correlation;
        drop(state); // the call ends here, before the response leaves
        Poll::Ready(result.map(|mut response| {
            if !response.headers().contains_key(CORRELATION_ID) {
                if let Ok(value) = HeaderValue::from_str(&correlation.to_string()) {
                    response.headers_mut().insert(CORRELATION_ID, value);
                }
            }
            response
        }))
    }
}

/// Prepares an outgoing request: a monitored call named `METHOD host` (the client side of the
/// trace) whose context is written into the request's `traceparent` and `x-correlation-id`.
/// Keep the returned call until the response has come, then drop it (call
/// [`Call::mark_error`] first when the request failed).
///
/// ```
/// let mut request = axum::http::Request::get("http://inventory.internal/stock/7").body(()).unwrap();
/// let call = flext_obs::bridge::http::outgoing(&mut request);
/// assert!(request.headers().contains_key("traceparent"));
/// // ... send it, read the response ...
/// drop(call);
/// ```
pub fn outgoing<B>(request: &mut Request<B>) -> Option<Call> {
    let method = method_label(request.method());
    let host = request.uri().host().unwrap_or("unknown").to_owned();
    let call = crate::monitor::call_async(&format!("{method} {host}")).ok();
    let context = call.as_ref().map_or_else(crate::context::current, Call::context);
    let context = if context.correlation_id().is_some() { context } else { context.with_correlation_id(crate::context::correlation_id()) };
    context.inject(request.headers_mut());
    call
}
