//! The `metrics` facade's per-record cost: the same `metrics::counter!` and `histogram!` macros
//! recording into flext-obs's recorder (`bridge::metrics`) and into metrics-exporter-prometheus's
//! recorder (its `PrometheusBuilder::build_recorder`, as its users install it), in one run; each
//! through the macro (a registry lookup per record) and through a handle held by the caller.
//! Run: `cargo bench -p flext-obs-benches --features bridge --bench bridge`.

use criterion::Criterion;
use std::hint::black_box;

fn bench_recorder(c: &mut Criterion, label: &str, recorder: &(impl metrics::Recorder + Sync)) {
    metrics::with_local_recorder(recorder, || {
        c.bench_function(&format!("bridge/{label}/counter_macro"), |b| {
            b.iter(|| metrics::counter!("requests", "route" => "/orders").increment(black_box(1)));
        });
        let held = metrics::counter!("requests_held", "route" => "/orders");
        c.bench_function(&format!("bridge/{label}/counter_handle"), |b| b.iter(|| held.increment(black_box(1))));
        c.bench_function(&format!("bridge/{label}/histogram_macro"), |b| {
            b.iter(|| metrics::histogram!("latency_seconds", "route" => "/orders").record(black_box(0.0042)));
        });
        let held = metrics::histogram!("latency_held_seconds", "route" => "/orders");
        c.bench_function(&format!("bridge/{label}/histogram_handle"), |b| b.iter(|| held.record(black_box(0.0042))));
    });
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let obs = flext_obs::Observability::new(flext_obs::Config::default()).expect("store");
    let flext = flext_obs::bridge::metrics::Recorder::builder(obs).build();
    bench_recorder(&mut c, "flext-obs", &flext);
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    bench_recorder(&mut c, "metrics-exporter-prometheus", &prometheus);
    c.final_summary();
}
