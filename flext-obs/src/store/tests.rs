//! The store's own tests: retention, and the arena's ranges reused after an eviction.
use super::*;

#[test]
fn idle_series_without_handles_are_evicted_after_retention() {
    let store = Store::new(StoreSettings::default(), true).unwrap();
    store.counter("a_total", &[("k", "1")]).unwrap().increment();
    let held = store.counter("a_total", &[("k", "2")]).unwrap();
    held.increment();
    let t0 = Instant::now();
    assert_eq!(store.sweep_older_than(Duration::from_secs(60), t0), 0, "first sweep only notes activity");
    assert_eq!(store.sweep_older_than(Duration::from_secs(60), t0 + Duration::from_secs(30)), 0, "not idle long enough");
    assert_eq!(store.sweep_older_than(Duration::from_secs(60), t0 + Duration::from_secs(61)), 1, "the handle-less series goes");
    assert_eq!(store.series_count(), 1);
    assert_eq!(store.snapshot().value(SERIES_METRIC, &[("metric", "a_total")]), Some(1.0));
}

#[test]
fn series_made_after_an_eviction_start_from_zero_and_keep_every_count() {
    let store = Store::new(StoreSettings { max_series_per_metric: 1_000, ..StoreSettings::default() }, true).unwrap();
    for i in 0..200 {
        let k = i.to_string();
        store.counter("gone_total", &[("k", &k)]).unwrap().increment_by(7);
        store.histogram("gone_seconds", &[("k", &k)]).unwrap().record(0.5).unwrap();
    }
    let t0 = Instant::now();
    store.sweep_older_than(Duration::from_secs(1), t0);
    assert_eq!(store.sweep_older_than(Duration::from_secs(1), t0 + Duration::from_secs(2)), 400);
    // The evicted series' words go back to the arena; new series of the same sizes take them.
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..200 {
                    let k = format!("new{i}");
                    store.counter("fresh_total", &[("k", &k)]).unwrap().increment();
                    store.histogram("fresh_seconds", &[("k", &k)]).unwrap().record(0.5).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let snapshot = store.snapshot();
    for i in 0..200 {
        let k = format!("new{i}");
        assert_eq!(snapshot.value("fresh_total", &[("k", &k)]), Some(3.0), "series {k}: no stale count, none lost");
        let histogram = store.histogram("fresh_seconds", &[("k", &k)]).unwrap().read();
        assert_eq!(histogram.count, 3, "series {k}");
        assert!((histogram.sum - 1.5).abs() < 1e-9, "series {k}: {}", histogram.sum);
    }
}

#[test]
fn a_counter_series_is_64_bytes_in_one_allocation() {
    // Arc counts (16) + key (24) + sweeper word (8) + core (16): what the memory benchmark's
    // per-counter figure rests on.
    assert_eq!(std::mem::size_of::<super::series::SeriesData>(), 16);
    assert_eq!(std::mem::size_of::<super::Series>(), 48);
}

#[test]
fn a_handle_made_and_dropped_between_sweeps_keeps_its_series() {
    let store = Store::new(StoreSettings::default(), true).unwrap();
    store.counter("b_total", &[]).unwrap().increment();
    let t0 = Instant::now();
    let minute = Duration::from_secs(60);
    assert_eq!(store.sweep_older_than(minute, t0), 0);
    store.counter("b_total", &[]).unwrap().increment(); // recorded after that sweep, then dropped
    assert_eq!(store.sweep_older_than(minute, t0 + Duration::from_secs(61)), 0, "used since the last sweep");
    assert_eq!(store.sweep_older_than(minute, t0 + Duration::from_secs(122)), 1, "idle for a retention since");
}
