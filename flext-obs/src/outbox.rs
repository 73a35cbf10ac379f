//! The export queue between the code being observed and the OTLP exporter's thread: kept spans
//! and log entries are offered with a non-blocking `try_send` on a bounded channel; when it is
//! full the item is dropped and counted. Nothing is queued while no exporter is installed (one
//! relaxed load per kept span).

use crate::entity::{LogEntry, Span, SpanId};
use crate::span_record::SpanRecord;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Mutex, PoisonError};

/// One thing waiting for export.
#[derive(Debug)]
pub(crate) enum Item {
    /// A monitored call's span, with its error message when it failed.
    Call(SpanRecord, Option<Box<str>>),
    /// A span made by hand.
    Manual(Box<Span>),
    /// A log entry.
    Log(Box<LogEntry>),
}

/// The sender of the running exporter's queue; `GENERATION` changes whenever it does, so each
/// thread keeps a clone and only locks to refresh it.
static SENDER: Mutex<Option<SyncSender<Item>>> = Mutex::new(None);
static GENERATION: AtomicU64 = AtomicU64::new(0);
static OPEN: AtomicBool = AtomicBool::new(false);
static DROPPED_SPANS: AtomicU64 = AtomicU64::new(0);
static DROPPED_LOGS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's clone of the queue's sender, with the generation it belongs to.
    static LOCAL: RefCell<(u64, Option<SyncSender<Item>>)> = const { RefCell::new((0, None)) };
    /// The error message of the failing call on this thread, noted where the error is seen and
    /// taken when the call's span is queued.
    static LAST_ERROR: RefCell<Option<(SpanId, Box<str>)>> = const { RefCell::new(None) };
}

/// Makes a queue of `capacity` items, opens it and returns its receiving end.
pub(crate) fn open(capacity: usize) -> Receiver<Item> {
    let (tx, rx) = sync_channel(capacity);
    *SENDER.lock().unwrap_or_else(PoisonError::into_inner) = Some(tx);
    GENERATION.fetch_add(1, Ordering::AcqRel);
    OPEN.store(true, Ordering::Release);
    rx
}

/// Stops queueing; the receiver keeps what was queued, for the exporter to drain.
pub(crate) fn close() {
    OPEN.store(false, Ordering::Release);
    *SENDER.lock().unwrap_or_else(PoisonError::into_inner) = None;
    GENERATION.fetch_add(1, Ordering::AcqRel);
}

/// Whether an exporter takes items.
#[inline]
pub(crate) fn is_open() -> bool {
    OPEN.load(Ordering::Relaxed)
}

/// Offers a monitored call's span with the error message noted for it (out of line: the
/// monitor's exit path stays as small as without export).
#[cold]
#[inline(never)]
pub(crate) fn offer_call(span: &SpanRecord) {
    offer(Item::Call(*span, take_error(span.span_id)));
}

/// Offers an item without waiting; a full queue drops it and counts the drop.
#[cold]
pub(crate) fn offer(item: Item) {
    let generation = GENERATION.load(Ordering::Acquire);
    let refused = LOCAL.with(|local| {
        let mut local = local.borrow_mut();
        if local.0 != generation {
            *local = (generation, SENDER.lock().unwrap_or_else(PoisonError::into_inner).clone());
        }
        match &local.1 {
            Some(tx) => match tx.try_send(item) {
                Ok(()) => None,
                Err(TrySendError::Full(item) | TrySendError::Disconnected(item)) => Some(item),
            },
            None => None,
        }
    });
    if let Some(item) = refused {
        let counter = if matches!(item, Item::Log(_)) { &DROPPED_LOGS } else { &DROPPED_SPANS };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Spans and log entries dropped so far because the queue was full.
pub(crate) fn dropped() -> (u64, u64) {
    (DROPPED_SPANS.load(Ordering::Relaxed), DROPPED_LOGS.load(Ordering::Relaxed))
}

/// Notes the error message of the call whose span is `span` (formatted only while exporting).
#[cold]
pub(crate) fn note_error(span: SpanId, message: &dyn std::fmt::Display) {
    let text = message.to_string().into_boxed_str();
    LAST_ERROR.with(|slot| *slot.borrow_mut() = Some((span, text)));
}

/// Takes the error message noted for `span` on this thread, if any.
pub(crate) fn take_error(span: SpanId) -> Option<Box<str>> {
    LAST_ERROR.with(|slot| {
        let mut slot = slot.borrow_mut();
        if slot.as_ref().is_some_and(|(id, _)| *id == span) { slot.take().map(|(_, text)| text) } else { None }
    })
}
