//! What `#[flext_monitor]` calls, and the same recording for code that cannot carry the
//! attribute ([`call`], [`run`]).
//!
//! Per call: the calls counter `function_calls_total{function, module, service_name,
//! caller_function, caller_module, result}` with `result` = `ok` | `error` (a panic is an error, a
//! dropped future ok; both also counted in `flext_function_panics_total` and
//! `flext_function_cancellations_total`), the
//! duration histogram `function_calls_duration_seconds`, the in-flight gauge
//! `function_calls_concurrent`, a span in the recent-spans buffer ([`crate::trace`]) and, on an
//! error or a panic, an alert ([`crate::alert`], counted in `flext_alerts_total`) and an
//! exception log record (`exception.type`, `exception.message`, `exception.stacktrace`; rate-limited
//! per function, see [`Config::exception_logs_per_second`](crate::Config::exception_logs_per_second)).
//! A failed call's duration is recorded under `error_type` (OpenTelemetry's `error.type`). The handles are
//! resolved once per call site; a call then takes no lock and allocates nothing unless it fails.
//!
//! ```
//! use flext_obs::monitor;
//! let mut call = monitor::call("load_config")?;
//! // ... the work ...
//! call.mark_error("config file missing");
//! drop(call);
//! let fetched: Result<u32, std::num::ParseIntError> = monitor::run("parse_port", || "8080".parse());
//! assert_eq!(fetched, Ok(8080));
//! # Ok::<(), flext_obs::Error>(())
//! ```

mod call;
mod dynamic;
mod exception;
mod future;
mod inspect;
mod panic;
mod raise;
mod site;
mod stats;
#[cfg(feature = "tracing")]
mod tracing_span;

pub use call::Call;
pub use dynamic::{MAX_DYNAMIC_SITES, call, call_async, run, site_named, site_named_as};
pub use exception::EXCEPTION_LOGS_DROPPED;
#[doc(hidden)]
pub use future::{Monitored, creating, run_in};
#[doc(hidden)]
pub use inspect::{
    ErrorValue, Field, FieldDebug, FieldDisplay, Inspect, InspectAny, InspectDebug, InspectDisplay, InspectResult, OptionValue, Predicate,
    call_once, expect_option, predicate, record_err, record_ret,
};
pub(crate) use site::register_all;
#[doc(hidden)]
pub use site::{CALL_SITES, CallSite, Outcome, SiteOptions};
pub use stats::{FunctionStats, function_stats};

use std::sync::atomic::{AtomicBool, Ordering};

/// Calls counter name (Autometrics specification).
pub const CALLS: &str = "function_calls_total";
/// Duration histogram name (Autometrics specification).
pub const DURATION: &str = "function_calls_duration_seconds";
/// In-flight gauge name (Autometrics specification).
pub const CONCURRENT: &str = "function_calls_concurrent";
/// Panicked calls of monitored functions, by function (also counted as `result="error"` in
/// [`CALLS`], where the Autometrics dashboards look).
pub const PANICS: &str = "flext_function_panics_total";
/// Async calls dropped before they finished, by function (also counted as `result="ok"` in
/// [`CALLS`]: the specification counts an unknown result as ok).
pub const CANCELLATIONS: &str = "flext_function_cancellations_total";
/// Alerts counter name.
pub const ALERTS: &str = "flext_alerts_total";
/// Finished spans not kept because of the per-function rate limit, by function and reason (spans
/// dropped by a full OTLP queue are counted in `flext_otlp_dropped_total`).
pub const SPANS_DROPPED: &str = "flext_spans_dropped_total";

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Switches monitoring on or off at run time. Off, a monitored call costs one relaxed load.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Applies the process-wide configuration's switches to monitored calls: on/off, exception
/// log records per second and (when set) `tracing` spans.
pub(crate) fn configure(config: &crate::Config) {
    set_enabled(config.enabled());
    exception::set_per_second(config.exception_logs_per_second());
    #[cfg(feature = "tracing")]
    if let Some(on) = config.tracing_spans() {
        set_tracing_spans(on);
    }
}

/// Whether monitoring is on.
pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Whether monitored calls open their `tracing` span ([`set_tracing_spans`]); off by default.
#[cfg(feature = "tracing")]
static TRACING_SPANS: AtomicBool = AtomicBool::new(false);

/// Makes every monitored call also a `tracing` span named after the function (`Orders::place`,
/// with the fields `function`, `module`, `trace_id`, `correlation_id` and those of the
/// attribute's `fields`, `ret` and `err`), entered around a sync call and on every poll of an
/// async one, as `#[instrument]` does. Takes effect on the next call.
///
/// **Off by default**, because under a subscriber that listens (any `tracing_subscriber::registry()`)
/// opening, entering, exiting and closing that span costs what an `#[instrument]` span costs,
/// two to three times the rest of the monitored call. What you lose with it off: `tracing` layers
/// other than flext-obs' own do not see monitored calls, so a `fmt` layer's lines written inside a
/// monitored call do not show the function's span, and a `tracing`-to-OpenTelemetry layer does not
/// export it (flext-obs exports it itself over OTLP). What keeps working either way: flext-obs'
/// own layers read the thread's flext-obs context, so `log::JsonLayer` lines inside a monitored
/// call carry its trace, span and correlation IDs, and with `bridge::tracing::SpanLayer`
/// an `#[instrument]` span inside a monitored call is its child and the other way round.
///
/// ```
/// flext_obs::monitor::set_tracing_spans(true);
/// assert!(flext_obs::monitor::tracing_spans());
/// flext_obs::monitor::set_tracing_spans(false);
/// assert!(!flext_obs::monitor::tracing_spans());
/// ```
#[cfg(feature = "tracing")]
pub fn set_tracing_spans(on: bool) {
    TRACING_SPANS.store(on, Ordering::Relaxed);
}

/// Whether monitored calls open their `tracing` span (see [`set_tracing_spans`]).
///
/// ```
/// assert!(!flext_obs::monitor::tracing_spans(), "off by default");
/// ```
#[cfg(feature = "tracing")]
pub fn tracing_spans() -> bool {
    TRACING_SPANS.load(Ordering::Relaxed)
}
