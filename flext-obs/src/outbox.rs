//! The export queue between the code being observed and the OTLP exporter's thread: kept spans
//! and log entries are offered without waiting; when the queue holds its capacity the item is
//! dropped and counted at once, in the store's `flext_otlp_dropped_total{reason="queue_full"}`
//! handle, so the counter is exact whenever it is read. Nothing is queued while no exporter is
//! installed (one relaxed load per kept span).
//!
//! The queue is std's unbounded channel (a list of small blocks, allocated as items arrive and
//! freed as they leave) bounded by a count of its own: a capacity of a million costs nothing
//! until a million items wait, where a bounded channel would allocate every slot at once. The
//! count covers every item accepted and not yet *settled* (sent or dropped by the exporter), the
//! batch in flight included, so a shutdown that gives up can count exactly what it abandons.

use crate::entity::{LogEntry, Span, SpanId};
use crate::span_record::SpanRecord;
use crate::store::Counter;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};

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

impl Item {
    /// 0 for spans, 1 for log entries: the index of the signal's counters.
    pub(crate) fn signal(&self) -> usize {
        usize::from(matches!(self, Item::Log(_)))
    }
}

/// [`Queue::held`] packs the items held per signal into one word, so that one atomic update
/// checks the capacity and counts: spans in bits 0..31, log entries in bits 31..62, and
/// [`SEALED`] once sealed. The capacity is at most [`crate::config::MAX_QUEUE_SIZE`], far below
/// 2^31.
const SHIFT: u32 = 31;
const MASK: u64 = (1 << SHIFT) - 1;
/// Set once the queue is sealed: nothing more is accepted or settled.
const SEALED: u64 = 1 << 63;

/// Where `signal`'s count starts in [`Queue::held`] (0 spans, 1 logs).
fn shift_of(signal: usize) -> u32 {
    if signal == 0 { 0 } else { SHIFT }
}

fn unpack(held: u64) -> [u64; 2] {
    [held & MASK, (held >> SHIFT) & MASK]
}

/// One exporter's queue, shared by every offering thread and the exporter.
#[derive(Debug)]
pub(crate) struct Queue {
    tx: Sender<Item>,
    /// Items accepted and not yet settled, per signal, with [`SEALED`] once sealed.
    held: AtomicU64,
    capacity: u64,
    /// Whether log entries are taken at all (an exporter can leave them out).
    logs: bool,
    /// Whether spans are taken at all (an exporter with no traces endpoint leaves them out).
    spans: bool,
    /// `flext_otlp_dropped_total{signal, reason="queue_full"}` for spans and logs.
    full: [Counter; 2],
}

impl Queue {
    /// Accepts `item` if fewer than `capacity` items are held, else drops and counts it.
    fn offer(&self, item: Item) {
        let signal = item.signal();
        if (signal == 1 && !self.logs) || (signal == 0 && !self.spans) {
            return;
        }
        let one = 1u64 << shift_of(signal);
        let accepted = self
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                let [spans, logs] = unpack(held);
                (held & SEALED == 0 && spans + logs < self.capacity).then_some(held + one)
            })
            .is_ok();
        if accepted && self.tx.send(item).is_ok() {
            return;
        }
        if accepted {
            // The exporter's receiver is gone: take the item back out of the count.
            self.settle(signal, 1);
        }
        self.full[signal].increment();
    }

    /// Settles `n` items of `signal` (0 spans, 1 logs): sent, or dropped and counted by the
    /// exporter. False when the queue was sealed meanwhile: [`seal`](Queue::seal) counted them.
    pub(crate) fn settle(&self, signal: usize, n: u64) -> bool {
        let shift = shift_of(signal);
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                let have = (held >> shift) & MASK;
                (held & SEALED == 0).then(|| held - (have.min(n) << shift))
            })
            .is_ok()
    }

    /// Refuses every item from now on and returns how many spans and log entries were accepted
    /// and never settled (queued, batched or in flight): the caller counts them as dropped.
    /// Zeros when already sealed.
    pub(crate) fn seal(&self) -> [u64; 2] {
        let held = self.held.swap(SEALED, Ordering::AcqRel);
        if held & SEALED == 0 { unpack(held) } else { [0, 0] }
    }

    /// Spans and log entries accepted and not yet settled.
    pub(crate) fn held(&self) -> [u64; 2] {
        let held = self.held.load(Ordering::Acquire);
        if held & SEALED == 0 { unpack(held) } else { [0, 0] }
    }
}

/// The running exporter's queue; `GENERATION` changes whenever it does, so each thread keeps a
/// clone and only locks to refresh it.
static QUEUE: Mutex<Option<Arc<Queue>>> = Mutex::new(None);
static GENERATION: AtomicU64 = AtomicU64::new(0);
static OPEN: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// This thread's clone of the queue, with the generation it belongs to.
    static LOCAL: RefCell<(u64, Option<Arc<Queue>>)> = const { RefCell::new((0, None)) };
    /// The error message of the failing call on this thread, noted where the error is seen and
    /// taken when the call's span is queued.
    static LAST_ERROR: RefCell<Option<(SpanId, Box<str>)>> = const { RefCell::new(None) };
}

/// Makes a queue holding at most `capacity` items (spans only when `takes[0]`, log entries only
/// when `takes[1]`) whose refusals count in `full` (spans, logs), opens it and returns it with
/// its receiving end.
pub(crate) fn open(capacity: usize, takes: [bool; 2], full: [Counter; 2]) -> (Arc<Queue>, Receiver<Item>) {
    let [spans, logs] = takes;
    let (tx, rx) = channel();
    let capacity = (capacity as u64).min(MASK);
    let queue = Arc::new(Queue { tx, held: AtomicU64::new(0), capacity, logs, spans, full });
    *QUEUE.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&queue));
    GENERATION.fetch_add(1, Ordering::AcqRel);
    OPEN.store(true, Ordering::Release);
    (queue, rx)
}

/// Stops queueing; the receiver keeps what was queued, for the exporter to drain. (An offer
/// racing with this may still land in the old queue: the exporter settles or seals it.)
pub(crate) fn close() {
    OPEN.store(false, Ordering::Release);
    *QUEUE.lock().unwrap_or_else(PoisonError::into_inner) = None;
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
    LOCAL.with(|local| {
        let mut local = local.borrow_mut();
        if local.0 != generation {
            *local = (generation, QUEUE.lock().unwrap_or_else(PoisonError::into_inner).clone());
        }
        if let Some(queue) = &local.1 {
            queue.offer(item);
        }
    });
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

#[cfg(test)]
#[allow(clippy::float_cmp)] // exact counts are the point
mod tests {
    use super::*;
    use crate::entity::LogLevel;
    use crate::store::{Store, StoreSettings};

    fn queue(capacity: u64, logs: bool) -> (Queue, Receiver<Item>, Store) {
        let store = Store::new(StoreSettings::default(), true).unwrap();
        let full =
            [store.counter("full_total", &[("signal", "spans")]).unwrap(), store.counter("full_total", &[("signal", "logs")]).unwrap()];
        let (tx, rx) = channel();
        (Queue { tx, held: AtomicU64::new(0), capacity, logs, spans: true, full }, rx, store)
    }

    fn span() -> Item {
        Item::Manual(Box::new(Span::builder("s", "svc").build().unwrap()))
    }

    fn log() -> Item {
        Item::Log(Box::new(LogEntry::builder("m", LogLevel::Info).build().unwrap()))
    }

    fn full(store: &Store, signal: &str) -> f64 {
        store.snapshot().sum("full_total", &[("signal", signal)])
    }

    #[test]
    fn the_capacity_covers_both_signals_and_every_refusal_is_counted_at_once() {
        let (queue, rx, store) = queue(3, true);
        queue.offer(span());
        queue.offer(log());
        queue.offer(span());
        assert_eq!(queue.held(), [2, 1]);
        queue.offer(log());
        queue.offer(span());
        assert_eq!((full(&store, "spans"), full(&store, "logs")), (1.0, 1.0), "counted as they were refused");
        assert_eq!(rx.try_iter().count(), 3);
        // Taken off the channel is not settled: the capacity still counts them until settled.
        queue.offer(span());
        assert_eq!(full(&store, "spans"), 2.0);
        assert!(queue.settle(0, 2));
        assert_eq!(queue.held(), [0, 1]);
        queue.offer(span());
        assert_eq!(queue.held(), [1, 1]);
    }

    #[test]
    fn sealing_hands_back_what_was_never_settled_and_refuses_the_rest() {
        let (queue, _rx, store) = queue(10, true);
        for _ in 0..4 {
            queue.offer(span());
        }
        queue.offer(log());
        assert_eq!(queue.seal(), [4, 1]);
        assert_eq!(queue.seal(), [0, 0], "sealed once");
        assert!(!queue.settle(0, 4), "the exporter finds the queue sealed and counts nothing");
        queue.offer(span());
        assert_eq!(full(&store, "spans"), 1.0, "an offer after the seal is refused and counted");
        assert_eq!(queue.held(), [0, 0]);
    }

    #[test]
    fn logs_are_not_taken_when_the_exporter_leaves_them_out() {
        let (queue, rx, store) = queue(10, false);
        queue.offer(log());
        assert_eq!((queue.held(), full(&store, "logs"), rx.try_iter().count()), ([0, 0], 0.0, 0));
    }

    #[test]
    fn a_gone_receiver_counts_the_item_as_refused() {
        let (queue, rx, store) = queue(10, true);
        drop(rx);
        queue.offer(span());
        assert_eq!((queue.held(), full(&store, "spans")), ([0, 0], 1.0));
    }
}
