//! What `#[flext_monitor]` calls, and the same recording for code that cannot carry the
//! attribute ([`call`], [`run`]).
//!
//! Per call: the calls counter `function_calls_total{function, module, service_name,
//! caller_function, caller_module, result}` with `result` = `ok` | `error` | `panic`, the
//! duration histogram `function_calls_duration_seconds`, the in-flight gauge
//! `function_calls_concurrent`, a span in the recent-spans buffer ([`crate::trace`]) and, on an
//! error or a panic, an alert ([`crate::alert`], counted in `flext_alerts_total`). The handles are
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

use crate::alert::{self, AlertKey};
use crate::clock;
use crate::context::{self, Context, SpanContext};
use crate::entity::ids::next_words;
use crate::entity::{Alert, CorrelationId, Severity, Span, SpanId, SpanStatus, TraceId, validate};
use crate::error::{Error, Result};
use crate::sample::{self, RateLimiter, Verdict};
use crate::store::lane::{self, Lane};
use crate::store::{Counter, Gauge, Histogram, Store};
use crate::thread::THREAD;
use crate::trace::{self, SpanRecord};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex, OnceLock, PoisonError, RwLock};

/// Calls counter name (Autometrics specification).
pub const CALLS: &str = "function_calls_total";
/// Duration histogram name (Autometrics specification).
pub const DURATION: &str = "function_calls_duration_seconds";
/// In-flight gauge name (Autometrics specification).
pub const CONCURRENT: &str = "function_calls_concurrent";
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

/// Whether monitoring is on.
pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// How a call ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[doc(hidden)]
pub enum Outcome {
    /// Not known yet.
    Pending,
    /// Returned normally and not as an error.
    Ok,
    /// Returned an error.
    Error,
    /// Panicked.
    Panic,
    /// An async call dropped before it finished.
    Cancelled,
}

impl Outcome {
    const fn result_index(self) -> usize {
        match self {
            Outcome::Pending | Outcome::Ok => 0,
            Outcome::Error | Outcome::Cancelled => 1,
            Outcome::Panic => 2,
        }
    }
}

const RESULTS: [&str; 3] = ["ok", "error", "panic"];

/// Static options of a call site, set by the attribute's arguments.
#[derive(Debug, Clone, Copy)]
#[doc(hidden)]
pub struct SiteOptions {
    service: Option<&'static str>,
    severity: Severity,
    alert: bool,
    none_is_error: bool,
    unseen_exit: Outcome,
    labels: &'static [(&'static str, &'static str)],
}

impl SiteOptions {
    /// Severity high, alerts on, `None` is not an error, no extra labels.
    pub const DEFAULT: SiteOptions =
        SiteOptions { service: None, severity: Severity::High, alert: true, none_is_error: false, unseen_exit: Outcome::Ok, labels: &[] };

    /// Sets the `service_name` label.
    #[must_use]
    pub const fn service(mut self, service: &'static str) -> Self {
        self.service = Some(service);
        self
    }
    /// Sets the alerts' severity.
    #[must_use]
    pub const fn severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }
    /// Turns alerts off.
    #[must_use]
    pub const fn no_alert(mut self) -> Self {
        self.alert = false;
        self
    }
    /// Counts `None` as an error.
    #[must_use]
    pub const fn none_is_error(mut self) -> Self {
        self.none_is_error = true;
        self
    }
    /// How to count an exit whose value was not seen (an early return the expansion could not
    /// inspect, or a dropped future).
    #[must_use]
    pub const fn unseen_exit(mut self, outcome: Outcome) -> Self {
        self.unseen_exit = outcome;
        self
    }
    /// Extra static labels on every series of the function.
    #[must_use]
    pub const fn labels(mut self, labels: &'static [(&'static str, &'static str)]) -> Self {
        self.labels = labels;
        self
    }
}

/// One monitored function: its names, options and (after the first call) its resolved handles.
#[doc(hidden)]
pub struct CallSite {
    function: &'static str,
    module: &'static str,
    options: SiteOptions,
    state: OnceLock<Option<SiteState>>,
}

impl fmt::Debug for CallSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallSite").field("function", &self.function).field("module", &self.module).finish_non_exhaustive()
    }
}

struct CallerCounters {
    caller: u32,
    by_result: [Counter; 3],
}

const CALLER_SLOTS: usize = 8;

struct SiteState {
    index: u32,
    service: String,
    histogram: Histogram,
    in_flight: Gauge,
    alerts: Counter,
    store: Store,
    callers: [OnceLock<CallerCounters>; CALLER_SLOTS],
    more_callers: Mutex<Vec<CallerCounters>>,
    limiter: RateLimiter,
    /// `flext_spans_dropped_total{function, reason="rate_limit"}`, resolved on the first drop.
    rate_limited: OnceLock<Option<Counter>>,
}

/// Every call site that has been called, by index - 1 (index 0 means "no site").
static SITES: RwLock<Vec<&'static CallSite>> = RwLock::new(Vec::new());

fn site_at(index: u32) -> Option<&'static CallSite> {
    let i = usize::try_from(index.checked_sub(1)?).ok()?;
    SITES.read().unwrap_or_else(PoisonError::into_inner).get(i).copied()
}

impl CallSite {
    /// A call site; `function` is the `function` label, `module` the `module` label.
    pub const fn new(function: &'static str, module: &'static str, options: SiteOptions) -> Self {
        CallSite { function, module, options, state: OnceLock::new() }
    }

    #[inline]
    fn state(&'static self) -> Option<&'static SiteState> {
        self.state.get_or_init(|| self.resolve()).as_ref()
    }

    #[cold]
    fn resolve(&'static self) -> Option<SiteState> {
        match self.try_resolve() {
            Ok(state) => Some(state),
            Err(err) => {
                eprintln!("flext-obs: {} is not monitored: {err}", self.function);
                None
            }
        }
    }

    fn try_resolve(&'static self) -> Result<SiteState> {
        install_panic_hook();
        let obs = crate::global();
        let store = obs.store().clone();
        let service = self.options.service.unwrap_or_else(|| obs.config().service_name()).to_owned();
        let mut labels: Vec<(&str, &str)> = vec![("function", self.function), ("module", self.module), ("service_name", &service)];
        labels.extend_from_slice(self.options.labels);
        store.describe(CALLS, crate::MetricKind::Counter, "Calls of monitored functions, by result and caller.")?;
        store.describe(DURATION, crate::MetricKind::Histogram, "Duration of monitored function calls, in seconds.")?;
        store.describe(CONCURRENT, crate::MetricKind::Gauge, "Monitored function calls in flight.")?;
        store.describe(ALERTS, crate::MetricKind::Counter, "Alerts raised by monitored functions, repeats included.")?;
        let histogram = store.histogram(DURATION, &labels)?;
        let in_flight = store.gauge(CONCURRENT, &labels)?;
        let alerts = store.counter(ALERTS, &[("severity", self.options.severity.as_str()), ("function", self.function)])?;
        let index = {
            let mut sites = SITES.write().unwrap_or_else(PoisonError::into_inner);
            sites.push(self);
            u32::try_from(sites.len()).map_err(|_| Error::invalid("monitor", "call sites", sites.len(), "too many call sites"))?
        };
        Ok(SiteState {
            index,
            service,
            histogram,
            in_flight,
            alerts,
            store,
            callers: Default::default(),
            more_callers: Mutex::new(Vec::new()),
            limiter: RateLimiter::default(),
            rate_limited: OnceLock::new(),
        })
    }
}

impl SiteState {
    /// Counts a span of this function dropped by the rate limit (uncounted if the store refuses
    /// the series: a drop never fails the call).
    #[cold]
    fn count_rate_limited(&self, site: &CallSite) {
        let counter = self.rate_limited.get_or_init(|| {
            let _ = self.store.describe(SPANS_DROPPED, crate::MetricKind::Counter, "Finished spans not kept, by function and reason.");
            self.store.counter(SPANS_DROPPED, &[("function", site.function), ("reason", "rate_limit")]).ok()
        });
        if let Some(counter) = counter {
            counter.increment();
        }
    }

    /// Adds one call to the counter of `result` for calls made from `caller`.
    #[inline]
    fn count(&self, site: &CallSite, lane: Lane, caller: u32, result: usize) {
        for slot in &self.callers {
            match slot.get() {
                Some(entry) if entry.caller == caller => return entry.by_result[result].increment_in(lane),
                Some(_) => {}
                None => break,
            }
        }
        self.count_slow(site, caller, result);
    }

    #[cold]
    fn count_slow(&self, site: &CallSite, caller: u32, result: usize) {
        let mut more = self.more_callers.lock().unwrap_or_else(PoisonError::into_inner);
        for slot in &self.callers {
            if let Some(entry) = slot.get() {
                if entry.caller == caller {
                    return entry.by_result[result].increment();
                }
            }
        }
        if let Some(entry) = more.iter().find(|e| e.caller == caller) {
            return entry.by_result[result].increment();
        }
        let Some(entry) = self.caller_counters(site, caller) else { return };
        entry.by_result[result].increment();
        match self.callers.iter().find(|slot| slot.get().is_none()) {
            Some(slot) => {
                let _ = slot.set(entry);
            }
            None => more.push(entry),
        }
    }

    fn caller_counters(&self, site: &CallSite, caller: u32) -> Option<CallerCounters> {
        let (caller_function, caller_module) = site_at(caller).map_or(("", ""), |c| (c.function, c.module));
        let resolve = |result: &str| {
            let mut labels = vec![
                ("function", site.function),
                ("module", site.module),
                ("service_name", self.service.as_str()),
                ("caller_function", caller_function),
                ("caller_module", caller_module),
                ("result", result),
            ];
            labels.extend_from_slice(site.options.labels);
            self.store.counter(CALLS, &labels)
        };
        match (resolve(RESULTS[0]), resolve(RESULTS[1]), resolve(RESULTS[2])) {
            (Ok(ok), Ok(error), Ok(panic)) => Some(CallerCounters { caller, by_result: [ok, error, panic] }),
            (Err(err), ..) | (_, Err(err), _) | (.., Err(err)) => {
                eprintln!("flext-obs: calls of {} are not counted: {err}", site.function);
                None
            }
        }
    }
}

/// The guard of one monitored call: created when the call starts, records everything when
/// dropped (also while unwinding from a panic). Inert when monitoring is off.
#[must_use = "the call is recorded when this guard is dropped"]
pub struct Call(Option<Active>);

struct Active {
    site: &'static CallSite,
    state: &'static SiteState,
    start: u64,
    span: SpanContext,
    /// The context the call was made in: parent span, correlation ID and calling site.
    outer: Context,
    /// Whether `span` was attached to the thread (sync calls), so `outer` is restored on exit.
    attached: bool,
    outcome: Outcome,
    /// The same call as a `tracing` span (disabled, at the cost of one relaxed load, when no
    /// subscriber wants it). Dropped by hand in `finish`, so that a guard has no drop glue of
    /// its own and a switched-off call's guard costs nothing to drop.
    #[cfg(feature = "tracing")]
    tracing: std::mem::ManuallyDrop<tracing::Span>,
}

/// Opens the `tracing` span of a call (entered on this thread for a sync call).
#[cfg(feature = "tracing")]
#[inline]
fn tracing_span(site: &CallSite, span: &SpanContext, outer: &Context, attach: bool) -> tracing::Span {
    let tracing = tracing::info_span!(
        "flext_monitor",
        function = site.function,
        module = site.module,
        trace_id = tracing::field::Empty,
        correlation_id = tracing::field::Empty
    );
    if !tracing.is_disabled() {
        tracing.record("trace_id", tracing::field::display(span.trace_id));
        if let Some(id) = outer.correlation_id() {
            tracing.record("correlation_id", tracing::field::display(id));
        }
        if let (true, Some(id)) = (attach, tracing.id()) {
            tracing::dispatcher::get_default(|d| d.enter(&id));
        }
    }
    tracing
}

impl Active {
    fn correlation(&self) -> Option<CorrelationId> {
        self.outer.correlation_id()
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

    /// Starts an async call: the span is not attached to the thread; wrap the call's future in
    /// [`Call::context`] instead, so every poll runs in it.
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
        // One thread-local access for the IDs, the lane and the context; the guard is built in
        // place, so nothing large is copied on the way out.
        THREAD.with(|t| {
            let [hi, lo, word] = next_words::<3>(&t.rng);
            let outer = t.context.get();
            let span = if let Some(parent) = outer.span() {
                SpanContext {
                    trace_id: parent.trace_id,
                    span_id: SpanId::from_word(word),
                    sampled: sample::head(parent.trace_id, Some(parent.sampled)),
                }
            } else {
                let trace_id = TraceId::from_words(hi, lo);
                SpanContext { trace_id, span_id: SpanId::from_word(word), sampled: sample::ratio_samples(trace_id) }
            };
            if attach {
                t.context.set(outer.enter_call(span, state.index));
            }
            let lane = lane::of(&t.lane);
            state.in_flight.step_in(lane, 1);
            Call(Some(Active {
                site,
                state,
                start: clock::now(),
                span,
                outer,
                attached: attach,
                outcome: Outcome::Pending,
                #[cfg(feature = "tracing")]
                tracing: std::mem::ManuallyDrop::new(tracing_span(site, &span, &outer, attach)),
            }))
        })
    }

    /// The context the call's own work runs in (its span as the current span).
    pub fn context(&self) -> Context {
        match &self.0 {
            Some(active) => {
                let base = match active.correlation() {
                    Some(id) => Context::new().with_correlation_id(id),
                    None => Context::new(),
                };
                base.enter_call(active.span, active.state.index)
            }
            None => context::current(),
        }
    }

    /// The call as a `tracing` span (disabled when monitoring is off or nobody listens).
    #[cfg(feature = "tracing")]
    pub fn tracing_span(&self) -> tracing::Span {
        self.0.as_ref().map_or_else(tracing::Span::none, |a| (*a.tracing).clone())
    }

    /// The call's span, `None` when monitoring is off.
    pub fn span_context(&self) -> Option<SpanContext> {
        self.0.as_ref().map(|a| a.span)
    }

    /// Marks the call successful (the default when it returns normally).
    #[inline]
    pub fn mark_ok(&mut self) {
        if let Some(active) = &mut self.0 {
            active.outcome = Outcome::Ok;
        }
    }

    /// Marks the call failed with `message`, raising an alert unless alerts are off for it.
    pub fn mark_error(&mut self, message: impl fmt::Display) {
        self.note_error("error", &|f| fmt::Display::fmt(&message, f));
    }

    /// Records a failure: outcome error, and an alert (de-duplicated per function and error
    /// type, so a repeat allocates nothing).
    #[doc(hidden)]
    pub fn note_error(&mut self, error_type: &'static str, message: &dyn Fn(&mut fmt::Formatter<'_>) -> fmt::Result) {
        if let Some(active) = &mut self.0 {
            active.outcome = Outcome::Error;
            #[cfg(feature = "otlp")]
            if crate::outbox::is_open() {
                crate::outbox::note_error(active.span.span_id, &Message(message));
            }
            if active.site.options.alert {
                raise(active.site, active.state, error_type, message, active.span.trace_id, active.correlation());
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

    /// Applies an `ok_if`/`error_if` verdict after the value was inspected.
    #[doc(hidden)]
    pub fn note_verdict(&mut self, is_error: bool, rule: &'static str) {
        let already_error = self.0.as_ref().is_some_and(|a| a.outcome == Outcome::Error);
        if !is_error {
            self.mark_ok();
        } else if !already_error {
            self.note_error(rule, &|f| write!(f, "the result was classified as an error by `{rule}`"));
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
    fn finish(&mut self) {
        let end = clock::now();
        // The lane of the thread finishing the call: an async call may end on another thread
        // than it began, and a lane may only be written by its owner.
        let lane = THREAD.with(|t| {
            if self.attached {
                t.context.set(self.outer);
            }
            lane::of(&t.lane)
        });
        #[cfg(feature = "tracing")]
        {
            if let (true, Some(id)) = (self.attached, self.tracing.id()) {
                tracing::dispatcher::get_default(|d| d.exit(&id));
            }
            // Closes the span; what stays behind is a disabled span, which holds nothing.
            drop(std::mem::replace(&mut *self.tracing, tracing::Span::none()));
        }
        let (site, state) = (self.site, self.state);
        let outcome = if std::thread::panicking() {
            Outcome::Panic
        } else if self.outcome == Outcome::Pending {
            site.options.unseen_exit
        } else {
            self.outcome
        };
        let nanos = clock::nanos_between(self.start, end);
        state.count(site, lane, self.outer.site(), outcome.result_index());
        state.histogram.record_nanos_in(lane, nanos);
        state.in_flight.step_in(lane, u64::MAX);
        let status = match outcome {
            Outcome::Pending | Outcome::Ok => SpanStatus::Completed,
            Outcome::Error | Outcome::Panic => SpanStatus::Error,
            Outcome::Cancelled => SpanStatus::Timeout,
        };
        let panic_message = if outcome == Outcome::Panic { panic_message() } else { None };
        #[cfg(feature = "otlp")]
        if outcome == Outcome::Panic {
            note_panic(site, self.span.span_id, panic_message.as_deref());
        }
        match sample::keep(self.span.sampled, status == SpanStatus::Error, &state.limiter, end) {
            Verdict::Keep => trace::record(
                lane,
                SpanRecord {
                    trace_id: self.span.trace_id,
                    span_id: self.span.span_id,
                    parent: self.outer.span().map(|p| p.span_id),
                    site: state.index,
                    status,
                    start_raw: self.start,
                    duration_ns: nanos,
                    correlation_id: self.correlation(),
                },
            ),
            Verdict::RateLimited => state.count_rate_limited(site),
            Verdict::NotSampled => {}
        }
        if outcome == Outcome::Panic && site.options.alert {
            let message = PanicText(site.function, panic_message.as_deref());
            raise(site, state, "panic", &|f| fmt::Display::fmt(&message, f), self.span.trace_id, self.correlation());
        }
    }
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

/// `<function> panicked: <message>`, or `<function> panicked` when the message is unknown.
struct PanicText<'a>(&'a str, Option<&'a str>);

impl fmt::Display for PanicText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Some(message) => write!(f, "{} panicked: {message}", self.0),
            None => write!(f, "{} panicked", self.0),
        }
    }
}

thread_local! {
    /// The message of the last panic on this thread, noted by the hook below for the monitored
    /// calls it unwinds through.
    static PANIC_MESSAGE: std::cell::RefCell<Option<Box<str>>> = const { std::cell::RefCell::new(None) };
}

/// Installs, once, a panic hook that notes the panic's message (when it is text) and then runs
/// the hook that was there before, so the default report (or the program's own hook) is
/// unchanged. A hook the program installs later replaces this one; alerts then say only
/// "<function> panicked".
fn install_panic_hook() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    // Changing the hook from a panicking thread is not allowed; a later resolution installs it.
    if std::thread::panicking() {
        return;
    }
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| Box::<str>::from(*s))
                .or_else(|| payload.downcast_ref::<String>().map(|s| s.as_str().into()));
            let _ = PANIC_MESSAGE.try_with(|slot| *slot.borrow_mut() = message);
            previous(info);
        }));
    });
}

/// The message of the panic this thread is unwinding from, if the hook saw it.
#[cold]
fn panic_message() -> Option<Box<str>> {
    PANIC_MESSAGE.try_with(|slot| slot.borrow().clone()).ok().flatten()
}

/// Raises (or repeats) the alert of a failed call.
#[cold]
fn raise(
    site: &CallSite,
    state: &SiteState,
    error_type: &'static str,
    message: &dyn Fn(&mut fmt::Formatter<'_>) -> fmt::Result,
    trace_id: TraceId,
    correlation: Option<CorrelationId>,
) {
    state.alerts.increment();
    let key = AlertKey::Site(state.index, error_type);
    if alert::repeat(&key).is_some() {
        return;
    }
    let mut text = Message(message).to_string();
    if text.trim().is_empty() {
        error_type.clone_into(&mut text);
    }
    if text.len() > 4096 {
        let cut = (0..=4096).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        text.truncate(cut);
        text.push('…');
    }
    let verb = if error_type == "panic" { "panicked" } else { "failed" };
    let mut builder = Alert::builder(format!("{} {verb}", site.function), text)
        .severity(site.options.severity)
        .source_function(site.function)
        .label("function", site.function)
        .label("module", site.module)
        .label("service_name", state.service.as_str())
        .label("error_type", error_type)
        .label("trace_id", trace_id.to_string());
    if let Some(id) = correlation {
        builder = builder.correlation_id(id);
    }
    match builder.build() {
        Ok(alert) => alert::insert(key, alert),
        Err(err) => eprintln!("flext-obs: alert for {} not kept: {err}", site.function),
    }
}

/// Formats an error through the expansion's borrowed formatter.
struct Message<'a>(&'a dyn Fn(&mut fmt::Formatter<'_>) -> fmt::Result);

impl fmt::Display for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (self.0)(f)
    }
}

/// Turns a buffered span record back into a [`Span`] entity.
pub(crate) fn span_of(record: SpanRecord) -> Option<Span> {
    let site = site_at(record.site)?;
    let service = site.state.get().and_then(Option::as_ref).map_or("", |s| s.service.as_str());
    let mut builder = Span::builder(site.function, service)
        .trace_id(record.trace_id)
        .span_id(record.span_id)
        .start(clock::to_wall(record.start_raw))
        .duration(std::time::Duration::from_nanos(record.duration_ns))
        .status(record.status)
        .attribute("function", site.function)
        .attribute("module", site.module);
    if let Some(parent) = record.parent {
        builder = builder.parent_span_id(parent);
    }
    if let Some(id) = record.correlation_id {
        builder = builder.correlation_id(id).attribute("correlation_id", id.to_string());
    }
    builder.build().ok()
}

/// Call sites made at run time by [`call`], by name.
static DYNAMIC_SITES: LazyLock<Mutex<HashMap<String, &'static CallSite>>> = LazyLock::new(Mutex::default);
/// Most distinct names [`call`] accepts (each one is a call site that lives for the process).
pub const MAX_DYNAMIC_SITES: usize = 1_000;

/// Starts a monitored call of a block of code named `name`, recording exactly what
/// `#[flext_monitor]` records. The outcome is ok unless [`Call::mark_error`] is called (or the
/// thread panics before the guard is dropped).
pub fn call(name: &str) -> Result<Call> {
    validate::text("monitor", "name", name)?;
    if name.len() > validate::MAX_NAME_LEN {
        return Err(Error::invalid("monitor", "name", name, format!("must be at most {} bytes", validate::MAX_NAME_LEN)));
    }
    let site = {
        let mut sites = DYNAMIC_SITES.lock().unwrap_or_else(PoisonError::into_inner);
        match sites.get(name) {
            Some(site) => *site,
            None if sites.len() >= MAX_DYNAMIC_SITES => {
                return Err(Error::invalid(
                    "monitor",
                    "name",
                    name,
                    format!("at most {MAX_DYNAMIC_SITES} distinct names may be monitored with monitor::call"),
                ));
            }
            None => {
                let function: &'static str = Box::leak(name.to_owned().into_boxed_str());
                let site: &'static CallSite = Box::leak(Box::new(CallSite::new(function, "", SiteOptions::DEFAULT)));
                sites.insert(name.to_owned(), site);
                site
            }
        }
    };
    Ok(Call::enter(site))
}

/// Runs `work` as a monitored call named `name`; an `Err` is recorded as an error (alert
/// message: its `Display`) and returned untouched. An invalid name runs `work` unmonitored.
pub fn run<T, E: fmt::Display + 'static>(name: &str, work: impl FnOnce() -> std::result::Result<T, E>) -> std::result::Result<T, E> {
    let mut call = call(name).ok();
    let result = work();
    if let (Some(call), Err(err)) = (call.as_mut(), &result) {
        call.note_error(std::any::type_name::<E>(), &|f| fmt::Display::fmt(err, f));
    }
    drop(call);
    result
}

/// Runs an async call's body in the call's context (and, with the `tracing` feature, in its
/// `tracing` span) on every poll.
#[doc(hidden)]
#[cfg(feature = "tracing")]
pub fn run_in<F: std::future::Future>(future: F, call: &Call) -> crate::context::WithContext<tracing::instrument::Instrumented<F>> {
    use crate::context::FutureExt as _;
    tracing::Instrument::instrument(future, call.tracing_span()).with_context(call.context())
}

/// Runs an async call's body in the call's context on every poll.
#[doc(hidden)]
#[cfg(not(feature = "tracing"))]
pub fn run_in<F: std::future::Future>(future: F, call: &Call) -> crate::context::WithContext<F> {
    use crate::context::FutureExt as _;
    future.with_context(call.context())
}

/// A borrowed return value, inspected by the expansion to classify the call. The four
/// `Inspect*` traits are tried in order (autoref specialization): `Result` with a `Display`
/// error, with a `Debug` error, any `Result` or `Option`, anything else.
#[doc(hidden)]
pub struct Inspect<'a, T>(pub &'a T);

impl<T> Clone for Inspect<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Inspect<'_, T> {}
impl<T> fmt::Debug for Inspect<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Inspect")
    }
}

#[doc(hidden)]
pub trait InspectDisplay {
    fn flext_inspect(self, call: &mut Call);
}
#[doc(hidden)]
pub trait InspectDebug {
    fn flext_inspect(self, call: &mut Call);
}
#[doc(hidden)]
pub trait InspectResult {
    fn flext_inspect(self, call: &mut Call);
}
#[doc(hidden)]
pub trait InspectAny {
    fn flext_inspect(self, call: &mut Call);
}

impl<T, E: fmt::Display> InspectDisplay for &&&Inspect<'_, std::result::Result<T, E>> {
    fn flext_inspect(self, call: &mut Call) {
        match self.0 {
            Ok(_) => call.mark_ok(),
            Err(err) => call.note_error(std::any::type_name::<E>(), &|f| fmt::Display::fmt(err, f)),
        }
    }
}
impl<T, E: fmt::Debug> InspectDebug for &&Inspect<'_, std::result::Result<T, E>> {
    fn flext_inspect(self, call: &mut Call) {
        match self.0 {
            Ok(_) => call.mark_ok(),
            Err(err) => call.note_error(std::any::type_name::<E>(), &|f| fmt::Debug::fmt(err, f)),
        }
    }
}
impl<T, E> InspectResult for &Inspect<'_, std::result::Result<T, E>> {
    fn flext_inspect(self, call: &mut Call) {
        match self.0 {
            Ok(_) => call.mark_ok(),
            Err(_) => call.note_error(std::any::type_name::<E>(), &|f| f.write_str(std::any::type_name::<E>())),
        }
    }
}
impl<T> InspectResult for &Inspect<'_, Option<T>> {
    fn flext_inspect(self, call: &mut Call) {
        match self.0 {
            Some(_) => call.mark_ok(),
            None => call.note_none(),
        }
    }
}
impl<T> InspectAny for Inspect<'_, T> {
    fn flext_inspect(self, call: &mut Call) {
        call.mark_ok();
    }
}

/// Per-function totals read from a snapshot: what a dashboard shows first.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FunctionStats {
    /// The `function` label.
    pub function: String,
    /// The `module` label.
    pub module: String,
    /// Calls, every result.
    pub calls: u64,
    /// Calls that returned an error.
    pub errors: u64,
    /// Calls that panicked.
    pub panics: u64,
    /// Estimated median duration, in seconds.
    pub p50: Option<f64>,
    /// Estimated 99th-percentile duration, in seconds.
    pub p99: Option<f64>,
}

impl FunctionStats {
    /// Errors and panics over calls (0 without calls).
    #[allow(clippy::cast_precision_loss)]
    pub fn error_rate(&self) -> f64 {
        if self.calls == 0 { 0.0 } else { (self.errors + self.panics) as f64 / self.calls as f64 }
    }
}

/// Per-function calls, errors, panics and latency quantiles from `snapshot`, sorted by function.
///
/// ```
/// #[flext_obs::flext_monitor]
/// fn lookup(id: u32) -> Result<u32, String> { if id == 0 { Err("no id 0".into()) } else { Ok(id) } }
/// let _ = lookup(1);
/// let _ = lookup(0);
/// let stats = flext_obs::monitor::function_stats(&flext_obs::global().snapshot());
/// let lookup = stats.iter().find(|s| s.function == "lookup").unwrap();
/// assert_eq!((lookup.calls, lookup.errors, lookup.error_rate()), (2, 1, 0.5));
/// ```
pub fn function_stats(snapshot: &crate::store::Snapshot) -> Vec<FunctionStats> {
    use crate::store::SeriesValue;
    let mut stats: std::collections::BTreeMap<(String, String), FunctionStats> = std::collections::BTreeMap::new();
    for series in &snapshot.series {
        let (Some(function), Some(module)) = (series.labels.get("function"), series.labels.get("module")) else { continue };
        let entry = stats.entry((function.clone(), module.clone())).or_insert_with(|| FunctionStats {
            function: function.clone(),
            module: module.clone(),
            calls: 0,
            errors: 0,
            panics: 0,
            p50: None,
            p99: None,
        });
        match (series.name.as_str(), &series.value) {
            (CALLS, SeriesValue::Counter { value }) => {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // counts of whole calls
                let n = *value as u64;
                entry.calls += n;
                match series.labels.get("result").map(String::as_str) {
                    Some("error") => entry.errors += n,
                    Some("panic") => entry.panics += n,
                    _ => {}
                }
            }
            (DURATION, SeriesValue::Histogram(h)) => {
                entry.p50 = h.p50;
                entry.p99 = h.p99;
            }
            _ => {}
        }
    }
    stats.into_values().filter(|s| s.calls > 0).collect()
}
