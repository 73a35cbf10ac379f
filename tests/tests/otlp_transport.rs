//! OTLP that reaches real backends, checked on 127.0.0.1: the configured headers arrive, gzip
//! bodies gunzip, `http/json` bodies decode (with the official messages' serde form, and against
//! the specification's JSON mapping), per-signal URLs are used verbatim, only the
//! specification's statuses are retried (a 500 is not; a 503 with `Retry-After: 1` is, no sooner
//! than 1 s), `partial_success` rejections are counted, `OTEL_SDK_DISABLED=true` sends nothing,
//! and `https://` reaches a rustls server whose CA the test made, only with
//! `OTEL_EXPORTER_OTLP_CERTIFICATE` set, and with mutual TLS only with the client pair; the
//! Pushgateway pusher and the Alertmanager sink get the same TLS and their authentication.
//! The exporter is process-wide, so the tests take turns.

#![allow(clippy::float_cmp)] // exact counts are the point

use flext_obs::config::{ExportTimeouts, HttpAuth, OtlpSettings, PeerAccess, TlsFiles};
use flext_obs::export::alertmanager::AlertmanagerSink;
use flext_obs::export::otlp::{OtlpExporter, OtlpHandle, REJECTED_METRIC};
use flext_obs::export::push::Pusher;
use flext_obs::{Config, flext_monitor};
use flext_obs_tests::otlp_receiver::Receiver;
use flext_obs_tests::sum;
use flext_obs_tests::tls_peer::{Pki, TlsPeer};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, Once, PoisonError};
use std::time::Duration;

static TURN: Mutex<()> = Mutex::new(());
static INIT: Once = Once::new();

fn turn() -> MutexGuard<'static, ()> {
    INIT.call_once(|| {
        let config = Config::builder().service_name("otlp-transport").build().expect("valid config");
        flext_obs::init(config).expect("first init");
        flext_obs::log::set_writer(std::io::sink());
    });
    TURN.lock().unwrap_or_else(PoisonError::into_inner)
}

#[flext_monitor]
fn checkout(items: u32) -> u32 {
    items * 2
}

/// A configuration from `vars` (and nothing else from the environment).
fn config(vars: &[(&str, &str)]) -> Config {
    let vars: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    Config::from_lookup(|var| vars.get(var).cloned()).expect("valid configuration")
}

/// Settings that send on flush only, and give up within 3 s.
fn on_flush() -> OtlpSettings {
    OtlpSettings {
        schedule_delay: Duration::from_secs(600),
        metric_interval: Duration::from_secs(600),
        export_timeout: Duration::from_secs(3),
        metric_export_timeout: Duration::from_secs(3),
        ..OtlpSettings::default()
    }
}

/// Waits until `done` holds, 5 s at most.
fn wait_for(done: impl Fn() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The exporter `config` asks for, of the process-wide instance.
fn install(config: &Config) -> OtlpHandle {
    OtlpExporter::from_config(config).unwrap().expect("an endpoint").settings(on_flush()).install(flext_obs::global().clone()).unwrap()
}

#[test]
fn headers_arrive_gzip_bodies_decode_and_per_signal_urls_are_used_verbatim() {
    let _turn = turn();
    let receiver = Receiver::start();
    let base = receiver.endpoint();
    let logs_url = format!("{base}/custom/ingest/logs-here");
    let handle = install(&config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &base),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=s%3Dcr%C3%A9t , tenant=acme"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
        ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", &logs_url),
        ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "x-metrics-only=1"),
        ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "none"),
    ]));
    assert_eq!(checkout(3), 6);
    flext_obs::log::warning("checked out", &[]).unwrap();
    handle.flush().unwrap();
    drop(handle);

    assert!(receiver.decode_errors().is_empty(), "{:?}", receiver.decode_errors());
    let requests = receiver.requests();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    let traces: Vec<_> = requests.iter().filter(|r| r.path == "/v1/traces").collect();
    let metrics: Vec<_> = requests.iter().filter(|r| r.path == "/v1/metrics").collect();
    let logs: Vec<_> = requests.iter().filter(|r| r.path == "/custom/ingest/logs-here").collect();
    assert!(!traces.is_empty() && !metrics.is_empty() && !logs.is_empty(), "{paths:?}");
    assert!(!paths.contains(&"/v1/logs") && !paths.contains(&"/custom/ingest/logs-here/v1/logs"), "verbatim: {paths:?}");
    for request in traces.iter().chain(&logs) {
        assert_eq!(request.header("x-api-key"), Some("s=crét"), "percent-decoded");
        assert_eq!(request.header("tenant"), Some("acme"));
        assert_eq!(request.header("content-encoding"), Some("gzip"));
        assert_eq!(&request.body[..2], &[0x1f, 0x8b], "a gzip stream");
    }
    for request in &metrics {
        assert_eq!(request.header("x-metrics-only"), Some("1"));
        assert_eq!(request.header("x-api-key"), None, "a signal's headers replace the generic ones");
        assert_eq!(request.header("content-encoding"), None, "the signal's own compression wins");
    }
    assert!(receiver.spans().iter().any(|s| s.span.name == "checkout"), "the gunzipped spans decode");
    assert!(receiver.log_records().iter().any(|r| format!("{:?}", r.body).contains("checked out")));
}

#[test]
fn json_bodies_follow_the_specification_s_json_mapping() {
    let _turn = turn();
    let receiver = Receiver::start();
    let handle = install(&config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint()), ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]));
    assert_eq!(checkout(5), 10);
    handle.flush().unwrap();
    drop(handle);

    assert!(receiver.decode_errors().is_empty(), "{:?}", receiver.decode_errors());
    let spans = receiver.spans();
    let span = spans.iter().find(|s| s.span.name == "checkout").expect("decoded by the messages' serde form");
    let trace = receiver.requests().into_iter().find(|r| r.path == "/v1/traces").unwrap();
    assert_eq!(trace.header("content-type"), Some("application/json"));
    // The mapping itself, read as plain JSON: lowerCamelCase keys, IDs as hex strings (not
    // base64), enums as integers, 64-bit integers as decimal strings or numbers.
    let body: serde_json::Value = serde_json::from_slice(&trace.body).unwrap();
    let json_span = body["resourceSpans"][0]["scopeSpans"][0]["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "checkout")
        .expect("the span under resourceSpans/scopeSpans/spans")
        .clone();
    let hex = |bytes: &[u8]| {
        bytes.iter().fold(String::new(), |mut out, b| {
            use std::fmt::Write as _;
            let _ = write!(out, "{b:02x}");
            out
        })
    };
    assert_eq!(json_span["traceId"], hex(&span.span.trace_id));
    assert_eq!(json_span["spanId"], hex(&span.span.span_id));
    assert_eq!(json_span["traceId"].as_str().unwrap().len(), 32);
    assert!(json_span["kind"].is_u64(), "{}", json_span["kind"]);
    let start = &json_span["startTimeUnixNano"];
    let nanos = start.as_str().map_or_else(|| start.as_u64(), |s| s.parse::<u64>().ok());
    assert_eq!(nanos, Some(span.span.start_time_unix_nano));
    assert_eq!(body["resourceSpans"][0]["resource"]["attributes"][0]["key"], "service.name");
}

#[test]
fn a_500_is_not_retried_and_a_503_with_retry_after_is_retried_no_sooner() {
    let _turn = turn();
    let receiver = Receiver::start();
    let handle = OtlpExporter::new(&receiver.endpoint())
        .unwrap()
        .settings(OtlpSettings { export_timeout: Duration::from_secs(5), ..on_flush() })
        .metrics(false)
        .logs(false)
        .install(flext_obs::global().clone())
        .unwrap();
    let traces = || receiver.requests().into_iter().filter(|r| r.path == "/v1/traces").collect::<Vec<_>>();

    receiver.fail_next(500, 1);
    checkout(1);
    let err = handle.flush().unwrap_err();
    assert!(err.to_string().contains("500"), "{err}");
    assert_eq!(traces().len(), 1, "a 500 is not retried");

    receiver.fail_next(400, 1);
    checkout(1);
    assert!(handle.flush().is_err());
    assert_eq!(traces().len(), 2, "nor a 400");

    receiver.fail_next_retry_after(503, 1, 1);
    checkout(1);
    handle.flush().unwrap();
    let sent = traces();
    assert_eq!(sent.len(), 4, "the 503 and its retry");
    let waited = sent[3].at.duration_since(sent[2].at);
    assert!(waited >= Duration::from_secs(1), "Retry-After: 1 honoured, retried after {waited:?}");
    assert!(waited < Duration::from_secs(3), "and not much later: {waited:?}");

    for status in [429, 502, 504] {
        receiver.fail_next(status, 1);
        checkout(1);
        handle.flush().unwrap_or_else(|e| panic!("{status} retried: {e}"));
    }
    assert_eq!(traces().len(), 10, "each retried once");

    // A Retry-After longer than the export's deadline ends the export at once.
    receiver.fail_next_retry_after(503, 1, 60);
    checkout(1);
    let started = std::time::Instant::now();
    assert!(handle.flush().is_err());
    assert!(started.elapsed() < Duration::from_secs(2), "gave up without sleeping past the deadline: {:?}", started.elapsed());
    assert_eq!(traces().len(), 11);
}

#[test]
fn each_request_gets_at_most_the_otlp_timeout_and_the_retries_stay_within_the_export_timeout() {
    let _turn = turn();
    let silent = flext_obs_tests::faults::Silent::start();
    let config =
        config(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &format!("{}/v1/traces", silent.url())), ("OTEL_EXPORTER_OTLP_TIMEOUT", "300")]);
    let handle = OtlpExporter::from_config(&config)
        .unwrap()
        .unwrap()
        .settings(OtlpSettings { export_timeout: Duration::from_millis(1500), ..on_flush() })
        .install(flext_obs::global().clone())
        .unwrap();
    checkout(1);
    let started = std::time::Instant::now();
    let err = handle.flush().unwrap_err().to_string();
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1500) + Duration::from_millis(750), "within the export timeout: {took:?} ({err})");
    drop(handle);
    assert!(silent.accepted() >= 2, "300 ms attempts, retried (a timeout is a network error): {} in {took:?}", silent.accepted());
}

#[test]
fn partial_success_rejections_are_counted_per_signal() {
    let _turn = turn();
    let receiver = Receiver::start();
    let handle = OtlpExporter::new(&receiver.endpoint())
        .unwrap()
        .settings(on_flush())
        .metrics(false)
        .logs(false)
        .install(flext_obs::global().clone())
        .unwrap();
    let before = sum(REJECTED_METRIC, &[("signal", "spans")]);
    let exported = sum(flext_obs::export::otlp::EXPORTED_METRIC, &[("signal", "spans")]);
    receiver.reject_next(2, "two spans had no name");
    for _ in 0..3 {
        checkout(2);
    }
    handle.flush().unwrap();
    let arrived = receiver.spans().len();
    assert!(arrived >= 3, "{arrived}");
    assert_eq!(sum(REJECTED_METRIC, &[("signal", "spans")]) - before, 2.0);
    #[allow(clippy::cast_precision_loss)]
    let sent = (arrived - 2) as f64;
    assert_eq!(sum(flext_obs::export::otlp::EXPORTED_METRIC, &[("signal", "spans")]) - exported, sent, "rejected are not exported");
    let last = handle.last_error().expect("the collector's message kept").to_string();
    assert!(last.contains("two spans had no name"), "{last}");
}

#[test]
fn otel_sdk_disabled_sends_nothing() {
    let _turn = turn();
    let receiver = Receiver::start();
    let config = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint()), ("OTEL_SDK_DISABLED", "true")]);
    assert!(config.sdk_disabled());
    assert!(OtlpExporter::from_config(&config).unwrap().is_none());
    let exporters = flext_obs::export::start_from_config(&config).unwrap();
    assert!(exporters.otlp.is_none());
    for _ in 0..10 {
        checkout(1);
    }
    flext_obs::log::warning("nobody hears this", &[]).unwrap();
    drop(exporters);
    std::thread::sleep(Duration::from_millis(300));
    assert!(receiver.requests().is_empty(), "{:?}", receiver.requests().iter().map(|r| &r.path).collect::<Vec<_>>());
}

#[test]
fn https_reaches_the_collector_only_with_its_ca_and_mutual_tls_only_with_the_client_pair() {
    let _turn = turn();
    let pki = Pki::generate("otlp-tls");
    let ca = pki.ca.to_str().unwrap();
    let other = pki.other_ca.to_str().unwrap();
    let (cert, key) = (pki.client_cert.to_str().unwrap(), pki.client_key.to_str().unwrap());
    let attempt = |peer: &TlsPeer, extra: &[(&str, &str)]| {
        let url = peer.url();
        let mut vars = vec![("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", format!("{url}/v1/traces"))];
        vars.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let handle = install(&config(&vars));
        checkout(7);
        let result = handle.flush();
        drop(handle);
        result
    };

    let peer = TlsPeer::start(&pki, false);
    let not_a_certificate = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &peer.url()), ("OTEL_EXPORTER_OTLP_CERTIFICATE", key)]);
    let err = OtlpExporter::from_config(&not_a_certificate).unwrap().unwrap().install(flext_obs::global().clone()).unwrap_err().to_string();
    assert!(err.contains("holds no PEM certificate"), "the file is read at install: {err}");
    let started = std::time::Instant::now();
    let err = attempt(&peer, &[]).unwrap_err().to_string();
    assert!(err.contains("UnknownIssuer"), "{err}");
    assert_eq!(peer.requests(), 0, "the platform's roots do not know the test's CA: {err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a refused certificate is not retried until the 3 s deadline: {:?}",
        started.elapsed()
    );
    assert!(attempt(&peer, &[("OTEL_EXPORTER_OTLP_CERTIFICATE", other)]).is_err());
    assert_eq!(peer.requests(), 0, "nor does another CA");
    wait_for(|| peer.failed() >= 2);
    assert_eq!(peer.failed(), 2, "one handshake each, refused, not retried");
    attempt(&peer, &[("OTEL_EXPORTER_OTLP_CERTIFICATE", ca)]).unwrap();
    assert_eq!(peer.requests(), 1);
    assert!(peer.spans() >= 1);
    attempt(&peer, &[("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", ca)]).unwrap();
    assert_eq!(peer.requests(), 2, "the per-signal variable works too");

    let mutual = TlsPeer::start(&pki, true);
    assert!(attempt(&mutual, &[("OTEL_EXPORTER_OTLP_CERTIFICATE", ca)]).is_err());
    assert_eq!(mutual.requests(), 0, "no client certificate, no request");
    attempt(
        &mutual,
        &[("OTEL_EXPORTER_OTLP_CERTIFICATE", ca), ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", cert), ("OTEL_EXPORTER_OTLP_CLIENT_KEY", key)],
    )
    .unwrap();
    assert_eq!(mutual.requests(), 1, "the client pair gets through");
    assert!(mutual.spans() >= 1);
    let _ = std::fs::remove_dir_all(&pki.dir);
}

#[test]
fn the_pushgateway_and_alertmanager_get_tls_and_authentication() {
    let _turn = turn();
    let pki = Pki::generate("peer-tls");
    let peer = TlsPeer::start(&pki, true);
    let ca = pki.ca.to_str().unwrap();
    let (cert, key) = (pki.client_cert.to_str().unwrap(), pki.client_key.to_str().unwrap());
    let url = peer.url();
    let config = config(&[
        ("PROMETHEUS_PUSH_GATEWAY", &url),
        ("FLEXT_PUSH_GATEWAY_CERTIFICATE", ca),
        ("FLEXT_PUSH_GATEWAY_CLIENT_CERTIFICATE", cert),
        ("FLEXT_PUSH_GATEWAY_CLIENT_KEY", key),
        ("FLEXT_PUSH_GATEWAY_USER", "ci"),
        ("FLEXT_PUSH_GATEWAY_PASSWORD", "p@ss:word"),
        ("FLEXT_ALERTMANAGER_URL", &url),
        ("FLEXT_ALERTMANAGER_CERTIFICATE", ca),
        ("FLEXT_ALERTMANAGER_CLIENT_CERTIFICATE", cert),
        ("FLEXT_ALERTMANAGER_CLIENT_KEY", key),
        ("FLEXT_ALERTMANAGER_BEARER_TOKEN", "am-token.1"),
    ]);
    let obs = flext_obs_tests::fresh();
    Pusher::from_config(&config).unwrap().unwrap().push(&obs).unwrap();
    let sink = AlertmanagerSink::from_config(&config).unwrap().unwrap();
    let alert = flext_obs::Alert::builder("disk", "disk full").build().unwrap();
    sink.post(&[alert]).unwrap();
    let heads = peer.heads();
    assert_eq!(heads.len(), 2, "{heads:?}");
    assert!(heads[0].starts_with("PUT /metrics/job/otlp_transport"), "{}", heads[0]);
    // base64("ci:p@ss:word")
    assert!(heads[0].to_ascii_lowercase().contains("authorization: basic y2k6cebzczp3b3jk"), "{}", heads[0]);
    assert!(heads[1].starts_with("POST /api/v2/alerts"), "{}", heads[1]);
    assert!(heads[1].to_ascii_lowercase().contains("authorization: bearer am-token.1"), "{}", heads[1]);

    // Without the client pair the mutual-TLS peer refuses both.
    let bare = PeerAccess { tls: TlsFiles { ca_certificate: Some(pki.ca.clone()), ..TlsFiles::default() }, auth: HttpAuth::None };
    assert!(Pusher::new(&url, "job").unwrap().access(&bare).unwrap().push(&obs).is_err());
    let sink = AlertmanagerSink::with_access(&url, ExportTimeouts::default(), &bare).unwrap();
    assert!(sink.post(&[flext_obs::Alert::builder("disk", "disk full").build().unwrap()]).is_err());
    assert_eq!(peer.requests(), 2);
    let _ = std::fs::remove_dir_all(&pki.dir);
}
