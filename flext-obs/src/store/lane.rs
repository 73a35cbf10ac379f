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
//!
//! The lane count is one number for the whole process (a thread's lane is its lane in every
//! series of every store), fixed when the first series or span buffer is made: by default
//! twice the parallelism, rounded up to a power of two, between 4 and 64; or what
//! [`StoreSettings::lanes`](super::StoreSettings::lanes) (`FLEXT_STORE_LANES`) asks for, applied
//! when a store is built before then.

use crate::error::{Error, Result};
use crate::thread::THREAD;
use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Most lanes a process can have: one bit each in the ownership mask.
pub const MAX_LANES: usize = 64;

/// How many lanes exist, once fixed.
static LANES: OnceLock<usize> = OnceLock::new();

/// The process's lane count, fixing it at the default if nothing asked for another.
#[inline]
pub(crate) fn count() -> usize {
    *LANES.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(4, std::num::NonZero::get);
        (cpus * 2).next_power_of_two().clamp(4, MAX_LANES)
    })
}

/// Checks a requested lane count: a whole number from 1 to [`MAX_LANES`].
pub(crate) fn check_count(lanes: usize) -> Result<()> {
    if (1..=MAX_LANES).contains(&lanes) {
        Ok(())
    } else {
        Err(Error::invalid("store", "lanes", lanes, format!("must be from 1 to {MAX_LANES}")))
    }
}

/// Fixes the lane count at `lanes`, or checks that it already is: an error (changing nothing)
/// once it was fixed at another count.
pub(crate) fn fix_count(lanes: usize) -> Result<()> {
    check_count(lanes)?;
    let fixed = *LANES.get_or_init(|| lanes);
    if fixed == lanes {
        Ok(())
    } else {
        Err(Error::invalid(
            "store",
            "lanes",
            lanes,
            format!("the process's lane count was fixed at {fixed} when its first series or span buffer was made; set it before then"),
        ))
    }
}

/// How many write lanes every series of this process has (fixed at the first series or span
/// buffer; see [`StoreSettings::lanes`](super::StoreSettings::lanes)).
///
/// ```
/// let lanes = flext_obs::store::lane_count();
/// assert!((1..=flext_obs::store::MAX_LANES).contains(&lanes));
/// ```
pub fn lane_count() -> usize {
    count()
}

/// Bit `i` set = lane `i` is owned by a live thread.
static OWNED: AtomicU64 = AtomicU64::new(0);
/// How many lanes were ever claimed: lanes from here on were never written, so readers skip
/// them (a store read by a scrape touches only the lanes in use).
static USED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

pub(crate) const UNCLAIMED: usize = usize::MAX;
const SHARED: usize = usize::MAX - 1;

/// The lane a thread records into: a lane it alone writes, or [`Lane::SHARED`] (no lane was
/// free: use the shared cell with atomic read-modify-writes). One word, so the monitor's guard
/// stays small.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Lane(usize);

impl Lane {
    pub(crate) const SHARED: Lane = Lane(SHARED);

    /// The index of the lane this thread owns, `None` for the shared cell.
    #[inline]
    pub(crate) fn owned(self) -> Option<usize> {
        (self.0 != SHARED).then_some(self.0)
    }
}

thread_local! {
    /// Made only when a lane is claimed; its destructor hands the lane back at thread exit.
    /// (The lane itself lives in [`crate::thread::THREAD`], which has no destructor.)
    static RELEASE: LaneRelease = const { LaneRelease(Cell::new(false)) };
}

struct LaneRelease(Cell<bool>);

impl Drop for LaneRelease {
    fn drop(&mut self) {
        if self.0.get() {
            let lane = THREAD.with(|t| t.lane.replace(SHARED));
            if lane < 64 {
                OWNED.fetch_and(!(1u64 << lane), Ordering::Release);
            }
        }
    }
}

/// The calling thread's lane, claiming one on first use.
#[inline]
pub(crate) fn current() -> Lane {
    THREAD.with(|t| of(&t.lane))
}

/// The lane held in a thread's `slot`, claiming one on first use.
#[inline]
pub(crate) fn of(slot: &Cell<usize>) -> Lane {
    match slot.get() {
        UNCLAIMED => claim_for_thread(slot),
        lane => Lane(lane),
    }
}

#[cold]
fn claim_for_thread(slot: &Cell<usize>) -> Lane {
    // Arm the release first: if this thread is already being torn down, it cannot own a lane.
    if RELEASE.try_with(|armed| armed.0.set(true)).is_err() {
        slot.set(SHARED);
        return Lane::SHARED;
    }
    let lane = claim();
    slot.set(lane);
    Lane(lane)
}

#[cold]
fn claim() -> usize {
    let lanes = count();
    let mut owned = OWNED.load(Ordering::Acquire);
    loop {
        let free = (!owned).trailing_zeros() as usize;
        if free >= lanes {
            return SHARED;
        }
        match OWNED.compare_exchange_weak(owned, owned | (1u64 << free), Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                USED.fetch_max(free + 1, Ordering::AcqRel);
                return free;
            }
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
    /// Whether the shared cell was ever written: until then readers skip it (one cache miss
    /// less per series on a scrape).
    shared_used: std::sync::atomic::AtomicBool,
}

impl Cells {
    /// Zeroed cells holding `words` words per lane.
    pub(crate) fn new(words: usize) -> Self {
        let lanes = count();
        let blocks_per_lane = words.div_ceil(16).max(1);
        let blocks = (0..(lanes + 1) * blocks_per_lane).map(|_| Block(Default::default())).collect();
        Cells { blocks, blocks_per_lane, lanes, shared_used: std::sync::atomic::AtomicBool::new(false) }
    }

    #[inline]
    fn word(&self, lane: usize, word: usize) -> &AtomicU64 {
        &self.blocks[lane * self.blocks_per_lane + word / 16].0[word % 16]
    }

    /// Adds `n` to `word` in the calling thread's lane.
    #[inline]
    pub(crate) fn add(&self, lane: Lane, word: usize, n: u64) {
        if let Some(i) = lane.owned() {
            let cell = self.word(i, word);
            cell.store(cell.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
        } else {
            self.shared_used.store(true, Ordering::Relaxed);
            self.word(self.lanes, word).fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Adds `x` to the `f64` stored as bits in `word` of the calling thread's lane.
    #[inline]
    pub(crate) fn add_f64(&self, lane: Lane, word: usize, x: f64) {
        if let Some(i) = lane.owned() {
            let cell = self.word(i, word);
            let sum = f64::from_bits(cell.load(Ordering::Relaxed)) + x;
            cell.store(sum.to_bits(), Ordering::Relaxed);
        } else {
            self.shared_used.store(true, Ordering::Relaxed);
            let cell = self.word(self.lanes, word);
            let _ = cell.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| Some((f64::from_bits(bits) + x).to_bits()));
        }
    }

    /// Adds 1 to `count_word` and `x` to the `f64` in `sum_word`, in one lane lookup (a
    /// histogram observation).
    #[inline]
    pub(crate) fn observe(&self, lane: Lane, count_word: usize, sum_word: usize, x: f64) {
        if let Some(i) = lane.owned() {
            let count = self.word(i, count_word);
            count.store(count.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
            let sum = self.word(i, sum_word);
            sum.store((f64::from_bits(sum.load(Ordering::Relaxed)) + x).to_bits(), Ordering::Relaxed);
        } else {
            self.add(Lane::SHARED, count_word, 1);
            self.add_f64(Lane::SHARED, sum_word, x);
        }
    }

    /// The lanes that may hold values: those ever claimed, and the shared one once written.
    fn written_lanes(&self) -> impl Iterator<Item = usize> {
        let used = USED.load(Ordering::Acquire).min(self.lanes);
        let shared = self.shared_used.load(Ordering::Relaxed).then_some(self.lanes);
        (0..used).chain(shared)
    }

    /// Sum of `word` over every lane.
    pub(crate) fn sum(&self, word: usize) -> u64 {
        self.written_lanes().fold(0u64, |acc, lane| acc.wrapping_add(self.word(lane, word).load(Ordering::Relaxed)))
    }

    /// Sum of the `f64` in `word` over every lane.
    pub(crate) fn sum_f64(&self, word: usize) -> f64 {
        self.written_lanes().map(|lane| f64::from_bits(self.word(lane, word).load(Ordering::Relaxed))).sum()
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

#[cfg(test)]
mod tests {
    use super::{MAX_LANES, check_count, count, fix_count};

    #[test]
    fn a_lane_count_is_from_1_to_64_and_fixed_once() {
        assert!(check_count(0).is_err());
        assert!(check_count(MAX_LANES + 1).is_err());
        assert!(check_count(1).is_ok() && check_count(MAX_LANES).is_ok());
        let fixed = count();
        assert!(fix_count(fixed).is_ok(), "asking for the count in force is fine");
        let other = if fixed == 1 { 2 } else { 1 };
        let err = fix_count(other).expect_err("another count is refused");
        assert!(err.to_string().contains(&format!("fixed at {fixed}")), "{err}");
        assert_eq!(count(), fixed, "a refused request changes nothing");
    }
}
