//! The HTTP endpoint: `/metrics` (content negotiation), `/health`, `/ready`, `/snapshot`,
//! `/alerts`, `/traces`, `/logs`.
//!
//! Built on axum (the tokio project's router, on hyper): a well-kept server whose connection
//! handling lets a slow or half-sent request hold only its own connection. [`serve`] runs it on
//! a thread with its own runtime, so a synchronous program needs one call; axum users mount
//! [`router`] in their own app instead.
//!
//! ```
//! let server = flext_obs::export::http::serve("127.0.0.1:0".parse().unwrap())?;
//! println!("scrape http://{}/metrics", server.local_addr());
//! server.shutdown(); // graceful: in-flight requests finish
//! # Ok::<(), flext_obs::Error>(())
//! ```

use crate::api::Observability;
use crate::error::{Error, Result};
use crate::export::prometheus::{Format, render_export};
use crate::health::HealthRegistry;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::thread::JoinHandle;

#[derive(Clone)]
struct Shared {
    obs: Observability,
    health: HealthRegistry,
}

/// The endpoint's routes over `obs` and `health`, for mounting in an axum app. Unknown paths
/// answer 404 and other methods than GET 405.
pub fn router(obs: Observability, health: HealthRegistry) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health_report))
        .route("/ready", get(|| async { "ready\n" }))
        .route("/snapshot", get(snapshot))
        .route("/alerts", get(|| async { Json(crate::alert::recent()) }))
        .route("/traces", get(traces))
        .route("/logs", get(|| async { Json(crate::log::recent()) }))
        .with_state(Shared { obs, health })
}

async fn metrics(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    let format = Format::from_accept(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let export = shared.obs.store().export_snapshot();
    let spans = if format == Format::OpenMetrics { crate::trace::recent_spans() } else { Vec::new() };
    let body = render_export(&export, &spans, format);
    ([(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()))], body).into_response()
}

async fn health_report(State(shared): State<Shared>) -> Response {
    let report = shared.health.check_async().await;
    let status = StatusCode::from_u16(report.http_status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    (status, Json(report)).into_response()
}

/// The store's snapshot, with the recent log entries under `logs`.
async fn snapshot(State(shared): State<Shared>) -> Response {
    let mut body = serde_json::to_value(shared.obs.snapshot()).unwrap_or_default();
    if let Some(object) = body.as_object_mut() {
        object.insert("logs".to_owned(), serde_json::to_value(crate::log::recent()).unwrap_or_default());
    }
    Json(body).into_response()
}

async fn traces() -> Response {
    let traces: BTreeMap<String, Vec<crate::Span>> =
        crate::trace::traces().into_iter().map(|(id, spans)| (id.to_string(), spans)).collect();
    Json(traces).into_response()
}

/// A running endpoint. Dropping it shuts it down gracefully too.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// The address it listens on (the real port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections, lets in-flight requests finish, and waits for the thread.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Serves the process-wide instance ([`crate::global`]) and health registry
/// ([`crate::health::global`]) on `addr`, on a thread of its own.
pub fn serve(addr: SocketAddr) -> Result<Server> {
    serve_router(addr, router(crate::global().clone(), crate::health::global().clone()))
}

/// Serves on `FLEXT_METRICS_ADDR` when it is set (see [`crate::Config`]); `Ok(None)` when not.
pub fn serve_from_config(config: &crate::Config) -> Result<Option<Server>> {
    config.metrics_addr().map(serve).transpose()
}

/// Serves any router (for example [`router`] over an instance of your own) on `addr`.
pub fn serve_router(addr: SocketAddr, app: Router) -> Result<Server> {
    let bind_error = |e: std::io::Error| Error::invalid("http", "address", addr, format!("cannot listen: {e}"));
    let listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(bind_error)?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
    let thread = std::thread::Builder::new()
        .name("flext-obs-http".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => listener,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                let server = axum::serve(listener, app).with_graceful_shutdown(async {
                    let _ = stopped.await;
                });
                if let Err(err) = server.await {
                    eprintln!("flext-obs: HTTP endpoint stopped: {err}");
                }
            });
        })
        .map_err(bind_error)?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(Server { addr: local, stop: Some(stop), thread: Some(thread) }),
        Ok(Err(e)) => Err(bind_error(e)),
        Err(_) => Err(Error::invalid("http", "address", addr, "the server thread ended before listening")),
    }
}
