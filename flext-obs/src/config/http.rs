//! The HTTP endpoint's settings: its bounds (timeouts, connections, threads), which routes it
//! serves and the bearer token that guards them. Read from `FLEXT_HTTP_*` (see the table in
//! [`crate::config`]) or set in code; [`HttpSettings::validate`] refuses what could not work.

use super::env::{env_err, parse_bool, parse_count, parse_millis};
use crate::error::{Error, Result};
use std::fmt;
use std::time::Duration;

/// The longest any endpoint timeout may be.
const MAX_TIMEOUT: Duration = super::MAX_WAIT;
/// The most connections the endpoint may be told to hold.
const MAX_CONNECTIONS: usize = 65_536;
/// The most threads of each kind.
const MAX_THREADS: usize = 64;
/// The longest bearer token accepted.
const MAX_TOKEN_LEN: usize = 512;

/// The routes that are off unless asked for: they show error text, log fields, span
/// attributes and system details, which may hold secrets. `/metrics`, `/health` and `/ready`
/// are always served.
///
/// ```
/// use flext_obs::config::Routes;
/// assert_eq!(Routes::parse("snapshot, logs")?, Routes { snapshot: true, logs: true, ..Routes::NONE });
/// assert_eq!(Routes::parse("all")?, Routes::ALL);
/// assert!(Routes::parse("metrics").is_err());
/// # Ok::<(), flext_obs::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(clippy::struct_excessive_bools)] // one switch per route, set by name
pub struct Routes {
    /// `/snapshot`: the whole store and the recent log entries.
    pub snapshot: bool,
    /// `/alerts`: the recent alerts, with the errors' text.
    pub alerts: bool,
    /// `/traces`: the recent spans, with their attributes.
    pub traces: bool,
    /// `/logs`: the recent log entries, with their fields.
    pub logs: bool,
    /// `/ui`: a live page in the browser (functions, latencies, callers, traces, alerts,
    /// health, logs), and `/ui/data`, the JSON it polls, which shows what the four routes above
    /// show.
    pub ui: bool,
}

impl Routes {
    /// Only `/metrics`, `/health` and `/ready` (the default).
    pub const NONE: Routes = Routes { snapshot: false, alerts: false, traces: false, logs: false, ui: false };
    /// Every opt-in route.
    pub const ALL: Routes = Routes { snapshot: true, alerts: true, traces: true, logs: true, ui: true };
    /// The names [`parse`](Routes::parse) accepts besides `all` and `none`.
    pub const NAMES: &'static [&'static str] = &["snapshot", "alerts", "traces", "logs", "ui"];

    /// Reads a comma-separated list of [`NAMES`](Routes::NAMES), or `all`, or `none`.
    pub fn parse(list: &str) -> Result<Routes> {
        let mut routes = Routes::NONE;
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name.to_ascii_lowercase().as_str() {
                "all" => routes = Routes::ALL,
                "none" => {}
                "snapshot" => routes.snapshot = true,
                "alerts" => routes.alerts = true,
                "traces" => routes.traces = true,
                "logs" => routes.logs = true,
                "ui" => routes.ui = true,
                _ => {
                    return Err(Error::UnknownVariant {
                        kind: "HTTP route",
                        value: name.to_owned(),
                        expected: &["snapshot", "alerts", "traces", "logs", "ui", "all", "none"],
                    });
                }
            }
        }
        Ok(routes)
    }
}

/// A bearer token; its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(String);

impl BearerToken {
    /// Checks the RFC 6750 syntax (letters, digits, `-._~+/`, then `=` padding) and length
    /// (1 to 512 characters). The error does not repeat the token.
    ///
    /// ```
    /// use flext_obs::config::BearerToken;
    /// assert!(BearerToken::new("s3cr3t-t0ken").is_ok());
    /// assert!(BearerToken::new("has space").unwrap_err().to_string().contains("<redacted>"));
    /// ```
    pub fn new(token: impl Into<String>) -> Result<Self> {
        let token = token.into();
        let body = token.trim_end_matches('=');
        let valid =
            !body.is_empty() && token.len() <= MAX_TOKEN_LEN && body.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
        if valid {
            Ok(BearerToken(token))
        } else {
            Err(Error::invalid(
                "HttpSettings",
                "token",
                "<redacted>",
                "must be 1 to 512 characters: letters, digits, - . _ ~ + /, then = padding",
            ))
        }
    }

    /// The token's text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

/// How the HTTP endpoint serves: its bounds, routes and token.
///
/// ```
/// use flext_obs::config::{HttpSettings, Routes};
/// use std::time::Duration;
/// let settings = HttpSettings {
///     routes: Routes { alerts: true, ..Routes::NONE },
///     write_timeout: Duration::from_secs(2),
///     ..HttpSettings::default()
/// };
/// let config = flext_obs::Config::builder().http(settings.clone()).build()?;
/// assert_eq!(config.http().max_connections, 1024);
/// assert!(flext_obs::Config::builder().http(HttpSettings { workers: 0, ..settings }).build().is_err());
/// # Ok::<(), flext_obs::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// How long a new connection may take to send a whole request head, and a kept-alive one
    /// from the first byte of its next request to the end of its head (default 5 s). Slowloris
    /// clients are closed after it.
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request (default 15 s).
    pub idle_timeout: Duration,
    /// How long a write may make no progress before the connection is dropped with its
    /// response (default 10 s): a client that stops reading pins nothing longer.
    pub write_timeout: Duration,
    /// How long a shutdown (or drop) of the server waits for in-flight requests before it drops
    /// their connections (default 5 s).
    pub shutdown_timeout: Duration,
    /// Connections held at once; more are closed as soon as they are accepted (default 1,024;
    /// keep it below the process's file-descriptor limit).
    pub max_connections: usize,
    /// Threads that serve connections (default 2).
    pub workers: usize,
    /// Threads that render responses (`/metrics`, `/snapshot`, ...) off the connection threads
    /// (default 2).
    pub render_threads: usize,
    /// The opt-in routes served (default none).
    pub routes: Routes,
    /// A bearer token the opt-in routes require (`401` without it), and every route with
    /// [`token_all_routes`](Self::token_all_routes) (default none).
    pub token: Option<BearerToken>,
    /// Whether the token guards `/metrics`, `/health` and `/ready` too (default false).
    pub token_all_routes: bool,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            header_read_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(15),
            write_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(5),
            max_connections: 1024,
            workers: 2,
            render_threads: 2,
            routes: Routes::NONE,
            token: None,
            token_all_routes: false,
        }
    }
}

impl HttpSettings {
    /// Checks every bound: timeouts from 1 ms to 1 hour, 1 to 65,536 connections, 1 to 64
    /// threads of each kind, and a token when `token_all_routes` asks for one.
    ///
    /// ```
    /// use flext_obs::config::HttpSettings;
    /// let err = HttpSettings { shutdown_timeout: std::time::Duration::MAX, ..HttpSettings::default() }.validate().unwrap_err();
    /// assert!(err.to_string().starts_with("invalid HttpSettings.shutdown_timeout"), "{err}");
    /// ```
    pub fn validate(&self) -> Result<()> {
        for (field, timeout) in [
            ("header_read_timeout", self.header_read_timeout),
            ("idle_timeout", self.idle_timeout),
            ("write_timeout", self.write_timeout),
            ("shutdown_timeout", self.shutdown_timeout),
        ] {
            if timeout < Duration::from_millis(1) || timeout > MAX_TIMEOUT {
                return Err(Error::invalid("HttpSettings", field, timeout, "must be from 1ms to 1h"));
            }
        }
        if !(1..=MAX_CONNECTIONS).contains(&self.max_connections) {
            return Err(Error::invalid("HttpSettings", "max_connections", self.max_connections, "must be from 1 to 65536"));
        }
        for (field, threads) in [("workers", self.workers), ("render_threads", self.render_threads)] {
            if !(1..=MAX_THREADS).contains(&threads) {
                return Err(Error::invalid("HttpSettings", field, threads, "must be from 1 to 64"));
            }
        }
        if self.token_all_routes && self.token.is_none() {
            return Err(Error::invalid("HttpSettings", "token_all_routes", true, "needs a token"));
        }
        Ok(())
    }

    /// Reads the `FLEXT_HTTP_*` variables through `get` (which treats empty as unset) over the
    /// defaults.
    pub(super) fn from_vars(get: &dyn Fn(&'static str) -> Option<(&'static str, String)>) -> Result<Self> {
        let mut http = HttpSettings::default();
        let bounded = |var: &'static str, v: &str, max: usize| {
            parse_count(var, v, 1).ok().filter(|n| *n <= max).ok_or_else(|| env_err(var, v, format!("a whole number from 1 to {max}")))
        };
        if let Some((var, v)) = get("FLEXT_HTTP_HEADER_TIMEOUT_MS") {
            http.header_read_timeout = parse_millis(var, &v)?;
        }
        if let Some((var, v)) = get("FLEXT_HTTP_IDLE_TIMEOUT_MS") {
            http.idle_timeout = parse_millis(var, &v)?;
        }
        if let Some((var, v)) = get("FLEXT_HTTP_WRITE_TIMEOUT_MS") {
            http.write_timeout = parse_millis(var, &v)?;
        }
        if let Some((var, v)) = get("FLEXT_HTTP_SHUTDOWN_TIMEOUT_MS") {
            http.shutdown_timeout = parse_millis(var, &v)?;
        }
        if let Some((var, v)) = get("FLEXT_HTTP_MAX_CONNECTIONS") {
            http.max_connections = bounded(var, &v, MAX_CONNECTIONS)?;
        }
        if let Some((var, v)) = get("FLEXT_HTTP_WORKERS") {
            http.workers = bounded(var, &v, MAX_THREADS)?;
        }
        if let Some((var, v)) = get("FLEXT_HTTP_RENDER_THREADS") {
            http.render_threads = bounded(var, &v, MAX_THREADS)?;
        }
        if let Some((var, v)) = get("FLEXT_HTTP_ROUTES") {
            http.routes = Routes::parse(&v)
                .map_err(|_| env_err(var, &v, "a comma-separated list of snapshot, alerts, traces, logs; or all; or none"))?;
        }
        if let Some((var, v)) = get("FLEXT_HTTP_TOKEN") {
            let token = BearerToken::new(v.trim())
                .map_err(|_| env_err(var, "<redacted>", "1 to 512 characters: letters, digits, - . _ ~ + /, then = padding"))?;
            http.token = Some(token);
        }
        if let Some((var, v)) = get("FLEXT_HTTP_TOKEN_ALL_ROUTES") {
            http.token_all_routes = parse_bool(var, &v)?;
        }
        Ok(http)
    }
}
