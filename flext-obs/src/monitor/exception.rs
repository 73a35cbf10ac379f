//! Exception log records: each failed monitored call makes one log record at level error with
//! OpenTelemetry's `exception.type`, `exception.message` and (for a panic, when `RUST_BACKTRACE`
//! asks for one) `exception.stacktrace`, tied to the call's trace and span, so a backend shows
//! the failure next to its span. They go to the recent logs (`/logs`) and OTLP logs, not to the
//! JSON lines: the caller decides what to print about an error it handles. Bounded per function by
//! [`Config::exception_logs_per_second`](crate::Config::exception_logs_per_second); what the rate
//! leaves out is counted in `flext_exception_logs_dropped_total{function}`.

use super::site::{CallSite, SiteState};
use crate::context::SpanContext;
use crate::entity::{CorrelationId, LogEntry, LogLevel};
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

/// Exception log records dropped by the rate limit, by function.
pub const EXCEPTION_LOGS_DROPPED: &str = "flext_exception_logs_dropped_total";

/// Records per second per function (0: none); set from the process-wide configuration.
static PER_SECOND: AtomicU32 = AtomicU32::new(crate::config::DEFAULT_EXCEPTION_LOGS_PER_SECOND);

/// Sets the rate (from the process-wide instance's configuration).
pub(crate) fn set_per_second(per_second: u32) {
    PER_SECOND.store(per_second, Ordering::Relaxed);
}

/// What one failed call says about its failure.
pub(super) struct Failure<'a> {
    /// `exception.type`: the error's type path, or `panic`.
    pub(super) error_type: &'a str,
    /// `exception.message`: the error's `Display`, or the panic's message.
    pub(super) message: &'a dyn fmt::Display,
    /// The panic's backtrace, when one was captured.
    pub(super) stacktrace: Option<&'a str>,
}

/// Writes the exception log record of a failed call, unless its function's rate is used up
/// (counted then) or error lines are filtered out by `FLEXT_LOG_LEVEL`. Never fails the call.
#[cold]
pub(super) fn record(site: &CallSite, state: &SiteState, span: &SpanContext, correlation: Option<CorrelationId>, failure: &Failure<'_>) {
    let per_second = PER_SECOND.load(Ordering::Relaxed);
    if per_second == 0 || !crate::log::enabled(LogLevel::Error) {
        return;
    }
    if !state.exceptions.admit(crate::clock::seconds(crate::clock::now()), per_second) {
        state.count_exception_dropped(site);
        return;
    }
    let message = failure.message.to_string();
    let verb = if failure.error_type == "panic" { "panicked" } else { "failed" };
    let text = if message.trim().is_empty() { format!("{} {verb}", site.function) } else { format!("{} {verb}: {message}", site.function) };
    let mut builder = LogEntry::builder(cut(&text), LogLevel::Error)
        .correlation_id(correlation.unwrap_or_default())
        .trace(span.trace_id, span.span_id)
        .field("event.name", "exception")
        .field("exception.type", failure.error_type)
        .field("exception.message", cut(&message))
        .field("code.function.name", format!("{}::{}", site.module, site.function));
    if let Some(stacktrace) = failure.stacktrace {
        builder = builder.field("exception.stacktrace", cut(stacktrace));
    }
    if let Ok(entry) = builder.build() {
        crate::log::keep(&entry);
    }
}

/// `text` cut to what a log field holds (on a character boundary, marked).
fn cut(text: &str) -> String {
    const MAX: usize = crate::entity::validate::MAX_LABEL_VALUE_LEN - 3;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let end = (0..=MAX).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    format!("{}…", &text[..end])
}
