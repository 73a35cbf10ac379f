//! The export queue between the code being observed and the OTLP exporter's thread: kept spans
//! and log entries are offered without waiting; when the queue holds its capacity the item is
//! dropped and counted, in the store's `flext_otlp_dropped_total{reason="queue_full"}` handle.
//! Nothing is queued while no exporter is installed (one relaxed load per kept span).
//!
//! A monitored call's span goes first into its thread's *batch* ([`BATCH`] spans at most), which
//! is handed to the queue at once, with one atomic update of the count for the whole batch
//! (what does not fit is dropped and counted then): when it is full, when the exporter finds its
//! first span older than [`BATCH_DEADLINE`] (it looks every few milliseconds, so an idle
//! thread's spans do not wait for its next call), at every flush and at shutdown (the seal
//! counts what is still in a batch as dropped at shutdown). The handle's count of queued items
//! includes the spans waiting in batches, so sent + dropped + queued is exact whenever it is
//! read.
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
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Spans a thread gathers before handing them to the queue at once.
pub(crate) const BATCH: usize = 32;
/// How long a span may wait in its thread's batch before the exporter takes the batch: it
/// looks when it wakes, at least every 20 ms, and at most every half of this.
pub(crate) const BATCH_DEADLINE: Duration = Duration::from_millis(10);

/// One thread's spans not yet handed to the queue.
#[derive(Debug)]
pub(crate) struct Batch {
    items: Vec<Item>,
    /// The raw clock reading when the first of `items` started.
    since: u64,
}

/// A thread's batch, shared with its queue's list of batches (so the exporter can take it).
type SharedBatch = Arc<Mutex<Batch>>;

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
    /// Every thread's batch of spans for this queue (a thread that ended leaves its batch here
    /// until the exporter has taken it).
    batches: Mutex<Vec<SharedBatch>>,
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

    /// Accepts as many of `items` (spans) as the capacity leaves room for, with one atomic
    /// update, and drops and counts the rest (all of them once sealed). Leaves `items` empty.
    fn hand_over(&self, items: &mut Vec<Item>) {
        if items.is_empty() {
            return;
        }
        let n = items.len() as u64;
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
        #[allow(clippy::cast_possible_truncation)] // room <= items.len()
        for item in items.drain(..room as usize) {
            if self.tx.send(item).is_ok() {
                sent += 1;
            }
        }
        // What did not fit is dropped where it lies.
        items.clear();
        if sent < room {
            // The exporter's receiver is gone: take what was not sent back out of the count.
            self.settle(0, room - sent);
        }
        if n > sent {
            self.full[0].increment_by(n - sent);
        }
    }

    /// Makes a thread's batch for this queue.
    fn register(&self) -> SharedBatch {
        let batch = Arc::new(Mutex::new(Batch { items: Vec::with_capacity(BATCH), since: 0 }));
        lock(&self.batches).push(Arc::clone(&batch));
        batch
    }

    /// Adds a monitored call's span to a thread's batch, handed over when full (at once when
    /// the queue is sealed: no one would take it later).
    #[inline]
    fn add(&self, batch: &Mutex<Batch>, span: &SpanRecord, error: Option<Box<str>>) {
        let mut batch = lock(batch);
        if batch.items.is_empty() {
            batch.since = span.start_raw;
        }
        batch.items.push(Item::Call(*span, error));
        // Read under the batch's lock: a seal that emptied this batch before we took the lock
        // set the flag first, so a span added after it is counted here, never left behind.
        if batch.items.len() >= BATCH || self.held.load(Ordering::Acquire) & SEALED != 0 {
            self.hand_over(&mut batch.items);
        }
    }

    /// Hands over every thread's batch (`all`, for a flush) or those whose first span started
    /// [`BATCH_DEADLINE`] or more before `now` (a raw clock reading), and forgets the batches of
    /// threads that ended once they are empty.
    pub(crate) fn collect(&self, all: bool, now: u64) {
        let deadline = u64::try_from(BATCH_DEADLINE.as_nanos()).unwrap_or(u64::MAX);
        lock(&self.batches).retain(|shared| {
            let mut batch = lock(shared);
            if !batch.items.is_empty() && (all || crate::clock::nanos_between(batch.since, now) >= deadline) {
                self.hand_over(&mut batch.items);
            }
            Arc::strong_count(shared) > 1 || !batch.items.is_empty()
        });
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
    /// and never settled (queued, batched or in flight), the spans still in threads' batches
    /// included (emptied here): the caller counts them as dropped. Zeros when already sealed.
    pub(crate) fn seal(&self) -> [u64; 2] {
        let held = self.held.swap(SEALED, Ordering::AcqRel);
        if held & SEALED != 0 {
            return [0, 0];
        }
        let [spans, logs] = unpack(held);
        let pending: u64 = lock(&self.batches)
            .iter()
            .map(|shared| {
                let mut batch = lock(shared);
                let n = batch.items.len() as u64;
                batch.items.clear();
                n
            })
            .sum();
        [spans + pending, logs]
    }

    /// Spans and log entries accepted and not yet settled, with the spans waiting in threads'
    /// batches (read with every batch locked, so that none moves into the queue meanwhile).
    pub(crate) fn held(&self) -> [u64; 2] {
        let batches = lock(&self.batches);
        let locked: Vec<MutexGuard<'_, Batch>> = batches.iter().map(|shared| lock(shared)).collect();
        let pending: u64 = locked.iter().map(|batch| batch.items.len() as u64).sum();
        let held = self.held.load(Ordering::Acquire);
        drop(locked);
        if held & SEALED == 0 {
            let [spans, logs] = unpack(held);
            [spans + pending, logs]
        } else {
            [0, 0]
        }
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
    /// This thread's batch of spans in `queue`, made on its first span.
    batch: Option<SharedBatch>,
    /// The error message of the failing call on this thread, noted where the error is seen and
    /// taken when the call's span is batched.
    last_error: Option<(SpanId, Box<str>)>,
}

impl Local {
    /// Takes the queue of `generation`, handing this thread's batch to the queue it was made
    /// for first (which accepts it, or counts it dropped once sealed).
    #[cold]
    fn refresh(&mut self, generation: u64) {
        if self.generation == generation {
            return;
        }
        if let (Some(queue), Some(batch)) = (&self.queue, self.batch.take()) {
            queue.hand_over(&mut lock(&batch).items);
        }
        self.queue.clone_from(&lock(&QUEUE));
        self.generation = generation;
    }
}

thread_local! {
    static LOCAL: RefCell<Local> = const { RefCell::new(Local { generation: 0, queue: None, batch: None, last_error: None }) };
}

/// Makes a queue holding at most `capacity` items (spans only when `takes[0]`, log entries only
/// when `takes[1]`) whose refusals count in `full` (spans, logs), opens it and returns it with
/// its receiving end.
pub(crate) fn open(capacity: usize, takes: [bool; 2], full: [Counter; 2]) -> (Arc<Queue>, Receiver<Item>) {
    let [spans, logs] = takes;
    let (tx, rx) = channel();
    let capacity = (capacity as u64).min(MASK);
    let queue = Arc::new(Queue { tx, held: AtomicU64::new(0), capacity, logs, spans, full, batches: Mutex::new(Vec::new()) });
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

/// Offers a monitored call's span with the error message noted for it, through this thread's
/// batch (out of line: the monitor's exit path stays as small as without export).
#[cold]
#[inline(never)]
pub(crate) fn offer_call(span: &SpanRecord) {
    let generation = GENERATION.load(Ordering::Acquire);
    let batched = LOCAL.try_with(|local| {
        let Ok(mut local) = local.try_borrow_mut() else { return false };
        let local = &mut *local;
        let error = local.last_error.take_if(|(id, _)| *id == span.span_id).map(|(_, text)| text);
        if local.generation != generation {
            local.refresh(generation);
        }
        if let Some(queue) = &local.queue {
            if queue.spans {
                let batch = local.batch.get_or_insert_with(|| queue.register());
                queue.add(batch, span, error);
            }
        }
        true
    });
    if batched != Ok(true) {
        offer_direct(Item::Call(*span, None));
    }
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
        (Queue { tx, held: AtomicU64::new(0), capacity, logs, spans: true, full, batches: Mutex::new(Vec::new()) }, rx, store)
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

    fn record(start_raw: u64) -> SpanRecord {
        SpanRecord {
            trace_id: crate::entity::TraceId::from_words(1, 2),
            span_id: SpanId::from_word(3),
            parent: None,
            site: 0,
            status: crate::entity::SpanStatus::Completed,
            start_raw,
            duration_ns: 1,
            correlation_id: None,
        }
    }

    fn add(queue: &Queue, batch: &Mutex<Batch>) {
        queue.add(batch, &record(0), None);
    }

    #[test]
    fn a_batch_is_handed_over_when_full_with_what_does_not_fit_counted_then() {
        let (queue, rx, store) = queue(40, true);
        let batch = queue.register();
        for _ in 0..BATCH - 1 {
            add(&queue, &batch);
        }
        assert_eq!((rx.try_iter().count(), queue.held()), (0, [BATCH as u64 - 1, 0]), "waiting in the batch, counted as queued");
        add(&queue, &batch);
        assert_eq!(rx.try_iter().count(), BATCH, "handed over when full");
        assert_eq!(queue.held(), [BATCH as u64, 0]);
        for _ in 0..BATCH {
            add(&queue, &batch);
        }
        // Room for 8 of the second batch: the other 24 are dropped and counted at the hand-over.
        assert_eq!((rx.try_iter().count(), full(&store, "spans")), (8, 24.0));
        assert_eq!(queue.held(), [40, 0]);
    }

    #[test]
    fn the_exporter_takes_a_batch_past_its_deadline_and_every_batch_on_a_flush() {
        let (queue, rx, _store) = queue(1000, true);
        let (idle, busy) = (queue.register(), queue.register());
        let start = crate::clock::now();
        queue.add(&idle, &record(start), None);
        let deadline = u64::try_from(BATCH_DEADLINE.as_nanos()).unwrap();
        // A raw reading at least the deadline after `start`.
        let mut later = crate::clock::now();
        while crate::clock::nanos_between(start, later) < deadline {
            std::thread::sleep(BATCH_DEADLINE / 4);
            later = crate::clock::now();
        }
        queue.add(&busy, &record(later), None);
        queue.collect(false, later);
        assert_eq!(rx.try_iter().count(), 1, "only the batch past its deadline");
        queue.collect(true, later);
        assert_eq!(rx.try_iter().count(), 1, "a flush takes every batch");
        assert_eq!(queue.held(), [2, 0]);
        // A thread that ended leaves its batch; once empty it is forgotten.
        drop(idle);
        queue.collect(true, later);
        assert_eq!(lock(&queue.batches).len(), 1);
    }

    #[test]
    fn the_seal_counts_the_spans_left_in_batches_and_a_span_added_after_it_is_refused_at_once() {
        let (queue, rx, store) = queue(1000, true);
        let batch = queue.register();
        for _ in 0..3 {
            add(&queue, &batch);
        }
        queue.offer(span());
        assert_eq!(queue.seal(), [4, 0], "one queued and three in the batch");
        add(&queue, &batch);
        assert_eq!((full(&store, "spans"), lock(&batch).items.len()), (1.0, 0), "counted at once, not left in the batch");
        assert_eq!(rx.try_iter().count(), 1);
    }

    #[test]
    fn a_gone_receiver_counts_the_item_as_refused() {
        let (queue, rx, store) = queue(10, true);
        drop(rx);
        queue.offer(span());
        assert_eq!((queue.held(), full(&store, "spans")), ([0, 0], 1.0));
    }
}
