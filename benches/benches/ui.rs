//! The `/ui` page's cost to the endpoint: one update (`/ui/data`: a store snapshot made into
//! per-function rows, caller edges, the recent traces, alerts and logs, then JSON) for 100
//! monitored functions with the series the monitor writes (calls by result and caller, the
//! duration histogram, the in-flight gauge). Prints the bytes of one update.

use criterion::Criterion;
use flext_obs::export::http::ui::UiData;
use flext_obs::monitor::{CALLS, CONCURRENT, DURATION};
use flext_obs::{Config, Observability};
use std::hint::black_box;

const FUNCTIONS: usize = 100;

fn service() -> Observability {
    let obs = Observability::new(Config::builder().build().expect("config")).expect("store");
    let store = obs.store();
    for i in 0..FUNCTIONS {
        let function = format!("Service::handler_{i}");
        let caller = format!("Service::handler_{}", i / 2);
        for (result, calls) in [("ok", 1_000 + i as u64), ("error", i as u64 % 7)] {
            let labels = [
                ("function", function.as_str()),
                ("module", "app"),
                ("result", result),
                ("caller_function", caller.as_str()),
                ("caller_module", "app"),
            ];
            store.counter(CALLS, &labels).expect("counter").increment_by(calls);
        }
        let histogram = store.histogram(DURATION, &[("function", function.as_str()), ("module", "app")]).expect("histogram");
        for k in 0..50_u32 {
            histogram.record(f64::from(k % 13) * 1e-4).expect("record");
        }
        store.gauge(CONCURRENT, &[("function", function.as_str()), ("module", "app")]).expect("gauge").set(1.0).expect("set");
    }
    obs
}

fn main() {
    let obs = service();
    let body = serde_json::to_string(&UiData::collect(&obs)).expect("json");
    println!("ui update for {FUNCTIONS} functions: {} bytes of JSON", body.len());
    let mut c = Criterion::default().configure_from_args();
    c.bench_function("ui/update_100_functions", |b| {
        b.iter(|| black_box(serde_json::to_string(&UiData::collect(&obs)).expect("json").len()));
    });
    c.final_summary();
}
