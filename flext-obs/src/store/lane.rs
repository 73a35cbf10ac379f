//! Per-thread write lanes: how two threads record into one series without sharing a cache line
//! and without a locked instruction.
//!
//! Every lane has its own words for every series (kept lane-major, see [`super::cells`], and
//! made when the lane first writes that part of the store), plus a shared set per series made
//! when first needed.
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
use crate::thread::{THREAD, UNCLAIMED};
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

const SHARED: usize = usize::MAX - 1;

/// The lane a thread records into: a lane it alone writes, or [`Lane::SHARED`] (no lane was
/// free: use the shared cell with atomic read-modify-writes). One word, so the monitor's guard
/// stays small.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Lane(usize);

impl Lane {
    pub(crate) const SHARED: Lane = Lane(SHARED);

    /// Lane `i`, as if the calling thread owned it (tests of the cells).
    #[cfg(test)]
    pub(crate) fn owned_for_test(i: usize) -> Lane {
        Lane(i)
    }

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
