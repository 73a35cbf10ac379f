//! The export queue between the code being observed and the OTLP exporter's thread: kept spans
//! and log entries are offered without waiting; when the queue holds its capacity the item is
//! dropped and counted, in the store's `flext_otlp_dropped_total{reason="queue_full"}` handle.
//! Nothing is queued while no exporter is installed (one relaxed load per kept span).
//!
//! A monitored call's span is not copied here one by one: it is taken from its thread's span
//! ring in batches of up to [`BATCH`] (see the trace module's `export`), each handed over with
//! one atomic update of the count for the whole batch (what does not fit is dropped and counted
//! then): by the thread when it has written a batch, by the export thread when the oldest
//! waiting span started [`BATCH_DEADLINE`] ago (an idle thread's included), at every flush and,
//! counted as dropped at shutdown, at the seal. The handle's count of queued items includes the
//! spans still waiting in the rings, so sent + dropped + queued is exact whenever it is read.
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
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Spans a thread gathers before handing them to the queue at once.
pub(crate) const BATCH: usize = 32;
/// How long a span may wait in its thread's ring before the exporter takes it: it looks when
/// it wakes, at least every 20 ms, and at most every half of this.
pub(crate) const BATCH_DEADLINE: Duration = Duration::from_millis(10);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

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

    /// Takes `n` monitored calls' spans: reserves room for as many as fit with one atomic
    /// update (none once sealed), sends what `read(i)` gives for `i` below that room, and counts
    /// the rest, the unreadable ones (`None`) and `lost` more as dropped.
    pub(crate) fn take_calls(&self, n: u64, lost: u64, mut read: impl FnMut(u64) -> Option<SpanRecord>) {
        let room_in = |held: u64| {
            let [spans, logs] = unpack(held);
            if held & SEALED == 0 { self.capacity.saturating_sub(spans + logs).min(n) } else { 0 }
        };
        let room = self
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                let room = room_in(held);
                (room > 0).then_some(held + room)
            })
            .map_or(0, room_in);
        let mut sent = 0;
        for i in 0..room {
            let Some(record) = read(i) else { continue };
            let error = if record.status == crate::entity::SpanStatus::Error { take_kept_error(record.span_id) } else { None };
            if self.tx.send(Item::Call(record, error)).is_ok() {
                sent += 1;
            }
        }
        if sent < room {
            // Unreadable, or the exporter's receiver is gone: take them back out of the count.
            self.settle(0, room - sent);
        }
        if n - sent + lost > 0 {
            self.full[0].increment_by(n - sent + lost);
        }
    }

    /// Whether the queue was sealed (its exporter stopped).
    pub(crate) fn is_sealed(&self) -> bool {
        self.held.load(Ordering::Acquire) & SEALED != 0
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

/// What a thread keeps for export, in one thread-local.
struct Local {
    /// The generation `queue` belongs to.
    generation: u64,
    /// This thread's clone of the queue.
    queue: Option<Arc<Queue>>,
    /// The error message of the failing call on this thread, noted where the error is seen and
    /// taken when the call's span is batched.
    last_error: Option<(SpanId, Box<str>)>,
}

impl Local {
    /// Takes the queue of `generation`.
    #[cold]
    fn refresh(&mut self, generation: u64) {
        if self.generation == generation {
            return;
        }
        self.queue.clone_from(&lock(&QUEUE));
        self.generation = generation;
    }
}

thread_local! {
    static LOCAL: RefCell<Local> = const { RefCell::new(Local { generation: 0, queue: None, last_error: None }) };
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

/// Offers the span of a monitored call made on a thread without a span ring of its own, with
/// the error message noted for it (out of line: the monitor's exit path stays as small as
/// without export).
#[cold]
#[inline(never)]
pub(crate) fn offer_call(span: &SpanRecord) {
    let error = LOCAL.try_with(|local| local.try_borrow_mut().ok().and_then(|mut local| take_noted(&mut local, span.span_id)));
    offer(Item::Call(*span, error.ok().flatten()));
}

fn take_noted(local: &mut Local, span: SpanId) -> Option<Box<str>> {
    local.last_error.take_if(|(id, _)| *id == span).map(|(_, text)| text)
}

/// Runs `f` with the running queue (or, when none runs any more, the one this thread knew: it
/// takes what it is given, or counts it dropped once sealed).
#[cold]
pub(crate) fn with_queue(f: impl FnOnce(&Queue)) {
    let generation = GENERATION.load(Ordering::Acquire);
    let queue = LOCAL.try_with(|local| {
        let mut local = local.try_borrow_mut().ok()?;
        let known = local.queue.clone();
        local.refresh(generation);
        local.queue.clone().or(known)
    });
    if let Some(queue) = queue.ok().flatten().or_else(|| lock(&QUEUE).clone()) {
        f(&queue);
    }
}

/// Error messages of failed calls whose spans wait in a ring, by span (a bounded table: past
/// [`KEPT_ERRORS`] the oldest message is forgotten; its span is still sent, without it).
static ERRORS: Mutex<VecDeque<(SpanId, Box<str>)>> = Mutex::new(VecDeque::new());
const KEPT_ERRORS: usize = 4096;

/// Keeps the message noted on this thread for the failed call whose span was just written to
/// the thread's ring, until the span is taken for export.
#[cold]
pub(crate) fn keep_error(span: SpanId) {
    let noted = LOCAL.try_with(|local| local.try_borrow_mut().ok().and_then(|mut local| take_noted(&mut local, span)));
    if let Ok(Some(text)) = noted {
        let mut errors = lock(&ERRORS);
        if errors.len() == KEPT_ERRORS {
            errors.pop_front();
        }
        errors.push_back((span, text));
    }
}

/// Takes the message kept for `span`.
#[cold]
pub(crate) fn take_kept_error(span: SpanId) -> Option<Box<str>> {
    let mut errors = lock(&ERRORS);
    let at = errors.iter().position(|(id, _)| *id == span)?;
    errors.remove(at).map(|(_, text)| text)
}

/// Offers an item without waiting; a full queue drops it and counts the drop.
#[cold]
pub(crate) fn offer(item: Item) {
    let generation = GENERATION.load(Ordering::Acquire);
    let mut item = Some(item);
    let _ = LOCAL.try_with(|local| {
        if let Ok(mut local) = local.try_borrow_mut() {
            local.refresh(generation);
            if let (Some(queue), Some(item)) = (&local.queue, item.take()) {
                queue.offer(item);
            }
        }
    });
    // This thread's state is being torn down (or in use further up the stack): the shared one.
    if let Some(item) = item.filter(|_| is_open()) {
        offer_direct(item);
    }
}

/// Offers an item to the running queue without this thread's state.
#[cold]
fn offer_direct(item: Item) {
    let queue = lock(&QUEUE).clone();
    if let Some(queue) = queue {
        queue.offer(item);
    }
}

/// Notes the error message of the call whose span is `span` (formatted only while exporting).
#[cold]
pub(crate) fn note_error(span: SpanId, message: &dyn std::fmt::Display) {
    let text = message.to_string().into_boxed_str();
    let _ = LOCAL.try_with(|local| {
        if let Ok(mut local) = local.try_borrow_mut() {
            local.last_error = Some((span, text));
        }
    });
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

    fn record(n: u64) -> SpanRecord {
        SpanRecord {
            trace_id: crate::entity::TraceId::from_words(1, n + 1),
            span_id: SpanId::from_word(n + 1),
            parent: None,
            site: 0,
            status: crate::entity::SpanStatus::Completed,
            start_raw: 0,
            duration_ns: 1,
            correlation_id: None,
            remote_parent: false,
        }
    }

    #[test]
    fn calls_are_read_only_as_far_as_the_capacity_goes_and_the_rest_counted_with_the_lost() {
        let (queue, rx, store) = queue(40, true);
        let mut read = Vec::new();
        queue.take_calls(32, 0, |i| {
            read.push(i);
            Some(record(i))
        });
        assert_eq!((rx.try_iter().count(), queue.held(), read.len()), (32, [32, 0], 32));
        read.clear();
        queue.take_calls(32, 2, |i| {
            read.push(i);
            // One of them cannot be read (its slot was rewritten meanwhile).
            (i != 3).then(|| record(i))
        });
        // Room for 8, of which 7 were read: the other 25 and the 2 lost are dropped and counted.
        assert_eq!(read, (0..8).collect::<Vec<_>>(), "only what fits is read");
        assert_eq!((rx.try_iter().count(), full(&store, "spans"), queue.held()), (7, 27.0, [39, 0]));
        assert!(!queue.is_sealed());
        let _ = queue.seal();
        queue.take_calls(1, 0, |_| unreachable!("nothing is read once sealed"));
        assert_eq!((full(&store, "spans"), queue.is_sealed()), (28.0, true), "sealed: refused and counted");
    }

    #[test]
    fn a_failed_call_s_message_waits_for_its_span_and_only_for_it() {
        let span = SpanId::from_word(0xfeed);
        note_error(span, &"disk full");
        keep_error(SpanId::from_word(0xbeef));
        assert_eq!(take_kept_error(span), None, "kept only for the span it was noted for");
        keep_error(span);
        assert_eq!(take_kept_error(span).as_deref(), Some("disk full"));
        assert_eq!(take_kept_error(span), None, "taken once");
    }

    #[test]
    fn a_gone_receiver_counts_the_item_as_refused() {
        let (queue, rx, store) = queue(10, true);
        drop(rx);
        queue.offer(span());
        assert_eq!((queue.held(), full(&store, "spans")), ([0, 0], 1.0));
    }
}
