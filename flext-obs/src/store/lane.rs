//! Per-thread write lanes: how two threads record into one series without sharing a cache line
//! and without a locked instruction.
//!
//! Every series keeps one cell per lane plus one shared cell. A thread claims a lane the first
//! time it records and releases it when it exits; while it owns the lane it is the only writer
//! of that lane's cells in every series, so an update is a plain load and store (no `lock`
//! prefix). Ownership moves between threads through an acquire/release bitmask, so a new owner
//! sees every value the previous one wrote and no increment is lost. Threads beyond the lane
//! count, or recording from a thread-local destructor after their lane was released, use the
//! shared cell with real atomic read-modify-writes: slower, never wrong.

use std::cell::Cell;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// How many lanes exist: twice the parallelism, rounded up to a power of two, between 4 and 64.
pub(crate) static LANES: LazyLock<usize> = LazyLock::new(|| {
    let cpus = std::thread::available_parallelism().map_or(4, std::num::NonZero::get);
    (cpus * 2).next_power_of_two().clamp(4, 64)
});

/// Bit `i` set = lane `i` is owned by a live thread.
static OWNED: AtomicU64 = AtomicU64::new(0);

const UNCLAIMED: usize = usize::MAX;
const SHARED: usize = usize::MAX - 1;

/// The lane a thread records into.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Lane {
    /// This thread is the only writer of lane `n`.
    Owned(usize),
    /// No lane is free: use the shared cell with atomic read-modify-writes.
    Shared,
}

struct LaneSlot(Cell<usize>);

impl Drop for LaneSlot {
    fn drop(&mut self) {
        let lane = self.0.get();
        if lane < 64 {
            self.0.set(SHARED);
            OWNED.fetch_and(!(1u64 << lane), Ordering::Release);
        }
    }
}

thread_local! {
    static SLOT: LaneSlot = const { LaneSlot(Cell::new(UNCLAIMED)) };
}

/// The calling thread's lane, claiming one on first use.
#[inline]
pub(crate) fn current() -> Lane {
    SLOT.try_with(|slot| match slot.0.get() {
        UNCLAIMED => {
            let lane = claim();
            slot.0.set(lane);
            to_lane(lane)
        }
        lane => to_lane(lane),
    })
    .unwrap_or(Lane::Shared)
}

#[inline]
fn to_lane(lane: usize) -> Lane {
    if lane == SHARED { Lane::Shared } else { Lane::Owned(lane) }
}

#[cold]
fn claim() -> usize {
    let lanes = *LANES;
    let mut owned = OWNED.load(Ordering::Acquire);
    loop {
        let free = (!owned).trailing_zeros() as usize;
        if free >= lanes {
            return SHARED;
        }
        match OWNED.compare_exchange_weak(owned, owned | (1u64 << free), Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return free,
            Err(now) => owned = now,
        }
    }
}

/// One cache-line-pair of words: 128 bytes, so that adjacent-line prefetch does not make two
/// lanes share either.
#[repr(align(128))]
struct Block([AtomicU64; 16]);

/// `words` atomic words per lane, for every lane plus the shared one, each lane on its own
/// cache lines.
pub(crate) struct Cells {
    blocks: Box<[Block]>,
    blocks_per_lane: usize,
    lanes: usize,
}

impl Cells {
    /// Zeroed cells holding `words` words per lane.
    pub(crate) fn new(words: usize) -> Self {
        let lanes = *LANES;
        let blocks_per_lane = words.div_ceil(16).max(1);
        let blocks = (0..(lanes + 1) * blocks_per_lane).map(|_| Block(Default::default())).collect();
        Cells { blocks, blocks_per_lane, lanes }
    }

    #[inline]
    fn word(&self, lane: usize, word: usize) -> &AtomicU64 {
        &self.blocks[lane * self.blocks_per_lane + word / 16].0[word % 16]
    }

    /// Adds `n` to `word` in the calling thread's lane.
    #[inline]
    pub(crate) fn add(&self, lane: Lane, word: usize, n: u64) {
        match lane {
            Lane::Owned(i) => {
                let cell = self.word(i, word);
                cell.store(cell.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
            }
            Lane::Shared => {
                self.word(self.lanes, word).fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    /// Adds `x` to the `f64` stored as bits in `word` of the calling thread's lane.
    #[inline]
    pub(crate) fn add_f64(&self, lane: Lane, word: usize, x: f64) {
        match lane {
            Lane::Owned(i) => {
                let cell = self.word(i, word);
                let sum = f64::from_bits(cell.load(Ordering::Relaxed)) + x;
                cell.store(sum.to_bits(), Ordering::Relaxed);
            }
            Lane::Shared => {
                let cell = self.word(self.lanes, word);
                let _ = cell.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| Some((f64::from_bits(bits) + x).to_bits()));
            }
        }
    }

    /// Sum of `word` over every lane.
    pub(crate) fn sum(&self, word: usize) -> u64 {
        (0..=self.lanes).fold(0u64, |acc, lane| acc.wrapping_add(self.word(lane, word).load(Ordering::Relaxed)))
    }

    /// Sum of the `f64` in `word` over every lane.
    pub(crate) fn sum_f64(&self, word: usize) -> f64 {
        (0..=self.lanes).map(|lane| f64::from_bits(self.word(lane, word).load(Ordering::Relaxed))).sum()
    }

    /// Zeroes every word (for `reset()`; records racing with it may survive or be lost).
    pub(crate) fn clear(&self) {
        for block in &*self.blocks {
            for word in &block.0 {
                word.store(0, Ordering::Relaxed);
            }
        }
    }
}
