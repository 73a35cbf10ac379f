//! Call sites: one per monitored function, with its static options and the handles it
//! resolves on its first call (series, alert counter, caller counters, rate limiter).

use super::{ALERTS, CALLS, CANCELLATIONS, CONCURRENT, DURATION, PANICS, SPANS_DROPPED};
use crate::entity::Severity;
use crate::error::{Error, Result};
use crate::sample::RateLimiter;
use crate::slo::Objective;
use crate::span_record::{self, SiteName};
use crate::store::lane::Lane;
use crate::store::{Counter, Gauge, Histogram, Store};
use std::fmt;
use std::sync::{Mutex, OnceLock, PoisonError};

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
    /// The `result` label, as the Autometrics specification allows it: `ok` or `error`. A panic
    /// is an error; a call whose result cannot be known (a future dropped before it finished)
    /// is `ok`. Both are also counted apart ([`super::PANICS`], [`super::CANCELLATIONS`]).
    pub(super) const fn result_index(self) -> usize {
        match self {
            Outcome::Pending | Outcome::Ok | Outcome::Cancelled => 0,
            Outcome::Error | Outcome::Panic => 1,
        }
    }
}

const RESULTS: [&str; 2] = ["ok", "error"];

/// Static options of a call site, set by the attribute's arguments.
#[derive(Debug, Clone, Copy)]
#[doc(hidden)]
pub struct SiteOptions {
    pub(super) service: Option<&'static str>,
    pub(super) severity: Severity,
    pub(super) alert: bool,
    pub(super) none_is_error: bool,
    pub(super) unseen_exit: Outcome,
    pub(super) labels: &'static [(&'static str, &'static str)],
    pub(super) fields: &'static [&'static str],
    pub(super) objective: Option<&'static Objective>,
    pub(super) kind: crate::SpanKind,
}

impl SiteOptions {
    /// Severity high, alerts on, `None` is not an error, no extra labels.
    pub const DEFAULT: SiteOptions = SiteOptions {
        service: None,
        severity: Severity::High,
        alert: true,
        none_is_error: false,
        unseen_exit: Outcome::Ok,
        labels: &[],
        fields: &[],
        objective: None,
        kind: crate::SpanKind::Internal,
    };

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
    /// The names of the span fields the attribute's `fields(...)`, `ret` and `err` record, declared
    /// up front on the call's `tracing` span.
    #[must_use]
    pub const fn fields(mut self, fields: &'static [&'static str]) -> Self {
        self.fields = fields;
        self
    }
    /// The objective the function counts toward (its labels go on the calls counter and the
    /// duration histogram, as the Autometrics specification says).
    #[must_use]
    pub const fn objective(mut self, objective: &'static Objective) -> Self {
        self.objective = Some(objective);
        self
    }
    /// The role of the call's spans in their trace (the HTTP middleware's calls are servers,
    /// its outgoing requests clients).
    #[must_use]
    pub const fn kind(mut self, kind: crate::SpanKind) -> Self {
        self.kind = kind;
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
    pub(super) function: &'static str,
    pub(super) module: &'static str,
    pub(super) options: SiteOptions,
    /// The source file and line of the monitored function (`code.file.path`,
    /// `code.line.number`), when the attribute wrote it.
    pub(super) location: Option<(&'static str, u32)>,
    pub(super) state: OnceLock<Option<SiteState>>,
}

impl fmt::Debug for CallSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallSite").field("function", &self.function).field("module", &self.module).finish_non_exhaustive()
    }
}

struct CallerCounters {
    caller: u32,
    by_result: [Counter; 2],
}

const CALLER_SLOTS: usize = 8;

pub(super) struct SiteState {
    pub(super) index: u32,
    pub(super) service: String,
    pub(super) histogram: Histogram,
    pub(super) in_flight: Gauge,
    pub(super) alerts: Counter,
    /// `flext_function_panics_total`: panicked calls (counted `result="error"` too).
    pub(super) panics: Counter,
    /// `flext_function_cancellations_total`: futures dropped before they finished (counted
    /// `result="ok"` too, as the specification says for an unknown result).
    pub(super) cancellations: Counter,
    store: Store,
    callers: [OnceLock<CallerCounters>; CALLER_SLOTS],
    more_callers: Mutex<Vec<CallerCounters>>,
    pub(super) limiter: RateLimiter,
    /// The type of the function's errors (`error.type` on its failed spans), set by the first
    /// failure: `E` of its `Result<T, E>` is one type per call site, so later failures only read
    /// it (one atomic load, no lock). Shared with the span registry, which reads it when a
    /// failed span is turned back into an entity.
    pub(super) error_type: &'static OnceLock<&'static str>,
    /// The `tracing` callsite of the call's span, named after the function.
    #[cfg(feature = "tracing")]
    pub(super) tracing: &'static super::tracing_span::SpanSite,
    /// `flext_spans_dropped_total{function, reason="rate_limit"}`, resolved on the first drop.
    rate_limited: OnceLock<Option<Counter>>,
    /// The duration histograms of failed calls, labelled `error_type`: `[0]` the function's
    /// error type (`_OTHER` when a failure names none), `[1]` `panic`. Made at the first failure
    /// of each kind, so at most two more series per function.
    failed_durations: [OnceLock<Option<Histogram>>; 2],
    /// The exception log records of this second ([`super::exception`]).
    pub(super) exceptions: RateLimiter,
    /// `flext_exception_logs_dropped_total{function}`, resolved on the first drop.
    exceptions_dropped: OnceLock<Option<Counter>>,
}

impl CallSite {
    /// A call site; `function` is the `function` label, `module` the `module` label.
    pub const fn new(function: &'static str, module: &'static str, options: SiteOptions) -> Self {
        CallSite { function, module, options, location: None, state: OnceLock::new() }
    }

    /// The function's source file and line (what `file!()` and `line!()` say where the
    /// attribute is).
    #[must_use]
    pub const fn at(mut self, file: &'static str, line: u32) -> Self {
        self.location = Some((file, line));
        self
    }

    /// A call site with [`SiteOptions::DEFAULT`]: what the attribute writes for a function
    /// without options (a shorter expansion than spelling the options out).
    pub const fn of(function: &'static str, module: &'static str) -> Self {
        CallSite::new(function, module, SiteOptions::DEFAULT)
    }

    /// The labels of the function's duration histogram: its names, its static labels, its
    /// latency objective's, and for failed calls `error_type` (OpenTelemetry's `error.type`).
    fn histogram_labels<'a>(&'a self, service: &'a str, error_type: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
        let mut labels: Vec<(&str, &str)> = vec![("function", self.function), ("module", self.module), ("service_name", service)];
        labels.extend_from_slice(self.options.labels);
        if let Some(objective) = self.options.objective {
            if let Some((threshold, percentile)) = objective.latency_target() {
                labels.extend([
                    ("objective_name", objective.name()),
                    ("objective_percentile", percentile.as_label()),
                    ("objective_latency_threshold", threshold.as_label()),
                ]);
            }
        }
        if let Some(error_type) = error_type {
            labels.push(("error_type", error_type));
        }
        labels
    }

    #[inline]
    pub(super) fn state(&'static self) -> Option<&'static SiteState> {
        self.state.get_or_init(|| self.resolve()).as_ref()
    }

    #[cold]
    fn resolve(&'static self) -> Option<SiteState> {
        // Resolving registers a `tracing` callsite, which asks the subscribers for their interest:
        // a subscriber that reads flext-obs (our own JSON layer does) must not re-enter the
        // registration of every call site from here.
        let _resolving = Resolving::enter();
        match self.try_resolve() {
            Ok(state) => Some(state),
            Err(err) => {
                eprintln!("flext-obs: {} is not monitored: {err}", self.function);
                None
            }
        }
    }

    fn try_resolve(&'static self) -> Result<SiteState> {
        super::panic::install_hook();
        let obs = crate::api::instance();
        let store = obs.store().clone();
        // One service name per process; `service = ".."` is an explicit per-function override.
        let service = self.options.service.unwrap_or_else(|| obs.config().service_name()).to_owned();
        let mut labels: Vec<(&str, &str)> = vec![("function", self.function), ("module", self.module), ("service_name", &service)];
        labels.extend_from_slice(self.options.labels);
        let histogram_labels = self.histogram_labels(&service, None);
        store.describe(CALLS, crate::MetricKind::Counter, "Calls of monitored functions, by result and caller.")?;
        store.describe(DURATION, crate::MetricKind::Histogram, "Duration of monitored function calls, in seconds.")?;
        store.describe(CONCURRENT, crate::MetricKind::Gauge, "Monitored function calls in flight.")?;
        store.describe(ALERTS, crate::MetricKind::Counter, "Alerts raised by monitored functions, repeats included.")?;
        store.describe(
            PANICS,
            crate::MetricKind::Counter,
            "Calls of monitored functions that panicked (also counted as result=\"error\").",
        )?;
        store.describe(
            CANCELLATIONS,
            crate::MetricKind::Counter,
            "Async monitored calls dropped before they finished (also counted as result=\"ok\").",
        )?;
        let histogram = store.histogram(DURATION, &histogram_labels)?;
        let in_flight = store.gauge(CONCURRENT, &labels)?;
        let panics = store.counter(PANICS, &labels)?;
        let cancellations = store.counter(CANCELLATIONS, &labels)?;
        let alerts = store.counter(ALERTS, &[("severity", self.options.severity.as_str()), ("function", self.function)])?;
        let leaked_service: &'static str = Box::leak(service.clone().into_boxed_str());
        // Leaked once per call site, like the names (bounded by the monitored functions).
        let error_type: &'static OnceLock<&'static str> = Box::leak(Box::new(OnceLock::new()));
        let index = span_record::register(SiteName {
            function: self.function,
            module: self.module,
            service: leaked_service,
            kind: self.options.kind,
            location: self.location,
            error_type,
        })
        .ok_or_else(|| Error::invalid("monitor", "call sites", u32::MAX, "too many call sites"))?;
        Ok(SiteState {
            index,
            service,
            histogram,
            in_flight,
            alerts,
            panics,
            cancellations,
            store,
            callers: Default::default(),
            more_callers: Mutex::new(Vec::new()),
            limiter: RateLimiter::default(),
            rate_limited: OnceLock::new(),
            failed_durations: Default::default(),
            exceptions: RateLimiter::default(),
            exceptions_dropped: OnceLock::new(),
            error_type,
            #[cfg(feature = "tracing")]
            tracing: super::tracing_span::SpanSite::leak(self.function, self.module, self.options.fields),
        })
    }
}

impl SiteState {
    /// Makes the calls counters of calls made from no monitored caller, so that the function's
    /// `function_calls_total` series exist (at 0) from start-up, as the specification asks.
    pub(super) fn register_uncalled(&self, site: &CallSite) {
        self.count_slow(site, 0, None);
    }

    /// The duration histogram a call with `outcome` is recorded in: the function's own, or for a
    /// failed call the one labelled with its `error_type` (the function's own when the store
    /// refuses that series, so no duration is ever lost).
    #[inline]
    pub(super) fn duration_for(&self, site: &CallSite, outcome: Outcome) -> &Histogram {
        let slot = match outcome {
            Outcome::Error => 0,
            Outcome::Panic => 1,
            _ => return &self.histogram,
        };
        self.failed_durations[slot].get_or_init(|| self.failed_duration(site, slot)).as_ref().unwrap_or(&self.histogram)
    }

    #[cold]
    fn failed_duration(&self, site: &CallSite, slot: usize) -> Option<Histogram> {
        let error_type = if slot == 1 { "panic" } else { self.error_type.get().copied().unwrap_or("_OTHER") };
        self.store.histogram(DURATION, &site.histogram_labels(&self.service, Some(error_type))).ok()
    }

    /// Counts an exception log record of this function left out by the rate.
    #[cold]
    pub(super) fn count_exception_dropped(&self, site: &CallSite) {
        let counter = self.exceptions_dropped.get_or_init(|| {
            let name = super::exception::EXCEPTION_LOGS_DROPPED;
            let _ = self.store.describe(name, crate::MetricKind::Counter, "Exception log records left out by the rate per function.");
            self.store.counter(name, &[("function", site.function)]).ok()
        });
        if let Some(counter) = counter {
            counter.increment();
        }
    }

    /// Counts a span of this function dropped by the rate limit (uncounted if the store refuses
    /// the series: a drop never fails the call).
    #[cold]
    pub(super) fn count_rate_limited(&self, site: &CallSite) {
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
    pub(super) fn count(&self, site: &CallSite, lane: Lane, caller: u32, result: usize) {
        for slot in &self.callers {
            match slot.get() {
                Some(entry) if entry.caller == caller => return entry.by_result[result].increment_in(lane),
                Some(_) => {}
                None => break,
            }
        }
        self.count_slow(site, caller, Some(result));
    }

    /// Finds or makes the counters of calls from `caller`, and adds one call to `result`'s
    /// (`None` only makes them: see [`SiteState::register_uncalled`]).
    #[cold]
    fn count_slow(&self, site: &CallSite, caller: u32, result: Option<usize>) {
        let mut more = self.more_callers.lock().unwrap_or_else(PoisonError::into_inner);
        for slot in &self.callers {
            if let Some(entry) = slot.get() {
                if entry.caller == caller {
                    return increment(&entry.by_result, result);
                }
            }
        }
        if let Some(entry) = more.iter().find(|e| e.caller == caller) {
            return increment(&entry.by_result, result);
        }
        let Some(entry) = self.caller_counters(site, caller) else { return };
        increment(&entry.by_result, result);
        match self.callers.iter().find(|slot| slot.get().is_none()) {
            Some(slot) => {
                let _ = slot.set(entry);
            }
            None => more.push(entry),
        }
    }

    fn caller_counters(&self, site: &CallSite, caller: u32) -> Option<CallerCounters> {
        let (caller_function, caller_module) = span_record::site_name(caller).map_or(("", ""), |c| (c.function, c.module));
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
            if let Some(objective) = site.options.objective {
                if let Some(percentile) = objective.success_rate_target() {
                    labels.push(("objective_name", objective.name()));
                    labels.push(("objective_percentile", percentile.as_label()));
                }
            }
            self.store.counter(CALLS, &labels)
        };
        match (resolve(RESULTS[0]), resolve(RESULTS[1])) {
            (Ok(ok), Ok(error)) => Some(CallerCounters { caller, by_result: [ok, error] }),
            (Err(err), _) | (_, Err(err)) => {
                eprintln!("flext-obs: calls of {} are not counted: {err}", site.function);
                None
            }
        }
    }
}

fn increment(by_result: &[Counter; 2], result: Option<usize>) {
    if let Some(counter) = result.and_then(|r| by_result.get(r)) {
        counter.increment();
    }
}

/// Every call site the attribute made in the program, gathered by the linker, so that their
/// series can exist before the first call. Each site's own static is the slice's element (no
/// second static pointing at it).
#[doc(hidden)]
#[linkme::distributed_slice]
pub static CALL_SITES: [CallSite];

thread_local! {
    /// Whether this thread is resolving a call site (see [`CallSite::resolve`]).
    static RESOLVING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks this thread as resolving a call site until dropped.
struct Resolving(bool);

impl Resolving {
    fn enter() -> Resolving {
        Resolving(RESOLVING.try_with(|r| r.replace(true)).unwrap_or(true))
    }
}

impl Drop for Resolving {
    fn drop(&mut self) {
        let _ = RESOLVING.try_with(|r| r.set(self.0));
    }
}

/// Resolves every monitored function of the program (their counters at 0), once, after the
/// process-wide instance exists. Never blocks and never re-enters: a second caller (or a call
/// made while this thread resolves a call site) returns at once, and the sites it has not reached
/// yet resolve on their first call as before.
pub(crate) fn register_all() {
    static STARTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if RESOLVING.try_with(std::cell::Cell::get).unwrap_or(true) || STARTED.swap(true, std::sync::atomic::Ordering::AcqRel) {
        return;
    }
    for site in CALL_SITES {
        if let Some(state) = site.state() {
            state.register_uncalled(site);
        }
    }
}
