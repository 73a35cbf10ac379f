//! The retention sweep: evicts idle series, then removes the families left with no series (and
//! their exposed names and raw history), so names used once do not stay in every scrape.

use super::family::RETIRED;
use super::{Registry, Store, Sweeper, lock, write};
use crate::error::{Error, Result};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

impl Store {
    /// Evicts series that have no live handle and saw no record for the retention period, then
    /// removes the metric names left with no series: they vanish from the exposition, their
    /// names may be registered again (with another kind too) and their raw history goes. A
    /// metric's overflow series is never evicted, and names declared with
    /// [`set_buckets`](Store::set_buckets) or [`describe`](Store::describe) are kept. Returns
    /// how many series were evicted. [`crate::Observability`] can run it on an interval.
    ///
    /// ```
    /// let store = flext_obs::store::Store::new(Default::default(), true)?;
    /// store.counter("once_total", &[])?.increment(); // the handle is dropped at once
    /// assert_eq!(store.sweep(), 0);                  // not idle for 10 minutes yet
    /// assert_eq!(store.series_count(), 1);
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn sweep(&self) -> usize {
        let Some(retention) = self.registry.settings.retention else { return 0 };
        self.sweep_older_than(retention, Instant::now())
    }

    pub(super) fn sweep_older_than(&self, retention: Duration, now: Instant) -> usize {
        // The scrape layout holds every series' cells, which would count as a live handle: drop
        // it, and keep scrapes from rebuilding it until the sweep is done.
        let mut cache = lock(&self.registry.sorted);
        *cache = (0, Arc::new(super::export::Sorted::default()));
        let mut evicted = 0;
        for shard in &*self.registry.shards {
            let mut map = write(shard);
            map.retain(|super::Entry(series)| {
                if series.family().is_overflow(series) {
                    return true;
                }
                let in_use = series.has_handles();
                // A handle dropped while this runs marks the series before it lets go of it.
                std::sync::atomic::fence(Ordering::Acquire);
                let (touched, since) = series.last_seen();
                let now = self.registry.since_epoch(now);
                if in_use || touched {
                    series.seen_at(now);
                    return true;
                }
                let idle_for = now.saturating_sub(since);
                if u128::from(idle_for) < retention.as_nanos() {
                    return true;
                }
                saturating_decrement(&series.family().live);
                saturating_decrement(&self.registry.total_live);
                evicted += 1;
                false
            });
        }
        let retired = self.retire_empty_families();
        if evicted > 0 || retired > 0 {
            self.registry.generation.fetch_add(1, Ordering::Release);
        }
        drop(cache);
        evicted
    }

    /// Removes every family with no series, no overflow series and no declaration. A family is
    /// retired by swapping its live count from 0 to [`RETIRED`] under the families' write lock,
    /// so a resolution racing with the sweep either got its series in first (and the family
    /// stays) or sees the family retired and looks the name up again.
    fn retire_empty_families(&self) -> usize {
        let mut families = write(&self.registry.families);
        let empty: Vec<_> = families
            .by_name
            .values()
            .filter(|f| f.live.load(Ordering::Acquire) == 0 && f.overflow.get().is_none() && !f.declared.load(Ordering::Acquire))
            .cloned()
            .collect();
        let mut retired = Vec::new();
        for family in empty {
            if family.live.compare_exchange(0, RETIRED, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                families.remove(&family.name);
                retired.push(family.name.clone());
            }
        }
        drop(families);
        if !retired.is_empty() {
            let mut raw = lock(&self.registry.raw);
            for name in &retired {
                raw.remove(name);
            }
        }
        retired.len()
    }

    /// Starts a background thread that calls [`sweep`](Store::sweep) every `interval`. It stops
    /// when the returned guard is dropped or the store is gone.
    pub fn start_sweeper(&self, interval: Duration) -> Result<Sweeper> {
        if interval.is_zero() {
            return Err(Error::invalid("store", "sweep_interval", interval, "must be greater than zero"));
        }
        let weak: Weak<Registry> = Arc::downgrade(&self.registry);
        let worker = crate::worker::Worker::spawn("flext-obs-sweeper", move |stopped| {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                match weak.upgrade() {
                    Some(registry) => {
                        Store { registry }.sweep();
                    }
                    None => return,
                }
            }
        })?;
        Ok(Sweeper { _worker: worker })
    }
}

/// Takes one from a live count, never below 0 (nor from [`RETIRED`]): a count that wrapped would
/// refuse every new series of the metric until restart.
fn saturating_decrement(count: &AtomicUsize) {
    let _ = count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n != 0 && n != RETIRED).then(|| n - 1));
}
