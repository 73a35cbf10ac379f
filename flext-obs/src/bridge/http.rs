//! HTTP middleware for axum and hyper servers ([`HttpLayer`], a `tower` layer) and the client
//! side ([`outgoing`]), so a request's trace and correlation ID cross service edges without
//! code in every handler.
//!
//! For every request the layer reads `traceparent`, `tracestate` and `baggage` (the formats
//! `OTEL_PROPAGATORS` asks for) and `x-correlation-id` (a request without a correlation ID gets
//! a new one, echoed in the response), opens a monitored call named
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
use crate::monitor::{Call, CallSite};
use crate::store::{Gauge, Histogram};
use axum::http::{HeaderValue, Method, Request, Response};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
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
    routes: Arc<Routes>,
}

/// What each route needs per request, made on its first request: its call site and series
/// handles (so a request takes two map look-ups under a read lock, not store look-ups by
/// name and labels).
#[derive(Debug)]
struct Routes {
    obs: Observability,
    /// By method, then route template; bounded by the router's routes times the known methods.
    by_method: RwLock<HashMap<&'static str, HashMap<String, Arc<Route>>>>,
}

#[derive(Debug)]
struct Route {
    /// The route template (`unmatched` when no route matched).
    name: String,
    site: Option<&'static CallSite>,
    active: Option<Gauge>,
    /// The duration histogram by status code (and `error_type` for 5xx).
    durations: RwLock<HashMap<u16, Option<Histogram>>>,
}

impl Routes {
    fn route(&self, method: &'static str, route: &str) -> Arc<Route> {
        if let Some(found) = self.by_method.read().unwrap_or_else(PoisonError::into_inner).get(method).and_then(|m| m.get(route)) {
            return Arc::clone(found);
        }
        let made = Arc::new(Route {
            name: route.to_owned(),
            site: crate::monitor::site_named_as(&format!("{method} {route}"), crate::SpanKind::Server).ok(),
            active: self.obs.store().gauge(ACTIVE_REQUESTS, &[("http_request_method", method), ("http_route", route)]).ok(),
            durations: RwLock::default(),
        });
        let mut write = self.by_method.write().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(write.entry(method).or_default().entry(route.to_owned()).or_insert(made))
    }
}

impl Route {
    fn duration(&self, obs: &Observability, method: &str, status: u16) -> Option<Histogram> {
        let route = self.name.as_str();
        if let Some(found) = self.durations.read().unwrap_or_else(PoisonError::into_inner).get(&status) {
            return found.clone();
        }
        let code = status.to_string();
        let mut labels = vec![("http_request_method", method), ("http_route", route), ("http_response_status_code", code.as_str())];
        if status >= 500 {
            labels.push(("error_type", code.as_str()));
        }
        let histogram = obs.store().histogram(REQUEST_DURATION, &labels).ok();
        self.durations.write().unwrap_or_else(PoisonError::into_inner).entry(status).or_insert(histogram).clone()
    }
}

impl HttpLayer {
    /// A layer recording the HTTP metrics into `obs` (the spans and the monitored calls go
    /// where every monitored call goes).
    pub fn new(obs: Observability) -> Self {
        // Refused only when the name already has other bounds: those stay.
        let _ = obs.store().set_buckets(REQUEST_DURATION, &DURATION_BOUNDS);
        HttpLayer { routes: Arc::new(Routes { obs, by_method: RwLock::default() }) }
    }
}

impl<S> tower_layer::Layer<S> for HttpLayer {
    type Service = HttpService<S>;
    fn layer(&self, inner: S) -> HttpService<S> {
        HttpService { inner, routes: Arc::clone(&self.routes) }
    }
}

/// The service [`HttpLayer`] wraps around a handler.
#[derive(Debug, Clone)]
pub struct HttpService<S> {
    inner: S,
    routes: Arc<Routes>,
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
        let matched = request.extensions().get::<axum::extract::MatchedPath>();
        let route = self.routes.route(method, matched.map_or(UNMATCHED, axum::extract::MatchedPath::as_str));
        let incoming = Context::extract_with(request.headers(), self.routes.obs.config().propagators()).context;
        let correlation = incoming.correlation_id().unwrap_or_default(); // a new one when absent
        let incoming = incoming.with_correlation_id(correlation);
        // The call starts in the caller's context (its span is the caller's child), and the
        // handler's context is made there too, so it keeps the request's tracestate and baggage.
        let (mut call, context) = incoming.run(|| {
            let call = route.site.map(Call::enter_async);
            let context = call.as_ref().map_or_else(crate::context::current, Call::context);
            (call, context)
        });
        if let Some(call) = call.as_mut().filter(|c| c.is_recording()) {
            call.record_field("http.request.method", &method);
            call.record_field("http.route", &route.name);
        }
        if let Some(active) = &route.active {
            active.increment();
        }
        // The handler's synchronous part runs in the context too.
        let inner = context.clone().run(|| self.inner.call(request));
        ResponseFuture {
            inner: inner.with_context(context),
            state: Some(InFlight { call, obs: self.routes.obs.clone(), route, method, correlation, start: Instant::now() }),
        }
    }
}

/// What a request in flight carries until its response.
struct InFlight {
    call: Option<Call>,
    obs: Observability,
    route: Arc<Route>,
    method: &'static str,
    correlation: CorrelationId,
    start: Instant,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(active) = &self.route.active {
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
            let failed = status.is_server_error();
            if let Some(histogram) = state.route.duration(&state.obs, state.method, status.as_u16()) {
                histogram.record_duration(elapsed);
            }
            if let Some(call) = state.call.as_mut() {
                if call.is_recording() {
                    call.record_field("http.response.status_code", &status.as_u16());
                }
                if failed {
                    call.mark_error(format_args!("{} {} answered {status}", state.method, state.route.name));
                }
            }
        } else if let Some(call) = state.call.as_mut() {
            // No response, so no status code to record the duration under.
            call.mark_error(format_args!("{} {} failed before a response", state.method, state.route.name));
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
/// trace) whose context is written into the request's `traceparent` (with the `tracestate`
/// it continues), `baggage` and `x-correlation-id`, as `OTEL_PROPAGATORS` asks. Keep the returned call until the response has come, then drop it (call
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
    let site = crate::monitor::site_named_as(&format!("{method} {host}"), crate::SpanKind::Client).ok();
    let call = site.map(Call::enter_async);
    let context = call.as_ref().map_or_else(crate::context::current, Call::context);
    let context = if context.correlation_id().is_some() { context } else { context.with_correlation_id(crate::context::correlation_id()) };
    context.inject_with(request.headers_mut(), crate::api::instance().config().propagators());
    call
}
