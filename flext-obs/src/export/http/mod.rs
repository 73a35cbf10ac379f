//! The HTTP endpoint: `/metrics` (content negotiation), `/health`, `/ready`, and opt-in
//! `/snapshot`, `/alerts`, `/traces`, `/logs` and the live page `/ui` (module [`ui`]).
//!
//! It runs inside someone else's process, so every connection is bounded ([`HttpSettings`]):
//! a request head must arrive within `header_read_timeout` (slowloris clients are closed), a
//! kept-alive connection waits `idle_timeout` for its next request, a write that makes no
//! progress for `write_timeout` drops the connection with its response, at most
//! `max_connections` are held (more are closed as soon as they are accepted), rendering runs on
//! a small bounded pool off the threads that accept, and a shutdown (or drop) waits at most
//! `shutdown_timeout` for in-flight requests. Only `/metrics`, `/health` and `/ready` are served
//! unless [`Routes`](crate::config::Routes) asks for more, since the others show error text, log
//! fields and span attributes; a bearer token can guard them (and every route).
//!
//! Routes are axum's (on hyper); connections are served by hyper's HTTP/1 server under those
//! deadlines (the modules `server` and `conn`). [`serve`] runs it on a thread with its own runtime, so a
//! synchronous program needs one call; axum users mount [`router_with`] in their own app instead.
//!
//! ```
//! let server = flext_obs::export::http::serve("127.0.0.1:0".parse().unwrap())?;
//! println!("scrape http://{}/metrics", server.local_addr());
//! server.shutdown(); // in-flight requests finish, up to the shutdown deadline
//! # Ok::<(), flext_obs::Error>(())
//! ```

mod conn;
mod routes;
mod server;
pub mod ui;

pub use routes::{router, router_with};
pub use server::{Server, ServerStats, serve_router, serve_router_with};

use crate::api::Observability;
use crate::config::HttpSettings;
use crate::error::Result;
use crate::health::HealthRegistry;
use std::net::SocketAddr;

/// Serves the process-wide instance ([`crate::global`]) and health registry
/// ([`crate::health::global`]) on `addr`, on a thread of its own, with the routes and bounds of
/// the global configuration ([`crate::Config::http`], from the `FLEXT_HTTP_*` variables).
pub fn serve(addr: SocketAddr) -> Result<Server> {
    let obs = crate::global().clone();
    let settings = obs.config().http().clone();
    serve_with(addr, obs, crate::health::global().clone(), &settings)
}

/// Serves `obs` and `health` on `addr` with `settings`' routes, token and bounds; its
/// connection counts go into `obs`'s store (see [`ServerStats`]).
///
/// ```
/// use flext_obs::config::{HttpSettings, Routes};
/// let settings = HttpSettings { routes: Routes { alerts: true, ..Routes::NONE }, ..HttpSettings::default() };
/// let obs = flext_obs::global().clone();
/// let server = flext_obs::export::http::serve_with("127.0.0.1:0".parse().unwrap(), obs, flext_obs::health::global().clone(), &settings)?;
/// # server.shutdown();
/// # Ok::<(), flext_obs::Error>(())
/// ```
pub fn serve_with(addr: SocketAddr, obs: Observability, health: HealthRegistry, settings: &HttpSettings) -> Result<Server> {
    settings.validate()?;
    let store = obs.store().clone();
    server::start(addr, router_with(obs, health, settings), settings, Some(&store))
}

/// Serves on `FLEXT_METRICS_ADDR` when it is set (see [`crate::Config`]), with its
/// `FLEXT_HTTP_*` settings; `Ok(None)` when not.
pub fn serve_from_config(config: &crate::Config) -> Result<Option<Server>> {
    let Some(addr) = config.metrics_addr() else { return Ok(None) };
    serve_with(addr, crate::global().clone(), crate::health::global().clone(), config.http()).map(Some)
}
