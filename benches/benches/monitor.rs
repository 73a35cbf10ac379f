//! Per-call overhead of `#[flext_monitor]` on a trivial `fn(u64) -> Result<u64, E>`, in the same
//! run as: the bare function, two `Instant::now()` calls, `tracing::instrument` (no subscriber,
//! and a `tracing_subscriber::registry()`), `fastrace::trace` inside a root span with a
//! reporter, `autometrics` with its Prometheus exporter, and `metrics` counter + histogram with
//! `metrics-exporter-prometheus` (macro path and cached handles). 1 thread, and 2 threads
//! calling the same function. Also ours with the span sampled out, with OTLP export on, and with
//! `fields(x = x), ret, err` in use.

use criterion::{BenchmarkId, Criterion};
use flext_obs::flext_monitor;
use flext_obs_benches::per_thread;
use std::hint::black_box;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The function under test, in each of its instrumented variants.
type Variant = fn(u64) -> Result<u64, BenchError>;

/// The error type every variant returns.
#[derive(Debug)]
pub struct BenchError;

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("bench error")
    }
}

impl std::error::Error for BenchError {}

#[inline(never)]
fn bare(x: u64) -> Result<u64, BenchError> {
    if x == u64::MAX { Err(BenchError) } else { Ok(x.wrapping_mul(3)) }
}

#[inline(never)]
fn two_instant_now(x: u64) -> Result<u64, BenchError> {
    let start = Instant::now();
    let result = bare(x);
    black_box(start.elapsed());
    result
}

#[flext_monitor]
#[inline(never)]
fn flext(x: u64) -> Result<u64, BenchError> {
    if x == u64::MAX { Err(BenchError) } else { Ok(x.wrapping_mul(3)) }
}

/// The same with the `#[instrument]`-style options in use: a field from the argument, the return
/// value and the error text recorded on the span.
#[flext_monitor(fields(x = x), ret, err)]
#[inline(never)]
fn flext_fields(x: u64) -> Result<u64, BenchError> {
    if x == u64::MAX { Err(BenchError) } else { Ok(x.wrapping_mul(3)) }
}

#[tracing::instrument]
#[inline(never)]
fn traced(x: u64) -> Result<u64, BenchError> {
    if x == u64::MAX { Err(BenchError) } else { Ok(x.wrapping_mul(3)) }
}

#[fastrace::trace]
#[inline(never)]
fn fastraced(x: u64) -> Result<u64, BenchError> {
    if x == u64::MAX { Err(BenchError) } else { Ok(x.wrapping_mul(3)) }
}

#[autometrics::autometrics]
#[inline(never)]
fn autometriced(x: u64) -> Result<u64, BenchError> {
    if x == u64::MAX { Err(BenchError) } else { Ok(x.wrapping_mul(3)) }
}

#[inline(never)]
fn metrics_macro_path(x: u64) -> Result<u64, BenchError> {
    let start = Instant::now();
    let result = bare(x);
    metrics::counter!("function_calls_total", "function" => "metrics_macro_path").increment(1);
    metrics::histogram!("function_calls_duration_seconds", "function" => "metrics_macro_path").record(start.elapsed());
    result
}

static METRICS_HANDLES: LazyLock<(metrics::Counter, metrics::Histogram)> = LazyLock::new(|| {
    (
        metrics::counter!("function_calls_total", "function" => "metrics_cached"),
        metrics::histogram!("function_calls_duration_seconds", "function" => "metrics_cached"),
    )
});

#[inline(never)]
fn metrics_cached(x: u64) -> Result<u64, BenchError> {
    let start = Instant::now();
    let result = bare(x);
    METRICS_HANDLES.0.increment(1);
    METRICS_HANDLES.1.record(start.elapsed());
    result
}

/// Spans fastrace has reported, to check that its variant really records.
static FASTRACE_REPORTED: AtomicUsize = AtomicUsize::new(0);

/// Counts, then drops, every span fastrace reports.
struct CountingReporter;

impl fastrace::collector::Reporter for CountingReporter {
    fn report(&mut self, spans: Vec<fastrace::prelude::SpanRecord>) {
        FASTRACE_REPORTED.fetch_add(spans.len(), Ordering::Relaxed);
        black_box(spans);
    }
}

fn setup() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    metrics::set_global_recorder(recorder).expect("metrics recorder installed once");
    autometrics::prometheus_exporter::try_init().expect("autometrics exporter");
    fastrace::set_reporter(CountingReporter, fastrace::collector::Config::default());
    // Every variant must really record, or the comparison means nothing.
    in_fastrace_root(10, fastraced);
    fastrace::flush();
    assert!(FASTRACE_REPORTED.load(Ordering::Relaxed) >= 11, "fastrace did not record its spans");
    let _ = flext(1);
    assert!(flext_obs::trace::recent_spans().iter().any(|s| s.name() == "flext"), "flext-obs did not record its span");
}

/// Runs `f` `iters` times inside a fastrace root span (set as the local parent).
fn in_fastrace_root(iters: u64, f: Variant) -> Duration {
    let root = fastrace::Span::root("bench", fastrace::prelude::SpanContext::random());
    let _parent = root.set_local_parent();
    let start = Instant::now();
    for i in 0..iters {
        let _ = black_box(f(black_box(i)));
    }
    start.elapsed()
}

fn per_call(c: &mut Criterion) {
    setup();
    let one_thread: [(&str, Variant); 8] = [
        ("bare", bare),
        ("two_instant_now", two_instant_now),
        ("flext_monitor", flext),
        ("flext_monitor_fields_ret_err", flext_fields),
        ("tracing_instrument_no_subscriber", traced),
        ("autometrics_prometheus", autometriced),
        ("metrics_macro_path", metrics_macro_path),
        ("metrics_cached_handles", metrics_cached),
    ];
    let mut group = c.benchmark_group("per_call");
    for (name, f) in one_thread {
        group.bench_function(BenchmarkId::new(name, "1_thread"), |b| {
            let mut i = 0u64;
            b.iter(|| {
                i += 1;
                f(black_box(i))
            });
        });
    }
    group.bench_function(BenchmarkId::new("flext_monitor_switched_off", "1_thread"), |b| {
        flext_obs::monitor::set_enabled(false);
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            flext(black_box(i))
        });
        flext_obs::monitor::set_enabled(true);
    });
    group.bench_function(BenchmarkId::new("flext_monitor_sampled_out", "1_thread"), |b| {
        // Ratio 0: counted and timed, the span is not kept.
        flext_obs::sample::Sampler::builder().ratio(0.0).build().expect("valid sampler").install();
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            flext(black_box(i))
        });
        flext_obs::sample::Sampler::default().install();
    });
    #[cfg(feature = "otlp")]
    group.bench_function(BenchmarkId::new("flext_monitor_otlp_export", "1_thread"), |b| {
        // Every span offered to the OTLP queue of a real exporter posting to a loopback receiver;
        // at this rate the collector cannot keep up, so most offers find the queue full and the
        // span is dropped and counted: the call never waits.
        let receiver = flext_obs_tests::otlp_receiver::Receiver::start();
        let exporter = flext_obs::export::otlp::OtlpExporter::new(&receiver.endpoint()).expect("endpoint").metrics(false);
        let handle = exporter.install(flext_obs::global().clone()).expect("exporter");
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            flext(black_box(i))
        });
        let _ = handle.shutdown();
        assert!(!receiver.spans().is_empty(), "the exporter delivered spans");
    });
    group.bench_function(BenchmarkId::new("tracing_instrument_registry", "1_thread"), |b| {
        let dispatch = tracing::Dispatch::new(tracing_subscriber::registry());
        tracing::dispatcher::with_default(&dispatch, || {
            let mut i = 0u64;
            b.iter(|| {
                i += 1;
                traced(black_box(i))
            });
        });
    });
    group.bench_function(BenchmarkId::new("fastrace_root_span", "1_thread"), |b| {
        b.iter_custom(|iters| in_fastrace_root(iters, fastraced));
    });

    let two_threads: [(&str, Variant); 5] = [
        ("bare", bare),
        ("flext_monitor", flext),
        ("tracing_instrument_no_subscriber", traced),
        ("autometrics_prometheus", autometriced),
        ("metrics_cached_handles", metrics_cached),
    ];
    for (name, f) in two_threads {
        group.bench_function(BenchmarkId::new(name, "2_threads_per_thread"), |b| {
            b.iter_custom(|iters| {
                per_thread(2, iters, move |i| {
                    let _ = black_box(f(black_box(i)));
                })
            });
        });
    }
    group.bench_function(BenchmarkId::new("fastrace_root_span", "2_threads_per_thread"), |b| {
        b.iter_custom(|iters| {
            let threads: Vec<_> = (0..2).map(|_| std::thread::spawn(move || in_fastrace_root(iters, fastraced))).collect();
            threads.into_iter().map(|t| t.join().expect("bench thread")).max().unwrap_or_default()
        });
    });
    group.finish();
}

flext_obs_benches::bench_main!(per_call);
