//! `#[flext_monitor]` under concurrency: no call is lost. In its own test binary, so its threads
//! do not crowd the recent-spans buffers other tests read.

#![allow(clippy::float_cmp)] // exact counts are the point

use flext_obs::flext_monitor;
use flext_obs_tests::{calls, in_flight, timed};

#[flext_monitor]
fn busy(n: u64) -> u64 {
    n.wrapping_mul(31)
}

#[test]
fn eight_threads_times_a_hundred_thousand_calls_lose_no_count() {
    const THREADS: u64 = 8;
    const CALLS: u64 = 100_000;
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            std::thread::spawn(move || {
                let mut acc = 0u64;
                for i in 0..CALLS {
                    acc = acc.wrapping_add(busy(i + t));
                }
                acc
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    #[allow(clippy::cast_precision_loss)]
    let expected = (THREADS * CALLS) as f64;
    assert_eq!(calls("busy", "ok"), expected);
    assert_eq!(timed("busy"), expected);
    assert_eq!(in_flight("busy"), 0.0);
}

#[flext_monitor]
async fn hop(n: u64) -> u64 {
    tokio::task::yield_now().await;
    tokio::task::yield_now().await;
    n + 1
}

#[test]
fn async_calls_that_end_on_another_thread_lose_no_count() {
    const TASKS: u64 = 20_000;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(4).build().unwrap();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..TASKS).map(|i| tokio::spawn(hop(i))).collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    #[allow(clippy::cast_precision_loss)]
    let expected = TASKS as f64;
    assert_eq!(calls("hop", "ok"), expected);
    assert_eq!(timed("hop"), expected);
    assert_eq!(in_flight("hop"), 0.0);
}
