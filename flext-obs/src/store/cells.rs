//! The words series record into, kept lane-major: every lane has its own chunks of words, and a
//! series is an index into them (the same index in every lane).
//!
//! A series' words sit at one word offset `base` of a process-wide arena. Each lane holds the
//! arena in chunks of [`CHUNK_WORDS`] words (8 KiB), a chunk made the first time that lane
//! writes any series in it. So a series costs its header plus its words once for every lane
//! whose chunk holds them, and a series written by one thread at a time costs 8 bytes per word
//! whatever the lane count: the lanes that never wrote that part of the arena hold nothing.
//! A lane's words are written only by the thread owning the lane (a plain load and store, no
//! locked instruction, see [`super::lane`]); neighbouring series share a lane's cache lines,
//! which costs nothing since one thread writes them all.
//!
//! The directory of chunks costs 16 bytes per lane slot (65 of them) per column of
//! [`CHUNK_WORDS`] words, about 1 byte per word, made 16 columns at a time.
//!
//! When a series goes (its last handle dropped after the retention sweep evicted it), its
//! words are zeroed in every lane and its range goes back to a free list for the next series
//! of the same size. Chunks are never freed: the arena is as large as the most words live at
//! once, times the lanes that wrote them, and at most [`CHUNKS`] chunks per lane. Series past
//! that (and series of more than [`CHUNK_WORDS`] words) record into their own shared words
//! with atomic read-modify-writes, as threads without a lane do: slower, never wrong.

use super::lane::{Lane, MAX_LANES};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

/// Words per chunk of a lane: 8 KiB.
pub(crate) const CHUNK_WORDS: usize = 1024;
/// Chunks the arena has at most per lane: 4 M words (32 MiB) per lane.
pub(crate) const CHUNKS: usize = 4096;

type Chunk = [AtomicU64; CHUNK_WORDS];

/// One chunk index's chunks, one per lane that wrote into it (and one more, at
/// [`SHARED_SLOT`], for threads without a lane), and which lanes those are.
struct Column {
    lanes: [OnceLock<Box<Chunk>>; MAX_LANES + 1],
    /// Bit `l` set = lane `l`'s chunk exists (set after it is made), so a read visits only
    /// the lanes that wrote here.
    written: AtomicU64,
}

/// Columns per group: the arena's directory is made a group (16 columns, 17 KB) at a time, as
/// series first reach it.
const GROUP: usize = 16;

/// The arena's chunk directory, column-major (a read of one word over every lane reads one
/// contiguous column), made a group at a time.
static GROUPS: [OnceLock<Box<[Column; GROUP]>>; CHUNKS / GROUP] = [const { OnceLock::new() }; CHUNKS / GROUP];

/// Column `index`, if its group was made.
fn column_at(index: usize) -> Option<&'static Column> {
    Some(&GROUPS.get(index / GROUP)?.get()?[index % GROUP])
}

/// Column `index`, making its group on first use.
#[cold]
fn make_column(index: usize) -> Option<&'static Column> {
    let group = GROUPS.get(index / GROUP)?.get_or_init(|| {
        Box::new(std::array::from_fn(|_| Column { lanes: [const { OnceLock::new() }; MAX_LANES + 1], written: AtomicU64::new(0) }))
    });
    group.get(index % GROUP)
}

/// The chunk slot of threads without a lane: written with atomic read-modify-writes.
const SHARED_SLOT: usize = MAX_LANES;

/// Word ranges handed out and given back.
struct Ranges {
    /// The first word never handed out.
    next: usize,
    /// Ranges given back, by length.
    free: BTreeMap<u32, Vec<u32>>,
}

static RANGES: Mutex<Ranges> = Mutex::new(Ranges { next: 0, free: BTreeMap::new() });

/// No arena range: every lane uses the shared words.
const NO_BASE: u32 = u32::MAX;

/// A range of `words` words in one chunk, or [`NO_BASE`] when the arena is full or `words` is
/// more than a chunk.
fn take_range(words: usize) -> u32 {
    if words == 0 || words > CHUNK_WORDS {
        return NO_BASE;
    }
    let Ok(len) = u32::try_from(words) else { return NO_BASE };
    let mut ranges = RANGES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(base) = ranges.free.get_mut(&len).and_then(Vec::pop) {
        return base;
    }
    let mut base = ranges.next;
    if base % CHUNK_WORDS + words > CHUNK_WORDS {
        base = base.next_multiple_of(CHUNK_WORDS); // a range never straddles two chunks
    }
    match u32::try_from(base) {
        Ok(at) if base + words <= CHUNKS * CHUNK_WORDS => {
            ranges.next = base + words;
            at
        }
        _ => NO_BASE,
    }
}

fn give_back(base: u32, words: u32) {
    let mut ranges = RANGES.lock().unwrap_or_else(PoisonError::into_inner);
    ranges.free.entry(words).or_default().push(base);
}

/// A lane's chunk at column `column`, made on its first write there.
#[cold]
#[inline(never)]
fn make_chunk(column: &'static Column, lane: usize) -> Option<&'static Chunk> {
    let slot = column.lanes.get(lane)?;
    let chunk = slot.get_or_init(|| Box::new([const { AtomicU64::new(0) }; CHUNK_WORDS]));
    if lane < MAX_LANES {
        column.written.fetch_or(1u64 << lane, Ordering::Release);
    }
    Some(chunk)
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

fn add_f64_shared(cell: &AtomicU64, x: f64) {
    let _ = cell.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| Some((f64::from_bits(bits) + x).to_bits()));
}

/// `words` atomic words per writing lane (in the lane-major arena), plus a shared set for
/// threads without a lane (in the arena's shared slot). 16 bytes, plus 8 bytes per word in
/// each lane whose chunk holds them.
pub(crate) struct Cells(Place);

/// Where a series' words are: 16 bytes, and with spare tag values in [`Spare`] so that
/// [`super::series::SeriesData`] around a counter's cells stays 16 bytes too.
enum Place {
    /// Words `base..base + words` of the arena (in one chunk, so `words` <= [`CHUNK_WORDS`]),
    /// in `column`.
    Arena { column: &'static Column, base: u32, words: u16, _spare: Spare },
    /// A series without an arena range: its words, written by every thread with atomic
    /// read-modify-writes.
    Own(Box<OwnWords>),
}

/// A byte with one valid value: the enums holding [`Place`] keep their tags in its other 255
/// (a series pays no tag word).
#[derive(Clone, Copy)]
#[repr(u8)]
enum Spare {
    Tag = 0,
}

/// The words of a series without an arena range.
struct OwnWords(Box<[AtomicU64]>);

impl Cells {
    /// Zeroed cells of `words` words (a range of the arena is taken; no lane holds memory for
    /// it until it writes).
    pub(crate) fn new(words: usize) -> Self {
        let base = take_range(words);
        if base != NO_BASE {
            // `take_range` hands out at most a chunk's words.
            if let (Some(column), Ok(count)) = (make_column(base as usize / CHUNK_WORDS), u16::try_from(words)) {
                return Cells(Place::Arena { column, base, words: count, _spare: Spare::Tag });
            }
            give_back(base, u32::try_from(words).unwrap_or(u32::MAX));
        }
        Cells(Place::Own(Box::new(OwnWords((0..words).map(|_| AtomicU64::new(0)).collect()))))
    }

    /// The number of words.
    fn words(&self) -> usize {
        match &self.0 {
            Place::Arena { words, .. } => usize::from(*words),
            Place::Own(own) => own.0.len(),
        }
    }

    /// The column holding this series' words and their offset in a chunk.
    #[inline]
    fn column(&self) -> Option<(&'static Column, usize)> {
        match self.0 {
            Place::Arena { column, base, .. } => Some((column, base as usize % CHUNK_WORDS)),
            Place::Own(_) => None,
        }
    }

    /// Lane `lane`'s chunk holding this series and the series' offset in it, the chunk made on
    /// the lane's first write there; `None` when the series has no arena range.
    #[inline]
    fn owned(&self, lane: usize) -> Option<(&'static Chunk, usize)> {
        let (column, offset) = self.column()?;
        match column.lanes.get(lane).and_then(OnceLock::get) {
            Some(chunk) => Some((chunk, offset)),
            None => Some((make_chunk(column, lane)?, offset)),
        }
    }

    #[cold]
    #[inline(never)]
    fn shared_word(&self, word: usize) -> Option<&AtomicU64> {
        if word >= self.words() {
            return None;
        }
        match &self.0 {
            Place::Arena { column, base, .. } => make_chunk(column, SHARED_SLOT)?.get(*base as usize % CHUNK_WORDS + word),
            Place::Own(own) => own.0.get(word),
        }
    }

    /// Adds `n` to `word` in the calling thread's lane.
    #[inline]
    pub(crate) fn add(&self, lane: Lane, word: usize, n: u64) {
        if let Some(cell) = lane.owned().and_then(|i| self.owned(i)).and_then(|(chunk, at)| chunk.get(at + word)) {
            add_owned(cell, n);
        } else {
            self.add_shared(word, n);
        }
    }

    /// [`Cells::add`] for a thread without a lane: out of line, so the owned path inlines.
    #[cold]
    #[inline(never)]
    fn add_shared(&self, word: usize, n: u64) {
        if let Some(cell) = self.shared_word(word) {
            cell.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Adds `x` to the `f64` stored as bits in `word` of the calling thread's lane.
    #[inline]
    pub(crate) fn add_f64(&self, lane: Lane, word: usize, x: f64) {
        if let Some(cell) = lane.owned().and_then(|i| self.owned(i)).and_then(|(chunk, at)| chunk.get(at + word)) {
            add_f64_owned(cell, x);
        } else if let Some(cell) = self.shared_word(word) {
            add_f64_shared(cell, x);
        }
    }

    /// Adds 1 to `count_word` and `x` to the `f64` in `sum_word`, in one lane lookup (a
    /// histogram observation).
    #[inline]
    pub(crate) fn observe(&self, lane: Lane, count_word: usize, sum_word: usize, x: f64) {
        if let Some((chunk, at)) = lane.owned().and_then(|i| self.owned(i)) {
            if let (Some(count), Some(sum)) = (chunk.get(at + count_word), chunk.get(at + sum_word)) {
                add_owned(count, 1);
                add_f64_owned(sum, x);
                return;
            }
        }
        self.observe_shared(count_word, sum_word, x);
    }

    /// [`Cells::observe`] for a thread without a lane, out of line.
    #[cold]
    #[inline(never)]
    fn observe_shared(&self, count_word: usize, sum_word: usize, x: f64) {
        self.add_shared(count_word, 1);
        if let Some(cell) = self.shared_word(sum_word) {
            add_f64_shared(cell, x);
        }
    }

    /// `word` of every lane that wrote this part of the arena, then of the shared set once
    /// made.
    fn each_word(&self, word: usize) -> impl Iterator<Item = &AtomicU64> {
        let (column, at) = match self.column() {
            Some((column, offset)) if word < self.words() => (Some(column), offset + word),
            _ => (None, 0),
        };
        let mut written = column.map_or(0, |c| c.written.load(Ordering::Acquire));
        let lanes = std::iter::from_fn(move || {
            let column = column?;
            while written != 0 {
                let lane = written.trailing_zeros() as usize;
                written &= written - 1;
                if let Some(cell) = column.lanes[lane].get().and_then(|chunk| chunk.get(at)) {
                    return Some(cell);
                }
            }
            None
        });
        let shared = match column {
            Some(column) => column.lanes[SHARED_SLOT].get().and_then(|chunk| chunk.get(at)),
            None => match &self.0 {
                Place::Own(own) => own.0.get(word),
                Place::Arena { .. } => None,
            },
        };
        lanes.chain(shared)
    }

    /// Where the series' words start in the arena, for a reader that keeps it next to its
    /// other series (the scrape layout, see [`sum_pair_at`]); `None` without an arena range.
    pub(crate) fn base(&self) -> Option<u32> {
        match self.0 {
            Place::Arena { base, .. } => Some(base),
            Place::Own(_) => None,
        }
    }

    /// Sum of `word` over every lane.
    pub(crate) fn sum(&self, word: usize) -> u64 {
        self.each_word(word).fold(0u64, |acc, cell| acc.wrapping_add(cell.load(Ordering::Relaxed)))
    }

    /// Sum of the `f64` in `word` over every lane.
    pub(crate) fn sum_f64(&self, word: usize) -> f64 {
        self.each_word(word).map(|cell| f64::from_bits(cell.load(Ordering::Relaxed))).sum()
    }

    /// Zeroes every word (for `reset()` and before the range is reused; records racing with a
    /// reset may survive or be lost).
    pub(crate) fn clear(&self) {
        for word in 0..self.words() {
            for cell in self.each_word(word) {
                cell.store(0, Ordering::Relaxed);
            }
        }
    }
}

/// The sums over every lane (and the shared slot) of the whole-number word `base + int` and
/// of the `f64` word `base + float`, read straight from the arena (no hop through the series):
/// `base` is a [`Cells::base`] of cells still alive, and both words are in its range.
pub(crate) fn sum_pair_at(base: u32, int: usize, float: usize) -> (u64, f64) {
    let base = base as usize;
    let Some(column) = column_at(base / CHUNK_WORDS) else { return (0, 0.0) };
    let (int, float) = (base % CHUNK_WORDS + int, base % CHUNK_WORDS + float);
    let read = |chunk: &Chunk| -> (u64, f64) {
        let whole = chunk.get(int).map_or(0, |w| w.load(Ordering::Relaxed));
        (whole, chunk.get(float).map_or(0.0, |w| f64::from_bits(w.load(Ordering::Relaxed))))
    };
    let (mut whole, mut fraction) = column.lanes[SHARED_SLOT].get().map_or((0u64, 0.0), |chunk| read(chunk));
    let mut written = column.written.load(Ordering::Acquire);
    while written != 0 {
        let lane = written.trailing_zeros() as usize;
        written &= written - 1;
        if let Some((w, f)) = column.lanes[lane].get().map(|chunk| read(chunk)) {
            whole = whole.wrapping_add(w);
            fraction += f;
        }
    }
    (whole, fraction)
}

impl Drop for Cells {
    /// Zeroes the series' words in every lane and gives the range back. No thread can write
    /// them any more: every handle is gone (the last one's drop happens before this), so the
    /// next series given the range starts from zero in every lane.
    fn drop(&mut self) {
        if let Place::Arena { base, words, .. } = self.0 {
            self.clear();
            give_back(base, u32::from(words));
        }
    }
}

/// Lane chunks made so far, over every lane (for tests and the memory benchmark's notes).
#[cfg(test)]
fn chunks_made() -> u32 {
    let groups = GROUPS.iter().filter_map(OnceLock::get);
    groups.flat_map(|g| g.iter()).map(|c| c.written.load(Ordering::Relaxed).count_ones()).sum()
}

#[cfg(test)]
mod tests {
    use super::{CHUNK_WORDS, Cells, chunks_made};
    use crate::store::lane::Lane;

    fn lane(i: usize) -> Lane {
        Lane::owned_for_test(i)
    }

    #[test]
    fn lanes_write_their_own_chunks_and_every_write_is_summed() {
        let cells = Cells::new(20);
        assert!(cells.base().is_some());
        assert_eq!(cells.sum(19), 0);
        cells.add(lane(1), 19, 5);
        cells.add(lane(1), 19, 2);
        cells.add(lane(0), 19, 10);
        for l in 2..6 {
            cells.add(lane(l), 0, 1);
        }
        assert_eq!(cells.sum(0), 4);
        cells.add(Lane::SHARED, 19, 100);
        cells.observe(lane(0), 3, 4, 0.5);
        cells.observe(Lane::SHARED, 3, 4, 0.25);
        assert_eq!(cells.sum(19), 117);
        assert_eq!(cells.sum(3), 2);
        assert!((cells.sum_f64(4) - 0.75).abs() < 1e-12);
        let (whole, fraction) = super::sum_pair_at(cells.base().expect("an arena range"), 3, 4);
        assert_eq!(whole, 2);
        assert!((fraction - 0.75).abs() < 1e-12, "the scrape's direct read sums the same lanes");
        cells.clear();
        assert_eq!((cells.sum(19), cells.sum(3)), (0, 0));
        cells.add(lane(1), 19, 1);
        assert_eq!(cells.sum(19), 1);
        assert_eq!(cells.sum(20), 0, "a word past the series reads nothing");
        cells.add(lane(1), 20, 1); // out of range: ignored, never a panic
    }

    #[test]
    fn a_range_given_back_is_zero_for_its_next_series_and_ranges_do_not_overlap() {
        // An unusual size, so that other tests' series do not take the range given back.
        let a = Cells::new(777);
        let b = Cells::new(777);
        a.add(lane(0), 2, 7);
        b.add(lane(0), 0, 1);
        assert_eq!((a.sum(2), b.sum(0), b.sum(2)), (7, 1, 0), "neighbours do not see each other's words");
        let base = a.base();
        drop(a);
        let reused = std::iter::repeat_with(|| Cells::new(777)).take(64).find(|c| c.base() == base);
        let reused = reused.expect("the range given back is handed out again");
        assert_eq!(reused.sum(2), 0, "a reused range starts from zero");
    }

    #[test]
    fn series_too_large_for_a_chunk_use_shared_words() {
        let big = Cells::new(CHUNK_WORDS + 1);
        assert_eq!(big.base(), None);
        big.add(lane(0), CHUNK_WORDS, 3);
        big.observe(lane(2), 0, 1, 1.5);
        assert_eq!((big.sum(CHUNK_WORDS), big.sum(0)), (3, 1));
        assert!((big.sum_f64(1) - 1.5).abs() < 1e-12);
        assert!(chunks_made() > 0);
    }
}
