//! Shared helpers for the criterion benchmarks.

use criterion::Criterion;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// Runs `op` `iters` times on each of `threads` threads at once, and returns the longest time one
/// thread took: the per-thread cost under contention, as criterion's `iter_custom` expects.
///
/// # Panics
/// When a benchmark thread panics.
pub fn per_thread<F>(threads: usize, iters: u64, op: F) -> Duration
where
    F: Fn(u64) + Send + Sync + 'static,
{
    let op = Arc::new(op);
    let start = Arc::new(Barrier::new(threads));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (op, start) = (op.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let began = Instant::now();
                for i in 0..iters {
                    op(i);
                }
                began.elapsed()
            })
        })
        .collect();
    workers.into_iter().map(|w| w.join().expect("benchmark thread panicked")).max().unwrap_or_default()
}

/// The measurement settings every benchmark here uses: short enough for a 2-core CI machine,
/// long enough for stable medians.
pub fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3))
}

/// The `main` of a benchmark file: runs `$target` with [`config`].
#[macro_export]
macro_rules! bench_main {
    ($target:ident) => {
        #[allow(missing_docs)] // criterion_group! generates an undocumented pub fn
        mod group {
            criterion::criterion_group! {
                name = benches;
                config = $crate::config();
                targets = super::$target
            }
        }
        criterion::criterion_main!(group::benches);
    };
}
