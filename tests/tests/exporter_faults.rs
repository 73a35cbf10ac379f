//! The exporters against misbehaving peers on 127.0.0.1 (a closed port, a server that accepts and
//! never answers, 500, 503 with `Retry-After`): every stop and shutdown returns within its
//! deadline (plus a generous margin), monitored calls are not slowed, and what was offered is
//! exactly what was sent plus what was dropped (plus what is still queued) whenever it is read.
//! Bounds and validated settings too: a queue of a million costs nothing up front, larger ones,
//! `usize::MAX` and `Duration::MAX` are refused with an error, `https://` is taken with the `tls`
//! feature (this crate turns it on). The OTLP exporter is process-wide, so the tests take turns.

#![allow(clippy::float_cmp, clippy::cast_precision_loss)] // exact counts are the point

use flext_obs::alert::AlertSink as _;
use flext_obs::config::{ExportTimeouts, OtlpSettings};
use flext_obs::export::alertmanager::{self, AlertmanagerSink};
use flext_obs::export::otlp::{self, OtlpExporter, OtlpHandle};
use flext_obs::export::prometheus::{Format, render};
use flext_obs::export::push::{self, Pusher};
use flext_obs::{Alert, Config, Observability, flext_monitor};
use flext_obs_tests::faults::{Failing, Silent, closed_port_url, rss_bytes};
use flext_obs_tests::sum;
use std::sync::{Mutex, MutexGuard, Once, PoisonError};
use std::time::{Duration, Instant};

static TURN: Mutex<()> = Mutex::new(());
static INIT: Once = Once::new();

/// Generous: CI has 2 cores and runs tests in parallel.
const MARGIN: Duration = Duration::from_secs(2);

fn turn() -> MutexGuard<'static, ()> {
    INIT.call_once(|| {
        flext_obs::init(Config::builder().service_name("faults").build().expect("valid config")).expect("first init");
        flext_obs::log::set_writer(std::io::sink());
    });
    TURN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Waits (at most 10 s) until `check` holds.
fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "{what} not seen within 10 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------------------
// OTLP

#[flext_monitor]
fn traced(n: u64) -> u64 {
    n
}

/// Spans exported, dropped (every reason) so far.
fn otlp_spans() -> (f64, f64) {
    (sum(otlp::EXPORTED_METRIC, &[("signal", "spans")]), sum(otlp::DROPPED_METRIC, &[("signal", "spans")]))
}

fn install(url: &str, settings: OtlpSettings) -> OtlpHandle {
    OtlpExporter::new(url).unwrap().settings(settings).metrics(false).logs(false).install(flext_obs::global().clone()).unwrap()
}

/// Exported + dropped + queued since `before`.
fn otlp_accounted(handle: &OtlpHandle, before: (f64, f64)) -> f64 {
    let (exported, dropped) = otlp_spans();
    (exported - before.0) + (dropped - before.1) + handle.queued().0 as f64
}

/// Checks sent + dropped + queued == offered, now (with the export thread idle or stuck: while
/// it settles a batch, the three are read at slightly different instants).
fn assert_otlp_ledger(handle: &OtlpHandle, before: (f64, f64), offered: u64, when: &str) {
    let accounted = otlp_accounted(handle, before);
    assert_eq!(accounted, offered as f64, "{when}: exported + dropped + queued (before {before:?})");
}

/// Like [`assert_otlp_ledger`] while the export thread works: it must hold within a second. The
/// value seen holding is the one checked: a second read could land while a batch is being
/// settled (a 500 now fails at once, without retries, so batches settle back to back).
fn settles_to(handle: &OtlpHandle, before: (f64, f64), offered: u64, when: &str) {
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut accounted = otlp_accounted(handle, before);
    while accounted != offered as f64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
        accounted = otlp_accounted(handle, before);
    }
    assert_eq!(accounted, offered as f64, "{when}: exported + dropped + queued (before {before:?})");
}

#[test]
fn otlp_shutdown_against_a_collector_that_never_answers_keeps_its_deadline_and_counts_every_span() {
    let _turn = turn();
    let collector = Silent::start();
    let shutdown_timeout = Duration::from_secs(1);
    // The 30 s export timeout of OpenTelemetry: the shutdown must not wait for it.
    let settings = OtlpSettings {
        max_queue_size: 1000,
        max_export_batch_size: 100,
        schedule_delay: Duration::from_millis(20),
        shutdown_timeout,
        ..OtlpSettings::default()
    };
    let before = otlp_spans();
    let handle = install(&collector.url(), settings);
    traced(0);
    eventually("the first export reaching the collector", || collector.accepted() >= 1);
    // The export thread is stuck in that request: monitored calls go on, spans beyond the
    // queue's 1,000 are dropped and counted when their thread's batch is handed over.
    let started = Instant::now();
    for n in 1..=10_000 {
        assert_eq!(traced(n), n);
    }
    let calls = started.elapsed();
    eprintln!("10,000 monitored calls with the collector hung: {calls:?}");
    assert!(calls < Duration::from_secs(10), "10,000 monitored calls took {calls:?} while the collector hung");
    assert_otlp_ledger(&handle, before, 10_001, "while the collector hangs");
    let dropped_now = otlp_spans().1 - before.1;
    // Up to 31 may still wait in this thread's batch of 32 (counted as queued by the ledger).
    assert!(dropped_now >= 9_000.0 - 31.0, "a queue of 1,000 cannot hold 10,001 spans: {dropped_now} dropped");

    let stopping = Instant::now();
    let result = handle.shutdown();
    let took = stopping.elapsed();
    assert!(took < shutdown_timeout + MARGIN, "the shutdown took {took:?} (deadline {shutdown_timeout:?})");
    let err = result.unwrap_err().to_string();
    assert!(err.contains("did not finish within"), "{err}");
    let (exported, dropped) = otlp_spans();
    assert_eq!((exported - before.0) + (dropped - before.1), 10_001.0, "after shutdown every span is sent or dropped");
    assert_eq!(exported - before.0, 0.0, "the collector never answered");
    assert!(sum(otlp::DROPPED_METRIC, &[("signal", "spans"), ("reason", "shutdown")]) >= 1.0);
}

#[test]
fn otlp_against_a_closed_port_500_and_503_drops_and_counts_exactly_within_the_deadlines() {
    let _turn = turn();
    let peers: Vec<(&str, String, Option<Failing>)> = vec![
        ("closed port", closed_port_url(), None),
        ("500", String::new(), Some(Failing::start(500, None))),
        ("503 Retry-After", String::new(), Some(Failing::start(503, Some(1)))),
    ];
    for (what, url, peer) in &peers {
        let url = peer.as_ref().map_or_else(|| url.clone(), Failing::url);
        let export_timeout = Duration::from_secs(2);
        let settings = OtlpSettings {
            max_queue_size: 500,
            max_export_batch_size: 50,
            schedule_delay: Duration::from_millis(20),
            export_timeout,
            shutdown_timeout: Duration::from_secs(1),
            ..OtlpSettings::default()
        };
        let before = otlp_spans();
        let failures_before = sum(otlp::FAILURES_METRIC, &[("signal", "spans")]);
        let handle = install(&url, settings);
        let started = Instant::now();
        for n in 0..2_000 {
            traced(n);
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{what}: calls slowed: {:?}", started.elapsed());
        settles_to(&handle, before, 2_000, what);
        let flushing = Instant::now();
        let flushed = handle.flush();
        assert!(flushing.elapsed() < export_timeout + MARGIN, "{what}: the flush took {:?}", flushing.elapsed());
        // The flush waits behind an export already under way: it may give up at its deadline.
        let err = flushed.unwrap_err().to_string();
        let cause = if peer.is_some() { &what[..3] } else { "unreachable" };
        assert!(err.contains(cause) || err.contains("did not finish within"), "{what}: {err}");
        let last = handle.last_error().expect("the last error").to_string();
        assert!(last.contains(cause) || last.contains("timeout"), "{what}: {last}");
        settles_to(&handle, before, 2_000, &format!("{what}, after the flush"));
        let stopping = Instant::now();
        let _ = handle.shutdown();
        assert!(stopping.elapsed() < Duration::from_secs(1) + MARGIN, "{what}: the shutdown took {:?}", stopping.elapsed());
        let (exported, dropped) = otlp_spans();
        assert_eq!(exported - before.0, 0.0, "{what}: nothing was accepted");
        assert_eq!(dropped - before.1, 2_000.0, "{what}: every span is counted as dropped");
        assert!(sum(otlp::FAILURES_METRIC, &[("signal", "spans")]) > failures_before, "{what}: failed requests are counted");
        if let Some(peer) = peer {
            assert!(peer.requests() >= 1, "{what}: the peer was asked");
        }
    }
}

#[test]
fn otlp_queue_sizes_are_bounded_and_allocate_nothing_up_front() {
    let _turn = turn();
    let lookup = |pairs: Vec<(&'static str, String)>| move |var: &str| pairs.iter().find(|(k, _)| *k == var).map(|(_, v)| v.clone());
    for huge in ["200000000".to_owned(), usize::MAX.to_string(), "1000001".to_owned()] {
        let err = Config::from_lookup(lookup(vec![("OTEL_BSP_MAX_QUEUE_SIZE", huge.clone())])).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("environment variable OTEL_BSP_MAX_QUEUE_SIZE={huge:?} is invalid: expected a whole number from 1 to 1000000")
        );
    }
    let err =
        Config::from_lookup(lookup(vec![("OTEL_BSP_MAX_QUEUE_SIZE", "100".into()), ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "101".into())]))
            .unwrap_err();
    assert!(err.to_string().contains("OTEL_BSP_MAX_EXPORT_BATCH_SIZE=\"101\""), "{err}");
    assert!(err.to_string().contains("from 1 to OTEL_BSP_MAX_QUEUE_SIZE (100)"), "{err}");
    // A queue below the default batch of 512, alone, makes the batch the whole queue.
    let small = Config::from_lookup(lookup(vec![("OTEL_BSP_MAX_QUEUE_SIZE", "100".into())])).unwrap();
    assert_eq!((small.otlp().max_queue_size, small.otlp().max_export_batch_size), (100, 100));
    for (var, value) in [("OTEL_BSP_SCHEDULE_DELAY", "3600001"), ("OTEL_METRIC_EXPORT_INTERVAL", "18446744073709551615")] {
        let err = Config::from_lookup(lookup(vec![(var, value.into())])).unwrap_err();
        assert!(err.to_string().starts_with(&format!("environment variable {var}={value:?} is invalid")), "{err}");
    }
    for settings in [
        OtlpSettings { max_queue_size: usize::MAX, ..OtlpSettings::default() },
        OtlpSettings { max_export_batch_size: 4096, ..OtlpSettings::default() },
        OtlpSettings { schedule_delay: Duration::MAX, ..OtlpSettings::default() },
        OtlpSettings { metric_interval: Duration::MAX, ..OtlpSettings::default() },
        OtlpSettings { export_timeout: Duration::from_secs(3601), ..OtlpSettings::default() },
        OtlpSettings { shutdown_timeout: Duration::ZERO, ..OtlpSettings::default() },
    ] {
        assert!(Config::builder().otlp(settings).build().is_err(), "{settings:?}");
        let installed = OtlpExporter::new("http://127.0.0.1:9").unwrap().settings(settings).install(flext_obs::global().clone());
        assert!(installed.is_err(), "{settings:?} was installed");
    }

    // The largest queue accepted costs nothing until it fills.
    let collector = Silent::start();
    let before = rss_bytes();
    let handle = install(&collector.url(), OtlpSettings { max_queue_size: 1_000_000, ..OtlpSettings::default() });
    let grown = rss_bytes().saturating_sub(before);
    assert!(grown < 32 << 20, "installing a queue of 1,000,000 grew the process by {} MiB", grown >> 20);
    drop(handle);
}

// ---------------------------------------------------------------------------------------------
// Alertmanager

fn quick_timeouts(request: Duration, stop: Duration) -> ExportTimeouts {
    ExportTimeouts { request, alertmanager_stop: stop, push_stop: stop }
}

fn alert(n: usize) -> Alert {
    Alert::builder(format!("fault test alert {n}"), "the peer misbehaves").build().unwrap()
}

/// Checks sent + dropped + queued == offered (within a second: while the sender thread settles
/// a batch, the three are read at slightly different instants).
fn assert_alert_ledger(sink: &AlertmanagerSink, offered: usize, when: &str) {
    let total = || sink.sent() + sink.dropped() + sink.queued() as u64;
    let deadline = Instant::now() + Duration::from_secs(1);
    while total() != offered as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let (sent, dropped, queued) = (sink.sent(), sink.dropped(), sink.queued());
    assert_eq!(sent + dropped + queued as u64, offered as u64, "{when}: sent {sent} + dropped {dropped} + queued {queued}");
}

#[test]
fn dropping_the_alertmanager_sink_with_10000_alerts_for_a_closed_port_keeps_its_deadline() {
    let _turn = turn();
    let stop = Duration::from_secs(1);
    let sink = AlertmanagerSink::with_timeouts(&closed_port_url(), quick_timeouts(Duration::from_secs(2), stop)).unwrap();
    let installed = sink.install().unwrap();
    let dropped_before = sum(alertmanager::DROPPED_METRIC, &[]);
    let started = Instant::now();
    for n in 0..10_000 {
        sink.notify(&alert(n));
    }
    assert!(started.elapsed() < Duration::from_secs(10), "queueing 10,000 alerts took {:?}", started.elapsed());
    assert_alert_ledger(&sink, 10_000, "queued");
    std::thread::sleep(Duration::from_millis(300));
    assert_alert_ledger(&sink, 10_000, "while batches fail");
    assert_eq!(sum(alertmanager::DROPPED_METRIC, &[]) - dropped_before, sink.dropped() as f64, "the store's counter is exact");

    let stopping = Instant::now();
    drop(installed);
    let took = stopping.elapsed();
    assert!(took < stop + MARGIN, "dropping the sink took {took:?} (deadline {stop:?})");
    assert_eq!((sink.sent(), sink.queued()), (0, 0));
    assert_eq!(sink.dropped(), 10_000, "every alert is counted as dropped");
    assert_eq!(sum(alertmanager::DROPPED_METRIC, &[]) - dropped_before, 10_000.0);
    assert!(sum(alertmanager::DROPPED_METRIC, &[("reason", "shutdown")]) >= 1.0, "most were still queued at the deadline");
    assert!(sum(alertmanager::FAILURES_METRIC, &[("reason", "connect")]) >= 1.0, "failed batches are counted");
}

#[test]
fn dropping_the_alertmanager_sink_while_a_request_hangs_keeps_its_deadline() {
    let _turn = turn();
    let peer = Silent::start();
    let stop = Duration::from_secs(1);
    let request = Duration::from_secs(3);
    let sink = AlertmanagerSink::with_timeouts(&peer.url(), quick_timeouts(request, stop)).unwrap();
    let installed = sink.install().unwrap();
    let timeouts_before = sum(alertmanager::FAILURES_METRIC, &[("reason", "timeout")]);
    sink.notify(&alert(0));
    eventually("the request reaching the peer", || peer.accepted() >= 1);
    assert_alert_ledger(&sink, 1, "in flight");
    let stopping = Instant::now();
    drop(installed);
    let took = stopping.elapsed();
    assert!(took < stop + MARGIN, "dropping the sink took {took:?} with a request hanging");
    assert_eq!((sink.sent(), sink.dropped(), sink.queued()), (0, 1, 0), "the alert in flight is counted as dropped");
    // The abandoned request ends on its own at its timeout; it counts its failure, nothing more.
    eventually("the abandoned request's timeout", || sum(alertmanager::FAILURES_METRIC, &[("reason", "timeout")]) > timeouts_before);
    assert_eq!((sink.sent(), sink.dropped()), (0, 1));
}

#[test]
fn alertmanager_500_and_503_with_retry_after_drop_batches_and_count_the_failures() {
    let _turn = turn();
    for (status, retry_after) in [(500, None), (503, Some(1))] {
        let peer = Failing::start(status, retry_after);
        let stop = Duration::from_secs(1);
        let sink = AlertmanagerSink::with_timeouts(&peer.url(), quick_timeouts(Duration::from_secs(1), stop)).unwrap();
        let installed = sink.install().unwrap();
        let status_before = sum(alertmanager::FAILURES_METRIC, &[("reason", "status")]);
        for n in 0..250 {
            sink.notify(&alert(n));
        }
        assert_alert_ledger(&sink, 250, "queued");
        eventually("a failed batch", || sink.dropped() >= 1);
        assert_alert_ledger(&sink, 250, "while batches fail");
        let stopping = Instant::now();
        drop(installed);
        assert!(stopping.elapsed() < stop + MARGIN, "{status}: dropping the sink took {:?}", stopping.elapsed());
        assert_eq!((sink.sent(), sink.dropped()), (0, 250), "{status}");
        assert!(sum(alertmanager::FAILURES_METRIC, &[("reason", "status")]) > status_before, "{status}: failures counted");
        let err = sink.last_error().expect("the last error").to_string();
        // The last attempt may have run out of time rather than met the status.
        assert!((err.contains(&format!("answered {status}")) && err.contains("failing on purpose")) || err.contains("timeout"), "{err}");
        assert!(peer.requests() >= 2, "{status}: 5xx answers are retried");
    }
}

// ---------------------------------------------------------------------------------------------
// Pushgateway

fn pusher(url: &str, timeout: Duration, stop: Duration) -> Pusher {
    Pusher::new(url, "faults").unwrap().timeout(timeout).unwrap().stop_timeout(stop).unwrap()
}

fn push_failures(obs: &Observability, reason: &str) -> f64 {
    obs.snapshot().sum(push::FAILURES_METRIC, &[("reason", reason)])
}

#[test]
fn stopping_the_pusher_against_a_gateway_that_never_answers_keeps_its_deadline() {
    let gateway = Silent::start();
    let obs = flext_obs_tests::fresh();
    let stop = Duration::from_secs(1);
    let handle = pusher(&gateway.url(), Duration::from_secs(2), stop).start(obs.clone(), Duration::from_millis(20)).unwrap();
    eventually("a push reaching the gateway", || gateway.accepted() >= 1);
    let stopping = Instant::now();
    let result = handle.stop();
    let took = stopping.elapsed();
    assert!(took < stop + MARGIN, "stopping the pusher took {took:?} (deadline {stop:?})");
    assert!(result.unwrap_err().to_string().contains("did not stop within"));
    eventually("the hung push counted as a timeout", || push_failures(&obs, "timeout") >= 1.0);
    // On /metrics and in the snapshot, with every reason from start-up.
    let text = render(&obs.snapshot(), Format::Text);
    for reason in ["connect", "timeout", "status"] {
        assert!(text.contains(&format!("flext_push_failures_total{{reason=\"{reason}\"}}")), "{reason} missing from\n{text}");
    }
}

#[test]
fn pushes_to_a_closed_port_500_and_503_are_counted_by_reason() {
    let obs = flext_obs_tests::fresh();
    let closed = pusher(&closed_port_url(), Duration::from_secs(2), Duration::from_secs(1));
    assert!(closed.push(&obs).unwrap_err().to_string().contains("unreachable"));
    assert_eq!(push_failures(&obs, "connect"), 1.0);
    let handle = closed.start(obs.clone(), Duration::from_millis(20)).unwrap();
    eventually("background pushes failing", || push_failures(&obs, "connect") >= 3.0);
    let stopping = Instant::now();
    let final_push = handle.stop();
    assert!(stopping.elapsed() < Duration::from_secs(1) + MARGIN, "stop took {:?}", stopping.elapsed());
    assert!(final_push.unwrap_err().to_string().contains("unreachable"), "the final push's error");

    for (status, retry_after) in [(500, None), (503, Some(1))] {
        let gateway = Failing::start(status, retry_after);
        let before = push_failures(&obs, "status");
        let handle =
            pusher(&gateway.url(), Duration::from_secs(2), Duration::from_secs(1)).start(obs.clone(), Duration::from_millis(20)).unwrap();
        eventually("a failed push", || push_failures(&obs, "status") > before);
        let stopping = Instant::now();
        let err = handle.stop().unwrap_err().to_string();
        assert!(stopping.elapsed() < Duration::from_secs(1) + MARGIN, "{status}: stop took {:?}", stopping.elapsed());
        assert!(err.contains(&format!("answered {status}")), "{err}");
        assert!(push_failures(&obs, "status") >= before + 2.0, "{status}: the interval push and the final push");
    }
    assert_eq!(push_failures(&obs, "timeout"), 0.0, "nothing hung");
}

#[test]
fn exporter_timeouts_are_bounded_and_https_is_taken_with_tls() {
    for timeout in [Duration::ZERO, Duration::MAX, Duration::from_secs(3601)] {
        assert!(Pusher::new("http://127.0.0.1:9091", "job").unwrap().timeout(timeout).is_err());
        assert!(Pusher::new("http://127.0.0.1:9091", "job").unwrap().stop_timeout(timeout).is_err());
        let timeouts = ExportTimeouts { request: timeout, ..ExportTimeouts::default() };
        assert!(AlertmanagerSink::with_timeouts("http://127.0.0.1:9093", timeouts).is_err());
        assert!(Config::builder().export_timeouts(timeouts).build().is_err());
    }
    let obs = flext_obs_tests::fresh();
    assert!(Pusher::new("http://127.0.0.1:9091", "job").unwrap().start(obs, Duration::MAX).is_err());

    let lookup = |var: &'static str, value: &'static str| move |name: &str| (name == var).then(|| value.to_owned());
    // This crate builds flext-obs with `tls`: https:// is taken (without the feature it is an
    // error naming it, checked by flext-obs's own unit tests).
    for var in ["OTEL_EXPORTER_OTLP_ENDPOINT", "PROMETHEUS_PUSH_GATEWAY", "FLEXT_ALERTMANAGER_URL"] {
        assert!(Config::from_lookup(lookup(var, "https://127.0.0.1:4318")).is_ok(), "{var}");
    }
    assert!(Config::builder().alertmanager_url("https://am:9093").build().is_ok());
    for var in
        ["FLEXT_EXPORT_REQUEST_TIMEOUT_MS", "FLEXT_PUSH_STOP_TIMEOUT_MS", "FLEXT_ALERTMANAGER_STOP_TIMEOUT_MS", "OTEL_BSP_EXPORT_TIMEOUT"]
    {
        let err = Config::from_lookup(lookup(var, "3600001")).unwrap_err().to_string();
        assert!(err.starts_with(&format!("environment variable {var}=\"3600001\" is invalid")), "{err}");
        assert!(Config::from_lookup(lookup(var, "1500")).is_ok(), "{var}=1500");
    }
    let config = Config::from_lookup(|name| match name {
        "FLEXT_EXPORT_REQUEST_TIMEOUT_MS" => Some("1500".into()),
        "FLEXT_OTLP_SHUTDOWN_TIMEOUT_MS" => Some("2500".into()),
        _ => None,
    })
    .unwrap();
    assert_eq!(config.export_timeouts().request, Duration::from_millis(1500));
    assert_eq!(config.otlp().shutdown_timeout, Duration::from_millis(2500));
}

// ---------------------------------------------------------------------------------------------
// Every exporter at once

#[flext_monitor]
fn failing_once() -> Result<(), std::io::Error> {
    Err(std::io::Error::other("the peer misbehaves"))
}

#[test]
fn dropping_every_exporter_at_once_takes_the_longest_deadline_not_their_sum() {
    let _turn = turn();
    let peer = Silent::start();
    let stop = Duration::from_secs(3);
    let config = Config::builder()
        .service_name("faults")
        .push_gateway(peer.url())
        .alertmanager_url(peer.url())
        .otlp_endpoint(peer.url())
        .otlp(OtlpSettings { schedule_delay: Duration::from_millis(20), shutdown_timeout: stop, ..OtlpSettings::default() })
        .export_timeouts(quick_timeouts(Duration::from_secs(30), stop))
        .build()
        .unwrap();
    let exporters = flext_obs::export::start_from_config(&config).unwrap();
    assert!(exporters.push.is_some() && exporters.alertmanager.is_some() && exporters.otlp.is_some());
    // An alert and a span, each stuck in a request the peer never answers.
    let _ = failing_once();
    eventually("the alert and span requests reaching the peer", || peer.accepted() >= 2);
    let stopping = Instant::now();
    drop(exporters);
    let took = stopping.elapsed();
    // One after another, the pusher's final push, the sink and the OTLP shutdown would take 3 x 3 s.
    assert!(took < stop + MARGIN, "dropping the exporters took {took:?}, each with a {stop:?} deadline");
}
