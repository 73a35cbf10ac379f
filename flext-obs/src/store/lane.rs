//! Per-thread write lanes: how two threads record into one series without sharing a cache line
//! and without a locked instruction.
//!
//! Every series keeps one cell per lane that wrote it (made on that lane's first write, so a
//! series costs the same memory at 4 lanes as at 64) plus a shared cell made when first needed.
//! A thread claims a lane the first time it records and releases it when it exits; while it owns the lane it is the only writer
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
            Ok(_) => return free,
            Err(now) => owned = now,
        }
    }
}

/// One cache-line-pair of words: 128 bytes, so that adjacent-line prefetch does not make two
/// lanes share either.
#[repr(align(128))]
struct Block([AtomicU64; 16]);

/// No lane holds this slot yet.
const FREE_SLOT: usize = usize::MAX;

/// One lane's words in one series, allocated when that lane first writes the series.
struct Slot {
    /// The lane whose words these are, or [`FREE_SLOT`]; set once.
    lane: std::sync::atomic::AtomicUsize,
    words: OnceLock<Box<[Block]>>,
}

impl Slot {
    const fn new() -> Self {
        Slot { lane: std::sync::atomic::AtomicUsize::new(FREE_SLOT), words: OnceLock::new() }
    }
}

/// Slots for the second and further lanes writing a series, four at a time.
struct Chunk {
    slots: [Slot; 4],
    next: OnceLock<Box<Chunk>>,
}

/// `words` atomic words per writing lane, plus a shared set for threads without a lane.
///
/// Lanes get their words when they first write this series, not when it is made: the first
/// lane to write takes the inline slot; later ones take slots in a chain of chunks of four,
/// made as they are needed (at most one chunk per four lanes of the process). So a series
/// written by one thread holds one 128-byte-aligned block set whatever the lane count, and one
/// written by k threads holds k of them: no memory for lanes that never wrote it. A lane's
/// words are written only by the thread owning the lane (no locked instruction); the slot a
/// lane uses in a series never changes once taken.
pub(crate) struct Cells {
    first: Slot,
    more: OnceLock<Box<Chunk>>,
    /// Written with atomic read-modify-writes by threads without a lane; made on first use.
    shared: OnceLock<Box<[AtomicU64]>>,
    words: usize,
}

fn lane_words(words: usize) -> Box<[Block]> {
    (0..words.div_ceil(16).max(1)).map(|_| Block(Default::default())).collect()
}

fn new_chunk() -> Box<Chunk> {
    Box::new(Chunk { slots: [const { Slot::new() }; 4], next: OnceLock::new() })
}

#[inline]
fn word_in(blocks: &[Block], word: usize) -> &AtomicU64 {
    &blocks[word / 16].0[word % 16]
}

/// Adds `n` to a word only its lane's owner writes: a plain load and store.
#[inline]
fn add_owned(cell: &AtomicU64, n: u64) {
    cell.store(cell.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

/// Adds `x` to the `f64` in a word only its lane's owner writes.
#[inline]
fn add_f64_owned(cell: &AtomicU64, x: f64) {
    cell.store((f64::from_bits(cell.load(Ordering::Relaxed)) + x).to_bits(), Ordering::Relaxed);
}

impl Cells {
    /// Zeroed cells holding `words` words per writing lane (nothing is allocated until a lane
    /// writes).
    pub(crate) fn new(words: usize) -> Self {
        Cells { first: Slot::new(), more: OnceLock::new(), shared: OnceLock::new(), words }
    }

    /// The words of lane `lane` (owned by the calling thread), allocating them on its first
    /// write of this series.
    #[inline]
    fn owned(&self, lane: usize) -> &[Block] {
        // Inline: a lane whose words exist in the first or second slot (two threads on one
        // series is common). A first write, or a third writer, goes out of line.
        if self.first.lane.load(Ordering::Relaxed) == lane {
            if let Some(words) = self.first.words.get() {
                return words;
            }
        } else if let Some(words) = self
            .more
            .get()
            .map(|chunk| &chunk.slots[0])
            .filter(|slot| slot.lane.load(Ordering::Relaxed) == lane)
            .and_then(|slot| slot.words.get())
        {
            return words;
        }
        self.other_slot(lane)
    }

    /// The words of a lane not found inline: its first write of this series (the slot is
    /// taken and its words made), or a lane past the second slot. Bounded: every lane takes at most one slot, so the chain has at most one chunk per
    /// four lanes of the process, plus one.
    #[cold]
    #[inline(never)]
    fn other_slot(&self, lane: usize) -> &[Block] {
        let take = |slot: &Slot| {
            let owner = slot.lane.load(Ordering::Relaxed);
            owner == lane
                || (owner == FREE_SLOT && slot.lane.compare_exchange(FREE_SLOT, lane, Ordering::AcqRel, Ordering::Relaxed).is_ok())
        };
        if take(&self.first) {
            return self.first.words.get_or_init(|| lane_words(self.words));
        }
        let mut chunk = self.more.get_or_init(new_chunk);
        loop {
            if let Some(slot) = chunk.slots.iter().find(|slot| take(slot)) {
                return slot.words.get_or_init(|| lane_words(self.words));
            }
            chunk = chunk.next.get_or_init(new_chunk);
        }
    }

    fn shared(&self) -> &[AtomicU64] {
        self.shared.get_or_init(|| (0..self.words).map(|_| AtomicU64::new(0)).collect())
    }

    /// Adds `n` to `word` in the calling thread's lane.
    #[inline]
    pub(crate) fn add(&self, lane: Lane, word: usize, n: u64) {
        if let Some(i) = lane.owned() {
            add_owned(word_in(self.owned(i), word), n);
        } else {
            self.add_shared(word, n);
        }
    }

    /// [`Cells::add`] for a thread without a lane: out of line, so the owned path inlines.
    #[cold]
    #[inline(never)]
    fn add_shared(&self, word: usize, n: u64) {
        self.shared()[word].fetch_add(n, Ordering::Relaxed);
    }

    /// Adds `x` to the `f64` stored as bits in `word` of the calling thread's lane.
    #[inline]
    pub(crate) fn add_f64(&self, lane: Lane, word: usize, x: f64) {
        if let Some(i) = lane.owned() {
            add_f64_owned(word_in(self.owned(i), word), x);
        } else {
            let _ =
                self.shared()[word].fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| Some((f64::from_bits(bits) + x).to_bits()));
        }
    }

    /// Adds 1 to `count_word` and `x` to the `f64` in `sum_word`, in one lane lookup (a
    /// histogram observation).
    #[inline]
    pub(crate) fn observe(&self, lane: Lane, count_word: usize, sum_word: usize, x: f64) {
        if let Some(i) = lane.owned() {
            let blocks = self.owned(i);
            add_owned(word_in(blocks, count_word), 1);
            add_f64_owned(word_in(blocks, sum_word), x);
        } else {
            self.observe_shared(count_word, sum_word, x);
        }
    }

    /// [`Cells::observe`] for a thread without a lane, out of line.
    #[cold]
    #[inline(never)]
    fn observe_shared(&self, count_word: usize, sum_word: usize, x: f64) {
        self.add_shared(count_word, 1);
        self.add_f64(Lane::SHARED, sum_word, x);
    }

    /// `word` of every lane that wrote this series, then of the shared set once made.
    fn each_word(&self, word: usize) -> impl Iterator<Item = &AtomicU64> {
        let chunks = std::iter::successors(self.more.get().map(|c| &**c), |c| c.next.get().map(|c| &**c));
        let slots = std::iter::once(&self.first).chain(chunks.flat_map(|c| c.slots.iter()));
        let lanes = slots.filter_map(|slot| slot.words.get()).map(move |blocks| word_in(blocks, word));
        lanes.chain(self.shared.get().map(|shared| &shared[word]))
    }

    /// Sum of `word` over every lane.
    pub(crate) fn sum(&self, word: usize) -> u64 {
        self.each_word(word).fold(0u64, |acc, cell| acc.wrapping_add(cell.load(Ordering::Relaxed)))
    }

    /// Sum of the `f64` in `word` over every lane.
    pub(crate) fn sum_f64(&self, word: usize) -> f64 {
        self.each_word(word).map(|cell| f64::from_bits(cell.load(Ordering::Relaxed))).sum()
    }

    /// Zeroes every word (for `reset()`; records racing with it may survive or be lost).
    pub(crate) fn clear(&self) {
        for word in 0..self.words {
            for cell in self.each_word(word) {
                cell.store(0, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Cells, Lane, MAX_LANES, check_count, count, fix_count};

    #[test]
    fn lanes_get_words_when_they_first_write_and_every_write_is_summed() {
        let cells = Cells::new(20); // two blocks per lane
        assert!(cells.first.words.get().is_none() && cells.more.get().is_none() && cells.shared.get().is_none(), "nothing before a write");
        assert_eq!(cells.sum(19), 0);
        cells.add(Lane(1), 19, 5);
        assert!(cells.first.words.get().is_some() && cells.more.get().is_none(), "one writing lane: the inline slot only");
        cells.add(Lane(1), 19, 2);
        cells.add(Lane(0), 19, 10);
        let more = cells.more.get().expect("a second lane makes a chunk");
        assert_eq!(more.slots.iter().filter(|slot| slot.words.get().is_some()).count(), 1, "only the lanes that wrote hold words");
        for lane in 2..6 {
            cells.add(Lane(lane), 0, 1); // lanes 2..=4 fill the chunk, lane 5 chains another
        }
        assert!(more.next.get().is_some_and(|next| next.slots[0].lane.load(std::sync::atomic::Ordering::Relaxed) == 5));
        assert_eq!(cells.sum(0), 4);
        cells.add(Lane::SHARED, 19, 100);
        cells.observe(Lane(0), 3, 4, 0.5);
        cells.observe(Lane::SHARED, 3, 4, 0.25);
        assert_eq!(cells.sum(19), 117);
        assert_eq!(cells.sum(3), 2);
        assert!((cells.sum_f64(4) - 0.75).abs() < 1e-12);
        cells.clear();
        assert_eq!((cells.sum(19), cells.sum(3)), (0, 0));
        cells.add(Lane(1), 19, 1);
        assert_eq!(cells.sum(19), 1, "the slots stay with their lanes after a clear");
    }

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
