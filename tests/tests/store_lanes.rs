//! The lane count knob (`FLEXT_STORE_LANES`, `StoreSettings::lanes`): a 64-lane process on a
//! 2-core machine, exact totals with more recording threads than cores, and a second store
//! asking for another count refused without changing anything. One test in its own binary: the
//! count is fixed once per process.

use flext_obs::store::{Store, StoreSettings, lane_count};
use flext_obs::{Config, Observability};

#[test]
fn a_64_lane_process_records_exact_totals_and_refuses_another_count() {
    let config = Config::from_lookup(|name| (name == "FLEXT_STORE_LANES").then(|| "64".to_owned())).expect("valid configuration");
    let obs = Observability::new(config).expect("the first store fixes the count");
    assert_eq!(lane_count(), 64);

    let counter = obs.store().counter("lanes_calls_total", &[]).expect("counter");
    let histogram = obs.store().histogram("lanes_duration_seconds", &[]).expect("histogram");
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let (counter, histogram) = (counter.clone(), histogram.clone());
            std::thread::spawn(move || {
                for i in 0..10_000u32 {
                    counter.increment();
                    histogram.record(f64::from(i % 100) * 1e-4).expect("a valid observation");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("recording thread");
    }
    let snapshot = obs.snapshot();
    assert_eq!(snapshot.value("lanes_calls_total", &[]), Some(160_000.0));
    let recorded = snapshot.series("lanes_duration_seconds", &[]).next().expect("the histogram series");
    let flext_obs::store::SeriesValue::Histogram(value) = &recorded.value else { panic!("a histogram: {:?}", recorded.value) };
    assert_eq!(value.count, 160_000);

    let other = StoreSettings { lanes: Some(8), ..StoreSettings::default() };
    let err = Store::new(other, true).expect_err("the count is fixed for the process");
    assert!(err.to_string().contains("fixed at 64"), "{err}");
    assert!(Store::new(StoreSettings { lanes: Some(64), ..StoreSettings::default() }, true).is_ok());
    assert!(Store::new(StoreSettings { lanes: Some(0), ..StoreSettings::default() }, true).is_err());
    assert_eq!(lane_count(), 64);
    assert_eq!(obs.snapshot().value("lanes_calls_total", &[]), Some(160_000.0), "the refused store changed nothing");
}
