//! [`Config`]: everything flext-obs can be told, from code (builder) or the environment.
//!
//! | variable | meaning | accepted values |
//! |---|---|---|
//! | `FLEXT_OBSERVABILITY_ENABLED` | record at all | `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off` |
//! | `FLEXT_LOG_LEVEL` | lowest level logged (also by the `log` bridge) | `debug`, `info`, `warning` (or `warn`), `error`, `critical` |
//! | `AUTOMETRICS_SERVICE_NAME`, then `OTEL_SERVICE_NAME`, then `FLEXT_SERVICE_NAME`, then `service.name` of `OTEL_RESOURCE_ATTRIBUTES` | the one `service_name` label of every series and the OTLP resource's `service.name` (default: the executable's name, without the hash cargo adds to test binaries) | non-empty text, at most [`MAX_TEXT_BYTES`] bytes |
//! | `OTEL_RESOURCE_ATTRIBUTES` | attributes of the OTLP resource (`service.version` used when no version is configured) | `key=value` list, values %-encoded, at most 128 |
//! | `OTEL_SDK_DISABLED` | `true`: no OTLP exporter is started from the configuration (metrics, endpoint, alerts unaffected) | boolean (default false) |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | OTLP collector; over HTTP each signal goes to `/v1/traces`, `/v1/metrics`, `/v1/logs` under it, over gRPC to the URL itself | `http://` URL, `https://` with the cargo feature `tls`; port 4317 only with `grpc` (without `otlp-grpc`, an error naming the feature) |
//! | `OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_ENDPOINT` | one signal's full URL, used verbatim (a signal with no endpoint, its own or the generic one, is not exported) | as above |
//! | `OTEL_EXPORTER_OTLP[_{TRACES,METRICS,LOGS}]_HEADERS` | headers of every request (a signal's list replaces the generic one) | `key=value` list, values %-encoded; names HTTP tokens |
//! | `OTEL_EXPORTER_OTLP[_{TRACES,METRICS,LOGS}]_COMPRESSION` | request body compression | `gzip` or `none` (default) |
//! | `OTEL_EXPORTER_OTLP[_{TRACES,METRICS,LOGS}]_TIMEOUT` | longest one request may take (retries: see `OTEL_BSP_EXPORT_TIMEOUT`) | milliseconds from 1 to 3,600,000 (default 10,000) |
//! | `OTEL_EXPORTER_OTLP[_{TRACES,METRICS,LOGS}]_PROTOCOL` | wire format | `http/protobuf` (default), `http/json`, or `grpc` with the cargo feature `otlp-grpc` (without it, an error naming the feature) |
//! | `OTEL_EXPORTER_OTLP[_{TRACES,METRICS,LOGS}]_CERTIFICATE` | CA certificates trusted for `https://`, instead of the platform's roots | path of a PEM file |
//! | `OTEL_EXPORTER_OTLP[_{TRACES,METRICS,LOGS}]_CLIENT_CERTIFICATE`, `OTEL_EXPORTER_OTLP[_{TRACES,METRICS,LOGS}]_CLIENT_KEY` | client certificate chain and key (mutual TLS) | paths of PEM files, both or neither |
//! | `OTEL_EXPORTER_OTLP[_{TRACES,METRICS,LOGS}]_INSECURE` | gRPC only (plain text for an endpoint without a scheme): read and checked, no effect on the HTTP protocols, which take the scheme from the URL | boolean |
//! | `PROMETHEUS_PUSH_GATEWAY` | Pushgateway for batch jobs | `http://` URL, `https://` with the cargo feature `tls` |
//! | `FLEXT_PUSH_GATEWAY_CERTIFICATE`, `FLEXT_PUSH_GATEWAY_CLIENT_CERTIFICATE`, `FLEXT_PUSH_GATEWAY_CLIENT_KEY` | the Pushgateway's CA, client certificate and key | paths of PEM files (client pair both or neither) |
//! | `FLEXT_PUSH_GATEWAY_USER`, `FLEXT_PUSH_GATEWAY_PASSWORD` or `FLEXT_PUSH_GATEWAY_BEARER_TOKEN` | `Authorization: Basic` or `Bearer` for the Pushgateway | user without `:`; token letters, digits, `-._~+/` then `=`; not both kinds |
//! | `FLEXT_ALERTMANAGER_URL` | Alertmanager to post alerts to | `http://` URL, `https://` with the cargo feature `tls` |
//! | `FLEXT_ALERTMANAGER_CERTIFICATE`, `FLEXT_ALERTMANAGER_CLIENT_CERTIFICATE`, `FLEXT_ALERTMANAGER_CLIENT_KEY` | Alertmanager's CA, client certificate and key | as for the Pushgateway |
//! | `FLEXT_ALERTMANAGER_USER`, `FLEXT_ALERTMANAGER_PASSWORD` or `FLEXT_ALERTMANAGER_BEARER_TOKEN` | authentication for Alertmanager | as for the Pushgateway |
//! | `FLEXT_METRICS_ADDR` | where to serve `/metrics` | socket address, e.g. `127.0.0.1:9464` |
//! | `FLEXT_MAX_SERIES_PER_METRIC` | cardinality limit per metric | whole number >= 1 |
//! | `FLEXT_SERIES_RETENTION_SECS` | evict idle series after | seconds >= 1, or `off` |
//! | `FLEXT_SWEEP_INTERVAL_SECS` | run the retention sweep in the background every | seconds >= 1, or `off` |
//! | `FLEXT_RAW_HISTORY` | raw records kept per metric name | whole number |
//! | `FLEXT_RAW_HISTORY_NAMES` | metric names with a raw history (the least recently recorded makes room) | whole number (default 256) |
//! | `FLEXT_MAX_SERIES` | series in the whole store; past it new label sets go to their metric's overflow series | whole number >= 1, or `off` (default) |
//! | `FLEXT_SUMMARY_WINDOW` | observations in a summary's window | whole number >= 1 |
//! | `FLEXT_STORE_LANES` | write lanes per series, one count for the process (more: more threads record without a locked instruction; fewer: less memory per series) | whole number from 1 to 64, or `auto` (default: twice the cores, rounded up to a power of two, from 4 to 64) |
//! | `FLEXT_HISTOGRAM_BUCKETS` | default histogram bounds (seconds) | comma-separated increasing numbers |
//! | `FLEXT_SERVICE_VERSION`, `FLEXT_SERVICE_COMMIT` | `build_info{version, commit}` | text, at most [`MAX_TEXT_BYTES`] bytes (overrides [`crate::set_build_info!`]) |
//! | `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG` | mapped onto the sampler: `always_on` (ratio 1), `always_off` (ratio 0, failed calls not kept either), `traceidratio` (ratio = the argument), `parentbased_*` the same with the parent's flag followed; the `FLEXT_TRACE_*` variables win where both are set | `always_on`, `always_off`, `traceidratio`, `parentbased_always_on` (default), `parentbased_always_off`, `parentbased_traceidratio`; argument a number from 0 to 1 (default 1) |
//! | `OTEL_PROPAGATORS` | the context formats the HTTP middleware and `outgoing` read and write ([`Config::propagators`], `Context::inject_with`/`extract_with`) | comma-separated `tracecontext`, `baggage`, or `none` (default `tracecontext,baggage`; b3, jaeger, xray are refused) |
//! | `FLEXT_TRACE_SAMPLE_RATIO` | share of new traces whose spans are kept | number from 0 to 1 |
//! | `FLEXT_TRACE_PARENT_BASED` | follow the incoming `traceparent` sampled flag | boolean |
//! | `FLEXT_TRACE_KEEP_ERRORS` | keep failed calls' spans whatever the sampling | boolean |
//! | `FLEXT_TRACE_MAX_PER_SECOND` | spans kept per second per function | whole number >= 1, or `off` |
//! | `FLEXT_TRACING_SPANS` | whether every monitored call is also a `tracing` span that other `tracing` layers see (`monitor::set_tracing_spans`; costs about an `#[instrument]` span under a listening subscriber) | boolean (default off) |
//! | `FLEXT_EXCEPTION_LOGS_PER_SECOND` | exception log records (a failed call's `exception.type`, `exception.message`, `exception.stacktrace`, with its trace and span IDs; kept in `/logs` and sent over OTLP, not printed) made per second per function; the rest are counted in `flext_exception_logs_dropped_total` | whole number, `0` or `off` for none (default 10) |
//! | `OTEL_BSP_MAX_QUEUE_SIZE` | spans and log lines held for OTLP export, in flight included (more are dropped) | whole number from 1 to 1,000,000 |
//! | `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` | spans per OTLP request | whole number from 1 to the queue size |
//! | `OTEL_BSP_SCHEDULE_DELAY` | OTLP span export interval | milliseconds from 1 to 3,600,000 (1 h) |
//! | `OTEL_METRIC_EXPORT_INTERVAL` | OTLP metrics export interval | milliseconds from 1 to 3,600,000 |
//! | `OTEL_BSP_EXPORT_TIMEOUT` | longest one OTLP span or log export (its requests and retries) or a `flush()` may take | milliseconds from 1 to 3,600,000 (default 30,000) |
//! | `OTEL_METRIC_EXPORT_TIMEOUT` | longest one OTLP metrics export (its requests and retries) may take | milliseconds from 1 to 3,600,000 (default 30,000) |
//! | `FLEXT_OTLP_SHUTDOWN_TIMEOUT_MS` | longest the OTLP shutdown waits (what is not sent by then is dropped and counted) | milliseconds from 1 to 3,600,000 (default 5,000) |
//! | `FLEXT_EXPORT_REQUEST_TIMEOUT_MS` | longest one Pushgateway push or Alertmanager batch (retries included) may take | milliseconds from 1 to 3,600,000 (default 5,000) |
//! | `FLEXT_PUSH_STOP_TIMEOUT_MS` | longest stopping the Pushgateway pusher (its final push included) may take | milliseconds from 1 to 3,600,000 (default 5,000) |
//! | `FLEXT_ALERTMANAGER_STOP_TIMEOUT_MS` | longest dropping the Alertmanager sink may take (what is not sent by then is dropped and counted) | milliseconds from 1 to 3,600,000 (default 5,000) |
//! | `FLEXT_HTTP_ROUTES` | opt-in endpoint routes besides `/metrics`, `/health`, `/ready` (they show error text, log fields, span attributes) | comma-separated `snapshot`, `alerts`, `traces`, `logs`, `ui`; or `all`; or `none` (default) |
//! | `FLEXT_HTTP_TOKEN` | bearer token the opt-in routes require | 1 to 512 of letters, digits, `-._~+/`, then `=` padding |
//! | `FLEXT_HTTP_TOKEN_ALL_ROUTES` | the token guards `/metrics`, `/health`, `/ready` too | boolean (default false) |
//! | `FLEXT_HTTP_HEADER_TIMEOUT_MS` | time to send a whole request head (slowloris bound) | milliseconds, 1 to 3600000 (default 5000) |
//! | `FLEXT_HTTP_IDLE_TIMEOUT_MS` | keep-alive wait for the next request | milliseconds, 1 to 3600000 (default 15000) |
//! | `FLEXT_HTTP_WRITE_TIMEOUT_MS` | a write without progress drops the connection after | milliseconds, 1 to 3600000 (default 10000) |
//! | `FLEXT_HTTP_SHUTDOWN_TIMEOUT_MS` | shutdown waits for in-flight requests at most | milliseconds, 1 to 3600000 (default 5000) |
//! | `FLEXT_HTTP_MAX_CONNECTIONS` | connections held at once (more closed at once) | whole number, 1 to 65536 (default 1024) |
//! | `FLEXT_HTTP_WORKERS`, `FLEXT_HTTP_RENDER_THREADS` | threads serving connections, threads rendering responses | whole number, 1 to 64 (default 2 each) |
//!
//! An empty variable counts as unset (as in OpenTelemetry). Any other value that cannot be used
//! is an [`Error::Env`] naming the variable, the value and what was expected.
//! [`Config::from_env`] stops at the first; [`Config::from_env_lenient`] (what
//! [`crate::global`] uses) keeps every valid setting and returns the refused ones.

use crate::entity::LogLevel;
use crate::error::{Error, Result};
use crate::sample::Sampler;
use crate::store::{StoreSettings, check_buckets};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

mod env;
mod http;
mod otel;
mod otlp;
mod tls;
#[cfg(feature = "push")]
pub(crate) use tls::{BASE64_URL_SAFE, base64_with};
mod url;
pub use self::http::{BearerToken, HttpSettings, Routes};
pub use otel::{Propagators, ResourceAttributes};
#[cfg_attr(any(feature = "otlp-grpc", not(feature = "otlp")), allow(unused_imports))] // only OTLP without gRPC refuses it
pub(crate) use otlp::GRPC_MISSING;
pub use otlp::{DEFAULT_REQUEST_TIMEOUT, OtlpCompression, OtlpProtocol, OtlpTarget, OtlpTransport, OtlpTransports, Signal};
pub use tls::{HttpAuth, PeerAccess, TlsFiles};
pub(crate) use url::check_url;
mod export;
#[cfg_attr(not(feature = "push"), allow(unused_imports))]
pub(crate) use export::check_wait;
pub use export::{ExportTimeouts, MAX_QUEUE_SIZE, MAX_WAIT, OtlpSettings};

/// Every variable [`Config::from_env`] reads.
pub const ENV_VARS: &[&str] = &[
    "FLEXT_OBSERVABILITY_ENABLED",
    "FLEXT_LOG_LEVEL",
    "AUTOMETRICS_SERVICE_NAME",
    "OTEL_SERVICE_NAME",
    "FLEXT_SERVICE_NAME",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_CLIENT_KEY",
    "OTEL_EXPORTER_OTLP_INSECURE",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
    "OTEL_EXPORTER_OTLP_TRACES_INSECURE",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
    "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY",
    "OTEL_EXPORTER_OTLP_METRICS_INSECURE",
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
    "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION",
    "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT",
    "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
    "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY",
    "OTEL_EXPORTER_OTLP_LOGS_INSECURE",
    "PROMETHEUS_PUSH_GATEWAY",
    "FLEXT_ALERTMANAGER_URL",
    "FLEXT_METRICS_ADDR",
    "FLEXT_MAX_SERIES_PER_METRIC",
    "FLEXT_SERIES_RETENTION_SECS",
    "FLEXT_SWEEP_INTERVAL_SECS",
    "FLEXT_RAW_HISTORY",
    "FLEXT_RAW_HISTORY_NAMES",
    "FLEXT_MAX_SERIES",
    "FLEXT_STORE_LANES",
    "FLEXT_SUMMARY_WINDOW",
    "FLEXT_HISTOGRAM_BUCKETS",
    "FLEXT_SERVICE_VERSION",
    "FLEXT_SERVICE_COMMIT",
    "FLEXT_TRACE_SAMPLE_RATIO",
    "FLEXT_TRACE_PARENT_BASED",
    "FLEXT_TRACE_KEEP_ERRORS",
    "FLEXT_TRACE_MAX_PER_SECOND",
    "FLEXT_EXCEPTION_LOGS_PER_SECOND",
    "FLEXT_TRACING_SPANS",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_METRIC_EXPORT_INTERVAL",
    "FLEXT_HTTP_ROUTES",
    "FLEXT_HTTP_TOKEN",
    "FLEXT_HTTP_TOKEN_ALL_ROUTES",
    "FLEXT_HTTP_HEADER_TIMEOUT_MS",
    "FLEXT_HTTP_IDLE_TIMEOUT_MS",
    "FLEXT_HTTP_WRITE_TIMEOUT_MS",
    "FLEXT_HTTP_SHUTDOWN_TIMEOUT_MS",
    "FLEXT_HTTP_MAX_CONNECTIONS",
    "FLEXT_HTTP_WORKERS",
    "FLEXT_HTTP_RENDER_THREADS",
    "OTEL_BSP_EXPORT_TIMEOUT",
    "FLEXT_OTLP_SHUTDOWN_TIMEOUT_MS",
    "FLEXT_EXPORT_REQUEST_TIMEOUT_MS",
    "FLEXT_PUSH_STOP_TIMEOUT_MS",
    "FLEXT_ALERTMANAGER_STOP_TIMEOUT_MS",
    "FLEXT_PUSH_GATEWAY_CERTIFICATE",
    "FLEXT_PUSH_GATEWAY_CLIENT_CERTIFICATE",
    "FLEXT_PUSH_GATEWAY_CLIENT_KEY",
    "FLEXT_PUSH_GATEWAY_USER",
    "FLEXT_PUSH_GATEWAY_PASSWORD",
    "FLEXT_PUSH_GATEWAY_BEARER_TOKEN",
    "FLEXT_ALERTMANAGER_CERTIFICATE",
    "FLEXT_ALERTMANAGER_CLIENT_CERTIFICATE",
    "FLEXT_ALERTMANAGER_CLIENT_KEY",
    "FLEXT_ALERTMANAGER_USER",
    "FLEXT_ALERTMANAGER_PASSWORD",
    "FLEXT_ALERTMANAGER_BEARER_TOKEN",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_PROPAGATORS",
    "OTEL_METRIC_EXPORT_TIMEOUT",
];

/// The validated configuration of an [`crate::Observability`] instance.
///
/// ```
/// use flext_obs::{Config, LogLevel};
/// let config = Config::builder()
///     .service_name("checkout")
///     .log_level(LogLevel::Warning)
///     .max_series_per_metric(500)
///     .build()?;
/// assert_eq!(config.service_name(), "checkout");
/// assert!(Config::builder().service_name(" ").build().is_err());
/// # Ok::<(), flext_obs::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    enabled: bool,
    log_level: LogLevel,
    service_name: String,
    otlp_transports: OtlpTransports,
    push_gateway: Option<String>,
    push_access: PeerAccess,
    alertmanager_url: Option<String>,
    alertmanager_access: PeerAccess,
    resource_attributes: ResourceAttributes,
    sdk_disabled: bool,
    propagators: Propagators,
    metrics_addr: Option<SocketAddr>,
    sweep_interval: Option<Duration>,
    version: Option<String>,
    commit: Option<String>,
    store: StoreSettings,
    sampler: Sampler,
    otlp: OtlpSettings,
    http: HttpSettings,
    export_timeouts: ExportTimeouts,
    exception_logs_per_second: u32,
    tracing_spans: Option<bool>,
}

/// Exception log records per second per function unless configured.
pub const DEFAULT_EXCEPTION_LOGS_PER_SECOND: u32 = 10;

impl Default for Config {
    /// Recording on, level info, service named after the executable, no exporters.
    fn default() -> Self {
        Config {
            enabled: true,
            log_level: LogLevel::Info,
            service_name: default_service_name(),
            otlp_transports: OtlpTransports::default(),
            push_gateway: None,
            push_access: PeerAccess::default(),
            alertmanager_url: None,
            alertmanager_access: PeerAccess::default(),
            resource_attributes: ResourceAttributes::default(),
            sdk_disabled: false,
            propagators: Propagators::default(),
            metrics_addr: None,
            sweep_interval: None,
            version: None,
            commit: None,
            store: StoreSettings::default(),
            sampler: Sampler::default(),
            otlp: OtlpSettings::default(),
            http: HttpSettings::default(),
            export_timeouts: ExportTimeouts::default(),
            exception_logs_per_second: DEFAULT_EXCEPTION_LOGS_PER_SECOND,
            tracing_spans: None,
        }
    }
}

/// The executable's file name (OpenTelemetry's `unknown_service:<exe>` fallback, minus the
/// prefix), or `flext-obs` when even that is unknown.
fn default_service_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|path| path.file_stem().and_then(|s| s.to_str()).map(|stem| without_build_hash(stem).to_owned()))
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "flext-obs".to_owned())
}

/// `api` for cargo's test binary `api-4dd89b40f925e406`: the name without the 16-hex-digit hash
/// cargo appends, which changes with every build and would split one service into many.
fn without_build_hash(stem: &str) -> &str {
    match stem.rsplit_once('-') {
        Some((name, hash)) if !name.is_empty() && hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => name,
        _ => stem,
    }
}

impl Config {
    /// Starts from the defaults.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder(Config::default())
    }

    /// Whether recording is on.
    pub fn enabled(&self) -> bool {
        self.enabled
    }
    /// Lowest level logged.
    pub fn log_level(&self) -> LogLevel {
        self.log_level
    }
    /// The `service_name` label.
    pub fn service_name(&self) -> &str {
        &self.service_name
    }
    /// The generic OTLP/HTTP collector endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`); see
    /// [`otlp_transports`](Config::otlp_transports) for each signal's.
    pub fn otlp_endpoint(&self) -> Option<&str> {
        self.otlp_transports.generic.endpoint.as_deref()
    }
    /// Where and how each OTLP signal is sent (the `OTEL_EXPORTER_OTLP_*` variables).
    ///
    /// ```
    /// use flext_obs::config::{OtlpCompression, Signal};
    /// let config = flext_obs::Config::from_lookup(|var| match var {
    ///     "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://collector:4318".to_owned()),
    ///     "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT" => Some("http://metrics:9090/api/v1/otlp/v1/metrics".to_owned()),
    ///     "OTEL_EXPORTER_OTLP_HEADERS" => Some("api-key=a%20b".to_owned()),
    ///     "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION" => Some("gzip".to_owned()),
    ///     _ => None,
    /// })?;
    /// let traces = config.otlp_transports().target(Signal::Traces).unwrap();
    /// assert_eq!(traces.url, "http://collector:4318/v1/traces");
    /// assert_eq!(traces.compression, OtlpCompression::Gzip);
    /// assert_eq!(traces.headers, [("api-key".to_owned(), "a b".to_owned())]);
    /// let metrics = config.otlp_transports().target(Signal::Metrics).unwrap();
    /// assert_eq!(metrics.url, "http://metrics:9090/api/v1/otlp/v1/metrics");
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn otlp_transports(&self) -> &OtlpTransports {
        &self.otlp_transports
    }
    /// Pushgateway URL.
    pub fn push_gateway(&self) -> Option<&str> {
        self.push_gateway.as_deref()
    }
    /// TLS files and authentication for the Pushgateway.
    pub fn push_access(&self) -> &PeerAccess {
        &self.push_access
    }
    /// Alertmanager URL.
    pub fn alertmanager_url(&self) -> Option<&str> {
        self.alertmanager_url.as_deref()
    }
    /// TLS files and authentication for Alertmanager.
    pub fn alertmanager_access(&self) -> &PeerAccess {
        &self.alertmanager_access
    }
    /// Attributes of the OTLP resource (`OTEL_RESOURCE_ATTRIBUTES`); `service.name` comes from
    /// [`service_name`](Config::service_name) whatever they say.
    pub fn resource_attributes(&self) -> &ResourceAttributes {
        &self.resource_attributes
    }
    /// Whether OpenTelemetry export is off (`OTEL_SDK_DISABLED=true`): no OTLP exporter is
    /// started from this configuration; metrics, the endpoint and alerts are not affected.
    pub fn sdk_disabled(&self) -> bool {
        self.sdk_disabled
    }
    /// Whether monitored calls are also `tracing` spans, when set (`None`: left as
    /// [`monitor::set_tracing_spans`](crate::monitor::set_tracing_spans) has it, off by default).
    pub fn tracing_spans(&self) -> Option<bool> {
        self.tracing_spans
    }

    /// Exception log records written per second per monitored function (0: none).
    pub fn exception_logs_per_second(&self) -> u32 {
        self.exception_logs_per_second
    }

    /// The context propagation formats asked for (`OTEL_PROPAGATORS`).
    pub fn propagators(&self) -> Propagators {
        self.propagators
    }
    /// Address to serve `/metrics` on.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }
    /// The service's version for `build_info`, when configured.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }
    /// The service's commit for `build_info`, when configured.
    pub fn commit(&self) -> Option<&str> {
        self.commit.as_deref()
    }
    /// Background retention sweep interval, if any.
    pub fn sweep_interval(&self) -> Option<Duration> {
        self.sweep_interval
    }
    /// Store limits.
    pub fn store(&self) -> &StoreSettings {
        &self.store
    }
    /// Span sampling rules.
    pub fn sampler(&self) -> Sampler {
        self.sampler
    }
    /// OTLP batching.
    pub fn otlp(&self) -> OtlpSettings {
        self.otlp
    }
    /// The HTTP endpoint's bounds, routes and token.
    pub fn http(&self) -> &HttpSettings {
        &self.http
    }
    /// How long the Pushgateway pusher and the Alertmanager sink may wait on their peer.
    pub fn export_timeouts(&self) -> ExportTimeouts {
        self.export_timeouts
    }
}

/// Builder for [`Config`]; [`build`](ConfigBuilder::build) validates.
#[derive(Debug, Clone)]
#[must_use]
pub struct ConfigBuilder(Config);

impl ConfigBuilder {
    /// Records at all (default true).
    pub fn enabled(mut self, on: bool) -> Self {
        self.0.enabled = on;
        self
    }
    /// Lowest level logged (default info).
    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.0.log_level = level;
        self
    }
    /// The `service_name` label (default: the executable's name).
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.0.service_name = name.into();
        self
    }
    /// The generic OTLP/HTTP collector endpoint (`http://`, or `https://` with the cargo
    /// feature `tls`); each signal's requests go to `/v1/<signal>` under it.
    pub fn otlp_endpoint(mut self, url: impl Into<String>) -> Self {
        self.0.otlp_transports.generic.endpoint = Some(url.into());
        self
    }
    /// Every OTLP transport setting, generic and per signal (replaces
    /// [`otlp_endpoint`](ConfigBuilder::otlp_endpoint)).
    pub fn otlp_transports(mut self, transports: OtlpTransports) -> Self {
        self.0.otlp_transports = transports;
        self
    }
    /// Pushgateway URL (`http://`, or `https://` with the cargo feature `tls`).
    pub fn push_gateway(mut self, url: impl Into<String>) -> Self {
        self.0.push_gateway = Some(url.into());
        self
    }
    /// TLS files and authentication for the Pushgateway.
    pub fn push_access(mut self, access: PeerAccess) -> Self {
        self.0.push_access = access;
        self
    }
    /// Alertmanager URL (`http://`, or `https://` with the cargo feature `tls`).
    pub fn alertmanager_url(mut self, url: impl Into<String>) -> Self {
        self.0.alertmanager_url = Some(url.into());
        self
    }
    /// TLS files and authentication for Alertmanager.
    pub fn alertmanager_access(mut self, access: PeerAccess) -> Self {
        self.0.alertmanager_access = access;
        self
    }
    /// Attributes of the OTLP resource (besides `service.name`).
    pub fn resource_attributes(mut self, attributes: ResourceAttributes) -> Self {
        self.0.resource_attributes = attributes;
        self
    }
    /// Turns OpenTelemetry export off (see [`Config::sdk_disabled`]).
    pub fn sdk_disabled(mut self, disabled: bool) -> Self {
        self.0.sdk_disabled = disabled;
        self
    }
    /// Makes every monitored call also a `tracing` span (or not) once this configuration is the
    /// process-wide one; see [`monitor::set_tracing_spans`](crate::monitor::set_tracing_spans)
    /// for what that costs and what it gives.
    ///
    /// ```
    /// let config = flext_obs::Config::builder().tracing_spans(true).build()?;
    /// assert_eq!(config.tracing_spans(), Some(true));
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn tracing_spans(mut self, on: bool) -> Self {
        self.0.tracing_spans = Some(on);
        self
    }

    /// Exception log records per second per monitored function (default 10; 0 makes none):
    /// each failed call (an `Err`, a `None` counted as an error, a panic) makes one at level
    /// error (kept among the recent logs, `/logs`, and sent over OTLP logs; not printed as a
    /// JSON line), with OpenTelemetry's `exception.type`, `exception.message` and, for a panic when
    /// `RUST_BACKTRACE` asks for one, `exception.stacktrace`, tied to the call's trace and span;
    /// past the rate they are counted in `flext_exception_logs_dropped_total{function}`.
    ///
    /// ```
    /// let config = flext_obs::Config::builder().exception_logs_per_second(0).build()?;
    /// assert_eq!(config.exception_logs_per_second(), 0);
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn exception_logs_per_second(mut self, per_second: u32) -> Self {
        self.0.exception_logs_per_second = per_second;
        self
    }

    /// The context propagation formats (default: `tracecontext` and `baggage`).
    pub fn propagators(mut self, propagators: Propagators) -> Self {
        self.0.propagators = propagators;
        self
    }
    /// Address to serve `/metrics` on.
    pub fn metrics_addr(mut self, addr: SocketAddr) -> Self {
        self.0.metrics_addr = Some(addr);
        self
    }
    /// The version and commit `build_info` reports (see [`crate::set_build_info!`]).
    pub fn build_info(mut self, version: impl Into<String>, commit: impl Into<String>) -> Self {
        self.0.version = Some(version.into());
        self.0.commit = Some(commit.into());
        self
    }
    /// Cardinality limit per metric name (default 2,000).
    pub fn max_series_per_metric(mut self, limit: usize) -> Self {
        self.0.store.max_series_per_metric = limit;
        self
    }
    /// Idle series retention (default 10 minutes; `None` keeps series forever).
    pub fn retention(mut self, retention: Option<Duration>) -> Self {
        self.0.store.retention = retention;
        self
    }
    /// Runs the retention sweep on a background thread every `interval` (default: never; call
    /// [`crate::store::Store::sweep`] yourself).
    pub fn sweep_interval(mut self, interval: Option<Duration>) -> Self {
        self.0.sweep_interval = interval;
        self
    }
    /// Raw records kept per metric name (default 1,000).
    pub fn raw_history(mut self, records: usize) -> Self {
        self.0.store.raw_history = records;
        self
    }
    /// Observations in a summary's window (default 1,024).
    pub fn summary_window(mut self, observations: usize) -> Self {
        self.0.store.summary_window = observations;
        self
    }
    /// Metric names with a raw history at most (default 256; the least recently recorded name
    /// makes room for a new one).
    ///
    /// ```
    /// let config = flext_obs::Config::builder().raw_history_names(10).build()?;
    /// assert_eq!(config.store().raw_history_names, 10);
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn raw_history_names(mut self, names: usize) -> Self {
        self.0.store.raw_history_names = names;
        self
    }
    /// Most series in the whole store, every metric together (default `None`: no cap). Past it,
    /// new label sets go to their metric's overflow series and are counted as dropped.
    ///
    /// ```
    /// let config = flext_obs::Config::builder().max_series(Some(50_000)).build()?;
    /// assert_eq!(config.store().max_series, Some(50_000));
    /// assert!(flext_obs::Config::builder().max_series(Some(0)).build().is_err());
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn max_series(mut self, cap: Option<usize>) -> Self {
        self.0.store.max_series = cap;
        self
    }
    /// Write lanes per series, `None` for the default (see [`StoreSettings::lanes`]: one count
    /// for the process, fixed at its first series).
    ///
    /// ```
    /// let config = flext_obs::Config::builder().store_lanes(Some(64)).build()?;
    /// assert_eq!(config.store().lanes, Some(64));
    /// assert!(flext_obs::Config::builder().store_lanes(Some(0)).build().is_err());
    /// assert!(flext_obs::Config::builder().store_lanes(Some(65)).build().is_err());
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn store_lanes(mut self, lanes: Option<usize>) -> Self {
        self.0.store.lanes = lanes;
        self
    }
    /// Span sampling rules (default: keep every span).
    pub fn sampler(mut self, sampler: Sampler) -> Self {
        self.0.sampler = sampler;
        self
    }
    /// OTLP batching (default: OpenTelemetry's).
    pub fn otlp(mut self, settings: OtlpSettings) -> Self {
        self.0.otlp = settings;
        self
    }
    /// The HTTP endpoint's bounds, routes and token (default: [`HttpSettings::default`]).
    pub fn http(mut self, settings: HttpSettings) -> Self {
        self.0.http = settings;
        self
    }
    /// How long the Pushgateway pusher and the Alertmanager sink may wait (default 5 s each).
    pub fn export_timeouts(mut self, timeouts: ExportTimeouts) -> Self {
        self.0.export_timeouts = timeouts;
        self
    }
    /// Default histogram bounds.
    pub fn default_buckets(mut self, bounds: &[f64]) -> Self {
        self.0.store.default_buckets = Arc::from(bounds);
        self
    }
    /// Checks every setting.
    pub fn build(self) -> Result<Config> {
        let c = self.0;
        if c.service_name.trim().is_empty() {
            return Err(Error::invalid("Config", "service_name", &c.service_name, "must not be empty"));
        }
        for (field, text) in [("service_name", Some(&c.service_name)), ("version", c.version.as_ref()), ("commit", c.commit.as_ref())] {
            if let Some(text) = text.filter(|t| t.len() > MAX_TEXT_BYTES) {
                return Err(Error::invalid("Config", field, text_head(text), format!("must be at most {MAX_TEXT_BYTES} bytes")));
            }
        }
        if c.store.max_series == Some(0) {
            return Err(Error::invalid("Config", "max_series", 0, "must be at least 1 (or None for no cap)"));
        }
        for (field, url) in [("push_gateway", &c.push_gateway), ("alertmanager_url", &c.alertmanager_url)] {
            if let Some(url) = url {
                check_url(url).map_err(|why| Error::invalid("Config", field, url, why))?;
            }
        }
        c.otlp_transports.check()?;
        c.push_access.tls.check("Config")?;
        c.alertmanager_access.tls.check("Config")?;
        c.resource_attributes.check()?;
        if c.store.max_series_per_metric == 0 {
            return Err(Error::invalid("Config", "max_series_per_metric", 0, "must be at least 1"));
        }
        if c.store.summary_window == 0 {
            return Err(Error::invalid("Config", "summary_window", 0, "must be at least 1"));
        }
        if c.store.retention.is_some_and(|d| d.is_zero()) || c.sweep_interval.is_some_and(|d| d.is_zero()) {
            return Err(Error::invalid("Config", "retention/sweep_interval", 0, "must be greater than zero (or None for never)"));
        }
        check_buckets(&c.store.default_buckets)?;
        if let Some(lanes) = c.store.lanes {
            crate::store::lane::check_count(lanes)?;
        }
        c.otlp.check()?;
        c.export_timeouts.check()?;
        c.http.validate()?;
        Ok(c)
    }
}

/// Longest service name, version or commit accepted, in bytes: they are label values of every
/// series (`service_name`) and of `build_info`, which take at most this much
/// ([`crate::entity::MAX_LABEL_VALUE_LEN`]); a longer one is refused where the
/// configuration is built, naming the variable, instead of failing later when the store uses it.
///
/// ```
/// let long = "v".repeat(flext_obs::config::MAX_TEXT_BYTES + 1);
/// let err = flext_obs::Config::from_lookup(|var| (var == "FLEXT_SERVICE_VERSION").then(|| long.clone())).unwrap_err();
/// assert!(err.to_string().starts_with("environment variable FLEXT_SERVICE_VERSION="), "{err}");
/// assert!(flext_obs::Config::builder().service_name(long.clone()).build().is_err());
/// ```
pub const MAX_TEXT_BYTES: usize = crate::entity::MAX_LABEL_VALUE_LEN;

/// The first 32 characters of `text` and its length, to quote an oversized value.
pub(super) fn text_head(text: &str) -> String {
    let head: String = text.chars().take(32).collect();
    format!("{head}...<{} bytes>", text.len())
}
