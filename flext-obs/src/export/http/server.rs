//! The serve loop: accepting within the connection limit, serving each connection with hyper
//! under its deadlines ([`super::conn`]), and stopping within the shutdown deadline.
//!
//! axum's own `serve` has no timeouts and no connection limit, so connections are served here
//! with hyper's HTTP/1 connection builder directly. The runtime is multi-threaded with a small,
//! fixed number of workers plus a bounded blocking pool for rendering; it belongs to the server's
//! thread and is dropped without waiting for renders still running, so a shutdown never
//! outlasts its deadline by more than a moment.

use super::conn::{Expired, Guarded, Phase, Timeouts, TrackedBody};
use crate::config::HttpSettings;
use crate::error::{Error, Result};
use crate::store::{Counter, Gauge, Store};
use axum::Router;
use hyper::body::Incoming;
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::task::JoinSet;

/// Wait after an accept error (out of file descriptors, ...) before accepting again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// Time given to aborted connections to close their sockets after the shutdown deadline.
const ABORT_GRACE: Duration = Duration::from_millis(200);

/// What a server did with its connections so far (see [`Server::stats`]). With [`super::serve`]
/// and [`super::serve_with`] the same counts are in the store: `flext_http_connections` (open),
/// `flext_http_connections_refused_total` and `flext_http_connections_closed_total{reason}`
/// (`header_timeout`, `idle_timeout`, `write_timeout`, `shutdown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ServerStats {
    /// Connections open now.
    pub open: u64,
    /// Connections accepted and served.
    pub accepted: u64,
    /// Connections closed at once because `max_connections` were open.
    pub refused: u64,
    /// Connections closed because a request head did not arrive in time (slowloris).
    pub header_timeouts: u64,
    /// Kept-alive connections closed after waiting `idle_timeout` for a request.
    pub idle_timeouts: u64,
    /// Connections dropped, with their response, after a write made no progress in time.
    pub write_timeouts: u64,
    /// Connections still open at the shutdown deadline, dropped.
    pub dropped_at_shutdown: u64,
}

/// The counters, and their mirrors in a store when there is one.
#[derive(Default)]
struct Stats {
    open: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    header_timeouts: AtomicU64,
    idle_timeouts: AtomicU64,
    write_timeouts: AtomicU64,
    dropped_at_shutdown: AtomicU64,
    mirror: Option<Mirror>,
}

struct Mirror {
    open: Gauge,
    refused: Counter,
    header_timeouts: Counter,
    idle_timeouts: Counter,
    write_timeouts: Counter,
    dropped_at_shutdown: Counter,
}

impl Mirror {
    fn new(store: &Store) -> Result<Self> {
        let closed = |reason: &str| store.counter("flext_http_connections_closed_total", &[("reason", reason)]);
        Ok(Mirror {
            open: store.gauge("flext_http_connections", &[])?,
            refused: store.counter("flext_http_connections_refused_total", &[])?,
            header_timeouts: closed("header_timeout")?,
            idle_timeouts: closed("idle_timeout")?,
            write_timeouts: closed("write_timeout")?,
            dropped_at_shutdown: closed("shutdown")?,
        })
    }
}

impl Stats {
    fn add(&self, counter: &AtomicU64, mirror: impl FnOnce(&Mirror)) {
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some(m) = &self.mirror {
            mirror(m);
        }
    }

    fn read(&self) -> ServerStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ServerStats {
            open: get(&self.open),
            accepted: get(&self.accepted),
            refused: get(&self.refused),
            header_timeouts: get(&self.header_timeouts),
            idle_timeouts: get(&self.idle_timeouts),
            write_timeouts: get(&self.write_timeouts),
            dropped_at_shutdown: get(&self.dropped_at_shutdown),
        }
    }
}

/// Counts a connection open for as long as it lives (also when its task is aborted).
struct OpenConnection(Arc<Stats>);

impl OpenConnection {
    fn new(stats: Arc<Stats>) -> Self {
        stats.open.fetch_add(1, Ordering::Relaxed);
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        if let Some(m) = &stats.mirror {
            m.open.increment();
        }
        OpenConnection(stats)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
        if let Some(m) = &self.0.mirror {
            m.open.decrement();
        }
    }
}

/// A running endpoint. [`shutdown`](Server::shutdown) (or dropping it) stops it within the
/// shutdown deadline.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.read().fmt(f)
    }
}

impl Server {
    /// The address it listens on (the real port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// What it did with its connections so far.
    ///
    /// ```
    /// let server = flext_obs::export::http::serve_router("127.0.0.1:0".parse().unwrap(), axum::Router::new())?;
    /// assert_eq!(server.stats().refused, 0);
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn stats(&self) -> ServerStats {
        self.stats.read()
    }

    /// Stops accepting, lets in-flight requests finish until the shutdown deadline
    /// ([`HttpSettings::shutdown_timeout`]), drops the connections still open then, and waits
    /// for the server's thread (which does not wait for renders still running).
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
    /// Same as [`Server::shutdown`]: bounded by the shutdown deadline.
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Serves any router (for example [`super::router`] over an instance of your own) on `addr`
/// with the default [`HttpSettings`] bounds.
pub fn serve_router(addr: SocketAddr, app: Router) -> Result<Server> {
    serve_router_with(addr, app, &HttpSettings::default())
}

/// Serves any router on `addr` within `settings`' bounds (its routes and token are
/// [`super::router_with`]'s business).
///
/// ```
/// use flext_obs::config::HttpSettings;
/// use std::time::Duration;
/// let settings = HttpSettings { shutdown_timeout: Duration::from_millis(500), ..HttpSettings::default() };
/// let app = flext_obs::export::http::router(flext_obs::global().clone(), flext_obs::health::global().clone());
/// let server = flext_obs::export::http::serve_router_with("127.0.0.1:0".parse().unwrap(), app, &settings)?;
/// server.shutdown();
/// # Ok::<(), flext_obs::Error>(())
/// ```
pub fn serve_router_with(addr: SocketAddr, app: Router, settings: &HttpSettings) -> Result<Server> {
    start(addr, app, settings, None)
}

/// Starts the server thread; counts into `store` when given.
pub(super) fn start(addr: SocketAddr, app: Router, settings: &HttpSettings, store: Option<&Store>) -> Result<Server> {
    settings.validate()?;
    let bind_error = |e: std::io::Error| Error::invalid("http", "address", addr, format!("cannot listen: {e}"));
    let stats = Arc::new(Stats { mirror: store.map(Mirror::new).transpose()?, ..Stats::default() });
    let listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.workers)
        .max_blocking_threads(settings.render_threads)
        .thread_name("flext-obs-http")
        .enable_all()
        .build()
        .map_err(bind_error)?;
    let (stop, stopped) = oneshot::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
    let loop_stats = stats.clone();
    let settings = settings.clone();
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
                accept_loop(listener, app, &settings, &loop_stats, stopped).await;
            });
            // Renders still running on the blocking pool are not waited for.
            runtime.shutdown_background();
        })
        .map_err(bind_error)?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(Server { addr: local, stop: Some(stop), thread: Some(thread), stats }),
        Ok(Err(e)) => Err(bind_error(e)),
        Err(_) => Err(Error::invalid("http", "address", addr, "the server thread ended before listening")),
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    app: Router,
    settings: &HttpSettings,
    stats: &Arc<Stats>,
    mut stopped: oneshot::Receiver<()>,
) {
    let limit = Arc::new(Semaphore::new(settings.max_connections));
    let timeouts = Timeouts { header_read: settings.header_read_timeout, idle: settings.idle_timeout, write: settings.write_timeout };
    let (drain, draining) = watch::channel(false);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let Ok(permit) = limit.clone().try_acquire_owned() else {
                        stats.add(&stats.refused, |m| m.refused.increment());
                        drop(stream);
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let open = OpenConnection::new(stats.clone());
                    let (app, stats, draining) = (app.clone(), stats.clone(), draining.clone());
                    connections.spawn(async move {
                        serve_connection(stream, app, timeouts, &stats, draining).await;
                        drop((open, permit));
                    });
                }
                Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
            },
        }
    }
    drop(listener);
    let _ = drain.send(true);
    let deadline = tokio::time::Instant::now() + settings.shutdown_timeout;
    let _ = tokio::time::timeout_at(deadline, async { while connections.join_next().await.is_some() {} }).await;
    for _ in 0..connections.len() {
        stats.add(&stats.dropped_at_shutdown, |m| m.dropped_at_shutdown.increment());
    }
    connections.abort_all();
    let _ = tokio::time::timeout(ABORT_GRACE, async { while connections.join_next().await.is_some() {} }).await;
}

/// Serves one connection until it closes, a deadline closes it, or the server drains it.
async fn serve_connection(
    stream: tokio::net::TcpStream,
    app: Router,
    timeouts: Timeouts,
    stats: &Stats,
    mut draining: watch::Receiver<bool>,
) {
    let phase = Phase::new();
    let io = TokioIo::new(Guarded::new(stream, phase.clone(), timeouts));
    let app = TowerToHyperService::new(app);
    let service_phase = phase.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        service_phase.serving();
        let (response, phase) = (app.call(request), service_phase.clone());
        async move { response.await.map(|r| r.map(|body| TrackedBody::new(body, phase))) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // hyper's own head timer runs from when it waits for a head, idle time included: a
    // backstop behind the per-phase deadlines of `Guarded`.
    builder.timer(TokioTimer::new()).header_read_timeout(timeouts.idle + timeouts.header_read);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        () = async { drop(draining.wait_for(|d| *d).await) } => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.as_mut().await;
        }
    }
    match phase.expired() {
        Some(Expired::HeaderRead) => stats.add(&stats.header_timeouts, |m| m.header_timeouts.increment()),
        Some(Expired::Idle) => stats.add(&stats.idle_timeouts, |m| m.idle_timeouts.increment()),
        Some(Expired::Write) => stats.add(&stats.write_timeouts, |m| m.write_timeouts.increment()),
        None => {}
    }
}
