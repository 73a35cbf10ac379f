//! Per-call overhead of `#[flext_monitor]` on a trivial `fn(u64) -> Result<u64, E>`, in the same
//! run as: the bare function, two `Instant::now()` calls, two raw TSC reads (`quanta`, the
//! monitor's clock), `tracing::instrument` (no subscriber,
//! and a `tracing_subscriber::registry()` alone, no layer), `fastrace::trace` with a reporter,
//! `autometrics` with its Prometheus exporter, and `metrics` counter + histogram with
//! `metrics-exporter-prometheus` (macro path and cached handles). 1 thread, and 2 threads
//! calling the same function. Also ours with the span sampled out, with OTLP export on, with
//! `fields(x = x), ret, err` in use, with the same registry installed, and with the monitored
//! function in a crate of its own (`benches/user-crate`, built as a user's crate is).
//!
//! fastrace's anchor: a root span per 100 calls, the root's creation and drop inside the timing
//! and the global collector flushed outside it (`fastrace_root_per_100_calls`): its realistic
//! cost per recorded span. The variant with every call inside one root
//! (`fastrace_one_root_span_cap_overflow`) measures fastrace's span-cap path: a root's local
//! span line stops recording after about ten thousand spans, and that root is never dropped
//! inside the timing, so it is not a cost per recorded span.

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion};
use flext_obs::flext_monitor;
use flext_obs_benches::per_thread;
use std::hint::black_box;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The function under test, in each of its instrumented variants.
type Variant = fn(u64) -> Result<u64, BenchError>;

/// The error type every variant returns: the user crate's, so its functions are variants too.
type BenchError = flext_obs_bench_user_crate::UserError;

#[inline(never)]
fn bare(x: u64) -> Result<u64, BenchError> {
    if x == u64::MAX { Err(flext_obs_bench_user_crate::UserError) } else { Ok(x.wrapping_mul(3)) }
}

#[inline(never)]
fn two_instant_now(x: u64) -> Result<u64, BenchError> {
    let start = Instant::now();
    let result = bare(x);
    black_box(start.elapsed());
    result
}

/// The clock's floor: two raw TSC reads through `quanta` (what the monitor's clock reads), their
/// difference kept as ticks.
#[inline(never)]
fn two_raw_tsc_reads(x: u64) -> Result<u64, BenchError> {
    let clock = &*TSC;
    let start = clock.raw();
    let result = bare(x);
    black_box(clock.raw().wrapping_sub(start));
    result
}

static TSC: LazyLock<quanta::Clock> = LazyLock::new(quanta::Clock::new);

#[flext_monitor]
#[inline(never)]
fn flext(x: u64) -> Result<u64, BenchError> {
    if x == u64::MAX { Err(flext_obs_bench_user_crate::UserError) } else { Ok(x.wrapping_mul(3)) }
}

/// The same with the `#[instrument]`-style options in use: a field from the argument, the return
/// value and the error text recorded on the span.
#[flext_monitor(fields(x = x), ret, err)]
#[inline(never)]
fn flext_fields(x: u64) -> Result<u64, BenchError> {
    if x == u64::MAX { Err(flext_obs_bench_user_crate::UserError) } else { Ok(x.wrapping_mul(3)) }
}

#[tracing::instrument]
#[inline(never)]
fn traced(x: u64) -> Result<u64, BenchError> {
    if x == u64::MAX { Err(flext_obs_bench_user_crate::UserError) } else { Ok(x.wrapping_mul(3)) }
}

#[fastrace::trace]
#[inline(never)]
fn fastraced(x: u64) -> Result<u64, BenchError> {
    if x == u64::MAX { Err(flext_obs_bench_user_crate::UserError) } else { Ok(x.wrapping_mul(3)) }
}

#[autometrics::autometrics]
#[inline(never)]
fn autometriced(x: u64) -> Result<u64, BenchError> {
    if x == u64::MAX { Err(flext_obs_bench_user_crate::UserError) } else { Ok(x.wrapping_mul(3)) }
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

/// Every variant's function, called `f(i)` for `i` in `0..n`.
fn call_n(n: u64, f: Variant) {
    for i in 0..n {
        let _ = black_box(f(black_box(i)));
    }
}

/// fastrace's realistic per-span cost: `iters` calls in roots of 100 calls each, every root
/// created and dropped (handed to the collector) inside the timing; the collector is flushed to
/// the reporter after the clock stops.
fn fastrace_root_per_100(iters: u64, f: Variant) -> Duration {
    let took = time_roots_per_100(iters, f);
    fastrace::flush();
    took
}

/// The timed part of [`fastrace_root_per_100`], without the flush.
fn time_roots_per_100(iters: u64, f: Variant) -> Duration {
    let start = Instant::now();
    let mut done = 0;
    while done < iters {
        let n = (iters - done).min(100);
        let root = fastrace::Span::root("bench", fastrace::prelude::SpanContext::random());
        {
            let _parent = root.set_local_parent();
            call_n(n, f);
        }
        drop(root);
        done += n;
    }
    start.elapsed()
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
    // The realistic anchor reports every span: 1,000 calls and their 10 roots.
    let before = FASTRACE_REPORTED.load(Ordering::Relaxed);
    fastrace_root_per_100(1_000, fastraced);
    assert!(FASTRACE_REPORTED.load(Ordering::Relaxed) - before >= 1_010, "fastrace dropped spans in roots of 100");
    let _ = flext(1);
    assert!(flext_obs::trace::recent_spans().iter().any(|s| s.name() == "flext"), "flext-obs did not record its span");
}

/// Runs `f` `iters` times inside a fastrace root span (set as the local parent).
fn in_fastrace_root(iters: u64, f: Variant) -> Duration {
    let root = fastrace::Span::root("bench", fastrace::prelude::SpanContext::random());
    let _parent = root.set_local_parent();
    let start = Instant::now();
    call_n(iters, f);
    start.elapsed()
}

fn per_call(c: &mut Criterion) {
    setup();
    let one_thread: [(&str, Variant); 11] = [
        ("bare", bare),
        ("bare_user_crate", flext_obs_bench_user_crate::plain),
        ("flext_monitor_user_crate", flext_obs_bench_user_crate::monitored),
        ("two_instant_now", two_instant_now),
        ("two_raw_tsc_reads", two_raw_tsc_reads),
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
    subscriber_and_fastrace(&mut group);
    two_threads(&mut group);
    group.finish();
}

/// The variants that install a `tracing` registry, and fastrace's two.
fn subscriber_and_fastrace(group: &mut BenchmarkGroup<'_, WallTime>) {
    group.bench_function(BenchmarkId::new("tracing_instrument_registry", "1_thread"), |b| under_registry(b, traced));
    // The same registry, with the default settings (the monitored call's own `tracing` span
    // off): what a listening subscriber costs us.
    group.bench_function(BenchmarkId::new("flext_monitor_tracing_registry", "1_thread"), |b| under_registry(b, flext));
    group.bench_function(BenchmarkId::new("flext_monitor_tracing_registry_spans_on", "1_thread"), |b| {
        // The same with the monitored call's own `tracing` span switched on (off by default):
        // what `monitor::set_tracing_spans(true)` costs when a subscriber listens.
        flext_obs::monitor::set_tracing_spans(true);
        under_registry(b, flext);
        flext_obs::monitor::set_tracing_spans(false);
    });
    group.bench_function(BenchmarkId::new("fastrace_root_per_100_calls", "1_thread"), |b| {
        b.iter_custom(|iters| fastrace_root_per_100(iters, fastraced));
    });
    group.bench_function(BenchmarkId::new("fastrace_one_root_span_cap_overflow", "1_thread"), |b| {
        b.iter_custom(|iters| in_fastrace_root(iters, fastraced));
    });
}

/// Drops a registry used by one bench and has every callsite ask again for its interest: a
/// callsite keeps the interest a subscriber gave it until then, so the benches after it (the
/// 2-thread ones, without a subscriber) would otherwise still open spans.
/// Times `call` with a fresh `tracing_subscriber::registry()` as the default dispatcher, then
/// forgets the interest it gave the callsites.
fn under_registry<R>(b: &mut criterion::Bencher<'_, WallTime>, call: fn(u64) -> R) {
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry());
    tracing::dispatcher::with_default(&dispatch, || {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            call(black_box(i))
        });
    });
    forget_registry_interest(dispatch);
}

fn forget_registry_interest(dispatch: tracing::Dispatch) {
    drop(dispatch);
    tracing_core::callsite::rebuild_interest_cache();
}

/// The variants run on 2 threads at once, each thread's own time.
fn two_threads(group: &mut BenchmarkGroup<'_, WallTime>) {
    let two_threads: [(&str, Variant); 6] = [
        ("bare", bare),
        ("flext_monitor", flext),
        ("flext_monitor_user_crate", flext_obs_bench_user_crate::monitored),
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
    group.bench_function(BenchmarkId::new("fastrace_root_per_100_calls", "2_threads_per_thread"), |b| {
        b.iter_custom(|iters| {
            // Each thread times its own roots; the collector is flushed once both are done.
            let threads: Vec<_> = (0..2).map(|_| std::thread::spawn(move || time_roots_per_100(iters, fastraced))).collect();
            let took = threads.into_iter().map(|t| t.join().expect("bench thread")).max().unwrap_or_default();
            fastrace::flush();
            took
        });
    });
}

flext_obs_benches::bench_main!(per_call);
