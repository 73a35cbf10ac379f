//! # flext-obs
//!
//! Instrumentation for Rust services: counters, latency histograms, gauges and summaries in an
//! in-process store that the program reads at run time ([`Observability::snapshot`]), with
//! correlation IDs and trace context that follow a request across threads, async tasks and
//! processes ([`context`]), and validated entities for metrics, spans, alerts, health checks and
//! log lines ([`entity`]).
//!
//! ```
//! use flext_obs::{Config, Observability, context};
//!
//! let obs = Observability::new(Config::builder().service_name("shop").build()?)?;
//! let orders = obs.store().counter("orders_total", &[("status", "paid")])?;
//! let latency = obs.store().histogram("order_duration_seconds", &[])?;
//!
//! context::with_correlation_id(flext_obs::CorrelationId::new(), || {
//!     orders.increment();
//!     latency.record_duration(std::time::Duration::from_millis(12));
//! });
//!
//! let snapshot = obs.snapshot();
//! assert_eq!(snapshot.value("orders_total", &[("status", "paid")]), Some(1.0));
//! # Ok::<(), flext_obs::Error>(())
//! ```
//!
//! Every fallible call returns [`Result<T, flext_obs::Error>`](Error), whose message names the
//! offending field or variable, the value and the rule.

pub mod alert;
pub mod api;
mod attributes;
pub mod bridge;
mod clock;
pub mod config;
pub mod context;
pub mod entity;
pub mod error;
pub mod export;
pub mod health;
pub mod log;
pub mod monitor;
#[cfg(feature = "otlp")]
mod outbox;
pub mod sample;
pub mod slo;
mod span_record;
pub mod store;
mod thread;
pub mod trace;
mod tracestates;
mod worker;

pub use flext_obs_macros::flext_monitor;

/// The items `#[flext_monitor]` expansions call. Not a public API: it changes without notice.
#[doc(hidden)]
pub mod __private {
    pub use crate::__flext_site as site;
    pub use crate::entity::Severity;
    pub use crate::monitor::{
        CALL_SITES, Call, CallSite, ErrorValue, Field, FieldDebug, FieldDisplay, Inspect, InspectAny, InspectDebug, InspectDisplay,
        InspectResult, Monitored, OptionValue, Outcome, Predicate, SiteOptions, call_once, creating, expect_option, predicate, record_err,
        record_ret, run_in,
    };
    pub use crate::slo::Objective;

    /// The traits the expansion calls methods of, in scope through one glob `use` (a shorter
    /// expansion per monitored function).
    pub mod traits {
        pub use crate::monitor::{
            FieldDebug as _, FieldDisplay as _, InspectAny as _, InspectDebug as _, InspectDisplay as _, InspectResult as _,
        };
    }
}

pub use api::{
    Observability, config_errors, create_alert, create_health_check, create_log_entry, create_metric, create_trace, global, init,
    init_from_env, record_metric,
};
pub use config::{Config, ConfigBuilder};
pub use entity::{
    Alert, AlertStatus, CorrelationId, HealthCheck, HealthStatus, LogEntry, LogLevel, MAX_CORRELATION_ID_LEN, Metric, MetricKind, Severity,
    Span, SpanId, SpanKind, SpanStatus, TraceId,
};
pub use error::{Error, Result};

/// The call site the attribute writes for a function: its name, options and where it is
/// (`module_path!`, `file!` and `line!` expand where the attribute is, so the expansion needs
/// one short line for all of them).
#[doc(hidden)]
#[macro_export]
macro_rules! __flext_site {
    ($function:expr) => {
        $crate::__private::CallSite::of($function, ::core::module_path!()).at(::core::file!(), ::core::line!())
    };
    ($function:expr, $options:expr) => {
        $crate::__private::CallSite::new($function, ::core::module_path!(), $options).at(::core::file!(), ::core::line!())
    };
}

/// Compiles and runs the README's code blocks as doc tests, so the README cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
