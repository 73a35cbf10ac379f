//! The W3C `tracestate` each trace came into this process with, so the spans of that trace carry
//! it (OTLP's `Span.trace_state`) without any per-call cost: it is noted once, by the first
//! monitored call made in a context that has one (the request's entry), and read when a span is
//! turned back into an entity, off the calling thread. Bounded: at most [`MAX_TRACES`] traces
//! (the oldest forgotten first, counted in [`forgotten`]).

use crate::entity::TraceId;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex, PoisonError};

/// Most traces whose `tracestate` is remembered.
pub(crate) const MAX_TRACES: usize = 4096;

#[derive(Default)]
struct Table {
    by_trace: HashMap<TraceId, Box<str>>,
    order: VecDeque<TraceId>,
}

static TABLE: LazyLock<Mutex<Table>> = LazyLock::new(Mutex::default);
/// Traces in the table (read without the lock, so a process without `tracestate` pays a load).
static LEN: AtomicUsize = AtomicUsize::new(0);
static FORGOTTEN: AtomicU64 = AtomicU64::new(0);

/// Notes the calling thread's `tracestate` as `trace`'s (out of line: only the first monitored
/// call made in a context with a `tracestate` comes here).
#[cold]
#[inline(never)]
pub(crate) fn remember(trace: TraceId) {
    let Some(state) = crate::context::current_tracestate() else { return };
    let text = state.to_string().into_boxed_str();
    let mut table = TABLE.lock().unwrap_or_else(PoisonError::into_inner);
    if table.by_trace.insert(trace, text).is_none() {
        table.order.push_back(trace);
    }
    while table.order.len() > MAX_TRACES {
        if let Some(oldest) = table.order.pop_front() {
            table.by_trace.remove(&oldest);
            FORGOTTEN.fetch_add(1, Ordering::Relaxed);
        }
    }
    LEN.store(table.by_trace.len(), Ordering::Relaxed);
}

/// The `tracestate` `trace` came in with, if it is remembered.
pub(crate) fn of(trace: TraceId) -> Option<Box<str>> {
    if LEN.load(Ordering::Relaxed) == 0 {
        return None;
    }
    TABLE.lock().unwrap_or_else(PoisonError::into_inner).by_trace.get(&trace).cloned()
}

/// Traces whose `tracestate` was forgotten to make room (their later spans go without it).
pub(crate) fn forgotten() -> u64 {
    FORGOTTEN.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_bounded_and_forgets_the_oldest() {
        let state: crate::context::TraceState = "v=1".parse().unwrap();
        let traces: Vec<TraceId> = (0..MAX_TRACES + 10).map(|_| TraceId::random()).collect();
        crate::context::Context::new().with_tracestate(state).run(|| traces.iter().for_each(|t| remember(*t)));
        assert!(TABLE.lock().unwrap().by_trace.len() <= MAX_TRACES);
        assert_eq!(of(traces[0]), None, "the oldest made room");
        assert_eq!(of(traces[MAX_TRACES + 9]).as_deref(), Some("v=1"));
        assert!(forgotten() >= 10);
    }
}
