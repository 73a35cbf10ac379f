//! What the Autometrics specification asks of the series, read back from the store: `result` is
//! `ok` or `error` only, objectives add their labels where the specification puts them, one
//! `build_info` series always at 1 with the specification's labels, and one service name.

#![allow(clippy::float_cmp)] // exact counts are the point

use flext_obs::flext_monitor;
use flext_obs::slo::{Latency, Objective, Percentile};
use flext_obs_tests::{calls, panics};

const CHECKOUT: Objective = Objective::new("checkout").success_rate(Percentile::P99_9).latency(Latency::Ms250, Percentile::P99);
static LATENCY_ONLY: Objective = Objective::new("fast").latency(Latency::S1, Percentile::P95);

#[flext_monitor(objective = CHECKOUT)]
fn pay(amount: u32) -> Result<u32, String> {
    if amount == 0 { Err("nothing to pay".into()) } else { Ok(amount) }
}

#[flext_monitor(objective = LATENCY_ONLY)]
fn lookup() -> u32 {
    1
}

struct Cart;

#[flext_monitor(objective = CHECKOUT)]
impl Cart {
    fn add(&self) -> u32 {
        2
    }
}

#[test]
fn objectives_label_the_counter_and_the_histogram_as_the_specification_says() {
    assert!(pay(0).is_err());
    assert_eq!(pay(5).unwrap(), 5);
    assert_eq!(lookup(), 1);
    assert_eq!(Cart.add(), 2);
    let snapshot = flext_obs::global().snapshot();
    let counters: Vec<_> = snapshot.series("function_calls_total", &[("function", "pay")]).collect();
    assert!(!counters.is_empty());
    for counter in &counters {
        assert_eq!(counter.labels["objective_name"], "checkout");
        assert_eq!(counter.labels["objective_percentile"], "99.9");
        assert!(!counter.labels.contains_key("objective_latency_threshold"), "the threshold is for the histogram only");
    }
    let histogram = snapshot.series("function_calls_duration_seconds", &[("function", "pay")]).next().unwrap();
    assert_eq!(histogram.labels["objective_name"], "checkout");
    assert_eq!(histogram.labels["objective_percentile"], "99");
    assert_eq!(histogram.labels["objective_latency_threshold"], "0.25");
    let gauge = snapshot.series("function_calls_concurrent", &[("function", "pay")]).next().unwrap();
    assert!(!gauge.labels.contains_key("objective_name"), "the in-flight gauge carries no objective");
    // A latency-only objective labels the histogram alone.
    let lookup_counter = snapshot.series("function_calls_total", &[("function", "lookup")]).next().unwrap();
    assert!(!lookup_counter.labels.contains_key("objective_name"));
    let lookup_histogram = snapshot.series("function_calls_duration_seconds", &[("function", "lookup")]).next().unwrap();
    assert_eq!(
        (lookup_histogram.labels["objective_name"].as_str(), lookup_histogram.labels["objective_latency_threshold"].as_str()),
        ("fast", "1")
    );
    // On an impl block, every method counts toward the objective.
    let add = snapshot.series("function_calls_total", &[("function", "Cart::add"), ("result", "ok")]).next().unwrap();
    assert_eq!(add.labels["objective_name"], "checkout");
    // The threshold label is the `le` of a bucket the histogram really has.
    let flext_obs::store::SeriesValue::Histogram(h) = &histogram.value else { panic!("a histogram") };
    assert!(h.buckets.iter().any(|(le, _)| (*le - 0.25).abs() < 1e-12));
}

#[flext_monitor]
fn unlucky(fail: bool) -> u32 {
    assert!(!fail, "unlucky");
    3
}

#[test]
fn result_is_ok_or_error_only_and_a_panic_is_an_error() {
    let _ = std::panic::catch_unwind(|| unlucky(true));
    assert_eq!(unlucky(false), 3);
    let snapshot = flext_obs::global().snapshot();
    let results: std::collections::BTreeSet<String> =
        snapshot.series("function_calls_total", &[]).filter_map(|s| s.labels.get("result").cloned()).collect();
    assert!(results.iter().all(|r| r == "ok" || r == "error"), "{results:?}");
    assert_eq!((calls("unlucky", "ok"), calls("unlucky", "error"), panics("unlucky")), (1.0, 1.0, 1.0));
}

#[test]
fn exactly_one_build_info_series_at_one_with_the_specification_labels_at_every_moment() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    let obs = flext_obs::global();
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU32::new(0));
    let reader = {
        let (stop, reads) = (stop.clone(), reads.clone());
        std::thread::spawn(move || {
            // Reads while the versions change, at least 200 times, at most 100,000.
            while !(stop.load(Ordering::Relaxed) && reads.load(Ordering::Relaxed) >= 200) && reads.load(Ordering::Relaxed) < 100_000 {
                let snapshot = flext_obs::global().snapshot();
                let infos: Vec<_> = snapshot.series("build_info", &[]).collect();
                assert_eq!(infos.len(), 1, "one build_info series at every moment");
                assert_eq!(infos[0].value.scalar(), Some(1.0));
                reads.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // Changes the version until the reader has read at least 200 times meanwhile (bounded: 10 s).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut sets = 0u32;
    while (reads.load(Ordering::Relaxed) < 200 || sets < 200) && std::time::Instant::now() < deadline {
        obs.set_build_info(&format!("1.0.{sets}"), "abc123").unwrap();
        sets += 1;
    }
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    assert!(reads.load(Ordering::Relaxed) >= 200 && sets >= 200, "{} reads during {sets} changes", reads.load(Ordering::Relaxed));
    flext_obs::set_build_info!().unwrap();
    let snapshot = obs.snapshot();
    let infos: Vec<_> = snapshot.series("build_info", &[]).collect();
    assert_eq!(infos.len(), 1);
    let labels = &infos[0].labels;
    assert_eq!(labels["autometrics_version"], "1.0.0");
    assert_eq!(labels["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(labels["service_name"], obs.config().service_name());
    for key in ["commit", "branch", "repository_url", "repository_provider"] {
        assert!(labels.contains_key(key), "{key} present (empty when unknown)");
    }
    assert_ne!(labels["commit"], "unknown", "unknown is empty, not a made-up value");
}

#[test]
fn every_series_of_the_process_carries_one_service_name() {
    assert_eq!(pay(1).unwrap(), 1);
    assert_eq!(Cart.add(), 2);
    let snapshot = flext_obs::global().snapshot();
    let names: std::collections::BTreeSet<&str> =
        snapshot.series.iter().filter_map(|s| s.labels.get("service_name").map(String::as_str)).collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert_eq!(names.first().copied(), Some("autometrics"), "the test binary's name, without cargo's hash");
}
