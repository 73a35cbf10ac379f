//! The metrics store: values, exact totals under concurrency, cardinality, retention, history.

#![allow(clippy::float_cmp)] // exact totals are the point: no lost or invented increments

use flext_obs::store::{DROPPED_SERIES_METRIC, OVERFLOW_LABEL, SERIES_METRIC, SeriesValue};
use flext_obs::{Config, Error, Metric, MetricKind, Observability};
use flext_obs_tests::fresh;
use std::sync::{Arc, Barrier};
use std::time::Duration;

#[test]
fn counters_gauges_histograms_and_summaries_hold_what_was_recorded() {
    let obs = fresh();
    let store = obs.store();
    let c = store.counter("c_total", &[("a", "1")]).unwrap();
    c.increment();
    c.increment_by(4);
    c.add(0.25).unwrap();
    assert_eq!(c.value(), 5.25);
    let g = store.gauge("g", &[]).unwrap();
    g.set(3.5).unwrap();
    g.add(-1.0).unwrap();
    assert_eq!(g.value(), 2.5);
    store.set_buckets("h_seconds", &[0.1, 1.0]).unwrap();
    let h = store.histogram("h_seconds", &[]).unwrap();
    for v in [0.05, 0.1, 0.5, 2.0, 3.0] {
        h.record(v).unwrap();
    }
    let read = h.read();
    assert_eq!(read.count, 5);
    assert!((read.sum - 5.65).abs() < 1e-9);
    assert_eq!(read.buckets, vec![(0.1, 2), (1.0, 3)], "cumulative, le is inclusive");
    let s = store.summary("s", &[]).unwrap();
    for v in 1..=1000 {
        s.record(f64::from(v)).unwrap();
    }
    let read = s.read();
    assert_eq!(read.count, 1000);
    assert_eq!(read.quantiles, vec![(0.5, 500.0), (0.9, 900.0), (0.99, 990.0)]);

    let snap = obs.snapshot();
    assert_eq!(snap.value("c_total", &[("a", "1")]), Some(5.25));
    assert_eq!(snap.value("g", &[]), Some(2.5));
    let SeriesValue::Histogram(hist) = &snap.get("h_seconds", &[]).unwrap().value else { panic!("histogram expected") };
    assert_eq!(hist.count, 5);
    let json = serde_json::to_value(&snap).unwrap();
    assert!(json["series"].as_array().unwrap().iter().any(|s| s["name"] == "h_seconds" && s["value"]["type"] == "histogram"));
    let table = snap.to_string();
    assert!(table.contains("c_total") && table.contains("a=\"1\"") && table.contains("5.25"), "{table}");
}

#[test]
fn summary_window_is_bounded_and_slides() {
    let obs = Observability::new(Config::builder().summary_window(10).build().unwrap()).unwrap();
    let s = obs.store().summary("w", &[]).unwrap();
    for v in 1..=100 {
        s.record(f64::from(v)).unwrap();
    }
    let read = s.read();
    assert_eq!(read.count, 100);
    assert_eq!(read.sum, 5050.0);
    assert_eq!(read.quantiles[0], (0.5, 95.0), "median of the last ten (91..=100)");
}

#[test]
fn default_buckets_resolve_a_microsecond_to_ten_seconds() {
    let obs = fresh();
    let h = obs.store().histogram("lat_seconds", &[]).unwrap();
    h.record_duration(Duration::from_micros(1));
    h.record_duration(Duration::from_secs(10));
    let read = h.read();
    assert_eq!(read.buckets.first(), Some(&(0.000_001, 1)));
    assert_eq!(read.buckets.last(), Some(&(10.0, 2)));
    for spec in [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0] {
        assert!(read.buckets.iter().any(|(le, _)| *le == spec), "Autometrics bound {spec} missing");
    }
}

#[test]
fn bad_input_is_refused_with_a_precise_error_and_changes_nothing() {
    let obs = fresh();
    let store = obs.store();
    assert_eq!(
        store.counter("bad name", &[]).unwrap_err().to_string(),
        r#"invalid store.name "bad name": must match [a-zA-Z_:][a-zA-Z0-9_:]*"#
    );
    assert!(store.counter("ok_total", &[("__x", "1")]).unwrap_err().to_string().contains(r#"must not start with "__""#));
    assert!(store.counter("ok_total", &[("a", "1"), ("a", "2")]).unwrap_err().to_string().contains("must appear only once"));
    assert!(store.counter("ok_total", &[(OVERFLOW_LABEL, "x")]).unwrap_err().to_string().contains("reserved"));
    let c = store.counter("ok_total", &[]).unwrap();
    assert_eq!(
        c.add(-1.0).unwrap_err().to_string(),
        "invalid Counter.increment -1.0: a counter only goes up; use a gauge for values that fall"
    );
    assert!(c.add(f64::NAN).is_err());
    assert_eq!(c.value(), 0.0);
    let g = store.gauge("g", &[]).unwrap();
    g.set(1.0).unwrap();
    assert!(g.set(f64::INFINITY).is_err());
    assert!(g.add(f64::NAN).is_err());
    assert_eq!(g.value(), 1.0);
    let h = store.histogram("h", &[]).unwrap();
    assert!(h.record(f64::NAN).is_err());
    assert_eq!(h.read().count, 0);
    assert_eq!(
        store.histogram("ok_total", &[]).unwrap_err(),
        Error::KindMismatch { name: "ok_total".into(), registered: MetricKind::Counter, requested: MetricKind::Histogram }
    );
    assert_eq!(
        store.histogram("ok_total", &[]).unwrap_err().to_string(),
        r#"metric "ok_total" is registered as a counter, not a histogram"#
    );
    assert!(store.set_buckets("b", &[]).unwrap_err().to_string().contains("need at least one bound"));
    assert!(store.set_buckets("b", &[1.0, f64::NAN]).unwrap_err().to_string().contains("must be finite"));
    assert!(store.set_buckets("b", &[1.0, 1.0]).unwrap_err().to_string().contains("strictly increasing"));
    store.histogram("live", &[]).unwrap();
    assert!(store.set_buckets("live", &[1.0]).unwrap_err().to_string().contains("already has series with other bounds"));
}

fn hammer(threads: usize, records: u64) {
    let obs = fresh();
    let counter = obs.store().counter("hammer_total", &[]).unwrap();
    let histogram = obs.store().histogram("hammer_seconds", &[]).unwrap();
    let fractional = obs.store().counter("hammer_fraction_total", &[]).unwrap();
    let barrier = Arc::new(Barrier::new(threads));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (counter, histogram, fractional, barrier) = (counter.clone(), histogram.clone(), fractional.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for i in 0..records {
                    counter.increment();
                    #[allow(clippy::cast_precision_loss)]
                    histogram.record((i % 7) as f64 + t as f64).unwrap();
                    if i % 8 == 0 {
                        fractional.add(0.5).unwrap();
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let total = threads as u64 * records;
    #[allow(clippy::cast_precision_loss)]
    {
        assert_eq!(counter.value(), total as f64, "no increment may be lost");
        assert_eq!(histogram.read().count, total, "no observation may be lost");
        assert_eq!(fractional.value(), (threads as u64 * records.div_ceil(8)) as f64 * 0.5);
    }
}

#[test]
fn no_count_is_lost_with_two_threads() {
    hammer(2, 200_000);
}

#[test]
fn no_count_is_lost_with_more_threads_than_lanes() {
    // 32 threads exceed the lane count on small machines, so the shared atomic cell is used too.
    hammer(32, 20_000);
}

#[test]
fn lanes_handed_over_between_short_lived_threads_keep_their_counts() {
    let obs = fresh();
    let counter = obs.store().counter("churn_total", &[]).unwrap();
    for round in 0..50 {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let c = counter.clone();
                std::thread::spawn(move || (0..1000).for_each(|_| c.increment()))
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(counter.value(), f64::from((round + 1) * 4000));
    }
}

#[test]
fn the_cardinality_limit_sends_new_label_sets_to_one_overflow_series() {
    let obs = Observability::new(Config::builder().max_series_per_metric(10).build().unwrap()).unwrap();
    let store = obs.store();
    for i in 0..25 {
        store.counter("users_total", &[("user", &i.to_string())]).unwrap().increment();
    }
    let snap = obs.snapshot();
    let users: Vec<_> = snap.series.iter().filter(|s| s.name == "users_total").collect();
    assert_eq!(users.len(), 11, "10 admitted + 1 overflow");
    assert_eq!(snap.value("users_total", &[(OVERFLOW_LABEL, "true")]), Some(15.0));
    assert_eq!(snap.value(DROPPED_SERIES_METRIC, &[("metric", "users_total")]), Some(15.0));
    assert_eq!(snap.value(SERIES_METRIC, &[("metric", "users_total")]), Some(10.0));
    assert_eq!(store.dropped_series("users_total"), 15);
    // an admitted label set still resolves to its own series
    store.counter("users_total", &[("user", "3")]).unwrap().increment();
    assert_eq!(obs.snapshot().value("users_total", &[("user", "3")]), Some(2.0));
}

#[test]
fn memory_stays_bounded_under_a_million_new_label_sets() {
    const LIMIT: usize = 2_000;
    const TOTAL: usize = 1_000_000;
    let obs = Observability::new(Config::builder().retention(Some(Duration::from_nanos(1))).build().unwrap()).unwrap();
    let store = obs.store();
    let mut evicted = 0;
    for i in 0..TOTAL {
        store.counter("requests_total", &[("request_id", &i.to_string())]).unwrap().increment();
        if i % 1_000 == 999 {
            evicted += store.sweep();
            // + the overflow series, + build_info
            assert!(store.series_count() <= LIMIT + 2, "live series {} over the limit", store.series_count());
        }
    }
    let dropped = usize::try_from(store.dropped_series("requests_total")).unwrap();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let live = obs.snapshot().value(SERIES_METRIC, &[("metric", "requests_total")]).unwrap() as usize;
    assert!(evicted > TOTAL / 2, "idle series must be evicted, evicted only {evicted}");
    assert_eq!(evicted + live + dropped, TOTAL, "every label set was either admitted (live or evicted) or counted as dropped");
}

#[test]
fn series_with_live_handles_are_never_evicted() {
    let obs = Observability::new(Config::builder().retention(Some(Duration::from_nanos(1))).build().unwrap()).unwrap();
    let held = obs.store().counter("held_total", &[]).unwrap();
    held.increment();
    obs.store().gauge("loose", &[]).unwrap().set(1.0).unwrap();
    obs.store().sweep();
    std::thread::sleep(Duration::from_millis(2));
    assert_eq!(obs.store().sweep(), 1, "only the gauge without a handle goes (build_info is held too)");
    assert!(obs.snapshot().series.iter().any(|s| s.name == "build_info"));
    assert_eq!(obs.snapshot().value("held_total", &[]), Some(1.0));
    assert_eq!(obs.snapshot().value("loose", &[]), None);
}

#[test]
fn the_background_sweeper_evicts_idle_series() {
    let config =
        Config::builder().retention(Some(Duration::from_millis(20))).sweep_interval(Some(Duration::from_millis(10))).build().unwrap();
    let obs = Observability::new(config).unwrap();
    obs.store().counter("tmp_total", &[]).unwrap().increment();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while obs.snapshot().value("tmp_total", &[]).is_some() {
        assert!(std::time::Instant::now() < deadline, "the sweeper never evicted the idle series");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn raw_records_are_kept_in_a_bounded_ring_and_applied_to_the_store() {
    let obs = Observability::new(Config::builder().raw_history(3).build().unwrap()).unwrap();
    for v in 1..=5 {
        obs.record_metric(&Metric::builder("temp_celsius", f64::from(v)).label("room", "a").build().unwrap()).unwrap();
        obs.record_metric(&Metric::new("done_total", 1.0, MetricKind::Counter).unwrap()).unwrap();
    }
    let raw: Vec<f64> = obs.raw_records("temp_celsius").iter().map(Metric::value).collect();
    assert_eq!(raw, vec![3.0, 4.0, 5.0]);
    assert_eq!(obs.metric_value("temp_celsius", &[("room", "a")]), Some(5.0), "gauge records set the value");
    assert_eq!(obs.metric_value("done_total", &[]), Some(5.0), "counter records add");
    assert_eq!(obs.snapshot().raw_records["done_total"].len(), 3);
    let err = obs.record_metric(&Metric::new("done_total", 1.0, MetricKind::Gauge).unwrap()).unwrap_err();
    assert!(matches!(err, Error::KindMismatch { .. }));
}

#[test]
fn the_runtime_switch_stops_recording_and_reset_zeroes() {
    let obs = Observability::new(Config::builder().enabled(false).build().unwrap()).unwrap();
    let c = obs.store().counter("off_total", &[]).unwrap();
    let h = obs.store().histogram("off_seconds", &[]).unwrap();
    c.increment();
    h.record(1.0).unwrap();
    assert_eq!((c.value(), h.read().count), (0.0, 0));
    obs.set_enabled(true);
    c.increment();
    h.record(1.0).unwrap();
    assert_eq!((c.value(), h.read().count), (1.0, 1));
    obs.reset();
    assert_eq!((c.value(), h.read().count), (0.0, 0));
    c.increment();
    assert_eq!(obs.metric_value("off_total", &[]), Some(1.0), "handles stay valid after reset");
}

#[test]
fn a_scrape_neither_pins_idle_series_nor_serves_stale_layout() {
    use flext_obs::export::prometheus::{Format, render_export};
    let obs = Observability::new(Config::builder().retention(Some(Duration::from_nanos(1))).build().unwrap()).unwrap();
    obs.store().counter("scraped_total", &[("k", "a")]).unwrap().increment();
    let first = render_export(&obs.store().export_snapshot(), &[], Format::Text);
    assert!(first.contains("scraped_total{k=\"a\"} 1\n"));
    // Help given after the first scrape shows in the next one.
    obs.store().describe("scraped_total", flext_obs::MetricKind::Counter, "Scraped things.").unwrap();
    // The scrape layout must not count as a live handle: the idle series is still evicted.
    obs.store().sweep();
    std::thread::sleep(Duration::from_millis(2));
    assert_eq!(obs.store().sweep(), 1, "a scrape must not keep an idle series alive");
    obs.store().counter("scraped_total", &[("k", "b")]).unwrap().increment_by(2);
    let second = render_export(&obs.store().export_snapshot(), &[], Format::Text);
    assert!(second.contains("# HELP scraped_total Scraped things.\n"), "{second}");
    assert!(!second.contains("k=\"a\""), "evicted series leave the scrape: {second}");
    assert!(second.contains("scraped_total{k=\"b\"} 2\n"), "{second}");
}

/// A store whose sweep evicts whatever is idle on the next sweep but one.
fn sweeping(builder: flext_obs::ConfigBuilder) -> Observability {
    Observability::new(builder.retention(Some(Duration::from_nanos(1))).build().unwrap()).unwrap()
}

/// Two sweeps apart in time: the first notes what is idle, the second evicts it.
fn sweep_idle(obs: &Observability) -> usize {
    obs.store().sweep();
    std::thread::sleep(Duration::from_millis(2));
    obs.store().sweep()
}

fn text(obs: &Observability) -> String {
    use flext_obs::export::prometheus::{Format, render_export};
    render_export(&obs.store().export_snapshot(), &[], Format::Text)
}

#[test]
fn the_sweep_keeps_a_metric_s_overflow_series_and_its_count_never_wraps() {
    let obs = sweeping(Config::builder().max_series_per_metric(3));
    for i in 0..5 {
        obs.store().counter("visits_total", &[("user", &i.to_string())]).unwrap().increment();
    }
    assert_eq!(obs.store().dropped_series("visits_total"), 2);
    assert_eq!(sweep_idle(&obs), 3, "the three admitted, idle series go; the overflow series stays");
    let snap = obs.snapshot();
    assert_eq!(snap.value("visits_total", &[(OVERFLOW_LABEL, "true")]), Some(2.0));
    assert_eq!(snap.value(SERIES_METRIC, &[("metric", "visits_total")]), Some(0.0), "the live count is 0, not 2^64 - 1");
    assert_eq!(snap.value(DROPPED_SERIES_METRIC, &[("metric", "visits_total")]), Some(2.0));
    // More sweeps change nothing, and the metric admits new label sets again.
    assert_eq!(sweep_idle(&obs), 0);
    obs.store().counter("visits_total", &[("user", "new")]).unwrap().increment();
    let snap = obs.snapshot();
    assert_eq!(snap.value("visits_total", &[("user", "new")]), Some(1.0), "a label set is admitted after the sweep");
    assert_eq!(snap.value(SERIES_METRIC, &[("metric", "visits_total")]), Some(1.0));
    let exposed = text(&obs);
    assert!(exposed.contains("visits_total{flext_overflow=\"true\"} 2\n"), "{exposed}");
    assert!(exposed.contains("visits_total{user=\"new\"} 1\n"), "{exposed}");
}

#[test]
fn le_on_a_histogram_and_quantile_on_a_summary_are_refused_and_change_nothing() {
    let obs = fresh();
    let store = obs.store();
    let err = store.histogram("wait_seconds", &[("le", "1")]).unwrap_err();
    assert_eq!(err.to_string(), "invalid store.label name \"le\": is reserved on a histogram: the exposition writes it on every sample");
    let err = store.summary("size_bytes", &[("quantile", "0.5")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid store.label name \"quantile\": is reserved on a summary: the exposition writes it on every sample"
    );
    let before = obs.snapshot();
    assert!(before.series.iter().all(|s| s.name != "wait_seconds" && s.name != "size_bytes"), "nothing was registered");
    // The same names are ordinary labels on the other kinds.
    store.gauge("threshold", &[("le", "1"), ("quantile", "0.5")]).unwrap().set(1.0).unwrap();
    store.counter("hits_total", &[("le", "x")]).unwrap().increment();
    // Prometheus' own reserved and invalid label names were already refused.
    assert!(store.counter("a_total", &[("__name__", "x")]).unwrap_err().to_string().contains("reserved for Prometheus"));
    assert!(store.counter("a_total", &[("__meta", "x")]).is_err());
    assert!(store.counter("a_total", &[("a:b", "x")]).is_err());
    assert!(store.counter("a_total", &[("1a", "x")]).is_err());
    assert!(store.counter("a_total", &[("", "x")]).is_err());
    let metric = Metric::builder("wait_seconds", 1.0).kind(MetricKind::Histogram).label("le", "1").build().unwrap();
    assert!(obs.record_metric(&metric).is_err());
    assert!(obs.raw_records("wait_seconds").is_empty(), "a refused record is not kept");
}

#[test]
fn names_that_would_meet_in_the_exposition_are_refused_with_both_names() {
    let obs = fresh();
    let store = obs.store();
    store.counter("jobs", &[]).unwrap().increment();
    let err = store.counter("jobs_total", &[]).unwrap_err().to_string();
    assert!(
        err.starts_with(
            "invalid store.name \"jobs_total\": counter \"jobs_total\" would expose \"jobs\", which counter \"jobs\" already exposes"
        ),
        "{err}"
    );
    store.histogram("h", &[]).unwrap().record(1.0).unwrap();
    for name in ["h_count", "h_sum", "h_bucket"] {
        let err = store.gauge(name, &[]).unwrap_err().to_string();
        assert!(err.contains(&format!("gauge \"{name}\" would expose \"{name}\", which histogram \"h\" already exposes")), "{err}");
        assert!(store.counter(name, &[]).is_err(), "counter {name}");
    }
    store.summary("s", &[]).unwrap().record(1.0).unwrap();
    assert!(store.gauge("s_sum", &[]).is_err());
    assert!(store.gauge("s_count", &[]).is_err());
    // The other order: the gauge first, then the histogram that would write its name.
    store.gauge("q_count", &[]).unwrap().set(1.0).unwrap();
    let err = store.histogram("q", &[]).unwrap_err().to_string();
    assert!(err.contains("histogram \"q\" would expose \"q_count\", which gauge \"q_count\" already exposes"), "{err}");
    // OpenMetrics names: a counter `a_total` is family `a`, and exposes `a_created`.
    store.gauge("a", &[]).unwrap().set(1.0).unwrap();
    assert!(store.counter("a_total", &[]).is_err());
    store.counter("b_total", &[]).unwrap().increment();
    assert!(store.gauge("b_created", &[]).is_err());
    assert!(store.gauge("b", &[]).is_err());
    // The store's own self-metrics and info series cannot be taken either.
    let err = store.gauge(SERIES_METRIC, &[("metric", "jobs")]).unwrap_err().to_string();
    assert!(err.contains("a name of the flext-obs self-metric \"flext_obs_series\""), "{err}");
    assert!(store.counter(DROPPED_SERIES_METRIC, &[("metric", "jobs")]).is_err());
    assert!(store.counter("flext_obs_dropped_series", &[]).is_err());
    store.set_info("app_info", &[("v", "1")], "App.").unwrap();
    assert!(store.gauge("app_info", &[]).is_err());
    assert!(store.counter("app", &[]).is_ok(), "`app_total` does not meet `app_info`");
    assert!(store.set_info("jobs_total", &[], "x").is_err(), "an info series cannot take a counter's name");
    // Same kind and name stays one family, as before.
    store.counter("jobs", &[("k", "v")]).unwrap().increment();
    let exposed = text(&obs);
    let mut types: Vec<&str> = exposed.lines().filter(|l| l.starts_with("# TYPE ")).map(|l| l.split(' ').nth(2).unwrap()).collect();
    let all = types.len();
    types.sort_unstable();
    types.dedup();
    assert_eq!(types.len(), all, "every family once: {exposed}");
}

#[test]
fn negative_observations_are_refused_and_change_nothing() {
    let obs = fresh();
    let h = obs.store().histogram("offset_seconds", &[]).unwrap();
    let err = h.record(-0.5).unwrap_err().to_string();
    assert!(err.starts_with("invalid Histogram.observation -0.5: must not be negative"), "{err}");
    assert!(h.record(f64::NAN).is_err() && h.record(f64::INFINITY).is_err() && h.record(f64::NEG_INFINITY).is_err());
    h.record(0.0).unwrap();
    assert_eq!((h.read().count, h.read().sum), (1, 0.0));
    let s = obs.store().summary("delta", &[]).unwrap();
    assert!(s.record(-1.0).is_err() && s.record(f64::NAN).is_err());
    assert_eq!(s.read().count, 0);
    // Through a record: refused before the series exists or the history keeps it.
    let metric = Metric::builder("drift_seconds", -2.0).kind(MetricKind::Histogram).build().unwrap();
    assert!(obs.record_metric(&metric).is_err());
    assert!(obs.snapshot().series.iter().all(|s| s.name != "drift_seconds"));
    assert!(obs.raw_records("drift_seconds").is_empty());
}

#[test]
fn the_sweep_forgets_names_with_no_series_and_the_raw_history_is_bounded_in_names() {
    const NAMES: usize = 5_000;
    let obs = sweeping(Config::builder().raw_history_names(100));
    let families_before = obs.store().family_count();
    for i in 0..NAMES {
        obs.record_metric(&Metric::builder(format!("job_{i}_rows"), 1.0).build().unwrap()).unwrap();
        assert!(obs.store().raw_history_names() <= 100);
    }
    assert_eq!(obs.store().family_count(), families_before + NAMES);
    assert_eq!(obs.store().raw_history_names(), 100);
    assert_eq!(obs.raw_records(&format!("job_{}_rows", NAMES - 1)).len(), 1, "the newest names keep their history");
    assert!(obs.raw_records("job_0_rows").is_empty(), "the oldest made room");
    assert_eq!(sweep_idle(&obs), NAMES);
    assert_eq!(obs.store().family_count(), families_before, "every name without series is gone");
    assert_eq!(obs.store().raw_history_names(), 0);
    let exposed = text(&obs);
    assert!(!exposed.contains("job_"), "no line for a forgotten name: {}", exposed.lines().find(|l| l.contains("job_")).unwrap_or(""));
    // Its name claim is released: the name can come back as another kind.
    obs.store().counter("job_7_rows", &[]).unwrap().increment();
    assert_eq!(obs.snapshot().value("job_7_rows", &[]), Some(1.0));
    // Declared names (buckets, help) are kept with no series.
    obs.store().set_buckets("batch_rows", &[1.0, 10.0]).unwrap();
    sweep_idle(&obs);
    obs.store().histogram("batch_rows", &[]).unwrap().record(5.0).unwrap();
    assert_eq!(
        obs.snapshot().series("batch_rows", &[]).next().map(|s| s.value.clone()).and_then(|v| match v {
            SeriesValue::Histogram(h) => Some(h.buckets.len()),
            _ => None,
        }),
        Some(2),
        "the declared buckets survived the sweep"
    );
}

#[test]
fn a_store_wide_series_cap_sends_new_label_sets_to_the_overflow_series_and_counts_them() {
    let obs = Observability::new(Config::builder().max_series(Some(10)).build().unwrap()).unwrap();
    let store = obs.store();
    let before = store.series_count();
    let mut refused = 0;
    for metric in ["a_total", "b_total", "c_total"] {
        for i in 0..6 {
            store.counter(metric, &[("i", &i.to_string())]).unwrap().increment();
        }
        refused += store.dropped_series(metric);
    }
    // 10 admitted in all (build_info is an info series, outside the cap).
    let snap = obs.snapshot();
    let ordinary = snap.series.iter().filter(|s| s.name.len() == 7 && s.labels.contains_key("i")).count();
    assert_eq!(ordinary, 10);
    assert_eq!(refused, 8, "18 label sets, 10 admitted");
    let overflow: f64 = ["a_total", "b_total", "c_total"].iter().filter_map(|m| snap.value(m, &[(OVERFLOW_LABEL, "true")])).sum();
    assert_eq!(overflow, 8.0, "every refused record is in an overflow series");
    assert_eq!(snap.value(DROPPED_SERIES_METRIC, &[("metric", "c_total")]), Some(6.0));
    assert!(store.series_count() <= before + 10 + 2, "at most one overflow series per refused metric");
    // The cap is read from the environment too.
    let config = Config::from_lookup(|var| (var == "FLEXT_MAX_SERIES").then(|| "25".to_owned())).unwrap();
    assert_eq!(config.store().max_series, Some(25));
    let err = Config::from_lookup(|var| (var == "FLEXT_MAX_SERIES").then(|| "0".to_owned())).unwrap_err();
    assert_eq!(err.to_string(), "environment variable FLEXT_MAX_SERIES=\"0\" is invalid: expected a whole number >= 1, or off");
}

#[test]
fn resolving_while_the_sweep_retires_families_never_splits_a_family() {
    let obs = Arc::new(sweeping(Config::builder()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..2)
        .map(|t| {
            let (obs, stop) = (obs.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 200_000 {
                    let name = format!("churn_{}", i % 8);
                    obs.store().gauge(&name, &[("t", &t.to_string()), ("i", &(i % 3).to_string())]).unwrap().set(1.0).unwrap();
                    i += 1;
                }
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_millis(500);
    while std::time::Instant::now() < deadline {
        obs.store().sweep();
        let exposed = text(&obs);
        let headers: Vec<&str> = exposed.lines().filter(|l| l.starts_with("# TYPE churn_")).collect();
        let mut unique = headers.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), headers.len(), "a family was split: {exposed}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let exposed = text(&obs);
    let (code, problems) = flext_obs_tests::promtool_check(&exposed);
    assert_eq!((code, problems.as_str()), (0, ""), "{exposed}");
}
