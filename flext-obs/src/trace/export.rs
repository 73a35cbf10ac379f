//! The OTLP export's side of the span rings: a monitored call's span is written once, into its
//! thread's ring, and the export takes it from there. Each ring keeps a cursor, `exported`: the
//! spans from it to `head` are *pending*. The thread that owns the ring hands its pending spans
//! to the export queue when there are [`BATCH`] of them (one read of the cursor per call, and
//! one atomic update of the queue's count per batch); the export thread takes the pending spans
//! of any ring whose oldest one started [`BATCH_DEADLINE`] ago (an idle thread's too), and of
//! every ring on a flush. Whoever moves the cursor (a compare-and-swap) hands those spans over,
//! so each is handed over once. A span the ring overwrote before it was taken (only possible if
//! a thread got [`crate::trace::SPANS_PER_LANE`] spans ahead of its cursor, or the buffer was
//! cleared) is counted as dropped, `queue_full`.

use super::{BUFFERS, Ring, SPANS_PER_LANE, read_slot};
use crate::outbox::{self, BATCH, BATCH_DEADLINE, Queue};
use crate::span_record::SpanRecord;
use std::sync::atomic::Ordering;

/// Called by the owner after writing span number `written - 1` of `ring`, while an exporter
/// runs: hands the pending spans over when there are a batch of them.
#[inline]
pub(super) fn after_write(ring: &Ring, span: &SpanRecord, written: u64) {
    if span.status == crate::entity::SpanStatus::Error {
        outbox::keep_error(span.span_id);
    }
    if written.wrapping_sub(ring.exported.load(Ordering::Relaxed)) >= BATCH as u64 {
        owner_hand_over(ring);
    }
}

#[cold]
#[inline(never)]
fn owner_hand_over(ring: &Ring) {
    if let Some(claimed) = claim(ring, None) {
        outbox::with_queue(|queue| take(ring, queue, claimed));
    }
}

/// The spans of a ring someone claimed: `from..head` moved past the cursor, of which
/// `first..head` can still be in the ring (those before `first` were overwritten).
#[derive(Clone, Copy, Debug)]
struct Claimed {
    from: u64,
    first: u64,
    head: u64,
}

/// Claims the pending spans of `ring` (only if the oldest started before `older_than`, a raw
/// clock reading, when given) by moving its cursor to its head. `None` when there are none, or
/// another thread claimed them first.
fn claim(ring: &Ring, older_than: Option<u64>) -> Option<Claimed> {
    let from = ring.exported.load(Ordering::Acquire);
    let head = ring.head.load(Ordering::Acquire);
    if head <= from {
        return None;
    }
    let first = from.max(head.saturating_sub(SPANS_PER_LANE as u64));
    if let Some(cutoff) = older_than {
        let deadline = u64::try_from(BATCH_DEADLINE.as_nanos()).unwrap_or(u64::MAX);
        let old = read_slot(ring, first).is_none_or(|r| crate::clock::nanos_between(r.start_raw, cutoff) >= deadline);
        if !old {
            return None;
        }
    }
    ring.exported.compare_exchange(from, head, Ordering::AcqRel, Ordering::Acquire).ok()?;
    Some(Claimed { from, first, head })
}

/// Hands the claimed spans to `queue`: room is reserved first (one atomic update), so only the
/// spans that fit are read from the ring; the others, and those the ring overwrote before they
/// were read, are counted as dropped.
fn take(ring: &Ring, queue: &Queue, claimed: Claimed) {
    let Claimed { from, first, head } = claimed;
    queue.take_calls(head - first, first - from, |i| {
        let n = first + i;
        let record = read_slot(ring, n)?;
        // A slot more than a ring behind the head now may hold a later span than `n`.
        (ring.head.load(Ordering::Acquire).saturating_sub(n) <= SPANS_PER_LANE as u64).then_some(record)
    });
}

/// The export thread's turn: hands `queue` the pending spans of every ring (`all`, on a flush)
/// or of those whose oldest pending span started [`BATCH_DEADLINE`] before `now`.
pub(crate) fn collect(queue: &Queue, all: bool, now: u64) {
    if queue.is_sealed() {
        return;
    }
    for ring in &*BUFFERS.lanes {
        if let Some(claimed) = claim(ring, (!all).then_some(now)) {
            take(ring, queue, claimed);
        }
    }
}

/// Spans pending in the rings (written, not yet handed to the queue).
pub(crate) fn pending() -> u64 {
    BUFFERS.lanes.iter().map(|ring| ring.head.load(Ordering::Acquire).saturating_sub(ring.exported.load(Ordering::Acquire))).sum()
}

/// Marks every span in the rings as handed over without handing it over, and returns how many
/// were pending: at an exporter's start (the spans of before it are not its to send) and at its
/// shutdown (what is still pending is dropped and counted by the caller).
pub(crate) fn skip_pending() -> u64 {
    let mut skipped = 0;
    for ring in &*BUFFERS.lanes {
        let head = ring.head.load(Ordering::Acquire);
        // Never backwards: a claim may have moved the cursor past `head` meanwhile (its spans
        // are its to hand over).
        let from = ring.exported.fetch_max(head, Ordering::AcqRel);
        skipped += head.saturating_sub(from);
    }
    skipped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::{SpanId, SpanStatus, TraceId};
    use crate::trace::Slot;
    use std::sync::atomic::AtomicU64;

    fn ring() -> Ring {
        Ring {
            head: AtomicU64::new(0),
            exported: AtomicU64::new(0),
            slots: (0..SPANS_PER_LANE).map(|_| Slot(Default::default())).collect(),
        }
    }

    fn span(n: u64, start_raw: u64) -> SpanRecord {
        SpanRecord {
            trace_id: TraceId::from_words(1, n + 1),
            span_id: SpanId::from_word(n + 1),
            parent: None,
            site: 1,
            status: SpanStatus::Completed,
            start_raw,
            duration_ns: 5,
            correlation_id: None,
            remote_parent: false,
        }
    }

    /// Claims and reads what `take` would read (all of it: as with room for everything).
    fn taken(ring: &Ring, older_than: Option<u64>) -> Option<(Vec<u64>, u64)> {
        let Claimed { from, first, head } = claim(ring, older_than)?;
        let ids = (first..head).filter_map(|n| read_slot(ring, n)).map(|r| r.span_id.to_u64()).collect();
        Some((ids, first - from))
    }

    #[test]
    fn pending_spans_are_taken_once_in_order() {
        let ring = ring();
        for n in 0..5 {
            ring.write(&span(n, 0));
        }
        assert_eq!(taken(&ring, None), Some((vec![1, 2, 3, 4, 5], 0)));
        assert!(claim(&ring, None).is_none(), "taken once");
        ring.write(&span(5, 0));
        assert_eq!(taken(&ring, None), Some((vec![6], 0)));
    }

    #[test]
    fn spans_the_ring_overwrote_before_they_were_taken_are_counted_lost() {
        let ring = ring();
        for n in 0..SPANS_PER_LANE as u64 + 3 {
            ring.write(&span(n, 0));
        }
        let (ids, lost) = taken(&ring, None).unwrap();
        assert_eq!((ids.len(), lost), (SPANS_PER_LANE, 3));
        assert_eq!(ids[0], 4, "the oldest three were overwritten");
    }

    #[test]
    fn with_a_cutoff_only_a_ring_whose_oldest_pending_span_is_past_the_deadline_is_taken() {
        let ring = ring();
        let start = crate::clock::now();
        ring.write(&span(0, start));
        assert!(claim(&ring, Some(start)).is_none(), "not old enough");
        let deadline = u64::try_from(BATCH_DEADLINE.as_nanos()).unwrap();
        let mut later = crate::clock::now();
        while crate::clock::nanos_between(start, later) < deadline {
            std::thread::sleep(BATCH_DEADLINE / 4);
            later = crate::clock::now();
        }
        assert_eq!(taken(&ring, Some(later)), Some((vec![1], 0)));
    }
}
