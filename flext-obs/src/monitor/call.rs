//! The guard of one monitored call: what it notes while the call runs (outcome, error text,
//! attributes) and what it records when dropped.

use super::exception;
use super::raise::{Message, PanicText, raise};
use super::site::{CallSite, Outcome, SiteState};
use super::{ENABLED, panic};
use crate::attributes;
use crate::clock;
use crate::context::{self, CallScope, Context, SpanContext};
use crate::entity::ids::next_words;
use crate::entity::{CorrelationId, SpanId, SpanStatus, TraceId};
use crate::sample::{self, Verdict};
use crate::span_record::SpanRecord;
use crate::store::lane;
use crate::thread::THREAD;
use crate::trace;
use std::fmt;
use std::sync::atomic::Ordering;

/// The guard of one monitored call: created when the call starts, records everything when
/// dropped (also while unwinding from a panic). Inert when monitoring is off.
#[must_use = "the call is recorded when this guard is dropped"]
pub struct Call(Option<Active>);

struct Active {
    site: &'static CallSite,
    state: &'static SiteState,
    start: u64,
    span: SpanContext,
    /// The scope the call was made in: parent span and calling site.
    outer: CallScope,
    /// The correlation ID the call was made in, kept for async calls only (a sync call reads it
    /// from its thread when it needs it, which saves copying it twice per call).
    async_correlation: Option<CorrelationId>,
    /// Whether `span` was attached to the thread (sync calls), so `outer` is restored on exit.
    attached: bool,
    /// Whether the thread was already unwinding when the call began (a monitored call made from
    /// a `Drop` during an unrelated panic): then unwinding at exit is not this call's panic.
    panicking_at_entry: bool,
    /// The thread's panic number when a sync call began: only a panic noted after it is this
    /// call's ([`panic::message_since`]).
    panics_at_entry: u64,
    /// The message of the panic an async call's poll saw begin, taken on that poll's thread.
    /// Taken by hand in `finish` (like `tracing`), so the guard keeps no drop glue: with it, a
    /// monitored call cost 14 ns more.
    async_panic_message: std::mem::ManuallyDrop<Option<Box<str>>>,
    outcome: Outcome,
    /// The same call as a `tracing` span named after the function (disabled, at the cost of one
    /// relaxed load, while [`super::set_tracing_spans`] has them off, the default, or no
    /// subscriber wants it). Dropped by hand in `finish`, so that a guard
    /// has no drop glue of its own and a switched-off call's guard costs nothing to drop.
    #[cfg(feature = "tracing")]
    tracing: std::mem::ManuallyDrop<tracing::Span>,
}

impl Active {
    fn correlation(&self) -> Option<CorrelationId> {
        if self.attached { context::current_correlation_id() } else { self.async_correlation }
    }
}

impl fmt::Debug for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("function", &self.0.as_ref().map(|a| a.site.function))
            .field("span", &self.span_context())
            .field("outcome", &self.0.as_ref().map(|a| a.outcome))
            .finish_non_exhaustive()
    }
}

impl Call {
    /// Starts a synchronous call: its span becomes the thread's current span until the guard
    /// is dropped.
    #[inline]
    #[doc(hidden)]
    pub fn enter(site: &'static CallSite) -> Call {
        if ENABLED.load(Ordering::Relaxed) { Self::begin(site, true) } else { Call(None) }
    }

    /// Starts an async call: the span is not attached to the thread; run the call's future
    /// through [`super::run_in`] instead, so every poll runs in it.
    #[inline]
    #[doc(hidden)]
    pub fn enter_async(site: &'static CallSite) -> Call {
        if ENABLED.load(Ordering::Relaxed) { Self::begin(site, false) } else { Call(None) }
    }

    /// The monitored path, out of line so that a function whose monitoring is switched off
    /// keeps a small frame.
    #[inline(never)]
    fn begin(site: &'static CallSite, attach: bool) -> Call {
        let Some(state) = site.state() else { return Call(None) };
        let panicking_at_entry = std::thread::panicking();
        // One thread-local access for the IDs, the lane and the context; the guard is built in
        // place, so nothing large is copied on the way out.
        THREAD.with(|t| {
            let [hi, lo, word] = next_words::<3>(&t.rng);
            let outer = t.scope.get();
            let span = if let Some(parent) = outer.span {
                SpanContext {
                    trace_id: parent.trace_id,
                    span_id: SpanId::from_word(word),
                    sampled: sample::head(parent.trace_id, Some(parent.sampled)),
                }
            } else {
                let trace_id = TraceId::from_words(hi, lo);
                SpanContext { trace_id, span_id: SpanId::from_word(word), sampled: sample::ratio_samples(trace_id) }
            };
            let async_correlation = if attach {
                t.scope.set(outer.child(span, state.index));
                None
            } else {
                t.correlation.get()
            };
            if outer.flags & CallScope::TRACESTATE != 0 && outer.site == 0 {
                // The first monitored call in a context with a `tracestate` (a request's entry):
                // the trace's spans carry it.
                crate::tracestates::remember(span.trace_id);
            }
            let lane = lane::of(&t.lane);
            let panics_at_entry = panic::number(t);
            state.in_flight.step_in(lane, 1);
            Call(Some(Active {
                site,
                state,
                start: clock::now(),
                span,
                outer,
                async_correlation,
                attached: attach,
                panicking_at_entry,
                panics_at_entry,
                async_panic_message: std::mem::ManuallyDrop::new(None),
                outcome: Outcome::Pending,
                #[cfg(feature = "tracing")]
                tracing: std::mem::ManuallyDrop::new(super::tracing_span::open(state.tracing, &span, attach)),
            }))
        })
    }

    /// The context the call's own work runs in (its span as the current span).
    pub fn context(&self) -> Context {
        match &self.0 {
            Some(active) => Context::from_parts(active.correlation(), active.outer.child(active.span, active.state.index)),
            None => context::current(),
        }
    }

    /// The call as a `tracing` span (disabled when monitoring is off, `tracing` spans are off,
    /// the default: see [`super::set_tracing_spans`], or nobody listens).
    #[cfg(feature = "tracing")]
    pub fn tracing_span(&self) -> tracing::Span {
        self.0.as_ref().map_or_else(tracing::Span::none, |a| (*a.tracing).clone())
    }

    /// The call's span, `None` when monitoring is off.
    pub fn span_context(&self) -> Option<SpanContext> {
        self.0.as_ref().map(|a| a.span)
    }

    /// Whether values recorded on the call's span are kept: the span is sampled, or a `tracing`
    /// subscriber listens to it. The attribute evaluates `fields(...)` only when this is true.
    #[inline]
    #[doc(hidden)]
    pub fn is_recording(&self) -> bool {
        match &self.0 {
            #[cfg(feature = "tracing")]
            Some(active) => active.span.sampled || !active.tracing.is_disabled(),
            #[cfg(not(feature = "tracing"))]
            Some(active) => active.span.sampled,
            None => false,
        }
    }

    /// Records `key = value` on the call's span (and its `tracing` span).
    #[doc(hidden)]
    pub fn record_field(&mut self, key: &'static str, value: &dyn fmt::Display) {
        if let Some(active) = &mut self.0 {
            #[cfg(feature = "tracing")]
            if !active.tracing.is_disabled() {
                active.tracing.record(key, tracing::field::display(value));
            }
            attributes::record(active.span.span_id, key, value);
        }
    }

    /// Marks the call successful (the default when it returns normally).
    #[inline]
    pub fn mark_ok(&mut self) {
        if let Some(active) = &mut self.0 {
            active.outcome = Outcome::Ok;
        }
    }

    /// Marks the call failed with `message`, raising an alert unless alerts are off for it. The
    /// failure has no type: its `error.type` (span, duration series, alert label) is `_OTHER`, and
    /// it makes no exception log record (those are for the function's own typed errors and panics).
    pub fn mark_error(&mut self, message: impl fmt::Display) {
        // OpenTelemetry's `error.type` for a failure with no type of its own.
        self.fail("_OTHER", &|f| fmt::Display::fmt(&message, f), false);
    }

    /// Records a failure: outcome error, an alert (de-duplicated per function and error type,
    /// so a repeat allocates nothing) and an exception log record (rate-limited per function).
    #[doc(hidden)]
    pub fn note_error(&mut self, error_type: &'static str, message: &dyn Fn(&mut fmt::Formatter<'_>) -> fmt::Result) {
        self.fail(error_type, message, true);
    }

    /// [`Call::note_error`]; `exception` says whether the failure is an exception of the
    /// function's own (a typed error: an exception log record) or a verdict from outside
    /// ([`Call::mark_error`]: no record).
    fn fail(&mut self, error_type: &'static str, message: &dyn Fn(&mut fmt::Formatter<'_>) -> fmt::Result, exception: bool) {
        if let Some(active) = &mut self.0 {
            active.outcome = Outcome::Error;
            // OpenTelemetry's `error.type` on the span: the error's type path, kept per call site
            // (a lock-free read once set; the span reads it when it is turned into an entity).
            active.state.error_type.get_or_init(|| error_type);
            #[cfg(feature = "otlp")]
            if crate::outbox::is_open() {
                crate::outbox::note_error(active.span.span_id, &Message(message));
            }
            if active.site.options.alert {
                raise(active.site, active.state, error_type, message, active.span.trace_id, active.correlation());
            }
            if exception {
                let failure = exception::Failure { error_type, message: &Message(message), stacktrace: None };
                exception::record(active.site, active.state, &active.span, active.correlation(), &failure);
            }
        }
    }

    /// Records a `None` result: an error only when the site says so.
    #[doc(hidden)]
    pub fn note_none(&mut self) {
        match &self.0 {
            Some(active) if active.site.options.none_is_error => self.note_error("None", &|f| f.write_str("returned None")),
            _ => self.mark_ok(),
        }
    }

    /// Whether the inspected value made this call an error.
    #[doc(hidden)]
    pub fn is_error(&self) -> bool {
        self.0.as_ref().is_some_and(|a| a.outcome == Outcome::Error)
    }

    /// An `ok_if`/`error_if` verdict of error on a value that was not an error by itself.
    #[doc(hidden)]
    pub fn note_rule(&mut self, rule: &'static str) {
        self.note_error(rule, &|f| write!(f, "the result was classified as an error by `{rule}`"));
    }

    /// Notes that a panic started during this call (seen by the poll of its future, which may
    /// be dropped later, after the executor caught the panic).
    pub(crate) fn note_panic(&mut self, panics_before: u64) {
        if let Some(active) = &mut self.0 {
            active.outcome = Outcome::Panic;
            *active.async_panic_message = panic::message_since(panics_before);
        }
    }
}

impl Drop for Call {
    #[inline]
    fn drop(&mut self) {
        if let Some(active) = &mut self.0 {
            active.finish();
        }
    }
}

impl Active {
    /// Records the call. The common path (no panic) stays small enough for the store's
    /// recording to be inlined into it; the panic path is out of line.
    fn finish(&mut self) {
        let end = clock::now();
        #[cfg(feature = "tracing")]
        super::tracing_span::close(&mut self.tracing, self.attached);
        let (site, state) = (self.site, self.state);
        // A panic counts only if it started during this call: unwinding that was already under
        // way when the call began belongs to someone else. An async call's own panics are noted by the poll (or creation) that saw them; one
        // dropped while someone else's panic unwinds was cancelled, not panicked.
        let unwinding = self.attached && !self.panicking_at_entry && std::thread::panicking();
        let outcome = if self.outcome == Outcome::Panic || unwinding {
            Outcome::Panic
        } else if self.outcome == Outcome::Pending {
            site.options.unseen_exit
        } else {
            self.outcome
        };
        let status = match outcome {
            Outcome::Pending | Outcome::Ok => SpanStatus::Completed,
            Outcome::Error | Outcome::Panic => SpanStatus::Error,
            Outcome::Cancelled => SpanStatus::Timeout,
        };
        let verdict = sample::keep(self.span.sampled, status == SpanStatus::Error, &state.limiter, end);
        // One thread-local access: restore the caller's scope, take the lane of the thread
        // finishing the call (an async call may end on another thread than it began, and a lane
        // may only be written by its owner) and, for a kept span of a sync call, the correlation
        // ID.
        let (lane, correlation) = THREAD.with(|t| {
            let correlation = if self.attached {
                t.scope.set(self.outer);
                if verdict == Verdict::Keep { t.correlation.get() } else { None }
            } else {
                self.async_correlation
            };
            (lane::of(&t.lane), correlation)
        });
        let nanos = clock::nanos_between(self.start, end);
        state.count(site, lane, self.outer.site, outcome.result_index());
        match outcome {
            Outcome::Panic => state.panics.increment_in(lane),
            Outcome::Cancelled => state.cancellations.increment_in(lane),
            _ => {}
        }
        state.duration_for(site, outcome).record_nanos_in(lane, nanos);
        state.in_flight.step_in(lane, u64::MAX);
        let panic_message = if outcome == Outcome::Panic { self.panic_message() } else { None };
        if outcome == Outcome::Panic {
            attributes::record(self.span.span_id, "error.type", &"panic");
        }
        let recorded = attributes::take_recorded(self.span.span_id);
        match verdict {
            Verdict::Keep => {
                if let Some(recorded) = recorded {
                    attributes::keep(self.span.span_id, recorded);
                }
                trace::record_call(
                    lane,
                    &SpanRecord {
                        trace_id: self.span.trace_id,
                        span_id: self.span.span_id,
                        parent: self.outer.span.map(|p| p.span_id),
                        site: state.index,
                        status,
                        start_raw: self.start,
                        duration_ns: nanos,
                        correlation_id: correlation,
                        remote_parent: self.outer.remote(),
                    },
                );
            }
            Verdict::RateLimited => state.count_rate_limited(site),
            Verdict::NotSampled => {}
        }
        if outcome == Outcome::Panic {
            self.panicked(panic_message.as_deref());
        }
    }

    /// The alert and the exception log record of a call that panicked.
    #[cold]
    #[inline(never)]
    fn panicked(&self, message: Option<&str>) {
        if self.site.options.alert {
            self.raise_panic(message);
        }
        let stacktrace = if self.attached { panic::backtrace_since(self.panics_at_entry) } else { None };
        let message = message.unwrap_or("");
        let failure = exception::Failure { error_type: "panic", message: &message, stacktrace: stacktrace.as_deref() };
        exception::record(self.site, self.state, &self.span, self.correlation(), &failure);
    }

    /// The message of this call's panic, when it is known to be this call's.
    #[cold]
    #[inline(never)]
    fn panic_message(&mut self) -> Option<Box<str>> {
        // Every call whose outcome is a panic comes here (a noted message makes the outcome a
        // panic), so a noted message is always taken and freed.
        let noted = (*self.async_panic_message).take();
        let message = if self.attached { panic::message_since(self.panics_at_entry) } else { noted };
        note_panic_export(self.site, self.span.span_id, message)
    }

    #[cold]
    #[inline(never)]
    fn raise_panic(&self, message: Option<&str>) {
        let text = PanicText(self.site.function, message);
        raise(self.site, self.state, "panic", &|f| fmt::Display::fmt(&text, f), self.span.trace_id, self.correlation());
    }
}

/// The message of the panic the call unwinds from, also noted for the OTLP export of its span.
#[cold]
#[inline(never)]
#[cfg_attr(not(feature = "otlp"), allow(unused_variables))]
fn note_panic_export(site: &CallSite, span: SpanId, message: Option<Box<str>>) -> Option<Box<str>> {
    #[cfg(feature = "otlp")]
    note_panic(site, span, message.as_deref());
    message
}

/// Notes a panic as the span's error message for export.
#[cfg(feature = "otlp")]
#[cold]
#[inline(never)]
fn note_panic(site: &CallSite, span: SpanId, message: Option<&str>) {
    if crate::outbox::is_open() {
        crate::outbox::note_error(span, &PanicText(site.function, message));
    }
}
