//! Quick start: record metrics from threads and an async task, carry one correlation ID through
//! all of them, and print what the store holds as a table.
//!
//! Run with `cargo run -p flext-obs-examples --example quickstart`.

use flext_obs::context::{self, FutureExt};
use flext_obs::{CorrelationId, LogLevel, Metric, MetricKind, Severity};
use std::time::{Duration, Instant};

fn main() -> Result<(), flext_obs::Error> {
    let obs = flext_obs::init_from_env()?;
    let store = obs.store();
    println!("flext-obs quick start: service {:?}\n", obs.config().service_name());

    // Resolve handles once; recording through them takes no lock and allocates nothing.
    let requests = store.counter("requests_total", &[("route", "/orders")])?;
    let latency = store.histogram("request_duration_seconds", &[("route", "/orders")])?;
    let in_queue = store.gauge("queue_depth", &[("queue", "orders")])?;
    store.describe("requests_total", MetricKind::Counter, "Requests handled, by route.")?;

    let request_id = CorrelationId::new();
    context::with_correlation_id(request_id, || -> Result<(), flext_obs::Error> {
        // Worker threads: the wrapped closures run in this request's context.
        let workers: Vec<_> = (0..4)
            .map(|worker| {
                let (requests, latency) = (requests.clone(), latency.clone());
                std::thread::spawn(context::current().wrap(move || {
                    for i in 0..2_500u64 {
                        let started = Instant::now();
                        std::hint::black_box(i.wrapping_mul(worker + 1));
                        requests.increment();
                        latency.record_duration(started.elapsed() + Duration::from_micros(i % 300));
                    }
                    context::current().correlation_id()
                }))
            })
            .collect();
        for worker in workers {
            let seen = worker.join().expect("worker thread");
            assert_eq!(seen, Some(request_id));
        }

        // An async task on a multi-threaded runtime keeps the context across `.await`.
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build().expect("tokio runtime");
        let depth = in_queue.clone();
        let task = runtime.spawn(
            async move {
                for level in [3.0, 7.0, 2.0] {
                    depth.set(level).ok();
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                context::current().correlation_id()
            }
            .with_current_context(),
        );
        assert_eq!(runtime.block_on(task).expect("task"), Some(request_id));

        // Python-style one-off records and entities.
        obs.record_metric(&Metric::builder("payload_bytes", 512.0).kind(MetricKind::Summary).label("route", "/orders").build()?)?;
        let alert = flext_obs::create_alert("slow orders", "p99 above 250 µs", Severity::Medium)?;
        let log = flext_obs::create_log_entry("batch done", LogLevel::Info)?;
        println!("correlation ID {request_id} reached 4 threads and 1 async task");
        println!("alert {:?} ({}) and log line {:?} carry it too\n", alert.title(), alert.severity(), log.message());
        Ok(())
    })?;

    // Bad input is refused with a precise error and records nothing.
    if let Err(err) = store.counter("orders placed", &[]) {
        println!("refused: {err}");
    }
    if let Err(err) = latency.record(f64::NAN) {
        println!("refused: {err}\n");
    }

    println!("{}", obs.snapshot());
    Ok(())
}
