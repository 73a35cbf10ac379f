//! A real Pushgateway receives pushes (PUT and POST semantics, grouping labels, errors with the
//! gateway's message); a real Alertmanager receives alerts (API and monitored failures), with
//! labels and annotations, and their resolution.

#![allow(clippy::float_cmp)]

use flext_obs::export::alertmanager::AlertmanagerSink;
use flext_obs::export::push::{PushMethod, Pusher};
use flext_obs::{Alert, AlertStatus, Config, Error, Observability, Severity, flext_monitor};
use flext_obs_tests::http::get;
use flext_obs_tests::parse_samples;
use flext_obs_tests::servers::{alertmanager, encode, pushgateway};
use std::time::{Duration, Instant};

fn instance() -> Observability {
    Observability::new(Config::builder().service_name("push-test").build().unwrap()).unwrap()
}

fn gateway_value(gateway: &flext_obs_tests::servers::Server, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let body = get(gateway.addr, "/metrics", &[]).unwrap().body;
    parse_samples(&body)
        .into_iter()
        .find(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).is_some_and(|have| have == v)))
        .map(|s| s.value.parse().unwrap())
}

#[test]
fn pushes_replace_or_merge_groups_and_errors_carry_the_gateways_message() {
    let gateway = pushgateway();
    let batch = instance();
    batch.store().counter("rows_imported_total", &[("table", "orders")]).unwrap().increment_by(1200);
    batch.store().histogram("batch_seconds", &[]).unwrap().record(2.5).unwrap();
    let pusher = Pusher::new(&gateway.url(), "nightly_import").unwrap().grouping("path", "/srv/in").unwrap();
    pusher.push(&batch).unwrap();
    let group = [("job", "nightly_import"), ("path", "/srv/in"), ("table", "orders")];
    assert_eq!(gateway_value(&gateway, "rows_imported_total", &group), Some(1200.0));
    assert_eq!(gateway_value(&gateway, "batch_seconds_count", &[("job", "nightly_import")]), Some(1.0));

    // POST replaces only same-named metrics; PUT replaces the group.
    let other = instance();
    other.store().gauge("last_run_timestamp", &[]).unwrap().set(1.7e9).unwrap();
    pusher.clone().method(PushMethod::Post).push(&other).unwrap();
    assert_eq!(gateway_value(&gateway, "rows_imported_total", &group), Some(1200.0), "POST kept the other metrics");
    assert_eq!(gateway_value(&gateway, "last_run_timestamp", &[("job", "nightly_import")]), Some(1.7e9));
    pusher.push(&other).unwrap();
    assert_eq!(gateway_value(&gateway, "rows_imported_total", &group), None, "PUT replaced the group");

    // A type that conflicts with another group is refused with the gateway's reason.
    let as_gauge = instance();
    as_gauge.store().gauge("rows_imported_total", &[]).unwrap().set(1.0).unwrap();
    let refused = Pusher::new(&gateway.url(), "other_job").unwrap().push(&as_gauge);
    let counter_group = instance();
    counter_group.store().counter("conflicting_total", &[]).unwrap().increment();
    Pusher::new(&gateway.url(), "first").unwrap().push(&counter_group).unwrap();
    let gauge_group = instance();
    gauge_group.store().gauge("conflicting_total", &[]).unwrap().set(1.0).unwrap();
    match Pusher::new(&gateway.url(), "second").unwrap().push(&gauge_group) {
        Err(Error::Remote { service: "Pushgateway", status: 400, message }) => assert!(!message.is_empty(), "the gateway's message"),
        other => panic!("expected a 400 from the gateway, got {other:?} (earlier push: {refused:?})"),
    }

    pusher.delete().unwrap();
    // The gateway answers a DELETE with 202 Accepted and applies it right after.
    eventually("the deleted group gone", || {
        gateway_value(&gateway, "last_run_timestamp", &[("job", "nightly_import")]).is_none().then_some(())
    });
    assert!(Pusher::new("ftp://x", "job").is_err());
    assert!(Pusher::new(&gateway.url(), "job").unwrap().grouping("__bad", "x").is_err());
    let closed = format!("http://127.0.0.1:{}", flext_obs_tests::servers::free_port());
    assert!(matches!(Pusher::new(&closed, "job").unwrap().push(&batch), Err(Error::Transport { .. })));
}

#[test]
fn the_background_pusher_pushes_once_more_when_stopped() {
    let gateway = pushgateway();
    let job = instance();
    let counter = job.store().counter("work_done_total", &[]).unwrap();
    let handle = Pusher::new(&gateway.url(), "background").unwrap().start(job.clone(), Duration::from_millis(100)).unwrap();
    for _ in 0..5 {
        counter.increment_by(10);
        std::thread::sleep(Duration::from_millis(30));
    }
    counter.increment_by(7);
    handle.stop().unwrap();
    assert_eq!(gateway_value(&gateway, "work_done_total", &[("job", "background")]), Some(57.0));
}

#[flext_monitor(severity = "critical")]
fn settle_invoice(id: u32) -> Result<u32, String> {
    Err(format!("invoice {id} rejected by the bank"))
}

fn alerts_named(am: &flext_obs_tests::servers::Server, name: &str) -> Vec<serde_json::Value> {
    let path = format!("/api/v2/alerts?filter={}", encode(&format!("alertname=\"{name}\"")));
    let body = get(am.addr, &path, &[]).unwrap().body;
    serde_json::from_str::<Vec<serde_json::Value>>(&body).unwrap()
}

fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what} not seen within 20 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn alerts_reach_alertmanager_with_labels_annotations_and_resolution() {
    let am = alertmanager();
    let sink = AlertmanagerSink::new(&am.url()).unwrap();
    let installed = sink.install().unwrap();

    let id = flext_obs::alert::raise(
        Alert::builder("disk nearly full", "93 % used on /data").severity(Severity::Medium).label("mount", "data").build().unwrap(),
    );
    let found = eventually("the API alert", || alerts_named(&am, "disk nearly full").into_iter().next());
    assert_eq!(found["labels"]["severity"], "medium");
    assert_eq!(found["labels"]["mount"], "data");
    assert_eq!(found["labels"]["service"], flext_obs::global().config().service_name());
    assert_eq!(found["annotations"]["description"], "93 % used on /data");
    assert!(found["annotations"]["correlation_id"].is_null() || found["annotations"]["correlation_id"].is_string());

    let correlation = flext_obs::CorrelationId::new();
    let _ = flext_obs::context::with_correlation_id(correlation, || settle_invoice(7));
    let failed = eventually("the monitored failure", || alerts_named(&am, "settle_invoice failed").into_iter().next());
    assert_eq!(failed["labels"]["function"], "settle_invoice");
    assert_eq!(failed["labels"]["severity"], "critical");
    assert_eq!(failed["annotations"]["description"], "invoice 7 rejected by the bank");
    assert_eq!(failed["annotations"]["correlation_id"], correlation.to_string());
    assert_eq!(failed["annotations"]["trace_id"].as_str().map(str::len), Some(32));
    assert!(failed["labels"]["trace_id"].is_null(), "trace IDs are annotations, not labels");

    assert!(flext_obs::alert::resolve(id));
    eventually("the resolution", || alerts_named(&am, "disk nearly full").is_empty().then_some(()));
    drop(installed);
    assert_eq!(sink.dropped(), 0);
    assert!(sink.last_error().is_none(), "{:?}", sink.last_error());
}

#[test]
fn a_400_from_alertmanager_is_surfaced_with_its_message() {
    let am = alertmanager();
    let sink = AlertmanagerSink::new(&am.url()).unwrap();
    let mut json = serde_json::to_value(Alert::builder("from the future", "m").build().unwrap()).unwrap();
    json["created_at"] = serde_json::Value::String((chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339());
    json["status"] = "resolved".into();
    let alert: Alert = serde_json::from_value(json).unwrap();
    assert_eq!(alert.status(), AlertStatus::Resolved);
    match sink.post(&[alert]) {
        Err(Error::Remote { service: "Alertmanager", status: 400, message }) => {
            assert!(message.contains("start time must be before end time"), "{message}");
        }
        other => panic!("expected a 400, got {other:?}"),
    }
}
