//! One process-wide thread that wakes async waiters at their deadlines.
//!
//! [`super::HealthRegistry::check_async`] must not depend on a particular runtime (tokio is an
//! optional dependency) and must not start a thread per run to sleep out the timeout. This
//! thread sleeps until the earliest deadline it holds; a waiter that finishes first clears its
//! cell, so the wake-up costs nothing, and cleared entries are purged when they pile up.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, LazyLock, Mutex, PoisonError};
use std::task::Waker;
use std::time::Instant;

/// Where a waiter keeps the waker to call at its deadline; `None` once it no longer cares.
pub(crate) type WakeCell = Arc<Mutex<Option<Waker>>>;

/// Entries kept before cleared ones are purged.
const PURGE_ABOVE: usize = 4096;

struct Entry {
    at: Instant,
    seq: u64,
    cell: WakeCell,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

#[derive(Default)]
struct Heap {
    entries: BinaryHeap<Reverse<Entry>>,
    seq: u64,
}

struct Timer {
    heap: Mutex<Heap>,
    changed: Condvar,
    running: bool,
}

static TIMER: LazyLock<Arc<Timer>> = LazyLock::new(|| {
    let timer = Arc::new(Timer { heap: Mutex::new(Heap::default()), changed: Condvar::new(), running: true });
    let thread = timer.clone();
    let started = std::thread::Builder::new().name("flext-health-timer".into()).spawn(move || run(&thread));
    match started {
        Ok(_) => timer,
        Err(err) => {
            eprintln!("flext-obs: no health timer thread ({err}); async health waits end at once");
            Arc::new(Timer { heap: Mutex::new(Heap::default()), changed: Condvar::new(), running: false })
        }
    }
});

/// Wakes `cell`'s waker at `at`. Returns false when there is no timer thread: the caller must
/// then treat its deadline as passed rather than wait without one.
pub(crate) fn wake_at(at: Instant, cell: WakeCell) -> bool {
    let timer = &*TIMER;
    if !timer.running {
        return false;
    }
    let mut heap = timer.heap.lock().unwrap_or_else(PoisonError::into_inner);
    if heap.entries.len() >= PURGE_ABOVE {
        heap.entries.retain(|Reverse(e)| e.cell.lock().unwrap_or_else(PoisonError::into_inner).is_some());
    }
    heap.seq += 1;
    let seq = heap.seq;
    let earliest = heap.entries.peek().is_none_or(|Reverse(e)| at < e.at);
    heap.entries.push(Reverse(Entry { at, seq, cell }));
    drop(heap);
    if earliest {
        timer.changed.notify_one();
    }
    true
}

fn run(timer: &Timer) {
    let mut heap = timer.heap.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        let now = Instant::now();
        while heap.entries.peek().is_some_and(|Reverse(e)| e.at <= now) {
            if let Some(Reverse(entry)) = heap.entries.pop() {
                if let Some(waker) = entry.cell.lock().unwrap_or_else(PoisonError::into_inner).take() {
                    waker.wake();
                }
            }
        }
        heap = match heap.entries.peek() {
            Some(Reverse(next)) => {
                let wait = next.at.saturating_duration_since(now);
                timer.changed.wait_timeout(heap, wait).unwrap_or_else(PoisonError::into_inner).0
            }
            None => timer.changed.wait(heap).unwrap_or_else(PoisonError::into_inner),
        };
    }
}
