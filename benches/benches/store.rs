//! Store hot path: one counter increment plus one histogram record through pre-resolved
//! handles, flext-obs against the `metrics` crate (with `metrics-exporter-prometheus` as its
//! recorder), 1 thread and 2 threads on the same series, in one run.

use criterion::{BenchmarkId, Criterion};
use flext_obs::{Config, Observability};
use flext_obs_benches::per_thread;
use std::hint::black_box;
use std::sync::LazyLock;
use std::time::Instant;

#[allow(clippy::cast_precision_loss)]
fn value(i: u64) -> f64 {
    (i % 1024) as f64 * 1e-5
}

static OBS: LazyLock<Observability> = LazyLock::new(|| Observability::new(Config::default()).expect("config"));

fn flext_handles() -> (flext_obs::store::Counter, flext_obs::store::Histogram) {
    let store = OBS.store();
    (
        store.counter("bench_calls_total", &[("function", "f")]).expect("counter"),
        store.histogram("bench_duration_seconds", &[("function", "f")]).expect("histogram"),
    )
}

fn install_metrics_recorder() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    metrics::set_global_recorder(recorder).expect("recorder installed once");
}

fn metrics_handles() -> (metrics::Counter, metrics::Histogram) {
    (metrics::counter!("bench_calls_total", "function" => "f"), metrics::histogram!("bench_duration_seconds", "function" => "f"))
}

fn store_hot_path(c: &mut Criterion) {
    install_metrics_recorder();
    let mut group = c.benchmark_group("store_counter_plus_histogram");

    group.bench_function(BenchmarkId::new("flext_obs_handles", "1_thread"), |b| {
        let (counter, histogram) = flext_handles();
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            counter.increment();
            let _ = histogram.record(black_box(value(i)));
        });
    });
    group.bench_function(BenchmarkId::new("flext_obs_handles_timed", "1_thread"), |b| {
        let (counter, histogram) = flext_handles();
        b.iter(|| {
            let start = Instant::now();
            counter.increment();
            histogram.record_duration(black_box(start.elapsed()));
        });
    });
    group.bench_function(BenchmarkId::new("metrics_cached_handles", "1_thread"), |b| {
        let (counter, histogram) = metrics_handles();
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            counter.increment(1);
            histogram.record(black_box(value(i)));
        });
    });
    group.bench_function(BenchmarkId::new("metrics_cached_handles_timed", "1_thread"), |b| {
        let (counter, histogram) = metrics_handles();
        b.iter(|| {
            let start = Instant::now();
            counter.increment(1);
            histogram.record(black_box(start.elapsed()));
        });
    });
    group.bench_function(BenchmarkId::new("metrics_macro_path", "1_thread"), |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            metrics::counter!("bench_calls_total", "function" => "f").increment(1);
            metrics::histogram!("bench_duration_seconds", "function" => "f").record(black_box(value(i)));
        });
    });

    group.bench_function(BenchmarkId::new("flext_obs_handles", "2_threads_per_thread"), |b| {
        b.iter_custom(|iters| {
            let (counter, histogram) = flext_handles();
            per_thread(2, iters, move |i| {
                counter.increment();
                let _ = histogram.record(black_box(value(i)));
            })
        });
    });
    group.bench_function(BenchmarkId::new("metrics_cached_handles", "2_threads_per_thread"), |b| {
        b.iter_custom(|iters| {
            let (counter, histogram) = metrics_handles();
            per_thread(2, iters, move |i| {
                counter.increment(1);
                histogram.record(black_box(value(i)));
            })
        });
    });
    group.finish();
}

flext_obs_benches::bench_main!(store_hot_path);
