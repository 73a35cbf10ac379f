//! Rendering the Prometheus text exposition of 1,000 and 10,000 series (counters, and
//! histograms with the 14 Autometrics buckets), flext-obs (snapshot + render) against
//! `metrics-exporter-prometheus`'s `render()` and `prometheus-client`'s text encoder, in one
//! run. Also prints the resident memory each library uses per series.

use criterion::{BenchmarkId, Criterion};
use flext_obs::export::prometheus::{Format, render, render_export};
use flext_obs::{Config, Observability};
use prometheus_client::metrics::counter::Counter as PcCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram as PcHistogram;
use prometheus_client::registry::Registry;
use std::hint::black_box;

const BOUNDS: [f64; 14] = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Counters,
    Histograms,
}

#[allow(clippy::cast_precision_loss)]
fn sample(i: usize) -> f64 {
    (i % 97) as f64 / 50.0
}

fn flext(kind: Kind, n: usize) -> Observability {
    let obs = Observability::new(Config::builder().max_series_per_metric(n + 1).build().expect("config")).expect("store");
    obs.store().set_buckets("request_duration_seconds", &BOUNDS).expect("buckets");
    for i in 0..n {
        let id = i.to_string();
        match kind {
            Kind::Counters => obs.store().counter("requests_total", &[("id", &id)]).expect("counter").increment_by(i as u64),
            Kind::Histograms => {
                obs.store().histogram("request_duration_seconds", &[("id", &id)]).expect("histogram").record(sample(i)).expect("record");
            }
        }
    }
    obs
}

fn metrics_exporter(kind: Kind, n: usize) -> metrics_exporter_prometheus::PrometheusHandle {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().set_buckets(&BOUNDS).expect("buckets").build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        for i in 0..n {
            match kind {
                Kind::Counters => metrics::counter!("requests_total", "id" => i.to_string()).increment(i as u64),
                Kind::Histograms => metrics::histogram!("request_duration_seconds", "id" => i.to_string()).record(sample(i)),
            }
        }
    });
    std::mem::forget(recorder); // keep the series alive for the handle
    handle
}

type Labels = Vec<(String, String)>;

fn histogram() -> PcHistogram {
    PcHistogram::new(BOUNDS.iter().copied())
}

fn prometheus_client(kind: Kind, n: usize) -> Registry {
    let mut registry = Registry::default();
    match kind {
        Kind::Counters => {
            let family = Family::<Labels, PcCounter>::default();
            registry.register("requests", "Requests.", family.clone());
            for i in 0..n {
                family.get_or_create(&vec![("id".to_owned(), i.to_string())]).inc_by(i as u64);
            }
        }
        Kind::Histograms => {
            let family = Family::<Labels, PcHistogram, fn() -> PcHistogram>::new_with_constructor(histogram);
            registry.register("request_duration_seconds", "Request duration.", family.clone());
            for i in 0..n {
                family.get_or_create(&vec![("id".to_owned(), i.to_string())]).observe(sample(i));
            }
        }
    }
    registry
}

fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()))
        .map_or(0, |kb| kb * 1024)
}

/// Resident memory per series of each library, measured by building 10,000 series.
fn report_memory() {
    let mut keep = Vec::new();
    for kind in [Kind::Counters, Kind::Histograms] {
        let label = if kind == Kind::Counters { "counter" } else { "histogram" };
        let n = 10_000;
        let before = resident_bytes();
        let a = flext(kind, n);
        let flext_bytes = resident_bytes().saturating_sub(before);
        let before = resident_bytes();
        let b = metrics_exporter(kind, n);
        let metrics_bytes = resident_bytes().saturating_sub(before);
        let before = resident_bytes();
        let c = prometheus_client(kind, n);
        let client_bytes = resident_bytes().saturating_sub(before);
        println!(
            "memory per {label} series (RSS growth / {n}): flext-obs {} B, metrics-exporter-prometheus {} B, prometheus-client {} B",
            flext_bytes / n as u64,
            metrics_bytes / n as u64,
            client_bytes / n as u64
        );
        keep.push(black_box((a, b, c)));
    }
    drop(keep);
}

fn render_series(c: &mut Criterion) {
    report_memory();
    let mut group = c.benchmark_group("render_text");
    group.sample_size(20);
    for kind in [Kind::Counters, Kind::Histograms] {
        let name = if kind == Kind::Counters { "counters" } else { "histograms" };
        for n in [1_000, 10_000] {
            let obs = flext(kind, n);
            group.bench_function(BenchmarkId::new(format!("flext_obs_scrape/{name}"), n), |b| {
                b.iter(|| render_export(&obs.store().export_snapshot(), &[], Format::Text));
            });
            let export = obs.store().export_snapshot();
            group.bench_function(BenchmarkId::new(format!("flext_obs_render_only/{name}"), n), |b| {
                b.iter(|| render_export(black_box(&export), &[], Format::Text));
            });
            group.bench_function(BenchmarkId::new(format!("flext_obs_json_snapshot_and_render/{name}"), n), |b| {
                b.iter(|| render(&obs.snapshot(), Format::Text));
            });
            let handle = metrics_exporter(kind, n);
            group.bench_function(BenchmarkId::new(format!("metrics_exporter_prometheus/{name}"), n), |b| {
                b.iter(|| handle.render());
            });
            let registry = prometheus_client(kind, n);
            group.bench_function(BenchmarkId::new(format!("prometheus_client/{name}"), n), |b| {
                b.iter(|| {
                    let mut out = String::new();
                    prometheus_client::encoding::text::encode(&mut out, &registry).expect("encode");
                    out
                });
            });
        }
    }
    group.finish();
}

flext_obs_benches::bench_main!(render_series);
