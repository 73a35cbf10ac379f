//! The `metrics` facade's recorder (`bridge::metrics`): what `metrics::counter!`/`gauge!`/
//! `histogram!` record, from the test and from a real crate that speaks `metrics`
//! (metrics-process), lands in the store, on the exposition (checked by promtool), in
//! `snapshot()` and in OTLP; bucket matchers, the series limit, retention and refused input.

#![allow(clippy::float_cmp)] // exact counts are the point

use flext_obs::bridge::metrics::{Matcher, REFUSED, Recorder};
use flext_obs::export::prometheus::{Format, render};
use flext_obs::store::SeriesValue;
use flext_obs::{Config, Observability};
use flext_obs_tests::promtool_check;
use std::time::Duration;

fn instance(config: flext_obs::ConfigBuilder) -> Observability {
    Observability::new(config.service_name("bridge-metrics").build().unwrap()).unwrap()
}

fn refused(obs: &Observability, reason: &str) -> f64 {
    obs.metric_value(REFUSED, &[("bridge", "metrics"), ("reason", reason)]).unwrap_or(0.0)
}

#[test]
fn counters_gauges_and_histograms_land_in_the_store_with_valid_names_and_help() {
    let obs = instance(Config::builder());
    let recorder = Recorder::builder(obs.clone()).buckets_for(Matcher::Prefix("db_".into()), &[0.001, 0.01, 0.1]).unwrap().build();
    metrics::with_local_recorder(&recorder, || {
        metrics::describe_counter!("http.requests", metrics::Unit::Count, "Requests served.");
        metrics::describe_histogram!("db.query.seconds", metrics::Unit::Seconds, "Query time.");
        for _ in 0..3 {
            metrics::counter!("http.requests", "http.method" => "GET").increment(2);
        }
        let held = metrics::counter!("http.requests", "http.method" => "POST");
        held.increment(1);
        held.absolute(10); // at least 10 now: 9 more
        held.absolute(4); // below: nothing
        let depth = metrics::gauge!("queue.depth");
        depth.increment(5.0);
        depth.decrement(2.0);
        metrics::gauge!("temperature").set(21.5);
        for v in [0.0005, 0.005, 0.05, 0.5] {
            metrics::histogram!("db.query.seconds", "table" => "orders").record(v);
        }
    });
    // The store's name (the exposition adds `_total`).
    assert_eq!(obs.metric_value("http_requests", &[("http_method", "GET")]), Some(6.0));
    assert_eq!(obs.metric_value("http_requests", &[("http_method", "POST")]), Some(10.0));
    assert_eq!(obs.metric_value("queue_depth", &[]), Some(3.0));
    assert_eq!(obs.metric_value("temperature", &[]), Some(21.5));
    let snapshot = obs.snapshot();
    let query = snapshot.series.iter().find(|s| s.name == "db_query_seconds").expect("the histogram in snapshot()");
    let SeriesValue::Histogram(h) = &query.value else { panic!("a histogram: {query:?}") };
    assert_eq!(h.buckets.iter().map(|b| b.0).collect::<Vec<_>>(), [0.001, 0.01, 0.1], "the matcher's bounds");
    assert_eq!(h.buckets.iter().map(|b| b.1).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(h.count, 4);
    assert_eq!(query.help.as_deref(), Some("Query time. (seconds)"));

    let text = render(&obs.snapshot(), Format::Text);
    assert!(text.contains("# HELP http_requests_total Requests served. (count)"), "{text}");
    assert!(text.contains("db_query_seconds_bucket{table=\"orders\",le=\"0.01\"} 2"), "{text}");
    let (code, stderr) = promtool_check(&text);
    assert_eq!(code, 0, "promtool: {stderr}\n{text}");
    assert_eq!(refused(&obs, "registration") + refused(&obs, "value"), 0.0);
    assert_eq!(recorder.key_count(), 5);
}

#[test]
fn a_real_crate_speaking_metrics_reaches_the_exposition() {
    let obs = instance(Config::builder());
    let recorder = Recorder::builder(obs.clone()).build();
    let collector = metrics_process::Collector::default();
    metrics::with_local_recorder(&recorder, || {
        collector.describe();
        collector.collect();
        std::thread::sleep(Duration::from_millis(20));
        collector.collect();
    });
    let resident = obs.metric_value("process_resident_memory_bytes", &[]).expect("metrics-process's resident memory");
    assert!(resident > 1e6, "{resident}");
    assert!(obs.metric_value("process_threads", &[]).is_some_and(|n| n >= 1.0));
    let text = render(&obs.snapshot(), Format::Text);
    assert!(text.contains("# TYPE process_cpu_seconds_total counter"), "{text}");
    assert!(!text.contains("process_cpu_seconds_total_total"), "{text}");
    let (code, stderr) = promtool_check(&text);
    assert_eq!(code, 0, "promtool: {stderr}\n{text}");
}

#[test]
fn refused_names_and_values_are_counted_never_panicked_on() {
    let obs = instance(Config::builder());
    let recorder = Recorder::builder(obs.clone()).build();
    metrics::with_local_recorder(&recorder, || {
        metrics::gauge!("shared").set(1.0);
        metrics::counter!("shared").increment(1); // another kind under the same name
        metrics::histogram!("sizes", "le" => "1").record(1.0); // `le` is the histogram's own label
        metrics::gauge!("load").set(f64::NAN);
        metrics::histogram!("latency").record(-1.0);
        metrics::histogram!("latency").record(0.5);
    });
    assert_eq!(refused(&obs, "registration"), 2.0);
    // Every dropped record: the NaN, the negative observation, and the two records made through
    // the refused registrations.
    assert_eq!(refused(&obs, "value"), 4.0);
    assert_eq!(obs.metric_value("shared", &[]), Some(1.0), "the first registration stands");
    let text = render(&obs.snapshot(), Format::Text);
    assert_eq!(promtool_check(&text).0, 0, "{text}");
}

#[test]
fn the_series_limit_and_retention_apply_to_bridged_series() {
    let obs = instance(Config::builder().max_series_per_metric(3).retention(Some(Duration::from_secs(1))));
    let recorder = Recorder::builder(obs.clone()).build();
    metrics::with_local_recorder(&recorder, || {
        for user in 0..50 {
            metrics::counter!("logins", "user" => user.to_string()).increment(1);
        }
    });
    let series = obs.snapshot().series.into_iter().filter(|s| s.name == "logins").count();
    assert!(series <= 4, "3 series and the overflow, not {series}");
    assert_eq!(obs.store().dropped_series("logins"), 47);
    let total: f64 = obs.snapshot().series.iter().filter(|s| s.name == "logins").filter_map(|s| s.value.scalar()).sum();
    assert_eq!(total, 50.0, "no count lost to the limit");

    // Keys nobody holds or registers are let go after the retention period (checked at the
    // next registration), and the store's sweep then evicts their series.
    let keys_before = recorder.key_count();
    let mut let_go = false;
    for _ in 0..30 {
        std::thread::sleep(Duration::from_millis(500));
        metrics::with_local_recorder(&recorder, || metrics::counter!("heartbeat").increment(1));
        if recorder.key_count() < keys_before {
            let_go = true;
            break;
        }
    }
    assert!(let_go, "idle keys were never let go ({keys_before} keys)");
    // The sweep evicts a series idle for the retention period between two sweeps.
    obs.store().sweep();
    std::thread::sleep(Duration::from_millis(1100));
    assert!(obs.store().sweep() >= 3, "the three let-go series are evicted");
    assert!(obs.snapshot().series.iter().filter(|s| s.name == "logins" && s.labels.get("user").is_some_and(|u| u == "0")).count() == 0);
}

#[test]
fn bridged_metrics_are_exported_over_otlp() {
    use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
    let obs = instance(Config::builder());
    let recorder = Recorder::builder(obs.clone()).build();
    metrics::with_local_recorder(&recorder, || metrics::counter!("jobs.done", "queue" => "mail").increment(3));
    let receiver = flext_obs_tests::otlp_receiver::Receiver::start();
    let settings = flext_obs::config::OtlpSettings { schedule_delay: Duration::from_millis(50), ..Default::default() };
    let handle = flext_obs::export::otlp::OtlpExporter::new(&receiver.endpoint())
        .unwrap()
        .settings(settings)
        .metrics(true)
        .install(obs.clone())
        .unwrap();
    handle.flush().unwrap();
    let requests = receiver.metric_requests();
    let metrics = &requests.last().expect("a metrics request").resource_metrics[0].scope_metrics[0].metrics;
    let jobs = metrics.iter().find(|m| m.name == "jobs_done").expect("the bridged counter in OTLP");
    let Some(metric::Data::Sum(sum)) = &jobs.data else { panic!("a counter is a sum: {jobs:?}") };
    let point = sum.data_points.first().expect("its point");
    assert_eq!(point.value, Some(number_data_point::Value::AsDouble(3.0)));
    assert_eq!(flext_obs_tests::otlp_receiver::string_attr(&point.attributes, "queue").as_deref(), Some("mail"));
    handle.shutdown().unwrap();
}

#[test]
fn bridged_metrics_reach_a_real_pushgateway() {
    let gateway = flext_obs_tests::servers::pushgateway();
    let obs = instance(Config::builder());
    let recorder = Recorder::builder(obs.clone()).build();
    metrics::with_local_recorder(&recorder, || {
        metrics::describe_counter!("batch.rows", "Rows the batch imported.");
        metrics::counter!("batch.rows", "table" => "orders").increment(1200);
        metrics::gauge!("batch.last_success").set(1.7e9);
        metrics::histogram!("batch.seconds").record(2.5);
    });
    flext_obs::export::push::Pusher::new(&gateway.url(), "bridged_batch").unwrap().push(&obs).unwrap();
    let body = flext_obs_tests::http::get(gateway.addr, "/metrics", &[]).unwrap().body;
    let samples = flext_obs_tests::parse_samples(&body);
    let value = |name: &str| {
        samples
            .iter()
            .find(|s| s.name == name && s.labels.get("job").map(String::as_str) == Some("bridged_batch"))
            .map(|s| s.value.parse::<f64>().unwrap())
    };
    assert_eq!(value("batch_rows_total"), Some(1200.0), "the gateway holds the bridged counter: {body}");
    assert_eq!(value("batch_last_success"), Some(1.7e9));
    assert_eq!(value("batch_seconds_count"), Some(1.0));
    assert!(body.contains("# HELP batch_rows_total Rows the batch imported."), "with its description");
}

#[test]
fn the_recorder_keeps_at_most_max_keys_handles_and_loses_no_count_past_them() {
    use flext_obs::bridge::metrics::MAX_KEYS;
    let obs = instance(Config::builder().max_series_per_metric(10).retention(None));
    let recorder = Recorder::builder(obs.clone()).build();
    let keys = MAX_KEYS + 100;
    metrics::with_local_recorder(&recorder, || {
        for id in 0..keys {
            metrics::counter!("sessions", "id" => id.to_string()).increment(1);
        }
    });
    assert_eq!(recorder.key_count(), MAX_KEYS, "handles kept for the first MAX_KEYS keys only");
    let total: f64 = obs.snapshot().series.iter().filter(|s| s.name == "sessions").filter_map(|s| s.value.scalar()).sum();
    assert_eq!(total, f64::from(u32::try_from(keys).unwrap()), "every increment counted, cached or not");
}
